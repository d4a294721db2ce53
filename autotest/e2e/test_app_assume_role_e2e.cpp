// End-to-end test of gdal_asyncdetect -assume-role against the local
// endpoint acting as STS (apps/endpoint/sts_api.c): the utility calls
// AssumeRole with its base credentials and the external id, then signs every
// S3 and SageMaker call with the temporary credentials it got, which the
// endpoint verifies with their session token.  boto3 (when installed) checks
// the same STS from a real AWS client: a wrong or missing session token and
// a wrong secret are refused.
#include <gtest/gtest.h>

#include <json-c/json.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "asd_local_endpoint.h"
#include "e2e_helpers.h"

using asd_e2e::RunResult;
using asd_e2e::TempDir;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::sample;
using asd_e2e::vector_concat;

namespace {

const char *kRole = "arn:aws:iam::123456789012:role/detector";

long long sts_stat(asd_test::LocalEndpoint &ep, const char *field) {
  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *sts = nullptr, *f = nullptr;
  long long v = -1;
  if (root && json_object_object_get_ex(root, "sts", &sts) && json_object_object_get_ex(sts, field, &f))
    v = json_object_get_int64(f);
  json_object_put(root);
  return v;
}

class E2eAssumeRole : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

TEST_F(E2eAssumeRole, RunsWithTheAssumedRolesCredentials) {
  asd_test::LocalEndpoint ep(vector_concat(endpoint_args(), {"-sts-external-id", "ext-123"}));
  asd_test::set_local_aws_env(ep);
  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  std::vector<std::string> tiling = {"-tile-size", "1024", "-overlap", "128"};
  RunResult r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), out, vector_concat(tiling, {"-assume-role", kRole, "-external-id", "ext-123"})),
      dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  asd_e2e::Accuracy a = asd_e2e::accuracy(out);
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  EXPECT_EQ(1, sts_stat(ep, "sessions_issued"));
  // Every S3 and SageMaker request after AssumeRole was signed with the
  // issued key (and its token): the verifier asked STS for its secret.
  EXPECT_GT(sts_stat(ep, "session_key_lookups"), 20);
  EXPECT_EQ(0, sts_stat(ep, "rejected_tokens"));

  // A wrong external id: refused by STS, one line naming the role, nothing
  // invoked, no output.
  std::string out2 = dir.path() + "/out2.gpkg";
  r = asd_e2e::run_app(
      app_args(sample("scene_utm.tif"), out2, vector_concat(tiling, {"-assume-role", kRole, "-external-id", "nope-1"})),
      dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("-assume-role " + std::string(kRole))) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("AccessDenied")) << r.err;
  EXPECT_EQ(-1, access(out2.c_str(), F_OK));
  EXPECT_EQ(1, sts_stat(ep, "sessions_issued"));
}

TEST_F(E2eAssumeRole, Boto3SessionTokenChecks) {
  int rc = std::system("python3 -c 'import boto3' >/dev/null 2>&1");
  if (rc != 0) GTEST_SKIP() << "python3 has no boto3";
  asd_test::LocalEndpoint ep(endpoint_args());
  TempDir dir;
  std::string script = dir.path() + "/sts.py";
  std::ofstream(script) << R"PY(
import sys, boto3, botocore
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1")
sts = boto3.client("sts", aws_access_key_id="ASDLOCALACCESSKEY",
                   aws_secret_access_key="asdlocal-secret-not-for-aws", **kw)
c = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/detector", RoleSessionName="boto3")["Credentials"]
def code(key, secret, token):
    s3 = boto3.client("s3", aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, **kw)
    try:
        s3.list_objects_v2(Bucket="e2e-input")
        return "OK"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
print("good", code(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]))
t = c["SessionToken"]
print("badtoken", code(c["AccessKeyId"], c["SecretAccessKey"], t[:-1] + ("A" if t[-1] != "A" else "B")))
print("notoken", code(c["AccessKeyId"], c["SecretAccessKey"], None))
print("badsecret", code(c["AccessKeyId"], "x" * 40, c["SessionToken"]))
)PY";
  std::string outp = dir.path() + "/sts.out";
  std::string cmd = "env -u AWS_PROFILE python3 " + script + " " + ep.url() + " >" + outp + " 2>&1";
  ASSERT_EQ(0, std::system(cmd.c_str())) << asd_e2e::read_file(outp);
  std::string o = asd_e2e::read_file(outp);
  EXPECT_NE(std::string::npos, o.find("good OK")) << o;
  EXPECT_NE(std::string::npos, o.find("badtoken InvalidToken")) << o;
  EXPECT_NE(std::string::npos, o.find("notoken InvalidToken")) << o;
  EXPECT_NE(std::string::npos, o.find("badsecret SignatureDoesNotMatch")) << o;
}

}  // namespace
