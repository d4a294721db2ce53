// At most one inference per tile, at the engine's level (detector + pool)
// against the real local endpoint:
//   - answers lost after SageMaker queued the job (accept_then_5xx,
//     accept_then_drop): every job ends with its result and the endpoint ran
//     each exactly once, in the optimised and in the simple mode;
//   - on_invoking names the id, input and expected locations before the
//     call, and they are those of the invocation;
//   - a resume job for an invocation whose answer never came (id and input,
//     no output location) finds the result where the Filename put it and
//     invokes nothing; one whose request never reached SageMaker, with a
//     max_wait_time too short to be sure, fails saying why, invoking nothing.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_pool.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

extern "C" {
#include "engine/invoke.h"
}

namespace {

const char *kSpec = "ep,model=centerpoint,output=s3://asd-out/ep/output,failure=s3://asd-out/ep/failure,concurrency=8";
const std::string &payload() { return asd_test::tiny_png(); }

asd_async_config test_config() { return asd_test::engine_config("in/", 32); }

long long stat_of(asd_test::LocalEndpoint &ep, const char *key) { return asd_test::runtime_stat(ep, "ep", key); }

struct JobLog {
  std::mutex mu;
  int64_t next = 0, total = 0;
  std::vector<asd_pool_job> resume;
  size_t resume_next = 0;
  std::map<int64_t, int> done;
  std::map<int64_t, std::string> reasons;
  std::map<int64_t, std::string> invoking_id, invoking_out, submitted_id, submitted_out;
  int ok = 0;
};

int source(void *ud, int, asd_pool_job *job) {
  JobLog *r = static_cast<JobLog *>(ud);
  std::lock_guard<std::mutex> lock(r->mu);
  if (r->resume_next < r->resume.size()) {
    *job = r->resume[r->resume_next++];
    return 1;
  }
  if (r->next >= r->total) return 0;
  job->kind = ASD_POOL_JOB_PAYLOAD;
  job->tile_id = 1000 + r->next++;
  job->payload_len = payload().size();
  job->payload = static_cast<unsigned char *>(malloc(job->payload_len));
  memcpy(job->payload, payload().data(), job->payload_len);
  return 1;
}

void on_invoking(void *ud, int64_t tile, const char *id, const char *input, const char *out, const char *) {
  JobLog *r = static_cast<JobLog *>(ud);
  std::lock_guard<std::mutex> lock(r->mu);
  EXPECT_EQ(0u, std::string(input).rfind("s3://asd-in/in/", 0)) << input;
  EXPECT_EQ(0u, r->invoking_id.count(tile)) << "announced twice";
  r->invoking_id[tile] = id;
  r->invoking_out[tile] = out;
}

void on_submitted(void *ud, int64_t tile, const char *id, const char *, const char *out, const char *) {
  JobLog *r = static_cast<JobLog *>(ud);
  std::lock_guard<std::mutex> lock(r->mu);
  r->submitted_id[tile] = id;
  r->submitted_out[tile] = out;
}

void on_done(void *ud, const asd_pool_result *res) {
  JobLog *r = static_cast<JobLog *>(ud);
  std::lock_guard<std::mutex> lock(r->mu);
  r->done[res->tile_id]++;
  if (res->ok) r->ok++;
  else r->reasons[res->tile_id] = res->reason;
}

void process(asd_detector *d, JobLog &r) {
  asd_error err;
  asd_pool *pool = asd_pool_new(d, nullptr, &err);
  ASSERT_NE(nullptr, pool) << err.message;
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = source;
  cb.on_invoking = on_invoking;
  cb.on_submitted = on_submitted;
  cb.on_done = on_done;
  cb.user_data = &r;
  asd_pool_counts counts;
  ASSERT_EQ(0, asd_pool_process(pool, &cb, &counts, &err)) << err.message;
  asd_pool_free(pool);
}

class EngineInvokeOnce : public ::testing::TestWithParam<bool> {};

TEST_P(EngineInvokeOnce, LostAnswersRunEachJobOnce) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", kSpec, "-faults",
                              "accept_then_5xx=0.2,accept_then_drop=0.2,seed=3"});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.enable_worker_optimization = GetParam();
  asd_error err;
  asd_detector *d = asd_detector_new("ep", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  JobLog r;
  r.total = 200;
  process(d, r);
  EXPECT_EQ(r.total, r.ok);
  for (auto &kv : r.reasons) ADD_FAILURE() << "tile " << kv.first << ": " << kv.second;
  for (auto &kv : r.done) EXPECT_EQ(1, kv.second);
  EXPECT_EQ(r.total, stat_of(ep, "accepted"));
  // The id announced before the call is the one invoked; where a result was
  // announced as expected, it is where the endpoint put it.
  int predicted = 0;
  for (auto &kv : r.submitted_id) {
    EXPECT_EQ(r.invoking_id[kv.first], kv.second);
    if (!r.invoking_out[kv.first].empty()) {
      predicted++;
      EXPECT_EQ(r.invoking_out[kv.first], r.submitted_out[kv.first]);
    }
  }
  EXPECT_GT(predicted, 0);
  EXPECT_EQ(r.total, (int64_t)r.invoking_id.size());
  asd_detector_free(d);
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineInvokeOnce, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool> &i) { return i.param ? "Optimised" : "Simple"; });

// Uploads an input and, when invoke is set, invokes it with the id and
// Filename the pool would have chosen: a run that died during the call.
std::string crashed_invocation(asd_detector *d, const std::string &key, bool invoke, char id[37]) {
  char fn[ASD_INVOKE_FILENAME_MAX];
  asd_invoke_new_id(id, fn);
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  EXPECT_EQ(0, asd_s3_put_object(asd_detector_aws_context(d), "asd-in", key.c_str(), payload().data(),
                                 payload().size(), nullptr, nullptr, &ae))
      << ae.message;
  std::string input = "s3://asd-in/" + key;
  if (invoke) {
    asd_sm_invoke_async_params p;
    memset(&p, 0, sizeof p);
    p.endpoint_name = "ep";
    p.input_location = input.c_str();
    p.inference_id = id;
    p.filename = fn;
    char ext[ASD_CONFIG_PREFIX_MAX];  // as the detector sends it
    if (asd_config_output_path_extension(asd_detector_config(d), ext, sizeof ext) > 0) p.s3_output_path_extension = ext;
    asd_sm_invoke_async_result res;
    memset(&res, 0, sizeof res);
    EXPECT_EQ(0, asd_sm_invoke_async(asd_detector_aws_context(d), &p, &res, &ae)) << ae.message;
    asd_sm_invoke_async_result_free(&res);
  }
  return input;
}

asd_pool_job lost_resume_job(int64_t tile, const char *id, const std::string &input) {
  asd_pool_job j;
  memset(&j, 0, sizeof j);
  j.kind = ASD_POOL_JOB_RESUME;
  j.tile_id = tile;
  snprintf(j.inference_id, sizeof j.inference_id, "%s", id);
  snprintf(j.input_location, sizeof j.input_location, "%s", input.c_str());
  return j;
}

TEST(EngineInvokeOnceResume, StoppedDuringTheCallIsFoundNotInvokedAgain) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", kSpec});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  asd_error err;
  asd_detector *d = asd_detector_new("ep", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  char id[37];
  std::string input = crashed_invocation(d, "in/crashed", true, id);
  ASSERT_EQ(1, stat_of(ep, "accepted"));
  JobLog r;
  r.resume.push_back(lost_resume_job(7, id, input));
  r.total = 3;  // fresh tiles of the resumed run teach the endpoint's paths
  process(d, r);
  EXPECT_EQ(4, r.ok);
  for (auto &kv : r.reasons) ADD_FAILURE() << "tile " << kv.first << ": " << kv.second;
  EXPECT_EQ(4, stat_of(ep, "accepted"));  // 1 before the "crash" + 3 fresh, none again
  EXPECT_EQ(0u, r.invoking_id.count(7));
  asd_detector_free(d);
}

TEST(EngineInvokeOnceResume, NeverSentFailsSayingWhyWithoutPayingTwice) {
  asd_test::LocalEndpoint ep({"-bucket", "asd-in", "-endpoint", kSpec});
  asd_test::set_local_aws_env(ep);
  asd_async_config cfg = test_config();
  cfg.max_wait_time = 2;  // well below RequestTTLSeconds (>= 60) + InvocationTimeoutSeconds
  asd_error err;
  asd_detector *d = asd_detector_new("ep", &cfg, nullptr, &err);
  ASSERT_NE(nullptr, d) << err.message;
  char id[37];
  std::string input = crashed_invocation(d, "in/never-sent", false, id);
  JobLog r;
  r.resume.push_back(lost_resume_job(7, id, input));
  r.total = 2;
  process(d, r);
  EXPECT_EQ(2, r.ok);
  ASSERT_EQ(1u, r.reasons.count(7));
  EXPECT_NE(std::string::npos, r.reasons[7].find("not invoked again")) << r.reasons[7];
  EXPECT_NE(std::string::npos, r.reasons[7].find(id)) << r.reasons[7];
  EXPECT_EQ(2, stat_of(ep, "accepted"));
  asd_detector_free(d);
}

}  // namespace
