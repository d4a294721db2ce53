// Tile plan: grid geometry, edge handling, regions of interest and the
// classification of empty (nodata / constant) tiles, on rasters generated
// here in /vsimem/.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "asd_test_paths.h"
#include "asyncdetect/asd_plan.h"

namespace {

// A Byte raster of the given size and bands, UTM zone 31N, 1 m pixels,
// origin (500000, 4500000), filled with a gradient so no tile is constant.
GDALDatasetH make_raster(const std::string &name, int w, int h, int bands = 1, bool georef = true) {
  GDALAllRegister();
  GDALDriverH drv = GDALGetDriverByName("GTiff");
  GDALDatasetH ds = GDALCreate(drv, name.c_str(), w, h, bands, GDT_Byte, nullptr);
  if (georef) {
    double gt[6] = {500000, 1, 0, 4500000, 0, -1};
    GDALSetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
    OSRImportFromEPSG(srs, 32631);
    GDALSetSpatialRef(ds, srs);
    OSRDestroySpatialReference(srs);
  }
  std::vector<unsigned char> row(w);
  for (int b = 1; b <= bands; b++)
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) row[x] = (unsigned char)((x + y * 3 + b) % 251);
      EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, y, w, 1, row.data(), w, 1,
                                      GDT_Byte, 0, 0));
    }
  return ds;
}

void fill(GDALDatasetH ds, int band, int x, int y, int w, int h, unsigned char v) {
  std::vector<unsigned char> buf((size_t)w * h, v);
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, band), GF_Write, x, y, w, h, buf.data(), w, h, GDT_Byte,
                                  0, 0));
}

asd_plan *plan(GDALDatasetH ds, int tw, int th, int ov, bool pad = false) {
  asd_plan_options o;
  asd_plan_options_init(&o);
  o.tile_width = tw;
  o.tile_height = th;
  o.overlap = ov;
  o.pad_edges = pad;
  return asd_plan_new(ds, &o);
}

}  // namespace

TEST(Plan, ExactMultiple) {
  GDALDatasetH ds = make_raster("/vsimem/plan_exact.tif", 1024, 512);
  asd_plan *p = plan(ds, 256, 256, 0);
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(4, asd_plan_cols(p));
  EXPECT_EQ(2, asd_plan_rows(p));
  ASSERT_EQ(8, asd_plan_count(p));
  for (int i = 0; i < 8; i++) {
    const asd_tile *t = asd_plan_tile(p, i);
    EXPECT_EQ(i, t->index);
    EXPECT_EQ(i / 4, t->row);
    EXPECT_EQ(i % 4, t->col);
    EXPECT_EQ(t->col * 256, t->x);
    EXPECT_EQ(t->row * 256, t->y);
    EXPECT_EQ(256, t->w);
    EXPECT_EQ(256, t->h);
    EXPECT_EQ(ASD_SKIP_NONE, t->skip);
  }
  EXPECT_EQ(nullptr, asd_plan_tile(p, 8));
  EXPECT_EQ(nullptr, asd_plan_tile(p, -1));
  EXPECT_EQ(8, asd_plan_skip_count(p, ASD_SKIP_NONE));
  asd_plan_free(p);
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_exact.tif");
}

TEST(Plan, OverlapShiftsEdgeTilesInside) {
  GDALDatasetH ds = make_raster("/vsimem/plan_shift.tif", 1000, 700);
  asd_plan *p = plan(ds, 256, 256, 32);  // stride 224
  ASSERT_NE(nullptr, p);
  // ceil((1000-256)/224)+1 = 5 columns, ceil((700-256)/224)+1 = 3 rows.
  EXPECT_EQ(5, asd_plan_cols(p));
  EXPECT_EQ(3, asd_plan_rows(p));
  int coverage_x = 0;
  for (int i = 0; i < asd_plan_count(p); i++) {
    const asd_tile *t = asd_plan_tile(p, i);
    EXPECT_EQ(256, t->w);  // every tile is full size
    EXPECT_EQ(256, t->h);
    EXPECT_GE(t->x, 0);
    EXPECT_LE(t->x + t->w, 1000);
    EXPECT_LE(t->y + t->h, 700);
    if (t->row == 0) coverage_x = std::max(coverage_x, t->x + t->w);
    if (t->col > 0 && t->col < 4) {
      EXPECT_EQ(t->col * 224, t->x);
    }
  }
  EXPECT_EQ(1000, coverage_x);
  EXPECT_EQ(1000 - 256, asd_plan_tile(p, 4)->x);  // last column shifted back
  EXPECT_EQ(700 - 256, asd_plan_tile(p, 10)->y);  // last row shifted back
  asd_plan_free(p);
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_shift.tif");
}

TEST(Plan, PadClipsEdgeTiles) {
  GDALDatasetH ds = make_raster("/vsimem/plan_pad.tif", 1000, 700);
  asd_plan *p = plan(ds, 256, 256, 32, true);
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(5, asd_plan_cols(p));
  const asd_tile *last = asd_plan_tile(p, asd_plan_count(p) - 1);
  EXPECT_EQ(4 * 224, last->x);
  EXPECT_EQ(1000 - 4 * 224, last->w);
  EXPECT_EQ(2 * 224, last->y);
  EXPECT_EQ(700 - 2 * 224, last->h);
  asd_plan_free(p);
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_pad.tif");
}

TEST(Plan, ImageSmallerThanTile) {
  GDALDatasetH ds = make_raster("/vsimem/plan_small.tif", 100, 60);
  for (bool pad : {false, true}) {
    asd_plan *p = plan(ds, 512, 512, 64, pad);
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(1, asd_plan_count(p));
    const asd_tile *t = asd_plan_tile(p, 0);
    EXPECT_EQ(0, t->x);
    EXPECT_EQ(0, t->y);
    EXPECT_EQ(100, t->w);
    EXPECT_EQ(60, t->h);
    asd_plan_free(p);
  }
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_small.tif");
}

TEST(Plan, RejectsBadOverlapAndSize) {
  GDALDatasetH ds = make_raster("/vsimem/plan_bad.tif", 100, 100);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  EXPECT_EQ(nullptr, plan(ds, 256, 256, 256));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("overlap"));
  EXPECT_EQ(nullptr, plan(ds, 256, 128, 200));  // overlap >= tile height
  EXPECT_EQ(nullptr, plan(ds, 256, 256, -1));
  EXPECT_EQ(nullptr, plan(ds, 0, 256, 0));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("tile size"));
  CPLPopErrorHandler();
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_bad.tif");
}

TEST(Plan, Srcwin) {
  GDALDatasetH ds = make_raster("/vsimem/plan_srcwin.tif", 1000, 1000);
  asd_plan_options o;
  asd_plan_options_init(&o);
  o.tile_width = o.tile_height = 200;
  o.has_srcwin = 1;
  o.srcwin[0] = 100;
  o.srcwin[1] = 150;
  o.srcwin[2] = 400;
  o.srcwin[3] = 200;
  asd_plan *p = asd_plan_new(ds, &o);
  ASSERT_NE(nullptr, p);
  int x, y, w, h;
  asd_plan_roi(p, &x, &y, &w, &h);
  EXPECT_EQ(100, x);
  EXPECT_EQ(150, y);
  EXPECT_EQ(400, w);
  EXPECT_EQ(200, h);
  ASSERT_EQ(2, asd_plan_count(p));
  EXPECT_EQ(100, asd_plan_tile(p, 0)->x);
  EXPECT_EQ(300, asd_plan_tile(p, 1)->x);
  EXPECT_EQ(150, asd_plan_tile(p, 1)->y);
  asd_plan_free(p);

  // A srcwin running past the image is clipped; one outside is an error.
  o.srcwin[0] = 900;
  o.srcwin[2] = 500;
  p = asd_plan_new(ds, &o);
  ASSERT_NE(nullptr, p);
  asd_plan_roi(p, &x, &y, &w, &h);
  EXPECT_EQ(100, w);
  asd_plan_free(p);
  o.srcwin[0] = 2000;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_plan_new(ds, &o));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("srcwin"));
  CPLPopErrorHandler();
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_srcwin.tif");
}

TEST(Plan, ProjwinInImageSrsAndLonLat) {
  GDALDatasetH ds = make_raster("/vsimem/plan_projwin.tif", 1000, 1000);
  asd_plan_options o;
  asd_plan_options_init(&o);
  o.tile_width = o.tile_height = 256;
  o.has_projwin = 1;
  // UTM metres: x 500100..500300, y 4499900..4499700 -> pixels 100..300, 100..300.
  o.projwin[0] = 500100;
  o.projwin[1] = 4499900;
  o.projwin[2] = 500300;
  o.projwin[3] = 4499700;
  asd_plan *p = asd_plan_new(ds, &o);
  ASSERT_NE(nullptr, p);
  int x, y, w, h;
  asd_plan_roi(p, &x, &y, &w, &h);
  EXPECT_EQ(100, x);
  EXPECT_EQ(100, y);
  EXPECT_EQ(200, w);
  EXPECT_EQ(200, h);
  asd_plan_free(p);

  // The same box in lon/lat (traditional order): the pixel box must contain
  // the UTM one, up to a pixel of rounding.
  OGRSpatialReferenceH utm = OSRNewSpatialReference(nullptr), ll = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(utm, 32631);
  OSRImportFromEPSG(ll, 4326);
  OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
  OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(utm, ll);
  double cx[2] = {500100, 500300}, cy[2] = {4499900, 4499700};
  ASSERT_TRUE(OCTTransform(ct, 2, cx, cy, nullptr));
  OCTDestroyCoordinateTransformation(ct);
  OSRDestroySpatialReference(utm);
  OSRDestroySpatialReference(ll);
  o.projwin[0] = cx[0];
  o.projwin[1] = cy[0];
  o.projwin[2] = cx[1];
  o.projwin[3] = cy[1];
  o.projwin_srs = "EPSG:4326";
  p = asd_plan_new(ds, &o);
  ASSERT_NE(nullptr, p);
  asd_plan_roi(p, &x, &y, &w, &h);
  EXPECT_NEAR(100, x, 1);
  EXPECT_NEAR(100, y, 1);
  EXPECT_NEAR(200, w, 2);
  EXPECT_NEAR(200, h, 2);
  asd_plan_free(p);
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_projwin.tif");
}

TEST(Plan, ProjwinWithoutGeoreferencingFails) {
  GDALDatasetH ds = make_raster("/vsimem/plan_nogeo.tif", 100, 100, 1, false);
  asd_plan_options o;
  asd_plan_options_init(&o);
  o.has_projwin = 1;
  o.projwin[0] = 0;
  o.projwin[1] = 10;
  o.projwin[2] = 10;
  o.projwin[3] = 0;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_plan_new(ds, &o));
  CPLPopErrorHandler();
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_nogeo.tif");
}

TEST(Plan, AoiEnvelopeAndIntersection) {
  GDALDatasetH ds = make_raster("/vsimem/plan_aoi.tif", 1000, 1000);
  // An L-shaped AOI in UTM covering pixels x 0..600, y 0..600 minus the
  // square x 200..600, y 200..600; tiles of 200 px: 9 tiles in the
  // envelope, 4 of them in the hole.
  const char *path = "/vsimem/plan_aoi.geojson";
  std::string gj =
      "{\"type\":\"FeatureCollection\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"EPSG:32631\"}},"
      "\"features\":[{\"type\":\"Feature\",\"properties\":{},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
      "[[[500000,4500000],[500600,4500000],[500600,4499800],[500200,4499800],[500200,4499400],[500000,4499400],"
      "[500000,4500000]]]}}]}";
  VSILFILE *f = VSIFileFromMemBuffer(path, (GByte *)CPLStrdup(gj.c_str()), gj.size(), TRUE);
  VSIFCloseL(f);
  asd_plan_options o;
  asd_plan_options_init(&o);
  o.tile_width = o.tile_height = 200;
  o.aoi_path = path;
  asd_plan *p = asd_plan_new(ds, &o);
  ASSERT_NE(nullptr, p);
  int x, y, w, h;
  asd_plan_roi(p, &x, &y, &w, &h);
  EXPECT_EQ(0, x);
  EXPECT_EQ(0, y);
  EXPECT_EQ(600, w);
  EXPECT_EQ(600, h);
  ASSERT_EQ(9, asd_plan_count(p));
  // The four tiles of the hole only touch the L along its border: skipped.
  for (int i : {4, 5, 7, 8}) EXPECT_EQ(ASD_SKIP_OUTSIDE_AOI, asd_plan_tile(p, i)->skip) << i;
  for (int i : {0, 1, 2, 3, 6}) EXPECT_EQ(ASD_SKIP_NONE, asd_plan_tile(p, i)->skip) << i;
  EXPECT_EQ(4, asd_plan_skip_count(p, ASD_SKIP_OUTSIDE_AOI));
  asd_plan_free(p);

  o.aoi_path = "/vsimem/does_not_exist.gpkg";
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_plan_new(ds, &o));
  CPLPopErrorHandler();
  GDALClose(ds);
  VSIUnlink(path);
  VSIUnlink("/vsimem/plan_aoi.tif");
}

TEST(Plan, ScanSkipsNodataAndConstantTiles) {
  GDALDatasetH ds = make_raster("/vsimem/plan_scan.tif", 400, 200, 3);
  for (int b = 1; b <= 3; b++) {
    GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), 0);
    fill(ds, b, 0, 0, 100, 100, 0);      // tile 0: all nodata
    fill(ds, b, 100, 0, 100, 100, 77);   // tile 1: constant
  }
  // Tile 2: nodata except one constant-valued pixel block -> constant.
  for (int b = 1; b <= 3; b++) {
    fill(ds, b, 200, 0, 100, 100, 0);
    fill(ds, b, 210, 10, 5, 5, 9);
  }
  // Tile 3: nodata except a varying part -> kept.
  for (int b = 1; b <= 3; b++) fill(ds, b, 300, 0, 100, 90, 0);
  asd_plan *p = plan(ds, 100, 100, 0);
  ASSERT_NE(nullptr, p);
  ASSERT_EQ(8, asd_plan_count(p));
  asd_skip_options so;
  asd_skip_options_init(&so);
  ASSERT_EQ(0, asd_plan_scan(p, ds, &so, nullptr, nullptr));
  EXPECT_EQ(ASD_SKIP_NODATA, asd_plan_tile(p, 0)->skip);
  EXPECT_EQ(ASD_SKIP_CONSTANT, asd_plan_tile(p, 1)->skip);
  EXPECT_EQ(ASD_SKIP_CONSTANT, asd_plan_tile(p, 2)->skip);
  EXPECT_EQ(ASD_SKIP_NONE, asd_plan_tile(p, 3)->skip);
  for (int i = 4; i < 8; i++) EXPECT_EQ(ASD_SKIP_NONE, asd_plan_tile(p, i)->skip);
  EXPECT_EQ(1, asd_plan_skip_count(p, ASD_SKIP_NODATA));
  EXPECT_EQ(2, asd_plan_skip_count(p, ASD_SKIP_CONSTANT));
  EXPECT_EQ(5, asd_plan_skip_count(p, ASD_SKIP_NONE));
  EXPECT_STREQ("nodata", asd_skip_reason_name(ASD_SKIP_NODATA));
  EXPECT_STREQ("constant", asd_skip_reason_name(ASD_SKIP_CONSTANT));

  // Constant skipping can be turned off; nodata still wins.
  so.skip_constant = 0;
  EXPECT_EQ(ASD_SKIP_NONE, asd_classify_window(ds, 100, 0, 100, 100, &so));
  EXPECT_EQ(ASD_SKIP_NODATA, asd_classify_window(ds, 0, 0, 100, 100, &so));
  asd_plan_free(p);
  GDALClose(ds);
  VSIUnlink("/vsimem/plan_scan.tif");
}

TEST(Plan, ScanUsesMaskBand) {
  // No nodata value: an internal mask band marks the left half invalid.
  CPLSetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
  GDALDatasetH ds = make_raster("/vsimem/plan_mask.tif", 200, 100, 1);
  ASSERT_EQ(CE_None, GDALCreateDatasetMaskBand(ds, GMF_PER_DATASET));
  GDALRasterBandH mask = GDALGetMaskBand(GDALGetRasterBand(ds, 1));
  std::vector<unsigned char> m(200 * 100, 255);
  for (int y = 0; y < 100; y++)
    for (int x = 0; x < 100; x++) m[y * 200 + x] = 0;
  ASSERT_EQ(CE_None, GDALRasterIO(mask, GF_Write, 0, 0, 200, 100, m.data(), 200, 100, GDT_Byte, 0, 0));
  EXPECT_EQ(ASD_SKIP_NODATA, asd_classify_window(ds, 0, 0, 100, 100, nullptr));
  EXPECT_EQ(ASD_SKIP_NONE, asd_classify_window(ds, 100, 0, 100, 100, nullptr));
  EXPECT_EQ(ASD_SKIP_NONE, asd_classify_window(ds, 50, 0, 100, 100, nullptr));
  GDALClose(ds);
  CPLSetConfigOption("GDAL_TIFF_INTERNAL_MASK", nullptr);
  VSIUnlink("/vsimem/plan_mask.tif");
}

TEST(Plan, ScanFloatNanNodata) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", 64, 32, 1, GDT_Float32, nullptr);
  GDALRasterBandH b = GDALGetRasterBand(ds, 1);
  GDALSetRasterNoDataValue(b, std::numeric_limits<double>::quiet_NaN());
  std::vector<float> v(64 * 32, std::numeric_limits<float>::quiet_NaN());
  for (int y = 0; y < 32; y++)
    for (int x = 32; x < 64; x++) v[y * 64 + x] = (float)(x * 0.5 + y);
  ASSERT_EQ(CE_None, GDALRasterIO(b, GF_Write, 0, 0, 64, 32, v.data(), 64, 32, GDT_Float32, 0, 0));
  EXPECT_EQ(ASD_SKIP_NODATA, asd_classify_window(ds, 0, 0, 32, 32, nullptr));
  EXPECT_EQ(ASD_SKIP_NONE, asd_classify_window(ds, 32, 0, 32, 32, nullptr));
  GDALClose(ds);
}

TEST(Plan, ScanOnSampleNodataScene) {
  // data/scene_nodata.tif: x 1536..2560, y 0..1024 is nodata (value 0 and a
  // per-dataset mask): on a 512 grid without overlap, exactly 4 tiles.
  std::string path = asd_test::data_dir() + "/scene_nodata.tif";
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  if (!ds) GTEST_SKIP() << "sample data not found: " << path;
  asd_plan *p = plan(ds, 512, 512, 0);
  ASSERT_NE(nullptr, p);
  ASSERT_EQ(6, asd_plan_cols(p));
  ASSERT_EQ(4, asd_plan_rows(p));
  ASSERT_EQ(0, asd_plan_scan(p, ds, nullptr, nullptr, nullptr));
  EXPECT_EQ(4, asd_plan_skip_count(p, ASD_SKIP_NODATA));
  EXPECT_EQ(0, asd_plan_skip_count(p, ASD_SKIP_CONSTANT));
  for (int i = 0; i < asd_plan_count(p); i++) {
    const asd_tile *t = asd_plan_tile(p, i);
    bool inside = t->x >= 1536 && t->x + t->w <= 2560 && t->y + t->h <= 1024;
    EXPECT_EQ(inside ? ASD_SKIP_NODATA : ASD_SKIP_NONE, t->skip) << "tile " << i;
  }
  asd_plan_free(p);
  GDALClose(ds);
}
