/*
 * server.h: the local endpoint's HTTP layer, as seen by request handlers.
 *
 * server.c owns libmicrohttpd: it accepts connections, reads headers and
 * bodies, verifies SigV4, applies the S3 faults and routes each request to a
 * handler: the S3 API (s3_api.c), the SageMaker runtime (runtime.c) or the
 * stats page.  Handlers never see libmicrohttpd: they get an ep_request
 * (method, paths, query, headers, the whole body) and fill an
 * ep_response (status, headers, body), which server.c sends.  That
 * keeps every handler testable and the HTTP library replaceable.
 */
#ifndef ASD_EP_SERVER_H
#define ASD_EP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ep_request {
  const char *method;        /* "GET", "PUT", ... */
  const char *raw_path;      /* as received, still percent-encoded, no query */
  const char *path;          /* percent-decoded */
  const char *raw_query;     /* as received after '?', "" if none */
  const unsigned char *body; /* whole body (NULL when empty or streamed to the store) */
  size_t body_len;
  const char *request_id;    /* generated per request; echoed as x-amz-request-id / x-amzn-RequestId */
  const char *host_bucket;   /* virtual-hosted addressing: the bucket named by the Host header, else NULL */
  const char *host_region;   /* the region a Host like s3.REGION.amazonaws.com names, else NULL */
  void *impl;                /* server.c's connection data */
} ep_request;

/* Request header by name, case-insensitive; NULL if absent. */
const char *ep_request_header(const ep_request *req, const char *name);
/* Calls fn for every request header, names as received (S3 user metadata
 * is the set of x-amz-meta-* headers, whose names are not known beforehand). */
void ep_request_each_header(const ep_request *req,
                                  void (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* Decoded query parameter by name; NULL if absent ("" for "?name"). */
const char *ep_request_query(const ep_request *req, const char *name);

typedef struct ep_response {
  int status;          /* HTTP status; 0 = not handled */
  asd_buf body;        /* response body bytes */
  char **headers;      /* CSL list of "Name: value" */
  int fd;              /* >= 0: send fd bytes [fd_offset, fd_offset+fd_size) instead of body; server closes it */
  uint64_t fd_offset;
  uint64_t fd_size;
  uint64_t head_size;  /* HEAD responses: Content-Length to announce without a body */
  int drop_connection; /* fault injection: close the connection without answering */
  const char *operation; /* static operation name for stats and the access log */
} ep_response;

void ep_response_init(ep_response *resp);
void ep_response_clear(ep_response *resp);
/* Adds a header (replaces an existing one of the same name). */
void ep_response_set_header(ep_response *resp, const char *name, const char *value);

/*
 * Error bodies in the two AWS dialects.  S3: XML <Error><Code/><Message/>
 * <Resource/><RequestId/></Error>.  SageMaker (rest-json): {"message": ...}
 * with x-amzn-ErrorType: code.  Both set the status and clear any body.
 */
void ep_s3_error(ep_response *resp, const ep_request *req, int status,
                       const char *code, const char *message);
/* The same with extra elements after <Message>: extra is NULL or a
 * NULL-terminated list of name, value, name, value... (PermanentRedirect's
 * <Endpoint> and <Bucket>, AuthorizationHeaderMalformed's <Region>). */
void ep_s3_error_extra(ep_response *resp, const ep_request *req, int status, const char *code,
                           const char *message, const char *const *extra);
void ep_json_error(ep_response *resp, const ep_request *req, int status,
                         const char *code, const char *message);

/* Parses a decimal unsigned 64-bit number (digits only, no sign, no
 * overflow): Content-Length, Range bounds.  0, or -1 when s is not one. */
int ep_parse_u64(const char *s, uint64_t *out);

/* ------------------------------------------------------------ the server */

struct ep_store;
struct ep_s3_api;
struct ep_runtime;
struct ep_faults;
struct ep_stats;
struct ep_auth;
struct ep_sts_api;
struct ep_sso_api;
struct ep_s3_buckets;

typedef struct ep_server_config {
  const char *bind;      /* listen address, default "127.0.0.1" */
  int port;              /* 0 = any free port */
  int threads;           /* libmicrohttpd thread pool size */
  uint64_t max_body;     /* request body cap in bytes (0 = none) */
  const char *access_log; /* file to append one line per request to, or NULL */
  struct ep_store *store;
  struct ep_s3_api *s3;
  struct ep_runtime *runtime; /* may be NULL: invocations answer 400 ValidationError */
  struct ep_faults *faults;   /* may be NULL */
  struct ep_stats *stats;
  struct ep_auth *auth;    /* NULL = -no-auth */
  struct ep_sts_api *sts;     /* STS AssumeRole (sts_api.c), or NULL */
  struct ep_policy *policy; /* -deny rules (policy.h), or NULL */
  const char *region;          /* for the control plane's ARNs; NULL = us-east-1 */
  struct ep_sso_api *sso;     /* SSO GetRoleCredentials (sso_api.c), or NULL */
  int stats_auth;              /* 1: /_asd/stats needs a signature too (-stats-auth) */
  const char *tls_cert_pem;    /* HTTPS: the certificate chain (PEM, in memory), NULL = plain HTTP */
  const char *tls_key_pem;     /* its private key (PEM) */
  struct ep_s3_buckets *buckets; /* per-bucket region, owner, required encryption, or NULL */
  char **domains;              /* -domain names: BUCKET.NAME in the Host header addresses BUCKET */
} ep_server_config;

typedef struct ep_server ep_server;

/* Starts listening and serving.  NULL with a one-line reason in err on failure. */
ep_server *ep_server_start(const ep_server_config *cfg, char *err, size_t err_len);
int ep_server_port(const ep_server *srv);
/* From now on every new request is answered 503 ServiceUnavailable;
 * requests in progress go on. */
void ep_server_quiesce(ep_server *srv);
/* Requests received but not yet answered and completed. */
int ep_server_in_flight(const ep_server *srv);
/* Closes every connection (after their handlers returned) and frees. */
void ep_server_stop(ep_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_SERVER_H */
