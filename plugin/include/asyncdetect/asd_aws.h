/*
 * asd_aws.h: the AWS context every S3 and SageMaker call goes through.
 *
 * An asd_aws_context bundles what a client needs and what is expensive to
 * build: the resolved region, the endpoints of S3, SageMaker Runtime and STS,
 * the credentials provider (the standard chain, optionally with an assumed
 * role on top, refreshed before expiry), the HTTP transport (a shared libcurl
 * connection cache, pooled easy handles, retry policy) and a cache of SigV4
 * signing keys.  It is created once and used by any number of threads at the
 * same time; every function taking a context is thread-safe.
 *
 * Errors are reported through asd_aws_error, a plain struct with fixed-size
 * fields (no allocation, safe to copy) whose `kind` callers switch on.
 */
#ifndef ASD_AWS_H
#define ASD_AWS_H

#include "asd_export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum asd_aws_error_kind {
  ASD_AWS_ERR_NONE = 0,
  ASD_AWS_ERR_NETWORK,       /* connection refused/reset, DNS, TLS, truncated response */
  ASD_AWS_ERR_TIMEOUT,       /* connect / low-speed / total timeout */
  ASD_AWS_ERR_NOT_FOUND,     /* 404: NoSuchKey, NoSuchBucket, unknown endpoint ... */
  ASD_AWS_ERR_ACCESS_DENIED, /* 403 AccessDenied and similar permission errors */
  ASD_AWS_ERR_AUTH,          /* credentials/signature rejected: SignatureDoesNotMatch,
                                InvalidAccessKeyId, ExpiredToken, RequestTimeTooSkewed ... */
  ASD_AWS_ERR_THROTTLED,     /* 429, SlowDown, Throttling, ThrottlingException ... */
  ASD_AWS_ERR_SERVER,        /* 5xx other than throttling */
  ASD_AWS_ERR_VALIDATION,    /* other 4xx: bad request, malformed input */
  ASD_AWS_ERR_TOO_LARGE,     /* response above the size cap, or EntityTooLarge */
  ASD_AWS_ERR_PARSE,         /* response could not be parsed */
  ASD_AWS_ERR_CONFIG,        /* missing region/credentials, bad URL or URI, bad profile file */
  ASD_AWS_ERR_CANCELLED,     /* asd_aws_context_cancel() was called */
  ASD_AWS_ERR_MODEL          /* SageMaker ModelError (424): the model itself failed */
} asd_aws_error_kind;

typedef struct asd_aws_error {
  asd_aws_error_kind kind;
  int http_status;       /* 0 when no HTTP response was received */
  int attempts;          /* HTTP attempts made (1 = no retry) */
  char code[64];         /* AWS error code ("NoSuchKey"), or "" */
  char message[512];     /* one line, never contains secrets */
  char request_id[128];  /* x-amz-request-id / x-amzn-RequestId, or "" */
  int not_sent;          /* 1 when the request surely never reached the service (no
                            connection, TLS refused, bad URL): it cannot have been acted on */
} asd_aws_error;

ASD_API void asd_aws_error_clear(asd_aws_error *err);
/* "not_found", "throttled", ... */
ASD_API const char *asd_aws_error_kind_name(asd_aws_error_kind kind);
/* Whether retrying the same call later may succeed (network, timeout,
 * throttled, server). */
ASD_API int asd_aws_error_is_transient(const asd_aws_error *err);
/* One line: "<kind>: <message> (HTTP 404, NoSuchKey, request id ..., 3 attempts)".
 * Returns out. */
ASD_API char *asd_aws_error_format(const asd_aws_error *err, char *out, size_t size);
/* Sets kind and a printf-style message (used by every module). */
ASD_API void asd_aws_error_set(asd_aws_error *err, asd_aws_error_kind kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */
/* ------------------------------------------------------------------------ */

typedef struct asd_aws_credentials {
  char *access_key_id;
  char *secret_access_key;
  char *session_token; /* NULL when none */
  double expiration;   /* epoch seconds, 0 = does not expire */
  char source[64];     /* "explicit", "env", "web-identity", "profile:NAME", "process",
                          "ecs", "imds", "assume-role:<arn>" (for logs; no secrets) */
} asd_aws_credentials;

ASD_API void asd_aws_credentials_init(asd_aws_credentials *c);
/* Wipes the secret and token before freeing. */
ASD_API void asd_aws_credentials_free(asd_aws_credentials *c);
ASD_API int asd_aws_credentials_copy(asd_aws_credentials *dst, const asd_aws_credentials *src);

/* Services the context knows. */
typedef enum asd_aws_service {
  ASD_AWS_S3 = 0,
  ASD_AWS_SAGEMAKER_RUNTIME = 1,
  ASD_AWS_STS = 2
} asd_aws_service;
#define ASD_AWS_SERVICE_COUNT 3

/* A resolved endpoint.  base_url has no trailing slash. */
typedef struct asd_aws_endpoint {
  char base_url[512];   /* "https://s3.us-east-1.amazonaws.com" or "http://127.0.0.1:9000/prefix" */
  char host[300];       /* Host header value, with ":port" when not the default */
  char base_path[200];  /* path prefix of a custom endpoint, "" or "/prefix" */
  char signing_region[64];
  char signing_name[32]; /* "s3", "sagemaker", "sts" */
  int path_style;        /* S3: bucket in the path (custom endpoints) or virtual host */
  int custom;            /* from an AWS_ENDPOINT_URL* or configuration override */
  int https;
} asd_aws_endpoint;

/*
 * Everything a context may be configured with.  asd_aws_config_init fills
 * defaults; NULL strings mean "resolve from the environment and profile".
 */
typedef struct asd_aws_config {
  /* Explicit credentials (first in the chain). */
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;
  /* Profile name; NULL = AWS_PROFILE, then "default". */
  const char *profile;
  /* Region; NULL = AWS_REGION, AWS_DEFAULT_REGION, profile region. */
  const char *region;
  /* Assume this role on top of the base credentials (cross-account). */
  const char *role_arn;
  const char *external_id;
  const char *role_session_name; /* NULL = "gdal-asyncdetect-<pid>" */
  int role_duration_seconds;     /* 0 = 3600 */
  /* Endpoint overrides (beat AWS_ENDPOINT_URL*, profile endpoint_url). */
  const char *endpoint_url;
  const char *s3_endpoint_url;
  const char *sagemaker_runtime_endpoint_url;
  const char *sts_endpoint_url;
  int s3_path_style; /* -1 = auto (path style for custom endpoints), 0 = virtual host, 1 = path */
  /* Transport. */
  int max_attempts;             /* default 3 (SDK standard mode); AWS_MAX_ATTEMPTS */
  double retry_base_delay;      /* seconds, default 0.1 (backoff = rand*base*2^n) */
  double retry_max_backoff;     /* seconds, default 20 */
  double connect_timeout;       /* seconds, default 10 */
  double request_timeout;       /* seconds per attempt, default 300, 0 = none */
  double low_speed_time;        /* seconds below low_speed_limit before abort, default 30 */
  long low_speed_limit;         /* bytes/s, default 1 */
  size_t max_response_bytes;    /* cap on any response body, default 64 MiB */
  const char *ca_bundle;        /* a private CA (PEM); NULL = AWS_CA_BUNDLE, then GDAL's
                                   CURL_CA_BUNDLE, then the system store.  TLS peer and
                                   host name verification cannot be turned off. */
  const char *proxy;            /* NULL = GDAL_HTTP_PROXY config option, then curl's env */
  const char *user_agent;       /* NULL = "gdal-asyncdetect/<version>" */
  double credential_refresh_margin; /* refresh temporary credentials this long before
                                       expiry, default 300 s */
  int max_connections;          /* cap on pooled connections, default 64 */
  int payload_signing;          /* -1 auto (default): S3 request bodies over https are sent as
                                   UNSIGNED-PAYLOAD, as botocore does (TLS protects them and the
                                   SHA-256 pass is saved); over http they are hashed and signed.
                                   1 = always hash and sign bodies; 0 = never (S3 only) */
  /* What enterprise bucket policies ask of S3 calls (NULL = not sent): */
  const char *s3_sse;            /* x-amz-server-side-encryption on uploads: AES256, aws:kms
                                    or aws:kms:dsse */
  const char *s3_sse_kms_key_id; /* x-amz-server-side-encryption-aws-kms-key-id (aws:kms only) */
  const char *s3_expected_bucket_owner; /* x-amz-expected-bucket-owner on every call: 12 digits */
} asd_aws_config;

ASD_API void asd_aws_config_init(asd_aws_config *cfg);

typedef struct asd_aws_context asd_aws_context;

/*
 * Builds a context: resolves region and endpoints, builds the credentials
 * chain (resolution of credentials itself is lazy: the first request or
 * asd_aws_context_get_credentials triggers it, so creating a context never
 * blocks on the network).  Returns NULL with err set (kind CONFIG) for bad
 * configuration such as a missing region or an unparsable endpoint URL.
 */
ASD_API asd_aws_context *asd_aws_context_new(const asd_aws_config *cfg, asd_aws_error *err);
ASD_API void asd_aws_context_free(asd_aws_context *ctx);

ASD_API const char *asd_aws_context_region(const asd_aws_context *ctx);
ASD_API const asd_aws_endpoint *asd_aws_context_endpoint(const asd_aws_context *ctx, asd_aws_service svc);

/* Current credentials (refreshed when within the margin of their expiry).
 * The caller frees *out with asd_aws_credentials_free. */
ASD_API int asd_aws_context_get_credentials(asd_aws_context *ctx, asd_aws_credentials *out,
                                    asd_aws_error *err);
/* Forgets cached credentials, e.g. after an ExpiredToken reply. */
ASD_API void asd_aws_context_invalidate_credentials(asd_aws_context *ctx);

/* Makes every in-flight and future request fail with ASD_AWS_ERR_CANCELLED
 * (retry sleeps are interrupted).  Irreversible. */
ASD_API void asd_aws_context_cancel(asd_aws_context *ctx);
ASD_API int asd_aws_context_cancelled(const asd_aws_context *ctx);

/* Clock offset (server - local, seconds) learned from RequestTimeTooSkewed. */
ASD_API double asd_aws_context_clock_offset(const asd_aws_context *ctx);

/* ------------------------------------------------------------------------ */
/* Resolution helpers (also used by the context; exposed for tools/tests).   */
/* ------------------------------------------------------------------------ */

/* Region from explicit, AWS_REGION, AWS_DEFAULT_REGION, then the profile's
 * region in the config file.  Returns 0, or -1 (CONFIG) when none is set. */
ASD_API int asd_aws_resolve_region(const char *explicit_region, const char *profile, char *out,
                           size_t out_size, asd_aws_error *err);

/* Endpoint of a service: override URL (may be NULL) else AWS_ENDPOINT_URL_<SVC>,
 * AWS_ENDPOINT_URL, profile endpoint_url, else the real AWS host name.
 * s3_path_style as in asd_aws_config.  Returns 0 or -1 (CONFIG). */
ASD_API int asd_aws_resolve_endpoint(asd_aws_service svc, const char *region, const char *override_url,
                             const char *profile, int s3_path_style, asd_aws_endpoint *out,
                             asd_aws_error *err);

/* Parses "scheme://host[:port][/path]" into an endpoint (signing fields are
 * left empty).  Returns 0 or -1 (CONFIG, naming the URL). */
ASD_API int asd_aws_parse_endpoint_url(const char *url, asd_aws_endpoint *out, asd_aws_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ASD_AWS_H */
