/*
 * runtime.c: the run stage, the concurrent part of a run.
 *
 * Three kinds of threads and two queues:
 *
 *   encoder threads (-encoder-threads)  --bounded queue of payloads-->
 *   the pool (asd_pool_process on a thread of its own, with its submission
 *   and polling workers)  --event queue-->  the sink (the caller's thread).
 *
 * Encoder threads each take the next tile to run, read and encode it (the
 * encoder keeps one dataset handle per concurrent reader; over several
 * images, the tiles come image after image, and a thread reaching a new
 * image opens its encoder: input.c asd_run_encoder_for) and put the
 * payload in a bounded queue (the encoder's own buffer, which the pool
 * uploads and releases: the tile is not copied on its way to the socket);
 * a slot is reserved before encoding, so that encoders working at the same
 * time never put more payloads in the queue than it holds, which keeps
 * memory to a few tiles whatever the image size.
 * The pool's source callback hands out first the earlier run's in-flight
 * tiles (polled again, never invoked again), then the payloads in plan
 * order.  The pool's callbacks (submitted, done) and the encoders' skips
 * become events; the sink (sink.c) alone handles them.
 *
 * Stopping.  The caller's interrupt counter and the progress callback are
 * watched by the sink's loop: the first request stops submitting new tiles
 * and drains the ones in flight; the second, or a run-level failure, stops
 * at once, leaving in-flight tiles as "submitted" in the journal, where
 * -resume will find them.  From the first request on, the progress measures
 * what is left, the tiles in flight, not the tiles that will never run
 * (progress_fraction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asd_run.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_vsi.h"

static void push_event(asd_run *r, asd_run_event *e) {
  pthread_mutex_lock(&r->mu);
  e->next = NULL;
  if (r->ev_tail)
    r->ev_tail->next = e;
  else
    r->ev_head = e;
  r->ev_tail = e;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static char *dup_or_null(const char *s) { return s && *s ? CPLStrdup(s) : NULL; }

void asd_run_event_free(asd_run_event *e) {
  if (!e) return;
  CPLFree(e->text);
  CPLFree(e->inference_id);
  CPLFree(e->input_location);
  CPLFree(e->output_location);
  CPLFree(e->failure_location);
  CPLFree(e);
}

/* 1 (drain) or 2 (stop now) when the user or the caller asked to stop. */
static int stop_level(asd_run *r) {
  int level = 0;
  if (r->o->interrupt) level = (int)*r->o->interrupt;
  if (r->stop_now && level < 2) level = 2;
  if (r->stop_submitting && level < 1) level = 1;
  return level;
}

static void broadcast(asd_run *r) {
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Encodes one tile into a queue item (or a skip event). */
static int encode_tile(asd_run *r, int tile, asd_run_ready *item) {
  asd_payload p;
  memset(&p, 0, sizeof p);
  const char *unreadable = NULL;
  asd_encoder *enc = asd_run_encoder_for(r, tile, &unreadable);
  if (!enc) {
    /* The image cannot be opened again: each of its tiles fails so. */
    memset(item, 0, sizeof *item);
    item->tile = tile;
    item->failed = 1;
    r->tiles[tile].read_error = 1;
    snprintf(item->reason, sizeof item->reason, ASD_RUN_READ_FAILURE ": %s", unreadable);
    return 1;
  }
  CPLErrorReset();
  CPLPushErrorHandler(CPLQuietErrorHandler);
  struct timespec c0, c1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  double t0 = asd_time_monotonic();
  asd_encode_status st = asd_encoder_encode(enc, asd_run_plan_tile(r, tile), &p);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  CPLPopErrorHandler();
  /* What bounded the run (summary.c) and what a tile costs to send. */
  asd_metrics_record(r->metrics, "EncodeDuration", asd_time_monotonic() - t0);
  asd_metrics_record(r->metrics, "EncodeCpuSeconds",
                     (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
  if (st == ASD_ENCODE_OK) asd_metrics_record(r->metrics, "PayloadBytes", (double)p.len);
  if (st == ASD_ENCODE_SKIPPED) {
    asd_run_event *e = CPLCalloc(1, sizeof *e);
    e->kind = ASD_RUN_EV_SKIPPED;
    e->tile = tile;
    e->skip = p.skip;
    push_event(r, e);
    return 0;
  }
  memset(item, 0, sizeof *item);
  item->tile = tile;
  if (st == ASD_ENCODE_OK) {
    /* The encoder's buffer itself goes to the queue and on to the pool,
       which releases it with VSIFree (payload_job): no copy of the tile
       between the encoder and the socket. */
    item->data = p.data;
    item->len = p.len;
    p.data = NULL;
    p.len = 0;
  } else {
    item->failed = 1;
    /* The pool reports it as ASD_ERR_INPUT.  A read error is flagged on the
     * tile here, where it is known (the summary counts those apart: -resume
     * cannot fix them), and its reason says so in words for the user. */
    r->tiles[tile].read_error = st == ASD_ENCODE_READ_ERROR;
    snprintf(item->reason, sizeof item->reason, "%s%s", st == ASD_ENCODE_READ_ERROR ? ASD_RUN_READ_FAILURE ": " : "",
             *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
    asd_scrub_urls(item->reason); /* GDAL's cause may quote a presigned URL */
  }
  asd_payload_free(&p);
  return 1;
}

static void *encoder_main(void *arg) {
  asd_run *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (r->q_len + r->q_reserved >= r->q_cap && stop_level(r) == 0) pthread_cond_wait(&r->cv, &r->mu);
    if (stop_level(r) > 0 || r->next_encode >= r->n_to_encode) {
      pthread_mutex_unlock(&r->mu);
      break;
    }
    int tile = r->to_encode[r->next_encode++];
    r->q_reserved++;
    pthread_mutex_unlock(&r->mu);

    asd_run_ready item;
    int queued = encode_tile(r, tile, &item);
    asd_run_encoded(r, tile);
    pthread_mutex_lock(&r->mu);
    if (queued) {
      r->queue[(r->q_head + r->q_len) % r->q_cap] = item;
      r->q_len++;
    }
    r->q_reserved--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
  pthread_mutex_lock(&r->mu);
  r->enc_running--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void resume_job(const asd_journal_entry *e, asd_pool_job *job) {
  job->kind = ASD_POOL_JOB_RESUME;
  job->tile_id = e->tile;
  snprintf(job->inference_id, sizeof job->inference_id, "%s", e->inference_id ? e->inference_id : "");
  snprintf(job->input_location, sizeof job->input_location, "%s", e->input_location ? e->input_location : "");
  /* No output location: the earlier run stopped during the call (the pool
     looks for the result where the inference id's Filename puts it). */
  snprintf(job->output_location, sizeof job->output_location, "%s", e->output_location ? e->output_location : "");
  snprintf(job->failure_location, sizeof job->failure_location, "%s", e->failure_location ? e->failure_location : "");
}

static void payload_job(const asd_run_ready *item, asd_pool_job *job) {
  job->tile_id = item->tile;
  if (item->failed) {
    job->kind = ASD_POOL_JOB_FAILED;
    snprintf(job->reason, sizeof job->reason, "%s", item->reason);
  } else {
    job->kind = ASD_POOL_JOB_PAYLOAD;
    job->payload = item->data;
    job->payload_len = item->len;
    job->payload_free = VSIFree; /* the encoder's (GDAL's) allocation */
  }
}

/* The pool's source: first the earlier run's in-flight tiles, then the
   encoded payloads, in plan order. */
static int pool_source(void *user, int worker, asd_pool_job *job) {
  (void)worker;
  asd_run *r = user;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    if (stop_level(r) > 0) break;
    if (r->next_resume < r->n_to_resume) {
      asd_journal_entry *e = r->to_resume[r->next_resume++];
      pthread_mutex_unlock(&r->mu);
      resume_job(e, job);
      return 1;
    }
    if (r->q_len > 0) {
      asd_run_ready item = r->queue[r->q_head];
      r->q_head = (r->q_head + 1) % r->q_cap;
      r->q_len--;
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
      payload_job(&item, job);
      return 1;
    }
    if (r->enc_running == 0) break;
    pthread_cond_wait(&r->cv, &r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return 0;
}

/* The event that journals a tile's invocation (before or after the call). */
static asd_run_event *submitted_event(int64_t tile_id, const char *inference_id, const char *input_location,
                                      const char *output_location, const char *failure_location) {
  asd_run_event *e = CPLCalloc(1, sizeof *e);
  e->kind = ASD_RUN_EV_SUBMITTED;
  e->tile = (int)tile_id;
  e->inference_id = dup_or_null(inference_id);
  e->input_location = dup_or_null(input_location);
  e->output_location = dup_or_null(output_location);
  e->failure_location = dup_or_null(failure_location);
  return e;
}

static void pool_submitted(void *user, int64_t tile_id, const char *inference_id, const char *input_location,
                           const char *output_location, const char *failure_location) {
  push_event(user, submitted_event(tile_id, inference_id, input_location, output_location, failure_location));
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds);

/*
 * Right before a tile's first invocation: its inference id, input and
 * expected result location go into the journal (through the sink, which owns
 * it) before the request leaves, so that a run killed during the call is
 * resumed by looking for that result rather than by paying for a second
 * inference.  The pool thread waits until the sink has written it.
 */
static void pool_invoking(void *user, int64_t tile_id, const char *inference_id, const char *input_location,
                          const char *output_location, const char *failure_location) {
  asd_run *r = user;
  asd_run_event *e = submitted_event(tile_id, inference_id, input_location, output_location, failure_location);
  int handled = 0;
  e->handled = &handled;
  push_event(r, e);
  pthread_mutex_lock(&r->mu);
  while (!handled) timed_wait(&r->cv, &r->mu, 0.1);
  pthread_mutex_unlock(&r->mu);
}

/*
 * Result texts waiting for the sink are bounded by ASD_MAX_RESULT_BYTES x
 * polling workers: a worker whose result would pass that waits until the
 * sink (which drains events until the pool has finished) has parsed what is
 * queued, so model outputs cannot pile up in memory faster than they are
 * parsed.  One result is always let through, whatever its size.
 */
static void reserve_text(asd_run *r, size_t len) {
  size_t workers = r->cfg.polling_workers > 0 ? (size_t)r->cfg.polling_workers : 1;
  size_t budget = asd_max_result_bytes() * workers;
  pthread_mutex_lock(&r->mu);
  while (r->ev_text_bytes > 0 && r->ev_text_bytes + len > budget && !r->stop_now) timed_wait(&r->cv, &r->mu, 0.1);
  r->ev_text_bytes += len;
  pthread_mutex_unlock(&r->mu);
}

static void release_text(asd_run *r, const asd_run_event *e) {
  if (e->kind != ASD_RUN_EV_DONE || !e->ok) return;
  pthread_mutex_lock(&r->mu);
  r->ev_text_bytes -= e->text_len < r->ev_text_bytes ? e->text_len : r->ev_text_bytes;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void pool_done(void *user, const asd_pool_result *res) {
  asd_run *r = user;
  if (res->ok) reserve_text(r, res->feature_collection_len);
  asd_run_event *e = CPLCalloc(1, sizeof *e);
  e->kind = ASD_RUN_EV_DONE;
  e->tile = (int)res->tile_id;
  e->ok = res->ok;
  e->code = res->code;
  e->http_status = res->http_status;
  snprintf(e->aws_code, sizeof e->aws_code, "%s", res->aws_code ? res->aws_code : "");
  if (res->ok) {
    e->text = CPLMalloc(res->feature_collection_len + 1);
    memcpy(e->text, res->feature_collection, res->feature_collection_len);
    e->text[res->feature_collection_len] = '\0';
    e->text_len = res->feature_collection_len;
  } else {
    e->text = CPLStrdup(res->reason && *res->reason ? res->reason : asd_strerror(res->code));
  }
  e->inference_id = dup_or_null(res->inference_id);
  e->output_location = dup_or_null(res->output_location);
  e->failure_location = dup_or_null(res->failure_location);
  push_event(r, e);
}

static void *pool_main(void *arg) {
  asd_run *r = arg;
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = pool_source;
  cb.on_invoking = pool_invoking;
  cb.on_submitted = pool_submitted;
  cb.on_done = pool_done;
  cb.user_data = r;
  cb.source_thread_safe = 1;
  cb.interrupt = r->o->interrupt;
  r->pool_rc = asd_pool_process(r->pool, &cb, &r->counts, &r->pool_err);
  pthread_mutex_lock(&r->mu);
  r->pool_finished = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + seconds;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  pthread_cond_timedwait(cv, mu, &ts);
}

/* Starts the encoder threads; returns how many run. */
static int start_encoders(asd_run *r) {
  r->q_cap = 2 * r->o->encoder_threads + 2;
  r->queue = CPLCalloc((size_t)r->q_cap, sizeof(asd_run_ready));
  r->n_enc_threads = r->o->encoder_threads;
  if (r->n_enc_threads > r->n_to_encode) r->n_enc_threads = r->n_to_encode;
  r->enc_threads = CPLCalloc((size_t)(r->n_enc_threads ? r->n_enc_threads : 1), sizeof(pthread_t));
  int started = 0;
  for (int i = 0; i < r->n_enc_threads; i++) {
    pthread_mutex_lock(&r->mu);
    r->enc_running++;
    pthread_mutex_unlock(&r->mu);
    if (pthread_create(&r->enc_threads[i], NULL, encoder_main, r) != 0) {
      pthread_mutex_lock(&r->mu);
      r->enc_running--;
      pthread_mutex_unlock(&r->mu);
      break;
    }
    started++;
  }
  return started;
}

/* The progress reported (0..1, never going back).  Tiles done over tiles
   planned, until a stop: the tiles never submitted will not run, so from
   then on the rest of the bar measures the tiles in flight, and it reaches
   the end when the last of them is done (or stays short of it when they are
   abandoned for -resume). */
static double progress_fraction(asd_run *r) {
  const int mine = r->ntiles - r->tiles_other;
  double f = mine ? (double)r->tiles_done / mine : 1.0;
  if (mine && stop_level(r) > 0) {
    if (!r->drain_seen) {
      r->drain_seen = 1;
      r->drain_done = r->tiles_done;
      r->drain_at = f;
    }
    /* In flight: sent and not finished; abandoned ones (stopped now, left
       for -resume) stay in the count, so the bar never reaches the end for them. */
    int in_flight = 0;
    for (int i = 0; i < r->ntiles; i++)
      if ((r->tiles[i].state == ASD_RUN_TILE_PENDING || r->tiles[i].state == ASD_RUN_TILE_NOT_RUN) &&
          r->tiles[i].inference_id)
        in_flight++;
    const int finished = r->tiles_done - r->drain_done;
    f = r->drain_at + (1.0 - r->drain_at) * (finished + in_flight ? (double)finished / (finished + in_flight) : 1.0);
  }
  if (f < r->last_progress) f = r->last_progress;
  r->last_progress = f;
  return f;
}

/* Turns the progress callback's answer and the interrupt counter into the
   pool's drain / stop-now requests. */
static void watch_stop(asd_run *r, int *last_level) {
  const asd_detect_options *o = r->o;
  if (o->progress && r->ntiles && !o->progress(progress_fraction(r), "", o->progress_data) &&
      !r->stop_submitting) {
    pthread_mutex_lock(&r->mu);
    r->stop_submitting = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    asd_pool_cancel(r->pool, ASD_POOL_DRAIN);
  }
  if (r->fatal && !r->stop_now) {
    pthread_mutex_lock(&r->mu);
    r->stop_now = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
  }
  int level = stop_level(r);
  if (level != *last_level) {
    *last_level = level;
    if (level >= 2)
      asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
    else if (level == 1)
      asd_pool_cancel(r->pool, ASD_POOL_DRAIN);
    broadcast(r);
  }
}

/* The sink's loop: handles events until the pool has finished. */
static void sink_loop(asd_run *r) {
  int last_level = 0;
  const asd_detect_options *o = r->o;
  if (o->progress) o->progress(progress_fraction(r), "", o->progress_data);
  for (;;) {
    pthread_mutex_lock(&r->mu);
    if (!r->ev_head && !r->pool_finished) timed_wait(&r->cv, &r->mu, 0.1);
    asd_run_event *list = r->ev_head;
    r->ev_head = r->ev_tail = NULL;
    int finished = r->pool_finished && !list;
    pthread_mutex_unlock(&r->mu);
    while (list) {
      asd_run_event *e = list;
      list = e->next;
      asd_run_handle_event(r, e);
      if (e->handled) {
        pthread_mutex_lock(&r->mu);
        *e->handled = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
      }
      release_text(r, e);
      asd_run_event_free(e);
    }
    watch_stop(r, &last_level);
    if (finished) break;
  }
}

int asd_run_execute(asd_run *r) {
  double run_t0 = asd_time_monotonic();
  asd_error err;
  asd_error_clear(&err);
  r->metrics = asd_metrics_new();
  r->pool = asd_pool_new(r->detector, r->metrics, &err);
  if (!r->pool) {
    char buf[1400];
    asd_run_error("cannot start the worker pool: %s", asd_error_format(&err, buf, sizeof buf));
    return -1;
  }
  int started = start_encoders(r);
  pthread_t pool_thread;
  int pool_started = pthread_create(&pool_thread, NULL, pool_main, r) == 0;
  if (!pool_started) {
    r->stop_now = 1;
    r->fatal = CPLStrdup("cannot start a thread");
    pthread_mutex_lock(&r->mu);
    r->pool_finished = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
  sink_loop(r);
  if (pool_started) pthread_join(pool_thread, NULL);
  pthread_mutex_lock(&r->mu);
  r->stop_now = 1; /* the pool is gone: encoders still running must stop */
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < started; i++) pthread_join(r->enc_threads[i], NULL);
  /* Payloads encoded but never handed to the pool (a stopped run): their
     allocator is GDAL's, so they are released here, not by the caller. */
  for (; r->q_len > 0; r->q_len--, r->q_head = (r->q_head + 1) % r->q_cap)
    VSIFree(r->queue[r->q_head].data);
  /* Skips reported after the pool ended. */
  while (r->ev_head) {
    asd_run_event *e = r->ev_head;
    r->ev_head = e->next;
    if (e->kind == ASD_RUN_EV_SKIPPED) asd_run_handle_event(r, e);
    asd_run_event_free(e);
  }
  r->ev_tail = NULL;
  r->run_seconds = asd_time_monotonic() - run_t0;
  if (r->pool_rc != 0) {
    char buf[1400];
    asd_run_set_fatal(r, "worker pool failed: %s", asd_error_format(&r->pool_err, buf, sizeof buf));
  }
  return 0;
}
