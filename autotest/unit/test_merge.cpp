// Unit tests for tiler/merge.c: merging detections across tile overlaps.
//
// The ground-truth tests cut data/ground_truth.geojson into the tile grids
// the sample data was designed for, make each tile's "model output" from
// the objects it sees (cut at the tile edges by the parser, as a model
// would see them), stream the tiles through the merger in shuffled orders
// and require exactly one feature per object.  The random tests compare the
// streaming merger with a naive global implementation written here.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "asd_test_paths.h"
#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_merge.h"

namespace {

struct Obj {
  int id;
  std::string cls;
  double b[4];
  std::vector<std::pair<double, double>> ring;
};

std::vector<Obj> LoadGroundTruth() {
  std::vector<Obj> out;
  std::string path = std::string(ASD_DATA_DIR) + "/ground_truth.geojson";
  json_object *root = json_object_from_file(path.c_str());
  if (!root) return out;
  json_object *feats = json_object_object_get(root, "features");
  for (size_t i = 0; i < json_object_array_length(feats); i++) {
    json_object *p = json_object_object_get(json_object_array_get_idx(feats, i), "properties");
    Obj o;
    o.id = json_object_get_int(json_object_object_get(p, "id"));
    o.cls = json_object_get_string(json_object_object_get(p, "class"));
    json_object *bb = json_object_object_get(p, "pixel_bbox");
    for (int k = 0; k < 4; k++) o.b[k] = json_object_get_double(json_object_array_get_idx(bb, k));
    json_object *fp = json_object_array_get_idx(json_object_object_get(p, "pixel_footprint"), 0);
    for (size_t k = 0; k < json_object_array_length(fp); k++) {
      json_object *pt = json_object_array_get_idx(fp, k);
      o.ring.push_back({json_object_get_double(json_object_array_get_idx(pt, 0)),
                        json_object_get_double(json_object_array_get_idx(pt, 1))});
    }
    out.push_back(o);
  }
  json_object_put(root);
  return out;
}

// Tile origins as the plan lays them out: k * step, the last shifted back inside.
std::vector<int> Origins(int size, int tile, int overlap) {
  std::vector<int> v;
  if (size <= tile) return {0};
  for (int x = 0;; x += tile - overlap) {
    if (x + tile >= size) {
      v.push_back(size - tile);
      break;
    }
    v.push_back(x);
  }
  return v;
}

std::vector<asd_merge_tile> Grid(int W, int H, int tile, int overlap, std::vector<std::pair<int, int>> *rc = nullptr) {
  std::vector<asd_merge_tile> t;
  std::vector<int> xs = Origins(W, tile, overlap), ys = Origins(H, tile, overlap);
  int index = 0;
  for (size_t r = 0; r < ys.size(); r++)
    for (size_t c = 0; c < xs.size(); c++) {
      t.push_back({index++, (double)xs[c], (double)ys[r], (double)tile, (double)tile});
      if (rc) rc->push_back({(int)r, (int)c});
    }
  return t;
}

double Inter(const double a[4], double x0, double y0, double x1, double y1) {
  double w = std::min(a[2], x1) - std::max(a[0], x0), h = std::min(a[3], y1) - std::max(a[1], y0);
  return (w > 0 && h > 0) ? w * h : 0;
}

// Deterministic per (object, tile) score jitter, so that sometimes a cut piece leads.
double Jitter(int id, int tile) { return ((id * 7919 + tile * 104729) % 1000) / 1000.0 * 0.08; }

enum class Views { All, WholeOnly };

// The model output of one tile as JSON text in tile pixels (unclipped: the parser clips).
std::string TileOutput(const std::vector<Obj> &objs, const asd_merge_tile &t, Views views, bool legacy) {
  std::string s = "{\"type\":\"FeatureCollection\",\"features\":[";
  bool first = true;
  char buf[256];
  for (const Obj &o : objs) {
    double vis = Inter(o.b, t.x, t.y, t.x + t.w, t.y + t.h);
    double full = (o.b[2] - o.b[0]) * (o.b[3] - o.b[1]);
    if (vis <= 0) continue;
    if (views == Views::WholeOnly && vis < full) continue;
    double score = 0.5 + 0.4 * vis / full + Jitter(o.id, t.index);
    if (!first) s += ",";
    first = false;
    std::string ring = "[";
    for (size_t k = 0; k < o.ring.size(); k++) {
      std::snprintf(buf, sizeof(buf), "%s[%.4f,%.4f]", k ? "," : "", o.ring[k].first - t.x, o.ring[k].second - t.y);
      ring += buf;
    }
    ring += "]";
    std::snprintf(buf, sizeof(buf), "[%g,%g,%g,%g]", o.b[0] - t.x, o.b[1] - t.y, o.b[2] - t.x, o.b[3] - t.y);
    if (legacy) {
      s += "{\"type\":\"Feature\",\"geometry\":null,\"properties\":{\"bounds_imcoords\":" + std::string(buf) +
           ",\"geom_imcoords\":" + ring + ",\"feature_types\":{\"" + o.cls + "\":" + std::to_string(score) +
           "},\"detection_score\":" + std::to_string(score) + "}}";
    } else {
      s += "{\"type\":\"Feature\",\"geometry\":null,\"properties\":{\"imageBBox\":" + std::string(buf) +
           ",\"imageGeometry\":{\"type\":\"Polygon\",\"coordinates\":[" + ring + "]},\"featureClasses\":[{\"iri\":\"" +
           o.cls + "\",\"score\":" + std::to_string(score) + "}],\"modelMetadata\":{\"modelName\":\"truth\"}}}";
    }
  }
  return s + "]}";
}

// Parses each tile's output and streams the tiles through a merger in the given order.
struct StreamResult {
  std::vector<asd_detection> dets;  // owned copies
  asd_merge_stats stats;
  size_t popped_before_finish = 0;
  ~StreamResult() {
    for (auto &d : dets) asd_detection_clear(&d);
  }
};

void Stream(const asd_merge_options &opt, const std::vector<asd_merge_tile> &tiles,
            const std::vector<asd_detections *> &per_tile, const std::vector<size_t> &order, StreamResult &res) {
  char err[256] = "";
  asd_merger *m = asd_merger_new(&opt, tiles.data(), tiles.size(), err, sizeof(err));
  ASSERT_NE(nullptr, m) << err;
  asd_detections out;
  asd_detections_init(&out);
  for (size_t k : order) {
    asd_detections copy;
    asd_detections_init(&copy);
    for (size_t i = 0; i < per_tile[k]->count; i++) {
      asd_detection d;
      ASSERT_EQ(0, asd_detection_copy(&d, &per_tile[k]->items[i]));
      ASSERT_EQ(0, asd_detections_push(&copy, &d));
    }
    ASSERT_EQ(0, asd_merger_add_tile(m, tiles[k].index, &copy, err, sizeof(err))) << err;
    EXPECT_EQ(0u, copy.count);
    asd_detections_free(&copy);
    ASSERT_NE((size_t)-1, asd_merger_pop(m, &out));
  }
  res.popped_before_finish = out.count;
  asd_merger_finish(m);
  asd_merger_pop(m, &out);
  asd_merger_get_stats(m, &res.stats);
  asd_merger_free(m);
  for (size_t i = 0; i < out.count; i++) {
    res.dets.push_back(out.items[i]);
    std::memset(&out.items[i], 0, sizeof(asd_detection));
  }
  out.count = 0;
  asd_detections_free(&out);
}

using Key = std::tuple<double, double, double, double, std::string, double, int>;
std::vector<Key> Keys(const std::vector<asd_detection> &v) {
  std::vector<Key> k;
  for (const auto &d : v) k.emplace_back(d.minx, d.miny, d.maxx, d.maxy, d.class_iri ? d.class_iri : "", d.score, d.merged_count);
  std::sort(k.begin(), k.end());
  return k;
}

struct Scene {
  std::vector<asd_merge_tile> tiles;
  std::vector<asd_detections> store;
  std::vector<asd_detections *> per_tile;
  size_t total = 0;
  ~Scene() {
    for (auto &d : store) asd_detections_free(&d);
  }
};

void BuildTruthScene(Scene &sc, const std::vector<Obj> &objs, int tile, int overlap, Views views, bool legacy = false) {
  std::vector<std::pair<int, int>> rc;
  sc.tiles = Grid(3000, 2000, tile, overlap, &rc);
  sc.store.resize(sc.tiles.size());
  for (size_t i = 0; i < sc.tiles.size(); i++) {
    asd_detections_init(&sc.store[i]);
    std::string text = TileOutput(objs, sc.tiles[i], views, legacy);
    asd_tile_ref ref = {sc.tiles[i].index, rc[i].first, rc[i].second, sc.tiles[i].x, sc.tiles[i].y,
                        sc.tiles[i].w, sc.tiles[i].h, "inf"};
    asd_parse_report rep;
    ASSERT_EQ(ASD_PARSE_OK, asd_features_parse(text.data(), text.size(), &ref, nullptr, &sc.store[i], &rep)) << rep.message;
    ASSERT_EQ(0u, rep.rejected) << rep.message;
    sc.total += sc.store[i].count;
  }
  for (auto &d : sc.store) sc.per_tile.push_back(&d);
}

std::vector<size_t> Shuffled(size_t n, unsigned seed) {
  std::vector<size_t> o(n);
  for (size_t i = 0; i < n; i++) o[i] = i;
  if (seed) std::shuffle(o.begin(), o.end(), std::mt19937(seed));
  return o;
}

// Each object must come out exactly once, with its full box and class.
void ExpectOnePerObject(const std::vector<asd_detection> &dets, const std::vector<Obj> &objs,
                        const std::vector<int> &expected_ids, const std::string &what) {
  std::map<int, int> hits;
  for (const auto &d : dets) {
    int match = -1;
    for (const Obj &o : objs)
      if (d.minx == o.b[0] && d.miny == o.b[1] && d.maxx == o.b[2] && d.maxy == o.b[3]) match = o.id;
    EXPECT_NE(-1, match) << what << ": output box " << d.minx << "," << d.miny << "," << d.maxx << ","
                         << d.maxy << " is not an object's full box";
    if (match < 0) continue;
    hits[match]++;
    EXPECT_EQ(objs[match - 1].cls, d.class_iri) << what << " object " << match;
  }
  for (int id : expected_ids) EXPECT_EQ(1, hits[id]) << what << ": object " << id;
  EXPECT_EQ(expected_ids.size(), dets.size()) << what;
}

}  // namespace

// NMM (the mode that claims cut boxes): pieces cut at seams and whole
// duplicates in overlaps come out as one feature per object, the full box,
// on every grid the data was designed for and in any completion order.
TEST(Merge, NmmGroundTruthOneFeaturePerObjectOnEveryGrid) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size()) << "data/ground_truth.geojson missing or changed";
  std::vector<int> all;
  for (const Obj &o : objs) all.push_back(o.id);
  const int grids[][2] = {{512, 64}, {1024, 128}, {512, 128}, {1024, 64}};
  for (auto g : grids) {
    for (bool legacy : {false, true}) {
      Scene sc;
      BuildTruthScene(sc, objs, g[0], g[1], Views::All, legacy);
      ASSERT_GT(sc.total, objs.size());  // duplicates and pieces exist
      asd_merge_options opt;
      asd_merge_options_init(&opt);
      ASSERT_EQ(ASD_MERGE_NMM, opt.mode);
      std::vector<Key> first;
      for (unsigned seed : {0u, 1u, 2u, 3u}) {
        StreamResult r;
        Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), seed), r);
        std::string what = "grid " + std::to_string(g[0]) + "/" + std::to_string(g[1]) + (legacy ? " legacy" : "") +
                           " order " + std::to_string(seed);
        ExpectOnePerObject(r.dets, objs, all, what);
        EXPECT_EQ(sc.total, r.stats.added);
        EXPECT_EQ(sc.total - objs.size(), r.stats.merged) << what;
        EXPECT_EQ(0u, r.stats.pending);
        size_t counted = 0;
        for (const auto &d : r.dets) counted += d.merged_count;
        EXPECT_EQ(sc.total, counted);
        if (seed == 0) {
          first = Keys(r.dets);
        } else {
          EXPECT_EQ(first, Keys(r.dets)) << what;  // order-independent
        }
      }
      opt.nmm_transitive = 1;
      StreamResult t;
      Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 9), t);
      ExpectOnePerObject(t.dets, objs, all, "transitive");
    }
  }
}

// The merged outline of an object wider than the overlap is the union of its pieces.
TEST(Merge, NmmUnitesOutlinesOfPieces) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size());
  Scene sc;
  BuildTruthScene(sc, objs, 512, 64, Views::All);
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  StreamResult r;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 5), r);
  // Object 2: rectangle 405..555 x 670..730 across the 448..512 overlap, cut in both tiles.
  bool found = false;
  for (const auto &d : r.dets) {
    if (d.minx != 405 || d.miny != 670) continue;
    found = true;
    EXPECT_EQ(2, d.merged_count);
    ASSERT_EQ(ASD_GEOM_POLYGON, d.kind);
    double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
    for (size_t i = 0; i < d.ring_len; i++) {
      x0 = std::min(x0, d.ring[i].x); x1 = std::max(x1, d.ring[i].x);
      y0 = std::min(y0, d.ring[i].y); y1 = std::max(y1, d.ring[i].y);
    }
    EXPECT_DOUBLE_EQ(405, x0);
    EXPECT_DOUBLE_EQ(555, x1);
    EXPECT_DOUBLE_EQ(670, y0);
    EXPECT_DOUBLE_EQ(730, y1);
  }
  EXPECT_TRUE(found);
}

// Two pieces of an object wider than the overlap share only the overlap
// strip: plain IoS falls with the object's width, seam-aware IoS does not.
TEST(Merge, SeamAwareIosMatchesWidePiecesPlainIosDoesNot) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size());
  std::vector<int> all;
  for (const Obj &o : objs) all.push_back(o.id);
  Scene sc;
  BuildTruthScene(sc, objs, 512, 64, Views::All);
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.ios_threshold = 0.8;
  StreamResult aware;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 0), aware);
  ExpectOnePerObject(aware.dets, objs, all, "seam-aware, IoS > 0.8");
  opt.seam_aware = 0;
  StreamResult plain;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 0), plain);
  EXPECT_GT(plain.dets.size(), objs.size());
}

// NMS and soft-NMS claim exact duplicates: tiles that see objects whole
// report them twice or four times in the overlaps; one must remain.
TEST(Merge, NmsAndSoftNmsRemoveExactDuplicates) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size());
  Scene sc;
  BuildTruthScene(sc, objs, 512, 64, Views::WholeOnly);
  // Objects seen whole by at least one tile (not the ones wider than the overlap across a seam).
  std::vector<int> expected;
  for (const Obj &o : objs)
    for (const auto &t : sc.tiles)
      if (o.b[0] >= t.x && o.b[1] >= t.y && o.b[2] <= t.x + t.w && o.b[3] <= t.y + t.h) {
        expected.push_back(o.id);
        break;
      }
  ASSERT_GT(expected.size(), 80u);  // wide objects across seams (2, 4, 9, ...) are cut in every tile
  ASSERT_GT(sc.total, expected.size() + 10);
  for (asd_merge_mode mode : {ASD_MERGE_NMS, ASD_MERGE_SOFT_NMS, ASD_MERGE_NMM}) {
    asd_merge_options opt;
    asd_merge_options_init(&opt);
    opt.mode = mode;
    std::vector<Key> first;
    for (unsigned seed : {0u, 11u, 12u}) {
      StreamResult r;
      Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), seed), r);
      ExpectOnePerObject(r.dets, objs, expected, std::string(asd_merge_mode_name(mode)));
      for (const auto &d : r.dets) EXPECT_DOUBLE_EQ(d.raw_score, d.score);  // the survivor keeps its score
      if (seed == 0) {
        first = Keys(r.dets);
      } else {
        EXPECT_EQ(first, Keys(r.dets));
      }
    }
  }
}

// NMS does not claim cut boxes: it keeps pieces whose IoU with the full box is small.
TEST(Merge, NmsKeepsCutPiecesAndNoneKeepsEverything) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size());
  Scene sc;
  BuildTruthScene(sc, objs, 512, 64, Views::All);
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.mode = ASD_MERGE_NONE;
  StreamResult none;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 0), none);
  EXPECT_EQ(sc.total, none.dets.size());
  EXPECT_EQ(sc.total, none.popped_before_finish);  // nothing to wait for
  opt.mode = ASD_MERGE_NMS;
  StreamResult nms;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 0), nms);
  EXPECT_GT(nms.dets.size(), objs.size());
  EXPECT_LT(nms.dets.size(), sc.total);
}

namespace {
asd_detection Box(double x0, double y0, double x1, double y1, const char *cls, double score, size_t seq = 0) {
  asd_detection d;
  std::memset(&d, 0, sizeof(d));
  d.minx = x0; d.miny = y0; d.maxx = x1; d.maxy = y1;
  d.kind = ASD_GEOM_BOX;
  d.class_iri = strdup(cls);
  d.classes_json = strdup("[]");
  d.score = d.raw_score = score;
  d.merged_count = 1;
  d.seq = seq;
  return d;
}
void Push(asd_detections &v, asd_detection d) { asd_detections_push(&v, &d); }
}  // namespace

TEST(Merge, ClassAwareByDefaultAgnosticOnRequest) {
  std::vector<asd_merge_tile> tiles = {{0, 0, 0, 100, 100}, {1, 60, 0, 100, 100}};
  for (asd_merge_mode mode : {ASD_MERGE_NMS, ASD_MERGE_SOFT_NMS, ASD_MERGE_NMM}) {
    for (int agnostic : {0, 1}) {
      asd_detections v;
      asd_detections_init(&v);
      Push(v, Box(70, 10, 90, 30, "vehicle", 0.9));
      Push(v, Box(70, 10, 90, 30, "building", 0.8));
      v.items[1].tile_index = 1;
      asd_merge_options opt;
      asd_merge_options_init(&opt);
      opt.mode = mode;
      opt.class_agnostic = agnostic;
      char err[200];
      ASSERT_EQ(0, asd_merge_batch(&opt, tiles.data(), tiles.size(), &v, err, sizeof(err))) << err;
      EXPECT_EQ(agnostic ? 1u : 2u, v.count) << asd_merge_mode_name(mode);
      if (agnostic) {
        EXPECT_STREQ("vehicle", v.items[0].class_iri);
      }
      asd_detections_free(&v);
    }
  }
}

TEST(Merge, MinScoreDropsOnArrival) {
  std::vector<asd_merge_tile> tiles = {{0, 0, 0, 100, 100}};
  asd_merger *m;
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.min_score = 0.5;
  char err[200];
  m = asd_merger_new(&opt, tiles.data(), 1, err, sizeof(err));
  ASSERT_NE(nullptr, m);
  asd_detections v;
  asd_detections_init(&v);
  Push(v, Box(10, 10, 20, 20, "a", 0.49));
  Push(v, Box(30, 30, 40, 40, "a", 0.5));
  Push(v, Box(50, 50, 60, 60, "a", NAN));
  ASSERT_EQ(0, asd_merger_add_tile(m, 0, &v, err, sizeof(err)));
  asd_detections out;
  asd_detections_init(&out);
  EXPECT_EQ(1u, asd_merger_pop(m, &out));
  EXPECT_DOUBLE_EQ(0.5, out.items[0].score);
  asd_merge_stats st;
  asd_merger_get_stats(m, &st);
  EXPECT_EQ(2u, st.below_min);
  EXPECT_EQ(3u, st.added);
  asd_detections_free(&out);
  asd_detections_free(&v);
  asd_merger_free(m);
}

TEST(Merge, SoftNmsDecaysOverlapsAndKeepsRawScore) {
  std::vector<asd_merge_tile> tiles = {{0, 0, 0, 200, 200}};
  asd_detections v;
  asd_detections_init(&v);
  Push(v, Box(0, 0, 100, 100, "a", 0.9, 0));
  Push(v, Box(0, 0, 100, 50, "a", 0.8, 1));  // IoU 0.5 with the first
  Push(v, Box(150, 150, 160, 160, "a", 0.1, 2));  // alone: untouched although below the threshold
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.mode = ASD_MERGE_SOFT_NMS;
  char err[200];
  ASSERT_EQ(0, asd_merge_batch(&opt, tiles.data(), 1, &v, err, sizeof(err)));
  ASSERT_EQ(3u, v.count);
  std::sort(v.items, v.items + v.count, [](const asd_detection &a, const asd_detection &b) { return a.seq < b.seq; });
  EXPECT_DOUBLE_EQ(0.9, v.items[0].score);
  EXPECT_NEAR(0.8 * std::exp(-0.25 / 0.5), v.items[1].score, 1e-12);
  EXPECT_DOUBLE_EQ(0.8, v.items[1].raw_score);
  EXPECT_DOUBLE_EQ(0.1, v.items[2].score);
  asd_detections_free(&v);
}

TEST(Merge, PointsMergeWithinTheirRadius) {
  std::vector<asd_merge_tile> tiles = {{0, 0, 0, 100, 100}, {1, 80, 0, 100, 100}};
  asd_detections v;
  asd_detections_init(&v);
  asd_detection a = Box(90, 50, 90, 50, "p", 0.9), b = Box(90, 50, 90, 50, "p", 0.8);
  a.kind = b.kind = ASD_GEOM_POINT;
  b.tile_index = 1;
  Push(v, a);
  Push(v, b);
  Push(v, Box(10, 10, 10, 10, "p", 0.7));
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.mode = ASD_MERGE_NMS;
  char err[200];
  ASSERT_EQ(0, asd_merge_batch(&opt, tiles.data(), tiles.size(), &v, err, sizeof(err)));
  EXPECT_EQ(2u, v.count);
  asd_detections_free(&v);
}

TEST(Merge, ErrorsAreReported) {
  char err[200] = "";
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.iou_threshold = 1.5;
  std::vector<asd_merge_tile> tiles = {{3, 0, 0, 100, 100}, {5, 50, 0, 100, 100}};
  EXPECT_EQ(nullptr, asd_merger_new(&opt, tiles.data(), tiles.size(), err, sizeof(err)));
  EXPECT_NE(nullptr, std::strstr(err, "iou_threshold"));
  asd_merge_options_init(&opt);
  std::vector<asd_merge_tile> dup = {{3, 0, 0, 100, 100}, {3, 50, 0, 100, 100}};
  EXPECT_EQ(nullptr, asd_merger_new(&opt, dup.data(), dup.size(), err, sizeof(err)));
  EXPECT_NE(nullptr, std::strstr(err, "listed twice"));
  std::vector<asd_merge_tile> bad = {{3, 0, 0, 0, 100}};
  EXPECT_EQ(nullptr, asd_merger_new(&opt, bad.data(), bad.size(), err, sizeof(err)));
  EXPECT_NE(nullptr, std::strstr(err, "invalid window"));

  asd_merger *m = asd_merger_new(&opt, tiles.data(), tiles.size(), err, sizeof(err));
  ASSERT_NE(nullptr, m);
  asd_detections v;
  asd_detections_init(&v);
  Push(v, Box(1, 1, 2, 2, "a", 0.9));
  EXPECT_EQ(-1, asd_merger_add_tile(m, 4, &v, err, sizeof(err)));
  EXPECT_NE(nullptr, std::strstr(err, "not in the plan"));
  EXPECT_EQ(0u, v.count);  // handed over even on error: nothing leaks
  EXPECT_EQ(0, asd_merger_add_tile(m, 3, nullptr, err, sizeof(err)));
  EXPECT_EQ(-1, asd_merger_add_tile(m, 3, nullptr, err, sizeof(err)));
  EXPECT_NE(nullptr, std::strstr(err, "already done"));
  asd_merger_free(m);  // with nothing pending or something pending, no leak
  asd_detections_free(&v);

  asd_merge_mode mode;
  EXPECT_EQ(0, asd_merge_mode_parse("Soft-NMS", &mode));
  EXPECT_EQ(ASD_MERGE_SOFT_NMS, mode);
  EXPECT_EQ(-1, asd_merge_mode_parse("wbf", &mode));
}

// ---------------------------------------------------------------------------
// Random dense scenes against a naive global implementation.
// ---------------------------------------------------------------------------
namespace {

struct Ref {
  double b[4];
  std::string cls;
  double score, raw;
  int tile;  // position in tiles
  size_t seq;
  int count = 1;
};

bool RankLess(const Ref &a, const Ref &b, const std::vector<asd_merge_tile> &tiles) {
  if (a.score != b.score) return a.score > b.score;
  for (int k = 0; k < 4; k++)
    if (a.b[k] != b.b[k]) return a.b[k] < b.b[k];
  if (a.cls != b.cls) return a.cls < b.cls;
  if (tiles[a.tile].index != tiles[b.tile].index) return tiles[a.tile].index < tiles[b.tile].index;
  return a.seq < b.seq;
}

double Area(double x0, double y0, double x1, double y1) { return (x1 > x0 && y1 > y0) ? (x1 - x0) * (y1 - y0) : 0; }

double RefIou(const Ref &a, const Ref &b) {
  double i = Area(std::max(a.b[0], b.b[0]), std::max(a.b[1], b.b[1]), std::min(a.b[2], b.b[2]), std::min(a.b[3], b.b[3]));
  if (i <= 0) return 0;
  return i / (Area(a.b[0], a.b[1], a.b[2], a.b[3]) + Area(b.b[0], b.b[1], b.b[2], b.b[3]) - i);
}

double RefIos(const Ref &a, const Ref &b, const std::vector<asd_merge_tile> &tiles) {
  double A[4] = {a.b[0], a.b[1], a.b[2], a.b[3]}, B[4] = {b.b[0], b.b[1], b.b[2], b.b[3]};
  if (a.tile != b.tile) {
    const asd_merge_tile &ta = tiles[a.tile], &tb = tiles[b.tile];
    double w[4] = {std::max(ta.x, tb.x), std::max(ta.y, tb.y), std::min(ta.x + ta.w, tb.x + tb.w), std::min(ta.y + ta.h, tb.y + tb.h)};
    for (double *X : {A, B}) {
      X[0] = std::max(X[0], w[0]); X[1] = std::max(X[1], w[1]);
      X[2] = std::min(X[2], w[2]); X[3] = std::min(X[3], w[3]);
    }
  }
  double aa = Area(A[0], A[1], A[2], A[3]), ab = Area(B[0], B[1], B[2], B[3]);
  if (aa <= 0 || ab <= 0) return 0;
  return Area(std::max(A[0], B[0]), std::max(A[1], B[1]), std::min(A[2], B[2]), std::min(A[3], B[3])) / std::min(aa, ab);
}

std::vector<Key> Naive(std::vector<Ref> v, const asd_merge_options &o, const std::vector<asd_merge_tile> &tiles) {
  std::sort(v.begin(), v.end(), [&](const Ref &a, const Ref &b) { return RankLess(a, b, tiles); });
  size_t n = v.size();
  std::vector<int> st(n, 0);
  auto same = [&](size_t i, size_t j) { return o.class_agnostic || v[i].cls == v[j].cls; };
  if (o.mode == ASD_MERGE_NMS) {
    for (size_t i = 0; i < n; i++) {
      if (st[i]) continue;
      st[i] = 1;
      for (size_t j = i + 1; j < n; j++)
        if (!st[j] && same(i, j) && RefIou(v[i], v[j]) > o.iou_threshold) st[j] = 2;
    }
  } else if (o.mode == ASD_MERGE_SOFT_NMS) {
    std::vector<double> s(n);
    for (size_t i = 0; i < n; i++) s[i] = v[i].score;
    for (;;) {
      size_t best = n;
      for (size_t i = 0; i < n; i++)
        if (!st[i] && (best == n || s[i] > s[best])) best = i;
      if (best == n) break;
      st[best] = 1;
      v[best].score = s[best];
      for (size_t j = 0; j < n; j++) {
        if (st[j] || !same(best, j)) continue;
        double u = RefIou(v[best], v[j]);
        if (u <= 0 || u <= o.soft_min_iou) continue;
        s[j] *= std::exp(-(u * u) / o.sigma);
        if (s[j] < o.score_threshold) st[j] = 2;
      }
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      if (st[i]) continue;
      st[i] = 1;
      double u[4] = {v[i].b[0], v[i].b[1], v[i].b[2], v[i].b[3]};
      for (size_t j = i + 1; j < n; j++)
        if (!st[j] && same(i, j) && RefIos(v[i], v[j], tiles) > o.ios_threshold) {
          st[j] = 2;
          v[i].count++;
          u[0] = std::min(u[0], v[j].b[0]); u[1] = std::min(u[1], v[j].b[1]);
          u[2] = std::max(u[2], v[j].b[2]); u[3] = std::max(u[3], v[j].b[3]);
        }
      std::copy(u, u + 4, v[i].b);
    }
  }
  std::vector<Key> k;
  for (size_t i = 0; i < n; i++)
    if (st[i] == 1) k.emplace_back(v[i].b[0], v[i].b[1], v[i].b[2], v[i].b[3], v[i].cls, v[i].score, v[i].count);
  std::sort(k.begin(), k.end());
  return k;
}

}  // namespace

// A crowded random scene (objects overlapping each other, noisy boxes per
// tile, false positives) so that groups chain across several tiles: the
// streaming merger must equal the naive global algorithm for any order.
TEST(Merge, StreamingEqualsNaiveGlobalMergeInAnyOrder) {
  const int W = 1500, H = 1100;
  std::vector<asd_merge_tile> tiles = Grid(W, H, 256, 48);
  std::mt19937 rng(20261129);
  std::uniform_real_distribution<double> U(0, 1);
  struct O { double b[4]; int cls; };
  std::vector<O> objs;
  for (int i = 0; i < 700; i++) {
    double w = 6 + U(rng) * (U(rng) < 0.1 ? 180 : 40), h = 6 + U(rng) * 40;
    double x = U(rng) * (W - w), y = U(rng) * (H - h);
    objs.push_back({{x, y, x + w, y + h}, (int)(U(rng) * 2)});
  }
  // Crowds: clusters of heavily overlapping boxes, some on seams, make groups
  // large enough for the grid/heap path of the group algorithms.
  for (double cx : {100.0, 215.0, 700.0, 1010.0})
    for (int i = 0; i < 60; i++) {
      double x = cx + U(rng) * 60, y = cx * 0.7 + U(rng) * 60, w = 10 + U(rng) * 30, h = 10 + U(rng) * 30;
      objs.push_back({{x, y, x + w, y + h}, (int)(U(rng) * 2)});
    }
  const char *names[] = {"building", "vehicle"};
  std::vector<asd_detections> store(tiles.size());
  std::vector<asd_detections *> per;
  std::vector<Ref> refs;
  for (size_t t = 0; t < tiles.size(); t++) {
    asd_detections_init(&store[t]);
    per.push_back(&store[t]);
    const asd_merge_tile &T = tiles[t];
    size_t seq = 0;
    for (const O &o : objs) {
      double b[4];
      for (int k = 0; k < 4; k++) b[k] = o.b[k] + (U(rng) - 0.5) * 3;  // a slightly different box per view
      b[0] = std::max(b[0], T.x); b[1] = std::max(b[1], T.y);
      b[2] = std::min(b[2], T.x + T.w); b[3] = std::min(b[3], T.y + T.h);
      if (!(b[2] > b[0] && b[3] > b[1])) continue;
      double score = std::round((0.3 + 0.7 * U(rng)) * 100) / 100;  // ties happen
      Push(store[t], Box(b[0], b[1], b[2], b[3], names[o.cls], score, seq));
      store[t].items[store[t].count - 1].tile_index = T.index;
      refs.push_back({{b[0], b[1], b[2], b[3]}, names[o.cls], score, score, (int)t, seq});
      seq++;
    }
  }
  ASSERT_GT(refs.size(), 1000u);
  for (asd_merge_mode mode : {ASD_MERGE_NMS, ASD_MERGE_SOFT_NMS, ASD_MERGE_NMM}) {
    for (int agnostic : {0, 1}) {
      asd_merge_options opt;
      asd_merge_options_init(&opt);
      opt.mode = mode;
      opt.class_agnostic = agnostic;
      opt.iou_threshold = 0.3;
      if (agnostic) opt.soft_min_iou = 0;  // the textbook soft-NMS too
      std::vector<Key> expect = Naive(refs, opt, tiles);
      for (unsigned seed : {0u, 7u, 8u}) {
        StreamResult r;
        Stream(opt, tiles, per, Shuffled(tiles.size(), seed), r);
        std::string what = std::string(asd_merge_mode_name(mode)) + (agnostic ? " agnostic" : "") + " order " +
                           std::to_string(seed);
        EXPECT_EQ(expect.size(), r.dets.size()) << what;
        EXPECT_TRUE(expect == Keys(r.dets)) << what;
        EXPECT_GT(r.stats.groups, 0u);
        if (mode != ASD_MERGE_NMS || agnostic) {
          EXPECT_GT(r.stats.largest_group, 24u) << what;
        }
      }
    }
  }
  for (auto &d : store) asd_detections_free(&d);
}

// Streaming really streams: in raster order, detections are handed out long
// before the last tile and the pending set stays a fraction of the total.
TEST(Merge, StreamingBoundsPendingDetections) {
  std::vector<asd_merge_tile> tiles = Grid(8000, 8000, 512, 64);
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  char err[200];
  asd_merger *m = asd_merger_new(&opt, tiles.data(), tiles.size(), err, sizeof(err));
  ASSERT_NE(nullptr, m) << err;
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> U(0, 1);
  asd_detections out;
  asd_detections_init(&out);
  size_t total = 0, popped_half = 0;
  for (size_t t = 0; t < tiles.size(); t++) {
    asd_detections v;
    asd_detections_init(&v);
    for (int i = 0; i < 200; i++) {
      double x = tiles[t].x + U(rng) * 480, y = tiles[t].y + U(rng) * 480;
      Push(v, Box(x, y, x + 20, y + 20, "a", U(rng), i));
    }
    total += v.count;
    ASSERT_EQ(0, asd_merger_add_tile(m, tiles[t].index, &v, err, sizeof(err)));
    asd_merger_pop(m, &out);
    asd_detections_reset(&out);  // "written" and freed
    if (t == tiles.size() / 2) {
      asd_merge_stats st;
      asd_merger_get_stats(m, &st);
      popped_half = st.emitted;
    }
    asd_detections_free(&v);
  }
  asd_merger_finish(m);
  asd_merger_pop(m, &out);
  asd_merge_stats st;
  asd_merger_get_stats(m, &st);
  EXPECT_EQ(total, st.added);
  EXPECT_GT(popped_half, total / 4);
  EXPECT_LT(st.peak_pending, total / 5) << "pending detections were not released as tiles completed";
  EXPECT_EQ(0u, st.pending);
  asd_detections_free(&out);
  asd_merger_free(m);
}

// Pool callbacks hand tiles over from several threads at once: the merger
// serialises them and the result is the single-threaded one.
TEST(Merge, ConcurrentProducersGiveTheSameResult) {
  std::vector<Obj> objs = LoadGroundTruth();
  ASSERT_EQ(91u, objs.size());
  Scene sc;
  BuildTruthScene(sc, objs, 512, 64, Views::All);
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  StreamResult single;
  Stream(opt, sc.tiles, sc.per_tile, Shuffled(sc.tiles.size(), 0), single);

  char err[256];
  asd_merger *m = asd_merger_new(&opt, sc.tiles.data(), sc.tiles.size(), err, sizeof(err));
  ASSERT_NE(nullptr, m);
  std::vector<asd_detection> got;
  std::mutex got_lock;
  auto worker = [&](size_t first) {
    for (size_t k = first; k < sc.tiles.size(); k += 4) {
      asd_detections copy;
      asd_detections_init(&copy);
      for (size_t i = 0; i < sc.per_tile[k]->count; i++) {
        asd_detection d;
        asd_detection_copy(&d, &sc.per_tile[k]->items[i]);
        asd_detections_push(&copy, &d);
      }
      char e[256];
      EXPECT_EQ(0, asd_merger_add_tile(m, sc.tiles[k].index, &copy, e, sizeof(e)));
      asd_detections_free(&copy);
      asd_detections out;
      asd_detections_init(&out);
      asd_merger_pop(m, &out);
      std::lock_guard<std::mutex> g(got_lock);
      for (size_t i = 0; i < out.count; i++) got.push_back(out.items[i]);
      out.count = 0;
      asd_detections_free(&out);
    }
  };
  std::vector<std::thread> th;
  for (size_t i = 0; i < 4; i++) th.emplace_back(worker, i);
  for (auto &t : th) t.join();
  asd_merger_finish(m);
  asd_detections rest;
  asd_detections_init(&rest);
  asd_merger_pop(m, &rest);
  for (size_t i = 0; i < rest.count; i++) got.push_back(rest.items[i]);
  rest.count = 0;
  asd_detections_free(&rest);
  asd_merger_free(m);
  EXPECT_EQ(Keys(single.dets), Keys(got));
  for (auto &d : got) asd_detection_clear(&d);
}

// An object wider than two tile steps is cut into three pieces; the end
// pieces share no tile area.  Greedy NMM led by an end piece leaves the far
// end apart; transitive NMM merges the chain into one object.
TEST(Merge, TransitiveNmmJoinsPiecesAcrossThreeTiles) {
  std::vector<asd_merge_tile> tiles = {{0, 0, 0, 512, 512}, {1, 448, 0, 512, 512}, {2, 896, 0, 512, 512}};
  for (int transitive : {0, 1}) {
    asd_detections v;
    asd_detections_init(&v);
    Push(v, Box(300, 100, 512, 140, "building", 0.9));  // left piece leads
    Push(v, Box(448, 100, 960, 140, "building", 0.8));
    Push(v, Box(896, 100, 1100, 140, "building", 0.7));
    v.items[1].tile_index = 1;
    v.items[2].tile_index = 2;
    asd_merge_options opt;
    asd_merge_options_init(&opt);
    opt.nmm_transitive = transitive;
    char err[200];
    ASSERT_EQ(0, asd_merge_batch(&opt, tiles.data(), tiles.size(), &v, err, sizeof(err))) << err;
    if (transitive) {
      ASSERT_EQ(1u, v.count);
      EXPECT_DOUBLE_EQ(300, v.items[0].minx);
      EXPECT_DOUBLE_EQ(1100, v.items[0].maxx);
      EXPECT_EQ(3, v.items[0].merged_count);
      EXPECT_DOUBLE_EQ(0.9, v.items[0].score);
    } else {
      EXPECT_EQ(2u, v.count);
    }
    asd_detections_free(&v);
  }
}
