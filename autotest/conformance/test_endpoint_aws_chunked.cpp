// aws-chunked uploads (x-amz-content-sha256: STREAMING-...), what current
// SDKs send for PutObject and UploadPart: the decoder (apps/endpoint/
// s3_chunked.c) against AWS's own published example, then the endpoint on
// the wire with the signed forms and every refusal S3 gives.
//
// The signed forms are what no client on this machine sends by default
// (botocore only sends the unsigned one, over HTTPS: test_endpoint_wire.cpp
// covers it with boto3 and the AWS CLI), so their requests are built here:
// the request is signed with the project's signer, and the chunk signatures
// with this file's own chain (chunk_signature), which the AWS example pins.
//
// AWS example (S3 API reference, "Signature calculations for the
// Authorization header: transferring payload in multiple chunks" and its
// trailing-header sequel): 66560 bytes of 'a' in chunks of 65536 and 1024
// bytes, key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z,
// us-east-1, s3; the seed signatures and every chunk's are the page's.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <strings.h>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "asd_local_endpoint.h"
#include "asd_raw_http.h"
#include "asyncdetect/asd_checksum.h"
#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sigv4.h"
#include "s3_chunked.h"

using asd_test::LocalEndpoint;

namespace {

const char *const kDate = "20130524T000000Z";
const char *const kScope = "20130524/us-east-1/s3/aws4_request";

std::string sha256_hex(const std::string &s) {
  char h[65];
  asd_sha256_hex(s.data(), s.size(), h);
  return h;
}

std::string hmac_hex(const unsigned char key[32], const std::string &msg) {
  unsigned char mac[32];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), key, 32, reinterpret_cast<const unsigned char *>(msg.data()), msg.size(), mac, &ml);
  char hex[65];
  asd_hex_encode(mac, 32, hex);
  return hex;
}

// The next link of a chunk-signature chain (the test's own implementation).
std::string chunk_signature(const unsigned char key[32], const std::string &date, const std::string &scope,
                            const std::string &prev, const std::string &data) {
  return hmac_hex(key, "AWS4-HMAC-SHA256-PAYLOAD\n" + date + "\n" + scope + "\n" + prev + "\n" +
                           ASD_SIGV4_EMPTY_SHA256 + "\n" + sha256_hex(data));
}

std::string trailer_signature(const unsigned char key[32], const std::string &date, const std::string &scope,
                              const std::string &prev, const std::string &trailer_lines) {
  return hmac_hex(key, "AWS4-HMAC-SHA256-TRAILER\n" + date + "\n" + scope + "\n" + prev + "\n" +
                           sha256_hex(trailer_lines));
}

std::string hex_size(size_t n) {
  char b[32];
  snprintf(b, sizeof b, "%zx", n);
  return b;
}

// An aws-chunked body in the signed form: chunks of the given sizes (the
// last may be short), their chain from seed, then the zero chunk, and with
// a trailer its lines and their signature.  *last gets the final signature.
std::string signed_body(const unsigned char key[32], const std::string &date, const std::string &scope,
                        const std::string &seed, const std::string &payload, size_t chunk,
                        const std::string &trailer_lines = "", bool with_trailer = false) {
  std::string out, prev = seed;
  for (size_t off = 0; off < payload.size(); off += chunk) {
    std::string data = payload.substr(off, chunk);
    prev = chunk_signature(key, date, scope, prev, data);
    out += hex_size(data.size()) + ";chunk-signature=" + prev + "\r\n" + data + "\r\n";
  }
  prev = chunk_signature(key, date, scope, prev, "");
  out += "0;chunk-signature=" + prev + "\r\n";
  if (with_trailer) {
    std::string crlf_lines;
    std::istringstream in(trailer_lines);
    std::string l;
    while (std::getline(in, l)) crlf_lines += l + "\r\n";
    out += crlf_lines + "x-amz-trailer-signature:" + trailer_signature(key, date, scope, prev, trailer_lines) + "\r\n";
  }
  return out + "\r\n";
}

struct DocKey {
  unsigned char key[32];
  DocKey() { asd_sigv4_derive_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3", key); }
};

ep_chunk_seed doc_seed(const DocKey &k, const char *signature) {
  ep_chunk_seed s{};
  memcpy(s.key, k.key, 32);
  snprintf(s.amz_date, sizeof s.amz_date, "%s", kDate);
  snprintf(s.scope, sizeof s.scope, "%s", kScope);
  snprintf(s.signature, sizeof s.signature, "%s", signature);
  return s;
}

int string_sink(void *ctx, const void *data, size_t len) {
  static_cast<std::string *>(ctx)->append(static_cast<const char *>(data), len);
  return 0;
}

struct Decoded {
  int rc = -1;
  std::string payload, code, message, trailer;
  std::vector<std::pair<std::string, std::string>> extra;
};

// Feeds body in pieces of `piece` bytes (any split must decode the same).
Decoded decode(ep_chunked_mode mode, const ep_chunk_seed *seed, uint64_t declared, const std::string &body,
               size_t piece) {
  Decoded d;
  ep_chunked *c = ep_chunked_new(mode, seed, declared, string_sink, &d.payload);
  if (!c) return d;
  int rc = 0;
  for (size_t off = 0; off < body.size() && rc == 0; off += piece)
    rc = ep_chunked_feed(c, body.data() + off, std::min(piece, body.size() - off));
  if (rc == 0) rc = ep_chunked_finish(c);
  d.rc = rc;
  const ep_chunked_error *e = ep_chunked_error_of(c);
  if (rc != 0) {
    d.code = e->code ? e->code : "";
    d.message = e->message;
    for (int i = 0; i < 2; i++)
      if (e->extra_name[i][0]) d.extra.push_back({e->extra_name[i], e->extra_value[i]});
  } else {
    d.trailer = ep_chunked_trailer(c);
  }
  ep_chunked_free(c);
  return d;
}

const char *const kDocSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const char *const kDocTrailerSeed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

// The example's body, with the page's own chunk signatures written out.
std::string doc_body() {
  return "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" +
         std::string(65536, 'a') + "\r\n" +
         "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
         std::string(1024, 'a') + "\r\n" +
         "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n";
}

std::string doc_trailer_body() {
  return "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n" +
         std::string(65536, 'a') + "\r\n" +
         "400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n" +
         std::string(1024, 'a') + "\r\n" +
         "0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n" +
         "x-amz-checksum-crc32c:sOO8/Q==\r\n" +
         "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n";
}

}  // namespace

// ------------------------------------------------------------- the decoder

TEST(AwsChunkedDecoder, AwsExampleSignedInAnySplit) {
  DocKey k;
  ep_chunk_seed seed = doc_seed(k, kDocSeed);
  for (size_t piece : {size_t(1), size_t(7), size_t(4096), size_t(1) << 20}) {
    Decoded d = decode(EP_CHUNKED_SIGNED, &seed, 66560, doc_body(), piece);
    ASSERT_EQ(0, d.rc) << piece << ": " << d.code << " " << d.message;
    EXPECT_EQ(std::string(66560, 'a'), d.payload) << piece;
  }
  // The test's own chain gives the page's signatures (so the server tests
  // below sign as AWS does).
  EXPECT_EQ(doc_body(), signed_body(k.key, kDate, kScope, kDocSeed, std::string(66560, 'a'), 65536));
}

TEST(AwsChunkedDecoder, AwsExampleSignedTrailer) {
  DocKey k;
  ep_chunk_seed seed = doc_seed(k, kDocTrailerSeed);
  Decoded d = decode(EP_CHUNKED_SIGNED_TRAILER, &seed, 66560, doc_trailer_body(), 1000);
  ASSERT_EQ(0, d.rc) << d.code << " " << d.message;
  EXPECT_EQ(66560u, d.payload.size());
  EXPECT_EQ("x-amz-checksum-crc32c:sOO8/Q==\n", d.trailer);
  // The trailer's value is the CRC32C of the payload, as the page says.
  char b64[9];
  asd_crc_base64(asd_crc32c(0, d.payload.data(), d.payload.size()), b64);
  EXPECT_STREQ("sOO8/Q==", b64);
  EXPECT_EQ(doc_trailer_body(), signed_body(k.key, kDate, kScope, kDocTrailerSeed, std::string(66560, 'a'), 65536,
                                            "x-amz-checksum-crc32c:sOO8/Q==\n", true));
}

TEST(AwsChunkedDecoder, RefusalsAsS3) {
  DocKey k;
  ep_chunk_seed seed = doc_seed(k, kDocSeed);
  std::string body = doc_body();
  // One data byte changed: the chunk's signature no longer verifies.
  std::string tampered = body;
  tampered[200] = 'b';
  Decoded d = decode(EP_CHUNKED_SIGNED, &seed, 66560, tampered, 4096);
  EXPECT_EQ("SignatureDoesNotMatch", d.code);
  // A chunk signature changed.
  std::string badsig = body;
  badsig[body.find("chunk-signature=") + 20] ^= 1;
  EXPECT_EQ("SignatureDoesNotMatch", decode(EP_CHUNKED_SIGNED, &seed, 66560, badsig, 4096).code);
  // Another seed (the Authorization of another request): the chain breaks.
  ep_chunk_seed other = doc_seed(k, kDocTrailerSeed);
  EXPECT_EQ("SignatureDoesNotMatch", decode(EP_CHUNKED_SIGNED, &other, 66560, body, 4096).code);
  // The trailer's signature changed.
  std::string tbad = doc_trailer_body();
  tbad[tbad.find("x-amz-trailer-signature:") + 30] ^= 1;
  ep_chunk_seed tseed = doc_seed(k, kDocTrailerSeed);
  EXPECT_EQ("SignatureDoesNotMatch", decode(EP_CHUNKED_SIGNED_TRAILER, &tseed, 66560, tbad, 4096).code);
  // The body stops inside a chunk, or before the final CRLF.
  d = decode(EP_CHUNKED_SIGNED, &seed, 66560, body.substr(0, 30000), 4096);
  EXPECT_EQ("IncompleteBody", d.code);
  EXPECT_EQ("The request body terminated unexpectedly", d.message);
  EXPECT_EQ("IncompleteBody", decode(EP_CHUNKED_SIGNED, &seed, 66560, body.substr(0, body.size() - 2), 4096).code);
  // x-amz-decoded-content-length says otherwise (more, or fewer bytes).
  for (uint64_t declared : {uint64_t(66561), uint64_t(66559), uint64_t(10)}) {
    d = decode(EP_CHUNKED_SIGNED, &seed, declared, body, 4096);
    EXPECT_EQ("IncompleteBody", d.code) << declared;
    ASSERT_EQ(2u, d.extra.size()) << declared;
    EXPECT_EQ("NumberBytesExpected", d.extra[0].first);
    EXPECT_EQ(std::to_string(declared), d.extra[0].second);
    EXPECT_EQ("NumberBytesProvided", d.extra[1].first);
  }
  // Framing: a size that is not hex, a missing CRLF after the data, bytes after the end.
  EXPECT_EQ("IncompleteBody", decode(EP_CHUNKED_UNSIGNED_TRAILER, nullptr, 3, "x3\r\nabc\r\n0\r\n\r\n", 1).code);
  EXPECT_EQ("IncompleteBody", decode(EP_CHUNKED_UNSIGNED_TRAILER, nullptr, 3, "3\r\nabcX\r\n0\r\n\r\n", 1).code);
  EXPECT_EQ("IncompleteBody", decode(EP_CHUNKED_UNSIGNED_TRAILER, nullptr, 3, "3\r\nabc\r\n0\r\n\r\nextra", 1).code);
  // A signed chunk under 8 KiB that is not the last one.
  std::string small = signed_body(k.key, kDate, kScope, kDocSeed, std::string(9000, 'z'), 4500);
  d = decode(EP_CHUNKED_SIGNED, &seed, 9000, small, 4096);
  EXPECT_EQ("InvalidChunkSizeError", d.code);
  ASSERT_EQ(2u, d.extra.size());
  EXPECT_EQ("Chunk", d.extra[0].first);
  EXPECT_EQ("1", d.extra[0].second);
  EXPECT_EQ("4500", d.extra[1].second);
  // A trailer line that is not name:value.
  EXPECT_EQ("MalformedTrailerError",
            decode(EP_CHUNKED_UNSIGNED_TRAILER, nullptr, 3, "3\r\nabc\r\n0\r\nnot a header\r\n\r\n", 5).code);
}

TEST(AwsChunkedDecoder, UnsignedTrailerAsBotocoreWritesIt) {
  // botocore's AwsChunkedWrapper: "SIZE\r\nDATA\r\n", then "0\r\nNAME:VALUE\r\n\r\n".
  std::string payload(3000000, 'q');
  std::string body;
  for (size_t off = 0; off < payload.size(); off += 1 << 20) {
    std::string c = payload.substr(off, 1 << 20);
    body += hex_size(c.size()) + "\r\n" + c + "\r\n";
  }
  body += "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
  Decoded d = decode(EP_CHUNKED_UNSIGNED_TRAILER, nullptr, payload.size(), body, 65536);
  ASSERT_EQ(0, d.rc) << d.code;
  EXPECT_EQ(payload, d.payload);
  EXPECT_EQ("x-amz-checksum-crc32:AAAAAA==\n", d.trailer);
}

// ---------------------------------------------------------- on the wire

namespace {

using Raw = asd_test::RawReply;

// One request on a fresh connection, bounded by 60 s.
Raw exchange(int port, const std::string &request, bool head_request = false) {
  return asd_test::raw_exchange(port, request, head_request, 60.0);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// A request signed with the project's signer (every header given, plus
// host, x-amz-date and x-amz-content-sha256), with the parts a chunk chain
// needs: the date, the signing key and the seed signature.
struct Signed {
  std::string text;  // request line and headers, up to the blank line
  std::string date, seed;
  unsigned char key[32];
};

Signed sign_request(const LocalEndpoint &ep, const std::string &method, const std::string &target, Headers headers,
                    const std::string &payload_hash) {
  Signed s;
  char d[17];
  asd_sigv4_format_amz_date(asd_time_wall(), d);
  s.date = d;
  std::string host = "127.0.0.1:" + std::to_string(ep.port());
  headers.push_back({"x-amz-date", s.date});
  headers.push_back({"x-amz-content-sha256", payload_hash});
  std::vector<asd_sigv4_header> hv;
  hv.push_back({"host", 0, host.c_str(), 0});
  for (auto &h : headers) hv.push_back({h.first.c_str(), 0, h.second.c_str(), 0});
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  asd_sigv4_params p{};
  p.method = method.c_str();
  p.path = path.c_str();
  p.query = query.c_str();
  p.headers = hv.data();
  p.n_headers = hv.size();
  p.payload_hash = payload_hash.c_str();
  p.region = "us-east-1";
  p.service = "s3";
  p.amz_date = d;
  p.access_key_id = asd_test::kLocalAccessKey;
  p.secret_access_key = asd_test::kLocalSecretKey;
  asd_sigv4_signature sig;
  asd_sigv4_signature_init(&sig);
  EXPECT_EQ(0, asd_sigv4_sign(&p, &sig));
  s.seed = sig.signature;
  s.text = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (auto &h : headers) s.text += h.first + ": " + h.second + "\r\n";
  s.text += "Authorization: " + std::string(reinterpret_cast<const char *>(sig.authorization.data),
                                            sig.authorization.len) + "\r\nConnection: close\r\n\r\n";
  asd_sigv4_signature_free(&sig);
  asd_sigv4_derive_key(asd_test::kLocalSecretKey, s.date.substr(0, 8).c_str(), "us-east-1", "s3", s.key);
  return s;
}

std::string scope_of(const Signed &s) { return s.date.substr(0, 8) + "/us-east-1/s3/aws4_request"; }

Raw signed_get(const LocalEndpoint &ep, const std::string &method, const std::string &target,
               const Headers &headers = {}) {
  Signed s = sign_request(ep, method, target, headers, ASD_SIGV4_EMPTY_SHA256);
  return exchange(ep.port(), s.text, method == "HEAD");
}

std::string crc32_b64(const std::string &payload) {
  char b64[9];
  asd_crc_base64(asd_crc32(0, payload.data(), payload.size()), b64);
  return b64;
}

// What the test varies in a signed aws-chunked PUT.
struct ChunkedPut {
  std::string payload;
  size_t chunk = 65536;
  bool trailer = false;            // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with x-amz-checksum-crc32
  std::string trailer_value;       // default: the payload's CRC32
  long long declared = -1;         // x-amz-decoded-content-length (-1: the payload's size; -2: none)
  std::function<void(std::string &)> tamper;  // edits the encoded body before it is sent
};

Raw put_chunked(const LocalEndpoint &ep, const std::string &target, const ChunkedPut &c) {
  std::string mode = c.trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  Headers h = {{"Content-Encoding", "aws-chunked"}};
  if (c.declared != -2)
    h.push_back({"x-amz-decoded-content-length",
                 std::to_string(c.declared == -1 ? static_cast<long long>(c.payload.size()) : c.declared)});
  if (c.trailer) h.push_back({"x-amz-trailer", "x-amz-checksum-crc32"});
  // The body's length depends on the signatures only through their fixed
  // size, so it is known before signing (Content-Length is signed, as the
  // Java SDK does).
  unsigned char zero[32] = {0};
  std::string lines = "x-amz-checksum-crc32:" + (c.trailer_value.empty() ? crc32_b64(c.payload) : c.trailer_value) +
                      "\n";
  std::string probe = signed_body(zero, "d", "s", "x", c.payload, c.chunk, lines, c.trailer);
  h.push_back({"Content-Length", std::to_string(probe.size())});
  Signed s = sign_request(ep, "PUT", target, h, mode);
  std::string body = signed_body(s.key, s.date, scope_of(s), s.seed, c.payload, c.chunk, lines, c.trailer);
  if (c.tamper) c.tamper(body);
  return exchange(ep.port(), s.text + body);
}

std::string payload_of(size_t n) {
  std::string p(n, '\0');
  for (size_t i = 0; i < n; i++) p[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return p;
}

std::string md5_etag(const std::string &s) {
  unsigned char d[16];
  unsigned int l = 0;
  EVP_Digest(s.data(), s.size(), d, &l, EVP_md5(), nullptr);
  char hex[33];
  asd_hex_encode(d, 16, hex);
  return "\"" + std::string(hex) + "\"";
}

}  // namespace

TEST(AwsChunkedEndpoint, SignedPutObjectStoresThePayload) {
  LocalEndpoint ep({"-bucket", "bkt"});
  ChunkedPut c;
  c.payload = payload_of(200000);  // chunks of 65536, 65536, 65536, 3392
  Raw r = put_chunked(ep, "/bkt/signed.bin", c);
  ASSERT_EQ(200, r.status) << r.head << r.body;
  EXPECT_EQ(md5_etag(c.payload), r.header("ETag"));
  Raw g = signed_get(ep, "GET", "/bkt/signed.bin");
  ASSERT_EQ(200, g.status) << g.body;
  EXPECT_TRUE(g.body == c.payload) << g.body.size();
}

TEST(AwsChunkedEndpoint, SignedTrailerChecksumStoredAndReturned) {
  LocalEndpoint ep({"-bucket", "bkt"});
  ChunkedPut c;
  c.payload = payload_of(70000);
  c.trailer = true;
  Raw r = put_chunked(ep, "/bkt/trailer.bin", c);
  ASSERT_EQ(200, r.status) << r.head << r.body;
  EXPECT_EQ(crc32_b64(c.payload), r.header("x-amz-checksum-crc32"));
  Raw h = signed_get(ep, "HEAD", "/bkt/trailer.bin", {{"x-amz-checksum-mode", "ENABLED"}});
  ASSERT_EQ(200, h.status);
  EXPECT_EQ(crc32_b64(c.payload), h.header("x-amz-checksum-crc32"));
  EXPECT_EQ("70000", h.header("Content-Length"));
  Raw g = signed_get(ep, "GET", "/bkt/trailer.bin");
  EXPECT_TRUE(g.body == c.payload);
}

TEST(AwsChunkedEndpoint, SignedUploadPartThenComplete) {
  LocalEndpoint ep({"-bucket", "bkt"});
  Raw cr = signed_get(ep, "POST", "/bkt/mp.bin?uploads=");
  ASSERT_EQ(200, cr.status) << cr.body;
  auto a = cr.body.find("<UploadId>"), b = cr.body.find("</UploadId>");
  ASSERT_NE(std::string::npos, a);
  std::string id = cr.body.substr(a + 10, b - a - 10);
  ChunkedPut p1, p2;
  p1.payload = payload_of(5 * 1024 * 1024);
  p1.trailer = true;
  p2.payload = "the last part";
  std::string t1 = "/bkt/mp.bin?partNumber=1&uploadId=" + id, t2 = "/bkt/mp.bin?partNumber=2&uploadId=" + id;
  Raw r1 = put_chunked(ep, t1, p1), r2 = put_chunked(ep, t2, p2);
  ASSERT_EQ(200, r1.status) << r1.body;
  ASSERT_EQ(200, r2.status) << r2.body;
  EXPECT_EQ(md5_etag(p1.payload), r1.header("ETag"));
  EXPECT_EQ(crc32_b64(p1.payload), r1.header("x-amz-checksum-crc32"));
  std::string xml = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + r1.header("ETag") +
                    "</ETag></Part><Part><PartNumber>2</PartNumber><ETag>" + r2.header("ETag") +
                    "</ETag></Part></CompleteMultipartUpload>";
  Signed s = sign_request(ep, "POST", "/bkt/mp.bin?uploadId=" + id, {{"Content-Length", std::to_string(xml.size())}},
                          sha256_hex(xml));
  Raw done = exchange(ep.port(), s.text + xml);
  ASSERT_EQ(200, done.status) << done.body;
  Raw g = signed_get(ep, "GET", "/bkt/mp.bin");
  EXPECT_TRUE(g.body == p1.payload + p2.payload) << g.body.size();
}

TEST(AwsChunkedEndpoint, RefusalsAsS3AndNothingStored) {
  LocalEndpoint ep({"-bucket", "bkt"});
  auto expect_refused = [&](const ChunkedPut &c, int status, const std::string &code, const std::string &what) {
    Raw r = put_chunked(ep, "/bkt/refused.bin", c);
    EXPECT_EQ(status, r.status) << what << ": " << r.body;
    EXPECT_NE(std::string::npos, r.body.find("<Code>" + code + "</Code>")) << what << ": " << r.body;
    EXPECT_EQ(404, signed_get(ep, "HEAD", "/bkt/refused.bin").status) << what << ": an object was stored";
    return r;
  };
  ChunkedPut base;
  base.payload = payload_of(100000);

  ChunkedPut c = base;
  c.tamper = [](std::string &b) { b[b.find("chunk-signature=") + 16 + 64 + 2 + 10] ^= 1; };  // a data byte
  expect_refused(c, 403, "SignatureDoesNotMatch", "a data byte changed");
  c = base;
  c.tamper = [](std::string &b) {
    auto p = b.rfind("0;chunk-signature=");
    b[p + 18] = b[p + 18] == 'a' ? 'b' : 'a';
  };
  expect_refused(c, 403, "SignatureDoesNotMatch", "the final chunk's signature changed");

  c = base;
  c.trailer = true;
  c.trailer_value = crc32_b64("something else");
  Raw r = expect_refused(c, 400, "BadDigest", "a trailing CRC32 of other bytes");
  EXPECT_NE(std::string::npos, r.body.find("The CRC32 you specified did not match the calculated checksum.")) << r.body;
  c.trailer_value = "AAAA";
  r = expect_refused(c, 400, "InvalidRequest", "a trailing CRC32 that is not one");
  EXPECT_NE(std::string::npos, r.body.find("Value for x-amz-checksum-crc32 trailing header is invalid.")) << r.body;
  c = base;
  c.trailer = true;
  c.tamper = [](std::string &b) {
    auto p = b.find("x-amz-trailer-signature:");
    b[p + 30] = b[p + 30] == 'a' ? 'b' : 'a';
  };
  expect_refused(c, 403, "SignatureDoesNotMatch", "the trailer's signature changed");

  Signed s = sign_request(ep, "PUT", "/bkt/refused.bin",
                          {{"Content-Encoding", "aws-chunked"}, {"x-amz-decoded-content-length", "100000"}},
                          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  std::string body = signed_body(s.key, s.date, scope_of(s), s.seed, base.payload, 65536);
  // A body that ends early (its HTTP framing complete, its aws-chunked one not).
  std::string cut = body.substr(0, 70000);
  std::string text = s.text;
  text.insert(text.find("Authorization:"), "Transfer-Encoding: chunked\r\n");
  std::string http_chunked = hex_size(cut.size()) + "\r\n" + cut + "\r\n0\r\n\r\n";
  r = exchange(ep.port(), text + http_chunked);
  EXPECT_EQ(400, r.status) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("<Code>IncompleteBody</Code>")) << r.body;
  EXPECT_EQ(404, signed_get(ep, "HEAD", "/bkt/refused.bin").status);

  c = base;
  c.declared = 100001;
  r = expect_refused(c, 400, "IncompleteBody", "x-amz-decoded-content-length one more than the payload");
  EXPECT_NE(std::string::npos, r.body.find("<NumberBytesExpected>100001</NumberBytesExpected>")) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("<NumberBytesProvided>100000</NumberBytesProvided>")) << r.body;
  c.declared = -2;
  expect_refused(c, 411, "MissingContentLength", "no x-amz-decoded-content-length");
  c = base;
  c.chunk = 4096;
  r = expect_refused(c, 400, "InvalidChunkSizeError", "4 KiB chunks");
  EXPECT_NE(std::string::npos, r.body.find("<Chunk>1</Chunk><BadChunkSize>4096</BadChunkSize>")) << r.body;
}

// The unsigned form with a trailer, as botocore frames it, on plain HTTP
// with HTTP chunking around it (what boto3 sends over HTTPS).
TEST(AwsChunkedEndpoint, UnsignedTrailerInHttpChunks) {
  LocalEndpoint ep({"-bucket", "bkt"});
  std::string payload = payload_of(1500000);
  std::string aws;
  for (size_t off = 0; off < payload.size(); off += 1 << 20) {
    std::string c = payload.substr(off, 1 << 20);
    aws += hex_size(c.size()) + "\r\n" + c + "\r\n";
  }
  aws += "0\r\nx-amz-checksum-crc32:" + crc32_b64(payload) + "\r\n\r\n";
  Signed s = sign_request(ep, "PUT", "/bkt/u.bin",
                          {{"Content-Encoding", "aws-chunked"},
                           {"x-amz-decoded-content-length", std::to_string(payload.size())},
                           {"x-amz-trailer", "x-amz-checksum-crc32"},
                           {"x-amz-sdk-checksum-algorithm", "CRC32"}},
                          "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  std::string text = s.text;
  text.insert(text.find("Authorization:"), "Transfer-Encoding: chunked\r\n");
  std::string http;
  for (size_t off = 0; off < aws.size(); off += 100000) {
    std::string piece = aws.substr(off, 100000);
    http += hex_size(piece.size()) + "\r\n" + piece + "\r\n";
  }
  Raw r = exchange(ep.port(), text + http + "0\r\n\r\n");
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ(crc32_b64(payload), r.header("x-amz-checksum-crc32"));
  Raw g = signed_get(ep, "GET", "/bkt/u.bin");
  EXPECT_TRUE(g.body == payload) << g.body.size();
}
