// End-to-end tests of plugin/aws against the real local endpoint
// (asyncdetect_endpoint, started on an ephemeral loopback port): the S3
// client, the SageMaker Runtime client and the credentials chain reading
// the standard environment, with the endpoint's own SigV4 verifier on the
// other side.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <gdal.h>
#include <cpl_conv.h>
#include <cpl_vsi.h>

#include "asd_aws_env.h"
#include "asd_local_endpoint.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"

namespace {

// A small RGB PNG with a bright square, encoded through GDAL's /vsimem/.
std::string make_png() {
  GDALAllRegister();
  GDALDriverH mem = GDALGetDriverByName("MEM");
  GDALDatasetH ds = GDALCreate(mem, "", 64, 64, 3, GDT_Byte, nullptr);
  std::vector<unsigned char> px(64 * 64, 40);
  for (int y = 20; y < 40; y++)
    for (int x = 20; x < 40; x++) px[y * 64 + x] = 250;
  for (int b = 1; b <= 3; b++)
    if (GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, 64, 64, px.data(), 64, 64, GDT_Byte, 0, 0) != CE_None)
      return "";
  GDALDatasetH png = GDALCreateCopy(GDALGetDriverByName("PNG"), "/vsimem/asd_aws_e2e.png", ds, FALSE, nullptr,
                                    nullptr, nullptr);
  GDALClose(png);
  GDALClose(ds);
  vsi_l_offset len = 0;
  GByte *data = VSIGetMemFileBuffer("/vsimem/asd_aws_e2e.png", &len, TRUE);
  std::string out((const char *)data, (size_t)len);
  CPLFree(data);
  return out;
}

class LocalEndpointAws : public ::testing::Test {
 protected:
  asd_test::AwsEnvSandbox env;
  std::unique_ptr<asd_test::LocalEndpoint> ep;
  asd_aws_context *ctx = nullptr;

  void SetUp() override {
    ep.reset(new asd_test::LocalEndpoint(
        {"-bucket", "input-bkt", "-endpoint", "det,model=centerpoint,output=s3://output-bkt/results,failure=s3://output-bkt/failures",
         "-endpoint", "bad,model=failure,output=s3://output-bkt/results,failure=s3://output-bkt/failures"}));
    asd_test::set_local_aws_env(*ep);
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.retry_base_delay = 0.01;
    asd_aws_error err;
    ctx = asd_aws_context_new(&c, &err);  // everything from the standard environment
    ASSERT_NE(nullptr, ctx) << err.message;
  }
  void TearDown() override { asd_aws_context_free(ctx); }
};

}  // namespace

TEST_F(LocalEndpointAws, S3ObjectsRoundTrip) {
  asd_aws_error err;
  ASSERT_EQ(0, asd_s3_head_bucket(ctx, "input-bkt", &err)) << err.message;
  EXPECT_EQ(-1, asd_s3_head_bucket(ctx, "no-such-bucket-here", &err));
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
  const char *keys[] = {"plain", "dir/with space/a+b~c.tif", "utf8/\xC3\xA9t\xC3\xA9.png", "x=y&z;(1)!'*"};
  for (const char *k : keys) {
    SCOPED_TRACE(k);
    std::string body = std::string("body of ") + k;
    asd_s3_object_info info;
    ASSERT_EQ(0, asd_s3_put_object(ctx, "input-bkt", k, body.data(), body.size(), "text/plain", &info, &err))
        << err.message;
    EXPECT_NE('\0', info.etag[0]);
    ASSERT_EQ(0, asd_s3_head_object(ctx, "input-bkt", k, &info, &err)) << err.message;
    EXPECT_EQ((long long)body.size(), info.size);
    asd_buf out;
    asd_buf_init(&out);
    ASSERT_EQ(0, asd_s3_get_object(ctx, "input-bkt", k, 0, &out, &info, &err)) << err.message;
    EXPECT_EQ(body, std::string((const char *)out.data, out.len));
    asd_buf_free(&out);
  }
  asd_s3_list_result lr;
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "input-bkt", nullptr, nullptr, 2, 0, &lr, &err)) << err.message;
  EXPECT_EQ(4u, lr.n_entries);
  EXPECT_GE(lr.pages, 2);
  asd_s3_list_result_free(&lr);
  for (const char *k : keys) ASSERT_EQ(0, asd_s3_delete_object(ctx, "input-bkt", k, &err)) << err.message;
  EXPECT_EQ(0, asd_s3_delete_object(ctx, "input-bkt", "never-existed", &err)) << err.message;
  asd_buf out;
  asd_buf_init(&out);
  EXPECT_EQ(-1, asd_s3_get_object(ctx, "input-bkt", "plain", 0, &out, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind);
  EXPECT_STREQ("NoSuchKey", err.code);
  asd_buf_free(&out);
}

TEST_F(LocalEndpointAws, DeleteObjectsAndListPagination) {
  asd_aws_error err;
  std::vector<std::string> ks;
  for (int i = 0; i < 1205; i++) ks.push_back("batch/" + std::to_string(i) + (i % 100 == 0 ? " & <x>" : ""));
  for (auto &k : ks) ASSERT_EQ(0, asd_s3_put_object(ctx, "input-bkt", k.c_str(), "1", 1, nullptr, nullptr, &err)) << err.message;
  asd_s3_list_result lr;
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "input-bkt", "batch/", nullptr, 500, 0, &lr, &err)) << err.message;
  EXPECT_EQ(ks.size(), lr.n_entries);
  EXPECT_EQ(3, lr.pages);
  asd_s3_list_result_free(&lr);
  std::vector<const char *> kp;
  for (auto &k : ks) kp.push_back(k.c_str());
  asd_s3_delete_result dr;
  ASSERT_EQ(0, asd_s3_delete_objects(ctx, "input-bkt", kp.data(), kp.size(), &dr, &err)) << err.message;
  EXPECT_EQ(0u, dr.n_errors);
  EXPECT_EQ(ks.size(), dr.deleted);
  asd_s3_delete_result_free(&dr);
  ASSERT_EQ(0, asd_s3_list_objects_v2(ctx, "input-bkt", "batch/", nullptr, 0, 0, &lr, &err)) << err.message;
  EXPECT_EQ(0u, lr.n_entries);
  asd_s3_list_result_free(&lr);
}

TEST_F(LocalEndpointAws, InvokeAsyncThenPollTheReturnedLocations) {
  asd_aws_error err;
  std::string png = make_png();
  ASSERT_FALSE(png.empty());
  ASSERT_EQ(0, asd_s3_put_object(ctx, "input-bkt", "tiles/t-1.png", png.data(), png.size(), "image/png", nullptr, &err))
      << err.message;
  for (const char *name : {"det", "bad"}) {
    SCOPED_TRACE(name);
    asd_sm_invoke_async_params p;
    memset(&p, 0, sizeof(p));
    p.endpoint_name = name;
    p.input_location = "s3://input-bkt/tiles/t-1.png";
    p.content_type = "image/png";
    p.inference_id = "tile-42";
    p.request_ttl_seconds = 600;
    p.invocation_timeout_seconds = 60;
    asd_sm_invoke_async_result r;
    ASSERT_EQ(0, asd_sm_invoke_async(ctx, &p, &r, &err)) << err.message;
    EXPECT_STREQ("tile-42", r.inference_id);
    ASSERT_NE(nullptr, r.output_location);
    ASSERT_NE(nullptr, r.failure_location);
    bool want_failure = strcmp(name, "bad") == 0;
    asd_s3_uri u;
    ASSERT_EQ(0, asd_s3_uri_parse(want_failure ? r.failure_location : r.output_location, 0, &u, &err)) << err.message;
    bool found = false;
    for (int i = 0; i < 400 && !found; i++) {
      asd_s3_object_info info;
      if (asd_s3_head_object(ctx, u.bucket, u.key, &info, &err) == 0)
        found = true;
      else {
        ASSERT_EQ(ASD_AWS_ERR_NOT_FOUND, err.kind) << err.message;
        asd_sleep(0.05);
      }
    }
    ASSERT_TRUE(found) << "no result at " << (want_failure ? r.failure_location : r.output_location);
    asd_buf out;
    asd_buf_init(&out);
    ASSERT_EQ(0, asd_s3_get_object(ctx, u.bucket, u.key, 1 << 20, &out, nullptr, &err)) << err.message;
    std::string text((const char *)out.data, out.len);
    if (!want_failure) {
      EXPECT_NE(std::string::npos, text.find("FeatureCollection")) << text;
    }
    asd_buf_free(&out);
    asd_s3_uri_free(&u);
    asd_sm_invoke_async_result_free(&r);
  }
  // Unknown endpoint: a clear not-found/validation error, not retried forever.
  asd_sm_invoke_async_params p;
  memset(&p, 0, sizeof(p));
  p.endpoint_name = "nope";
  p.input_location = "s3://input-bkt/tiles/t-1.png";
  asd_sm_invoke_async_result r;
  EXPECT_EQ(-1, asd_sm_invoke_async(ctx, &p, &r, &err));
  EXPECT_FALSE(asd_aws_error_is_transient(&err)) << err.message;
}

TEST_F(LocalEndpointAws, SynchronousInvoke) {
  std::string png = make_png();
  asd_sm_invoke_params p;
  memset(&p, 0, sizeof(p));
  p.endpoint_name = "det";
  p.body = png.data();
  p.body_len = png.size();
  p.content_type = "image/png";
  asd_sm_invoke_result r;
  asd_sm_invoke_result_init(&r);
  asd_aws_error err;
  ASSERT_EQ(0, asd_sm_invoke(ctx, &p, &r, &err)) << err.message;
  EXPECT_NE(std::string::npos, std::string((const char *)r.body.data, r.body.len).find("FeatureCollection"));
  asd_sm_invoke_result_free(&r);
  p.endpoint_name = "bad";
  asd_sm_invoke_result_init(&r);
  EXPECT_EQ(-1, asd_sm_invoke(ctx, &p, &r, &err));
  EXPECT_EQ(ASD_AWS_ERR_MODEL, err.kind) << err.message;
  asd_sm_invoke_result_free(&r);
}

TEST_F(LocalEndpointAws, WrongCredentialsAreTypedAuthErrors) {
  asd_aws_config c;
  asd_aws_config_init(&c);
  c.access_key_id = asd_test::kLocalAccessKey;
  c.secret_access_key = "not-the-secret";
  asd_aws_error err;
  asd_aws_context *bad = asd_aws_context_new(&c, &err);
  ASSERT_NE(nullptr, bad) << err.message;
  EXPECT_EQ(-1, asd_s3_put_object(bad, "input-bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, err.kind);
  EXPECT_STREQ("SignatureDoesNotMatch", err.code);
  EXPECT_EQ(1, err.attempts);
  asd_aws_context_free(bad);
  c.access_key_id = "AKIDUNKNOWN";
  bad = asd_aws_context_new(&c, &err);
  ASSERT_NE(nullptr, bad);
  EXPECT_EQ(-1, asd_s3_put_object(bad, "input-bkt", "k", "x", 1, nullptr, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_AUTH, err.kind);
  EXPECT_STREQ("InvalidAccessKeyId", err.code);
  asd_aws_context_free(bad);
}

TEST_F(LocalEndpointAws, SizeCapAppliesToBodiesNotToHead) {
  asd_aws_config c;
  asd_aws_config_init(&c);
  c.max_response_bytes = 1 << 20;
  asd_aws_error err;
  asd_aws_context *small = asd_aws_context_new(&c, &err);
  ASSERT_NE(nullptr, small) << err.message;
  std::string big(2 << 20, 'b');
  ASSERT_EQ(0, asd_s3_put_object(small, "input-bkt", "big.bin", big.data(), big.size(), nullptr, nullptr, &err))
      << err.message;
  asd_s3_object_info info;
  ASSERT_EQ(0, asd_s3_head_object(small, "input-bkt", "big.bin", &info, &err)) << err.message;
  EXPECT_EQ((long long)big.size(), info.size);
  asd_buf out;
  asd_buf_init(&out);
  EXPECT_EQ(-1, asd_s3_get_object(small, "input-bkt", "big.bin", 0, &out, nullptr, &err));
  EXPECT_EQ(ASD_AWS_ERR_TOO_LARGE, err.kind);
  EXPECT_EQ(1, err.attempts);
  asd_buf_free(&out);
  asd_aws_context_free(small);
}
