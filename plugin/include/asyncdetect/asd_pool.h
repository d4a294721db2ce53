/*
 * asd_pool.h: AsyncTileWorkerPool, many tiles through one async endpoint.
 *
 * The pool pulls jobs from the caller's source callback and reports every one
 * of them exactly once through on_done, as processed (with the output
 * object's text, unparsed, at most ASD_MAX_RESULT_BYTES) or failed (with an
 * error code and a reason; a result over the cap is ASD_ERR_BAD_RESULT).
 *
 * Optimised mode (enable_worker_optimization = true):
 *   submission_workers threads pull a job, wait for one of the
 *   max_concurrent_jobs slots (at most job_queue_timeout seconds, after which
 *   the tile fails with ASD_ERR_QUEUE_TIMEOUT), upload it and invoke the
 *   endpoint, then hand it to the poller;
 *   the poller is ONE timer heap keyed on each job's next poll time, served by
 *   polling_workers threads which poll the job's output and failure
 *   locations, download the result, call on_done and free the slot; a job
 *   not ready is pushed back with its next backoff delay.  Nothing sleeps per
 *   job and nothing scans all jobs.
 * Simple mode (enable_worker_optimization = false), the baseline:
 *   submission_workers + polling_workers threads each pull a job, submit it
 *   and wait for it (sleeping on the same backoff schedule) before pulling
 *   the next.
 *
 * A job that meets a retryable error (asd_error_is_retryable) while being
 * uploaded, invoked, polled or downloaded is retried up to max_retries
 * times (upload and invoke again only if the invocation never succeeded);
 * then it fails with the last reason.  Jobs are never dropped.
 *
 * Resume jobs carry an inference id and the output/failure locations of an
 * earlier run's invocation: they go straight to the poller, nothing is
 * uploaded or invoked again.  A resume job with an inference id but no
 * output location (a run that stopped during the call, see on_invoking) is
 * looked for where its Filename puts it once the endpoint's paths are known,
 * and invoked again (same id, same input) only when SageMaker cannot hold
 * it any more.
 *
 * InvokeEndpointAsync is sent at most once per attempt, and attempted again
 * only after an answer that says the request was refused: an answer lost
 * after the request was sent (timeout, reset, 5xx) may hide an accepted
 * job, so its result is looked for instead of paying for a second run.
 *
 * Callbacks run on pool threads, one at a time (the pool serialises them), so
 * they need no locking of their own; they must not call asd_pool_process().
 * They may call asd_pool_cancel().
 */
#ifndef ASD_POOL_H
#define ASD_POOL_H

#include "asd_export.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "asd_config.h"
#include "asd_detector.h"
#include "asd_errors.h"
#include "asd_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ASD_POOL_LOCATION_MAX 1100 /* "s3://" + bucket + "/" + key (<= 1024) */
#define ASD_POOL_ID_MAX 128

typedef enum asd_pool_job_kind {
  ASD_POOL_JOB_PAYLOAD = 0, /* upload payload, invoke, poll */
  ASD_POOL_JOB_RESUME = 1,  /* poll an earlier invocation again; no upload, no invoke */
  ASD_POOL_JOB_FAILED = 2   /* the caller could not make this tile (e.g. read or encode
                               error): reported failed (ASD_ERR_INPUT, reason) */
} asd_pool_job_kind;

/* What the source fills in for one job.  The pool zeroes it before each call. */
typedef struct asd_pool_job {
  asd_pool_job_kind kind;
  int64_t tile_id; /* the caller's identifier, handed back in every callback */

  /* PAYLOAD: the bytes to upload, owned by the pool from then on.  The pool
   * releases them with payload_free once uploaded (or when the job ends
   * without an upload), so a source hands over its encoder's buffer as it
   * is, no copy: GDAL's VSIGetMemFileBuffer(..., TRUE) buffer with VSIFree.
   * payload_free NULL: malloc'd bytes, released with free(). */
  unsigned char *payload;
  size_t payload_len;
  void (*payload_free)(void *payload);

  /* RESUME: from on_submitted of an earlier run.  input_location is optional
   * (when given, the input object is cleaned up with the job).
   * submitted_wall is the epoch time of the original invocation, or 0 (then
   * max_wait_time counts from now). */
  char inference_id[ASD_POOL_ID_MAX];
  char input_location[ASD_POOL_LOCATION_MAX];
  char output_location[ASD_POOL_LOCATION_MAX];
  char failure_location[ASD_POOL_LOCATION_MAX];
  double submitted_wall;

  /* FAILED: why the tile could not be made. */
  char reason[512];
} asd_pool_job;

/*
 * Returns 1 when *job was filled, 0 at the end of input.  worker is the
 * index of the calling worker thread (0-based, stable per thread), so a
 * caller can keep per-thread state such as its own GDAL dataset handle.
 * Unless source_thread_safe is set, the pool calls the source from one thread
 * at a time.
 */
typedef int (*asd_pool_source_fn)(void *user_data, int worker, asd_pool_job *job);

/*
 * Right before a tile's first InvokeEndpointAsync: the inference id the pool
 * chose for it (and whose Filename names its result), the input, and where
 * the result will appear if the pool can already tell (else ""), so that a
 * run that dies during the call can be resumed without invoking the tile a
 * second time (give them back as a RESUME job).  Called on a pool thread,
 * before the request leaves: recording them there is what makes them
 * survive a crash in the call.
 */
typedef void (*asd_pool_invoking_fn)(void *user_data, int64_t tile_id, const char *inference_id,
                                     const char *input_location, const char *expected_output_location,
                                     const char *expected_failure_location);

/* After a successful invocation: enough to resume the job in a later run. */
typedef void (*asd_pool_submitted_fn)(void *user_data, int64_t tile_id, const char *inference_id,
                                      const char *input_location, const char *output_location,
                                      const char *failure_location);

typedef struct asd_pool_result {
  int64_t tile_id;
  int ok;                          /* 1 processed, 0 failed */
  const char *feature_collection;  /* ok: the output object's text, as the endpoint wrote it and
                                      not parsed (the consumer's asd_features_parse is the one
                                      parse); at most asd_max_result_bytes(), NUL-terminated;
                                      valid during the call */
  size_t feature_collection_len;
  asd_errcode code;                /* failed: the error kind */
  int http_status;                 /* failed: HTTP status of the failing call; 0 no answer,
                                      -1 not an HTTP failure */
  const char *aws_code;            /* failed: AWS error code ("AccessDenied"...) or "" */
  const char *request_id;          /* failed: AWS request id or "" */
  const char *message;             /* failed: the error's own message (asd_error.message) */
  const char *reason;              /* failed: one line (valid during the call), as
                                      asd_error_format() writes it */
  const char *inference_id;        /* "" when never invoked */
  const char *output_location;     /* "" when never invoked */
  const char *failure_location;
  int attempts;                    /* 1 + job-level retries */
  int polls;                       /* polls made for this job */
  double seconds;                  /* from pull to end */
} asd_pool_result;

typedef void (*asd_pool_done_fn)(void *user_data, const asd_pool_result *result);

typedef struct asd_pool_callbacks {
  asd_pool_source_fn source;        /* required */
  asd_pool_invoking_fn on_invoking;   /* optional */
  asd_pool_submitted_fn on_submitted; /* optional */
  asd_pool_done_fn on_done;         /* optional (counts are kept anyway) */
  void *user_data;
  int source_thread_safe;           /* 1: source may be called concurrently */
  /* Optional interrupt counter watched by the pool (e.g. bumped by a SIGINT
   * handler): 1 = stop pulling and drain, >= 2 = stop now. */
  volatile sig_atomic_t *interrupt;
} asd_pool_callbacks;

typedef struct asd_pool_counts {
  long long pulled;     /* jobs the source gave (all kinds) */
  long long processed;  /* ended with a result */
  long long failed;     /* ended failed (cancelled ones included) */
  long long cancelled;  /* failed with ASD_ERR_CANCELLED (in flight when stopped now) */
  long long resumed;    /* RESUME jobs among pulled */
  long long retries;    /* job-level retries */
  long long polls;      /* polls made */
  long long submitted;  /* successful invocations */
  long long handed_over; /* due polls a worker gave back to the others because one of its
                            polls was stuck on the network (see pool.c, POLL_BATCH_HOLD) */
} asd_pool_counts;

typedef enum asd_pool_cancel_mode {
  ASD_POOL_DRAIN = 1, /* stop pulling; jobs in flight finish normally */
  ASD_POOL_STOP_NOW = 2 /* stop pulling; jobs in flight end at once as ASD_ERR_CANCELLED
                           (their inputs are kept: the endpoint may still read them,
                           and on_submitted gave what a later run needs to resume) */
} asd_pool_cancel_mode;

typedef struct asd_pool asd_pool;

/*
 * Creates a pool over a detector (which must outlive it), using the
 * detector's configuration.  metrics may be NULL.  No thread starts before
 * asd_pool_process().  Returns NULL with err set.
 */
ASD_API asd_pool *asd_pool_new(asd_detector *detector, asd_metrics *metrics, asd_error *err);
ASD_API void asd_pool_free(asd_pool *pool);

/*
 * The seed's process_tiles_async: runs until the source is exhausted and
 * every job has ended, or until cancelled.  Every job pulled is reported once
 * through on_done.  Fills *counts (may be NULL); processed + failed = pulled.
 * All threads have been joined when it returns.  Returns 0, or -1 with err
 * set when the pool could not run at all (threads could not start, bad
 * callbacks).  May be called again after it returned.
 */
ASD_API int asd_pool_process(asd_pool *pool, const asd_pool_callbacks *cb, asd_pool_counts *counts,
                     asd_error *err);

/* Thread-safe, from any thread or a callback (not from a signal handler:
 * use the interrupt counter there).  A stronger mode overrides a weaker one. */
ASD_API void asd_pool_cancel(asd_pool *pool, asd_pool_cancel_mode mode);

/* Jobs currently in flight (slots taken). */
ASD_API int asd_pool_in_flight(asd_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* ASD_POOL_H */
