// Conformance of what a client meets on a real account, proven on the local
// endpoint with boto3 as the independent client (signed requests):
//   - InvokeEndpointAsync's S3OutputPathExtension and Filename: results are
//     placed under the output path + extension, named by the filename, and
//     values SageMaker refuses are refused with ValidationError;
//   - failure=none: no FailureLocation, no S3FailurePath;
//   - DescribeEndpoint / DescribeEndpointConfig (JSON 1.1, X-Amz-Target);
//   - -deny rules: 403 AccessDenied for a missing key without s3:ListBucket
//     (404 NoSuchKey with it), AccessDeniedException for DescribeEndpoint;
//   - cold_start_ms: a cold endpoint holds its queue until it is warm.
// No test asserts a duration.
#include <gtest/gtest.h>

#include <json.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_util.h"
#include "asyncdetect/asd_preflight.h"
#include "asyncdetect/asd_resources.h"

namespace {

using asd_test::LocalEndpoint;

std::string run(const std::string &cmd, int *rc) { return asd_test::run_command(cmd, rc); }

// Runs a boto3 script against ep (argv: url access secret) and returns its
// last stdout line parsed as a JSON object (nullptr on failure, with the
// output in *text).
json_object *boto3(const LocalEndpoint &ep, const std::string &script, std::string *text) {
  char path[] = "/tmp/asd_iam_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return nullptr;
  std::string prologue = R"PY(
import json, sys, time, struct, zlib, boto3, botocore
url, access, secret = sys.argv[1:4]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=access, aws_secret_access_key=secret)
s3 = boto3.client("s3", **kw)
smr = boto3.client("sagemaker-runtime", **kw)
sm = boto3.client("sagemaker", **kw)
def png(w=16, h=16):
    raw = b"".join(b"\x00" + bytes([128] * w) for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def code(f):
    try:
        f()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
def wait_object(loc, tries=300):
    b, k = loc[5:].split("/", 1)
    for _ in range(tries):
        try:
            return s3.get_object(Bucket=b, Key=k)["Body"].read().decode()
        except botocore.exceptions.ClientError:
            time.sleep(0.1)
    return None
res = {}
)PY";
  std::string all = prologue + script + "\nprint(json.dumps(res))\n";
  bool ok = write(fd, all.data(), all.size()) == static_cast<ssize_t>(all.size());
  close(fd);
  if (!ok) return nullptr;
  int rc = 0;
  *text = run("env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL python3 " + std::string(path) + " " +
                  ep.url() + " " + asd_test::kLocalAccessKey + " " + asd_test::kLocalSecretKey + " 2>&1",
              &rc);
  unlink(path);
  if (rc != 0) return nullptr;
  std::string last = *text;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  size_t nl = last.rfind('\n');
  if (nl != std::string::npos) last = last.substr(nl + 1);
  return json_tokener_parse(last.c_str());
}

std::string field(json_object *j, const char *k) {
  json_object *v = nullptr;
  return j && json_object_object_get_ex(j, k, &v) ? std::string(json_object_get_string(v)) : std::string("<absent>");
}

class EndpointIamControl : public ::testing::Test {
 protected:
  void SetUp() override {
    int rc = 0;
    run("python3 -c 'import boto3' >/dev/null 2>&1", &rc);
    if (rc != 0) GTEST_SKIP() << "python3 has no boto3";
  }
  std::unique_ptr<LocalEndpoint> ep;
};

TEST_F(EndpointIamControl, OutputPathExtensionAndFilenamePlaceResults) {
  ep.reset(new LocalEndpoint({"-bucket", "inputs", "-endpoint",
                              "ep,model=centerpoint,output=s3://results/o,failure=s3://results/f"}));
  std::string text;
  json_object *j = boto3(*ep, R"PY(
s3.put_object(Bucket="inputs", Key="t.png", Body=png())
r = smr.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/t.png",
                              S3OutputPathExtension="runs/a1", Filename="tile-7.json")
res["out"] = r["OutputLocation"]
res["fail"] = r["FailureLocation"]
res["body"] = wait_object(r["OutputLocation"]) or ""
r = smr.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/t.png", S3OutputPathExtension="x/y/")
res["ext_only"] = r["OutputLocation"]
res["ext_only_body"] = wait_object(r["OutputLocation"]) or ""
r = smr.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/t.png")
res["plain"] = r["OutputLocation"]
inv = lambda **k: (lambda: smr.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://inputs/t.png", **k))
res["bad_ext_s3"] = code(inv(S3OutputPathExtension="s3://other/x"))
res["bad_ext_char"] = code(inv(S3OutputPathExtension="a b"))
res["bad_name_dots"] = code(inv(Filename="a.b.c"))
res["bad_name_first"] = code(inv(Filename="-abc"))
res["bad_name_long"] = code(inv(Filename="a" * 33))
res["ok_name_dot"] = code(inv(Filename="a_b-c.json"))
)PY",
                         &text);
  ASSERT_NE(j, nullptr) << text;
  EXPECT_EQ("s3://results/o/runs/a1/tile-7.json", field(j, "out"));
  EXPECT_EQ("s3://results/f/runs/a1/tile-7.json-error.out", field(j, "fail"));
  EXPECT_NE(std::string::npos, field(j, "body").find("FeatureCollection")) << text;
  std::string ext_only = field(j, "ext_only");
  EXPECT_EQ(0u, ext_only.rfind("s3://results/o/x/y/", 0)) << ext_only;
  EXPECT_EQ(ext_only.size() - 4, ext_only.rfind(".out"));
  EXPECT_EQ(std::string::npos, ext_only.find("//", 5)) << ext_only;
  EXPECT_NE(std::string::npos, field(j, "ext_only_body").find("FeatureCollection"));
  std::string plain = field(j, "plain");
  EXPECT_EQ(0u, plain.rfind("s3://results/o/", 0));
  EXPECT_EQ(std::string::npos, plain.find('/', strlen("s3://results/o/"))) << plain;
  EXPECT_EQ("ValidationError", field(j, "bad_ext_s3"));
  EXPECT_EQ("ValidationError", field(j, "bad_ext_char"));
  EXPECT_EQ("ValidationError", field(j, "bad_name_dots"));
  EXPECT_EQ("ValidationError", field(j, "bad_name_first"));
  EXPECT_EQ("ValidationError", field(j, "bad_name_long"));
  EXPECT_EQ("ok", field(j, "ok_name_dot"));
  json_object_put(j);
}

TEST_F(EndpointIamControl, DescribeEndpointAndConfigAndFailureNone) {
  ep.reset(new LocalEndpoint({"-bucket", "inputs", "-endpoint",
                              "ep,model=centerpoint,output=s3://results/o,failure=s3://results/f,instances=2,concurrency=3",
                              "-endpoint", "nofail,model=failure,output=s3://results/nf,failure=none",
                              "-deny", "sagemaker:DescribeEndpoint:secret-ep", "-endpoint", "secret-ep"}));
  std::string text;
  json_object *j = boto3(*ep, R"PY(
d = sm.describe_endpoint(EndpointName="ep")
res["status"] = d["EndpointStatus"]
res["arn"] = d["EndpointArn"]
res["config"] = d["EndpointConfigName"]
res["instances"] = d["ProductionVariants"][0]["CurrentInstanceCount"]
res["output_path"] = d["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"]
res["failure_path"] = d["AsyncInferenceConfig"]["OutputConfig"]["S3FailurePath"]
c = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
res["cfg_concurrency"] = c["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"]
res["cfg_model"] = c["ProductionVariants"][0]["ModelName"]
n = sm.describe_endpoint_config(EndpointConfigName="nofail")
res["nofail_has_failure_path"] = "S3FailurePath" in n["AsyncInferenceConfig"]["OutputConfig"]
res["unknown"] = code(lambda: sm.describe_endpoint(EndpointName="nope"))
res["unknown_cfg"] = code(lambda: sm.describe_endpoint_config(EndpointConfigName="nope"))
res["denied"] = code(lambda: sm.describe_endpoint(EndpointName="secret-ep"))
res["denied_cfg_allowed"] = code(lambda: sm.describe_endpoint_config(EndpointConfigName="secret-ep"))
s3.put_object(Bucket="inputs", Key="t.png", Body=png())
r = smr.invoke_endpoint_async(EndpointName="nofail", InputLocation="s3://inputs/t.png")
res["nofail_failure_location"] = r.get("FailureLocation", "")
time.sleep(0.5)
)PY",
                         &text);
  ASSERT_NE(j, nullptr) << text;
  EXPECT_EQ("InService", field(j, "status"));
  EXPECT_EQ("arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep", field(j, "arn"));
  EXPECT_EQ("ep", field(j, "config"));
  EXPECT_EQ("2", field(j, "instances"));
  EXPECT_EQ("s3://results/o", field(j, "output_path"));
  EXPECT_EQ("s3://results/f", field(j, "failure_path"));
  EXPECT_EQ("3", field(j, "cfg_concurrency"));
  EXPECT_EQ("centerpoint", field(j, "cfg_model"));
  EXPECT_EQ("false", field(j, "nofail_has_failure_path"));
  EXPECT_EQ("ValidationException", field(j, "unknown"));
  EXPECT_EQ("ValidationException", field(j, "unknown_cfg"));
  EXPECT_EQ("AccessDeniedException", field(j, "denied"));
  EXPECT_EQ("ok", field(j, "denied_cfg_allowed"));
  EXPECT_EQ("", field(j, "nofail_failure_location"));
  json_object_put(j);
  // The failed job of the failure=none endpoint is counted, and left nothing in S3.
  std::string stats = ep->stats_json();
  json_object *s = json_tokener_parse(stats.c_str());
  ASSERT_NE(s, nullptr);
  json_object *rt = nullptr, *eps = nullptr, *nf = nullptr, *fr = nullptr, *v = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(s, "runtime", &rt));
  ASSERT_TRUE(json_object_object_get_ex(rt, "endpoints", &eps));
  ASSERT_TRUE(json_object_object_get_ex(eps, "nofail", &nf));
  ASSERT_TRUE(json_object_object_get_ex(nf, "failed_by_reason", &fr));
  for (int i = 0; i < 100 && json_object_get_int(v) == 0; i++) {
    json_object_put(s);
    usleep(100000);
    s = json_tokener_parse(ep->stats_json().c_str());
    json_object_object_get_ex(s, "runtime", &rt);
    json_object_object_get_ex(rt, "endpoints", &eps);
    json_object_object_get_ex(eps, "nofail", &nf);
    json_object_object_get_ex(nf, "failed_by_reason", &fr);
    json_object_object_get_ex(fr, "no_failure_path", &v);
  }
  EXPECT_EQ(1, json_object_get_int(v)) << stats;
  json_object_put(s);
}

TEST_F(EndpointIamControl, DenyListBucketTurnsMissingKeysInto403) {
  ep.reset(new LocalEndpoint({"-bucket", "results", "-bucket", "inputs", "-deny", "s3:ListBucket:results",
                              "-deny", "s3:DeleteObject:inputs"}));
  std::string text;
  json_object *j = boto3(*ep, R"PY(
s3.put_object(Bucket="results", Key="here", Body=b"x")
res["get_missing"] = code(lambda: s3.get_object(Bucket="results", Key="not-yet"))
res["head_missing"] = code(lambda: s3.head_object(Bucket="results", Key="not-yet"))
res["get_present"] = code(lambda: s3.get_object(Bucket="results", Key="here"))
res["list"] = code(lambda: s3.list_objects_v2(Bucket="results"))
res["other_missing"] = code(lambda: s3.get_object(Bucket="inputs", Key="not-yet"))
res["other_list"] = code(lambda: s3.list_objects_v2(Bucket="inputs"))
s3.put_object(Bucket="inputs", Key="keep", Body=b"x")
res["delete_denied"] = code(lambda: s3.delete_object(Bucket="inputs", Key="keep"))
res["still_there"] = code(lambda: s3.head_object(Bucket="inputs", Key="keep"))
try:
    s3.get_object(Bucket="results", Key="not-yet")
except botocore.exceptions.ClientError as e:
    res["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
)PY",
                         &text);
  ASSERT_NE(j, nullptr) << text;
  EXPECT_EQ("AccessDenied", field(j, "get_missing"));
  EXPECT_EQ("403", field(j, "head_missing"));
  EXPECT_EQ("403", field(j, "status"));
  EXPECT_EQ("ok", field(j, "get_present"));
  EXPECT_EQ("AccessDenied", field(j, "list"));
  EXPECT_EQ("NoSuchKey", field(j, "other_missing"));
  EXPECT_EQ("ok", field(j, "other_list"));
  EXPECT_EQ("AccessDenied", field(j, "delete_denied"));
  EXPECT_EQ("ok", field(j, "still_there"));
  json_object_put(j);
}

TEST_F(EndpointIamControl, ColdStartHoldsTheQueueUntilWarm) {
  ep.reset(new LocalEndpoint({"-bucket", "inputs", "-endpoint",
                              "frozen,model=centerpoint,output=s3://results/cold,cold_start_ms=600000", "-endpoint",
                              "thaws,model=centerpoint,output=s3://results/warm,cold_start_ms=300"}));
  std::string text;
  json_object *j = boto3(*ep, R"PY(
s3.put_object(Bucket="inputs", Key="t.png", Body=png())
frozen = smr.invoke_endpoint_async(EndpointName="frozen", InputLocation="s3://inputs/t.png")
thaws = smr.invoke_endpoint_async(EndpointName="thaws", InputLocation="s3://inputs/t.png")
res["thawed_body"] = wait_object(thaws["OutputLocation"]) or ""
res["frozen_body"] = wait_object(frozen["OutputLocation"], tries=5) or ""
)PY",
                         &text);
  ASSERT_NE(j, nullptr) << text;
  EXPECT_NE(std::string::npos, field(j, "thawed_body").find("FeatureCollection")) << text;
  EXPECT_EQ("", field(j, "frozen_body"));
  json_object_put(j);
  json_object *s = json_tokener_parse(ep->stats_json().c_str());
  ASSERT_NE(s, nullptr);
  json_object *rt = nullptr, *eps = nullptr, *fz = nullptr, *v = nullptr;
  ASSERT_TRUE(json_object_object_get_ex(s, "runtime", &rt));
  ASSERT_TRUE(json_object_object_get_ex(rt, "endpoints", &eps));
  ASSERT_TRUE(json_object_object_get_ex(eps, "frozen", &fz));
  ASSERT_TRUE(json_object_object_get_ex(fz, "queue_depth", &v));
  EXPECT_EQ(1, json_object_get_int(v));
  ASSERT_TRUE(json_object_object_get_ex(fz, "warm", &v));
  EXPECT_FALSE(json_object_get_boolean(v));
  json_object_put(s);
}

// The client side of the same features: our DescribeEndpoint client and the
// preflight over it, and the bucket check naming the missing grant.
TEST_F(EndpointIamControl, PreflightDescribesTheEndpointAndNamesMissingGrants) {
  ep.reset(new LocalEndpoint({"-bucket", "inputs", "-endpoint",
                              "ep,model=centerpoint,output=s3://results/o,failure=s3://results/f", "-endpoint",
                              "nofail,output=s3://results/nf,failure=none", "-endpoint", "hidden",
                              "-deny", "sagemaker:DescribeEndpoint:hidden", "-deny", "s3:ListBucket:results"}));
  asd_aws_config ac;
  asd_aws_config_init(&ac);
  ac.region = "us-east-1";
  ac.endpoint_url = ep->url().c_str();
  ac.access_key_id = asd_test::kLocalAccessKey;
  ac.secret_access_key = asd_test::kLocalSecretKey;
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  asd_aws_context *ctx = asd_aws_context_new(&ac, &ae);
  ASSERT_NE(ctx, nullptr) << ae.message;
  asd_preflight pf;
  asd_error err;
  asd_error_clear(&err);
  ASSERT_EQ(0, asd_preflight_endpoint(ctx, "ep", &pf, &err)) << err.message;
  EXPECT_EQ(1, pf.described);
  EXPECT_STREQ("InService", pf.info.status);
  EXPECT_EQ(1, pf.info.is_async);
  EXPECT_STREQ("s3://results/o", pf.info.output_path);
  EXPECT_STREQ("s3://results/f", pf.info.failure_path);
  EXPECT_STREQ("", pf.warning);
  // failure=none: a warning naming the missing S3FailurePath, not an error.
  ASSERT_EQ(0, asd_preflight_endpoint(ctx, "nofail", &pf, &err)) << err.message;
  EXPECT_STREQ("", pf.info.failure_path);
  EXPECT_NE(std::string::npos, std::string(pf.warning).find("no S3FailurePath")) << pf.warning;
  // Not allowed to describe: a warning, the run may go on.
  ASSERT_EQ(0, asd_preflight_endpoint(ctx, "hidden", &pf, &err)) << err.message;
  EXPECT_EQ(0, pf.described);
  EXPECT_NE(std::string::npos, std::string(pf.warning).find("DescribeEndpoint not allowed")) << pf.warning;
  // Unknown: an error naming the endpoint and the region.
  EXPECT_EQ(-1, asd_preflight_endpoint(ctx, "nope", &pf, &err));
  EXPECT_NE(std::string::npos, std::string(err.message).find("endpoint 'nope' not found in region us-east-1"))
      << err.message;
  // Buckets: the learnt output bucket lacks s3:ListBucket, and the message says so.
  ASSERT_EQ(0, asd_preflight_endpoint(ctx, "ep", &pf, &err));
  asd_async_config cfg;
  asd_config_init(&cfg);
  snprintf(cfg.input_bucket, sizeof cfg.input_bucket, "inputs");
  EXPECT_EQ(0, asd_preflight_bucket(ctx, "input", "inputs", &err)) << err.message;
  EXPECT_EQ(-1, asd_preflight_buckets(ctx, &cfg, &pf, &err));
  EXPECT_NE(std::string::npos, std::string(err.message).find("endpoint output bucket 'results'")) << err.message;
  EXPECT_NE(std::string::npos, std::string(err.message).find("s3:ListBucket on arn:aws:s3:::results")) << err.message;
  EXPECT_EQ(-1, asd_preflight_bucket(ctx, "input", "no-such-bucket", &err));
  EXPECT_NE(std::string::npos, std::string(err.message).find("does not exist")) << err.message;
  // The deletion scope follows: input prefix and the endpoint's own paths only.
  asd_resources *r = asd_resources_new(ASD_CLEANUP_IMMEDIATE, 0, nullptr, nullptr);
  asd_preflight_scopes(r, &cfg, &pf);
  EXPECT_TRUE(asd_resources_in_scope(r, "inputs", "async-inference/input/x"));
  EXPECT_FALSE(asd_resources_in_scope(r, "inputs", "elsewhere/x"));
  EXPECT_TRUE(asd_resources_in_scope(r, "results", "o/async-inference/output/u.out"));
  EXPECT_TRUE(asd_resources_in_scope(r, "results", "f/u-error.out"));
  EXPECT_FALSE(asd_resources_in_scope(r, "results", "other/u.out"));
  asd_resources_free(r);
  asd_aws_context_free(ctx);
}

}  // namespace
