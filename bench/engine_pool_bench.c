/*
 * engine_pool_bench.c: drives the async engine's worker pool against an
 * endpoint (normally the local one) and prints one JSON line of figures.
 *
 * The payload is encoded once before the clock starts (a small PNG), so the
 * CPU time measured is the engine's own: upload, invoke, polls, download,
 * result check, cleanup, threads.  The AWS environment (AWS_ENDPOINT_URL,
 * keys, region) must point at the endpoint; bench/engine_pool.sh does that.
 *
 *   engine_pool_bench -endpoint NAME -bucket B -jobs N [-simple]
 *       [-sub W] [-poll W] [-max-concurrent M] [-interval S] [-max-interval S]
 *       [-multiplier X] [-latency S (for the minimum-polls figure)]
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pool.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

typedef struct bench {
  long long next, total;
  unsigned char *png;
  size_t png_len;
  long long ok, failed;
  char first_failure[600];
} bench;

static int source(void *ud, int worker, asd_pool_job *job) {
  (void)worker;
  bench *b = ud;
  if (b->next >= b->total) return 0;
  job->kind = ASD_POOL_JOB_PAYLOAD;
  job->tile_id = b->next++;
  job->payload = malloc(b->png_len);
  if (!job->payload) return 0;
  memcpy(job->payload, b->png, b->png_len);
  job->payload_len = b->png_len;
  return 1;
}

static void on_done(void *ud, const asd_pool_result *r) {
  bench *b = ud;
  if (r->ok) {
    b->ok++;
  } else {
    if (!b->failed) snprintf(b->first_failure, sizeof b->first_failure, "%s", r->reason);
    b->failed++;
  }
}

static unsigned char *make_png(size_t *len) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", 64, 64, 3, GDT_Byte, NULL);
  const char *path = "/vsimem/bench_tile.png";
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName("PNG"), path, ds, FALSE, NULL, NULL, NULL);
  GDALClose(out);
  GDALClose(ds);
  vsi_l_offset n = 0;
  GByte *bytes = VSIGetMemFileBuffer(path, &n, TRUE);
  *len = (size_t)n;
  return bytes;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  const char *endpoint = "bench", *bucket = "asd-bench";
  bench b;
  memset(&b, 0, sizeof b);
  b.total = 1000;
  asd_async_config cfg;
  asd_config_init(&cfg);
  cfg.polling_interval = 0.1;
  cfg.max_polling_interval = 0.5;
  cfg.exponential_backoff_multiplier = 1.5;
  cfg.max_wait_time = 120;
  cfg.submission_workers = 8;
  cfg.polling_workers = 4;
  cfg.max_concurrent_jobs = 128;
  double latency = 0.2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-simple")) { cfg.enable_worker_optimization = 0; continue; }
    if (!v) { fprintf(stderr, "engine_pool_bench: %s needs a value\n", a); return 2; }
    i++;
    if (!strcmp(a, "-endpoint")) endpoint = v;
    else if (!strcmp(a, "-bucket")) bucket = v;
    else if (!strcmp(a, "-jobs")) b.total = atoll(v);
    else if (!strcmp(a, "-sub")) cfg.submission_workers = atoi(v);
    else if (!strcmp(a, "-poll")) cfg.polling_workers = atoi(v);
    else if (!strcmp(a, "-max-concurrent")) cfg.max_concurrent_jobs = atoi(v);
    else if (!strcmp(a, "-interval")) cfg.polling_interval = atof(v);
    else if (!strcmp(a, "-max-interval")) cfg.max_polling_interval = atof(v);
    else if (!strcmp(a, "-multiplier")) cfg.exponential_backoff_multiplier = atof(v);
    else if (!strcmp(a, "-latency")) latency = atof(v);
    else { fprintf(stderr, "engine_pool_bench: unknown option %s\n", a); return 2; }
  }
  snprintf(cfg.input_bucket, sizeof cfg.input_bucket, "%s", bucket);
  b.png = make_png(&b.png_len);

  asd_error err;
  asd_detector *d = asd_detector_new(endpoint, &cfg, NULL, &err);
  if (!d) { fprintf(stderr, "engine_pool_bench: %s\n", err.message); return 1; }
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_done = on_done;
  cb.user_data = &b;
  asd_pool_counts counts;
  double cpu0 = cpu_seconds(), t0 = asd_time_monotonic();
  if (asd_pool_process(pool, &cb, &counts, &err) != 0) {
    fprintf(stderr, "engine_pool_bench: %s\n", err.message);
    return 1;
  }
  double elapsed = asd_time_monotonic() - t0, cpu = cpu_seconds() - cpu0;
  asd_metric_summary polls;
  memset(&polls, 0, sizeof polls);
  asd_metrics_get(m, "PollingAttempts", &polls);
  asd_metric_summary inf;
  memset(&inf, 0, sizeof inf);
  asd_metrics_get(m, "InferenceDuration", &inf);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  asd_http_stats hs;
  asd_aws_context_http_stats(asd_detector_aws_context(d), &hs);
  asd_resource_stats rs;
  asd_detector_get_resource_stats(d, &rs);
  printf("{\"mode\":\"%s\",\"workers\":%d,\"max_concurrent_jobs\":%d,\"jobs\":%lld,"
         "\"processed\":%lld,\"failed\":%lld,\"elapsed_s\":%.3f,\"jobs_per_s\":%.1f,"
         "\"cpu_ms_per_job\":%.3f,\"polls_per_job_mean\":%.3f,\"polls_per_job_p95\":%.0f,"
         "\"min_polls_at_latency\":%d,\"inference_s_p50\":%.3f,\"peak_rss_kb\":%ld,"
         "\"http_requests_per_job\":%.2f,\"connections\":%lu,"
         "\"deleted\":%lld,\"registry_left\":%lld%s%s%s}\n",
         cfg.enable_worker_optimization ? "optimised" : "simple",
         cfg.submission_workers + cfg.polling_workers, cfg.max_concurrent_jobs, b.total,
         counts.processed, counts.failed, elapsed, counts.processed / elapsed,
         1000.0 * cpu / (double)(b.total ? b.total : 1), polls.mean, polls.p95,
         asd_config_min_polls(&cfg, latency), inf.p50, ru.ru_maxrss,
         (double)hs.requests / (double)(b.total ? b.total : 1), hs.connections, rs.deleted, rs.total,
         b.failed ? ",\"first_failure\":\"" : "", b.failed ? "see stderr" : "", b.failed ? "\"" : "");
  if (b.failed) fprintf(stderr, "first failure: %s\n", b.first_failure);
  asd_pool_free(pool);
  asd_detector_free(d);
  asd_metrics_free(m);
  CPLFree(b.png);
  return counts.failed ? 3 : 0;
}
