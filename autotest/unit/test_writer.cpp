// OGR writer: a GeoPackage that ogrinfo opens with the documented schema,
// values that agree with the georeferencer, GeoJSON with OSML nested
// properties, the tile-status layer, -overwrite / -append rules, batches.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <json-c/json.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_writer.h"

namespace {

std::string tmp(const std::string &name) {
  return testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
}

std::string run(const std::string &cmd, int *status) {
  FILE *p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = p ? pclose(p) : -1;
  if (status) *status = st;
  return out;
}

char *dup(const char *s) { return s ? strdup(s) : nullptr; }

// A box detection, a polygon detection and a point detection.
std::vector<asd_detection> sample_detections() {
  std::vector<asd_detection> v(3);
  for (auto &d : v) memset(&d, 0, sizeof(d));
  asd_detection &a = v[0];
  a.minx = 100, a.miny = 50, a.maxx = 140, a.maxy = 70;
  a.kind = ASD_GEOM_BOX;
  a.class_iri = dup("building");
  a.score = 0.9;
  a.raw_score = 0.95;
  a.classes_json = dup("[{\"iri\":\"building\",\"score\":0.9,\"rawScore\":0.95}]");
  a.model_metadata_json = dup("{\"modelName\":\"blobs\"}");
  a.tile_row = 1, a.tile_col = 2, a.tile_index = 7;
  a.inference_id = dup("inf-\"quoted\"-1");
  a.merged_count = 2;
  asd_detection &b = v[1];
  b.kind = ASD_GEOM_POLYGON;
  b.ring_len = 5;
  b.ring = (asd_point *)malloc(sizeof(asd_point) * 5);
  asd_point ring[5] = {{200, 200}, {260, 200}, {260, 230}, {200, 230}, {200, 200}};
  memcpy(b.ring, ring, sizeof(ring));
  b.minx = 200, b.miny = 200, b.maxx = 260, b.maxy = 230;
  b.class_iri = dup("vehicle");
  b.score = b.raw_score = 0.7;
  b.classes_json = dup("[{\"iri\":\"vehicle\",\"score\":0.7}]");
  asd_detection &c = v[2];
  c.kind = ASD_GEOM_POINT;
  c.ring_len = 1;
  c.ring = (asd_point *)malloc(sizeof(asd_point));
  c.ring[0] = {300.5, 310.25};
  c.minx = c.maxx = 300.5, c.miny = c.maxy = 310.25;
  c.class_iri = dup("vehicle");
  c.score = c.raw_score = 0.5;
  c.classes_json = dup("[{\"iri\":\"vehicle\",\"score\":0.5}]");
  return v;
}

void free_detections(std::vector<asd_detection> &v) {
  for (auto &d : v) asd_detection_clear(&d);
}

GDALDatasetH make_utm_raster() {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "utm", 1000, 1000, 1, GDT_Byte, nullptr);
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32633);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  return ds;
}

asd_tile make_tile(int index, int row, int col, int x, int y, int w, int h) {
  asd_tile t;
  memset(&t, 0, sizeof(t));
  t.index = index, t.row = row, t.col = col, t.x = x, t.y = y, t.w = w, t.h = h;
  return t;
}

void write_sample(const std::string &path, asd_writer_options *o, asd_georef *g) {
  asd_writer *w = asd_writer_open(path.c_str(), o, g);
  ASSERT_NE(nullptr, w) << CPLGetLastErrorMsg();
  auto dets = sample_detections();
  for (auto &d : dets) ASSERT_EQ(0, asd_writer_add_detection(w, &d));
  free_detections(dets);
  asd_tile t0 = make_tile(0, 0, 0, 0, 0, 512, 512), t1 = make_tile(1, 0, 1, 488, 0, 512, 512),
           t2 = make_tile(2, 1, 0, 0, 488, 512, 512);
  t2.skip = ASD_SKIP_NODATA;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t0, ASD_TILE_SUCCEEDED, nullptr, "inf-0", 3));
  ASSERT_EQ(0, asd_writer_add_tile(w, &t1, ASD_TILE_FAILED, "ModelError: boom", "inf-1", -1));
  ASSERT_EQ(0, asd_writer_add_tile(w, &t2, ASD_TILE_SKIPPED, nullptr, nullptr, 0));
  EXPECT_EQ(3, asd_writer_feature_count(w));
  ASSERT_EQ(0, asd_writer_close(w));
}

}  // namespace

TEST(Writer, GpkgOpensWithOgrinfoAndHasTheSchema) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  ASSERT_NE(nullptr, g);
  std::string path = tmp("writer.gpkg");
  VSIUnlink(path.c_str());
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.source_image = "scene.tif";
  write_sample(path, &o, g);

  int st = -1;
  std::string info = run("ogrinfo -ro -so -al '" + path + "'", &st);
  ASSERT_EQ(0, st) << info;
  for (const char *want :
       {"Layer name: detections", "Layer name: tiles", "Feature Count: 3", "EPSG\",4326", "class: String",
        "score: Real", "raw_score: Real", "classes: String(JSON)", "image_minx: Real", "image_maxy: Real",
        "image_geometry: String", "center_lon: Real", "center_lat: Real", "tile_row: Integer",
        "tile_col: Integer", "inference_id: String", "source_image: String", "model_metadata: String(JSON)",
        "merged_count: Integer", "status: String", "reason: String", "feature_count: Integer64",
        "tile_index: Integer", "width: Integer"})
    EXPECT_NE(std::string::npos, info.find(want)) << "missing '" << want << "' in:\n" << info;
  // No nested OSML fields in a GeoPackage by default.
  EXPECT_EQ(std::string::npos, info.find("imageBBox"));

  // Values.
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH det = GDALDatasetGetLayerByName(ds, "detections");
  ASSERT_NE(nullptr, det);
  OGRFeatureH f = OGR_L_GetNextFeature(det);
  ASSERT_NE(nullptr, f);
  EXPECT_STREQ("building", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "class")));
  EXPECT_DOUBLE_EQ(0.9, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "score")));
  EXPECT_DOUBLE_EQ(0.95, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "raw_score")));
  EXPECT_EQ(1, OGR_F_GetFieldAsInteger(f, OGR_F_GetFieldIndex(f, "tile_row")));
  EXPECT_EQ(2, OGR_F_GetFieldAsInteger(f, OGR_F_GetFieldIndex(f, "tile_col")));
  EXPECT_EQ(2, OGR_F_GetFieldAsInteger(f, OGR_F_GetFieldIndex(f, "merged_count")));
  EXPECT_STREQ("inf-\"quoted\"-1", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "inference_id")));
  EXPECT_STREQ("scene.tif", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "source_image")));
  EXPECT_STREQ("{\"modelName\":\"blobs\"}", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "model_metadata")));
  EXPECT_STREQ("POLYGON ((100 50,100 70,140 70,140 50,100 50))",
               OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "image_geometry")));
  EXPECT_DOUBLE_EQ(140, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "image_maxx")));
  double cx = 120, cy = 60;
  ASSERT_EQ(0, asd_georef_transform(g, 1, &cx, &cy));
  EXPECT_DOUBLE_EQ(cx, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "center_lon")));
  EXPECT_DOUBLE_EQ(cy, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "center_lat")));
  // The geometry is the georeferenced box, densified (UTM -> lon/lat), and contains the centre.
  OGRGeometryH geom = OGR_F_GetGeometryRef(f);
  ASSERT_NE(nullptr, geom);
  EXPECT_EQ(wkbPolygon, wkbFlatten(OGR_G_GetGeometryType(geom)));
  EXPECT_GT(OGR_G_GetPointCount(OGR_G_GetGeometryRef(geom, 0)), 5);
  OGRGeometryH c = OGR_G_CreateGeometry(wkbPoint);
  OGR_G_AddPoint_2D(c, cx, cy);
  EXPECT_TRUE(OGR_G_Contains(geom, c));
  OGR_G_DestroyGeometry(c);
  OGR_F_Destroy(f);
  f = OGR_L_GetNextFeature(det);
  OGR_F_Destroy(f);
  f = OGR_L_GetNextFeature(det);  // the point
  ASSERT_NE(nullptr, f);
  EXPECT_EQ(wkbPoint, wkbFlatten(OGR_G_GetGeometryType(OGR_F_GetGeometryRef(f))));
  EXPECT_STREQ("POINT (300.5 310.25)", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "image_geometry")));
  OGR_F_Destroy(f);

  OGRLayerH tiles = GDALDatasetGetLayerByName(ds, "tiles");
  ASSERT_NE(nullptr, tiles);
  EXPECT_EQ(3, OGR_L_GetFeatureCount(tiles, TRUE));
  std::vector<std::string> status, reason;
  while ((f = OGR_L_GetNextFeature(tiles)) != nullptr) {
    status.push_back(OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "status")));
    reason.push_back(OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "reason")));
    OGR_F_Destroy(f);
  }
  EXPECT_EQ((std::vector<std::string>{"succeeded", "failed", "skipped"}), status);
  EXPECT_EQ((std::vector<std::string>{"", "ModelError: boom", "nodata"}), reason);
  GDALClose(ds);

  // An existing output is not replaced silently.
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_writer_open(path.c_str(), &o, g));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("-overwrite or -append"));
  CPLPopErrorHandler();

  // -append doubles the rows; -overwrite starts again.
  o.append = 1;
  write_sample(path, &o, g);
  ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  EXPECT_EQ(6, OGR_L_GetFeatureCount(GDALDatasetGetLayerByName(ds, "detections"), TRUE));
  EXPECT_EQ(6, OGR_L_GetFeatureCount(GDALDatasetGetLayerByName(ds, "tiles"), TRUE));
  GDALClose(ds);
  o.append = 0;
  o.overwrite = 1;
  write_sample(path, &o, g);
  ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  EXPECT_EQ(3, OGR_L_GetFeatureCount(GDALDatasetGetLayerByName(ds, "detections"), TRUE));
  GDALClose(ds);

  asd_georef_free(g);
  GDALClose(src);
  VSIUnlink(path.c_str());
}

TEST(Writer, LayerNameAndSmallBatches) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  std::string path = tmp("writer_batches.gpkg");
  VSIUnlink(path.c_str());
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.layer_name = "ships";
  o.batch_size = 2;
  o.lco = CSLSetNameValue(nullptr, "FID", "fid");
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  ASSERT_NE(nullptr, w);
  auto dets = sample_detections();
  for (int k = 0; k < 5; k++)
    for (auto &d : dets) ASSERT_EQ(0, asd_writer_add_detection(w, &d));
  free_detections(dets);
  ASSERT_EQ(0, asd_writer_close(w));
  CSLDestroy(o.lco);
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  EXPECT_EQ(15, OGR_L_GetFeatureCount(GDALDatasetGetLayerByName(ds, "ships"), TRUE));
  EXPECT_NE(nullptr, GDALDatasetGetLayerByName(ds, "ships_tiles"));
  GDALClose(ds);
  asd_georef_free(g);
  GDALClose(src);
  VSIUnlink(path.c_str());
}

TEST(Writer, GeoJsonHasOsmlNestedProperties) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  std::string path = tmp("writer.geojson");
  std::string tiles_path = tmp("writer_tiles.geojson");
  VSIUnlink(path.c_str());
  VSIUnlink(tiles_path.c_str());
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.source_image = "/data/scene.tif";
  o.tiles_path = tiles_path.c_str();
  write_sample(path, &o, g);

  json_object *doc = json_object_from_file(path.c_str());
  ASSERT_NE(nullptr, doc);
  json_object *features = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(doc, "features", &features));
  ASSERT_EQ(3u, json_object_array_length(features));
  json_object *props = nullptr, *v = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(features, 0), "properties", &props));
  // imageBBox: a real array.
  ASSERT_TRUE(json_object_object_get_ex(props, "imageBBox", &v));
  ASSERT_TRUE(json_object_is_type(v, json_type_array));
  ASSERT_EQ(4u, json_object_array_length(v));
  EXPECT_EQ(100, json_object_get_double(json_object_array_get_idx(v, 0)));
  EXPECT_EQ(70, json_object_get_double(json_object_array_get_idx(v, 3)));
  // imageGeometry: a GeoJSON polygon in image pixels.
  ASSERT_TRUE(json_object_object_get_ex(props, "imageGeometry", &v));
  ASSERT_TRUE(json_object_is_type(v, json_type_object));
  json_object *type = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(v, "type", &type));
  EXPECT_STREQ("Polygon", json_object_get_string(type));
  // featureClasses with iri / score / rawScore.
  ASSERT_TRUE(json_object_object_get_ex(props, "featureClasses", &v));
  ASSERT_TRUE(json_object_is_type(v, json_type_array));
  json_object *fc0 = json_object_array_get_idx(v, 0), *iri = nullptr, *raw = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(fc0, "iri", &iri));
  EXPECT_STREQ("building", json_object_get_string(iri));
  ASSERT_TRUE(json_object_object_get_ex(fc0, "rawScore", &raw));
  EXPECT_DOUBLE_EQ(0.95, json_object_get_double(raw));
  ASSERT_TRUE(json_object_object_get_ex(props, "modelMetadata", &v));
  ASSERT_TRUE(json_object_is_type(v, json_type_object));
  ASSERT_TRUE(json_object_object_get_ex(props, "center_longitude", &v));
  double cx = 120, cy = 60;
  asd_georef_transform(g, 1, &cx, &cy);
  EXPECT_NEAR(cx, json_object_get_double(v), 1e-12);
  ASSERT_TRUE(json_object_object_get_ex(props, "center_latitude", &v));
  EXPECT_NEAR(cy, json_object_get_double(v), 1e-12);
  ASSERT_TRUE(json_object_object_get_ex(props, "inferenceMetadata", &v));
  json_object *job = nullptr, *dt = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(v, "jobId", &job));
  EXPECT_STREQ("inf-\"quoted\"-1", json_object_get_string(job));
  ASSERT_TRUE(json_object_object_get_ex(v, "inferenceDT", &dt));
  EXPECT_EQ(20u, strlen(json_object_get_string(dt)));
  ASSERT_TRUE(json_object_object_get_ex(props, "sourceMetadata", &v));
  ASSERT_TRUE(json_object_is_type(v, json_type_array));
  json_object *loc = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(v, 0), "location", &loc));
  EXPECT_STREQ("/data/scene.tif", json_object_get_string(loc));
  // Flat fields are there too.
  ASSERT_TRUE(json_object_object_get_ex(props, "class", &v));
  EXPECT_STREQ("building", json_object_get_string(v));
  // The geometry is lon/lat.
  json_object *geom = nullptr, *coords = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(features, 0), "geometry", &geom));
  ASSERT_TRUE(json_object_object_get_ex(geom, "coordinates", &coords));
  json_object *p0 = json_object_array_get_idx(json_object_array_get_idx(coords, 0), 0);
  EXPECT_NEAR(14.29, json_object_get_double(json_object_array_get_idx(p0, 0)), 0.01);
  EXPECT_NEAR(48.85, json_object_get_double(json_object_array_get_idx(p0, 1)), 0.01);
  json_object_put(doc);

  // The tile layer went to its own file.
  json_object *tdoc = json_object_from_file(tiles_path.c_str());
  ASSERT_NE(nullptr, tdoc);
  ASSERT_TRUE(json_object_object_get_ex(tdoc, "features", &features));
  EXPECT_EQ(3u, json_object_array_length(features));
  json_object_put(tdoc);

  // Without tiles_path, a GeoJSON output warns that the tile layer is not written.
  VSIUnlink(tiles_path.c_str());
  o.tiles_path = nullptr;
  o.overwrite = 1;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  EXPECT_EQ(CE_Warning, CPLGetLastErrorType());
  CPLPopErrorHandler();
  ASSERT_NE(nullptr, w);
  asd_tile t = make_tile(0, 0, 0, 0, 0, 10, 10);
  EXPECT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_SUCCEEDED, nullptr, nullptr, 0));
  EXPECT_EQ(0, asd_writer_close(w));
  asd_georef_free(g);
  GDALClose(src);
  VSIUnlink(path.c_str());
}

TEST(Writer, PixelSpaceOutputHasLocalSrs) {
  std::string path = tmp("writer_pixel.gpkg");
  VSIUnlink(path.c_str());
  asd_writer_options o;
  asd_writer_options_init(&o);
  write_sample(path, &o, nullptr);
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH det = GDALDatasetGetLayerByName(ds, "detections");
  // A local (engineering) SRS: neither degrees nor a map projection.
  OGRSpatialReferenceH srs = OGR_L_GetSpatialRef(det);
  ASSERT_NE(nullptr, srs);
  EXPECT_TRUE(OSRIsLocal(srs));
  EXPECT_FALSE(OSRIsGeographic(srs));
  OGRFeatureH f = OGR_L_GetNextFeature(det);
  OGREnvelope env;
  OGR_G_GetEnvelope(OGR_F_GetGeometryRef(f), &env);
  EXPECT_EQ(100, env.MinX);
  EXPECT_EQ(140, env.MaxX);
  EXPECT_EQ(120, OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "center_lon")));
  OGR_F_Destroy(f);
  GDALClose(ds);
  VSIUnlink(path.c_str());
}

TEST(Writer, BadArguments) {
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.format = "NoSuchDriver";
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_writer_open(tmp("x.gpkg").c_str(), &o, nullptr));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("NoSuchDriver"));
  o.format = nullptr;
  o.overwrite = o.append = 1;
  EXPECT_EQ(nullptr, asd_writer_open(tmp("x.gpkg").c_str(), &o, nullptr));
  o.overwrite = o.append = 0;
  EXPECT_EQ(nullptr, asd_writer_open("/nonexistent-dir/sub/out.gpkg", &o, nullptr));
  CPLPopErrorHandler();
  EXPECT_STREQ("failed", asd_tile_state_name(ASD_TILE_FAILED));
}

// ---- Batches with the journal in the same GeoPackage connection.

#include "asyncdetect/asd_journal.h"

namespace {

// Features of a layer as another process would see them: a second,
// read-only connection sees committed rows only.
long long committed_count(const std::string &path, const char *layer) {
  const char *const drv[] = {"GPKG", nullptr};
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR | GDAL_OF_READONLY, drv, nullptr, nullptr);
  if (!ds) return -1;
  OGRLayerH l = GDALDatasetGetLayerByName(ds, layer);
  long long n = l ? OGR_L_GetFeatureCount(l, TRUE) : -1;
  GDALClose(ds);
  return n;
}

TEST(Writer, JournalSharesTheConnectionAndCommitsTheBatch) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  ASSERT_NE(nullptr, g);
  std::string path = tmp("writer_shared.gpkg");
  VSIUnlink(path.c_str());
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.batch_size = 1000;
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  ASSERT_NE(nullptr, w) << CPLGetLastErrorMsg();
  asd_journal *j = asd_journal_open_dataset(asd_writer_dataset(w), 1);
  ASSERT_NE(nullptr, j);
  char *meta[] = {(char *)"source=x", nullptr};
  ASSERT_EQ(0, asd_journal_bind(j, meta, nullptr));
  auto dets = sample_detections();
  // GDAL creates the table with its first row: commit that one.
  ASSERT_EQ(0, asd_writer_add_detection(w, &dets[0]));
  ASSERT_EQ(0, asd_writer_commit(w));
  EXPECT_EQ(1, committed_count(path, "detections"));

  for (auto &d : dets) ASSERT_EQ(0, asd_writer_add_detection(w, &d));
  // In the batch, not yet in the file: batching works.
  EXPECT_EQ(1, committed_count(path, "detections"));
  // A journal state change joins the open transaction; the commit makes
  // both visible together.
  ASSERT_EQ(0, asd_journal_succeeded(j, 0, "{\"type\":\"FeatureCollection\",\"features\":[]}"));
  EXPECT_EQ(0, committed_count(path, "asd_journal"));
  ASSERT_EQ(0, asd_writer_commit(w));
  EXPECT_EQ(4, committed_count(path, "detections"));
  EXPECT_EQ(1, committed_count(path, "asd_journal"));
  // The journal reads its own rows through the shared connection.
  asd_journal_entry *e = asd_journal_get(j, 0);
  ASSERT_NE(nullptr, e);
  EXPECT_EQ(ASD_JOURNAL_SUCCEEDED, e->state);
  asd_journal_entry_free(e);
  char *res = asd_journal_result(j, 0);
  ASSERT_NE(nullptr, res);
  CPLFree(res);

  for (auto &d : dets) ASSERT_EQ(0, asd_writer_add_detection(w, &d));
  EXPECT_EQ(4, committed_count(path, "detections"));
  free_detections(dets);
  asd_journal_close(j);
  ASSERT_EQ(0, asd_writer_close(w));
  EXPECT_EQ(7, committed_count(path, "detections"));
  asd_georef_free(g);
  GDALClose(src);
  VSIUnlink(path.c_str());
}

TEST(Writer, OneLayerFormatsPutTheTileLayerInASiblingFile) {
  char *p = asd_writer_tiles_sidecar_path("/d/ships.geojson");
  EXPECT_STREQ("/d/ships_tiles.geojson", p);
  CPLFree(p);
  p = asd_writer_tiles_sidecar_path("/d/ships");
  EXPECT_STREQ("/d/ships_tiles", p);
  CPLFree(p);

  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  for (const char *ext : {"geojson", "csv", "shp", "fgb", "geojsonl"}) {
    std::string dir = tmp(std::string("sib_") + ext);
    VSIMkdir(dir.c_str(), 0755);
    std::string out = dir + "/out." + ext;
    char *side = asd_writer_tiles_sidecar_path(out.c_str());
    asd_writer_options o;
    asd_writer_options_init(&o);
    o.tiles_fallback_path = side;
    write_sample(out, &o, g);
    GDALDatasetH ds = GDALOpenEx(side, GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
    ASSERT_NE(nullptr, ds) << ext << ": no " << side;
    EXPECT_EQ(3, OGR_L_GetFeatureCount(GDALDatasetGetLayer(ds, 0), TRUE)) << ext;
    GDALClose(ds);
    ds = GDALOpenEx(out.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
    ASSERT_NE(nullptr, ds) << ext;
    EXPECT_EQ(1, GDALDatasetGetLayerCount(ds)) << ext;
    EXPECT_EQ(3, OGR_L_GetFeatureCount(GDALDatasetGetLayer(ds, 0), TRUE)) << ext << ": the tiles stay out";
    GDALClose(ds);
    // Nothing named after the layer next to it (tiles.shp, tiles.csv).
    VSIStatBufL st;
    EXPECT_NE(0, VSIStatL((dir + "/tiles." + ext).c_str(), &st)) << ext;
    CPLFree(side);
    std::string cmd = "rm -rf '" + dir + "'";
    ASSERT_EQ(0, std::system(cmd.c_str()));
  }
  asd_georef_free(g);
  GDALClose(src);
}

}  // namespace

// A geostationary full disk whose corners look past the Earth: detections
// and tile footprints there are never lost silently.  Over the edge they are
// trimmed to the georeferenced part; wholly in space they keep their image
// fields, get no geometry, georef = "none", and are counted, per tile too.
TEST(Writer, OutsideTheTransformsDomainIsTrimmedOrCounted) {
  GDALAllRegister();
  GDALDatasetH src = GDALCreate(GDALGetDriverByName("MEM"), "geos", 1000, 1000, 1, GDT_Byte, nullptr);
  double gt[6] = {-5.6e6, 11200, 0, 5.6e6, 0, -11200};
  GDALSetGeoTransform(src, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRSetFromUserInput(srs, "+proj=geos +h=35785831 +lon_0=0 +datum=WGS84 +units=m +no_defs");
  GDALSetSpatialRef(src, srs);
  OSRDestroySpatialReference(srs);
  asd_georef *g = asd_georef_new(src, nullptr);
  ASSERT_NE(nullptr, g);
  std::string path = tmp("geos.gpkg");
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.source_image = "geos";
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  ASSERT_NE(nullptr, w);
  std::vector<asd_detection> v(3);
  const double boxes[3][4] = {{490, 490, 510, 510}, {10, 10, 30, 30}, {140, 140, 180, 180}};
  for (int i = 0; i < 3; i++) {
    memset(&v[i], 0, sizeof(asd_detection));
    v[i].kind = ASD_GEOM_BOX;
    v[i].minx = boxes[i][0], v[i].miny = boxes[i][1], v[i].maxx = boxes[i][2], v[i].maxy = boxes[i][3];
    v[i].tile_row = i, v[i].tile_col = 0;
    ASSERT_EQ(0, asd_writer_add_detection(w, &v[i]));
  }
  asd_tile t[3];
  memset(t, 0, sizeof t);
  const int origins[3][2] = {{448, 448}, {0, 0}, {100, 100}};
  for (int i = 0; i < 3; i++) {
    t[i].index = i, t[i].row = i, t[i].col = 0, t[i].x = origins[i][0], t[i].y = origins[i][1], t[i].w = 100,
    t[i].h = 100;
    ASSERT_EQ(0, asd_writer_add_tile(w, &t[i], ASD_TILE_SUCCEEDED, nullptr, nullptr, 1));
  }
  asd_writer_georef_counts c;
  asd_writer_get_georef_counts(w, &c);
  EXPECT_EQ(1, c.detections_failed);
  EXPECT_EQ(1, c.detections_trimmed);
  EXPECT_EQ(1, c.tiles_failed);
  EXPECT_EQ(1, c.tiles_trimmed);
  std::string warning;
  CPLPushErrorHandlerEx(
      [](CPLErr cls, CPLErrorNum, const char *msg) {
        if (cls == CE_Warning) *static_cast<std::string *>(CPLGetErrorHandlerUserData()) += msg;
      },
      &warning);
  ASSERT_EQ(0, asd_writer_close(w));
  CPLPopErrorHandler();
  EXPECT_NE(std::string::npos, warning.find("1 detection(s) and 1 tile footprint(s) not georeferenced")) << warning;
  EXPECT_NE(std::string::npos, warning.find("1 detection(s) and 1 footprint(s) trimmed")) << warning;

  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH det = GDALDatasetGetLayerByName(ds, "detections");
  const char *want[3] = {"ok", "none", "trimmed"};
  for (int i = 0; i < 3; i++) {
    OGRFeatureH f = OGR_L_GetFeature(det, i + 1);
    ASSERT_NE(nullptr, f);
    EXPECT_STREQ(want[i], OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "georef")));
    EXPECT_EQ(i == 1, OGR_F_GetGeometryRef(f) == nullptr);
    EXPECT_DOUBLE_EQ(boxes[i][0], OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "image_minx")));
    EXPECT_STRNE("", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "image_geometry")));
    // A trimmed box whose own centre is in space is centred on its georeferenced part.
    EXPECT_EQ(i != 1, OGR_F_IsFieldSetAndNotNull(f, OGR_F_GetFieldIndex(f, "center_lon")) != 0);
    OGR_F_Destroy(f);
  }
  OGRLayerH tiles = GDALDatasetGetLayerByName(ds, "tiles");
  for (int i = 0; i < 3; i++) {
    OGRFeatureH f = OGR_L_GetFeature(tiles, i + 1);
    ASSERT_NE(nullptr, f);
    EXPECT_STREQ(want[i], OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "georef")));
    EXPECT_EQ(i == 1 ? 1 : 0, OGR_F_GetFieldAsInteger64(f, OGR_F_GetFieldIndex(f, "not_georeferenced")));
    OGR_F_Destroy(f);
  }
  GDALClose(ds);
  VSIUnlink(path.c_str());
  asd_georef_free(g);
  GDALClose(src);
}
