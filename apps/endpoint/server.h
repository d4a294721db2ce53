/*
 * server.h: the local endpoint's HTTP layer, as seen by request handlers.
 *
 * server.c owns libmicrohttpd: it accepts connections, reads headers and
 * bodies, verifies SigV4, applies the S3 faults and routes each request to a
 * handler: the S3 API (s3_api.c), the SageMaker runtime (runtime.c) or the
 * stats page.  Handlers never see libmicrohttpd: they get an asd_ep_request
 * (method, paths, query, headers, the whole body) and fill an
 * asd_ep_response (status, headers, body), which server.c sends.  That
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

typedef struct asd_ep_request {
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
} asd_ep_request;

/* Request header by name, case-insensitive; NULL if absent. */
const char *asd_ep_request_header(const asd_ep_request *req, const char *name);
/* Calls fn for every request header, names as received (S3 user metadata
 * is the set of x-amz-meta-* headers, whose names are not known beforehand). */
void asd_ep_request_each_header(const asd_ep_request *req,
                                  void (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* Decoded query parameter by name; NULL if absent ("" for "?name"). */
const char *asd_ep_request_query(const asd_ep_request *req, const char *name);

typedef struct asd_ep_response {
  int status;          /* HTTP status; 0 = not handled */
  asd_buf body;        /* response body bytes */
  char **headers;      /* CSL list of "Name: value" */
  int fd;              /* >= 0: send fd bytes [fd_offset, fd_offset+fd_size) instead of body; server closes it */
  uint64_t fd_offset;
  uint64_t fd_size;
  uint64_t head_size;  /* HEAD responses: Content-Length to announce without a body */
  int drop_connection; /* fault injection: close the connection without answering */
  const char *operation; /* static operation name for stats and the access log */
} asd_ep_response;

void asd_ep_response_init(asd_ep_response *resp);
void asd_ep_response_clear(asd_ep_response *resp);
/* Adds a header (replaces an existing one of the same name). */
void asd_ep_response_set_header(asd_ep_response *resp, const char *name, const char *value);

/*
 * Error bodies in the two AWS dialects.  S3: XML <Error><Code/><Message/>
 * <Resource/><RequestId/></Error>.  SageMaker (rest-json): {"message": ...}
 * with x-amzn-ErrorType: code.  Both set the status and clear any body.
 */
void asd_ep_s3_error(asd_ep_response *resp, const asd_ep_request *req, int status,
                       const char *code, const char *message);
/* The same with extra elements after <Message>: extra is NULL or a
 * NULL-terminated list of name, value, name, value... (PermanentRedirect's
 * <Endpoint> and <Bucket>, AuthorizationHeaderMalformed's <Region>). */
void asd_ep_s3_error_extra(asd_ep_response *resp, const asd_ep_request *req, int status, const char *code,
                           const char *message, const char *const *extra);
void asd_ep_json_error(asd_ep_response *resp, const asd_ep_request *req, int status,
                         const char *code, const char *message);

/* Parses a decimal unsigned 64-bit number (digits only, no sign, no
 * overflow): Content-Length, Range bounds.  0, or -1 when s is not one. */
int asd_ep_parse_u64(const char *s, uint64_t *out);

/* ------------------------------------------------------------ the server */

struct asd_store;
struct asd_s3_api;
struct asd_runtime;
struct asd_faults;
struct asd_ep_stats;
struct asd_ep_auth;
struct asd_sts_api;
struct asd_sso_api;
struct asd_s3_buckets;

typedef struct asd_server_config {
  const char *bind;      /* listen address, default "127.0.0.1" */
  int port;              /* 0 = any free port */
  int threads;           /* libmicrohttpd thread pool size */
  uint64_t max_body;     /* request body cap in bytes (0 = none) */
  const char *access_log; /* file to append one line per request to, or NULL */
  struct asd_store *store;
  struct asd_s3_api *s3;
  struct asd_runtime *runtime; /* may be NULL: invocations answer 400 ValidationError */
  struct asd_faults *faults;   /* may be NULL */
  struct asd_ep_stats *stats;
  struct asd_ep_auth *auth;    /* NULL = -no-auth */
  struct asd_sts_api *sts;     /* STS AssumeRole (sts_api.c), or NULL */
  struct asd_ep_policy *policy; /* -deny rules (policy.h), or NULL */
  const char *region;          /* for the control plane's ARNs; NULL = us-east-1 */
  struct asd_sso_api *sso;     /* SSO GetRoleCredentials (sso_api.c), or NULL */
  int stats_auth;              /* 1: /_asd/stats needs a signature too (-stats-auth) */
  const char *tls_cert_pem;    /* HTTPS: the certificate chain (PEM, in memory), NULL = plain HTTP */
  const char *tls_key_pem;     /* its private key (PEM) */
  struct asd_s3_buckets *buckets; /* per-bucket region, owner, required encryption, or NULL */
  char **domains;              /* -domain names: BUCKET.NAME in the Host header addresses BUCKET */
} asd_server_config;

typedef struct asd_server asd_server;

/* Starts listening and serving.  NULL with a one-line reason in err on failure. */
asd_server *asd_server_start(const asd_server_config *cfg, char *err, size_t err_len);
int asd_server_port(const asd_server *srv);
/* Stops accepting new connections; requests in progress go on. */
void asd_server_quiesce(asd_server *srv);
/* Requests received but not yet answered and completed. */
int asd_server_in_flight(const asd_server *srv);
/* Closes every connection (after their handlers returned) and frees. */
void asd_server_stop(asd_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_SERVER_H */
