/*
 * asd_metrics.h: AsyncMetricsTracker, the engine's counters and timings.
 *
 * Every metric is a named series of samples summarised as count, sum, min,
 * max, mean, p50 and p95.  A counter is a metric whose samples are
 * increments (sum = total); a timing is a metric whose samples are durations
 * in seconds.  The tracker is thread-safe and its memory does not grow with
 * the number of samples: percentiles come from a bounded uniform reservoir
 * (exact up to ASD_METRICS_RESERVOIR samples per metric, sampled beyond).
 *
 * Names recorded by the engine (the seed's names first):
 *   S3UploadDuration, S3DownloadDuration      seconds per PUT / per result GET
 *                       (uploads are recorded as spans: asd_metrics_get_span
 *                       gives the time at least one was in progress)
 *   QueueTime           seconds a tile waited for a free job slot
 *   TotalAsyncDuration  seconds from upload start to result (per job)
 *   PollingAttempts     polls per finished job (sum = total polls)
 *   TileSubmissions     1 per successful InvokeEndpointAsync
 *   JobCompletions      1 per job ended with a result
 *   JobFailures         1 per job ended failed
 *   AsyncInferenceTimeouts  1 per job that exceeded max_wait_time
 *   Retries             1 per job-level retry (re-upload / re-invoke)
 *   InvokeDuration      seconds per InvokeEndpointAsync call
 *   PollDuration        seconds per poll (both locations)
 *   InferenceDuration   seconds from invocation to the poll that saw the result
 *   CleanupDeleted / CleanupFailures  objects deleted / deletions that failed
 */
#ifndef ASD_METRICS_H
#define ASD_METRICS_H

#include "asd_export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASD_METRICS_RESERVOIR 8192

typedef struct asd_metrics asd_metrics;

typedef struct asd_metric_summary {
  long long count;
  double sum, min, max, mean, p50, p95;
} asd_metric_summary;

ASD_API asd_metrics *asd_metrics_new(void);
ASD_API void asd_metrics_free(asd_metrics *m);

/* Adds one sample (a duration in seconds, or any value).  NULL m: no-op. */
ASD_API void asd_metrics_record(asd_metrics *m, const char *name, double value);
/* Adds an increment to a counter (a sample of value n).  NULL m: no-op. */
ASD_API void asd_metrics_incr(asd_metrics *m, const char *name, double n);

/* The union of the spans recorded under one name. */
typedef struct asd_metric_span {
  double covered;     /* seconds at least one span was in progress */
  double first, last; /* earliest start and latest end (the clock passed in) */
} asd_metric_span;

/* Records a timing as a span, start and end on one clock (asd_time_monotonic):
 * the sample is end - start, and the union of the spans is kept as well.
 * NULL m: no-op. */
ASD_API void asd_metrics_record_span(asd_metrics *m, const char *name, double t_start, double t_end);
/* Fills *out with the union of the spans recorded under name.  Returns 0, or
 * -1 when no span was recorded under it. */
ASD_API int asd_metrics_get_span(asd_metrics *m, const char *name, asd_metric_span *out);

/* Fills *out for a metric.  Returns 0, or -1 when nothing was recorded under name. */
ASD_API int asd_metrics_get(asd_metrics *m, const char *name, asd_metric_summary *out);
/* Sum of a metric, 0 when never recorded (handy for counters). */
ASD_API double asd_metrics_sum(asd_metrics *m, const char *name);

/* Forgets every sample. */
ASD_API void asd_metrics_reset(asd_metrics *m);

/*
 * {"NAME":{"count":n,"sum":x,"min":x,"max":x,"mean":x,"p50":x,"p95":x},...}
 * sorted by name; malloc'd text (free()), NULL on OOM.
 */
ASD_API char *asd_metrics_to_json(asd_metrics *m);

#ifdef __cplusplus
}
#endif

#endif /* ASD_METRICS_H */
