// Unit tests for tiler/features.c: parsing model FeatureCollections (both
// OSML schemas) into detections in image pixels, and refusing bad input
// without failing the tile.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "asyncdetect/asd_features.h"

namespace {

struct Parsed {
  asd_detections v;
  asd_parse_report rep;
  asd_parse_status st;
  Parsed() { asd_detections_init(&v); }
  ~Parsed() { asd_detections_free(&v); }
};

asd_tile_ref Tile(double x = 448, double y = 896, double w = 512, double h = 512) {
  asd_tile_ref t;
  std::memset(&t, 0, sizeof(t));
  t.index = 7;
  t.row = 2;
  t.col = 1;
  t.x = x;
  t.y = y;
  t.w = w;
  t.h = h;
  t.inference_id = "inf-123";
  return t;
}

void Parse(Parsed &p, const std::string &text, const asd_tile_ref *tile,
           const asd_parse_options *opt = nullptr) {
  p.st = asd_features_parse(text.data(), text.size(), tile, opt, &p.v, &p.rep);
}

std::string Wrap(const std::string &feature_props) {
  return R"({"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":)" +
         feature_props + "}]}";
}

}  // namespace

// The shape the OSML test models and the local `blobs` model return today.
TEST(Features, CurrentSchemaPolygonMovedToImagePixels) {
  const std::string doc = R"({"type":"FeatureCollection","features":[
    {"type":"Feature","id":"a","geometry":null,"properties":{
      "imageGeometry":{"type":"Polygon","coordinates":[[[10,20],[50,20],[50,60],[10,60],[10,20]]]},
      "imageBBox":[10,20,50,60],
      "featureClasses":[{"iri":"vehicle","score":0.4},{"iri":"building","score":0.93,"rawScore":0.97}],
      "modelMetadata":{"modelName":"blobs","ontologyName":"test","ontologyVersion":"1"}}}]})";
  Parsed p;
  asd_tile_ref t = Tile();
  Parse(p, doc, &t);
  ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
  ASSERT_EQ(1u, p.v.count);
  const asd_detection &d = p.v.items[0];
  EXPECT_EQ(ASD_GEOM_POLYGON, d.kind);
  EXPECT_DOUBLE_EQ(458, d.minx);
  EXPECT_DOUBLE_EQ(916, d.miny);
  EXPECT_DOUBLE_EQ(498, d.maxx);
  EXPECT_DOUBLE_EQ(956, d.maxy);
  ASSERT_EQ(5u, d.ring_len);
  EXPECT_DOUBLE_EQ(458, d.ring[0].x);
  EXPECT_DOUBLE_EQ(916, d.ring[0].y);
  EXPECT_DOUBLE_EQ(d.ring[0].x, d.ring[4].x);
  EXPECT_STREQ("building", d.class_iri);
  EXPECT_DOUBLE_EQ(0.93, d.score);
  EXPECT_DOUBLE_EQ(0.97, d.raw_score);
  EXPECT_NE(nullptr, std::strstr(d.classes_json, "\"iri\":\"vehicle\""));
  EXPECT_NE(nullptr, std::strstr(d.classes_json, "\"rawScore\":0.97"));
  ASSERT_NE(nullptr, d.model_metadata_json);
  EXPECT_NE(nullptr, std::strstr(d.model_metadata_json, "\"modelName\":\"blobs\""));
  EXPECT_STREQ("inf-123", d.inference_id);
  EXPECT_EQ(7, d.tile_index);
  EXPECT_EQ(2, d.tile_row);
  EXPECT_EQ(1, d.tile_col);
  EXPECT_EQ(1, d.merged_count);
  EXPECT_EQ(0u, p.rep.rejected);
  EXPECT_EQ(1u, p.rep.accepted);

  char *wkt = asd_detection_wkt(&d);
  ASSERT_NE(nullptr, wkt);
  EXPECT_STREQ("POLYGON ((458 916,498 916,498 956,458 956,458 916))", wkt);
  free(wkt);
}

// The centerpoint test model answers with a Point plus a box, and a placeholder top-level geometry.
TEST(Features, CurrentSchemaPointWithAndWithoutBox) {
  const std::string doc = R"({"type":"FeatureCollection","features":[
    {"type":"Feature","geometry":{"type":"Point","coordinates":[0,0]},"properties":{
      "imageGeometry":{"type":"Point","coordinates":[256,256]},"imageBBox":[205,205,307,307],
      "featureClasses":[{"iri":"sample_object","score":1.0}]}},
    {"type":"Feature","geometry":null,"properties":{
      "imageGeometry":{"type":"Point","coordinates":[12.5,30]},
      "featureClasses":[{"iri":"pin","score":0.5}]}}]})";
  Parsed p;
  asd_tile_ref t = Tile(0, 0);
  Parse(p, doc, &t);
  ASSERT_EQ(ASD_PARSE_OK, p.st);
  ASSERT_EQ(2u, p.v.count);
  EXPECT_EQ(ASD_GEOM_POINT, p.v.items[0].kind);
  ASSERT_EQ(1u, p.v.items[0].ring_len);
  EXPECT_DOUBLE_EQ(256, p.v.items[0].ring[0].x);
  EXPECT_DOUBLE_EQ(205, p.v.items[0].minx);
  EXPECT_DOUBLE_EQ(307, p.v.items[0].maxy);
  EXPECT_EQ(nullptr, p.v.items[0].model_metadata_json);
  const asd_detection &q = p.v.items[1];
  EXPECT_EQ(ASD_GEOM_POINT, q.kind);
  EXPECT_DOUBLE_EQ(12.5, q.minx);
  EXPECT_DOUBLE_EQ(12.5, q.maxx);
  EXPECT_DOUBLE_EQ(30, q.miny);
  char *wkt = asd_detection_wkt(&q);
  EXPECT_STREQ("POINT (12.5 30)", wkt);
  free(wkt);
}

// Older OSML models: bounds_imcoords, geom_imcoords, feature_types, detection_score.
TEST(Features, LegacySchema) {
  const std::string doc = R"({"type":"FeatureCollection","features":[
    {"type":"Feature","geometry":{"type":"Point","coordinates":[0.0,0.0]},"properties":{
      "bounds_imcoords":[429,553,440,561],
      "geom_imcoords":[[429,553],[440,553],[440,561],[429,561]],
      "feature_types":{"ground_motor_passenger_vehicle":0.2961, "truck":0.1},
      "detection_score":0.2961,"image_id":"x"}}]})";
  Parsed p;
  asd_tile_ref t = Tile(1000, 2000, 1024, 1024);
  Parse(p, doc, &t);
  ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
  ASSERT_EQ(1u, p.v.count);
  const asd_detection &d = p.v.items[0];
  EXPECT_EQ(ASD_GEOM_POLYGON, d.kind);
  EXPECT_EQ(5u, d.ring_len);  // closed by the parser
  EXPECT_DOUBLE_EQ(1429, d.minx);
  EXPECT_DOUBLE_EQ(2561, d.maxy);
  EXPECT_STREQ("ground_motor_passenger_vehicle", d.class_iri);
  EXPECT_DOUBLE_EQ(0.2961, d.score);
  EXPECT_DOUBLE_EQ(0.2961, d.raw_score);
  // Normalised to the current schema whatever the model spoke.
  EXPECT_NE(nullptr, std::strstr(d.classes_json, "{\"iri\":\"ground_motor_passenger_vehicle\",\"score\":0.2961}"));
  EXPECT_NE(nullptr, std::strstr(d.classes_json, "{\"iri\":\"truck\",\"score\":0.1"));
}

TEST(Features, LegacyBoxOnlyAndDetectionScoreOnly) {
  Parsed p;
  asd_tile_ref t = Tile(0, 0);
  Parse(p, Wrap(R"({"bounds_imcoords":[1,2,3,4],"detection_score":0.7})"), &t);
  ASSERT_EQ(ASD_PARSE_OK, p.st);
  ASSERT_EQ(1u, p.v.count);
  EXPECT_EQ(ASD_GEOM_BOX, p.v.items[0].kind);
  EXPECT_EQ(nullptr, p.v.items[0].ring);
  EXPECT_STREQ("", p.v.items[0].class_iri);
  EXPECT_DOUBLE_EQ(0.7, p.v.items[0].score);
  EXPECT_STREQ("[]", p.v.items[0].classes_json);
}

TEST(Features, LegacyPointsAndPolygonCoordinates) {
  asd_tile_ref t = Tile(0, 0);
  const char *docs[] = {R"({"geom_imcoords":[5,6],"detection_score":0.5})",
                        R"({"geom_imcoords":[[5,6]],"detection_score":0.5})"};
  for (const char *props : docs) {
    Parsed p;
    Parse(p, Wrap(props), &t);
    ASSERT_EQ(1u, p.v.count) << props;
    EXPECT_EQ(ASD_GEOM_POINT, p.v.items[0].kind);
    EXPECT_DOUBLE_EQ(5, p.v.items[0].ring[0].x);
    EXPECT_DOUBLE_EQ(6, p.v.items[0].maxy);
  }
  Parsed p;
  Parse(p, Wrap(R"({"geom_imcoords":[[[1,1],[9,1],[9,9],[1,9]]],"detection_score":0.5})"), &t);
  ASSERT_EQ(1u, p.v.count);
  EXPECT_EQ(ASD_GEOM_POLYGON, p.v.items[0].kind);
  EXPECT_EQ(5u, p.v.items[0].ring_len);
  EXPECT_DOUBLE_EQ(9, p.v.items[0].maxx);
}

TEST(Features, BareArrayAndSingleFeatureAndEmptyCollection) {
  asd_tile_ref t = Tile(0, 0);
  {
    Parsed p;
    Parse(p, R"([{"type":"Feature","properties":{"imageBBox":[1,1,5,5],"featureClasses":[{"iri":"a","score":0.5}]}}])", &t);
    EXPECT_EQ(ASD_PARSE_OK, p.st);
    EXPECT_EQ(1u, p.v.count);
  }
  {
    Parsed p;
    Parse(p, R"({"type":"Feature","properties":{"imageBBox":[1,1,5,5],"featureClasses":[{"iri":"a","score":0.5}]}})", &t);
    EXPECT_EQ(ASD_PARSE_OK, p.st);
    EXPECT_EQ(1u, p.v.count);
  }
  {
    Parsed p;
    Parse(p, R"({"type":"FeatureCollection","features":[]})", &t);
    EXPECT_EQ(ASD_PARSE_OK, p.st);
    EXPECT_EQ(0u, p.v.count);
    EXPECT_STREQ("", p.rep.message);
  }
}

TEST(Features, MultiPolygonKeepsLargestPart) {
  Parsed p;
  asd_tile_ref t = Tile(0, 0);
  Parse(p, Wrap(R"({"imageGeometry":{"type":"MultiPolygon","coordinates":[
      [[[0,0],[2,0],[2,2],[0,2],[0,0]]], [[[10,10],[30,10],[30,30],[10,30],[10,10]]]]},
      "featureClasses":[{"iri":"a","score":0.5}]})"),
        &t);
  ASSERT_EQ(1u, p.v.count);
  EXPECT_DOUBLE_EQ(10, p.v.items[0].minx);
  EXPECT_DOUBLE_EQ(30, p.v.items[0].maxx);
}

TEST(Features, DocumentLevelErrorsAreClear) {
  asd_tile_ref t = Tile();
  struct Case {
    const char *text;
    asd_parse_status st;
    const char *needle;
  } cases[] = {
      {"<html>503 Service Unavailable</html>", ASD_PARSE_ERR_JSON, "not JSON"},
      {"{\"type\":\"FeatureCollection\",\"features\":[", ASD_PARSE_ERR_JSON, "truncated"},
      {"{\"features\":[]} trailing", ASD_PARSE_ERR_JSON, "after the document"},
      {"", ASD_PARSE_ERR_JSON, "not JSON"},
      {"{\"type\":\"FeatureCollection\"}", ASD_PARSE_ERR_SCHEMA, "features"},
      {"{\"features\":{\"a\":1}}", ASD_PARSE_ERR_SCHEMA, "features"},
      {"42", ASD_PARSE_ERR_SCHEMA, "not a FeatureCollection"},
      {"\"hello\"", ASD_PARSE_ERR_SCHEMA, "not a FeatureCollection"},
  };
  for (const Case &c : cases) {
    Parsed p;
    Parse(p, c.text, &t);
    EXPECT_EQ(c.st, p.st) << c.text;
    EXPECT_NE(nullptr, std::strstr(p.rep.message, c.needle)) << c.text << " -> " << p.rep.message;
    EXPECT_EQ(nullptr, std::strchr(p.rep.message, '\n'));
    EXPECT_EQ(0u, p.v.count);
  }
  Parsed p;
  p.st = asd_features_parse(nullptr, 0, &t, nullptr, &p.v, &p.rep);
  EXPECT_EQ(ASD_PARSE_ERR_JSON, p.st);
}

// Each bad feature is skipped and counted under its reason; the good ones survive.
TEST(Features, MalformedFeaturesAreCountedNotFatal) {
  const std::string good = R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"featureClasses":[{"iri":"ok","score":0.9}]}})";
  const char *bad[] = {
      "17",                                                                                     // not_a_feature
      R"({"type":"Feature","properties":{"featureClasses":[{"iri":"a","score":0.9}]}})",       // no_geometry
      R"({"type":"Feature"})",                                                                  // no_geometry
      R"({"type":"Feature","properties":{"imageBBox":"10,10,20,20","featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_geometry
      R"({"type":"Feature","properties":{"imageBBox":[20,10,10,20],"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_geometry (inverted)
      R"({"type":"Feature","properties":{"imageBBox":[1,2,3],"featureClasses":[{"iri":"a","score":0.9}]}})",       // bad_geometry
      R"({"type":"Feature","properties":{"imageGeometry":{"type":"LineString","coordinates":[[1,1],[5,5]]},"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_geometry
      R"({"type":"Feature","properties":{"imageGeometry":{"type":"Polygon","coordinates":[[[1,1],[5,5]]]},"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_geometry
      R"({"type":"Feature","properties":{"imageBBox":[NaN,10,20,20],"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_number
      R"({"type":"Feature","properties":{"imageBBox":[1e300,10,2e300,20],"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_number
      R"({"type":"Feature","properties":{"imageBBox":[-99999999999999999999,10,20,20],"featureClasses":[{"iri":"a","score":0.9}]}})",  // bad_number
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"featureClasses":[{"iri":"a","score":"0.9"}]}})",  // bad_score
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"featureClasses":[{"iri":"a","score":Infinity}]}})",  // bad_score
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20]}})",                         // bad_score (none)
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"featureClasses":[]}})",    // bad_score (empty)
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"feature_types":{"a":null}}})",  // bad_score
      R"({"type":"Feature","properties":{"imageBBox":[10,10,20,20],"featureClasses":[{"score":0.9}]}})",  // bad_score (no iri)
      R"({"type":"Feature","properties":{"imageBBox":[600,10,700,20],"featureClasses":[{"iri":"a","score":0.9}]}})",  // out_of_tile
      R"({"type":"Feature","properties":{"imageBBox":[-50,-50,0,0],"featureClasses":[{"iri":"a","score":0.9}]}})",  // out_of_tile (touching only)
  };
  std::string doc = "{\"type\":\"FeatureCollection\",\"features\":[" + good;
  for (const char *b : bad) doc += std::string(",") + b;
  doc += "," + good + "]}";
  Parsed p;
  asd_tile_ref t = Tile(0, 0);
  Parse(p, doc, &t);
  ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
  EXPECT_EQ(2u, p.v.count);
  EXPECT_EQ(2u, p.rep.accepted);
  EXPECT_EQ(sizeof(bad) / sizeof(bad[0]), p.rep.rejected);
  EXPECT_EQ(sizeof(bad) / sizeof(bad[0]) + 2, p.rep.features);
  EXPECT_EQ(1u, p.rep.by_reason[ASD_REJECT_NOT_A_FEATURE]);
  EXPECT_EQ(2u, p.rep.by_reason[ASD_REJECT_NO_GEOMETRY]);
  EXPECT_EQ(5u, p.rep.by_reason[ASD_REJECT_BAD_GEOMETRY]);
  EXPECT_EQ(3u, p.rep.by_reason[ASD_REJECT_BAD_NUMBER]);
  EXPECT_EQ(6u, p.rep.by_reason[ASD_REJECT_BAD_SCORE]);
  EXPECT_EQ(2u, p.rep.by_reason[ASD_REJECT_OUT_OF_TILE]);
  EXPECT_STREQ("feature 1 skipped: not_a_feature", p.rep.message);
  char line[300];
  EXPECT_STREQ("21 features: 2 accepted, 19 skipped (not_a_feature 1, no_geometry 2, bad_geometry 5, "
               "bad_number 3, bad_score 6, out_of_tile 2)",
               asd_parse_report_format(&p.rep, line, sizeof(line)));
  char tiny[8];
  asd_parse_report_format(&p.rep, tiny, sizeof(tiny));  // truncates, never overflows
  EXPECT_EQ(7u, std::strlen(tiny));
  // The good ones keep their place in the document (the merge tie-breaker).
  EXPECT_EQ(0u, p.v.items[0].seq);
  EXPECT_EQ(sizeof(bad) / sizeof(bad[0]) + 1, p.v.items[1].seq);
}

TEST(Features, PartlyOutsideIsClippedToTheTile) {
  Parsed p;
  asd_tile_ref t = Tile(100, 200, 64, 64);
  Parse(p, Wrap(R"({"imageGeometry":{"type":"Polygon","coordinates":[[[-10,-10],[10,-10],[10,10],[-10,10],[-10,-10]]]},
                    "featureClasses":[{"iri":"a","score":0.9}]})"),
        &t);
  ASSERT_EQ(1u, p.v.count);
  EXPECT_EQ(1u, p.rep.clipped);
  const asd_detection &d = p.v.items[0];
  EXPECT_DOUBLE_EQ(100, d.minx);
  EXPECT_DOUBLE_EQ(200, d.miny);
  EXPECT_DOUBLE_EQ(110, d.maxx);
  EXPECT_DOUBLE_EQ(210, d.maxy);
  ASSERT_EQ(ASD_GEOM_POLYGON, d.kind);
  ASSERT_GE(d.ring_len, 4u);
  for (size_t i = 0; i < d.ring_len; i++) {
    EXPECT_GE(d.ring[i].x, 100);
    EXPECT_LE(d.ring[i].x, 110);
    EXPECT_GE(d.ring[i].y, 200);
    EXPECT_LE(d.ring[i].y, 210);
  }
  // A box reaching past the far edge, too.
  Parsed q;
  Parse(q, Wrap(R"({"imageBBox":[50,50,70,64.2],"featureClasses":[{"iri":"a","score":0.9}]})"), &t);
  ASSERT_EQ(1u, q.v.count);
  EXPECT_DOUBLE_EQ(164, q.v.items[0].maxx);
  EXPECT_DOUBLE_EQ(264, q.v.items[0].maxy);
  EXPECT_EQ(1u, q.rep.clipped);  // x by 6 px; y by 0.2 (within the tolerance) alone would not count
}

TEST(Features, SizeLimitsGiveAClearError) {
  asd_tile_ref t = Tile(0, 0);
  asd_parse_options o;
  asd_parse_options_init(&o);
  std::string one = R"({"type":"Feature","properties":{"imageBBox":[1,1,5,5],"featureClasses":[{"iri":"a","score":0.5}]}})";
  std::string doc = "{\"type\":\"FeatureCollection\",\"features\":[" + one + "," + one + "," + one + "]}";
  {
    o.max_bytes = 100;
    Parsed p;
    Parse(p, doc, &t, &o);
    EXPECT_EQ(ASD_PARSE_ERR_TOO_LARGE, p.st);
    EXPECT_NE(nullptr, std::strstr(p.rep.message, "limit of 100 bytes")) << p.rep.message;
    EXPECT_EQ(0u, p.v.count);
  }
  {
    asd_parse_options_init(&o);
    o.max_features = 2;
    Parsed p;
    Parse(p, doc, &t, &o);
    EXPECT_EQ(ASD_PARSE_ERR_TOO_LARGE, p.st);
    EXPECT_NE(nullptr, std::strstr(p.rep.message, "3 features, more than the limit of 2")) << p.rep.message;
    EXPECT_EQ(0u, p.v.count);
  }
  {
    asd_parse_options_init(&o);
    o.max_vertices = 10;
    std::string ring = "[";
    for (int i = 0; i < 11; i++) ring += (i ? "," : "") + std::string("[") + std::to_string(i) + "," + std::to_string(i * i % 7) + "]";
    ring += "]";
    Parsed p;
    Parse(p, Wrap(R"({"geom_imcoords":)" + ring + R"(,"detection_score":0.5})"), &t, &o);
    EXPECT_EQ(ASD_PARSE_OK, p.st);
    EXPECT_EQ(0u, p.v.count);
    EXPECT_EQ(1u, p.rep.by_reason[ASD_REJECT_TOO_MANY_VERTICES]);
  }
  // Deeply nested garbage does not blow the stack.
  std::string deep(100000, '[');
  Parsed p;
  Parse(p, deep, &t);
  EXPECT_EQ(ASD_PARSE_ERR_JSON, p.st);
}

TEST(Features, ContainerMovesAndCopies) {
  Parsed p;
  asd_tile_ref t = Tile(0, 0);
  Parse(p, Wrap(R"({"imageGeometry":{"type":"Polygon","coordinates":[[[1,1],[5,1],[5,5],[1,1]]]},"featureClasses":[{"iri":"a","score":0.5}],"modelMetadata":{"m":1}})"), &t);
  ASSERT_EQ(1u, p.v.count);
  asd_detection c;
  ASSERT_EQ(0, asd_detection_copy(&c, &p.v.items[0]));
  EXPECT_NE(c.ring, p.v.items[0].ring);
  EXPECT_STREQ(p.v.items[0].classes_json, c.classes_json);
  asd_detections other;
  asd_detections_init(&other);
  ASSERT_EQ(0, asd_detections_push(&other, &c));
  EXPECT_EQ(nullptr, c.ring);  // moved
  ASSERT_EQ(0, asd_detections_move_all(&other, &p.v));
  EXPECT_EQ(0u, p.v.count);
  EXPECT_EQ(2u, other.count);
  EXPECT_STREQ("polygon", asd_geom_kind_name(other.items[1].kind));
  asd_detections_free(&other);
  EXPECT_STREQ("out_of_tile", asd_reject_reason_name(ASD_REJECT_OUT_OF_TILE));
  EXPECT_STREQ("not_json", asd_parse_status_name(ASD_PARSE_ERR_JSON));
}

// A feature holding more JSON values than any detection needs is skipped as
// too_large before json-c builds it; its neighbours survive.
TEST(Features, AHugeFeatureIsSkippedNotParsed) {
  asd_tile_ref t = Tile(0, 0);
  asd_parse_options o;
  asd_parse_options_init(&o);
  o.max_vertices = 10;  // budget: 4 * 10 + 4096 values
  std::string zeros = "[0";
  for (int i = 0; i < 5000; i++) zeros += ",0";
  zeros += "]";
  const std::string good = R"({"type":"Feature","properties":{"imageBBox":[1,1,5,5],"featureClasses":[{"iri":"a","score":0.5}]}})";
  const std::string huge = R"({"type":"Feature","properties":{"imageBBox":[1,1,5,5],"detection_score":0.5,"modelMetadata":{"z":)" + zeros + "}}}";
  // Members of the collection other than "features" are checked but never built.
  Parsed p;
  Parse(p, R"({"type":"FeatureCollection","bbox":)" + zeros + R"(,"features":[)" + good + "," + huge + "," + good + "]}", &t, &o);
  ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
  EXPECT_EQ(3u, p.rep.features);
  EXPECT_EQ(2u, p.v.count);
  EXPECT_EQ(1u, p.rep.by_reason[ASD_REJECT_TOO_LARGE]);
  EXPECT_STREQ("feature 1 skipped: too_large", p.rep.message);
  EXPECT_EQ(2u, p.v.items[1].seq);
  // The same feature as a single-Feature document.
  Parsed single;
  Parse(single, huge, &t, &o);
  ASSERT_EQ(ASD_PARSE_OK, single.st) << single.rep.message;
  EXPECT_EQ(1u, single.rep.by_reason[ASD_REJECT_TOO_LARGE]);
  // Within the budget it is an ordinary detection.
  o.max_vertices = 2000;
  Parsed fits;
  Parse(fits, huge, &t, &o);
  EXPECT_EQ(1u, fits.v.count) << fits.rep.message;
}

// Syntax errors anywhere in the document still fail it as a whole, with the
// byte where the scanner stopped; valid JSON that json-c reads (NaN,
// Infinity) still reaches the per-feature checks.
TEST(Features, ScannerRefusesWhatIsNotJson) {
  asd_tile_ref t = Tile(0, 0);
  const char *bad[] = {
      R"({"features":[],"bbox":[1,,2]})",
      R"({"features":[{"a":1}],"x":"unterminated)",
      R"({"features":[{"a":"\q"}]})",
      R"({"features":[{"a":01x}]})",
      R"({"features":[1 2]})",
      R"({"features" [1]})",
      R"({"features":[1],})",
      R"([{"a":1},])",
      R"({"features":[{"a":"\u12"}]})",
  };
  for (const char *b : bad) {
    Parsed p;
    Parse(p, b, &t);
    EXPECT_EQ(ASD_PARSE_ERR_JSON, p.st) << b;
    EXPECT_NE(nullptr, std::strstr(p.rep.message, "not JSON")) << b << " -> " << p.rep.message;
  }
  Parsed ok;
  Parse(ok, R"( {"features":[{"type":"Feature","properties":{"imageBBox":[-Infinity,1,2,NaN],"detection_score":1e-2}}],
                 "name":"\"esc\\aped\" \u00e9","n":[true,false,null,-0.5e+3]} )", &t);
  ASSERT_EQ(ASD_PARSE_OK, ok.st) << ok.rep.message;
  EXPECT_EQ(1u, ok.rep.by_reason[ASD_REJECT_BAD_NUMBER]);
}

#if defined(__SANITIZE_ADDRESS__)
#define ASD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASD_ASAN 1
#endif
#endif

// The memory a result costs is its text plus one feature, not a tree of the
// whole document: in a child process whose address space may grow by only
// 256 MB, a 24 MiB result of [0,0,...] members (which json-c would build
// into about 800 MB) parses.  Address-space limits do not mix with ASan's
// shadow memory, so the sanitizer build skips this test.
TEST(Features, MemoryIsBoundedByOneFeature) {
#ifdef ASD_ASAN
  GTEST_SKIP() << "RLIMIT_AS cannot be used under AddressSanitizer";
#else
  std::string zeros;
  zeros.reserve(24u << 20);
  zeros = "[0";
  while (zeros.size() < (24u << 20)) zeros += ",0,0,0,0,0,0,0,0";
  zeros += "]";
  const std::string doc = R"({"type":"FeatureCollection","bbox":)" + zeros +
                          R"(,"features":[{"type":"Feature","properties":{"imageBBox":[1,1,5,5],"detection_score":0.5,"modelMetadata":{"z":)" +
                          zeros + R"(}}},{"type":"Feature","properties":{"imageBBox":[1,1,5,5],"detection_score":0.5}}]})";
  fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(3);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256u << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(4);
    asd_tile_ref t = Tile(0, 0);
    asd_detections v;
    asd_detections_init(&v);
    asd_parse_report rep;
    asd_parse_status st = asd_features_parse(doc.data(), doc.size(), &t, nullptr, &v, &rep);
    _exit(st == ASD_PARSE_OK && v.count == 1 && rep.by_reason[ASD_REJECT_TOO_LARGE] == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << "the parser died under a 256 MB address-space allowance";
  EXPECT_EQ(0, WEXITSTATUS(status)) << "the parser failed under a 256 MB address-space allowance";
#endif
}

// The feature count comes from the validating scan itself (no second pass over
// the document): it is the number of elements of the array that is then parsed
// (a root array, or the last "features" member, as json-c keeps the last),
// never counting what is nested inside them, and the limit applies to it.
TEST(Features, FeatureCountIsTheElementsOfTheArrayThatIsParsed) {
  asd_tile_ref t = Tile(0, 0);
  const std::string f =
      R"({"type":"Feature","properties":{"imageBBox":[1,1,5,5],"featureClasses":[{"iri":"a","score":0.5}],"n":[[1,2],[3]]}})";
  {
    Parsed p;
    Parse(p, "[" + f + " , " + f + "]", &t);
    ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
    EXPECT_EQ(2u, p.rep.features);
    EXPECT_EQ(2u, p.v.count);
  }
  {
    Parsed p;
    Parse(p, R"({"features":[)" + f + "," + f + "," + f + R"(],"type":"FeatureCollection","features":[)" + f + "]}", &t);
    ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
    EXPECT_EQ(1u, p.rep.features);
    EXPECT_EQ(1u, p.v.count);
  }
  {
    Parsed p;
    Parse(p, R"({"features":[ ],"type":"FeatureCollection"})", &t);
    ASSERT_EQ(ASD_PARSE_OK, p.st) << p.rep.message;
    EXPECT_EQ(0u, p.rep.features);
  }
  {
    asd_parse_options o;
    asd_parse_options_init(&o);
    o.max_features = 1;
    Parsed p;
    Parse(p, "[" + f + "," + f + "]", &t, &o);
    EXPECT_EQ(ASD_PARSE_ERR_TOO_LARGE, p.st);
    EXPECT_NE(nullptr, std::strstr(p.rep.message, "2 features, more than the limit of 1")) << p.rep.message;
  }
}
