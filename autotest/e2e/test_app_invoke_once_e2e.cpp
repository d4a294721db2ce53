// At most one inference per tile, and SageMaker's errors handled as AWS
// documents them, through the gdal_asyncdetect binary and the local
// endpoint:
//   - answers lost after SageMaker accepted the request (accept_then_5xx,
//     accept_then_drop at 20 % each): every tile succeeds and the endpoint
//     accepted exactly one invocation per tile planned (none ran twice);
//     every answer lost from the first one: found where the endpoint
//     configuration's OutputConfig says;
//   - refusals that say "try again" (ModelNotReadyException,
//     ThrottlingException) are retried and every tile succeeds;
//   - errors no retry fixes (ValidationError: an unknown or real-time
//     endpoint; InternalDependencyException) stop the run with one line.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include "e2e_helpers.h"

using asd_e2e::AppProcess;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::endpoint_stat;
using asd_e2e::RunResult;
using asd_e2e::sample;
using asd_e2e::TempDir;
using asd_e2e::tile_statuses;

namespace {

class E2eInvokeOnce : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

int total(std::map<std::string, int> st) {
  int n = 0;
  for (auto &kv : st) n += kv.second;
  return n;
}

TEST_F(E2eInvokeOnce, LostAnswersAreLookedForNotInvokedAgain) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  asd_test::LocalEndpoint ep(endpoint_args("", "accept_then_5xx=0.2,accept_then_drop=0.2,seed=5"));
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, {"-tile-size", "256", "-overlap", "32"}),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  int planned = total(st);
  ASSERT_GT(planned, 20);
  EXPECT_EQ(planned, st["succeeded"]);
  // One inference per tile: not one more, although about 40 % of the
  // answers were lost after the job was queued.
  EXPECT_EQ(planned, endpoint_stat(ep, "accepted"));
  EXPECT_EQ(planned, endpoint_stat(ep, "completed"));
  std::string stats = ep.stats_json();
  EXPECT_EQ(std::string::npos, stats.find("\"accept_then_5xx\":0")) << "no answer was lost: the test proves nothing";
  EXPECT_EQ(std::string::npos, stats.find("\"accept_then_drop\":0")) << "no connection was dropped";
}

// Killed in the middle (answers being lost meanwhile), then -resume: the
// tiles in flight at the kill, whose invocation the journal recorded before
// the call, are looked for, not invoked again.
// Every answer lost, from the very first invocation (gaps item 7): no
// answer ever shows where results go, so they are looked for where the
// endpoint configuration (DescribeEndpointConfig, read by the preflight)
// says, and the tile succeeds with one inference.
TEST_F(E2eInvokeOnce, FirstAnswerLostIsFoundFromTheEndpointConfig) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  asd_test::LocalEndpoint ep(endpoint_args("", "accept_then_drop=1,seed=3"));
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), out, {"-tile-size", "3000", "-overlap", "0", "-max-wait-time", "30"}),
      dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  EXPECT_EQ(1, total(st));
  EXPECT_EQ(1, st["succeeded"]);
  EXPECT_EQ(1, endpoint_stat(ep, "accepted"));
}

TEST_F(E2eInvokeOnce, Kill9ThenResumeStillRunsEachTileOnce) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=150", "accept_then_5xx=0.2,accept_then_drop=0.2,seed=8"));
  asd_test::set_local_aws_env(ep);
  std::vector<std::string> tiling = {"-tile-size", "256", "-overlap", "32", "-max-concurrent-jobs", "6"};
  AppProcess p(app_args(sample("scene_utm.tif"), out, tiling), dir.path());
  auto t0 = std::chrono::steady_clock::now();
  while (endpoint_stat(ep, "completed") < 20 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(p.pid(), SIGKILL);
  RunResult killed = p.wait(30);
  ASSERT_EQ(128 + SIGKILL, killed.status) << "the run ended before it could be killed: " << killed.err;
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, asd_e2e::vector_concat(tiling, {"-resume"})),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  EXPECT_EQ(total(st), st["succeeded"]);
  EXPECT_EQ(total(st), endpoint_stat(ep, "accepted"));
}

TEST_F(E2eInvokeOnce, RefusalsAreRetriedAndEveryTileSucceeds) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  asd_test::LocalEndpoint ep(endpoint_args("", "ModelNotReadyException=0.15,ThrottlingException=0.15,seed=9"));
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), out, {"-tile-size", "256", "-overlap", "32", "-max-retries", "8"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto st = tile_statuses(out);
  EXPECT_EQ(total(st), st["succeeded"]);
  EXPECT_EQ(total(st), endpoint_stat(ep, "accepted"));
  EXPECT_GT(endpoint_stat(ep, "rejected"), 0);
}

// A fatal error: exit status 1, and one line on stderr that names it.
void expect_one_line_stop(const std::vector<std::string> &ep_args, const std::string &needle) {
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  asd_test::LocalEndpoint ep(ep_args);
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, {"-tile-size", "256", "-overlap", "32"}),
                                 dir.path());
  EXPECT_NE(0, r.status);
  EXPECT_NE(std::string::npos, r.err.find(needle)) << r.err;
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_EQ(0, endpoint_stat(ep, "accepted"));
  // Stopped at once: a few tiles in flight asked, not every tile of the plan.
  EXPECT_LT(endpoint_stat(ep, "rejected"), 40);
}

TEST_F(E2eInvokeOnce, InternalDependencyExceptionStopsTheRun) {
  expect_one_line_stop(endpoint_args("", "InternalDependencyException=1"), "InternalDependencyException");
}

TEST_F(E2eInvokeOnce, RealTimeEndpointStopsTheRun) {
  // The preflight (DescribeEndpoint) sees it first and says so.
  expect_one_line_stop(endpoint_args(",async=no"), "not an asynchronous endpoint");
}

}  // namespace
