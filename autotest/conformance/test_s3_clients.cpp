// S3 conformance of the local endpoint with real clients we did not write:
// the AWS CLI, boto3 (autotest/conformance/s3_boto3_check.py) and GDAL's
// /vsis3/ (gdalinfo, gdal_translate, and the VSI layer in process), all with
// SigV4 signing on.  Each test starts its own server on an ephemeral port.
//
// The clients run in a clean environment (no user config or credential
// files, no metadata service) so only what the test sets reaches them, and
// under `timeout` so a stuck client fails the test instead of hanging it.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include "cpl_conv.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"

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

// Runs a shell command with a clean AWS environment; returns the exit status
// and fills output with stdout+stderr.
int run(const std::string &cmd, std::string *output, const LocalEndpoint &ep,
        const std::string &secret = asd_test::kLocalSecretKey,
        const std::string &key = asd_test::kLocalAccessKey, int timeout_s = 180) {
  const char *path = std::getenv("PATH");
  const char *home = std::getenv("HOME");
  const char *pyenv = std::getenv("PYENV_ROOT");
  std::string hostport = ep.url().substr(std::string("http://").size());
  std::string env = "env -i PATH=" + shell_quote(path ? path : "/usr/bin:/bin") +
                    " HOME=" + shell_quote(home ? home : "/tmp") +
                    (pyenv ? " PYENV_ROOT=" + shell_quote(pyenv) : std::string()) +
                    " LANG=C.UTF-8 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null"
                    " AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1"
                    " AWS_ACCESS_KEY_ID=" + shell_quote(key) +
                    " AWS_SECRET_ACCESS_KEY=" + shell_quote(secret) +
                    " AWS_S3_ENDPOINT=" + hostport +
                    " AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE GDAL_HTTP_MAX_RETRY=0 CPL_VSIL_CURL_CHUNK_SIZE=65536";
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

std::string aws(const LocalEndpoint &ep) { return "aws --endpoint-url " + ep.url() + " "; }

std::string make_temp_file(const std::string &content) {
  char templ[] = "/tmp/asd-conf-XXXXXX";
  int fd = mkstemp(templ);
  if (fd < 0) return "";
  if (write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    close(fd);
    return "";
  }
  close(fd);
  return templ;
}

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Parses JSON printed by the CLI (NULL if it is not JSON).
json_object *parse_json(const std::string &s) { return json_tokener_parse(s.c_str()); }

std::string json_str(json_object *o, const char *key) {
  json_object *v = nullptr;
  if (!o || !json_object_object_get_ex(o, key, &v)) return "";
  return json_object_get_string(v);
}

}  // namespace

TEST(S3AwsCli, PutGetHeadListDeleteAndCp) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed (scripts/setup.sh installs it)";
  LocalEndpoint ep({"-bucket", "cli-bucket"});
  std::string out;
  std::string payload = "hello from the aws cli\n";
  std::string src = make_temp_file(payload);
  ASSERT_FALSE(src.empty());

  ASSERT_EQ(0, run(aws(ep) + "s3api put-object --bucket cli-bucket --key 'dir/a b.txt' --body " + src, &out, ep))
      << out;
  json_object *j = parse_json(out);
  EXPECT_NE(json_str(j, "ETag"), "") << out;
  std::string etag = json_str(j, "ETag");
  json_object_put(j);

  ASSERT_EQ(0, run(aws(ep) + "s3api head-object --bucket cli-bucket --key 'dir/a b.txt'", &out, ep)) << out;
  j = parse_json(out);
  ASSERT_NE(j, nullptr) << out;
  json_object *len = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(j, "ContentLength", &len));
  EXPECT_EQ(static_cast<int64_t>(payload.size()), json_object_get_int64(len));
  EXPECT_EQ(etag, json_str(j, "ETag"));
  json_object_put(j);

  std::string dst = src + ".out";
  ASSERT_EQ(0, run(aws(ep) + "s3api get-object --bucket cli-bucket --key 'dir/a b.txt' " + dst, &out, ep)) << out;
  EXPECT_EQ(payload, read_file(dst));

  ASSERT_EQ(0, run(aws(ep) + "s3 cp " + src + " s3://cli-bucket/cp/copied.txt", &out, ep)) << out;
  ASSERT_EQ(0, run(aws(ep) + "s3 cp s3://cli-bucket/cp/copied.txt " + dst, &out, ep)) << out;
  EXPECT_EQ(payload, read_file(dst));

  ASSERT_EQ(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep)) << out;
  j = parse_json(out);
  ASSERT_NE(j, nullptr) << out;
  json_object *contents = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(j, "Contents", &contents)) << out;
  ASSERT_EQ(2u, json_object_array_length(contents));
  EXPECT_EQ("cp/copied.txt", json_str(json_object_array_get_idx(contents, 0), "Key"));
  EXPECT_EQ("dir/a b.txt", json_str(json_object_array_get_idx(contents, 1), "Key"));
  json_object_put(j);

  ASSERT_EQ(0, run(aws(ep) + "s3api delete-objects --bucket cli-bucket --delete "
                              "'{\"Objects\":[{\"Key\":\"cp/copied.txt\"},{\"Key\":\"dir/a b.txt\"}]}'",
                   &out, ep))
      << out;
  j = parse_json(out);
  json_object *deleted = nullptr;
  ASSERT_TRUE(j && json_object_object_get_ex(j, "Deleted", &deleted)) << out;
  EXPECT_EQ(2u, json_object_array_length(deleted));
  json_object_put(j);

  EXPECT_NE(0, run(aws(ep) + "s3api head-object --bucket cli-bucket --key 'dir/a b.txt'", &out, ep));
  EXPECT_NE(out.find("404"), std::string::npos) << out;
  ASSERT_EQ(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep)) << out;
  EXPECT_EQ(out.find("\"Key\""), std::string::npos) << out;

  // The stats saw every operation the CLI made.
  std::string stats = ep.stats_json();
  EXPECT_NE(stats.find("\"PutObject\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"DeleteObjects\""), std::string::npos) << stats;
  std::remove(src.c_str());
  std::remove(dst.c_str());
}

TEST(S3AwsCli, WrongSecretIsRejected) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "cli-bucket"});
  std::string out;
  EXPECT_NE(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep, "not-the-secret"));
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  std::string src = make_temp_file("x");
  EXPECT_NE(0, run(aws(ep) + "s3api put-object --bucket cli-bucket --key forged --body " + src, &out, ep,
                   "not-the-secret"));
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  std::remove(src.c_str());
  // Nothing was written.
  ASSERT_EQ(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep)) << out;
  EXPECT_EQ(out.find("forged"), std::string::npos) << out;
}

TEST(S3AwsCli, UnknownAccessKeyIsRejected) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "cli-bucket"});
  std::string out;
  EXPECT_NE(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep, asd_test::kLocalSecretKey,
                   "AKIAUNKNOWN000000000"));
  EXPECT_NE(out.find("InvalidAccessKeyId"), std::string::npos) << out;
}

TEST(S3AwsCli, CustomCredentials) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "cli-bucket", "-access-key", "MYKEY", "-secret-key", "my/secret+key"});
  std::string out;
  EXPECT_EQ(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep, "my/secret+key", "MYKEY"))
      << out;
  EXPECT_NE(0, run(aws(ep) + "s3api list-objects-v2 --bucket cli-bucket", &out, ep));
  EXPECT_NE(out.find("InvalidAccessKeyId"), std::string::npos) << out;
}

TEST(S3Boto3, ConformanceScript) {
  std::string out;
  LocalEndpoint ep;
  if (run("python3 -c 'import boto3'", &out, ep) != 0) GTEST_SKIP() << "boto3 not installed: " << out;
  std::string script = asd_test::source_dir() + "/autotest/conformance/s3_boto3_check.py";
  int rc = run("python3 " + shell_quote(script) + " " + ep.url(), &out, ep);
  EXPECT_EQ(0, rc) << out;
  EXPECT_NE(out.find("ALL OK"), std::string::npos) << out;
}

TEST(S3Gdal, GdalinfoAndTranslateThroughVsis3) {
  if (!have_command("aws") || !have_command("gdalinfo")) GTEST_SKIP() << "aws CLI or gdal-bin missing";
  LocalEndpoint ep({"-bucket", "gdal-bucket"});
  std::string image = asd_test::data_dir() + "/scene_utm.tif";
  std::string out, local;
  ASSERT_EQ(0, run(aws(ep) + "s3 cp " + shell_quote(image) + " s3://gdal-bucket/imagery/scene.tif", &out, ep))
      << out;
  ASSERT_EQ(0, run("gdalinfo -checksum " + shell_quote(image), &local, ep)) << local;
  ASSERT_EQ(0, run("gdalinfo -checksum /vsis3/gdal-bucket/imagery/scene.tif", &out, ep)) << out;
  // Same checksums, size and georeferencing as the local file.
  auto tail_from = [](const std::string &s, const std::string &marker) {
    auto p = s.find(marker);
    return p == std::string::npos ? std::string() : s.substr(p);
  };
  EXPECT_FALSE(tail_from(local, "Size is").empty());
  EXPECT_EQ(tail_from(local, "Size is"), tail_from(out, "Size is")) << out;

  char dir_templ[] = "/tmp/asd-conf-gdal-XXXXXX";
  ASSERT_NE(mkdtemp(dir_templ), nullptr);
  std::string png = std::string(dir_templ) + "/scene.png";
  ASSERT_EQ(0, run("gdal_translate -q -of PNG /vsis3/gdal-bucket/imagery/scene.tif " + png, &out, ep)) << out;
  std::string a, b;
  ASSERT_EQ(0, run("gdalinfo -checksum " + png, &a, ep));
  auto checksums = [](const std::string &s) {
    std::string all;
    for (size_t p = s.find("Checksum="); p != std::string::npos; p = s.find("Checksum=", p + 1))
      all += s.substr(p, s.find('\n', p) - p) + ";";
    return all;
  };
  EXPECT_FALSE(checksums(local).empty());
  EXPECT_EQ(checksums(local), checksums(a)) << a;

  // Wrong secret: GDAL reports the server's refusal.
  EXPECT_NE(0, run("gdalinfo /vsis3/gdal-bucket/imagery/scene.tif", &out, ep, "not-the-secret"));
  EXPECT_NE(out.find("403"), std::string::npos) << out;
  std::remove(png.c_str());
  rmdir(dir_templ);
}

// GDAL's directory listing over /vsis3/ uses ListObjects V1 with delimiter
// and markers; exercised in process through the VSI API.
TEST(S3Gdal, VsiReadDirUsesListObjectsV1) {
  if (!have_command("aws")) GTEST_SKIP() << "aws CLI not installed";
  LocalEndpoint ep({"-bucket", "gdal-bucket"});
  std::string src = make_temp_file("0123456789");
  std::string out;
  for (const char *k : {"tree/a.txt", "tree/b.txt", "tree/sub/c.txt"})
    ASSERT_EQ(0, run(aws(ep) + "s3 cp " + src + " s3://gdal-bucket/" + k, &out, ep)) << out;
  std::remove(src.c_str());

  std::string hostport = ep.url().substr(7);
  CPLSetThreadLocalConfigOption("AWS_S3_ENDPOINT", hostport.c_str());
  CPLSetThreadLocalConfigOption("AWS_HTTPS", "NO");
  CPLSetThreadLocalConfigOption("AWS_VIRTUAL_HOSTING", "FALSE");
  CPLSetThreadLocalConfigOption("AWS_REGION", "us-east-1");
  CPLSetThreadLocalConfigOption("AWS_ACCESS_KEY_ID", asd_test::kLocalAccessKey);
  CPLSetThreadLocalConfigOption("AWS_SECRET_ACCESS_KEY", asd_test::kLocalSecretKey);
  CPLSetThreadLocalConfigOption("AWS_CONFIG_FILE", "/dev/null");
  CPLSetThreadLocalConfigOption("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
  CPLSetThreadLocalConfigOption("GDAL_HTTP_MAX_RETRY", "0");
  VSICurlClearCache();
  char **list = VSIReadDir("/vsis3/gdal-bucket/tree");
  std::string joined;
  for (int i = 0; list && list[i]; i++) joined += std::string(list[i]) + ";";
  CSLDestroy(list);
  EXPECT_NE(joined.find("a.txt;"), std::string::npos) << joined;
  EXPECT_NE(joined.find("b.txt;"), std::string::npos) << joined;
  EXPECT_NE(joined.find("sub;"), std::string::npos) << joined;
  VSIStatBufL st;
  ASSERT_EQ(0, VSIStatL("/vsis3/gdal-bucket/tree/sub/c.txt", &st));
  EXPECT_EQ(10, st.st_size);
  VSILFILE *f = VSIFOpenL("/vsis3/gdal-bucket/tree/a.txt", "rb");
  ASSERT_NE(f, nullptr);
  char buf[16] = {0};
  EXPECT_EQ(10u, VSIFReadL(buf, 1, 10, f));
  VSIFCloseL(f);
  EXPECT_EQ("0123456789", std::string(buf));
  VSICurlClearCache();
  for (const char *k : {"AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                        "GDAL_HTTP_MAX_RETRY"})
    CPLSetThreadLocalConfigOption(k, nullptr);
  std::string stats = ep.stats_json();
  EXPECT_NE(stats.find("\"ListObjects\""), std::string::npos) << stats;
}
