// Read + encode: every payload format decodes (with GDAL) to the source
// pixels, range adjustment modes, padding, skipping, payload
// georeferencing, and concurrent use from several threads.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "asd_test_paths.h"
#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_plan.h"

namespace {

unsigned char pattern(int b, int x, int y) { return (unsigned char)((x * 7 + y * 13 + b * 50 + (x * y) % 17) % 256); }

// A 3-band Byte GeoTIFF (tiled 64x64) with a deterministic pattern.
std::string make_rgb(const std::string &name, int w, int h) {
  GDALAllRegister();
  char **co = CSLSetNameValue(nullptr, "TILED", "YES");
  co = CSLSetNameValue(co, "BLOCKXSIZE", "64");
  co = CSLSetNameValue(co, "BLOCKYSIZE", "64");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name.c_str(), w, h, 3, GDT_Byte, co);
  CSLDestroy(co);
  double gt[6] = {500000, 0.5, 0, 4500000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32631);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  std::vector<unsigned char> buf((size_t)w * h);
  for (int b = 1; b <= 3; b++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) buf[(size_t)y * w + x] = pattern(b, x, y);
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, w, h, buf.data(), w, h, GDT_Byte,
                                    0, 0));
  }
  GDALClose(ds);
  return name;
}

// Decodes a payload with GDAL; returns band-sequential Byte pixels.
std::vector<unsigned char> decode(const asd_payload &p, int *w, int *h, int *nb, double *gt = nullptr,
                                  std::string *driver = nullptr) {
  static int serial = 0;
  std::string name = "/vsimem/decode_" + std::to_string(serial++);
  VSILFILE *f = VSIFileFromMemBuffer(name.c_str(), p.data, p.len, FALSE);
  VSIFCloseL(f);
  GDALDatasetH ds = GDALOpen(name.c_str(), GA_ReadOnly);
  std::vector<unsigned char> px;
  if (ds) {
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    *nb = GDALGetRasterCount(ds);
    px.resize((size_t)*w * *h * *nb);
    EXPECT_EQ(CE_None, GDALDatasetRasterIO(ds, GF_Read, 0, 0, *w, *h, px.data(), *w, *h, GDT_Byte, *nb, nullptr,
                                           0, 0, 0));
    if (gt && GDALGetGeoTransform(ds, gt) != CE_None) gt[0] = NAN;
    if (driver) *driver = GDALGetDriverShortName(GDALGetDatasetDriver(ds));
    GDALClose(ds);
  }
  VSIUnlink(name.c_str());
  return px;
}

asd_tile tile(int x, int y, int w, int h, int index = 0) {
  asd_tile t;
  memset(&t, 0, sizeof(t));
  t.index = index;
  t.x = x;
  t.y = y;
  t.w = w;
  t.h = h;
  return t;
}

class EncodeTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = make_rgb("/vsimem/encode_src.tif", 300, 200); }
  void TearDown() override { VSIUnlink(path_.c_str()); }
  std::string path_;
};

}  // namespace

TEST_F(EncodeTest, LosslessFormatsRoundTrip) {
  struct Case {
    asd_encode_format fmt;
    const char *driver;
    const char *ctype;
  } cases[] = {{ASD_FORMAT_PNG, "PNG", "image/png"},
               {ASD_FORMAT_GTIFF, "GTiff", "image/tiff"},
               {ASD_FORMAT_NITF, "NITF", "application/octet-stream"}};
  for (const Case &c : cases) {
    asd_encode_options o;
    asd_encode_options_init(&o);
    o.format = c.fmt;
    asd_encoder *e = asd_encoder_new(path_.c_str(), &o);
    ASSERT_NE(nullptr, e) << c.driver;
    EXPECT_EQ(3, asd_encoder_band_count(e));
    asd_tile t = tile(37, 21, 128, 96);
    asd_payload p;
    ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p)) << c.driver;
    EXPECT_STREQ(c.ctype, p.content_type);
    int w = 0, h = 0, nb = 0;
    double gt[6] = {0};
    std::string drv;
    std::vector<unsigned char> px = decode(p, &w, &h, &nb, gt, &drv);
    EXPECT_EQ(c.driver, drv);
    ASSERT_EQ(128, w);
    ASSERT_EQ(96, h);
    ASSERT_EQ(3, nb);
    size_t bad = 0;
    for (int b = 0; b < 3; b++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          if (px[(size_t)b * w * h + (size_t)y * w + x] != pattern(b + 1, 37 + x, 21 + y)) bad++;
    EXPECT_EQ(0u, bad) << c.driver;
    if (c.fmt == ASD_FORMAT_GTIFF || c.fmt == ASD_FORMAT_NITF) {
      // The payload is georeferenced to the tile: origin shifted by (37, 21) pixels.
      // NITF stores UTM corners in whole metres (IGEOLO), GeoTIFF exactly.
      const double tol = c.fmt == ASD_FORMAT_NITF ? 1.0 : 1e-6;
      EXPECT_NEAR(500000 + 37 * 0.5, gt[0], tol) << c.driver;
      EXPECT_NEAR(4500000 - 21 * 0.5, gt[3], tol) << c.driver;
      EXPECT_NEAR(0.5, gt[1], tol / 100) << c.driver;
    }
    asd_payload_free(&p);
    EXPECT_EQ(nullptr, p.data);
    asd_encoder_free(e);
  }
  // No /vsimem/ file is left behind by the encoder.
  char **left = VSIReadDir("/vsimem/");
  for (char **l = left; l && *l; l++) EXPECT_EQ(nullptr, strstr(*l, "asd_encode_")) << *l;
  CSLDestroy(left);
}

TEST_F(EncodeTest, JpegQualityAndBandSelection) {
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.format = ASD_FORMAT_JPEG;
  o.jpeg_quality = 95;
  asd_encoder *e = asd_encoder_new(path_.c_str(), &o);
  ASSERT_NE(nullptr, e);
  asd_tile t = tile(0, 0, 128, 128);
  asd_payload hi;
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &hi));
  asd_encoder_free(e);
  int w, h, nb;
  std::vector<unsigned char> px = decode(hi, &w, &h, &nb);
  ASSERT_EQ(3, nb);
  double err = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) err += std::fabs((double)px[(size_t)y * w + x] - pattern(1, x, y));
  EXPECT_LT(err / (w * h), 30.0);  // lossy but close (unrelated pixels differ by ~85)
  o.jpeg_quality = 10;
  e = asd_encoder_new(path_.c_str(), &o);
  asd_payload lo;
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &lo));
  EXPECT_LT(lo.len, hi.len);
  asd_payload_free(&lo);
  asd_payload_free(&hi);
  asd_encoder_free(e);

  // Band 3 alone as a grey PNG.
  asd_encode_options_init(&o);
  o.bands[0] = 3;
  o.band_count = 1;
  e = asd_encoder_new(path_.c_str(), &o);
  ASSERT_NE(nullptr, e);
  asd_payload p;
  t = tile(10, 10, 50, 40);
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  px = decode(p, &w, &h, &nb);
  ASSERT_EQ(1, nb);
  EXPECT_EQ(pattern(3, 10, 10), px[0]);
  EXPECT_EQ(pattern(3, 59, 49), px[(size_t)39 * 50 + 49]);
  asd_payload_free(&p);
  asd_encoder_free(e);

  // A band that does not exist is a clear error.
  o.bands[0] = 7;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_encoder_new(path_.c_str(), &o));
  EXPECT_NE(std::string::npos, std::string(CPLGetLastErrorMsg()).find("band 7"));
  EXPECT_EQ(nullptr, asd_encoder_new("/vsimem/no_such_file.tif", nullptr));
  CPLPopErrorHandler();
}

TEST_F(EncodeTest, PaddingKeepsPixelsTopLeft) {
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.pad_to_width = 128;
  o.pad_to_height = 128;
  asd_encoder *e = asd_encoder_new(path_.c_str(), &o);
  asd_tile t = tile(256, 128, 44, 72);  // a clipped edge tile
  asd_payload p;
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  int w, h, nb;
  std::vector<unsigned char> px = decode(p, &w, &h, &nb);
  ASSERT_EQ(128, w);
  ASSERT_EQ(128, h);
  EXPECT_EQ(pattern(1, 256, 128), px[0]);
  EXPECT_EQ(pattern(1, 299, 199), px[(size_t)71 * 128 + 43]);
  EXPECT_EQ(0, px[(size_t)71 * 128 + 44]);  // padding
  EXPECT_EQ(0, px[(size_t)100 * 128 + 10]);
  asd_payload_free(&p);
  asd_encoder_free(e);
}

TEST(Encode, RangeAdjustmentModes) {
  GDALAllRegister();
  const char *name = "/vsimem/encode_u16.tif";
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name, 200, 100, 1, GDT_UInt16, nullptr);
  std::vector<uint16_t> v(200 * 100);
  // Values 1000..2990 along x; a few outliers at 60000 in one column.
  for (int y = 0; y < 100; y++)
    for (int x = 0; x < 200; x++) v[(size_t)y * 200 + x] = (uint16_t)(1000 + x * 10);
  for (int y = 0; y < 100; y++) v[(size_t)y * 200 + 199] = 60000;
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, 200, 100, v.data(), 200, 100,
                                  GDT_UInt16, 0, 0));
  GDALClose(ds);

  asd_encode_options o;
  asd_encode_options_init(&o);
  double off[1], sc[1];
  int w, h, nb;
  asd_tile t = tile(0, 0, 200, 100);
  asd_payload p;

  // none: clamped.
  o.scale = ASD_SCALE_NONE;
  asd_encoder *e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  ASSERT_EQ(1, asd_encoder_scaling(e, off, sc));
  EXPECT_EQ(0, off[0]);
  EXPECT_EQ(1, sc[0]);
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  std::vector<unsigned char> px = decode(p, &w, &h, &nb);
  EXPECT_EQ(255, px[0]);
  asd_payload_free(&p);
  asd_encoder_free(e);

  // minmax: 1000 -> 0, 60000 -> 255.
  o.scale = ASD_SCALE_MINMAX;
  e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling(e, off, sc);
  EXPECT_DOUBLE_EQ(1000, off[0]);
  EXPECT_DOUBLE_EQ(255.0 / 59000, sc[0]);
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  px = decode(p, &w, &h, &nb);
  EXPECT_EQ(0, px[0]);
  EXPECT_EQ(255, px[199]);
  asd_payload_free(&p);
  asd_encoder_free(e);

  // percentile 0..98: the outlier column (0.5 % of the pixels) is clipped away.
  o.scale = ASD_SCALE_PERCENTILE;
  o.percentile_low = 0;
  o.percentile_high = 98;
  e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling(e, off, sc);
  EXPECT_DOUBLE_EQ(1000, off[0]);
  EXPECT_NEAR(255.0 / (2960 - 1000), sc[0], 255.0 / (2960 - 1000) * 0.02);
  asd_encoder_free(e);

  // explicit 1000..2020: x = 51 -> 1510 -> 127.5 -> 128.
  o.scale = ASD_SCALE_EXPLICIT;
  o.src_min[0] = 1000;
  o.src_max[0] = 2020;
  o.scale_count = 1;
  e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  px = decode(p, &w, &h, &nb);
  EXPECT_EQ(0, px[0]);
  EXPECT_EQ(128, px[51]);
  EXPECT_EQ(255, px[150]);
  asd_payload_free(&p);
  asd_encoder_free(e);

  // An empty explicit range is refused.
  o.src_max[0] = 1000;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_encoder_new(name, &o));
  CPLPopErrorHandler();
  VSIUnlink(name);
}

TEST(Encode, StatisticsFromOverview) {
  GDALAllRegister();
  // A real file (overviews), unique per process: other builds may run too.
  const std::string path = testing::TempDir() + "/asd_encode_ovr_" + std::to_string(getpid()) + ".tif";
  const char *name = path.c_str();
  const int N = 2048;
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name, N, N, 1, GDT_Int16, nullptr);
  std::vector<int16_t> v((size_t)N * N);
  for (size_t i = 0; i < v.size(); i++) v[i] = (int16_t)(i % N);
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, N, N, v.data(), N, N, GDT_Int16, 0, 0));
  GDALClose(ds);
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.scale = ASD_SCALE_MINMAX;
  double off[1], sc[1];
  // Without overviews, sampled blocks must reach both sides of the image.
  asd_encoder *e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling(e, off, sc);
  EXPECT_DOUBLE_EQ(0, off[0]);
  EXPECT_DOUBLE_EQ(255.0 / 2047, sc[0]);
  asd_encoder_free(e);
  ds = GDALOpen(name, GA_Update);
  int levels[1] = {2};
  ASSERT_EQ(CE_None, GDALBuildOverviews(ds, "NEAREST", 1, levels, 0, nullptr, nullptr, nullptr));
  GDALClose(ds);
  e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling(e, off, sc);
  // The 1/2 nearest overview keeps every other column (a range of 2046):
  // the statistics came from it (the full image spans 2047).
  EXPECT_DOUBLE_EQ(255.0 / 2046, sc[0]) << off[0];
  asd_encoder_free(e);
  // Nothing was written beside the source.
  VSIStatBufL st;
  EXPECT_NE(0, VSIStatL(CPLSPrintf("%s.aux.xml", name), &st));
  VSIUnlink(name);
}

TEST(Encode, SkipsNodataAndConstantTiles) {
  GDALAllRegister();
  const char *name = "/vsimem/encode_skip.tif";
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name, 200, 100, 3, GDT_Byte, nullptr);
  std::vector<unsigned char> buf(100 * 100);
  for (int b = 1; b <= 3; b++) {
    GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), 0);
    std::fill(buf.begin(), buf.end(), 0);
    ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, 100, 100, buf.data(), 100, 100, GDT_Byte, 0, 0));
    std::fill(buf.begin(), buf.end(), 42);
    ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 100, 0, 100, 100, buf.data(), 100, 100, GDT_Byte, 0, 0));
  }
  GDALClose(ds);
  asd_encode_options o;
  asd_encode_options_init(&o);
  asd_encoder *e = asd_encoder_new(name, &o);
  ASSERT_NE(nullptr, e);
  asd_payload p;
  asd_tile t = tile(0, 0, 100, 100);
  EXPECT_EQ(ASD_ENCODE_SKIPPED, asd_encoder_encode(e, &t, &p));
  EXPECT_EQ(ASD_SKIP_NODATA, p.skip);
  EXPECT_EQ(nullptr, p.data);
  t = tile(100, 0, 100, 100);
  EXPECT_EQ(ASD_ENCODE_SKIPPED, asd_encoder_encode(e, &t, &p));
  EXPECT_EQ(ASD_SKIP_CONSTANT, p.skip);
  // Half nodata, half constant: constant.
  t = tile(50, 0, 100, 100);
  EXPECT_EQ(ASD_ENCODE_SKIPPED, asd_encoder_encode(e, &t, &p));
  EXPECT_EQ(ASD_SKIP_CONSTANT, p.skip);
  asd_encoder_free(e);
  // With skipping off, the nodata tile is encoded (nodata -> 0).
  o.skip_nodata = 0;
  o.skip_constant = 0;
  e = asd_encoder_new(name, &o);
  t = tile(0, 0, 100, 100);
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  asd_payload_free(&p);
  asd_encoder_free(e);
  VSIUnlink(name);
}

TEST_F(EncodeTest, ConcurrentThreadsGiveIdenticalPayloads) {
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = 64;
  po.overlap = 16;
  GDALDatasetH ds = GDALOpen(path_.c_str(), GA_ReadOnly);
  asd_plan *plan = asd_plan_new(ds, &po);
  ASSERT_NE(nullptr, plan);
  const int n = asd_plan_count(plan);
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.max_handles = 3;  // fewer handles than threads: callers must wait, not fail
  asd_encoder *e = asd_encoder_new(path_.c_str(), &o);
  ASSERT_NE(nullptr, e);
  std::vector<std::string> serial(n), parallel(n);
  for (int i = 0; i < n; i++) {
    asd_payload p;
    ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, asd_plan_tile(plan, i), &p));
    serial[i].assign((const char *)p.data, p.len);
    asd_payload_free(&p);
  }
  std::vector<std::thread> threads;
  std::vector<int> failures(6, 0);
  for (int k = 0; k < 6; k++)
    threads.emplace_back([&, k] {
      for (int i = k; i < n; i += 6) {
        asd_payload p;
        if (asd_encoder_encode(e, asd_plan_tile(plan, i), &p) != ASD_ENCODE_OK) {
          failures[k]++;
          continue;
        }
        parallel[i].assign((const char *)p.data, p.len);
        asd_payload_free(&p);
      }
    });
  for (auto &t : threads) t.join();
  for (int k = 0; k < 6; k++) EXPECT_EQ(0, failures[k]);
  for (int i = 0; i < n; i++) EXPECT_EQ(serial[i], parallel[i]) << "tile " << i;
  asd_encoder_free(e);
  asd_plan_free(plan);
  GDALClose(ds);
}

TEST(Encode, FormatAndModeNames) {
  EXPECT_EQ(ASD_FORMAT_PNG, asd_encode_format_from_name("png"));
  EXPECT_EQ(ASD_FORMAT_JPEG, asd_encode_format_from_name("JPG"));
  EXPECT_EQ(ASD_FORMAT_GTIFF, asd_encode_format_from_name("GeoTIFF"));
  EXPECT_EQ(ASD_FORMAT_NITF, asd_encode_format_from_name("nitf"));
  EXPECT_EQ(ASD_FORMAT_WEBP, asd_encode_format_from_name("webp"));
  EXPECT_EQ(-1, asd_encode_format_from_name("bmp"));
  EXPECT_EQ(ASD_SCALE_PERCENTILE, asd_scale_mode_from_name("percentile"));
  EXPECT_EQ(ASD_SCALE_MINMAX, asd_scale_mode_from_name("minmax"));
  EXPECT_EQ(-1, asd_scale_mode_from_name("gamma"));
}

TEST_F(EncodeTest, VrtSourceEncodesTheSamePixels) {
  // A VRT over the GeoTIFF: the encoder opens it by name like any raster.
  std::string vrt = "/vsimem/encode_src.vrt";
  GDALDatasetH src = GDALOpen(path_.c_str(), GA_ReadOnly);
  GDALDatasetH v = GDALCreateCopy(GDALGetDriverByName("VRT"), vrt.c_str(), src, FALSE, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, v);
  GDALClose(v);
  GDALClose(src);
  asd_encoder *a = asd_encoder_new(path_.c_str(), nullptr);
  asd_encoder *b = asd_encoder_new(vrt.c_str(), nullptr);
  ASSERT_NE(nullptr, a);
  ASSERT_NE(nullptr, b);
  asd_tile t = tile(100, 50, 128, 128);
  asd_payload pa, pb;
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(a, &t, &pa));
  ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(b, &t, &pb));
  int w, h, nb;
  EXPECT_EQ(decode(pa, &w, &h, &nb), decode(pb, &w, &h, &nb));
  asd_payload_free(&pa);
  asd_payload_free(&pb);
  asd_encoder_free(a);
  asd_encoder_free(b);
  VSIUnlink(vrt.c_str());
}

TEST(Encode, RpcPayloadsDescribeTheTile) {
  // A GeoTIFF / NITF payload cut from the RPC sample carries RPCs shifted
  // to the tile: tile pixel (u, v) lands where image pixel (x+u, y+v) does.
  std::string src = asd_test::data_dir() + "/scene_rpc.ntf";
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(src.c_str(), GA_ReadOnly);
  if (!ds) GTEST_SKIP() << "sample data not found: " << src;
  for (asd_encode_format fmt : {ASD_FORMAT_GTIFF, ASD_FORMAT_NITF}) {
    asd_encode_options o;
    asd_encode_options_init(&o);
    o.format = fmt;
    asd_encoder *e = asd_encoder_new(src.c_str(), &o);
    ASSERT_NE(nullptr, e);
    asd_tile t = tile(1000, 500, 256, 256);
    asd_payload p;
    ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
    std::string name = "/vsimem/rpc_payload_" + std::to_string((int)fmt);
    VSIFCloseL(VSIFileFromMemBuffer(name.c_str(), p.data, p.len, FALSE));
    GDALDatasetH tds = GDALOpen(name.c_str(), GA_ReadOnly);
    ASSERT_NE(nullptr, tds);
    char **rpc = GDALGetMetadata(tds, "RPC");
    ASSERT_NE(nullptr, rpc) << asd_encode_format_name(fmt);
    GDALRPCInfoV2 full, part;
    ASSERT_TRUE(GDALExtractRPCInfoV2(GDALGetMetadata(ds, "RPC"), &full));
    ASSERT_TRUE(GDALExtractRPCInfoV2(rpc, &part));
    EXPECT_NEAR(full.dfLINE_OFF - 500, part.dfLINE_OFF, 1e-6);
    EXPECT_NEAR(full.dfSAMP_OFF - 1000, part.dfSAMP_OFF, 1e-6);
    GDALClose(tds);
    VSIUnlink(name.c_str());
    asd_payload_free(&p);
    asd_encoder_free(e);
  }
  GDALClose(ds);
}
