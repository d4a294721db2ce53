// asd_detect() called in-process, as a host application (a pipeline, QGIS)
// calls it, against the real local endpoint: on datasets that cannot be
// reopened by name (MEM, a GeoTIFF opened with OVERVIEW_LEVEL), on a VRT
// given as XML, two runs at once in one process, and without touching the
// process's GDAL block cache.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "asyncdetect/asd_app.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "e2e_helpers.h"
#include "gdal.h"

using asd_e2e::Accuracy;
using asd_e2e::TempDir;

namespace {

asd_detect_options *options(std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"-endpoint",         asd_e2e::kEndpoint, "-input-bucket", asd_e2e::kInputBucket,
                                "-polling-interval", "0.05",             "-max-polling-interval", "0.3",
                                "-max-wait-time",    "120",              "-tile-size",   "1024",
                                "-overlap",          "128"};
  a.insert(a.end(), extra.begin(), extra.end());
  char **argv = nullptr;
  for (auto &s : a) argv = CSLAddString(argv, s.c_str());
  asd_detect_options *o = asd_detect_options_new(argv, nullptr);
  CSLDestroy(argv);
  return o;
}

// The sample scene copied into a MEM dataset: no name to reopen it by.
GDALDatasetH mem_copy(const std::string &path) {
  GDALDatasetH src = GDALOpen(path.c_str(), GA_ReadOnly);
  if (!src) return nullptr;
  GDALDatasetH mem = GDALCreateCopy(GDALGetDriverByName("MEM"), "", src, FALSE, nullptr, nullptr, nullptr);
  GDALClose(src);
  return mem;
}

struct DetectRun {
  int status = -1;
  asd_detect_summary summary{};
  std::string error;
};

DetectRun detect(GDALDatasetH src, const std::string &dest, std::vector<std::string> extra = {}) {
  DetectRun r;
  asd_detect_options *o = options(extra);
  if (!o) {
    r.error = CPLGetLastErrorMsg();
    return r;
  }
  CPLErrorReset();
  r.status = asd_detect(dest.c_str(), src, o, &r.summary, nullptr);
  if (r.status != ASD_DETECT_OK) r.error = CPLGetLastErrorMsg();
  asd_detect_options_free(o);
  return r;
}

void expect_every_object(const std::string &out) {
  Accuracy a = asd_e2e::accuracy(out);
  ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
}

class InProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    GDALAllRegister();
    ep_ = std::make_unique<asd_test::LocalEndpoint>(asd_e2e::endpoint_args());
    asd_test::set_local_aws_env(*ep_);
  }
  std::unique_ptr<asd_test::LocalEndpoint> ep_;
  TempDir dir_;
};

}  // namespace

// A MEM dataset cannot be reopened by name: the run shares the caller's
// handle (it failed with "cannot read input ''" before), and leaves the
// process's GDAL block cache as it found it.
TEST_F(InProcess, MemDatasetAndTheBlockCacheUntouched) {
  GDALDatasetH mem = mem_copy(asd_e2e::sample("scene_utm.tif"));
  ASSERT_NE(nullptr, mem);
  const GIntBig cache = (GIntBig)777 * 1024 * 1024;
  GDALSetCacheMax64(cache);
  std::string out = dir_.path() + "/mem.gpkg";
  DetectRun r = detect(mem, out);
  ASSERT_EQ(ASD_DETECT_OK, r.status) << r.error;
  EXPECT_EQ(cache, GDALGetCacheMax64()) << "the library changed a process-wide GDAL setting";
  EXPECT_GT(r.summary.tiles_succeeded, 1);
  EXPECT_EQ(0, r.summary.tiles_failed);
  // The caller's handle is still open and usable.
  EXPECT_EQ(3000, GDALGetRasterXSize(mem));
  GDALClose(mem);
  expect_every_object(out);
}

// A VRT given as its XML text (GDALOpen of the XML string).
TEST_F(InProcess, VrtFromXml) {
  GDALDatasetH probe = GDALOpen(asd_e2e::sample("scene_utm.tif").c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, probe);
  double gt[6];
  GDALGetGeoTransform(probe, gt);
  char *wkt = CPLEscapeString(GDALGetProjectionRef(probe), -1, CPLES_XML);
  GDALClose(probe);
  std::string xml = "<VRTDataset rasterXSize=\"3000\" rasterYSize=\"2000\"><SRS>" + std::string(wkt) +
        "</SRS><GeoTransform>" + CPLSPrintf("%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", gt[0], gt[1], gt[2], gt[3], gt[4], gt[5]) +
        "</GeoTransform>";
  CPLFree(wkt);
  for (int b = 1; b <= 3; b++)
    xml += "<VRTRasterBand dataType=\"Byte\" band=\"" + std::to_string(b) +
           "\"><SimpleSource><SourceFilename relativeToVRT=\"0\">" + asd_e2e::sample("scene_utm.tif") +
           "</SourceFilename><SourceBand>" + std::to_string(b) + "</SourceBand></SimpleSource></VRTRasterBand>";
  xml += "</VRTDataset>";
  GDALDatasetH vrt = GDALOpen(xml.c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, vrt);
  std::string out = dir_.path() + "/vrt.gpkg";
  DetectRun r = detect(vrt, out);
  GDALClose(vrt);
  ASSERT_EQ(ASD_DETECT_OK, r.status) << r.error;
  expect_every_object(out);
}

// A GeoTIFF opened with an open option that changes what it is
// (OVERVIEW_LEVEL=0: the half-size overview): reopening it by name would give
// the full-size image, so the caller's handle is shared and the plan and the
// pixels both come from the overview.
TEST_F(InProcess, DatasetOpenedWithOpenOptions) {
  std::string tif = dir_.path() + "/with_ovr.tif";
  GDALDatasetH src = GDALOpen(asd_e2e::sample("scene_utm.tif").c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, src);
  GDALDatasetH copy = GDALCreateCopy(GDALGetDriverByName("GTiff"), tif.c_str(), src, FALSE, nullptr, nullptr, nullptr);
  GDALClose(src);
  ASSERT_NE(nullptr, copy);
  int level = 2;
  ASSERT_EQ(CE_None, GDALBuildOverviews(copy, "AVERAGE", 1, &level, 0, nullptr, nullptr, nullptr));
  GDALClose(copy);
  const char *const oo[] = {"OVERVIEW_LEVEL=0", nullptr};
  GDALDatasetH ovr = GDALOpenEx(tif.c_str(), GDAL_OF_RASTER, nullptr, oo, nullptr);
  ASSERT_NE(nullptr, ovr);
  ASSERT_EQ(1500, GDALGetRasterXSize(ovr));
  std::string out = dir_.path() + "/ovr.gpkg";
  DetectRun r = detect(ovr, out, {"-tile-size", "512", "-overlap", "64"});
  GDALClose(ovr);
  ASSERT_EQ(ASD_DETECT_OK, r.status) << r.error;
  // 1500 x 1000 in 512-px tiles with 64 px of overlap: 4 x 3 tiles (the
  // full-size image would need 7 x 5).
  EXPECT_EQ(12, r.summary.tiles_planned);
  EXPECT_EQ(0, r.summary.tiles_failed);
  // The pixels are the overview's too: what is found lies where the ground
  // truth says (reading the full-size image through a reopened handle would
  // put the top-left quarter's objects all over the scene).
  Accuracy a = asd_e2e::accuracy(out);
  ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_GE(a.score.precision(), 0.9) << a.score.describe();
  EXPECT_GE(a.score.recall(), 0.5) << a.score.describe();
}

// Two runs at once in one process, each on its own MEM dataset and output:
// nothing global is shared unsafely, both give the whole result.
TEST_F(InProcess, TwoConcurrentRuns) {
  GDALDatasetH a = mem_copy(asd_e2e::sample("scene_utm.tif"));
  GDALDatasetH b = mem_copy(asd_e2e::sample("scene_utm.tif"));
  ASSERT_NE(nullptr, a);
  ASSERT_NE(nullptr, b);
  std::string out_a = dir_.path() + "/a.gpkg", out_b = dir_.path() + "/b.gpkg";
  DetectRun ra, rb;
  std::thread ta([&] { ra = detect(a, out_a); });
  std::thread tb([&] { rb = detect(b, out_b, {"-tile-size", "768"}); });
  ta.join();
  tb.join();
  GDALClose(a);
  GDALClose(b);
  ASSERT_EQ(ASD_DETECT_OK, ra.status) << ra.error;
  ASSERT_EQ(ASD_DETECT_OK, rb.status) << rb.error;
  EXPECT_EQ(0, ra.summary.tiles_failed);
  EXPECT_EQ(0, rb.summary.tiles_failed);
  expect_every_object(out_a);
  expect_every_object(out_b);
}
