// End-to-end tests of issue 11, "first contact with a real AWS account",
// through the gdal_asyncdetect binary against the real local endpoint:
//   - every configuration mistake exits 1 with exactly one line naming it
//     (one table, one row per mistake, each with its exit code and the
//     fragment the line must contain);
//   - the headline command with only ASYNC_SM_ENDPOINT + ASYNC_SM_INPUT_BUCKET
//     set, and --config beating the environment;
//   - output_prefix lands results under the endpoint's path + extension;
//   - backpressure: a cold endpoint (cold_start_ms=5000), 200 tiles, 20 slots,
//     -job-queue-timeout 2: no tile fails;
//   - an endpoint without S3FailurePath: a model error fails its tile at the
//     wait bound, naming the missing S3FailurePath;
//   - deletions stay inside the configured and learnt scopes.
// No test asserts a duration.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "asyncdetect/asd_s3.h"
#include "e2e_helpers.h"

using asd_e2e::RunResult;
using asd_e2e::TempDir;

namespace {

using asd_e2e::endpoint_stat;
using asd_e2e::kEndpoint;
using asd_e2e::kInputBucket;
using asd_e2e::sample;
using asd_e2e::tile_statuses;

class FirstContact : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// Sets environment variables for one scope and restores them after.
class EnvScope {
 public:
  explicit EnvScope(const std::vector<std::pair<std::string, std::string>> &vars) {
    for (auto &kv : vars) {
      const char *old = std::getenv(kv.first.c_str());
      saved_.push_back({kv.first, old ? std::string(old) : std::string("\x01unset")});
      if (kv.second == "\x01unset")
        unsetenv(kv.first.c_str());
      else
        setenv(kv.first.c_str(), kv.second.c_str(), 1);
    }
  }
  ~EnvScope() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second == "\x01unset")
        unsetenv(it->first.c_str());
      else
        setenv(it->first.c_str(), it->second.c_str(), 1);
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> saved_;
};
const char *const kUnset = "\x01unset";

// A small GeoTIFF of w x h tiles of 64 x 64 pixels with one bright square per tile.
std::string make_raster(const std::string &dir, int tiles_x, int tiles_y) {
  std::string path = dir + "/grid.tif";
  GDALDriverH drv = GDALGetDriverByName("GTiff");
  GDALDatasetH ds = GDALCreate(drv, path.c_str(), tiles_x * 64, tiles_y * 64, 3, GDT_Byte, nullptr);
  double gt[6] = {500000, 0.5, 0, 4000000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32633);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  std::vector<unsigned char> buf((size_t)tiles_x * 64 * tiles_y * 64, 20);
  for (int ty = 0; ty < tiles_y; ty++)
    for (int tx = 0; tx < tiles_x; tx++)
      for (int y = 20; y < 40; y++)
        for (int x = 20; x < 40; x++) buf[(size_t)(ty * 64 + y) * tiles_x * 64 + tx * 64 + x] = 240;
  for (int b = 1; b <= 3; b++)
    if (GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, tiles_x * 64, tiles_y * 64, buf.data(),
                     tiles_x * 64, tiles_y * 64, GDT_Byte, 0, 0) != CE_None)
      return "";
  GDALClose(ds);
  return path;
}

// Objects under bucket/prefix, listed with our S3 client and the test's AWS environment.
long long count_keys(const char *bucket, const char *prefix) {
  asd_aws_config ac;
  asd_aws_config_init(&ac);
  asd_aws_error e;
  asd_aws_error_clear(&e);
  asd_aws_context *ctx = asd_aws_context_new(&ac, &e);
  if (!ctx) {
    ADD_FAILURE() << e.message;
    return -1;
  }
  asd_s3_list_result r;
  memset(&r, 0, sizeof r);
  long long n = -1;
  if (asd_s3_list_objects_v2(ctx, bucket, prefix, nullptr, 1000, 0, &r, &e) == 0)
    n = static_cast<long long>(r.n_entries);
  else
    ADD_FAILURE() << "list " << bucket << "/" << prefix << ": " << e.message;
  asd_s3_list_result_free(&r);
  asd_aws_context_free(ctx);
  return n;
}

std::set<std::string> list_keys(const char *bucket, const char *prefix) {
  std::set<std::string> keys;
  asd_aws_config ac;
  asd_aws_config_init(&ac);
  asd_aws_error e;
  asd_aws_error_clear(&e);
  asd_aws_context *ctx = asd_aws_context_new(&ac, &e);
  if (!ctx) return keys;
  asd_s3_list_result r;
  memset(&r, 0, sizeof r);
  if (asd_s3_list_objects_v2(ctx, bucket, prefix, nullptr, 1000, 0, &r, &e) == 0)
    for (size_t i = 0; i < r.n_entries; i++) keys.insert(r.entries[i].key);
  asd_s3_list_result_free(&r);
  asd_aws_context_free(ctx);
  return keys;
}

std::vector<std::string> base_args() {
  return {"-endpoint", kEndpoint, "-input-bucket", kInputBucket, "-polling-interval", "0.05",
          "-max-polling-interval", "0.3", "-max-wait-time", "120", "-q"};
}

struct BadCase {
  const char *what;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> args;  // replaces base_args() when use_base is false
  bool use_base;
  int status;
  const char *fragment;
};

TEST_F(FirstContact, EveryMistakeExitsOneWithOneLine) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-bucket", "locked", "-deny", "s3:ListBucket:locked",
                              "-endpoint",
                              std::string(kEndpoint) + ",model=blobs,output=s3://e2e-output/results,"
                                                       "failure=s3://e2e-output/failures"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string in = sample("scene_utm.tif"), out = dir.path() + "/o.gpkg";
  const std::vector<std::string> none;
  std::vector<BadCase> cases = {
      // Every ASYNC_SM_* key malformed, named in the line.
      {"polling interval with a unit", {{"ASYNC_SM_POLLING_INTERVAL", "30s"}}, none, true, 1, "ASYNC_SM_POLLING_INTERVAL"},
      {"max wait time with a unit", {{"ASYNC_SM_MAX_WAIT_TIME", "1h"}}, none, true, 1, "ASYNC_SM_MAX_WAIT_TIME"},
      {"max polling interval", {{"ASYNC_SM_MAX_POLLING_INTERVAL", "abc"}}, none, true, 1, "ASYNC_SM_MAX_POLLING_INTERVAL"},
      {"backoff multiplier", {{"ASYNC_SM_BACKOFF_MULTIPLIER", "x2"}}, none, true, 1, "ASYNC_SM_BACKOFF_MULTIPLIER"},
      {"polling jitter", {{"ASYNC_SM_POLLING_JITTER", "lots"}}, none, true, 1, "ASYNC_SM_POLLING_JITTER"},
      {"max retries", {{"ASYNC_SM_MAX_RETRIES", "three"}}, none, true, 1, "ASYNC_SM_MAX_RETRIES"},
      {"cleanup enabled", {{"ASYNC_SM_CLEANUP_ENABLED", "maybe"}}, none, true, 1, "ASYNC_SM_CLEANUP_ENABLED"},
      {"cleanup policy", {{"ASYNC_SM_CLEANUP_POLICY", "sometimes"}}, none, true, 1, "ASYNC_SM_CLEANUP_POLICY"},
      {"cleanup delay", {{"ASYNC_SM_CLEANUP_DELAY_SECONDS", "soon"}}, none, true, 1, "ASYNC_SM_CLEANUP_DELAY_SECONDS"},
      {"worker optimization", {{"ASYNC_SM_WORKER_OPTIMIZATION", "perhaps"}}, none, true, 1, "ASYNC_SM_WORKER_OPTIMIZATION"},
      {"submission workers", {{"ASYNC_SM_SUBMISSION_WORKERS", "4.5"}}, none, true, 1, "ASYNC_SM_SUBMISSION_WORKERS"},
      {"polling workers", {{"ASYNC_SM_POLLING_WORKERS", "two"}}, none, true, 1, "ASYNC_SM_POLLING_WORKERS"},
      {"max concurrent jobs", {{"ASYNC_SM_MAX_CONCURRENT_JOBS", "many"}}, none, true, 1, "ASYNC_SM_MAX_CONCURRENT_JOBS"},
      {"job queue timeout", {{"ASYNC_SM_JOB_QUEUE_TIMEOUT", "never"}}, none, true, 1, "ASYNC_SM_JOB_QUEUE_TIMEOUT"},
      {"invocation timeout", {{"ASYNC_SM_INVOCATION_TIMEOUT", "1m"}}, none, true, 1, "ASYNC_SM_INVOCATION_TIMEOUT"},
      {"request ttl", {{"ASYNC_SM_REQUEST_TTL", "6h"}}, none, true, 1, "ASYNC_SM_REQUEST_TTL"},
      {"request ttl out of range", {{"ASYNC_SM_REQUEST_TTL", "10"}}, none, true, 1, "request_ttl_seconds"},
      {"polling interval above the maximum", {{"ASYNC_SM_POLLING_INTERVAL", "1000"}},
       {"-endpoint", kEndpoint, "-input-bucket", kInputBucket, "-q"}, false, 1, "max_polling_interval must be >="},
      {"input prefix absolute", {{"ASYNC_SM_INPUT_PREFIX", "/abs/"}}, none, true, 1, "input_prefix must not start"},
      {"output prefix SageMaker refuses", {{"ASYNC_SM_OUTPUT_PREFIX", "my results/"}}, none, true, 1,
       "S3OutputPathExtension"},
      {"content type with a control character", {{"ASYNC_SM_CONTENT_TYPE", "image/png\x01"}}, none, true, 1,
       "content_type must be printable"},
      {"invalid bucket from the environment", {{"ASYNC_SM_INPUT_BUCKET", "Bad_Bucket"}},
       {"-endpoint", kEndpoint, "-q"}, false, 1, "'Bad_Bucket' is not a valid S3 bucket name"},
      {"invalid endpoint from the environment", {{"ASYNC_SM_ENDPOINT", "-bad-"}},
       {"-input-bucket", kInputBucket, "-q"}, false, 1, "endpoint '-bad-'"},
      {"invalid region from the environment", {{"ASYNC_SM_REGION", "US East 1"}}, none, true, 1, "region 'US East 1'"},
      // Options with bad values.
      {"-polling-interval 0", {}, {"-polling-interval", "0"}, true, 1, "polling_interval must be in"},
      {"-max-wait-time negative", {}, {"-max-wait-time", "-5"}, true, 1, "-max-wait-time"},
      {"-cleanup-policy unknown", {}, {"-cleanup-policy", "sometimes"}, true, 1, "-cleanup-policy"},
      {"-max-concurrent-jobs 0", {}, {"-max-concurrent-jobs", "0"}, true, 1, "max_concurrent_jobs"},
      {"-backoff-multiplier 1", {}, {"-backoff-multiplier", "1"}, true, 1, "exponential_backoff_multiplier"},
      {"-output-bucket invalid", {}, {"-output-bucket", "Out_Put"}, true, 1, "output_bucket 'Out_Put'"},
      {"-tile-size not a number", {}, {"-tile-size", "zero"}, true, 1, "-tile-size"},
      {"-merge unknown", {}, {"-merge", "average"}, true, 1, "-merge"},
      // Missing pieces, unreadable or unwritable files, AWS problems.
      {"no endpoint anywhere", {{"ASYNC_SM_ENDPOINT", kUnset}}, {"-input-bucket", kInputBucket, "-q"}, false, 1,
       "no endpoint: give -endpoint NAME or set ASYNC_SM_ENDPOINT"},
      {"no input bucket anywhere", {{"ASYNC_SM_INPUT_BUCKET", kUnset}}, {"-endpoint", kEndpoint, "-q"}, false, 1,
       "no input bucket"},
      {"unreadable input", {}, {"-q"}, true, 1, "nope.tif"},
      {"unwritable output", {}, {"-q"}, true, 1, "/nonexistent-dir/"},
      {"no credentials",
       {{"AWS_ACCESS_KEY_ID", kUnset}, {"AWS_SECRET_ACCESS_KEY", kUnset}, {"AWS_CONFIG_FILE", "/nonexistent/c"},
        {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k"}, {"AWS_EC2_METADATA_DISABLED", "true"},
        {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", kUnset}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI", kUnset},
        {"AWS_WEB_IDENTITY_TOKEN_FILE", kUnset}, {"AWS_PROFILE", kUnset}},
       none, true, 1, "no usable AWS credentials"},
      {"wrong secret key", {{"AWS_SECRET_ACCESS_KEY", "not-the-secret"}}, none, true, 1, "AWS credentials rejected (SignatureDoesNotMatch)"},
      {"unknown endpoint", {}, {"-endpoint", "no-such-endpoint"}, true, 1,
       "endpoint 'no-such-endpoint' not found in region us-east-1"},
      {"input bucket that does not exist", {}, {"-input-bucket", "no-such-bucket"}, true, 1,
       "input bucket 'no-such-bucket' does not exist"},
      {"input bucket without s3:ListBucket", {}, {"-input-bucket", "locked"}, true, 1,
       "s3:ListBucket on arn:aws:s3:::locked is missing"},
  };
  ASSERT_GE(cases.size(), 25u);
  int n = 0;
  for (const BadCase &c : cases) {
    SCOPED_TRACE(c.what);
    EnvScope env(c.env);
    std::vector<std::string> a;
    if (c.use_base) {
      a = base_args();
      a.insert(a.end(), c.args.begin(), c.args.end());
    } else {
      a = c.args;
    }
    std::string src = in, dst = out;
    if (std::string(c.what) == "unreadable input") src = dir.path() + "/nope.tif";
    if (std::string(c.what) == "unwritable output") dst = "/nonexistent-dir/x/out.gpkg";
    a.push_back(src);
    a.push_back(dst);
    RunResult r = asd_e2e::run_app(a, dir.path(), 120);
    EXPECT_EQ(c.status, r.status) << c.what << ": " << r.err;
    EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << c.what << ": " << r.err;
    EXPECT_NE(std::string::npos, r.err.find(c.fragment)) << c.what << ": " << r.err;
    EXPECT_EQ(-1, access(out.c_str(), F_OK)) << c.what << ": no output is left behind";
    unlink(out.c_str());
    n++;
  }
  EXPECT_EQ(0, endpoint_stat(ep, "accepted")) << "no mistake may reach the endpoint";
  EXPECT_EQ(static_cast<int>(cases.size()), n);
}

// The headline: with ASYNC_SM_ENDPOINT and ASYNC_SM_INPUT_BUCKET set, no flag
// at all; output_prefix goes to the endpoint as S3OutputPathExtension.
TEST_F(FirstContact, HeadlineCommandWithoutFlags) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-endpoint",
                              std::string(kEndpoint) + ",model=blobs,output=s3://e2e-output/results,"
                                                       "failure=s3://e2e-output/failures"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string raster = make_raster(dir.path(), 3, 2);
  ASSERT_FALSE(raster.empty());
  EnvScope env({{"ASYNC_SM_ENDPOINT", kEndpoint},
                {"ASYNC_SM_INPUT_BUCKET", kInputBucket},
                {"ASYNC_SM_POLLING_INTERVAL", "0.05"},
                {"ASYNC_SM_MAX_POLLING_INTERVAL", "0.3"},
                {"ASYNC_SM_OUTPUT_PREFIX", "wrong prefix"},
                {"ASYNC_SM_CLEANUP_ENABLED", "false"}});
  // --config beats the (here malformed) environment value.
  std::string out = dir.path() + "/out.gpkg";
  RunResult r = asd_e2e::run_app({"--config", "ASYNC_SM_OUTPUT_PREFIX", "runs/first-contact/", "-tile-size", "64",
                                  "-overlap", "0", raster, out},
                                 dir.path(), 300);
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  EXPECT_EQ(6, st["succeeded"]);
  EXPECT_EQ(0, st["failed"]);
  // Cleanup is off: the six results are where SageMaker puts them, under
  // the endpoint's output path + the extension.
  std::string results = "runs/first-contact/";
  long long files = count_keys("e2e-output", "results/runs/first-contact/");
  EXPECT_EQ(6, files) << results;
}

// Backpressure never fails a tile: 200 tiles through 20 slots of an endpoint
// that starts cold (5 s), with -job-queue-timeout 2.
TEST_F(FirstContact, ColdEndpointBackpressureFailsNoTile) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-endpoint",
                              std::string(kEndpoint) + ",model=blobs,output=s3://e2e-output/results,"
                                                       "failure=s3://e2e-output/failures,concurrency=8,"
                                                       "cold_start_ms=5000"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string raster = make_raster(dir.path(), 20, 10);
  ASSERT_FALSE(raster.empty());
  std::string out = dir.path() + "/out.gpkg";
  std::vector<std::string> a = base_args();
  for (const char *s : {"-tile-size", "64", "-overlap", "0", "-max-concurrent-jobs", "20", "-job-queue-timeout", "2",
                        "-no-skip-nodata"})
    a.push_back(s);
  a.push_back(raster);
  a.push_back(out);
  RunResult r = asd_e2e::run_app(a, dir.path(), 600);
  EXPECT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  EXPECT_EQ(200, st["succeeded"]);
  EXPECT_EQ(0, st["failed"]);
}

// An endpoint without S3FailurePath: the model fails every job, nothing
// says so in S3, and each tile fails at the wait bound with the reason.
TEST_F(FirstContact, NoFailurePathIsNamedWhenTilesTimeOut) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-endpoint",
                              std::string(kEndpoint) + ",model=failure,output=s3://e2e-output/results,failure=none"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string raster = make_raster(dir.path(), 2, 1);
  ASSERT_FALSE(raster.empty());
  std::string out = dir.path() + "/out.gpkg";
  std::vector<std::string> a = {"-endpoint", kEndpoint, "-input-bucket", kInputBucket, "-polling-interval", "0.05",
                                "-max-polling-interval", "0.3", "-max-wait-time", "3", "-tile-size", "64",
                                "-overlap", "0", raster, out};
  RunResult r = asd_e2e::run_app(a, dir.path(), 300);
  EXPECT_EQ(2, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("no S3FailurePath")) << r.err;  // the preflight's warning
  auto st = tile_statuses(out);
  EXPECT_EQ(2, st["failed"]);
  GDALDatasetH ds = GDALOpenEx(out.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH l = GDALDatasetGetLayerByName(ds, "tiles");
  ASSERT_NE(nullptr, l);
  int named = 0;
  OGRFeatureH f;
  int ri = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "reason");
  ASSERT_GE(ri, 0);
  while ((f = OGR_L_GetNextFeature(l)) != nullptr) {
    std::string reason = OGR_F_GetFieldAsString(f, ri);
    if (reason.find("no S3FailurePath") != std::string::npos) named++;
    OGR_F_Destroy(f);
  }
  GDALClose(ds);
  EXPECT_EQ(2, named);
}

// Delayed cleanup keeps its promise: what is not due when the process ends
// survives it, and a later run on the same output (or -cleanup-pending
// alone) deletes it once due, not before.
TEST_F(FirstContact, DelayedCleanupOutlivesTheProcess) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-endpoint",
                              std::string(kEndpoint) + ",model=blobs,output=s3://e2e-output/results,"
                                                       "failure=s3://e2e-output/failures"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string raster = make_raster(dir.path(), 2, 1);
  ASSERT_FALSE(raster.empty());
  auto args = [&](const std::string &delay, const std::string &out, std::vector<std::string> extra) {
    std::vector<std::string> a = base_args();
    for (const char *s : {"-tile-size", "64", "-overlap", "0", "-cleanup-policy", "delayed"}) a.push_back(s);
    a.push_back("-cleanup-delay");
    a.push_back(delay);
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back(raster);
    a.push_back(out);
    return a;
  };
  const char *in_prefix = "async-inference/input/";
  // A long delay: nothing is deleted at exit, nor by -cleanup-pending before it is due.
  std::string a_out = dir.path() + "/a.gpkg";
  RunResult r = asd_e2e::run_app(args("3600", a_out, {}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  std::set<std::string> a_inputs = list_keys(kInputBucket, in_prefix);
  EXPECT_EQ(2u, a_inputs.size());
  EXPECT_EQ(2u, list_keys("e2e-output", "results/").size());
  r = asd_e2e::run_app(args("3600", a_out, {"-cleanup-pending"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(a_inputs, list_keys(kInputBucket, in_prefix));

  // A short delay: once it has passed, a later run on the same output
  // deletes what the first one left, and keeps its own for later.
  std::string b_out = dir.path() + "/b.gpkg";
  r = asd_e2e::run_app(args("1", b_out, {}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  std::set<std::string> all = list_keys(kInputBucket, in_prefix);
  EXPECT_EQ(4u, all.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  r = asd_e2e::run_app(args("3600", b_out, {"-overwrite"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  std::set<std::string> now = list_keys(kInputBucket, in_prefix);
  EXPECT_EQ(4u, now.size());  // a's two (not due) + the second b run's two (not due)
  for (const std::string &k : a_inputs) EXPECT_EQ(1u, now.count(k)) << k;
  for (const std::string &k : all)
    if (!a_inputs.count(k)) {
      EXPECT_EQ(0u, now.count(k)) << "b's first run left " << k;
    }
  // -cleanup-pending alone on a: still not due, still there.
  r = asd_e2e::run_app(args("3600", a_out, {"-cleanup-pending"}), dir.path());
  EXPECT_EQ(0, r.status) << r.err;
  EXPECT_EQ(4u, list_keys(kInputBucket, in_prefix).size());

  // -cleanup-pending needs the output alone, no input (gaps item 4): c's
  // two objects, due after 1 s, go; a's and b's stay.
  std::string c_out = dir.path() + "/c.gpkg";
  r = asd_e2e::run_app(args("1", c_out, {}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(6u, list_keys(kInputBucket, in_prefix).size());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::vector<std::string> only = base_args();
  only.erase(std::find(only.begin(), only.end(), "-q"));  // the summary is checked
  for (const char *s : {"-cleanup-policy", "delayed", "-cleanup-pending"}) only.push_back(s);
  only.push_back(c_out);
  r = asd_e2e::run_app(only, dir.path());
  EXPECT_EQ(0, r.status) << r.err;
  // c's two inputs and two results.
  EXPECT_NE(std::string::npos, r.out.find("Pending deletions: 4 deleted, 0 not due yet")) << r.out;
  EXPECT_EQ(4u, list_keys(kInputBucket, in_prefix).size());
  EXPECT_EQ(std::string::npos, r.out.find("Tiles:")) << r.out;
  // An output that does not exist: one line naming it.
  only.back() = dir.path() + "/none.gpkg";
  r = asd_e2e::run_app(only, dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("none.gpkg")) << r.err;
  EXPECT_EQ(0, endpoint_stat(ep, "rejected"));
}

// Without s3:ListBucket on the output bucket (and without DescribeEndpoint,
// so the preflight cannot learn that bucket), S3 answers 403 for a result
// not written yet: the tile's reason names the missing grant.
TEST_F(FirstContact, PollingWithoutListBucketNamesTheGrant) {
  asd_test::LocalEndpoint ep({"-bucket", kInputBucket, "-deny", "sagemaker:DescribeEndpoint", "-deny",
                              "s3:ListBucket:e2e-output", "-endpoint",
                              std::string(kEndpoint) + ",model=blobs,output=s3://e2e-output/results,"
                                                       "failure=s3://e2e-output/failures,latency_ms=800"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string raster = make_raster(dir.path(), 1, 1);
  ASSERT_FALSE(raster.empty());
  std::string out = dir.path() + "/out.gpkg";
  std::vector<std::string> a = base_args();
  for (const char *s : {"-tile-size", "64", "-overlap", "0"}) a.push_back(s);
  a.push_back(raster);
  a.push_back(out);
  RunResult r = asd_e2e::run_app(a, dir.path(), 300);
  // Every poll would meet the same 403: the run stops at the first, naming the grant.
  EXPECT_EQ(1, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("DescribeEndpoint not allowed")) << r.err;
  std::string reason = r.err;
  EXPECT_NE(std::string::npos, reason.find("s3:ListBucket on arn:aws:s3:::e2e-output")) << reason;
}

}  // namespace
