/*
 * detector.c: AsyncSMDetector, one asynchronous SageMaker endpoint.
 *
 * A job is four steps, each a function here so that the simple-mode workers
 * and the optimised pool (and through it the synchronous find_features(),
 * which runs one job through a pool: pool.c) share them:
 *
 *   upload   PutObject of the payload to input_bucket/input_prefix<uuid>;
 *            the object is registered ACTIVE in the resource registry;
 *   invoke   InvokeEndpointAsync naming that object; the reply's
 *            OutputLocation and FailureLocation headers are parsed once and
 *            kept: they may be in any bucket, and they are the only places
 *            the result can appear (the seed polled an API that does not
 *            exist and guessed the output key);
 *   poll     GetObject on the output location; when it is absent, GetObject
 *            on the failure location.  A GET that finds nothing costs what a
 *            HEAD costs, and a GET that finds the result saves the second
 *            request a HEAD-then-GET scheme would need;
 *   finish   only now, when the endpoint can no longer need the input, is the
 *            input disposed of under the cleanup policy, together with the
 *            output or failure object that was consumed.
 *
 * A job abandoned while the endpoint may still read its input (stop-now, or a
 * timed-out job the endpoint may still be running) keeps its objects: they
 * are counted as retained rather than deleted under the endpoint's feet.
 *
 * Retries: the AWS layer already retries each HTTP call the SDK way; on top
 * of that, the pool repeats a step that still fails with a retryable error
 * (asd_error_is_retryable) up to max_retries times with the library's one
 * backoff (asd_backoff_delay), and a transient error while polling just
 * means "poll again later" here, up to max_retries consecutive errors.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_preflight.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"
#include "engine/detector_priv.h"
#include "engine/invoke.h"

struct asd_detector {
  char endpoint[64];
  asd_async_config cfg;
  asd_aws_context *aws;
  int owns_aws;
  asd_resources *res;
  /* The endpoint configuration's S3OutputPath / S3FailurePath, when the
     caller read them (asd_detector_set_output_config): seeds the paths a
     lost invocation's result is looked for at (invoke.h). */
  char *config_output_path, *config_failure_path;
};

/* ------------------------------------------------------------------ errors */

/* Turns an AWS error into an engine error of the given code, prefixing what. */
static int from_aws(asd_error *err, asd_errcode code, const asd_aws_error *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int from_aws(asd_error *err, asd_errcode code, const asd_aws_error *a, const char *fmt,
                    ...) {
  if (!err) return -1;
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  asd_error_clear(err);
  err->http_status = a->http_status;
  err->transport = a->kind == ASD_AWS_ERR_NETWORK || a->kind == ASD_AWS_ERR_TIMEOUT;
  err->not_sent = a->not_sent;
  snprintf(err->aws_code, sizeof err->aws_code, "%s", a->code);
  snprintf(err->request_id, sizeof err->request_id, "%s", a->request_id);
  /* Errors that are neither transport nor HTTP (bad URI, missing
   * credentials) are configuration problems, and permanent. */
  if (a->kind == ASD_AWS_ERR_CONFIG) {
    code = ASD_ERR_CONFIG;
  } else if (a->kind == ASD_AWS_ERR_CANCELLED) {
    code = ASD_ERR_CANCELLED;
  } else if (a->http_status == 0 && !err->transport && a->kind != ASD_AWS_ERR_THROTTLED &&
             a->kind != ASD_AWS_ERR_SERVER) {
    /* No answer, but not a transport failure either (parse, too large):
     * http_status 0 must not read as "no answer, retry". */
    err->http_status = -1;
  }
  return asd_error_set(err, code, "%s: %s", what, a->message[0] ? a->message : asd_aws_error_kind_name(a->kind));
}

/* ----------------------------------------------------------------- cleanup */

static int s3_delete_cb(void *ctx, const char *bucket, const char *const *keys, int n, int *failed,
                        char *errbuf, size_t err_len) {
  asd_detector *d = ctx;
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  if (n == 1) {
    /* A single DELETE is cheaper than a DeleteObjects round trip. */
    if (asd_s3_delete_object(d->aws, bucket, keys[0], &ae) != 0) {
      asd_aws_error_format(&ae, errbuf, err_len);
      failed[0] = 1;
    }
    return 0;
  }
  asd_s3_delete_result r;
  memset(&r, 0, sizeof r);
  int rc = asd_s3_delete_objects(d->aws, bucket, keys, (size_t)n, &r, &ae);
  for (size_t i = 0; i < r.n_errors; i++) {
    for (int k = 0; k < n; k++) {
      if (!failed[k] && r.errors[i].key && strcmp(r.errors[i].key, keys[k]) == 0) {
        failed[k] = 1;
        break;
      }
    }
    if (i == 0 && rc == 0)
      snprintf(errbuf, err_len, "%s: %s", r.errors[i].code, r.errors[i].message);
  }
  if (rc != 0) asd_aws_error_format(&ae, errbuf, err_len);
  asd_s3_delete_result_free(&r);
  return rc == 0 ? 0 : -1;
}

/* ----------------------------------------------------------------- create */

static asd_detector *detector_alloc(const char *endpoint_name, const asd_async_config *cfg,
                                    asd_error *err) {
  char msg[256];
  if (!endpoint_name || !asd_sm_endpoint_name_valid(endpoint_name)) {
    asd_error_set(err, ASD_ERR_CONFIG,
                  "endpoint name '%s' is not valid (1-63 of a-z A-Z 0-9 and '-', not at either end)",
                  endpoint_name ? endpoint_name : "");
    return NULL;
  }
  if (!cfg) {
    asd_error_set(err, ASD_ERR_CONFIG, "configuration is missing");
    return NULL;
  }
  if (asd_config_validate(cfg, msg, sizeof msg) != 0) {
    asd_error_set(err, ASD_ERR_CONFIG, "%s", msg);
    return NULL;
  }
  asd_detector *d = calloc(1, sizeof *d);
  if (!d) {
    asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
    return NULL;
  }
  snprintf(d->endpoint, sizeof d->endpoint, "%s", endpoint_name);
  d->cfg = *cfg;
  d->res = asd_resources_new(asd_config_effective_policy(cfg), cfg->cleanup_delay_seconds,
                             s3_delete_cb, d);
  if (!d->res) {
    free(d);
    asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
    return NULL;
  }
  return d;
}

asd_detector *asd_detector_new_with_context(const char *endpoint_name, const asd_async_config *cfg,
                                            struct asd_aws_context *aws_ctx, asd_error *err) {
  asd_error_clear(err);
  if (!aws_ctx) {
    asd_error_set(err, ASD_ERR_CONFIG, "AWS context is missing");
    return NULL;
  }
  asd_detector *d = detector_alloc(endpoint_name, cfg, err);
  if (!d) return NULL;
  d->aws = aws_ctx;
  d->owns_aws = 0;
  return d;
}

asd_detector *asd_detector_new(const char *endpoint_name, const asd_async_config *cfg,
                               const asd_detector_aws *aws, asd_error *err) {
  asd_error_clear(err);
  asd_detector *d = detector_alloc(endpoint_name, cfg, err);
  if (!d) return NULL;
  asd_aws_config ac;
  asd_aws_config_init(&ac);
  if (aws) {
    ac.region = aws->region;
    ac.profile = aws->profile;
    ac.endpoint_url = aws->endpoint_url;
    ac.access_key_id = aws->access_key_id;
    ac.secret_access_key = aws->secret_access_key;
    ac.session_token = aws->session_token;
    ac.role_arn = aws->role_arn;
    ac.external_id = aws->external_id;
  }
  /* Encryption and ownership headers the buckets' policies ask for. */
  ac.s3_sse = cfg->sse[0] ? cfg->sse : NULL;
  ac.s3_sse_kms_key_id = cfg->sse_kms_key_id[0] ? cfg->sse_kms_key_id : NULL;
  ac.s3_expected_bucket_owner = cfg->expected_bucket_owner[0] ? cfg->expected_bucket_owner : NULL;
  /* Enough pooled connections for every worker of the pool at once. */
  int workers = cfg->submission_workers + cfg->polling_workers + 2;
  if (ac.max_connections < workers) ac.max_connections = workers;
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  d->aws = asd_aws_context_new(&ac, &ae);
  if (!d->aws) {
    from_aws(err, ASD_ERR_CONFIG, &ae, "cannot set up AWS access");
    asd_resources_free(d->res);
    free(d);
    return NULL;
  }
  d->owns_aws = 1;
  return d;
}

void asd_detector_free(asd_detector *d) {
  if (!d) return;
  asd_resources_collect(d->res, 0, 1);
  asd_resource_stats st;
  asd_resources_get_stats(d->res, &st);
  if (st.delete_failed > 0)
    CPLError(CE_Warning, CPLE_AppDefined, "asd_detector: cleanup: %lld objects could not be deleted; last: %s",
             st.delete_failed, st.last_failure);
  if (st.retained > 0) {
    if (asd_config_effective_policy(&d->cfg) == ASD_CLEANUP_DISABLED)
      CPLError(CE_Warning, CPLE_AppDefined,
               "asd_detector: cleanup disabled: %lld objects kept in S3 (inputs under s3://%s/%s, "
               "results where the endpoint wrote them)",
               st.retained, d->cfg.input_bucket, d->cfg.input_prefix);
    else
      CPLDebug("ASD_ENGINE",
               "%lld objects kept on purpose (jobs abandoned or timed out while the endpoint "
               "may still read their input)",
               st.retained);
  }
  asd_resources_free(d->res);
  if (d->owns_aws) asd_aws_context_free(d->aws);
  free(d->config_output_path);
  free(d->config_failure_path);
  free(d);
}

void asd_detector_set_output_config(asd_detector *d, const char *s3_output_path, const char *s3_failure_path) {
  free(d->config_output_path);
  free(d->config_failure_path);
  d->config_output_path = s3_output_path && *s3_output_path ? strdup(s3_output_path) : NULL;
  d->config_failure_path = s3_failure_path && *s3_failure_path ? strdup(s3_failure_path) : NULL;
}

void asd_det_seed_paths(asd_detector *d, asd_invoke_paths *p) {
  if (!d->config_output_path) return;
  char ext[ASD_CONFIG_PREFIX_MAX];
  asd_config_output_path_extension(&d->cfg, ext, sizeof ext);
  asd_invoke_paths_seed(p, d->config_output_path, d->config_failure_path, ext);
}

const asd_async_config *asd_detector_config(const asd_detector *d) { return &d->cfg; }
const char *asd_detector_endpoint(const asd_detector *d) { return d->endpoint; }
struct asd_aws_context *asd_detector_aws_context(asd_detector *d) { return d->aws; }
asd_resources *asd_detector_resources(asd_detector *d) { return d->res; }

void asd_detector_get_resource_stats(asd_detector *d, asd_resource_stats *out) {
  asd_resources_get_stats(d ? d->res : NULL, out);
}

char *asd_detector_resource_stats_json(asd_detector *d) {
  return asd_resources_stats_json(d ? d->res : NULL);
}

long long asd_detector_cleanup_resources(asd_detector *d, int force) {
  if (!d) return 0;
  return asd_resources_collect(d->res, asd_time_monotonic(), force);
}

static int check_bucket(asd_detector *d, const char *role, const char *bucket, asd_error *err) {
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  if (asd_s3_head_bucket(d->aws, bucket, &ae) == 0) return 0;
  const char *cause;
  switch (ae.kind) {
    case ASD_AWS_ERR_NOT_FOUND: cause = "does not exist"; break;
    case ASD_AWS_ERR_ACCESS_DENIED: cause = "access denied"; break;
    case ASD_AWS_ERR_AUTH: cause = "credentials rejected"; break;
    case ASD_AWS_ERR_NETWORK: cause = "cannot reach S3"; break;
    case ASD_AWS_ERR_TIMEOUT: cause = "S3 timed out"; break;
    default: cause = asd_aws_error_kind_name(ae.kind); break;
  }
  from_aws(err, ASD_ERR_S3, &ae, "%s bucket '%s'", role, bucket);
  char detail[sizeof err->message];
  snprintf(detail, sizeof detail, "%s", err->message);
  if (ae.http_status)
    asd_error_set(err, ASD_ERR_S3, "%s bucket '%s': %s (HTTP %d)", role, bucket, cause, ae.http_status);
  else
    asd_error_set(err, ASD_ERR_S3, "%s bucket '%s': %s (%s)", role, bucket, cause, detail);
  return -1;
}

int asd_detector_validate_buckets(asd_detector *d, asd_error *err) {
  asd_error_clear(err);
  if (check_bucket(d, "input", d->cfg.input_bucket, err) != 0) return -1;
  if (d->cfg.output_bucket[0] && strcmp(d->cfg.output_bucket, d->cfg.input_bucket) != 0 &&
      check_bucket(d, "output", d->cfg.output_bucket, err) != 0)
    return -1;
  return 0;
}

/* -------------------------------------------------------------- job steps */

double asd_det_wait_bound(const asd_async_config *cfg) {
  /* Past RequestTTLSeconds + InvocationTimeoutSeconds the endpoint has
     either written the result or given up on the job, so no wait needs to
     be longer; the margin covers the write and clock differences. */
  double bound = asd_config_request_ttl(cfg) + asd_config_invocation_timeout(cfg) + 60.0;
  return cfg->max_wait_time < bound ? cfg->max_wait_time : bound;
}

void asd_det_timeout_message(const asd_async_config *cfg, const asd_det_job *job, char *out, size_t out_len) {
  double waited = asd_det_wait_bound(cfg);
  const char *what = waited < cfg->max_wait_time ? "RequestTTLSeconds + InvocationTimeoutSeconds" : "max_wait_time";
  if (!job->fail_key)
    snprintf(out, out_len,
             "inference %s not finished after %s %g s (%d polls of %s); the endpoint named no FailureLocation "
             "(it has no S3FailurePath), so a model error cannot be reported: add an S3FailurePath to the "
             "endpoint configuration",
             job->inference_id, what, waited, job->polls, job->output_location);
  else
    snprintf(out, out_len, "inference %s not finished after %s %g s (%d polls of %s)", job->inference_id, what,
             waited, job->polls, job->output_location);
}

void asd_det_job_init(asd_det_job *job) {
  memset(job, 0, sizeof *job);
  job->t_start = asd_time_monotonic();
}

void asd_det_job_clear(asd_det_job *job) {
  free(job->input_key);
  free(job->output_location);
  free(job->failure_location);
  free(job->out_key);
  free(job->fail_key);
  memset(job, 0, sizeof *job);
}

int asd_det_upload(asd_detector *d, asd_det_job *job, const void *payload, size_t len,
                   asd_metrics *m, asd_error *err) {
  if (job->uploaded) return 0;
  if (!job->input_key) {
    char uuid[37];
    asd_uuid4(uuid);
    size_t n = strlen(d->cfg.input_prefix) + sizeof uuid + 1;
    job->input_key = malloc(n);
    if (!job->input_key) return asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
    snprintf(job->input_key, n, "%s%s", d->cfg.input_prefix, uuid);
    snprintf(job->input_bucket, sizeof job->input_bucket, "%s", d->cfg.input_bucket);
  }
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  double t0 = asd_time_monotonic();
  int rc = asd_s3_put_object(d->aws, job->input_bucket, job->input_key, payload, len,
                             d->cfg.content_type[0] ? d->cfg.content_type : NULL, NULL, &ae);
  /* A span, not only a duration: the union of the uploads' spans is the time
     the uplink carried a tile (engine/bound.c). */
  asd_metrics_record_span(m, "S3UploadDuration", t0, asd_time_monotonic());
  if (rc != 0)
    return from_aws(err, ASD_ERR_S3, &ae, "upload of s3://%s/%s", job->input_bucket, job->input_key);
  job->uploaded = 1;
  if (!job->res_input)
    job->res_input = asd_resources_add(d->res, ASD_RES_S3_OBJECT, job->input_bucket, job->input_key);
  return 0;
}

/* Splits a location into bucket + key (malloc'd). */
static int parse_location(const char *loc, char bucket[64], char **key, asd_error *err,
                          const char *what) {
  asd_s3_uri u;
  memset(&u, 0, sizeof u);
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  if (asd_s3_uri_parse(loc, 0, &u, &ae) != 0) {
    asd_error_clear(err);
    err->http_status = -1;
    return asd_error_set(err, ASD_ERR_ENDPOINT, "%s '%s' returned by the endpoint is not an S3 URI: %s",
                         what, loc, ae.message);
  }
  snprintf(bucket, 64, "%s", u.bucket);
  *key = u.key;
  u.key = NULL;
  asd_s3_uri_free(&u);
  return 0;
}

static int set_locations(asd_det_job *job, const char *output, const char *failure,
                         asd_error *err) {
  free(job->output_location);
  free(job->failure_location);
  free(job->out_key);
  free(job->fail_key);
  job->output_location = job->failure_location = job->out_key = job->fail_key = NULL;
  job->output_location = strdup(output);
  if (!job->output_location) return asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
  if (parse_location(output, job->out_bucket, &job->out_key, err, "output location") != 0) return -1;
  if (failure && *failure) {
    job->failure_location = strdup(failure);
    if (!job->failure_location) return asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
    if (parse_location(failure, job->fail_bucket, &job->fail_key, err, "failure location") != 0)
      return -1;
  }
  return 0;
}

int asd_det_invoke(asd_detector *d, asd_det_job *job, asd_metrics *m, asd_error *err) {
  if (job->invoked) return 0;
  char *input = asd_s3_uri_format(job->input_bucket, job->input_key);
  if (!input) return asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
  asd_sm_invoke_async_params p;
  memset(&p, 0, sizeof p);
  p.endpoint_name = d->endpoint;
  p.input_location = input;
  p.content_type = d->cfg.content_type[0] ? d->cfg.content_type : NULL;
  p.accept = d->cfg.accept[0] ? d->cfg.accept : NULL;
  p.custom_attributes = d->cfg.custom_attributes[0] ? d->cfg.custom_attributes : NULL;
  /* The endpoint enforces these; derived from max_wait_time unless given. */
  p.request_ttl_seconds = asd_config_request_ttl(&d->cfg);
  p.invocation_timeout_seconds = asd_config_invocation_timeout(&d->cfg);
  char ext[ASD_CONFIG_PREFIX_MAX];
  if (asd_config_output_path_extension(&d->cfg, ext, sizeof ext) > 0) p.s3_output_path_extension = ext;
  /* The caller's id and Filename (invoke.c): where the result will be is
     then known before the call, should its answer be lost. */
  if (job->inference_id[0]) p.inference_id = job->inference_id;
  if (job->filename[0]) p.filename = job->filename;
  asd_sm_invoke_async_result r;
  memset(&r, 0, sizeof r);
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  double t0 = asd_time_monotonic();
  int rc = asd_sm_invoke_async(d->aws, &p, &r, &ae);
  double t1 = asd_time_monotonic();
  asd_metrics_record(m, "InvokeDuration", t1 - t0);
  if (rc != 0) {
    from_aws(err, ASD_ERR_ENDPOINT, &ae, "InvokeEndpointAsync on '%s' for %s", d->endpoint, input);
    free(input);
    asd_sm_invoke_async_result_free(&r);
    return -1;
  }
  free(input);
  if (!r.output_location || !*r.output_location) {
    asd_sm_invoke_async_result_free(&r);
    asd_error_clear(err);
    err->http_status = -1;
    return asd_error_set(err, ASD_ERR_ENDPOINT,
                         "InvokeEndpointAsync on '%s' returned no X-Amzn-SageMaker-OutputLocation",
                         d->endpoint);
  }
  rc = set_locations(job, r.output_location, r.failure_location, err);
  if (r.inference_id[0]) snprintf(job->inference_id, sizeof job->inference_id, "%s", r.inference_id);
  asd_sm_invoke_async_result_free(&r);
  if (rc != 0) return -1;
  job->invoked = 1;
  job->t_invoked = t1;
  job->deadline = t1 + asd_det_wait_bound(&d->cfg);
  job->res_job = asd_resources_add(d->res, ASD_RES_INFERENCE_JOB, NULL, job->inference_id);
  asd_metrics_incr(m, "TileSubmissions", 1);
  return 0;
}

int asd_det_resume_input(asd_detector *d, asd_det_job *job, const char *input_location, asd_error *err) {
  if (parse_location(input_location, job->input_bucket, &job->input_key, err, "input location") != 0) return -1;
  job->uploaded = 1;
  job->res_input = asd_resources_add(d->res, ASD_RES_S3_OBJECT, job->input_bucket, job->input_key);
  return 0;
}

int asd_det_lost(asd_detector *d, asd_det_job *job, const char *output, const char *failure,
                 asd_error *err) {
  if (output && set_locations(job, output, failure, err) != 0) return -1;
  if (!job->invoked) {
    /* From now on the endpoint may read the input: it is kept if the job
       is abandoned, and the wait counts from the lost call. */
    job->invoked = 1;
    job->t_invoked = asd_time_monotonic();
    job->deadline = job->t_invoked + asd_det_wait_bound(&d->cfg);
    job->res_job = asd_resources_add(d->res, ASD_RES_INFERENCE_JOB, NULL, job->inference_id);
  }
  return 0;
}

int asd_det_resume(asd_detector *d, asd_det_job *job, const char *inference_id,
                   const char *input_location, const char *output_location,
                   const char *failure_location, double submitted_wall, asd_error *err) {
  if (!output_location || !*output_location)
    return asd_error_set(err, ASD_ERR_CONFIG, "resume job without an output location");
  if (set_locations(job, output_location, failure_location, err) != 0) return -1;
  snprintf(job->inference_id, sizeof job->inference_id, "%s", inference_id ? inference_id : "");
  if (input_location && *input_location && asd_det_resume_input(d, job, input_location, err) != 0) return -1;
  job->invoked = 1;
  double now = asd_time_monotonic();
  double age = submitted_wall > 0 ? asd_time_wall() - submitted_wall : 0;
  if (age < 0) age = 0;
  job->t_invoked = now - age;
  job->deadline = job->t_invoked + asd_det_wait_bound(&d->cfg);
  job->res_job = asd_resources_add(d->res, ASD_RES_INFERENCE_JOB, NULL, job->inference_id);
  return 0;
}

int asd_det_check_result(const unsigned char *text, size_t len, struct json_object **out,
                         asd_error *err) {
  if (out) *out = NULL;
  json_tokener *tok = json_tokener_new();
  if (!tok) return asd_error_set(err, ASD_ERR_RUNTIME, "out of memory");
  json_object *o = json_tokener_parse_ex(tok, (const char *)text, (int)len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  json_tokener_free(tok);
  if (!o || jerr != json_tokener_success) {
    if (o) json_object_put(o);
    return asd_error_set(err, ASD_ERR_BAD_RESULT, "output is not JSON (%zu bytes): %s", len,
                         json_tokener_error_desc(jerr));
  }
  json_object *type = NULL, *features = NULL;
  if (!json_object_is_type(o, json_type_object) ||
      !json_object_object_get_ex(o, "type", &type) ||
      !json_object_is_type(type, json_type_string) ||
      strcmp(json_object_get_string(type), "FeatureCollection") != 0 ||
      !json_object_object_get_ex(o, "features", &features) ||
      !json_object_is_type(features, json_type_array)) {
    json_object_put(o);
    return asd_error_set(err, ASD_ERR_BAD_RESULT,
                         "output is JSON but not a FeatureCollection with a features array");
  }
  if (out)
    *out = o;
  else
    json_object_put(o);
  return 0;
}

/* Printable, one-line excerpt of a failure object for an error message. */
static void excerpt(const unsigned char *p, size_t n, char *out, size_t out_len) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 4 < out_len; i++) {
    unsigned char c = p[i];
    out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
  }
  if (n > 0 && j + 4 >= out_len) {
    memcpy(out + j, "...", 3);
    j += 3;
  }
  out[j] = 0;
}

int asd_det_poll(asd_detector *d, asd_det_job *job, asd_buf *result, asd_metrics *m,
                 asd_error *err) {
  asd_aws_error ae;
  asd_aws_error_clear(&ae);
  job->polls++;
  double t0 = asd_time_monotonic();
  size_t before = result->len;
  /* The cap applies while the body streams in (http.c stops the transfer
     there), so a runaway model output never costs more than the cap. */
  size_t cap = asd_max_result_bytes();
  int rc = asd_s3_get_object(d->aws, job->out_bucket, job->out_key, cap, result, NULL, &ae);
  if (rc != 0 && ae.kind == ASD_AWS_ERR_TOO_LARGE) {
    result->len = before;
    asd_metrics_record(m, "PollDuration", asd_time_monotonic() - t0);
    asd_error_clear(err);
    return asd_error_set(err, ASD_ERR_BAD_RESULT,
                         "the result at %s is larger than ASD_MAX_RESULT_BYTES (%zu bytes); "
                         "raise it with --config ASD_MAX_RESULT_BYTES if the model really returns that much",
                         job->output_location, cap);
  }
  if (rc == 0) {
    double t1 = asd_time_monotonic();
    asd_metrics_record(m, "S3DownloadDuration", t1 - t0);
    asd_metrics_record(m, "PollDuration", t1 - t0);
    job->poll_errors = 0;
    if (!job->res_output)
      job->res_output = asd_resources_add(d->res, ASD_RES_S3_OBJECT, job->out_bucket, job->out_key);
    return 1;
  }
  result->len = before;
  if (ae.kind == ASD_AWS_ERR_NOT_FOUND && job->fail_key) {
    asd_buf fb;
    asd_buf_init(&fb);
    asd_aws_error_clear(&ae);
    rc = asd_s3_get_object(d->aws, job->fail_bucket, job->fail_key, 1 << 20, &fb, NULL, &ae);
    asd_metrics_record(m, "PollDuration", asd_time_monotonic() - t0);
    if (rc == 0) {
      job->poll_errors = 0;
      if (!job->res_output)
        job->res_output = asd_resources_add(d->res, ASD_RES_S3_OBJECT, job->fail_bucket, job->fail_key);
      char text[700];
      excerpt(fb.data, fb.len, text, sizeof text);
      asd_buf_free(&fb);
      asd_error_clear(err);
      err->http_status = -1;
      return asd_error_set(err, ASD_ERR_INFERENCE, "endpoint '%s' failed inference %s: %s",
                           d->endpoint, job->inference_id, text);
    }
    asd_buf_free(&fb);
    if (ae.kind == ASD_AWS_ERR_NOT_FOUND) {
      job->poll_errors = 0;
      return 0;
    }
    from_aws(err, ASD_ERR_S3, &ae, "polling failure location %s", job->failure_location);
  } else if (ae.kind == ASD_AWS_ERR_NOT_FOUND) {
    asd_metrics_record(m, "PollDuration", asd_time_monotonic() - t0);
    job->poll_errors = 0;
    return 0;
  } else {
    asd_metrics_record(m, "PollDuration", asd_time_monotonic() - t0);
    from_aws(err, ASD_ERR_S3, &ae, "polling output location %s", job->output_location);
    if (ae.kind == ASD_AWS_ERR_ACCESS_DENIED) {
      char hint[400];
      asd_preflight_listbucket_hint(job->out_bucket, hint, sizeof hint);
      asd_error_set(err, ASD_ERR_S3, "polling output location %s: access denied (HTTP 403): %s",
                    job->output_location, hint);
    }
  }
  /* A poll that failed: transient errors are tolerated up to max_retries in a row. */
  if (asd_error_is_retryable(err) && job->poll_errors < d->cfg.max_retries) {
    job->poll_errors++;
    asd_metrics_incr(m, "Retries", 1);
    return 0;
  }
  return -1;
}

void asd_det_finish(asd_detector *d, asd_det_job *job) {
  if (job->res_input) asd_resources_dispose(d->res, job->res_input);
  if (job->res_output) asd_resources_dispose(d->res, job->res_output);
  if (job->res_job) asd_resources_release(d->res, job->res_job);
  job->res_input = job->res_output = job->res_job = 0;
}

void asd_det_abandon(asd_detector *d, asd_det_job *job) {
  /* An input never invoked cannot be read by the endpoint: dispose of it. */
  if (job->res_input) {
    if (job->invoked)
      asd_resources_retain(d->res, job->res_input);
    else
      asd_resources_dispose(d->res, job->res_input);
  }
  if (job->res_output) asd_resources_dispose(d->res, job->res_output);
  if (job->res_job) asd_resources_release(d->res, job->res_job);
  job->res_input = job->res_output = job->res_job = 0;
}
