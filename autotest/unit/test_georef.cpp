// Georeferencing: our pixel -> geo conversion equals GDAL's own tool,
// gdaltransform (run for real), on the sample data (GeoTIFF in UTM, RPC
// NITF) and on rasters made here (GCPs with polynomial and TPS, another
// t_srs); plus densification and the pixel-space fallback.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "asd_test_paths.h"
#include "asyncdetect/asd_georef.h"

namespace {

struct Pt {
  double x, y;
};

// Pixel positions spread over a w x h image, corners, centres and fractions.
std::vector<Pt> sample_points(int w, int h) {
  std::vector<Pt> pts;
  for (int j = 0; j <= 6; j++)
    for (int i = 0; i <= 6; i++) pts.push_back({w * i / 6.0 + (i % 3) * 0.37, h * j / 6.0 + (j % 2) * 0.61});
  pts.push_back({0, 0});
  pts.push_back({0.5, 0.5});
  pts.push_back({(double)w, (double)h});
  pts.push_back({w / 2.0 + 0.123, h / 3.0 + 0.789});
  return pts;
}

// Runs the real gdaltransform on the points; args go before the dataset.
std::vector<Pt> gdaltransform(const std::string &args, const std::string &ds, const std::vector<Pt> &pts) {
  // Tests run as parallel processes: the input file name must be unique.
  static int serial = 0;
  std::string in = testing::TempDir() + "/asd_georef_in_" + std::to_string(getpid()) + "_" +
                   std::to_string(serial++) + ".txt";
  {
    std::ofstream f(in);
    f.precision(17);
    for (const Pt &p : pts) f << p.x << " " << p.y << "\n";
  }
  std::string cmd = "gdaltransform " + args + " '" + ds + "' < '" + in + "' 2>/dev/null";
  FILE *p = popen(cmd.c_str(), "r");
  std::vector<Pt> out;
  if (!p) return out;
  char line[512];
  while (fgets(line, sizeof(line), p)) {
    Pt q;
    if (sscanf(line, "%lf %lf", &q.x, &q.y) == 2) out.push_back(q);
  }
  pclose(p);
  std::remove(in.c_str());
  return out;
}

// Compares our transform with gdaltransform's on the points.
void expect_same_as_gdaltransform(asd_georef *g, const std::string &args, const std::string &ds,
                                  const std::vector<Pt> &pts, double tol) {
  std::vector<Pt> ref = gdaltransform(args, ds, pts);
  ASSERT_EQ(pts.size(), ref.size()) << "gdaltransform " << args << " " << ds;
  std::vector<double> x, y;
  for (const Pt &p : pts) x.push_back(p.x), y.push_back(p.y);
  ASSERT_EQ(0, asd_georef_transform(g, (int)pts.size(), x.data(), y.data()));
  double worst = 0;
  for (size_t i = 0; i < pts.size(); i++) {
    worst = std::max(worst, std::max(std::fabs(x[i] - ref[i].x), std::fabs(y[i] - ref[i].y)));
    EXPECT_NEAR(ref[i].x, x[i], tol) << "point " << i << " (" << pts[i].x << "," << pts[i].y << ")";
    EXPECT_NEAR(ref[i].y, y[i], tol) << "point " << i;
  }
  ::testing::Test::RecordProperty("worst_difference", std::to_string(worst));
  std::printf("worst |ours - gdaltransform| = %.3g\n", worst);
}

// Other builds of the suite may run at the same time: names carry the pid.
std::string tmp_path(const std::string &name) {
  return testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
}

// A 600 x 400 Byte GeoTIFF with the given geotransform and EPSG code.
std::string make_gt_raster(const std::string &name, const double gt[6], int epsg) {
  GDALAllRegister();
  std::string path = tmp_path(name);
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), 600, 400, 1, GDT_Byte, nullptr);
  GDALSetGeoTransform(ds, const_cast<double *>(gt));
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, epsg);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  GDALClose(ds);
  return path;
}

int ring_points(OGRGeometryH poly) { return OGR_G_GetPointCount(OGR_G_GetGeometryRef(poly, 0)); }

}  // namespace

TEST(Georef, SampleGeoTiffMatchesGdaltransform) {
  std::string ds_path = asd_test::data_dir() + "/scene_utm.tif";
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(ds_path.c_str(), GA_ReadOnly);
  if (!ds) GTEST_SKIP() << "sample data not found: " << ds_path;
  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("GEOTRANSFORM", asd_georef_method(g));
  EXPECT_FALSE(asd_georef_is_pixel_space(g));
  EXPECT_FALSE(asd_georef_is_affine(g));  // UTM -> lon/lat
  expect_same_as_gdaltransform(g, "-t_srs EPSG:4326", ds_path, sample_points(3000, 2000), 1e-9);
  asd_georef_free(g);
  GDALClose(ds);
}

TEST(Georef, SampleRpcNitfMatchesGdaltransform) {
  std::string ds_path = asd_test::data_dir() + "/scene_rpc.ntf";
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(ds_path.c_str(), GA_ReadOnly);
  if (!ds) GTEST_SKIP() << "sample data not found: " << ds_path;
  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("RPC", asd_georef_method(g));
  expect_same_as_gdaltransform(g, "-rpc -t_srs EPSG:4326", ds_path, sample_points(3000, 2000), 1e-7);
  asd_georef_free(g);

  // With a height above the ellipsoid, on both sides.
  asd_georef_options o;
  asd_georef_options_init(&o);
  char **to = CSLSetNameValue(nullptr, "RPC_HEIGHT", "350");
  o.transformer_options = to;
  g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  expect_same_as_gdaltransform(g, "-rpc -to RPC_HEIGHT=350 -t_srs EPSG:4326", ds_path,
                               sample_points(3000, 2000), 1e-7);
  asd_georef_free(g);
  CSLDestroy(to);
  GDALClose(ds);
}

TEST(Georef, RpcWithDem) {
  // A flat DEM at 200 m over the RPC scene: same as RPC_HEIGHT=200 in both tools.
  std::string ds_path = asd_test::data_dir() + "/scene_rpc.ntf";
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(ds_path.c_str(), GA_ReadOnly);
  if (!ds) GTEST_SKIP() << "sample data not found: " << ds_path;
  std::string dem = tmp_path("asd_georef_dem.tif");
  GDALDatasetH d = GDALCreate(GDALGetDriverByName("GTiff"), dem.c_str(), 100, 100, 1, GDT_Float32, nullptr);
  double gt[6] = {13.0, 0.03, 0, 50.0, 0, -0.03};
  GDALSetGeoTransform(d, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 4326);
  GDALSetSpatialRef(d, srs);
  OSRDestroySpatialReference(srs);
  ASSERT_EQ(CE_None, GDALFillRaster(GDALGetRasterBand(d, 1), 200, 0));
  GDALClose(d);
  asd_georef_options o;
  asd_georef_options_init(&o);
  char **to = CSLSetNameValue(nullptr, "RPC_DEM", dem.c_str());
  o.transformer_options = to;
  asd_georef *g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  expect_same_as_gdaltransform(g, "-rpc -to RPC_DEM=" + dem + " -t_srs EPSG:4326", ds_path,
                               sample_points(3000, 2000), 1e-7);
  asd_georef_free(g);
  CSLDestroy(to);
  GDALClose(ds);
  VSIUnlink(dem.c_str());
}

TEST(Georef, GeneratedUtmAndOtherTargetSrs) {
  double gt[6] = {448000, 0.3, 0, 5411000, 0, -0.3};
  std::string path = make_gt_raster("asd_georef_utm.tif", gt, 32633);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds);
  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  expect_same_as_gdaltransform(g, "-t_srs EPSG:4326", path, sample_points(600, 400), 1e-9);
  asd_georef_free(g);

  // Web Mercator output, in metres.
  asd_georef_options o;
  asd_georef_options_init(&o);
  o.t_srs = "EPSG:3857";
  g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  expect_same_as_gdaltransform(g, "-t_srs EPSG:3857", path, sample_points(600, 400), 1e-6);
  asd_georef_free(g);

  // Same SRS as the image: affine, a box keeps its 4 corners (+ closing point).
  o.t_srs = "EPSG:32633";
  g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  EXPECT_TRUE(asd_georef_is_affine(g));
  OGRGeometryH box = asd_georef_box(g, 10, 20, 110, 70);
  ASSERT_NE(nullptr, box);
  EXPECT_EQ(5, ring_points(box));
  OGREnvelope env;
  OGR_G_GetEnvelope(box, &env);
  EXPECT_DOUBLE_EQ(448000 + 10 * 0.3, env.MinX);
  EXPECT_DOUBLE_EQ(448000 + 110 * 0.3, env.MaxX);
  EXPECT_DOUBLE_EQ(5411000 - 70 * 0.3, env.MinY);
  EXPECT_DOUBLE_EQ(5411000 - 20 * 0.3, env.MaxY);
  OGR_G_DestroyGeometry(box);
  asd_georef_free(g);

  o.t_srs = "not an SRS";
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_georef_new(ds, &o));
  CPLPopErrorHandler();
  GDALClose(ds);
  VSIUnlink(path.c_str());
}

TEST(Georef, GcpPolynomialAndTps) {
  GDALAllRegister();
  std::string path = tmp_path("asd_georef_gcp.tif");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), 600, 400, 1, GDT_Byte, nullptr);
  // GCPs in lon/lat with a little non-linearity.
  std::vector<GDAL_GCP> gcps;
  std::vector<std::string> ids;
  for (int j = 0; j <= 4; j++)
    for (int i = 0; i <= 4; i++) ids.push_back(std::to_string(j * 5 + i));
  for (int j = 0; j <= 4; j++)
    for (int i = 0; i <= 4; i++) {
      GDAL_GCP g;
      g.pszId = const_cast<char *>(ids[j * 5 + i].c_str());
      g.pszInfo = const_cast<char *>("");
      g.dfGCPPixel = i * 150.0;
      g.dfGCPLine = j * 100.0;
      g.dfGCPX = 2.0 + i * 0.001 + 0.00001 * i * j;
      g.dfGCPY = 45.0 - j * 0.0008 + 0.000005 * i * i;
      g.dfGCPZ = 0;
      gcps.push_back(g);
    }
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 4326);
  ASSERT_EQ(CE_None, GDALSetGCPs2(ds, (int)gcps.size(), gcps.data(), srs));
  OSRDestroySpatialReference(srs);
  GDALClose(ds);
  ds = GDALOpen(path.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds);

  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("GCP_POLYNOMIAL", asd_georef_method(g));
  expect_same_as_gdaltransform(g, "-t_srs EPSG:4326", path, sample_points(600, 400), 1e-9);
  asd_georef_free(g);

  asd_georef_options o;
  asd_georef_options_init(&o);
  char **to = CSLSetNameValue(nullptr, "METHOD", "GCP_TPS");
  o.transformer_options = to;
  g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("GCP_TPS", asd_georef_method(g));
  EXPECT_FALSE(asd_georef_is_affine(g));
  expect_same_as_gdaltransform(g, "-tps -t_srs EPSG:4326", path, sample_points(600, 400), 1e-9);
  // Non-affine: box edges are densified (8 px spacing: 100 px edge -> 13 steps).
  OGRGeometryH box = asd_georef_box(g, 0, 0, 100, 100);
  ASSERT_NE(nullptr, box);
  EXPECT_EQ(4 * 13 + 1, ring_points(box));
  OGR_G_DestroyGeometry(box);
  asd_georef_free(g);
  CSLDestroy(to);
  GDALClose(ds);
  VSIUnlink(path.c_str());
}

TEST(Georef, NoGeoreferencingIsPixelSpaceWithWarning) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "plain", 100, 50, 1, GDT_Byte, nullptr);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  asd_georef *g = asd_georef_new(ds, nullptr);
  EXPECT_EQ(CE_Warning, CPLGetLastErrorType());
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("no georeferencing"));
  CPLPopErrorHandler();
  ASSERT_NE(nullptr, g);
  EXPECT_TRUE(asd_georef_is_pixel_space(g));
  EXPECT_EQ(nullptr, asd_georef_srs(g));
  EXPECT_STREQ("PIXEL", asd_georef_method(g));
  double x[1] = {12.5}, y[1] = {7.25};
  EXPECT_EQ(0, asd_georef_transform(g, 1, x, y));
  EXPECT_EQ(12.5, x[0]);
  EXPECT_EQ(7.25, y[0]);
  OGRGeometryH box = asd_georef_box(g, 1, 2, 3, 4);
  ASSERT_NE(nullptr, box);
  char *wkt = nullptr;
  OGR_G_ExportToWkt(box, &wkt);
  EXPECT_STREQ("POLYGON ((1 2,1 4,3 4,3 2,1 2))", wkt);
  CPLFree(wkt);
  OGR_G_DestroyGeometry(box);
  // A point and a polygon ring.
  double pt[2] = {5, 6};
  OGRGeometryH p = asd_georef_ring(g, pt, 1);
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(wkbPoint, wkbFlatten(OGR_G_GetGeometryType(p)));
  OGR_G_DestroyGeometry(p);
  asd_georef_free(g);
  GDALClose(ds);
}

TEST(Georef, LonLatOrderAndSrsAxisMapping) {
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  std::string path = make_gt_raster("asd_georef_axis.tif", gt, 32633);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  double x[1] = {0}, y[1] = {0};
  asd_georef_transform(g, 1, x, y);
  EXPECT_NEAR(14.29, x[0], 0.01);  // longitude first
  EXPECT_NEAR(48.85, y[0], 0.01);
  OGRSpatialReferenceH srs = asd_georef_srs(g);
  ASSERT_NE(nullptr, srs);
  int n = 0;
  const int *map = OSRGetDataAxisToSRSAxisMapping(srs, &n);
  ASSERT_EQ(2, n);
  EXPECT_EQ(2, map[0]);  // data x = SRS axis 2 (longitude)
  asd_georef_free(g);
  GDALClose(ds);
  VSIUnlink(path.c_str());
}

TEST(Georef, GeolocationArraysMatchGdaltransform) {
  GDALAllRegister();
  // 61 x 41 geolocation arrays every 10 pixels of a 600 x 400 image, with a
  // gentle curvature so that interpolation matters.
  std::string geo = tmp_path("asd_georef_geoloc_xy.tif");
  GDALDatasetH g = GDALCreate(GDALGetDriverByName("GTiff"), geo.c_str(), 61, 41, 2, GDT_Float64, nullptr);
  std::vector<double> lon(61 * 41), lat(61 * 41);
  for (int j = 0; j < 41; j++)
    for (int i = 0; i < 61; i++) {
      lon[j * 61 + i] = 10.0 + i * 0.0005 + j * 0.00002 + 1e-7 * i * i;
      lat[j * 61 + i] = 45.0 - j * 0.0004 + i * 0.00001 + 1e-7 * j * j;
    }
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(g, 1), GF_Write, 0, 0, 61, 41, lon.data(), 61, 41,
                                  GDT_Float64, 0, 0));
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(g, 2), GF_Write, 0, 0, 61, 41, lat.data(), 61, 41,
                                  GDT_Float64, 0, 0));
  GDALClose(g);
  // The image carries the GEOLOCATION domain in a VRT (kept in the file itself).
  std::string img = tmp_path("asd_georef_geoloc.vrt");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("VRT"), img.c_str(), 600, 400, 1, GDT_Byte, nullptr);
  char **md = nullptr;
  md = CSLSetNameValue(md, "SRS", SRS_WKT_WGS84_LAT_LONG);
  md = CSLSetNameValue(md, "X_DATASET", geo.c_str());
  md = CSLSetNameValue(md, "X_BAND", "1");
  md = CSLSetNameValue(md, "Y_DATASET", geo.c_str());
  md = CSLSetNameValue(md, "Y_BAND", "2");
  md = CSLSetNameValue(md, "PIXEL_OFFSET", "0");
  md = CSLSetNameValue(md, "LINE_OFFSET", "0");
  md = CSLSetNameValue(md, "PIXEL_STEP", "10");
  md = CSLSetNameValue(md, "LINE_STEP", "10");
  ASSERT_EQ(CE_None, GDALSetMetadata(ds, md, "GEOLOCATION"));
  CSLDestroy(md);
  GDALClose(ds);
  ds = GDALOpen(img.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds);
  asd_georef *gr = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, gr);
  EXPECT_STREQ("GEOLOC_ARRAY", asd_georef_method(gr));
  EXPECT_FALSE(asd_georef_is_affine(gr));
  expect_same_as_gdaltransform(gr, "-geoloc -t_srs EPSG:4326", img, sample_points(590, 390), 1e-9);
  asd_georef_free(gr);
  GDALClose(ds);
  VSIUnlink(img.c_str());
  VSIUnlink(geo.c_str());
}

namespace {

// A GeoTIFF georeferenced by 25 lon/lat GCPs only (600 x 400).
std::string make_gcp_tif(const std::string &path) {
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), 600, 400, 1, GDT_Byte, nullptr);
  std::vector<GDAL_GCP> gcps;
  std::vector<std::string> ids;
  for (int k = 0; k < 25; k++) ids.push_back(std::to_string(k));
  for (int j = 0; j <= 4; j++)
    for (int i = 0; i <= 4; i++) {
      GDAL_GCP g;
      g.pszId = const_cast<char *>(ids[j * 5 + i].c_str());
      g.pszInfo = const_cast<char *>("");
      g.dfGCPPixel = i * 150.0;
      g.dfGCPLine = j * 100.0;
      g.dfGCPX = 52.0 + i * 0.001;
      g.dfGCPY = 24.0 - j * 0.0008;
      g.dfGCPZ = 0;
      gcps.push_back(g);
    }
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 4326);
  EXPECT_EQ(CE_None, GDALSetGCPs2(ds, (int)gcps.size(), gcps.data(), srs));
  OSRDestroySpatialReference(srs);
  GDALClose(ds);
  return path;
}

}  // namespace

// GCPs next to the default geotransform (a VRT holding both, as some
// writers produce): the GCPs are the georeferencing, and the method says so.
TEST(Georef, GcpsWinOverTheDefaultGeotransform) {
  GDALAllRegister();
  std::string tif = make_gcp_tif(tmp_path("asd_georef_gcp_only.tif"));
  std::string vrt = tmp_path("asd_georef_gcp_identity.vrt");
  GDALDatasetH src = GDALOpen(tif.c_str(), GA_ReadOnly);
  GDALDatasetH ds = GDALCreateCopy(GDALGetDriverByName("VRT"), vrt.c_str(), src, FALSE, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  double identity[6] = {0, 1, 0, 0, 0, 1};
  ASSERT_EQ(CE_None, GDALSetGeoTransform(ds, identity));
  GDALClose(ds);  // the VRT first: it refers to src's bands
  GDALClose(src);
  ds = GDALOpen(vrt.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds);
  double gt[6];
  ASSERT_EQ(CE_None, GDALGetGeoTransform(ds, gt));  // the trap: GDAL reports a geotransform
  ASSERT_GT(GDALGetGCPCount(ds), 0);

  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("GCP_POLYNOMIAL", asd_georef_method(g));
  char d[256];
  asd_georef_describe(g, d, sizeof d);
  EXPECT_STREQ("GCP_POLYNOMIAL -> EPSG:4326 (25 GCPs; the default geotransform next to them ignored)", d);
  // Where the GCPs say, as gdaltransform puts the GCP-only file.
  expect_same_as_gdaltransform(g, "-t_srs EPSG:4326", tif, sample_points(600, 400), 1e-9);
  asd_georef_free(g);

  // -to METHOD=... still decides: the user may want that geotransform.
  asd_georef_options o;
  asd_georef_options_init(&o);
  char **to = CSLSetNameValue(nullptr, "METHOD", "GCP_TPS");
  o.transformer_options = to;
  g = asd_georef_new(ds, &o);
  ASSERT_NE(nullptr, g);
  EXPECT_STREQ("GCP_TPS", asd_georef_method(g));
  expect_same_as_gdaltransform(g, "-tps -t_srs EPSG:4326", tif, sample_points(600, 400), 1e-9);
  asd_georef_free(g);
  CSLDestroy(to);
  GDALClose(ds);
  VSIUnlink(vrt.c_str());
  VSIUnlink(tif.c_str());
}

namespace {

// A full-disk geostationary image (1000 x 1000, 11.2 km pixels) whose
// corners look past the Earth: the disk's edge is at ~5,430 km.
GDALDatasetH make_geos() {
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "geos", 1000, 1000, 1, GDT_Byte, nullptr);
  double gt[6] = {-5.6e6, 11200, 0, 5.6e6, 0, -11200};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRSetFromUserInput(srs, "+proj=geos +h=35785831 +lon_0=0 +datum=WGS84 +units=m +no_defs");
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  return ds;
}

// Every vertex of poly (EPSG:4326 lon/lat) taken back to the image's pixels.
std::vector<Pt> back_to_pixels(OGRGeometryH poly) {
  OGRSpatialReferenceH wgs = OSRNewSpatialReference(nullptr), geos = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(wgs, 4326);
  OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
  OSRSetFromUserInput(geos, "+proj=geos +h=35785831 +lon_0=0 +datum=WGS84 +units=m +no_defs");
  OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(wgs, geos);
  OGRGeometryH ring = OGR_G_GetGeometryRef(poly, 0);
  std::vector<Pt> out;
  for (int i = 0; i < OGR_G_GetPointCount(ring); i++) {
    double x = OGR_G_GetX(ring, i), y = OGR_G_GetY(ring, i);
    EXPECT_TRUE(OCTTransform(ct, 1, &x, &y, nullptr));
    out.push_back({(x + 5.6e6) / 11200, (5.6e6 - y) / 11200});
  }
  OCTDestroyCoordinateTransformation(ct);
  OSRDestroySpatialReference(wgs);
  OSRDestroySpatialReference(geos);
  return out;
}

}  // namespace

// Shapes over the edge of the disk are trimmed to the part on the Earth;
// shapes wholly in space have no geometry; nothing is silently lost.
TEST(Georef, GeostationaryCornersAreTrimmedOrReported) {
  GDALAllRegister();
  GDALDatasetH ds = make_geos();
  asd_georef *g = asd_georef_new(ds, nullptr);
  ASSERT_NE(nullptr, g);
  asd_georef_status st = ASD_GEOREF_FAILED;

  // The middle of the disk: as before.
  OGRGeometryH p = asd_georef_box_ex(g, 450, 450, 550, 550, &st);
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(ASD_GEOREF_OK, st);
  OGR_G_DestroyGeometry(p);

  // A corner tile in space: nothing to draw, and it says so.
  p = asd_georef_box_ex(g, 0, 0, 64, 64, &st);
  EXPECT_EQ(nullptr, p);
  EXPECT_EQ(ASD_GEOREF_FAILED, st);
  double cx = 10, cy = 10;
  EXPECT_EQ(1, asd_georef_transform(g, 1, &cx, &cy));

  // A tile across the limb (north-west, 45 degrees): trimmed to the disk.
  for (auto box : {std::vector<double>{60, 60, 316, 316}, std::vector<double>{0, 0, 1000, 1000},
                   std::vector<double>{400, 0, 600, 40}}) {
    p = asd_georef_box_ex(g, box[0], box[1], box[2], box[3], &st);
    ASSERT_NE(nullptr, p) << box[0] << "," << box[1];
    EXPECT_EQ(ASD_GEOREF_TRIMMED, st);
    EXPECT_TRUE(OGR_G_IsValid(p));
    OGREnvelope env;
    OGR_G_GetEnvelope(p, &env);
    EXPECT_GE(env.MinX, -90);
    EXPECT_LE(env.MaxX, 90);
    EXPECT_GE(env.MinY, -90);
    EXPECT_LE(env.MaxY, 90);
    // Every vertex is a point of the box, and on the disk.
    for (const Pt &q : back_to_pixels(p)) {
      EXPECT_GE(q.x, box[0] - 0.01);
      EXPECT_LE(q.x, box[2] + 0.01);
      EXPECT_GE(q.y, box[1] - 0.01);
      EXPECT_LE(q.y, box[3] + 0.01);
    }
    OGR_G_DestroyGeometry(p);
  }
  // The whole image's outline reaches (within a pixel) the disk's edge on
  // all four sides: the left edge's crossings are near x = 500 +- 485 px.
  p = asd_georef_box_ex(g, 0, 0, 1000, 1000, &st);
  ASSERT_NE(nullptr, p);
  double minx = 1e9, maxx = -1e9;
  for (const Pt &q : back_to_pixels(p)) minx = std::min(minx, q.x), maxx = std::max(maxx, q.x);
  EXPECT_LT(minx, 16.5);
  EXPECT_GT(maxx, 983.5);
  OGR_G_DestroyGeometry(p);
  asd_georef_free(g);
  GDALClose(ds);
}
