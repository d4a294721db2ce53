// End-to-end test of adaptive polling (plugin/engine/latency.c wired into
// pool.c) against the real local endpoint: the same jobs through the same
// endpoint, once on a fixed schedule chosen by name (which turns adaptive
// polling off) and once adaptively with the same schedule as the bound.
// Poll counts are compared, never durations: on a slow machine the fixed
// schedule only polls more, so the comparison cannot flake that way.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "asd_local_endpoint.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pool.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

namespace {

std::string tiny_png() {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", 32, 24, 3, GDT_Byte, nullptr);
  const char *path = "/vsimem/adaptive_polling_tile.png";
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName("PNG"), path, ds, FALSE, nullptr, nullptr, nullptr);
  GDALClose(out);
  GDALClose(ds);
  vsi_l_offset n = 0;
  GByte *bytes = VSIGetMemFileBuffer(path, &n, TRUE);
  std::string png(reinterpret_cast<char *>(bytes), static_cast<size_t>(n));
  CPLFree(bytes);
  return png;
}

struct Run {
  std::atomic<int> next{0}, ok{0}, failed{0};
  int total = 0;
  std::string payload;
};

int source(void *ud, int, asd_pool_job *job) {
  Run *r = static_cast<Run *>(ud);
  int i = r->next++;
  if (i >= r->total) return 0;
  job->kind = ASD_POOL_JOB_PAYLOAD;
  job->tile_id = i;
  job->payload = static_cast<unsigned char *>(malloc(r->payload.size()));
  memcpy(job->payload, r->payload.data(), r->payload.size());
  job->payload_len = r->payload.size();
  return 1;
}

void on_done(void *ud, const asd_pool_result *res) {
  Run *r = static_cast<Run *>(ud);
  (res->ok ? r->ok : r->failed)++;
}

// Runs `jobs` jobs through a fresh pool; returns the mean polls per job.
double polls_per_job(const asd_async_config &cfg, int jobs) {
  asd_error err;
  asd_detector *d = asd_detector_new("adaptive", &cfg, nullptr, &err);
  EXPECT_NE(nullptr, d) << err.message;
  if (!d) return -1;
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  Run r;
  r.total = jobs;
  r.payload = tiny_png();
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_done = on_done;
  cb.user_data = &r;
  asd_pool_counts counts;
  EXPECT_EQ(0, asd_pool_process(pool, &cb, &counts, &err)) << err.message;
  EXPECT_EQ(jobs, r.ok.load());
  EXPECT_EQ(0, r.failed.load());
  EXPECT_EQ(jobs, counts.processed);
  asd_metric_summary s;
  EXPECT_EQ(0, asd_metrics_get(m, "PollingAttempts", &s));
  EXPECT_EQ(jobs, s.count);
  EXPECT_DOUBLE_EQ((double)counts.polls, s.sum);
  asd_pool_free(pool);
  asd_detector_free(d);
  asd_metrics_free(m);
  return (double)counts.polls / jobs;
}

}  // namespace

TEST(E2eAdaptivePolling, FewerPollsThanAFastFixedSchedule) {
  // 300 ms +/- 60 ms per tile, 16 at a time, behind a pool of 32 slots.
  asd_test::LocalEndpoint ep(
      {"-bucket", "asd-in", "-endpoint",
       "adaptive,model=centerpoint,output=s3://asd-out/a/output,failure=s3://asd-out/a/failure,"
       "instances=1,concurrency=16,latency_ms=300,spread_ms=60"});
  asd_test::set_local_aws_env(ep);
  char msg[256];
  asd_async_config cfg;
  asd_config_init(&cfg);
  snprintf(cfg.input_bucket, sizeof cfg.input_bucket, "asd-in");
  cfg.max_concurrent_jobs = 32;
  // On the default 30 s schedule every poll would come at this deadline.
  cfg.max_wait_time = 10;

  // A fast fixed schedule, set by name as a flag or variable would set it.
  asd_async_config fixed = cfg;
  ASSERT_EQ(0, asd_config_set(&fixed, "polling_interval", "0.04", msg, sizeof msg)) << msg;
  ASSERT_EQ(0, asd_config_set(&fixed, "max_polling_interval", "0.1", msg, sizeof msg)) << msg;
  ASSERT_FALSE(asd_config_adaptive_polling(&fixed));
  // Adaptive under the default schedule (30 s, x1.5, 300 s) as the bound.
  ASSERT_TRUE(asd_config_adaptive_polling(&cfg));

  const int jobs = 192;
  double f = polls_per_job(fixed, jobs);
  double a = polls_per_job(cfg, jobs);
  std::printf("polls per job: fixed 40-100 ms schedule %.2f, adaptive %.2f\n", f, a);
  // The fixed schedule polls every 40-100 ms jobs that take >= 240 ms plus
  // their wait in the endpoint's queue: several polls each.
  EXPECT_GT(f, 3.0);
  // Adaptive: around the learnt completion time, at most 3 on average...
  EXPECT_LE(a, 3.0);
  EXPECT_LT(a, f);
  // ... and not the 30 s schedule (one poll per job, at the deadline): some
  // job (at least the first, probing) was polled more than once.
  EXPECT_GT(a, 1.0);
}
