// Conformance of the local endpoint's SageMaker Runtime side, against the
// real asyncdetect_endpoint binary: async round trips with every model,
// output and failure objects where the response headers say, TTL and
// invocation-timeout expiry, every fault kind, validation errors,
// model_selection, synchronous invocations, the http:// forwarding model
// against a tiny in-test model container, and the AWS CLI and boto3 as
// independent clients (signed requests).
//
// Requests of our own go unsigned to a server started with -no-auth (the
// signing itself is covered by the aws and endpoint-core suites); the AWS
// CLI and boto3 tests run with authentication on.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <json.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <cpl_vsi.h>
#include <gdal.h>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"

namespace {

using asd_test::LocalEndpoint;

// --------------------------------------------------------------- HTTP client

struct Reply {
  long status = -1;
  CURLcode curl = CURLE_OK;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string &name) const {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    auto it = headers.find(n);
    return it == headers.end() ? "" : it->second;
  }
};

size_t on_body(char *p, size_t s, size_t n, void *ud) {
  static_cast<std::string *>(ud)->append(p, s * n);
  return s * n;
}
size_t on_header(char *p, size_t s, size_t n, void *ud) {
  std::string line(p, s * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    (*static_cast<std::map<std::string, std::string> *>(ud))[name] = value;
  }
  return s * n;
}

Reply http(const std::string &method, const std::string &url, const std::vector<std::string> &headers = {},
           const std::string &body = "") {
  Reply r;
  CURL *c = curl_easy_init();
  struct curl_slist *hl = nullptr;
  for (auto &h : headers) hl = curl_slist_append(hl, h.c_str());
  hl = curl_slist_append(hl, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  r.curl = curl_easy_perform(c);
  if (r.curl == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return r;
}

// s3://bucket/key -> URL on the endpoint (path-style).
std::string s3_url(const LocalEndpoint &ep, const std::string &uri) {
  EXPECT_EQ(0u, uri.rfind("s3://", 0)) << uri;
  return ep.url() + "/" + uri.substr(5);
}

// Polls GET on an object until it exists (bounded; never a timing assertion).
Reply wait_object(const LocalEndpoint &ep, const std::string &uri, double seconds = 30) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  Reply r;
  do {
    r = http("GET", s3_url(ep, uri));
    if (r.status == 200) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < end);
  return r;
}

bool object_exists(const LocalEndpoint &ep, const std::string &uri) {
  return http("HEAD", s3_url(ep, uri)).status == 200;
}

// ---------------------------------------------------------------- test data

struct Rect {
  int x, y, w, h;
  unsigned char r, g, b;
};

// A PNG: dark textured background (<= 129) with the given rectangles.
std::string make_png(int w, int h, const std::vector<Rect> &rects, const char *driver = "PNG") {
  GDALAllRegister();
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", w, h, 3, GDT_Byte, nullptr);
  std::vector<unsigned char> band(static_cast<size_t>(w) * h);
  for (int b = 0; b < 3; b++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        unsigned char v = static_cast<unsigned char>(40 + ((x * 7 + y * 13) % 90));
        band[static_cast<size_t>(y) * w + x] = static_cast<unsigned char>(b == 0 ? v : b == 1 ? v / 2 + 20 : v / 3 + 30);
      }
    for (auto &r : rects)
      for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++) band[static_cast<size_t>(y) * w + x] = b == 0 ? r.r : b == 1 ? r.g : r.b;
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(mem, b + 1), GF_Write, 0, 0, w, h, band.data(), w, h, GDT_Byte, 0, 0));
  }
  static std::atomic<int> n{0};
  std::string path = "/vsimem/conf_" + std::to_string(n++);
  GDALClose(GDALCreateCopy(GDALGetDriverByName(driver), path.c_str(), mem, FALSE, nullptr, nullptr, nullptr));
  GDALClose(mem);
  vsi_l_offset len = 0;
  GByte *buf = VSIGetMemFileBuffer(path.c_str(), &len, FALSE);
  std::string bytes(reinterpret_cast<char *>(buf), static_cast<size_t>(len));
  VSIUnlink(path.c_str());
  return bytes;
}

struct Detection {
  std::string iri;
  double score;
  std::vector<double> bbox;
};

std::vector<Detection> parse_fc(const std::string &text) {
  std::vector<Detection> out;
  json_object *root = json_tokener_parse(text.c_str());
  EXPECT_NE(root, nullptr) << text.substr(0, 300);
  if (!root) return out;
  json_object *feats = json_object_object_get(root, "features");
  for (size_t i = 0; i < json_object_array_length(feats); i++) {
    json_object *p = json_object_object_get(json_object_array_get_idx(feats, i), "properties");
    json_object *fc = json_object_array_get_idx(json_object_object_get(p, "featureClasses"), 0);
    Detection d;
    d.iri = json_object_get_string(json_object_object_get(fc, "iri"));
    d.score = json_object_get_double(json_object_object_get(fc, "score"));
    json_object *bb = json_object_object_get(p, "imageBBox");
    for (size_t k = 0; k < json_object_array_length(bb); k++) d.bbox.push_back(json_object_get_double(json_object_array_get_idx(bb, k)));
    EXPECT_NE(json_object_object_get(p, "imageGeometry"), nullptr);
    EXPECT_NE(json_object_object_get(p, "modelMetadata"), nullptr);
    out.push_back(d);
  }
  json_object_put(root);
  return out;
}

const std::vector<Rect> kRects = {{20, 30, 10, 8, 235, 235, 230},  // building
                                  {80, 50, 6, 12, 245, 120, 40},   // vehicle
                                  {150, 100, 14, 14, 215, 215, 220}};

class EndpointRuntimeConformance : public ::testing::Test {
 protected:
  std::unique_ptr<LocalEndpoint> ep;
  std::string png;

  // auth: signatures are verified and the clients under test upload their
  // own inputs (signed).  A build without a SigV4 verifier answers signed
  // requests 501; the clients are then run against -no-auth (they still
  // sign, the server does not check).
  void start(std::vector<std::string> args, bool auth = false) {
    if (auth && !verifier_available()) auth = false;
    if (!auth) args.push_back("-no-auth");
    args.push_back("-bucket");
    args.push_back("inputs");
    ep.reset();
    ep = std::make_unique<LocalEndpoint>(args);
    png = make_png(192, 128, kRects);
    if (!auth) {
      ASSERT_EQ(200, put("inputs/tile.png", png).status);
    }
  }
  static bool verifier_available() {
    LocalEndpoint probe;
    return http("GET", probe.url() + "/inputs").status != 501;
  }
  Reply put(const std::string &bk, const std::string &bytes) { return http("PUT", ep->url() + "/" + bk, {}, bytes); }
  Reply invoke(const std::string &name, std::vector<std::string> headers = {},
               const std::string &input = "s3://inputs/tile.png") {
    if (!input.empty()) headers.push_back("X-Amzn-SageMaker-InputLocation: " + input);
    return http("POST", ep->url() + "/endpoints/" + name + "/async-invocations", headers);
  }
  json_object *stats() { return json_tokener_parse(ep->stats_json().c_str()); }
};

TEST_F(EndpointRuntimeConformance, AsyncRoundTripWithEveryModel) {
  start({"-endpoint", "ep-center,model=centerpoint,output=s3://results/center/out,failure=s3://results/center/fail",
         "-endpoint", "ep-flood,model=flood,output=s3://results/flood,failure=s3://failures/flood",
         "-endpoint", "ep-fail,model=failure,output=s3://results/x,failure=s3://failures/x",
         "-endpoint", "ep-blobs,model=blobs,output=s3://results/blobs,failure=s3://failures/blobs,concurrency=2"});

  Reply r = invoke("ep-center", {"X-Amzn-SageMaker-Inference-Id: tile-0001"});
  ASSERT_EQ(202, r.status) << r.body;
  EXPECT_EQ("{\"InferenceId\":\"tile-0001\"}", r.body);
  EXPECT_NE("", r.header("x-amzn-RequestId"));
  std::string out = r.header("X-Amzn-SageMaker-OutputLocation"), fail = r.header("X-Amzn-SageMaker-FailureLocation");
  EXPECT_EQ(0u, out.rfind("s3://results/center/out/", 0)) << out;
  EXPECT_EQ(0u, fail.rfind("s3://results/center/fail/", 0)) << fail;
  EXPECT_EQ(out.size() - 4, out.rfind(".out"));
  EXPECT_EQ(fail.size() - 10, fail.rfind("-error.out"));
  Reply o = wait_object(*ep, out);
  ASSERT_EQ(200, o.status);
  auto d = parse_fc(o.body);
  ASSERT_EQ(1u, d.size());
  EXPECT_EQ((std::vector<double>{76.8, 51.2, 115.2, 76.8}), d[0].bbox);
  EXPECT_FALSE(object_exists(*ep, fail));

  r = invoke("ep-flood", {"X-Amzn-SageMaker-Custom-Attributes: flood_volume=25"});
  ASSERT_EQ(202, r.status);
  o = wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_EQ(25u, parse_fc(o.body).size());

  r = invoke("ep-fail");
  ASSERT_EQ(202, r.status);
  EXPECT_EQ(0u, r.header("X-Amzn-SageMaker-FailureLocation").rfind("s3://failures/x/", 0));
  o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("always fails"));
  EXPECT_FALSE(object_exists(*ep, r.header("X-Amzn-SageMaker-OutputLocation")));

  r = invoke("ep-blobs");
  ASSERT_EQ(202, r.status);
  o = wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation"));
  ASSERT_EQ(200, o.status);
  d = parse_fc(o.body);
  ASSERT_EQ(3u, d.size()) << o.body;
  std::sort(d.begin(), d.end(), [](const Detection &a, const Detection &b) { return a.bbox[0] < b.bbox[0]; });
  for (size_t i = 0; i < 3; i++) {
    EXPECT_EQ((std::vector<double>{double(kRects[i].x), double(kRects[i].y), double(kRects[i].x + kRects[i].w),
                                   double(kRects[i].y + kRects[i].h)}),
              d[i].bbox);
  }
  EXPECT_EQ("building", d[0].iri);
  EXPECT_EQ("vehicle", d[1].iri);
  EXPECT_EQ("building", d[2].iri);
  EXPECT_NEAR(245.0 / 255.0, d[1].score, 1e-3);

  // The stats page reports the runtime.
  json_object *st = stats();
  ASSERT_NE(st, nullptr);
  json_object *rt = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(st, "runtime", &rt));
  json_object *blobs = json_object_object_get(json_object_object_get(rt, "endpoints"), "ep-blobs");
  ASSERT_NE(blobs, nullptr);
  EXPECT_EQ(2, json_object_get_int(json_object_object_get(blobs, "workers")));
  json_object_put(st);
}

TEST_F(EndpointRuntimeConformance, BlobsOnGarbageWritesFailureAndKeepsServing) {
  start({"-endpoint", "ep,model=blobs,output=s3://results/o,failure=s3://results/f"});
  ASSERT_EQ(200, put("inputs/junk.bin", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(5000, '\x7f')).status);
  Reply r = invoke("ep", {}, "s3://inputs/junk.bin");
  ASSERT_EQ(202, r.status);
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("cannot decode"));
  // JPEG and GeoTIFF tiles still work afterwards.
  for (const char *drv : {"JPEG", "GTiff"}) {
    ASSERT_EQ(200, put("inputs/t2", make_png(192, 128, kRects, drv)).status);
    r = invoke("ep", {}, "s3://inputs/t2");
    ASSERT_EQ(202, r.status);
    o = wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation"));
    ASSERT_EQ(200, o.status) << drv;
    EXPECT_EQ(3u, parse_fc(o.body).size()) << drv;
  }
}

TEST_F(EndpointRuntimeConformance, ModelSelectionInCustomAttributes) {
  start({"-endpoint", "ep,model=failure,output=s3://results/o,failure=s3://results/f"});
  Reply r = invoke("ep", {"X-Amzn-SageMaker-Custom-Attributes: model_selection=blobs"});
  ASSERT_EQ(202, r.status);
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_EQ(3u, parse_fc(o.body).size());
}

TEST_F(EndpointRuntimeConformance, UnknownEndpointAndBadHeaders) {
  start({"-endpoint", "ep,output=s3://results/o,failure=s3://results/f"});
  Reply r = invoke("no-such-endpoint");
  EXPECT_EQ(400, r.status);
  EXPECT_EQ("ValidationError", r.header("x-amzn-ErrorType").substr(0, 15));
  json_object *j = json_tokener_parse(r.body.c_str());
  ASSERT_NE(j, nullptr) << r.body;
  json_object *msg = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(j, "message", &msg));
  EXPECT_NE(nullptr, strstr(json_object_get_string(msg), "no-such-endpoint"));
  json_object_put(j);

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{}, ""},                                            // no InputLocation
      {{}, "s3://inputs/missing.png"},                     // no such object
      {{}, "s3://no-such-bucket/tile.png"},
      {{}, "file:///etc/passwd"},
      {{"X-Amzn-SageMaker-RequestTTLSeconds: 59"}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-RequestTTLSeconds: 21601"}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-InvocationTimeoutSeconds: 0"}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-InvocationTimeoutSeconds: 3601"}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-InvocationTimeoutSeconds: ten"}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-Inference-Id: " + std::string(65, 'x')}, "s3://inputs/tile.png"},
      {{"X-Amzn-SageMaker-Custom-Attributes: " + std::string(1025, 'a')}, "s3://inputs/tile.png"},
  };
  for (size_t i = 0; i < bad.size(); i++) {
    r = invoke("ep", bad[i].first, bad[i].second);
    EXPECT_EQ(400, r.status) << "case " << i << ": " << r.body;
    EXPECT_EQ("ValidationError", r.header("x-amzn-ErrorType").substr(0, 15)) << "case " << i;
  }
  // The server is still serving.
  EXPECT_EQ(202, invoke("ep").status);
}

TEST_F(EndpointRuntimeConformance, TtlExpiryAndInvocationTimeout) {
  // instances=0: requests queue and can only expire.  time_scale shrinks the
  // protocol's minimum TTL (60 s) and timeout (1 s) to test-friendly times.
  start({"-endpoint", "queued,instances=0,time_scale=0.01,output=s3://results/q,failure=s3://results/qf",
         "-endpoint", "slow,latency_ms=600000,time_scale=0.05,output=s3://results/s,failure=s3://results/sf"});
  Reply r = invoke("queued", {"X-Amzn-SageMaker-RequestTTLSeconds: 60"});
  ASSERT_EQ(202, r.status);
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("expired"));
  EXPECT_FALSE(object_exists(*ep, r.header("X-Amzn-SageMaker-OutputLocation")));

  r = invoke("slow", {"X-Amzn-SageMaker-InvocationTimeoutSeconds: 1"});
  ASSERT_EQ(202, r.status);
  o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("timed out"));
  EXPECT_FALSE(object_exists(*ep, r.header("X-Amzn-SageMaker-OutputLocation")));
}

TEST_F(EndpointRuntimeConformance, SyncInvocations) {
  start({"-endpoint", "ep,model=blobs", "-endpoint", "bad,model=failure"});
  Reply r = http("POST", ep->url() + "/endpoints/ep/invocations", {"Content-Type: image/png"}, png);
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ(3u, parse_fc(r.body).size());
  r = http("POST", ep->url() + "/endpoints/bad/invocations", {"Content-Type: image/png"}, png);
  EXPECT_EQ(424, r.status);
  EXPECT_EQ("ModelError", r.header("x-amzn-ErrorType").substr(0, 10));
  r = http("POST", ep->url() + "/endpoints/nope/invocations", {"Content-Type: image/png"}, png);
  EXPECT_EQ(400, r.status);
}

// ------------------------------------------------------------------- faults

TEST_F(EndpointRuntimeConformance, InvokeFaults) {
  // Invocation faults are decided before the request is validated, so no
  // input object is needed (and drop=1 would refuse its upload anyway).
  auto call = [](const LocalEndpoint &e) {
    return http("POST", e.url() + "/endpoints/ep/async-invocations",
                {"X-Amzn-SageMaker-InputLocation: s3://inputs/tile.png"});
  };
  {
    LocalEndpoint e({"-no-auth", "-endpoint", "ep", "-faults", "invoke_throttle=1"});
    Reply r = call(e);
    EXPECT_EQ(400, r.status);
    EXPECT_EQ("ThrottlingException", r.header("x-amzn-ErrorType").substr(0, 19));
  }
  {
    LocalEndpoint e({"-no-auth", "-endpoint", "ep", "-faults", "invoke_5xx=1,seed=3"});
    bool s500 = false, s503 = false;
    for (int i = 0; i < 30; i++) {
      Reply r = call(e);
      s500 |= r.status == 500 && r.header("x-amzn-ErrorType").rfind("InternalFailure", 0) == 0;
      s503 |= r.status == 503 && r.header("x-amzn-ErrorType").rfind("ServiceUnavailable", 0) == 0;
      EXPECT_TRUE(r.status == 500 || r.status == 503) << r.status;
    }
    EXPECT_TRUE(s500);
    EXPECT_TRUE(s503);
  }
  {
    LocalEndpoint e({"-no-auth", "-endpoint", "ep", "-faults", "drop=1"});
    Reply r = call(e);
    EXPECT_NE(CURLE_OK, r.curl);  // connection closed without an answer
    EXPECT_EQ(-1, r.status);
  }
  {
    // The same seed gives the same sequence of decisions.
    std::vector<long> seq[2];
    for (int k = 0; k < 2; k++) {
      LocalEndpoint e({"-no-auth", "-endpoint", "ep", "-faults", "invoke_throttle=0.5,seed=11"});
      for (int i = 0; i < 20; i++) seq[k].push_back(call(e).status);
    }
    EXPECT_EQ(seq[0], seq[1]);
  }
}

TEST_F(EndpointRuntimeConformance, JobFaults) {
  {
    start({"-endpoint", "ep,output=s3://results/o,failure=s3://results/f", "-faults", "model_error=1"});
    Reply r = invoke("ep");
    ASSERT_EQ(202, r.status);
    Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
    ASSERT_EQ(200, o.status);
    EXPECT_NE(std::string::npos, o.body.find("injected"));
  }
  {
    start({"-endpoint", "ep,time_scale=0.05,output=s3://results/o,failure=s3://results/f", "-faults", "hang=1"});
    Reply r = invoke("ep", {"X-Amzn-SageMaker-InvocationTimeoutSeconds: 2"});
    ASSERT_EQ(202, r.status);
    Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
    ASSERT_EQ(200, o.status);
    EXPECT_NE(std::string::npos, o.body.find("timed out"));
    json_object *st = stats();
    json_object *f = nullptr;
    ASSERT_TRUE(json_object_object_get_ex(st, "faults", &f)) << ep->stats_json();
    EXPECT_EQ(1, json_object_get_int(json_object_object_get(f, "hang")));
    json_object_put(st);
  }
}

TEST_F(EndpointRuntimeConformance, S3Faults) {
  // With the S3 faults at probability 1 the fixture cannot upload its tile,
  // so these servers are started directly.
  struct Case {
    const char *spec;
    long status;
    const char *code;
  } cases[] = {{"s3_503=1", 503, "SlowDown"}, {"s3_500=1", 500, "InternalError"}, {"drop=1", -1, nullptr}};
  for (auto &c : cases) {
    LocalEndpoint e({"-no-auth", "-bucket", "inputs", "-faults", c.spec});
    Reply r = http("PUT", e.url() + "/inputs/x", {}, "hello");
    EXPECT_EQ(c.status, r.status) << c.spec;
    if (c.code) EXPECT_NE(std::string::npos, r.body.find(std::string("<Code>") + c.code + "</Code>")) << r.body;
    else EXPECT_NE(CURLE_OK, r.curl);
    // The stats page stays outside the fault injection.
    EXPECT_NE("", e.stats_json()) << c.spec;
  }
  // Slow consumer: requests are held but served.
  LocalEndpoint e({"-no-auth", "-bucket", "inputs", "-faults", "slow_consumer_ms=30"});
  EXPECT_EQ(200, http("PUT", e.url() + "/inputs/x", {}, "hello").status);
  Reply g = http("GET", e.url() + "/inputs/x");
  EXPECT_EQ(200, g.status);
  EXPECT_EQ("hello", g.body);
  json_object *st = json_tokener_parse(e.stats_json().c_str());
  json_object *f = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(st, "faults", &f));
  EXPECT_EQ(30, json_object_get_int(json_object_object_get(f, "slow_consumer_ms")));
  json_object_put(st);
}

// ------------------------------------------------- http:// forwarding model

// A tiny SageMaker-compatible model container: GET /ping -> 200;
// POST /invocations -> a FeatureCollection echoing what it received, or 500
// when the custom attributes ask for it.
class TinyModelContainer {
 public:
  TinyModelContainer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    listen(fd_, 16);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~TinyModelContainer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::atomic<int> invocations{0};
  std::atomic<int> pings{0};
  std::atomic<int> ping_status{200};
  std::string last_attrs, last_ctype;

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      close(c);
    }
  }
  static std::string header_of(const std::string &head, const std::string &name) {
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    std::string key = "\r\n" + name + ":";
    auto pos = lower.find(key);
    if (pos == std::string::npos) return "";
    auto start = head.find_first_not_of(' ', pos + key.size());
    auto end = head.find("\r\n", start);
    return head.substr(start, end - start);
  }
  void serve(int c) {
    std::string data;
    char buf[65536];
    size_t header_end = std::string::npos;
    while (header_end == std::string::npos) {
      ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
      header_end = data.find("\r\n\r\n");
    }
    std::string head = data.substr(0, header_end);
    size_t want = static_cast<size_t>(atol(header_of(head, "content-length").c_str()));
    while (data.size() - header_end - 4 < want) {
      ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    std::string status = "200 OK", body;
    if (head.rfind("GET /ping", 0) == 0) {
      pings++;
      if (ping_status != 200) status = std::to_string(ping_status.load()) + " Unhealthy";
      body = "\n";
    } else if (head.rfind("POST /invocations", 0) == 0) {
      invocations++;
      last_attrs = header_of(head, "x-amzn-sagemaker-custom-attributes");
      last_ctype = header_of(head, "content-type");
      if (last_attrs.find("fail=1") != std::string::npos) {
        status = "500 Internal Server Error";
        body = "container says no";
      } else {
        body = "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"geometry\":null,"
               "\"properties\":{\"imageBBox\":[0,0," + std::to_string(want) + ",1],\"featureClasses\":"
               "[{\"iri\":\"echo\",\"score\":0.5}],\"imageGeometry\":{\"type\":\"Point\",\"coordinates\":[0,0]},"
               "\"modelMetadata\":{\"modelName\":\"tiny\"}}}]}";
      }
    } else {
      status = "404 Not Found";
    }
    std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
  }
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(EndpointRuntimeConformance, HttpModelForwardsToContainer) {
  TinyModelContainer container;
  std::string url = "http://127.0.0.1:" + std::to_string(container.port());
  start({"-endpoint", "fwd,model=" + url + ",output=s3://results/o,failure=s3://results/f"});
  Reply r = invoke("fwd", {"X-Amzn-SageMaker-Content-Type: image/png", "X-Amzn-SageMaker-Custom-Attributes: a=1"});
  ASSERT_EQ(202, r.status) << r.body;
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation"));
  ASSERT_EQ(200, o.status);
  auto d = parse_fc(o.body);
  ASSERT_EQ(1u, d.size());
  EXPECT_EQ("echo", d[0].iri);
  EXPECT_EQ(static_cast<double>(png.size()), d[0].bbox[2]);  // the container got the whole tile
  EXPECT_EQ("a=1", container.last_attrs);
  EXPECT_EQ(1, container.pings.load());  // pinged once before the first invocation
  EXPECT_EQ("image/png", container.last_ctype);

  r = invoke("fwd", {"X-Amzn-SageMaker-Custom-Attributes: fail=1"});
  ASSERT_EQ(202, r.status);
  o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_EQ("container says no", o.body);

  // Synchronous invocations are forwarded too.
  r = http("POST", ep->url() + "/endpoints/fwd/invocations", {"Content-Type: image/png"}, png);
  EXPECT_EQ(200, r.status);
  EXPECT_EQ(3, container.invocations.load());
}

TEST_F(EndpointRuntimeConformance, HttpModelUnhealthyContainerGetsNoTraffic) {
  TinyModelContainer container;
  container.ping_status = 503;
  std::string url = "http://127.0.0.1:" + std::to_string(container.port());
  start({"-endpoint", "fwd,model=" + url + ",output=s3://results/o,failure=s3://results/f"});
  Reply r = invoke("fwd");
  ASSERT_EQ(202, r.status);
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("not healthy")) << o.body;
  EXPECT_EQ(0, container.invocations.load());
  // Once the container is healthy, traffic flows.
  container.ping_status = 200;
  r = invoke("fwd");
  ASSERT_EQ(202, r.status);
  EXPECT_EQ(200, wait_object(*ep, r.header("X-Amzn-SageMaker-OutputLocation")).status);
  EXPECT_EQ(1, container.invocations.load());
}

TEST_F(EndpointRuntimeConformance, HttpModelWithoutContainerIsAFailure) {
  // Find a port nobody listens on: bind, read the port, close.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr *>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr *>(&a), &len);
  int port = ntohs(a.sin_port);
  close(s);
  start({"-endpoint", "fwd,model=http://127.0.0.1:" + std::to_string(port) + ",output=s3://results/o,failure=s3://results/f"});
  Reply r = invoke("fwd");
  ASSERT_EQ(202, r.status);
  Reply o = wait_object(*ep, r.header("X-Amzn-SageMaker-FailureLocation"));
  ASSERT_EQ(200, o.status);
  EXPECT_NE(std::string::npos, o.body.find("http"));
}

// ------------------------------------------------------- independent clients

using asd_test::run_command;
std::string run(const std::string &cmd, int *rc) { return run_command(cmd, rc); }

std::string json_field(const std::string &text, const char *key) {
  json_object *j = json_tokener_parse(text.c_str());
  if (!j) return "";
  json_object *v = nullptr;
  std::string s = json_object_object_get_ex(j, key, &v) ? json_object_get_string(v) : "";
  json_object_put(j);
  return s;
}

TEST_F(EndpointRuntimeConformance, AwsCliInvokeEndpointAsyncSigned) {
  int rc = 0;
  run("python3 -m awscli --version >/dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "python3's AWS CLI (awscli) is not installed";
  start({"-endpoint", "ep-blobs,model=blobs,output=s3://results/o,failure=s3://results/f"}, /*auth=*/true);
  // Upload with the CLI too (signed), then invoke.
  std::string env = "env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=" + std::string(asd_test::kLocalAccessKey) +
                    " AWS_SECRET_ACCESS_KEY=" + asd_test::kLocalSecretKey +
                    " AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 ";
  char tmpl[] = "/tmp/asd_cli_tile_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(static_cast<ssize_t>(png.size()), write(fd, png.data(), png.size()));
  close(fd);
  std::string base = env + "python3 -m awscli --endpoint-url " + ep->url() + " ";
  run(base + "s3api put-object --bucket inputs --key cli/tile.png --body " + tmpl + " 2>&1", &rc);
  unlink(tmpl);
  ASSERT_EQ(0, rc);
  std::string out = run(base + "sagemaker-runtime invoke-endpoint-async --endpoint-name ep-blobs "
                               "--input-location s3://inputs/cli/tile.png --inference-id cli-1 "
                               "--request-ttl-seconds 600 --invocation-timeout-seconds 60 "
                               "--content-type image/png --custom-attributes model_selection=blobs 2>&1",
                        &rc);
  ASSERT_EQ(0, rc) << out;
  EXPECT_EQ("cli-1", json_field(out, "InferenceId"));
  std::string loc = json_field(out, "OutputLocation");
  ASSERT_EQ(0u, loc.rfind("s3://results/o/", 0)) << out;
  EXPECT_EQ(0u, json_field(out, "FailureLocation").rfind("s3://results/f/", 0)) << out;
  // Unsigned GETs are refused with auth on; fetch the result with the CLI.
  std::string key = loc.substr(strlen("s3://results/"));
  std::string got;
  for (int i = 0; i < 300; i++) {
    got = run(base + "s3 cp " + loc + " - 2>/dev/null", &rc);
    if (rc == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(0, rc);
  EXPECT_EQ(3u, parse_fc(got).size());
  // An unknown endpoint is a ValidationError for the CLI.
  out = run(base + "sagemaker-runtime invoke-endpoint-async --endpoint-name nope "
                   "--input-location s3://inputs/cli/tile.png 2>&1",
            &rc);
  EXPECT_NE(0, rc);
  EXPECT_NE(std::string::npos, out.find("ValidationError")) << out;
}

TEST_F(EndpointRuntimeConformance, Boto3AsyncAndSyncSigned) {
  int rc = 0;
  run("python3 -c 'import boto3' >/dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "python3 has no boto3";
  start({"-endpoint", "ep,model=blobs,output=s3://results/o,failure=s3://results/f", "-endpoint",
         "bad,model=failure,output=s3://results/o,failure=s3://results/f"},
        /*auth=*/true);
  char tmpl[] = "/tmp/asd_boto_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string script = R"PY(
import json, sys, time, boto3, botocore
url, access, secret, tile = sys.argv[1:5]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=access, aws_secret_access_key=secret)
s3 = boto3.client("s3", **kw)
sm = boto3.client("sagemaker-runtime", **kw)
s3.put_object(Bucket="inputs", Key="boto/tile.png", Body=open(tile, "rb").read())
res = {}
r = sm.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/boto/tile.png",
                             InferenceId="boto-1", RequestTTLSeconds=120, InvocationTimeoutSeconds=30)
res["status"] = r["ResponseMetadata"]["HTTPStatusCode"]
res["id"] = r["InferenceId"]
res["out"] = r["OutputLocation"]
res["fail"] = r.get("FailureLocation", "")
b, k = r["OutputLocation"][5:].split("/", 1)
for _ in range(300):
    try:
        res["features"] = len(json.loads(s3.get_object(Bucket=b, Key=k)["Body"].read())["features"])
        break
    except botocore.exceptions.ClientError:
        time.sleep(0.1)
r = sm.invoke_endpoint_async(EndpointName="bad", InputLocation="s3://inputs/boto/tile.png")
b, k = r["FailureLocation"][5:].split("/", 1)
for _ in range(300):
    try:
        res["failure_body"] = s3.get_object(Bucket=b, Key=k)["Body"].read().decode()
        break
    except botocore.exceptions.ClientError:
        time.sleep(0.1)
r = sm.invoke_endpoint(EndpointName="ep", Body=open(tile, "rb").read(), ContentType="image/png")
res["sync_features"] = len(json.loads(r["Body"].read())["features"])
try:
    sm.invoke_endpoint(EndpointName="bad", Body=b"x", ContentType="image/png")
except botocore.exceptions.ClientError as e:
    res["sync_error"] = e.response["Error"]["Code"]
try:
    sm.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/boto/tile.png", RequestTTLSeconds=30)
except botocore.exceptions.ClientError as e:
    res["ttl_error"] = e.response["Error"]["Code"]
except botocore.exceptions.ParamValidationError:
    res["ttl_error"] = "client-side"
print(json.dumps(res))
)PY";
  ASSERT_EQ(static_cast<ssize_t>(script.size()), write(fd, script.data(), script.size()));
  close(fd);
  char tile[] = "/tmp/asd_boto_tile_XXXXXX";
  fd = mkstemp(tile);
  ASSERT_EQ(static_cast<ssize_t>(png.size()), write(fd, png.data(), png.size()));
  close(fd);
  std::string out = run("env -u AWS_PROFILE -u AWS_SESSION_TOKEN python3 " + std::string(tmpl) + " " + ep->url() + " " +
                            asd_test::kLocalAccessKey + " " + asd_test::kLocalSecretKey + " " + tile + " 2>&1",
                        &rc);
  unlink(tmpl);
  unlink(tile);
  ASSERT_EQ(0, rc) << out;
  json_object *j = json_tokener_parse(out.c_str());
  ASSERT_NE(j, nullptr) << out;
  auto get = [&](const char *k) {
    json_object *v = nullptr;
    return json_object_object_get_ex(j, k, &v) ? std::string(json_object_get_string(v)) : std::string();
  };
  EXPECT_EQ("202", get("status"));
  EXPECT_EQ("boto-1", get("id"));
  EXPECT_EQ(0u, get("out").rfind("s3://results/o/", 0));
  EXPECT_EQ(0u, get("fail").rfind("s3://results/f/", 0));
  EXPECT_EQ("3", get("features"));
  EXPECT_NE(std::string::npos, get("failure_body").find("always fails"));
  EXPECT_EQ("3", get("sync_features"));
  EXPECT_EQ("ModelError", get("sync_error"));
  EXPECT_TRUE(get("ttl_error") == "ValidationError" || get("ttl_error") == "client-side") << out;
  json_object_put(j);
}

}  // namespace
