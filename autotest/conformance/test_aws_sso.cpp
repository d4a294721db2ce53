// The client's IAM Identity Center (SSO) provider (plugin/aws/sso.c) against
// the real local endpoint answering GetRoleCredentials (-sso-token): the
// token cache file of `aws sso login` (named as botocore names it, checked
// against botocore itself), sso_session and legacy profiles, the portal
// endpoint (AWS_ENDPOINT_URL_SSO beats AWS_ENDPOINT_URL), credentials cached
// and refreshed by the context, and the one-line "run 'aws sso login
// --profile NAME'" for every unusable token.  On main at 2d28b95 every SSO
// profile was refused.
#include <gtest/gtest.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>

#include "asd_aws_env.h"
#include "asd_local_endpoint.h"
#include "asyncdetect/asd_s3.h"
#include "aws/aws_internal.h"

namespace {

const char *kToken = "portal-access-token-7d3a";
const char *kStartUrl = "https://d-1234567890.awsapps.com/start";

std::string iso_in(double seconds, const char *suffix = "Z") {
  time_t t = time(nullptr) + (time_t)seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[40];
  strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(b) + suffix;
}

long long sso_stat(asd_test::LocalEndpoint &ep, const char *field) {
  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *sso = nullptr, *f = nullptr;
  long long v = -1;
  if (root && json_object_object_get_ex(root, "sso", &sso) && json_object_object_get_ex(sso, field, &f))
    v = json_object_get_int64(f);
  json_object_put(root);
  return v;
}

class AwsSso : public ::testing::Test {
 protected:
  asd_test::AwsEnvSandbox env;
  asd_test::LocalEndpoint ep{{"-sso-token", kToken, "-bucket", "sso-bucket"}};
  asd_aws_context *ctx = nullptr;
  asd_aws_error err;

  void SetUp() override {
    asd_aws_error_clear(&err);
    setenv("AWS_ENDPOINT_URL", ep.url().c_str(), 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_PROFILE", "analyst", 1);
    mkdir((env.dir() + "/.aws").c_str(), 0700);
    mkdir((env.dir() + "/.aws/sso").c_str(), 0700);
    mkdir((env.dir() + "/.aws/sso/cache").c_str(), 0700);
  }
  void TearDown() override { asd_aws_context_free(ctx); }

  void write_config(const std::string &text) { env.write(".aws/config", text); }
  void session_profile() {
    write_config(std::string("[profile analyst]\nsso_session = corp\nsso_account_id = 123456789012\n"
                             "sso_role_name = Detector\n\n[sso-session corp]\nsso_start_url = ") +
                 kStartUrl + "\nsso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n");
  }
  // The token file `aws sso login` writes, under the name botocore derives from key.
  void write_token(const std::string &key, const std::string &token, const std::string &expires_at) {
    char name[46];
    asd_aws_sso_cache_name(key.c_str(), name);
    env.write(std::string(".aws/sso/cache/") + name,
              "{\"startUrl\": \"" + std::string(kStartUrl) + "\", \"region\": \"eu-west-1\", \"accessToken\": \"" +
                  token + "\", \"expiresAt\": \"" + expires_at +
                  "\", \"clientId\": \"cid\", \"clientSecret\": \"csecret\", \"refreshToken\": \"rt\"}");
  }
  void make(double refresh_margin = 300) {
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.credential_refresh_margin = refresh_margin;
    asd_aws_error e;
    ctx = asd_aws_context_new(&c, &e);
    ASSERT_NE(nullptr, ctx) << e.message;
  }
  int get(asd_aws_credentials *cr) { return asd_aws_context_get_credentials(ctx, cr, &err); }
};

TEST(AwsSsoCacheName, IsTheNameBotocoreUses) {
  if (std::system("python3 -c 'import botocore.utils' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no botocore";
  // One python3 run (importing botocore takes seconds): a key per argument, a name per line.
  const char *keys[] = {"corp", kStartUrl, "my-sso session \xc3\xa9"};
  std::string cmd = "python3 -c 'import sys; from botocore.utils import SSOTokenLoader; "
                    "[print(SSOTokenLoader()._generate_cache_key(k, None)) for k in sys.argv[1:]]'";
  for (const char *k : keys) cmd += std::string(" '") + k + "'";
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  for (const char *key : keys) {
    char buf[128] = "";
    ASSERT_NE(nullptr, fgets(buf, sizeof buf, p));
    std::string expected = std::string(buf).substr(0, 40) + ".json";
    char name[46];
    asd_aws_sso_cache_name(key, name);
    EXPECT_EQ(expected, name) << key;
  }
  pclose(p);
}

TEST_F(AwsSso, SessionProfileGetsRoleCredentialsTheServerAccepts) {
  session_profile();
  write_token("corp", kToken, iso_in(3600));
  make();
  asd_aws_credentials cr;
  ASSERT_EQ(0, get(&cr)) << err.message;
  EXPECT_STREQ("sso:analyst", cr.source);
  EXPECT_EQ(0, strncmp(cr.access_key_id, "ASIA", 4));
  EXPECT_NE(nullptr, cr.session_token);
  EXPECT_GT(cr.expiration, (double)time(nullptr) + 3000);
  asd_aws_credentials_free(&cr);
  // S3 verifies the issued key with its session token.
  ASSERT_EQ(0, asd_s3_put_object(ctx, "sso-bucket", "hello.txt", "hi", 2, nullptr, nullptr, &err)) << err.message;
  // Cached: a second request does not call the portal again.
  ASSERT_EQ(0, get(&cr)) << err.message;
  asd_aws_credentials_free(&cr);
  EXPECT_EQ(1, sso_stat(ep, "credentials_issued"));
  EXPECT_EQ(1, sso_stat(ep, "get_role_credentials_calls"));
}

TEST_F(AwsSso, CredentialsAreRefreshedNearExpiry) {
  session_profile();
  write_token("corp", kToken, iso_in(3600));
  make(4000);  // the issued hour is always inside the margin: every call refreshes
  asd_aws_credentials a, b;
  ASSERT_EQ(0, get(&a)) << err.message;
  ASSERT_EQ(0, get(&b)) << err.message;
  EXPECT_STRNE(a.access_key_id, b.access_key_id);
  asd_aws_credentials_free(&a);
  asd_aws_credentials_free(&b);
  EXPECT_EQ(2, sso_stat(ep, "credentials_issued"));
}

TEST_F(AwsSso, LegacyProfileIsKeyedByItsStartUrl) {
  write_config(std::string("[profile analyst]\nsso_start_url = ") + kStartUrl +
               "\nsso_region = eu-west-1\nsso_account_id = 123456789012\nsso_role_name = Detector\n");
  // Older AWS CLI versions wrote the expiry with a "UTC" suffix.
  write_token(kStartUrl, kToken, iso_in(3600, "UTC"));
  make();
  asd_aws_credentials cr;
  ASSERT_EQ(0, get(&cr)) << err.message;
  EXPECT_STREQ("sso:analyst", cr.source);
  asd_aws_credentials_free(&cr);
  EXPECT_EQ(1, sso_stat(ep, "credentials_issued"));
}

TEST_F(AwsSso, UnusableTokensSayHowToLogIn) {
  session_profile();
  const std::string hint = "run 'aws sso login --profile analyst'";
  asd_aws_credentials cr;
  // No cache file at all.
  make();
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, hint.c_str())) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "no IAM Identity Center (SSO) login found for session 'corp'")) << err.message;
  // Expired: refused without calling the portal.
  write_token("corp", kToken, iso_in(-60));
  asd_aws_context_invalidate_credentials(ctx);
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, hint.c_str())) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "expired at")) << err.message;
  EXPECT_EQ(0, sso_stat(ep, "get_role_credentials_calls"));
  // Garbled cache file.
  char name[46];
  asd_aws_sso_cache_name("corp", name);
  env.write(std::string(".aws/sso/cache/") + name, "{not json");
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, hint.c_str())) << err.message;
  // A token the portal rejects (401 UnauthorizedException).
  write_token("corp", "stale-token", iso_in(3600));
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, hint.c_str())) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "UnauthorizedException")) << err.message;
  EXPECT_EQ(nullptr, strstr(err.message, "stale-token")) << "the token leaked into the message: " << err.message;
  EXPECT_EQ(1, sso_stat(ep, "unauthorized"));
  // Every message is one line.
  EXPECT_EQ(nullptr, strchr(err.message, '\n'));
}

TEST_F(AwsSso, PortalFollowsAwsEndpointUrlSso) {
  session_profile();
  write_token("corp", kToken, iso_in(3600));
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);  // nothing listens there
  setenv("AWS_ENDPOINT_URL_SSO", ep.url().c_str(), 1);
  make();
  asd_aws_credentials cr;
  ASSERT_EQ(0, get(&cr)) << err.message;
  asd_aws_credentials_free(&cr);
  EXPECT_EQ(1, sso_stat(ep, "credentials_issued"));
  // Without any override: the region's portal host.
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_SSO");
  asd_aws_endpoint e;
  ASSERT_EQ(0, asd_aws_resolve_sso_endpoint("eu-west-1", nullptr, "analyst", &e, &err)) << err.message;
  EXPECT_STREQ("https://portal.sso.eu-west-1.amazonaws.com", e.base_url);
  ASSERT_EQ(0, asd_aws_resolve_sso_endpoint("cn-north-1", nullptr, "analyst", &e, &err)) << err.message;
  EXPECT_STREQ("https://portal.sso.cn-north-1.amazonaws.com.cn", e.base_url);
}

TEST_F(AwsSso, IncompleteProfilesAreExplained) {
  asd_aws_credentials cr;
  write_config("[profile analyst]\nsso_session = corp\nsso_account_id = 123456789012\n\n"
               "[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\nsso_region = eu-west-1\n");
  make();
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, "lacks sso_role_name")) << err.message;
  write_config("[profile analyst]\nsso_session = nope\nsso_account_id = 123456789012\nsso_role_name = R\n");
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, "[sso-session nope]")) << err.message;
  write_config("[profile analyst]\nsso_session = corp\nsso_region = us-east-1\nsso_account_id = 123456789012\n"
               "sso_role_name = R\n[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n"
               "sso_region = eu-west-1\n");
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, "sso_region")) << err.message;
  write_config("[profile analyst]\nsso_session = corp\nsso_account_id = 1234\nsso_role_name = R\n"
               "[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\nsso_region = eu-west-1\n");
  EXPECT_EQ(-1, get(&cr));
  EXPECT_NE(nullptr, strstr(err.message, "12-digit")) << err.message;
  EXPECT_EQ(0, sso_stat(ep, "get_role_credentials_calls"));
}

}  // namespace
