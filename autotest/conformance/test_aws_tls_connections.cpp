// New TLS connections of the project's client (plugin/aws/http.c) against the
// real local endpoint over HTTPS: the CA bundle is parsed once and kept
// (libcurl's CA store cache, which its CA directory default would disable),
// not once per connection.  It matters for every new connection (each
// worker's, each one a server closed; with libcurl < 7.80 every
// invocation's), and parsing the system's bundle costs ~50 ms of CPU each
// time under OpenSSL 3.  Seen from outside: once the first
// connection is made, a new connection still verifies the server after the
// bundle file has been replaced by garbage; and a client started on the
// garbage refuses the server (so the check is real).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asd_test_pki.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_s3.h"

namespace {

// HeadBucket on a new connection of its own.
int head_bucket_fresh(asd_aws_context *ctx, const char *bucket, asd_aws_error *err) {
  std::string path = std::string("/") + bucket;
  asd_http_request req = {};
  req.method = "HEAD";
  req.service = ASD_AWS_S3;
  req.path = path.c_str();
  req.max_attempts = 1;
  req.fresh_connection = 1;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_aws_send(ctx, &req, &resp, err);
  asd_http_response_free(&resp);
  return rc;
}

void write_file(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

class TlsConnections : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("AWS_CA_BUNDLE"); }
};

}  // namespace

TEST_F(TlsConnections, NewConnectionsReuseTheParsedCaBundle) {
  asd_test::TestPki pki;
  auto leaf = pki.issue("server", {"IP:127.0.0.1", "DNS:localhost"});
  asd_test::LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key, "-bucket", "ca-bkt"});
  ASSERT_EQ(0u, ep.url().rfind("https://", 0)) << ep.url();
  const std::string bundle = pki.dir() + "/bundle.pem";
  write_file(bundle, read_file(pki.ca_path()));
  setenv("AWS_CA_BUNDLE", bundle.c_str(), 1);

  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  ASSERT_EQ(0, head_bucket_fresh(ctx, "ca-bkt", &err)) << err.message;

  // The bundle is now unreadable as PEM: only a kept store can verify.
  write_file(bundle, "not a certificate\n");
  for (int i = 0; i < 3; i++) EXPECT_EQ(0, head_bucket_fresh(ctx, "ca-bkt", &err)) << err.message;
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  EXPECT_GE(st.connections, 4u) << "each call on a connection of its own";
  asd_aws_context_free(ctx);

  // A client that starts on the garbage bundle verifies nothing.
  ctx = asd_test::local_client(ep, &err, 1);
  ASSERT_NE(nullptr, ctx) << err.message;
  EXPECT_NE(0, head_bucket_fresh(ctx, "ca-bkt", &err));
  EXPECT_NE(std::string::npos, std::string(err.message).find("TLS")) << err.message;
  asd_aws_context_free(ctx);
}
