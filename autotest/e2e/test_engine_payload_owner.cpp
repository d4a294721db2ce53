// Payload ownership in the pool (plugin/engine/pool.c, asd_pool_job.payload_free),
// against the real local endpoint: a source hands over its encoder's buffer as
// it is, with the function that releases it, and the pool releases every
// payload exactly once with that function, never with free(): here the
// payloads come from an allocator of this test's own (a header before the
// bytes), so a free() of the pointer the pool was given aborts the process.
// asd_detector_find_features lends the caller's bytes to the pool (no copy):
// they must come back untouched and not freed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <json-c/json.h>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pool.h"

namespace {

constexpr uint64_t kMagic = 0x6173645061796c64ull;  // "asdPayld"
constexpr size_t kHeader = 32;
std::atomic<int> g_released{0}, g_foreign{0};

// The test's allocator: kHeader bytes of bookkeeping before the payload.
unsigned char *own_alloc(const std::string &bytes) {
  unsigned char *base = static_cast<unsigned char *>(malloc(kHeader + bytes.size()));
  memcpy(base, &kMagic, sizeof kMagic);
  memcpy(base + kHeader, bytes.data(), bytes.size());
  return base + kHeader;
}

void own_release(void *payload) {
  unsigned char *base = static_cast<unsigned char *>(payload) - kHeader;
  uint64_t m;
  memcpy(&m, base, sizeof m);
  if (m != kMagic) {
    g_foreign++;  // not one of ours, or released twice
    return;
  }
  memset(base, 0, sizeof m);
  g_released++;
  free(base);
}

struct Jobs {
  std::atomic<int> next{0}, ok{0}, failed{0};
  int total = 0;
  std::string payload;
  asd_pool *pool = nullptr;
  int cancel_after = -1;  // asks the pool to stop at once after handing out this many
};

int source(void *ud, int, asd_pool_job *job) {
  Jobs *r = static_cast<Jobs *>(ud);
  int i = r->next++;
  if (i >= r->total) return 0;
  if (i == r->cancel_after) asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
  job->kind = ASD_POOL_JOB_PAYLOAD;
  job->tile_id = i;
  job->payload = own_alloc(r->payload);
  job->payload_len = r->payload.size();
  job->payload_free = own_release;
  return 1;
}

void on_done(void *ud, const asd_pool_result *res) {
  Jobs *r = static_cast<Jobs *>(ud);
  (res->ok ? r->ok : r->failed)++;
}

class PayloadOwner : public ::testing::Test {
 protected:
  void SetUp() override {
    ep_ = std::make_unique<asd_test::LocalEndpoint>(std::vector<std::string>{
        "-bucket", "asd-in", "-endpoint",
        "owner,model=centerpoint,output=s3://asd-out/o/output,failure=s3://asd-out/o/failure,"
        "instances=1,concurrency=8"});
    asd_test::set_local_aws_env(*ep_);
    cfg_ = asd_test::engine_config("owner/", 8);
    g_released = 0;
    g_foreign = 0;
  }
  std::unique_ptr<asd_test::LocalEndpoint> ep_;
  asd_async_config cfg_;
};

}  // namespace

TEST_F(PayloadOwner, EveryPayloadIsReleasedOnceWithItsOwnersFunction) {
  asd_error err;
  asd_detector *d = asd_detector_new("owner", &cfg_, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  Jobs r;
  r.total = 12;
  r.payload = asd_test::tiny_png();
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_done = on_done;
  cb.user_data = &r;
  asd_pool_counts counts;
  EXPECT_EQ(0, asd_pool_process(pool, &cb, &counts, &err)) << err.message;
  EXPECT_EQ(12, r.ok.load());
  EXPECT_EQ(0, r.failed.load());
  EXPECT_EQ(12, g_released.load());
  EXPECT_EQ(0, g_foreign.load());
  asd_pool_free(pool);
  asd_detector_free(d);
  asd_metrics_free(m);
}

TEST_F(PayloadOwner, AStoppedPoolReleasesThePayloadsItNeverUploaded) {
  asd_error err;
  asd_detector *d = asd_detector_new("owner", &cfg_, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  Jobs r;
  r.total = 40;
  r.payload = asd_test::tiny_png();
  r.pool = pool;
  r.cancel_after = 3;
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_done = on_done;
  cb.user_data = &r;
  asd_pool_counts counts;
  asd_pool_process(pool, &cb, &counts, &err);  // stopped: its status is not the point
  asd_pool_free(pool);
  // Whatever the pool pulled, uploaded or not, it released once, with ours.
  int handed = r.next.load() < r.total ? r.next.load() : r.total;
  EXPECT_GE(handed, 4);
  EXPECT_EQ(handed, g_released.load());
  EXPECT_EQ(0, g_foreign.load());
  asd_detector_free(d);
  asd_metrics_free(m);
}

TEST_F(PayloadOwner, FindFeaturesLendsTheCallersBytesWithoutCopyOrFree) {
  asd_error err;
  asd_detector *d = asd_detector_new("owner", &cfg_, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  std::string png = asd_test::tiny_png();
  // In the middle of a buffer: a free() of that pointer would abort.
  std::vector<unsigned char> buf(png.size() + 64, 0xA5);
  std::copy(png.begin(), png.end(), buf.begin() + 32);
  const std::vector<unsigned char> before = buf;
  json_object *fc = asd_detector_find_features(d, buf.data() + 32, png.size(), nullptr, &err);
  ASSERT_NE(nullptr, fc) << err.message;
  json_object_put(fc);
  EXPECT_EQ(before, buf);
  asd_detector_free(d);
}
