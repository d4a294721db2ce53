// End-to-end tests of what the client does with model results it cannot
// use (issue 13, client): a result larger than ASD_MAX_RESULT_BYTES fails
// its tile with a reason naming the option, a result that is not JSON fails
// its tile with the parser's reason, and the run goes on with the other
// tiles (exit status 2, everything else written).
//
// The model is a container the test serves itself on loopback (MiniHttp:
// GET /ping, POST /invocations), behind the real local endpoint's
// SageMaker-async runtime, so the results reach the client exactly as an
// endpoint's output objects would.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_mini_http.h"
#include "e2e_helpers.h"

namespace {

using asd_e2e::RunResult;
using asd_e2e::TempDir;

// Reasons of the failed tiles in the output's tiles layer.
std::vector<std::string> failed_reasons(const std::string &path) {
  std::vector<std::string> out;
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) return out;
  OGRLayerH l = GDALDatasetGetLayerByName(ds, "tiles");
  if (l) {
    int si = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "status");
    int ri = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "reason");
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(l)) != nullptr) {
      if (std::string(OGR_F_GetFieldAsString(f, si)) == "failed") out.push_back(OGR_F_GetFieldAsString(f, ri));
      OGR_F_Destroy(f);
    }
  }
  GDALClose(ds);
  return out;
}

TEST(E2eResults, TooLargeAndMalformedResultsFailTheirTileOnly) {
  GDALAllRegister();
  // Invocation 1 answers 300 kB (over the 100 kB cap below), invocation 2
  // answers HTML, every other one an empty FeatureCollection.
  std::atomic<int> calls{0};
  std::string big = R"({"type":"FeatureCollection","features":[],"padding":")" + std::string(300000, 'x') + "\"}";
  asd_test::MiniHttp model([&](const asd_test::MiniRequest &req) {
    asd_test::MiniResponse r;
    r.headers.push_back({"Content-Type", "application/json"});
    if (req.path == "/ping") return r;
    int n = ++calls;
    r.body = n == 1 ? big : n == 2 ? "<html>502 Bad Gateway</html>" : R"({"type":"FeatureCollection","features":[]})";
    return r;
  });
  asd_test::LocalEndpoint ep({"-bucket", asd_e2e::kInputBucket, "-endpoint",
                              std::string(asd_e2e::kEndpoint) + ",model=" + model.url() +
                                  ",output=s3://e2e-output/results,failure=s3://e2e-output/failures,instances=1,"
                                  "concurrency=2"});
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string out = dir.path() + "/o.gpkg";
  RunResult r = asd_e2e::run_app(
      asd_e2e::app_args(asd_e2e::sample("scene_utm.tif"), out,
                        {"-tile-size", "1024", "-overlap", "128", "--config", "ASD_MAX_RESULT_BYTES", "100000"}),
      dir.path());
  EXPECT_EQ(2, r.status) << r.err;
  std::map<std::string, int> st = asd_e2e::tile_statuses(out);
  EXPECT_EQ(2, st["failed"]);
  EXPECT_GE(st["succeeded"], 4) << "the run goes on after the bad results";
  std::vector<std::string> reasons = failed_reasons(out);
  ASSERT_EQ(2u, reasons.size());
  int too_large = 0, not_json = 0;
  for (const std::string &s : reasons) {
    if (s.find("ASD_MAX_RESULT_BYTES (100000 bytes)") != std::string::npos) too_large++;
    if (s.find("not JSON") != std::string::npos) not_json++;
    EXPECT_EQ(std::string::npos, s.find('\n')) << s;
  }
  EXPECT_EQ(1, too_large) << reasons[0] << " | " << reasons[1];
  EXPECT_EQ(1, not_json) << reasons[0] << " | " << reasons[1];
}

}  // namespace
