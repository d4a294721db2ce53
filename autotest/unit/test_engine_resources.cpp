// Unit tests for the resource registry and cleanup policies
// (plugin/engine/resources.c) and for the metrics tracker (metrics.c).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pending.h"
#include "asyncdetect/asd_resources.h"

namespace {

struct FakeS3 {
  std::mutex mu;
  std::set<std::string> deleted;  // "bucket/key"
  std::vector<int> batch_sizes;
  std::set<std::string> refuse;   // keys that fail per key
  bool fail_all = false;
};

int fake_delete(void *ctx, const char *bucket, const char *const *keys, int n, int *failed,
                char *err, size_t err_len) {
  FakeS3 *s3 = static_cast<FakeS3 *>(ctx);
  std::lock_guard<std::mutex> lock(s3->mu);
  s3->batch_sizes.push_back(n);
  if (s3->fail_all) {
    snprintf(err, err_len, "HTTP 500 InternalError");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    if (s3->refuse.count(keys[i])) {
      failed[i] = 1;
      continue;
    }
    s3->deleted.insert(std::string(bucket) + "/" + keys[i]);
  }
  return 0;
}

}  // namespace

TEST(EngineResources, ActiveEntriesAreNeverDeletedUntilDisposed) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  uint64_t in = asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "in/1");
  uint64_t out = asd_resources_add(r, ASD_RES_S3_OBJECT, "o", "out/1.out");
  uint64_t job = asd_resources_add(r, ASD_RES_INFERENCE_JOB, nullptr, "inf-1");
  ASSERT_TRUE(in && out && job);
  EXPECT_EQ(0, asd_resources_collect(r, asd_time_monotonic() + 1e6, 0));
  EXPECT_TRUE(s3.deleted.empty());
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(3, st.total);
  EXPECT_EQ(2, st.by_type[ASD_RES_S3_OBJECT]);
  EXPECT_EQ(1, st.by_type[ASD_RES_INFERENCE_JOB]);
  // The job ends: its entries leave the registry.
  EXPECT_EQ(0, asd_resources_dispose(r, in));
  EXPECT_EQ(0, asd_resources_dispose(r, out));
  EXPECT_EQ(0, asd_resources_release(r, job));
  EXPECT_EQ(2, asd_resources_collect(r, asd_time_monotonic(), 0));
  EXPECT_EQ((std::set<std::string>{"b/in/1", "o/out/1.out"}), s3.deleted);
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(0, st.total);
  EXPECT_EQ(2, st.deleted);
  EXPECT_EQ(-1, asd_resources_dispose(r, in));  // unknown now
  asd_resources_free(r);
}

TEST(EngineResources, PrunedSoMemoryFollowsInFlightNotHistory) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  for (int i = 0; i < 50000; i++) {
    uint64_t a = asd_resources_add(r, ASD_RES_S3_OBJECT, "b", ("in/" + std::to_string(i)).c_str());
    uint64_t j = asd_resources_add(r, ASD_RES_INFERENCE_JOB, nullptr, "x");
    asd_resources_dispose(r, a);
    asd_resources_release(r, j);
    if (i % 1000 == 999) asd_resources_collect(r, asd_time_monotonic(), 0);
  }
  asd_resources_collect(r, asd_time_monotonic(), 0);
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(0, st.total);
  EXPECT_EQ(100000, st.added);
  EXPECT_EQ(50000, st.deleted);
  EXPECT_EQ(50000u, s3.deleted.size());
  for (int n : s3.batch_sizes) EXPECT_LE(n, 1000);
  asd_resources_free(r);
}

TEST(EngineResources, DelayedWaitsThenDeletesInBatches) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_DELAYED, 100, fake_delete, &s3);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 2500; i++)
    ids.push_back(asd_resources_add(r, ASD_RES_S3_OBJECT, i % 2 ? "b1" : "b2",
                                    ("k" + std::to_string(i)).c_str()));
  for (uint64_t id : ids) asd_resources_dispose(r, id);
  double next = 0;
  EXPECT_EQ(2500, asd_resources_pending(r, &next));
  EXPECT_GT(next, asd_time_monotonic() + 50);
  EXPECT_EQ(0, asd_resources_collect(r, asd_time_monotonic(), 0));  // not due yet
  EXPECT_EQ(2500, asd_resources_collect(r, asd_time_monotonic() + 101, 0));
  EXPECT_EQ(2500u, s3.deleted.size());
  // 1250 keys per bucket -> 1000 + 250 per bucket.
  EXPECT_EQ(4u, s3.batch_sizes.size());
  for (int n : s3.batch_sizes) EXPECT_LE(n, 1000);
  asd_resources_free(r);
}

TEST(EngineResources, DisabledKeepsAndCounts) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_DISABLED, 0, fake_delete, &s3);
  for (int i = 0; i < 10; i++)
    asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "k"));
  EXPECT_EQ(0, asd_resources_collect(r, asd_time_monotonic() + 1e6, 0));
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(0, st.total);
  EXPECT_EQ(10, st.retained);
  EXPECT_TRUE(s3.deleted.empty());
  char *json = asd_resources_stats_json(r);
  ASSERT_NE(nullptr, json);
  EXPECT_NE(std::string::npos, std::string(json).find("\"retained\":10"));
  EXPECT_NE(std::string::npos, std::string(json).find("\"policy\":\"disabled\""));
  free(json);
  asd_resources_free(r);
}

TEST(EngineResources, FailuresAreReportedNotFatal) {
  FakeS3 s3;
  s3.refuse.insert("bad");
  asd_resources *r = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "bad"));
  asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "good"));
  EXPECT_EQ(1, asd_resources_collect(r, asd_time_monotonic(), 0));
  s3.fail_all = true;
  asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "x"));
  EXPECT_EQ(0, asd_resources_collect(r, asd_time_monotonic(), 0));
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(2, st.delete_failed);
  EXPECT_NE(std::string::npos, std::string(st.last_failure).find("InternalError"));
  EXPECT_EQ(0, st.total);
  asd_resources_free(r);
}

TEST(EngineResources, ForceDeletesActiveAndTempFiles) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_DELAYED, 1000, fake_delete, &s3);
  char path[] = "/tmp/asd-res-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  asd_resources_add(r, ASD_RES_TEMP_FILE, nullptr, path);
  asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "active");
  uint64_t t = asd_resources_add(r, ASD_RES_WORKER_THREAD, nullptr, "w0");
  uint64_t kept = asd_resources_add(r, ASD_RES_S3_OBJECT, "b", "kept");
  asd_resources_retain(r, kept);
  EXPECT_EQ(2, asd_resources_collect(r, 0, 1));
  EXPECT_NE(0, access(path, F_OK));
  EXPECT_EQ((std::set<std::string>{"b/active"}), s3.deleted);
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(1, st.total);  // the worker thread entry
  EXPECT_EQ(1, st.retained);
  asd_resources_release(r, t);
  asd_resources_free(r);
}

// Issue 13: the client deletes only under the scopes it was given; an
// object anywhere else (a location named by the endpoint or a journal) is
// left alone and counted.
TEST(EngineResources, DeletesOnlyInsideTheAllowedScopes) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  ASSERT_EQ(0, asd_resources_allow(r, "in", "async/input/"));
  ASSERT_EQ(0, asd_resources_allow(r, "out", ""));
  EXPECT_TRUE(asd_resources_in_scope(r, "in", "async/input/x"));
  EXPECT_FALSE(asd_resources_in_scope(r, "in", "async/other"));
  EXPECT_FALSE(asd_resources_in_scope(r, "victim", "async/input/x"));
  const char *objs[][2] = {{"in", "async/input/1"}, {"in", "precious/data.tif"}, {"out", "any/key.out"},
                           {"victim", "async/input/1"}};
  for (auto &o : objs) asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, o[0], o[1]));
  EXPECT_EQ(2, asd_resources_collect(r, asd_time_monotonic() + 1, 0));
  EXPECT_EQ(1u, s3.deleted.count("in/async/input/1"));
  EXPECT_EQ(1u, s3.deleted.count("out/any/key.out"));
  EXPECT_EQ(0u, s3.deleted.count("in/precious/data.tif"));
  EXPECT_EQ(0u, s3.deleted.count("victim/async/input/1"));
  asd_resource_stats st;
  asd_resources_get_stats(r, &st);
  EXPECT_EQ(2, st.out_of_scope);
  EXPECT_EQ(2, st.deleted);
  EXPECT_EQ(0, st.pending);
  EXPECT_NE(std::string(st.last_out_of_scope).find("s3://"), std::string::npos);
  // A forced cleanup cannot bypass the scope either.
  asd_resources_add(r, ASD_RES_S3_OBJECT, "victim", "k");
  asd_resources_collect(r, 0, 1);
  EXPECT_EQ(0u, s3.deleted.count("victim/k"));
  asd_resources_free(r);
  // Without any scope, every object may be deleted (callers that manage their own).
  asd_resources *open = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  asd_resources_dispose(open, asd_resources_add(open, ASD_RES_S3_OBJECT, "victim", "k2"));
  EXPECT_EQ(1, asd_resources_collect(open, asd_time_monotonic() + 1, 0));
  asd_resources_free(open);
}

// Issue 11 part 5: under the delayed policy, what is not yet due when the
// process ends is handed over (not deleted), survives a JSON round trip,
// and is deleted by a later process only once due, within the scope.
TEST(EngineResources, DelayedDeletionsOutliveTheProcess) {
  FakeS3 s3;
  asd_resources *r = asd_resources_new(ASD_CLEANUP_DELAYED, 1800, fake_delete, &s3);
  asd_resources_allow(r, "in", "p/");
  asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "in", "p/1"));
  asd_resources_dispose(r, asd_resources_add(r, ASD_RES_S3_OBJECT, "in", "p/2"));
  uint64_t active = asd_resources_add(r, ASD_RES_S3_OBJECT, "in", "p/3");
  (void)active;
  asd_pending_list l;
  asd_pending_init(&l);
  double before = asd_time_wall();
  EXPECT_EQ(2, asd_resources_hand_over(r, asd_pending_collect_fn, &l));
  ASSERT_EQ(2u, l.n);
  EXPECT_GE(l.items[0].due, before + 1799);
  EXPECT_LE(l.items[0].due, asd_time_wall() + 1801);
  // The process ends: a forced cleanup no longer deletes what was handed over.
  asd_resources_collect(r, 0, 1);
  EXPECT_EQ(0u, s3.deleted.count("in/p/1"));
  EXPECT_EQ(1u, s3.deleted.count("in/p/3"));  // active (never disposed): force still applies
  asd_resources_free(r);

  // Kept as text (the journal note) and read back by the next process.
  char *text = asd_pending_to_json(&l);
  ASSERT_NE(nullptr, text);
  asd_pending_list back;
  asd_pending_init(&back);
  ASSERT_EQ(0, asd_pending_from_json(&back, text));
  free(text);
  ASSERT_EQ(2u, back.n);
  asd_pending_add(&back, "elsewhere", "p/9", 1.0);  // as if a journal had been edited
  EXPECT_EQ(-1, asd_pending_from_json(&back, "[[\"b\",\"k\"]]"));
  EXPECT_EQ(3u, back.n);

  asd_resources *later = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, fake_delete, &s3);
  asd_resources_allow(later, "in", "p/");
  long long deleted = -1, dropped = -1;
  // Not due yet: nothing but the out-of-scope entry leaves the list.
  EXPECT_EQ(2u, asd_pending_carry_out(&back, later, asd_time_wall(), &deleted, &dropped));
  EXPECT_EQ(0, deleted);
  EXPECT_EQ(1, dropped);
  EXPECT_EQ(0u, s3.deleted.count("elsewhere/p/9"));
  // Due: deleted, and the list empties.  A failed deletion stays for next time.
  s3.refuse.insert("p/2");
  EXPECT_EQ(1u, asd_pending_carry_out(&back, later, asd_time_wall() + 4000, &deleted, &dropped));
  EXPECT_EQ(1, deleted);
  EXPECT_EQ(1u, s3.deleted.count("in/p/1"));
  s3.refuse.clear();
  EXPECT_EQ(0u, asd_pending_carry_out(&back, later, asd_time_wall() + 4000, &deleted, &dropped));
  EXPECT_EQ(1u, s3.deleted.count("in/p/2"));
  asd_resources_free(later);
  asd_pending_free(&back);
  asd_pending_free(&l);
}

TEST(EngineMetrics, SummariesAndJson) {
  asd_metrics *m = asd_metrics_new();
  for (int i = 1; i <= 100; i++) asd_metrics_record(m, "S3UploadDuration", i / 1000.0);
  asd_metrics_incr(m, "TileSubmissions", 1);
  asd_metrics_incr(m, "TileSubmissions", 1);
  asd_metric_summary s;
  ASSERT_EQ(0, asd_metrics_get(m, "S3UploadDuration", &s));
  EXPECT_EQ(100, s.count);
  EXPECT_DOUBLE_EQ(0.001, s.min);
  EXPECT_DOUBLE_EQ(0.1, s.max);
  EXPECT_NEAR(5.05, s.sum, 1e-9);
  EXPECT_NEAR(0.0505, s.mean, 1e-9);
  EXPECT_DOUBLE_EQ(0.05, s.p50);
  EXPECT_DOUBLE_EQ(0.095, s.p95);
  EXPECT_EQ(2, asd_metrics_sum(m, "TileSubmissions"));
  EXPECT_EQ(-1, asd_metrics_get(m, "Nothing", &s));
  EXPECT_EQ(0, asd_metrics_sum(m, "Nothing"));
  char *json = asd_metrics_to_json(m);
  ASSERT_NE(nullptr, json);
  std::string j(json);
  free(json);
  EXPECT_LT(j.find("\"S3UploadDuration\""), j.find("\"TileSubmissions\""));  // sorted
  EXPECT_NE(std::string::npos, j.find("\"count\":100"));
  EXPECT_NE(std::string::npos, j.find("\"p95\":0.095"));
  asd_metrics_free(m);
}

TEST(EngineMetrics, ThreadSafeAndBounded) {
  asd_metrics *m = asd_metrics_new();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([m] {
      for (int i = 0; i < 50000; i++) {
        asd_metrics_record(m, "PollingAttempts", i % 10);
        asd_metrics_incr(m, "Retries", 1);
      }
    });
  for (auto &t : ts) t.join();
  asd_metric_summary s;
  ASSERT_EQ(0, asd_metrics_get(m, "PollingAttempts", &s));
  EXPECT_EQ(200000, s.count);
  EXPECT_DOUBLE_EQ(0, s.min);
  EXPECT_DOUBLE_EQ(9, s.max);
  EXPECT_NEAR(4.5, s.mean, 1e-9);
  EXPECT_NEAR(4.5, s.p50, 1.0);  // from the reservoir
  EXPECT_EQ(200000, asd_metrics_sum(m, "Retries"));
  asd_metrics_free(m);
}
