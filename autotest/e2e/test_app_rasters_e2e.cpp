// End-to-end tests of gdal_asyncdetect on real-world kinds of rasters (issue
// 16), against the real local endpoint with the blobs model:
//   - non-Byte imagery gets a dynamic-range adjustment by default: the 11-bit
//     UInt16 sample and a Float32 reflectance image generated here are
//     detected as well as the 8-bit scene, with no option;
//   - the summary and the metrics say which adjustment was applied.
#include <gtest/gtest.h>

#include <json-c/json.h>

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
