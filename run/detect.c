/*
 * detect.c: asd_detect(), the run from an open dataset and parsed options to
 * a written output, as a sequence of stages (asd_run.h lists them):
 *
 *   open input -> connect -> [dry run stops here] -> open output
 *     -> bind journal -> replay -> run -> finish
 *
 * Each stage is a function of its own file that either succeeds or prints
 * one line saying what failed and returns -1; asd_detect() stops at the
 * first failure, and asd_run_free() releases whatever the stages opened.
 * Until the run starts, the modules' own CPLErrors are captured (report.c),
 * so that a failure is one line with context.
 *
 * One tile's life, through the files of this folder: input.c plans it and
 * opens the encoder; runtime.c has an encoder thread encode it and the pool
 * submit and poll it; sink.c journals it, parses its result, merges and
 * writes its detections; output.c writes its row of the tile-status layer at
 * the end; summary.c and metrics_json.c count it.
 *
 * asd_detect_many() runs the same stages over a list of images (one pool,
 * one output, one journal), after -shard K/N has kept its block of the
 * list (a list shorter than N shards is split by tiles, as one image is);
 * asd_detect_merge_shards() reads shard outputs instead of invoking
 * (shards.c): open shards -> open input -> open output -> bind journal ->
 * replay the shards -> finish; asd_detect_cleanup_pending() needs no input:
 * locate output -> connect -> delete what earlier runs left pending.
 *
 * The finish stage decides the status: a run-level failure is
 * ASD_DETECT_ERROR (and an output this run created is removed again when no
 * tile succeeded, so the next attempt needs no -overwrite); an interruption
 * with tiles left is ASD_DETECT_INTERRUPTED; failed or unrun tiles make it
 * ASD_DETECT_PARTIAL; otherwise ASD_DETECT_OK.
 */
#include <string.h>

#include "asd_run.h"
#include "quicklook.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_string.h"

void asd_run_init(asd_run *r, const char *dest, GDALDatasetH src, const asd_detect_options *o,
                  asd_detect_summary *summary, int *usage_error) {
  memset(r, 0, sizeof *r);
  r->o = o;
  r->dest = dest;
  r->src = src;
  r->summary = summary;
  r->usage_error = usage_error;
  r->t0 = asd_time_monotonic();
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  asd_detections_init(&r->final_dets);
}

void asd_run_free(asd_run *r) {
  asd_run_report_end(&r->report);
  if (r->tiles) {
    for (int i = 0; i < r->ntiles; i++) {
      CPLFree(r->tiles[i].reason);
      CPLFree(r->tiles[i].inference_id);
      CPLFree(r->tiles[i].output_location);
      CPLFree(r->tiles[i].failure_location);
    }
    CPLFree(r->tiles);
  }
  for (int i = 0; i < r->n_to_resume; i++) asd_journal_entry_free(r->to_resume[i]);
  CPLFree(r->to_resume);
  CPLFree(r->to_encode);
  if (r->queue) {
    for (int i = 0; i < r->q_len; i++) free(r->queue[(r->q_head + i) % r->q_cap].data);
    CPLFree(r->queue);
  }
  while (r->ev_head) {
    asd_run_event *e = r->ev_head;
    r->ev_head = e->next;
    asd_run_event_free(e);
  }
  CPLFree(r->enc_threads);
  if (r->pool) asd_pool_free(r->pool);
  asd_run_keep_pending(r);
  asd_pending_free(&r->pending);
  if (r->detector) asd_detector_free(r->detector);
  if (r->metrics) asd_metrics_free(r->metrics);
  asd_detections_free(&r->final_dets);
  if (r->writer) asd_writer_close(r->writer);
  if (r->journal) asd_journal_close(r->journal);
  /* After the writer, which uses the images' georeferencers until it closes. */
  for (int k = 0; k < r->nimages; k++) asd_run_image_free(&r->images[k]);
  CPLFree(r->images);
  asd_run_shards_free(r->shards);
  CSLDestroy(r->names);
  CPLFree(r->sidecar);
  CPLFree(r->tiles_path);
  CPLFree(r->fatal);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

/* -dry-run: report what a run (or a resume) would do, touching nothing. */
static int dry_run(asd_run *r) {
  asd_detect_summary *s = r->summary;
  s->tiles_resumed = asd_run_count_resumed(r);
  asd_run_report_end(&r->report);
  s->tiles_planned = r->ntiles - r->tiles_other;
  for (int k = 0; k < r->nimages; k++) s->tiles_skipped += asd_plan_skip_count(r->images[k].plan, ASD_SKIP_OUTSIDE_AOI);
  s->images = r->nimages;
  s->elapsed_seconds = asd_time_monotonic() - r->t0;
  return ASD_DETECT_OK;
}

/* Tiles tried in this run failed because the input could not be read, and
 * no tile at all could be (none succeeded, now or earlier, none was read
 * and skipped, none failed for another reason): the input is unreadable,
 * which is the run's failure (exit 1), not a list of failed tiles.  The
 * rule depends on what happened to the tiles, never on their order. */
static void check_input_readable(asd_run *r, const asd_detect_summary *s) {
  if (r->fatal || s->tiles_read_failed == 0) return;
  const char *first = NULL;
  for (int i = 0; i < r->ntiles; i++) {
    const asd_run_tile *t = &r->tiles[i];
    if (t->state == ASD_RUN_TILE_SUCCEEDED || (t->state == ASD_RUN_TILE_FAILED && !t->read_error)) return;
    if (t->state == ASD_RUN_TILE_SKIPPED && t->skip != ASD_SKIP_OUTSIDE_AOI) return;
    if (t->read_error && !first) first = t->reason;
  }
  const char *why = first ? strstr(first, ASD_RUN_READ_FAILURE ": ") : NULL;
  asd_run_set_fatal(r, "cannot read %s%s%s: none of the %d tile(s) tried could be read (the first: %s)",
                    r->nimages > 1 ? "any of the inputs" : "input '", r->nimages > 1 ? "" : r->images[0].label,
                    r->nimages > 1 ? "" : "'", s->tiles_read_failed,
                    why ? why + strlen(ASD_RUN_READ_FAILURE ": ") : "unknown error");
}

/* -quicklook: a picture of what was just written (tiler/quicklook.c).  The
   output is written already, so a picture that cannot be made is a warning. */
static void write_quicklook(asd_run *r) {
  const asd_detect_options *o = r->o;
  const asd_quicklook_request q = {o->quicklook, o->quicklook_width, r->images[0].src, o->bands, o->nbands, r->dest,
                                   o->layer_name, r->summary->tiles_location[0] ? r->summary->tiles_location : NULL,
                                   r->tiles_layer, r->images[0].label};
  if (asd_quicklook_write(&q) != 0)
    CPLError(CE_Warning, CPLE_AppDefined, "cannot write the quicklook '%s': %s", o->quicklook, CPLGetLastErrorMsg());
}

int asd_run_finish(asd_run *r) {
  const asd_detect_options *o = r->o;
  asd_detect_summary *s = r->summary;
  asd_run_write_final(r);
  int interrupted = (o->interrupt && *o->interrupt > 0) || r->stop_submitting;
  asd_run_write_tile_status(r, interrupted);
  asd_run_note_skipped(r);
  asd_run_journal_commit(r);
  asd_run_keep_pending(r); /* while a shared journal's connection is open */
  asd_run_close_output(r);
  asd_run_fill_summary(r, s);
  s->shard_k = r->shards ? 0 : o->shard_k;
  s->shard_n = r->shards ? 0 : o->shard_n;
  check_input_readable(r, s);
  s->interrupted = interrupted && s->tiles_not_run > 0;
  int status = ASD_DETECT_OK;
  if (r->fatal)
    status = ASD_DETECT_ERROR;
  else if (s->interrupted)
    status = ASD_DETECT_INTERRUPTED;
  else if (s->tiles_failed || s->tiles_not_run)
    status = ASD_DETECT_PARTIAL;
  if (o->metrics_path) asd_run_write_metrics(r, s, status);
  if (o->quicklook && !r->fatal) write_quicklook(r);
  if (r->fatal) {
    asd_run_error("%s", r->fatal);
    asd_run_discard_output(r);
  }
  return status;
}

/* -cleanup-pending: the output's journal and the AWS settings are all it
   needs (the pending list and the deletion scope); no input is opened. */
static int cleanup_stages(asd_run *r) {
  asd_run_report_begin(&r->report);
  asd_run_locate_output(r);
  if (!asd_run_path_exists(r->journal_path)) {
    asd_run_fail(r, "-cleanup-pending: '%s' does not exist: give the DST_VECTOR of the runs that left deletions "
                    "pending", r->journal_path);
    return ASD_DETECT_ERROR;
  }
  if (asd_run_connect(r) != 0 || asd_run_take_pending(r) != 0) return ASD_DETECT_ERROR;
  return asd_run_cleanup_pending_only(r);
}

static int run_stages(asd_run *r) {
  if (r->o->cleanup_pending) return cleanup_stages(r);
  asd_run_report_begin(&r->report);
  if (asd_run_open_input(r) != 0 || asd_run_connect(r) != 0) return ASD_DETECT_ERROR;
  asd_run_locate_output(r);
  if (r->o->dry_run) return dry_run(r);
  if (asd_run_take_pending(r) != 0) return ASD_DETECT_ERROR;
  if (asd_run_open_output(r) != 0 || asd_run_bind_journal(r) != 0 || asd_run_replay(r) != 0)
    return ASD_DETECT_ERROR;
  asd_run_report_end(&r->report);
  if (r->fatal) {
    asd_run_error("%s", r->fatal);
    return ASD_DETECT_ERROR;
  }
  if (asd_run_execute(r) != 0) return ASD_DETECT_ERROR;
  return asd_run_finish(r);
}

/* -merge-shards: the shards' journals replayed into one output. */
static int merge_stages(asd_run *r, char **shards) {
  asd_run_report_begin(&r->report);
  if (asd_run_open_shards(r, shards) != 0 || asd_run_open_input(r) != 0 || asd_run_check_shard_sources(r) != 0)
    return ASD_DETECT_ERROR;
  asd_run_locate_output(r);
  if (asd_run_open_output(r) != 0 || asd_run_bind_journal(r) != 0) return ASD_DETECT_ERROR;
  asd_run_report_end(&r->report);
  if (asd_run_replay_shards(r) != 0 && !r->fatal) return ASD_DETECT_ERROR;
  return asd_run_finish(r);
}

static int usage_fail(int *usage_error, const char *msg) {
  if (usage_error) *usage_error = 1;
  asd_run_error("%s (see gdal_asyncdetect --help)", msg);
  return ASD_DETECT_ERROR;
}

/* What every entry point checks first: 0, or the status to return. */
static int check_call(const char *dest, const asd_detect_options *o, asd_detect_summary *summary, int *usage_error,
                      int need_endpoint) {
  memset(summary, 0, sizeof *summary);
  if (usage_error) *usage_error = 0;
  if (!o || !dest || !*dest) {
    asd_run_error("asd_detect: a source, a destination and options are required");
    return ASD_DETECT_ERROR;
  }
  summary->dry_run = o->dry_run;
  if (need_endpoint && !o->endpoint && !o->dry_run && !CPLGetConfigOption("ASYNC_SM_ENDPOINT", NULL))
    return usage_fail(usage_error, "no endpoint: give -endpoint NAME or set ASYNC_SM_ENDPOINT");
  if (o->merge_shards && need_endpoint)
    return usage_fail(usage_error, "-merge-shards: call asd_detect_merge_shards() with the shard outputs");
  return 0;
}

static int run_one(asd_run *run, char **shards) {
  int status = shards ? merge_stages(run, shards) : run_stages(run);
  if (status == ASD_DETECT_ERROR && !run->summary->elapsed_seconds)
    run->summary->elapsed_seconds = asd_time_monotonic() - run->t0;
  asd_run_free(run);
  return status;
}

int asd_detect(const char *dest, GDALDatasetH src, const asd_detect_options *o, asd_detect_summary *summary,
               int *usage_error) {
  asd_detect_summary local;
  if (!summary) summary = &local;
  int rc = check_call(dest, o, summary, usage_error, 1);
  if (rc != 0) return rc;
  if (!src) {
    asd_run_error("asd_detect: a source dataset is required");
    return ASD_DETECT_ERROR;
  }
  asd_run run;
  asd_run_init(&run, dest, src, o, summary, usage_error);
  run.shard_by_tiles = 1;
  return run_one(&run, NULL);
}

/* -shard K/N over a list keeps a block of the list.  A list shorter than
   N is split by tiles instead, as one image is: a fleet of N workers over
   a short list then has work for every worker, and a worker that still
   gets none (fewer tiles than workers) writes an empty shard that merges. */
static char **shard_of_list(char **sources, const asd_detect_options *o, int *by_tiles) {
  const int m = CSLCount(sources);
  *by_tiles = o->shard_n && m < o->shard_n;
  if (!o->shard_n || *by_tiles) return CSLDuplicate(sources);
  int a, b;
  asd_shard_range(m, o->shard_k, o->shard_n, &a, &b);
  char **part = NULL;
  for (int i = a; i < b; i++) part = CSLAddString(part, sources[i]);
  return part;
}

int asd_detect_many(const char *dest, char **sources, const asd_detect_options *o, asd_detect_summary *summary,
                    int *usage_error) {
  asd_detect_summary local;
  if (!summary) summary = &local;
  int rc = check_call(dest, o, summary, usage_error, 1);
  if (rc != 0) return rc;
  if (CSLCount(sources) < 1) return usage_fail(usage_error, "no input: give SRC_RASTER... DST_VECTOR");
  if (CSLCount(sources) > 1 && (o->has_srcwin || o->has_projwin || o->quicklook))
    return usage_fail(usage_error, "-srcwin, -projwin and -quicklook apply to one image, not to a list");
  int by_tiles = 0;
  char **names = shard_of_list(sources, o, &by_tiles);
  asd_run run;
  asd_run_init(&run, dest, NULL, o, summary, usage_error);
  run.names = names;
  run.shard_by_tiles = by_tiles;
  int status = run_one(&run, NULL);
  if (summary == &local) asd_detect_summary_clear(&local);
  return status;
}

int asd_detect_cleanup_pending(const char *dest, const asd_detect_options *o, asd_detect_summary *summary,
                               int *usage_error) {
  asd_detect_summary local;
  if (!summary) summary = &local;
  int rc = check_call(dest, o, summary, usage_error, 1);
  if (rc != 0) return rc;
  if (!o->cleanup_pending) return usage_fail(usage_error, "asd_detect_cleanup_pending() wants -cleanup-pending");
  asd_run run;
  asd_run_init(&run, dest, NULL, o, summary, usage_error);
  return run_one(&run, NULL);
}

int asd_detect_merge_shards(const char *dest, char **shards, const asd_detect_options *o,
                            asd_detect_summary *summary, int *usage_error) {
  asd_detect_summary local;
  if (!summary) summary = &local;
  int rc = check_call(dest, o, summary, usage_error, 0);
  if (rc != 0) return rc;
  if (CSLCount(shards) < 1) return usage_fail(usage_error, "-merge-shards wants SHARD... DST_VECTOR");
  if (o->shard_n || o->resume || o->dry_run || o->cleanup_pending)
    return usage_fail(usage_error, "-merge-shards merges finished shards: it takes no -shard, -resume, -dry-run or "
                                   "-cleanup-pending");
  asd_run run;
  asd_run_init(&run, dest, NULL, o, summary, usage_error);
  int status = run_one(&run, shards);
  if (summary == &local) asd_detect_summary_clear(&local);
  return status;
}
