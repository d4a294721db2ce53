// End-to-end tests of runs beyond one image and one machine (issue 15 parts
// 1-2), against the real local endpoint on an ephemeral loopback port:
//   - shards: N = 1, 3 and 7 shards of the sample scene, run side by side on
//     one endpoint as a fleet would, then -merge-shards, give the same
//     detections as one run (same count, same geometries within 1e-9 deg),
//     recall and precision 1.0 against the ground truth, and no tile
//     invoked twice; a missing shard leaves its tiles "not run" (exit 2);
//     shards of different runs are refused with one line;
//   - many images in one run (SRC1 SRC2 ... DST and -input_file_list): one
//     output with source_image, a tile layer over every image, per-image
//     lines in the summary and the metrics, the same detections as one run
//     per image, and -resume across the set;
//   - a presigned /vsicurl/ source: its signature is written nowhere
//     (features, tile layer, journal, metrics, messages) (issue 13), and
//     its shards merge once the URL is given again (-merge-source, or the
//     list file), with one line saying so when it is not.
#include <gtest/gtest.h>

#include <json-c/json.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include "cpl_vsi.h"
#include "e2e_helpers.h"

using asd_e2e::AppProcess;
using asd_e2e::RunResult;
using asd_e2e::TempDir;

namespace {

using asd_e2e::Accuracy;
using asd_e2e::accuracy;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::endpoint_stat;
using asd_e2e::sample;
using asd_e2e::tile_statuses;

class Fleet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// One detection: class, source image and the vertices of its outline.
struct Det {
  std::string cls, source;
  std::vector<std::pair<double, double>> xy;
};

std::vector<Det> read_dets(const std::string &path, const std::string &layer = "detections") {
  std::vector<Det> out;
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) return out;
  OGRLayerH l = GDALDatasetGetLayerByName(ds, layer.c_str());
  if (!l) {
    GDALClose(ds);
    return out;
  }
  OGRFeatureDefnH d = OGR_L_GetLayerDefn(l);
  int ci = OGR_FD_GetFieldIndex(d, "class"), si = OGR_FD_GetFieldIndex(d, "source_image");
  OGRFeatureH f;
  while ((f = OGR_L_GetNextFeature(l)) != nullptr) {
    Det det;
    det.cls = OGR_F_GetFieldAsString(f, ci);
    det.source = si >= 0 ? OGR_F_GetFieldAsString(f, si) : "";
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (g && OGR_G_GetGeometryCount(g) > 0) g = OGR_G_GetGeometryRef(g, 0);
    for (int i = 0; g && i < OGR_G_GetPointCount(g); i++) det.xy.emplace_back(OGR_G_GetX(g, i), OGR_G_GetY(g, i));
    out.push_back(det);
    OGR_F_Destroy(f);
  }
  GDALClose(ds);
  return out;
}

double max_vertex_gap(const Det &a, const Det &b) {
  if (a.xy.size() != b.xy.size()) return 1e300;
  double m = 0;
  for (size_t i = 0; i < a.xy.size(); i++)
    m = std::max(m, std::max(std::fabs(a.xy[i].first - b.xy[i].first), std::fabs(a.xy[i].second - b.xy[i].second)));
  return m;
}

// Every detection of want has one of got (same class and source, every
// vertex within tol), one to one.  Returns "" or what differs.
std::string same_detections(const std::vector<Det> &want, const std::vector<Det> &got, double tol = 1e-9) {
  if (want.size() != got.size())
    return "count differs: " + std::to_string(want.size()) + " vs " + std::to_string(got.size());
  std::vector<bool> used(got.size());
  for (const Det &w : want) {
    bool found = false;
    for (size_t j = 0; j < got.size() && !found; j++) {
      if (used[j] || got[j].cls != w.cls || got[j].source != w.source) continue;
      if (max_vertex_gap(w, got[j]) <= tol) used[j] = found = true;
    }
    if (!found)
      return "no match for a " + w.cls + " of " + w.source + " at " + std::to_string(w.xy.empty() ? 0 : w.xy[0].first) +
             "," + std::to_string(w.xy.empty() ? 0 : w.xy[0].second);
  }
  return "";
}

const std::vector<std::string> kTiling = {"-tile-size", "512", "-overlap", "64"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ------------------------------------------------------------------ shards

// N shards side by side on one endpoint, then merged: the same detections
// as one run.
TEST_F(Fleet, ShardsMergedGiveTheSameDetectionsAsOneRun) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  const std::string one = dir.path() + "/one.gpkg";
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), one, kTiling), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  const long long invoked_once = endpoint_stat(ep, "accepted");
  const std::vector<Det> baseline = read_dets(one);
  ASSERT_GT(baseline.size(), 80u);
  auto all_tiles = tile_statuses(one);

  long long invoked_before = invoked_once;
  for (int n : {1, 3, 7}) {
    SCOPED_TRACE("N = " + std::to_string(n));
    std::vector<std::string> shards;
    std::vector<std::unique_ptr<AppProcess>> fleet;
    for (int k = 0; k < n; k++) {
      shards.push_back(dir.path() + "/s" + std::to_string(n) + "_" + std::to_string(k) + ".gpkg");
      fleet.emplace_back(new AppProcess(
          app_args(sample("scene_utm.tif"), shards.back(),
                   with(kTiling, {"-shard", std::to_string(k) + "/" + std::to_string(n)})),
          dir.path()));
    }
    int tiles_in_shards = 0;
    long long raw = 0;
    for (int k = 0; k < n; k++) {
      RunResult s = fleet[k]->wait();
      ASSERT_EQ(0, s.status) << "shard " << k << ": " << s.err;
      auto st = tile_statuses(shards[k]);
      EXPECT_EQ(0, st["failed"]);
      tiles_in_shards += st["succeeded"] + st["skipped"];
      raw += (long long)read_dets(shards[k]).size();
    }
    // Disjoint and complete: every tile once, none invoked twice.
    EXPECT_EQ(all_tiles["succeeded"] + all_tiles["skipped"], tiles_in_shards);
    EXPECT_EQ(invoked_once, endpoint_stat(ep, "accepted") - invoked_before);
    invoked_before = endpoint_stat(ep, "accepted");
    // A shard writes its detections unmerged: objects in overlaps twice.
    EXPECT_GT(raw, (long long)baseline.size());

    const std::string merged = dir.path() + "/merged" + std::to_string(n) + ".gpkg";
    std::vector<std::string> margs = {"-q", "-merge-shards"};
    margs.insert(margs.end(), shards.begin(), shards.end());
    margs.push_back(merged);
    RunResult m = asd_e2e::run_app(margs, dir.path());
    ASSERT_EQ(0, m.status) << m.err;
    EXPECT_EQ(invoked_before, endpoint_stat(ep, "accepted")) << "merging invokes nothing";
    EXPECT_EQ("", same_detections(baseline, read_dets(merged)));
    Accuracy a = accuracy(merged);
    ASSERT_TRUE(a.error.empty()) << a.error;
    EXPECT_EQ(1.0, a.score.recall()) << a.score.describe();
    EXPECT_EQ(1.0, a.score.precision()) << a.score.describe();
    EXPECT_EQ(tile_statuses(one), tile_statuses(merged));
  }
}

// A shard missing from the merge: its tiles are "not run" (exit 2), the
// rest is merged; shards of another tiling are refused with one line.
TEST_F(Fleet, MergeSaysWhatIsMissingAndRefusesForeignShards) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::vector<std::string> shards;
  for (int k = 0; k < 3; k++) {
    shards.push_back(dir.path() + "/s" + std::to_string(k) + ".gpkg");
    RunResult s = asd_e2e::run_app(
        app_args(sample("scene_utm.tif"), shards.back(), with(kTiling, {"-shard", std::to_string(k) + "/3"})),
        dir.path());
    ASSERT_EQ(0, s.status) << s.err;
  }
  const std::string partial = dir.path() + "/partial.gpkg";
  RunResult m = asd_e2e::run_app({"-q", "-merge-shards", shards[0], shards[2], partial}, dir.path());
  EXPECT_EQ(2, m.status) << m.err;
  EXPECT_NE(std::string::npos, m.err.find("not run")) << m.err;
  auto st = tile_statuses(partial);
  auto mid = tile_statuses(shards[1]);
  EXPECT_EQ(mid["succeeded"], st["failed"]);

  const std::string other = dir.path() + "/other.gpkg";
  RunResult o = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), other, {"-tile-size", "384", "-overlap", "96", "-shard", "1/3"}), dir.path());
  ASSERT_EQ(0, o.status) << o.err;
  RunResult bad = asd_e2e::run_app({"-q", "-merge-shards", shards[0], other, dir.path() + "/bad.gpkg"}, dir.path());
  EXPECT_EQ(1, bad.status);
  EXPECT_EQ(1, asd_e2e::count_lines(bad.err)) << bad.err;
  EXPECT_NE(std::string::npos, bad.err.find("tile_size")) << bad.err;
  // Usage errors, one line each.
  RunResult u = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/u.gpkg", {"-shard", "3/3"}),
                                 dir.path());
  EXPECT_EQ(1, u.status);
  EXPECT_EQ(1, asd_e2e::count_lines(u.err)) << u.err;
  u = asd_e2e::run_app({"-merge-shards", shards[0]}, dir.path());
  EXPECT_EQ(1, u.status);
  EXPECT_EQ(1, asd_e2e::count_lines(u.err)) << u.err;
}

// The merge reads each source's size and georeferencing again: a source
// that is no longer the raster the shards read (same name, other size) is
// refused with one line, not merged onto the wrong pixels.
TEST_F(Fleet, MergeRefusesASourceThatChanged) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  const std::string src = dir.path() + "/scene.tif";
  ASSERT_EQ(0, CPLCopyFile(src.c_str(), sample("scene_utm.tif").c_str()));
  std::vector<std::string> shards;
  for (int k = 0; k < 2; k++) {
    shards.push_back(dir.path() + "/s" + std::to_string(k) + ".gpkg");
    RunResult s = asd_e2e::run_app(
        app_args(src, shards.back(), {"-tile-size", "2048", "-overlap", "64", "-shard", std::to_string(k) + "/2"}),
        dir.path());
    ASSERT_EQ(0, s.status) << s.err;
  }
  GDALDatasetH in = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, in);
  ASSERT_EQ(0, VSIUnlink(src.c_str()));
  GDALDatasetH cut = GDALCreateCopy(GDALGetDriverByName("GTiff"), src.c_str(), in, FALSE, nullptr, nullptr, nullptr);
  GDALClose(in);
  ASSERT_NE(nullptr, cut);
  GDALClose(cut);
  // Same raster, same size: merges.  Then one of another size under that name.
  RunResult m = asd_e2e::run_app({"-q", "-merge-shards", shards[0], shards[1], dir.path() + "/m.gpkg"}, dir.path());
  ASSERT_EQ(0, m.status) << m.err;
  ASSERT_EQ(0, VSIUnlink(src.c_str()));
  in = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  GDALDatasetH small = GDALCreate(GDALGetDriverByName("GTiff"), src.c_str(), 1500, 1000, 3, GDT_Byte, nullptr);
  ASSERT_NE(nullptr, small);
  double gt[6];
  GDALGetGeoTransform(in, gt);
  GDALSetGeoTransform(small, gt);
  GDALSetProjection(small, GDALGetProjectionRef(in));
  GDALClose(small);
  GDALClose(in);
  m = asd_e2e::run_app({"-q", "-merge-shards", shards[0], shards[1], dir.path() + "/m2.gpkg"}, dir.path());
  EXPECT_EQ(1, m.status);
  EXPECT_EQ(1, asd_e2e::count_lines(m.err)) << m.err;
  EXPECT_NE(std::string::npos, m.err.find("is not the image the shards read")) << m.err;
}

// ------------------------------------------------------------- many images

// Copies of the scene under three names: each must find the ground truth.
std::vector<std::string> three_scenes(const std::string &dir) {
  std::vector<std::string> v;
  for (const char *n : {"a", "b", "c"}) {
    v.push_back(dir + "/scene_" + n + ".tif");
    EXPECT_EQ(0, CPLCopyFile(v.back().c_str(), sample("scene_utm.tif").c_str()));
  }
  return v;
}

std::vector<Det> of_source(const std::vector<Det> &all, const std::string &src) {
  std::vector<Det> out;
  for (const Det &d : all)
    if (d.source == src) out.push_back(d);
  return out;
}

TEST_F(Fleet, ManyImagesOneRun) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  auto scenes = three_scenes(dir.path());
  // The reference: one run of the first scene alone.
  const std::string single = dir.path() + "/single.gpkg";
  RunResult r = asd_e2e::run_app(app_args(scenes[0], single, kTiling), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  std::vector<Det> ref = read_dets(single);
  auto ref_tiles = tile_statuses(single);

  const std::string out = dir.path() + "/set.gpkg", metrics = dir.path() + "/m.json";
  std::vector<std::string> args = {"-endpoint", asd_e2e::kEndpoint, "-input-bucket", asd_e2e::kInputBucket,
                                   "-polling-interval", "0.05", "-max-polling-interval", "0.3",
                                   "-metrics", metrics};
  args = with(args, kTiling);
  args = with(args, scenes);
  args.push_back(out);
  r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  std::vector<Det> all = read_dets(out);
  EXPECT_EQ(3 * ref.size(), all.size());
  for (const auto &s : scenes) {
    SCOPED_TRACE(s);
    std::vector<Det> mine = of_source(all, s);
    for (Det &d : ref) d.source = s;
    EXPECT_EQ("", same_detections(ref, mine));
    // The summary has a line per image.
    EXPECT_NE(std::string::npos, r.out.find(s)) << r.out;
  }
  auto st = tile_statuses(out);
  EXPECT_EQ(3 * ref_tiles["succeeded"], st["succeeded"]);
  EXPECT_EQ(0, st["failed"]);
  json_object *m = json_object_from_file(metrics.c_str());
  ASSERT_NE(nullptr, m);
  json_object *images = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(m, "images", &images));
  ASSERT_EQ(3u, json_object_array_length(images));
  json_object *src = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(images, 1), "source", &src));
  EXPECT_EQ(scenes[1], json_object_get_string(src));
  json_object_put(m);

  // -input_file_list gives the same run.
  const std::string list = dir.path() + "/list.txt";
  FILE *f = fopen(list.c_str(), "w");
  ASSERT_NE(nullptr, f);
  for (const auto &s : scenes) fprintf(f, "%s\n", s.c_str());
  fclose(f);
  const std::string out2 = dir.path() + "/list.gpkg";
  std::vector<std::string> largs(args.begin(), args.end() - 4);  // without the scenes and DST
  largs = with(largs, {"-q", "-input_file_list", list, out2});
  r = asd_e2e::run_app(largs, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ("", same_detections(all, read_dets(out2)));
}

// Failed tiles across the set, then -resume: only they are invoked again,
// and the output is complete.
TEST_F(Fleet, ResumeAcrossTheSet) {
  TempDir dir;
  auto scenes = three_scenes(dir.path());
  const std::string out = dir.path() + "/set.gpkg";
  std::vector<std::string> extra = with(kTiling, {scenes[0], scenes[1]});
  int failed = 0;
  {
    asd_test::LocalEndpoint ep(endpoint_args("", "model_error=0.2,seed=5"));
    asd_test::set_local_aws_env(ep);
    RunResult r = asd_e2e::run_app(app_args(scenes[2], out, extra), dir.path());
    ASSERT_EQ(2, r.status) << r.err;
    failed = tile_statuses(out)["failed"];
    ASSERT_GT(failed, 0);
  }
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  RunResult r = asd_e2e::run_app(app_args(scenes[2], out, with(extra, {"-resume"})), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(failed, endpoint_stat(ep, "accepted"));
  for (const auto &s : scenes) {
    SCOPED_TRACE(s);
    std::vector<Det> mine = of_source(read_dets(out), s);
    EXPECT_EQ(91u, mine.size());
  }
  // Another list is another run, even the same images in another order
  // (same tile count): refused with one line.
  r = asd_e2e::run_app(app_args(scenes[2], out, with(kTiling, {scenes[1], scenes[0], "-resume"})), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
}

// A list shorter than the fleet (gaps item 2): split by tiles across the
// list, as one image is; a shard left without a tile says so, exits 0 and
// writes an empty shard; the merge gives what one run over the list gives.
// A shard's summary says its detections are unmerged (gaps item 3).
TEST_F(Fleet, ShortListSplitsByTilesAndIdleShardsMerge) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  auto scenes = three_scenes(dir.path());
  scenes.pop_back();
  // 2 tiles per image, 4 in all, for 5 shards: one of them has nothing.
  const std::vector<std::string> tiling = {"-tile-size", "2048", "-overlap", "64"};
  const std::string one = dir.path() + "/one.gpkg";
  RunResult r = asd_e2e::run_app(app_args(scenes[0], one, with(tiling, {scenes[1]})), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  const std::vector<Det> baseline = read_dets(one);
  ASSERT_GT(baseline.size(), 100u);
  const long long invoked_once = endpoint_stat(ep, "accepted");

  std::vector<std::string> shards;
  int idle = 0;
  for (int k = 0; k < 5; k++) {
    SCOPED_TRACE("shard " + std::to_string(k));
    shards.push_back(dir.path() + "/s" + std::to_string(k) + ".gpkg");
    const std::string metrics = shards.back() + ".json";
    std::vector<std::string> a = app_args(
        scenes[0], shards.back(), with(tiling, {"-shard", std::to_string(k) + "/5", "-metrics", metrics, scenes[1]}));
    a.erase(std::find(a.begin(), a.end(), "-q"));  // the summary is checked
    r = asd_e2e::run_app(a, dir.path());
    ASSERT_EQ(0, r.status) << r.err;
    // The metrics say "written unmerged" too, never "kept" (gaps, session 6).
    const long long written = (long long)read_dets(shards.back()).size();
    json_object *m = json_object_from_file(metrics.c_str()), *v = nullptr;
    ASSERT_NE(nullptr, m) << metrics;
    json_object *features = json_object_object_get(m, "features");
    EXPECT_FALSE(json_object_object_get_ex(features, "kept", &v)) << json_object_to_json_string(features);
    ASSERT_TRUE(json_object_object_get_ex(features, "written_unmerged", &v)) << json_object_to_json_string(features);
    EXPECT_EQ(written, json_object_get_int64(v));
    long long per_image = 0;
    json_object *images = json_object_object_get(m, "images");
    for (size_t i = 0; i < json_object_array_length(images); i++) {
      json_object *im = json_object_array_get_idx(images, i);
      EXPECT_FALSE(json_object_object_get_ex(im, "features_kept", &v));
      if (json_object_object_get_ex(im, "features_written_unmerged", &v)) per_image += json_object_get_int64(v);
    }
    if (images) {
      EXPECT_EQ(written, per_image);
    }
    json_object_put(m);
    if (r.err.find("nothing to do") != std::string::npos) {
      idle++;
      EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
      EXPECT_EQ(0u, read_dets(shards.back()).size());
    }
    EXPECT_NE(std::string::npos, r.out.find("written unmerged (shard " + std::to_string(k) + "/5")) << r.out;
    EXPECT_EQ(std::string::npos, r.out.find("after merging")) << r.out;
  }
  EXPECT_EQ(1, idle);
  EXPECT_EQ(2 * invoked_once, endpoint_stat(ep, "accepted")) << "every tile invoked once more, none twice";
  const std::string merged = dir.path() + "/merged.gpkg";
  std::vector<std::string> margs = with({"-merge-shards"}, shards);
  margs.push_back(merged);
  const std::string merged_metrics = dir.path() + "/merged.json";
  margs.insert(margs.begin(), {"-metrics", merged_metrics});
  r = asd_e2e::run_app(margs, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("kept after merging")) << r.out;
  json_object *mm = json_object_from_file(merged_metrics.c_str()), *kept = nullptr;
  ASSERT_NE(nullptr, mm);
  EXPECT_TRUE(json_object_object_get_ex(json_object_object_get(mm, "features"), "kept", &kept));
  EXPECT_EQ((long long)read_dets(merged).size(), json_object_get_int64(kept));
  json_object_put(mm);
  EXPECT_EQ("", same_detections(baseline, read_dets(merged)));
  EXPECT_EQ(tile_statuses(one), tile_statuses(merged));
}

// ---------------------------------------------------- presigned URL (13)

std::string read_all(const std::string &path) { return asd_e2e::read_file(path); }

TEST_F(Fleet, PresignedSourceSignatureIsWrittenNowhere) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  const std::string host = ep.url().substr(std::string("http://").size());
  const std::string key = std::string("/vsis3/") + asd_e2e::kInputBucket + "/inputs/scene_utm.tif";
  CPLSetConfigOption("AWS_S3_ENDPOINT", host.c_str());
  CPLSetConfigOption("AWS_HTTPS", "NO");
  CPLSetConfigOption("AWS_VIRTUAL_HOSTING", "FALSE");
  ASSERT_EQ(0, CPLCopyFile(key.c_str(), sample("scene_utm.tif").c_str()));
  char *signed_url = VSIGetSignedURL(key.c_str(), nullptr);
  CPLSetConfigOption("AWS_S3_ENDPOINT", nullptr);
  CPLSetConfigOption("AWS_HTTPS", nullptr);
  CPLSetConfigOption("AWS_VIRTUAL_HOSTING", nullptr);
  ASSERT_NE(nullptr, signed_url);
  const std::string url = signed_url;
  CPLFree(signed_url);
  const size_t q = url.find('?');
  ASSERT_NE(std::string::npos, q) << url;
  const size_t sig_at = url.find("X-Amz-Signature=");
  ASSERT_NE(std::string::npos, sig_at) << url;
  const std::string signature = url.substr(sig_at + 16, 64);
  const std::string label = "/vsicurl/" + url.substr(0, q);

  TempDir dir;
  const std::string out = dir.path() + "/out.gpkg", metrics = dir.path() + "/m.json";
  // Not quiet: the summary and the progress are checked too.
  std::vector<std::string> args = {"-endpoint", asd_e2e::kEndpoint, "-input-bucket", asd_e2e::kInputBucket,
                                   "-polling-interval", "0.05", "-max-polling-interval", "0.3",
                                   "-metrics", metrics, "-tile-size", "1024", "-overlap", "128",
                                   "/vsicurl/" + url, out};
  RunResult r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out);
  EXPECT_EQ(1.0, a.score.recall()) << a.score.describe();
  std::vector<Det> dets = read_dets(out);
  ASSERT_FALSE(dets.empty());
  for (const Det &d : dets) EXPECT_EQ(label, d.source);
  // Nowhere in the files the run wrote (the output GeoPackage holds the
  // features, the tile layer and the journal) nor in what it printed.
  for (const std::string &f : {out, metrics}) {
    std::string bytes = read_all(f);
    ASSERT_FALSE(bytes.empty()) << f;
    EXPECT_EQ(std::string::npos, bytes.find(signature)) << f;
    EXPECT_EQ(std::string::npos, bytes.find("X-Amz-Signature")) << f;
    EXPECT_EQ(std::string::npos, bytes.find("X-Amz-Credential")) << f;
  }
  EXPECT_NE(std::string::npos, read_all(out).find(label));
  EXPECT_EQ(std::string::npos, r.out.find(signature)) << r.out;
  EXPECT_EQ(std::string::npos, r.err.find(signature)) << r.err;

  // A fresh presigning of the same object resumes the same run.
  r = asd_e2e::run_app(with(std::vector<std::string>(args.begin(), args.end() - 2), {"-resume", args[args.size() - 2], out}),
                       dir.path());
  EXPECT_EQ(0, r.status) << r.err;

  // Shards of the presigned source, merged (gaps item 1): the shards record
  // the source without its query string, which cannot be read; the merge
  // says so in one line, and merges once the URL is given again.
  std::vector<std::string> shards;
  for (int k = 0; k < 2; k++) {
    shards.push_back(dir.path() + "/p" + std::to_string(k) + ".gpkg");
    std::vector<std::string> sargs(args.begin(), args.end() - 2);
    sargs = with(sargs, {"-q", "-shard", std::to_string(k) + "/2", args[args.size() - 2], shards.back()});
    RunResult s = asd_e2e::run_app(sargs, dir.path());
    ASSERT_EQ(0, s.status) << s.err;
  }
  const std::string merged = dir.path() + "/merged.gpkg";
  RunResult m = asd_e2e::run_app({"-q", "-merge-shards", shards[0], shards[1], merged}, dir.path());
  EXPECT_EQ(1, m.status);
  EXPECT_EQ(1, asd_e2e::count_lines(m.err)) << m.err;
  EXPECT_NE(std::string::npos, m.err.find("-merge-source")) << m.err;
  m = asd_e2e::run_app({"-q", "-merge-shards", "-merge-source", "/vsicurl/" + url, shards[0], shards[1], merged},
                       dir.path());
  ASSERT_EQ(0, m.status) << m.err;
  EXPECT_EQ("", same_detections(dets, read_dets(merged)));
  EXPECT_EQ(std::string::npos, read_all(merged).find(signature));
  EXPECT_EQ(std::string::npos, read_all(merged).find("X-Amz-Signature"));
  // The list file the shards were given does the same.
  const std::string list = dir.path() + "/list.txt", merged2 = dir.path() + "/merged2.gpkg";
  FILE *lf = fopen(list.c_str(), "w");
  ASSERT_NE(nullptr, lf);
  fprintf(lf, "/vsicurl/%s\n", url.c_str());
  fclose(lf);
  m = asd_e2e::run_app({"-q", "-merge-shards", "-input_file_list", list, shards[0], shards[1], merged2}, dir.path());
  ASSERT_EQ(0, m.status) << m.err;
  EXPECT_EQ("", same_detections(dets, read_dets(merged2)));
  // A source no shard has, or another raster under the same name: one line.
  m = asd_e2e::run_app({"-q", "-merge-shards", "-merge-source", sample("scene_utm.tif"), shards[0], shards[1],
                        dir.path() + "/m3.gpkg"},
                       dir.path());
  EXPECT_EQ(1, m.status);
  EXPECT_EQ(1, asd_e2e::count_lines(m.err)) << m.err;
  EXPECT_NE(std::string::npos, m.err.find("no shard given has this image")) << m.err;

  // An input that cannot be opened is named without its query string.
  r = asd_e2e::run_app(app_args("/vsicurl/http://" + host + "/nonexistent/x.tif?X-Amz-Signature=" + signature,
                                dir.path() + "/no.gpkg"),
                       dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(std::string::npos, r.err.find(signature)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("/nonexistent/x.tif")) << r.err;
}

}  // namespace
