// Unit tests for the run module (run/): each stage of asd_detect() on its
// own, without a server: open input plans the tiles, open output applies the
// existence rules, bind journal + replay turn an earlier run's journal into
// work lists and replayed detections, the sink turns pool events into journal
// rows, output features and a status, and the summary / metrics report it.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "asd_run.h"
#include "asyncdetect/asd_app.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"
#include "ogr_api.h"

#include <json-c/json.h>

namespace {

// 1000 x 700 px, 3 bands, UTM: with 512-px tiles and 128 px of overlap the
// plan is 3 columns (0, 384, and the edge tile shifted inside) x 2 rows.
std::string make_raster(const std::string &dir) {
  std::string path = dir + "/scene.tif";
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), 1000, 700, 3, GDT_Byte, nullptr);
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  GDALSetProjection(ds, "EPSG:32633");
  for (int b = 1; b <= 3; b++) GDALFillRaster(GDALGetRasterBand(ds, b), 100 + b, 0);
  GDALClose(ds);
  return path;
}

const char *kResult = R"({"type":"FeatureCollection","features":[
  {"type":"Feature","id":"a","geometry":null,"properties":{
    "imageGeometry":{"type":"Polygon","coordinates":[[[10,20],[50,20],[50,60],[10,60],[10,20]]]},
    "imageBBox":[10,20,50,60],"featureClasses":[{"iri":"building","score":0.9}]}},
  {"type":"Feature","id":"b","geometry":null,"properties":{
    "imageGeometry":{"type":"Polygon","coordinates":[[[100,120],[150,120],[150,160],[100,160],[100,120]]]},
    "imageBBox":[100,120,150,160],"featureClasses":[{"iri":"vehicle","score":0.8}]}}]})";

class RunStages : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/asd-run-stages-XXXXXX";
    dir_ = mkdtemp(tmpl);
    src_path_ = make_raster(dir_);
    src_ = GDALOpen(src_path_.c_str(), GA_ReadOnly);
    ASSERT_NE(nullptr, src_);
    dest_ = dir_ + "/out.gpkg";
  }
  void TearDown() override {
    if (running_) asd_run_free(&run_);
    asd_detect_options_free(o_);
    if (src_) GDALClose(src_);
    VSIRmdirRecursive(dir_.c_str());
  }
  // Parses options and starts a run up to (not including) open output.
  void start(std::vector<std::string> args) {
    if (running_) asd_run_free(&run_);
    asd_detect_options_free(o_);
    char **argv = nullptr;
    for (auto &a : args) argv = CSLAddString(argv, a.c_str());
    o_ = asd_detect_options_new(argv, nullptr);
    CSLDestroy(argv);
    ASSERT_NE(nullptr, o_) << CPLGetLastErrorMsg();
    memset(&summary_, 0, sizeof summary_);
    asd_run_init(&run_, dest_.c_str(), src_, o_, &summary_, nullptr);
    running_ = true;
    asd_run_report_begin(&run_.report);
    ASSERT_EQ(0, asd_run_open_input(&run_)) << CPLGetLastErrorMsg();
    asd_run_locate_output(&run_);
  }
  // Open output, bind journal, replay: what precedes the run stage.
  int prepare() {
    if (asd_run_open_output(&run_) != 0) return -1;
    if (asd_run_bind_journal(&run_) != 0) return -2;
    if (asd_run_replay(&run_) != 0) return -3;
    asd_run_report_end(&run_.report);
    return 0;
  }
  void done_event(int tile, bool ok, asd_errcode code, const char *text, int http_status = -1,
                  const char *aws_code = "") {
    asd_run_event *e = static_cast<asd_run_event *>(CPLCalloc(1, sizeof *e));
    e->kind = ASD_RUN_EV_DONE;
    e->tile = tile;
    e->ok = ok;
    e->code = code;
    e->http_status = http_status;
    snprintf(e->aws_code, sizeof e->aws_code, "%s", aws_code);
    e->text = CPLStrdup(text);
    e->text_len = strlen(text);
    e->inference_id = CPLStrdup(CPLSPrintf("inf-%d", tile));
    asd_run_handle_event(&run_, e);
    asd_run_event_free(e);
  }
  void submitted_event(int tile) {
    asd_run_event *e = static_cast<asd_run_event *>(CPLCalloc(1, sizeof *e));
    e->kind = ASD_RUN_EV_SUBMITTED;
    e->tile = tile;
    e->inference_id = CPLStrdup(CPLSPrintf("inf-%d", tile));
    e->input_location = CPLStrdup(CPLSPrintf("s3://in/t%d", tile));
    e->output_location = CPLStrdup(CPLSPrintf("s3://out/t%d.out", tile));
    asd_run_handle_event(&run_, e);
    asd_run_event_free(e);
  }
  long long count_features(const std::string &path, const char *layer) {
    GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
    if (!ds) return -1;
    OGRLayerH l = GDALDatasetGetLayerByName(ds, layer);
    long long n = l ? OGR_L_GetFeatureCount(l, TRUE) : -1;
    GDALClose(ds);
    return n;
  }

  std::string dir_, src_path_, dest_;
  GDALDatasetH src_ = nullptr;
  asd_detect_options *o_ = nullptr;
  asd_detect_summary summary_;
  asd_run run_;
  bool running_ = false;
};

}  // namespace

TEST(RunOutput, FormatFromOptionOrExtension) {
  char *args[] = {const_cast<char *>("-of"), const_cast<char *>("CSV"), nullptr};
  asd_detect_options *csv = asd_detect_options_new(args, nullptr);
  ASSERT_NE(nullptr, csv);
  EXPECT_STREQ("CSV", asd_run_output_format(csv, "x.gpkg"));
  char *none[] = {nullptr};
  asd_detect_options *o = asd_detect_options_new(none, nullptr);
  EXPECT_STREQ("GeoJSON", asd_run_output_format(o, "x.geojson"));
  EXPECT_STREQ("FlatGeobuf", asd_run_output_format(o, "/a/b.FGB"));
  EXPECT_STREQ("ESRI Shapefile", asd_run_output_format(o, "x.shp"));
  EXPECT_STREQ("GPKG", asd_run_output_format(o, "no_extension"));
  char name[64];
  asd_run_tiles_layer_name(o, name, sizeof name);
  EXPECT_STREQ("tiles", name);
  asd_detect_options_free(o);
  asd_detect_options_free(csv);
}

TEST_F(RunStages, OpenInputPlansTheTiles) {
  start({"-endpoint", "e", "-tile-size", "512", "-overlap", "128"});
  EXPECT_EQ(6, run_.ntiles);
  EXPECT_NE(nullptr, run_.images[0].encoder);
  EXPECT_STREQ("image/png", run_.content_type);
  EXPECT_STREQ("GPKG", run_.format);
  EXPECT_EQ(dest_, run_.journal_path);
}

TEST_F(RunStages, OpenInputRejectsABandTheInputLacks) {
  char *argv[] = {const_cast<char *>("-b"), const_cast<char *>("4"), nullptr};
  o_ = asd_detect_options_new(argv, nullptr);
  ASSERT_NE(nullptr, o_);
  int usage = 0;
  asd_run_init(&run_, dest_.c_str(), src_, o_, &summary_, &usage);
  running_ = true;
  asd_run_report_begin(&run_.report);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(-1, asd_run_open_input(&run_));
  CPLPopErrorHandler();
  EXPECT_EQ(1, usage);
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "-b 4: input")) << CPLGetLastErrorMsg();
}

TEST_F(RunStages, OpenOutputRefusesAnExistingOutput) {
  VSILFILE *f = VSIFOpenL(dest_.c_str(), "wb");
  VSIFCloseL(f);
  start({"-endpoint", "e"});
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(-1, asd_run_open_output(&run_));
  CPLPopErrorHandler();
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "already exists: use -overwrite")) << CPLGetLastErrorMsg();
  EXPECT_EQ(nullptr, run_.writer);
}

TEST_F(RunStages, SinkJournalsWritesAndDecidesThePartialStatus) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  EXPECT_EQ(6, run_.n_to_encode);
  EXPECT_EQ(0, run_.n_to_resume);
  submitted_event(0);
  done_event(0, true, ASD_OK, kResult);
  submitted_event(1);
  done_event(1, false, ASD_ERR_INFERENCE, "inference failed: model error");
  EXPECT_EQ(ASD_RUN_TILE_SUCCEEDED, run_.tiles[0].state);
  EXPECT_EQ(2, run_.tiles[0].features);
  EXPECT_EQ(ASD_RUN_TILE_FAILED, run_.tiles[1].state);
  EXPECT_STREQ("inference failed: model error", run_.tiles[1].reason);
  EXPECT_EQ(nullptr, run_.fatal);

  EXPECT_EQ(ASD_DETECT_PARTIAL, asd_run_finish(&run_));
  EXPECT_EQ(6, summary_.tiles_planned);
  EXPECT_EQ(1, summary_.tiles_succeeded);
  EXPECT_EQ(1, summary_.tiles_failed);
  EXPECT_EQ(4, summary_.tiles_not_run);
  EXPECT_EQ(2, summary_.features_received);
  asd_run_free(&run_);
  running_ = false;
  EXPECT_EQ(6, count_features(dest_, "tiles"));
  EXPECT_EQ(summary_.features_kept, count_features(dest_, "detections"));
  EXPECT_GT(summary_.features_kept, 0);
}

TEST_F(RunStages, ARunLevelFailureStopsAndRemovesTheOutputItCreated) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  // The message names no code on purpose: the decision reads the typed facts.
  done_event(1, false, ASD_ERR_ENDPOINT, "AccessDenied NoSuchBucket HTTP 403 not found", 500, "InternalFailure");
  EXPECT_EQ(nullptr, run_.fatal) << "a server error is the tile's, whatever its text says";
  EXPECT_EQ(ASD_RUN_TILE_FAILED, run_.tiles[1].state);
  done_event(0, false, ASD_ERR_ENDPOINT, "endpoint invocation failed: Endpoint e of account 1 not found.", 400,
             "ValidationError");
  ASSERT_NE(nullptr, run_.fatal);
  EXPECT_NE(nullptr, strstr(run_.fatal, "endpoint 'e': ")) << run_.fatal;
  EXPECT_EQ(1, run_.stop_now);
  EXPECT_EQ(ASD_RUN_TILE_NOT_RUN, run_.tiles[0].state);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(ASD_DETECT_ERROR, asd_run_finish(&run_));
  CPLPopErrorHandler();
  VSIStatBufL st;
  EXPECT_NE(0, VSIStatL(dest_.c_str(), &st)) << "the output of a run that achieved nothing stays";
}

// An unreadable tile, even before any success, is that tile's failure: the
// other tiles may read fine (a damaged block), and the run finishes with
// exit 1 only when no tile at all could be read (asd_run_finish).
TEST_F(RunStages, AnUnreadableTileBeforeAnySuccessIsTheTilesOwn) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  done_event(2, false, ASD_ERR_INPUT, "cannot read the input: read error at block 3");
  EXPECT_EQ(nullptr, run_.fatal);
  EXPECT_EQ(ASD_RUN_TILE_FAILED, run_.tiles[2].state);
}

TEST_F(RunStages, AfterASuccessARunLevelErrorIsTheTilesOwn) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  done_event(0, true, ASD_OK, kResult);
  done_event(1, false, ASD_ERR_S3, "S3 operation failed: upload: Access Denied", 403, "AccessDenied");
  EXPECT_EQ(nullptr, run_.fatal);
  EXPECT_EQ(ASD_RUN_TILE_FAILED, run_.tiles[1].state);
}

TEST_F(RunStages, ResumeReplaysSucceededTilesAndPollsSubmittedOnes) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  submitted_event(0);
  done_event(0, true, ASD_OK, kResult);
  submitted_event(2);  // in flight when the run stops
  asd_run_free(&run_);
  running_ = false;

  start({"-endpoint", "e", "-resume"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  EXPECT_EQ(ASD_RUN_TILE_SUCCEEDED, run_.tiles[0].state);
  EXPECT_EQ(1, run_.tiles[0].resumed);
  EXPECT_EQ(2, run_.received);
  ASSERT_EQ(1, run_.n_to_resume);
  EXPECT_EQ(2, run_.to_resume[0]->tile);
  EXPECT_STREQ("s3://out/t2.out", run_.to_resume[0]->output_location);
  ASSERT_EQ(4, run_.n_to_encode);
  EXPECT_EQ((std::vector<int>{1, 3, 4, 5}), std::vector<int>(run_.to_encode, run_.to_encode + run_.n_to_encode));
}

TEST_F(RunStages, ResumeRefusesTheJournalOfAnotherRun) {
  start({"-endpoint", "e"});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  asd_run_free(&run_);
  running_ = false;
  start({"-endpoint", "e", "-resume", "-tile-size", "256", "-overlap", "0"});
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(-1, asd_run_open_output(&run_));
  CPLPopErrorHandler();
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "belongs to another run")) << CPLGetLastErrorMsg();
}

TEST_F(RunStages, MetricsListTheFailedTilesWithTheirReason) {
  std::string metrics = dir_ + "/m.json";
  start({"-endpoint", "e", "-metrics", metrics});
  ASSERT_EQ(0, prepare()) << CPLGetLastErrorMsg();
  done_event(0, true, ASD_OK, kResult);
  done_event(3, false, ASD_ERR_TIMEOUT, "no result within 60 s");
  EXPECT_EQ(ASD_DETECT_PARTIAL, asd_run_finish(&run_));
  json_object *j = json_object_from_file(metrics.c_str());
  ASSERT_NE(nullptr, j);
  json_object *v;
  ASSERT_TRUE(json_object_object_get_ex(j, "status", &v));
  EXPECT_STREQ("partial", json_object_get_string(v));
  ASSERT_TRUE(json_object_object_get_ex(j, "failed_tiles", &v));
  ASSERT_EQ(1u, json_object_array_length(v));
  json_object *t = json_object_array_get_idx(v, 0), *f;
  ASSERT_TRUE(json_object_object_get_ex(t, "tile", &f));
  EXPECT_EQ(3, json_object_get_int(f));
  ASSERT_TRUE(json_object_object_get_ex(t, "reason", &f));
  EXPECT_STREQ("no result within 60 s", json_object_get_string(f));
  ASSERT_TRUE(json_object_object_get_ex(j, "tiles", &v));
  ASSERT_TRUE(json_object_object_get_ex(v, "succeeded", &f));
  EXPECT_EQ(1, json_object_get_int(f));
  json_object_put(j);
}

TEST_F(RunStages, DryRunPlansWithoutTouchingTheOutput) {
  char *argv[] = {const_cast<char *>("-dry-run"), nullptr};
  o_ = asd_detect_options_new(argv, nullptr);
  ASSERT_NE(nullptr, o_);
  EXPECT_EQ(ASD_DETECT_OK, asd_detect(dest_.c_str(), src_, o_, &summary_, nullptr));
  EXPECT_EQ(6, summary_.tiles_planned);
  EXPECT_EQ(1, summary_.dry_run);
  VSIStatBufL st;
  EXPECT_NE(0, VSIStatL(dest_.c_str(), &st));
}

TEST(RunSummary, FormatNamesEveryFigure) {
  asd_detect_summary s;
  memset(&s, 0, sizeof s);
  s.tiles_planned = 10;
  s.tiles_skipped = 1;
  s.tiles_succeeded = 7;
  s.tiles_resumed = 2;
  s.tiles_failed = 2;
  s.features_received = 40;
  s.features_kept = 31;
  s.s3_calls = 30;
  s.endpoint_calls = 9;
  s.polling_attempts = 12;
  s.retries = 1;
  snprintf(s.tiles_location, sizeof s.tiles_location, "out_tiles.geojson");
  char *text = asd_detect_summary_format(&s);
  std::string t = text;
  CPLFree(text);
  EXPECT_NE(std::string::npos, t.find("Tiles: 10 planned, 1 skipped, 7 succeeded (2 from an earlier run), 2 failed\n"));
  EXPECT_NE(std::string::npos, t.find("Features: 40 received, 31 kept after merging\n"));
  EXPECT_NE(std::string::npos, t.find("Calls: 30 S3, 9 endpoint, 12 polls, 1 retries\n"));
  EXPECT_NE(std::string::npos, t.find("Tile status: out_tiles.geojson\n"));
  EXPECT_NE(std::string::npos, t.find("Some tiles failed"));
}

// A configuration error is the user's one line, not swallowed by the capture
// of the modules' messages during setup (it was, before the run module: the
// utility exited 1 without a word).
TEST_F(RunStages, AMissingInputBucketIsOneLineAndAUsageError) {
  CPLSetConfigOption("ASYNC_SM_INPUT_BUCKET", nullptr);
  unsetenv("ASYNC_SM_INPUT_BUCKET");
  char *argv[] = {const_cast<char *>("-endpoint"), const_cast<char *>("e"), nullptr};
  o_ = asd_detect_options_new(argv, nullptr);
  ASSERT_NE(nullptr, o_);
  int usage = 0;
  std::vector<std::string> lines;
  CPLPushErrorHandlerEx(
      [](CPLErr cls, CPLErrorNum, const char *msg) {
        if (cls == CE_Failure)
          static_cast<std::vector<std::string> *>(CPLGetErrorHandlerUserData())->push_back(msg);
      },
      &lines);
  EXPECT_EQ(ASD_DETECT_ERROR, asd_detect(dest_.c_str(), src_, o_, &summary_, &usage));
  CPLPopErrorHandler();
  EXPECT_EQ(1, usage);
  ASSERT_EQ(1u, lines.size());
  EXPECT_NE(std::string::npos, lines[0].find("no input bucket: give -input-bucket BUCKET")) << lines[0];
}

// One rule for message prefixes: "asd_<module>: " is dropped when the run
// quotes a cause, and nothing else is.
TEST(RunReport, StripsExactlyTheModulePrefix) {
  EXPECT_STREQ("cannot open x", asd_run_strip_module_prefix("asd_writer: cannot open x"));
  EXPECT_STREQ("bad block", asd_run_strip_module_prefix("asd_encoder: bad block"));
  EXPECT_STREQ("table t lacks columns", asd_run_strip_module_prefix("asd_journal: table t lacks columns"));
  EXPECT_STREQ("sqlite3: disk full", asd_run_strip_module_prefix("sqlite3: disk full"));
  EXPECT_STREQ("asd_writer:no space", asd_run_strip_module_prefix("asd_writer:no space"));
  EXPECT_STREQ("asd_ Writer: x", asd_run_strip_module_prefix("asd_ Writer: x"));
  EXPECT_STREQ("", asd_run_strip_module_prefix(""));
}
