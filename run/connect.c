/*
 * connect.c: the end of the open-input stage, the endpoint client.
 *
 * Builds the engine configuration (seed defaults, then ASYNC_SM_* from the
 * environment, then the command-line flags, so that a flag beats its
 * variable which beats the default), creates the detector (AWS context,
 * credentials chain, endpoints) and runs the preflight: credentials first,
 * so that a role that cannot be assumed is reported as such (and not as the
 * access-denied answer the bucket check would get without them), then
 * network and bucket access, before any output is created or any tile is
 * sent.  The endpoint and the region fall back on ASYNC_SM_ENDPOINT and
 * ASYNC_SM_REGION; the preflight (asd_preflight.h) describes the endpoint
 * when allowed (a denial is a warning), checks every bucket the run will
 * write to or poll, and sets the deletion scope from what it learnt.
 *
 * A dry run without any AWS setting (no -endpoint, no configuration flag,
 * no ASYNC_SM_INPUT_BUCKET) skips this stage: it only plans.  Options about
 * the endpoint, AWS or the engine are read here.
 */
#include <stdio.h>
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_preflight.h"
#include "cpl_conv.h"
#include "cpl_string.h"

int asd_run_build_config(const asd_detect_options *o, asd_async_config *cfg, const char *content_type) {
  char err[512];
  asd_config_init(cfg);
  if (asd_config_load_env(cfg, err, sizeof err) != 0) {
    asd_run_error("%s", err);
    return -1;
  }
  /* The payload's own type unless the user or the environment said otherwise. */
  if (!CPLGetConfigOption("ASYNC_SM_CONTENT_TYPE", NULL) && content_type)
    snprintf(cfg->content_type, sizeof cfg->content_type, "%s", content_type);
  for (char **p = o->config; p && *p; p++) {
    char *key = NULL;
    const char *val = CPLParseNameValue(*p, &key);
    int rc = asd_config_set(cfg, key, val, err, sizeof err);
    CPLFree(key);
    if (rc != 0) {
      asd_run_error("%s", err);
      return -1;
    }
  }
  if (o->content_type) snprintf(cfg->content_type, sizeof cfg->content_type, "%s", o->content_type);
  if (o->accept) snprintf(cfg->accept, sizeof cfg->accept, "%s", o->accept);
  if (o->custom_attributes)
    snprintf(cfg->custom_attributes, sizeof cfg->custom_attributes, "%s", o->custom_attributes);
  if (!cfg->input_bucket[0]) {
    asd_run_error("no input bucket: give -input-bucket BUCKET or set ASYNC_SM_INPUT_BUCKET (see gdal_asyncdetect "
                  "--help)");
    return -1;
  }
  if (asd_config_validate(cfg, err, sizeof err) != 0) {
    asd_run_error("invalid configuration: %s", err);
    return -1;
  }
  return 0;
}

/* Credentials are resolved once now: a broken chain is one clear line. */
static int check_credentials(asd_run *r) {
  asd_aws_credentials creds;
  asd_aws_credentials_init(&creds);
  asd_aws_error aerr;
  asd_aws_error_clear(&aerr);
  int crc = asd_aws_context_get_credentials(asd_detector_aws_context(r->detector), &creds, &aerr);
  asd_aws_credentials_free(&creds);
  if (crc == 0) return 0;
  if (r->o->assume_role)
    return asd_run_fail(r, "-assume-role %s: %s%s%s", r->o->assume_role, aerr.message, aerr.code[0] ? " " : "",
                        aerr.code[0] ? CPLSPrintf("(%s)", aerr.code) : "");
  return asd_run_fail(r, "no usable AWS credentials: %s", aerr.message);
}

int asd_run_connect(asd_run *r) {
  const asd_detect_options *o = r->o;
  if (!o->endpoint && o->dry_run && !o->config && !CPLGetConfigOption("ASYNC_SM_INPUT_BUCKET", NULL)) return 0;
  /* The configuration's own errors are the user's line: print them. */
  asd_run_report_end(&r->report);
  int rc = asd_run_build_config(o, &r->cfg, r->content_type);
  asd_run_report_begin(&r->report);
  if (rc != 0) {
    if (r->usage_error && !r->cfg.input_bucket[0]) *r->usage_error = 1;
    asd_run_report_end(&r->report);
    return -1;
  }
  asd_detector_aws aws;
  memset(&aws, 0, sizeof aws);
  aws.region = o->region ? o->region : r->cfg.region[0] ? r->cfg.region : NULL;
  aws.profile = o->profile;
  aws.role_arn = o->assume_role;
  aws.external_id = o->external_id;
  asd_error err;
  asd_error_clear(&err);
  char buf[1400];
  const char *endpoint = o->endpoint ? o->endpoint : r->cfg.endpoint[0] ? r->cfg.endpoint : NULL;
  r->detector = asd_detector_new(endpoint ? endpoint : "dry-run", &r->cfg, &aws, &err);
  if (!r->detector)
    return asd_run_fail(r, "cannot set up the endpoint client: %s", asd_error_format(&err, buf, sizeof buf));
  if (check_credentials(r) != 0) return -1;
  asd_aws_context *ctx = asd_detector_aws_context(r->detector);
  asd_preflight pf;
  memset(&pf, 0, sizeof pf);
  if (endpoint && asd_preflight_endpoint(ctx, endpoint, &pf, &err) != 0) return asd_run_fail(r, "%s", err.message);
  if (pf.warning[0]) CPLError(CE_Warning, CPLE_AppDefined, "%s", pf.warning);
  if (pf.described) asd_detector_set_output_config(r->detector, pf.info.output_path, pf.info.failure_path);
  if (asd_preflight_buckets(ctx, &r->cfg, &pf, &err) != 0) return asd_run_fail(r, "%s", err.message);
  asd_preflight_scopes(asd_detector_resources(r->detector), &r->cfg, &pf);
  return 0;
}
