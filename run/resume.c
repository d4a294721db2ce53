/*
 * resume.c: the journal stages of a run, bind journal and replay.
 *
 * The journal (tiler/journal.c) is the single source of truth of a run: it
 * keeps each tile's state, inference id, S3 locations and, for a succeeded
 * tile, the result text.  Its identity (source, raster size, window, tile
 * size, overlap, bands, scaling, tile format, endpoint) says what its tile
 * numbers mean; a resumed run must agree with it, and this is checked before
 * anything is written (asd_run_check_resume), so a journal of another run
 * never costs the user their output.
 *
 * Bind.  Inside a GeoPackage the journal writes through the writer's own
 * connection (one connection, no lock waits; sink.c commits the open batch
 * at each state change); other formats get a sidecar OUT.asdjournal.gpkg.
 * A new run notes how the output was opened ("create" or "append"), which
 * is how -resume later knows whether to create it again or reopen it.
 *
 * Replay.  On -resume the tiles recorded as succeeded are not invoked again:
 * their stored results are fed to the merger as if they had just arrived;
 * tiles recorded as submitted are polled again at the S3 locations the
 * endpoint named (the engine's "resume" jobs); only tiles never submitted,
 * or failed, are read, encoded and invoked.  The detections layer is rebuilt
 * from the merged results, so a run killed at any point and then resumed
 * gives the same output as a clean run: no duplicate, no gap.
 *
 * Several images.  Tile numbers run across the set, so the identity lists
 * every image (image.K = LABEL|WxHxB|WINDOW|TILES, in order): -resume must
 * be given the same list.  Sources are identified by their label (without
 * a query string), so a presigned URL signed again resumes its run.  A
 * shard (-shard K/N) is bound to the same identity as the whole run (its
 * tile numbers are the whole plan's) and notes which shard it is; the tiles
 * it skipped are noted too (note "skipped"), for -merge-shards.
 */
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_string.h"

/* The keys that say what the images are. */
static char **image_identity(const asd_run *r, char **m) {
  for (int k = 0; k < r->nimages; k++) {
    const asd_run_image *im = &r->images[k];
    int x, y, w, h;
    asd_plan_roi(im->plan, &x, &y, &w, &h);
    if (r->nimages == 1) {
      m = CSLSetNameValue(m, "source", im->label);
      m = CSLSetNameValue(m, "raster_size", im->raster_size);
      m = CSLSetNameValue(m, "window", CPLSPrintf("%d,%d,%d,%d", x, y, w, h));
    } else {
      m = CSLSetNameValue(m, CPLSPrintf("image.%d", k),
                          CPLSPrintf("%s|%s|%d,%d,%d,%d|%d", im->label, im->raster_size, x, y, w, h, im->ntiles));
    }
  }
  if (r->nimages > 1) m = CSLSetNameValue(m, "images", CPLSPrintf("%d", r->nimages));
  return m;
}

char **asd_run_identity(const asd_run *r) {
  const asd_detect_options *o = r->o;
  char **m = image_identity(r, NULL);
  if (r->shards) {
    /* A merge is bound to the identity its shards share. */
    m = CSLSetNameValue(m, "tiles", CPLSPrintf("%d", r->ntiles));
    for (char **p = r->shards->common; p && *p; p++) m = CSLAddString(m, *p);
    return m;
  }
  m = CSLSetNameValue(m, "tile_size", CPLSPrintf("%d", o->tile_size));
  m = CSLSetNameValue(m, "overlap", CPLSPrintf("%d", o->overlap));
  m = CSLSetNameValue(m, "tiles", CPLSPrintf("%d", r->ntiles));
  char bands[256] = "";
  for (int i = 0; i < o->nbands && strlen(bands) < 200; i++)
    snprintf(bands + strlen(bands), sizeof bands - strlen(bands), "%s%d", i ? "," : "", o->bands[i]);
  m = CSLSetNameValue(m, "bands", bands[0] ? bands : "default");
  /* The default became auto (a range adjustment for non-Byte data): a
     journal of a run that clamped ("none") must not be resumed by one
     that adjusts. */
  m = CSLSetNameValue(m, "scale",
                      o->scale_mode == 2   ? CPLSPrintf("%.17g,%.17g", o->scale[0], o->scale[1])
                      : o->scale_mode == 1 ? "minmax"
                      : o->scale_spec      ? o->scale_spec
                                           : "auto");
  m = CSLSetNameValue(m, "tile_format", o->tile_format);
  m = CSLSetNameValue(m, "endpoint", o->endpoint ? o->endpoint : "");
  return m;
}

/* Which shard the journal is: a shard resumes as the same shard only, and a
   whole run's journal is not taken over by a shard (or the reverse).
   Checked before the output is reopened, like the identity. */
static int check_shard(asd_run *r) {
  char mine[64] = "";
  if (r->o->shard_n) snprintf(mine, sizeof mine, "%d/%d", r->o->shard_k, r->o->shard_n);
  char *noted = asd_journal_get_note(r->journal, "shard");
  int rc = 0;
  if (strcmp(noted ? noted : "", mine) != 0)
    rc = asd_run_fail(r, "-resume: the journal of '%s' is %s%s, this run %s%s", r->dest,
                      noted && *noted ? "shard " : "a whole run's", noted ? noted : "",
                      *mine ? "is shard " : "is the whole run", mine);
  CPLFree(noted);
  return rc;
}

/* Binds the journal to this run's identity; one line on a mismatch. */
static int bind_identity(asd_run *r) {
  char **identity = asd_run_identity(r);
  char *mismatch = NULL;
  int rc = asd_journal_bind(r->journal, identity, &mismatch);
  CSLDestroy(identity);
  if (rc == 0) return 0;
  asd_run_fail(r, "-resume: the journal of '%s' belongs to another run (%s)", r->dest,
               mismatch ? mismatch : "identity differs");
  CPLFree(mismatch);
  return -1;
}

int asd_run_check_resume(asd_run *r) {
  r->journal = asd_journal_open_path(r->journal_path, 0);
  if (!r->journal)
    return asd_run_fail(r, "-resume: cannot read the journal of '%s': %s", r->dest,
                        asd_run_report_first(&r->report, "unknown error"));
  if (bind_identity(r) != 0 || check_shard(r) != 0) return -1;
  char *mode = asd_journal_get_note(r->journal, "output_mode");
  if (!r->in_gpkg) r->resume_append = mode && EQUAL(mode, "append");
  CPLFree(mode);
  if (r->in_gpkg) {
    /* Reopened by asd_run_bind_journal through the writer's connection. */
    asd_journal_close(r->journal);
    r->journal = NULL;
  }
  return 0;
}

int asd_run_bind_journal(asd_run *r) {
  if (r->in_gpkg) {
    r->journal = asd_journal_open_dataset(asd_writer_dataset(r->writer), 1);
    r->journal_shared = r->journal != NULL;
  } else if (!r->journal) {
    r->journal = asd_journal_open_path(r->journal_path, 1);
  }
  if (!r->journal)
    return asd_run_fail(r, "cannot open the journal in '%s': %s", r->journal_path,
                        asd_run_report_first(&r->report, "unknown error"));
  if (bind_identity(r) != 0) {
    r->output_created = 0;
    return -1;
  }
  /* How the output was opened decides how -resume reopens it. */
  if (!r->o->resume &&
      asd_journal_set_note(r->journal, "output_mode", r->dest_existed && r->o->append ? "append" : "create") != 0)
    return asd_run_fail(r, "cannot write the journal in '%s': %s", r->journal_path,
                        asd_run_report_first(&r->report, "unknown error"));
  if (!r->o->resume &&
      asd_journal_set_note(r->journal, "shard",
                           r->o->shard_n ? CPLSPrintf("%d/%d", r->o->shard_k, r->o->shard_n) : "") != 0)
    return asd_run_fail(r, "cannot write the journal in '%s': %s", r->journal_path,
                        asd_run_report_first(&r->report, "unknown error"));
  asd_run_journal_commit(r);
  return 0;
}

/* A tile an earlier run completed: its stored result goes to the merger.
   Returns 1 when it was replayed, 0 when it has to run again. */
static int replay_succeeded(asd_run *r, int i, const asd_journal_entry *e) {
  char *text = asd_journal_result(r->journal, i);
  asd_detections dets;
  asd_detections_init(&dets);
  char reason[600];
  int replayed = 0;
  if (text && asd_run_parse_result(r, i, text, strlen(text), e->inference_id, &dets, reason, sizeof reason) == 0) {
    asd_run_tile *ti = &r->tiles[i];
    ti->state = ASD_RUN_TILE_SUCCEEDED;
    ti->resumed = 1;
    ti->features = (long long)dets.count;
    asd_run_set_text(&ti->inference_id, e->inference_id);
    asd_run_set_text(&ti->output_location, e->output_location);
    r->received += (long long)dets.count;
    asd_run_image_of(r, i)->received += (long long)dets.count;
    r->tiles_done++;
    r->any_success = 1;
    asd_run_merge_tile(r, i, &dets);
    replayed = 1;
  }
  asd_detections_free(&dets);
  CPLFree(text);
  return replayed;
}

int asd_run_replay(asd_run *r) {
  if (asd_run_open_merger(r) != 0) return -1;
  r->to_encode = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(int));
  r->to_resume = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(asd_journal_entry *));
  for (int i = 0; i < r->ntiles; i++) {
    if (r->tiles[i].state == ASD_RUN_TILE_OTHER_SHARD) {
      asd_run_merge_tile(r, i, NULL); /* done as far as this run goes */
      continue;
    }
    asd_journal_entry *e = r->o->resume ? asd_journal_get(r->journal, i) : NULL;
    if (e && e->state == ASD_JOURNAL_SUCCEEDED && replay_succeeded(r, i, e)) {
      asd_journal_entry_free(e);
      continue;
    }
    /* In flight: invoked, or stopped during the invocation (an id and an
       input, no location yet): either way not invoked again blindly. */
    if (e && e->state == ASD_JOURNAL_SUBMITTED &&
        ((e->output_location && *e->output_location) ||
         (e->inference_id && *e->inference_id && e->input_location && *e->input_location))) {
      asd_run_set_text(&r->tiles[i].inference_id, e->inference_id);
      r->to_resume[r->n_to_resume++] = e;
      continue;
    }
    asd_journal_entry_free(e);
    r->to_encode[r->n_to_encode++] = i;
    asd_run_image_of(r, i)->enc_left++;
  }
  return 0;
}

/* A tile's record from a shard (-merge-shards): a result is replayed and
   recorded as this run's, a failure keeps its reason. */
void asd_run_replay_recorded(asd_run *r, int g, const asd_journal_entry *e, const char *text) {
  asd_run_tile *ti = &r->tiles[g];
  asd_run_set_text(&ti->inference_id, e->inference_id);
  asd_run_set_text(&ti->output_location, e->output_location);
  if (asd_journal_submitted(r->journal, g, e->inference_id, e->input_location, e->output_location,
                            e->failure_location) != 0)
    asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
  asd_detections dets;
  asd_detections_init(&dets);
  char reason[600];
  snprintf(reason, sizeof reason, "%s", e->reason ? e->reason : "failed");
  int ok = text && asd_run_parse_result(r, g, text, strlen(text), e->inference_id, &dets, reason, sizeof reason) == 0;
  if (ok) {
    if (asd_journal_succeeded(r->journal, g, text) != 0)
      asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
    ti->state = ASD_RUN_TILE_SUCCEEDED;
    ti->features = (long long)dets.count;
    r->received += (long long)dets.count;
    asd_run_image_of(r, g)->received += (long long)dets.count;
    r->any_success = 1;
  } else {
    asd_journal_failed(r->journal, g, reason);
    ti->state = ASD_RUN_TILE_FAILED;
    asd_run_set_text(&ti->reason, reason);
  }
  r->tiles_done++;
  asd_run_merge_tile(r, g, &dets);
  asd_detections_free(&dets);
}

void asd_run_replay_skipped(asd_run *r, int g, asd_skip_reason why) {
  asd_run_image *im = asd_run_image_of(r, g);
  r->tiles[g].state = ASD_RUN_TILE_SKIPPED;
  r->tiles[g].skip = why;
  asd_plan_set_skip(im->plan, g - im->first, why);
  r->tiles_done++;
  asd_run_merge_tile(r, g, NULL);
}

/* A tile no shard finished: left for -resume (in flight: polled again). */
void asd_run_replay_not_run(asd_run *r, int g, const asd_journal_entry *e, const char *reason) {
  asd_run_tile *ti = &r->tiles[g];
  ti->state = ASD_RUN_TILE_NOT_RUN;
  asd_run_set_text(&ti->reason, reason);
  if (e && e->state == ASD_JOURNAL_SUBMITTED) {
    asd_run_set_text(&ti->inference_id, e->inference_id);
    if (asd_journal_submitted(r->journal, g, e->inference_id, e->input_location, e->output_location,
                              e->failure_location) != 0)
      asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
  }
  asd_run_merge_tile(r, g, NULL);
}

/* The tiles this run skipped, for -merge-shards (a skipped tile has no
   journal row): "TILE:REASON,...". */
void asd_run_note_skipped(asd_run *r) {
  if (!r->journal) return;
  asd_buf b;
  asd_buf_init(&b);
  for (int g = 0; g < r->ntiles; g++)
    if (r->tiles[g].state == ASD_RUN_TILE_SKIPPED)
      asd_buf_appendf(&b, "%s%d:%s", b.len ? "," : "", g, asd_skip_reason_name(r->tiles[g].skip));
  if ((b.len || r->o->shard_n) && asd_journal_set_note(r->journal, "skipped", b.len ? (const char *)b.data : "") != 0)
    asd_run_set_fatal(r, "cannot write the journal: %s", CPLGetLastErrorMsg());
  asd_buf_free(&b);
}

int asd_run_count_resumed(const asd_run *r) {
  if (!r->o->resume || !asd_run_path_exists(r->journal_path)) return 0;
  asd_journal *j = asd_journal_open_path(r->journal_path, 0);
  if (!j) return 0;
  int n = 0;
  for (int i = 0; i < r->ntiles; i++) {
    asd_journal_entry *e = asd_journal_get(j, i);
    if (e && e->state == ASD_JOURNAL_SUCCEEDED) n++;
    asd_journal_entry_free(e);
  }
  asd_journal_close(j);
  return n;
}
