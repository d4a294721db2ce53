// Unit tests for plugin/engine/config.c and errors.c: seed defaults,
// ASYNC_SM_* variables, setting by name, validation messages, the backoff
// schedule, and the single retry decision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_errors.h"
#include "asyncdetect/asd_sagemaker.h"
#include "cpl_conv.h"

namespace {

const char *kVars[] = {"ASYNC_SM_INPUT_BUCKET",          "ASYNC_SM_OUTPUT_BUCKET",
                       "ASYNC_SM_INPUT_PREFIX",          "ASYNC_SM_OUTPUT_PREFIX",
                       "ASYNC_SM_MAX_WAIT_TIME",         "ASYNC_SM_POLLING_INTERVAL",
                       "ASYNC_SM_MAX_POLLING_INTERVAL",  "ASYNC_SM_BACKOFF_MULTIPLIER",
                       "ASYNC_SM_MAX_RETRIES",           "ASYNC_SM_CLEANUP_ENABLED",
                       "ASYNC_SM_CLEANUP_POLICY",        "ASYNC_SM_CLEANUP_DELAY_SECONDS",
                       "ASYNC_SM_WORKER_OPTIMIZATION",   "ASYNC_SM_SUBMISSION_WORKERS",
                       "ASYNC_SM_POLLING_WORKERS",       "ASYNC_SM_MAX_CONCURRENT_JOBS",
                       "ASYNC_SM_JOB_QUEUE_TIMEOUT",     "ASYNC_SM_ENDPOINT",
                       "ASYNC_SM_REGION"};

class EnvGuard {
 public:
  EnvGuard() {
    for (const char *v : kVars) unsetenv(v);
  }
  ~EnvGuard() {
    for (const char *v : kVars) unsetenv(v);
  }
};

asd_async_config valid_config() {
  asd_async_config c;
  asd_config_init(&c);
  snprintf(c.input_bucket, sizeof c.input_bucket, "%s", "my-bucket");
  return c;
}

std::string validate(const asd_async_config &c) {
  char err[256] = "";
  int rc = asd_config_validate(&c, err, sizeof err);
  return rc == 0 ? "" : std::string(err);
}

}  // namespace

TEST(EngineConfig, SeedDefaults) {
  asd_async_config c;
  asd_config_init(&c);
  EXPECT_STREQ("", c.input_bucket);
  EXPECT_STREQ("", c.output_bucket);
  EXPECT_STREQ("async-inference/input/", c.input_prefix);
  EXPECT_STREQ("async-inference/output/", c.output_prefix);
  EXPECT_EQ(3600, c.max_wait_time);
  EXPECT_EQ(30, c.polling_interval);
  EXPECT_EQ(300, c.max_polling_interval);
  EXPECT_DOUBLE_EQ(1.5, c.exponential_backoff_multiplier);
  EXPECT_EQ(3, c.max_retries);
  EXPECT_EQ(1, c.cleanup_enabled);
  EXPECT_EQ(ASD_CLEANUP_IMMEDIATE, c.cleanup_policy);
  EXPECT_EQ(300, c.cleanup_delay_seconds);
  EXPECT_EQ(1, c.enable_worker_optimization);
  EXPECT_EQ(4, c.submission_workers);
  EXPECT_EQ(2, c.polling_workers);
  EXPECT_EQ(100, c.max_concurrent_jobs);
  EXPECT_EQ(300, c.job_queue_timeout);
}

TEST(EngineConfig, EveryEnvironmentVariable) {
  EnvGuard g;
  setenv("ASYNC_SM_INPUT_BUCKET", "in-bucket", 1);
  setenv("ASYNC_SM_OUTPUT_BUCKET", "out-bucket", 1);
  setenv("ASYNC_SM_INPUT_PREFIX", "in/", 1);
  setenv("ASYNC_SM_OUTPUT_PREFIX", "out/", 1);
  setenv("ASYNC_SM_MAX_WAIT_TIME", "120.5", 1);
  setenv("ASYNC_SM_POLLING_INTERVAL", "0.05", 1);
  setenv("ASYNC_SM_MAX_POLLING_INTERVAL", "2", 1);
  setenv("ASYNC_SM_BACKOFF_MULTIPLIER", "2.0", 1);
  setenv("ASYNC_SM_MAX_RETRIES", "7", 1);
  setenv("ASYNC_SM_CLEANUP_ENABLED", "false", 1);
  setenv("ASYNC_SM_CLEANUP_POLICY", "Delayed", 1);
  setenv("ASYNC_SM_CLEANUP_DELAY_SECONDS", "60", 1);
  setenv("ASYNC_SM_WORKER_OPTIMIZATION", "no", 1);
  setenv("ASYNC_SM_SUBMISSION_WORKERS", "8", 1);
  setenv("ASYNC_SM_POLLING_WORKERS", "3", 1);
  setenv("ASYNC_SM_MAX_CONCURRENT_JOBS", "250", 1);
  setenv("ASYNC_SM_JOB_QUEUE_TIMEOUT", "12", 1);
  asd_async_config c;
  asd_config_init(&c);
  char err[256] = "";
  ASSERT_EQ(0, asd_config_load_env(&c, err, sizeof err)) << err;
  EXPECT_STREQ("in-bucket", c.input_bucket);
  EXPECT_STREQ("out-bucket", c.output_bucket);
  EXPECT_STREQ("in/", c.input_prefix);
  EXPECT_STREQ("out/", c.output_prefix);
  EXPECT_DOUBLE_EQ(120.5, c.max_wait_time);
  EXPECT_DOUBLE_EQ(0.05, c.polling_interval);
  EXPECT_DOUBLE_EQ(2, c.max_polling_interval);
  EXPECT_DOUBLE_EQ(2.0, c.exponential_backoff_multiplier);
  EXPECT_EQ(7, c.max_retries);
  EXPECT_EQ(0, c.cleanup_enabled);
  EXPECT_EQ(ASD_CLEANUP_DELAYED, c.cleanup_policy);
  EXPECT_EQ(ASD_CLEANUP_DISABLED, asd_config_effective_policy(&c));
  EXPECT_DOUBLE_EQ(60, c.cleanup_delay_seconds);
  EXPECT_EQ(0, c.enable_worker_optimization);
  EXPECT_EQ(8, c.submission_workers);
  EXPECT_EQ(3, c.polling_workers);
  EXPECT_EQ(250, c.max_concurrent_jobs);
  EXPECT_DOUBLE_EQ(12, c.job_queue_timeout);
  EXPECT_EQ("", validate(c));
}

TEST(EngineConfig, BadEnvironmentValueNamesTheVariable) {
  EnvGuard g;
  setenv("ASYNC_SM_POLLING_INTERVAL", "30s", 1);
  asd_async_config c;
  asd_config_init(&c);
  char err[256] = "";
  EXPECT_EQ(-1, asd_config_load_env(&c, err, sizeof err));
  EXPECT_NE(std::string::npos, std::string(err).find("ASYNC_SM_POLLING_INTERVAL")) << err;
  setenv("ASYNC_SM_POLLING_INTERVAL", "1", 1);
  setenv("ASYNC_SM_CLEANUP_POLICY", "sometimes", 1);
  EXPECT_EQ(-1, asd_config_load_env(&c, err, sizeof err));
  EXPECT_NE(std::string::npos, std::string(err).find("immediate, delayed, disabled")) << err;
  setenv("ASYNC_SM_CLEANUP_POLICY", "disabled", 1);
  setenv("ASYNC_SM_WORKER_OPTIMIZATION", "maybe", 1);
  EXPECT_EQ(-1, asd_config_load_env(&c, err, sizeof err));
  EXPECT_NE(std::string::npos, std::string(err).find("ASYNC_SM_WORKER_OPTIMIZATION")) << err;
}

TEST(EngineConfig, SetByNameFromCode) {
  asd_async_config c = valid_config();
  char err[256] = "";
  ASSERT_EQ(0, asd_config_set(&c, "polling_interval", "0.25", err, sizeof err)) << err;
  ASSERT_EQ(0, asd_config_set(&c, "ASYNC_SM_MAX_CONCURRENT_JOBS", "12", err, sizeof err)) << err;
  ASSERT_EQ(0, asd_config_set(&c, "cleanup_policy", "disabled", err, sizeof err)) << err;
  ASSERT_EQ(0, asd_config_set(&c, "custom_attributes", "model_selection=blobs", err, sizeof err));
  EXPECT_DOUBLE_EQ(0.25, c.polling_interval);
  EXPECT_EQ(12, c.max_concurrent_jobs);
  EXPECT_EQ(ASD_CLEANUP_DISABLED, c.cleanup_policy);
  EXPECT_STREQ("model_selection=blobs", c.custom_attributes);
  EXPECT_EQ(-1, asd_config_set(&c, "polling_intervall", "1", err, sizeof err));
  EXPECT_NE(std::string::npos, std::string(err).find("polling_intervall"));
  EXPECT_EQ(-1, asd_config_set(&c, "max_retries", "three", err, sizeof err));
  EXPECT_NE(std::string::npos, std::string(err).find("max_retries"));
  // The JSON export names every field.
  char *json = asd_config_to_json(&c);
  ASSERT_NE(nullptr, json);
  std::string j(json);
  free(json);
  EXPECT_NE(std::string::npos, j.find("\"cleanup_policy\":\"disabled\""));
  EXPECT_NE(std::string::npos, j.find("\"max_concurrent_jobs\":12"));
}

TEST(EngineConfig, ValidationNamesFieldAndRange) {
  struct Case {
    void (*mutate)(asd_async_config *);
    const char *expect;
  } cases[] = {
      {[](asd_async_config *c) { c->input_bucket[0] = 0; }, "input_bucket is required"},
      {[](asd_async_config *c) { snprintf(c->input_bucket, 64, "Bad_Bucket"); }, "input_bucket"},
      {[](asd_async_config *c) { snprintf(c->output_bucket, 64, "x"); }, "output_bucket"},
      {[](asd_async_config *c) { c->exponential_backoff_multiplier = 0.5; },
       "exponential_backoff_multiplier must be > 1"},
      {[](asd_async_config *c) { c->exponential_backoff_multiplier = 1.0; },
       "exponential_backoff_multiplier must be > 1"},
      {[](asd_async_config *c) { c->max_polling_interval = 10; }, "max_polling_interval must be >="},
      {[](asd_async_config *c) { c->polling_interval = 0; }, "polling_interval must be in"},
      {[](asd_async_config *c) { c->max_wait_time = -1; }, "max_wait_time"},
      {[](asd_async_config *c) { c->submission_workers = 0; }, "submission_workers must be in [1"},
      {[](asd_async_config *c) { c->polling_workers = 0; }, "polling_workers must be in [1"},
      {[](asd_async_config *c) { c->max_concurrent_jobs = 0; }, "max_concurrent_jobs"},
      {[](asd_async_config *c) { c->max_retries = -1; }, "max_retries"},
      {[](asd_async_config *c) { c->cleanup_policy = (asd_cleanup_policy)7; }, "cleanup_policy"},
      {[](asd_async_config *c) { c->cleanup_delay_seconds = -3; }, "cleanup_delay_seconds"},
      {[](asd_async_config *c) { c->job_queue_timeout = 0; }, "job_queue_timeout"},
      {[](asd_async_config *c) { c->request_ttl_seconds = 10; }, "request_ttl_seconds"},
  };
  EXPECT_EQ("", validate(valid_config()));
  for (const Case &k : cases) {
    asd_async_config c = valid_config();
    k.mutate(&c);
    std::string e = validate(c);
    EXPECT_NE(std::string::npos, e.find(k.expect)) << "got: " << e << " expected: " << k.expect;
    EXPECT_EQ(std::string::npos, e.find('\n'));
  }
  // The output bucket is optional.
  asd_async_config c = valid_config();
  c.output_bucket[0] = 0;
  EXPECT_EQ("", validate(c));
}

// --config KEY VALUE (CPLSetConfigOption) beats the environment, which
// beats the default; the new ASYNC_SM_ENDPOINT and ASYNC_SM_REGION keys are
// read the same way.
TEST(EngineConfig, ConfigOptionBeatsEnvironment) {
  EnvGuard g;
  setenv("ASYNC_SM_INPUT_BUCKET", "env-bucket", 1);
  setenv("ASYNC_SM_MAX_RETRIES", "5", 1);
  setenv("ASYNC_SM_ENDPOINT", "env-endpoint", 1);
  CPLSetConfigOption("ASYNC_SM_INPUT_BUCKET", "config-bucket");
  CPLSetConfigOption("ASYNC_SM_REGION", "eu-west-3");
  asd_async_config c;
  asd_config_init(&c);
  char err[256] = "";
  int rc = asd_config_load_env(&c, err, sizeof err);
  CPLSetConfigOption("ASYNC_SM_INPUT_BUCKET", nullptr);
  CPLSetConfigOption("ASYNC_SM_REGION", nullptr);
  ASSERT_EQ(0, rc) << err;
  EXPECT_STREQ("config-bucket", c.input_bucket);
  EXPECT_EQ(5, c.max_retries);
  EXPECT_STREQ("env-endpoint", c.endpoint);
  EXPECT_STREQ("eu-west-3", c.region);
  EXPECT_EQ("", validate(c));
  // A bad value given with --config names its key too.
  CPLSetConfigOption("ASYNC_SM_MAX_WAIT_TIME", "1h");
  rc = asd_config_load_env(&c, err, sizeof err);
  CPLSetConfigOption("ASYNC_SM_MAX_WAIT_TIME", nullptr);
  EXPECT_EQ(-1, rc);
  EXPECT_NE(std::string::npos, std::string(err).find("ASYNC_SM_MAX_WAIT_TIME")) << err;
}

TEST(EngineConfig, EndpointRegionAndOutputPrefixAreValidated) {
  asd_async_config c = valid_config();
  snprintf(c.endpoint, sizeof c.endpoint, "-bad-");
  EXPECT_NE(std::string::npos, validate(c).find("endpoint '-bad-'"));
  c = valid_config();
  snprintf(c.region, sizeof c.region, "US East 1");
  EXPECT_NE(std::string::npos, validate(c).find("region"));
  c = valid_config();
  snprintf(c.output_prefix, sizeof c.output_prefix, "results with space/");
  EXPECT_NE(std::string::npos, validate(c).find("S3OutputPathExtension"));
  snprintf(c.output_prefix, sizeof c.output_prefix, "s3://other/x");
  EXPECT_NE(std::string::npos, validate(c).find("S3OutputPathExtension"));
  snprintf(c.output_prefix, sizeof c.output_prefix, "/runs/2024-05/");
  EXPECT_EQ("", validate(c));
  char ext[64];
  EXPECT_EQ(12u, asd_config_output_path_extension(&c, ext, sizeof ext));
  EXPECT_STREQ("runs/2024-05", ext);
  c.output_prefix[0] = 0;
  EXPECT_EQ("", validate(c));
  EXPECT_EQ(0u, asd_config_output_path_extension(&c, ext, sizeof ext));
}

TEST(EngineConfig, TtlAndInvocationTimeoutFollowMaxWaitTime) {
  asd_async_config c = valid_config();
  EXPECT_EQ(3600, asd_config_request_ttl(&c));
  EXPECT_EQ(3600, asd_config_invocation_timeout(&c));
  c.max_wait_time = 10.2;
  EXPECT_EQ(60, asd_config_request_ttl(&c));
  EXPECT_EQ(11, asd_config_invocation_timeout(&c));
  c.max_wait_time = 86400;
  EXPECT_EQ(21600, asd_config_request_ttl(&c));
  EXPECT_EQ(3600, asd_config_invocation_timeout(&c));
  c.request_ttl_seconds = 120;
  c.invocation_timeout_seconds = 30;
  EXPECT_EQ(120, asd_config_request_ttl(&c));
  EXPECT_EQ(30, asd_config_invocation_timeout(&c));
}

// SageMaker's patterns for the two placement headers, case by case.
TEST(SageMakerParams, ExtensionAndFilenamePatterns) {
  EXPECT_TRUE(asd_sm_output_path_extension_valid("runs/a1"));
  EXPECT_TRUE(asd_sm_output_path_extension_valid("a!_.*'()/-b"));
  EXPECT_FALSE(asd_sm_output_path_extension_valid(""));
  EXPECT_FALSE(asd_sm_output_path_extension_valid("s3://b/k"));
  EXPECT_FALSE(asd_sm_output_path_extension_valid("https://x"));
  EXPECT_FALSE(asd_sm_output_path_extension_valid("a b"));
  EXPECT_FALSE(asd_sm_output_path_extension_valid("a?b"));
  EXPECT_FALSE(asd_sm_output_path_extension_valid(std::string(513, 'a').c_str()));
  EXPECT_TRUE(asd_sm_output_path_extension_valid(std::string(512, 'a').c_str()));
  EXPECT_TRUE(asd_sm_filename_valid("tile-7.json"));
  EXPECT_TRUE(asd_sm_filename_valid("A_b-c"));
  EXPECT_FALSE(asd_sm_filename_valid("a.b.c"));
  EXPECT_FALSE(asd_sm_filename_valid("-abc"));
  EXPECT_FALSE(asd_sm_filename_valid(".abc"));
  EXPECT_FALSE(asd_sm_filename_valid("a/b"));
  EXPECT_FALSE(asd_sm_filename_valid(""));
  EXPECT_FALSE(asd_sm_filename_valid(std::string(33, 'a').c_str()));
  EXPECT_TRUE(asd_sm_filename_valid(std::string(32, 'a').c_str()));
}

TEST(EngineConfig, BackoffSchedule) {
  asd_async_config c = valid_config();
  c.polling_interval = 1;
  c.exponential_backoff_multiplier = 2;
  c.max_polling_interval = 10;
  c.polling_jitter = 0.1;
  EXPECT_DOUBLE_EQ(1, asd_config_poll_interval(&c, 0));
  EXPECT_DOUBLE_EQ(2, asd_config_poll_interval(&c, 1));
  EXPECT_DOUBLE_EQ(4, asd_config_poll_interval(&c, 2));
  EXPECT_DOUBLE_EQ(8, asd_config_poll_interval(&c, 3));
  EXPECT_DOUBLE_EQ(10, asd_config_poll_interval(&c, 4));
  EXPECT_DOUBLE_EQ(10, asd_config_poll_interval(&c, 1000));
  // Jitter spreads +-10% and never exceeds the maximum.
  EXPECT_DOUBLE_EQ(0.9, asd_config_poll_delay(&c, 0, 0.0));
  EXPECT_NEAR(1.1, asd_config_poll_delay(&c, 0, 0.999999), 1e-5);
  EXPECT_DOUBLE_EQ(1.0, asd_config_poll_delay(&c, 0, 0.5));
  EXPECT_DOUBLE_EQ(10, asd_config_poll_delay(&c, 50, 0.99));
  EXPECT_DOUBLE_EQ(9, asd_config_poll_delay(&c, 50, 0.0));
  // Minimum polls: cumulative 1, 3, 7, 15, 25 ...
  EXPECT_EQ(1, asd_config_min_polls(&c, 0));
  EXPECT_EQ(1, asd_config_min_polls(&c, 1));
  EXPECT_EQ(2, asd_config_min_polls(&c, 1.5));
  EXPECT_EQ(3, asd_config_min_polls(&c, 7));
  EXPECT_EQ(5, asd_config_min_polls(&c, 20));
  // The seed's defaults: 30, 45, 67.5 ... capped at 300.
  asd_async_config d = valid_config();
  EXPECT_DOUBLE_EQ(45, asd_config_poll_interval(&d, 1));
  EXPECT_DOUBLE_EQ(300, asd_config_poll_interval(&d, 20));
}

TEST(EngineErrors, RetryDecisionInOnePlace) {
  asd_error e;
  asd_error_clear(&e);
  asd_error_set(&e, ASD_ERR_S3, "PUT failed");
  e.http_status = 503;
  EXPECT_TRUE(asd_error_is_retryable(&e));
  e.http_status = 0;
  EXPECT_TRUE(asd_error_is_retryable(&e));
  e.http_status = 403;
  snprintf(e.aws_code, sizeof e.aws_code, "AccessDenied");
  EXPECT_FALSE(asd_error_is_retryable(&e));
  e.http_status = 400;
  snprintf(e.aws_code, sizeof e.aws_code, "ThrottlingException");
  e.code = ASD_ERR_ENDPOINT;
  EXPECT_TRUE(asd_error_is_retryable(&e));
  snprintf(e.aws_code, sizeof e.aws_code, "ValidationError");
  EXPECT_FALSE(asd_error_is_retryable(&e));
  e.http_status = 429;
  e.aws_code[0] = 0;
  EXPECT_TRUE(asd_error_is_retryable(&e));
  for (asd_errcode c : {ASD_ERR_INFERENCE, ASD_ERR_TIMEOUT, ASD_ERR_QUEUE_TIMEOUT, ASD_ERR_CONFIG,
                        ASD_ERR_CANCELLED, ASD_ERR_BAD_RESULT}) {
    asd_error x;
    asd_error_clear(&x);
    asd_error_set(&x, c, "x");
    EXPECT_FALSE(asd_error_is_retryable(&x)) << asd_errcode_name(c);
  }
  asd_error r;
  asd_error_clear(&r);
  asd_error_set(&r, ASD_ERR_RUNTIME, "unexpected");
  EXPECT_TRUE(asd_error_is_retryable(&r));
}

TEST(EngineErrors, TextsAndOneLineMessages) {
  for (int c = 0; c < ASD_ERR__COUNT; c++) {
    EXPECT_NE(nullptr, asd_strerror(static_cast<asd_errcode>(c)));
    EXPECT_NE(std::string("unknown error"), asd_strerror(static_cast<asd_errcode>(c)));
  }
  EXPECT_STREQ("unknown error", asd_strerror(static_cast<asd_errcode>(99)));
  asd_error e;
  asd_error_clear(&e);
  asd_error_set(&e, ASD_ERR_INFERENCE, "model said:\n{\"error\": \"boom\"}\n");
  EXPECT_EQ(std::string::npos, std::string(e.message).find('\n'));
  e.http_status = 500;
  snprintf(e.request_id, sizeof e.request_id, "req-1");
  char buf[512];
  std::string s = asd_error_format(&e, buf, sizeof buf);
  EXPECT_NE(std::string::npos, s.find("inference failed: model said:"));
  EXPECT_NE(std::string::npos, s.find("HTTP 500"));
  EXPECT_NE(std::string::npos, s.find("request id req-1"));
}

// The run-level decision reads the typed facts (code, HTTP status, AWS code),
// never the message.
TEST(EngineErrors, FatalForTheRunFromTypedFactsOnly) {
  auto make = [](asd_errcode c, int http, const char *aws, const char *msg) {
    asd_error e;
    asd_error_clear(&e);
    asd_error_set(&e, c, "%s", msg);
    e.http_status = http;
    snprintf(e.aws_code, sizeof e.aws_code, "%s", aws);
    return e;
  };
  // A tile that could not be read is that tile's failure (a damaged block
  // of the input); the run decides at its end whether nothing was readable.
  asd_error e = make(ASD_ERR_INPUT, -1, "", "read error");
  EXPECT_FALSE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_ENDPOINT, 400, "ValidationError", "Endpoint x not found");
  EXPECT_TRUE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_S3, 403, "AccessDenied", "denied");
  EXPECT_TRUE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_S3, 404, "NoSuchBucket", "no bucket");
  EXPECT_TRUE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_S3, 403, "SignatureDoesNotMatch", "");
  EXPECT_TRUE(asd_error_is_fatal_for_run(&e));
  // Transient or per-tile answers stay the tile's, whatever their text says.
  e = make(ASD_ERR_S3, 503, "SlowDown", "AccessDenied NoSuchBucket not found");
  EXPECT_FALSE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_ENDPOINT, 0, "", "HTTP 403 does not exist");
  EXPECT_FALSE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_INFERENCE, -1, "", "AccessDenied");
  EXPECT_FALSE(asd_error_is_fatal_for_run(&e));
  e = make(ASD_ERR_TIMEOUT, -1, "", "not found");
  EXPECT_FALSE(asd_error_is_fatal_for_run(&e));
  EXPECT_FALSE(asd_error_is_fatal_for_run(nullptr));
}
