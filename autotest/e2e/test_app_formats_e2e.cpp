// End-to-end tests of gdal_asyncdetect's outputs beyond the GeoPackage, and
// of the output rules every format shares, against the real local endpoint:
//   - one-layer formats (GeoJSON, GeoJSONSeq, CSV, Shapefile, FlatGeobuf)
//     get their tile-status layer in a sibling file (out_tiles.EXT), and a
//     run killed with kill -9 is finished by -resume to the clean result;
//   - -overwrite replaces the output and its tile file (no doubled tiles),
//     -append adds a second image, and an -append run killed half way then
//     resumed keeps the first image's features and adds the second's once;
//   - a GeoPackage's other layers survive -overwrite (as with ogr2ogr);
//   - multi-layer formats that write layer after layer (KML, GML) work.
#include <gtest/gtest.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "e2e_helpers.h"

using asd_e2e::AppProcess;
using asd_e2e::RunResult;
using asd_e2e::TempDir;
using asd_e2e::accuracy;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::endpoint_stat;
using asd_e2e::sample;
using asd_e2e::tile_statuses;
using asd_e2e::vector_concat;

namespace {

// Twelve tiles over the 3000 x 2000 sample: short runs.
const std::vector<std::string> kTiling = {"-tile-size", "1024", "-overlap", "128", "-max-concurrent-jobs", "2"};
const int kTiles = 12;
const int kObjects = 91;

bool exists(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

int feature_count(const std::string &path) {
  return static_cast<int>(asd_e2e::read_boxes(path, "", "class").items.size());
}

// Starts the utility and sends it sig (twice for SIGINT: stop now) once
// the endpoint has completed `after` more invocations, i.e. in the middle of
// the run.
RunResult run_and_kill(asd_test::LocalEndpoint &ep, const std::vector<std::string> &args, const std::string &dir,
                       int after, int sig = SIGKILL) {
  long long before = endpoint_stat(ep, "completed");
  AppProcess p(args, dir);
  auto t0 = std::chrono::steady_clock::now();
  while (endpoint_stat(ep, "completed") < before + after &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(p.pid(), sig);
  if (sig == SIGINT) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kill(p.pid(), sig);
  }
  RunResult r = p.wait(60);
  // Let a request already on the wire settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return r;
}

struct Format {
  const char *ext;
  bool can_append;  // the GDAL driver opens such a file for update (all of these in GDAL 3.6)
};

class E2eOneLayer : public ::testing::TestWithParam<Format> {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// kill -9 in the middle, then -resume: every object once, and the tile
// statuses in out_tiles.EXT, all succeeded.
TEST_P(E2eOneLayer, TileStatusFileAndResumeAfterKill9) {
  const Format &f = GetParam();
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=300"));
  asd_test::set_local_aws_env(ep);
  std::string out = dir.path() + "/out." + f.ext;
  std::string tiles = dir.path() + "/out_tiles." + f.ext;
  std::string journal = out + ".asdjournal.gpkg";
  RunResult killed = run_and_kill(ep, app_args(sample("scene_utm.tif"), out, kTiling), dir.path(), 4);
  ASSERT_EQ(128 + SIGKILL, killed.status) << "the run ended before it could be killed: " << killed.err;
  ASSERT_TRUE(exists(journal)) << "the sidecar journal is written as the run goes";

  std::vector<std::string> a =
      app_args(sample("scene_utm.tif"), out, vector_concat(kTiling, {"-resume", "-metrics", dir.path() + "/m.json"}));
  a.erase(std::find(a.begin(), a.end(), "-q"));
  RunResult r = asd_e2e::run_app(a, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  // Nothing but the result: no warning per laundered Shapefile field, no
  // outline cut into invalid WKT.
  EXPECT_EQ(std::string::npos, r.err.find("laundered")) << r.err;
  EXPECT_EQ(std::string::npos, r.err.find("truncated")) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("Tile status: " + tiles)) << r.out;
  json_object *m = json_object_from_file((dir.path() + "/m.json").c_str());
  ASSERT_NE(nullptr, m) << "-metrics file";
  json_object *ts = nullptr;
  EXPECT_TRUE(json_object_object_get_ex(m, "tile_status", &ts));
  EXPECT_EQ(tiles, ts ? json_object_get_string(ts) : "");
  json_object_put(m);
  asd_e2e::Accuracy acc = accuracy(out, "");
  ASSERT_TRUE(acc.error.empty()) << acc.error;
  EXPECT_EQ(kObjects, acc.score.detections) << acc.score.describe();
  EXPECT_GE(acc.score.recall(), 0.99) << acc.score.describe();
  auto st = tile_statuses(tiles, "");
  EXPECT_EQ(kTiles, st["succeeded"]) << "tile statuses in " << tiles;
  EXPECT_EQ(0, st["failed"]);
  EXPECT_FALSE(exists(dir.path() + "/tiles." + f.ext)) << "no file named after the layer";
}

// -overwrite replaces the output and its tile file; -append adds a second
// image; an -append run stopped half way (Ctrl-C twice) and resumed keeps
// the first image and writes the second once.  (A kill -9 while appending
// can leave a text format such as GeoJSON unterminated: that is the
// driver's file, which no journal can repair; creating runs are safe, see
// above.)
TEST_P(E2eOneLayer, OverwriteAppendAndResumedAppend) {
  const Format &f = GetParam();
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=200"));
  asd_test::set_local_aws_env(ep);
  std::string out = dir.path() + "/out." + f.ext;
  std::string tiles = dir.path() + "/out_tiles." + f.ext;
  std::string utm = sample("scene_utm.tif"), rpc = sample("scene_rpc.ntf");

  ASSERT_EQ(0, asd_e2e::run_app(app_args(utm, out, kTiling), dir.path()).status);
  RunResult again = asd_e2e::run_app(app_args(utm, out, kTiling), dir.path());
  EXPECT_EQ(1, again.status);
  EXPECT_NE(std::string::npos, again.err.find("-overwrite")) << again.err;
  RunResult ow = asd_e2e::run_app(app_args(utm, out, vector_concat(kTiling, {"-overwrite"})), dir.path());
  ASSERT_EQ(0, ow.status) << ow.err;
  EXPECT_EQ(kObjects, feature_count(out));
  EXPECT_EQ(kTiles, tile_statuses(tiles, "")["succeeded"]) << "-overwrite replaces the tile file too";

  std::vector<std::string> append_args = app_args(rpc, out, vector_concat(kTiling, {"-append"}));
  if (!f.can_append) {
    RunResult ap = asd_e2e::run_app(append_args, dir.path());
    EXPECT_EQ(1, ap.status);
    EXPECT_EQ(1, asd_e2e::count_lines(ap.err)) << ap.err;
    EXPECT_EQ(kObjects, feature_count(out)) << "a refused -append leaves the output alone";
    return;
  }
  // Stopped half way through the appended image, then resumed.
  RunResult stopped = run_and_kill(ep, append_args, dir.path(), 4, SIGINT);
  ASSERT_EQ(3, stopped.status) << stopped.err;
  EXPECT_LT(feature_count(out), 2 * kObjects) << "stopped before the end";
  std::vector<std::string> resume_args = app_args(rpc, out, vector_concat(kTiling, {"-resume"}));
  RunResult r = asd_e2e::run_app(resume_args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(2 * kObjects, feature_count(out)) << "first image kept, second written once";
  auto st = tile_statuses(tiles, "");
  EXPECT_EQ(2 * kTiles, st["succeeded"]);
}

INSTANTIATE_TEST_SUITE_P(Formats, E2eOneLayer,
                         ::testing::Values(Format{"geojson", true}, Format{"geojsonl", true}, Format{"csv", true},
                                           Format{"shp", true}, Format{"fgb", true}),
                         [](const ::testing::TestParamInfo<Format> &i) { return std::string(i.param.ext); });

class E2eOutput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// -overwrite on a GeoPackage replaces the utility's two layers only.
TEST_F(E2eOutput, GpkgOverwriteKeepsTheOtherLayers) {
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  std::string out = dir.path() + "/project.gpkg";
  std::string cmd = "ogr2ogr -q -f GPKG -nln truth " + out + " " + sample("ground_truth.geojson");
  ASSERT_EQ(0, std::system(cmd.c_str()));
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, vector_concat(kTiling, {"-append"})),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, vector_concat(kTiling, {"-overwrite"})), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(kObjects, static_cast<int>(asd_e2e::read_boxes(out, "truth", "class").items.size()))
      << "the user's own layer survives -overwrite";
  EXPECT_EQ(kObjects, static_cast<int>(asd_e2e::read_boxes(out, "detections", "class").items.size()));
  EXPECT_EQ(kTiles, tile_statuses(out)["succeeded"]);
}

// -resume with options that give other tile numbers is refused before the
// output is touched (it used to be recreated first).
TEST_F(E2eOutput, ResumeOfAnotherRunLeavesTheOutputAlone) {
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  std::string out = dir.path() + "/out.geojson";
  ASSERT_EQ(0, asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, kTiling), dir.path()).status);
  RunResult r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), out, {"-tile-size", "512", "-overlap", "64", "-resume"}), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("belongs to another run")) << r.err;
  EXPECT_EQ(kObjects, feature_count(out));
  EXPECT_EQ(kTiles, tile_statuses(dir.path() + "/out_tiles.geojson", "")["succeeded"]);
}

// KML and GML write layer after layer: the tile layer comes after the
// detections instead of failing them.
TEST_F(E2eOutput, SequentialMultiLayerFormats) {
  TempDir dir;
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  for (const char *ext : {"kml", "gml"}) {
    std::string out = dir.path() + "/out." + ext;
    RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, kTiling), dir.path());
    ASSERT_EQ(0, r.status) << ext << ": " << r.err;
    EXPECT_EQ(kObjects, static_cast<int>(asd_e2e::read_boxes(out, "detections", "class").items.size())) << ext;
    EXPECT_EQ(kTiles, tile_statuses(out)["succeeded"]) << ext;
  }
}

}  // namespace
