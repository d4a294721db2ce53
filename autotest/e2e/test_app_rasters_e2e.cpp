// End-to-end tests of gdal_asyncdetect on real-world kinds of rasters (issue
// 16), against the real local endpoint with the blobs model:
//   - non-Byte imagery gets a dynamic-range adjustment by default: the 11-bit
//     UInt16 sample and a Float32 reflectance image generated here are
//     detected as well as the 8-bit scene, with no option;
//   - the summary and the metrics say which adjustment was applied, and
//     -scale-mode reaches the encoder;
//   - GCPs next to a default geotransform georeference the detections
//     (recall against the ground truth), and the summary names the method;
//   - an image whose corners are off the Earth (geostationary): no
//     detection lost, shapes trimmed or counted, said in the summary, the
//     metrics, the tile layer and a warning;
//   - a damaged tiled GeoTIFF: unreadable tiles fail with GDAL's reason,
//     exit 2 whatever the timing, no -resume advice for them, one line with
//     -q; an input with no readable tile is exit 1.
#include <gtest/gtest.h>

#include <json-c/json.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include "e2e_helpers.h"

using asd_e2e::Accuracy;
using asd_e2e::accuracy;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::RunResult;
using asd_e2e::sample;
using asd_e2e::TempDir;

namespace {

class E2eRasters : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

// scene_utm.tif's pixels as Float32 surface reflectance: v * 0.0012 + 0.003
// (0.003 .. 0.309), tiled, same georeferencing.  Clamped to 0..255 these
// would all be 0: the run only finds the objects if it adjusts the range.
std::string make_reflectance(const std::string &dir) {
  std::string path = dir + "/reflectance.tif";
  GDALDatasetH src = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  EXPECT_NE(nullptr, src);
  if (!src) return path;
  const int w = GDALGetRasterXSize(src), h = GDALGetRasterYSize(src);
  char **co = CSLSetNameValue(nullptr, "TILED", "YES");
  co = CSLSetNameValue(co, "COMPRESS", "DEFLATE");
  GDALDatasetH dst = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), w, h, 3, GDT_Float32, co);
  CSLDestroy(co);
  double gt[6];
  GDALGetGeoTransform(src, gt);
  GDALSetGeoTransform(dst, gt);
  GDALSetProjection(dst, GDALGetProjectionRef(src));
  std::vector<float> buf((size_t)w * h);
  for (int b = 1; b <= 3; b++) {
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(src, b), GF_Read, 0, 0, w, h, buf.data(), w, h,
                                    GDT_Float32, 0, 0));
    for (float &v : buf) v = v * 0.0012f + 0.003f;
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(dst, b), GF_Write, 0, 0, w, h, buf.data(), w, h,
                                    GDT_Float32, 0, 0));
  }
  GDALClose(dst);
  GDALClose(src);
  return path;
}

json_object *metrics_get(json_object *m, const std::vector<std::string> &path) {
  json_object *v = m;
  for (const auto &k : path)
    if (!v || !json_object_object_get_ex(v, k.c_str(), &v)) return nullptr;
  return v;
}

// A copy of path whose geotransform is the default one and whose
// georeferencing is 25 GCPs (pixel -> lon/lat through the real geotransform
// and PROJ): the case where GDAL's own default would use the geotransform.
std::string make_gcp_vrt(const std::string &dir) {
  std::string vrt = dir + "/gcps.vrt";
  GDALDatasetH src = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  GDALDatasetH ds = GDALCreateCopy(GDALGetDriverByName("VRT"), vrt.c_str(), src, FALSE, nullptr, nullptr, nullptr);
  double gt[6];
  GDALGetGeoTransform(src, gt);
  OGRSpatialReferenceH utm = OSRNewSpatialReference(GDALGetProjectionRef(src));
  OGRSpatialReferenceH wgs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(wgs, 4326);
  OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
  OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
  OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(utm, wgs);
  std::vector<GDAL_GCP> gcps;
  std::vector<std::string> ids;
  for (int k = 0; k < 25; k++) ids.push_back("g" + std::to_string(k));
  for (int j = 0; j < 5; j++)
    for (int i = 0; i < 5; i++) {
      GDAL_GCP g;
      g.pszId = const_cast<char *>(ids[j * 5 + i].c_str());
      g.pszInfo = const_cast<char *>("");
      g.dfGCPPixel = 3000.0 * i / 4;
      g.dfGCPLine = 2000.0 * j / 4;
      double x = gt[0] + g.dfGCPPixel * gt[1], y = gt[3] + g.dfGCPLine * gt[5];
      OCTTransform(ct, 1, &x, &y, nullptr);
      g.dfGCPX = x, g.dfGCPY = y, g.dfGCPZ = 0;
      gcps.push_back(g);
    }
  EXPECT_EQ(CE_None, GDALSetGCPs2(ds, (int)gcps.size(), gcps.data(), wgs));
  double identity[6] = {0, 1, 0, 0, 0, 1};
  EXPECT_EQ(CE_None, GDALSetGeoTransform(ds, identity));
  OCTDestroyCoordinateTransformation(ct);
  OSRDestroySpatialReference(utm);
  OSRDestroySpatialReference(wgs);
  GDALClose(ds);
  GDALClose(src);
  return vrt;
}

// scene_utm.tif's pixels in a geostationary projection, 3.4 km pixels
// centred on the disk: the four corners (6,100 km from the centre) look
// past the Earth (its edge is at ~5,430 km), the middle is on it.
std::string make_geos(const std::string &dir) {
  std::string path = dir + "/geos.vrt";
  GDALDatasetH src = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  GDALDatasetH ds = GDALCreateCopy(GDALGetDriverByName("VRT"), path.c_str(), src, FALSE, nullptr, nullptr, nullptr);
  double gt[6] = {-1500 * 3400.0, 3400, 0, 1000 * 3400.0, 0, -3400};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRSetFromUserInput(srs, "+proj=geos +h=35785831 +lon_0=0 +datum=WGS84 +units=m +no_defs");
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  GDALClose(ds);
  GDALClose(src);
  return path;
}

// scene_utm.tif as a COG (IFD first, 256 x 256 DEFLATE tiles), cut to
// keep_fraction of its size: the first tiles read, the later ones do not.
std::string make_truncated(const std::string &dir, double keep_fraction) {
  std::string path = dir + "/damaged.tif";
  GDALDatasetH src = GDALOpen(sample("scene_utm.tif").c_str(), GA_ReadOnly);
  char **co = CSLSetNameValue(nullptr, "COMPRESS", "DEFLATE");
  co = CSLSetNameValue(co, "BLOCKSIZE", "256");
  co = CSLSetNameValue(co, "OVERVIEWS", "NONE");
  GDALDatasetH ds = GDALCreateCopy(GDALGetDriverByName("COG"), path.c_str(), src, FALSE, co, nullptr, nullptr);
  CSLDestroy(co);
  GDALClose(ds);
  GDALClose(src);
  struct stat st;
  EXPECT_EQ(0, stat(path.c_str(), &st));
  EXPECT_EQ(0, truncate(path.c_str(), (off_t)(st.st_size * keep_fraction)));
  return path;
}

}  // namespace

// The 11-bit UInt16 sample, no option: as good as the 8-bit scene.
TEST_F(E2eRasters, UInt16DetectedWithoutOptions) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  RunResult r = asd_e2e::run_app(app_args(sample("scene_u16.tif"), out, {"-tile-size", "512", "-overlap", "64"}),
                                 dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out);
  ASSERT_TRUE(a.error.empty()) << a.error;
  std::printf("scene_u16.tif, no option: %s\n", a.score.describe().c_str());
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  EXPECT_EQ(a.score.truth, a.score.class_ok) << a.score.describe();
}

// Float32 reflectance generated here, no option.
TEST_F(E2eRasters, Float32ReflectanceDetectedWithoutOptions) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string src = make_reflectance(dir.path());
  std::string out = dir.path() + "/out.gpkg";
  RunResult r = asd_e2e::run_app(app_args(src, out, {"-tile-size", "512", "-overlap", "64"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out);
  ASSERT_TRUE(a.error.empty()) << a.error;
  std::printf("Float32 reflectance, no option: %s\n", a.score.describe().c_str());
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  EXPECT_EQ(a.score.truth, a.score.class_ok) << a.score.describe();
}

// The default is said, -scale-mode reaches the encoder, and -scale-mode none
// shows what the default fixes: the 11-bit image clamped is white.
TEST_F(E2eRasters, ScaleModeAndSummary) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg", metrics = dir.path() + "/m.json";
  std::vector<std::string> args = app_args(sample("scene_u16.tif"), out, {"-tile-size", "1024", "-overlap", "128",
                                                                          "-metrics", metrics});
  args.erase(std::find(args.begin(), args.end(), "-q"));
  RunResult r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("Pixels: UInt16 -> Byte by dra 2..98 %, the default (band 1 ")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("Georeferencing: GEOTRANSFORM -> EPSG:4326")) << r.out;
  json_object *m = json_object_from_file(metrics.c_str());
  ASSERT_NE(nullptr, m);
  EXPECT_STREQ("dra", json_object_get_string(metrics_get(m, {"pixels", "mode"})));
  EXPECT_EQ(3u, json_object_array_length(metrics_get(m, {"pixels", "bands"})));
  EXPECT_STREQ("GEOTRANSFORM", json_object_get_string(metrics_get(m, {"georeferencing", "method"})));
  json_object_put(m);

  std::string out2 = dir.path() + "/none.gpkg";
  r = asd_e2e::run_app(app_args(sample("scene_u16.tif"), out2, {"-tile-size", "1024", "-overlap", "128",
                                                                 "-scale-mode", "none"}),
                       dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out2);
  EXPECT_LT(a.score.recall(), 0.5) << "clamped 11-bit pixels should be useless: " << a.score.describe();

  std::string out3 = dir.path() + "/pct.gpkg";
  r = asd_e2e::run_app(app_args(sample("scene_u16.tif"), out3, {"-scale-mode", "percentile:1:99.9"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  // A bad value and a combination are usage errors with one line.
  r = asd_e2e::run_app(app_args(sample("scene_u16.tif"), dir.path() + "/x.gpkg", {"-scale-mode", "gamma"}),
                       dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("-scale-mode gamma")) << r.err;
  r = asd_e2e::run_app(
      app_args(sample("scene_u16.tif"), dir.path() + "/x.gpkg", {"-scale", "-scale-mode", "minmax"}), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("cannot be combined")) << r.err;
}

// GCPs and a default geotransform: the detections land where the GCPs say.
TEST_F(E2eRasters, GcpsBeatTheDefaultGeotransform) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string src = make_gcp_vrt(dir.path());
  std::string out = dir.path() + "/out.gpkg", metrics = dir.path() + "/m.json";
  std::vector<std::string> args = app_args(src, out, {"-tile-size", "1024", "-overlap", "128", "-metrics", metrics});
  args.erase(std::find(args.begin(), args.end(), "-q"));
  RunResult r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_NE(std::string::npos,
            r.out.find("Georeferencing: GCP_POLYNOMIAL -> EPSG:4326 (25 GCPs; the default geotransform next to them "
                       "ignored)"))
      << r.out;
  Accuracy a = accuracy(out);
  std::printf("GCPs + default geotransform: %s\n", a.score.describe().c_str());
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  json_object *m = json_object_from_file(metrics.c_str());
  EXPECT_STREQ("GCP_POLYNOMIAL", json_object_get_string(metrics_get(m, {"georeferencing", "method"})));
  json_object_put(m);
}

// Corners off the Earth: every detection is written, those in space without
// a geometry (image fields kept), and every place that reports says so.
TEST_F(E2eRasters, GeostationaryCornersAreCountedNotLost) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string src = make_geos(dir.path());
  std::string out = dir.path() + "/out.gpkg", metrics = dir.path() + "/m.json";
  std::vector<std::string> args = app_args(src, out, {"-tile-size", "512", "-overlap", "64", "-metrics", metrics});
  args.erase(std::find(args.begin(), args.end(), "-q"));
  RunResult r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("Not georeferenced: ")) << r.out;
  EXPECT_NE(std::string::npos, r.err.find("not georeferenced")) << "a warning line: " << r.err;
  json_object *m = json_object_from_file(metrics.c_str());
  ASSERT_NE(nullptr, m);
  json_object *ng = metrics_get(m, {"georeferencing", "not_georeferenced"});
  ASSERT_NE(nullptr, ng);
  long long tiles_none = json_object_get_int64(metrics_get(ng, {"tiles"}));
  long long tiles_trimmed = json_object_get_int64(metrics_get(ng, {"tiles_trimmed"}));
  long long det_none = json_object_get_int64(metrics_get(ng, {"detections"}));
  EXPECT_GT(tiles_trimmed, 0);
  json_object_put(m);
  // All 91 objects are in the output; the tile layer agrees with the metrics.
  GDALDatasetH ds = GDALOpenEx(out.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH det = GDALDatasetGetLayerByName(ds, "detections");
  EXPECT_EQ(91, OGR_L_GetFeatureCount(det, TRUE));
  long long null_geom = 0;
  OGRFeatureH f;
  while ((f = OGR_L_GetNextFeature(det)) != nullptr) {
    if (!OGR_F_GetGeometryRef(f)) {
      null_geom++;
      EXPECT_STREQ("none", OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "georef")));
      EXPECT_GT(OGR_F_GetFieldAsDouble(f, OGR_F_GetFieldIndex(f, "image_maxx")), 0);
    }
    OGR_F_Destroy(f);
  }
  EXPECT_EQ(det_none, null_geom);
  OGRLayerH tiles = GDALDatasetGetLayerByName(ds, "tiles");
  long long trimmed = 0, none = 0, ungeo = 0;
  while ((f = OGR_L_GetNextFeature(tiles)) != nullptr) {
    std::string g = OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "georef"));
    trimmed += g == "trimmed";
    none += g == "none";
    ungeo += OGR_F_GetFieldAsInteger64(f, OGR_F_GetFieldIndex(f, "not_georeferenced"));
    OGR_F_Destroy(f);
  }
  EXPECT_EQ(tiles_trimmed, trimmed);
  EXPECT_EQ(tiles_none, none);
  EXPECT_EQ(det_none, ungeo);
  GDALClose(ds);
}

// A damaged file: the tiles that cannot be read fail with GDAL's reason,
// the run goes on (exit 2), -resume is not advised for them, -q still says
// why the exit status is not 0.  Run twice: the outcome does not depend on
// which tile comes back first.
TEST_F(E2eRasters, DamagedTiffFailsTheUnreadableTilesOnly) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string src = make_truncated(dir.path(), 0.6);
  {
    // The premise: the first tile reads, a later one does not.
    GDALDatasetH ds = GDALOpen(src.c_str(), GA_ReadOnly);
    ASSERT_NE(nullptr, ds);
    std::vector<unsigned char> buf(256 * 256);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, 256, 256, buf.data(), 256, 256,
                                    GDT_Byte, 0, 0));
    EXPECT_NE(CE_None, GDALRasterIO(GDALGetRasterBand(ds, 3), GF_Read, 2560, 1536, 256, 256, buf.data(), 256, 256,
                                    GDT_Byte, 0, 0));
    CPLPopErrorHandler();
    GDALClose(ds);
  }
  for (int round = 0; round < 2; round++) {
    std::string out = dir.path() + "/out" + std::to_string(round) + ".gpkg", metrics = dir.path() + "/m.json";
    RunResult r = asd_e2e::run_app(app_args(src, out, {"-tile-size", "512", "-overlap", "64", "-metrics", metrics,
                                                       "-encoder-threads", round ? "1" : "4"}),
                                   dir.path());
    ASSERT_EQ(2, r.status) << r.err;
    EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
    EXPECT_NE(std::string::npos, r.err.find("could not be read from the input")) << r.err;
    EXPECT_EQ(std::string::npos, r.err.find("-resume")) << "retrying cannot fix a read error: " << r.err;
    auto st = asd_e2e::tile_statuses(out);
    EXPECT_GT(st["failed"], 0);
    EXPECT_GT(st["succeeded"], 0);
    json_object *m = json_object_from_file(metrics.c_str());
    ASSERT_NE(nullptr, m);
    EXPECT_EQ(st["failed"], json_object_get_int(metrics_get(m, {"tiles_read_failed"})));
    json_object *ft = metrics_get(m, {"failed_tiles"});
    ASSERT_NE(nullptr, ft);
    std::string reason = json_object_get_string(metrics_get(json_object_array_get_idx(ft, 0), {"reason"}));
    EXPECT_NE(std::string::npos, reason.find("cannot read the input: ")) << reason;
    EXPECT_NE(std::string::npos, reason.find("TIFF")) << "GDAL's own cause: " << reason;
    json_object_put(m);
  }
  // Without -q the summary explains, and does not advise -resume either.
  std::vector<std::string> args = app_args(src, dir.path() + "/verbose.gpkg", {"-tile-size", "512", "-overlap", "64"});
  args.erase(std::find(args.begin(), args.end(), "-q"));
  RunResult r = asd_e2e::run_app(args, dir.path());
  ASSERT_EQ(2, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("could not be read from the input")) << r.out;
  EXPECT_EQ(std::string::npos, r.out.find("rerun with -resume")) << r.out;
}

// Nothing readable at all: the input's problem, exit 1, one line.
TEST_F(E2eRasters, NoReadableTileIsExitOne) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string src = make_truncated(dir.path(), 0.02);
  GDALDatasetH ds = GDALOpen(src.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds) << "the header must survive for this test";
  GDALClose(ds);
  std::string out = dir.path() + "/out.gpkg";
  RunResult r = asd_e2e::run_app(app_args(src, out, {"-tile-size", "512", "-overlap", "64"}), dir.path());
  EXPECT_EQ(1, r.status) << r.err;
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("cannot read input '")) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("TIFF")) << r.err;
  struct stat sb;
  EXPECT_NE(0, stat(out.c_str(), &sb)) << "nothing achieved, nothing left behind";
}

// A /vsis3/ input on the local endpoint with only the AWS variables set
// (AWS_ENDPOINT_URL, keys, region: what GDAL 3.6's /vsis3/ does not read):
// GDAL reads it through the tool's endpoint and credentials.  GDAL options
// the user sets explicitly still win.
TEST_F(E2eRasters, Vsis3InputOnTheToolsTerms) {
  asd_test::LocalEndpoint ep(endpoint_args());
  asd_test::set_local_aws_env(ep);
  unsetenv("AWS_S3_ENDPOINT");
  unsetenv("AWS_HTTPS");
  unsetenv("AWS_VIRTUAL_HOSTING");
  // Put the input there with GDAL itself, configured in this process only.
  const std::string host = ep.url().substr(std::string("http://").size());
  const std::string key = std::string("/vsis3/") + asd_e2e::kInputBucket + "/inputs/scene_utm.tif";
  CPLSetConfigOption("AWS_S3_ENDPOINT", host.c_str());
  CPLSetConfigOption("AWS_HTTPS", "NO");
  CPLSetConfigOption("AWS_VIRTUAL_HOSTING", "FALSE");
  ASSERT_EQ(0, CPLCopyFile(key.c_str(), sample("scene_utm.tif").c_str()));
  CPLSetConfigOption("AWS_S3_ENDPOINT", nullptr);
  CPLSetConfigOption("AWS_HTTPS", nullptr);
  CPLSetConfigOption("AWS_VIRTUAL_HOSTING", nullptr);

  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  RunResult r = asd_e2e::run_app(app_args(key, out, {"-tile-size", "1024", "-overlap", "128"}), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  Accuracy a = accuracy(out);
  std::printf("/vsis3/ input: %s\n", a.score.describe().c_str());
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();

  // An explicit GDAL endpoint (here a closed port) is the user's choice.
  r = asd_e2e::run_app(app_args(key, dir.path() + "/explicit.gpkg", {"--config", "AWS_S3_ENDPOINT", "127.0.0.1:9",
                                                                     "--config", "GDAL_HTTP_MAX_RETRY", "0"}),
                       dir.path());
  EXPECT_EQ(1, r.status) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("cannot open input raster")) << r.err;
}
