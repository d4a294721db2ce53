// Unit tests for the option parsing of gdal_asyncdetect (asd_app.h): every
// option lands where it should, and every usage error is one line naming the
// option at fault.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "asd_detect_options.h"
#include "asyncdetect/asd_app.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"

namespace {

struct Parsed {
  asd_detect_options *o = nullptr;
  asd_detect_options_for_binary *b = nullptr;
  std::string error;
  ~Parsed() {
    asd_detect_options_free(o);
    asd_detect_options_for_binary_free(b);
  }
};

void parse(Parsed &p, std::vector<std::string> args, bool binary = true) {
  char **argv = nullptr;
  for (auto &a : args) argv = CSLAddString(argv, a.c_str());
  if (binary) p.b = asd_detect_options_for_binary_new();
  CPLErrorReset();
  CPLPushErrorHandler(CPLQuietErrorHandler);
  p.o = asd_detect_options_new(argv, p.b);
  CPLPopErrorHandler();
  p.error = CPLGetLastErrorMsg();
  CSLDestroy(argv);
}

TEST(AppOptions, DefaultsAndPositionals) {
  Parsed p;
  parse(p, {"-endpoint", "ship-detector", "scene.ntf", "ships.gpkg"});
  ASSERT_NE(nullptr, p.o) << p.error;
  EXPECT_STREQ("ship-detector", p.o->endpoint);
  EXPECT_STREQ("scene.ntf", p.b->source);
  EXPECT_STREQ("ships.gpkg", p.b->dest);
  EXPECT_EQ(512, p.o->tile_size);
  EXPECT_EQ(128, p.o->overlap);
  EXPECT_EQ(nullptr, p.o->format);  // guessed from the extension
  EXPECT_STREQ("detections", p.o->layer_name);
  EXPECT_STREQ("nmm", p.o->merge);
  EXPECT_STREQ("ios", p.o->match_metric);
  EXPECT_EQ(0, p.o->class_agnostic);
  EXPECT_EQ(1, p.o->skip_nodata);
  EXPECT_EQ(nullptr, p.o->config);
}

TEST(AppOptions, EveryConfigFieldHasAFlag) {
  Parsed p;
  parse(p, {"-input-bucket", "in", "-output-bucket", "out", "-input-prefix", "a/", "-output-prefix", "b/",
            "-max-wait-time", "60", "-polling-interval", "0.5", "-max-polling-interval", "5",
            "-backoff-multiplier", "2", "-max-retries", "7", "-cleanup", "NO", "-cleanup-policy", "delayed",
            "-cleanup-delay", "10", "-worker-optimization", "false", "-submission-workers", "8",
            "-polling-workers", "3", "-max-concurrent-jobs", "64", "-job-queue-timeout", "30"});
  ASSERT_NE(nullptr, p.o) << p.error;
  const char *expect[][2] = {{"input_bucket", "in"},
                             {"output_bucket", "out"},
                             {"input_prefix", "a/"},
                             {"output_prefix", "b/"},
                             {"max_wait_time", "60"},
                             {"polling_interval", "0.5"},
                             {"max_polling_interval", "5"},
                             {"exponential_backoff_multiplier", "2"},
                             {"max_retries", "7"},
                             {"cleanup_enabled", "NO"},
                             {"cleanup_policy", "delayed"},
                             {"cleanup_delay_seconds", "10"},
                             {"enable_worker_optimization", "false"},
                             {"submission_workers", "8"},
                             {"polling_workers", "3"},
                             {"max_concurrent_jobs", "64"},
                             {"job_queue_timeout", "30"}};
  for (auto &kv : expect) {
    const char *v = CSLFetchNameValue(p.o->config, kv[0]);
    ASSERT_NE(nullptr, v) << kv[0];
    EXPECT_STREQ(kv[1], v) << kv[0];
  }
  EXPECT_EQ(17, CSLCount(p.o->config));
}

TEST(AppOptions, TilingMergingOutputOptions) {
  Parsed p;
  parse(p, {"-tile-size", "256", "-overlap", "32", "-srcwin", "10", "20", "300", "400", "-b", "3", "-b", "2",
            "-b", "1", "-scale", "0", "4095", "-tile-format", "gtiff", "-no-skip-nodata", "-merge", "NMS",
            "-match-metric", "IOU", "-merge-threshold", "0.3", "-min-score", "0.25", "-class-agnostic", "-of",
            "GeoJSON", "-dsco", "A=B", "-lco", "C=D", "-nln", "boats", "-t_srs", "EPSG:3857", "-to",
            "RPC_HEIGHT=100", "-append", "-metrics", "m.json", "-q", "-dry-run", "-region", "eu-west-1",
            "-profile", "prod", "-assume-role", "arn:aws:iam::123456789012:role/r", "-external-id", "x",
            "-content-type", "image/png", "-custom-attributes", "model_selection=blobs", "in.tif", "out.json"});
  ASSERT_NE(nullptr, p.o) << p.error;
  EXPECT_EQ(256, p.o->tile_size);
  EXPECT_EQ(32, p.o->overlap);
  ASSERT_EQ(1, p.o->has_srcwin);
  EXPECT_EQ(300, p.o->srcwin[2]);
  ASSERT_EQ(3, p.o->nbands);
  EXPECT_EQ(3, p.o->bands[0]);
  EXPECT_EQ(1, p.o->bands[2]);
  EXPECT_EQ(2, p.o->scale_mode);
  EXPECT_EQ(4095, p.o->scale[1]);
  EXPECT_STREQ("GTiff", p.o->tile_format);
  EXPECT_EQ(0, p.o->skip_nodata);
  EXPECT_STREQ("nms", p.o->merge);
  EXPECT_STREQ("iou", p.o->match_metric);
  EXPECT_DOUBLE_EQ(0.3, p.o->merge_threshold);
  EXPECT_DOUBLE_EQ(0.25, p.o->min_score);
  EXPECT_EQ(1, p.o->class_agnostic);
  EXPECT_STREQ("GeoJSON", p.o->format);
  EXPECT_STREQ("B", CSLFetchNameValue(p.o->dsco, "A"));
  EXPECT_STREQ("D", CSLFetchNameValue(p.o->lco, "C"));
  EXPECT_STREQ("100", CSLFetchNameValue(p.o->transformer_options, "RPC_HEIGHT"));
  EXPECT_STREQ("boats", p.o->layer_name);
  EXPECT_STREQ("EPSG:3857", p.o->t_srs);
  EXPECT_EQ(1, p.o->append);
  EXPECT_STREQ("m.json", p.o->metrics_path);
  EXPECT_EQ(1, p.o->quiet);
  EXPECT_EQ(1, p.b->quiet);
  EXPECT_EQ(1, p.o->dry_run);
  EXPECT_STREQ("eu-west-1", p.o->region);
  EXPECT_STREQ("prod", p.o->profile);
  EXPECT_STREQ("x", p.o->external_id);
  EXPECT_STREQ("image/png", p.o->content_type);
  EXPECT_STREQ("model_selection=blobs", p.o->custom_attributes);
}

TEST(AppOptions, OutputFormatIsCheckedAtOnce) {
  for (auto &c : std::vector<std::pair<std::string, std::string>>{
           {"Nope", "no such GDAL driver"}, {"GTiff", "raster format"}, {"Memory", ""}, {"geojson", ""}}) {
    Parsed p;
    parse(p, {"-of", c.first, "in.tif", "out"});
    if (c.second.empty()) {
      ASSERT_NE(nullptr, p.o) << c.first << ": " << p.error;
    } else {
      EXPECT_EQ(nullptr, p.o) << c.first;
      EXPECT_NE(std::string::npos, p.error.find(c.second)) << p.error;
    }
  }
  Parsed p;
  parse(p, {"-of", "geojson", "in.tif", "out"});
  ASSERT_NE(nullptr, p.o);
  EXPECT_STREQ("GeoJSON", p.o->format) << "the driver's own spelling";
}

TEST(AppOptions, StatusOutputAndLayerName) {
  Parsed p;
  parse(p, {"-status-nln", "grid", "-status-output", "status.gpkg", "in.tif", "out.geojson"});
  ASSERT_NE(nullptr, p.o) << p.error;
  EXPECT_STREQ("grid", p.o->status_layer_name);
  EXPECT_STREQ("status.gpkg", p.o->status_output);
  Parsed q;
  parse(q, {"-status-output"});
  EXPECT_EQ(nullptr, q.o);
  EXPECT_NE(std::string::npos, q.error.find("-status-output")) << q.error;
}

TEST(AppOptions, ScaleTakesZeroOrTwoNumbers) {
  {
    Parsed p;
    parse(p, {"-scale", "in.tif", "out.gpkg"});
    ASSERT_NE(nullptr, p.o) << p.error;
    EXPECT_EQ(1, p.o->scale_mode);
    EXPECT_STREQ("in.tif", p.b->source);
  }
  {
    Parsed p;
    parse(p, {"-scale", "0", "1000", "10", "200"});
    EXPECT_EQ(nullptr, p.o);
  }
  {
    Parsed p;
    parse(p, {"-scale", "5"});
    EXPECT_EQ(nullptr, p.o);
    EXPECT_NE(std::string::npos, p.error.find("-scale"));
  }
}

TEST(AppOptions, HelpIsReportedToTheBinary) {
  Parsed p;
  parse(p, {"--help"});
  ASSERT_NE(nullptr, p.o);
  EXPECT_EQ(1, p.b->show_help);
  std::string usage = asd_detect_usage();
  for (const char *opt : {"-endpoint", "-input-bucket", "-output-bucket", "-input-prefix", "-max-wait-time",
                          "-polling-interval", "-max-polling-interval", "-backoff-multiplier", "-max-retries",
                          "-cleanup-policy", "-cleanup-delay", "-worker-optimization", "-submission-workers",
                          "-polling-workers", "-max-concurrent-jobs", "-job-queue-timeout", "-region",
                          "-profile", "-assume-role", "-external-id", "-content-type", "-custom-attributes",
                          "-tile-size", "-overlap", "-srcwin", "-projwin", "-b BAND", "-scale", "-tile-format",
                          "-skip-nodata", "-merge", "-merge-threshold", "-min-score", "-class-agnostic", "-of",
                          "-dsco", "-lco", "-nln", "-t_srs", "-overwrite", "-append", "-metrics", "-q",
                          "-dry-run", "-resume", "Exit status"})
    EXPECT_NE(std::string::npos, usage.find(opt)) << opt;
}

// Each bad command line fails with one line that names what is wrong.
TEST(AppOptions, UsageErrorsNameTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-bogus"}, "unknown option '-bogus'"},
      {{"-endpoint"}, "-endpoint needs 1 argument"},
      {{"-tile-size", "abc"}, "-tile-size"},
      {{"-tile-size", "0"}, "-tile-size"},
      {{"-overlap", "-3"}, "-overlap"},
      {{"-tile-size", "256", "-overlap", "256"}, "-overlap (256) must be smaller"},
      {{"-srcwin", "0", "0", "10"}, "-srcwin needs 4 arguments"},
      {{"-srcwin", "0", "0", "10", "x"}, "-srcwin"},
      {{"-b", "0"}, "-b"},
      {{"-max-retries", "many"}, "-max-retries"},
      {{"-cleanup", "maybe"}, "-cleanup wants YES or NO"},
      {{"-cleanup-policy", "sometimes"}, "-cleanup-policy"},
      {{"-polling-interval", "-1"}, "-polling-interval"},
      {{"-merge", "average"}, "-merge"},
      {{"-min-score", "2"}, "-min-score"},
      {{"-tile-format", "BMP"}, "-tile-format"},
      {{"-lco", "NOEQUALS"}, "-lco wants NAME=VALUE"},
      {{"-t_srs", "EPSG:99999999"}, "-t_srs"},
      {{"-overwrite", "-append"}, "exclude each other"},
      {{"-resume", "-overwrite"}, "-resume"},
      {{"-external-id", "x"}, "-external-id needs -assume-role"},
      {{"-assume-role", "role"}, "-assume-role"},
      {{"-shard", "3/3"}, "-shard"},
      {{"-shard", "1"}, "-shard wants K/N"},
      {{"-merge-shards", "-resume", "a", "b"}, "-merge-shards"},
      {{"-merge-source", "x.tif", "a", "b"}, "-merge-source goes with -merge-shards"},
      {{"-cleanup-pending", "-dry-run", "b"}, "-cleanup-pending"},
      {{"-input_file_list", "/nonexistent/list.txt", "out.gpkg"}, "-input_file_list: cannot read"},
      {{"-projwin", "10", "0", "0", "10"}, "-projwin"},
  };
  for (auto &c : cases) {
    Parsed p;
    parse(p, c.first);
    EXPECT_EQ(nullptr, p.o) << c.second;
    EXPECT_NE(std::string::npos, p.error.find(c.second)) << "got: " << p.error;
    EXPECT_EQ(std::string::npos, p.error.find('\n')) << p.error;
  }
}

// SRC1 SRC2 ... DST, -input_file_list after them, -shard, -merge-shards.
TEST(AppOptions, ManyInputsShardsAndMerge) {
  Parsed p;
  std::string list = std::string(CPLGenerateTempFilename("asdlist")) + ".txt";
  FILE *f = fopen(list.c_str(), "w");
  ASSERT_NE(nullptr, f);
  fputs("c.tif\n\n# skipped\n/vsis3/b/d.tif\n", f);
  fclose(f);
  parse(p, {"a.tif", "-shard", "2/7", "b.tif", "-input_file_list", list, "out.gpkg"});
  ASSERT_NE(nullptr, p.o) << p.error;
  ASSERT_EQ(4, CSLCount(p.b->sources));
  EXPECT_STREQ("a.tif", p.b->sources[0]);
  EXPECT_STREQ("b.tif", p.b->sources[1]);
  EXPECT_STREQ("c.tif", p.b->sources[2]);
  EXPECT_STREQ("/vsis3/b/d.tif", p.b->sources[3]);
  EXPECT_STREQ("a.tif", p.b->source);
  EXPECT_STREQ("out.gpkg", p.b->dest);
  EXPECT_EQ(2, p.o->shard_k);
  EXPECT_EQ(7, p.o->shard_n);
  EXPECT_FALSE(p.b->merge_shards);
  VSIUnlink(list.c_str());

  Parsed m;
  parse(m, {"-merge-shards", "s0.gpkg", "s1.gpkg", "merged.gpkg"});
  ASSERT_NE(nullptr, m.o) << m.error;
  EXPECT_TRUE(m.b->merge_shards);
  EXPECT_EQ(2, CSLCount(m.b->sources));
  EXPECT_STREQ("merged.gpkg", m.b->dest);

  // The sources again for the merge (a presigned URL in full): -merge-source
  // and the list file go to the merge, not to the shards (gaps item 1).
  f = fopen(list.c_str(), "w");
  ASSERT_NE(nullptr, f);
  fputs("/vsicurl/https://h/a.tif?X-Amz-Signature=abc\n", f);
  fclose(f);
  Parsed ms;
  parse(ms, {"-merge-shards", "-merge-source", "b.tif", "-input_file_list", list, "s0.gpkg", "merged.gpkg"});
  ASSERT_NE(nullptr, ms.o) << ms.error;
  ASSERT_EQ(1, CSLCount(ms.b->sources));
  EXPECT_STREQ("s0.gpkg", ms.b->sources[0]);
  ASSERT_EQ(1, CSLCount(ms.o->merge_sources));
  EXPECT_STREQ("b.tif", ms.o->merge_sources[0]);
  ASSERT_EQ(1, CSLCount(ms.o->merge_source_list));
  EXPECT_STREQ("/vsicurl/https://h/a.tif?X-Amz-Signature=abc", ms.o->merge_source_list[0]);
  VSIUnlink(list.c_str());

  // -cleanup-pending needs DST alone (gaps item 4).
  Parsed c;
  parse(c, {"-cleanup-pending", "out.gpkg"});
  ASSERT_NE(nullptr, c.o) << c.error;
  EXPECT_TRUE(c.b->cleanup_pending);
  EXPECT_STREQ("out.gpkg", c.b->dest);
  EXPECT_EQ(nullptr, c.b->source);
}

TEST(AppOptions, LibraryCallersGetNoPositionals) {
  Parsed p;
  parse(p, {"-endpoint", "e", "stray"}, false);
  EXPECT_EQ(nullptr, p.o);
  EXPECT_NE(std::string::npos, p.error.find("unexpected argument 'stray'"));
}

}  // namespace

// The command line accepts exactly what the modules' own parsers accept
// (asd_config_set, asd_encode_format_from_name, asd_merge_mode_parse), and
// stores the canonical names.
TEST(AppOptions, ValuesGoThroughTheModulesParsers) {
  Parsed p;
  parse(p, {"-tile-format", "jpg", "-merge", "softnms", "-cleanup", "on", "-cleanup-policy", " Delayed "});
  ASSERT_NE(nullptr, p.o) << p.error;
  EXPECT_STREQ("JPEG", p.o->tile_format);
  EXPECT_STREQ("soft-nms", p.o->merge);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"-max-retries", "2.5"}, "option -max-retries: max_retries must be an integer"},
      {{"-submission-workers", "1e9x"}, "-submission-workers"},
      {{"-polling-interval", "soon"}, "option -polling-interval: polling_interval must be a number"},
      {{"-input-bucket", std::string(300, 'b')}, "option -input-bucket: input_bucket is too long"},
  };
  for (auto &c : bad) {
    Parsed q;
    parse(q, c.first);
    EXPECT_EQ(nullptr, q.o) << c.second;
    EXPECT_NE(std::string::npos, q.error.find(c.second)) << "got: " << q.error;
  }
}
