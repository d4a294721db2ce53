/*
 * preflight.c: the checks before a run (asd_preflight.h).
 *
 * A new user's first mistakes are configuration ones: the wrong endpoint
 * name or region, an endpoint still Creating, a real-time endpoint, a
 * bucket in another account, a role without s3:ListBucket.  Each is found
 * here, before any tile is uploaded, and reported as one line that says
 * what to do.  The control plane (sagemaker:DescribeEndpoint*) is optional:
 * many analysts may invoke an endpoint without being allowed to describe
 * it, so an AccessDenied there is a warning and the run goes on with what
 * it knows.
 *
 * Why s3:ListBucket matters.  S3 reveals whether a key exists only to who
 * may list the bucket: without that grant a GetObject of a result not yet
 * written answers 403 AccessDenied, not 404, and every poll looks like a
 * permission failure.  HeadBucket is authorised by s3:ListBucket, so a 403
 * from it is exactly "this grant is missing" and is reported as such; the
 * poller uses asd_preflight_listbucket_hint() for the same words.
 *
 * The deletion scope (asd_resources_allow) is derived here too, because it
 * follows from the same facts: the configured buckets and prefixes, and the
 * endpoint's own output and failure paths once DescribeEndpointConfig has
 * named them.  Results whose location falls outside it are left alone with
 * a warning (the client trusts nothing it is told).
 */
#include "asyncdetect/asd_preflight.h"

#include <stdio.h>
#include <string.h>

#include "asyncdetect/asd_s3.h"

static void set_err(asd_error *err, asd_errcode code, const asd_aws_error *ae) {
  asd_error_clear(err);
  err->http_status = ae ? (int)ae->http_status : -1;
  if (ae) {
    snprintf(err->aws_code, sizeof err->aws_code, "%s", ae->code);
    snprintf(err->request_id, sizeof err->request_id, "%s", ae->request_id);
  }
  err->code = code;
}

int asd_preflight_endpoint(asd_aws_context *ctx, const char *endpoint, asd_preflight *pf, asd_error *err) {
  memset(pf, 0, sizeof *pf);
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  if (asd_sm_describe_endpoint(ctx, endpoint, &pf->info, &ae) != 0) {
    if (ae.kind == ASD_AWS_ERR_ACCESS_DENIED) {
      snprintf(pf->warning, sizeof pf->warning,
               "DescribeEndpoint not allowed on '%s' (sagemaker:DescribeEndpoint is optional): the endpoint is "
               "not checked before the run",
               endpoint);
      return 0;
    }
    if (ae.kind == ASD_AWS_ERR_AUTH) {
      /* The same credentials sign every call: say it here, once, rather
         than as the bucket check's bodiless 403 would. */
      set_err(err, ASD_ERR_ENDPOINT, &ae);
      return asd_error_set(err, ASD_ERR_ENDPOINT,
                           "AWS credentials rejected (%s): check the access key, secret key and session token "
                           "(or the profile), and the clock",
                           ae.code[0] ? ae.code : "authentication failed");
    }
    if (ae.kind == ASD_AWS_ERR_VALIDATION && strstr(ae.message, "Could not find")) {
      set_err(err, ASD_ERR_ENDPOINT, &ae);
      const asd_aws_endpoint *rt = asd_aws_context_endpoint(ctx, ASD_AWS_SAGEMAKER_RUNTIME);
      return asd_error_set(err, ASD_ERR_ENDPOINT,
                           "endpoint '%s' not found in region %s (check -endpoint and -region; "
                           "aws sagemaker list-endpoints lists them)",
                           endpoint, rt ? rt->signing_region : "?");
    }
    /* Anything else (no control plane reachable, a proxy, throttling):
       the runtime may still work, so only warn. */
    snprintf(pf->warning, sizeof pf->warning, "cannot describe endpoint '%s' (%s): not checked before the run",
             endpoint, ae.message);
    return 0;
  }
  pf->described = 1;
  if (strcmp(pf->info.status, "InService") != 0) {
    set_err(err, ASD_ERR_ENDPOINT, NULL);
    return asd_error_set(err, ASD_ERR_ENDPOINT, "endpoint '%s' is not InService (it is %s%s%s): wait for it or fix it",
                         endpoint, pf->info.status[0] ? pf->info.status : "in an unknown state",
                         pf->info.failure_reason[0] ? ": " : "", pf->info.failure_reason);
  }
  if (pf->info.config_unknown) {
    snprintf(pf->warning, sizeof pf->warning,
             "DescribeEndpointConfig '%s' not allowed or failed (sagemaker:DescribeEndpointConfig is optional): "
             "the endpoint's output and failure paths are not known before the run",
             pf->info.config_name);
    pf->described = 0;
    return 0;
  }
  if (!pf->info.is_async) {
    set_err(err, ASD_ERR_ENDPOINT, NULL);
    return asd_error_set(err, ASD_ERR_ENDPOINT,
                         "endpoint '%s' is not an asynchronous endpoint (its configuration '%s' has no "
                         "AsyncInferenceConfig): deploy it with one to use gdal_asyncdetect",
                         endpoint, pf->info.config_name);
  }
  if (!pf->info.failure_path[0])
    snprintf(pf->warning, sizeof pf->warning,
             "endpoint '%s' has no S3FailurePath: a model error cannot be reported and its tile fails only "
             "after max_wait_time; add an S3FailurePath to the endpoint configuration",
             endpoint);
  return 0;
}

void asd_preflight_listbucket_hint(const char *bucket, char *out, size_t out_len) {
  snprintf(out, out_len,
           "S3 answers 403 instead of 404 for an object not written yet when s3:ListBucket on arn:aws:s3:::%s "
           "is missing: grant s3:ListBucket on that bucket (and s3:GetObject on its objects)",
           bucket);
}

int asd_preflight_bucket(asd_aws_context *ctx, const char *role, const char *bucket, asd_error *err) {
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  if (asd_s3_head_bucket(ctx, bucket, &ae) == 0) return 0;
  set_err(err, ASD_ERR_S3, &ae);
  char hint[400];
  switch (ae.kind) {
    case ASD_AWS_ERR_NOT_FOUND:
      return asd_error_set(err, ASD_ERR_S3, "%s bucket '%s' does not exist (HTTP 404): check the name and -region",
                           role, bucket);
    case ASD_AWS_ERR_ACCESS_DENIED:
      (void)hint;
      return asd_error_set(err, ASD_ERR_S3,
                           "%s bucket '%s': access denied (HTTP 403): s3:ListBucket on arn:aws:s3:::%s is missing "
                           "(or the bucket belongs to another account); without it S3 answers 403 instead of 404 "
                           "for results not written yet: grant s3:ListBucket on that bucket",
                           role, bucket, bucket);
    case ASD_AWS_ERR_AUTH:
      return asd_error_set(err, ASD_ERR_S3, "%s bucket '%s': credentials rejected (%s)", role, bucket,
                           ae.code[0] ? ae.code : ae.message);
    case ASD_AWS_ERR_NETWORK:
    case ASD_AWS_ERR_TIMEOUT:
      return asd_error_set(err, ASD_ERR_S3, "%s bucket '%s': cannot reach S3 (%s)", role, bucket, ae.message);
    default:
      return asd_error_set(err, ASD_ERR_S3, "%s bucket '%s': %s", role, bucket, ae.message);
  }
}

/* The bucket of an s3:// path ("" when it is not one). */
static void bucket_of(const char *path, char out[64]) {
  out[0] = '\0';
  if (strncmp(path, "s3://", 5) != 0) return;
  const char *b = path + 5, *slash = strchr(b, '/');
  size_t n = slash ? (size_t)(slash - b) : strlen(b);
  if (n >= 64) return;
  memcpy(out, b, n);
  out[n] = '\0';
}

int asd_preflight_buckets(asd_aws_context *ctx, const asd_async_config *cfg, const asd_preflight *pf,
                          asd_error *err) {
  char learnt_out[64] = "", learnt_fail[64] = "";
  if (pf && pf->described) {
    bucket_of(pf->info.output_path, learnt_out);
    bucket_of(pf->info.failure_path, learnt_fail);
  }
  const char *roles[4] = {"input", "output", "endpoint output", "endpoint failure"};
  const char *buckets[4] = {cfg->input_bucket, cfg->output_bucket, learnt_out, learnt_fail};
  for (int i = 0; i < 4; i++) {
    if (!buckets[i][0]) continue;
    int seen = 0;
    for (int k = 0; k < i; k++) seen |= strcmp(buckets[k], buckets[i]) == 0;
    if (!seen && asd_preflight_bucket(ctx, roles[i], buckets[i], err) != 0) return -1;
  }
  return 0;
}

/* s3://bucket/prefix[/extension] as a scope. */
static void allow_path(asd_resources *r, const char *path, const char *ext) {
  char bucket[64];
  bucket_of(path, bucket);
  if (!bucket[0]) return;
  const char *p = path + 5 + strlen(bucket);
  while (*p == '/') p++;
  char prefix[ASD_CONFIG_PREFIX_MAX * 2];
  size_t n = strlen(p);
  while (n && p[n - 1] == '/') n--;
  snprintf(prefix, sizeof prefix, "%.*s%s%s%s", (int)n, p, n ? "/" : "", ext, *ext ? "/" : "");
  asd_resources_allow(r, bucket, prefix);
}

/* The endpoint's whole paths are its own (AWS documents the extension for
   the output path only, so the failure object may or may not carry it). */
void asd_preflight_scopes(asd_resources *r, const asd_async_config *cfg, const asd_preflight *pf) {
  asd_resources_allow(r, cfg->input_bucket, cfg->input_prefix);
  if (cfg->output_bucket[0]) asd_resources_allow(r, cfg->output_bucket, cfg->output_prefix);
  if (pf && pf->described) {
    allow_path(r, pf->info.output_path, "");
    if (pf->info.failure_path[0]) allow_path(r, pf->info.failure_path, "");
  }
}
