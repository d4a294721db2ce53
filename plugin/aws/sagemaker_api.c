/*
 * sagemaker_api.c: the two SageMaker control-plane calls of the preflight,
 * DescribeEndpoint and DescribeEndpointConfig.
 *
 * The SageMaker API is an AWS JSON 1.1 service (X-Amz-Target:
 * SageMaker.<Operation>, a JSON body, signing name "sagemaker") at
 * api.sagemaker.<region>.amazonaws.com, a different host from the runtime.
 * The context knows three services (S3, the runtime, STS); rather than grow
 * that list for two optional calls, this file resolves the API's URL the way
 * the SDKs do (AWS_ENDPOINT_URL_SAGEMAKER, then AWS_ENDPOINT_URL; a custom
 * runtime endpoint, such as the local endpoint, serves both; else the
 * regional host), signs with the context's credentials and sends through
 * the context's transport (asd_http_fetch), so connection reuse,
 * cancellation and the error taxonomy are the same as everywhere else.
 *
 * Both calls are read-only and optional for a run: the caller treats an
 * AccessDenied here as a warning (the user may well lack
 * sagemaker:Describe*), and uses the answers to fail early with a clear
 * message (unknown endpoint, not InService, not asynchronous) and to learn
 * where results and failures go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_sagemaker.h"
#include "asyncdetect/asd_sigv4.h"
#include "aws_internal.h"

static void api_url(asd_aws_context *ctx, char *out, size_t n) {
  const char *e = getenv("AWS_ENDPOINT_URL_SAGEMAKER");
  if (!e || !*e) e = getenv("AWS_ENDPOINT_URL");
  const asd_aws_endpoint *rt = asd_aws_context_endpoint(ctx, ASD_AWS_SAGEMAKER_RUNTIME);
  if (e && *e)
    snprintf(out, n, "%s", e);
  else if (rt && rt->custom)
    snprintf(out, n, "%s", rt->base_url);
  else
    snprintf(out, n, "https://api.sagemaker.%s.%s", rt ? rt->signing_region : "us-east-1",
             rt && strncmp(rt->signing_region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com");
}

/* One signed JSON 1.1 call; *out gets the parsed reply object. */
static int call(asd_aws_context *ctx, const char *op, const char *body, json_object **out, asd_aws_error *err) {
  *out = NULL;
  char url[600];
  api_url(ctx, url, sizeof url);
  asd_aws_endpoint ep;
  memset(&ep, 0, sizeof ep);
  if (asd_aws_parse_endpoint_url(url, &ep, err) != 0) return -1;
  const asd_aws_endpoint *rt = asd_aws_context_endpoint(ctx, ASD_AWS_SAGEMAKER_RUNTIME);
  asd_aws_credentials cr;
  asd_aws_credentials_init(&cr);
  if (asd_aws_context_get_credentials(ctx, &cr, err) != 0) return -1;
  char date[17], target[96], hash[65];
  asd_sigv4_format_amz_date(asd_time_wall(), date);
  snprintf(target, sizeof target, "SageMaker.%s", op);
  asd_sha256_hex(body, strlen(body), hash);
  asd_sigv4_header hs[5] = {{"host", 0, ep.host, 0},
                            {"x-amz-date", 0, date, 0},
                            {"x-amz-target", 0, target, 0},
                            {"content-type", 0, "application/x-amz-json-1.1", 0},
                            {"x-amz-content-sha256", 0, hash, 0}};
  char path[600];
  snprintf(path, sizeof path, "%s/", ep.base_path);
  asd_sigv4_params sp;
  memset(&sp, 0, sizeof sp);
  sp.method = "POST";
  sp.path = path;
  sp.headers = hs;
  sp.n_headers = 5;
  sp.payload_hash = hash;
  sp.region = rt && rt->signing_region[0] ? rt->signing_region : "us-east-1";
  sp.service = "sagemaker";
  sp.amz_date = date;
  sp.access_key_id = cr.access_key_id;
  sp.secret_access_key = cr.secret_access_key;
  sp.session_token = cr.session_token;
  asd_sigv4_signature sig;
  asd_sigv4_signature_init(&sig);
  int rc = asd_sigv4_sign(&sp, &sig);
  char h_auth[1200], h_date[40], h_target[128], h_tok[4200], h_hash[100];
  snprintf(h_auth, sizeof h_auth, "Authorization: %s", rc == 0 ? (const char *)sig.authorization.data : "");
  snprintf(h_date, sizeof h_date, "X-Amz-Date: %s", date);
  snprintf(h_target, sizeof h_target, "X-Amz-Target: %s", target);
  snprintf(h_hash, sizeof h_hash, "X-Amz-Content-Sha256: %s", hash);
  snprintf(h_tok, sizeof h_tok, "X-Amz-Security-Token: %s", cr.session_token ? cr.session_token : "");
  const char *headers[] = {h_auth, h_date, h_target, "Content-Type: application/x-amz-json-1.1", h_hash,
                           cr.session_token ? h_tok : NULL, NULL};
  asd_sigv4_signature_free(&sig);
  asd_aws_credentials_free(&cr);
  if (rc != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "cannot sign the SageMaker %s request", op);
    return -1;
  }
  char full[700];
  snprintf(full, sizeof full, "%s/", ep.base_url);
  asd_http_response resp;
  asd_http_response_init(&resp);
  rc = asd_http_fetch(ctx, "POST", full, headers, body, strlen(body), 20.0, 3, &resp, err);
  if (rc == 0) {
    json_tokener *tok = json_tokener_new();
    *out = tok ? json_tokener_parse_ex(tok, (const char *)resp.body.data, (int)resp.body.len) : NULL;
    if (tok) json_tokener_free(tok);
    if (!*out || !json_object_is_type(*out, json_type_object)) {
      if (*out) json_object_put(*out);
      *out = NULL;
      asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "SageMaker %s returned a reply that is not a JSON object", op);
      rc = -1;
    }
  } else {
    char m[sizeof err->message];
    snprintf(m, sizeof m, "%s", err->message);
    asd_aws_error_set(err, err->kind, "SageMaker %s: %s", op, m);
  }
  asd_http_response_free(&resp);
  return rc;
}

static const char *str_at(json_object *o, const char *a, const char *b, const char *c) {
  json_object *v = o;
  const char *path[3] = {a, b, c};
  for (int i = 0; i < 3 && path[i]; i++)
    if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, path[i], &v)) return NULL;
  return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void copy(char *dst, size_t n, const char *src) { asd_aws_copy_line(dst, n, src ? src : "", src ? strlen(src) : 0); }

int asd_sm_describe_endpoint(asd_aws_context *ctx, const char *name, asd_sm_endpoint_info *out, asd_aws_error *err) {
  asd_aws_error_clear(err);
  memset(out, 0, sizeof *out);
  if (!asd_sm_endpoint_name_valid(name)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "invalid SageMaker endpoint name '%.80s'", name ? name : "");
    return -1;
  }
  json_object *req = json_object_new_object();
  json_object_object_add(req, "EndpointName", json_object_new_string(name));
  json_object *o = NULL;
  int rc = call(ctx, "DescribeEndpoint", json_object_to_json_string(req), &o, err);
  json_object_put(req);
  if (rc != 0) return -1;
  copy(out->status, sizeof out->status, str_at(o, "EndpointStatus", NULL, NULL));
  copy(out->config_name, sizeof out->config_name, str_at(o, "EndpointConfigName", NULL, NULL));
  copy(out->failure_reason, sizeof out->failure_reason, str_at(o, "FailureReason", NULL, NULL));
  json_object_put(o);
  if (!out->config_name[0]) return 0;
  /* The configuration is where the async settings are defined. */
  req = json_object_new_object();
  json_object_object_add(req, "EndpointConfigName", json_object_new_string(out->config_name));
  rc = call(ctx, "DescribeEndpointConfig", json_object_to_json_string(req), &o, err);
  json_object_put(req);
  if (rc != 0) {
    out->config_unknown = 1;
    return 0; /* the endpoint's own answer stands; err says why the rest is unknown */
  }
  json_object *ac = NULL;
  out->is_async = json_object_object_get_ex(o, "AsyncInferenceConfig", &ac) && json_object_is_type(ac, json_type_object);
  copy(out->output_path, sizeof out->output_path, str_at(o, "AsyncInferenceConfig", "OutputConfig", "S3OutputPath"));
  copy(out->failure_path, sizeof out->failure_path, str_at(o, "AsyncInferenceConfig", "OutputConfig", "S3FailurePath"));
  json_object_put(o);
  return 0;
}
