/*
 * pool.c: AsyncTileWorkerPool, many jobs through one asynchronous endpoint.
 *
 * The seed's pool had submission workers and polling workers, but each
 * polling worker slept in a loop per job, failed jobs vanished, and a job
 * whose worker hit an error was lost.  This pool keeps the seed's shape and
 * fixes its accounting:
 *
 *  - Submission workers pull a job from the caller's source, take one of the
 *    max_concurrent_jobs slots (waiting at most job_queue_timeout), upload
 *    and invoke, then push the job on the timer heap with its first poll
 *    time.  The slot bounds memory and the load put on the endpoint: a
 *    producer that is faster than the endpoint simply blocks.
 *
 *  - Polling workers share ONE timer heap (poller.c) keyed on next poll
 *    time.  A worker sleeps on a condition variable until the earliest poll
 *    is due, pops it, polls outside the lock, and either ends the job or
 *    pushes it back with the next backoff delay.  The cost is O(log n) per
 *    poll and nothing at all between polls, whatever the number in flight.
 *
 *  - Every job pulled from the source ends exactly once through report():
 *    processed with its FeatureCollection, or failed with an error code and
 *    a one-line reason.  There is no other exit, and the counts are updated
 *    in the same place, so processed + failed = pulled by construction.
 *
 *  - Cancellation has two strengths.  DRAIN stops pulling and lets the jobs
 *    in flight finish.  STOP_NOW also stops polling: the jobs in flight end
 *    as ASD_ERR_CANCELLED, their inputs kept (the endpoint may still read
 *    them), and the caller already received from on_submitted everything it
 *    needs to resume them in a later run.
 *
 *  - A cleaner thread applies the cleanup policy while the run goes on:
 *    immediate deletions are batched every few hundred milliseconds into
 *    DeleteObjects calls, delayed ones when they fall due.
 *
 * Simple mode (enable_worker_optimization = false) runs submission_workers +
 * polling_workers identical threads that each take a job, submit it and
 * sleep on the same backoff schedule until it ends: the baseline that the
 * benchmark compares with, sharing every step with the optimised mode.
 *
 * Callbacks are serialised by one mutex so the caller needs no locking; they
 * are never called with the pool's main mutex held, so a callback may call
 * asd_pool_cancel() or asd_pool_in_flight().
 */
#include "asyncdetect/asd_pool.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <json-c/json.h>

#include "asyncdetect/asd_s3.h"
#include "engine/detector_priv.h"
#include "engine/invoke.h"
#include "engine/latency.h"
#include "engine/poller.h"

typedef struct pjob {
  asd_det_job dj;
  asd_pool_job_kind kind;
  int64_t tile_id;
  unsigned char *payload;
  size_t payload_len;
  void (*payload_free)(void *); /* the payload's owner's release function (NULL: free) */
  int attempts;      /* submission attempts made */
  int poll_attempt;  /* index into the backoff schedule */
  int has_slot;
  double t_pull;
  double last_age; /* age of the last poll that found no result (adaptive polling) */
  double due_age;  /* age the next poll is planned for */
  int ahead;       /* jobs in flight when this one took its slot, itself included */
  int lost;        /* the last invocation's answer was lost: it may have been accepted */
  int announced;   /* on_invoking was called */
  asd_error lost_err; /* what was lost, for the reason should no result ever appear */
} pjob;

struct asd_pool {
  asd_detector *d;
  asd_async_config cfg;
  asd_metrics *m;

  pthread_mutex_t mu;
  pthread_cond_t slot_cv;  /* a slot was freed, or cancellation */
  pthread_cond_t heap_cv;  /* the heap changed, a worker ended, or cancellation */
  pthread_cond_t clean_cv; /* the cleaner should look again / stop */
  pthread_mutex_t src_mu;  /* serialises the source unless it is thread-safe */
  pthread_mutex_t cb_mu;   /* serialises on_submitted / on_done */

  asd_timer_heap heap;
  asd_invoke_paths paths; /* where the endpoint writes, learnt from answered invocations */
  asd_latency *lat; /* adaptive polling (latency.c); NULL on the fixed schedule */
  int in_flight;
  double last_progress; /* monotonic: a slot freed, a job uploaded/invoked, a poll answered */
  int source_done;
  int submitters_alive;
  int pollers_alive;
  int cancel_mode; /* 0, ASD_POOL_DRAIN, ASD_POOL_STOP_NOW */
  int running;
  int cleaner_stop;

  const asd_pool_callbacks *cb;
  asd_pool_counts counts;
};

/* ------------------------------------------------------------------ utils */

static void abs_deadline(double seconds_from_now, struct timespec *ts) {
  /* Condition variables use CLOCK_MONOTONIC (set at init) so that a wall
   * clock jump neither fires nor delays a poll. */
  clock_gettime(CLOCK_MONOTONIC, ts);
  if (seconds_from_now < 0) seconds_from_now = 0;
  if (seconds_from_now > 3600) seconds_from_now = 3600;
  double whole = floor(seconds_from_now);
  ts->tv_sec += (time_t)whole;
  ts->tv_nsec += (long)((seconds_from_now - whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void cond_init_monotonic(pthread_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}

/* Counters that only ever grow are bumped atomically rather than under the
 * pool's lock, which the workers otherwise contend for on every job.  They
 * are read once all workers have been joined. */
static void count(long long *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }

/* Reads the caller's interrupt counter into cancel_mode.  Caller holds mu. */
static void check_interrupt_locked(asd_pool *p) {
  if (!p->cb || !p->cb->interrupt) return;
  int v = (int)*p->cb->interrupt;
  int mode = v >= 2 ? ASD_POOL_STOP_NOW : v == 1 ? ASD_POOL_DRAIN : 0;
  if (mode > p->cancel_mode) {
    __atomic_store_n(&p->cancel_mode, mode, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->slot_cv);
    pthread_cond_broadcast(&p->heap_cv);
  }
}

static int stop_now(asd_pool *p) {
  /* Asked before every request: without a cancellation in sight (the usual
   * case) it answers without taking the pool's lock.  cancel_mode is only
   * ever raised, always with an atomic store. */
  int interrupt = p->cb && p->cb->interrupt ? (int)*p->cb->interrupt : 0;
  if (interrupt == 0 && __atomic_load_n(&p->cancel_mode, __ATOMIC_ACQUIRE) == 0) return 0;
  pthread_mutex_lock(&p->mu);
  check_interrupt_locked(p);
  int s = p->cancel_mode >= ASD_POOL_STOP_NOW;
  pthread_mutex_unlock(&p->mu);
  return s;
}

/* Sleeps up to `until` (monotonic), waking early on STOP_NOW.  Returns 1 if stopped. */
static int pool_sleep_until(asd_pool *p, double until) {
  pthread_mutex_lock(&p->mu);
  for (;;) {
    check_interrupt_locked(p);
    if (p->cancel_mode >= ASD_POOL_STOP_NOW) break;
    double left = until - asd_time_monotonic();
    if (left <= 0) break;
    struct timespec ts;
    abs_deadline(left < 0.1 ? left : 0.1, &ts);
    pthread_cond_timedwait(&p->heap_cv, &p->mu, &ts);
  }
  int stopped = p->cancel_mode >= ASD_POOL_STOP_NOW;
  pthread_mutex_unlock(&p->mu);
  return stopped;
}

/* ---------------------------------------------------------------- reports */

static pjob *pjob_new(void) {
  pjob *j = calloc(1, sizeof *j);
  if (j) asd_det_job_init(&j->dj);
  return j;
}

/* Releases a payload the way its source allocated it (asd_pool_job). */
static void payload_release(unsigned char *payload, void (*release)(void *)) {
  if (!payload) return;
  if (release)
    release(payload);
  else
    free(payload);
}

static void pjob_free(pjob *j) {
  if (!j) return;
  payload_release(j->payload, j->payload_free);
  asd_det_job_clear(&j->dj);
  free(j);
}

static double next_poll(asd_pool *p, pjob *j, double from);
static void lost_answer(asd_pool *p, pjob *j, const asd_error *e);

static double parked_due(void *ptr, void *ctx) {
  asd_pool *p = ctx;
  return next_poll(p, ptr, asd_time_monotonic());
}

/*
 * Adaptive polling parks jobs until the first result is known; when it is
 * (or the job probing for it ended without one), every job on the heap gets
 * its next poll recomputed, the oldest first so that it probes next.
 */
static void reschedule_parked(asd_pool *p) {
  pthread_mutex_lock(&p->mu);
  const void *oldest = NULL;
  double t_oldest = 0;
  for (size_t i = 0; i < p->heap.n; i++) {
    const pjob *j = p->heap.items[i].ptr;
    if (!oldest || j->dj.t_invoked < t_oldest) {
      oldest = j;
      t_oldest = j->dj.t_invoked;
    }
  }
  asd_timer_heap_reschedule(&p->heap, parked_due, p, oldest);
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
}

/*
 * The only way a job ends.  ok jobs carry the result text; failed ones a code
 * and a reason.  Resources follow the policy (finish) unless the job was
 * abandoned while the endpoint may still read its input (abandon).
 */
static void report(asd_pool *p, pjob *j, int ok, const unsigned char *text, size_t len,
                   const asd_error *e, int abandon) {
  double now = asd_time_monotonic();
  char reason[sizeof e->message + 256];
  reason[0] = 0;
  if (!ok && e) asd_error_format(e, reason, sizeof reason);
  asd_pool_result r;
  memset(&r, 0, sizeof r);
  r.tile_id = j->tile_id;
  r.ok = ok;
  r.feature_collection = ok ? (const char *)text : NULL;
  r.feature_collection_len = ok ? len : 0;
  r.code = ok ? ASD_OK : (e ? e->code : ASD_ERR_RUNTIME);
  r.http_status = !ok && e ? e->http_status : 0;
  r.aws_code = !ok && e ? e->aws_code : "";
  r.request_id = !ok && e ? e->request_id : "";
  r.message = !ok && e ? e->message : "";
  r.reason = ok ? "" : reason;
  r.inference_id = j->dj.inference_id;
  r.output_location = j->dj.output_location ? j->dj.output_location : "";
  r.failure_location = j->dj.failure_location ? j->dj.failure_location : "";
  r.attempts = j->attempts ? j->attempts : 1;
  r.polls = j->dj.polls;
  r.seconds = now - j->t_pull;

  if (p->cb->on_done) {
    pthread_mutex_lock(&p->cb_mu);
    p->cb->on_done(p->cb->user_data, &r);
    pthread_mutex_unlock(&p->cb_mu);
  }
  /* The output is "consumed" once on_done has returned: only now may the
   * policy delete it, together with the input. */
  if (abandon)
    asd_det_abandon(p->d, &j->dj);
  else
    asd_det_finish(p->d, &j->dj);
  if (asd_latency_job_ended(p->lat, (uintptr_t)j)) reschedule_parked(p);

  asd_metrics_record(p->m, "TotalAsyncDuration", r.seconds);
  if (j->dj.invoked) asd_metrics_record(p->m, "PollingAttempts", j->dj.polls);
  asd_metrics_incr(p->m, ok ? "JobCompletions" : "JobFailures", 1);
  if (!ok && r.code == ASD_ERR_TIMEOUT) asd_metrics_incr(p->m, "AsyncInferenceTimeouts", 1);

  pthread_mutex_lock(&p->mu);
  if (ok)
    p->counts.processed++;
  else
    p->counts.failed++;
  if (!ok && r.code == ASD_ERR_CANCELLED) p->counts.cancelled++;
  p->counts.polls += j->dj.polls;
  int freed = j->has_slot, idle = 0;
  if (freed) {
    p->last_progress = asd_time_monotonic();
    p->in_flight--;
    idle = p->in_flight == 0;
  }
  pthread_mutex_unlock(&p->mu);
  /* Signalled after unlocking: a waiter woken while the lock is still held
   * would only block on it again, one more context switch per job. */
  if (freed) pthread_cond_signal(&p->slot_cv);
  if (idle) pthread_cond_broadcast(&p->heap_cv);
  pjob_free(j);
}

static void report_error(asd_pool *p, pjob *j, asd_errcode code, int abandon, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void report_error(asd_pool *p, pjob *j, asd_errcode code, int abandon, const char *fmt, ...) {
  asd_error e;
  asd_error_clear(&e);
  e.http_status = -1; /* the pool's own verdict, not an HTTP answer */
  char msg[sizeof e.message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  asd_error_set(&e, code, "%s", msg);
  report(p, j, 0, NULL, 0, &e, abandon);
}

static void report_cancelled(asd_pool *p, pjob *j) {
  if (j->dj.invoked)
    report_error(p, j, ASD_ERR_CANCELLED, 1,
                 "stopped while in flight; inference %s may still complete at %s (resumable)",
                 j->dj.inference_id, j->dj.output_location ? j->dj.output_location : "?");
  else
    report_error(p, j, ASD_ERR_CANCELLED, 1, "stopped before the tile was submitted");
}

/* ------------------------------------------------------------- submission */

/*
 * A resume job for an invocation whose answer never came (the earlier run
 * stopped during the call): it is handled as a lost answer, looked for at
 * the location its Filename predicts.  Its input must be known, so that it
 * can be invoked again once SageMaker cannot hold it.
 */
static int resume_lost(asd_pool *p, pjob *j, const asd_pool_job *in, asd_error *e) {
  snprintf(j->dj.inference_id, sizeof j->dj.inference_id, "%s", in->inference_id);
  if (asd_invoke_filename_of(in->inference_id, j->dj.filename) != 0 || !in->input_location[0]) {
    e->http_status = -1;
    return asd_error_set(e, ASD_ERR_CONFIG,
                         "inference %s was being invoked when the earlier run stopped, and neither where its "
                         "result goes nor its input is known: run again without -resume for this tile",
                         in->inference_id);
  }
  if (asd_det_resume_input(p->d, &j->dj, in->input_location, e) != 0) return -1;
  asd_error lost;
  asd_error_clear(&lost);
  asd_error_set(&lost, ASD_ERR_ENDPOINT, "the earlier run stopped while invoking it");
  j->announced = 1; /* the journal has it already */
  lost_answer(p, j, &lost);
  return 0;
}

/*
 * Pulls one job into *out.  Returns 0 at the end of input or when stopping,
 * 1 otherwise; *out is NULL when the job was already reported (a FAILED job
 * from the source, a bad resume record).
 */
static int pull(asd_pool *p, int worker, pjob **out) {
  *out = NULL;
  int locked = !p->cb->source_thread_safe;
  if (locked) pthread_mutex_lock(&p->src_mu);
  /* Checked under the source lock: another worker may have seen the end. */
  pthread_mutex_lock(&p->mu);
  check_interrupt_locked(p);
  int done = p->source_done || p->cancel_mode != 0;
  pthread_mutex_unlock(&p->mu);
  asd_pool_job in;
  memset(&in, 0, sizeof in);
  int more = done ? 0 : p->cb->source(p->cb->user_data, worker, &in);
  if (locked) pthread_mutex_unlock(&p->src_mu);
  if (done) return 0;
  if (more <= 0) {
    payload_release(in.payload, in.payload_free);
    pthread_mutex_lock(&p->mu);
    p->source_done = 1;
    pthread_cond_broadcast(&p->heap_cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  count(&p->counts.pulled);
  if (in.kind == ASD_POOL_JOB_RESUME) count(&p->counts.resumed);

  pjob *j = pjob_new();
  if (!j) {
    /* Out of memory: the tile is still accounted for. */
    payload_release(in.payload, in.payload_free);
    asd_pool_result r;
    memset(&r, 0, sizeof r);
    r.tile_id = in.tile_id;
    r.code = ASD_ERR_RUNTIME;
    r.http_status = -1;
    r.reason = "out of memory";
    r.aws_code = r.request_id = r.inference_id = r.output_location = r.failure_location = "";
    r.message = "out of memory";
    if (p->cb->on_done) {
      pthread_mutex_lock(&p->cb_mu);
      p->cb->on_done(p->cb->user_data, &r);
      pthread_mutex_unlock(&p->cb_mu);
    }
    pthread_mutex_lock(&p->mu);
    p->counts.failed++;
    pthread_mutex_unlock(&p->mu);
    return 1;
  }
  j->kind = in.kind;
  j->tile_id = in.tile_id;
  j->t_pull = asd_time_monotonic();
  if (in.kind == ASD_POOL_JOB_PAYLOAD) {
    j->payload = in.payload;
    j->payload_len = in.payload_len;
    j->payload_free = in.payload_free;
    in.payload = NULL;
  }
  payload_release(in.payload, in.payload_free);
  if (in.kind == ASD_POOL_JOB_FAILED) {
    in.reason[sizeof in.reason - 1] = 0;
    report_error(p, j, ASD_ERR_INPUT, 0, "%s", in.reason[0] ? in.reason : "no reason given");
    return 1;
  }
  if (in.kind == ASD_POOL_JOB_RESUME) {
    in.inference_id[sizeof in.inference_id - 1] = 0;
    in.input_location[sizeof in.input_location - 1] = 0;
    in.output_location[sizeof in.output_location - 1] = 0;
    in.failure_location[sizeof in.failure_location - 1] = 0;
    asd_error e;
    asd_error_clear(&e);
    if (!in.output_location[0] && in.inference_id[0]) {
      if (resume_lost(p, j, &in, &e) != 0) {
        report(p, j, 0, NULL, 0, &e, 1);
        return 1;
      }
    } else if (asd_det_resume(p->d, &j->dj, in.inference_id, in.input_location, in.output_location,
                              in.failure_location, in.submitted_wall, &e) != 0) {
      /* Not invoked by us in this run: nothing of it may be deleted. */
      report(p, j, 0, NULL, 0, &e, 1);
      return 1;
    }
  } else if (in.kind != ASD_POOL_JOB_PAYLOAD) {
    report_error(p, j, ASD_ERR_CONFIG, 0, "source returned an unknown job kind %d", (int)in.kind);
    return 1;
  }
  *out = j;
  return 1;
}

static void note_progress(asd_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->last_progress = asd_time_monotonic();
  pthread_mutex_unlock(&p->mu);
}

/*
 * How long nothing may happen before a waiting tile gives up.  Progress is
 * seen when a slot is freed, a job is uploaded/invoked or a poll is
 * answered; polls of jobs in flight can be max_polling_interval (+ jitter)
 * apart, so a shorter stall limit would mistake a slow, healthy endpoint
 * for a stalled one.
 */
static double stall_limit(const asd_async_config *cfg) {
  double poll_gap = cfg->max_polling_interval * (1.0 + cfg->polling_jitter) + 1.0;
  return cfg->job_queue_timeout > poll_gap ? cfg->job_queue_timeout : poll_gap;
}

/*
 * Takes a slot for j.  Backpressure never fails a tile: it waits as long as
 * the jobs in flight are alive (a slow endpoint, a cold start, a backlog),
 * and gives up only on a stall, when nothing progressed for stall_limit().
 * Returns 0, or -1 after reporting the job (stall or stop-now).
 */
static int take_slot(asd_pool *p, pjob *j) {
  double t0 = asd_time_monotonic();
  double stall = stall_limit(&p->cfg), quiet = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    check_interrupt_locked(p);
    if (p->cancel_mode >= ASD_POOL_STOP_NOW) break;
    if (p->in_flight < p->cfg.max_concurrent_jobs) break;
    double since = p->last_progress > t0 ? p->last_progress : t0;
    quiet = asd_time_monotonic() - since;
    double left = stall - quiet;
    if (left <= 0) break;
    struct timespec ts;
    abs_deadline(left < 0.1 ? left : 0.1, &ts);
    pthread_cond_timedwait(&p->slot_cv, &p->mu, &ts);
  }
  int got = p->cancel_mode < ASD_POOL_STOP_NOW && p->in_flight < p->cfg.max_concurrent_jobs;
  if (got) {
    p->in_flight++;
    j->has_slot = 1;
    j->ahead = p->in_flight;
  }
  int stopped = p->cancel_mode >= ASD_POOL_STOP_NOW;
  pthread_mutex_unlock(&p->mu);
  asd_metrics_record(p->m, "QueueTime", asd_time_monotonic() - t0);
  if (got) return 0;
  if (stopped) {
    report_cancelled(p, j);
  } else {
    report_error(p, j, ASD_ERR_QUEUE_TIMEOUT, j->dj.invoked,
                 "no free job slot: the %d jobs in flight made no progress (no slot freed, no upload, "
                 "invocation or poll answered) for %.0f s (job_queue_timeout %g s): the endpoint or S3 "
                 "looks stalled",
                 p->cfg.max_concurrent_jobs, quiet, p->cfg.job_queue_timeout);
  }
  return -1;
}

/* Backoff between job-level retries: the library's one policy
   (asd_backoff_delay: capped exponential, full jitter) from a base of the
   polling interval, at most 0.5 s, capped at 30 s.  The HTTP layer has
   already retried each request; this spaces out whole steps. */
static double retry_delay(const asd_async_config *cfg, int attempt) {
  double base = cfg->polling_interval < 0.5 ? cfg->polling_interval : 0.5;
  return asd_backoff_delay(base, 30, attempt, asd_random_uniform());
}

/* Sets the predicted locations of a job whose answer was lost, once the
 * endpoint's paths are known.  Returns 1 when it has them. */
static int expect_locations(asd_pool *p, pjob *j) {
  if (j->dj.output_location) return 1;
  char *out = NULL, *fail = NULL;
  int known = asd_invoke_paths_predict(&p->paths, j->dj.filename, &out, &fail);
  asd_error e;
  asd_error_clear(&e);
  if (known && asd_det_lost(p->d, &j->dj, out, fail, &e) != 0) known = 0;
  free(out);
  free(fail);
  return known;
}

/*
 * The answer of j's invocation was lost after the request was sent: SageMaker
 * may have accepted it, and invoking again would run (and bill) the model
 * twice.  The job is polled instead, at the location its Filename makes
 * predictable, like any accepted job; poll_once() decides what happens if
 * nothing ever appears there.
 */
static void lost_answer(asd_pool *p, pjob *j, const asd_error *e) {
  j->lost = 1;
  j->lost_err = *e;
  asd_error ignored;
  asd_error_clear(&ignored);
  asd_det_lost(p->d, &j->dj, NULL, NULL, &ignored);
  expect_locations(p, j);
  asd_metrics_incr(p->m, "LostInvocationAnswers", 1);
  CPLDebug("ASD_POOL", "tile %lld: answer of inference %s lost (%s); looking for its result instead of invoking again",
           (long long)j->tile_id, j->dj.inference_id, e->message);
  note_progress(p);
}

/* Tells the caller the id, the input and where the result is expected,
 * before the first call leaves (asd_pool_invoking_fn). */
static void announce_invoking(asd_pool *p, pjob *j) {
  j->announced = 1;
  if (!p->cb->on_invoking) return;
  char *out = NULL, *fail = NULL;
  asd_invoke_paths_predict(&p->paths, j->dj.filename, &out, &fail);
  char *input = asd_s3_uri_format(j->dj.input_bucket, j->dj.input_key);
  pthread_mutex_lock(&p->cb_mu);
  p->cb->on_invoking(p->cb->user_data, j->tile_id, j->dj.inference_id, input ? input : "", out ? out : "",
                     fail ? fail : "");
  pthread_mutex_unlock(&p->cb_mu);
  free(input);
  free(out);
  free(fail);
}

/*
 * Upload and invoke with job-level retries.  Returns 0 when invoked (or its
 * answer lost: then it is polled at the predicted location), or -1 after
 * reporting the job.  The payload is freed once the input object exists: a
 * retried invocation only needs its location.
 *
 * The invocation is sent once per attempt (no HTTP-level retry:
 * sagemaker_runtime.c), and attempted again only after an answer that says
 * it was refused (throttling, ModelNotReadyException, no connection): never
 * after one that may hide an acceptance (asd_error_invoke_maybe_accepted).
 * Every attempt carries the same inference id and Filename, chosen here.
 */
static int submit(asd_pool *p, pjob *j) {
  asd_error e;
  asd_error_clear(&e);
  if (!j->dj.inference_id[0]) asd_invoke_new_id(j->dj.inference_id, j->dj.filename);
  for (;;) {
    j->attempts++;
    int rc = asd_det_upload(p->d, &j->dj, j->payload, j->payload_len, p->m, &e);
    if (rc == 0 && j->payload) {
      payload_release(j->payload, j->payload_free);
      j->payload = NULL;
    }
    if (rc == 0) {
      if (!j->announced) announce_invoking(p, j);
      rc = asd_det_invoke(p->d, &j->dj, p->m, &e);
      if (rc != 0 && asd_error_invoke_maybe_accepted(&e)) {
        lost_answer(p, j, &e);
        return 0;
      }
    }
    if (rc == 0) {
      note_progress(p);
      break;
    }
    if (!asd_error_is_retryable(&e) || j->attempts > p->cfg.max_retries) {
      char why[sizeof e.message];
      snprintf(why, sizeof why, "%s", e.message);
      asd_error_set(&e, e.code, "%s (after %d attempt%s)", why, j->attempts,
                    j->attempts > 1 ? "s" : "");
      report(p, j, 0, NULL, 0, &e, 0);
      return -1;
    }
    asd_metrics_incr(p->m, "Retries", 1);
    count(&p->counts.retries);
    if (pool_sleep_until(p, asd_time_monotonic() + retry_delay(&p->cfg, j->attempts - 1))) {
      report_cancelled(p, j);
      return -1;
    }
  }
  asd_invoke_paths_learn(&p->paths, j->dj.filename, j->dj.output_location, j->dj.failure_location);
  count(&p->counts.submitted);
  if (p->cb->on_submitted) {
    char *input = asd_s3_uri_format(j->dj.input_bucket, j->dj.input_key);
    pthread_mutex_lock(&p->cb_mu);
    p->cb->on_submitted(p->cb->user_data, j->tile_id, j->dj.inference_id, input ? input : "",
                        j->dj.output_location, j->dj.failure_location ? j->dj.failure_location : "");
    pthread_mutex_unlock(&p->cb_mu);
    free(input);
  }
  return 0;
}

/*
 * A lost invocation whose result never appeared by its deadline.  When the
 * deadline is past RequestTTLSeconds + InvocationTimeoutSeconds (+ margin)
 * from the lost call, SageMaker cannot have it any more (it would have
 * written a result or a failure by then): it was never accepted, and is
 * invoked again, with the same id and Filename.  Before that, it may still
 * be queued there: the tile fails rather than pay twice.  Returns 1 when the
 * job ended (reported), 0 when it was invoked again (poll it).
 */
static int lost_deadline(asd_pool *p, pjob *j) {
  const asd_async_config *cfg = &p->cfg;
  double certain = asd_config_request_ttl(cfg) + asd_config_invocation_timeout(cfg) + 10.0;
  char lost[sizeof j->lost_err.message + 256];
  asd_error_format(&j->lost_err, lost, sizeof lost);
  if (cfg->max_wait_time >= certain && j->attempts <= cfg->max_retries) {
    /* The input object stays: the new invocation names it again. */
    j->lost = 0;
    j->dj.invoked = 0;
    if (j->dj.res_job) asd_resources_release(asd_detector_resources(p->d), j->dj.res_job);
    j->dj.res_job = 0;
    CPLDebug("ASD_POOL", "tile %lld: inference %s cannot have been accepted (nothing after %.0f s): invoking again",
             (long long)j->tile_id, j->dj.inference_id, certain);
    return submit(p, j) == 0 ? 0 : 1;
  }
  report_error(p, j, ASD_ERR_TIMEOUT, 1,
               "the answer of inference %s was lost (%s) and no result appeared at %s within max_wait_time "
               "%g s; not invoked again, since SageMaker may still hold it and would run it twice (a "
               "max_wait_time above RequestTTLSeconds + InvocationTimeoutSeconds + 10 s lets such a tile be "
               "invoked again once SageMaker cannot have it)",
               j->dj.inference_id, lost, j->dj.output_location ? j->dj.output_location : "its predicted location",
               cfg->max_wait_time);
  return 1;
}

/* The next poll time of j, never past its deadline. */
static double next_poll(asd_pool *p, pjob *j, double from) {
  double t0 = j->dj.t_invoked;
  double t = p->lat ? t0 + asd_latency_next_age(p->lat, (uintptr_t)j, t0, from - t0, j->last_age,
                                                  j->ahead, asd_random_uniform())
                    : from + asd_config_poll_delay(&p->cfg, j->poll_attempt, asd_random_uniform());
  j->poll_attempt++;
  if (t > j->dj.deadline) t = j->dj.deadline;
  j->due_age = t - t0;
  return t;
}

/*
 * Polls j once.  Returns 1 when the job ended (reported), 0 when it must be
 * polled again.
 */
static int poll_once(asd_pool *p, pjob *j) {
  if (j->lost && !expect_locations(p, j)) {
    /* Nowhere to look yet: another job's answer will teach the endpoint's
       paths.  Until then this one waits, up to its deadline. */
    if (asd_time_monotonic() >= j->dj.deadline) return lost_deadline(p, j);
    return 0;
  }
  asd_error e;
  asd_error_clear(&e);
  asd_buf out;
  asd_buf_init(&out);
  double age = asd_time_monotonic() - j->dj.t_invoked;
  int rc = asd_det_poll(p->d, &j->dj, &out, p->m, &e);
  if (rc == 1 || (rc == 0 && e.code == ASD_OK)) note_progress(p); /* an answer, not a tolerated error */
  if (rc == 0 && e.code == ASD_OK) j->last_age = age;
  /* Only this run's invocations teach the estimator (a resumed job's age
   * counts from another run). */
  /* The result is credited to the age the poll was planned for, not the
   * (later) age a busy machine got to it: otherwise the estimate would
   * learn the machine's lateness as latency, plan later, and ratchet up. */
  if (rc == 1 && j->kind != ASD_POOL_JOB_RESUME &&
      asd_latency_observe(p->lat, j->dj.t_invoked, j->last_age,
                          age < j->due_age || j->due_age <= j->last_age ? age : j->due_age))
    reschedule_parked(p);
  if (rc == 1) {
    asd_metrics_record(p->m, "InferenceDuration", asd_time_monotonic() - j->dj.t_invoked);
    /* Handed on as it came: the consumer's parser (asd_features_parse) is
       the one parse, and fails the tile with a reason if it is not usable. */
    report(p, j, 1, out.data, out.len, NULL, 0);
    asd_buf_free(&out);
    return 1;
  }
  asd_buf_free(&out);
  if (rc < 0) {
    report(p, j, 0, NULL, 0, &e, 0);
    return 1;
  }
  if (asd_time_monotonic() >= j->dj.deadline && j->lost) return lost_deadline(p, j);
  if (asd_time_monotonic() >= j->dj.deadline) {
    /* The endpoint may still be running it: keep its input (abandon). */
    char why[1024];
    asd_det_timeout_message(&p->cfg, &j->dj, why, sizeof why);
    report_error(p, j, ASD_ERR_TIMEOUT, 1, "%s", why);
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- threads */

typedef struct worker_arg {
  asd_pool *p;
  int index;
  int started; /* its thread is running (and must be joined) */
} worker_arg;

static void push_heap(asd_pool *p, pjob *j, double due) {
  pthread_mutex_lock(&p->mu);
  int rc = asd_timer_heap_push(&p->heap, due, j);
  /* Wake a poller only when this job is now the earliest: otherwise the
   * sleeping pollers are already waiting for something sooner, and waking
   * one would cost a context switch per job for nothing. */
  if (rc == 0 && asd_timer_heap_peek(&p->heap)->ptr == j) pthread_cond_signal(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) {
    /* Cannot schedule it: end it rather than lose it. */
    report_error(p, j, ASD_ERR_RUNTIME, 1, "out of memory scheduling the poll of inference %s",
                 j->dj.inference_id);
  }
}

static void *submission_main(void *arg) {
  worker_arg *wa = arg;
  asd_pool *p = wa->p;
  for (;;) {
    pjob *j = NULL;
    if (!pull(p, wa->index, &j)) break;
    if (!j) continue;
    if (take_slot(p, j) != 0) continue;
    if (j->kind == ASD_POOL_JOB_RESUME) {
      j->attempts = 1;
      push_heap(p, j, asd_time_monotonic());
      continue;
    }
    if (stop_now(p)) {
      report_cancelled(p, j);
      continue;
    }
    if (submit(p, j) != 0) continue;
    push_heap(p, j, next_poll(p, j, j->dj.t_invoked));
  }
  pthread_mutex_lock(&p->mu);
  p->submitters_alive--;
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* At most this many jobs are taken from the heap by one wake-up. */
#define POLL_BATCH 16

/* How early a job may be polled when a worker is awake anyway: a tenth of
 * the polling interval, at most 20 ms. */
static double poll_slack(const asd_async_config *cfg) {
  double s = cfg->polling_interval * 0.1;
  return s < 0.02 ? s : 0.02;
}

/* How long one worker may keep the jobs of a batch it has not polled yet.
 * A poll normally takes milliseconds; one that takes longer is stuck on the
 * network, and the jobs behind it must not wait for its timeout. */
#define POLL_BATCH_HOLD 0.5

/* Puts jobs taken from the heap but not polled back, due now, and wakes
 * the other polling workers. */
static void give_back(asd_pool *p, pjob **jobs, int n) {
  const double now = asd_time_monotonic();
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < n; i++) {
    if (asd_timer_heap_push(&p->heap, now, jobs[i]) != 0) {
      pthread_mutex_unlock(&p->mu);
      report_error(p, jobs[i], ASD_ERR_RUNTIME, 1, "out of memory scheduling the poll of inference %s",
                   jobs[i]->dj.inference_id);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    p->counts.handed_over++;
  }
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
}

static void *polling_main(void *arg) {
  worker_arg *wa = arg;
  asd_pool *p = wa->p;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    check_interrupt_locked(p);
    if (p->cancel_mode >= ASD_POOL_STOP_NOW) break;
    const asd_timer_item *top = asd_timer_heap_peek(&p->heap);
    if (!top) {
      if (p->submitters_alive == 0 && p->in_flight == 0) break;
      struct timespec ts;
      abs_deadline(0.1, &ts);
      pthread_cond_timedwait(&p->heap_cv, &p->mu, &ts);
      continue;
    }
    double now = asd_time_monotonic();
    if (top->due > now) {
      double left = top->due - now;
      struct timespec ts;
      abs_deadline(left < 0.1 ? left : 0.1, &ts);
      pthread_cond_timedwait(&p->heap_cv, &p->mu, &ts);
      continue;
    }
    /* Take the due job and the ones due within the timer slack: polling
     * them back to back costs one wake-up for the lot instead of one each,
     * and a few milliseconds early is well inside the schedule's jitter. */
    pjob *batch[POLL_BATCH];
    int nb = 0;
    double slack_until = now + poll_slack(&p->cfg);
    while (nb < POLL_BATCH && (top = asd_timer_heap_peek(&p->heap)) && top->due <= slack_until) {
      asd_timer_item it;
      asd_timer_heap_pop(&p->heap, &it);
      batch[nb++] = it.ptr;
    }
    pthread_mutex_unlock(&p->mu);
    const double taken = asd_time_monotonic();
    for (int b = 0; b < nb; b++) {
      pjob *j = batch[b];
      if (b > 0 && asd_time_monotonic() - taken > POLL_BATCH_HOLD) {
        /* A poll of this batch outlived its share (a stalled connection
         * waiting for its timeout): give the rest back to the heap, due
         * now, so that the other polling workers take them instead of
         * letting them wait behind the stuck call. */
        give_back(p, batch + b, nb - b);
        break;
      }
      if (stop_now(p)) {
        report_cancelled(p, j);
        continue;
      }
      if (poll_once(p, j)) continue;
      double due = next_poll(p, j, asd_time_monotonic());
      pthread_mutex_lock(&p->mu);
      int rc = asd_timer_heap_push(&p->heap, due, j);
      pthread_mutex_unlock(&p->mu);
      if (rc != 0)
        report_error(p, j, ASD_ERR_RUNTIME, 1, "out of memory scheduling the poll of inference %s",
                     j->dj.inference_id);
    }
    pthread_mutex_lock(&p->mu);
  }
  p->pollers_alive--;
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Simple mode: one thread does everything for one job at a time. */
static void *simple_main(void *arg) {
  worker_arg *wa = arg;
  asd_pool *p = wa->p;
  for (;;) {
    pjob *j = NULL;
    if (!pull(p, wa->index, &j)) break;
    if (!j) continue;
    if (take_slot(p, j) != 0) continue;
    if (j->kind != ASD_POOL_JOB_RESUME) {
      if (stop_now(p)) {
        report_cancelled(p, j);
        continue;
      }
      if (submit(p, j) != 0) continue;
    } else {
      j->attempts = 1;
    }
    double due = j->kind == ASD_POOL_JOB_RESUME ? asd_time_monotonic()
                                                : next_poll(p, j, j->dj.t_invoked);
    for (;;) {
      if (pool_sleep_until(p, due)) {
        report_cancelled(p, j);
        break;
      }
      if (poll_once(p, j)) break;
      due = next_poll(p, j, asd_time_monotonic());
    }
  }
  pthread_mutex_lock(&p->mu);
  p->submitters_alive--;
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/*
 * The cleaner: immediate deletions are gathered for up to 200 ms (or 500
 * objects) so they go out as DeleteObjects batches; delayed ones are taken
 * when due.
 */
static void *cleaner_main(void *arg) {
  asd_pool *p = arg;
  asd_resources *res = asd_detector_resources(p->d);
  pthread_mutex_lock(&p->mu);
  while (!p->cleaner_stop) {
    pthread_mutex_unlock(&p->mu);
    double next_due = 0;
    long long pending = asd_resources_pending(res, &next_due);
    double now = asd_time_monotonic();
    if (pending > 0 && next_due <= now) {
      asd_resources_collect(res, now, 0);
    }
    pending = asd_resources_pending(res, &next_due);
    double wait = 0.2;
    if (pending > 0 && next_due > now && next_due - now < wait) wait = next_due - now;
    pthread_mutex_lock(&p->mu);
    if (p->cleaner_stop) break;
    struct timespec ts;
    abs_deadline(wait, &ts);
    pthread_cond_timedwait(&p->clean_cv, &p->mu, &ts);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ------------------------------------------------------------------ API */

asd_pool *asd_pool_new(asd_detector *detector, asd_metrics *metrics, asd_error *err) {
  asd_error_clear(err);
  if (!detector) {
    asd_error_set(err, ASD_ERR_CONFIG, "pool needs a detector");
    return NULL;
  }
  asd_pool *p = calloc(1, sizeof *p);
  if (!p) {
    asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
    return NULL;
  }
  p->d = detector;
  p->cfg = *asd_detector_config(detector);
  p->m = metrics;
  if (asd_config_adaptive_polling(&p->cfg)) p->lat = asd_latency_new(&p->cfg);
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->src_mu, NULL);
  pthread_mutex_init(&p->cb_mu, NULL);
  cond_init_monotonic(&p->slot_cv);
  cond_init_monotonic(&p->heap_cv);
  cond_init_monotonic(&p->clean_cv);
  asd_timer_heap_init(&p->heap);
  asd_invoke_paths_init(&p->paths);
  asd_det_seed_paths(detector, &p->paths); /* the first tiles' lost answers are looked for too */
  return p;
}

void asd_pool_free(asd_pool *p) {
  if (!p) return;
  asd_timer_heap_free(&p->heap);
  asd_invoke_paths_free(&p->paths);
  asd_latency_free(p->lat);
  pthread_cond_destroy(&p->slot_cv);
  pthread_cond_destroy(&p->heap_cv);
  pthread_cond_destroy(&p->clean_cv);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->src_mu);
  pthread_mutex_destroy(&p->cb_mu);
  free(p);
}

void asd_pool_cancel(asd_pool *p, asd_pool_cancel_mode mode) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  if ((int)mode > p->cancel_mode) __atomic_store_n(&p->cancel_mode, (int)mode, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->slot_cv);
  pthread_cond_broadcast(&p->heap_cv);
  pthread_mutex_unlock(&p->mu);
}

int asd_pool_in_flight(asd_pool *p) {
  if (!p) return 0;
  pthread_mutex_lock(&p->mu);
  int n = p->in_flight;
  pthread_mutex_unlock(&p->mu);
  return n;
}

/*
 * Starts one worker.  pthread_create fails with EAGAIN when the system is
 * short of threads for a moment, so it is tried again three times, 10, 20
 * and 40 ms apart, before the worker is given up.  ASD_TEST_WORKERS_NOT_STARTING
 * (a test-only setting, a comma-separated list of worker indexes) makes the
 * listed workers fail to start, to prove that the pool goes on without them.
 */
static int start_worker(pthread_t *t, void *(*fn)(void *), worker_arg *a) {
  const char *deny = CPLGetConfigOption("ASD_TEST_WORKERS_NOT_STARTING", NULL);
  if (deny) {
    char **ids = CSLTokenizeString2(deny, ",", 0);
    int denied = 0;
    for (char **id = ids; id && *id; id++) denied |= atoi(*id) == a->index;
    CSLDestroy(ids);
    if (denied) return -1;
  }
  for (int attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0) asd_sleep(0.01 * (double)(1 << (attempt - 1)));
    int e = pthread_create(t, NULL, fn, a);
    if (e == 0) return 0;
    if (e != EAGAIN) break;
  }
  return -1;
}

int asd_pool_process(asd_pool *p, const asd_pool_callbacks *cb, asd_pool_counts *counts,
                     asd_error *err) {
  asd_error_clear(err);
  if (counts) memset(counts, 0, sizeof *counts);
  if (!p || !cb || !cb->source) return asd_error_set(err, ASD_ERR_CONFIG, "pool needs a source callback");
  pthread_mutex_lock(&p->mu);
  if (p->running) {
    pthread_mutex_unlock(&p->mu);
    return asd_error_set(err, ASD_ERR_CONFIG, "asd_pool_process is already running on this pool");
  }
  p->running = 1;
  p->cb = cb;
  p->source_done = 0;
  __atomic_store_n(&p->cancel_mode, 0, __ATOMIC_RELEASE);
  p->cleaner_stop = 0;
  p->in_flight = 0;
  memset(&p->counts, 0, sizeof p->counts);
  pthread_mutex_unlock(&p->mu);

  int optimised = p->cfg.enable_worker_optimization;
  int n_sub = optimised ? p->cfg.submission_workers
                        : p->cfg.submission_workers + p->cfg.polling_workers;
  int n_poll = optimised ? p->cfg.polling_workers : 0;
  int n = n_sub + n_poll;
  pthread_t *threads = calloc((size_t)n, sizeof *threads);
  worker_arg *args = calloc((size_t)n, sizeof *args);
  uint64_t *res_ids = calloc((size_t)n + 1, sizeof *res_ids);
  pthread_t cleaner;
  int started = 0, rc = 0;
  asd_resources *res = asd_detector_resources(p->d);
  if (!threads || !args || !res_ids) {
    rc = asd_error_set(err, ASD_ERR_RUNTIME, "out of memory starting the pool");
    goto done;
  }
  p->submitters_alive = n_sub;
  p->pollers_alive = n_poll;
  int sub_up = 0, poll_up = 0;
  for (int i = 0; i < n; i++) {
    args[i].p = p;
    args[i].index = i;
    void *(*fn)(void *) = !optimised ? simple_main : i < n_sub ? submission_main : polling_main;
    if (start_worker(&threads[i], fn, &args[i]) != 0) continue;
    char name[32];
    snprintf(name, sizeof name, "%s-%d", fn == polling_main ? "poller" : "submitter", i);
    res_ids[i] = asd_resources_add(res, ASD_RES_WORKER_THREAD, NULL, name);
    args[i].started = 1;
    started++;
    if (fn == polling_main)
      poll_up++;
    else
      sub_up++;
  }
  int cleaner_started = pthread_create(&cleaner, NULL, cleaner_main, p) == 0;
  if (cleaner_started) res_ids[n] = asd_resources_add(res, ASD_RES_WORKER_THREAD, NULL, "cleaner");
  if (started < n) {
    /* Workers that did not start are not waited for.  The jobs are bound to
     * no worker, so the pool runs with the ones that did, as long as each
     * kind has one; else it stops them cleanly, with the reason. */
    pthread_mutex_lock(&p->mu);
    p->submitters_alive -= (optimised ? n_sub : n) - sub_up;
    p->pollers_alive -= n_poll - poll_up;
    pthread_mutex_unlock(&p->mu);
    if (sub_up == 0 || (optimised && poll_up == 0)) {
      rc = asd_error_set(err, ASD_ERR_RUNTIME, "cannot start the pool's %s threads (%d of %d workers started)",
                         sub_up == 0 ? "submission" : "polling", started, n);
      asd_pool_cancel(p, ASD_POOL_STOP_NOW);
    } else {
      CPLError(CE_Warning, CPLE_AppDefined, "asd_pool: %d of %d worker threads could not be started; going on with %d",
               n - started, n, started);
    }
  }
  for (int i = 0; i < n; i++) {
    if (!args[i].started) continue;
    pthread_join(threads[i], NULL);
    asd_resources_release(res, res_ids[i]);
  }

  /* Jobs left on the heap were stopped now (or no poller could run). */
  for (;;) {
    asd_timer_item it;
    pthread_mutex_lock(&p->mu);
    int got = asd_timer_heap_pop(&p->heap, &it) == 0;
    pthread_mutex_unlock(&p->mu);
    if (!got) break;
    report_cancelled(p, it.ptr);
  }

  if (cleaner_started) {
    pthread_mutex_lock(&p->mu);
    p->cleaner_stop = 1;
    pthread_cond_broadcast(&p->clean_cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(cleaner, NULL);
    asd_resources_release(res, res_ids[n]);
  }
  /* What is due now (immediate policy) is deleted before returning. */
  asd_resources_collect(res, asd_time_monotonic(), 0);

done:
  free(threads);
  free(args);
  free(res_ids);
  pthread_mutex_lock(&p->mu);
  if (counts) *counts = p->counts;
  p->running = 0;
  p->cb = NULL;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* ---------------------------------------------------------- find_features */

/*
 * The seed's synchronous find_features: one job through the pool itself,
 * so that it goes through exactly the steps, retries, backoff, timeout and
 * cleanup every tile of a run goes through, with one submission worker and
 * one poller.  The caller's thread waits in asd_pool_process().
 */
typedef struct one_job {
  const void *payload;
  size_t len;
  int given;
  int done;
  struct json_object *fc;
  asd_error err;
} one_job;

/* The release function of a lent payload: nothing to free. */
static void payload_lent(void *payload) { (void)payload; }

static int one_job_source(void *user, int worker, asd_pool_job *job) {
  (void)worker;
  one_job *o = user;
  if (o->given) return 0;
  o->given = 1;
  job->kind = ASD_POOL_JOB_PAYLOAD;
  /* Lent, not copied: the caller's bytes outlive the pool, which only reads
     them (asd_detector_find_features waits in asd_pool_process). */
  job->payload = (unsigned char *)(uintptr_t)o->payload;
  job->payload_len = o->len;
  job->payload_free = payload_lent;
  return 1;
}

static void one_job_done(void *user, const asd_pool_result *r) {
  one_job *o = user;
  o->done = 1;
  if (r->ok) {
    asd_det_check_result((const unsigned char *)r->feature_collection, r->feature_collection_len, &o->fc,
                         &o->err);
    return;
  }
  asd_error_clear(&o->err);
  o->err.http_status = r->http_status;
  snprintf(o->err.aws_code, sizeof o->err.aws_code, "%s", r->aws_code ? r->aws_code : "");
  snprintf(o->err.request_id, sizeof o->err.request_id, "%s", r->request_id ? r->request_id : "");
  asd_error_set(&o->err, r->code, "%s", r->message ? r->message : "");
}

struct json_object *asd_detector_find_features(asd_detector *d, const void *payload, size_t len,
                                               asd_metrics *metrics, asd_error *err) {
  asd_error_clear(err);
  if (!d || (!payload && len)) {
    asd_error_set(err, ASD_ERR_CONFIG, "find_features needs a detector and a payload");
    return NULL;
  }
  asd_pool *p = asd_pool_new(d, metrics, err);
  if (!p) return NULL;
  p->cfg.submission_workers = 1;
  p->cfg.polling_workers = 1;
  p->cfg.enable_worker_optimization = 1;
  one_job o;
  memset(&o, 0, sizeof o);
  o.payload = payload;
  o.len = len;
  asd_error_clear(&o.err);
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = one_job_source;
  cb.on_done = one_job_done;
  cb.user_data = &o;
  int rc = asd_pool_process(p, &cb, NULL, err);
  asd_pool_free(p);
  if (rc != 0) {
    if (o.fc) json_object_put(o.fc);
    return NULL;
  }
  if (!o.fc) {
    if (!o.done) asd_error_set(&o.err, ASD_ERR_RUNTIME, "the job was not run");
    asd_error_copy(err, &o.err);
  }
  return o.fc;
}
