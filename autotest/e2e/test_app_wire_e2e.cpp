// End-to-end tests of issue 12 (the wire as real AWS has it) through the
// gdal_asyncdetect binary against the local endpoint served over HTTPS with
// a CA made for the test (asd_test_pki.h), given as AWS_CA_BUNDLE:
//   - a whole run over TLS (S3 uploads, SageMaker invocations, polling,
//     result reads, cleanup) finds what the path-style HTTP run finds;
//   - an untrusted CA, and a certificate for another host, each stop the
//     run with exit 1 and one line naming the TLS problem, before any tile
//     reaches the endpoint.
// No test asserts a duration.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "asd_test_pki.h"
#include "e2e_helpers.h"

using asd_e2e::RunResult;
using asd_e2e::TempDir;

namespace {

const std::vector<std::string> kServerNames = {"DNS:localhost", "IP:127.0.0.1", "DNS:s3.asd.test",
                                               "DNS:*.s3.asd.test"};

class WireE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
  void TearDown() override { unsetenv("AWS_CA_BUNDLE"); }
};

std::vector<std::string> tls_endpoint_args(const asd_test::TestPki::Leaf &leaf,
                                           const std::vector<std::string> &extra = {}) {
  std::vector<std::string> a = asd_e2e::endpoint_args();
  a.insert(a.end(), {"-tls-cert", leaf.cert, "-tls-key", leaf.key});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST_F(WireE2E, WholeRunOverTls) {
  asd_test::TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  asd_test::LocalEndpoint ep(tls_endpoint_args(leaf));
  ASSERT_EQ(0u, ep.url().rfind("https://", 0)) << ep.url();
  asd_test::set_local_aws_env(ep);
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  TempDir dir;
  std::string out = dir.path() + "/tls.gpkg";
  RunResult r = asd_e2e::run_app(asd_e2e::app_args(asd_e2e::sample("scene_utm.tif"), out), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  auto acc = asd_e2e::accuracy(out);
  ASSERT_TRUE(acc.error.empty()) << acc.error;
  EXPECT_GT(acc.score.matched, 0) << "detections over TLS";
  EXPECT_GT(asd_e2e::endpoint_stat(ep, "accepted"), 0);
}

// Virtual-hosted addressing over TLS, the way the SDKs address AWS: every S3
// call names its bucket in the host (e2e-input.s3.asd.test), verified
// against the certificate's *.s3.asd.test.  The names reach the local
// server through the documented test-only ASD_RESOLVE pin (libcurl's
// CURLOPT_RESOLVE); URL, Host, SNI, certificate check and signature are the
// production ones.  The endpoint's access log shows no path-style S3 call.
TEST_F(WireE2E, VirtualHostedOverTls) {
  asd_test::TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  TempDir dir;
  std::string log = dir.path() + "/access.log";
  asd_test::LocalEndpoint ep(tls_endpoint_args(leaf, {"-domain", "s3.asd.test", "-access-log", log}));
  asd_test::set_local_aws_env(ep);
  const std::string port = std::to_string(ep.port());
  const std::string url = "https://s3.asd.test:" + port;
  setenv("AWS_ENDPOINT_URL", url.c_str(), 1);
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  setenv("AWS_S3_ADDRESSING_STYLE", "virtual", 1);
  std::string pins;
  for (const char *h : {"s3.asd.test", "e2e-input.s3.asd.test", "e2e-output.s3.asd.test"})
    pins += std::string(pins.empty() ? "" : ",") + h + ":" + port + ":127.0.0.1";
  setenv("ASD_RESOLVE", pins.c_str(), 1);
  std::string out = dir.path() + "/vh.gpkg";
  RunResult r = asd_e2e::run_app(asd_e2e::app_args(asd_e2e::sample("scene_utm.tif"), out), dir.path());
  unsetenv("ASD_RESOLVE");
  unsetenv("AWS_S3_ADDRESSING_STYLE");
  ASSERT_EQ(0, r.status) << r.err;
  auto acc = asd_e2e::accuracy(out);
  ASSERT_TRUE(acc.error.empty()) << acc.error;
  EXPECT_GT(acc.score.matched, 0);
  ep.stop();
  std::string text = asd_e2e::read_file(log);
  EXPECT_NE(std::string::npos, text.find("PutObject")) << text;
  EXPECT_NE(std::string::npos, text.find("GetObject")) << text;
  EXPECT_EQ(std::string::npos, text.find(" /e2e-input/")) << "no path-style S3 call: " << text;
  EXPECT_EQ(std::string::npos, text.find(" /e2e-output/")) << "no path-style S3 call: " << text;
}

// Encryption and ownership through the utility: buckets of account
// 111122223333, the input one with a policy requiring SSE-KMS (as enterprise buckets are),
// takes the run with -sse aws:kms -sse-kms-key-id -expected-bucket-owner; the
// same run without -sse has every upload refused; a wrong owner or a typo
// stops the run before any upload with one line.
TEST_F(WireE2E, EncryptionAndOwnerFlags) {
  asd_test::TestPki pki;
  auto leaf = pki.issue("server", kServerNames);
  std::vector<std::string> a = {"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket",
                                std::string(asd_e2e::kInputBucket) + ",owner=111122223333,require-sse=aws:kms",
                                "-bucket", "e2e-output,owner=111122223333", "-endpoint",
                                std::string(asd_e2e::kEndpoint) +
                                    ",model=blobs,output=s3://e2e-output/results,failure=s3://e2e-output/failures"};
  asd_test::LocalEndpoint ep(a);
  asd_test::set_local_aws_env(ep);
  setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
  TempDir dir;
  const std::string in = asd_e2e::sample("scene_utm.tif");
  RunResult ok = asd_e2e::run_app(
      asd_e2e::app_args(in, dir.path() + "/ok.gpkg",
                        {"-sse", "aws:kms", "-sse-kms-key-id", "alias/tiles", "-expected-bucket-owner", "111122223333"}),
      dir.path());
  ASSERT_EQ(0, ok.status) << ok.err;
  EXPECT_GT(asd_e2e::endpoint_stat(ep, "accepted"), 0);

  RunResult plain = asd_e2e::run_app(asd_e2e::app_args(in, dir.path() + "/plain.gpkg"), dir.path());
  EXPECT_NE(0, plain.status) << plain.err;
  EXPECT_NE(std::string::npos, plain.err.find("AccessDenied")) << plain.err;

  struct Bad {
    std::vector<std::string> flags;
    const char *fragment;
  } bad[] = {{{"-sse", "aws:kms", "-expected-bucket-owner", "999999999999"}, "access denied"},
             {{"-sse", "rot13"}, "sse 'rot13' must be AES256, aws:kms or aws:kms:dsse"},
             {{"-sse", "AES256", "-sse-kms-key-id", "k"}, "sse_kms_key_id needs sse aws:kms"},
             {{"-expected-bucket-owner", "12"}, "expected_bucket_owner '12' is not a 12-digit AWS account id"}};
  long long accepted = asd_e2e::endpoint_stat(ep, "accepted");
  for (const auto &b : bad) {
    RunResult r = asd_e2e::run_app(asd_e2e::app_args(in, dir.path() + "/bad.gpkg", b.flags), dir.path(), 120);
    EXPECT_EQ(1, r.status) << r.err;
    EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(b.fragment)) << r.err;
  }
  EXPECT_EQ(accepted, asd_e2e::endpoint_stat(ep, "accepted")) << "no mistake reaches the model";
}

// One line, exit 1, and no request got through: the endpoint's access log
// (one line per HTTP request) stays empty.
void expect_tls_refusal(const asd_test::TestPki::Leaf &leaf, const std::string &ca, const char *fragment) {
  TempDir dir;
  std::string log = dir.path() + "/access.log";
  asd_test::LocalEndpoint ep(tls_endpoint_args(leaf, {"-access-log", log}));
  asd_test::set_local_aws_env(ep);
  setenv("AWS_CA_BUNDLE", ca.c_str(), 1);
  std::string out = dir.path() + "/o.gpkg";
  RunResult r = asd_e2e::run_app(asd_e2e::app_args(asd_e2e::sample("scene_utm.tif"), out), dir.path(), 120);
  EXPECT_EQ(1, r.status) << r.err;
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("TLS")) << r.err;
  EXPECT_NE(std::string::npos, r.err.find(fragment)) << r.err;
  ep.stop();
  EXPECT_EQ("", asd_e2e::read_file(log)) << "no request may get through";
  std::printf("the line: %s", r.err.c_str());
}

TEST_F(WireE2E, UntrustedCaStopsTheRunWithOneLine) {
  asd_test::TestPki pki, other("a CA the server does not use");
  expect_tls_refusal(pki.issue("server", kServerNames), other.ca_path(), "certificate");
}

TEST_F(WireE2E, CertificateForAnotherHostStopsTheRunWithOneLine) {
  asd_test::TestPki pki;
  expect_tls_refusal(pki.issue("server", {"DNS:elsewhere.example"}), pki.ca_path(), "127.0.0.1");
}

}  // namespace
