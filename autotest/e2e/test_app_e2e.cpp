// End-to-end tests of gdal_asyncdetect against the real local endpoint
// (asyncdetect_endpoint with the blobs model), started by each test on an
// ephemeral loopback port:
//   - accuracy on the GeoTIFF and the RPC NITF samples at several tilings,
//     objects across seams included: every ground-truth object exactly once;
//   - injected faults: the run finishes, failed tiles are reported, and
//     -resume completes the output to the same result as a clean run;
//   - kill -9 in the middle, then -resume: same output, and no tile the
//     journal had completed (or had in flight) is invoked again;
//   - user errors: one line each and the documented exit status.
#include <gtest/gtest.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include "e2e_helpers.h"

using asd_e2e::AppProcess;
using asd_e2e::Boxes;
using asd_e2e::RunResult;
using asd_e2e::TempDir;

namespace {

using asd_e2e::Accuracy;
using asd_e2e::accuracy;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::endpoint_stat;
using asd_e2e::journal_states;
using asd_e2e::kEndpoint;
using asd_e2e::kInputBucket;
using asd_e2e::sample;
using asd_e2e::tile_statuses;
using asd_e2e::vector_concat;

class E2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// ---------------------------------------------------------------- accuracy

struct Tiling {
  const char *sample;
  int tile, overlap;
};

class E2eAccuracy : public E2e, public ::testing::WithParamInterface<Tiling> {};

TEST_P(E2eAccuracy, EveryObjectExactlyOnce) {
  const Tiling &t = GetParam();
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  std::string metrics = dir.path() + "/m.json";
  RunResult r = asd_e2e::run_app(app_args(sample(t.sample), out,
                                          {"-tile-size", std::to_string(t.tile), "-overlap",
                                           std::to_string(t.overlap), "-metrics", metrics}),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out);
  ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  EXPECT_EQ(a.score.truth, a.score.class_ok) << a.score.describe();
  auto st = tile_statuses(out);
  EXPECT_EQ(0, st["failed"]);
  EXPECT_GT(st["succeeded"], 1);
  // The metrics file is JSON with the run's figures.
  json_object *m = json_object_from_file(metrics.c_str());
  ASSERT_NE(nullptr, m);
  json_object *status = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(m, "status", &status));
  EXPECT_STREQ("ok", json_object_get_string(status));
  json_object_put(m);
}

INSTANTIATE_TEST_SUITE_P(Samples, E2eAccuracy,
                         ::testing::Values(Tiling{"scene_utm.tif", 512, 64}, Tiling{"scene_utm.tif", 512, 128},
                                           Tiling{"scene_utm.tif", 384, 96}, Tiling{"scene_utm.tif", 1024, 128}, Tiling{"scene_rpc.ntf", 512, 64},
                                           Tiling{"scene_rpc.ntf", 448, 128}),
                         [](const ::testing::TestParamInfo<Tiling> &i) {
                           std::string s = i.param.sample;
                           s = s.substr(0, s.find('.'));
                           return s + "_" + std::to_string(i.param.tile) + "_" + std::to_string(i.param.overlap);
                         });

// ---------------------------------------------------------- faults + resume

TEST_F(E2e, FaultsThenResumeCompletesTheOutput) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  std::string metrics = dir.path() + "/m.json";
  int failed_first = 0;
  {
    asd_test::LocalEndpoint ep(
        endpoint_args("", "s3_503=0.1,invoke_throttle=0.15,drop=0.05,model_error=0.2,seed=11"));
    asd_test::set_local_aws_env(ep);
    RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out,
                                            {"-tile-size", "512", "-overlap", "64", "-metrics", metrics, "-max-retries", "6",
                                             // An invocation whose connection is dropped may have been
                                             // accepted: it is looked for, not sent again, and fails
                                             // once max_wait_time has passed; keep that short here.
                                             "-max-wait-time", "8"}),
                                   dir.path());
    // Model errors are permanent for a tile: the run ends partial (2), output written.
    ASSERT_EQ(2, r.status) << r.err;
    auto st = tile_statuses(out);
    failed_first = st["failed"];
    EXPECT_GT(failed_first, 0);
    json_object *m = json_object_from_file(metrics.c_str());
    ASSERT_NE(nullptr, m);
    json_object *ft = nullptr;
    ASSERT_TRUE(json_object_object_get_ex(m, "failed_tiles", &ft));
    ASSERT_EQ(failed_first, (int)json_object_array_length(ft));
    json_object *reason = nullptr, *inf = nullptr;
    json_object *first = json_object_array_get_idx(ft, 0);
    ASSERT_TRUE(json_object_object_get_ex(first, "reason", &reason));
    EXPECT_GT(strlen(json_object_get_string(reason)), 5u);
    ASSERT_TRUE(json_object_object_get_ex(first, "inference_id", &inf));
    json_object_put(m);
  }
  // The endpoint is healthy again: -resume retries only the failed tiles.
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, {"-tile-size", "512", "-overlap", "64", "-resume"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(failed_first, endpoint_stat(ep, "accepted"));
  auto st = tile_statuses(out);
  EXPECT_EQ(0, st["failed"]);
  Accuracy a = accuracy(out);
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
}

// ------------------------------------------------------------ kill -9 + resume

TEST_F(E2e, Kill9ThenResumeGivesTheCleanResult) {
  TempDir dir;
  // Slow model so that the run is surely in the middle when it is killed.
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=400", ""));
  asd_test::set_local_aws_env(ep);
  std::string out = dir.path() + "/killed.gpkg";
  std::vector<std::string> tiling = {"-tile-size", "384", "-overlap", "96", "-max-concurrent-jobs", "4"};
  AppProcess p(app_args(sample("scene_utm.tif"), out, tiling), dir.path());
  // Wait until some tiles completed, then kill without warning.
  auto t0 = std::chrono::steady_clock::now();
  while (endpoint_stat(ep, "completed") < 8 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(p.pid(), SIGKILL);
  RunResult killed = p.wait(30);
  ASSERT_EQ(128 + SIGKILL, killed.status) << "the run ended before it could be killed: " << killed.err;
  // Let the server finish whatever request was already on the wire.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  long long accepted_at_kill = endpoint_stat(ep, "accepted");
  auto states = journal_states(out);
  int done = 0, in_flight = 0;
  for (auto &kv : states) {
    if (kv.second == "succeeded") done++;
    if (kv.second == "submitted") in_flight++;
  }
  ASSERT_GT(done, 0) << "nothing was journaled as completed before the kill";

  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, vector_concat(tiling, {"-resume"})),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  int tiles = st["succeeded"] + st["skipped"];
  // Only tiles the journal knew nothing about were invoked again.
  EXPECT_EQ(tiles - st["skipped"] - done - in_flight, endpoint_stat(ep, "accepted") - accepted_at_kill);

  Accuracy a = accuracy(out);
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();

  // The same as a clean run with the same tiling.
  std::string clean = dir.path() + "/clean.gpkg";
  RunResult c = asd_e2e::run_app(app_args(sample("scene_utm.tif"), clean, tiling), dir.path());
  ASSERT_EQ(0, c.status) << c.err;
  Accuracy ac = accuracy(clean);
  EXPECT_EQ(ac.score.detections, a.score.detections);
  EXPECT_EQ(ac.score.matched, a.score.matched);
}

// Ctrl-C once: no new tiles, the ones in flight finish, exit 3; twice: stop
// at once.  Either way -resume then finishes the job.
TEST_F(E2e, InterruptThenResume) {
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=300", ""));
  asd_test::set_local_aws_env(ep);
  std::vector<std::string> tiling = {"-tile-size", "512", "-overlap", "64", "-max-concurrent-jobs", "4"};
  for (int presses : {1, 2}) {
    std::string out = dir.path() + "/int" + std::to_string(presses) + ".gpkg";
    long long before = endpoint_stat(ep, "completed");
    AppProcess p(app_args(sample("scene_utm.tif"), out, tiling), dir.path());
    auto t0 = std::chrono::steady_clock::now();
    while (endpoint_stat(ep, "completed") < before + 6 &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int i = 0; i < presses; i++) {
      kill(p.pid(), SIGINT);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    RunResult r = p.wait(120);
    ASSERT_EQ(3, r.status) << r.err;
    auto st = tile_statuses(out);
    EXPECT_GT(st["succeeded"], 0);
    EXPECT_GT(st["failed"], 0) << "tiles not run are listed as such";
    RunResult again = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, vector_concat(tiling, {"-resume"})),
                                       dir.path());
    ASSERT_EQ(0, again.status) << again.err;
    Accuracy a = accuracy(out);
    EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
    EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  }
}

// ------------------------------------------------------------------ errors

class E2eErrors : public E2e {
 protected:
  void expect_one_line(const RunResult &r, int status, const std::string &needle) {
    EXPECT_EQ(status, r.status) << r.err;
    EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(needle)) << r.err;
  }
};

TEST_F(E2eErrors, UsageError) {
  TempDir dir;
  expect_one_line(asd_e2e::run_app({"-tile-size", "zero", "a.tif", "b.gpkg"}, dir.path()), 1, "-tile-size");
  expect_one_line(asd_e2e::run_app({"-bogus"}, dir.path()), 1, "unknown option '-bogus'");
  expect_one_line(asd_e2e::run_app({"-endpoint", "x"}, dir.path()), 1, "missing SRC_RASTER");
  RunResult help = asd_e2e::run_app({"--help"}, dir.path());
  EXPECT_EQ(0, help.status);
  EXPECT_NE(std::string::npos, help.out.find("-resume"));
}

TEST_F(E2eErrors, MissingInput) {
  TempDir dir;
  expect_one_line(asd_e2e::run_app(app_args(dir.path() + "/nope.tif", dir.path() + "/o.gpkg"), dir.path()), 1,
                  "nope.tif");
}

TEST_F(E2eErrors, CorruptRaster) {
  TempDir dir;
  std::string bad = dir.path() + "/bad.tif";
  {
    FILE *f = fopen(bad.c_str(), "wb");
    ASSERT_NE(nullptr, f);
    fputs("II*\0 this is not really a TIFF file at all", f);
    fclose(f);
  }
  expect_one_line(asd_e2e::run_app(app_args(bad, dir.path() + "/o.gpkg"), dir.path()), 1, "bad.tif");

  // A TIFF whose header is fine but whose pixels are cut off.
  std::string cut = dir.path() + "/cut.tif";
  std::string cmd = "gdal_translate -q -co TILED=YES " + sample("scene_utm.tif") + " " + cut;
  ASSERT_EQ(0, std::system(cmd.c_str()));
  ASSERT_EQ(0, truncate(cut.c_str(), 40000));
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(app_args(cut, dir.path() + "/o2.gpkg"), dir.path());
  expect_one_line(r, 1, "cut.tif");
}

TEST_F(E2eErrors, UnwritableOutput) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  expect_one_line(asd_e2e::run_app(app_args(sample("scene_utm.tif"), "/nonexistent-dir/x/out.gpkg"), dir.path()), 1,
                  "out.gpkg");
  // A metrics file that cannot be written, a directory named like a GeoPackage:
  // said before any work.
  expect_one_line(
      asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/m.gpkg", {"-metrics", "/nonexistent-dir/m.json"}),
                       dir.path()),
      1, "m.json");
  ASSERT_EQ(0, mkdir((dir.path() + "/d.gpkg").c_str(), 0755));
  expect_one_line(asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/d.gpkg"), dir.path()), 1,
                  "is a directory");
  EXPECT_EQ(0, endpoint_stat(ep, "accepted"));
  // An existing output is not replaced without -overwrite.
  std::string existing = dir.path() + "/exists.gpkg";
  FILE *f = fopen(existing.c_str(), "wb");
  fclose(f);
  expect_one_line(asd_e2e::run_app(app_args(sample("scene_utm.tif"), existing), dir.path()), 1, "-overwrite");
}

TEST_F(E2eErrors, UnknownEndpoint) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::vector<std::string> a = app_args(sample("scene_utm.tif"), dir.path() + "/o.gpkg");
  a[1] = "no-such-endpoint";
  expect_one_line(asd_e2e::run_app(a, dir.path()), 1, "no-such-endpoint");
  EXPECT_EQ(-1, access((dir.path() + "/o.gpkg").c_str(), F_OK)) << "no output is left behind";
}

TEST_F(E2eErrors, BadCredentials) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret", 1);
  TempDir dir;
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/o.gpkg"), dir.path());
  asd_test::set_local_aws_env(ep);
  expect_one_line(r, 1, "AWS credentials rejected (SignatureDoesNotMatch)");
  EXPECT_EQ(std::string::npos, r.err.find("not-the-right-secret"));
}

// No credentials anywhere in the chain: the line says so (instead of the
// access-denied answer a bucket check would get without them).
TEST_F(E2eErrors, NoCredentials) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  std::string home = getenv("HOME") ? getenv("HOME") : "";
  setenv("HOME", dir.path().c_str(), 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/o.gpkg"), dir.path());
  setenv("HOME", home.c_str(), 1);
  unsetenv("AWS_EC2_METADATA_DISABLED");
  asd_test::set_local_aws_env(ep);
  expect_one_line(r, 1, "no usable AWS credentials");
  EXPECT_EQ(0, endpoint_stat(ep, "accepted"));
}

TEST_F(E2e, DryRunInvokesNothing) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::vector<std::string> a = app_args(sample("scene_utm.tif"), dir.path() + "/o.gpkg", {"-dry-run"});
  a.erase(std::find(a.begin(), a.end(), "-q"));
  RunResult r = asd_e2e::run_app(a, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("Dry run")) << r.out;
  EXPECT_EQ(0, endpoint_stat(ep, "accepted"));
  EXPECT_EQ(-1, access((dir.path() + "/o.gpkg").c_str(), F_OK));
}

}  // namespace
