// End-to-end tests of the async engine (detector + worker pool) against the
// real local endpoint: results, every fault kind, cleanup policies, timeouts,
// queue timeouts, cancellation (drain and stop-now) and resuming.
#include <dirent.h>
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <atomic>
#include <functional>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_pool.h"
#include "asyncdetect/asd_s3.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

namespace {

using asd_test::tiny_png;

int thread_count() {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

std::string endpoint_spec(const std::string &name, int concurrency, int latency_ms) {
  return name + ",model=centerpoint,output=s3://asd-out/" + name + "/output,failure=s3://asd-out/" +
         name + "/failure,instances=1,concurrency=" + std::to_string(concurrency) +
         ",latency_ms=" + std::to_string(latency_ms);
}

asd_async_config test_config() { return asd_test::engine_config("engine/in/", 64); }

// Counts objects under bucket/prefix through the detector's AWS context.
long long count_objects(asd_detector *d, const char *bucket, const char *prefix) {
  asd_s3_list_result r;
  memset(&r, 0, sizeof r);
  asd_aws_error e;
  asd_aws_error_clear(&e);
  if (asd_s3_list_objects_v2(asd_detector_aws_context(d), bucket, prefix, nullptr, 1000, 0, &r, &e) != 0) {
    ADD_FAILURE() << "list " << bucket << "/" << prefix << ": " << e.message;
    return -1;
  }
  long long n = static_cast<long long>(r.n_entries);
  asd_s3_list_result_free(&r);
  return n;
}

// The job source and the callbacks' record, shared by the pool tests.
struct JobRun {
  std::mutex mu;
  int64_t next = 0;
  int64_t total = 0;
  std::string payload;
  std::vector<asd_pool_job> resume;  // when non-empty, the source gives these
  size_t resume_next = 0;
  std::map<int64_t, int> done_count;
  std::map<int64_t, asd_errcode> failures;
  std::map<int64_t, std::string> reasons;
  std::map<int64_t, std::pair<int, std::string>> facts;  // HTTP status, AWS code
  std::map<int64_t, asd_pool_job> submitted;  // what a later run needs to resume
  int ok = 0, failed = 0;
  int features = 0;
  std::function<void(JobRun &)> after_done;
  std::function<void(JobRun &)> after_submitted;
  asd_pool *pool = nullptr;
};

int source(void *ud, int, asd_pool_job *job) {
  JobRun *r = static_cast<JobRun *>(ud);
  if (!r->resume.empty()) {
    if (r->resume_next >= r->resume.size()) return 0;
    *job = r->resume[r->resume_next++];
    return 1;
  }
  if (r->next >= r->total) return 0;
  job->kind = ASD_POOL_JOB_PAYLOAD;
  job->tile_id = r->next++;
  job->payload = static_cast<unsigned char *>(malloc(r->payload.size()));
  memcpy(job->payload, r->payload.data(), r->payload.size());
  job->payload_len = r->payload.size();
  return 1;
}

void on_submitted(void *ud, int64_t tile, const char *inference_id, const char *input,
                  const char *output, const char *failure) {
  JobRun *r = static_cast<JobRun *>(ud);
  std::lock_guard<std::mutex> lock(r->mu);
  asd_pool_job j;
  memset(&j, 0, sizeof j);
  j.kind = ASD_POOL_JOB_RESUME;
  j.tile_id = tile;
  snprintf(j.inference_id, sizeof j.inference_id, "%s", inference_id);
  snprintf(j.input_location, sizeof j.input_location, "%s", input);
  snprintf(j.output_location, sizeof j.output_location, "%s", output);
  snprintf(j.failure_location, sizeof j.failure_location, "%s", failure);
  r->submitted[tile] = j;
  if (r->after_submitted) r->after_submitted(*r);
}

void on_done(void *ud, const asd_pool_result *res) {
  JobRun *r = static_cast<JobRun *>(ud);
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->done_count[res->tile_id]++;
    if (res->ok) {
      r->ok++;
      json_object *o = json_tokener_parse(std::string(res->feature_collection, res->feature_collection_len).c_str());
      json_object *f = nullptr;
      if (o && json_object_object_get_ex(o, "features", &f)) r->features += (int)json_object_array_length(f);
      json_object_put(o);
    } else {
      r->failed++;
      r->failures[res->tile_id] = res->code;
      r->reasons[res->tile_id] = res->reason ? res->reason : "";
      r->facts[res->tile_id] = {res->http_status, res->aws_code ? res->aws_code : ""};
    }
  }
  if (r->after_done) r->after_done(*r);
}

asd_pool_callbacks callbacks(JobRun &r) {
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_submitted = on_submitted;
  cb.on_done = on_done;
  cb.user_data = &r;
  return cb;
}

// Input objects that the endpoint found missing: must stay 0 (nothing deleted early).
long long input_missing(asd_test::LocalEndpoint &ep) {
  std::string s = ep.stats_json();
  json_object *o = json_tokener_parse(s.c_str());
  long long n = 0;
  json_object *eps = nullptr;
  if (o && json_object_object_get_ex(o, "runtime", &eps)) {
    // tolerate either {"runtime":{"endpoints":...}} or a flat layout
  } else {
    eps = o;
  }
  json_object *endpoints = nullptr;
  if (eps && json_object_object_get_ex(eps, "endpoints", &endpoints)) {
    json_object_object_foreach(endpoints, name, val) {
      (void)name;
      json_object *fbr = nullptr, *im = nullptr;
      if (json_object_object_get_ex(val, "failed_by_reason", &fbr) &&
          json_object_object_get_ex(fbr, "input_missing", &im))
        n += json_object_get_int64(im);
    }
  }
  json_object_put(o);
  return n;
}

}  // namespace

TEST(E2eEngine, DetectorFindFeaturesAndBucketValidation) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("det", 2, 0)});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  asd_error err;
  asd_detector *d = asd_detector_new("det", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  ASSERT_EQ(0, asd_detector_validate_buckets(d, &err)) << err.message;

  asd_metrics *m = asd_metrics_new();
  std::string png = tiny_png();
  json_object *fc = asd_detector_find_features(d, png.data(), png.size(), m, &err);
  ASSERT_NE(nullptr, fc) << err.message;
  json_object *features = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(fc, "features", &features));
  EXPECT_EQ(1u, json_object_array_length(features));
  json_object_put(fc);
  for (const char *name : {"S3UploadDuration", "S3DownloadDuration", "TotalAsyncDuration",
                           "PollingAttempts", "TileSubmissions", "JobCompletions"}) {
    asd_metric_summary s;
    EXPECT_EQ(0, asd_metrics_get(m, name, &s)) << name;
  }
  // Immediate policy: input and output are gone once the result is consumed.
  asd_resource_stats st;
  asd_detector_get_resource_stats(d, &st);
  EXPECT_EQ(0, st.total);
  EXPECT_EQ(2, st.deleted);
  EXPECT_EQ(0, count_objects(d, "asd-in", "engine/in/"));
  EXPECT_EQ(0, count_objects(d, "asd-out", "det/output/"));

  // Undecodable bytes: the model fails, and the failure object's content is
  // in the message.
  json_object *bad = asd_detector_find_features(d, "not an image", 12, m, &err);
  EXPECT_EQ(nullptr, bad);
  EXPECT_EQ(ASD_ERR_INFERENCE, err.code);
  EXPECT_NE(std::string::npos, std::string(err.message).find("centerpoint")) << err.message;
  asd_detector_free(d);

  // A missing bucket is named, with the cause.
  asd_async_config c2 = test_config();
  snprintf(c2.input_bucket, sizeof c2.input_bucket, "no-such-bucket");
  d = asd_detector_new("det", &c2, nullptr, &err);
  ASSERT_NE(nullptr, d);
  EXPECT_EQ(-1, asd_detector_validate_buckets(d, &err));
  EXPECT_EQ(ASD_ERR_S3, err.code);
  EXPECT_NE(std::string::npos, std::string(err.message).find("'no-such-bucket'")) << err.message;
  EXPECT_NE(std::string::npos, std::string(err.message).find("does not exist")) << err.message;
  asd_detector_free(d);
  asd_metrics_free(m);

  // Bad configuration is refused with the field named.
  asd_async_config c3 = test_config();
  c3.exponential_backoff_multiplier = 1;
  EXPECT_EQ(nullptr, asd_detector_new("det", &c3, nullptr, &err));
  EXPECT_EQ(ASD_ERR_CONFIG, err.code);
  EXPECT_NE(std::string::npos, std::string(err.message).find("exponential_backoff_multiplier"));
}

TEST(E2eEngine, ThousandsOfJobsWithEveryFaultKind) {
  asd_test::LocalEndpoint ep(
      {"-bucket", "asd-in", "-endpoint", endpoint_spec("faulty", 32, 5), "-faults",
       "s3_503=0.03,s3_500=0.02,invoke_throttle=0.04,invoke_5xx=0.03,drop=0.01,model_error=0.04,"
       "hang=0.005,seed=7"});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.max_wait_time = 5;  // hung jobs time out (normal ones take milliseconds)
  asd_error err;
  asd_detector *d = asd_detector_new("faulty", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_metrics *m = asd_metrics_new();
  asd_pool *pool = asd_pool_new(d, m, &err);
  ASSERT_NE(nullptr, pool);
  JobRun r;
  r.total = 2000;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  int threads_before = thread_count();
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err)) << err.message;

  EXPECT_EQ(r.total, counts.pulled);
  EXPECT_EQ(counts.pulled, counts.processed + counts.failed);
  EXPECT_EQ(r.total, (int64_t)r.done_count.size());
  for (auto &kv : r.done_count) EXPECT_EQ(1, kv.second) << "tile " << kv.first;
  EXPECT_EQ(counts.processed, r.ok);
  EXPECT_EQ(counts.failed, r.failed);
  EXPECT_EQ(r.ok, r.features);  // centerpoint: one feature per tile
  // Model errors and hangs surely happened with these rates and 2000 jobs.
  // A hung job ends either at the client's wait bound (ASD_ERR_TIMEOUT) or,
  // now that InvocationTimeoutSeconds is sent (derived from max_wait_time),
  // at the endpoint's, which writes a failure object saying so.
  int inference = 0, timeouts = 0, endpoint_timeouts = 0;
  for (auto &kv : r.failures) {
    EXPECT_FALSE(r.reasons[kv.first].empty());
    if (kv.second == ASD_ERR_INFERENCE) inference++;
    if (kv.second == ASD_ERR_INFERENCE && r.reasons[kv.first].find("InvocationTimeoutSeconds") != std::string::npos)
      endpoint_timeouts++;
    if (kv.second == ASD_ERR_TIMEOUT) {
      timeouts++;
      EXPECT_NE(std::string::npos, r.reasons[kv.first].find("max_wait_time"));
    }
  }
  EXPECT_GT(inference - endpoint_timeouts, 0);
  EXPECT_GT(timeouts + endpoint_timeouts, 0);
  EXPECT_GT(counts.processed, r.total * 8 / 10);
  // Transient S3 / invoke faults were absorbed by retries, not failures:
  // only inference failures and timeouts (and the rare exhausted retry).
  EXPECT_LE(r.failed - inference - timeouts, r.total / 100);
  // Nothing was deleted before its job finished.
  EXPECT_EQ(0, input_missing(ep));
  // Every worker thread is gone.
  EXPECT_LE(thread_count(), threads_before);
  asd_metric_summary s;
  ASSERT_EQ(0, asd_metrics_get(m, "PollingAttempts", &s));
  EXPECT_GT(s.mean, 0.9);
  EXPECT_EQ(timeouts, (int)asd_metrics_sum(m, "AsyncInferenceTimeouts"));

  // The registry holds nothing but the inputs of timed-out jobs (kept: the
  // endpoint may still read them) once deletions are done.
  asd_detector_cleanup_resources(d, 0);
  asd_resource_stats st;
  asd_detector_get_resource_stats(d, &st);
  EXPECT_EQ(0, st.total);
  EXPECT_EQ(0, st.active);
  EXPECT_EQ(timeouts, st.retained);
  asd_pool_free(pool);
  asd_detector_free(d);
  asd_metrics_free(m);
}

TEST(E2eEngine, CleanupDelayedAndDisabled) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("clean", 8, 0)});
  asd_test::set_local_aws_env(ep);
  const int N = 60;
  for (asd_cleanup_policy policy : {ASD_CLEANUP_DISABLED, ASD_CLEANUP_DELAYED}) {
    SCOPED_TRACE(asd_cleanup_policy_name(policy));
    asd_async_config cfg = test_config();
    cfg.cleanup_policy = policy;
    cfg.cleanup_delay_seconds = 600;  // delayed: nothing falls due during the test
    snprintf(cfg.input_prefix, sizeof cfg.input_prefix, "engine/%s/", asd_cleanup_policy_name(policy));
    asd_error err;
    asd_detector *d = asd_detector_new("clean", &cfg, nullptr, &err);
    ASSERT_NE(nullptr, d) << err.message;
    asd_pool *pool = asd_pool_new(d, nullptr, &err);
    JobRun r;
    r.total = N;
    r.payload = tiny_png();
    asd_pool_callbacks cb = callbacks(r);
    asd_pool_counts counts;
    ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
    EXPECT_EQ(N, counts.processed);
    // Both policies keep every input and output for now.
    EXPECT_EQ(N, count_objects(d, "asd-in", cfg.input_prefix));
    EXPECT_EQ(N, count_objects(d, "asd-out", "clean/output/"));
    asd_resource_stats st;
    asd_detector_get_resource_stats(d, &st);
    if (policy == ASD_CLEANUP_DISABLED) {
      EXPECT_EQ(2 * N, st.retained);
      EXPECT_EQ(0, st.total);
      asd_pool_free(pool);
      asd_detector_free(d);  // says so, deletes nothing
      // Verify with a fresh detector that nothing was deleted.
      asd_detector *d2 = asd_detector_new("clean", &cfg, nullptr, &err);
      EXPECT_EQ(N, count_objects(d2, "asd-in", cfg.input_prefix));
      // Remove them so the delayed run counts only its own outputs.
      asd_s3_list_result lr;
      memset(&lr, 0, sizeof lr);
      asd_aws_error ae;
      asd_aws_error_clear(&ae);
      ASSERT_EQ(0, asd_s3_list_objects_v2(asd_detector_aws_context(d2), "asd-out", "clean/output/", nullptr,
                                          1000, 0, &lr, &ae));
      std::vector<const char *> keys;
      for (size_t i = 0; i < lr.n_entries; i++) keys.push_back(lr.entries[i].key);
      asd_s3_delete_result dr;
      memset(&dr, 0, sizeof dr);
      ASSERT_EQ(0, asd_s3_delete_objects(asd_detector_aws_context(d2), "asd-out", keys.data(), keys.size(), &dr, &ae));
      asd_s3_delete_result_free(&dr);
      asd_s3_list_result_free(&lr);
      asd_detector_free(d2);
    } else {
      EXPECT_EQ(2 * N, st.pending);
      EXPECT_EQ(0, st.deleted);
      EXPECT_EQ(0, asd_detector_cleanup_resources(d, 0));  // not due yet
      asd_pool_free(pool);
      asd_detector_free(d);  // the end of the detector's scope deletes them
      asd_detector *d2 = asd_detector_new("clean", &cfg, nullptr, &err);
      EXPECT_EQ(0, count_objects(d2, "asd-in", cfg.input_prefix));
      EXPECT_EQ(0, count_objects(d2, "asd-out", "clean/output/"));
      asd_detector_free(d2);
    }
  }
  // Delayed with a short delay: deleted by the pool's cleaner once due.
  asd_async_config cfg = test_config();
  cfg.cleanup_policy = ASD_CLEANUP_DELAYED;
  cfg.cleanup_delay_seconds = 0.3;
  asd_error err;
  asd_detector *d = asd_detector_new("clean", &cfg, nullptr, &err);
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  JobRun r;
  r.total = N;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  // Wait (bounded) for the delay to pass, then collect what is due.
  long long deleted = 0;
  for (int i = 0; i < 100 && deleted < 2 * N; i++) {
    asd_sleep(0.1);
    deleted += asd_detector_cleanup_resources(d, 0);
    asd_resource_stats st;
    asd_detector_get_resource_stats(d, &st);
    deleted = st.deleted;
  }
  EXPECT_EQ(2 * N, deleted);
  EXPECT_EQ(0, count_objects(d, "asd-in", cfg.input_prefix));
  asd_pool_free(pool);
  asd_detector_free(d);
}

// Issue 11 part 6: a tile waiting for a slot waits as long as the jobs in
// flight are alive, so hung jobs time out one after the other and no tile
// fails for want of a slot (the first version failed them at
// job_queue_timeout).
TEST(E2eEngine, HungJobTimesOutAndQueueTimeout) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("hung", 4, 0), "-faults",
                              "hang=1"});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.max_wait_time = 0.6;
  cfg.max_concurrent_jobs = 1;
  cfg.job_queue_timeout = 0.2;  // far shorter than a job: only a stall may use it
  cfg.submission_workers = 2;
  asd_error err;
  asd_detector *d = asd_detector_new("hung", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  JobRun r;
  r.total = 3;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  EXPECT_EQ(3, counts.failed);
  int timeouts = 0, queue = 0;
  for (auto &kv : r.failures) {
    if (kv.second == ASD_ERR_TIMEOUT) timeouts++;
    if (kv.second == ASD_ERR_QUEUE_TIMEOUT) {
      queue++;
      EXPECT_NE(std::string::npos, r.reasons[kv.first].find("job_queue_timeout"));
    }
  }
  EXPECT_EQ(3, timeouts);
  EXPECT_EQ(0, queue);
  asd_pool_free(pool);
  asd_detector_free(d);

  // The synchronous detector times out too.
  cfg.max_concurrent_jobs = 4;
  d = asd_detector_new("hung", &cfg, nullptr, &err);
  std::string png = tiny_png();
  EXPECT_EQ(nullptr, asd_detector_find_features(d, png.data(), png.size(), nullptr, &err));
  EXPECT_EQ(ASD_ERR_TIMEOUT, err.code);
  asd_detector_free(d);
}

TEST(E2eEngine, StopNowMidRunThenResume) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("stop", 8, 100)});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.max_concurrent_jobs = 32;
  asd_error err;
  asd_detector *d = asd_detector_new("stop", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  JobRun r;
  r.total = 400;
  r.payload = tiny_png();
  r.pool = pool;
  r.after_done = [](JobRun &run) {
    std::lock_guard<std::mutex> lock(run.mu);
    if (run.ok == 20) asd_pool_cancel(run.pool, ASD_POOL_STOP_NOW);
  };
  asd_pool_callbacks cb = callbacks(r);
  int threads_before = thread_count();
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  EXPECT_LE(thread_count(), threads_before);
  EXPECT_LT(counts.pulled, r.total);
  EXPECT_EQ(counts.pulled, counts.processed + counts.failed);
  EXPECT_EQ(counts.pulled, (long long)r.done_count.size());
  for (auto &kv : r.done_count) EXPECT_EQ(1, kv.second);
  EXPECT_GT(counts.cancelled, 0);
  // Every cancelled tile that was invoked can be resumed without re-invoking.
  JobRun r2;
  for (auto &kv : r.failures) {
    EXPECT_EQ(ASD_ERR_CANCELLED, kv.second) << r.reasons[kv.first];
    if (r.submitted.count(kv.first)) r2.resume.push_back(r.submitted[kv.first]);
  }
  ASSERT_FALSE(r2.resume.empty());
  asd_pool_callbacks cb2 = callbacks(r2);
  asd_pool_counts c2;
  ASSERT_EQ(0, asd_pool_process(pool, &cb2, &c2, &err));
  EXPECT_EQ((long long)r2.resume.size(), c2.resumed);
  EXPECT_EQ((long long)r2.resume.size(), c2.processed);
  EXPECT_EQ(0, c2.submitted);  // nothing invoked again
  EXPECT_EQ(0, input_missing(ep));
  asd_detector_cleanup_resources(d, 0);
  asd_resource_stats st;
  asd_detector_get_resource_stats(d, &st);
  EXPECT_EQ(0, st.total);
  asd_pool_free(pool);
  asd_detector_free(d);
}

// A polling worker takes the due jobs in batches; when one poll of a batch
// is stuck on the network (here every S3 request takes 0.7 s, far longer
// than a poll should), the rest of the batch goes back to the heap for the
// other polling worker instead of waiting behind it.  Twelve resumed jobs
// are all due at once, the case where one worker would take them all.
TEST(E2eEngine, AStuckPollDoesNotHoldTheOtherJobsOfItsBatch) {
  // First: twelve jobs run to the end on a quick endpoint, their results
  // kept (cleanup disabled).
  asd_test::LocalEndpoint quick({"-bucket", "asd-in", "-endpoint", endpoint_spec("stuck", 16, 0)});
  asd_test::set_local_aws_env(quick);
  asd_async_config cfg = test_config();
  cfg.cleanup_policy = ASD_CLEANUP_DISABLED;
  asd_error err;
  asd_detector *d = asd_detector_new("stuck", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  JobRun r;
  r.total = 12;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  ASSERT_EQ(12, r.ok);
  asd_pool_free(pool);
  asd_detector_free(d);
  quick.stop();
  // Then the same objects behind a slow endpoint, and the twelve jobs
  // resumed: all due at once.
  asd_test::LocalEndpoint slow({"-bucket", "asd-in", "-endpoint", endpoint_spec("stuck", 16, 0), "-faults",
                                "slow_consumer_ms=700", "-data-dir", quick.data_dir()});
  asd_test::set_local_aws_env(slow);
  d = asd_detector_new("stuck", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  pool = asd_pool_new(d, nullptr, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  JobRun r2;
  for (auto &kv : r.submitted) r2.resume.push_back(kv.second);
  asd_pool_callbacks cb2 = callbacks(r2);
  asd_pool_counts c2;
  ASSERT_EQ(0, asd_pool_process(pool, &cb2, &c2, &err));
  EXPECT_EQ(12, r2.ok);
  for (auto &kv : r2.reasons) ADD_FAILURE() << "tile " << kv.first << ": " << kv.second;
  EXPECT_EQ(0, c2.submitted);
  EXPECT_GT(c2.handed_over, 0) << "the batch stayed with the worker whose poll was stuck";
  asd_pool_free(pool);
  asd_detector_free(d);
}

// Workers that cannot be started do not stop the pool: the jobs are bound
// to no worker, so the ones that did start do the work (with a warning).
// Without any polling worker the pool cannot run and says so.
TEST(E2eEngine, WorkersThatCannotStartAreDoneWithout) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("fewer", 8, 0)});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();  // 4 submission workers (0-3), 2 polling (4, 5)
  asd_error err;
  asd_detector *d = asd_detector_new("fewer", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  CPLSetConfigOption("ASD_TEST_WORKERS_NOT_STARTING", "0,1,2,4");
  static std::string warning;
  warning.clear();
  CPLPushErrorHandler([](CPLErr cls, CPLErrorNum, const char *msg) {
    if (cls == CE_Warning) warning += msg;
  });
  JobRun r;
  r.total = 20;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  int rc = asd_pool_process(pool, &cb, &counts, &err);
  CPLPopErrorHandler();
  EXPECT_EQ(0, rc) << err.message;
  EXPECT_EQ(20, r.ok);
  EXPECT_NE(std::string::npos, warning.find("4 of 6 worker threads could not be started")) << warning;

  CPLSetConfigOption("ASD_TEST_WORKERS_NOT_STARTING", "4,5");
  JobRun r2;
  r2.total = 3;
  r2.payload = tiny_png();
  asd_pool_callbacks cb2 = callbacks(r2);
  EXPECT_NE(0, asd_pool_process(pool, &cb2, &counts, &err));
  EXPECT_NE(std::string::npos, std::string(err.message).find("cannot start the pool's polling threads")) << err.message;
  EXPECT_EQ(0, r2.ok);
  EXPECT_EQ((long long)r2.done_count.size(), counts.pulled);  // whatever was pulled ended, once
  CPLSetConfigOption("ASD_TEST_WORKERS_NOT_STARTING", nullptr);
  asd_pool_free(pool);
  asd_detector_free(d);
}

TEST(E2eEngine, DrainAndSimpleMode) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("drain", 8, 20)});
  asd_test::set_local_aws_env(ep);
  for (int optimised : {1, 0}) {
    SCOPED_TRACE(optimised ? "optimised" : "simple");
    asd_async_config cfg = test_config();
    cfg.enable_worker_optimization = optimised;
    asd_error err;
    asd_detector *d = asd_detector_new("drain", &cfg, nullptr, &err);
    ASSERT_NE(nullptr, d) << err.message;
    asd_pool *pool = asd_pool_new(d, nullptr, &err);
    JobRun r;
    r.total = 300;
    r.payload = tiny_png();
    static volatile sig_atomic_t interrupt;
    interrupt = 0;
    r.after_done = [](JobRun &run) {
      std::lock_guard<std::mutex> lock(run.mu);
      if (run.ok == 30) interrupt = 1;
    };
    asd_pool_callbacks cb = callbacks(r);
    cb.interrupt = &interrupt;
    asd_pool_counts counts;
    ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
    // Drain: no new tiles after the interrupt, every tile in flight finished.
    EXPECT_LT(counts.pulled, r.total);
    EXPECT_EQ(counts.pulled, counts.processed);
    EXPECT_EQ(0, counts.failed);
    asd_pool_free(pool);
    asd_detector_free(d);
  }
}

TEST(E2eEngine, SourceFailuresAndBadResumeAreReported) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("src", 2, 0)});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  asd_error err;
  asd_detector *d = asd_detector_new("src", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  JobRun r;
  asd_pool_job failed;
  memset(&failed, 0, sizeof failed);
  failed.kind = ASD_POOL_JOB_FAILED;
  failed.tile_id = 1;
  snprintf(failed.reason, sizeof failed.reason, "read error on band 2");
  asd_pool_job bad;
  memset(&bad, 0, sizeof bad);
  bad.kind = ASD_POOL_JOB_RESUME;
  bad.tile_id = 2;
  snprintf(bad.output_location, sizeof bad.output_location, "not-a-uri");
  asd_pool_job missing;  // a resume whose result will never appear: times out
  memset(&missing, 0, sizeof missing);
  missing.kind = ASD_POOL_JOB_RESUME;
  missing.tile_id = 3;
  snprintf(missing.output_location, sizeof missing.output_location, "s3://asd-out/src/output/none.out");
  missing.submitted_wall = asd_time_wall() - 3600;  // long past max_wait_time
  r.resume = {failed, bad, missing};
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  EXPECT_EQ(3, counts.pulled);
  EXPECT_EQ(3, counts.failed);
  EXPECT_EQ(ASD_ERR_INPUT, r.failures[1]);
  EXPECT_NE(std::string::npos, r.reasons[1].find("read error on band 2"));
  EXPECT_NE(std::string::npos, r.reasons[2].find("not-a-uri"));
  EXPECT_EQ(ASD_ERR_TIMEOUT, r.failures[3]);
  asd_pool_free(pool);
  asd_detector_free(d);
}

// The stall that job_queue_timeout is for: every S3 answer takes 3 s
// (slow_consumer_ms), so nothing progresses for longer than the stall limit
// (job_queue_timeout, at least a poll gap: here 1.1 s) while a tile waits
// for the only slot, and the tile fails saying so.
TEST(E2eEngine, QueueTimeoutOnlyOnAStall) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("slow", 4, 0), "-faults",
                              "slow_consumer_ms=3000"});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.max_concurrent_jobs = 1;
  cfg.job_queue_timeout = 0.2;
  cfg.polling_interval = 0.05;
  cfg.max_polling_interval = 0.1;
  cfg.submission_workers = 2;
  asd_error err;
  asd_detector *d = asd_detector_new("slow", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  JobRun r;
  r.total = 2;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  int queue = 0;
  for (auto &kv : r.failures) {
    if (kv.second != ASD_ERR_QUEUE_TIMEOUT) continue;
    queue++;
    EXPECT_NE(std::string::npos, r.reasons[kv.first].find("made no progress")) << r.reasons[kv.first];
    EXPECT_NE(std::string::npos, r.reasons[kv.first].find("stalled")) << r.reasons[kv.first];
  }
  EXPECT_EQ(1, queue);
  asd_pool_free(pool);
  asd_detector_free(d);
}

// A failed job carries the typed facts of the failing call (error kind, HTTP
// status, AWS error code), not only a formatted line: the run decides from
// them whether the failure is its own (asd_error_is_fatal_for_run).
TEST(E2eEngine, FailedJobsCarryTheTypedFacts) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", endpoint_spec("typed", 2, 0)});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  snprintf(cfg.input_bucket, sizeof cfg.input_bucket, "no-such-bucket");
  asd_error err;
  asd_detector *d = asd_detector_new("typed", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  JobRun r;
  r.total = 2;
  r.payload = tiny_png();
  asd_pool_callbacks cb = callbacks(r);
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err));
  ASSERT_EQ(2, r.failed);
  for (auto &kv : r.failures) {
    EXPECT_EQ(ASD_ERR_S3, kv.second);
    EXPECT_EQ(404, r.facts[kv.first].first) << r.reasons[kv.first];
    EXPECT_EQ("NoSuchBucket", r.facts[kv.first].second) << r.reasons[kv.first];
    asd_error e;
    asd_error_clear(&e);
    e.code = kv.second;
    e.http_status = r.facts[kv.first].first;
    snprintf(e.aws_code, sizeof e.aws_code, "%s", r.facts[kv.first].second.c_str());
    EXPECT_TRUE(asd_error_is_fatal_for_run(&e));
  }
  asd_pool_free(pool);
  asd_detector_free(d);
}
