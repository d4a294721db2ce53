// The wire as real AWS has it (issue 12 parts 1-4), against the local
// endpoint served over HTTPS with a CA made for the test (asd_test_pki.h):
//   - the project's S3 client over TLS with AWS_CA_BUNDLE; an untrusted CA
//     and a certificate for another host are refused, each with one line
//     naming the TLS problem;
//   - boto3 (s3_boto3_wire.py) and the AWS CLI over the same TLS endpoint:
//     encryption headers, required encryption, expected bucket owner,
//     checksums, region redirects, virtual-hosted addressing;
//   - the endpoint's own refusals of bad -tls-*/-bucket options (one line).
// No test asserts a duration.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asd_test_paths.h"
#include "asd_test_pki.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_s3.h"

using asd_test::LocalEndpoint;
using asd_test::TestPki;

namespace {

// The names every server certificate here carries (unless a test wants another).
const std::vector<std::string> kServerNames = {"DNS:localhost", "IP:127.0.0.1", "DNS:s3.asd.test",
                                               "DNS:*.s3.asd.test"};

std::string shell_quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs cmd in a clean AWS environment (no user files, the local keys, the
// test CA as AWS_CA_BUNDLE); returns the exit status, output in *out.
int run_clean(const std::string &cmd, const std::string &ca, std::string *out, int timeout_s = 180) {
  const char *path = std::getenv("PATH");
  const char *home = std::getenv("HOME");
  const char *pyenv = std::getenv("PYENV_ROOT");
  std::string env = "env -i PATH=" + shell_quote(path ? path : "/usr/bin:/bin") +
                    " HOME=" + shell_quote(home ? home : "/tmp") +
                    (pyenv ? " PYENV_ROOT=" + shell_quote(pyenv) : std::string()) +
                    " LANG=C.UTF-8 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null"
                    " AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1"
                    " AWS_ACCESS_KEY_ID=" + std::string(asd_test::kLocalAccessKey) +
                    " AWS_SECRET_ACCESS_KEY=" + std::string(asd_test::kLocalSecretKey) +
                    " AWS_CA_BUNDLE=" + shell_quote(ca);
  std::string full = env + " timeout " + std::to_string(timeout_s) + " sh -c " + shell_quote(cmd) + " 2>&1";
  FILE *p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::string o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
  int st = pclose(p);
  if (out) *out = o;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool have_boto3() { return std::system("python3 -c 'import boto3' >/dev/null 2>&1") == 0; }

int count_lines(const std::string &s) {
  int n = 0;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    if (nl > start) n++;
    start = nl + 1;
  }
  return n;
}

class Wire : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("AWS_CA_BUNDLE"); }
};

// The project's client over HTTPS: every S3 call it makes, verified against
// the test CA; the endpoint prints an https:// URL.
TEST_F(Wire, OwnClientOverTls) {
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "tls-bkt"});
  ASSERT_EQ(0u, ep.url().rfind("https://127.0.0.1:", 0)) << ep.url();
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  const std::string body(70000, 'z');
  ASSERT_EQ(0, asd_s3_put_object(ctx, "tls-bkt", "dir/a b+c.bin", body.data(), body.size(), "image/tiff", nullptr,
                                 &err))
      << err.message;
  asd_buf got;
  asd_buf_init(&got);
  ASSERT_EQ(0, asd_s3_get_object(ctx, "tls-bkt", "dir/a b+c.bin", 1 << 20, &got, nullptr, &err)) << err.message;
  EXPECT_EQ(body, std::string(reinterpret_cast<const char *>(got.data), got.len));
  asd_buf_free(&got);
  asd_s3_object_info info;
  ASSERT_EQ(0, asd_s3_head_object(ctx, "tls-bkt", "dir/a b+c.bin", &info, &err)) << err.message;
  EXPECT_EQ(70000, info.size);
  asd_s3_list_result lr;
  memset(&lr, 0, sizeof lr);
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "tls-bkt", "dir/", nullptr, 1000, 0, &lr, &err)) << err.message;
  EXPECT_EQ(1u, lr.n_entries);
  asd_s3_list_result_free(&lr);
  const char *keys[] = {"dir/a b+c.bin"};
  asd_s3_delete_result dr;
  ASSERT_EQ(0, asd_s3_delete_objects(ctx, "tls-bkt", keys, 1, &dr, &err)) << err.message;
  EXPECT_EQ(1u, dr.deleted);
  asd_s3_delete_result_free(&dr);
  asd_aws_context_free(ctx);
  EXPECT_NE("", ep.stats_json()) << "the stats page over HTTPS";
}

// Over HTTPS the client's PutObject carries a CRC-32C the endpoint verified
// and stored (a checksum it did not send could not be read back).
TEST_F(Wire, OwnClientSendsCrc32cOverTls) {
  if (!have_boto3()) GTEST_SKIP() << "python3 with boto3 is not available";
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "tls-bkt"});
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  ASSERT_EQ(0, asd_s3_put_object(ctx, "tls-bkt", "tile.bin", "123456789", 9, nullptr, nullptr, &err)) << err.message;
  asd_aws_context_free(ctx);
  std::string out;
  std::string py =
      "import boto3\n"
      "from botocore.config import Config\n"
      "s3 = boto3.client('s3', endpoint_url='" + ep.url() + "', config=Config(s3={'addressing_style': 'path'}))\n"
      "h = s3.head_object(Bucket='tls-bkt', Key='tile.bin', ChecksumMode='ENABLED')\n"
      "print('crc32c=' + str(h.get('ChecksumCRC32C')))\n";
  ASSERT_EQ(0, run_clean("python3 -c " + shell_quote(py), pki.ca_path(), &out)) << out;
  // CRC-32C("123456789") = 0xE3069283, in base64.
  EXPECT_NE(std::string::npos, out.find("crc32c=4waSgw==")) << out;
}

// A CA the client was not given: refused, one line naming the certificate problem.
TEST_F(Wire, UntrustedCaIsRefused) {
  TestPki pki, other("some other CA");
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "tls-bkt"});
  setenv("AWS_CA_BUNDLE", other.ca_path().c_str(), 1);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  EXPECT_EQ(-1, asd_s3_put_object(ctx, "tls-bkt", "k", "x", 1, nullptr, nullptr, &err));
  std::string msg = err.message;
  EXPECT_NE(std::string::npos, msg.find("TLS")) << msg;
  EXPECT_NE(std::string::npos, msg.find("certificate")) << msg;
  EXPECT_EQ(1, count_lines(msg)) << msg;
  asd_aws_context_free(ctx);
}

// A certificate issued by the trusted CA, but for another host name.
TEST_F(Wire, CertificateForAnotherHostIsRefused) {
  TestPki pki;
  auto leaf = pki.issue("server", {"DNS:elsewhere.example"});
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "tls-bkt"});
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  EXPECT_EQ(-1, asd_s3_head_bucket(ctx, "tls-bkt", &err));
  std::string msg = err.message;
  EXPECT_NE(std::string::npos, msg.find("TLS")) << msg;
  EXPECT_NE(std::string::npos, msg.find("127.0.0.1")) << msg;
  EXPECT_EQ(1, count_lines(msg)) << msg;
  asd_aws_context_free(ctx);
}

// boto3 (a client we did not write) over the TLS endpoint: see s3_boto3_wire.py.
TEST_F(Wire, Boto3OverTls) {
  if (!have_boto3()) GTEST_SKIP() << "python3 with boto3 is not available";
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-domain", "s3.asd.test", "-bucket", "wire-plain",
                    "-bucket", "wire-eu@eu-west-1", "-bucket", "wire-kms,owner=111122223333,require-sse=aws:kms"});
  std::string out;
  int rc = run_clean("python3 " + shell_quote(asd_test::source_dir() + "/autotest/conformance/s3_boto3_wire.py") +
                         " " + ep.url(),
                     pki.ca_path(), &out);
  EXPECT_EQ(0, rc) << out;
  EXPECT_NE(std::string::npos, out.find("all boto3 wire checks passed")) << out;
}

// boto3 at its default checksum settings (s3_boto3_chunked.py): over HTTPS
// PutObject and UploadPart go out aws-chunked with a trailing CRC32, which
// the endpoint decodes, verifies and stores; over HTTP the CRC32 is a header.
TEST_F(Wire, Boto3DefaultChecksumsOverTls) {
  if (!have_boto3()) GTEST_SKIP() << "python3 with boto3 is not available";
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "chunked"});
  std::string out;
  int rc = run_clean("python3 " + shell_quote(asd_test::source_dir() + "/autotest/conformance/s3_boto3_chunked.py") +
                         " " + ep.url() + " chunked",
                     pki.ca_path(), &out);
  EXPECT_EQ(0, rc) << out;
  EXPECT_NE(std::string::npos, out.find("aws-chunked + trailing CRC32")) << out;
  EXPECT_NE(std::string::npos, out.find("all boto3 default-checksum checks passed")) << out;
}

TEST_F(Wire, Boto3DefaultChecksumsOverHttp) {
  if (!have_boto3()) GTEST_SKIP() << "python3 with boto3 is not available";
  LocalEndpoint ep({"-bucket", "chunked"});
  std::string out;
  int rc = run_clean("python3 " + shell_quote(asd_test::source_dir() + "/autotest/conformance/s3_boto3_chunked.py") +
                         " " + ep.url() + " chunked",
                     "", &out);
  EXPECT_EQ(0, rc) << out;
  EXPECT_NE(std::string::npos, out.find("(CRC32 header)")) << out;
  EXPECT_NE(std::string::npos, out.find("all boto3 default-checksum checks passed")) << out;
}

// The AWS CLI over the TLS endpoint with AWS_CA_BUNDLE, at its default
// checksum settings: `aws s3 cp` uploads a small file with PutObject and a
// 12 MB one in parts, both aws-chunked with a trailing CRC32 (its --debug
// log shows the form), and both read back byte for byte.
TEST_F(Wire, AwsCliOverTls) {
  if (std::system("command -v aws >/dev/null 2>&1") != 0) GTEST_SKIP() << "the AWS CLI is not installed";
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "cli-bkt"});
  std::string out;
  std::string cli = "aws --endpoint-url " + ep.url();
  std::string cmd = "d=$(mktemp -d); trap 'rm -rf $d' EXIT; echo tls > $d/x.txt; "
                    "head -c 12582999 /dev/urandom > $d/big.bin; " +
                    cli + " s3 cp $d/x.txt s3://cli-bkt/x.txt --debug 2> $d/debug.log && " +
                    cli + " s3 cp $d/big.bin s3://cli-bkt/big.bin && " +
                    cli + " s3 cp s3://cli-bkt/big.bin $d/back.bin && cmp $d/big.bin $d/back.bin && " +
                    cli + " s3 cp s3://cli-bkt/x.txt - && " + cli + " s3 ls s3://cli-bkt/ && "
                    "grep -c STREAMING-UNSIGNED-PAYLOAD-TRAILER $d/debug.log";
  ASSERT_EQ(0, run_clean(cmd, pki.ca_path(), &out)) << out;
  EXPECT_NE(std::string::npos, out.find("x.txt")) << out;
  EXPECT_NE(std::string::npos, out.find("12582999 big.bin")) << out;
  EXPECT_NE(std::string::npos, out.find("tls\n")) << out;
  TestPki other("not the server's CA");
  EXPECT_NE(0, run_clean("aws --endpoint-url " + ep.url() + " s3 ls s3://cli-bkt/", other.ca_path(), &out)) << out;
  EXPECT_NE(std::string::npos, out.find("SSL")) << out;
}

// Virtual-hosted addressing over TLS with the project's client: the bucket
// in the host name (BUCKET.s3.asd.test, verified against the certificate's
// *.s3.asd.test), reached through the test-only ASD_RESOLVE pin; the
// endpoint's access log shows the path without the bucket.
TEST_F(Wire, OwnClientVirtualHostedOverTls) {
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  char logt[] = "/tmp/asd-wire-log-XXXXXX";
  int lfd = mkstemp(logt);
  ASSERT_GE(lfd, 0);
  close(lfd);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-domain", "s3.asd.test", "-bucket", "vh-bkt",
                    "-access-log", logt});
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  std::string port = std::to_string(ep.port());
  setenv("ASD_RESOLVE", ("vh-bkt.s3.asd.test:" + port + ":127.0.0.1").c_str(), 1);
  setenv("AWS_S3_ADDRESSING_STYLE", "virtual", 1);
  asd_aws_config c;
  asd_aws_config_init(&c);
  std::string url = "https://s3.asd.test:" + port;
  c.endpoint_url = url.c_str();
  c.access_key_id = asd_test::kLocalAccessKey;
  c.secret_access_key = asd_test::kLocalSecretKey;
  c.region = "us-east-1";
  c.max_attempts = 1;
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_aws_context_new(&c, &err);
  unsetenv("ASD_RESOLVE");
  unsetenv("AWS_S3_ADDRESSING_STYLE");
  ASSERT_NE(nullptr, ctx) << err.message;
  EXPECT_EQ(0, asd_aws_context_endpoint(ctx, ASD_AWS_S3)->path_style);
  ASSERT_EQ(0, asd_s3_put_object(ctx, "vh-bkt", "v/k.txt", "hosted", 6, nullptr, nullptr, &err)) << err.message;
  asd_buf got;
  asd_buf_init(&got);
  ASSERT_EQ(0, asd_s3_get_object(ctx, "vh-bkt", "v/k.txt", 1024, &got, nullptr, &err)) << err.message;
  EXPECT_EQ("hosted", std::string(reinterpret_cast<const char *>(got.data), got.len));
  asd_buf_free(&got);
  ASSERT_EQ(0, asd_s3_head_bucket(ctx, "vh-bkt", &err)) << err.message;
  asd_aws_context_free(ctx);
  ep.stop();
  std::string log;
  FILE *f = fopen(logt, "r");
  ASSERT_NE(nullptr, f);
  char line[1024];
  while (fgets(line, sizeof line, f)) log += line;
  fclose(f);
  unlink(logt);
  EXPECT_NE(std::string::npos, log.find("\"PUT /v/k.txt\" 200")) << log;
  EXPECT_EQ(std::string::npos, log.find("/vh-bkt/")) << "no path-style request: " << log;
}

// A bucket in another region: the client follows S3's redirect once,
// re-signed for the bucket's region, and remembers it for the bucket.
TEST_F(Wire, OwnClientFollowsRegionRedirectOnce) {
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  char logt[] = "/tmp/asd-wire-log-XXXXXX";
  int lfd = mkstemp(logt);
  ASSERT_GE(lfd, 0);
  close(lfd);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "far-bkt@ap-southeast-2",
                    "-bucket", "near-bkt", "-access-log", logt});
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  ASSERT_EQ(0, asd_s3_head_bucket(ctx, "far-bkt", &err)) << err.message;
  for (int i = 0; i < 3; i++) {
    std::string k = "k" + std::to_string(i);
    ASSERT_EQ(0, asd_s3_put_object(ctx, "far-bkt", k.c_str(), "far", 3, nullptr, nullptr, &err)) << err.message;
  }
  asd_buf got;
  asd_buf_init(&got);
  ASSERT_EQ(0, asd_s3_get_object(ctx, "far-bkt", "k1", 1024, &got, nullptr, &err)) << err.message;
  asd_buf_free(&got);
  ASSERT_EQ(0, asd_s3_put_object(ctx, "near-bkt", "n", "near", 4, nullptr, nullptr, &err)) << err.message;
  asd_aws_context_free(ctx);
  ep.stop();
  std::string log;
  FILE *f = fopen(logt, "r");
  ASSERT_NE(nullptr, f);
  char line[1024];
  int redirects = 0, lines = 0;
  while (fgets(line, sizeof line, f)) {
    log += line;
    lines++;
    if (strstr(line, "\" 301 ")) redirects++;
  }
  fclose(f);
  unlink(logt);
  EXPECT_EQ(1, redirects) << "one redirect, then the remembered region: " << log;
  EXPECT_EQ(7, lines) << log;
}

// Encryption and ownership from the client's configuration, as an
// enterprise bucket policy wants them; a mistake is one line at startup.
TEST_F(Wire, OwnClientSendsEncryptionAndOwner) {
  TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket",
                    "kms-bkt,owner=111122223333,require-sse=aws:kms"});
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  auto make = [&](const char *sse, const char *kms, const char *owner, asd_aws_error *err) {
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.endpoint_url = ep.url().c_str();
    c.access_key_id = asd_test::kLocalAccessKey;
    c.secret_access_key = asd_test::kLocalSecretKey;
    c.region = "us-east-1";
    c.max_attempts = 1;
    c.s3_sse = sse;
    c.s3_sse_kms_key_id = kms;
    c.s3_expected_bucket_owner = owner;
    return asd_aws_context_new(&c, err);
  };
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ok = make("aws:kms", "alias/tiles", "111122223333", &err);
  ASSERT_NE(nullptr, ok) << err.message;
  ASSERT_EQ(0, asd_s3_put_object(ok, "kms-bkt", "t.bin", "tile", 4, nullptr, nullptr, &err)) << err.message;
  asd_buf got;
  asd_buf_init(&got);
  ASSERT_EQ(0, asd_s3_get_object(ok, "kms-bkt", "t.bin", 64, &got, nullptr, &err)) << err.message;
  asd_buf_free(&got);
  asd_aws_context_free(ok);

  asd_aws_context *plain = make(nullptr, nullptr, nullptr, &err);
  ASSERT_NE(nullptr, plain);
  EXPECT_EQ(-1, asd_s3_put_object(plain, "kms-bkt", "u.bin", "tile", 4, nullptr, nullptr, &err));
  EXPECT_STREQ("AccessDenied", err.code) << err.message;
  asd_aws_context_free(plain);

  asd_aws_context *stranger = make("aws:kms", nullptr, "999999999999", &err);
  ASSERT_NE(nullptr, stranger);
  EXPECT_EQ(-1, asd_s3_head_object(stranger, "kms-bkt", "t.bin", nullptr, &err));
  EXPECT_EQ(403, err.http_status) << err.message;
  asd_aws_context_free(stranger);

  struct Bad {
    const char *sse, *kms, *owner, *fragment;
  } bad[] = {{"rot13", nullptr, nullptr, "expected AES256, aws:kms or aws:kms:dsse"},
             {"AES256", "k", nullptr, "needs server-side encryption aws:kms"},
             {nullptr, nullptr, "1234", "is not a 12-digit AWS account id"}};
  for (const auto &b : bad) {
    asd_aws_error_clear(&err);
    EXPECT_EQ(nullptr, make(b.sse, b.kms, b.owner, &err));
    EXPECT_NE(nullptr, strstr(err.message, b.fragment)) << err.message;
  }
}

// Bad TLS and bucket options stop the endpoint with one line each.
TEST_F(Wire, EndpointOptionMistakesAreOneLine) {
  TestPki pki, other;
  auto leaf = pki.issue("server", kServerNames);
  auto stranger = other.issue("stranger", kServerNames);
  struct Case {
    std::vector<std::string> args;
    const char *fragment;
  } cases[] = {
      {{"-tls-cert", leaf.cert}, "-tls-cert and -tls-key go together"},
      {{"-tls-cert", leaf.cert, "-tls-key", stranger.key}, "is not the key of the certificate"},
      {{"-tls-cert", leaf.key, "-tls-key", leaf.key}, "not a PEM certificate"},
      {{"-tls-cert", "/nonexistent.pem", "-tls-key", leaf.key}, "/nonexistent.pem"},
      {{"-bucket", "b1@Not A Region"}, "is not a region name"},
      {{"-bucket", "b1,owner=12"}, "owner=12 is not a 12-digit AWS account id"},
      {{"-bucket", "b1,require-sse=rot13"}, "require-sse=rot13"},
      {{"-bucket", "b1,colour=blue"}, "unknown bucket option 'colour'"},
  };
  for (const auto &c : cases) {
    std::string cmd = asd_test::endpoint_bin() + " -port 0";
    for (const auto &a : c.args) cmd += " " + shell_quote(a);
    cmd += " 2>&1 >/dev/null";
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(nullptr, p);
    std::string out;
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << cmd << ": " << out;
    EXPECT_EQ(1, count_lines(out)) << cmd << ": " << out;
    EXPECT_NE(std::string::npos, out.find(c.fragment)) << cmd << ": " << out;
  }
}

}  // namespace
