// Unit tests of the credentials the tool hands GDAL's /vsis3/ (plugin/aws/
// vsis3.c): temporary credentials change during a long run, and GDAL must be
// given the new ones.  GDAL's /vsis3/ reads its credentials for a path with
// VSIGetPathSpecificOption when it opens a file, which is what is checked.
#include <gtest/gtest.h>

#include <string>

#include "asd_aws_env.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_vsis3.h"
#include "cpl_vsi.h"

namespace {

struct Ctx {
  Ctx(const char *ak, const char *sk, const char *token) {
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.region = "us-east-1";
    c.access_key_id = ak;
    c.secret_access_key = sk;
    c.session_token = token;
    asd_aws_error_clear(&err);
    ctx = asd_aws_context_new(&c, &err);
  }
  ~Ctx() { asd_aws_context_free(ctx); }
  asd_aws_context *ctx;
  asd_aws_error err;
};

std::string opt(const char *path, const char *key) {
  const char *v = VSIGetPathSpecificOption(path, key, "");
  return v ? v : "";
}

}  // namespace

// A run's credentials are renewed (a new STS/SSO/IMDS set): asd_vsis3_refresh
// hands them to GDAL for both handlers, once; calling asd_vsis3_configure
// again replaces the tool's own earlier values (before session 6 it took them
// for the user's and kept them, so they could never be refreshed).
TEST(Vsis3Refresh, RenewedCredentialsReachGdalAndTheUsersOwnAreKept) {
  asd_test::AwsEnvSandbox env;
  Ctx a("ASIAFIRSTSET0000", "first-secret", "first-token"), b("ASIASECONDSET000", "second-secret", "second-token");
  ASSERT_NE(nullptr, a.ctx) << a.err.message;
  ASSERT_NE(nullptr, b.ctx) << b.err.message;
  asd_aws_error err;
  asd_aws_error_clear(&err);
  char info[512];
  ASSERT_EQ(0, asd_vsis3_configure("/vsis3/run-bucket/scene.tif", a.ctx, info, sizeof info, &err)) << err.message;
  EXPECT_EQ("ASIAFIRSTSET0000", opt("/vsis3/run-bucket/scene.tif", "AWS_ACCESS_KEY_ID"));

  // The user's own credentials for another bucket are theirs.
  VSISetPathSpecificOption("/vsis3/user-bucket", "AWS_ACCESS_KEY_ID", "AKIAUSEROWN00000");
  VSISetPathSpecificOption("/vsis3/user-bucket", "AWS_SECRET_ACCESS_KEY", "user-secret");
  ASSERT_EQ(0, asd_vsis3_configure("/vsis3/user-bucket/x.tif", a.ctx, info, sizeof info, &err)) << err.message;
  EXPECT_EQ("AKIAUSEROWN00000", opt("/vsis3/user-bucket/x.tif", "AWS_ACCESS_KEY_ID"));

  EXPECT_EQ(1, asd_vsis3_refresh(b.ctx, &err)) << err.message;
  for (const char *p : {"/vsis3/run-bucket/scene.tif", "/vsis3_streaming/run-bucket/scene.tif"}) {
    EXPECT_EQ("ASIASECONDSET000", opt(p, "AWS_ACCESS_KEY_ID")) << p;
    EXPECT_EQ("second-secret", opt(p, "AWS_SECRET_ACCESS_KEY")) << p;
    EXPECT_EQ("second-token", opt(p, "AWS_SESSION_TOKEN")) << p;
  }
  EXPECT_EQ("AKIAUSEROWN00000", opt("/vsis3/user-bucket/x.tif", "AWS_ACCESS_KEY_ID"));
  EXPECT_EQ(0, asd_vsis3_refresh(b.ctx, &err)) << "nothing changed";

  ASSERT_EQ(0, asd_vsis3_configure("/vsis3/run-bucket/scene.tif", a.ctx, info, sizeof info, &err)) << err.message;
  EXPECT_EQ("ASIAFIRSTSET0000", opt("/vsis3/run-bucket/scene.tif", "AWS_ACCESS_KEY_ID"));
  EXPECT_EQ("first-token", opt("/vsis3/run-bucket/scene.tif", "AWS_SESSION_TOKEN"));
  VSIClearPathSpecificOptions("/vsis3/user-bucket");
  VSIClearPathSpecificOptions("/vsis3/run-bucket");
  VSIClearPathSpecificOptions("/vsis3_streaming/run-bucket");
}
