/*
 * summary.c: the figures of one run (asd_detect_summary) and the text the
 * utility prints from them.
 *
 * asd_run_fill_summary() counts the tiles by final state and takes the call
 * counts from the engine (the pool's counters) and the transport (requests
 * and retries of the AWS context): S3 calls are every request but the
 * invocations.  asd_detect_summary_format() is the human-readable form; the
 * -metrics file (metrics_json.c) writes the same figures as JSON.
 *
 * A new summary line: a field in asd_detect_summary (asd_app.h), filled
 * here, printed in asd_detect_summary_format(), and written in
 * metrics_json.c.
 */
#include <stdio.h>
#include <string.h>

#include "asd_run.h"
#include "engine/bound.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_http.h"
#include "cpl_conv.h"
#include "cpl_string.h"

/* Per image, for a run over several: the same counts, and its detections. */
static void count_images(const asd_run *r, asd_detect_summary *s) {
  s->images = r->nimages;
  if (r->nimages < 2) return;
  CPLFree(s->image_list);
  s->image_list = CPLCalloc((size_t)r->nimages, sizeof *s->image_list);
  for (int k = 0; k < r->nimages; k++) {
    asd_detect_image_summary *im = &s->image_list[k];
    snprintf(im->source, sizeof im->source, "%s", r->images[k].label);
    im->features_kept = r->images[k].kept;
    for (int i = r->images[k].first; i < r->images[k].first + r->images[k].ntiles; i++) {
      const asd_run_tile_state st = r->tiles[i].state;
      if (st == ASD_RUN_TILE_OTHER_SHARD) continue;
      im->tiles_planned++;
      if (st == ASD_RUN_TILE_SUCCEEDED) im->tiles_succeeded++;
      else if (st == ASD_RUN_TILE_FAILED) im->tiles_failed++;
      else if (st == ASD_RUN_TILE_SKIPPED) im->tiles_skipped++;
      else im->tiles_not_run++;
    }
  }
}

/* Bindings that mirror the struct (python/asyncdetect's ctypes) compare
 * their size with this at load time: a field added here and not there would
 * otherwise let the run write past the binding's smaller struct. */
size_t asd_detect_summary_size(void) { return sizeof(asd_detect_summary); }

void asd_detect_summary_clear(asd_detect_summary *s) {
  if (!s) return;
  CPLFree(s->image_list);
  s->image_list = NULL;
}

static void count_tiles(const asd_run *r, asd_detect_summary *s) {
  s->tiles_planned = r->ntiles - r->tiles_other;
  for (int i = 0; i < r->ntiles; i++) {
    switch (r->tiles[i].state) {
      case ASD_RUN_TILE_OTHER_SHARD:
        break;
      case ASD_RUN_TILE_SUCCEEDED:
        s->tiles_succeeded++;
        if (r->tiles[i].resumed) s->tiles_resumed++;
        break;
      case ASD_RUN_TILE_FAILED:
        s->tiles_failed++;
        if (r->tiles[i].read_error) s->tiles_read_failed++;
        break;
      case ASD_RUN_TILE_SKIPPED:
        s->tiles_skipped++;
        break;
      default:
        s->tiles_not_run++;
    }
  }
}

static void count_calls(const asd_run *r, asd_detect_summary *s) {
  if (r->detector) {
    asd_http_stats hs;
    memset(&hs, 0, sizeof hs);
    asd_aws_context_http_stats(asd_detector_aws_context(r->detector), &hs);
    asd_metric_summary ms;
    long long invokes = 0;
    if (r->metrics && asd_metrics_get(r->metrics, "InvokeDuration", &ms) == 0) invokes = ms.count;
    s->endpoint_calls = invokes;
    s->s3_calls = (long long)hs.requests > invokes ? (long long)hs.requests - invokes : 0;
    s->retries = r->counts.retries + (long long)hs.retries;
  }
  s->polling_attempts = r->counts.polls;
}

static double metric_sum(const asd_run *r, const char *name, long long *count) {
  asd_metric_summary ms;
  memset(&ms, 0, sizeof ms);
  if (r->metrics) asd_metrics_get(r->metrics, name, &ms);
  if (count) *count = ms.count;
  return ms.sum;
}

/* Bytes sent, polls, and the resource that bounded the run. */
static void fill_throughput(const asd_run *r, asd_detect_summary *s) {
  long long tiles = 0, encoded = 0, polled = 0;
  s->bytes_uploaded = (long long)metric_sum(r, "PayloadBytes", &tiles);
  s->bytes_per_tile = tiles ? (double)s->bytes_uploaded / (double)tiles : 0;
  double cpu = metric_sum(r, "EncodeCpuSeconds", &encoded);
  s->encode_cpu_ms_per_tile = encoded ? 1000 * cpu / (double)encoded : 0;
  double polls = metric_sum(r, "PollingAttempts", &polled);
  s->polls_per_job = polled ? polls / (double)polled : 0;
  s->adaptive_polling = asd_config_adaptive_polling(&r->cfg);
  if (!r->metrics) return;
  asd_bound_input in;
  memset(&in, 0, sizeof in);
  in.elapsed = r->run_seconds;
  in.tiles = tiles;
  in.encoder_threads = r->n_enc_threads;
  in.encode_seconds = metric_sum(r, "EncodeDuration", NULL);
  in.submission_workers = r->cfg.enable_worker_optimization
                              ? r->cfg.submission_workers
                              : r->cfg.submission_workers + r->cfg.polling_workers;
  in.upload_seconds = metric_sum(r, "S3UploadDuration", NULL);
  asd_metric_span sp;
  if (asd_metrics_get_span(r->metrics, "S3UploadDuration", &sp) == 0) {
    in.upload_busy_seconds = sp.covered;
    in.upload_span_seconds = sp.last - sp.first;
    s->upload_link_busy = in.upload_span_seconds > 0 ? sp.covered / in.upload_span_seconds : 0;
    s->upload_mb_s_while_sending = sp.covered > 0 ? (double)s->bytes_uploaded / 1e6 / sp.covered : 0;
  }
  in.bytes_uploaded = s->bytes_uploaded;
  in.max_concurrent_jobs = r->cfg.max_concurrent_jobs;
  in.slot_wait_seconds = metric_sum(r, "QueueTime", NULL);
  in.polls_per_job = s->polls_per_job;
  asd_bound b = asd_bound_classify(&in, s->bound_detail, sizeof s->bound_detail);
  snprintf(s->bound, sizeof s->bound, "%s", asd_bound_name(b));
}

/* What the run did to the pixels and to the coordinates (issue 16). */
static void describe_rasters(const asd_run *r, asd_detect_summary *s) {
  /* Over several images: the first one's (its encoder may be closed). */
  const asd_run_image *im = r->nimages ? &r->images[0] : NULL;
  if (im && im->encoder) {
    asd_encode_scaling_info info;
    asd_encoder_scaling_info(im->encoder, &info);
    char *d = asd_encode_scaling_describe(&info);
    snprintf(s->pixels, sizeof s->pixels, "%s%s", d, r->nimages > 1 ? " (first image)" : "");
    CPLFree(d);
  } else if (im && im->pixels) {
    snprintf(s->pixels, sizeof s->pixels, "%s%s", im->pixels, r->nimages > 1 ? " (first image)" : "");
  }
  if (im && im->georef) {
    asd_georef_describe(im->georef, s->georeferencing, sizeof s->georeferencing);
    snprintf(s->georef_why, sizeof s->georef_why, "%s", asd_georef_why(im->georef));
  }
  s->detections_not_georeferenced = r->geo_counts.detections_failed;
  s->detections_trimmed = r->geo_counts.detections_trimmed;
  s->tiles_not_georeferenced = r->geo_counts.tiles_failed;
  s->tiles_trimmed = r->geo_counts.tiles_trimmed;
}

void asd_run_fill_summary(const asd_run *r, asd_detect_summary *s) {
  count_tiles(r, s);
  count_images(r, s);
  describe_rasters(r, s);
  s->features_received = r->received;
  s->features_kept = r->kept;
  s->elapsed_seconds = asd_time_monotonic() - r->t0;
  s->tiles_per_second = r->run_seconds > 0 ? r->tiles_this_run / r->run_seconds : 0;
  count_calls(r, s);
  fill_throughput(r, s);
}

char *asd_detect_summary_format(const asd_detect_summary *s) {
  asd_buf b;
  asd_buf_init(&b);
  if (s->cleanup_only) {
    asd_buf_appendf(&b, "Pending deletions: %lld deleted, %lld not due yet%s\n", s->pending_deleted,
                    s->pending_left, s->pending_left ? " (run -cleanup-pending again later)" : "");
  } else if (s->dry_run) {
    asd_buf_appendf(&b,
                    "Dry run: %d tiles planned (%d skipped, %d to run%s); credentials and buckets checked; "
                    "nothing invoked.\n",
                    s->tiles_planned, s->tiles_skipped, s->tiles_planned - s->tiles_skipped - s->tiles_resumed,
                    s->tiles_resumed ? CPLSPrintf(", %d already done", s->tiles_resumed) : "");
  } else {
    asd_buf_appendf(&b, "Tiles: %d planned, %d skipped, %d succeeded", s->tiles_planned, s->tiles_skipped,
                    s->tiles_succeeded);
    if (s->tiles_resumed) asd_buf_appendf(&b, " (%d from an earlier run)", s->tiles_resumed);
    asd_buf_appendf(&b, ", %d failed", s->tiles_failed);
    if (s->tiles_not_run) asd_buf_appendf(&b, ", %d not run", s->tiles_not_run);
    if (s->shard_n) /* a shard writes what it received, unmerged: the merge is -merge-shards' */
      asd_buf_appendf(&b, "\nFeatures: %lld received, %lld written unmerged (shard %d/%d: -merge-shards merges)\n",
                      s->features_received, s->features_kept, s->shard_k, s->shard_n);
    else
      asd_buf_appendf(&b, "\nFeatures: %lld received, %lld kept after merging\n", s->features_received,
                      s->features_kept);
    asd_buf_appendf(&b, "Time: %.1f s, %.2f tiles/s\n", s->elapsed_seconds, s->tiles_per_second);
    asd_buf_appendf(&b, "Calls: %lld S3, %lld endpoint, %lld polls, %lld retries\n", s->s3_calls,
                    s->endpoint_calls, s->polling_attempts, s->retries);
    if (s->bound[0]) {
      asd_buf_appendf(&b, "Sent: %.1f MB, %.1f kB per tile (%.1f ms CPU to encode); %.2f polls per tile (%s)\n",
                      s->bytes_uploaded / 1e6, s->bytes_per_tile / 1e3, s->encode_cpu_ms_per_tile,
                      s->polls_per_job, s->adaptive_polling ? "adaptive" : "fixed schedule");
      asd_buf_appendf(&b, "Bound by: %s (%s)\n", s->bound, s->bound_detail);
    }
    if (s->pixels[0]) asd_buf_appendf(&b, "Pixels: %s\n", s->pixels);
    if (s->georeferencing[0]) asd_buf_appendf(&b, "Georeferencing: %s\n", s->georeferencing);
    if (s->detections_not_georeferenced || s->tiles_not_georeferenced || s->detections_trimmed || s->tiles_trimmed)
      asd_buf_appendf(&b,
                      "Not georeferenced: %lld detections, %lld tile footprints (%s; image-pixel fields only, "
                      "georef = none); trimmed to their georeferenced part: %lld detections, %lld footprints\n",
                      s->detections_not_georeferenced, s->tiles_not_georeferenced, s->georef_why,
                      s->detections_trimmed, s->tiles_trimmed);
    for (int k = 0; s->image_list && k < s->images; k++) {
      const asd_detect_image_summary *im = &s->image_list[k];
      asd_buf_appendf(&b, "Image %d/%d %s: %d tiles, %d succeeded, %d failed", k + 1, s->images, im->source,
                      im->tiles_planned, im->tiles_succeeded, im->tiles_failed);
      if (im->tiles_skipped) asd_buf_appendf(&b, ", %d skipped", im->tiles_skipped);
      if (im->tiles_not_run) asd_buf_appendf(&b, ", %d not run", im->tiles_not_run);
      asd_buf_appendf(&b, "; %lld detections%s\n", im->features_kept, s->shard_n ? " (unmerged)" : "");
    }
    if (s->tiles_location[0]) asd_buf_appendf(&b, "Tile status: %s\n", s->tiles_location);
    if (s->interrupted)
      asd_buf_append_str(&b, "Interrupted: rerun the same command with -resume to finish.\n");
    if (s->tiles_read_failed)
      asd_buf_appendf(&b,
                      "%d tile(s) could not be read from the input (GDAL's reason is in the tile-status layer): "
                      "-resume cannot fix that; repair or fetch the input again.\n",
                      s->tiles_read_failed);
    if (!s->interrupted && s->tiles_failed > s->tiles_read_failed)
      asd_buf_append_str(&b, "Some tiles failed (see the tile-status layer); rerun with -resume to retry them.\n");
  }
  char *out = CPLStrdup((const char *)b.data);
  asd_buf_free(&b);
  return out;
}

char *asd_detect_summary_exit_line(const asd_detect_summary *s, int status) {
  if (status == ASD_DETECT_OK || status == ASD_DETECT_ERROR) return NULL; /* an error has printed its line */
  if (status == ASD_DETECT_INTERRUPTED)
    return CPLStrdup(CPLSPrintf("interrupted: %d of %d tiles not run; rerun the same command with -resume to finish",
                                s->tiles_not_run, s->tiles_planned));
  const int retryable = s->tiles_failed - s->tiles_read_failed;
  return CPLStrdup(CPLSPrintf("%d of %d tiles failed%s%s%s (see %s)", s->tiles_failed + s->tiles_not_run,
                              s->tiles_planned,
                              s->tiles_read_failed ? CPLSPrintf(", %d could not be read from the input", s->tiles_read_failed) : "",
                              retryable > 0 || s->tiles_not_run ? "; rerun with -resume to retry" : "",
                              s->tiles_read_failed ? " the others" : "",
                              s->tiles_location[0] ? s->tiles_location : "the tile-status layer"));
}
