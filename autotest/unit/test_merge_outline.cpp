// Unit tests for the outline NMM gives a merged group (tiler/merge.c,
// union_outline): the union of the members' outlines when it is one polygon,
// else the union box.
//
// What matters about an outline is the point set it bounds, not how its ring
// is written: GEOS may start the ring at another vertex, run it the other way
// round, or drop a collinear vertex, depending on how the union was computed
// (all members at once or pairwise).  So outlines are compared as shapes: the
// area of the symmetric difference with the expected polygon must be zero.
#include <gtest/gtest.h>
#include <ogr_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_merge.h"

namespace {

typedef std::vector<std::pair<double, double>> Ring;

asd_detection Poly(int tile, const Ring &open_ring, double score, const double *box = nullptr) {
  asd_detection d;
  std::memset(&d, 0, sizeof(d));
  d.kind = ASD_GEOM_POLYGON;
  d.ring_len = open_ring.size() + 1;
  d.ring = static_cast<asd_point *>(std::malloc(d.ring_len * sizeof(asd_point)));
  d.minx = d.miny = 1e300;
  d.maxx = d.maxy = -1e300;
  for (size_t i = 0; i <= open_ring.size(); i++) {
    const auto &p = open_ring[i % open_ring.size()];
    d.ring[i] = {p.first, p.second};
    d.minx = std::min(d.minx, p.first); d.maxx = std::max(d.maxx, p.first);
    d.miny = std::min(d.miny, p.second); d.maxy = std::max(d.maxy, p.second);
  }
  if (box) {
    d.minx = box[0]; d.miny = box[1]; d.maxx = box[2]; d.maxy = box[3];
  }
  d.class_iri = strdup("building");
  d.classes_json = strdup("[]");
  d.score = d.raw_score = score;
  d.merged_count = 1;
  d.tile_index = tile;
  return d;
}

OGRGeometryH ToOgr(const asd_detection &d) {
  char *wkt = asd_detection_wkt(&d);
  OGRGeometryH g = nullptr;
  char *p = wkt;
  OGR_G_CreateFromWkt(&p, nullptr, &g);
  std::free(wkt);
  return g;
}

// Area of the symmetric difference between the detection's outline and a WKT polygon.
double SymDiffArea(const asd_detection &d, const char *expected_wkt) {
  OGRGeometryH a = ToOgr(d), b = nullptr;
  char *p = const_cast<char *>(expected_wkt);
  OGR_G_CreateFromWkt(&p, nullptr, &b);
  EXPECT_NE(nullptr, a);
  EXPECT_NE(nullptr, b);
  OGRGeometryH x = OGR_G_SymDifference(a, b);
  double area = x ? OGR_G_Area(x) : -1;
  OGR_G_DestroyGeometry(a);
  OGR_G_DestroyGeometry(b);
  OGR_G_DestroyGeometry(x);
  return area;
}

// Merges the detections (given in tile order) in several completion orders; returns the outputs.
std::vector<asd_detections> MergeInOrders(const std::vector<asd_merge_tile> &tiles,
                                          const std::vector<asd_detection> &dets) {
  std::vector<asd_detections> outs;
  for (unsigned seed : {0u, 1u, 2u, 3u}) {
    std::vector<size_t> order(dets.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    if (seed) std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    asd_detections v;
    asd_detections_init(&v);
    for (size_t i : order) {
      asd_detection c;
      EXPECT_EQ(0, asd_detection_copy(&c, &dets[i]));
      asd_detections_push(&v, &c);
    }
    asd_merge_options opt;
    asd_merge_options_init(&opt);
    opt.nmm_transitive = 1;  // as the utility: whole chains merge
    char err[200];
    EXPECT_EQ(0, asd_merge_batch(&opt, tiles.data(), tiles.size(), &v, err, sizeof(err))) << err;
    outs.push_back(v);
  }
  return outs;
}

const std::vector<asd_merge_tile> kTiles = {{0, 0, 0, 512, 512}, {1, 448, 0, 512, 512}, {2, 896, 0, 512, 512}};

}  // namespace

// Three pieces of one object across three tiles, each with its own shape: the
// merged outline is exactly their union (a bump from the middle piece, a step
// from the right one), whatever order the tiles complete in.
TEST(MergeOutline, ChainOfThreeIsTheUnionOfAllThree) {
  std::vector<asd_detection> dets = {
      Poly(0, {{300, 100}, {512, 100}, {512, 140}, {300, 140}}, 0.9),
      Poly(1, {{448, 100}, {960, 100}, {960, 140}, {700, 140}, {700, 160}, {600, 160}, {600, 140}, {448, 140}}, 0.8),
      Poly(2, {{896, 90}, {1100, 90}, {1100, 140}, {896, 140}}, 0.7)};
  const char *expected =
      "POLYGON ((300 100,896 100,896 90,1100 90,1100 140,700 140,700 160,600 160,600 140,300 140,300 100))";
  for (auto &out : MergeInOrders(kTiles, dets)) {
    ASSERT_EQ(1u, out.count);
    const asd_detection &d = out.items[0];
    EXPECT_EQ(3, d.merged_count);
    ASSERT_EQ(ASD_GEOM_POLYGON, d.kind);
    EXPECT_DOUBLE_EQ(300, d.minx);
    EXPECT_DOUBLE_EQ(90, d.miny);
    EXPECT_DOUBLE_EQ(1100, d.maxx);
    EXPECT_DOUBLE_EQ(160, d.maxy);
    EXPECT_EQ(d.ring[0].x, d.ring[d.ring_len - 1].x);
    EXPECT_EQ(d.ring[0].y, d.ring[d.ring_len - 1].y);
    EXPECT_EQ(0.0, SymDiffArea(d, expected));
    asd_detections_free(&out);
  }
  for (auto &d : dets) asd_detection_clear(&d);
}

// A long chain (the shape dense scenes give NMM over whole chains): a staircase
// of 40 overlapping squares in one tile, each linked to the next by IoS 0.56.
TEST(MergeOutline, LongChainIsTheUnionOfEveryMember) {
  std::vector<asd_detection> dets;
  std::string expected = "POLYGON ((";
  Ring outline;
  const int n = 40;
  for (int i = 0; i < n; i++) {
    double x = 10 + 5 * i, y = 10 + 5 * i;
    dets.push_back(Poly(0, {{x, y}, {x + 20, y}, {x + 20, y + 20}, {x, y + 20}}, 0.9 - 0.001 * i));
  }
  // The staircase: along the bottom-right edge, then back along the top-left edge.
  outline.push_back({10, 10});
  for (int i = 0; i < n; i++) {
    double x = 10 + 5 * i, y = 10 + 5 * i;
    outline.push_back({x + 20, y});
    if (i + 1 < n) outline.push_back({x + 20, y + 5});
  }
  outline.push_back({10 + 5 * (n - 1) + 20, 10 + 5 * (n - 1) + 20});
  for (int i = n - 1; i >= 0; i--) {
    double x = 10 + 5 * i, y = 10 + 5 * i;
    outline.push_back({x, y + 20});
    if (i > 0) outline.push_back({x, y + 15});
  }
  for (size_t i = 0; i <= outline.size(); i++) {
    const auto &p = outline[i % outline.size()];
    expected += (i ? "," : "") + std::to_string(p.first) + " " + std::to_string(p.second);
  }
  expected += "))";
  for (auto &out : MergeInOrders({kTiles[0]}, dets)) {
    ASSERT_EQ(1u, out.count);
    const asd_detection &d = out.items[0];
    EXPECT_EQ(n, d.merged_count);
    ASSERT_EQ(ASD_GEOM_POLYGON, d.kind);
    EXPECT_EQ(0.0, SymDiffArea(d, expected.c_str()));
    asd_detections_free(&out);
  }
  for (auto &d : dets) asd_detection_clear(&d);
}

// When the outlines do not meet (the boxes link, the polygons do not touch),
// the union is two polygons: the merged detection falls back to the union box.
TEST(MergeOutline, DisjointOutlinesFallBackToTheBox) {
  const double box_a[4] = {300, 100, 512, 140}, box_b[4] = {448, 100, 700, 140};
  std::vector<asd_detection> dets = {
      Poly(0, {{300, 100}, {512, 100}, {512, 110}, {300, 110}}, 0.9, box_a),
      Poly(1, {{448, 130}, {700, 130}, {700, 140}, {448, 140}}, 0.8, box_b),
      Poly(1, {{460, 120}, {470, 120}, {470, 125}, {460, 125}}, 0.7)};
  for (auto &out : MergeInOrders({kTiles[0], kTiles[1]}, dets)) {
    ASSERT_EQ(1u, out.count);
    const asd_detection &d = out.items[0];
    EXPECT_EQ(3, d.merged_count);
    EXPECT_EQ(ASD_GEOM_BOX, d.kind);
    EXPECT_EQ(nullptr, d.ring);
    EXPECT_DOUBLE_EQ(300, d.minx);
    EXPECT_DOUBLE_EQ(700, d.maxx);
    asd_detections_free(&out);
  }
  for (auto &d : dets) asd_detection_clear(&d);
}
