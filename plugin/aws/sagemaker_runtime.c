/*
 * sagemaker_runtime.c: InvokeEndpointAsync and InvokeEndpoint.
 *
 * SageMaker Runtime is a rest-json service whose SigV4 signing name is
 * "sagemaker" although its host is runtime.sagemaker.<region>.amazonaws.com.
 * Parameters travel in X-Amzn-SageMaker-* headers; the service validates
 * them strictly, so they are checked here first and a bad value fails
 * locally with a message naming the field (a 400 ValidationError from the
 * service would only say "1 validation error detected").
 *
 * S3OutputPathExtension and Filename (where under the endpoint's output path
 * the result goes) follow the service model's patterns exactly, so a value
 * SageMaker would refuse is refused here with the rule spelled out.
 *
 * The async reply's useful parts are response headers
 * (X-Amzn-SageMaker-OutputLocation / FailureLocation); the JSON body only
 * repeats the inference id.  Header values are checked for control
 * characters before being sent, since a CR/LF in a custom attribute would
 * otherwise split the request.
 *
 * InvokeEndpointAsync is sent exactly once: no HTTP-level retry, and none of
 * libcurl's own either (a resend after a reused connection died is refused:
 * asd_http_request.send_once), while it still travels on kept-alive
 * connections.  The SDKs retry it like any call, but an invocation whose
 * answer was lost (timeout, reset, 5xx) may have been accepted, and sending
 * it again runs the model again: whether and when to invoke again is the
 * caller's decision, taken with what it knows (the engine looks for the
 * result first: pool.c).
 * InvokeEndpoint (synchronous) keeps the standard retries: its answer is the
 * result, so a lost answer must be paid for again anyway.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "asyncdetect/asd_sagemaker.h"
#include "aws_internal.h"

int asd_sm_endpoint_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > 63) return 0;
  if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)name[i]) || name[i] == '-')) return 0;
  return 1;
}

/* The service model's patterns, written out: the regular expressions use a
   negative look-ahead, which POSIX regex cannot express. */
int asd_sm_output_path_extension_valid(const char *ext) {
  size_t n = ext ? strlen(ext) : 0;
  if (n < 1 || n > 512) return 0;
  if (strncmp(ext, "s3:", 3) == 0 || strncmp(ext, "https:", 6) == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)ext[i]) && !strchr("!_.*'()/-", ext[i])) return 0;
  return 1;
}

int asd_sm_filename_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > 32 || !isalnum((unsigned char)name[0])) return 0;
  int dots = 0;
  for (size_t i = 0; i < n; i++) {
    if (name[i] == '.') dots++;
    else if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_') return 0;
  }
  return dots <= 1;
}

void asd_sm_invoke_async_result_free(asd_sm_invoke_async_result *r) {
  if (!r) return;
  free(r->output_location);
  free(r->failure_location);
  memset(r, 0, sizeof(*r));
}

void asd_sm_invoke_result_init(asd_sm_invoke_result *r) {
  memset(r, 0, sizeof(*r));
  asd_buf_init(&r->body);
}

void asd_sm_invoke_result_free(asd_sm_invoke_result *r) {
  if (!r) return;
  asd_buf_free(&r->body);
  memset(r, 0, sizeof(*r));
}

/* Checks a header value: length bounds and visible ASCII (plus space). */
static int check_header_value(const char *field, const char *v, size_t minlen, size_t maxlen, asd_aws_error *err) {
  size_t n = strlen(v);
  if (n < minlen || n > maxlen) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "%s must be %zu-%zu characters (got %zu)", field, minlen, maxlen, n);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c > 0x7e) {
      asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "%s contains a non-printable or non-ASCII character", field);
      return -1;
    }
  }
  return 0;
}

static int add_header(char ***list, const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *h = malloc(n);
  if (!h) return -1;
  snprintf(h, n, "%s: %s", name, value);
  size_t c = 0;
  while (*list && (*list)[c]) c++;
  char **nl = realloc(*list, (c + 2) * sizeof(char *));
  if (!nl) {
    free(h);
    return -1;
  }
  nl[c] = h;
  nl[c + 1] = NULL;
  *list = nl;
  return 0;
}

static void free_list(char **l) {
  for (char **p = l; p && *p; p++) free(*p);
  free(l);
}

static int endpoint_path(const char *name, const char *suffix, char *out, size_t size, asd_aws_error *err) {
  if (!asd_sm_endpoint_name_valid(name)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION,
                      "invalid SageMaker endpoint name '%.80s' (1-63 letters, digits or inner hyphens)",
                      name ? name : "");
    return -1;
  }
  snprintf(out, size, "/endpoints/%s/%s", name, suffix);
  return 0;
}

int asd_sm_invoke_async(asd_aws_context *ctx, const asd_sm_invoke_async_params *p, asd_sm_invoke_async_result *out,
                        asd_aws_error *err) {
  asd_aws_error_clear(err);
  memset(out, 0, sizeof(*out));
  char path[128];
  if (endpoint_path(p->endpoint_name, "async-invocations", path, sizeof(path), err) != 0) return -1;
  if (!p->input_location || !*p->input_location) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "InvokeEndpointAsync needs an input location (s3://bucket/key)");
    return -1;
  }
  if (check_header_value("InputLocation", p->input_location, 1, 1024, err) != 0) return -1;
  if (strncmp(p->input_location, "s3://", 5) != 0 && strncmp(p->input_location, "https://", 8) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "InputLocation '%.100s' is not an s3:// or https:// URI",
                      p->input_location);
    return -1;
  }
  if (p->content_type && check_header_value("ContentType", p->content_type, 0, 1024, err) != 0) return -1;
  if (p->accept && check_header_value("Accept", p->accept, 0, 1024, err) != 0) return -1;
  if (p->custom_attributes && check_header_value("CustomAttributes", p->custom_attributes, 0, 1024, err) != 0)
    return -1;
  if (p->inference_id && check_header_value("InferenceId", p->inference_id, 1, 64, err) != 0) return -1;
  if (p->request_ttl_seconds && (p->request_ttl_seconds < 60 || p->request_ttl_seconds > 21600)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "RequestTTLSeconds %d is outside 60-21600", p->request_ttl_seconds);
    return -1;
  }
  if (p->invocation_timeout_seconds && (p->invocation_timeout_seconds < 1 || p->invocation_timeout_seconds > 3600)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION, "InvocationTimeoutSeconds %d is outside 1-3600",
                      p->invocation_timeout_seconds);
    return -1;
  }
  if (p->s3_output_path_extension && !asd_sm_output_path_extension_valid(p->s3_output_path_extension)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION,
                      "S3OutputPathExtension '%.80s' is not valid: 1-512 of a-z A-Z 0-9 ! _ . * ' ( ) / -, "
                      "not starting with s3: or https:",
                      p->s3_output_path_extension);
    return -1;
  }
  if (p->filename && !asd_sm_filename_valid(p->filename)) {
    asd_aws_error_set(err, ASD_AWS_ERR_VALIDATION,
                      "Filename '%.80s' is not valid: 1-32 of a-z A-Z 0-9 - _ ., a letter or digit first, "
                      "at most one '.'",
                      p->filename);
    return -1;
  }
  char **h = NULL;
  int hrc = 0;
  hrc |= add_header(&h, "X-Amzn-SageMaker-InputLocation", p->input_location);
  if (p->s3_output_path_extension)
    hrc |= add_header(&h, "X-Amzn-SageMaker-S3OutputPathExtension", p->s3_output_path_extension);
  if (p->filename) hrc |= add_header(&h, "X-Amzn-SageMaker-Filename", p->filename);
  if (p->content_type && *p->content_type) hrc |= add_header(&h, "X-Amzn-SageMaker-Content-Type", p->content_type);
  if (p->accept && *p->accept) hrc |= add_header(&h, "X-Amzn-SageMaker-Accept", p->accept);
  if (p->custom_attributes && *p->custom_attributes)
    hrc |= add_header(&h, "X-Amzn-SageMaker-Custom-Attributes", p->custom_attributes);
  if (p->inference_id) hrc |= add_header(&h, "X-Amzn-SageMaker-Inference-Id", p->inference_id);
  char num[16];
  if (p->request_ttl_seconds) {
    snprintf(num, sizeof(num), "%d", p->request_ttl_seconds);
    hrc |= add_header(&h, "X-Amzn-SageMaker-RequestTTLSeconds", num);
  }
  if (p->invocation_timeout_seconds) {
    snprintf(num, sizeof(num), "%d", p->invocation_timeout_seconds);
    hrc |= add_header(&h, "X-Amzn-SageMaker-InvocationTimeoutSeconds", num);
  }
  if (hrc) {
    free_list(h);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "POST";
  req.service = ASD_AWS_SAGEMAKER_RUNTIME;
  req.path = path;
  req.headers = (const char *const *)h;
  req.body = "";
  req.body_len = 0;
  req.max_response_bytes = 1 << 20;
  req.max_attempts = 1; /* never blindly twice: see the note at the top */
  /* Nor behind our back: libcurl sends a request again when the reused
   * connection it went out on dies before any answer, and a reset after
   * SageMaker queued the job is exactly that.  send_once refuses that resend
   * (http.c, send_once_guard) and reports the failure as a lost answer, so
   * invocations share keep-alive connections like every other call instead
   * of paying a TCP and TLS handshake each. */
  req.send_once = 1;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_aws_send(ctx, &req, &resp, err);
  free_list(h);
  if (rc == 0) {
    snprintf(out->request_id, sizeof(out->request_id), "%s", resp.request_id);
    const char *ol = asd_http_response_header(&resp, "X-Amzn-SageMaker-OutputLocation");
    const char *fl = asd_http_response_header(&resp, "X-Amzn-SageMaker-FailureLocation");
    if (ol && *ol) out->output_location = strdup(ol);
    if (fl && *fl) out->failure_location = strdup(fl);
    json_object *o = resp.body.len ? json_tokener_parse((const char *)resp.body.data) : NULL;
    json_object *v;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "InferenceId", &v) &&
        json_object_is_type(v, json_type_string))
      asd_aws_copy_line(out->inference_id, sizeof(out->inference_id), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
    if (o) json_object_put(o);
    if (!out->output_location) {
      asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                        "InvokeEndpointAsync on %s returned no X-Amzn-SageMaker-OutputLocation header",
                        p->endpoint_name);
      snprintf(err->request_id, sizeof(err->request_id), "%s", resp.request_id);
      asd_sm_invoke_async_result_free(out);
      rc = -1;
    } else if (!out->inference_id[0] && p->inference_id) {
      snprintf(out->inference_id, sizeof(out->inference_id), "%s", p->inference_id);
    }
  } else {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    asd_aws_error_set(err, err->kind, "InvokeEndpointAsync on endpoint '%s' failed: %s", p->endpoint_name, m);
  }
  asd_http_response_free(&resp);
  return rc;
}

int asd_sm_invoke(asd_aws_context *ctx, const asd_sm_invoke_params *p, asd_sm_invoke_result *out, asd_aws_error *err) {
  asd_aws_error_clear(err);
  char path[128];
  if (endpoint_path(p->endpoint_name, "invocations", path, sizeof(path), err) != 0) return -1;
  if (p->body_len > 6u * 1024 * 1024) {
    asd_aws_error_set(err, ASD_AWS_ERR_TOO_LARGE, "InvokeEndpoint payload of %zu bytes exceeds the 6 MB limit",
                      p->body_len);
    return -1;
  }
  if (p->content_type && check_header_value("ContentType", p->content_type, 0, 1024, err) != 0) return -1;
  if (p->accept && check_header_value("Accept", p->accept, 0, 1024, err) != 0) return -1;
  if (p->custom_attributes && check_header_value("CustomAttributes", p->custom_attributes, 0, 1024, err) != 0)
    return -1;
  if (p->inference_id && check_header_value("InferenceId", p->inference_id, 1, 64, err) != 0) return -1;
  char **h = NULL;
  int hrc = 0;
  hrc |= add_header(&h, "Content-Type", p->content_type && *p->content_type ? p->content_type : "application/octet-stream");
  if (p->accept && *p->accept) hrc |= add_header(&h, "Accept", p->accept);
  if (p->custom_attributes && *p->custom_attributes)
    hrc |= add_header(&h, "X-Amzn-SageMaker-Custom-Attributes", p->custom_attributes);
  if (p->inference_id) hrc |= add_header(&h, "X-Amzn-SageMaker-Inference-Id", p->inference_id);
  if (hrc) {
    free_list(h);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "POST";
  req.service = ASD_AWS_SAGEMAKER_RUNTIME;
  req.path = path;
  req.headers = (const char *const *)h;
  req.body = p->body ? p->body : "";
  req.body_len = p->body_len;
  req.max_response_bytes = p->max_response_bytes;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_aws_send(ctx, &req, &resp, err);
  free_list(h);
  if (rc == 0) {
    snprintf(out->request_id, sizeof(out->request_id), "%s", resp.request_id);
    const char *ct = asd_http_response_header(&resp, "Content-Type");
    if (ct) asd_aws_copy_line(out->content_type, sizeof(out->content_type), ct, strlen(ct));
    const char *iv = asd_http_response_header(&resp, "x-Amzn-Invoked-Production-Variant");
    if (iv) asd_aws_copy_line(out->invoked_variant, sizeof(out->invoked_variant), iv, strlen(iv));
    if (asd_buf_append(&out->body, resp.body.data ? resp.body.data : (const unsigned char *)"", resp.body.len) != 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_TOO_LARGE, "out of memory");
      rc = -1;
    }
  } else {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    asd_aws_error_set(err, err->kind, "InvokeEndpoint on endpoint '%s' failed: %s", p->endpoint_name, m);
  }
  asd_http_response_free(&resp);
  return rc;
}
