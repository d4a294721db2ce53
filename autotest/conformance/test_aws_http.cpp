// Network tests of plugin/aws against a loopback fake of S3, SageMaker
// Runtime, STS, ECS and IMDS (autotest/support/asd_mini_http.h).  The fake
// verifies every SigV4 signature it receives with asd_sigv4_verify, so a
// request the client mis-signs fails here exactly as it would on AWS.
// Faults (503, SlowDown, throttling, resets, truncated and oversized bodies,
// a server that never answers, clock skew) are injected per test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cpl_conv.h>
#include <cpl_error.h>

#include "asd_aws_env.h"
#include "asd_mini_http.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"
#include "asyncdetect/asd_sigv4.h"
#include "common/asd_crc.h"

using asd_test::MiniHttp;
using asd_test::MiniRequest;
using asd_test::MiniResponse;

namespace {

std::string pct_decode(const std::string &s) {
  std::string o;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      o += (char)strtol(s.substr(i + 1, 2).c_str(), nullptr, 16);
      i += 2;
    } else {
      o += s[i];
    }
  }
  return o;
}

std::string query_param(const std::string &q, const std::string &name) {
  size_t pos = 0;
  while (pos <= q.size()) {
    size_t amp = q.find('&', pos);
    std::string part = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) return eq == std::string::npos ? "" : pct_decode(part.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "\x01";  // absent
}

std::string form_param(const std::string &body, const std::string &name) {
  std::string v = query_param(body, name);
  return v == "\x01" ? "" : v;
}

std::string iso_in(double seconds) {
  time_t t = time(nullptr) + (time_t)seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[32];
  strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string xml_unescape(std::string s) {
  const char *ents[][2] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (auto &e : ents) {
    size_t p;
    while ((p = s.find(e[0])) != std::string::npos) s.replace(p, strlen(e[0]), e[1]);
  }
  return s;
}

// A fake AWS: S3 (path style), SageMaker Runtime, STS, with SigV4 checks.
class FakeAws {
 public:
  std::mutex mu;
  std::map<std::string, std::string> keys = {{"AKIDTEST", "secret-test"}};
  std::map<std::string, std::string> tokens;  // access key -> required session token
  std::map<std::string, std::string> objects;  // "bucket/key" -> body
  std::map<std::string, std::string> content_types;
  std::vector<std::string> delete_batches_md5_ok;
  std::vector<asd_sigv4_verify_result> verified;
  std::atomic<int> sts_calls{0};
  double sts_expiry_seconds = 3600;
  double server_clock_offset = 0;
  std::string last_sts_body;
  std::function<bool(const MiniRequest &, MiniResponse *)> fault;  // return true to override

  static int lookup(void *user, const char *ak, const char *token, char *out, size_t size) {
    auto *self = static_cast<FakeAws *>(user);
    auto it = self->keys.find(ak);
    if (it == self->keys.end()) return -1;
    auto t = self->tokens.find(ak);
    if (t != self->tokens.end() && (!token || t->second != token)) return -2;
    snprintf(out, size, "%s", it->second.c_str());
    return 0;
  }

  MiniResponse handle(const MiniRequest &r) {
    MiniResponse resp;
    if (fault && fault(r, &resp)) return resp;
    std::lock_guard<std::mutex> g(mu);
    std::string rid = "RID-" + std::to_string(verified.size());
    resp = route(r);
    resp.headers.push_back({"x-amz-request-id", rid});
    return resp;
  }

  MiniResponse route(const MiniRequest &r) {
    MiniResponse resp;
    bool unsigned_sts = r.method == "POST" && r.path == "/" &&
                        r.body.find("Action=AssumeRoleWithWebIdentity") != std::string::npos;
    if (!unsigned_sts) {
      std::vector<asd_sigv4_header> hs;
      for (auto &h : r.headers) hs.push_back({h.first.c_str(), 0, h.second.c_str(), 0});
      char bh[65];
      asd_sha256_hex(r.body.data(), r.body.size(), bh);
      asd_sigv4_verify_request vr;
      memset(&vr, 0, sizeof(vr));
      vr.method = r.method.c_str();
      vr.path = r.path.c_str();
      vr.query = r.query.c_str();
      vr.headers = hs.data();
      vr.n_headers = hs.size();
      vr.body_sha256_hex = bh;
      vr.now = (double)time(nullptr) + server_clock_offset;
      vr.lookup = lookup;
      vr.lookup_user = this;
      asd_sigv4_verify_result res;
      asd_sigv4_status st = asd_sigv4_verify(&vr, &res);
      verified.push_back(res);
      if (st != ASD_SIGV4_OK) {
        int hs_code = 403;
        const char *code = asd_sigv4_status_code(st, &hs_code);
        resp.status = hs_code;
        if (st == ASD_SIGV4_TIME_SKEWED) {
          time_t now = time(nullptr) + (time_t)server_clock_offset;
          char d[64];
          struct tm tm;
          gmtime_r(&now, &tm);
          strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S GMT", &tm);
          resp.headers.push_back({"Date", d});
        }
        resp.body = r.method == "HEAD" ? "" : asd_test::s3_error_xml(code, res.message);
        return resp;
      }
    }
    if (r.path == "/" && r.method == "POST") return sts(r);
    if (r.path.rfind("/endpoints/", 0) == 0) return sagemaker(r);
    return s3(r);
  }

  MiniResponse sts(const MiniRequest &r) {
    MiniResponse resp;
    sts_calls++;
    last_sts_body = r.body;
    std::string action = form_param(r.body, "Action");
    std::string ak = "ASIASTS" + std::to_string(sts_calls.load());
    std::string sk = "sts-secret-" + std::to_string(sts_calls.load());
    std::string tok = "sts-token-" + std::to_string(sts_calls.load());
    keys[ak] = sk;
    tokens[ak] = tok;
    resp.body = "<" + action + "Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><" + action +
                "Result><Credentials><AccessKeyId>" + ak + "</AccessKeyId><SecretAccessKey>" + sk +
                "</SecretAccessKey><SessionToken>" + tok + "</SessionToken><Expiration>" +
                iso_in(sts_expiry_seconds) + "</Expiration></Credentials></" + action + "Result></" + action +
                "Response>";
    return resp;
  }

  MiniResponse sagemaker(const MiniRequest &r) {
    MiniResponse resp;
    resp.headers.push_back({"x-amzn-RequestId", "SM-RID-1"});
    auto ends_with = [](const std::string &a, const std::string &b) {
      return a.size() >= b.size() && a.compare(a.size() - b.size(), b.size(), b) == 0;
    };
    std::string path = r.path;
    if (ends_with(path, "/async-invocations")) {
      if (r.header("X-Amzn-SageMaker-InputLocation").empty()) {
        resp.status = 400;
        resp.headers.push_back({"x-amzn-ErrorType", "ValidationError:http://internal.amazon.com/coral/"});
        resp.body = "{\"message\":\"InputLocation is required\"}";
        return resp;
      }
      resp.status = 202;
      std::string id = r.has_header("X-Amzn-SageMaker-Inference-Id") ? r.header("X-Amzn-SageMaker-Inference-Id")
                                                                      : "generated-id";
      resp.headers.push_back({"X-Amzn-SageMaker-OutputLocation", "s3://out-bucket/results/abc.out"});
      resp.headers.push_back({"X-Amzn-SageMaker-FailureLocation", "s3://fail-bucket/errors/abc-error.out"});
      resp.body = "{\"InferenceId\":\"" + id + "\"}";
      return resp;
    }
    if (ends_with(path, "/invocations")) {
      if (r.body == "fail") {
        resp.status = 424;
        resp.headers.push_back({"x-amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/"});
        resp.body = "{\"message\":\"model crashed\",\"OriginalStatusCode\":500}";
        return resp;
      }
      resp.headers.push_back({"Content-Type", "application/json"});
      resp.body = "{\"echo\":" + std::to_string(r.body.size()) + "}";
      return resp;
    }
    resp.status = 404;
    return resp;
  }

  MiniResponse s3(const MiniRequest &r) {
    MiniResponse resp;
    std::string path = pct_decode(r.path);
    size_t slash = path.find('/', 1);
    std::string bucket = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    std::string key = slash == std::string::npos ? "" : path.substr(slash + 1);
    std::string full = bucket + "/" + key;
    if (bucket == "missing-bucket") {
      resp.status = 404;
      if (r.method != "HEAD") resp.body = asd_test::s3_error_xml("NoSuchBucket", "The bucket does not exist");
      return resp;
    }
    if (key.empty()) {
      if (r.method == "HEAD") return resp;
      if (r.method == "POST" && query_param(r.query, "delete") != "\x01") return delete_objects(r, bucket);
      if (r.method == "GET" && query_param(r.query, "list-type") == "2") return list(r, bucket);
      resp.status = 400;
      return resp;
    }
    if (r.method == "PUT") {
      objects[full] = r.body;
      content_types[full] = r.header("Content-Type");
      resp.headers.push_back({"ETag", "\"etag-" + std::to_string(r.body.size()) + "\""});
      return resp;
    }
    auto it = objects.find(full);
    if (r.method == "DELETE") {
      objects.erase(full);
      resp.status = 204;
      return resp;
    }
    if (it == objects.end()) {
      resp.status = 404;
      if (r.method != "HEAD") resp.body = asd_test::s3_error_xml("NoSuchKey", "The specified key does not exist.");
      return resp;
    }
    resp.headers.push_back({"Content-Type", content_types[full]});
    resp.headers.push_back({"ETag", "\"etag-" + std::to_string(it->second.size()) + "\""});
    if (r.method == "HEAD") {
      resp.headers.push_back({"X-Test-Length", std::to_string(it->second.size())});
      return resp;
    }
    resp.body = it->second;
    return resp;
  }

  MiniResponse delete_objects(const MiniRequest &r, const std::string &bucket) {
    MiniResponse resp;
    // S3 wants Content-MD5 or an x-amz-checksum-* header; the client sends a CRC-32C.
    char md5[25], crc[9];
    asd_md5_base64(r.body.data(), r.body.size(), md5);
    asd_crc_base64(asd_crc32c(0, r.body.data(), r.body.size()), crc);
    if (r.header("Content-MD5") != md5 && r.header("x-amz-checksum-crc32c") != crc) {
      resp.status = 400;
      resp.body = asd_test::s3_error_xml("BadDigest", "Content-MD5 / x-amz-checksum-crc32c mismatch");
      return resp;
    }
    delete_batches_md5_ok.push_back(r.header("x-amz-checksum-crc32c"));
    std::string out = "<?xml version=\"1.0\"?><DeleteResult>";
    int n = 0;
    for (size_t at = r.body.find("<Key>"); at != std::string::npos; at = r.body.find("<Key>", at + 5)) {
      size_t end = r.body.find("</Key>", at);
      if (end == std::string::npos) break;
      std::string k = xml_unescape(r.body.substr(at + 5, end - at - 5));
      n++;
      if (k.rfind("locked", 0) == 0) {
        std::string ek;
        for (char ch : k) ek += ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : std::string(1, ch);
        out += "<Error><Key>" + ek + "</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
      } else {
        objects.erase(bucket + "/" + k);
      }
    }
    if (n > 1000) {
      resp.status = 400;
      resp.body = asd_test::s3_error_xml("MalformedXML", "more than 1000 keys");
      return resp;
    }
    out += "</DeleteResult>";
    resp.body = out;
    return resp;
  }

  MiniResponse list(const MiniRequest &r, const std::string &bucket) {
    MiniResponse resp;
    std::string prefix = query_param(r.query, "prefix");
    if (prefix == "\x01") prefix = "";
    int max_keys = atoi(query_param(r.query, "max-keys").c_str());
    if (max_keys <= 0) max_keys = 1000;
    std::string token = query_param(r.query, "continuation-token");
    std::vector<std::pair<std::string, std::string>> matching;
    for (auto &o : objects)
      if (o.first.rfind(bucket + "/" + prefix, 0) == 0) matching.push_back({o.first.substr(bucket.size() + 1), o.second});
    size_t start = token == "\x01" ? 0 : (size_t)atoi(token.substr(4).c_str());
    std::string out = "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    size_t i = start;
    for (; i < matching.size() && i < start + (size_t)max_keys; i++) {
      char *esc = nullptr;
      (void)esc;
      std::string k = matching[i].first;
      std::string ek;
      for (char c : k) ek += c == '&' ? "&amp;" : c == '<' ? "&lt;" : std::string(1, c);
      out += "<Contents><Key>" + ek + "</Key><Size>" + std::to_string(matching[i].second.size()) +
             "</Size><ETag>&quot;e&quot;</ETag></Contents>";
    }
    bool trunc = i < matching.size();
    out += std::string("<IsTruncated>") + (trunc ? "true" : "false") + "</IsTruncated>";
    if (trunc) out += "<NextContinuationToken>tok-" + std::to_string(i) + "</NextContinuationToken>";
    out += "</ListBucketResult>";
    resp.body = out;
    return resp;
  }
};

class AwsHttp : public ::testing::Test {
 protected:
  asd_test::AwsEnvSandbox env;
  FakeAws fake;
  MiniHttp server{[this](const MiniRequest &r) { return fake.handle(r); }};
  asd_aws_context *ctx = nullptr;

  void TearDown() override { asd_aws_context_free(ctx); }

  asd_aws_config base_config() {
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.region = "us-east-1";
    c.endpoint_url = url_.c_str();
    c.access_key_id = "AKIDTEST";
    c.secret_access_key = "secret-test";
    c.retry_base_delay = 0.01;
    c.request_timeout = 20;
    return c;
  }
  void make(const asd_aws_config &c) {
    asd_aws_context_free(ctx);
    asd_aws_error err;
    ctx = asd_aws_context_new(&c, &err);
    ASSERT_NE(nullptr, ctx) << err.message;
  }
  void make_default() { make(base_config()); }
  std::string url_ = server.url();
};

}  // namespace

TEST_F(AwsHttp, S3RoundTripWithAwkwardKeys) {
  make_default();
  const char *keys[] = {"plain.txt", "dir/with space/a+b~c.tif", "utf8/\xC3\xA9t\xC3\xA9.png", "pct%41/x=y&z", "a'b(c)!*"};
  for (const char *k : keys) {
    SCOPED_TRACE(k);
    asd_aws_error err;
    std::string body = std::string("payload of ") + k;
    asd_s3_object_info info;
    ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", k, body.data(), body.size(), "image/tiff", &info, &err)) << err.message;
    EXPECT_EQ("\"etag-" + std::to_string(body.size()) + "\"", std::string(info.etag));
    EXPECT_STREQ(("RID-" + std::to_string(fake.verified.size() - 1)).c_str(), info.request_id);
    EXPECT_EQ(1u, fake.objects.count(std::string("bkt/") + k));
    asd_buf out;
    asd_buf_init(&out);
    ASSERT_EQ(0, asd_s3_get_object(ctx, "bkt", k, 0, &out, &info, &err)) << err.message;
    EXPECT_EQ(body, std::string((const char *)out.data, out.len));
    EXPECT_STREQ("image/tiff", info.content_type);
    asd_buf_free(&out);
    ASSERT_EQ(0, asd_s3_head_object(ctx, "bkt", k, &info, &err)) << err.message;
    ASSERT_EQ(0, asd_s3_delete_object(ctx, "bkt", k, &err)) << err.message;
    EXPECT_EQ(-1, asd_s3_head_object(ctx, "bkt", k, &info, &err));
    EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
    EXPECT_EQ(404, err.http_status);
    EXPECT_EQ(1, err.attempts);  // 404 is never retried
  }
  // Every request carried a valid signature for service s3.
  for (auto &v : fake.verified) {
    EXPECT_EQ(ASD_SIGV4_OK, v.status) << v.message;
    EXPECT_STREQ("s3", v.service);
  }
  asd_buf out;
  asd_buf_init(&out);
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_get_object(ctx, "bkt", "nope", 0, &out, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
  EXPECT_STREQ("NoSuchKey", err.code);
  EXPECT_NE(nullptr, strstr(err.message, "s3://bkt/nope"));
  asd_buf_free(&out);
  EXPECT_EQ(0, asd_s3_head_bucket(ctx, "bkt", &err)) << err.message;
  EXPECT_EQ(-1, asd_s3_head_bucket(ctx, "missing-bucket", &err));
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
}

TEST_F(AwsHttp, DeleteObjectsBatchesOf1000WithChecksumAndPerKeyErrors) {
  make_default();
  std::vector<std::string> ks;
  for (int i = 0; i < 2500; i++) ks.push_back((i % 500 == 7 ? "locked/" : "k/") + std::to_string(i) + " &<x>");
  std::vector<const char *> kp;
  for (auto &k : ks) {
    kp.push_back(k.c_str());
    fake.objects["bkt/" + k] = "x";
  }
  asd_s3_delete_result res;
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_delete_objects(ctx, "bkt", kp.data(), kp.size(), &res, &err)) << err.message;
  EXPECT_EQ(3u, fake.delete_batches_md5_ok.size());
  EXPECT_EQ(5u, res.n_errors);
  EXPECT_EQ(2495u, res.deleted);
  for (size_t i = 0; i < res.n_errors; i++) {
    EXPECT_EQ(0, strncmp(res.errors[i].key, "locked/", 7)) << res.errors[i].key;
    EXPECT_STREQ("AccessDenied", res.errors[i].code);
  }
  EXPECT_EQ(5u, fake.objects.size());  // only the locked ones remain
  asd_s3_delete_result_free(&res);
}

TEST_F(AwsHttp, ListObjectsV2FollowsContinuationTokens) {
  make_default();
  for (int i = 0; i < 25; i++) fake.objects["bkt/p/" + std::to_string(100 + i) + (i == 3 ? " & <odd>" : "")] = "xx";
  fake.objects["bkt/other/1"] = "x";
  asd_s3_list_result res;
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "bkt", "p/", nullptr, 10, 0, &res, &err)) << err.message;
  EXPECT_EQ(25u, res.n_entries);
  EXPECT_EQ(3, res.pages);
  bool odd = false;
  for (size_t i = 0; i < res.n_entries; i++) {
    EXPECT_EQ(0, strncmp(res.entries[i].key, "p/", 2));
    EXPECT_EQ(2, res.entries[i].size);
    if (strstr(res.entries[i].key, " & <odd>")) odd = true;
  }
  EXPECT_TRUE(odd);
  asd_s3_list_result_free(&res);
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "bkt", "p/", nullptr, 10, 12, &res, &err));
  EXPECT_EQ(12u, res.n_entries);
  asd_s3_list_result_free(&res);
}

TEST_F(AwsHttp, InvokeEndpointAsyncSendsEveryHeader) {
  make_default();
  asd_sm_invoke_async_params p;
  memset(&p, 0, sizeof(p));
  p.endpoint_name = "my-endpoint-1";
  p.input_location = "s3://in-bucket/async-inference/input/tile 1.png";
  p.content_type = "image/png";
  p.accept = "application/json";
  p.custom_attributes = "model_selection=blobs";
  p.inference_id = "tile-0001";
  p.request_ttl_seconds = 3600;
  p.invocation_timeout_seconds = 600;
  asd_sm_invoke_async_result out;
  asd_aws_error err;
  ASSERT_EQ(0, asd_sm_invoke_async(ctx, &p, &out, &err)) << err.message;
  EXPECT_STREQ("tile-0001", out.inference_id);
  EXPECT_STREQ("s3://out-bucket/results/abc.out", out.output_location);
  EXPECT_STREQ("s3://fail-bucket/errors/abc-error.out", out.failure_location);
  EXPECT_STREQ("SM-RID-1", out.request_id);
  asd_sm_invoke_async_result_free(&out);
  auto reqs = server.requests();
  ASSERT_EQ(1u, reqs.size());
  const MiniRequest &r = reqs[0];
  EXPECT_EQ("POST", r.method);
  EXPECT_EQ("/endpoints/my-endpoint-1/async-invocations", r.path);
  EXPECT_EQ(p.input_location, r.header("X-Amzn-SageMaker-InputLocation"));
  EXPECT_EQ("image/png", r.header("X-Amzn-SageMaker-Content-Type"));
  EXPECT_EQ("application/json", r.header("X-Amzn-SageMaker-Accept"));
  EXPECT_EQ("model_selection=blobs", r.header("X-Amzn-SageMaker-Custom-Attributes"));
  EXPECT_EQ("tile-0001", r.header("X-Amzn-SageMaker-Inference-Id"));
  EXPECT_EQ("3600", r.header("X-Amzn-SageMaker-RequestTTLSeconds"));
  EXPECT_EQ("600", r.header("X-Amzn-SageMaker-InvocationTimeoutSeconds"));
  ASSERT_EQ(1u, fake.verified.size());
  EXPECT_STREQ("sagemaker", fake.verified[0].service);  // signing name, not "runtime"

  // Validation happens before anything is sent.
  p.request_ttl_seconds = 30;
  EXPECT_EQ(-1, asd_sm_invoke_async(ctx, &p, &out, &err));
  EXPECT_EQ(ASD_AWS_ERR_VALIDATION, err.kind);
  EXPECT_NE(nullptr, strstr(err.message, "RequestTTLSeconds"));
  p.request_ttl_seconds = 0;
  p.endpoint_name = "bad_name!";
  EXPECT_EQ(-1, asd_sm_invoke_async(ctx, &p, &out, &err));
  EXPECT_EQ(ASD_AWS_ERR_VALIDATION, err.kind);
  p.endpoint_name = "ok";
  p.custom_attributes = "evil\r\nX-Injected: 1";
  EXPECT_EQ(-1, asd_sm_invoke_async(ctx, &p, &out, &err));
  EXPECT_EQ(1u, server.request_count());
}

TEST_F(AwsHttp, InvokeEndpointSyncAndModelError) {
  make_default();
  asd_sm_invoke_params p;
  memset(&p, 0, sizeof(p));
  p.endpoint_name = "ep";
  p.body = "hello";
  p.body_len = 5;
  p.content_type = "application/octet-stream";
  asd_sm_invoke_result out;
  asd_sm_invoke_result_init(&out);
  asd_aws_error err;
  ASSERT_EQ(0, asd_sm_invoke(ctx, &p, &out, &err)) << err.message;
  EXPECT_EQ("{\"echo\":5}", std::string((const char *)out.body.data, out.body.len));
  EXPECT_STREQ("application/json", out.content_type);
  asd_sm_invoke_result_free(&out);
  p.body = "fail";
  p.body_len = 4;
  asd_sm_invoke_result_init(&out);
  EXPECT_EQ(-1, asd_sm_invoke(ctx, &p, &out, &err));
  EXPECT_EQ(ASD_AWS_ERR_MODEL, err.kind);
  EXPECT_STREQ("ModelError", err.code);
  EXPECT_NE(nullptr, strstr(err.message, "model crashed"));
  EXPECT_EQ(1, err.attempts);
  asd_sm_invoke_result_free(&out);
}

TEST_F(AwsHttp, RetriesTransientFailuresThenSucceeds) {
  std::atomic<int> n{0};
  // 503, SlowDown, connection reset, 400 ThrottlingException, then fine.
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    int i = n++;
    if (i == 0) {
      r->status = 503;
      return true;
    }
    if (i == 1) {
      r->status = 503;
      r->body = asd_test::s3_error_xml("SlowDown", "Please reduce your request rate.");
      return true;
    }
    if (i == 2) {
      r->action = MiniResponse::kClose;
      return true;
    }
    if (i == 3) {
      r->status = 400;
      r->headers.push_back({"x-amzn-ErrorType", "ThrottlingException"});
      r->body = "{\"message\":\"Rate exceeded\"}";
      return true;
    }
    return false;
  };
  asd_aws_config c = base_config();
  c.max_attempts = 5;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(5, n.load());
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  // libcurl itself silently resends once when a reused keep-alive connection
  // dies, so the reset may cost no retry of ours.
  EXPECT_GE(st.retries, 3u);
}

TEST_F(AwsHttp, ConnectionResetsAreRetriedThenReported) {
  std::atomic<int> n{0};
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    n++;
    r->action = MiniResponse::kClose;
    return true;
  };
  make_default();
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_NETWORK, err.kind);
  EXPECT_EQ(3, err.attempts);
  EXPECT_GE(n.load(), 3);
  EXPECT_EQ(0, err.http_status);
}

TEST_F(AwsHttp, NothingListeningIsANetworkError) {
  asd_aws_config c = base_config();
  c.endpoint_url = "http://127.0.0.1:1";
  c.max_attempts = 2;
  make(c);
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_head_bucket(ctx, "bkt", &err));
  EXPECT_EQ(ASD_AWS_ERR_NETWORK, err.kind);
  EXPECT_EQ(2, err.attempts);
  EXPECT_NE(nullptr, strstr(err.message, "127.0.0.1:1")) << err.message;
}

TEST_F(AwsHttp, GivesUpAfterMaxAttemptsAndNeverRetries403) {
  std::atomic<int> n{0};
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    n++;
    r->status = 500;
    r->body = asd_test::s3_error_xml("InternalError", "We encountered an internal error.");
    return true;
  };
  make_default();
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(3, n.load());
  EXPECT_EQ(3, err.attempts);
  EXPECT_EQ(ASD_AWS_ERR_SERVER, err.kind);
  EXPECT_STREQ("InternalError", err.code);
  EXPECT_STREQ("REQ123", err.request_id);
  EXPECT_TRUE(asd_aws_error_is_transient(&err));

  n = 0;
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    n++;
    r->status = 403;
    r->body = asd_test::s3_error_xml("AccessDenied", "Access Denied");
    return true;
  };
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(1, n.load());
  EXPECT_EQ(ASD_AWS_ERR_ACCESS_DENIED, err.kind);
  EXPECT_FALSE(asd_aws_error_is_transient(&err));
  char line[1024];
  asd_aws_error_format(&err, line, sizeof(line));
  EXPECT_NE(nullptr, strstr(line, "access_denied"));
  EXPECT_NE(nullptr, strstr(line, "AccessDenied"));
}

TEST_F(AwsHttp, WrongSecretIsAnAuthErrorNotRetried) {
  asd_aws_config c = base_config();
  c.secret_access_key = "wrong";
  make(c);
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, err.kind);
  EXPECT_STREQ("SignatureDoesNotMatch", err.code);
  EXPECT_EQ(1u, server.request_count());
  // The secret never shows in the message.
  EXPECT_EQ(nullptr, strstr(err.message, "wrong"));
}

TEST_F(AwsHttp, OversizedAndTruncatedBodies) {
  make_default();
  fake.objects["bkt/big"] = std::string(2 << 20, 'x');
  asd_buf out;
  asd_buf_init(&out);
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_get_object(ctx, "bkt", "big", 1 << 20, &out, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_TOO_LARGE, err.kind);
  EXPECT_EQ(1, err.attempts);
  EXPECT_EQ(0u, out.len);
  ASSERT_EQ(0, asd_s3_get_object(ctx, "bkt", "big", 3 << 20, &out, nullptr, &err)) << err.message;
  EXPECT_EQ((size_t)(2 << 20), out.len);
  asd_buf_free(&out);

  std::atomic<int> n{0};
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    n++;
    r->action = MiniResponse::kTruncate;
    r->body = "only part";
    r->declared_length = 1000;
    return true;
  };
  asd_buf_init(&out);
  EXPECT_EQ(-1, asd_s3_get_object(ctx, "bkt", "big", 0, &out, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_NETWORK, err.kind);
  EXPECT_EQ(3, n.load());  // truncation is a transient network failure
  asd_buf_free(&out);
}

TEST_F(AwsHttp, ServerThatNeverAnswersTimesOut) {
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    r->action = MiniResponse::kHang;
    return true;
  };
  asd_aws_config c = base_config();
  c.request_timeout = 1;
  c.max_attempts = 2;
  make(c);
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_head_object(ctx, "bkt", "k", nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_TIMEOUT, err.kind);
  EXPECT_EQ(2, err.attempts);
}

TEST_F(AwsHttp, CancelInterruptsRequests) {
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    r->action = MiniResponse::kHang;
    return true;
  };
  asd_aws_config c = base_config();
  c.request_timeout = 60;
  make(c);
  std::thread t([&] {
    asd_sleep(0.3);
    asd_aws_context_cancel(ctx);
  });
  asd_aws_error err;
  EXPECT_EQ(-1, asd_s3_head_object(ctx, "bkt", "k", nullptr, &err));
  t.join();
  EXPECT_EQ(ASD_AWS_ERR_CANCELLED, err.kind);
  EXPECT_EQ(-1, asd_s3_head_object(ctx, "bkt", "k", nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_CANCELLED, err.kind);
}

TEST_F(AwsHttp, CorrectsClockSkew) {
  fake.server_clock_offset = 3600;  // server is an hour ahead
  make_default();
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(2u, server.request_count());
  EXPECT_NEAR(3600, asd_aws_context_clock_offset(ctx), 5);
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k2", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(3u, server.request_count());  // no second skew round trip
}

TEST_F(AwsHttp, ConcurrentRequestsShareConnections) {
  make_default();
  std::vector<std::thread> th;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; t++)
    th.emplace_back([&, t] {
      for (int i = 0; i < 30; i++) {
        asd_aws_error err;
        std::string k = "t" + std::to_string(t) + "/" + std::to_string(i);
        if (asd_s3_put_object(ctx, "bkt", k.c_str(), "abc", 3, nullptr, nullptr, &err) != 0) failures++;
        if (asd_s3_head_object(ctx, "bkt", k.c_str(), nullptr, &err) != 0) failures++;
      }
    });
  for (auto &t : th) t.join();
  EXPECT_EQ(0, failures.load());
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  EXPECT_EQ(360u, st.requests);
  EXPECT_LT(st.connections, 60u);  // keep-alive reuse, not one connection per request
  EXPECT_LE(st.handles, 12u);
}

// ------------------------------------------------------------- credentials

TEST_F(AwsHttp, ExplicitAssumeRoleOnTopOfBaseCredentials) {
  asd_aws_config c = base_config();
  c.role_arn = "arn:aws:iam::123456789012:role/detector";
  c.external_id = "ext-42";
  c.role_session_name = "my-session";
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(1, fake.sts_calls.load());
  EXPECT_EQ("AssumeRole", form_param(fake.last_sts_body, "Action"));
  EXPECT_EQ("arn:aws:iam::123456789012:role/detector", form_param(fake.last_sts_body, "RoleArn"));
  EXPECT_EQ("ext-42", form_param(fake.last_sts_body, "ExternalId"));
  EXPECT_EQ("my-session", form_param(fake.last_sts_body, "RoleSessionName"));
  ASSERT_EQ(2u, fake.verified.size());
  EXPECT_STREQ("AKIDTEST", fake.verified[0].access_key_id);  // STS signed with the base
  EXPECT_STREQ("sts", fake.verified[0].service);
  EXPECT_STREQ("ASIASTS1", fake.verified[1].access_key_id);  // S3 with the role (+ token checked)
  asd_aws_credentials cr;
  ASSERT_EQ(0, asd_aws_context_get_credentials(ctx, &cr, &err));
  EXPECT_EQ(0, strncmp(cr.source, "assume-role", 11));
  EXPECT_GT(cr.expiration, 0);
  asd_aws_credentials_free(&cr);
}

TEST_F(AwsHttp, TemporaryCredentialsAreRefreshedBeforeExpiry) {
  fake.sts_expiry_seconds = 200;  // inside the 300 s margin: every use refreshes
  asd_aws_config c = base_config();
  c.role_arn = "arn:aws:iam::123456789012:role/detector";
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "a", "x", 1, nullptr, nullptr, &err)) << err.message;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "b", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(2, fake.sts_calls.load());
  EXPECT_STREQ("ASIASTS2", fake.verified.back().access_key_id);

  fake.sts_expiry_seconds = 3600;  // now long-lived: cached
  asd_aws_context_invalidate_credentials(ctx);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "c", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(3, fake.sts_calls.load());
}

TEST_F(AwsHttp, ExpiredTokenReplyTriggersRefresh) {
  asd_aws_config c = base_config();
  c.role_arn = "arn:aws:iam::123456789012:role/detector";
  make(c);
  std::atomic<int> n{0};
  fake.fault = [&](const MiniRequest &r, MiniResponse *resp) {
    if (r.path == "/bkt/k" && n++ == 0) {
      resp->status = 400;
      resp->body = asd_test::s3_error_xml("ExpiredToken", "The provided token has expired.");
      return true;
    }
    return false;
  };
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(2, fake.sts_calls.load());
}

TEST_F(AwsHttp, WebIdentityFromEnvironment) {
  std::string tf = env.write("token.jwt", "eyJ.web.identity\n");
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tf.c_str(), 1);
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web", 1);
  setenv("AWS_ROLE_SESSION_NAME", "pod-1", 1);
  asd_aws_config c = base_config();
  c.access_key_id = nullptr;
  c.secret_access_key = nullptr;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  auto reqs = server.requests();
  ASSERT_EQ(2u, reqs.size());
  EXPECT_FALSE(reqs[0].has_header("Authorization"));  // AssumeRoleWithWebIdentity is unsigned
  EXPECT_EQ("AssumeRoleWithWebIdentity", form_param(reqs[0].body, "Action"));
  EXPECT_EQ("eyJ.web.identity", form_param(reqs[0].body, "WebIdentityToken"));
  EXPECT_EQ("pod-1", form_param(reqs[0].body, "RoleSessionName"));
  EXPECT_STREQ("ASIASTS1", fake.verified.back().access_key_id);
}

TEST_F(AwsHttp, ProfileRoleWithSourceProfileChain) {
  std::string cfg = env.write("config",
                              "[profile base]\n"
                              "region = eu-west-1\n"
                              "[profile middle]\n"
                              "role_arn = arn:aws:iam::111111111111:role/middle\n"
                              "source_profile = base\n"
                              "[profile top]\n"
                              "role_arn = arn:aws:iam::222222222222:role/top\n"
                              "source_profile = middle\n"
                              "external_id = top-ext\n"
                              "role_session_name = top-session\n");
  std::string cred = env.write("credentials", "[base]\naws_access_key_id = AKIDTEST\naws_secret_access_key = secret-test\n");
  setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", cred.c_str(), 1);
  setenv("AWS_PROFILE", "top", 1);
  asd_aws_config c = base_config();
  c.access_key_id = nullptr;
  c.secret_access_key = nullptr;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(2, fake.sts_calls.load());
  ASSERT_EQ(3u, fake.verified.size());
  EXPECT_STREQ("AKIDTEST", fake.verified[0].access_key_id);  // base -> middle
  EXPECT_STREQ("ASIASTS1", fake.verified[1].access_key_id);  // middle -> top
  EXPECT_STREQ("ASIASTS2", fake.verified[2].access_key_id);  // top -> S3
  EXPECT_EQ("top-ext", form_param(fake.last_sts_body, "ExternalId"));
  EXPECT_EQ("arn:aws:iam::222222222222:role/top", form_param(fake.last_sts_body, "RoleArn"));
}

TEST_F(AwsHttp, EcsContainerCredentials) {
  MiniHttp ecs([](const MiniRequest &r) {
    MiniResponse resp;
    if (r.path != "/creds" || r.header("Authorization") != "ecs-auth-token") {
      resp.status = 401;
      return resp;
    }
    resp.body = "{\"AccessKeyId\":\"AKIDTEST\",\"SecretAccessKey\":\"secret-test\",\"Token\":\"ecs-tok\",\"Expiration\":\"" +
                iso_in(3600) + "\"}";
    return resp;
  });
  fake.tokens["AKIDTEST"] = "ecs-tok";
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", (ecs.url() + "/creds").c_str(), 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token", 1);
  asd_aws_config c = base_config();
  c.access_key_id = nullptr;
  c.secret_access_key = nullptr;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(1u, ecs.request_count());

  // A non-loopback plain-http full URI is refused.
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
  asd_aws_context_invalidate_credentials(ctx);
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
  EXPECT_NE(nullptr, strstr(err.message, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
}

TEST_F(AwsHttp, Ec2InstanceMetadataV2) {
  MiniHttp imds([](const MiniRequest &r) {
    MiniResponse resp;
    if (r.method == "PUT" && r.path == "/latest/api/token") {
      if (r.header("x-aws-ec2-metadata-token-ttl-seconds").empty()) resp.status = 400;
      resp.body = "imds-session-token";
      return resp;
    }
    if (r.header("x-aws-ec2-metadata-token") != "imds-session-token") {
      resp.status = 401;
      return resp;
    }
    if (r.path == "/latest/meta-data/iam/security-credentials/") {
      resp.body = "my-role\n";
      return resp;
    }
    if (r.path == "/latest/meta-data/iam/security-credentials/my-role") {
      resp.body = "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIDTEST\",\"SecretAccessKey\":\"secret-test\","
                  "\"Token\":\"imds-tok\",\"Expiration\":\"" + iso_in(7200) + "\"}";
      return resp;
    }
    resp.status = 404;
    return resp;
  });
  fake.tokens["AKIDTEST"] = "imds-tok";
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url().c_str(), 1);
  asd_aws_config c = base_config();
  c.access_key_id = nullptr;
  c.secret_access_key = nullptr;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(3u, imds.request_count());
  asd_aws_credentials cr;
  ASSERT_EQ(0, asd_aws_context_get_credentials(ctx, &cr, &err));
  EXPECT_STREQ("imds", cr.source);
  asd_aws_credentials_free(&cr);
}

TEST_F(AwsHttp, CredentialProcess) {
  std::string script = env.write("creds.sh",
                                 "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDTEST\", "
                                 "\"SecretAccessKey\": \"secret-test\"}'\n",
                                 true);
  std::string cfg = env.write("config", "[default]\ncredential_process = " + script + "\n");
  setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
  asd_aws_config c = base_config();
  c.access_key_id = nullptr;
  c.secret_access_key = nullptr;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;

  std::string bad = env.write("bad.sh", "#!/bin/sh\necho oops >&2\nexit 3\n", true);
  env.write("config", "[default]\ncredential_process = " + bad + "\n");
  asd_aws_context_invalidate_credentials(ctx);
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
  EXPECT_NE(nullptr, strstr(err.message, "exit status 3")) << err.message;
}

TEST_F(AwsHttp, UnsignedPayloadWhenConfigured) {
  asd_aws_config c = base_config();
  c.payload_signing = 0;
  make(c);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "hello", 5, nullptr, nullptr, &err)) << err.message;
  auto reqs = server.requests();
  ASSERT_EQ(1u, reqs.size());
  EXPECT_EQ("UNSIGNED-PAYLOAD", reqs[0].header("x-amz-content-sha256"));
  // An unsigned body is covered by a CRC-32C instead, and by nothing else.
  char crc[9];
  asd_crc_base64(asd_crc32c(0, "hello", 5), crc);
  EXPECT_EQ(crc, reqs[0].header("x-amz-checksum-crc32c"));
  EXPECT_EQ("", reqs[0].header("Content-MD5"));
  EXPECT_EQ("hello", fake.objects["bkt/k"]);
  // Default over plain http: the body hash is signed.
  asd_aws_context_free(ctx);
  ctx = nullptr;
  make_default();
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "hello", 5, nullptr, nullptr, &err)) << err.message;
  char h[65];
  asd_sha256_hex("hello", 5, h);
  EXPECT_EQ(h, server.requests().back().header("x-amz-content-sha256"));
  EXPECT_EQ("", server.requests().back().header("x-amz-checksum-crc32c")) << "the signature covers the body";
}

TEST_F(AwsHttp, ProxySettingsAreHonoured) {
  // The fake answers as a forward proxy would: the request line carries the
  // absolute URL of the (unreachable) endpoint.
  asd_aws_config c = base_config();
  c.endpoint_url = "http://s3.unreachable.invalid:9";
  c.max_attempts = 1;
  c.connect_timeout = 2;
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    r->status = 200;
    return true;
  };
  CPLSetConfigOption("GDAL_HTTP_PROXY", server.url().c_str());
  make(c);
  CPLSetConfigOption("GDAL_HTTP_PROXY", nullptr);
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  ASSERT_EQ(1u, server.request_count());
  EXPECT_NE(std::string::npos, server.requests()[0].path.find("s3.unreachable.invalid:9/bkt/k"))
      << server.requests()[0].path;
  asd_aws_context_free(ctx);
  ctx = nullptr;

  // The standard environment variables (libcurl reads them), and NO_PROXY.
  setenv("http_proxy", server.url().c_str(), 1);
  make(c);
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  EXPECT_EQ(2u, server.request_count());
  asd_aws_context_free(ctx);
  ctx = nullptr;
  setenv("no_proxy", "unreachable.invalid", 1);
  make(c);
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_NETWORK, err.kind);
  EXPECT_EQ(2u, server.request_count());
  unsetenv("http_proxy");
  unsetenv("no_proxy");
}

namespace {
std::mutex g_log_mu;
std::string g_log;
void collect_log(CPLErr, CPLErrorNum, const char *msg) {
  std::lock_guard<std::mutex> g(g_log_mu);
  g_log += msg;
  g_log += "\n";
}
}  // namespace

TEST_F(AwsHttp, DebugLogNeverShowsSecretsTokensOrSignatures) {
  fake.tokens["AKIDTEST"] = "token-SECRETTOKEN";
  asd_aws_config c = base_config();
  c.session_token = "token-SECRETTOKEN";
  CPLSetConfigOption("CPL_DEBUG", "ON");
  CPLPushErrorHandler(collect_log);
  make(c);
  asd_aws_error err;
  std::atomic<int> n{0};
  fake.fault = [&](const MiniRequest &, MiniResponse *r) {
    if (n++ == 0) {
      r->status = 503;
      return true;
    }
    return false;
  };
  ASSERT_EQ(0, asd_s3_put_object(ctx, "bkt", "k", "x", 1, nullptr, nullptr, &err)) << err.message;
  CPLPopErrorHandler();
  CPLSetConfigOption("CPL_DEBUG", nullptr);
  std::string log;
  {
    std::lock_guard<std::mutex> g(g_log_mu);
    log = g_log;
  }
  EXPECT_NE(std::string::npos, log.find("PUT")) << log;  // the log is there...
  EXPECT_NE(std::string::npos, log.find("retrying")) << log;
  EXPECT_EQ(std::string::npos, log.find("secret-test")) << log;  // ...without secrets
  EXPECT_EQ(std::string::npos, log.find("SECRETTOKEN")) << log;
  EXPECT_EQ(std::string::npos, log.find("Signature=")) << log;
  auto reqs = server.requests();
  std::string auth = reqs.back().header("Authorization");
  std::string sig = auth.substr(auth.find("Signature=") + 10);
  EXPECT_EQ(64u, sig.size());
  EXPECT_EQ(std::string::npos, log.find(sig)) << log;
}
