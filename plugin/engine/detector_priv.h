/*
 * detector_priv.h: the steps of one job, shared by the worker pool's two
 * modes (and through the pool by find_features()) (internal).
 *
 * A job goes upload -> invoke -> poll... -> finish.  Each step is a function
 * of the detector and an asd_det_job, so the simple-mode workers and the
 * optimised pool run exactly the same code and differ only in who waits, and
 * where; the synchronous find_features() is one job through a pool.
 */
#ifndef ASD_ENGINE_DETECTOR_PRIV_H
#define ASD_ENGINE_DETECTOR_PRIV_H

#include <stdint.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_detector.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_det_job {
  /* Input object (uploaded by us, or named by a resume job). */
  char input_bucket[64];
  char *input_key;
  uint64_t res_input;   /* registry id, 0 when not registered */
  int uploaded;

  /* Invocation. */
  int invoked;
  char inference_id[128];
  char filename[40];       /* X-Amzn-SageMaker-Filename sent, "" = none */
  char *output_location;
  char *failure_location;  /* may be NULL */
  char out_bucket[64], fail_bucket[64];
  char *out_key, *fail_key;
  uint64_t res_job;        /* inference_job entry */
  uint64_t res_output;     /* output or failure object once seen */

  /* Timing. */
  double t_start;          /* monotonic: job creation */
  double t_invoked;        /* monotonic: invocation accepted */
  double deadline;         /* monotonic: t_invoked + max_wait_time */
  int polls;
  int poll_errors;         /* consecutive transient poll errors */
} asd_det_job;

struct asd_invoke_paths;
/* Seeds p (invoke.h) from the endpoint configuration's output paths, when
   asd_detector_set_output_config() gave them. */
void asd_det_seed_paths(asd_detector *d, struct asd_invoke_paths *p);

void asd_det_job_init(asd_det_job *job);
/* Frees the strings (not the registry entries: see finish / abandon). */
void asd_det_job_clear(asd_det_job *job);

/* PUT payload under input_prefix.  Registers the input object ACTIVE. */
int asd_det_upload(asd_detector *d, asd_det_job *job, const void *payload, size_t len,
                   asd_metrics *m, asd_error *err);
/* InvokeEndpointAsync on the uploaded input; sets the locations and the deadline. */
int asd_det_invoke(asd_detector *d, asd_det_job *job, asd_metrics *m, asd_error *err);
/*
 * The answer of the job's invocation was lost (asd_error_invoke_maybe_accepted):
 * marks it invoked from now (its input is the endpoint's until it ends) and,
 * when output is given, sets the predicted locations to poll.  May be called
 * again with the locations once they become predictable.
 */
int asd_det_lost(asd_detector *d, asd_det_job *job, const char *output, const char *failure,
                 asd_error *err);
/* The input of an earlier run's job, already in S3 (resume): registered, not uploaded again. */
int asd_det_resume_input(asd_detector *d, asd_det_job *job, const char *input_location, asd_error *err);
/* Fills a job from an earlier invocation (resume).  submitted_wall 0 = now. */
int asd_det_resume(asd_detector *d, asd_det_job *job, const char *inference_id,
                   const char *input_location, const char *output_location,
                   const char *failure_location, double submitted_wall, asd_error *err);

/*
 * One poll: GET the output location, and when absent the failure location.
 * Returns 1 with the output bytes appended to *result, 0 when neither exists
 * yet, -1 with err set: ASD_ERR_INFERENCE (failure object found, its content
 * in the message), ASD_ERR_S3 (a transient error repeated more than
 * max_retries times in a row, or a permanent one).  A transient error below
 * that count returns 0 (poll again later).
 */
int asd_det_poll(asd_detector *d, asd_det_job *job, asd_buf *result, asd_metrics *m,
                 asd_error *err);

/* Checks that text is a GeoJSON FeatureCollection; returns the parsed object
 * (if want_object) or a non-NULL dummy, NULL with ASD_ERR_BAD_RESULT. */
int asd_det_check_result(const unsigned char *text, size_t len, struct json_object **out,
                         asd_error *err);

/* The job is over (result consumed, or failed for good): the policy applies
 * to its input and to the output/failure object. */
void asd_det_finish(asd_detector *d, asd_det_job *job);
/* The job is abandoned while the endpoint may still read its input (stop-now,
 * timeout): its objects are kept (counted as retained), nothing is deleted. */
void asd_det_abandon(asd_detector *d, asd_det_job *job);

/* How long after its invocation a job is waited for: max_wait_time, but
 * never past RequestTTLSeconds + InvocationTimeoutSeconds (+ a margin). */
double asd_det_wait_bound(const asd_async_config *cfg);

/* The one-line reason of a job that timed out; names the missing
 * S3FailurePath when the endpoint gave no FailureLocation. */
void asd_det_timeout_message(const asd_async_config *cfg, const asd_det_job *job, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
