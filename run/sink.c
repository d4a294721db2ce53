/*
 * sink.c: where a finished tile becomes journal rows and output features.
 *
 * The sink runs on the caller's thread only (runtime.c hands it the events
 * the encoder threads and the pool push), so the journal, the merger and the
 * writer are never touched by two threads.  For each event:
 *
 *   submitted  ->  journal "submitted" (inference id, S3 locations), committed
 *   skipped    ->  the tile is skipped in the plan; the merger is told
 *   done       ->  a cancelled tile stays for -resume; a failure that is the
 *                  run's rather than the tile's stops the run with one line;
 *                  otherwise the result is parsed (features.c: tile pixels ->
 *                  image pixels), journalled (succeeded with the result
 *                  text, or failed with a reason), and handed to the merger,
 *                  whose finalised detections are georeferenced and written.
 *
 * Journal first: once a result is committed the tile is never invoked again,
 * whatever happens to this process.  Inside an output GeoPackage the journal
 * writes into the writer's open transaction, so every state change commits
 * it at once (asd_run_journal_commit): a state is in the file as soon as it
 * is recorded, together with the detections before it.
 *
 * Each image has its merger (seams are merged within an image); its final
 * detections are written with the writer switched to that image.  A shard
 * (-shard K/N) merges nothing (mode none: every raw detection is written,
 * and -merge-shards merges the union later).
 *
 * Merging options (-merge, -match-metric, -merge-threshold, -soft-nms-sigma,
 * -min-score, -class-agnostic) are read in asd_run_open_merger().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_features.h"
#include "cpl_conv.h"
#include "cpl_string.h"

void asd_run_set_fatal(asd_run *r, const char *fmt, ...) {
  if (r->fatal) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->fatal = CPLStrdup(msg);
}

void asd_run_set_text(char **dst, const char *v) {
  CPLFree(*dst);
  *dst = v && *v ? CPLStrdup(v) : NULL;
}

static int open_image_merger(asd_run *r, asd_run_image *im) {
  const asd_detect_options *o = r->o;
  asd_merge_options mo;
  asd_merge_options_init(&mo);
  asd_merge_mode_parse(o->merge, &mo.mode);
  if (o->shard_n) mo.mode = ASD_MERGE_NONE;
  /* NMM measures intersection over the smaller box; asking for IoU means
     plain suppression on IoU. */
  if (EQUAL(o->match_metric, "iou") && mo.mode == ASD_MERGE_NMM) mo.mode = ASD_MERGE_NMS;
  mo.iou_threshold = o->merge_threshold;
  mo.ios_threshold = o->merge_threshold;
  mo.sigma = o->soft_nms_sigma;
  mo.min_score = o->min_score;
  mo.class_agnostic = o->class_agnostic;
  /* A large object at a four-tile corner comes as pieces from diagonal
     tiles that only meet through a third piece: merge whole chains. */
  mo.nmm_transitive = 1;
  asd_merge_tile *mt = CPLCalloc((size_t)(im->ntiles ? im->ntiles : 1), sizeof *mt);
  for (int i = 0; i < im->ntiles; i++) {
    const asd_tile *t = asd_plan_tile(im->plan, i);
    mt[i].index = t->index;
    mt[i].x = t->x;
    mt[i].y = t->y;
    mt[i].w = t->w;
    mt[i].h = t->h;
  }
  char err[256];
  im->merger = asd_merger_new(&mo, mt, (size_t)im->ntiles, err, sizeof err);
  CPLFree(mt);
  if (!im->merger) return asd_run_fail(r, "invalid merge options: %s", err);
  return 0;
}

int asd_run_open_merger(asd_run *r) {
  for (int k = 0; k < r->nimages; k++)
    if (open_image_merger(r, &r->images[k]) != 0) return -1;
  return 0;
}

/* Writes what image k's merger has finished. */
static void write_final_of(asd_run *r, int k) {
  asd_run_image *im = &r->images[k];
  if (asd_merger_pop(im->merger, &r->final_dets) == (size_t)-1) {
    asd_run_set_fatal(r, "out of memory while merging detections");
    return;
  }
  if (r->final_dets.count && asd_run_writer_image(r, k) != 0 && !r->write_error) {
    r->write_error = 1;
    asd_run_set_fatal(r, "cannot write detections to '%s': %s", r->dest, CPLGetLastErrorMsg());
  }
  for (size_t i = 0; i < r->final_dets.count; i++) {
    if (r->writer && asd_writer_add_detection(r->writer, &r->final_dets.items[i]) != 0) {
      if (!r->write_error) {
        r->write_error = 1;
        asd_run_set_fatal(r, "cannot write detections to '%s': %s", r->dest, CPLGetLastErrorMsg());
      }
      continue;
    }
    r->kept++;
    im->kept++;
  }
  asd_detections_reset(&r->final_dets);
}

void asd_run_write_final(asd_run *r) {
  for (int k = 0; k < r->nimages; k++) {
    asd_merger_finish(r->images[k].merger);
    write_final_of(r, k);
  }
}

int asd_run_parse_result(const asd_run *r, int tile, const char *text, size_t len, const char *inference_id,
                         asd_detections *out, char *reason, size_t reason_len) {
  const asd_tile *t = asd_run_plan_tile(r, tile);
  asd_tile_ref ref;
  memset(&ref, 0, sizeof ref);
  ref.index = t->index;
  ref.row = t->row;
  ref.col = t->col;
  ref.x = t->x;
  ref.y = t->y;
  ref.w = t->w;
  ref.h = t->h;
  ref.inference_id = inference_id;
  asd_parse_report rep;
  memset(&rep, 0, sizeof rep);
  asd_parse_status st = asd_features_parse(text, len, &ref, NULL, out, &rep);
  if (st != ASD_PARSE_OK) {
    snprintf(reason, reason_len, "the result is not a usable FeatureCollection: %s",
             rep.message[0] ? rep.message : asd_parse_status_name(st));
    return -1;
  }
  if (rep.rejected)
    CPLDebug("ASYNCDETECT", "tile %d: %zu of %zu features skipped (%s)", tile, rep.rejected, rep.features,
             rep.message);
  return 0;
}

void asd_run_merge_tile(asd_run *r, int tile, asd_detections *dets) {
  const int k = r->tiles[tile].image;
  char err[256];
  if (asd_merger_add_tile(r->images[k].merger, tile - r->images[k].first, dets, err, sizeof err) != 0) {
    CPLDebug("ASYNCDETECT", "merger: tile %d: %s", tile, err);
    return;
  }
  write_final_of(r, k);
}

void asd_run_journal_commit(asd_run *r) {
  if (!r->journal_shared || !r->writer) return;
  if (asd_writer_commit(r->writer) != 0) asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
}

/*
 * Is this failure the run's rather than the tile's?  Until one tile has
 * succeeded, an error that would fail every tile the same way (the input
 * cannot be read, the endpoint does not exist, the credentials are refused,
 * a bucket is missing: asd_error_is_fatal_for_run decides, from the typed
 * facts) stops the run at once with that one line instead of failing every
 * tile alike.  After a success the same error is the tile's.
 */
static int is_fatal_failure(const asd_run *r, const asd_run_event *e) {
  if (r->any_success || e->ok) return 0;
  asd_error err;
  asd_error_clear(&err);
  err.code = e->code;
  err.http_status = e->http_status;
  snprintf(err.aws_code, sizeof err.aws_code, "%s", e->aws_code);
  return asd_error_is_fatal_for_run(&err);
}

/* Stops the run with the failure's one line. */
static void stop_on_fatal(asd_run *r, const asd_run_event *e) {
  if (e->code == ASD_ERR_ENDPOINT)
    asd_run_set_fatal(r, "endpoint '%s': %s", r->o->endpoint, e->text);
  else
    asd_run_set_fatal(r, "%s", e->text);
  pthread_mutex_lock(&r->mu);
  r->stop_now = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
}

static void on_submitted(asd_run *r, asd_run_event *e, asd_run_tile *ti) {
  asd_run_set_text(&ti->inference_id, e->inference_id);
  asd_run_set_text(&ti->output_location, e->output_location);
  asd_run_set_text(&ti->failure_location, e->failure_location);
  if (asd_journal_submitted(r->journal, e->tile, e->inference_id, e->input_location, e->output_location,
                            e->failure_location) != 0)
    asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
  asd_run_journal_commit(r);
}

static void on_done(asd_run *r, asd_run_event *e, asd_run_tile *ti) {
  if (e->inference_id) asd_run_set_text(&ti->inference_id, e->inference_id);
  if (e->output_location) asd_run_set_text(&ti->output_location, e->output_location);
  if (e->failure_location) asd_run_set_text(&ti->failure_location, e->failure_location);
  if (!e->ok && e->code == ASD_ERR_CANCELLED) {
    /* Stopped now: the journal keeps it as submitted (or not at all), so
       -resume polls it again or submits it. */
    ti->state = ASD_RUN_TILE_NOT_RUN;
    return;
  }
  if (!e->ok && is_fatal_failure(r, e)) {
    ti->state = ASD_RUN_TILE_NOT_RUN;
    stop_on_fatal(r, e);
    return;
  }
  asd_detections dets;
  asd_detections_init(&dets);
  char reason[600];
  int ok = e->ok;
  if (ok && asd_run_parse_result(r, e->tile, e->text, e->text_len, e->inference_id, &dets, reason, sizeof reason) != 0)
    ok = 0;
  else if (!ok) {
    snprintf(reason, sizeof reason, "%s", e->text ? e->text : "failed");
    asd_scrub_urls(reason);
  }
  if (ok) {
    if (asd_journal_succeeded(r->journal, e->tile, e->text) != 0)
      asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
    ti->state = ASD_RUN_TILE_SUCCEEDED;
    ti->features = (long long)dets.count;
    r->received += (long long)dets.count;
    asd_run_image_of(r, e->tile)->received += (long long)dets.count;
    r->any_success = 1;
    asd_run_set_text(&ti->reason, NULL);
  } else {
    asd_journal_failed(r->journal, e->tile, reason);
    ti->state = ASD_RUN_TILE_FAILED;
    asd_run_set_text(&ti->reason, reason);
  }
  asd_run_journal_commit(r);
  r->tiles_done++;
  r->tiles_this_run++;
  asd_run_merge_tile(r, e->tile, &dets);
  asd_detections_free(&dets);
}

void asd_run_handle_event(asd_run *r, asd_run_event *e) {
  asd_run_tile *ti = (e->tile >= 0 && e->tile < r->ntiles) ? &r->tiles[e->tile] : NULL;
  if (!ti) return;
  switch (e->kind) {
    case ASD_RUN_EV_SUBMITTED:
      on_submitted(r, e, ti);
      break;
    case ASD_RUN_EV_SKIPPED:
      ti->state = ASD_RUN_TILE_SKIPPED;
      ti->skip = e->skip;
      asd_plan_set_skip(asd_run_image_of(r, e->tile)->plan, e->tile - asd_run_image_of(r, e->tile)->first, e->skip);
      r->tiles_done++;
      asd_run_merge_tile(r, e->tile, NULL);
      break;
    case ASD_RUN_EV_DONE:
      on_done(r, e, ti);
      break;
  }
}
