/*
 * bound.h: which resource bounded a run, from what the run measured (internal).
 *
 * A run moves each tile through four resources in turn: the encoder threads
 * (CPU), the submission workers' uploads (the uplink), the endpoint (its
 * instances, behind max_concurrent_jobs slots) and the polls that notice a
 * result.  The one that was busy all the time while the others waited
 * bounded the throughput; asd_bound_classify names it, with the figures
 * that show it, so that a user knows what to change (more CPU or a cheaper
 * -tile-format, a smaller tile encoding with -tco, a bigger endpoint, or
 * polling).  Pure computation: the caller gathers the figures.
 */
#ifndef ASD_ENGINE_BOUND_H
#define ASD_ENGINE_BOUND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_bound {
  ASD_BOUND_UNKNOWN = 0, /* too little was measured (no tile submitted) */
  ASD_BOUND_ENCODING,    /* encoder threads busy, the rest waiting for tiles */
  ASD_BOUND_UPLINK,      /* submission workers busy uploading */
  ASD_BOUND_ENDPOINT,    /* every slot in flight, jobs polled while still running */
  ASD_BOUND_POLLING,     /* every slot in flight, results found at the first poll */
  ASD_BOUND_LATENCY      /* nothing saturated: too few tiles to fill the slots */
} asd_bound;

typedef struct asd_bound_input {
  double elapsed;            /* seconds the tiles were flowing */
  long long tiles;           /* tiles submitted */
  int encoder_threads;
  double encode_seconds;     /* sum over tiles of the wall time spent encoding */
  int submission_workers;
  double upload_seconds;     /* sum over tiles of the S3 upload time */
  double upload_busy_seconds; /* time at least one upload was in progress (union of their spans) */
  double upload_span_seconds; /* from the first upload's start to the last one's end */
  long long bytes_uploaded;
  int max_concurrent_jobs;
  double slot_wait_seconds;  /* sum over tiles of the wait for a free slot */
  double polls_per_job;      /* mean polls per invoked job */
} asd_bound_input;

/* "encoding CPU", "uplink", "endpoint capacity", "polling", "endpoint latency", "unknown". */
const char *asd_bound_name(asd_bound b);

/* Names the bounding resource and writes one line of evidence into why
 * (e.g. "submission workers uploading 97 % of the time, 6.1 MB/s"). */
asd_bound asd_bound_classify(const asd_bound_input *in, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
