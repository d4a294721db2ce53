// InvokeEndpointAsync on kept-alive connections, and never twice on the wire
// (plugin/aws/http.c, send_once), against the real local endpoint over HTTP
// and HTTPS:
//   - invocations share connections: a dozen invocations (after an upload)
//     open one connection, counted both by the client's transport and by
//     the endpoint's stats page ("connections"), where a connection per
//     invocation would open thirteen;
//   - a reused connection that dies after the endpoint accepted the
//     invocation (accept_then_drop): libcurl would send the request again on
//     a new connection by itself, and the model would run twice; the resend
//     is refused instead, the endpoint accepted and ran exactly one
//     invocation, and the call fails as a lost answer (a network error that may have been
//     received, so the engine looks for the result before invoking again);
//   - over HTTPS, a connection that must be new resumes the TLS session of
//     an earlier one (the endpoint's session tickets, tls_tickets.c).
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_pki.h"
#include "asd_test_util.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"

namespace {

const char *kSpec = "ep,model=centerpoint,output=s3://asd-out/ep/output,failure=s3://asd-out/ep/failure,concurrency=4";

// An endpoint over HTTP, or over HTTPS with a CA of the test's own.
struct Server {
  std::unique_ptr<asd_test::TestPki> pki;
  std::unique_ptr<asd_test::LocalEndpoint> ep;
  Server(bool tls, const std::vector<std::string> &faults) {
    std::vector<std::string> args = {"-bucket", "asd-in", "-endpoint", kSpec};
    args.insert(args.end(), faults.begin(), faults.end());
    if (tls) {
      pki.reset(new asd_test::TestPki());
      auto leaf = pki->issue("server", {"IP:127.0.0.1"});
      args.insert(args.end(), {"-tls-cert", leaf.cert, "-tls-key", leaf.key});
      setenv("AWS_CA_BUNDLE", pki->ca_path().c_str(), 1);
    }
    ep.reset(new asd_test::LocalEndpoint(args));
  }
  ~Server() { unsetenv("AWS_CA_BUNDLE"); }
  // Connections the endpoint accepted, this stats request's own excepted.
  long long connections() {
    json_object *j = json_tokener_parse(ep->stats_json().c_str());
    json_object *v = nullptr;
    long long n = j && json_object_object_get_ex(j, "connections", &v) ? json_object_get_int64(v) - 1 : -1;
    if (j) json_object_put(j);
    return n;
  }
  long long accepted() { return asd_test::runtime_stat(*ep, "ep", "accepted"); }
};

unsigned long client_connections(asd_aws_context *ctx) {
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  return st.connections;
}

int invoke(asd_aws_context *ctx, int i, asd_aws_error *err) {
  std::string id = "conn-test-" + std::to_string(i);
  asd_sm_invoke_async_params p;
  memset(&p, 0, sizeof p);
  p.endpoint_name = "ep";
  p.input_location = "s3://asd-in/in/tile";
  p.inference_id = id.c_str();
  asd_sm_invoke_async_result res;
  int rc = asd_sm_invoke_async(ctx, &p, &res, err);
  if (rc == 0) asd_sm_invoke_async_result_free(&res);
  return rc;
}

class InvokeConnections : public ::testing::TestWithParam<bool> {};

TEST_P(InvokeConnections, InvocationsShareKeptAliveConnections) {
  Server srv(GetParam(), {});
  long long before = srv.connections();
  ASSERT_GE(before, 0);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(*srv.ep, &err);
  ASSERT_NE(nullptr, ctx) << err.message;
  const std::string &png = asd_test::tiny_png();
  ASSERT_EQ(0, asd_s3_put_object(ctx, "asd-in", "in/tile", png.data(), png.size(), nullptr, nullptr, &err))
      << err.message;
  const int n = 12;
  for (int i = 0; i < n; i++) ASSERT_EQ(0, invoke(ctx, i, &err)) << err.message;
  EXPECT_EQ(n, srv.accepted());
  // One sequential client: one connection for the upload and every
  // invocation (two allowed, should the server ever close one).
  EXPECT_LE(client_connections(ctx), 2u);
  EXPECT_LE(srv.connections() - before - 1, 2) << "the previous stats request is the 1";
  asd_aws_context_free(ctx);
}

TEST_P(InvokeConnections, AReusedConnectionDyingAfterAcceptanceRunsTheModelOnce) {
  Server srv(GetParam(), {"-faults", "accept_then_drop=1"});
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(*srv.ep, &err);
  ASSERT_NE(nullptr, ctx) << err.message;
  const std::string &png = asd_test::tiny_png();
  ASSERT_EQ(0, asd_s3_put_object(ctx, "asd-in", "in/tile", png.data(), png.size(), nullptr, nullptr, &err))
      << err.message;
  ASSERT_EQ(1u, client_connections(ctx));
  // The invocation goes out on the upload's connection; the endpoint queues
  // the job, then closes that connection without an answer.
  EXPECT_NE(0, invoke(ctx, 0, &err));
  // (libcurl does open a new connection for its resend, since the refusal
  // comes once a connection is ready, but nothing goes out on it.)
  EXPECT_EQ(1, srv.accepted()) << "the request reached the endpoint a second time";
  EXPECT_EQ(ASD_AWS_ERR_NETWORK, err.kind) << err.message;
  EXPECT_EQ(0, err.not_sent) << "it may have been received: not a refusal";
  EXPECT_NE(std::string::npos, std::string(err.message).find("not sent again")) << err.message;
  EXPECT_EQ(1, err.attempts);
  asd_aws_context_free(ctx);
  // The job the lost answer hid runs, once (bounded wait: a broken runtime
  // fails here rather than hanging).
  long long done = 0;
  for (int i = 0; i < 400 && done < 1; i++) {
    done = asd_test::runtime_stat(*srv.ep, "ep", "completed") + asd_test::runtime_stat(*srv.ep, "ep", "failed");
    if (done < 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(1, asd_test::runtime_stat(*srv.ep, "ep", "completed"));
  EXPECT_EQ(0, asd_test::runtime_stat(*srv.ep, "ep", "failed"));
  EXPECT_EQ(1, srv.accepted());
}

// A connection that must be new resumes the TLS session of an earlier one
// (the endpoint issues TLS 1.3 session tickets, as AWS does; libcurl keeps
// the sessions in the transport's share): counted by the endpoint as its
// connections close.
TEST(TlsResumption, NewConnectionsResumeTheSessionOfTheFirst) {
  Server srv(true, {});
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_test::local_client(*srv.ep, &err);
  ASSERT_NE(nullptr, ctx) << err.message;
  const int n = 5;
  for (int i = 0; i < n; i++) {
    asd_http_request req = {};
    req.method = "HEAD";
    req.service = ASD_AWS_S3;
    req.path = "/asd-in";
    req.max_attempts = 1;
    req.fresh_connection = 1;
    asd_http_response resp;
    asd_http_response_init(&resp);
    EXPECT_EQ(0, asd_aws_send(ctx, &req, &resp, &err)) << err.message;
    asd_http_response_free(&resp);
  }
  EXPECT_EQ((unsigned long)n, client_connections(ctx));
  asd_aws_context_free(ctx);  // closes them all
  long long resumed = 0;
  for (int i = 0; i < 200 && resumed < n - 1; i++) {
    json_object *j = json_tokener_parse(srv.ep->stats_json().c_str());
    json_object *v = nullptr;
    resumed = j && json_object_object_get_ex(j, "tls_resumed", &v) ? json_object_get_int64(v) : -1;
    if (j) json_object_put(j);
    if (resumed < n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(n - 1, resumed) << "every connection after the first resumes";
}

INSTANTIATE_TEST_SUITE_P(Schemes, InvokeConnections, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) { return i.param ? "Https" : "Http"; });

}  // namespace
