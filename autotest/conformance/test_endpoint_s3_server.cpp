// The local endpoint's HTTP server under bad input, faults, restarts and
// shutdown.  Requests here are raw (libcurl, no SDK) so that the test can
// send what no SDK would: malformed XML, wrong digests, "../" keys,
// oversized bodies.  Most servers run with -no-auth; the auth tests run
// with signing on.  Every test checks that the server keeps serving after
// the bad request.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asyncdetect/asd_common.h"

using asd_test::HttpResult;
using asd_test::LocalEndpoint;
using asd_test::http_request;

namespace {

std::string md5_header(const std::string &body) {
  char b64[25];
  asd_md5_base64(body.data(), body.size(), b64);
  return std::string("Content-MD5: ") + b64;
}

void expect_s3_error(const HttpResult &r, int status, const std::string &code) {
  EXPECT_EQ(status, r.status) << r.body;
  EXPECT_NE(r.body.find("<Code>" + code + "</Code>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("<RequestId>"), std::string::npos) << r.body;
  EXPECT_FALSE(r.header("x-amz-request-id").empty());
}

// The server still answers a normal request.
void expect_alive(LocalEndpoint &ep) {
  HttpResult r = http_request("PUT", ep.url() + "/alive-bucket/ping", "pong");
  if (r.status == 404) {
    EXPECT_EQ(200, http_request("PUT", ep.url() + "/alive-bucket").status);
    r = http_request("PUT", ep.url() + "/alive-bucket/ping", "pong");
  }
  EXPECT_EQ(200, r.status) << r.body;
  EXPECT_EQ("pong", http_request("GET", ep.url() + "/alive-bucket/ping").body);
}

std::vector<std::string> files_under(const std::string &dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto &e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) out.push_back(e.path().string());
  return out;
}

json_object *stats_of(LocalEndpoint &ep) { return json_tokener_parse(ep.stats_json().c_str()); }

int64_t stat_count(json_object *stats, const char *op, const char *status) {
  json_object *reqs, *o, *bs, *v;
  if (!stats || !json_object_object_get_ex(stats, "requests", &reqs) || !json_object_object_get_ex(reqs, op, &o) ||
      !json_object_object_get_ex(o, "by_status", &bs) || !json_object_object_get_ex(bs, status, &v))
    return 0;
  return json_object_get_int64(v);
}

}  // namespace

TEST(S3BadInput, MalformedDeleteXml) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad"});
  for (std::string body : {std::string("<Delete><Object><Key>a</Key></Object>"), std::string("not xml at all"),
                           std::string("<Delete></Delete>"), std::string("<Other/>")}) {
    HttpResult r = http_request("POST", ep.url() + "/bad?delete", body, {md5_header(body)});
    expect_s3_error(r, 400, "MalformedXML");
  }
  // 1001 keys is over the limit.
  std::string many = "<Delete>";
  for (int i = 0; i < 1001; i++) many += "<Object><Key>k" + std::to_string(i) + "</Key></Object>";
  many += "</Delete>";
  expect_s3_error(http_request("POST", ep.url() + "/bad?delete", many, {md5_header(many)}), 400, "MalformedXML");
  expect_alive(ep);
}

TEST(S3BadInput, DeleteObjectsDigests) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad"});
  ASSERT_EQ(200, http_request("PUT", ep.url() + "/bad/k1", "one").status);
  ASSERT_EQ(200, http_request("PUT", ep.url() + "/bad/k2", "two").status);
  std::string body = "<Delete><Object><Key>k1</Key></Object></Delete>";
  // Missing digest, wrong digest, garbage digest: nothing is deleted.
  expect_s3_error(http_request("POST", ep.url() + "/bad?delete", body), 400, "InvalidRequest");
  expect_s3_error(http_request("POST", ep.url() + "/bad?delete", body, {md5_header("other")}), 400, "BadDigest");
  expect_s3_error(http_request("POST", ep.url() + "/bad?delete", body, {"Content-MD5: !!notbase64"}), 400,
                  "InvalidDigest");
  expect_s3_error(http_request("POST", ep.url() + "/bad?delete", body, {"x-amz-checksum-crc32: AAAAAA=="}), 400,
                  "BadDigest");
  EXPECT_EQ(200, http_request("HEAD", ep.url() + "/bad/k1").status);
  // Right digest: deleted, reported, including a missing key.
  std::string body2 = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>k1</Key></Object>"
                      "<Object><Key>nope</Key></Object></Delete>";
  HttpResult r = http_request("POST", ep.url() + "/bad?delete", body2, {md5_header(body2)});
  EXPECT_EQ(200, r.status) << r.body;
  EXPECT_NE(r.body.find("<Deleted><Key>k1</Key></Deleted>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("<Deleted><Key>nope</Key></Deleted>"), std::string::npos) << r.body;
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/bad/k1").status);
  EXPECT_EQ(200, http_request("HEAD", ep.url() + "/bad/k2").status);
  expect_alive(ep);
}

TEST(S3BadInput, PutObjectDigests) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad"});
  expect_s3_error(http_request("PUT", ep.url() + "/bad/obj", "payload", {md5_header("different")}), 400,
                  "BadDigest");
  expect_s3_error(http_request("PUT", ep.url() + "/bad/obj", "payload",
                               {"x-amz-content-sha256: 0000000000000000000000000000000000000000000000000000000000000000"}),
                  400, "XAmzContentSHA256Mismatch");
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/bad/obj").status);  // nothing visible
  HttpResult ok = http_request("PUT", ep.url() + "/bad/obj", "payload", {md5_header("payload")});
  EXPECT_EQ(200, ok.status) << ok.body;
  EXPECT_EQ("\"321c3cf486ed509164edec1e1981fec8\"", ok.header("etag"));
  // No temporary file is left behind by the refused uploads.
  for (const auto &f : files_under(ep.data_dir())) EXPECT_EQ(f.find(".tmp-"), std::string::npos) << f;
  expect_alive(ep);
}

TEST(S3BadInput, OversizedBodies) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad", "-max-body", "1000"});
  std::string big(5000, 'x');
  expect_s3_error(http_request("PUT", ep.url() + "/bad/big", big), 400, "EntityTooLarge");
  // Chunked upload (no Content-Length): the cap applies while streaming.
  HttpResult r = http_request("PUT", ep.url() + "/bad/big2", big, {"Transfer-Encoding: chunked"});
  expect_s3_error(r, 400, "EntityTooLarge");
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/bad/big").status);
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/bad/big2").status);
  EXPECT_EQ(200, http_request("PUT", ep.url() + "/bad/small", std::string(1000, 'y')).status);
  for (const auto &f : files_under(ep.data_dir())) EXPECT_EQ(f.find(".tmp-"), std::string::npos) << f;
  expect_alive(ep);
}

TEST(S3BadInput, PathTraversalNeverLeavesTheDataDir) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad"});
  std::string parent = std::filesystem::path(ep.data_dir()).parent_path().string();
  std::string marker = "asd-traversal-marker";
  for (std::string path : std::vector<std::string>{"/bad/../" + marker, "/bad/a/../../" + marker, "/bad/%2e%2e/" + marker,
                           "/bad/..%2F..%2F" + marker, "/bad/..", "/bad/x/.."}) {
    HttpResult r = http_request("PUT", ep.url() + path, "evil");
    EXPECT_EQ(400, r.status) << path << " " << r.body;
    EXPECT_NE(r.body.find("<Error>"), std::string::npos) << path;
  }
  EXPECT_FALSE(std::filesystem::exists(parent + "/" + marker));
  EXPECT_FALSE(std::filesystem::exists(ep.data_dir() + "/" + marker));
  // Keys that merely look like paths are fine and stay inside the bucket.
  EXPECT_EQ(200, http_request("PUT", ep.url() + "/bad/a/..b/.c", "ok").status);
  EXPECT_EQ("ok", http_request("GET", ep.url() + "/bad/a/..b/.c").body);
  for (const auto &f : files_under(ep.data_dir()))
    EXPECT_EQ(0u, f.rfind(ep.data_dir() + "/bad/", 0)) << f;
  // A NUL byte in the path is refused.
  EXPECT_EQ(400, http_request("GET", ep.url() + "/bad/a%00b").status);
  expect_alive(ep);
}

TEST(S3BadInput, InvalidAndMissingBuckets) {
  LocalEndpoint ep({"-no-auth"});
  for (std::string b : std::vector<std::string>{"ab", "UpperCase", "under_score", "-dash", "dots..dots", "192.168.1.1",
                        std::string(64, 'a')}) {
    HttpResult r = http_request("PUT", ep.url() + "/" + b);
    expect_s3_error(r, 400, "InvalidBucketName");
    r = http_request("GET", ep.url() + "/" + b + "/key");
    expect_s3_error(r, 400, "InvalidBucketName");
  }
  expect_s3_error(http_request("GET", ep.url() + "/missing-bucket/key"), 404, "NoSuchBucket");
  expect_s3_error(http_request("PUT", ep.url() + "/missing-bucket/key", "x"), 404, "NoSuchBucket");
  expect_s3_error(http_request("GET", ep.url() + "/missing-bucket?list-type=2"), 404, "NoSuchBucket");
  // HEAD errors carry no body.
  HttpResult h = http_request("HEAD", ep.url() + "/missing-bucket");
  EXPECT_EQ(404, h.status);
  EXPECT_TRUE(h.body.empty());
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/missing-bucket/key").status);
  // Create, then re-create: BucketAlreadyOwnedByYou; delete non-empty: BucketNotEmpty.
  EXPECT_EQ(200, http_request("PUT", ep.url() + "/new-bucket").status);
  expect_s3_error(http_request("PUT", ep.url() + "/new-bucket"), 409, "BucketAlreadyOwnedByYou");
  EXPECT_EQ(200, http_request("PUT", ep.url() + "/new-bucket/k", "v").status);
  expect_s3_error(http_request("DELETE", ep.url() + "/new-bucket"), 409, "BucketNotEmpty");
  EXPECT_EQ(204, http_request("DELETE", ep.url() + "/new-bucket/k").status);
  EXPECT_EQ(204, http_request("DELETE", ep.url() + "/new-bucket/k").status);  // missing key: still 204
  EXPECT_EQ(204, http_request("DELETE", ep.url() + "/new-bucket").status);
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/new-bucket").status);
  // Unsupported features answer NotImplemented, not something misleading.
  expect_s3_error(http_request("PUT", ep.url() + "/alive-bucket/k?acl", "x"), 501, "NotImplemented");
  expect_s3_error(http_request("GET", ep.url() + "/alive-bucket?versioning"), 501, "NotImplemented");
  expect_alive(ep);
}

TEST(S3BadInput, BadQueryParameters) {
  LocalEndpoint ep({"-no-auth", "-bucket", "bad"});
  expect_s3_error(http_request("GET", ep.url() + "/bad?list-type=2&max-keys=abc"), 400, "InvalidArgument");
  expect_s3_error(http_request("GET", ep.url() + "/bad?list-type=2&continuation-token=zz"), 400, "InvalidArgument");
  expect_s3_error(http_request("GET", ep.url() + "/bad?list-type=2&encoding-type=base64"), 400, "InvalidArgument");
  ASSERT_EQ(200, http_request("PUT", ep.url() + "/bad/r", "0123456789").status);
  HttpResult r = http_request("GET", ep.url() + "/bad/r", "", {"Range: bytes=20-30"});
  expect_s3_error(r, 416, "InvalidRange");
  EXPECT_EQ("bytes */10", r.header("content-range"));
  r = http_request("GET", ep.url() + "/bad/r", "", {"Range: bytes=7-"});
  EXPECT_EQ(206, r.status);
  EXPECT_EQ("789", r.body);
  EXPECT_EQ("bytes 7-9/10", r.header("content-range"));
  r = http_request("GET", ep.url() + "/bad/r", "", {"Range: bytes=junk"});
  EXPECT_EQ(200, r.status);
  EXPECT_EQ("0123456789", r.body);
  expect_alive(ep);
}

TEST(S3Auth, UnsignedAndForgedRequestsAreRefused) {
  LocalEndpoint ep({"-bucket", "secure"});
  HttpResult r = http_request("GET", ep.url() + "/secure?list-type=2");
  expect_s3_error(r, 403, "AccessDenied");
  r = http_request("PUT", ep.url() + "/secure/x", "data",
                   {"Authorization: AWS4-HMAC-SHA256 Credential=ASDLOCALACCESSKEY/20260101/us-east-1/s3/aws4_request,"
                    "SignedHeaders=host;x-amz-date,Signature=0000000000000000000000000000000000000000000000000000000000000000",
                    "x-amz-date: 20260101T000000Z", "x-amz-content-sha256: UNSIGNED-PAYLOAD"});
  EXPECT_EQ(403, r.status) << r.body;
  // Error messages never echo the secret.
  EXPECT_EQ(r.body.find(asd_test::kLocalSecretKey), std::string::npos);
  // The stats page needs no signature.
  EXPECT_FALSE(ep.stats_json().empty());
}

TEST(S3Store, RestartKeepsObjects) {
  char templ[] = "/tmp/asd-conf-restart-XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  std::string dir = templ;
  {
    LocalEndpoint ep({"-no-auth", "-data-dir", dir, "-bucket", "keep"});
    ASSERT_EQ(200, http_request("PUT", ep.url() + "/keep/a/b", "persisted").status);
    ASSERT_EQ(200, http_request("PUT", ep.url() + "/keep/c", "").status);
    int st = ep.stop();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  {
    LocalEndpoint ep({"-no-auth", "-data-dir", dir});
    EXPECT_EQ("persisted", http_request("GET", ep.url() + "/keep/a/b").body);
    EXPECT_EQ(200, http_request("HEAD", ep.url() + "/keep/c").status);
    HttpResult l = http_request("GET", ep.url() + "/keep?list-type=2");
    EXPECT_NE(l.body.find("<Key>a/b</Key>"), std::string::npos) << l.body;
    EXPECT_NE(l.body.find("<KeyCount>2</KeyCount>"), std::string::npos) << l.body;
  }
  std::filesystem::remove_all(dir);
}

TEST(S3Store, DefaultTemporaryDataDirIsRemovedAtExit) {
  // Started without -data-dir: the server makes and later removes its own.
  char templ[] = "/tmp/asd-conf-tmpdir-XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  std::string tmpdir = templ;
  // The server's first stdout line (its URL) says it is up, with its data
  // directory made and its signal handlers installed: only then is TERM sent.
  // A fixed sleep instead made this test fail on a loaded machine.
  char out_templ[] = "/tmp/asd-conf-tmpout-XXXXXX";
  ASSERT_NE(mkdtemp(out_templ), nullptr);
  std::string out = std::string(out_templ) + "/stdout";
  std::string bin = asd_test::endpoint_bin();
  std::string cmd = "TMPDIR=" + tmpdir + " timeout 120 sh -c '" + bin + " -no-auth -port 0 >" + out +
                    " & pid=$!; i=0; while [ ! -s " + out +
                    " ] && [ $i -lt 1000 ]; do sleep 0.1; i=$((i+1)); done;"
                    " kill -TERM $pid; wait $pid' 2>/dev/null";
  int st = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_FALSE(std::filesystem::is_empty(out)) << "the server never said it was up";
  EXPECT_TRUE(std::filesystem::is_empty(tmpdir)) << "left behind in " << tmpdir;
  std::filesystem::remove_all(tmpdir);
  std::filesystem::remove_all(out_templ);
}

TEST(S3Store, ConcurrentOverwritesAreNeverTorn) {
  LocalEndpoint ep({"-no-auth", "-bucket", "race"});
  const size_t size = 256 * 1024;
  ASSERT_EQ(200, http_request("PUT", ep.url() + "/race/obj", std::string(size, 'a')).status);
  std::atomic<int> torn{0}, reads{0}, failures{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; w++)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 10; i++) {
        char c = static_cast<char>('b' + (w * 10 + i) % 20);
        if (http_request("PUT", ep.url() + "/race/obj", std::string(size, c)).status != 200) failures++;
      }
    });
  for (int rdr = 0; rdr < 4; rdr++)
    ts.emplace_back([&] {
      for (int i = 0; i < 20; i++) {
        HttpResult r = http_request("GET", ep.url() + "/race/obj");
        if (r.status != 200) {
          failures++;
          continue;
        }
        reads++;
        if (r.body.size() != size || r.body.find_first_not_of(r.body[0]) != std::string::npos) torn++;
      }
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(0, failures.load());
  EXPECT_EQ(0, torn.load());
  EXPECT_EQ(80, reads.load());
}

TEST(S3Server, InterruptedUploadLeavesNoObject) {
  LocalEndpoint ep({"-no-auth", "-bucket", "cut"});
  // Announce 1 MB, send 1000 bytes, then vanish.
  std::string hostport = ep.url().substr(7);
  std::string port = hostport.substr(hostport.find(':') + 1);
  std::string cmd = "timeout 10 python3 -c \"import socket,time;s=socket.create_connection(('127.0.0.1'," + port +
                    "));s.sendall(b'PUT /cut/partial HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1000000\\r\\n\\r\\n'"
                    "+b'x'*1000);time.sleep(0.5);s.close()\"";
  EXPECT_EQ(0, std::system(cmd.c_str()));
  usleep(300 * 1000);
  EXPECT_EQ(404, http_request("HEAD", ep.url() + "/cut/partial").status);
  for (const auto &f : files_under(ep.data_dir())) EXPECT_EQ(f.find(".tmp-"), std::string::npos) << f;
  expect_alive(ep);
}

TEST(S3Server, KeepAliveConnectionsServedConcurrently) {
  LocalEndpoint ep({"-no-auth", "-bucket", "kab"});
  ASSERT_EQ(200, http_request("PUT", ep.url() + "/kab/k", "v").status);
  // 64 handles on one multi, each reusing its connection for 5 requests.
  CURLM *m = curl_multi_init();
  std::vector<CURL *> hs;
  std::string sink;
  auto discard = +[](char *, size_t s, size_t n, void *) -> size_t { return s * n; };
  int ok = 0;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 64; i++) {
      CURL *h = round == 0 ? curl_easy_init() : hs[static_cast<size_t>(i)];
      if (round == 0) hs.push_back(h);
      curl_easy_setopt(h, CURLOPT_URL, (ep.url() + "/kab/k").c_str());
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
      curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
      curl_multi_add_handle(m, h);
    }
    int running = 1;
    while (running) {
      curl_multi_perform(m, &running);
      if (running) curl_multi_poll(m, nullptr, 0, 1000, nullptr);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      long code = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      if (msg->data.result == CURLE_OK && code == 200) ok++;
      curl_multi_remove_handle(m, msg->easy_handle);
    }
  }
  long conns = 0;
  for (CURL *h : hs) {
    long n = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
    conns += n;
    curl_easy_cleanup(h);
  }
  curl_multi_cleanup(m);
  EXPECT_EQ(320, ok);
  EXPECT_EQ(0, conns);  // the last round opened no new connection: keep-alive held
}

TEST(S3Faults, SlowDownInternalErrorAndDrops) {
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "fff", "-faults", "s3_503=1,seed=7"});
    expect_s3_error(http_request("GET", ep.url() + "/fff?list-type=2"), 503, "SlowDown");
    expect_s3_error(http_request("PUT", ep.url() + "/fff/k", "v"), 503, "SlowDown");
    json_object *s = stats_of(ep);
    EXPECT_EQ(1, stat_count(s, "PutObject", "503"));
    json_object_put(s);
  }
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "fff", "-faults", "s3_500=1"});
    expect_s3_error(http_request("GET", ep.url() + "/fff/k"), 500, "InternalError");
  }
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "fff", "-faults", "drop=1"});
    HttpResult r = http_request("GET", ep.url() + "/fff/k");
    EXPECT_EQ(-1, r.status) << r.body;  // no answer at all
    EXPECT_FALSE(ep.stats_json().empty());  // the stats page is not an S3 request
  }
  {
    // Half the requests fail, reproducibly for a seed: same sequence twice.
    std::vector<int> first, second;
    for (auto *seq : {&first, &second}) {
      LocalEndpoint ep({"-no-auth", "-bucket", "fff", "-faults", "s3_503=0.5,seed=42"});
      for (int i = 0; i < 20; i++) seq->push_back(http_request("HEAD", ep.url() + "/fff").status);
    }
    EXPECT_EQ(first, second);
    int n503 = 0;
    for (int s : first) n503 += s == 503;
    EXPECT_GT(n503, 0);
    EXPECT_LT(n503, 20);
  }
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "fff", "-faults", "slow_consumer_ms=50"});
    EXPECT_EQ(200, http_request("PUT", ep.url() + "/fff/k", "v").status);
    EXPECT_EQ("v", http_request("GET", ep.url() + "/fff/k").body);
  }
}

TEST(S3Stats, CountsAndAccessLog) {
  char templ[] = "/tmp/asd-conf-log-XXXXXX";
  int fd = mkstemp(templ);
  ASSERT_GE(fd, 0);
  close(fd);
  std::string log = templ;
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "stt", "-access-log", log});
    for (int i = 0; i < 3; i++) EXPECT_EQ(200, http_request("PUT", ep.url() + "/stt/k" + std::to_string(i), "abc").status);
    EXPECT_EQ(404, http_request("GET", ep.url() + "/stt/missing").status);
    EXPECT_EQ(200, http_request("GET", ep.url() + "/stt/k1?X-Amz-Signature=secretsig").status);
    json_object *s = stats_of(ep);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(3, stat_count(s, "PutObject", "200"));
    EXPECT_EQ(1, stat_count(s, "GetObject", "404"));
    EXPECT_EQ(1, stat_count(s, "GetObject", "200"));
    json_object *v;
    ASSERT_TRUE(json_object_object_get_ex(s, "bytes_in", &v));
    EXPECT_EQ(9, json_object_get_int64(v));
    ASSERT_TRUE(json_object_object_get_ex(s, "store", &v));
    json_object *objs;
    ASSERT_TRUE(json_object_object_get_ex(v, "objects", &objs));
    EXPECT_EQ(3, json_object_get_int64(objs));
    json_object_put(s);
  }
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  EXPECT_NE(text.find("\"PUT /stt/k0\" 200"), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /stt/missing\" 404"), std::string::npos) << text;
  EXPECT_EQ(text.find("secretsig"), std::string::npos) << text;  // queries are never logged
  std::remove(log.c_str());
}

TEST(S3Server, CommandLineErrorsAreOneLine) {
  std::string bin = asd_test::endpoint_bin();
  for (std::string args : {"-port 99999", "-bogus", "-bucket Bad_Name", "-access-key onlykey", "-max-body 0",
                           "-bind not-an-address -port 0"}) {
    std::string cmd = "timeout 30 " + bin + " " + args + " 2>&1 >/dev/null";
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 124) << args;
    EXPECT_NE(out.find("asyncdetect_endpoint"), std::string::npos) << args << ": " << out;
  }
  // --help documents the local default credentials.
  FILE *p = popen((bin + " --help").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(0, pclose(p));
  EXPECT_NE(out.find("ASDLOCALACCESSKEY"), std::string::npos);
  EXPECT_NE(out.find("asdlocal-secret-not-for-aws"), std::string::npos);
}
