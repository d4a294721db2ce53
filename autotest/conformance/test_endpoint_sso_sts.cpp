// The local endpoint's IAM Identity Center portal (apps/endpoint/sso_api.c)
// and the STS role-chaining cap (sts_api.c), proven with an independent
// client: botocore's own "sso" and "sts" clients (boto3), plus raw HTTP for
// what boto3 validates before sending.
//   - GetRoleCredentials with the -sso-token bearer token issues credentials
//     that S3 then accepts (with their session token only, as STS ones);
//   - a wrong or missing token is UnauthorizedException 401, a malformed
//     account id InvalidRequestException 400, as the service answers;
//   - credentials the endpoint issued (STS or SSO) cannot AssumeRole for more
//     than an hour: ValidationError "...1 hour session limit for roles
//     assumed by role chaining." (it granted 12 h chains on main at 2d28b95);
//   - session tokens differing in one byte, shortened or extended are refused.
#include <gtest/gtest.h>

#include <json-c/json.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "asd_local_endpoint.h"

namespace {

const char *kToken = "sso-bearer-4e1f9c";

std::string slurp(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool have_boto3() { return std::system("python3 -c 'import boto3' >/dev/null 2>&1") == 0; }

// Runs a python3 script with the endpoint URL; returns its stdout+stderr.
std::string run_python(const asd_test::LocalEndpoint &ep, const std::string &name, const std::string &code) {
  // Beside the endpoint's fresh data directory, so parallel tests never share it.
  std::string script = ep.data_dir() + "-" + name + ".py";
  std::string out = ep.data_dir() + "-" + name + ".out";
  std::ofstream(script) << code;
  std::string cmd = "env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "
                    "python3 " + script + " " + ep.url() + " " + kToken + " >" + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string text = slurp(out);
  std::remove(script.c_str());
  std::remove(out.c_str());
  if (rc != 0) text += "\n<exit " + std::to_string(rc) + ">";
  return text;
}

TEST(EndpointSso, Boto3GetRoleCredentials) {
  if (!have_boto3()) GTEST_SKIP() << "python3 has no boto3";
  asd_test::LocalEndpoint ep({"-sso-token", kToken, "-bucket", "sso-bucket"});
  std::string o = run_python(ep, "sso", R"PY(
import sys, time, boto3, botocore
url, token = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=url, region_name="eu-west-1")
sso = boto3.client("sso", **kw)
def err(f):
    try:
        f()
        return "OK"
    except botocore.exceptions.ClientError as e:
        return "%s %d" % (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
rc = sso.get_role_credentials(roleName="Detector", accountId="123456789012", accessToken=token)["roleCredentials"]
print("key", rc["accessKeyId"][:4], len(rc["accessKeyId"]))
left = rc["expiration"] / 1000.0 - time.time()
print("expiry", "about-an-hour" if 3000 < left <= 3601 else left)
def s3(key, secret, tok):
    c = boto3.client("s3", aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=tok, **kw)
    return err(lambda: c.list_objects_v2(Bucket="sso-bucket"))
t = rc["sessionToken"]
print("s3", s3(rc["accessKeyId"], rc["secretAccessKey"], t))
print("s3-onebyte", s3(rc["accessKeyId"], rc["secretAccessKey"], t[:-1] + ("A" if t[-1] != "A" else "B")))
print("s3-prefix", s3(rc["accessKeyId"], rc["secretAccessKey"], t[:-1]))
print("s3-longer", s3(rc["accessKeyId"], rc["secretAccessKey"], t + "A"))
print("wrongtoken", err(lambda: sso.get_role_credentials(roleName="Detector", accountId="123456789012",
                                                         accessToken=token + "x")))
print("badaccount", err(lambda: sso.get_role_credentials(roleName="Detector", accountId="12345",
                                                         accessToken=token)))
# Role chaining from SSO credentials: at most an hour, as on AWS.
sts = boto3.client("sts", aws_access_key_id=rc["accessKeyId"], aws_secret_access_key=rc["secretAccessKey"],
                   aws_session_token=t, **kw)
arn = "arn:aws:iam::123456789012:role/next"
print("chain-7200", err(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)))
print("chain-3600", err(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=3600)))
c2 = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
sts2 = boto3.client("sts", aws_access_key_id=c2["AccessKeyId"], aws_secret_access_key=c2["SecretAccessKey"],
                    aws_session_token=c2["SessionToken"], **kw)
print("chain2-43200", err(lambda: sts2.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=43200)))
try:
    sts2.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)
except botocore.exceptions.ClientError as e:
    print("message", e.response["Error"]["Message"])
base = boto3.client("sts", aws_access_key_id="ASDLOCALACCESSKEY",
                    aws_secret_access_key="asdlocal-secret-not-for-aws", **kw)
print("base-7200", err(lambda: base.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)))
)PY");
  EXPECT_NE(std::string::npos, o.find("key ASIA 20")) << o;
  EXPECT_NE(std::string::npos, o.find("expiry about-an-hour")) << o;
  EXPECT_NE(std::string::npos, o.find("s3 OK")) << o;
  EXPECT_NE(std::string::npos, o.find("s3-onebyte InvalidToken 400")) << o;
  EXPECT_NE(std::string::npos, o.find("s3-prefix InvalidToken 400")) << o;
  EXPECT_NE(std::string::npos, o.find("s3-longer InvalidToken 400")) << o;
  EXPECT_NE(std::string::npos, o.find("wrongtoken UnauthorizedException 401")) << o;
  EXPECT_NE(std::string::npos, o.find("badaccount InvalidRequestException 400")) << o;
  EXPECT_NE(std::string::npos, o.find("chain-7200 ValidationError 400")) << o;
  EXPECT_NE(std::string::npos, o.find("chain-3600 OK")) << o;
  EXPECT_NE(std::string::npos, o.find("chain2-43200 ValidationError 400")) << o;
  EXPECT_NE(std::string::npos,
            o.find("message The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
                   "role chaining."))
      << o;
  EXPECT_NE(std::string::npos, o.find("base-7200 OK")) << o;

  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *sso = nullptr, *v = nullptr;
  ASSERT_TRUE(root && json_object_object_get_ex(root, "sso", &sso)) << ep.stats_json();
  ASSERT_TRUE(json_object_object_get_ex(sso, "credentials_issued", &v));
  EXPECT_EQ(1, json_object_get_int(v));
  ASSERT_TRUE(json_object_object_get_ex(sso, "unauthorized", &v));
  EXPECT_EQ(1, json_object_get_int(v));
  json_object_put(root);
}

TEST(EndpointSso, AnsweredFromTheHeadersWithoutASignature) {
  asd_test::LocalEndpoint ep({"-sso-token", kToken});
  std::string path = ep.url() + "/federation/credentials?account_id=123456789012&role_name=Detector";
  // No token, a wrong one: 401 in rest-json (x-amzn-ErrorType + message).
  asd_test::HttpResult r = asd_test::http_request("GET", path);
  EXPECT_EQ(401, r.status) << r.body;
  EXPECT_EQ(0u, r.header("x-amzn-errortype").find("UnauthorizedException")) << r.header("x-amzn-errortype");
  EXPECT_NE(std::string::npos, r.body.find("Session token not found or invalid")) << r.body;
  r = asd_test::http_request("GET", path, "", {std::string("x-amz-sso_bearer_token: ") + kToken + "0"});
  EXPECT_EQ(401, r.status) << r.body;
  // Missing parameter: 400 InvalidRequestException.
  r = asd_test::http_request("GET", ep.url() + "/federation/credentials?account_id=123456789012", "",
                             {std::string("x-amz-sso_bearer_token: ") + kToken});
  EXPECT_EQ(400, r.status) << r.body;
  EXPECT_EQ(0u, r.header("x-amzn-errortype").find("InvalidRequestException"));
  // The right token: credentials, with no SigV4 signature on the request.
  r = asd_test::http_request("GET", path, "", {std::string("x-amz-sso_bearer_token: ") + kToken});
  ASSERT_EQ(200, r.status) << r.body;
  json_object *o = json_tokener_parse(r.body.c_str());
  json_object *rc = nullptr, *v = nullptr;
  ASSERT_TRUE(o && json_object_object_get_ex(o, "roleCredentials", &rc)) << r.body;
  ASSERT_TRUE(json_object_object_get_ex(rc, "expiration", &v));
  EXPECT_TRUE(json_object_is_type(v, json_type_int));
  EXPECT_GT(json_object_get_int64(v), (int64_t)time(nullptr) * 1000);
  json_object_put(o);
}

// SSO OIDC CreateToken (refresh_token grant) as botocore's own sso-oidc
// client calls it (gaps item 6): a new access token that the portal then
// accepts, a rotated refresh token (the spent one is an InvalidGrant), and
// the modelled exceptions for a wrong client or an unsupported grant.
TEST(EndpointSso, Boto3SsoOidcCreateToken) {
  if (!have_boto3()) GTEST_SKIP() << "python3 has no boto3";
  asd_test::LocalEndpoint ep({"-sso-token", kToken, "-sso-oidc", "client-1:client-secret-9:refresh-0"});
  std::string o = run_python(ep, "oidc", R"PY(
import sys, boto3, botocore
from botocore import UNSIGNED
from botocore.config import Config
url, token = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=url, region_name="eu-west-1", config=Config(signature_version=UNSIGNED))
oidc = boto3.client("sso-oidc", **kw)
sso = boto3.client("sso", **kw)
def name(f):
    try:
        f()
        return "OK"
    except oidc.exceptions.InvalidGrantException as e:
        return "InvalidGrantException %s %s" % (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response.get("error"))
    except oidc.exceptions.InvalidClientException as e:
        return "InvalidClientException %s" % e.response["ResponseMetadata"]["HTTPStatusCode"]
    except oidc.exceptions.UnsupportedGrantTypeException as e:
        return "UnsupportedGrantTypeException %s" % e.response["ResponseMetadata"]["HTTPStatusCode"]
t = oidc.create_token(clientId="client-1", clientSecret="client-secret-9", grantType="refresh_token",
                      refreshToken="refresh-0")
print("type", t["tokenType"], "expires", t["expiresIn"] > 0, "new refresh", t["refreshToken"] != "refresh-0")
rc = sso.get_role_credentials(roleName="Detector", accountId="123456789012", accessToken=t["accessToken"])
print("portal accepts it", rc["roleCredentials"]["accessKeyId"][:4])
print("spent:", name(lambda: oidc.create_token(clientId="client-1", clientSecret="client-secret-9",
                                               grantType="refresh_token", refreshToken="refresh-0")))
print("client:", name(lambda: oidc.create_token(clientId="client-1", clientSecret="wrong",
                                                grantType="refresh_token", refreshToken=t["refreshToken"])))
print("grant:", name(lambda: oidc.create_token(clientId="client-1", clientSecret="client-secret-9",
                                               grantType="authorization_code", code="x")))
t2 = oidc.create_token(clientId="client-1", clientSecret="client-secret-9", grantType="refresh_token",
                       refreshToken=t["refreshToken"])
print("rotated again", t2["refreshToken"] not in ("refresh-0", t["refreshToken"]))
)PY");
  EXPECT_NE(std::string::npos, o.find("type Bearer expires True new refresh True")) << o;
  EXPECT_NE(std::string::npos, o.find("portal accepts it ASIA")) << o;
  EXPECT_NE(std::string::npos, o.find("spent: InvalidGrantException 400")) << o;
  EXPECT_NE(std::string::npos, o.find("client: InvalidClientException 401")) << o;
  EXPECT_NE(std::string::npos, o.find("grant: UnsupportedGrantTypeException 400")) << o;
  EXPECT_NE(std::string::npos, o.find("rotated again True")) << o;
  EXPECT_EQ(std::string::npos, o.find("<exit")) << o;
  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *sso = nullptr, *v = nullptr;
  ASSERT_TRUE(root && json_object_object_get_ex(root, "sso", &sso));
  ASSERT_TRUE(json_object_object_get_ex(sso, "tokens_refreshed", &v));
  EXPECT_EQ(2, json_object_get_int(v));
  json_object_put(root);
}

// What boto3 validates before sending: a body without the required members,
// or no JSON at all, is InvalidRequestException (invalid_request).
TEST(EndpointSso, CreateTokenRefusesABadBody) {
  asd_test::LocalEndpoint ep({"-sso-token", kToken, "-sso-oidc", "client-1:client-secret-9:refresh-0"});
  for (const char *body : {"", "not json", "{\"clientId\":\"client-1\"}", "[1]"}) {
    asd_test::HttpResult r = asd_test::http_request("POST", ep.url() + "/token", body,
                                                    {"Content-Type: application/json"});
    EXPECT_EQ(400, r.status) << body << ": " << r.body;
    EXPECT_EQ(0u, r.header("x-amzn-errortype").find("InvalidRequestException")) << body;
    EXPECT_NE(std::string::npos, r.body.find("\"error\":\"invalid_request\"")) << r.body;
  }
  // Without -sso-oidc there is no client to refresh for.
  asd_test::LocalEndpoint bare({"-sso-token", kToken});
  asd_test::HttpResult r = asd_test::http_request(
      "POST", bare.url() + "/token",
      "{\"clientId\":\"c\",\"clientSecret\":\"s\",\"grantType\":\"refresh_token\",\"refreshToken\":\"r\"}",
      {"Content-Type: application/json"});
  EXPECT_EQ(401, r.status) << r.body;
  EXPECT_EQ(0u, r.header("x-amzn-errortype").find("InvalidClientException"));
}

TEST(EndpointSso, OffUnlessATokenIsGiven) {
  asd_test::LocalEndpoint ep;
  asd_test::HttpResult r =
      asd_test::http_request("GET", ep.url() + "/federation/credentials?account_id=123456789012&role_name=D", "",
                             {std::string("x-amz-sso_bearer_token: ") + kToken});
  EXPECT_NE(200, r.status);  // an (unsigned) S3 request then: refused
  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *sso = nullptr;
  EXPECT_FALSE(root && json_object_object_get_ex(root, "sso", &sso));
  json_object_put(root);
}

}  // namespace
