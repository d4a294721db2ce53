/*
 * errors.c: the AWS error taxonomy.
 *
 * AWS services report errors in three dialects: S3's XML <Error> document,
 * the query protocol's <ErrorResponse><Error> (STS), and the JSON protocols
 * (SageMaker Runtime), where the code may also arrive in the
 * x-amzn-ErrorType header as "Code:namespace-uri".  Callers should not care
 * which: everything is folded into asd_aws_error, whose `kind` is chosen
 * from the error code first (a 400 ThrottlingException is throttling, a 503
 * SlowDown is throttling, a 403 SignatureDoesNotMatch is an auth problem)
 * and from the HTTP status when there is no code (HEAD replies have no
 * body).  The same tables drive the retry policy of the standard mode.
 *
 * Bodies are untrusted input: a garbage body never fails the parse, it just
 * leaves the kind to the status and says so in the message.  XML parsing
 * uses CPLParseXMLString with CPL errors silenced, since a non-XML body is an
 * expected case, not an error to print.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cpl_error.h>
#include <cpl_minixml.h>
#include <cpl_string.h>
#include <json-c/json.h>

#include "aws_internal.h"

void asd_aws_error_clear(asd_aws_error *err) {
  if (!err) return;
  memset(err, 0, sizeof(*err));
}

const char *asd_aws_error_kind_name(asd_aws_error_kind kind) {
  switch (kind) {
    case ASD_AWS_ERR_NONE: return "none";
    case ASD_AWS_ERR_NETWORK: return "network";
    case ASD_AWS_ERR_TIMEOUT: return "timeout";
    case ASD_AWS_ERR_NOT_FOUND: return "not_found";
    case ASD_AWS_ERR_ACCESS_DENIED: return "access_denied";
    case ASD_AWS_ERR_AUTH: return "auth";
    case ASD_AWS_ERR_THROTTLED: return "throttled";
    case ASD_AWS_ERR_SERVER: return "server";
    case ASD_AWS_ERR_VALIDATION: return "validation";
    case ASD_AWS_ERR_TOO_LARGE: return "too_large";
    case ASD_AWS_ERR_PARSE: return "parse";
    case ASD_AWS_ERR_CONFIG: return "config";
    case ASD_AWS_ERR_CANCELLED: return "cancelled";
    case ASD_AWS_ERR_MODEL: return "model";
  }
  return "unknown";
}

void asd_aws_copy_line(char *dst, size_t size, const char *s, size_t len) {
  if (!size) return;
  size_t j = 0;
  for (size_t i = 0; s && i < len && j + 1 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[j++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
  }
  dst[j] = '\0';
}

void asd_aws_error_set(asd_aws_error *err, asd_aws_error_kind kind, const char *fmt, ...) {
  if (!err) return;
  err->kind = kind;
  va_list ap;
  va_start(ap, fmt);
  char tmp[sizeof(err->message)];
  vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  asd_aws_copy_line(err->message, sizeof(err->message), tmp, strlen(tmp));
}

char *asd_aws_error_format(const asd_aws_error *err, char *out, size_t size) {
  if (!out || !size) return out;
  if (!err || err->kind == ASD_AWS_ERR_NONE) {
    snprintf(out, size, "no error");
    return out;
  }
  char extra[400] = "";
  size_t n = 0;
  if (err->http_status) n += (size_t)snprintf(extra + n, sizeof(extra) - n, "HTTP %d", err->http_status);
  if (err->code[0] && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s%s", n ? ", " : "", err->code);
  if (err->request_id[0] && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%srequest id %s", n ? ", " : "",
                          err->request_id);
  if (err->attempts > 1 && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s%d attempts", n ? ", " : "", err->attempts);
  if (n)
    snprintf(out, size, "%s: %s (%s)", asd_aws_error_kind_name(err->kind), err->message, extra);
  else
    snprintf(out, size, "%s: %s", asd_aws_error_kind_name(err->kind), err->message);
  return out;
}

/* ------------------------------------------------------------ code tables */

static int in_list(const char *code, const char *const *list) {
  for (; *list; list++)
    if (strcmp(code, *list) == 0) return 1;
  return 0;
}

static const char *const kThrottling[] = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", NULL};
/* SageMaker Runtime's errors, as its service model documents them:
 * ModelNotReadyException (429, "wait and try your request again") is
 * retried like throttling; InternalDependencyException (530, "contact
 * customer support") is a server fault that no retry fixes, so neither the
 * 5xx rule nor the transient list may retry it; ValidationError (400),
 * InternalFailure (500) and ServiceUnavailable (503) follow the general
 * rules. */
static const char *const kRetryLater[] = {"ModelNotReadyException", NULL};
static const char *const kPermanentFault[] = {"InternalDependencyException", NULL};
static const char *const kTransient[] = {"RequestTimeout", "RequestTimeoutException",
                                         "InternalError", "InternalFailure", "InternalServerError",
                                         "ServiceUnavailable", "ServiceUnavailableException",
                                         "IDPCommunicationError", NULL};
static const char *const kNotFound[] = {"NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload",
                                        "ResourceNotFound", "ResourceNotFoundException",
                                        "NoSuchEntity", NULL};
static const char *const kDenied[] = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled",
                                      "AccountProblem", "Forbidden", NULL};
static const char *const kAuth[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken",
                                    "ExpiredTokenException", "InvalidToken", "RequestTimeTooSkewed",
                                    "InvalidClientTokenId", "UnrecognizedClientException",
                                    "IncompleteSignature", "MissingAuthenticationToken",
                                    "AuthorizationHeaderMalformed", "RequestExpired",
                                    "InvalidSignatureException", "InvalidIdentityToken",
                                    "AuthFailure", NULL};

int asd_aws_error_is_transient(const asd_aws_error *err) {
  if (!err) return 0;
  if (in_list(err->code, kPermanentFault)) return 0;
  switch (err->kind) {
    case ASD_AWS_ERR_NETWORK:
    case ASD_AWS_ERR_TIMEOUT:
    case ASD_AWS_ERR_THROTTLED:
    case ASD_AWS_ERR_SERVER: return 1;
    default: return 0;
  }
}

asd_aws_error_kind asd_aws_classify(long status, const char *code) {
  if (code && *code) {
    if (in_list(code, kThrottling) || in_list(code, kRetryLater)) return ASD_AWS_ERR_THROTTLED;
    if (in_list(code, kPermanentFault)) return ASD_AWS_ERR_SERVER;
    if (in_list(code, kNotFound)) return ASD_AWS_ERR_NOT_FOUND;
    if (in_list(code, kDenied)) return ASD_AWS_ERR_ACCESS_DENIED;
    if (in_list(code, kAuth)) return ASD_AWS_ERR_AUTH;
    if (strcmp(code, "EntityTooLarge") == 0) return ASD_AWS_ERR_TOO_LARGE;
    if (strcmp(code, "ModelError") == 0) return ASD_AWS_ERR_MODEL;
    if (strcmp(code, "RequestTimeout") == 0 || strcmp(code, "RequestTimeoutException") == 0)
      return ASD_AWS_ERR_TIMEOUT;
    if (in_list(code, kTransient)) return ASD_AWS_ERR_SERVER;
  }
  if (status == 404) return ASD_AWS_ERR_NOT_FOUND;
  if (status == 403) return ASD_AWS_ERR_ACCESS_DENIED;
  if (status == 401) return ASD_AWS_ERR_AUTH;
  if (status == 429) return ASD_AWS_ERR_THROTTLED;
  if (status == 413) return ASD_AWS_ERR_TOO_LARGE;
  if (status == 424) return ASD_AWS_ERR_MODEL;
  if (status == 408) return ASD_AWS_ERR_TIMEOUT;
  if (status >= 500) return ASD_AWS_ERR_SERVER;
  if (status >= 400) return ASD_AWS_ERR_VALIDATION;
  if (status >= 300) return ASD_AWS_ERR_VALIDATION; /* redirects are not followed */
  return ASD_AWS_ERR_NONE;
}

int asd_aws_is_retryable(long status, const char *code) {
  if (code && *code) {
    if (in_list(code, kPermanentFault)) return 0;
    if (in_list(code, kThrottling) || in_list(code, kRetryLater) || in_list(code, kTransient)) return 1;
  }
  return status == 500 || status == 502 || status == 503 || status == 504 || status == 429;
}

/* --------------------------------------------------------------- parsing */

static const char *header_get(const char *const *headers, const char *name) {
  size_t nl = strlen(name);
  for (; headers && *headers; headers++) {
    const char *h = *headers;
    if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
      const char *v = h + nl + 1;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
  }
  return NULL;
}

static void set_code(asd_aws_error *err, const char *code, size_t len) {
  /* "ns#Code" → "Code"; "Code:uri" → "Code". */
  const char *hash = memchr(code, '#', len);
  if (hash) {
    len -= (size_t)(hash + 1 - code);
    code = hash + 1;
  }
  const char *colon = memchr(code, ':', len);
  if (colon) len = (size_t)(colon - code);
  while (len && isspace((unsigned char)code[len - 1])) len--;
  while (len && isspace((unsigned char)*code)) code++, len--;
  asd_aws_copy_line(err->code, sizeof(err->code), code, len);
}

static int parse_xml_error(const char *body, asd_aws_error *err) {
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLXMLNode *root = CPLParseXMLString(body);
  CPLPopErrorHandler();
  CPLErrorReset();
  if (!root) return 0;
  int found = 0;
  CPLXMLNode *e = CPLSearchXMLNode(root, "=Error");
  if (e) {
    const char *code = CPLGetXMLValue(e, "Code", NULL);
    const char *msg = CPLGetXMLValue(e, "Message", NULL);
    if (code) {
      set_code(err, code, strlen(code));
      found = 1;
    }
    if (msg) asd_aws_copy_line(err->message, sizeof(err->message), msg, strlen(msg));
    const char *rid = CPLGetXMLValue(e, "RequestId", NULL);
    if (!rid) {
      CPLXMLNode *r = CPLSearchXMLNode(root, "=RequestId");
      if (r) rid = CPLGetXMLValue(r, "", NULL);
    }
    if (rid && !err->request_id[0]) asd_aws_copy_line(err->request_id, sizeof(err->request_id), rid, strlen(rid));
  }
  CPLDestroyXMLNode(root);
  return found;
}

static int parse_json_error(const char *body, size_t len, asd_aws_error *err) {
  struct json_tokener *tok = json_tokener_new();
  if (!tok) return 0;
  json_object *o = json_tokener_parse_ex(tok, body, (int)(len > 1 << 20 ? 1 << 20 : len));
  json_tokener_free(tok);
  if (!o) return 0;
  int found = 0;
  if (json_object_is_type(o, json_type_object)) {
    static const char *const ckeys[] = {"code", "Code", "__type", NULL};
    static const char *const mkeys[] = {"message", "Message", "errorMessage", NULL};
    json_object *v;
    for (int i = 0; ckeys[i]; i++)
      if (json_object_object_get_ex(o, ckeys[i], &v) && json_object_is_type(v, json_type_string)) {
        if (!err->code[0]) set_code(err, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        found = 1;
        break;
      }
    for (int i = 0; mkeys[i]; i++)
      if (json_object_object_get_ex(o, mkeys[i], &v) && json_object_is_type(v, json_type_string)) {
        asd_aws_copy_line(err->message, sizeof(err->message), json_object_get_string(v),
                          (size_t)json_object_get_string_len(v));
        found = 1;
        break;
      }
  }
  json_object_put(o);
  return found;
}

void asd_aws_parse_error(long status, const char *const *headers, const char *body, size_t len,
                         asd_aws_error *err) {
  err->http_status = (int)status;
  err->not_sent = 0; /* an answer came: the request reached the service */
  err->code[0] = '\0';
  err->message[0] = '\0';
  err->request_id[0] = '\0';
  const char *rid = header_get(headers, "x-amzn-RequestId");
  if (!rid) rid = header_get(headers, "x-amz-request-id");
  if (rid) asd_aws_copy_line(err->request_id, sizeof(err->request_id), rid, strlen(rid));
  const char *etype = header_get(headers, "x-amzn-ErrorType");
  if (etype) set_code(err, etype, strlen(etype));

  int understood = 0;
  if (body && len) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i])) i++;
    if (i < len && body[i] == '<')
      understood = parse_xml_error(body + i, err);
    else if (i < len && body[i] == '{')
      understood = parse_json_error(body + i, len - i, err);
  }
  err->kind = asd_aws_classify(status, err->code);
  if (!err->message[0]) {
    if (body && len && !understood) {
      /* Say what came back, briefly: a proxy's HTML page is a useful hint. */
      char snippet[96];
      asd_aws_copy_line(snippet, sizeof(snippet), body, len);
      snprintf(err->message, sizeof(err->message), "HTTP %ld with an unrecognised error body: %s",
               status, snippet);
    } else if (err->code[0]) {
      snprintf(err->message, sizeof(err->message), "%s", err->code);
    } else {
      const char *what = status == 404 ? "not found"
                         : status == 403 ? "access denied"
                         : status >= 500 ? "server error"
                                         : "request failed";
      snprintf(err->message, sizeof(err->message), "HTTP %ld (%s, no error body)", status, what);
    }
  }
}
