/*
 * errors.c: error codes, their texts, and the single retry decision.
 *
 * Every module of the engine reports failures as an asd_error: a code that a
 * caller can switch on, plus the facts of the failing call (HTTP status, AWS
 * code, request id) and a one-line message.  The retry decision is made here
 * and nowhere else, from those facts, so the detector's own retries and the
 * pool's job-level retries can never disagree about what is transient; the
 * decision that an error ends the whole run (asd_error_is_fatal_for_run) sits
 * next to it and, like it, reads the typed facts and never the message.
 */
#include "asyncdetect/asd_errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const k_texts[ASD_ERR__COUNT] = {
    "success",
    "invalid configuration",
    "S3 operation failed",
    "endpoint invocation failed",
    "inference failed",
    "async inference timed out",
    "no free job slot in time",
    "result is not a GeoJSON FeatureCollection",
    "runtime error",
    "cancelled",
    "tile could not be read or encoded",
};

static const char *const k_names[ASD_ERR__COUNT] = {
    "ASD_OK",          "ASD_ERR_CONFIG",        "ASD_ERR_S3",         "ASD_ERR_ENDPOINT",
    "ASD_ERR_INFERENCE", "ASD_ERR_TIMEOUT",     "ASD_ERR_QUEUE_TIMEOUT", "ASD_ERR_BAD_RESULT",
    "ASD_ERR_RUNTIME", "ASD_ERR_CANCELLED",     "ASD_ERR_INPUT",
};

const char *asd_strerror(asd_errcode code) {
  if ((int)code < 0 || code >= ASD_ERR__COUNT) return "unknown error";
  return k_texts[code];
}

const char *asd_errcode_name(asd_errcode code) {
  if ((int)code < 0 || code >= ASD_ERR__COUNT) return "ASD_ERR_UNKNOWN";
  return k_names[code];
}

void asd_error_clear(asd_error *err) {
  if (!err) return;
  err->code = ASD_OK;
  err->http_status = 0;
  err->transport = 0;
  err->not_sent = 0;
  err->aws_code[0] = 0;
  err->request_id[0] = 0;
  err->message[0] = 0;
}

int asd_error_set(asd_error *err, asd_errcode code, const char *fmt, ...) {
  if (!err) return -1;
  char tmp[sizeof err->message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  /* One line: a multi-line failure object must not break log lines. */
  for (char *p = tmp; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  memcpy(err->message, tmp, sizeof tmp);
  err->code = code;
  return -1;
}

void asd_error_copy(asd_error *dst, const asd_error *src) {
  if (dst && src && dst != src) *dst = *src;
}

static int is_transient_aws_code(const char *c) {
  static const char *const codes[] = {
      "Throttling",          "ThrottlingException", "ThrottledException",
      "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
      "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
      "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
      "InternalError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
      "InternalServerError", "InternalServerException",
  };
  if (!c || !*c) return 0;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (strcasecmp(c, codes[i]) == 0) return 1;
  return 0;
}

/* SageMaker Runtime's InternalDependencyException (530): "contact customer
   support"; a 5xx that no retry fixes. */
static int is_permanent_fault(const char *c) { return c && strcasecmp(c, "InternalDependencyException") == 0; }

int asd_error_is_retryable(const asd_error *err) {
  if (!err) return 0;
  switch (err->code) {
    case ASD_ERR_S3:
    case ASD_ERR_ENDPOINT:
      if (is_permanent_fault(err->aws_code)) return 0;
      if (err->transport || err->http_status == 0) return 1;
      if (err->http_status == 429 || err->http_status >= 500) return 1;
      return is_transient_aws_code(err->aws_code);
    case ASD_ERR_RUNTIME:
      return 1;
    case ASD_OK:
    case ASD_ERR_CONFIG:
    case ASD_ERR_INFERENCE:
    case ASD_ERR_TIMEOUT:
    case ASD_ERR_QUEUE_TIMEOUT:
    case ASD_ERR_BAD_RESULT:
    case ASD_ERR_CANCELLED:
    case ASD_ERR_INPUT:
    case ASD_ERR__COUNT:
      return 0;
  }
  return 0;
}

/* AWS codes that say the credentials or the resource are wrong: the same
   answer awaits every other request of the run. */
static int is_run_level_aws_code(const char *c) {
  static const char *const codes[] = {
      "AccessDenied",         "AccessDeniedException",       "InvalidAccessKeyId",
      "SignatureDoesNotMatch", "InvalidClientTokenId",       "UnrecognizedClientException",
      "ExpiredToken",         "ExpiredTokenException",       "InvalidToken",
      "NoSuchBucket",         "ValidationError",             "ValidationException",
      /* SageMaker Runtime's 530: "contact customer support"; no later
         request of the run would fare better. */
      "InternalDependencyException",
  };
  if (!c || !*c) return 0;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (strcasecmp(c, codes[i]) == 0) return 1;
  return 0;
}

int asd_error_is_fatal_for_run(const asd_error *err) {
  if (!err) return 0;
  /* A tile the caller could not make (an unreadable block of a damaged
   * file) is that tile's failure: the others may read fine, and the run
   * decides at its end whether nothing at all could be read. */
  if (err->code != ASD_ERR_S3 && err->code != ASD_ERR_ENDPOINT) return 0;
  if (asd_error_is_retryable(err)) return 0;
  if (err->http_status == 401 || err->http_status == 403 || err->http_status == 404) return 1;
  return is_run_level_aws_code(err->aws_code);
}

int asd_error_invoke_maybe_accepted(const asd_error *err) {
  if (!err || err->code != ASD_ERR_ENDPOINT || err->not_sent) return 0;
  if (is_permanent_fault(err->aws_code)) return 0;
  return err->transport || err->http_status >= 500;
}

const char *asd_error_format(const asd_error *err, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  if (!err) {
    snprintf(buf, len, "%s", "no error");
    return buf;
  }
  char extra[256] = "";
  size_t n = 0;
  if (err->http_status > 0)
    n += (size_t)snprintf(extra + n, sizeof extra - n, "HTTP %d", err->http_status);
  if (err->aws_code[0] && n < sizeof extra)
    n += (size_t)snprintf(extra + n, sizeof extra - n, "%s%s", n ? ", " : "", err->aws_code);
  if (err->request_id[0] && n < sizeof extra)
    n += (size_t)snprintf(extra + n, sizeof extra - n, "%srequest id %s", n ? ", " : "",
                          err->request_id);
  if (extra[0])
    snprintf(buf, len, "%s: %s (%s)", asd_strerror(err->code), err->message, extra);
  else if (err->message[0])
    snprintf(buf, len, "%s: %s", asd_strerror(err->code), err->message);
  else
    snprintf(buf, len, "%s", asd_strerror(err->code));
  return buf;
}
