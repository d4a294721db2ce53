/*
 * adaptive_polling_bench.c: the async engine's pool with the configuration a
 * user gets without any polling flag (asd_config_init + the ASYNC_SM_*
 * environment, exactly as the utility builds it), against an endpoint, and
 * one JSON line of figures: jobs/s, polls per job (mean, p95, max, and how
 * many jobs took 1, 2, ... 8 and 9 or more polls), client CPU per job.
 *
 * Only the input bucket is set here; ASYNC_SM_ADAPTIVE_POLLING=false in the
 * environment gives the fixed schedule (the defaults before adaptive
 * polling), which bench/adaptive_polling.sh runs side by side.
 *
 *   adaptive_polling_bench -endpoint NAME -bucket B -jobs N
 *
 * ADAPTIVE_POLLING_TRACE=FILE writes one line per job as it ends (seconds
 * since the start, tile id, seconds from its pull to its end, polls), for a
 * timeline of when results were seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pool.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

/* Jobs by polls they took: [k] = k polls, the last slot = that many or more. */
#define POLL_HIST 10

typedef struct bench {
  long long next, total, failed;
  long long poll_hist[POLL_HIST];
  unsigned char *png;
  size_t png_len;
  char first_failure[600];
  FILE *trace;    /* ADAPTIVE_POLLING_TRACE: one line per job, for a timeline */
  double t0;
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
  b->poll_hist[r->polls < POLL_HIST - 1 ? (r->polls > 0 ? r->polls : 0) : POLL_HIST - 1]++;
  if (b->trace)
    fprintf(b->trace, "%.3f %lld %.3f %d\n", asd_time_monotonic() - b->t0, (long long)r->tile_id, r->seconds,
            r->polls);
  if (!r->ok && !b->failed++) snprintf(b->first_failure, sizeof b->first_failure, "%s", r->reason);
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
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-endpoint")) endpoint = argv[i + 1];
    else if (!strcmp(argv[i], "-bucket")) bucket = argv[i + 1];
    else if (!strcmp(argv[i], "-jobs")) b.total = atoll(argv[i + 1]);
    else { fprintf(stderr, "adaptive_polling_bench: unknown option %s\n", argv[i]); return 2; }
  }
  asd_async_config cfg;
  char msg[512];
  asd_config_init(&cfg);
  if (asd_config_load_env(&cfg, msg, sizeof msg) != 0) {
    fprintf(stderr, "adaptive_polling_bench: %s\n", msg);
    return 2;
  }
  snprintf(cfg.input_bucket, sizeof cfg.input_bucket, "%s", bucket);
  b.png = make_png(&b.png_len);

  asd_error err;
  asd_detector *d = asd_detector_new(endpoint, &cfg, NULL, &err);
  if (!d) { fprintf(stderr, "adaptive_polling_bench: %s\n", err.message); return 1; }
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_done = on_done;
  cb.user_data = &b;
  asd_pool_counts counts;
  const char *trace = getenv("ADAPTIVE_POLLING_TRACE");
  if (trace && *trace && !(b.trace = fopen(trace, "w"))) {
    fprintf(stderr, "adaptive_polling_bench: cannot write the trace %s\n", trace);
    return 2;
  }
  double cpu0 = cpu_seconds(), t0 = asd_time_monotonic();
  b.t0 = t0;
  if (asd_pool_process(pool, &cb, &counts, &err) != 0) {
    fprintf(stderr, "adaptive_polling_bench: %s\n", err.message);
    return 1;
  }
  double elapsed = asd_time_monotonic() - t0, cpu = cpu_seconds() - cpu0;
  asd_metric_summary polls, inf;
  memset(&polls, 0, sizeof polls);
  memset(&inf, 0, sizeof inf);
  asd_metrics_get(m, "PollingAttempts", &polls);
  asd_metrics_get(m, "InferenceDuration", &inf);
  printf("{\"adaptive\":%s,\"max_concurrent_jobs\":%d,\"polling_interval\":%g,\"jobs\":%lld,"
         "\"processed\":%lld,\"failed\":%lld,\"elapsed_s\":%.3f,\"jobs_per_s\":%.3f,"
         "\"cpu_ms_per_job\":%.3f,\"polls_per_job_mean\":%.3f,\"polls_per_job_p95\":%.0f,"
         "\"invoke_to_seen_s_p50\":%.3f,\"polls_max\":%.0f,\"polls_hist\":[",
         asd_config_adaptive_polling(&cfg) ? "true" : "false", cfg.max_concurrent_jobs,
         cfg.polling_interval, b.total, counts.processed, counts.failed, elapsed,
         counts.processed / elapsed, 1000.0 * cpu / (double)(b.total ? b.total : 1), polls.mean,
         polls.p95, inf.p50, polls.max);
  for (int k = 1; k < POLL_HIST; k++) printf("%s%lld", k > 1 ? "," : "", b.poll_hist[k]);
  printf("]}\n");
  if (b.failed) fprintf(stderr, "adaptive_polling_bench: first failure: %s\n", b.first_failure);
  if (b.trace) fclose(b.trace);
  asd_pool_free(pool);
  asd_detector_free(d);
  asd_metrics_free(m);
  CPLFree(b.png);
  return counts.failed ? 3 : 0;
}
