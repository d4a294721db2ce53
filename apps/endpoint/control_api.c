/*
 * control_api.c: DescribeEndpoint and DescribeEndpointConfig (control_api.h).
 *
 * The answers are built from the endpoint specs the runtime was started
 * with, in the shapes of the SageMaker API model: epoch-second timestamps,
 * ARNs with the lower-cased resource name (as SageMaker writes them), one
 * production variant "AllTraffic", and an AsyncInferenceConfig whose
 * OutputConfig gives the S3 paths the runtime really writes to.  An endpoint
 * is InService from the start: a cold start (cold_start_ms) delays its
 * instances, not its status, as on AWS where a scaled-to-zero async endpoint
 * stays InService.
 *
 * Errors follow the JSON 1.1 dialect: HTTP 400 with {"__type": CODE,
 * "message": TEXT}, ValidationException "Could not find endpoint ..." for an
 * unknown name, AccessDeniedException for a -deny rule,
 * UnknownOperationException for any other X-Amz-Target.
 */
#include "control_api.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "policy.h"
#include "runtime.h"

static time_t g_started;
static pthread_once_t g_started_once = PTHREAD_ONCE_INIT;
static void note_start(void) { g_started = time(NULL); }

int ep_control_api_matches(const char *method, const char *path, const char *target) {
  return method && path && target && strcmp(method, "POST") == 0 && strcmp(path, "/") == 0 &&
         strncmp(target, "SageMaker.", 10) == 0;
}

static void json_error(ep_response *resp, const ep_request *req, const char *code, const char *msg) {
  ep_json_error(resp, req, 400, code, msg);
  ep_response_set_header(resp, "Content-Type", "application/x-amz-json-1.1");
}

static void arn(char *out, size_t n, const char *region, const char *kind, const char *name) {
  char lower[ASD_RT_NAME_MAX];
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof lower; i++)
    lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
  lower[i] = '\0';
  snprintf(out, n, "arn:aws:sagemaker:%s:000000000000:%s/%s", region, kind, lower);
}

static const ep_endpoint_spec *find_spec(struct ep_runtime *rt, const char *name) {
  for (int i = 0; name && i < ep_runtime_endpoint_count(rt); i++) {
    const ep_endpoint_spec *s = ep_runtime_endpoint_spec(rt, i);
    if (s && strcmp(s->name, name) == 0) return s;
  }
  return NULL;
}

static json_object *s3_path(const char *bucket, const char *prefix) {
  char buf[ASD_RT_BUCKET_MAX + ASD_RT_PREFIX_MAX + 8];
  snprintf(buf, sizeof buf, "s3://%s%s%s", bucket, *prefix ? "/" : "", prefix);
  return json_object_new_string(buf);
}

static json_object *async_config(const ep_endpoint_spec *s) {
  json_object *cfg = json_object_new_object();
  json_object *client = json_object_new_object();
  json_object_object_add(client, "MaxConcurrentInvocationsPerInstance", json_object_new_int(s->concurrency));
  json_object_object_add(cfg, "ClientConfig", client);
  json_object *out = json_object_new_object();
  json_object_object_add(out, "S3OutputPath", s3_path(s->output_bucket, s->output_prefix));
  if (s->failure_bucket[0]) json_object_object_add(out, "S3FailurePath", s3_path(s->failure_bucket, s->failure_prefix));
  json_object_object_add(cfg, "OutputConfig", out);
  return cfg;
}

static json_object *describe_endpoint(const ep_endpoint_spec *s, const char *region) {
  char a[256];
  json_object *o = json_object_new_object();
  json_object_object_add(o, "EndpointName", json_object_new_string(s->name));
  arn(a, sizeof a, region, "endpoint", s->name);
  json_object_object_add(o, "EndpointArn", json_object_new_string(a));
  json_object_object_add(o, "EndpointConfigName", json_object_new_string(s->name));
  json_object *v = json_object_new_object();
  json_object_object_add(v, "VariantName", json_object_new_string("AllTraffic"));
  json_object_object_add(v, "CurrentWeight", json_object_new_double(1.0));
  json_object_object_add(v, "DesiredWeight", json_object_new_double(1.0));
  json_object_object_add(v, "CurrentInstanceCount", json_object_new_int(s->instances));
  json_object_object_add(v, "DesiredInstanceCount", json_object_new_int(s->instances));
  json_object *vs = json_object_new_array();
  json_object_array_add(vs, v);
  json_object_object_add(o, "ProductionVariants", vs);
  json_object_object_add(o, "EndpointStatus", json_object_new_string("InService"));
  json_object_object_add(o, "CreationTime", json_object_new_int64((int64_t)g_started));
  json_object_object_add(o, "LastModifiedTime", json_object_new_int64((int64_t)g_started));
  if (!s->realtime) json_object_object_add(o, "AsyncInferenceConfig", async_config(s));
  return o;
}

static json_object *describe_config(const ep_endpoint_spec *s, const char *region) {
  char a[256];
  json_object *o = json_object_new_object();
  json_object_object_add(o, "EndpointConfigName", json_object_new_string(s->name));
  arn(a, sizeof a, region, "endpoint-config", s->name);
  json_object_object_add(o, "EndpointConfigArn", json_object_new_string(a));
  json_object *v = json_object_new_object();
  json_object_object_add(v, "VariantName", json_object_new_string("AllTraffic"));
  json_object_object_add(v, "ModelName", json_object_new_string(s->model));
  json_object_object_add(v, "InitialInstanceCount", json_object_new_int(s->instances));
  json_object_object_add(v, "InstanceType", json_object_new_string("ml.m5.xlarge"));
  json_object_object_add(v, "InitialVariantWeight", json_object_new_double(1.0));
  json_object *vs = json_object_new_array();
  json_object_array_add(vs, v);
  json_object_object_add(o, "ProductionVariants", vs);
  json_object_object_add(o, "CreationTime", json_object_new_int64((int64_t)g_started));
  if (!s->realtime) json_object_object_add(o, "AsyncInferenceConfig", async_config(s));
  return o;
}

/* The request's NAME member, or NULL with a ValidationException answered. */
static const char *name_member(json_object *body, const char *member, const char *field,
                               const ep_request *req, ep_response *resp) {
  json_object *v = NULL;
  if (!body || !json_object_object_get_ex(body, member, &v) || !json_object_is_type(v, json_type_string)) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null",
             field);
    json_error(resp, req, "ValidationException", msg);
    return NULL;
  }
  return json_object_get_string(v);
}

void ep_control_api_handle(struct ep_runtime *runtime, const struct ep_policy *policy, const char *region,
                            const ep_request *req, ep_response *resp) {
  pthread_once(&g_started_once, note_start);
  if (!region || !*region) region = "us-east-1";
  const char *target = ep_request_header(req, "X-Amz-Target");
  const char *op = target && strncmp(target, "SageMaker.", 10) == 0 ? target + 10 : "";
  int is_ep = strcmp(op, "DescribeEndpoint") == 0, is_cfg = strcmp(op, "DescribeEndpointConfig") == 0;
  if (!is_ep && !is_cfg) {
    char msg[256];
    snprintf(msg, sizeof msg, "Operation SageMaker.%.100s is not supported by this endpoint", op);
    json_error(resp, req, "UnknownOperationException", msg);
    return;
  }
  resp->operation = is_ep ? "DescribeEndpoint" : "DescribeEndpointConfig";
  json_tokener *tok = json_tokener_new();
  json_object *body = tok && req->body_len ? json_tokener_parse_ex(tok, (const char *)req->body, (int)req->body_len)
                                           : NULL;
  if (tok) json_tokener_free(tok);
  const char *name = name_member(body, is_ep ? "EndpointName" : "EndpointConfigName",
                                 is_ep ? "endpointName" : "endpointConfigName", req, resp);
  if (name) {
    char a[256], msg[512];
    const char *action = is_ep ? "sagemaker:DescribeEndpoint" : "sagemaker:DescribeEndpointConfig";
    arn(a, sizeof a, region, is_ep ? "endpoint" : "endpoint-config", name);
    const ep_endpoint_spec *s = find_spec(runtime, name);
    if (ep_policy_denies(policy, action, name)) {
      ep_policy_denial_message(action, a, msg, sizeof msg);
      json_error(resp, req, "AccessDeniedException", msg);
    } else if (!s) {
      snprintf(msg, sizeof msg, "Could not find %s \"%s\".", is_ep ? "endpoint" : "endpoint configuration", a);
      json_error(resp, req, "ValidationException", msg);
    } else {
      json_object *o = is_ep ? describe_endpoint(s, region) : describe_config(s, region);
      asd_buf_append_str(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
      json_object_put(o);
      resp->status = 200;
      ep_response_set_header(resp, "Content-Type", "application/x-amz-json-1.1");
    }
  }
  if (body) json_object_put(body);
}
