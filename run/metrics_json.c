/*
 * metrics_json.c: the -metrics file.
 *
 * One JSON document per run: the status and exit status, what ran (source,
 * destination, tile-status location, endpoint), the summary's figures
 * (tiles, features, time, calls), the engine configuration, the engine's
 * metrics (AsyncMetricsTracker) and every failed tile with its window,
 * reason, inference id and S3 locations, so that a failure can be followed
 * up without the output.  It is written to a temporary name and renamed, so
 * a reader never sees half a file.
 *
 * A run over several images adds "images", one object per image with its
 * figures (the summary's image_list); "source" is then the first image.
 * A shard (-shard K/N) writes its features unmerged, so its figures say
 * "written_unmerged" where a whole run's say "kept" (after merging).
 * Sources are written by their label: no query string, so a presigned
 * URL's signature never reaches the file.
 *
 * A new figure goes in the summary first (asd_app.h, summary.c) and is
 * written here from the summary; a per-tile fact goes in the failed_tiles
 * objects.
 */
#include <stdlib.h>
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"

#include <json-c/json.h>

static void append_json_string(asd_buf *b, const char *key, const char *value) {
  json_object *js = json_object_new_string(value);
  asd_buf_appendf(b, "  \"%s\": %s,\n", key, json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN));
  json_object_put(js);
}

/* What the features written to the output are: kept after merging, or (a
 * shard) written unmerged. */
static const char *features_label(const asd_detect_summary *s) { return s->shard_n ? "written_unmerged" : "kept"; }

static void append_figures(asd_buf *b, const asd_detect_summary *s) {
  asd_buf_appendf(b,
                  "  \"tiles\": {\"planned\": %d, \"skipped\": %d, \"resumed\": %d, \"succeeded\": %d, "
                  "\"failed\": %d, \"not_run\": %d},\n",
                  s->tiles_planned, s->tiles_skipped, s->tiles_resumed, s->tiles_succeeded, s->tiles_failed,
                  s->tiles_not_run);
  /* A shard writes what it received without merging (-merge-shards does):
   * "kept" would claim a merge that did not happen. */
  asd_buf_appendf(b, "  \"features\": {\"received\": %lld, \"%s\": %lld},\n", s->features_received,
                  features_label(s), s->features_kept);
  asd_buf_appendf(b, "  \"elapsed_seconds\": %.3f,\n  \"tiles_per_second\": %.3f,\n", s->elapsed_seconds,
                  s->tiles_per_second);
  asd_buf_appendf(b, "  \"calls\": {\"s3\": %lld, \"endpoint\": %lld, \"polls\": %lld, \"retries\": %lld},\n",
                  s->s3_calls, s->endpoint_calls, s->polling_attempts, s->retries);
  asd_buf_appendf(b,
                  "  \"polling\": {\"mode\": \"%s\", \"polls_per_job\": %.3f},\n"
                  "  \"upload\": {\"bytes\": %lld, \"bytes_per_tile\": %.1f, \"encode_cpu_ms_per_tile\": %.3f, "
                  "\"link_busy_fraction\": %.3f, \"mb_per_s_while_sending\": %.3f},\n",
                  s->adaptive_polling ? "adaptive" : "fixed", s->polls_per_job, s->bytes_uploaded,
                  s->bytes_per_tile, s->encode_cpu_ms_per_tile, s->upload_link_busy, s->upload_mb_s_while_sending);
  json_object *bound = json_object_new_object();
  json_object_object_add(bound, "resource", json_object_new_string(s->bound));
  json_object_object_add(bound, "detail", json_object_new_string(s->bound_detail));
  asd_buf_appendf(b, "  \"bound\": %s,\n", json_object_to_json_string_ext(bound, JSON_C_TO_STRING_PLAIN));
  json_object_put(bound);
  asd_buf_appendf(b, "  \"tiles_read_failed\": %d,\n", s->tiles_read_failed);
}

/* What was done to the pixels and the coordinates (issue 16). */
static void append_rasters(asd_buf *b, const asd_run *r, const asd_detect_summary *s) {
  json_object *px = json_object_new_object();
  const asd_encoder *enc = r->nimages ? r->images[0].encoder : NULL;
  if (enc) {
    asd_encode_scaling_info in;
    asd_encoder_scaling_info(enc, &in);
    json_object_object_add(px, "mode", json_object_new_string(asd_scale_mode_name(in.mode)));
    json_object_object_add(px, "automatic", json_object_new_boolean(in.automatic));
    json_object_object_add(px, "data_type", json_object_new_string(GDALGetDataTypeName(in.data_type)));
    if (in.mode == ASD_SCALE_PERCENTILE || in.mode == ASD_SCALE_DRA) {
      json_object_object_add(px, "percentile_low", json_object_new_double(in.percentile_low));
      json_object_object_add(px, "percentile_high", json_object_new_double(in.percentile_high));
    }
    json_object_object_add(px, "statistics_from", json_object_new_string(in.source));
    json_object *bands = json_object_new_array();
    for (int i = 0; i < in.nbands; i++) {
      json_object *bo = json_object_new_object();
      json_object_object_add(bo, "band", json_object_new_int(in.bands[i]));
      json_object_object_add(bo, "src_min", json_object_new_double(in.src_min[i]));
      json_object_object_add(bo, "src_max", json_object_new_double(in.src_max[i]));
      json_object_object_add(bo, "samples", json_object_new_int64(in.samples[i]));
      json_object_array_add(bands, bo);
    }
    json_object_object_add(px, "bands", bands);
  }
  json_object_object_add(px, "summary", json_object_new_string(s->pixels));
  asd_buf_appendf(b, "  \"pixels\": %s,\n", json_object_to_json_string_ext(px, JSON_C_TO_STRING_PLAIN));
  json_object_put(px);
  json_object *geo = json_object_new_object();
  json_object_object_add(geo, "method",
                         json_object_new_string(r->nimages ? asd_georef_method(r->images[0].georef) : ""));
  json_object_object_add(geo, "summary", json_object_new_string(s->georeferencing));
  json_object *ng = json_object_new_object();
  json_object_object_add(ng, "detections", json_object_new_int64(s->detections_not_georeferenced));
  json_object_object_add(ng, "tiles", json_object_new_int64(s->tiles_not_georeferenced));
  json_object_object_add(ng, "detections_trimmed", json_object_new_int64(s->detections_trimmed));
  json_object_object_add(ng, "tiles_trimmed", json_object_new_int64(s->tiles_trimmed));
  json_object_object_add(ng, "why", json_object_new_string(s->georef_why));
  json_object_object_add(geo, "not_georeferenced", ng);
  asd_buf_appendf(b, "  \"georeferencing\": %s,\n", json_object_to_json_string_ext(geo, JSON_C_TO_STRING_PLAIN));
  json_object_put(geo);
}

/* One object per image of a run over several. */
static void append_images(asd_buf *b, const asd_detect_summary *s) {
  if (!s->image_list) return;
  json_object *a = json_object_new_array();
  for (int k = 0; k < s->images; k++) {
    const asd_detect_image_summary *im = &s->image_list[k];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "source", json_object_new_string(im->source));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "planned", json_object_new_int(im->tiles_planned));
    json_object_object_add(t, "skipped", json_object_new_int(im->tiles_skipped));
    json_object_object_add(t, "succeeded", json_object_new_int(im->tiles_succeeded));
    json_object_object_add(t, "failed", json_object_new_int(im->tiles_failed));
    json_object_object_add(t, "not_run", json_object_new_int(im->tiles_not_run));
    json_object_object_add(o, "tiles", t);
    json_object_object_add(o, CPLSPrintf("features_%s", features_label(s)), json_object_new_int64(im->features_kept));
    json_object_array_add(a, o);
  }
  asd_buf_appendf(b, "  \"images\": %s,\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
  json_object_put(a);
}

static json_object *failed_tile_json(const asd_run *r, int i) {
  const asd_run_tile *ti = &r->tiles[i];
  const asd_tile *t = asd_run_plan_tile(r, i);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "tile", json_object_new_int(i));
  if (r->nimages > 1) json_object_object_add(o, "source_image", json_object_new_string(asd_run_image_of(r, i)->label));
  json_object_object_add(o, "row", json_object_new_int(t->row));
  json_object_object_add(o, "col", json_object_new_int(t->col));
  json_object *win = json_object_new_array();
  json_object_array_add(win, json_object_new_int(t->x));
  json_object_array_add(win, json_object_new_int(t->y));
  json_object_array_add(win, json_object_new_int(t->w));
  json_object_array_add(win, json_object_new_int(t->h));
  json_object_object_add(o, "window", win);
  json_object_object_add(o, "reason", json_object_new_string(ti->reason ? ti->reason : ""));
  json_object_object_add(o, "read_error", json_object_new_boolean(ti->read_error));
  json_object_object_add(o, "inference_id", ti->inference_id ? json_object_new_string(ti->inference_id) : NULL);
  json_object_object_add(o, "output_location",
                         ti->output_location ? json_object_new_string(ti->output_location) : NULL);
  json_object_object_add(o, "failure_location",
                         ti->failure_location ? json_object_new_string(ti->failure_location) : NULL);
  return o;
}

static int write_atomically(const char *path, const asd_buf *b) {
  char *tmp = CPLStrdup(CPLSPrintf("%s.tmp", path));
  int rc = -1;
  VSILFILE *f = VSIFOpenL(tmp, "wb");
  if (f) {
    if (VSIFWriteL(b->data, 1, b->len, f) == b->len) rc = 0;
    if (VSIFCloseL(f) != 0) rc = -1;
    if (rc == 0 && VSIRename(tmp, path) != 0) rc = -1;
    if (rc != 0) VSIUnlink(tmp);
  }
  if (rc != 0) CPLError(CE_Warning, CPLE_FileIO, "cannot write the metrics file '%s'", path);
  CPLFree(tmp);
  return rc;
}

int asd_run_write_metrics(const asd_run *r, const asd_detect_summary *s, int status) {
  asd_buf b;
  asd_buf_init(&b);
  static const char *const names[] = {"ok", "error", "partial", "interrupted"};
  char *engine = r->metrics ? asd_metrics_to_json(r->metrics) : NULL;
  char *config = asd_config_to_json(&r->cfg);
  asd_buf_appendf(&b, "{\n  \"status\": \"%s\",\n  \"exit_status\": %d,\n", names[status & 3], status);
  append_json_string(&b, "source", r->nimages ? r->images[0].label : "");
  if (r->o->shard_n) asd_buf_appendf(&b, "  \"shard\": \"%d/%d\",\n", r->o->shard_k, r->o->shard_n);
  append_json_string(&b, "dest", r->dest);
  append_json_string(&b, "tile_status", s->tiles_location);
  append_json_string(&b, "endpoint", r->o->endpoint ? r->o->endpoint : "");
  append_figures(&b, s);
  append_rasters(&b, r, s);
  append_images(&b, s);
  asd_buf_appendf(&b, "  \"config\": %s,\n", config ? config : "null");
  asd_buf_appendf(&b, "  \"engine\": %s,\n", engine ? engine : "{}");
  asd_buf_append_str(&b, "  \"failed_tiles\": [");
  int first = 1;
  for (int i = 0; i < r->ntiles; i++) {
    if (r->tiles[i].state != ASD_RUN_TILE_FAILED) continue;
    json_object *o = failed_tile_json(r, i);
    asd_buf_appendf(&b, "%s\n    %s", first ? "" : ",", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    first = 0;
  }
  asd_buf_append_str(&b, first ? "]\n}\n" : "\n  ]\n}\n");
  free(engine);
  free(config);
  int rc = write_atomically(r->o->metrics_path, &b);
  asd_buf_free(&b);
  return rc;
}
