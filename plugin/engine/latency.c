/*
 * latency.c: learning when results arrive, so that each job is polled
 * around its expected completion instead of on a fixed schedule.
 *
 * The fixed schedule's first poll comes polling_interval (30 s by default)
 * after an invocation, so a pool of max_concurrent_jobs slots can finish at
 * most max_concurrent_jobs / 30 s jobs per second, however fast the endpoint
 * is.  Polling sooner on a fixed schedule buys throughput with polls: a
 * 60-second model polled every 0.5 s costs 120 requests per tile.  The
 * information needed to do better is in the run itself: every result tells
 * how long this endpoint takes right now.
 *
 * What is remembered.  The last ASD_LATENCY_WINDOW results, each as one age
 * (seconds from invocation to result).  A poll only brackets a result: it
 * was absent at the previous poll (age lo) and present at this one (age
 * hi).  The sample is the middle of that bracket, except that a bracket
 * wider than a fifth of hi is narrowed to (0.8 hi, hi]: a job found done at
 * its first poll says little about how early it finished, and taking hi
 * itself would let the estimate drift late and never come back (a poll
 * always finds the jobs that finished before it), while taking the middle
 * of (0, hi] would halve it.  With (0.8 hi, hi] the median settles where
 * half the jobs are done at the first poll, which is where it should be.
 * The window is kept twice, in arrival order (to drop the oldest) and
 * sorted (for quantiles), at O(window) per result.
 *
 * When to poll.  With results known, a job is polled at the remembered
 * median, then at the 90th percentile, then at the largest, and after that
 * backs off by x1.2 from its last poll (finer than the configured
 * multiplier: a job past the largest result is usually just late).  If the
 * distribution is right, that is 1 + 0.5 + 0.1 = 1.6 polls per job on
 * average, and a result is seen at most a tenth of the spread after it
 * appeared for nine jobs in ten.
 *
 * Clumps.  Jobs invoked together (the first burst, or the jobs that replace
 * a batch found done at one poll) share their target ages, so they are found
 * together and replaced together, and the batch comes back a model run
 * later.  Behind an endpoint's queue such batches keep themselves going:
 * the results fall in two groups (jobs that started at once, jobs that
 * waited for an instance), the median lies between them, after every job of
 * the first group is done, and the whole batch is found at one poll, late,
 * while the endpoint's instances idle.  Measured at 60 s (bench/RESULTS.md,
 * session 5): batches of ~50 results every ~90 s, each job found at its
 * first poll, 90.8 % of C/L.  So a job's first poll once results are known is
 * spread over +/-20 % of its target (u); a batch is then found over a fifth
 * of a model run and replaced as spread, and after a few rounds the results
 * come evenly (92.0 % of C/L, same run length).  Later polls are not spread:
 * by then a batch is split.  The spread costs no polls (a poll earlier than
 * the median finds fewer jobs done, one later finds more); on the model it
 * costs a short run's drain up to a point of throughput (the last jobs are
 * found up to a fifth later).  A job whose quantile point passed while it
 * was waiting (a job parked before the first result, see below) is polled
 * at once.  The caller credits a result to the age its poll was planned for
 * rather than the later age a busy machine got to it, or the estimate would
 * learn the machine's lateness as latency and ratchet up.
 *
 * A queue the results do not show yet.  Jobs invoked together at the start
 * of a run, more of them than the endpoint runs at once, finish in waves:
 * the first results describe the first wave only.  For a job invoked
 * before any result was known, Little's law gives a second estimate, the
 * jobs in flight when it was invoked divided by the rate results arrive;
 * when that is well above the remembered median (x1.5), the quantiles are
 * stretched to it.  Only those early jobs: for later ones the results
 * already include the queue, and stretching them would feed the pool's own
 * polling delay back into the rate.  The rate is counted between results
 * (the window's, from its first quartile by arrival to its last), never
 * from the first invocation: until session 6 it was, so the model run
 * before the first result (and any slow start) counted as time without
 * results, the rate came out a fraction of the endpoint's, and the queued
 * jobs were expected several model runs late (on the model, with one
 * early result at a tenth of a 60 s model: 87.7 % of C/L, one seed 73 %;
 * now 93 %, every seed above 90 %).  The result that makes the estimate
 * usable (the ASD_LATENCY_QUEUE_MIN_RESULTS-th) re-times the waiting jobs
 * at once, as the first result does, instead of at their next poll.
 *
 * Before the first result.  Nothing is known, so some job has to probe,
 * starting at 0.1 s and backing off by the configured multiplier.  Jobs invoked
 * together have much the same fate, so only one of them (the scout) probes;
 * the others stay on the configured schedule until the scout's result
 * arrives, when the pool reschedules them with the estimate (most are then
 * polled at once, and found done).  Their waits carry the configured
 * jitter, as on the fixed schedule; once results are known only a job's
 * first poll is spread (see "Clumps").  A scout that ends without a result (a
 * failed upload, a timeout) hands over to the next job the pool asks about.
 *
 * The bound.  Before the first result nothing is known, and the configured
 * schedule rules: parked jobs wait on it, and the scout's probes never go
 * past its next poll.  Once results are known the estimate rules, and the
 * bound is max_polling_interval: no job waits longer than that after its
 * last poll (or its invocation), so a job the estimate gets wrong, or an
 * endpoint that slows down, is still polled at the configured maximum
 * rate, and the window follows the endpoint as new results come in.  The
 * fixed schedule's early points are not kept as a bound then: for a model
 * slower than polling_interval they are polls that cannot find anything.
 * With the defaults (30 s, x1.5) and a 60 s model behind a queue (about
 * 94 s from invocation to result), the points at 30 s and 75 s cost two
 * polls per job; bounding by them is what made a 60 s run cost 4 polls per
 * job in session 3 (bench/RESULTS.md).
 */
#include "engine/latency.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The scout's first probe, seconds after the invocation. */
#define ASD_LATENCY_FIRST_PROBE 0.1
/* The shortest gap between two polls of one job, seconds. */
#define ASD_LATENCY_MIN_STEP 0.001
/* Where a result found at the first poll is taken to have arrived: the
 * bracket (0, hi] is narrowed to (NARROW * hi, hi]. */
#define ASD_LATENCY_NARROW 0.8
#define ASD_LATENCY_OVERDUE 1.2
/* A job's first poll once results are known is spread over (1 +/- this) x
 * its target (see "Clumps"). */
#define ASD_LATENCY_FIRST_SPREAD 0.2
/* Little's law overrides the quantiles only past this ratio (see stretch_locked). */
#define ASD_LATENCY_QUEUE_STRETCH 1.5
/* ... and only once this many results give the rate. */
#define ASD_LATENCY_QUEUE_MIN_RESULTS 16

struct asd_latency {
  pthread_mutex_t mu;
  asd_async_config cfg; /* the schedule that bounds every poll */
  double ring[ASD_LATENCY_WINDOW];   /* arrival order; ring[head] is the oldest once full */
  double at[ASD_LATENCY_WINDOW];     /* when each result was seen (caller's clock) */
  double t_first_result;             /* when the first result was seen */
  double sorted[ASD_LATENCY_WINDOW]; /* the same values, ascending */
  int n, head;
  long long count;
  uintptr_t scout; /* 0: none */
};

asd_latency *asd_latency_new(const asd_async_config *cfg) {
  asd_latency *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  pthread_mutex_init(&l->mu, NULL);
  l->cfg = *cfg;
  return l;
}

void asd_latency_free(asd_latency *l) {
  if (!l) return;
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* Index of the first element of sorted[0..n) that is >= v. */
static int lower_bound(const double *sorted, int n, double v) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (sorted[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Adds v to the window, dropping the oldest value when it is full.
 * Caller holds the lock. */
static void window_add(asd_latency *l, double v, double at) {
  if (l->n == ASD_LATENCY_WINDOW) {
    double old = l->ring[l->head];
    l->at[l->head] = at;
    int i = lower_bound(l->sorted, l->n, old);
    memmove(&l->sorted[i], &l->sorted[i + 1], (size_t)(l->n - i - 1) * sizeof(double));
    l->n--;
    l->ring[l->head] = v;
    l->head = (l->head + 1) % ASD_LATENCY_WINDOW;
  } else {
    l->ring[l->n] = v;
    l->at[l->n] = at;
  }
  int i = lower_bound(l->sorted, l->n, v);
  memmove(&l->sorted[i + 1], &l->sorted[i], (size_t)(l->n - i) * sizeof(double));
  l->sorted[i] = v;
  l->n++;
}

int asd_latency_observe(asd_latency *l, double t_invoked, double lo, double hi) {
  if (!l || !isfinite(lo) || !isfinite(hi) || hi < 0) return 0;
  if (lo < 0) lo = 0;
  if (lo > hi) lo = hi;
  if (lo < ASD_LATENCY_NARROW * hi) lo = ASD_LATENCY_NARROW * hi;
  pthread_mutex_lock(&l->mu);
  window_add(l, 0.5 * (lo + hi), t_invoked + hi);
  const int first = l->count == 0;
  if (first) l->t_first_result = t_invoked + hi;
  l->count++;
  /* The result that makes Little's law usable (see stretch_locked) changes
   * the estimate of every job invoked before the first result: the caller
   * re-times them now rather than at their next poll, which was planned
   * without it. */
  const int retime = first || l->count == ASD_LATENCY_QUEUE_MIN_RESULTS;
  pthread_mutex_unlock(&l->mu);
  return retime;
}

long long asd_latency_count(const asd_latency *l) {
  if (!l) return 0;
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  long long c = l->count;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return c;
}

/* Nearest-rank quantile of the window.  Caller holds the lock; n > 0. */
static double quantile_locked(const asd_latency *l, double p) {
  if (p < 0) p = 0;
  if (p > 1) p = 1;
  int i = (int)ceil(p * l->n) - 1;
  if (i < 0) i = 0;
  if (i >= l->n) i = l->n - 1;
  return l->sorted[i];
}

double asd_latency_quantile(const asd_latency *l, double p) {
  if (!l) return -1;
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  double q = l->n ? quantile_locked(l, p) : -1;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return q;
}

double asd_latency_schedule_cap(const asd_async_config *cfg, double age) {
  double t = 0;
  /* Walk the schedule while its interval still grows (a few dozen steps
   * for any valid configuration), then jump: past that point the interval
   * is constant.  The walk is bounded so that a multiplier barely above 1
   * cannot spin; stopping early only makes the cap earlier, never later. */
  for (int k = 0; k < 10000; k++) {
    double iv = asd_config_poll_interval(cfg, k);
    if (t + iv > age) return t + iv;
    t += iv;
    if (iv >= cfg->max_polling_interval) break;
  }
  double iv = asd_config_poll_interval(cfg, 10000);
  if (iv <= 0) iv = cfg->max_polling_interval > 0 ? cfg->max_polling_interval : 1;
  double steps = floor((age - t) / iv) + 1;
  return t + steps * iv;
}

/* Jobs seen done per second, over the window's results only: from the
 * arrival of its first-quartile result (by arrival order) to its last, the
 * results after the former.  Not from the first invocation: the time
 * before the first result (a model run, a slow start while the first
 * tiles are still encoded and uploaded) holds no results at all, and
 * counting it made the rate a fraction of the endpoint's, so the queued
 * jobs of the first burst were expected several model runs late (and
 * polled that late: the bound is max_polling_interval).  Not from the
 * first result either: one early result (a fast failure, a lucky tile)
 * would open the span long before the others.  Caller holds the lock. */
static double rate_locked(const asd_latency *l) {
  const int k = l->n / 4;
  const double t0 = l->at[(l->head + k) % ASD_LATENCY_WINDOW];
  const double t1 = l->at[(l->head + l->n - 1) % ASD_LATENCY_WINDOW];
  return t1 > t0 ? (l->n - 1 - k) / (t1 - t0) : 0;
}

/* How much later than usual a job invoked behind `ahead` jobs should be
 * expected: by Little's law it waits about ahead / rate; when that is well
 * above the remembered median (a queue built up at the endpoint faster
 * than the results show it: the first burst of a run), the quantiles are
 * stretched to match.  Caller holds the lock; n > 0. */
static double stretch_locked(const asd_latency *l, double t_invoked, int ahead) {
  /* Only for jobs invoked before any result was known: later ones were
   * invoked behind a queue the results already reflect, and stretching
   * them too would feed the pool's own polling delay back into the rate. */
  if (t_invoked >= l->t_first_result) return 1;
  double rate = rate_locked(l), q50 = quantile_locked(l, 0.5);
  if (l->n < ASD_LATENCY_QUEUE_MIN_RESULTS || ahead <= 0 || rate <= 0 || q50 <= 0) return 1;
  double r = ahead / rate / q50;
  return r > ASD_LATENCY_QUEUE_STRETCH ? r : 1;
}

/* The informed schedule: the first of the median, 90th percentile and
 * largest that lies after the last poll, else a backoff from the last poll.
 * Caller holds the lock; n > 0. */
static double informed_next(const asd_latency *l, double t_invoked, double last, int ahead) {
  static const double points[] = {0.5, 0.9, 1.0};
  const double stretch = stretch_locked(l, t_invoked, ahead);
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
    double q = stretch * quantile_locked(l, points[i]);
    /* A point the last poll reached (give or take rounding: the caller
     * computes ages from clock readings) has been checked already. */
    if (q > last + ASD_LATENCY_MIN_STEP) return q;
  }
  double next = last * ASD_LATENCY_OVERDUE;
  return next > last + ASD_LATENCY_MIN_STEP ? next : last + ASD_LATENCY_MIN_STEP;
}

/* The latest a job may be polled next once results are known: the
 * configured max_polling_interval after its last poll (after its
 * invocation if it was never polled). */
static double informed_bound(const asd_async_config *cfg, double last) {
  double gap = cfg->max_polling_interval > 0 ? cfg->max_polling_interval : cfg->polling_interval;
  return last + gap;
}

double asd_latency_next_age(asd_latency *l, uintptr_t id, double t_invoked, double age, double last,
                            int ahead, double u) {
  if (age < 0) age = 0;
  if (last < 0) last = 0;
  /* A schedule point less than MIN_STEP ahead counts as reached: the poll
   * made for it may run a hair early after the caller's clock arithmetic. */
  const double cap = asd_latency_schedule_cap(&l->cfg, age + ASD_LATENCY_MIN_STEP);
  double next, bound = cap;
  pthread_mutex_lock(&l->mu);
  const int informed = l->n > 0;
  if (informed) {
    next = informed_next(l, t_invoked, last, ahead);
    bound = informed_bound(&l->cfg, last);
  } else {
    if (l->scout == 0) l->scout = id;
    if (l->scout == id) {
      next = last > 0 ? last * l->cfg.exponential_backoff_multiplier : ASD_LATENCY_FIRST_PROBE;
      if (next < last + ASD_LATENCY_MIN_STEP) next = last + ASD_LATENCY_MIN_STEP;
    } else {
      next = cap; /* parked until the scout reports */
    }
  }
  pthread_mutex_unlock(&l->mu);
  /* A job's first poll once results are known is spread around its target,
   * so that jobs invoked together are not all found, and replaced, at one
   * instant (see "Clumps" above). */
  if (informed && last <= 0) next *= 1.0 - ASD_LATENCY_FIRST_SPREAD + 2.0 * ASD_LATENCY_FIRST_SPREAD * u;
  /* Before the first result, jitter the wait as the fixed schedule does, so
   * that parked jobs invoked together do not poll together. */
  if (!informed && next > age && next < cap) {
    double j = l->cfg.polling_jitter;
    next = age + (next - age) * (1.0 - j + 2.0 * j * u);
  }
  if (next > bound) next = bound;
  return next < age ? age : next;
}

int asd_latency_job_ended(asd_latency *l, uintptr_t id) {
  if (!l) return 0;
  pthread_mutex_lock(&l->mu);
  int again = 0;
  if (l->scout == id && id != 0) {
    l->scout = 0;
    again = l->n == 0;
  }
  pthread_mutex_unlock(&l->mu);
  return again;
}
