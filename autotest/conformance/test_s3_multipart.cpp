// Multipart uploads, copies and presigned URLs of the local endpoint, with the
// real clients users run: the AWS CLI (`aws s3 cp` switches to multipart above
// 8 MB; `aws s3api` for the individual calls and their errors; `aws s3
// presign`), curl for presigned URLs, boto3 (s3_boto3_multipart.py) and GDAL's
// /vsis3/ writer.  Plus raw HTTP for the bad inputs no client sends.  Each test
// starts its own server on an ephemeral loopback port.
//
// The clients run in a clean environment (no user config or credential files,
// no metadata service) and under `timeout`, so a stuck client fails the test
// instead of hanging it.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"

using asd_test::http_request;
using asd_test::HttpResult;
using asd_test::LocalEndpoint;

namespace {

std::string shell_quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Runs a shell command with a clean AWS environment pointed at ep; returns the
// exit status and fills output with stdout+stderr.  extra_env is prepended
// ("NAME=value ...").
int run(const std::string &cmd, std::string *output, const LocalEndpoint &ep, const std::string &extra_env = "",
        int timeout_s = 300) {
  const char *path = std::getenv("PATH");
  const char *home = std::getenv("HOME");
  const char *pyenv = std::getenv("PYENV_ROOT");
  std::string hostport = ep.url().substr(std::string("http://").size());
  std::string env = "env -i PATH=" + shell_quote(path ? path : "/usr/bin:/bin") +
                    " HOME=" + shell_quote(home ? home : "/tmp") +
                    (pyenv ? " PYENV_ROOT=" + shell_quote(pyenv) : std::string()) +
                    " LANG=C.UTF-8 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null"
                    " AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1"
                    " AWS_ACCESS_KEY_ID=" + shell_quote(asd_test::kLocalAccessKey) +
                    " AWS_SECRET_ACCESS_KEY=" + shell_quote(asd_test::kLocalSecretKey) +
                    " AWS_S3_ENDPOINT=" + hostport +
                    " AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE GDAL_HTTP_MAX_RETRY=0 " + extra_env;
  std::string full = env + " timeout " + std::to_string(timeout_s) + " sh -c " + shell_quote(cmd) + " 2>&1";
  FILE *p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool have_command(const std::string &name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// `aws` with --no-progress-friendly flags for the endpoint.
std::string aws(const LocalEndpoint &ep) { return "aws --endpoint-url " + ep.url() + " "; }

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/asd-conf-mpu-XXXXXX";
    path_ = mkdtemp(templ) ? templ : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string &name) const { return path_ + "/" + name; }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t k = 0; k < 8 && i + k < n; k++) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

void write_file(const std::string &path, const std::string &data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json_object *parse_json(const std::string &s) {
  // The CLI may print warnings before the JSON document.
  size_t brace = s.find('{');
  return brace == std::string::npos ? nullptr : json_tokener_parse(s.c_str() + brace);
}

std::string json_str(json_object *o, const char *key) {
  json_object *v = nullptr;
  if (!o || !json_object_object_get_ex(o, key, &v)) return "";
  return json_object_get_string(v);
}

// Trims trailing white space (command output).
std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

void expect_s3_error(const HttpResult &r, int status, const std::string &code) {
  EXPECT_EQ(status, r.status) << r.body;
  EXPECT_NE(r.body.find("<Code>" + code + "</Code>"), std::string::npos) << r.body;
}

// The text between <tag> and </tag>, "" if absent.
std::string xml_value(const std::string &xml, const std::string &tag) {
  size_t a = xml.find("<" + tag + ">");
  if (a == std::string::npos) return "";
  a += tag.size() + 2;
  size_t b = xml.find("</" + tag + ">", a);
  return b == std::string::npos ? "" : xml.substr(a, b - a);
}

// Nothing of an upload is left in the data directory (parts, folders).
size_t upload_leftovers(const LocalEndpoint &ep) {
  size_t n = 0;
  std::error_code ec;
  for (auto &e : std::filesystem::recursive_directory_iterator(ep.data_dir() + "/.uploads", ec)) {
    (void)e;
    n++;
  }
  return n;
}

}  // namespace

// `aws s3 cp` of a 20 MB file: the CLI uploads it in three 8 MiB parts and
// downloads it with ranged GETs; the content must survive both ways.
TEST(S3MultipartCli, CpTwentyMegabytesUpAndDown) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "cli-mpu"});
  TempDir tmp;
  std::string data = random_bytes(20 * 1000 * 1000 + 17, 1);
  write_file(tmp.file("big.bin"), data);
  std::string out;
  ASSERT_EQ(0, run(aws(ep) + "s3 cp --only-show-errors " + tmp.file("big.bin") + " s3://cli-mpu/dir/big.bin", &out,
                   ep))
      << out;
  ASSERT_EQ(0, run(aws(ep) + "s3api head-object --bucket cli-mpu --key dir/big.bin", &out, ep)) << out;
  json_object *j = parse_json(out);
  ASSERT_NE(j, nullptr) << out;
  json_object *len = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(j, "ContentLength", &len));
  EXPECT_EQ(static_cast<int64_t>(data.size()), json_object_get_int64(len));
  // The multipart ETag form: hex, "-", number of parts (8 MiB chunks -> 3).
  std::string etag = json_str(j, "ETag");
  json_object_put(j);
  EXPECT_EQ(36u, etag.size()) << etag;  // quotes, 32 hex digits, "-3"
  EXPECT_NE(etag.find("-3\""), std::string::npos) << etag;

  ASSERT_EQ(0, run(aws(ep) + "s3 cp --only-show-errors s3://cli-mpu/dir/big.bin " + tmp.file("down.bin"), &out, ep))
      << out;
  EXPECT_TRUE(read_file(tmp.file("down.bin")) == data) << "downloaded content differs";
  // The upload is gone once completed.
  ASSERT_EQ(0, run(aws(ep) + "s3api list-multipart-uploads --bucket cli-mpu", &out, ep)) << out;
  EXPECT_EQ(out.find("UploadId"), std::string::npos) << out;
  EXPECT_EQ(0u, upload_leftovers(ep));
  std::string stats = ep.stats_json();
  EXPECT_NE(stats.find("\"CreateMultipartUpload\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"UploadPart\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"CompleteMultipartUpload\""), std::string::npos) << stats;
}

// The individual calls through `aws s3api`, with the errors S3 gives.
TEST(S3MultipartCli, S3apiCallsAbortAndErrors) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "api-mpu"});
  TempDir tmp;
  std::string p1 = random_bytes(5 * 1024 * 1024, 2), p2 = "a small last part\n";
  write_file(tmp.file("p1"), p1);
  write_file(tmp.file("p2"), p2);
  std::string out;
  const std::string b = " --bucket api-mpu --key obj";
  ASSERT_EQ(0, run(aws(ep) + "s3api create-multipart-upload" + b + " --content-type text/x-parts", &out, ep)) << out;
  json_object *j = parse_json(out);
  std::string uid = json_str(j, "UploadId");
  json_object_put(j);
  ASSERT_FALSE(uid.empty()) << out;
  const std::string u = b + " --upload-id " + uid;
  std::string etag[3];
  for (int n = 1; n <= 2; n++) {
    ASSERT_EQ(0, run(aws(ep) + "s3api upload-part" + u + " --part-number " + std::to_string(n) + " --body " +
                         tmp.file("p" + std::to_string(n)),
                     &out, ep))
        << out;
    j = parse_json(out);
    etag[n] = json_str(j, "ETag");
    json_object_put(j);
    ASSERT_FALSE(etag[n].empty()) << out;
  }
  ASSERT_EQ(0, run(aws(ep) + "s3api list-parts" + u, &out, ep)) << out;
  j = parse_json(out);
  json_object *parts = nullptr;
  ASSERT_TRUE(j && json_object_object_get_ex(j, "Parts", &parts)) << out;
  ASSERT_EQ(2u, json_object_array_length(parts));
  EXPECT_EQ(etag[2], json_str(json_object_array_get_idx(parts, 1), "ETag"));
  json_object_put(j);
  ASSERT_EQ(0, run(aws(ep) + "s3api list-multipart-uploads --bucket api-mpu", &out, ep)) << out;
  EXPECT_NE(out.find(uid), std::string::npos) << out;

  auto complete = [&](const std::string &parts_json, std::string *o) {
    write_file(tmp.file("mpu.json"), "{\"Parts\":" + parts_json + "}");
    return run(aws(ep) + "s3api complete-multipart-upload" + u + " --multipart-upload file://" + tmp.file("mpu.json"),
               o, ep);
  };
  auto part = [&](int n, const std::string &e) {
    std::string q;
    for (char c : e) q += c == '"' ? std::string("\\\"") : std::string(1, c);
    return "{\"PartNumber\":" + std::to_string(n) + ",\"ETag\":\"" + q + "\"}";
  };
  // Wrong ETag for part 2: InvalidPart; descending order: InvalidPartOrder.
  EXPECT_NE(0, complete("[" + part(1, etag[1]) + "," + part(2, etag[1]) + "]", &out));
  EXPECT_NE(out.find("InvalidPart"), std::string::npos) << out;
  EXPECT_EQ(out.find("InvalidPartOrder"), std::string::npos) << out;
  EXPECT_NE(0, complete("[" + part(2, etag[2]) + "," + part(1, etag[1]) + "]", &out));
  EXPECT_NE(out.find("InvalidPartOrder"), std::string::npos) << out;
  // A small part that is not the last: EntityTooSmall.
  ASSERT_EQ(0, run(aws(ep) + "s3api upload-part" + u + " --part-number 3 --body " + tmp.file("p2"), &out, ep)) << out;
  EXPECT_NE(0, complete("[" + part(2, etag[2]) + "," + part(3, etag[2]) + "]", &out));
  EXPECT_NE(out.find("EntityTooSmall"), std::string::npos) << out;
  // Nothing became visible meanwhile.
  EXPECT_NE(0, run(aws(ep) + "s3api head-object" + b, &out, ep));
  // The right list completes.
  ASSERT_EQ(0, complete("[" + part(1, etag[1]) + "," + part(2, etag[2]) + "]", &out)) << out;
  j = parse_json(out);
  EXPECT_NE(json_str(j, "ETag").find("-2\""), std::string::npos) << out;
  json_object_put(j);
  ASSERT_EQ(0, run(aws(ep) + "s3api get-object" + b + " " + tmp.file("got"), &out, ep)) << out;
  EXPECT_NE(out.find("text/x-parts"), std::string::npos) << out;
  EXPECT_TRUE(read_file(tmp.file("got")) == p1 + p2);
  // Completed: the id is dead.
  EXPECT_NE(0, run(aws(ep) + "s3api list-parts" + u, &out, ep));
  EXPECT_NE(out.find("NoSuchUpload"), std::string::npos) << out;

  // Abort: the parts go, the id is dead, no object appears.
  ASSERT_EQ(0, run(aws(ep) + "s3api create-multipart-upload --bucket api-mpu --key gone", &out, ep)) << out;
  j = parse_json(out);
  std::string uid2 = json_str(j, "UploadId");
  json_object_put(j);
  const std::string u2 = " --bucket api-mpu --key gone --upload-id " + uid2;
  ASSERT_EQ(0, run(aws(ep) + "s3api upload-part" + u2 + " --part-number 1 --body " + tmp.file("p2"), &out, ep)) << out;
  EXPECT_GT(upload_leftovers(ep), 0u);
  ASSERT_EQ(0, run(aws(ep) + "s3api abort-multipart-upload" + u2, &out, ep)) << out;
  EXPECT_EQ(0u, upload_leftovers(ep));
  EXPECT_NE(0, run(aws(ep) + "s3api upload-part" + u2 + " --part-number 2 --body " + tmp.file("p2"), &out, ep));
  EXPECT_NE(out.find("NoSuchUpload"), std::string::npos) << out;
  EXPECT_NE(0, run(aws(ep) + "s3api abort-multipart-upload" + u2, &out, ep));
  EXPECT_NE(out.find("NoSuchUpload"), std::string::npos) << out;
  EXPECT_NE(0, run(aws(ep) + "s3api head-object --bucket api-mpu --key gone", &out, ep));
}

// `aws s3 presign` then curl.  The CLI v1 makes SigV2 query strings by
// default in us-east-1, SigV4 ones when s3.signature_version = s3v4: both work.
TEST(S3Presign, CliPresignThenCurl) {
  if (!have_command("aws") || !have_command("curl")) GTEST_SKIP() << "aws CLI or curl missing";
  LocalEndpoint ep({"-bucket", "ps-bucket"});
  TempDir tmp;
  std::string data = random_bytes(300000, 3);
  write_file(tmp.file("obj"), data);
  write_file(tmp.file("v4.cfg"), "[default]\ns3 =\n    signature_version = s3v4\n");
  std::string out;
  ASSERT_EQ(0, run(aws(ep) + "s3 cp --only-show-errors " + tmp.file("obj") + " 's3://ps-bucket/a dir/obj'", &out, ep))
      << out;
  for (const std::string &cfg : std::vector<std::string>{"", "AWS_CONFIG_FILE=" + tmp.file("v4.cfg")}) {
    SCOPED_TRACE(cfg.empty() ? "SigV2 (CLI default)" : "SigV4");
    ASSERT_EQ(0, run(aws(ep) + "s3 presign 's3://ps-bucket/a dir/obj' --expires-in 600", &out, ep, cfg)) << out;
    std::string url = trim(out);
    EXPECT_EQ(0u, url.rfind(ep.url(), 0)) << url;
    EXPECT_NE(url.find(cfg.empty() ? "Signature=" : "X-Amz-Signature="), std::string::npos) << url;
    ASSERT_EQ(0, run("curl -sS -o " + tmp.file("via-curl") + " -w '%{http_code}' " + shell_quote(url), &out, ep))
        << out;
    EXPECT_EQ("200", out);
    EXPECT_TRUE(read_file(tmp.file("via-curl")) == data) << "presigned GET returned other bytes";
    // A tampered signature, and a URL used for another key, are refused.
    std::string forged = url;
    size_t sig = forged.find("Signature=");
    // '0'/'1' differ from each other whatever the case rules: flipping a hex
    // 'a' to 'A' (as this test once did) is no tampering to a lenient reader.
    forged[sig + 10] = forged[sig + 10] == '0' ? '1' : '0';
    run("curl -s " + shell_quote(forged), &out, ep);
    EXPECT_NE(out.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << out;
    std::string other = url;
    other.replace(other.find("/obj?"), 5, "/obX?");
    run("curl -s " + shell_quote(other), &out, ep);
    EXPECT_NE(out.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << out;

    // Expired: 403 AccessDenied "Request has expired", as S3.
    ASSERT_EQ(0, run(aws(ep) + "s3 presign 's3://ps-bucket/a dir/obj' --expires-in 1", &out, ep, cfg)) << out;
    std::string short_url = trim(out);
    sleep(2);
    ASSERT_EQ(0, run("curl -s -w '\\n%{http_code}' " + shell_quote(short_url), &out, ep)) << out;
    EXPECT_NE(out.find("<Code>AccessDenied</Code>"), std::string::npos) << out;
    EXPECT_NE(out.find("Request has expired"), std::string::npos) << out;
    EXPECT_EQ("403", out.substr(out.size() - 3)) << out;
  }
}

TEST(S3Boto3Multipart, ConformanceScript) {
  std::string out;
  LocalEndpoint ep;
  if (run("python3 -c 'import boto3'", &out, ep) != 0) GTEST_SKIP() << "boto3 not installed: " << out;
  std::string script = asd_test::source_dir() + "/autotest/conformance/s3_boto3_multipart.py";
  int rc = run("python3 " + shell_quote(script) + " " + ep.url(), &out, ep);
  EXPECT_EQ(0, rc) << out;
  EXPECT_NE(out.find("ALL OK"), std::string::npos) << out;
  EXPECT_EQ(0u, upload_leftovers(ep));
}

// GDAL writes a GeoTIFF larger than one chunk to /vsis3/: with
// VSIS3_CHUNK_SIZE=5 (MiB) it goes up as a multipart upload; gdalinfo then
// reads it back through /vsis3/ with the same checksums as a local copy.
TEST(S3GdalMultipart, GdalTranslateWritesLargeFileToVsis3) {
  if (!have_command("gdal_translate") || !have_command("aws")) GTEST_SKIP() << "gdal-bin or aws CLI missing";
  LocalEndpoint ep({"-bucket", "gdal-mpu"});
  TempDir tmp;
  std::string image = asd_test::data_dir() + "/scene_utm.tif";
  std::string out, local;
  const std::string opts = " -q -of GTiff -co COMPRESS=NONE -co TILED=YES ";
  ASSERT_EQ(0, run("gdal_translate" + opts + shell_quote(image) + " " + tmp.file("local.tif"), &out, ep)) << out;
  ASSERT_GT(std::filesystem::file_size(tmp.file("local.tif")), 10u * 1024 * 1024);
  ASSERT_EQ(0, run("gdal_translate" + opts + shell_quote(image) + " /vsis3/gdal-mpu/out/scene.tif", &out, ep,
                   "VSIS3_CHUNK_SIZE=5 CPL_VSIL_USE_TEMP_FILE_FOR_RANDOM_WRITE=YES"))
      << out;
  // It went up in parts: the multipart ETag and the operations in the stats.
  ASSERT_EQ(0, run(aws(ep) + "s3api head-object --bucket gdal-mpu --key out/scene.tif", &out, ep)) << out;
  json_object *j = parse_json(out);
  std::string etag = json_str(j, "ETag");
  json_object_put(j);
  EXPECT_NE(etag.find('-'), std::string::npos) << etag;
  std::string stats = ep.stats_json();
  EXPECT_NE(stats.find("\"CompleteMultipartUpload\""), std::string::npos) << stats;
  EXPECT_EQ(0u, upload_leftovers(ep));

  ASSERT_EQ(0, run("gdalinfo -checksum " + tmp.file("local.tif"), &local, ep)) << local;
  ASSERT_EQ(0, run("gdalinfo -checksum /vsis3/gdal-mpu/out/scene.tif", &out, ep)) << out;
  auto checksums = [](const std::string &s) {
    std::string all;
    for (size_t p = s.find("Checksum="); p != std::string::npos; p = s.find("Checksum=", p + 1))
      all += s.substr(p, s.find('\n', p) - p) + ";";
    return all;
  };
  EXPECT_FALSE(checksums(local).empty()) << local;
  EXPECT_EQ(checksums(local), checksums(out)) << out;
  // And byte for byte, through the CLI.
  ASSERT_EQ(0, run(aws(ep) + "s3 cp --only-show-errors s3://gdal-mpu/out/scene.tif " + tmp.file("back.tif"), &out, ep))
      << out;
  EXPECT_TRUE(read_file(tmp.file("back.tif")) == read_file(tmp.file("local.tif")));
}

// What no well-behaved client sends: ids that are paths, part numbers out of
// range, broken XML, copies from nowhere.
TEST(S3MultipartBadInput, RawRequests) {
  LocalEndpoint ep({"-no-auth", "-bucket", "raw"});
  const std::string base = ep.url() + "/raw/k";
  HttpResult r = http_request("POST", base + "?uploads");
  ASSERT_EQ(200, r.status) << r.body;
  std::string uid = xml_value(r.body, "UploadId");
  ASSERT_EQ(32u, uid.size()) << r.body;
  EXPECT_EQ("k", xml_value(r.body, "Key"));
  expect_s3_error(http_request("PUT", base + "?partNumber=0&uploadId=" + uid, "x"), 400, "InvalidArgument");
  expect_s3_error(http_request("PUT", base + "?partNumber=10001&uploadId=" + uid, "x"), 400, "InvalidArgument");
  expect_s3_error(http_request("PUT", base + "?partNumber=abc&uploadId=" + uid, "x"), 400, "InvalidArgument");
  for (std::string bad : {"..%2F..%2F..%2Fetc", "..", "%2Fetc%2Fpasswd", "0123456789ABCDEF0123456789ABCDEF"}) {
    expect_s3_error(http_request("PUT", base + "?partNumber=1&uploadId=" + bad, "x"), 404, "NoSuchUpload");
    expect_s3_error(http_request("GET", base + "?uploadId=" + bad), 404, "NoSuchUpload");
    expect_s3_error(http_request("DELETE", base + "?uploadId=" + bad), 404, "NoSuchUpload");
  }
  // The id belongs to key k of bucket raw only.
  expect_s3_error(http_request("PUT", ep.url() + "/raw/other?partNumber=1&uploadId=" + uid, "x"), 404, "NoSuchUpload");
  expect_s3_error(http_request("PUT", ep.url() + "/nobucket/k?partNumber=1&uploadId=" + uid, "x"), 404,
                  "NoSuchBucket");
  r = http_request("PUT", base + "?partNumber=1&uploadId=" + uid, "part one");
  ASSERT_EQ(200, r.status) << r.body;
  std::string e1 = r.header("etag");
  // A Content-MD5 that does not match the part is BadDigest, and the part stays as it was.
  expect_s3_error(http_request("PUT", base + "?partNumber=1&uploadId=" + uid, "changed",
                               {"Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg=="}),
                  400, "BadDigest");
  for (std::string xml : {"", "not xml", "<CompleteMultipartUpload></CompleteMultipartUpload>",
                          "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part>"
                          "</CompleteMultipartUpload>",
                          "<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>"})
    expect_s3_error(http_request("POST", base + "?uploadId=" + uid, xml), 400, "MalformedXML");
  r = http_request("POST", base + "?uploadId=" + uid,
                   "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>" + e1 +
                       "</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>");
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_NE(xml_value(r.body, "ETag").find("-1"), std::string::npos) << r.body;
  EXPECT_EQ("part one", http_request("GET", base).body);

  // CopyObject from nowhere, or with a malformed source.
  expect_s3_error(http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: raw/missing"}), 404, "NoSuchKey");
  expect_s3_error(http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: nobucket/k"}), 404,
                  "NoSuchBucket");
  expect_s3_error(http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: raw"}), 400, "InvalidArgument");
  expect_s3_error(http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: raw/../../x"}), 400,
                  "InvalidArgument");
  expect_s3_error(http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: raw/k",
                                                                 "x-amz-metadata-directive: MERGE"}),
                  400, "InvalidArgument");
  r = http_request("PUT", ep.url() + "/raw/c", "", {"x-amz-copy-source: /raw/k"});
  EXPECT_EQ(200, r.status) << r.body;
  EXPECT_NE(r.body.find("<CopyObjectResult"), std::string::npos) << r.body;
  EXPECT_EQ("part one", http_request("GET", ep.url() + "/raw/c").body);
  // Everything stays inside the data directory; the completed upload left nothing.
  EXPECT_EQ(0u, upload_leftovers(ep));
  std::string parent = std::filesystem::path(ep.data_dir()).parent_path().string();
  EXPECT_FALSE(std::filesystem::exists(parent + "/etc"));
}

// Uploads in progress survive a restart of the server on the same data directory.
TEST(S3MultipartRestart, UploadSurvivesRestart) {
  TempDir data;
  std::string uid, e1;
  {
    LocalEndpoint ep({"-no-auth", "-bucket", "keep", "-data-dir", data.path()});
    HttpResult r = http_request("POST", ep.url() + "/keep/obj?uploads");
    uid = xml_value(r.body, "UploadId");
    ASSERT_EQ(32u, uid.size()) << r.body;
    r = http_request("PUT", ep.url() + "/keep/obj?partNumber=1&uploadId=" + uid, "kept across restarts");
    ASSERT_EQ(200, r.status);
    e1 = r.header("etag");
  }
  LocalEndpoint ep({"-no-auth", "-data-dir", data.path()});
  HttpResult r = http_request("GET", ep.url() + "/keep?uploads");
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_NE(r.body.find(uid), std::string::npos) << r.body;
  r = http_request("POST", ep.url() + "/keep/obj?uploadId=" + uid,
                   "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + e1 +
                       "</ETag></Part></CompleteMultipartUpload>");
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ("kept across restarts", http_request("GET", ep.url() + "/keep/obj").body);
}
