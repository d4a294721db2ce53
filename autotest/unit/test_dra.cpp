// Dynamic-range adjustment (tiler/dra.c and the encoder's use of it): the
// OSML rule on the OSML toolkit's own example, exact percentiles of integer
// bands, nodata / mask / NaN pixels left out of the statistics, bounded and
// deterministic statistics of Float32 bands, the AUTO default (Byte passed
// through, anything else adjusted) and -scale-mode parsing.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "asyncdetect/asd_encode.h"
#include "dra.h"

namespace {

// A one-band tiled GeoTIFF in /vsimem/ holding v (w x h) of type dt.
template <typename T>
std::string make_band(const std::string &name, int w, int h, GDALDataType dt, const std::vector<T> &v,
                      const double *nodata = nullptr) {
  GDALAllRegister();
  char **co = CSLSetNameValue(nullptr, "TILED", "YES");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name.c_str(), w, h, 1, dt, co);
  CSLDestroy(co);
  if (nodata) GDALSetRasterNoDataValue(GDALGetRasterBand(ds, 1), *nodata);
  EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, w, h, const_cast<T *>(v.data()), w,
                                  h, dt, 0, 0));
  GDALClose(ds);
  return name;
}

// The statistics of band 1 of name.
struct Stats {
  asd_dra_band *b = nullptr;
  explicit Stats(const std::string &name) {
    GDALDatasetH ds = GDALOpen(name.c_str(), GA_ReadOnly);
    EXPECT_NE(nullptr, ds);
    int bands[1] = {1};
    EXPECT_EQ(0, asd_dra_collect(ds, bands, 1, nullptr, &b, nullptr, 0));
    GDALClose(ds);
  }
  ~Stats() { asd_dra_band_free(b); }
};

// OSML's unit test counts: 1 pixel at each of 1..98, 200 at each of
// 100..399, 1 at 1022.  Filler pixels take the nodata value.
std::vector<uint16_t> osml_counts(int npix, uint16_t filler) {
  std::vector<uint16_t> v;
  for (int i = 1; i < 99; i++) v.push_back((uint16_t)i);
  for (int i = 100; i < 400; i++)
    for (int k = 0; k < 200; k++) v.push_back((uint16_t)i);
  v.push_back(1022);
  while ((int)v.size() < npix) v.push_back(filler);
  return v;
}

}  // namespace

// The DRA of the OSML toolkit's own test: suggested range ~47..506.
TEST(Dra, OsmlExampleAndNodataExcluded) {
  const int w = 250, h = 250;  // 62,500 pixels: 60,099 values + 2,401 nodata (3.8 %)
  double nodata = 0;
  std::string name = make_band("/vsimem/dra_osml.tif", w, h, GDT_UInt16, osml_counts(w * h, 0), &nodata);
  Stats s(name);
  ASSERT_NE(nullptr, s.b);
  EXPECT_EQ(60099, asd_dra_band_count(s.b));
  EXPECT_EQ(1, asd_dra_band_min(s.b));
  EXPECT_EQ(1022, asd_dra_band_max(s.b));
  double lo = 0, hi = 0;
  asd_dra_range(s.b, ASD_SCALE_DRA, 2, 98, &lo, &hi);
  EXPECT_NEAR(47, lo, 1);
  EXPECT_NEAR(506, hi, 1);
  asd_dra_range(s.b, ASD_SCALE_MINMAX, 2, 98, &lo, &hi);
  EXPECT_EQ(1, lo);
  EXPECT_EQ(1022, hi);
  // The plain cut: exact ranks of the histogram.
  asd_dra_range(s.b, ASD_SCALE_PERCENTILE, 2, 98, &lo, &hi);
  EXPECT_EQ(asd_dra_band_percentile(s.b, 2, 0), lo);
  EXPECT_EQ(asd_dra_band_percentile(s.b, 98, 1), hi);
  EXPECT_GE(lo, 100);
  EXPECT_LE(hi, 399);
  VSIUnlink(name.c_str());

  // Without the nodata declaration, the 2,401 zeros are data: they are the
  // lowest 3.8 %, so the low cut falls on them.
  name = make_band("/vsimem/dra_osml_nond.tif", w, h, GDT_UInt16, osml_counts(w * h, 0));
  Stats d(name);
  EXPECT_EQ(w * h, asd_dra_band_count(d.b));
  EXPECT_EQ(0, asd_dra_band_percentile(d.b, 2, 0));
  VSIUnlink(name.c_str());
}

TEST(Dra, WidenRule) {
  double lo, hi;
  asd_dra_widen(100, 200, 0, 1000, &lo, &hi);
  EXPECT_DOUBLE_EQ(80, lo);
  EXPECT_DOUBLE_EQ(240, hi);
  asd_dra_widen(100, 200, 95, 210, &lo, &hi);  // never beyond the actual extremes
  EXPECT_DOUBLE_EQ(95, lo);
  EXPECT_DOUBLE_EQ(210, hi);
}

// Masked pixels (a per-dataset mask) and NaN are not statistics.
TEST(Dra, MaskAndNanExcluded) {
  GDALAllRegister();
  const int w = 200, h = 100;
  std::vector<float> v((size_t)w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) v[(size_t)y * w + x] = x < 20 ? 1e6f : (x < 40 ? NAN : 0.01f * (float)x);
  const char *name = "/vsimem/dra_mask.tif";
  make_band(name, w, h, GDT_Float32, v);
  GDALDatasetH ds = GDALOpen(name, GA_Update);
  ASSERT_EQ(CE_None, GDALCreateMaskBand(GDALGetRasterBand(ds, 1), GMF_PER_DATASET));
  std::vector<unsigned char> m((size_t)w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) m[(size_t)y * w + x] = x < 20 ? 0 : 255;
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetMaskBand(GDALGetRasterBand(ds, 1)), GF_Write, 0, 0, w, h, m.data(), w, h,
                                  GDT_Byte, 0, 0));
  GDALClose(ds);
  Stats s(name);
  ASSERT_NE(nullptr, s.b);
  EXPECT_EQ((long long)(w - 40) * h, asd_dra_band_count(s.b));
  EXPECT_FLOAT_EQ(0.4f, (float)asd_dra_band_min(s.b));
  EXPECT_FLOAT_EQ(1.99f, (float)asd_dra_band_max(s.b));
  VSIUnlink(name);
}

// A Float32 band larger than the reservoir: percentiles within a tenth of a
// percent of the truth, and the same on every run.
TEST(Dra, FloatReservoirIsAccurateAndDeterministic) {
  const int w = 1024, h = 1024;  // 1 Mi values, 4 x the reservoir
  std::vector<float> v((size_t)w * h);
  uint64_t st = 42;
  for (float &x : v) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    x = (float)((st >> 11) * (1.0 / 9007199254740992.0));  // uniform 0..1
  }
  std::string name = make_band("/vsimem/dra_float.tif", w, h, GDT_Float32, v);
  Stats a(name), b(name);
  EXPECT_EQ((long long)w * h, asd_dra_band_count(a.b));
  double p2 = asd_dra_band_percentile(a.b, 2, 0), p98 = asd_dra_band_percentile(a.b, 98, 1);
  EXPECT_NEAR(0.02, p2, 0.001);
  EXPECT_NEAR(0.98, p98, 0.001);
  EXPECT_EQ(p2, asd_dra_band_percentile(b.b, 2, 0));
  EXPECT_EQ(p98, asd_dra_band_percentile(b.b, 98, 1));
  VSIUnlink(name.c_str());
}

// The default: Byte passes through, UInt16 gets the DRA, said in one line.
TEST(Dra, EncoderDefaultIsAutomatic) {
  std::vector<uint8_t> b8(64 * 64, 7);
  std::vector<uint16_t> b16(64 * 64);
  for (size_t i = 0; i < b16.size(); i++) b16[i] = (uint16_t)(200 + i % 1800);
  std::string n8 = make_band("/vsimem/dra_auto8.tif", 64, 64, GDT_Byte, b8);
  std::string n16 = make_band("/vsimem/dra_auto16.tif", 64, 64, GDT_UInt16, b16);
  asd_encode_options o;
  asd_encode_options_init(&o);
  EXPECT_EQ(ASD_SCALE_AUTO, o.scale);
  asd_encode_scaling_info info;

  asd_encoder *e = asd_encoder_new(n8.c_str(), &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling_info(e, &info);
  EXPECT_EQ(ASD_SCALE_NONE, info.mode);
  EXPECT_EQ(1, info.automatic);
  char *d = asd_encode_scaling_describe(&info);
  EXPECT_STREQ("Byte, no range adjustment", d);
  CPLFree(d);
  asd_encoder_free(e);

  e = asd_encoder_new(n16.c_str(), &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling_info(e, &info);
  EXPECT_EQ(ASD_SCALE_DRA, info.mode);
  EXPECT_EQ(1, info.automatic);
  EXPECT_EQ(GDT_UInt16, info.data_type);
  EXPECT_EQ(64 * 64, info.samples[0]);
  EXPECT_GT(info.src_max[0], info.src_min[0]);
  double off[1], sc[1];
  asd_encoder_scaling(e, off, sc);
  EXPECT_DOUBLE_EQ(info.src_min[0], off[0]);
  EXPECT_DOUBLE_EQ(255.0 / (info.src_max[0] - info.src_min[0]), sc[0]);
  d = asd_encode_scaling_describe(&info);
  EXPECT_NE(nullptr, strstr(d, "UInt16 -> Byte by dra 2..98 %, the default (band 1 ")) << d;
  EXPECT_NE(nullptr, strstr(d, "statistics from 1 of 1 blocks of 256x256")) << d;
  CPLFree(d);
  asd_encoder_free(e);

  // Asked for, none clamps whatever the type.
  o.scale = ASD_SCALE_NONE;
  e = asd_encoder_new(n16.c_str(), &o);
  ASSERT_NE(nullptr, e);
  asd_encoder_scaling_info(e, &info);
  EXPECT_EQ(ASD_SCALE_NONE, info.mode);
  EXPECT_EQ(0, info.automatic);
  d = asd_encode_scaling_describe(&info);
  EXPECT_STREQ("UInt16, no range adjustment (values clamped to 0..255)", d);
  CPLFree(d);
  asd_encoder_free(e);
  VSIUnlink(n8.c_str());
  VSIUnlink(n16.c_str());
}

TEST(Dra, ScaleModeParse) {
  asd_scale_mode m = ASD_SCALE_AUTO;
  double lo = 2, hi = 98;
  char err[256];
  EXPECT_EQ(0, asd_scale_mode_parse("none", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(ASD_SCALE_NONE, m);
  EXPECT_EQ(0, asd_scale_mode_parse("minmax", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(ASD_SCALE_MINMAX, m);
  EXPECT_EQ(0, asd_scale_mode_parse("percentile", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(ASD_SCALE_PERCENTILE, m);
  EXPECT_EQ(2, lo);
  EXPECT_EQ(0, asd_scale_mode_parse("percentile:0.5:99.5", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(0.5, lo);
  EXPECT_EQ(99.5, hi);
  EXPECT_EQ(0, asd_scale_mode_parse("dra:1:99", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(ASD_SCALE_DRA, m);
  EXPECT_EQ(1, lo);
  EXPECT_EQ(0, asd_scale_mode_parse("auto", &m, &lo, &hi, err, sizeof err));
  EXPECT_EQ(ASD_SCALE_AUTO, m);
  for (const char *bad : {"gamma", "", "explicit", "minmax:1:2", "percentile:5", "percentile:98:2",
                          "percentile:x:9", "dra:0:101", "percentile:1:2:3"}) {
    err[0] = 0;
    EXPECT_EQ(-1, asd_scale_mode_parse(bad, &m, &lo, &hi, err, sizeof err)) << bad;
    EXPECT_NE(nullptr, strstr(err, "-scale-mode")) << bad;
  }
}

// -srcwin: the statistics come from the tiles' region only.  The left half
// of the image is dark (100..199), the right half bright (3000..3099): over
// the right half the range stays within the bright values, both from the
// blocks and from an overview.
TEST(Dra, StatisticsComeFromTheRegionOnly) {
  const int w = 4096, h = 1024;  // GDAL picks the 2x overview (2048 x 512) for half a million pixels
  std::vector<uint16_t> v((size_t)w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) v[(size_t)y * w + x] = (uint16_t)((x < w / 2 ? 100 : 3000) + (x + y) % 100);
  std::string name = make_band("/vsimem/dra_region.tif", w, h, GDT_UInt16, v);
  for (int with_overview = 0; with_overview < 2; with_overview++) {
    SCOPED_TRACE(with_overview ? "overview" : "blocks");
    GDALDatasetH ds = GDALOpen(name.c_str(), with_overview ? GA_Update : GA_ReadOnly);
    ASSERT_NE(nullptr, ds);
    if (with_overview) {
      int levels[1] = {2};
      ASSERT_EQ(CE_None, GDALBuildOverviews(ds, "AVERAGE", 1, levels, 0, nullptr, nullptr, nullptr));
    }
    int bands[1] = {1};
    const int right[4] = {w / 2, 0, w / 2, h};
    asd_dra_band *b = nullptr;
    char source[128] = "";
    ASSERT_EQ(0, asd_dra_collect(ds, bands, 1, right, &b, source, sizeof source));
    EXPECT_GE(asd_dra_band_min(b), 3000) << source;
    EXPECT_LE(asd_dra_band_max(b), 3099) << source;
    if (with_overview) {
      EXPECT_NE(std::string::npos, std::string(source).find("overview")) << source;
    }
    asd_dra_band_free(b);
    // The whole image (no region) sees both halves.
    ASSERT_EQ(0, asd_dra_collect(ds, bands, 1, nullptr, &b, source, sizeof source));
    EXPECT_LT(asd_dra_band_min(b), 200) << source;
    EXPECT_GE(asd_dra_band_max(b), 3000) << source;
    asd_dra_band_free(b);
    GDALClose(ds);
  }
  VSIUnlink(name.c_str());
  VSIUnlink((name + ".ovr").c_str());
}
