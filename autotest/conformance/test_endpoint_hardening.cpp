// Regression tests of the local endpoint's hardening (issue 13, part 1): one
// or more per finding of the security review, each failing on the endpoint
// as it was before the fix.
//
//   - bodies are read only after the headers authenticated the request, and
//     within the route's cap (answers come before any body byte is sent);
//   - unsigned x-amz-* headers are refused as S3 refuses them;
//   - Range offsets are 64-bit (a sparse object above 10^9 bytes);
//   - a presigned URL's signed X-Amz-Content-Sha256 is held against the body;
//   - -stats-auth, the non-loopback -bind guard, the secret from a file or
//     the environment (and not in ps), 0700/0600 on the data directory.
//
// Requests are raw (a socket, exact bytes) so that a test can send headers
// and withhold the body, or add a header no SDK would; they are signed with
// the project's own SigV4 signer, whose canonicalisation the AWS test suite
// and the AWS CLI / boto3 / GDAL conformance tests pin down.  Each wait is
// bounded: a server that waits for a body it should not read makes the
// exchange time out and the test fail, it does not hang the suite.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cpl_conv.h>
#include <cpl_vsi.h>

#include "asd_local_endpoint.h"
#include "asd_raw_http.h"
#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sigv4.h"
#include "auth.h"
#include "server.h"

using asd_test::LocalEndpoint;

namespace {

const char *const kAccess = asd_test::kLocalAccessKey;
const char *const kSecret = asd_test::kLocalSecretKey;
const char *const kEmptySha = ASD_SIGV4_EMPTY_SHA256;

// Generous bound on one exchange: the answers tested here come at once; only
// a server that (wrongly) waits for a withheld body reaches it.
constexpr double kGuardSeconds = 30.0;

// ------------------------------------------------------------- raw HTTP

using Raw = asd_test::RawReply;

Raw exchange(int port, const std::string &request, bool head_request = false) {
  return asd_test::raw_exchange(port, request, head_request, kGuardSeconds);
}

std::string host_of(const LocalEndpoint &ep) { return "127.0.0.1:" + std::to_string(ep.port()); }

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string request_text(const std::string &method, const std::string &target, const LocalEndpoint &ep,
                         const Headers &headers) {
  std::string s = method + " " + target + " HTTP/1.1\r\nHost: " + host_of(ep) + "\r\n";
  for (auto &h : headers) s += h.first + ": " + h.second + "\r\n";
  return s + "Connection: close\r\n\r\n";
}

// ------------------------------------------------------------ signing

std::string amz_date_now(double offset_s = 0) {
  char d[17];
  asd_sigv4_format_amz_date(asd_time_wall() + offset_s, d);
  return d;
}

std::string sha256_hex(const std::string &s) {
  char h[65];
  asd_sha256_hex(s.data(), s.size(), h);
  return h;
}

struct SignOpts {
  std::string service = "s3";
  std::string access = kAccess;
  std::string secret = kSecret;
  double clock_offset = 0;
};

// Adds Host, x-amz-date (and for S3 x-amz-content-sha256) and an
// Authorization header signing every header in `signed_headers`; the
// headers in `unsigned_headers` are added after signing.
Headers sign(const LocalEndpoint &ep, const std::string &method, const std::string &path, const std::string &query,
             Headers signed_headers, const std::string &payload_hash, const SignOpts &o = {},
             const Headers &unsigned_headers = {}) {
  std::string date = amz_date_now(o.clock_offset);
  std::string host = host_of(ep);
  signed_headers.push_back({"x-amz-date", date});
  if (o.service == "s3") signed_headers.push_back({"x-amz-content-sha256", payload_hash});
  std::vector<asd_sigv4_header> hv;
  hv.push_back({"host", 0, host.c_str(), 0});
  for (auto &h : signed_headers) hv.push_back({h.first.c_str(), 0, h.second.c_str(), 0});
  asd_sigv4_params p{};
  p.method = method.c_str();
  p.path = path.c_str();
  p.query = query.c_str();
  p.headers = hv.data();
  p.n_headers = hv.size();
  p.payload_hash = payload_hash.c_str();
  p.region = "us-east-1";
  p.service = o.service.c_str();
  p.amz_date = date.c_str();
  p.access_key_id = o.access.c_str();
  p.secret_access_key = o.secret.c_str();
  asd_sigv4_signature sig;
  asd_sigv4_signature_init(&sig);
  EXPECT_EQ(0, asd_sigv4_sign(&p, &sig));
  Headers out = signed_headers;
  out.push_back({"Authorization", std::string(reinterpret_cast<const char *>(sig.authorization.data),
                                              sig.authorization.len)});
  asd_sigv4_signature_free(&sig);
  for (auto &h : unsigned_headers) out.push_back(h);
  return out;
}

std::string pct(const std::string &s) {
  asd_buf b;
  asd_buf_init(&b);
  asd_sigv4_uri_encode(&b, s.data(), s.size(), 0);
  std::string out(reinterpret_cast<const char *>(b.data), b.len);
  asd_buf_free(&b);
  return out;
}

// A SigV4 presigned URL target (path + query) signing only host, as
// `aws s3 presign` and boto3's generate_presigned_url make them.  extra is
// appended to the signed query (e.g. "X-Amz-Content-Sha256=<hex>").
std::string presign(const LocalEndpoint &ep, const std::string &method, const std::string &path,
                    const std::string &extra = "", const SignOpts &o = {}, bool forge = false) {
  std::string date = amz_date_now(o.clock_offset);
  std::string q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
                  pct(o.access + "/" + date.substr(0, 8) + "/us-east-1/" + o.service + "/aws4_request") +
                  "&X-Amz-Date=" + date + "&X-Amz-Expires=300&X-Amz-SignedHeaders=host";
  std::string hash = ASD_SIGV4_UNSIGNED_PAYLOAD;
  if (!extra.empty()) {
    q += "&" + extra;
    auto p = extra.find("X-Amz-Content-Sha256=");
    if (p != std::string::npos) hash = extra.substr(p + 21, 64);
  }
  std::string host = host_of(ep);
  asd_sigv4_header h = {"host", 0, host.c_str(), 0};
  asd_sigv4_params p{};
  p.method = method.c_str();
  p.path = path.c_str();
  p.query = q.c_str();
  p.headers = &h;
  p.n_headers = 1;
  p.payload_hash = hash.c_str();
  p.region = "us-east-1";
  p.service = o.service.c_str();
  p.amz_date = date.c_str();
  p.access_key_id = o.access.c_str();
  p.secret_access_key = o.secret.c_str();
  asd_sigv4_signature sig;
  asd_sigv4_signature_init(&sig);
  EXPECT_EQ(0, asd_sigv4_sign(&p, &sig));
  std::string s = sig.signature;
  asd_sigv4_signature_free(&sig);
  if (forge) s[0] = s[0] == '0' ? '1' : '0';
  return path + "?" + q + "&X-Amz-Signature=" + s;
}

// Signed S3 request with its whole body.
Raw s3(const LocalEndpoint &ep, const std::string &method, const std::string &path, const std::string &body = "",
       const std::string &query = "", Headers extra_signed = {}, const Headers &extra_unsigned = {}) {
  Headers h = sign(ep, method, path, query, extra_signed, sha256_hex(body), {}, extra_unsigned);
  h.push_back({"Content-Length", std::to_string(body.size())});
  return exchange(ep.port(), request_text(method, query.empty() ? path : path + "?" + query, ep, h) + body,
                  method == "HEAD");
}

void expect_s3_error(const Raw &r, int status, const std::string &code) {
  EXPECT_EQ(status, r.status) << r.head << "\n" << r.body;
  EXPECT_NE(r.body.find("<Code>" + code + "</Code>"), std::string::npos) << r.body;
}

std::string big_length() { return std::to_string(48LL * 1024 * 1024); }

// The server still serves a signed PUT and GET after whatever came before.
void expect_alive(const LocalEndpoint &ep, const std::string &bucket) {
  EXPECT_EQ(200, s3(ep, "PUT", "/" + bucket + "/alive", "pong").status);
  Raw g = s3(ep, "GET", "/" + bucket + "/alive");
  EXPECT_EQ(200, g.status);
  EXPECT_EQ("pong", g.body);
}

}  // namespace

// ------------------------------------------- authentication before the body

// Finding: an unsigned 48 MiB PUT was read whole before its 403.  The
// headers alone now decide: the answer comes while the body is withheld.
TEST(EndpointHardening, UnsignedPutIsRefusedBeforeItsBodyIsRead) {
  LocalEndpoint ep({"-bucket", "hard-body"});
  Raw r = exchange(ep.port(), request_text("PUT", "/hard-body/big", ep, {{"Content-Length", big_length()}}));
  expect_s3_error(r, 403, "AccessDenied");
  // A forged presigned URL (no x-amz-content-sha256 header, the case that
  // deferred the check to the end of the body) is refused the same way.
  Raw f = exchange(ep.port(), request_text("PUT", presign(ep, "PUT", "/hard-body/big", "", {}, true), ep,
                                           {{"Content-Length", big_length()}}));
  expect_s3_error(f, 403, "SignatureDoesNotMatch");
  // A wrong key, a skewed clock: also decided from the headers.
  SignOpts wrong_key;
  wrong_key.access = "NOSUCHKEY";
  Headers h = sign(ep, "PUT", "/hard-body/big", "", {}, ASD_SIGV4_UNSIGNED_PAYLOAD, wrong_key);
  h.push_back({"Content-Length", big_length()});
  expect_s3_error(exchange(ep.port(), request_text("PUT", "/hard-body/big", ep, h)), 403, "InvalidAccessKeyId");
  SignOpts skewed;
  skewed.clock_offset = -3600;
  h = sign(ep, "PUT", "/hard-body/big", "", {}, ASD_SIGV4_UNSIGNED_PAYLOAD, skewed);
  h.push_back({"Content-Length", big_length()});
  expect_s3_error(exchange(ep.port(), request_text("PUT", "/hard-body/big", ep, h)), 403, "RequestTimeTooSkewed");
  EXPECT_EQ(404, s3(ep, "HEAD", "/hard-body/big").status);
  expect_alive(ep, "hard-body");
}

// Finding: unsigned 48 MiB POSTs to /_asd/stats and to async-invocations
// were read whole (64 MiB of RAM each).  Those routes take no body at all.
TEST(EndpointHardening, StatsAndAsyncInvocationsReadNoBody) {
  LocalEndpoint ep({"-endpoint", "ep1,model=centerpoint,output=s3://out/o,failure=s3://out/f"});
  Raw st = exchange(ep.port(), request_text("POST", "/_asd/stats", ep, {{"Content-Length", big_length()}}));
  EXPECT_EQ(413, st.status) << st.head << st.body;
  Raw a = exchange(ep.port(), request_text("POST", "/endpoints/ep1/async-invocations", ep,
                                           {{"Content-Length", big_length()},
                                            {"X-Amzn-SageMaker-InputLocation", "s3://out/in.png"}}));
  EXPECT_EQ(403, a.status) << a.head << a.body;
  // Signed, but with a body: refused for its size, still without reading it.
  Headers h = sign(ep, "POST", "/endpoints/ep1/async-invocations", "",
                   {{"X-Amzn-SageMaker-InputLocation", "s3://out/in.png"}}, sha256_hex("x"), [] {
                     SignOpts o;
                     o.service = "sagemaker";
                     return o;
                   }());
  h.push_back({"Content-Length", big_length()});
  Raw s = exchange(ep.port(), request_text("POST", "/endpoints/ep1/async-invocations", ep, h));
  EXPECT_EQ(413, s.status) << s.head << s.body;
  // A chunked body of unknown length on a route that takes none: refused too.
  Raw c = exchange(ep.port(), request_text("POST", "/_asd/stats", ep, {{"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(413, c.status) << c.head << c.body;
  EXPECT_FALSE(ep.stats_json().empty());
}

namespace {
SignOpts sagemaker() {
  SignOpts o;
  o.service = "sagemaker";
  return o;
}
}  // namespace

// InvokeEndpoint signs the body's hash, so its signature needs the body:
// every other check comes first, from the headers, and the body is capped
// at SageMaker's 6 MiB.
TEST(EndpointHardening, SyncInvokeIsCheckedBeforeItsBodyAndCapped) {
  LocalEndpoint ep({"-endpoint", "ep1,model=centerpoint,output=s3://out/o,failure=s3://out/f"});
  const std::string path = "/endpoints/ep1/invocations";
  std::string mb = std::to_string(1024 * 1024);
  Raw u = exchange(ep.port(), request_text("POST", path, ep, {{"Content-Length", mb}}));
  EXPECT_EQ(403, u.status) << u.head << u.body;
  SignOpts wrong = sagemaker();
  wrong.access = "NOSUCHKEY";
  Headers h = sign(ep, "POST", path, "", {}, sha256_hex("whatever"), wrong);
  h.push_back({"Content-Length", mb});
  Raw k = exchange(ep.port(), request_text("POST", path, ep, h));
  EXPECT_EQ(403, k.status) << k.head << k.body;
  EXPECT_EQ("InvalidAccessKeyId", k.header("x-amzn-ErrorType")) << k.head;
  SignOpts skewed = sagemaker();
  skewed.clock_offset = 3600;
  h = sign(ep, "POST", path, "", {}, sha256_hex("whatever"), skewed);
  h.push_back({"Content-Length", mb});
  Raw s = exchange(ep.port(), request_text("POST", path, ep, h));
  EXPECT_EQ(403, s.status) << s.head << s.body;
  EXPECT_EQ("RequestTimeTooSkewed", s.header("x-amzn-ErrorType")) << s.head;
  // Well signed but over 6 MiB: refused for its size before it is read.
  h = sign(ep, "POST", path, "", {}, sha256_hex("whatever"), sagemaker());
  h.push_back({"Content-Length", std::to_string(6 * 1024 * 1024 + 1)});
  Raw big = exchange(ep.port(), request_text("POST", path, ep, h));
  EXPECT_EQ(413, big.status) << big.head << big.body;
  // A signed body whose bytes differ from what was signed: the deferred check.
  h = sign(ep, "POST", path, "", {{"Content-Type", "application/octet-stream"}}, sha256_hex("signed"),
           sagemaker());
  h.push_back({"Content-Length", "8"});
  Raw forged = exchange(ep.port(), request_text("POST", path, ep, h) + "tampered");
  EXPECT_EQ(403, forged.status) << forged.head << forged.body;
  EXPECT_EQ("SignatureDoesNotMatch", forged.header("x-amzn-ErrorType")) << forged.head;
}

// STS bodies are small forms: capped at 64 KiB, unsigned ones not read.
TEST(EndpointHardening, StsBodiesAreCappedAndAuthenticatedFirst) {
  LocalEndpoint ep;
  Headers form = {{"Content-Type", "application/x-www-form-urlencoded"}};
  Headers u = form;
  u.push_back({"Content-Length", big_length()});
  Raw r = exchange(ep.port(), request_text("POST", "/", ep, u));
  EXPECT_EQ(403, r.status) << r.head << r.body;
  SignOpts sts;
  sts.service = "sts";
  Headers h = sign(ep, "POST", "/", "", form, sha256_hex("Action=AssumeRole"), sts);
  h.push_back({"Content-Length", std::to_string(64 * 1024 + 1)});
  Raw big = exchange(ep.port(), request_text("POST", "/", ep, h));
  EXPECT_EQ(413, big.status) << big.head << big.body;
}

// Finding: XML bodies up to 64 MiB were parsed before any limit (16 MiB of
// <a/> took 405 MB).  S3 bodies held in memory are capped at 2 MiB, checked
// before the body is read or parsed.
TEST(EndpointHardening, XmlBodiesAreCappedBeforeParsing) {
  LocalEndpoint ep({"-bucket", "xml-body"});
  std::string len = std::to_string(3 * 1024 * 1024);
  Headers h = sign(ep, "POST", "/xml-body", "delete=", {{"Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA=="}},
                   ASD_SIGV4_UNSIGNED_PAYLOAD);
  h.push_back({"Content-Length", len});
  expect_s3_error(exchange(ep.port(), request_text("POST", "/xml-body?delete=", ep, h)), 400, "MaxMessageLengthExceeded");
  // The same over a chunked body (no length announced): stopped at the cap.
  LocalEndpoint open({"-no-auth", "-bucket", "xml-body"});
  std::string chunk(1024 * 1024, ' ');
  std::string body;
  std::string hex = [&] {
    char b[16];
    snprintf(b, sizeof b, "%zx", chunk.size());
    return std::string(b);
  }();
  for (int i = 0; i < 3; i++) body += hex + "\r\n" + chunk + "\r\n";
  body += "0\r\n\r\n";
  Raw c = exchange(open.port(),
                   request_text("POST", "/xml-body?delete=", open, {{"Transfer-Encoding", "chunked"}}) + body);
  expect_s3_error(c, 400, "MaxMessageLengthExceeded");
  // A normal DeleteObjects still works.
  std::string del = "<Delete><Object><Key>k</Key></Object></Delete>";
  char b64[25];
  asd_md5_base64(del.data(), del.size(), b64);
  Raw ok = s3(ep, "POST", "/xml-body", del, "delete=", {{"Content-MD5", b64}});
  EXPECT_EQ(200, ok.status) << ok.body;
  EXPECT_NE(ok.body.find("<Deleted><Key>k</Key></Deleted>"), std::string::npos) << ok.body;
}

// ------------------------------------------------- unsigned x-amz-* headers

// Finding: a presigned PutObject URL plus an added x-amz-copy-source header
// performed a CopyObject of another bucket's object.  S3 refuses it:
// 403 AccessDenied, HeadersNotSigned.
TEST(EndpointHardening, UnsignedAmzHeadersAreRefused) {
  LocalEndpoint ep({"-bucket", "pub", "-bucket", "private"});
  ASSERT_EQ(200, s3(ep, "PUT", "/private/secret", "the secret").status);
  std::string url = presign(ep, "PUT", "/pub/upload");
  Raw r = exchange(ep.port(), request_text("PUT", url, ep,
                                           {{"x-amz-copy-source", "private/secret"}, {"Content-Length", "0"}}));
  expect_s3_error(r, 403, "AccessDenied");
  EXPECT_NE(r.body.find("There were headers present in the request which were not signed"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>"), std::string::npos) << r.body;
  EXPECT_EQ(404, s3(ep, "HEAD", "/pub/upload").status);  // no copy was made

  // The same rule for header-signed requests (metadata smuggled in).
  Raw m = s3(ep, "PUT", "/pub/meta", "body", "", {}, {{"x-amz-meta-owner", "mallory"}});
  expect_s3_error(m, 403, "AccessDenied");
  EXPECT_NE(m.body.find("<HeadersNotSigned>x-amz-meta-owner</HeadersNotSigned>"), std::string::npos) << m.body;
  EXPECT_EQ(404, s3(ep, "HEAD", "/pub/meta").status);
  // Signed, the same headers are fine.
  EXPECT_EQ(200, s3(ep, "PUT", "/pub/meta", "body", "", {{"x-amz-meta-owner", "alice"}}).status);

  // The presigned URL itself works, with a body; and an unsigned Range on a
  // presigned GET is allowed, as on S3 (GDAL's /vsicurl/ sends it so).
  std::string body = "uploaded through a presigned URL";
  Raw put = exchange(ep.port(), request_text("PUT", url, ep, {{"Content-Length", std::to_string(body.size())}}) +
                                    body);
  EXPECT_EQ(200, put.status) << put.body;
  Raw get = exchange(ep.port(), request_text("GET", presign(ep, "GET", "/pub/upload"), ep, {{"Range", "bytes=0-7"}}));
  EXPECT_EQ(206, get.status) << get.body;
  EXPECT_EQ("uploaded", get.body);
}

// --------------------------------------------------------- 64-bit ranges

namespace {

// Turns the stored object `file` (the store's format: an 8 KiB text header,
// then the bytes) into a sparse object of `size` bytes with `marker` at
// `offset`: a few disk blocks, whatever the size.
void make_sparse_object(const std::string &file, uint64_t size, uint64_t offset, const std::string &marker) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << file;
  std::string hdr(8192, '\0');
  f.read(&hdr[0], 8192);
  size_t a = hdr.find("\nsize="), b = hdr.find('\n', a + 1);
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos);
  std::string text = hdr.substr(0, hdr.find('\0'));
  text = text.substr(0, a) + "\nsize=" + std::to_string(size) + text.substr(b);
  ASSERT_LT(text.size(), 8192u);
  std::string nh = text + std::string(8192 - text.size(), '\0');
  f.seekp(0);
  f.write(nh.data(), 8192);
  f.seekp(static_cast<std::streamoff>(8192 + offset));
  f.write(marker.data(), static_cast<std::streamsize>(marker.size()));
  f.close();
  ASSERT_EQ(0, truncate(file.c_str(), static_cast<off_t>(8192 + size)));
}

std::string only_object_file(const std::string &bucket_dir) {
  std::string found;
  for (auto &e : std::filesystem::directory_iterator(bucket_dir))
    if (e.path().extension() == ".obj") found = e.path().string();
  return found;
}

}  // namespace

// Finding: on a 1.1 GB object, Range: bytes=1050000000-1050000003 answered
// 206 with 1 byte from offset 10^9 (offsets saturated at 10^9).
TEST(EndpointHardening, RangesAboveOneGigabyteAreExact) {
  char templ[] = "/tmp/asd-hard-range-XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  std::string dir = templ;
  const uint64_t size = 1100000000ULL, at = 1050000000ULL;
  {
    LocalEndpoint ep({"-no-auth", "-data-dir", dir, "-bucket", "big"});
    ASSERT_EQ(200, asd_test::http_request("PUT", ep.url() + "/big/sparse", "x").status);
    ASSERT_EQ(0, WEXITSTATUS(ep.stop()));
  }
  make_sparse_object(only_object_file(dir + "/big"), size, at, "ABCD");
  {
    LocalEndpoint ep({"-no-auth", "-data-dir", dir});
    asd_test::HttpResult r =
        asd_test::http_request("GET", ep.url() + "/big/sparse", "", {"Range: bytes=1050000000-1050000003"});
    EXPECT_EQ(206, r.status) << r.body;
    EXPECT_EQ("ABCD", r.body);
    EXPECT_EQ("bytes 1050000000-1050000003/1100000000", r.header("content-range"));
    // Open-ended, and a suffix range reaching back past 10^9.
    r = asd_test::http_request("GET", ep.url() + "/big/sparse", "", {"Range: bytes=1099999999-"});
    EXPECT_EQ(206, r.status);
    EXPECT_EQ("bytes 1099999999-1099999999/1100000000", r.header("content-range"));
    r = asd_test::http_request("HEAD", ep.url() + "/big/sparse");
    EXPECT_EQ("1100000000", r.header("content-length"));
    // GDAL's /vsis3/ reads at that offset get the right bytes.
    std::string hostport = ep.url().substr(7);
    CPLSetThreadLocalConfigOption("AWS_S3_ENDPOINT", hostport.c_str());
    CPLSetThreadLocalConfigOption("AWS_HTTPS", "NO");
    CPLSetThreadLocalConfigOption("AWS_VIRTUAL_HOSTING", "FALSE");
    CPLSetThreadLocalConfigOption("AWS_NO_SIGN_REQUEST", "YES");
    CPLSetThreadLocalConfigOption("AWS_CONFIG_FILE", "/dev/null");
    CPLSetThreadLocalConfigOption("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    CPLSetThreadLocalConfigOption("GDAL_HTTP_MAX_RETRY", "0");
    CPLSetThreadLocalConfigOption("CPL_VSIL_CURL_CHUNK_SIZE", "16384");
    VSICurlClearCache();
    VSILFILE *f = VSIFOpenL("/vsis3/big/sparse", "rb");
    ASSERT_NE(f, nullptr);
    char buf[5] = {0};
    ASSERT_EQ(0, VSIFSeekL(f, at, SEEK_SET));
    EXPECT_EQ(4u, VSIFReadL(buf, 1, 4, f));
    VSIFCloseL(f);
    EXPECT_EQ("ABCD", std::string(buf));
    VSICurlClearCache();
    for (const char *k : {"AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "AWS_NO_SIGN_REQUEST",
                          "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "GDAL_HTTP_MAX_RETRY",
                          "CPL_VSIL_CURL_CHUNK_SIZE"})
      CPLSetThreadLocalConfigOption(k, nullptr);
  }
  std::filesystem::remove_all(dir);
}

// The parser behind Range, x-amz-copy-source-range and Content-Length:
// 64-bit, digits only, overflow refused rather than saturated or wrapped.
TEST(EndpointHardening, ByteCountsParseAsUnsigned64Bit) {
  uint64_t v = 0;
  EXPECT_EQ(0, ep_parse_u64("1050000000", &v));
  EXPECT_EQ(1050000000ULL, v);
  EXPECT_EQ(0, ep_parse_u64("18446744073709551615", &v));
  EXPECT_EQ(UINT64_MAX, v);
  for (const char *bad : {"18446744073709551616", "99999999999999999999999", "", "-1", "+5", " 5", "5 ", "1e9",
                          "0x10"})
    EXPECT_EQ(-1, ep_parse_u64(bad, &v)) << bad;
}

// ------------------------------------------------ presigned content hashes

// Finding: a presigned URL with a signed X-Amz-Content-Sha256 accepted any
// body.  The body is now held to the hash that was signed.
TEST(EndpointHardening, PresignedContentHashIsChecked) {
  LocalEndpoint ep({"-bucket", "presign-hash"});
  std::string url = presign(ep, "PUT", "/presign-hash/obj", "X-Amz-Content-Sha256=" + sha256_hex("approved"));
  Raw bad = exchange(ep.port(), request_text("PUT", url, ep, {{"Content-Length", "8"}}) + "tampered");
  expect_s3_error(bad, 400, "XAmzContentSHA256Mismatch");
  EXPECT_EQ(404, s3(ep, "HEAD", "/presign-hash/obj").status);
  Raw good = exchange(ep.port(), request_text("PUT", url, ep, {{"Content-Length", "8"}}) + "approved");
  EXPECT_EQ(200, good.status) << good.body;
  EXPECT_EQ("approved", s3(ep, "GET", "/presign-hash/obj").body);
}

// --------------------------------------------------------- token compares

// Session tokens are compared like signatures, in constant time; the
// behaviour is what a black-box test can check (timing is not asserted).
TEST(EndpointHardening, SessionTokensCompareExactly) {
  EXPECT_TRUE(ep_secret_equal("token-1", "token-1"));
  EXPECT_FALSE(ep_secret_equal("token-1", "token-2"));
  EXPECT_FALSE(ep_secret_equal("token-1", "token-10"));
  EXPECT_FALSE(ep_secret_equal("token-10", "token-1"));
  EXPECT_FALSE(ep_secret_equal("", "x"));
  EXPECT_TRUE(ep_secret_equal("", ""));
  EXPECT_FALSE(ep_secret_equal(nullptr, "x"));
  LocalEndpoint ep({"-bucket", "token-bucket", "-session-token", "the-session-token"});
  Raw no = s3(ep, "GET", "/token-bucket", "", "list-type=2", {{"x-amz-security-token", "the-session-tokeN"}});
  EXPECT_EQ(400, no.status) << no.body;
  EXPECT_NE(no.body.find("InvalidToken"), std::string::npos) << no.body;
  Raw yes = s3(ep, "GET", "/token-bucket", "", "list-type=2", {{"x-amz-security-token", "the-session-token"}});
  EXPECT_EQ(200, yes.status) << yes.body;
}

// ------------------------------------------------------------ -stats-auth

TEST(EndpointHardening, StatsAuthPutsStatsBehindASignature) {
  LocalEndpoint ep({"-stats-auth"});
  Raw u = exchange(ep.port(), request_text("GET", "/_asd/stats", ep, {}));
  EXPECT_EQ(403, u.status) << u.head << u.body;
  EXPECT_EQ(u.body.find("\"requests\""), std::string::npos) << u.body;
  Headers h = sign(ep, "GET", "/_asd/stats", "", {}, kEmptySha);
  Raw s = exchange(ep.port(), request_text("GET", "/_asd/stats", ep, h));
  EXPECT_EQ(200, s.status) << s.head << s.body;
  EXPECT_NE(s.body.find("\"requests\""), std::string::npos) << s.body;
  // The health check stays open (load balancers do not sign).
  EXPECT_EQ(200, exchange(ep.port(), request_text("GET", "/_asd/health", ep, {})).status);
}

// ------------------------------------------------- exposure and secrets

namespace {

// Runs the endpoint with args (it must exit on its own); returns its exit
// status and fills its stderr.
int run_endpoint(const std::string &args, std::string *err) {
  std::string cmd = "timeout 60 " + asd_test::endpoint_bin() + " " + args + " 2>&1 >/dev/null";
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  size_t n;
  err->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) err->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

// Finding: a non-loopback -bind with the published default keys, or with
// -no-auth, gave no warning.  It is refused unless -insecure-bind says it is
// meant.  192.0.2.1 (TEST-NET-1) is not an address of this machine, so no
// test here ever listens beyond loopback: the refusal comes before the bind,
// and the allowed cases end in "cannot listen".
TEST(EndpointHardening, NonLoopbackBindWithDefaultKeysIsRefused) {
  std::string err;
  EXPECT_EQ(1, run_endpoint("-bind 192.0.2.1", &err)) << err;
  EXPECT_NE(err.find("refusing -bind 192.0.2.1 with the published default secret key"), std::string::npos) << err;
  EXPECT_EQ(1, run_endpoint("-bind 192.0.2.1 -no-auth", &err)) << err;
  EXPECT_NE(err.find("refusing -bind 192.0.2.1 with -no-auth"), std::string::npos) << err;
  // -insecure-bind: allowed, with a warning (then the bind itself fails here).
  EXPECT_EQ(1, run_endpoint("-bind 192.0.2.1 -no-auth -insecure-bind", &err)) << err;
  EXPECT_NE(err.find("WARNING"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot listen"), std::string::npos) << err;
  // Own keys: no complaint.
  EXPECT_EQ(1, run_endpoint("-bind 192.0.2.1 -access-key K -secret-key s3cr3t", &err)) << err;
  EXPECT_EQ(err.find("refusing"), std::string::npos) << err;
  EXPECT_EQ(err.find("WARNING"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot listen"), std::string::npos) << err;
  // Loopback with the default keys is what every other test here runs.
}

// Finding: -secret-key showed in ps.  The secret may come from a file or
// the environment; one given on the command line is wiped from the
// process's arguments.
TEST(EndpointHardening, SecretFromFileOrEnvironmentAndNotInPs) {
  const std::string secret = "file-secret-0123456789";
  char templ[] = "/tmp/asd-hard-secret-XXXXXX";
  int fd = mkstemp(templ);
  ASSERT_GE(fd, 0);
  std::string line = secret + "\n";
  ASSERT_EQ(static_cast<ssize_t>(line.size()), write(fd, line.data(), line.size()));
  close(fd);
  SignOpts own;
  own.access = "OWNKEY";
  own.secret = secret;
  auto list_status = [&](const LocalEndpoint &ep, const SignOpts &o) {
    Headers h = sign(ep, "GET", "/", "", {}, kEmptySha, o);
    return exchange(ep.port(), request_text("GET", "/", ep, h)).status;
  };
  {
    LocalEndpoint ep({"-access-key", "OWNKEY", "-secret-key-file", templ});
    EXPECT_EQ(200, list_status(ep, own));
    EXPECT_EQ(403, list_status(ep, SignOpts{}));  // the default keys no longer work
  }
  {
    setenv("ASD_ENDPOINT_SECRET_KEY", secret.c_str(), 1);
    LocalEndpoint ep({"-access-key", "OWNKEY"});
    unsetenv("ASD_ENDPOINT_SECRET_KEY");
    EXPECT_EQ(200, list_status(ep, own));
  }
  {
    LocalEndpoint ep({"-access-key", "OWNKEY", "-secret-key", secret, "-session-token", "tok-0123456789"});
    std::ifstream cmd("/proc/" + std::to_string(ep.pid()) + "/cmdline", std::ios::binary);
    std::string args((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    EXPECT_NE(args.find("-secret-key"), std::string::npos);
    EXPECT_EQ(args.find(secret), std::string::npos) << "the secret is visible in ps";
    EXPECT_EQ(args.find("tok-0123456789"), std::string::npos) << "the session token is visible in ps";
    Headers h = sign(ep, "GET", "/", "", {{"x-amz-security-token", "tok-0123456789"}}, kEmptySha, own);
    EXPECT_EQ(200, exchange(ep.port(), request_text("GET", "/", ep, h)).status);
  }
  std::string err;
  EXPECT_EQ(1, run_endpoint(std::string("-access-key K -secret-key-file ") + templ + ".missing", &err));
  EXPECT_NE(err.find("-secret-key-file"), std::string::npos) << err;
  EXPECT_EQ(1, run_endpoint(std::string("-access-key K -secret-key x -secret-key-file ") + templ, &err));
  EXPECT_NE(err.find("not both"), std::string::npos) << err;
  std::remove(templ);
}

// Finding: the data directory was world-readable (0755/0644).
TEST(EndpointHardening, DataDirectoryIsPrivate) {
  char templ[] = "/tmp/asd-hard-perm-XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  std::string dir = templ;
  ASSERT_EQ(0, chmod(templ, 0755));  // as a user's mkdir leaves it
  {
    LocalEndpoint ep({"-no-auth", "-data-dir", dir, "-bucket", "private-dir"});
    ASSERT_EQ(200, asd_test::http_request("PUT", ep.url() + "/private-dir/obj", "private bytes").status);
    asd_test::HttpResult up = asd_test::http_request("POST", ep.url() + "/private-dir/mp?uploads");
    ASSERT_EQ(200, up.status) << up.body;
    std::string id = up.body.substr(up.body.find("<UploadId>") + 10);
    id = id.substr(0, id.find('<'));
    ASSERT_EQ(200, asd_test::http_request("PUT", ep.url() + "/private-dir/mp?partNumber=1&uploadId=" + id, "part").status);
    struct stat sb;
    ASSERT_EQ(0, stat(dir.c_str(), &sb));
    EXPECT_EQ(0700, sb.st_mode & 0777) << std::oct << (sb.st_mode & 0777);
    int n = 0;
    for (auto &e : std::filesystem::recursive_directory_iterator(dir)) {
      ASSERT_EQ(0, stat(e.path().c_str(), &sb));
      EXPECT_EQ(0u, sb.st_mode & 077) << e.path() << " mode " << std::oct << (sb.st_mode & 0777);
      n++;
    }
    EXPECT_GE(n, 4);  // bucket folder, object, upload folder, part
  }
  std::filesystem::remove_all(dir);
}

// Shutdown: once told to stop, the endpoint answers every new request 503
// ServiceUnavailable (retryable for any client) while a request already in
// progress completes.  It no longer quiesces the daemon through
// libmicrohttpd, whose epoll workers race to remove the listening socket and
// abort the process; the exit status shows it ended normally.
TEST(EndpointHardening, ShutdownRefusesNewRequestsAndFinishesTheOneInProgress) {
  LocalEndpoint ep({"-bucket", "hard-stop", "-faults", "slow_consumer_ms=4000"});
  Raw slow;
  std::thread put([&] { slow = s3(ep, "PUT", "/hard-stop/slow", "in progress"); });
  // The PUT is held 4 s by the fault; the stop comes 1 s into it.  (The
  // stats page cannot show it in flight reliably: a stats request may be
  // served by the very thread the held PUT occupies.)
  usleep(1000000);
  ASSERT_EQ(0, kill(ep.pid(), SIGTERM));
  Raw refused;
  for (int i = 0; i < 300 && refused.status != 503; i++) {
    refused = exchange(ep.port(), request_text("GET", "/_asd/stats", ep, {}));
    if (refused.status != 503) usleep(10000);
  }
  put.join();
  EXPECT_EQ(503, refused.status) << refused.head << "\n" << refused.body;
  EXPECT_NE(std::string::npos, refused.body.find("ServiceUnavailable")) << refused.body;
  EXPECT_EQ(200, slow.status) << slow.head << "\n" << slow.body;
  int st = ep.stop();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "exit status " << st;
}
