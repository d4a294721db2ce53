// End-to-end tests of the throughput options and figures of gdal_asyncdetect
// (issue 15 parts 0 and 3) against the real local endpoint:
//   - WEBP tiles with -tco creation options reach the model (the endpoint
//     decodes them) and give the same detections;
//   - the summary and the -metrics file report bytes sent per tile and in
//     total, polls per tile, the polling mode, and the bounding resource;
//   - polling is adaptive unless a polling flag is given (the flag wins), and
//     -adaptive-polling YES brings it back with the flags as its bound;
//   - bad -tco options stop the run before any upload, with one line.
#include <gtest/gtest.h>

#include <json-c/json.h>

#include <algorithm>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "e2e_helpers.h"

using asd_e2e::RunResult;
using asd_e2e::TempDir;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::sample;

namespace {

const std::vector<std::string> kTiling = {"-tile-size", "1024", "-overlap", "128"};

struct Metrics {
  json_object *root = nullptr;
  explicit Metrics(const std::string &path) { root = json_object_from_file(path.c_str()); }
  ~Metrics() { json_object_put(root); }
  json_object *get(const char *a, const char *b = nullptr) const {
    json_object *o = nullptr, *p = nullptr;
    if (!root || !json_object_object_get_ex(root, a, &o)) return nullptr;
    if (!b) return o;
    return json_object_object_get_ex(o, b, &p) ? p : nullptr;
  }
  std::string str(const char *a, const char *b) const {
    json_object *o = get(a, b);
    return o ? json_object_get_string(o) : "";
  }
  double num(const char *a, const char *b) const {
    json_object *o = get(a, b);
    return o ? json_object_get_double(o) : -1;
  }
};

// The app_args() of the other e2e tests without their polling flags.
std::vector<std::string> args_without_polling(const std::string &src, const std::string &dst,
                                              std::vector<std::string> extra) {
  std::vector<std::string> a = {"-endpoint", asd_e2e::kEndpoint, "-input-bucket", asd_e2e::kInputBucket,
                                "-max-wait-time", "120"};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back(src);
  a.push_back(dst);
  return a;
}

}  // namespace

TEST(E2eThroughput, WebpTilesWithCreationOptionsAndTheFiguresOfTheRun) {
  GDALAllRegister();  // this process reads the outputs
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  const std::string png_out = dir.path() + "/png.gpkg", webp_out = dir.path() + "/webp.gpkg";
  const std::string png_m = dir.path() + "/png.json", webp_m = dir.path() + "/webp.json";
  RunResult p = asd_e2e::run_app(app_args(sample("scene_utm.tif"), png_out,
                                          asd_e2e::vector_concat(kTiling, {"-metrics", png_m})),
                                 dir.path());
  ASSERT_EQ(0, p.status) << p.err;
  // Not quiet: the summary is printed.
  std::vector<std::string> a = app_args(sample("scene_utm.tif"), webp_out,
                                        asd_e2e::vector_concat(kTiling, {"-tile-format", "WEBP", "-tco",
                                                                         "LOSSLESS=YES", "-metrics", webp_m}));
  a.erase(std::find(a.begin(), a.end(), "-q"));
  RunResult w = asd_e2e::run_app(a, dir.path());
  ASSERT_EQ(0, w.status) << w.err;
  ASSERT_NE(std::string::npos, w.out.find("Tiles: 12 planned")) << w.out << w.err;
  asd_e2e::Accuracy acc = asd_e2e::accuracy(webp_out);
  ASSERT_TRUE(acc.error.empty()) << acc.error;
  EXPECT_GE(acc.score.recall(), 0.99) << acc.score.describe();
  EXPECT_GE(acc.score.precision(), 0.99) << acc.score.describe();
  EXPECT_NE(std::string::npos, w.out.find("Sent: ")) << w.out;
  EXPECT_NE(std::string::npos, w.out.find("kB per tile")) << w.out;
  EXPECT_NE(std::string::npos, w.out.find("Bound by: ")) << w.out;

  Metrics pm(png_m), wm(webp_m);
  ASSERT_NE(nullptr, pm.root);
  ASSERT_NE(nullptr, wm.root);
  const double png_tile = pm.num("upload", "bytes_per_tile"), webp_tile = wm.num("upload", "bytes_per_tile");
  EXPECT_GT(png_tile, 0);
  EXPECT_GT(webp_tile, 0);
  // Lossless WEBP is smaller than PNG for the same pixels.
  EXPECT_LT(webp_tile, png_tile);
  json_object *tiles = wm.get("tiles", "succeeded");
  ASSERT_NE(nullptr, tiles);
  EXPECT_NEAR(wm.num("upload", "bytes"), webp_tile * json_object_get_int(tiles), json_object_get_int(tiles));
  EXPECT_GT(wm.num("upload", "encode_cpu_ms_per_tile"), 0);
  // The time a tile was on the wire (the union of the upload spans) is a
  // share of the upload phase, and the bytes it carried give a rate.
  EXPECT_GT(wm.num("upload", "link_busy_fraction"), 0);
  EXPECT_LE(wm.num("upload", "link_busy_fraction"), 1);
  EXPECT_GT(wm.num("upload", "mb_per_s_while_sending"), 0);
  EXPECT_GE(wm.num("polling", "polls_per_job"), 1);
  // The e2e polling flags were given: the fixed schedule, as asked.
  EXPECT_EQ("fixed", wm.str("polling", "mode"));
  EXPECT_FALSE(wm.str("bound", "resource").empty());
  EXPECT_FALSE(wm.str("bound", "detail").empty());
  // The endpoint received WEBP bytes (content type of the tiles).
  EXPECT_EQ("image/webp", wm.str("config", "content_type"));
}

TEST(E2eThroughput, PollingIsAdaptiveUnlessAPollingFlagIsGiven) {
  asd_test::LocalEndpoint ep(endpoint_args(",latency_ms=100"));
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  struct Case {
    std::vector<std::string> flags;
    const char *mode;
  } cases[] = {
      {{}, "adaptive"},
      {{"-polling-interval", "0.05"}, "fixed"},
      {{"-backoff-multiplier", "2"}, "fixed"},
      {{"-polling-interval", "0.05", "-adaptive-polling", "YES"}, "adaptive"},
      {{"-adaptive-polling", "NO", "-polling-interval", "0.05"}, "fixed"},
  };
  int i = 0;
  for (const Case &c : cases) {
    const std::string out = dir.path() + "/o" + std::to_string(i) + ".gpkg";
    const std::string m = dir.path() + "/m" + std::to_string(i++) + ".json";
    RunResult r = asd_e2e::run_app(
        args_without_polling(sample("scene_utm.tif"), out,
                             asd_e2e::vector_concat(asd_e2e::vector_concat(kTiling, c.flags), {"-q", "-metrics", m})),
        dir.path());
    ASSERT_EQ(0, r.status) << r.err;
    Metrics mm(m);
    EXPECT_EQ(c.mode, mm.str("polling", "mode")) << c.flags.size();
    EXPECT_GE(mm.num("polling", "polls_per_job"), 1);
  }
}

TEST(E2eThroughput, BadCreationOptionsStopBeforeAnyUpload) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  RunResult r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), dir.path() + "/bad.gpkg", {"-tile-format", "PNG", "-tco", "ZLEVL=1"}),
      dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("ZLEVL")) << r.err;
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_EQ(0, asd_e2e::endpoint_stat(ep, "accepted"));
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/bad2.gpkg", {"-tco", "QUALITY"}),
                       dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("-tco wants NAME=VALUE")) << r.err;
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/bad3.gpkg", {"-tile-format", "WEBP", "-b", "1"}),
                       dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("WEBP")) << r.err;
}
