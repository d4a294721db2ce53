/*
 * latency.h: the invoke-to-result estimator behind adaptive polling (internal).
 *
 * One estimator per endpoint (the pool owns one: a pool drives one
 * detector, which talks to one endpoint).  It learns how long this run's
 * invocations take to produce a result and turns that into the age at
 * which each job should be polled next.  Ages are seconds since the job's
 * invocation was accepted; the estimator never reads a clock, so it is
 * deterministic for a given sequence of calls and the tests drive it with
 * made-up ages.  Every function is thread-safe (one mutex per estimator).
 *
 * The configured schedule (polling_interval x multiplier^k, capped at
 * max_polling_interval) rules until the first result: no poll comes later
 * than the fixed schedule's next one.  Once results are known, a job is
 * polled at the estimate, and never more than max_polling_interval after
 * its last poll (or its invocation).
 */
#ifndef ASD_ENGINE_LATENCY_H
#define ASD_ENGINE_LATENCY_H

#include <stdint.h>

#include "asyncdetect/asd_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Results remembered: the estimate follows the most recent ones, so that it
 * tracks an endpoint whose queue grows or drains during the run. */
#define ASD_LATENCY_WINDOW 64

typedef struct asd_latency asd_latency;

/* An estimator bounded by cfg's polling schedule.  NULL on OOM. */
asd_latency *asd_latency_new(const asd_async_config *cfg);
void asd_latency_free(asd_latency *l);

/*
 * A job of this run produced its result (output or failure object): it was
 * not there at age lo (its last unsuccessful poll; 0 if there was none) and
 * was there at age hi.  Returns 1 when the caller should reschedule the
 * jobs waiting for a poll (see below): this was the first result observed,
 * or the one that makes the queue estimate (Little's law, for the jobs
 * invoked before the first result) usable; else 0.
 */
int asd_latency_observe(asd_latency *l, double t_invoked, double lo, double hi);

/* Results observed so far. */
long long asd_latency_count(const asd_latency *l);

/* The p-quantile (0 <= p <= 1) of the remembered results' ages; -1 before
 * the first result. */
double asd_latency_quantile(const asd_latency *l, double p);

/*
 * The age at which to poll next a job identified by id (any non-zero value
 * unique among the jobs in flight, e.g. its address) that is now `age` old
 * and was last polled, without a result, at age `last` (0 when it was never
 * polled).  u in [0, 1) spreads jobs submitted together (the configured
 * polling_jitter before the first result, +/-20 % of a job's first informed
 * poll after it).  The result is >= age; before the first result it is
 * never later than the configured schedule's next poll after age, after it
 * never later than last + max_polling_interval.
 *
 * Once results are known, the job is polled at the remembered median (this
 * first poll spread over +/-20 % of it by u), then at the 90th percentile,
 * then at the largest, and from there backs off by x1.2.  Before the first result, one job (the scout,
 * the first id that asks) probes on a fast geometric schedule while the
 * others wait on the configured schedule (parked): a hundred jobs invoked
 * together learn nothing more from a hundred probes than from one.  When the
 * first result arrives (asd_latency_observe returned 1) or the scout ends
 * without one (asd_latency_job_ended returned 1), the caller recomputes
 * every parked job's next poll, oldest first, so the oldest becomes scout.
 */
double asd_latency_next_age(asd_latency *l, uintptr_t id, double t_invoked, double age, double last,
                            int ahead, double u);

/* The job id ended (any way).  Returns 1 when it was the scout and no result
 * is known yet: the caller should reschedule the parked jobs. */
int asd_latency_job_ended(asd_latency *l, uintptr_t id);

/* The configured schedule's first poll age strictly after age (no jitter). */
double asd_latency_schedule_cap(const asd_async_config *cfg, double age);

#ifdef __cplusplus
}
#endif

#endif
