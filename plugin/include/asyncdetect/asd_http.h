/*
 * asd_http.h: the HTTP layer under the S3, SageMaker and STS clients.
 *
 * asd_aws_send() executes one AWS API call through a context: it builds the
 * URL from the service endpoint, signs with SigV4 (cached signing key,
 * current credentials), sends it with libcurl (pooled easy handles, a shared
 * connection cache, TLS verification, connect and low-speed timeouts, proxy
 * settings), retries like the SDKs' standard mode (full-jitter exponential
 * backoff on 5xx, 429, throttling codes, RequestTimeout, connection errors;
 * never on other 4xx; clock skew corrected on RequestTimeTooSkewed) and
 * parses AWS error bodies (S3 XML or JSON/x-amzn-ErrorType) into an
 * asd_aws_error.
 *
 * Debug output goes through CPLDebug("ASD_HTTP", ...) when CPL_DEBUG is on,
 * and never shows secrets, signatures or session tokens.
 */
#ifndef ASD_HTTP_H
#define ASD_HTTP_H

#include "asd_export.h"

#include <stddef.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_http_request {
  const char *method;           /* "GET", "PUT", "POST", "HEAD", "DELETE" */
  asd_aws_service service;      /* endpoint + signing scope + error body format */
  const char *path;             /* wire path after the endpoint's base path, starting
                                   with '/', already percent-encoded */
  const char *query;            /* wire query without '?', or NULL */
  const char *host_prefix;      /* S3 virtual-host style: "bucket." prepended to the host,
                                   or NULL */
  const char *const *headers;   /* extra "Name: value" lines, NULL-terminated, or NULL */
  const void *body;             /* request body, or NULL */
  size_t body_len;
  const char *payload_hash;     /* precomputed hex SHA-256 of body (saves a pass), or NULL */
  int unsigned_request;         /* 1 = do not sign (STS web identity) */
  size_t max_response_bytes;    /* 0 = context default */
  int max_attempts;             /* 0 = context default, 1 = no retry */
  int fresh_connection;         /* 1 = on a new connection: libcurl silently sends a request
                                   again when a reused connection dies before any answer,
                                   which a non-idempotent call must not risk */
  const char *region;           /* S3: the bucket's region when S3 said it is not the
                                   context's (a redirect): signed for it and, on AWS, sent
                                   to s3.REGION; NULL = the context's */
  int send_once;                /* 1 = on the wire at most once per attempt, on a reused
                                   connection too: libcurl's silent resend after a reused
                                   connection died is refused and reported as a network
                                   error (the service may have received it; libcurl < 7.80:
                                   a new connection instead) */
} asd_http_request;

typedef struct asd_http_response {
  long status;                  /* HTTP status of the last attempt, 0 if none */
  asd_buf body;
  char **headers;               /* CSL list of "name: value" (names as received) */
  size_t n_headers, cap_headers; /* entries in headers, and room for them (growth by doubling) */
  char request_id[128];
  int attempts;
} asd_http_response;

ASD_API void asd_http_response_init(asd_http_response *r);
ASD_API void asd_http_response_free(asd_http_response *r);
/* Value of a response header (case-insensitive name), or NULL.  The pointer
 * lives as long as the response. */
ASD_API const char *asd_http_response_header(const asd_http_response *r, const char *name);

/*
 * Executes an AWS call.  Returns 0 when the final status is 2xx (the
 * response is filled), -1 otherwise with err filled (response still holds
 * the last status, headers and body for callers that need them).
 */
ASD_API int asd_aws_send(asd_aws_context *ctx, const asd_http_request *req, asd_http_response *resp,
                 asd_aws_error *err);

/*
 * Plain (unsigned, non-AWS) request to an absolute URL through the context's
 * transport, with the given attempt count: used for the ECS and IMDS
 * credential endpoints.  Same return convention.
 */
ASD_API int asd_http_fetch(asd_aws_context *ctx, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t body_len,
                   double timeout, int max_attempts, asd_http_response *resp, asd_aws_error *err);

/*
 * Parses an AWS error reply (S3 XML <Error>, JSON with code/__type and
 * message, x-amzn-ErrorType header) into err.  Never fails: garbage bodies
 * give a kind from the HTTP status and a message saying the body was not
 * understood.  Exposed for tests.
 */
ASD_API void asd_aws_parse_error(long http_status, const char *const *headers, const char *body,
                         size_t body_len, asd_aws_error *err);

/* Classifies an AWS error code + HTTP status into a kind. */
ASD_API asd_aws_error_kind asd_aws_classify(long http_status, const char *code);

/* Whether the SDK standard retry policy retries this outcome. */
ASD_API int asd_aws_is_retryable(long http_status, const char *code);

/* Transport statistics of a context (for benchmarks and tests). */
typedef struct asd_http_stats {
  unsigned long requests;       /* HTTP attempts */
  unsigned long retries;
  unsigned long connections;    /* new connections opened (curl num_connects) */
  unsigned long handles;        /* easy handles created */
} asd_http_stats;
ASD_API void asd_aws_context_http_stats(asd_aws_context *ctx, asd_http_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* ASD_HTTP_H */
