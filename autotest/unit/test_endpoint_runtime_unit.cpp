// Unit tests of the local endpoint's runtime (runtime.c), fault injection
// (faults.c) and models (models/*.c), in-process, with an in-memory object
// store standing in for the server's S3 store.
#include <gtest/gtest.h>

#include <json.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cpl_vsi.h>
#include <gdal.h>

#include "asd_test_paths.h"

extern "C" {
#include "faults.h"
#include "models.h"
#include "runtime.h"
}

namespace {

// ------------------------------------------------------------ test doubles

struct MemStore {
  std::mutex mu;
  std::map<std::string, std::string> objects;  // "bucket/key" -> bytes
  std::map<std::string, std::string> types;
  std::atomic<int> puts{0};

  static int get(void *ctx, const char *bucket, const char *key, unsigned char **data, size_t *len) {
    auto *s = static_cast<MemStore *>(ctx);
    std::lock_guard<std::mutex> lock(s->mu);
    auto it = s->objects.find(std::string(bucket) + "/" + key);
    if (it == s->objects.end()) return 1;
    *data = static_cast<unsigned char *>(malloc(it->second.size() + 1));
    memcpy(*data, it->second.data(), it->second.size());
    *len = it->second.size();
    return 0;
  }
  static int exists(void *ctx, const char *bucket, const char *key) {
    auto *s = static_cast<MemStore *>(ctx);
    std::lock_guard<std::mutex> lock(s->mu);
    return s->objects.count(std::string(bucket) + "/" + key) ? 1 : 0;
  }
  static int put(void *ctx, const char *bucket, const char *key, const void *data, size_t len,
                 const char *content_type) {
    auto *s = static_cast<MemStore *>(ctx);
    std::lock_guard<std::mutex> lock(s->mu);
    std::string k = std::string(bucket) + "/" + key;
    s->objects[k] = std::string(static_cast<const char *>(data), len);
    s->types[k] = content_type ? content_type : "";
    s->puts++;
    return 0;
  }
  ep_rt_store ops() { return ep_rt_store{this, get, exists, put}; }
  void add(const std::string &bk, const std::string &bytes) {
    std::lock_guard<std::mutex> lock(mu);
    objects[bk] = bytes;
  }
  bool has(const std::string &bk) {
    std::lock_guard<std::mutex> lock(mu);
    return objects.count(bk) != 0;
  }
  std::string at(const std::string &bk) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = objects.find(bk);
    return it == objects.end() ? std::string() : it->second;
  }
};

struct Headers {
  std::vector<std::pair<std::string, std::string>> h;
  static const char *lookup(void *ctx, const char *name) {
    auto *self = static_cast<Headers *>(ctx);
    for (auto &kv : self->h)
      if (strcasecmp(kv.first.c_str(), name) == 0) return kv.second.c_str();
    return nullptr;
  }
};

std::string resp_header(const ep_rt_response &r, const char *name) {
  for (int i = 0; i < r.n_headers; i++)
    if (strcasecmp(r.header_names[i], name) == 0) return r.header_values[i];
  return "";
}

std::string resp_body(const ep_rt_response &r) {
  return std::string(reinterpret_cast<const char *>(r.body), r.body_len);
}

// s3://bucket/key -> "bucket/key"
std::string s3_to_bk(const std::string &uri) { return uri.rfind("s3://", 0) == 0 ? uri.substr(5) : uri; }

// Encodes an RGB image (w*h*3 bytes) with a GDAL driver, in memory.
std::string encode_image(const std::vector<unsigned char> &rgb, int w, int h, const char *driver,
                         int bands = 3) {
  GDALAllRegister();
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", w, h, bands, GDT_Byte, nullptr);
  for (int b = 0; b < bands; b++) {
    std::vector<unsigned char> plane(static_cast<size_t>(w) * h);
    for (size_t i = 0; i < plane.size(); i++) plane[i] = rgb[3 * i + (bands == 3 ? b : 0)];
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(mem, b + 1), GF_Write, 0, 0, w, h, plane.data(),
                                    w, h, GDT_Byte, 0, 0));
  }
  static std::atomic<int> n{0};
  std::string path = "/vsimem/test_enc_" + std::to_string(n++) + "." + driver;
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName(driver), path.c_str(), mem, FALSE, nullptr,
                                    nullptr, nullptr);
  EXPECT_NE(out, nullptr);
  GDALClose(out);
  GDALClose(mem);
  vsi_l_offset len = 0;
  GByte *buf = VSIGetMemFileBuffer(path.c_str(), &len, FALSE);
  std::string bytes(reinterpret_cast<const char *>(buf), static_cast<size_t>(len));
  VSIUnlink(path.c_str());
  return bytes;
}

// A scene: dark noisy-ish background with given rectangles painted in a colour.
struct Rect {
  int x, y, w, h;
  unsigned char r, g, b;
};
std::vector<unsigned char> make_scene(int w, int h, const std::vector<Rect> &rects) {
  std::vector<unsigned char> rgb(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char v = static_cast<unsigned char>(40 + ((x * 7 + y * 13) % 90));  // <= 129
      unsigned char *p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = v;
      p[1] = static_cast<unsigned char>(v / 2 + 20);
      p[2] = static_cast<unsigned char>(v / 3 + 30);
    }
  for (const Rect &r : rects)
    for (int y = r.y; y < r.y + r.h; y++)
      for (int x = r.x; x < r.x + r.w; x++) {
        unsigned char *p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
        p[0] = r.r;
        p[1] = r.g;
        p[2] = r.b;
      }
  return rgb;
}

json_object *parse(const std::string &s) { return json_tokener_parse(s.c_str()); }

// Waits (bounded) until pred() holds; the bound is generous and never asserted as a duration.
template <class F>
bool wait_for(F pred, double seconds = 30.0) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// ------------------------------------------------------------ spec parsing

TEST(EndpointRuntimeSpec, ParsesFullSpec) {
  ep_endpoint_spec s;
  char err[256];
  ASSERT_EQ(0, ep_endpoint_spec_parse("ship-detector,model=blobs,output=s3://out-b/a/b/,failure=s3://fail-b,"
                                       "instances=2,concurrency=4,latency_ms=12.5,spread_ms=3,time_scale=0.5",
                                       &s, err, sizeof(err)))
      << err;
  EXPECT_STREQ("ship-detector", s.name);
  EXPECT_STREQ("blobs", s.model);
  EXPECT_STREQ("out-b", s.output_bucket);
  EXPECT_STREQ("a/b", s.output_prefix);
  EXPECT_STREQ("fail-b", s.failure_bucket);
  EXPECT_STREQ("", s.failure_prefix);
  EXPECT_EQ(2, s.instances);
  EXPECT_EQ(4, s.concurrency);
  EXPECT_DOUBLE_EQ(12.5, s.latency_ms);
  EXPECT_DOUBLE_EQ(3.0, s.spread_ms);
  EXPECT_DOUBLE_EQ(0.5, s.time_scale);
}

TEST(EndpointRuntimeSpec, Defaults) {
  ep_endpoint_spec s;
  char err[256];
  ASSERT_EQ(0, ep_endpoint_spec_parse("ep1", &s, err, sizeof(err))) << err;
  EXPECT_STREQ("centerpoint", s.model);
  EXPECT_STREQ("asd-async", s.output_bucket);
  EXPECT_STREQ("ep1/output", s.output_prefix);
  EXPECT_STREQ("ep1/failure", s.failure_prefix);
  EXPECT_EQ(1, s.instances);
  EXPECT_EQ(1, s.concurrency);
  EXPECT_DOUBLE_EQ(1.0, s.time_scale);
  ASSERT_EQ(0, ep_endpoint_spec_parse("e,model=http://127.0.0.1:8080,instances=0", &s, err, sizeof(err))) << err;
  EXPECT_EQ(0, s.instances);
}

TEST(EndpointRuntimeSpec, RejectsBadSpecs) {
  const char *bad[] = {"",
                       "model=blobs",
                       "-bad-name",
                       "bad_name",
                       "ep,model=yolo",
                       "ep,output=http://x/y",
                       "ep,output=s3://UPPER/x",
                       "ep,output=s3://b/../x",
                       "ep,instances=-1",
                       "ep,instances=1.5",
                       "ep,concurrency=0",
                       "ep,latency_ms=abc",
                       "ep,color=red",
                       "ep,novalue",
                       "ep,instances=64,concurrency=256"};
  for (const char *b : bad) {
    ep_endpoint_spec s;
    char err[256] = "";
    EXPECT_EQ(-1, ep_endpoint_spec_parse(b, &s, err, sizeof(err))) << b;
    EXPECT_NE('\0', err[0]) << b;
    EXPECT_EQ(nullptr, strchr(err, '\n')) << "one line: " << err;
  }
  std::string long_name(64, 'a');
  ep_endpoint_spec s;
  char err[256];
  EXPECT_EQ(-1, ep_endpoint_spec_parse(long_name.c_str(), &s, err, sizeof(err)));
  EXPECT_EQ(0, ep_endpoint_spec_parse(long_name.substr(1).c_str(), &s, err, sizeof(err)));
}

TEST(EndpointRuntimeSpec, EndpointNames) {
  EXPECT_TRUE(ep_endpoint_name_valid("a"));
  EXPECT_TRUE(ep_endpoint_name_valid("my-endpoint-1"));
  EXPECT_TRUE(ep_endpoint_name_valid("a--b"));
  EXPECT_FALSE(ep_endpoint_name_valid(""));
  EXPECT_FALSE(ep_endpoint_name_valid("a-"));
  EXPECT_FALSE(ep_endpoint_name_valid("a.b"));
  EXPECT_FALSE(ep_endpoint_name_valid("../x"));
}

TEST(EndpointRuntimeFaults, ParsesSpec) {
  ep_fault_spec f;
  char err[256];
  ASSERT_EQ(0, ep_fault_spec_parse("s3_503=0.1,s3_500=0.05,invoke_throttle=0.2,invoke_5xx=0.1,drop=0.01,"
                                    "model_error=0.3,hang=0.02,slow_consumer_ms=25,seed=42",
                                    &f, err, sizeof(err)))
      << err;
  EXPECT_DOUBLE_EQ(0.1, f.s3_503);
  EXPECT_DOUBLE_EQ(0.05, f.s3_500);
  EXPECT_DOUBLE_EQ(0.2, f.invoke_throttle);
  EXPECT_DOUBLE_EQ(0.1, f.invoke_5xx);
  EXPECT_DOUBLE_EQ(0.01, f.drop);
  EXPECT_DOUBLE_EQ(0.3, f.model_error);
  EXPECT_DOUBLE_EQ(0.02, f.hang);
  EXPECT_EQ(25, f.slow_consumer_ms);
  EXPECT_EQ(42u, f.seed);
  ASSERT_EQ(0, ep_fault_spec_parse("", &f, err, sizeof(err)));
  EXPECT_EQ(1u, f.seed);
  EXPECT_EQ(0.0, f.s3_503);
  for (const char *b : {"s3_503=1.5", "s3_503=-0.1", "hang=x", "foo=1", "seed=-3", "slow_consumer_ms=1e3",
                        "s3_503", "s3_503=0.6,s3_500=0.6", "model_error=0.7,hang=0.4"}) {
    char e[256] = "";
    EXPECT_EQ(-1, ep_fault_spec_parse(b, &f, e, sizeof(e))) << b;
    EXPECT_NE('\0', e[0]) << b;
  }
}

// SageMaker's error names and the accept-then-fail faults: parsed, summed
// with the other invocation faults, and each drawn in its proportion.
TEST(EndpointRuntimeFaults, SageMakerErrorKeys) {
  ep_fault_spec f;
  char err[512];
  ASSERT_EQ(0, ep_fault_spec_parse("ValidationError=0.1,ModelNotReadyException=0.1,ThrottlingException=0.1,"
                                    "ServiceUnavailable=0.1,InternalFailure=0.1,InternalDependencyException=0.1,"
                                    "accept_then_5xx=0.1,accept_then_drop=0.1,seed=5",
                                    &f, err, sizeof(err)))
      << err;
  EXPECT_DOUBLE_EQ(0.1, f.invoke_throttle);  // ThrottlingException is invoke_throttle
  EXPECT_DOUBLE_EQ(0.1, f.accept_then_drop);
  char e[512] = "";
  EXPECT_EQ(-1, ep_fault_spec_parse("accept_then_5xx=0.6,InternalFailure=0.3,drop=0.2", &f, e, sizeof(e)));
  EXPECT_NE(std::string::npos, std::string(e).find("more than 1")) << e;
  ASSERT_EQ(0, ep_fault_spec_parse("ValidationError=0.1,ModelNotReadyException=0.1,ThrottlingException=0.1,"
                                    "ServiceUnavailable=0.1,InternalFailure=0.1,InternalDependencyException=0.1,"
                                    "accept_then_5xx=0.1,accept_then_drop=0.1,seed=5",
                                    &f, err, sizeof(err)));
  ep_faults *inj = ep_faults_new(&f);
  std::map<int, int> n;
  for (int i = 0; i < 10000; i++) n[ep_faults_invoke(inj)]++;
  for (ep_invoke_fault k : {ASD_INVOKE_FAULT_VALIDATION, ASD_INVOKE_FAULT_NOT_READY, ASD_INVOKE_FAULT_THROTTLE,
                             ASD_INVOKE_FAULT_503, ASD_INVOKE_FAULT_500, ASD_INVOKE_FAULT_DEPENDENCY,
                             ASD_INVOKE_FAULT_ACCEPT_THEN_5XX, ASD_INVOKE_FAULT_ACCEPT_THEN_DROP}) {
    EXPECT_GT(n[k], 800) << k;
    EXPECT_LT(n[k], 1200) << k;
  }
  EXPECT_GT(n[ASD_INVOKE_FAULT_NONE], 1700);
  ep_faults_free(inj);
}

TEST(EndpointRuntimeFaults, ReproducibleAndProportional) {
  ep_fault_spec spec;
  char err[256];
  ASSERT_EQ(0, ep_fault_spec_parse("s3_503=0.2,s3_500=0.1,drop=0.05,invoke_throttle=0.3,model_error=0.25,"
                                    "hang=0.05,seed=7",
                                    &spec, err, sizeof(err)));
  ep_faults *a = ep_faults_new(&spec), *b = ep_faults_new(&spec);
  int n503 = 0, n500 = 0, ndrop = 0, nthr = 0, nerr = 0, nhang = 0;
  for (int i = 0; i < 20000; i++) {
    ep_s3_fault fa = ep_faults_s3(a);
    ASSERT_EQ(fa, ep_faults_s3(b));
    n503 += fa == ASD_S3_FAULT_503_SLOWDOWN;
    n500 += fa == ASD_S3_FAULT_500_INTERNAL;
    ndrop += fa == ASD_S3_FAULT_DROP;
    ep_invoke_fault ia = ep_faults_invoke(a);
    ASSERT_EQ(ia, ep_faults_invoke(b));
    nthr += ia == ASD_INVOKE_FAULT_THROTTLE;
    ep_job_fault ja = ep_faults_job(a);
    ASSERT_EQ(ja, ep_faults_job(b));
    nerr += ja == ASD_JOB_FAULT_MODEL_ERROR;
    nhang += ja == ASD_JOB_FAULT_HANG;
  }
  EXPECT_NEAR(0.20, n503 / 20000.0, 0.02);
  EXPECT_NEAR(0.10, n500 / 20000.0, 0.02);
  EXPECT_NEAR(0.05, ndrop / 20000.0, 0.01);
  EXPECT_NEAR(0.30, nthr / 20000.0, 0.02);
  EXPECT_NEAR(0.25, nerr / 20000.0, 0.02);
  EXPECT_NEAR(0.05, nhang / 20000.0, 0.01);
  json_object *st = ep_faults_stats_json(a);
  EXPECT_EQ(n503, json_object_get_int(json_object_object_get(st, "s3_503")));
  json_object_put(st);
  // Another seed gives another sequence.
  spec.seed = 8;
  ep_faults *c = ep_faults_new(&spec);
  ep_faults *d = ep_faults_new(nullptr);
  int same = 0;
  ep_faults_free(a);
  a = ep_faults_new(&spec);
  for (int i = 0; i < 200; i++) {
    same += ep_faults_s3(c) == ep_faults_s3(b);
    EXPECT_EQ(ASD_S3_FAULT_NONE, ep_faults_s3(d));
  }
  EXPECT_LT(same, 200);
  EXPECT_EQ(ASD_S3_FAULT_NONE, ep_faults_s3(nullptr));
  EXPECT_FALSE(ep_faults_enabled(d));
  EXPECT_TRUE(ep_faults_enabled(c));
  ep_faults_free(a);
  ep_faults_free(b);
  ep_faults_free(c);
  ep_faults_free(d);
}

TEST(EndpointRuntimeModels, CustomAttributes) {
  char v[64];
  EXPECT_TRUE(ep_custom_attribute("model_selection=blobs,flood_volume=3", "flood_volume", v, sizeof(v)));
  EXPECT_STREQ("3", v);
  EXPECT_TRUE(ep_custom_attribute(" a = 1 ; model_selection = flood ", "model_selection", v, sizeof(v)));
  EXPECT_STREQ("flood", v);
  EXPECT_FALSE(ep_custom_attribute("model_selection_x=1", "model_selection", v, sizeof(v)));
  EXPECT_FALSE(ep_custom_attribute(nullptr, "a", v, sizeof(v)));
  EXPECT_FALSE(ep_custom_attribute("novalue", "novalue", v, sizeof(v)));
}

// ------------------------------------------------------------------- models

struct Feature {
  std::string iri;
  double score;
  double bbox[4];
  int ring_points;
};

std::vector<Feature> features_of(const std::string &fc) {
  std::vector<Feature> out;
  json_object *root = parse(fc);
  EXPECT_NE(root, nullptr) << fc.substr(0, 200);
  if (!root) return out;
  EXPECT_STREQ("FeatureCollection", json_object_get_string(json_object_object_get(root, "type")));
  json_object *feats = json_object_object_get(root, "features");
  for (size_t i = 0; i < json_object_array_length(feats); i++) {
    json_object *f = json_object_array_get_idx(feats, i);
    EXPECT_TRUE(json_object_is_type(json_object_object_get(f, "geometry"), json_type_null));
    json_object *p = json_object_object_get(f, "properties");
    json_object *fcs = json_object_object_get(p, "featureClasses");
    json_object *bb = json_object_object_get(p, "imageBBox");
    json_object *geom = json_object_object_get(p, "imageGeometry");
    Feature ft{};
    ft.iri = json_object_get_string(json_object_object_get(json_object_array_get_idx(fcs, 0), "iri"));
    ft.score = json_object_get_double(json_object_object_get(json_object_array_get_idx(fcs, 0), "score"));
    for (int k = 0; k < 4; k++) ft.bbox[k] = json_object_get_double(json_object_array_get_idx(bb, k));
    EXPECT_STREQ("Polygon", json_object_get_string(json_object_object_get(geom, "type")));
    json_object *ring = json_object_array_get_idx(json_object_object_get(geom, "coordinates"), 0);
    ft.ring_points = static_cast<int>(json_object_array_length(ring));
    EXPECT_NE(json_object_object_get(p, "modelMetadata"), nullptr);
    out.push_back(ft);
  }
  json_object_put(root);
  return out;
}

TEST(EndpointRuntimeModels, BlobsFindsKnownRectangles) {
  const int W = 128, H = 96;
  std::vector<Rect> rects = {{10, 12, 8, 6, 230, 230, 228},   // building
                             {60, 40, 5, 9, 240, 120, 40},    // vehicle
                             {100, 70, 3, 3, 250, 250, 250},  // 9 px: below min_pixels
                             {0, 80, 20, 16, 210, 205, 215}}; // touches the tile edge
  auto rgb = make_scene(W, H, rects);
  ep_blobs_params p;
  ep_blobs_params_init(&p);
  asd_buf out;
  asd_buf_init(&out);
  ASSERT_EQ(3, ep_blobs_detect_rgb(rgb.data(), W, H, &p, &out));
  auto feats = features_of(reinterpret_cast<char *>(out.data));
  asd_buf_free(&out);
  ASSERT_EQ(3u, feats.size());
  std::sort(feats.begin(), feats.end(), [](const Feature &a, const Feature &b) { return a.bbox[1] < b.bbox[1]; });
  EXPECT_EQ("building", feats[0].iri);
  EXPECT_DOUBLE_EQ(10, feats[0].bbox[0]);
  EXPECT_DOUBLE_EQ(12, feats[0].bbox[1]);
  EXPECT_DOUBLE_EQ(18, feats[0].bbox[2]);
  EXPECT_DOUBLE_EQ(18, feats[0].bbox[3]);
  EXPECT_NEAR(230.0 / 255.0, feats[0].score, 1e-3);
  EXPECT_EQ(5, feats[0].ring_points);  // a rectangle's hull, closed
  EXPECT_EQ("vehicle", feats[1].iri);
  EXPECT_DOUBLE_EQ(60, feats[1].bbox[0]);
  EXPECT_DOUBLE_EQ(49, feats[1].bbox[3]);
  EXPECT_NEAR(240.0 / 255.0, feats[1].score, 1e-3);
  EXPECT_EQ("building", feats[2].iri);
  EXPECT_DOUBLE_EQ(0, feats[2].bbox[0]);
  EXPECT_DOUBLE_EQ(96, feats[2].bbox[3]);
}

TEST(EndpointRuntimeModels, BlobsEightConnectedAndHull) {
  // Two diagonal-touching squares are one component (8-connectivity); an
  // L shape gets a hull with more than 4 corners.
  const int W = 64, H = 64;
  auto rgb = make_scene(W, H, {{5, 5, 4, 4, 220, 220, 220}, {9, 9, 4, 4, 220, 220, 220},
                               {30, 30, 10, 3, 220, 220, 220}, {30, 33, 3, 7, 220, 220, 220}});
  ep_blobs_params p;
  ep_blobs_params_init(&p);
  asd_buf out;
  asd_buf_init(&out);
  ASSERT_EQ(2, ep_blobs_detect_rgb(rgb.data(), W, H, &p, &out));
  auto feats = features_of(reinterpret_cast<char *>(out.data));
  asd_buf_free(&out);
  ASSERT_EQ(2u, feats.size());
  std::sort(feats.begin(), feats.end(), [](const Feature &a, const Feature &b) { return a.bbox[0] < b.bbox[0]; });
  EXPECT_DOUBLE_EQ(5, feats[0].bbox[0]);
  EXPECT_DOUBLE_EQ(13, feats[0].bbox[2]);
  EXPECT_GT(feats[1].ring_points, 5);
}

std::string invoke_model(const char *name, const std::string &bytes, const char *attrs, int *rc,
                         std::string *error = nullptr) {
  char err[256];
  ep_model *m = ep_model_new(name, err, sizeof(err));
  EXPECT_NE(m, nullptr) << err;
  if (!m) return "";
  ep_model_input in{reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size(), "image/png", nullptr,
                     attrs, "id-1", 10.0};
  ep_model_output out;
  ep_model_output_init(&out);
  *rc = ep_model_invoke(m, &in, &out);
  std::string body(reinterpret_cast<char *>(out.body.data), out.body.len);
  if (error) *error = out.error;
  ep_model_output_free(&out);
  ep_model_free(m);
  return body;
}

TEST(EndpointRuntimeModels, BlobsDecodesFormatsAndBandLayouts) {
  const int W = 96, H = 64;
  auto rgb = make_scene(W, H, {{20, 20, 6, 6, 235, 235, 235}, {60, 30, 7, 4, 245, 110, 30}});
  for (const char *drv : {"PNG", "GTiff", "NITF"}) {
    int rc = -1;
    std::string body = invoke_model("blobs", encode_image(rgb, W, H, drv), nullptr, &rc);
    ASSERT_EQ(0, rc) << drv << ": " << body;
    auto feats = features_of(body);
    ASSERT_EQ(2u, feats.size()) << drv;
    std::sort(feats.begin(), feats.end(), [](const Feature &a, const Feature &b) { return a.bbox[0] < b.bbox[0]; });
    EXPECT_EQ("building", feats[0].iri) << drv;
    EXPECT_EQ("vehicle", feats[1].iri) << drv;
    EXPECT_DOUBLE_EQ(20, feats[0].bbox[0]);
    EXPECT_DOUBLE_EQ(67, feats[1].bbox[2]);
  }
  // JPEG is lossy: the objects are still found, boxes within a pixel or two.
  {
    int rc = -1;
    std::string body = invoke_model("blobs", encode_image(rgb, W, H, "JPEG"), nullptr, &rc);
    ASSERT_EQ(0, rc) << body;
    auto feats = features_of(body);
    ASSERT_EQ(2u, feats.size());
  }
  // A single-band image: its band is used for R, G and B.
  {
    int rc = -1;
    std::string body = invoke_model("blobs", encode_image(rgb, W, H, "PNG", 1), nullptr, &rc);
    ASSERT_EQ(0, rc) << body;
    auto feats = features_of(body);
    ASSERT_EQ(2u, feats.size());
    EXPECT_EQ("building", feats[0].iri);  // grey: no red/blue difference
  }
  // Custom attributes change the threshold: at 250 nothing is bright enough.
  {
    int rc = -1;
    std::string body = invoke_model("blobs", encode_image(rgb, W, H, "PNG"), "blobs_threshold=250", &rc);
    ASSERT_EQ(0, rc);
    EXPECT_EQ(0u, features_of(body).size());
  }
}

TEST(EndpointRuntimeModels, UInt16ImageIsStretched) {
  GDALAllRegister();
  const int W = 40, H = 30;
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", W, H, 1, GDT_UInt16, nullptr);
  std::vector<uint16_t> px(W * H, 100);
  for (int y = 10; y < 16; y++)
    for (int x = 10; x < 18; x++) px[y * W + x] = 4000;
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(mem, 1), GF_Write, 0, 0, W, H, px.data(), W, H, GDT_UInt16, 0, 0));
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName("GTiff"), "/vsimem/u16.tif", mem, FALSE, nullptr, nullptr, nullptr);
  GDALClose(out);
  GDALClose(mem);
  vsi_l_offset len = 0;
  GByte *buf = VSIGetMemFileBuffer("/vsimem/u16.tif", &len, FALSE);
  std::string bytes(reinterpret_cast<char *>(buf), static_cast<size_t>(len));
  VSIUnlink("/vsimem/u16.tif");
  int rc = -1;
  std::string body = invoke_model("blobs", bytes, nullptr, &rc);
  ASSERT_EQ(0, rc) << body;
  auto feats = features_of(body);
  ASSERT_EQ(1u, feats.size());
  EXPECT_DOUBLE_EQ(10, feats[0].bbox[0]);
  EXPECT_DOUBLE_EQ(18, feats[0].bbox[2]);
}

TEST(EndpointRuntimeModels, GarbageIsAModelError) {
  std::string junk = "this is not an image at all \x01\x02\x03";
  std::string png_header_then_junk = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(200, 'x');
  for (const char *model : {"blobs", "centerpoint", "flood"}) {
    for (const std::string &bytes : {junk, png_header_then_junk, std::string()}) {
      int rc = 0;
      std::string error;
      std::string body = invoke_model(model, bytes, nullptr, &rc, &error);
      EXPECT_EQ(-1, rc) << model;
      EXPECT_NE("", error);
      EXPECT_NE("", body);  // the error payload
    }
  }
  int rc = 0;
  invoke_model("failure", encode_image(make_scene(8, 8, {}), 8, 8, "PNG"), nullptr, &rc);
  EXPECT_EQ(-1, rc);
}

TEST(EndpointRuntimeModels, CenterpointAndFlood) {
  std::string png = encode_image(make_scene(200, 100, {}), 200, 100, "PNG");
  int rc = -1;
  auto feats = features_of(invoke_model("centerpoint", png, nullptr, &rc));
  ASSERT_EQ(0, rc);
  ASSERT_EQ(1u, feats.size());
  EXPECT_DOUBLE_EQ(80, feats[0].bbox[0]);
  EXPECT_DOUBLE_EQ(40, feats[0].bbox[1]);
  EXPECT_DOUBLE_EQ(120, feats[0].bbox[2]);
  EXPECT_DOUBLE_EQ(60, feats[0].bbox[3]);
  EXPECT_DOUBLE_EQ(1.0, feats[0].score);
  feats = features_of(invoke_model("flood", png, "flood_volume=37", &rc));
  ASSERT_EQ(0, rc);
  ASSERT_EQ(37u, feats.size());
  for (auto &f : feats) {
    EXPECT_GE(f.bbox[0], 0);
    EXPECT_LE(f.bbox[2], 200);
    EXPECT_GE(f.score, 0);
    EXPECT_LE(f.score, 1);
  }
  EXPECT_EQ(500u, features_of(invoke_model("flood", png, nullptr, &rc)).size());
  invoke_model("flood", png, "flood_volume=-2", &rc);
  EXPECT_EQ(-1, rc);
}

TEST(EndpointRuntimeModels, UnknownModelName) {
  char err[256] = "";
  EXPECT_EQ(nullptr, ep_model_new("yolo", err, sizeof(err)));
  EXPECT_NE('\0', err[0]);
  EXPECT_EQ(nullptr, ep_model_new("http://", err, sizeof(err)));
}

// ------------------------------------------------------------------ runtime

class RuntimeTest : public ::testing::Test {
 protected:
  MemStore store;
  ep_runtime *rt = nullptr;
  ep_faults *faults = nullptr;
  std::string png;

  void SetUp() override {
    png = encode_image(make_scene(64, 64, {{10, 10, 6, 6, 230, 230, 230}}), 64, 64, "PNG");
    store.add("inputs/tile.png", png);
  }
  void TearDown() override {
    ep_runtime_free(rt);
    ep_faults_free(faults);
  }
  void start(std::vector<std::string> specs, const char *fault_spec = nullptr) {
    std::vector<ep_endpoint_spec> s(specs.size());
    char err[256];
    for (size_t i = 0; i < specs.size(); i++) ASSERT_EQ(0, ep_endpoint_spec_parse(specs[i].c_str(), &s[i], err, sizeof(err))) << err;
    if (fault_spec) {
      ep_fault_spec fs;
      ASSERT_EQ(0, ep_fault_spec_parse(fault_spec, &fs, err, sizeof(err))) << err;
      faults = ep_faults_new(&fs);
    }
    ep_rt_store ops = store.ops();
    rt = ep_runtime_new(s.data(), static_cast<int>(s.size()), &ops, faults, err, sizeof(err));
    ASSERT_NE(rt, nullptr) << err;
  }
  ep_rt_response invoke(const char *ep, Headers h) {
    ep_rt_response r;
    ep_rt_response_init(&r);
    ep_runtime_invoke_async(rt, ep, Headers::lookup, &h, &r);
    return r;
  }
  static Headers basic(const char *extra_name = nullptr, const char *extra_value = nullptr) {
    Headers h;
    h.h.push_back({"X-Amzn-SageMaker-InputLocation", "s3://inputs/tile.png"});
    if (extra_name) h.h.push_back({extra_name, extra_value});
    return h;
  }
  json_object *stats_ep(const char *ep) {
    json_object *st = ep_runtime_stats_json(rt);
    json_object *o = json_object_get(json_object_object_get(json_object_object_get(st, "endpoints"), ep));
    json_object_put(st);
    return o;
  }
  int64_t stat(const char *ep, const char *field, const char *sub = nullptr) {
    json_object *o = stats_ep(ep);
    json_object *v = json_object_object_get(o, field);
    if (sub) v = json_object_object_get(v, sub);
    int64_t r = json_object_get_int64(v);
    json_object_put(o);
    return r;
  }
};

TEST_F(RuntimeTest, AsyncRoundTripWritesOutputWhereHeadersSay) {
  start({"ep,model=blobs,output=s3://results/out,failure=s3://results/fail,concurrency=2"});
  ep_rt_response r = invoke("ep", basic("X-Amzn-SageMaker-Inference-Id", "my-id-1"));
  ASSERT_EQ(202, r.status) << resp_body(r);
  EXPECT_EQ("{\"InferenceId\":\"my-id-1\"}", resp_body(r));
  std::string out = resp_header(r, "X-Amzn-SageMaker-OutputLocation");
  std::string fail = resp_header(r, "X-Amzn-SageMaker-FailureLocation");
  EXPECT_EQ(0u, out.rfind("s3://results/out/", 0)) << out;
  EXPECT_EQ(0u, fail.rfind("s3://results/fail/", 0)) << fail;
  EXPECT_NE(std::string::npos, out.find(".out"));
  EXPECT_NE(std::string::npos, fail.find("-error.out"));
  EXPECT_EQ(std::string::npos, out.find("my-id-1"));  // uuid, not the inference id
  EXPECT_NE("", resp_header(r, "x-amzn-RequestId"));
  ASSERT_TRUE(wait_for([&] { return store.has(s3_to_bk(out)); }));
  auto feats = features_of(store.at(s3_to_bk(out)));
  ASSERT_EQ(1u, feats.size());
  EXPECT_EQ("building", feats[0].iri);
  EXPECT_FALSE(store.has(s3_to_bk(fail)));
  EXPECT_TRUE(wait_for([&] { return stat("ep", "completed") == 1; }));
  EXPECT_EQ(0, stat("ep", "queue_depth"));
  EXPECT_TRUE(wait_for([&] { return stat("ep", "latency_ms", "count") == 1; }));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, FailureModelWritesFailureObject) {
  start({"ep,model=failure"});
  ep_rt_response r = invoke("ep", basic());
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("always fails"));
  EXPECT_FALSE(store.has(s3_to_bk(resp_header(r, "X-Amzn-SageMaker-OutputLocation"))));
  EXPECT_TRUE(wait_for([&] { return stat("ep", "failed_by_reason", "model_error") == 1; }));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, ModelSelectionOverridesEndpointModel) {
  start({"ep,model=failure"});
  ep_rt_response r = invoke("ep", basic("X-Amzn-SageMaker-Custom-Attributes", "model_selection=centerpoint"));
  ASSERT_EQ(202, r.status);
  std::string out = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-OutputLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(out); }));
  auto feats = features_of(store.at(out));
  ASSERT_EQ(1u, feats.size());
  EXPECT_EQ("sample_object", feats[0].iri);
  ep_rt_response_clear(&r);
  r = invoke("ep", basic("X-Amzn-SageMaker-Custom-Attributes", "model_selection=nonesuch"));
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("nonesuch"));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, UnknownEndpointAndBadHeaders) {
  start({"ep"});
  ep_rt_response r = invoke("nope", basic());
  EXPECT_EQ(400, r.status);
  EXPECT_EQ("ValidationError", resp_header(r, "x-amzn-ErrorType"));
  json_object *j = parse(resp_body(r));
  ASSERT_NE(j, nullptr);
  EXPECT_NE(nullptr, strstr(json_object_get_string(json_object_object_get(j, "message")), "nope"));
  json_object_put(j);
  ep_rt_response_clear(&r);

  r = invoke("bad_name!", basic());
  EXPECT_EQ(400, r.status);
  ep_rt_response_clear(&r);

  std::vector<Headers> bad;
  bad.push_back(Headers{});                                                       // no input location
  bad.push_back(Headers{{{"X-Amzn-SageMaker-InputLocation", "s3://inputs/missing"}}});  // no such object
  bad.push_back(Headers{{{"X-Amzn-SageMaker-InputLocation", "https://x/y"}}});
  bad.push_back(Headers{{{"X-Amzn-SageMaker-InputLocation", "s3://inputs"}}});
  bad.push_back(Headers{{{"X-Amzn-SageMaker-InputLocation", "s3://inputs/" + std::string(1100, 'k')}}});
  bad.push_back(basic("X-Amzn-SageMaker-RequestTTLSeconds", "59"));
  bad.push_back(basic("X-Amzn-SageMaker-RequestTTLSeconds", "21601"));
  bad.push_back(basic("X-Amzn-SageMaker-RequestTTLSeconds", "abc"));
  bad.push_back(basic("X-Amzn-SageMaker-InvocationTimeoutSeconds", "0"));
  bad.push_back(basic("X-Amzn-SageMaker-InvocationTimeoutSeconds", "3601"));
  bad.push_back(basic("X-Amzn-SageMaker-Inference-Id", std::string(65, 'i').c_str()));
  bad.push_back(basic("X-Amzn-SageMaker-Inference-Id", "has space"));
  bad.push_back(basic("X-Amzn-SageMaker-Custom-Attributes", std::string(1025, 'a').c_str()));
  bad.push_back(basic("X-Amzn-SageMaker-Custom-Attributes", "tab\there"));
  bad.push_back(basic("X-Amzn-SageMaker-Content-Type", std::string(1025, 'c').c_str()));
  bad.push_back(basic("X-Amzn-SageMaker-Accept", "caf\xc3\xa9"));
  for (size_t i = 0; i < bad.size(); i++) {
    r = invoke("ep", bad[i]);
    EXPECT_EQ(400, r.status) << "case " << i;
    EXPECT_EQ("ValidationError", resp_header(r, "x-amzn-ErrorType")) << "case " << i;
    ep_rt_response_clear(&r);
  }
  // The bounds themselves are accepted.
  Headers ok = basic("X-Amzn-SageMaker-RequestTTLSeconds", "60");
  ok.h.push_back({"X-Amzn-SageMaker-InvocationTimeoutSeconds", "3600"});
  ok.h.push_back({"X-Amzn-SageMaker-Inference-Id", std::string(64, 'i')});
  r = invoke("ep", ok);
  EXPECT_EQ(202, r.status) << resp_body(r);
  ep_rt_response_clear(&r);
  EXPECT_EQ(16, stat("ep", "rejected"));
}

TEST_F(RuntimeTest, TtlExpiryWhileQueuedIsWrittenAsFailure) {
  // Scaled to zero instances: nothing runs, so the request can only expire.
  // time_scale 0.01 turns the minimum TTL of 60 s into 0.6 s.
  start({"ep,instances=0,time_scale=0.01"});
  ep_rt_response r = invoke("ep", basic("X-Amzn-SageMaker-RequestTTLSeconds", "60"));
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  EXPECT_EQ(1, stat("ep", "queue_depth"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("expired"));
  EXPECT_EQ(0, stat("ep", "queue_depth"));
  EXPECT_TRUE(wait_for([&] { return stat("ep", "failed_by_reason", "ttl_expired") == 1; }));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, InvocationTimeoutWhileRunningIsWrittenAsFailure) {
  // 5 s of model latency against a 1 s timeout scaled by 0.05 = 50 ms.
  start({"ep,latency_ms=5000,time_scale=0.05"});
  ep_rt_response r = invoke("ep", basic("X-Amzn-SageMaker-InvocationTimeoutSeconds", "1"));
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("timed out"));
  EXPECT_FALSE(store.has(s3_to_bk(resp_header(r, "X-Amzn-SageMaker-OutputLocation"))));
  EXPECT_TRUE(wait_for([&] { return stat("ep", "failed_by_reason", "invocation_timeout") == 1; }));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, HangFaultEndsAtInvocationTimeout) {
  start({"ep,time_scale=0.05"}, "hang=1");
  ep_rt_response r = invoke("ep", basic("X-Amzn-SageMaker-InvocationTimeoutSeconds", "2"));
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("timed out"));
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, ModelErrorFaultAndInvokeFaults) {
  start({"ep"}, "model_error=1");
  ep_rt_response r = invoke("ep", basic());
  ASSERT_EQ(202, r.status);
  std::string fail = s3_to_bk(resp_header(r, "X-Amzn-SageMaker-FailureLocation"));
  ASSERT_TRUE(wait_for([&] { return store.has(fail); }));
  EXPECT_NE(std::string::npos, store.at(fail).find("injected"));
  ep_rt_response_clear(&r);
  ep_runtime_free(rt);
  rt = nullptr;
  ep_faults_free(faults);
  faults = nullptr;

  start({"ep"}, "invoke_throttle=1");
  r = invoke("ep", basic());
  EXPECT_EQ(400, r.status);
  EXPECT_EQ("ThrottlingException", resp_header(r, "x-amzn-ErrorType"));
  ep_rt_response_clear(&r);
  ep_runtime_free(rt);
  rt = nullptr;
  ep_faults_free(faults);
  faults = nullptr;

  start({"ep"}, "invoke_5xx=1");
  bool seen500 = false, seen503 = false;
  for (int i = 0; i < 40; i++) {
    r = invoke("ep", basic());
    seen500 |= r.status == 500 && resp_header(r, "x-amzn-ErrorType") == "InternalFailure";
    seen503 |= r.status == 503 && resp_header(r, "x-amzn-ErrorType") == "ServiceUnavailable";
    ep_rt_response_clear(&r);
  }
  EXPECT_TRUE(seen500);
  EXPECT_TRUE(seen503);
  ep_runtime_free(rt);
  rt = nullptr;
  ep_faults_free(faults);
  faults = nullptr;

  start({"ep"}, "drop=1");
  r = invoke("ep", basic());
  EXPECT_EQ(1, r.drop_connection);
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, SyncInvocation) {
  start({"ep,model=blobs", "bad,model=failure"});
  Headers h;
  h.h.push_back({"Content-Type", "image/png"});
  ep_rt_response r;
  ep_rt_response_init(&r);
  ep_runtime_invoke_sync(rt, "ep", Headers::lookup, &h, reinterpret_cast<const unsigned char *>(png.data()),
                          png.size(), &r);
  ASSERT_EQ(200, r.status) << resp_body(r);
  EXPECT_EQ(1u, features_of(resp_body(r)).size());
  ep_rt_response_clear(&r);
  ep_runtime_invoke_sync(rt, "bad", Headers::lookup, &h, reinterpret_cast<const unsigned char *>(png.data()),
                          png.size(), &r);
  EXPECT_EQ(424, r.status);
  EXPECT_EQ("ModelError", resp_header(r, "x-amzn-ErrorType"));
  ep_rt_response_clear(&r);
  ep_runtime_invoke_sync(rt, "ep", Headers::lookup, &h, reinterpret_cast<const unsigned char *>("junk"), 4, &r);
  EXPECT_EQ(424, r.status);
  ep_rt_response_clear(&r);
  ep_runtime_invoke_sync(rt, "zzz", Headers::lookup, &h, nullptr, 0, &r);
  EXPECT_EQ(400, r.status);
  ep_rt_response_clear(&r);
}

TEST_F(RuntimeTest, ManyInvocationsAllComplete) {
  start({"ep,concurrency=4"});
  std::vector<std::string> outs;
  for (int i = 0; i < 500; i++) {
    ep_rt_response r = invoke("ep", basic());
    ASSERT_EQ(202, r.status);
    outs.push_back(s3_to_bk(resp_header(r, "X-Amzn-SageMaker-OutputLocation")));
    ep_rt_response_clear(&r);
  }
  ASSERT_TRUE(wait_for([&] { return stat("ep", "completed") == 500; }));
  for (auto &o : outs) EXPECT_TRUE(store.has(o));
  std::sort(outs.begin(), outs.end());
  EXPECT_EQ(outs.end(), std::unique(outs.begin(), outs.end()));  // one uuid each
  json_object *o = stats_ep("ep");
  json_object *lat = json_object_object_get(o, "latency_ms");
  EXPECT_EQ(500, json_object_get_int(json_object_object_get(lat, "count")));
  EXPECT_GE(json_object_get_double(json_object_object_get(lat, "p99")),
            json_object_get_double(json_object_object_get(lat, "p50")));
  json_object_put(o);
}

TEST_F(RuntimeTest, StopAbandonsQueuedAndSleepingJobsWithoutWriting) {
  start({"ep,latency_ms=600000"});
  for (int i = 0; i < 5; i++) {
    ep_rt_response r = invoke("ep", basic());
    ASSERT_EQ(202, r.status);
    ep_rt_response_clear(&r);
  }
  ASSERT_TRUE(wait_for([&] { return stat("ep", "in_flight") == 1; }));
  int before = store.puts.load();
  ep_runtime_stop(rt);  // must return promptly although a job sleeps for 10 minutes
  EXPECT_EQ(before, store.puts.load());
  ep_rt_response r = invoke("ep", basic());
  EXPECT_EQ(503, r.status);
  ep_rt_response_clear(&r);
  EXPECT_EQ(5, stat("ep", "abandoned"));
}

}  // namespace

// ------------------------------------------- blobs against the sample data

namespace {

std::string read_file(const std::string &path) {
  std::string out;
  FILE *f = fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

struct Truth {
  std::string cls;
  double bbox[4];
};

std::vector<Truth> ground_truth(bool skip_nodata_block = false) {
  std::vector<Truth> out;
  json_object *root = json_tokener_parse(read_file(asd_test::data_dir() + "/ground_truth.geojson").c_str());
  if (!root) return out;
  json_object *feats = json_object_object_get(root, "features");
  for (size_t i = 0; i < json_object_array_length(feats); i++) {
    json_object *p = json_object_object_get(json_object_array_get_idx(feats, i), "properties");
    if (skip_nodata_block && json_object_get_boolean(json_object_object_get(p, "in_nodata_block"))) continue;
    Truth t;
    t.cls = json_object_get_string(json_object_object_get(p, "class"));
    json_object *bb = json_object_object_get(p, "pixel_bbox");
    for (int k = 0; k < 4; k++) t.bbox[k] = json_object_get_double(json_object_array_get_idx(bb, k));
    out.push_back(t);
  }
  json_object_put(root);
  return out;
}

// Every ground-truth object is found exactly once, with its class and its
// exact pixel bbox, and nothing else is found.
void expect_matches_truth(const std::string &scene, bool skip_nodata_block = false) {
  std::string bytes = read_file(asd_test::data_dir() + "/" + scene);
  if (bytes.empty()) GTEST_SKIP() << "no " << scene << " in data/";
  auto truth = ground_truth(skip_nodata_block);
  ASSERT_FALSE(truth.empty());
  int rc = -1;
  std::string error;
  std::string body = invoke_model("blobs", bytes, nullptr, &rc, &error);
  ASSERT_EQ(0, rc) << error;
  auto feats = features_of(body);
  ASSERT_EQ(truth.size(), feats.size()) << scene;
  auto key = [](const double *b) { return std::make_pair(b[1], b[0]); };
  std::sort(truth.begin(), truth.end(), [&](const Truth &a, const Truth &b) { return key(a.bbox) < key(b.bbox); });
  std::sort(feats.begin(), feats.end(), [&](const Feature &a, const Feature &b) { return key(a.bbox) < key(b.bbox); });
  for (size_t i = 0; i < truth.size(); i++) {
    for (int k = 0; k < 4; k++) EXPECT_DOUBLE_EQ(truth[i].bbox[k], feats[i].bbox[k]) << scene << " object " << i;
    EXPECT_EQ(truth[i].cls, feats[i].iri) << scene << " object " << i;
    EXPECT_GT(feats[i].score, 170.0 / 255.0);
    EXPECT_LE(feats[i].score, 1.0);
  }
}

}  // namespace

TEST(EndpointRuntimeModels, BlobsFindsTheSampleSceneGroundTruth) { expect_matches_truth("scene_utm.tif"); }

TEST(EndpointRuntimeModels, BlobsFindsTheGroundTruthIn16BitScene) { expect_matches_truth("scene_u16.tif"); }

// Objects inside the nodata block are blanked (0) in this scene: not found.
TEST(EndpointRuntimeModels, BlobsOnNodataSceneMissesOnlyBlankedObjects) {
  expect_matches_truth("scene_nodata.tif", true);
}
