// Unit tests for the pure logic of plugin/aws: shared config files, region
// and endpoint resolution, the credentials chain's precedence and its error
// messages (no network: the sources used here are all local), S3 URIs and
// key encoding, and AWS error parsing including garbage bodies.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "asd_aws_env.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"
#include "aws/aws_internal.h"

using asd_test::AwsEnvSandbox;

namespace {

bool contains(const char *hay, const char *needle) { return hay && strstr(hay, needle) != nullptr; }

// Resolves credentials through a fresh context; returns 0/-1.
int resolve(asd_aws_credentials *cr, asd_aws_error *err, const char *ak = nullptr, const char *sk = nullptr,
            const char *profile = nullptr) {
  asd_aws_config c;
  asd_aws_config_init(&c);
  c.region = "us-east-1";
  c.access_key_id = ak;
  c.secret_access_key = sk;
  c.profile = profile;
  asd_aws_context *ctx = asd_aws_context_new(&c, err);
  if (!ctx) return -1;
  int rc = asd_aws_context_get_credentials(ctx, cr, err);
  asd_aws_context_free(ctx);
  return rc;
}

}  // namespace

TEST(AwsConfig, IniParsesProfilesCommentsAndNestedSettings) {
  const char *text =
      "# comment\n"
      "; another\n"
      "[default]\r\n"
      "region = eu-west-1\r\n"
      "[profile dev]\n"
      "aws_access_key_id=AKIDDEV\n"
      "  Aws_Secret_Access_Key  =  s e c  \n"
      "s3 =\n"
      "  addressing_style = path\n"
      "[sso-session corp]\n"
      "sso_region = us-east-1\n";
  asd_ini ini;
  asd_aws_error err;
  ASSERT_EQ(0, asd_ini_parse(text, "cfg", 1, &ini, &err)) << err.message;
  EXPECT_STREQ("eu-west-1", asd_ini_get(&ini, "default", "region"));
  EXPECT_STREQ("AKIDDEV", asd_ini_get(&ini, "dev", "aws_access_key_id"));
  EXPECT_STREQ("s e c", asd_ini_get(&ini, "dev", "aws_secret_access_key"));
  EXPECT_EQ(nullptr, asd_ini_get(&ini, "dev", "addressing_style"));
  EXPECT_TRUE(asd_ini_has_section(&ini, "sso-session corp"));
  EXPECT_FALSE(asd_ini_has_section(&ini, "corp"));
  asd_ini_free(&ini);
  // In the credentials file "[profile x]" is just a name.
  ASSERT_EQ(0, asd_ini_parse("[profile x]\na=b\n", "creds", 0, &ini, &err));
  EXPECT_STREQ("b", asd_ini_get(&ini, "profile x", "a"));
  asd_ini_free(&ini);
}

TEST(AwsConfig, GarbledIniFilesGiveOneLineErrorsWithFileAndLine) {
  struct Case {
    const char *text;
    const char *expect;
  } cases[] = {
      {"[default\naws_access_key_id = x\n", "line 1"},
      {"[default]\nthis line is garbage\n", "line 2"},
      {"key = value\n", "outside of any [section]"},
      {"[default]\n = value\n", "empty key"},
      {"[]\n", "empty section name"},
      {"[default] trailing\n", "unexpected text"},
  };
  for (auto &c : cases) {
    SCOPED_TRACE(c.text);
    asd_ini ini;
    asd_aws_error err;
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_ini_parse(c.text, "/home/u/.aws/credentials", 0, &ini, &err));
    EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
    EXPECT_TRUE(contains(err.message, c.expect)) << err.message;
    EXPECT_TRUE(contains(err.message, "/home/u/.aws/credentials")) << err.message;
    EXPECT_EQ(nullptr, strchr(err.message, '\n'));
  }
}

TEST(AwsConfig, RegionPrecedence) {
  AwsEnvSandbox env;
  char r[64];
  asd_aws_error err;
  EXPECT_EQ(-1, asd_aws_resolve_region(nullptr, nullptr, r, sizeof(r), &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
  EXPECT_TRUE(contains(err.message, "AWS_REGION")) << err.message;

  std::string cfg = env.write("config", "[default]\nregion = ap-south-1\n[profile other]\nregion = sa-east-1\n");
  setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
  ASSERT_EQ(0, asd_aws_resolve_region(nullptr, nullptr, r, sizeof(r), &err)) << err.message;
  EXPECT_STREQ("ap-south-1", r);
  ASSERT_EQ(0, asd_aws_resolve_region(nullptr, "other", r, sizeof(r), &err));
  EXPECT_STREQ("sa-east-1", r);
  setenv("AWS_DEFAULT_REGION", "eu-north-1", 1);
  ASSERT_EQ(0, asd_aws_resolve_region(nullptr, nullptr, r, sizeof(r), &err));
  EXPECT_STREQ("eu-north-1", r);
  setenv("AWS_REGION", "us-west-2", 1);
  ASSERT_EQ(0, asd_aws_resolve_region(nullptr, nullptr, r, sizeof(r), &err));
  EXPECT_STREQ("us-west-2", r);
  ASSERT_EQ(0, asd_aws_resolve_region("eu-central-1", nullptr, r, sizeof(r), &err));
  EXPECT_STREQ("eu-central-1", r);
  EXPECT_EQ(-1, asd_aws_resolve_region("us east 1", nullptr, r, sizeof(r), &err));
  EXPECT_TRUE(contains(err.message, "invalid AWS region")) << err.message;

  // A garbled config file is reported, not ignored.
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  env.write("config", "[default\nregion = x\n");
  EXPECT_EQ(-1, asd_aws_resolve_region(nullptr, nullptr, r, sizeof(r), &err));
  EXPECT_TRUE(contains(err.message, "line 1")) << err.message;
}

TEST(AwsConfig, ContextWithoutRegionFailsClearly) {
  AwsEnvSandbox env;
  asd_aws_config c;
  asd_aws_config_init(&c);
  asd_aws_error err;
  EXPECT_EQ(nullptr, asd_aws_context_new(&c, &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
  EXPECT_TRUE(contains(err.message, "region")) << err.message;
  c.region = "us-east-1";
  c.access_key_id = "AKID";
  EXPECT_EQ(nullptr, asd_aws_context_new(&c, &err));
  EXPECT_TRUE(contains(err.message, "secret")) << err.message;
}

TEST(AwsConfig, DefaultEndpointsAreRealAwsHosts) {
  AwsEnvSandbox env;
  asd_aws_endpoint ep;
  asd_aws_error err;
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-west-2", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("https://s3.us-west-2.amazonaws.com", ep.base_url);
  EXPECT_STREQ("s3", ep.signing_name);
  EXPECT_FALSE(ep.path_style);
  EXPECT_FALSE(ep.custom);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_SAGEMAKER_RUNTIME, "eu-west-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("https://runtime.sagemaker.eu-west-1.amazonaws.com", ep.base_url);
  EXPECT_STREQ("sagemaker", ep.signing_name);
  EXPECT_STREQ("eu-west-1", ep.signing_region);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_STS, "cn-north-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("https://sts.cn-north-1.amazonaws.com.cn", ep.base_url);
}

TEST(AwsConfig, EndpointOverridePrecedence) {
  AwsEnvSandbox env;
  asd_aws_endpoint ep;
  asd_aws_error err;
  std::string cfg = env.write("config", "[default]\nendpoint_url = http://profile.example:9001\n");
  setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("http://profile.example:9001", ep.base_url);
  EXPECT_TRUE(ep.path_style);
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("http://127.0.0.1:9000", ep.base_url);
  EXPECT_STREQ("127.0.0.1:9000", ep.host);
  EXPECT_TRUE(ep.custom);
  setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "https://sm.local:8443/base", 1);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_SAGEMAKER_RUNTIME, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("https://sm.local:8443/base", ep.base_url);
  EXPECT_STREQ("/base", ep.base_path);
  EXPECT_STREQ("sagemaker", ep.signing_name);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("http://127.0.0.1:9000", ep.base_url);  // S3 not affected by the SageMaker variable
  setenv("AWS_ENDPOINT_URL_S3", "http://s3.local", 1);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("http://s3.local", ep.base_url);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", "http://explicit:1", nullptr, -1, &ep, &err));
  EXPECT_STREQ("http://explicit:1", ep.base_url);
  setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
  ASSERT_EQ(0, asd_aws_resolve_endpoint(ASD_AWS_S3, "us-east-1", nullptr, nullptr, -1, &ep, &err));
  EXPECT_STREQ("https://s3.us-east-1.amazonaws.com", ep.base_url);
  // Default ports are dropped from the Host header.
  ASSERT_EQ(0, asd_aws_parse_endpoint_url("https://h.example:443", &ep, &err));
  EXPECT_STREQ("h.example", ep.host);
}

TEST(AwsConfig, UnparsableEndpointUrlsAreRejected) {
  AwsEnvSandbox env;
  const char *bad[] = {"ftp://x", "http://", "http://:80", "http://h:99999", "http://h:abc", "http://h/?q=1",
                       "http://user@h", "127.0.0.1:9000", "http://h o/", ""};
  for (const char *u : bad) {
    SCOPED_TRACE(u);
    asd_aws_endpoint ep;
    asd_aws_error err;
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_aws_parse_endpoint_url(u, &ep, &err));
    EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
    if (*u) {
      EXPECT_TRUE(contains(err.message, u)) << err.message;
    }
  }
  setenv("AWS_ENDPOINT_URL", "localhost:9000", 1);
  asd_aws_config c;
  asd_aws_config_init(&c);
  c.region = "us-east-1";
  asd_aws_error err;
  EXPECT_EQ(nullptr, asd_aws_context_new(&c, &err));
  EXPECT_TRUE(contains(err.message, "AWS_ENDPOINT_URL")) << err.message;
}

TEST(AwsConfig, S3UriParsing) {
  asd_s3_uri u;
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_uri_parse("s3://my-bucket/dir/a b+c.tif", 0, &u, &err));
  EXPECT_STREQ("my-bucket", u.bucket);
  EXPECT_STREQ("dir/a b+c.tif", u.key);
  asd_s3_uri_free(&u);
  ASSERT_EQ(0, asd_s3_uri_parse("https://my-bucket.s3.us-west-2.amazonaws.com/res/x%20y.out", 0, &u, &err));
  EXPECT_STREQ("my-bucket", u.bucket);
  EXPECT_STREQ("res/x y.out", u.key);
  asd_s3_uri_free(&u);
  ASSERT_EQ(0, asd_s3_uri_parse("https://s3.eu-west-1.amazonaws.com/other/k", 0, &u, &err));
  EXPECT_STREQ("other", u.bucket);
  EXPECT_STREQ("k", u.key);
  asd_s3_uri_free(&u);
  ASSERT_EQ(0, asd_s3_uri_parse("s3://b-1", 1, &u, &err));
  EXPECT_STREQ("", u.key);
  asd_s3_uri_free(&u);
  struct {
    const char *uri;
    const char *expect;
  } bad[] = {{"s3://bucket", "no object key"}, {"s3://bucket/", "no object key"}, {"s3:///key", "no bucket"},
             {"/vsis3/b/k", "not an S3 URI"},  {"s3://bad bucket/k", "invalid bucket"}, {"", "empty"}};
  for (auto &b : bad) {
    SCOPED_TRACE(b.uri);
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_s3_uri_parse(b.uri, 0, &u, &err));
    EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
    EXPECT_TRUE(contains(err.message, b.expect)) << err.message;
  }
  char *f = asd_s3_uri_format("b", "k/x");
  EXPECT_STREQ("s3://b/k/x", f);
  free(f);
  EXPECT_TRUE(asd_s3_bucket_name_valid("my.bucket-1"));
  EXPECT_FALSE(asd_s3_bucket_name_valid("My_Bucket"));
  EXPECT_FALSE(asd_s3_bucket_name_valid("ab"));
}

TEST(AwsConfig, S3KeyEncoding) {
  char *e = asd_s3_encode_key("dir/a b+c~d/\xC3\xA9t\xC3\xA9%.png");
  EXPECT_STREQ("dir/a%20b%2Bc~d/%C3%A9t%C3%A9%25.png", e);
  free(e);
  e = asd_s3_encode_key("x=y&z?#[]");
  EXPECT_STREQ("x%3Dy%26z%3F%23%5B%5D", e);
  free(e);
}

TEST(AwsConfig, SageMakerEndpointNames) {
  EXPECT_TRUE(asd_sm_endpoint_name_valid("a"));
  EXPECT_TRUE(asd_sm_endpoint_name_valid("my-endpoint--2"));
  EXPECT_FALSE(asd_sm_endpoint_name_valid("-x"));
  EXPECT_FALSE(asd_sm_endpoint_name_valid("x-"));
  EXPECT_FALSE(asd_sm_endpoint_name_valid("a_b"));
  EXPECT_FALSE(asd_sm_endpoint_name_valid(std::string(64, 'a').c_str()));
  EXPECT_FALSE(asd_sm_endpoint_name_valid(""));
}

// ------------------------------------------------------------------ errors

TEST(AwsErrors, ParsesS3XmlStsXmlAndJson) {
  asd_aws_error err;
  asd_aws_error_clear(&err);
  const char *xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does "
      "not exist.</Message><Key>a</Key><RequestId>R1</RequestId></Error>";
  asd_aws_parse_error(404, nullptr, xml, strlen(xml), &err);
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
  EXPECT_STREQ("NoSuchKey", err.code);
  EXPECT_STREQ("The specified key does not exist.", err.message);
  EXPECT_STREQ("R1", err.request_id);

  const char *sts =
      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>"
      "AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>R2"
      "</RequestId></ErrorResponse>";
  asd_aws_parse_error(403, nullptr, sts, strlen(sts), &err);
  EXPECT_EQ(ASD_AWS_ERR_ACCESS_DENIED, err.kind);
  EXPECT_STREQ("AccessDenied", err.code);
  EXPECT_STREQ("R2", err.request_id);

  const char *hdrs[] = {"x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/coral/", "x-amzn-RequestId: R3",
                        nullptr};
  const char *js = "{\"message\":\"Rate exceeded\"}";
  asd_aws_parse_error(400, hdrs, js, strlen(js), &err);
  EXPECT_EQ(ASD_AWS_ERR_THROTTLED, err.kind);
  EXPECT_STREQ("ThrottlingException", err.code);
  EXPECT_STREQ("Rate exceeded", err.message);
  EXPECT_STREQ("R3", err.request_id);

  const char *js2 = "{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"Message\":\"bad\"}";
  asd_aws_parse_error(400, nullptr, js2, strlen(js2), &err);
  EXPECT_EQ(ASD_AWS_ERR_VALIDATION, err.kind);
  EXPECT_STREQ("ValidationException", err.code);

  const char *slow = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
  asd_aws_parse_error(503, nullptr, slow, strlen(slow), &err);
  EXPECT_EQ(ASD_AWS_ERR_THROTTLED, err.kind);
  EXPECT_TRUE(asd_aws_is_retryable(503, err.code));
}

TEST(AwsErrors, GarbageBodiesNeverFail) {
  const char *bodies[] = {"<html><body>502 Bad Gateway</body></html>", "<Error><Code>unterminated", "{not json",
                          "\x01\x02\xff\xfe binary", "", "{\"code\": 42}", "[1,2,3]", "<?xml version=\"1.0\"?>"};
  long statuses[] = {502, 500, 400, 503, 404, 400, 403, 500};
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    SCOPED_TRACE(bodies[i]);
    asd_aws_error err;
    asd_aws_error_clear(&err);
    asd_aws_parse_error(statuses[i], nullptr, bodies[i], strlen(bodies[i]), &err);
    EXPECT_EQ(asd_aws_classify(statuses[i], nullptr), err.kind);
    EXPECT_NE('\0', err.message[0]);
    for (const char *p = err.message; *p; p++) EXPECT_GE((unsigned char)*p, 0x20);
  }
}

TEST(AwsErrors, ClassificationAndRetryPolicy) {
  EXPECT_EQ(ASD_AWS_ERR_THROTTLED, asd_aws_classify(429, nullptr));
  EXPECT_EQ(ASD_AWS_ERR_THROTTLED, asd_aws_classify(400, "Throttling"));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, asd_aws_classify(403, "SignatureDoesNotMatch"));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, asd_aws_classify(403, "InvalidAccessKeyId"));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, asd_aws_classify(403, "RequestTimeTooSkewed"));
  EXPECT_EQ(ASD_AWS_ERR_ACCESS_DENIED, asd_aws_classify(403, nullptr));
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, asd_aws_classify(404, nullptr));
  EXPECT_EQ(ASD_AWS_ERR_SERVER, asd_aws_classify(500, "InternalError"));
  EXPECT_EQ(ASD_AWS_ERR_SERVER, asd_aws_classify(504, nullptr));
  EXPECT_EQ(ASD_AWS_ERR_TOO_LARGE, asd_aws_classify(400, "EntityTooLarge"));
  EXPECT_EQ(ASD_AWS_ERR_MODEL, asd_aws_classify(424, "ModelError"));
  EXPECT_EQ(ASD_AWS_ERR_TIMEOUT, asd_aws_classify(400, "RequestTimeout"));
  EXPECT_EQ(ASD_AWS_ERR_VALIDATION, asd_aws_classify(400, "MalformedXML"));
  // SageMaker Runtime: ModelNotReadyException (429) waits and retries;
  // InternalDependencyException (530) is a fault no retry fixes.
  EXPECT_EQ(ASD_AWS_ERR_THROTTLED, asd_aws_classify(429, "ModelNotReadyException"));
  EXPECT_TRUE(asd_aws_is_retryable(429, "ModelNotReadyException"));
  EXPECT_EQ(ASD_AWS_ERR_SERVER, asd_aws_classify(530, "InternalDependencyException"));
  EXPECT_FALSE(asd_aws_is_retryable(530, "InternalDependencyException"));
  EXPECT_FALSE(asd_aws_is_retryable(400, "ValidationError"));
  EXPECT_TRUE(asd_aws_is_retryable(500, "InternalFailure"));
  EXPECT_TRUE(asd_aws_is_retryable(503, "ServiceUnavailable"));
  {
    const char *hdr[] = {"x-amzn-ErrorType: InternalDependencyException", nullptr};
    asd_aws_error e;
    asd_aws_error_clear(&e);
    asd_aws_parse_error(530, hdr, "{\"message\":\"dependency\"}", 24, &e);
    EXPECT_STREQ("InternalDependencyException", e.code);
    EXPECT_EQ(ASD_AWS_ERR_SERVER, e.kind);
    EXPECT_FALSE(asd_aws_error_is_transient(&e));  // a 5xx, yet not worth retrying
  }
  for (long s : {500L, 502L, 503L, 504L, 429L}) EXPECT_TRUE(asd_aws_is_retryable(s, nullptr)) << s;
  EXPECT_TRUE(asd_aws_is_retryable(400, "RequestTimeout"));
  EXPECT_TRUE(asd_aws_is_retryable(400, "ThrottlingException"));
  EXPECT_TRUE(asd_aws_is_retryable(503, "SlowDown"));
  for (const char *c : {"AccessDenied", "SignatureDoesNotMatch", "ValidationError", "NoSuchKey", "MalformedXML"})
    EXPECT_FALSE(asd_aws_is_retryable(c[0] == 'N' ? 404 : 400, c)) << c;
  EXPECT_FALSE(asd_aws_is_retryable(501, nullptr));
}

TEST(AwsErrors, Iso8601AndCredentialDocuments) {
  double t;
  ASSERT_EQ(0, asd_aws_parse_iso8601("2015-08-30T12:36:00Z", &t));
  EXPECT_EQ(1440938160.0, t);
  ASSERT_EQ(0, asd_aws_parse_iso8601("2015-08-30T12:36:00.123Z", &t));
  EXPECT_EQ(1440938160.0, t);
  ASSERT_EQ(0, asd_aws_parse_iso8601("2015-08-30T14:36:00+02:00", &t));
  EXPECT_EQ(1440938160.0, t);
  EXPECT_EQ(-1, asd_aws_parse_iso8601("yesterday", &t));

  asd_aws_credentials c;
  asd_aws_error err;
  const char *ok = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\",\"Expiration\":\"2030-01-01T00:00:00Z\"}";
  ASSERT_EQ(0, asd_aws_parse_credentials_json(ok, strlen(ok), "ecs", &c, &err));
  EXPECT_STREQ("T", c.session_token);
  EXPECT_GT(c.expiration, 1.8e9);
  asd_aws_credentials_free(&c);
  const char *bad[] = {"not json", "{\"AccessKeyId\":\"A\"}", "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}",
                       "{\"Code\":\"Failure\",\"Message\":\"no role\"}", "[]"};
  for (const char *b : bad) {
    SCOPED_TRACE(b);
    EXPECT_EQ(-1, asd_aws_parse_credentials_json(b, strlen(b), "imds", &c, &err));
    EXPECT_TRUE(contains(err.message, "imds")) << err.message;
  }
  const char *sts_bad = "<AssumeRoleResponse><AssumeRoleResult></AssumeRoleResult></AssumeRoleResponse>";
  EXPECT_EQ(-1, asd_sts_parse_credentials(sts_bad, strlen(sts_bad), &c, &err));
  EXPECT_EQ(ASD_AWS_ERR_PARSE, err.kind);
  EXPECT_EQ(-1, asd_sts_parse_credentials("garbage", 7, &c, &err));
}

TEST(AwsErrors, FormatIsOneLine) {
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_error_set(&err, ASD_AWS_ERR_THROTTLED, "multi\nline\tmessage");
  err.http_status = 503;
  snprintf(err.code, sizeof(err.code), "SlowDown");
  snprintf(err.request_id, sizeof(err.request_id), "RID");
  err.attempts = 3;
  char line[600];
  asd_aws_error_format(&err, line, sizeof(line));
  EXPECT_STREQ("throttled: multi line message (HTTP 503, SlowDown, request id RID, 3 attempts)", line);
}

// ----------------------------------------------------------- credentials

TEST(AwsCredentials, ExplicitBeatsEnvironmentBeatsProfile) {
  AwsEnvSandbox env;
  std::string cred = env.write("credentials", "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = sp\n");
  setenv("AWS_SHARED_CREDENTIALS_FILE", cred.c_str(), 1);
  asd_aws_credentials c;
  asd_aws_error err;
  ASSERT_EQ(0, resolve(&c, &err)) << err.message;
  EXPECT_STREQ("AKIDPROFILE", c.access_key_id);
  EXPECT_STREQ("profile:default", c.source);
  asd_aws_credentials_free(&c);
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "se", 1);
  setenv("AWS_SESSION_TOKEN", "tok", 1);
  ASSERT_EQ(0, resolve(&c, &err)) << err.message;
  EXPECT_STREQ("AKIDENV", c.access_key_id);
  EXPECT_STREQ("tok", c.session_token);
  EXPECT_STREQ("env", c.source);
  asd_aws_credentials_free(&c);
  ASSERT_EQ(0, resolve(&c, &err, "AKIDEXPLICIT", "sx")) << err.message;
  EXPECT_STREQ("AKIDEXPLICIT", c.access_key_id);
  EXPECT_EQ(nullptr, c.session_token);
  asd_aws_credentials_free(&c);
  // Half-set environment is an error, not a silent fall-through to the profile.
  unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "AWS_SECRET_ACCESS_KEY")) << err.message;
}

TEST(AwsCredentials, ProfileSelectionAndConfigFileKeys) {
  AwsEnvSandbox env;
  std::string cred = env.write("credentials", "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = s1\n");
  std::string cfg = env.write("config",
                              "[profile work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = s2\n"
                              "aws_session_token = wt\n[profile empty]\nregion = us-east-1\n");
  setenv("AWS_SHARED_CREDENTIALS_FILE", cred.c_str(), 1);
  setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
  asd_aws_credentials c;
  asd_aws_error err;
  setenv("AWS_PROFILE", "work", 1);
  ASSERT_EQ(0, resolve(&c, &err)) << err.message;
  EXPECT_STREQ("AKIDWORK", c.access_key_id);
  EXPECT_STREQ("wt", c.session_token);
  asd_aws_credentials_free(&c);
  // The configured profile beats AWS_PROFILE.
  ASSERT_EQ(0, resolve(&c, &err, nullptr, nullptr, "default")) << err.message;
  EXPECT_STREQ("AKIDDEF", c.access_key_id);
  asd_aws_credentials_free(&c);
  setenv("AWS_PROFILE", "nope", 1);
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "'nope' not found")) << err.message;
  setenv("AWS_PROFILE", "empty", 1);
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "has no credentials")) << err.message;
}

TEST(AwsCredentials, NothingConfiguredSaysWhereItLooked) {
  AwsEnvSandbox env;
  asd_aws_credentials c;
  asd_aws_error err;
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
  EXPECT_TRUE(contains(err.message, "no AWS credentials found")) << err.message;
  EXPECT_TRUE(contains(err.message, ".aws/credentials")) << err.message;
}

TEST(AwsCredentials, BadProfilesGiveClearErrors) {
  AwsEnvSandbox env;
  struct Case {
    const char *config;
    const char *credentials;
    const char *profile;
    const char *expect;
  } cases[] = {
      {"", "[default]\naws_access_key_id = A\n", "default", "no aws_secret_access_key"},
      {"", "[default]\ngarbage line\n", "default", "line 2"},
      {"[profile r]\nrole_arn = arn:aws:iam::1:role/x\n", "", "r", "neither source_profile nor credential_source"},
      {"[profile a]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = b\n[profile b]\nrole_arn = "
       "arn:aws:iam::1:role/y\nsource_profile = a\n",
       "", "a", "cycle"},
      {"[profile m]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = m\nmfa_serial = arn:aws:iam::1:mfa/u\n", "", "m",
       "MFA"},
      {"[profile s]\nsso_start_url = https://x\n", "", "s", "SSO"},
      {"[profile c]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Magic\n", "", "c", "Magic"},
      {"[profile r]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = missing\n", "", "r", "'missing' not found"},
  };
  for (auto &cs : cases) {
    SCOPED_TRACE(cs.expect);
    std::string cfg = env.write("config", cs.config);
    std::string cred = env.write("credentials", cs.credentials);
    setenv("AWS_CONFIG_FILE", cfg.c_str(), 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred.c_str(), 1);
    setenv("AWS_PROFILE", cs.profile, 1);
    asd_aws_credentials c;
    asd_aws_error err;
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, resolve(&c, &err));
    EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind);
    EXPECT_TRUE(contains(err.message, cs.expect)) << err.message;
    EXPECT_EQ(nullptr, strchr(err.message, '\n'));
  }
}

TEST(AwsCredentials, WebIdentityMisconfiguration) {
  AwsEnvSandbox env;
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", (env.dir() + "/missing.jwt").c_str(), 1);
  asd_aws_credentials c;
  asd_aws_error err;
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "AWS_ROLE_ARN")) << err.message;
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "missing.jwt")) << err.message;
  std::string empty = env.write("empty.jwt", "\n");
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", empty.c_str(), 1);
  EXPECT_EQ(-1, resolve(&c, &err));
  EXPECT_TRUE(contains(err.message, "empty")) << err.message;
}
