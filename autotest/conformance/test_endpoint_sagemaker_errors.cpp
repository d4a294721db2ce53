// SageMaker Runtime's errors as the local endpoint produces them, checked
// with independent clients (boto3 and the AWS CLI, both from python3), so
// that "the endpoint says ModelNotReadyException" means what AWS's own SDK
// makes of the reply: the status, the x-amzn-ErrorType header and the JSON
// body are parsed by botocore's rest-json parser, not by ours.
//
// Every error shape of botocore's sagemaker-runtime model is covered, each
// produced by the fault key named after it (ValidationError 400,
// ModelNotReadyException 429, ThrottlingException 400, ServiceUnavailable 503,
// InternalFailure 500, InternalDependencyException 530), plus the natural
// ValidationErrors (unknown endpoint, real-time endpoint, bad header) and the
// two faults that strike after the invocation was accepted
// (accept_then_5xx, accept_then_drop): the caller sees an error, the job runs
// anyway and its result appears where the Filename said it would.
#include <gtest/gtest.h>

#include <json.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"

namespace {

using asd_test::LocalEndpoint;
using asd_test::have_boto3;

std::string run(const std::string &cmd, int *rc) { return asd_test::run_command(cmd, rc); }
std::string write_temp(const std::string &text) { return asd_test::write_temp_file(text, "asd_smerr_"); }
long long stat_of(LocalEndpoint &e, const char *key) { return asd_test::runtime_stat(e, "ep", key); }

// Credentials of the local endpoint, in the environment of a child python3.
std::string aws_env() {
  return "env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=" +
         std::string(asd_test::kLocalAccessKey) + " AWS_SECRET_ACCESS_KEY=" + asd_test::kLocalSecretKey +
         " AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard ";
}

// One boto3 InvokeEndpointAsync per endpoint URL given, retries off; prints
// one JSON object per call: {"code":..,"status":..,"message":..}.
const char *kInvokeScript = R"PY(
import json, sys, boto3, botocore
from botocore.config import Config
cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10)
import time
tile, poll = sys.argv[1], sys.argv[2] == "1"
for url in sys.argv[3:]:
    kw = dict(endpoint_url=url, region_name="us-east-1", config=cfg)
    s3 = boto3.client("s3", **kw)
    sm = boto3.client("sagemaker-runtime", **kw)
    s3.put_object(Bucket="inputs", Key="t.png", Body=open(tile, "rb").read())
    out = {"url": url}
    try:
        r = sm.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/t.png",
                                     InferenceId="inf-1", Filename="f1")
        out["status"] = r["ResponseMetadata"]["HTTPStatusCode"]
        out["code"] = ""
    except botocore.exceptions.ClientError as e:
        out["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        out["code"] = e.response["Error"]["Code"]
        out["message"] = e.response["Error"].get("Message", "")
        out["class"] = type(e).__name__
    except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError) as e:
        out["status"] = 0
        out["code"] = "connection:" + type(e).__name__
    # Where the Filename says the outcome goes: S3OutputPath + Filename, or
    # S3FailurePath + Filename + "-error.out" when the model refused the input.
    out["result"] = False
    for _ in range(200 if poll else 0):
        for key in ("o/f1", "f/f1-error.out"):
            try:
                s3.head_object(Bucket="results", Key=key)
                out["result"] = True
            except botocore.exceptions.ClientError:
                pass
        if out["result"]:
            break
        time.sleep(0.05)
    print(json.dumps(out))
)PY";

// Any bytes do: a refused request never reads its input, and an accepted
// one either yields a result or, when the model refuses the bytes, a failure
// object; both prove that the job ran.
std::string tile_file() { return write_temp("not really a png"); }

struct Reply {
  int status = -1;
  std::string code, message, cls;
  bool result = false;
};

std::vector<Reply> boto3_invoke(const std::vector<std::string> &urls, bool poll, std::string *raw) {
  std::string script = write_temp(kInvokeScript), tile = tile_file();
  std::string cmd = aws_env() + "python3 " + script + " " + tile + (poll ? " 1" : " 0");
  for (auto &u : urls) cmd += " " + u;
  int rc = 0;
  *raw = run(cmd + " 2>&1", &rc);
  unlink(script.c_str());
  unlink(tile.c_str());
  std::vector<Reply> out;
  size_t pos = 0;
  while (pos < raw->size()) {
    size_t nl = raw->find('\n', pos);
    std::string line = raw->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? raw->size() : nl + 1;
    json_object *j = json_tokener_parse(line.c_str());
    if (!j) continue;
    Reply r;
    json_object *v = nullptr;
    if (json_object_object_get_ex(j, "status", &v)) r.status = json_object_get_int(v);
    if (json_object_object_get_ex(j, "code", &v)) r.code = json_object_get_string(v);
    if (json_object_object_get_ex(j, "message", &v)) r.message = json_object_get_string(v);
    if (json_object_object_get_ex(j, "class", &v)) r.cls = json_object_get_string(v);
    if (json_object_object_get_ex(j, "result", &v)) r.result = json_object_get_boolean(v);
    json_object_put(j);
    out.push_back(r);
  }
  return out;
}

std::vector<std::string> endpoint_args(const std::string &faults) {
  std::vector<std::string> a = {"-bucket", "inputs", "-endpoint", "ep,output=s3://results/o,failure=s3://results/f"};
  if (!faults.empty()) {
    a.push_back("-faults");
    a.push_back(faults);
  }
  return a;
}

TEST(SageMakerErrors, EachDocumentedErrorAsBoto3ParsesIt) {
  if (!have_boto3()) GTEST_SKIP() << "python3 has no boto3";
  struct Case {
    const char *key;
    int status;
    const char *code;
  } cases[] = {
      {"ValidationError", 400, "ValidationError"},
      {"ModelNotReadyException", 429, "ModelNotReadyException"},
      {"ThrottlingException", 400, "ThrottlingException"},
      {"ServiceUnavailable", 503, "ServiceUnavailable"},
      {"InternalFailure", 500, "InternalFailure"},
      {"InternalDependencyException", 530, "InternalDependencyException"},
  };
  std::vector<std::unique_ptr<LocalEndpoint>> eps;
  std::vector<std::string> urls;
  for (auto &c : cases) {
    eps.emplace_back(new LocalEndpoint(endpoint_args(std::string(c.key) + "=1")));
    urls.push_back(eps.back()->url());
  }
  std::string raw;
  std::vector<Reply> got = boto3_invoke(urls, false, &raw);
  ASSERT_EQ(sizeof(cases) / sizeof(cases[0]), got.size()) << raw;
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(cases[i].status, got[i].status) << cases[i].key << ": " << raw;
    EXPECT_EQ(cases[i].code, got[i].code) << raw;
    EXPECT_FALSE(got[i].message.empty()) << cases[i].key;
    // botocore maps the code to the modelled exception class where the
    // service model has one (ThrottlingException is a common AWS error,
    // not a modelled shape of this service).
    if (std::string(cases[i].code) != "ThrottlingException") {
      EXPECT_EQ(cases[i].code, got[i].cls) << raw;
    }
    // Nothing was queued: the request was refused.
    EXPECT_EQ(0, stat_of(*eps[i], "accepted")) << cases[i].key;
  }
}

TEST(SageMakerErrors, NaturalValidationErrors) {
  if (!have_boto3()) GTEST_SKIP() << "python3 has no boto3";
  LocalEndpoint e({"-bucket", "inputs", "-endpoint", "ep,async=no", "-endpoint", "other"});
  std::string script = write_temp(R"PY(
import json, sys, boto3, botocore
from botocore.config import Config
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
s3 = boto3.client("s3", **kw)
sm = boto3.client("sagemaker-runtime", **kw)
api = boto3.client("sagemaker", **kw)
s3.put_object(Bucket="inputs", Key="t.png", Body=b"x")
res = {}
def call(name, **args):
    try:
        sm.invoke_endpoint_async(InputLocation="s3://inputs/t.png", **args)
        res[name] = "ok"
    except botocore.exceptions.ClientError as e:
        res[name] = "%s %d %s" % (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"],
                                  e.response["Error"].get("Message", ""))
call("realtime", EndpointName="ep")
call("unknown", EndpointName="nope")
call("ok", EndpointName="other")
# A header SageMaker refuses: boto3 validates Filename client-side, so send
# the raw header through an event hook.
def bad_header(request, **kw):
    request.headers["X-Amzn-SageMaker-Filename"] = "a.b.c"
sm.meta.events.register("before-sign.sagemaker-runtime.InvokeEndpointAsync", bad_header)
call("bad_header", EndpointName="other")
res["describe_realtime_async"] = "AsyncInferenceConfig" in api.describe_endpoint(EndpointName="ep")
res["describe_other_async"] = "AsyncInferenceConfig" in api.describe_endpoint(EndpointName="other")
print(json.dumps(res))
)PY");
  int rc = 0;
  std::string out = run(aws_env() + "python3 " + script + " " + e.url() + " 2>&1", &rc);
  unlink(script.c_str());
  ASSERT_EQ(0, rc) << out;
  json_object *j = json_tokener_parse(out.c_str());
  ASSERT_NE(nullptr, j) << out;
  auto get = [&](const char *k) {
    json_object *v = nullptr;
    return json_object_object_get_ex(j, k, &v) ? std::string(json_object_get_string(v)) : std::string();
  };
  EXPECT_EQ(0u, get("realtime").rfind("ValidationError 400 ", 0)) << out;
  EXPECT_NE(std::string::npos, get("realtime").find("not an asynchronous inference endpoint")) << out;
  EXPECT_EQ(0u, get("unknown").rfind("ValidationError 400 Endpoint nope of account", 0)) << out;
  EXPECT_EQ("ok", get("ok")) << out;
  EXPECT_EQ(0u, get("bad_header").rfind("ValidationError 400 ", 0)) << out;
  EXPECT_NE(std::string::npos, get("bad_header").find("filename")) << out;
  EXPECT_EQ("false", get("describe_realtime_async")) << out;
  EXPECT_EQ("true", get("describe_other_async")) << out;
  json_object_put(j);
}

TEST(SageMakerErrors, AwsCliReportsTheErrorCode) {
  int rc = 0;
  run("python3 -m awscli --version >/dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "python3's AWS CLI (awscli) is not installed";
  LocalEndpoint e(endpoint_args("ModelNotReadyException=1"));
  std::string base = aws_env() + "python3 -m awscli --endpoint-url " + e.url() + " ";
  std::string tile = tile_file();
  std::string put = run(base + "s3api put-object --bucket inputs --key t.png --body " + tile + " 2>&1", &rc);
  unlink(tile.c_str());
  ASSERT_EQ(0, rc) << put;
  std::string out = run(base + "sagemaker-runtime invoke-endpoint-async --endpoint-name ep "
                               "--input-location s3://inputs/t.png 2>&1",
                        &rc);
  EXPECT_NE(0, rc);
  EXPECT_NE(std::string::npos, out.find("(ModelNotReadyException)")) << out;
}

// accept_then_*: the client hears 500 or nothing, but the job was queued and
// runs: the endpoint counts it accepted and its result appears at the
// location the Filename made predictable.
TEST(SageMakerErrors, AcceptedThenFailedStillRuns) {
  if (!have_boto3()) GTEST_SKIP() << "python3 has no boto3";
  LocalEndpoint a(endpoint_args("accept_then_5xx=1")), b(endpoint_args("accept_then_drop=1"));
  std::string raw;
  std::vector<Reply> got = boto3_invoke({a.url(), b.url()}, true, &raw);
  ASSERT_EQ(2u, got.size()) << raw;
  EXPECT_EQ(500, got[0].status) << raw;
  EXPECT_EQ("InternalFailure", got[0].code) << raw;
  EXPECT_EQ(0, got[1].status) << raw;
  EXPECT_EQ(0u, got[1].code.rfind("connection:", 0)) << raw;
  EXPECT_TRUE(got[0].result) << raw;
  EXPECT_TRUE(got[1].result) << raw;
  EXPECT_EQ(1, stat_of(a, "accepted"));
  EXPECT_EQ(1, stat_of(b, "accepted"));
}

}  // namespace
