/*
 * server.c: the HTTP layer of the local endpoint, on libmicrohttpd.
 *
 * Threading.  libmicrohttpd runs a pool of threads, each with its own epoll
 * loop, sharing the listening socket; every connection lives on one thread
 * and handlers run on it.  Keep-alive connections cost nothing while idle, so
 * hundreds of SDK clients with connection pools can stay connected at once.
 *
 * Raw request line.  SigV4 signs the path and query exactly as the client
 * encoded them, so the server must not let libmicrohttpd decode them first:
 * the URI log callback captures the raw request target (path + query) and
 * allocates the per-request state, and the unescape callback is the
 * identity.  This file then splits and decodes the path and query itself.
 *
 * Request life.  The access handler is called once with the headers, then
 * with each chunk of the body, then once more with no data:
 *   1. headers: route (S3, /endpoints/..., /_asd/...) and the route's policy
 *      (body cap, signature or not); authentication; the body's size against
 *      the cap; for PutObject and UploadPart a store writer so the body
 *      streams to a temporary file instead of memory;
 *   2. body chunks: into the writer or a memory buffer, with the cap
 *      enforced on bodies of unknown length too; an aws-chunked body
 *      (x-amz-content-sha256: STREAMING-..., what current SDKs send) goes
 *      through its decoder (s3_chunked.c), which writes the payload into the
 *      writer and checks each chunk's signature against the chain whose
 *      seed the header check (auth.c) gave;
 *   3. end: the signature over the body's hash where step 1 could not check
 *      it, fault injection, the handler, the response.
 * Errors found at step 1 are answered at once, from the first call, so the
 * body is never read: libmicrohttpd sends the answer and closes the
 * connection instead of consuming an upload nobody may make.
 *
 * Authentication before the body.  Anyone who reaches the port may send a
 * body, so no body is read before the headers have proved the request:
 *   - S3 requests are verified in full from the headers: their signature
 *     covers x-amz-content-sha256 (or UNSIGNED-PAYLOAD, or a hash in a
 *     presigned query, or a STREAMING-... form whose chunks carry their own
 *     signatures), and the body is checked against that hash later;
 *   - requests without a body are verified in full with the empty hash;
 *   - the rest (SageMaker InvokeEndpoint, STS: signers hash the body itself)
 *     get every check the headers allow (form, key, token, clock skew,
 *     signed-header set) before the body, then the signature once the body,
 *     held to its route's small cap, is in.
 * Per-route caps (route_policy_of): none for /_asd/ pages and async
 * invocations (the input is in S3), 64 KiB for STS and the SageMaker control
 * plane (small form or JSON requests), 6 MiB for InvokeEndpoint
 * (SageMaker's payload limit), 2 MiB for S3 requests held in memory (the XML
 * of DeleteObjects and CompleteMultipartUpload: parsed only after the cap),
 * -max-body for PutObject and UploadPart, which stream to disk.
 *
 * Shutdown.  main() quiesces the server (every new request is answered 503
 * ServiceUnavailable, a retryable answer for every client), waits a
 * bounded time for requests in progress, then stops it.  The daemon itself
 * is not quiesced with MHD_quiesce_daemon: with a pool of epoll workers,
 * libmicrohttpd 0.9.75 removes the listening socket from the workers'
 * epoll sets from two threads without a lock, and the loser aborts the
 * process ("Failed to remove listen FD from epoll set", found by the
 * fuzzing harness).  libmicrohttpd joins
 * its threads after their handlers return, so a PUT whose body arrived is
 * committed, and an upload cut short aborts its writer, which deletes the
 * temporary file: no partial object ever becomes visible.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "cpl_string.h"

#include "asyncdetect/asd_common.h"
#include "auth.h"
#include "control_api.h"
#include "policy.h"
#include "faults.h"
#include "runtime.h"
#include "s3_api.h"
#include "s3_buckets.h"
#include "s3_store.h"
#include "sso_api.h"
#include "stats.h"
#include "sts_api.h"
#include "tls_tickets.h"


struct ep_server {
  ep_server_config cfg;
  struct MHD_Daemon *d;
  int port;
  FILE *log;
  pthread_mutex_t log_mu;
  atomic_int in_flight;
  atomic_int closing; /* shutting down: new requests get 503 (ep_server_quiesce) */
  ep_tls_tickets *tickets; /* HTTPS: session resumption (tls_tickets.h) */
};

typedef enum route_kind {
  ROUTE_S3, ROUTE_STATS, ROUTE_HEALTH, ROUTE_ASYNC, ROUTE_SYNC, ROUTE_NOT_FOUND,
  ROUTE_STS, /* a form-encoded POST to "/": STS's query protocol (sts_api.c) */
  ROUTE_CONTROL, /* X-Amz-Target: SageMaker.*: DescribeEndpoint[Config] (control_api.c) */
  ROUTE_SSO  /* GET /federation/credentials (bearer token), POST /token (OIDC CreateToken): sso_api.c */
} route_kind;

/* What a route allows before its handler runs: the largest body (bytes; the
 * -max-body cap applies too) and whether a signature is required. */
typedef struct route_policy {
  uint64_t body_cap;
  int sigv4;
} route_policy;

/* SHA-256 of the empty body, the payload hash of a request without one. */
#define EMPTY_SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)

typedef struct conn_req {
  ep_server *srv;
  struct MHD_Connection *conn;
  char *raw_uri;
  char *raw_path, *path, *raw_query;
  char **qnames, **qvalues;
  int nq;
  char request_id[24];
  char host_id[40];
  char host_bucket[64]; /* virtual-hosted addressing (s3_buckets.c) */
  char host_region[32];
  double t0;
  int started, queued;
  int auth_pending;   /* SigV4 check deferred until the body hash is known */
  int too_large;      /* body went over the cap: answer EntityTooLarge at the end */
  uint64_t body_cap;  /* from the route's policy, set with the headers */
  int bad_path;       /* path did not decode (NUL byte) */
  route_kind route;
  char *endpoint;
  ep_s3_target target;
  int have_target;
  ep_store_writer *writer;
  ep_chunked *chunked;  /* aws-chunked body: its decoder, which writes into writer */
  ep_chunk_seed seed;   /* signed aws-chunked: the chain of its chunk signatures (secret) */
  int have_seed;
  asd_buf body;
  uint64_t bytes_in;
  ep_request req;
  /* for stats and the access log */
  int status;
  uint64_t bytes_out;
  const char *operation;
  int dropped;
} conn_req;

/* ------------------------------------------------------------ utilities */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes n bytes; returns NULL when the result would hold a NUL. */
static char *pct_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
    if (o && out[o - 1] == '\0') {
      free(out);
      return NULL;
    }
  }
  out[o] = '\0';
  return out;
}

const char *ep_request_header(const ep_request *req, const char *name) {
  const conn_req *r = req ? req->impl : NULL;
  if (!r || !r->conn) return NULL;
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct each_header_ctx {
  void (*fn)(void *ctx, const char *name, const char *value);
  void *ctx;
} each_header_ctx;

static enum MHD_Result each_header_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  each_header_ctx *c = cls;
  if (key) c->fn(c->ctx, key, value ? value : "");
  return MHD_YES;
}

void ep_request_each_header(const ep_request *req,
                                  void (*fn)(void *ctx, const char *name, const char *value), void *ctx) {
  const conn_req *r = req ? req->impl : NULL;
  if (!r || !r->conn || !fn) return;
  each_header_ctx c = {fn, ctx};
  MHD_get_connection_values(r->conn, MHD_HEADER_KIND, each_header_cb, &c);
}

const char *ep_request_query(const ep_request *req, const char *name) {
  const conn_req *r = req ? req->impl : NULL;
  if (!r) return NULL;
  for (int i = 0; i < r->nq; i++)
    if (r->qnames[i] && strcmp(r->qnames[i], name) == 0) return r->qvalues[i];
  return NULL;
}

void ep_response_init(ep_response *resp) {
  memset(resp, 0, sizeof *resp);
  asd_buf_init(&resp->body);
  resp->fd = -1;
}

void ep_response_clear(ep_response *resp) {
  asd_buf_free(&resp->body);
  CSLDestroy(resp->headers);
  resp->headers = NULL;
  if (resp->fd >= 0) close(resp->fd);
  resp->fd = -1;
}

void ep_response_set_header(ep_response *resp, const char *name, const char *value) {
  size_t nl = strlen(name);
  for (int i = 0; resp->headers && resp->headers[i]; i++) {
    if (strncasecmp(resp->headers[i], name, nl) == 0 && resp->headers[i][nl] == ':') {
      CPLFree(resp->headers[i]);
      resp->headers[i] = CPLStrdup(CPLSPrintf("%s: %s", name, value));
      return;
    }
  }
  resp->headers = CSLAddString(resp->headers, CPLSPrintf("%s: %s", name, value));
}

static void reset_for_error(ep_response *resp) {
  asd_buf_reset(&resp->body);
  if (resp->fd >= 0) close(resp->fd);
  resp->fd = -1;
  resp->head_size = 0;
  /* Error responses keep only the headers that make sense on errors. */
  char **kept = NULL;
  for (int i = 0; resp->headers && resp->headers[i]; i++)
    if (strncasecmp(resp->headers[i], "Content-Range:", 14) == 0) kept = CSLAddString(kept, resp->headers[i]);
  CSLDestroy(resp->headers);
  resp->headers = kept;
}

static void xml_escape_into(asd_buf *b, const char *s) {
  for (const char *p = s; p && *p; p++) {
    switch (*p) {
      case '&': asd_buf_append_str(b, "&amp;"); break;
      case '<': asd_buf_append_str(b, "&lt;"); break;
      case '>': asd_buf_append_str(b, "&gt;"); break;
      case '"': asd_buf_append_str(b, "&quot;"); break;
      default: asd_buf_append(b, p, 1);
    }
  }
}

/* An S3 error body, with extra elements after <Message> (see server.h). */
void ep_s3_error_extra(ep_response *resp, const ep_request *req, int status, const char *code,
                           const char *message, const char *const *extra) {
  reset_for_error(resp);
  resp->status = status;
  asd_buf *b = &resp->body;
  asd_buf_append_str(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
  xml_escape_into(b, code);
  asd_buf_append_str(b, "</Code><Message>");
  xml_escape_into(b, message);
  asd_buf_append_str(b, "</Message>");
  for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
    asd_buf_appendf(b, "<%s>", extra[i]);
    xml_escape_into(b, extra[i + 1]);
    asd_buf_appendf(b, "</%s>", extra[i]);
  }
  asd_buf_append_str(b, "<Resource>");
  xml_escape_into(b, req && req->path ? req->path : "/");
  asd_buf_append_str(b, "</Resource><RequestId>");
  xml_escape_into(b, req && req->request_id ? req->request_id : "");
  asd_buf_append_str(b, "</RequestId></Error>");
  ep_response_set_header(resp, "Content-Type", "application/xml");
}

static void s3_error_ex(ep_response *resp, const ep_request *req, int status, const char *code,
                        const char *message, const char *extra_name, const char *extra_value) {
  const char *extra[] = {extra_name, extra_value, NULL};
  ep_s3_error_extra(resp, req, status, code, message, extra_name ? extra : NULL);
}

void ep_s3_error(ep_response *resp, const ep_request *req, int status, const char *code,
                       const char *message) {
  s3_error_ex(resp, req, status, code, message, NULL, NULL);
}

int ep_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

void ep_json_error(ep_response *resp, const ep_request *req, int status, const char *code,
                         const char *message) {
  (void)req;
  reset_for_error(resp);
  resp->status = status;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "__type", json_object_new_string(code));
  json_object_object_add(o, "message", json_object_new_string(message));
  asd_buf_append_str(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  ep_response_set_header(resp, "Content-Type", "application/json");
  ep_response_set_header(resp, "x-amzn-ErrorType", code);
}

/* -------------------------------------------------- libmicrohttpd hooks */

static size_t unescape_identity(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *con) {
  ep_server *srv = cls;
  conn_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->srv = srv;
  r->conn = con;
  r->raw_uri = strdup(uri ? uri : "/");
  r->t0 = asd_time_monotonic();
  asd_buf_init(&r->body);
  atomic_fetch_add(&srv->in_flight, 1);
  return r;
}

static void free_req(conn_req *r) {
  if (!r) return;
  ep_chunked_free(r->chunked);
  OPENSSL_cleanse(&r->seed, sizeof r->seed);
  ep_store_writer_abort(r->writer);
  ep_s3_target_clear(&r->target);
  for (int i = 0; i < r->nq; i++) {
    free(r->qnames[i]);
    free(r->qvalues[i]);
  }
  free(r->qnames);
  free(r->qvalues);
  free(r->raw_uri);
  free(r->raw_path);
  free(r->path);
  free(r->raw_query);
  free(r->endpoint);
  asd_buf_free(&r->body);
  free(r);
}

static void access_log_line(ep_server *srv, conn_req *r, int completed_ok) {
  if (!srv->log) return;
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *addr = "-";
  char abuf[64] = "-";
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr) {
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
      inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, abuf, sizeof abuf);
    else if (sa->sa_family == AF_INET6)
      inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, abuf, sizeof abuf);
    addr = abuf;
  }
  /* The query is left out on purpose: presigned URLs carry credentials in it. */
  pthread_mutex_lock(&srv->log_mu);
  fprintf(srv->log, "%s %s \"%s %s\" %d %llu %llu %.3f %s %s%s\n", ts, addr, r->req.method ? r->req.method : "-",
          r->raw_path ? r->raw_path : "-", r->status, (unsigned long long)r->bytes_in,
          (unsigned long long)r->bytes_out, (asd_time_monotonic() - r->t0) * 1000.0,
          r->operation ? r->operation : "-", r->request_id, r->dropped ? " dropped" : completed_ok ? "" : " aborted");
  fflush(srv->log);
  pthread_mutex_unlock(&srv->log_mu);
}

static void request_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                              enum MHD_RequestTerminationCode toe) {
  ep_server *srv = cls;
  (void)con;
  conn_req *r = *req_cls;
  if (!r) return;
  if (r->started) access_log_line(srv, r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
  free_req(r);
  *req_cls = NULL;
  atomic_fetch_sub(&srv->in_flight, 1);
}

/* Counts connections as they are accepted (the stats page's "connections":
 * requests per connection shows whether clients reuse them) and, over
 * HTTPS, lets each one resume a TLS session and counts those that did. */
static void connection_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
  ep_server *srv = cls;
  (void)socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    ep_stats_connection(srv->cfg.stats);
    if (srv->tickets) ep_tls_tickets_enable(srv->tickets, con);
  } else if (srv->tickets) {
    ep_tls_tickets_count(con, srv->cfg.stats);
  }
}

static ssize_t never_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls;
  (void)pos;
  (void)buf;
  (void)max;
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Sends resp (or drops the connection).  Consumes the response's resources. */
static enum MHD_Result send_response(conn_req *r, ep_response *resp) {
  ep_server *srv = r->srv;
  r->queued = 1;
  r->operation = resp->operation ? resp->operation : r->operation;
  if (resp->drop_connection) {
    r->dropped = 1;
    r->status = 0;
    ep_stats_dropped(srv->cfg.stats, r->operation);
    ep_response_clear(resp);
    return MHD_NO;
  }
  if (resp->status <= 0) resp->status = 500;
  int head = r->req.method && strcmp(r->req.method, "HEAD") == 0;
  struct MHD_Response *mr = NULL;
  uint64_t out = 0;
  if (resp->fd >= 0 && resp->fd_size > 0 && !head) {
    mr = MHD_create_response_from_fd_at_offset64(resp->fd_size, resp->fd, resp->fd_offset);
    if (mr) resp->fd = -1; /* libmicrohttpd closes it */
    out = resp->fd_size;
  } else if (head && resp->head_size > 0) {
    mr = MHD_create_response_from_callback(resp->head_size, 4096, never_read, NULL, NULL);
  } else {
    size_t len = 0;
    void *data = asd_buf_take(&resp->body, &len);
    if (data && len) {
      mr = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
      if (!mr) free(data);
      out = head ? 0 : len;
    } else {
      free(data);
      mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
  }
  if (!mr) {
    ep_response_clear(resp);
    return MHD_NO;
  }
  int has_rid = 0;
  for (int i = 0; resp->headers && resp->headers[i]; i++) {
    const char *h = resp->headers[i];
    const char *colon = strchr(h, ':');
    if (!colon) continue;
    char *name = strndup(h, (size_t)(colon - h));
    const char *val = colon + 1;
    while (*val == ' ') val++;
    if (name) {
      if (strcasecmp(name, "x-amzn-RequestId") == 0 || strcasecmp(name, "x-amz-request-id") == 0) has_rid = 1;
      MHD_add_response_header(mr, name, val);
    }
    free(name);
  }
  if (!has_rid) {
    if (r->route == ROUTE_ASYNC || r->route == ROUTE_SYNC) {
      MHD_add_response_header(mr, "x-amzn-RequestId", r->request_id);
    } else {
      MHD_add_response_header(mr, "x-amz-request-id", r->request_id);
      MHD_add_response_header(mr, "x-amz-id-2", r->host_id);
    }
  }
  MHD_add_response_header(mr, "Server", "AsyncDetectLocal");
  enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned int)resp->status, mr);
  MHD_destroy_response(mr);
  r->status = resp->status;
  r->bytes_out = out;
  ep_stats_record(srv->cfg.stats, r->operation, resp->status, r->bytes_in, out,
                      asd_time_monotonic() - r->t0);
  ep_response_clear(resp);
  return rc;
}

/* Answers an error in the dialect of the route (XML for S3, JSON otherwise). */
static enum MHD_Result send_error(conn_req *r, int status, const char *code, const char *message) {
  ep_response resp;
  ep_response_init(&resp);
  if (r->route == ROUTE_S3)
    ep_s3_error(&resp, &r->req, status, code, message);
  else if (r->route == ROUTE_STS)
    ep_sts_api_error(&resp, &r->req, status, code, message);
  else
    ep_json_error(&resp, &r->req, status, code, message);
  return send_response(r, &resp);
}

/* ------------------------------------------------------------ parsing */

static int parse_target(conn_req *r) {
  const char *u = r->raw_uri;
  /* An absolute-form target (http[s]://host/path) is reduced to its path. */
  size_t scheme = strncasecmp(u, "http://", 7) == 0 ? 7 : strncasecmp(u, "https://", 8) == 0 ? 8 : 0;
  if (scheme) {
    const char *p = strchr(u + scheme, '/');
    u = p ? p : "/";
  }
  const char *q = strchr(u, '?');
  size_t plen = q ? (size_t)(q - u) : strlen(u);
  r->raw_path = strndup(u, plen);
  r->raw_query = strdup(q ? q + 1 : "");
  if (!r->raw_path || !r->raw_query) return -1;
  r->path = pct_decode(r->raw_path, plen);
  if (!r->path) {
    r->bad_path = 1;
    r->path = strdup("/");
    if (!r->path) return -1;
  }
  /* Query: name[=value] pairs separated by '&', decoded. */
  const char *s = r->raw_query;
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t len = amp ? (size_t)(amp - s) : strlen(s);
    if (len > 0) {
      const char *eq = memchr(s, '=', len);
      size_t nlen = eq ? (size_t)(eq - s) : len;
      char **nn = realloc(r->qnames, sizeof(char *) * (size_t)(r->nq + 1));
      if (nn) r->qnames = nn;
      char **nv = realloc(r->qvalues, sizeof(char *) * (size_t)(r->nq + 1));
      if (nv) r->qvalues = nv;
      if (!nn || !nv) return -1;
      r->qnames[r->nq] = pct_decode(s, nlen);
      r->qvalues[r->nq] = eq ? pct_decode(eq + 1, len - nlen - 1) : strdup("");
      if (!r->qnames[r->nq] || !r->qvalues[r->nq]) {
        free(r->qnames[r->nq]);
        free(r->qvalues[r->nq]);
        r->bad_path = 1;
      } else {
        r->nq++;
      }
    }
    if (!amp) break;
    s = amp + 1;
  }
  return 0;
}

static void classify(conn_req *r) {
  const char *p = r->path;
  if (r->req.host_bucket) { /* BUCKET.s3...: every path is a key of that bucket */
    r->route = ROUTE_S3;
    return;
  }
  if (strcmp(p, "/_asd/stats") == 0) {
    r->route = ROUTE_STATS;
    r->operation = "Stats";
    return;
  }
  if (strcmp(p, "/_asd/health") == 0 || strcmp(p, "/ping") == 0) {
    r->route = ROUTE_HEALTH;
    r->operation = "Health";
    return;
  }
  if (strncmp(p, "/_asd/", 6) == 0) {
    r->route = ROUTE_NOT_FOUND;
    r->operation = "NotFound";
    return;
  }
  if (strncmp(p, "/endpoints/", 11) == 0) {
    const char *name = p + 11;
    const char *slash = strchr(name, '/');
    r->route = ROUTE_NOT_FOUND;
    r->operation = "NotFound";
    if (!slash) return;
    r->endpoint = strndup(name, (size_t)(slash - name));
    if (strcmp(slash, "/async-invocations") == 0) {
      r->route = ROUTE_ASYNC;
      r->operation = "InvokeEndpointAsync";
    } else if (strcmp(slash, "/invocations") == 0) {
      r->route = ROUTE_SYNC;
      r->operation = "InvokeEndpoint";
    }
    return;
  }
  if (ep_control_api_matches(r->req.method, p, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Amz-Target"))) {
    r->route = ROUTE_CONTROL;
    r->operation = "SageMaker";
    return;
  }
  if (r->srv->cfg.sts && ep_sts_api_matches(r->req.method, p, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                                        "Content-Type"))) {
    r->route = ROUTE_STS;
    r->operation = "STS";
    return;
  }
  if (r->srv->cfg.sso && ep_sso_api_matches(r->req.method, p)) {
    r->route = ROUTE_SSO;
    r->operation = ep_sso_api_reads_body(r->req.method) ? "CreateToken" : "GetRoleCredentials";
    return;
  }
  r->route = ROUTE_S3;
  r->operation = "S3";
}

typedef struct hdr_vec {
  ep_header *h;
  int n, cap;
} hdr_vec;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  hdr_vec *v = cls;
  if (v->n == v->cap) {
    int nc = v->cap ? v->cap * 2 : 32;
    ep_header *nh = realloc(v->h, sizeof *nh * (size_t)nc);
    if (!nh) return MHD_NO;
    v->h = nh;
    v->cap = nc;
  }
  v->h[v->n].name = key;
  v->h[v->n].value = value ? value : "";
  v->n++;
  return MHD_YES;
}

/* SigV4 check: in full over payload_hash (NULL: S3's signed
 * x-amz-content-sha256), or of the headers alone when headers_only.
 * 0 = authorised (or auth off); -1 = response already queued. */
static int check_auth(conn_req *r, const char *payload_hash, int headers_only, enum MHD_Result *rc) {
  ep_server *srv = r->srv;
  if (!srv->cfg.auth) return 0;
  hdr_vec v = {0};
  MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &v);
  ep_auth_result res;
  memset(&res, 0, sizeof res);
  int ok = headers_only ? ep_auth_check_headers(srv->cfg.auth, &r->req, v.h, v.n, &res)
                        : ep_auth_check(srv->cfg.auth, &r->req, v.h, v.n, payload_hash, &res);
  free(v.h);
  if (ok == 0 && res.have_seed) {
    r->seed = res.seed;
    r->have_seed = 1;
  }
  OPENSSL_cleanse(&res.seed, sizeof res.seed);
  if (ok == 0) return 0;
  int status = res.status ? res.status : 403;
  const char *code = res.code ? res.code : "AccessDenied";
  const char *message = res.message[0] ? res.message : "Access Denied";
  if (r->route == ROUTE_S3 && res.headers_not_signed[0]) {
    ep_response resp;
    ep_response_init(&resp);
    s3_error_ex(&resp, &r->req, status, code, message, "HeadersNotSigned", res.headers_not_signed);
    *rc = send_response(r, &resp);
  } else {
    *rc = send_error(r, status, code, message);
  }
  return -1;
}

static const char *rt_header(void *ctx, const char *name) {
  conn_req *r = ctx;
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Converts the runtime's response into ours. */
static void from_rt_response(ep_rt_response *rr, ep_response *resp) {
  resp->status = rr->status;
  resp->drop_connection = rr->drop_connection;
  if (rr->body && rr->body_len) asd_buf_append(&resp->body, rr->body, rr->body_len);
  for (int i = 0; i < rr->n_headers; i++)
    if (rr->header_names[i] && rr->header_values[i])
      ep_response_set_header(resp, rr->header_names[i], rr->header_values[i]);
}

static void stats_page(ep_server *srv, ep_response *resp) {
  json_object *root = ep_stats_json(srv->cfg.stats);
  uint64_t objs = 0, bytes = 0;
  if (srv->cfg.store) ep_store_totals(srv->cfg.store, &objs, &bytes);
  json_object *st = json_object_new_object();
  json_object_object_add(st, "objects", json_object_new_int64((int64_t)objs));
  json_object_object_add(st, "bytes", json_object_new_int64((int64_t)bytes));
  json_object_object_add(root, "store", st);
  json_object_object_add(root, "in_flight_http", json_object_new_int(atomic_load(&srv->in_flight) - 1));
  if (srv->cfg.runtime) {
    json_object *rt = ep_runtime_stats_json(srv->cfg.runtime);
    json_object *tot = NULL;
    /* The invocation totals are repeated at the top level for quick reading. */
    if (rt && json_object_object_get_ex(rt, "totals", &tot)) {
      static const char *keys[][2] = {{"queue_depth", "queue_depth"},
                                      {"in_flight", "in_flight_invocations"},
                                      {"completed", "completed_invocations"},
                                      {"failed", "failed_invocations"}};
      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(tot, keys[i][0], &v))
          json_object_object_add(root, keys[i][1], json_object_get(v));
      }
    }
    if (rt) json_object_object_add(root, "runtime", rt);
  }
  if (srv->cfg.sts) json_object_object_add(root, "sts", ep_sts_api_stats_json(srv->cfg.sts));
  if (srv->cfg.sso) json_object_object_add(root, "sso", ep_sso_api_stats_json(srv->cfg.sso));
  if (srv->cfg.faults) {
    json_object *f = ep_faults_stats_json(srv->cfg.faults);
    if (f) json_object_object_add(root, "faults", f);
  }
  asd_buf_append_str(&resp->body, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
  json_object_put(root);
  resp->status = 200;
  ep_response_set_header(resp, "Content-Type", "application/json");
}

/* The route's body cap and signature requirement (see the essay above).
 * PutObject and UploadPart bodies stream to disk and may be as large as
 * -max-body; every other body is held in memory, so it gets a small cap. */
static route_policy route_policy_of(const conn_req *r) {
  route_policy p = {0, 1};
  switch (r->route) {
    case ROUTE_S3:
      p.body_cap = ep_s3_op_streams_body(r->target.op) ? UINT64_MAX : 2 * MIB;
      break;
    case ROUTE_STS:
    case ROUTE_CONTROL: /* small form or JSON requests */
      p.body_cap = 64 * KIB;
      break;
    case ROUTE_SYNC:
      p.body_cap = 6 * MIB;
      break;
    case ROUTE_ASYNC:
      break;
    case ROUTE_STATS:
      p.sigv4 = r->srv->cfg.stats_auth;
      break;
    case ROUTE_SSO: /* a bearer token or a client secret, not SigV4; CreateToken has a small JSON body */
      p.body_cap = ep_sso_api_reads_body(r->req.method) ? 64 * KIB : 0;
      p.sigv4 = 0;
      break;
    case ROUTE_HEALTH:
    case ROUTE_NOT_FOUND:
      p.sigv4 = 0;
      break;
  }
  if (r->srv->cfg.max_body && p.body_cap > r->srv->cfg.max_body) p.body_cap = r->srv->cfg.max_body;
  return p;
}

/* The answer to a body over the route's cap, in the route's dialect. */
static enum MHD_Result send_too_large(conn_req *r) {
  if (r->route == ROUTE_S3 && ep_s3_op_streams_body(r->target.op))
    return send_error(r, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
  if (r->route == ROUTE_S3) return send_error(r, 400, "MaxMessageLengthExceeded", "Your request was too big.");
  return send_error(r, 413, "ValidationError", "The request payload exceeds the maximum allowed size");
}

/* 1 when the request announces a body (a non-zero Content-Length, or a
 * chunked one of unknown length). */
static int announces_body(const conn_req *r) {
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
  const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding");
  uint64_t n = 0;
  if (te) return 1;
  return cl && (ep_parse_u64(cl, &n) != 0 || n > 0);
}

/* Step 1's authentication (see the essay): in full where the headers allow,
 * else of the headers now and of the body's hash at the end.  0, or -1 with
 * the refusal queued. */
static int authenticate_headers(conn_req *r, const route_policy *pol, enum MHD_Result *rc) {
  if (!pol->sigv4 || !r->srv->cfg.auth) return 0;
  if (r->route == ROUTE_S3) return check_auth(r, NULL, 0, rc);
  if (!announces_body(r)) return check_auth(r, EMPTY_SHA256_HEX, 0, rc);
  r->auth_pending = 1;
  return check_auth(r, NULL, 1, rc);
}

/* Where an aws-chunked body's payload goes: the request's writer (gone
 * once a fault or policy aborted it). */
static int chunked_sink(void *ctx, const void *data, size_t len) {
  conn_req *r = ctx;
  return r->writer ? ep_store_writer_write(r->writer, data, len) : -1;
}

/* --------------------------------------------------------- access handler */

static enum MHD_Result on_headers(conn_req *r, const char *method) {
  ep_server *srv = r->srv;
  enum MHD_Result rc = MHD_YES;
  r->started = 1;
  snprintf(r->request_id, sizeof r->request_id, "%016llX", (unsigned long long)asd_random_u64());
  snprintf(r->host_id, sizeof r->host_id, "%016llx%016llx", (unsigned long long)asd_random_u64(),
           (unsigned long long)asd_random_u64());
  if (parse_target(r) != 0) return MHD_NO;
  r->req.method = method;
  r->req.raw_path = r->raw_path;
  r->req.path = r->path;
  r->req.raw_query = r->raw_query;
  r->req.request_id = r->request_id;
  r->req.impl = r;
  if (ep_s3_parse_host(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host"), srv->cfg.domains,
                        r->host_bucket, r->host_region))
    r->req.host_bucket = r->host_bucket;
  r->req.host_region = r->host_region[0] ? r->host_region : NULL;
  classify(r);
  if (r->bad_path) return send_error(r, 400, "InvalidURI", "Couldn't parse the specified URI.");
  if (atomic_load(&srv->closing))
    return send_error(r, 503, "ServiceUnavailable", "The endpoint is shutting down. Please try again.");
  if (r->route == ROUTE_SSO && !ep_sso_api_reads_body(method)) { /* bearer token: from the headers, no body */
    ep_response resp;
    ep_response_init(&resp);
    ep_sso_api_handle(srv->cfg.sso, &r->req, &resp);
    return send_response(r, &resp);
  }

  if (r->route == ROUTE_S3) {
    ep_response resp;
    ep_response_init(&resp);
    if (ep_s3_route(srv->cfg.s3, &r->req, &r->target, &resp) != 0) {
      r->operation = r->target.operation;
      ep_s3_target_clear(&r->target);
      return send_response(r, &resp);
    }
    r->have_target = 1;
    r->operation = r->target.operation;
    /* Another region's bucket is redirected before its signature is
     * checked, as the front end of the wrong region does. */
    if (ep_s3_check_region(srv->cfg.buckets, &r->req, &r->target, &resp) != 0) return send_response(r, &resp);
    ep_response_clear(&resp);
  }
  route_policy pol = route_policy_of(r);
  r->body_cap = pol.body_cap;
  if (authenticate_headers(r, &pol, &rc) != 0) return rc;
  if (r->route == ROUTE_S3 && r->target.bucket) {
    /* Owner and encryption policy, before a byte of the body is read. */
    ep_response resp;
    ep_response_init(&resp);
    int exists = ep_store_head_bucket(srv->cfg.store, r->target.bucket) == ASD_STORE_OK;
    if (ep_s3_check_bucket_policy(srv->cfg.buckets, &r->req, &r->target, exists, &resp) != 0)
      return send_response(r, &resp);
    ep_response_clear(&resp);
  }

  /* The body's size, before a byte of it is read. */
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
  uint64_t n = 0;
  if (cl && ep_parse_u64(cl, &n) != 0) {
    if (r->route == ROUTE_S3) return send_error(r, 400, "InvalidArgument", "Content-Length is not a number.");
    return send_error(r, 400, "ValidationError", "Content-Length is not a number.");
  }
  /* An aws-chunked body's Content-Length counts its framing: its payload's
   * length (x-amz-decoded-content-length) is held to the cap instead. */
  int aws_chunked = r->route == ROUTE_S3 && ep_s3_op_streams_body(r->target.op) &&
                    ep_chunked_mode_of(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-amz-content-sha256")) !=
                        EP_CHUNKED_NONE;
  if (!aws_chunked && ((cl && n > r->body_cap) || (r->body_cap == 0 && announces_body(r)))) return send_too_large(r);
  if (r->route == ROUTE_S3 && ep_s3_op_streams_body(r->target.op)) {
    ep_response resp;
    ep_response_init(&resp);
    if (ep_s3_put_begin(srv->cfg.s3, &r->req, &r->target, r->have_seed ? &r->seed : NULL, chunked_sink, r,
                        &r->writer, &r->chunked, &resp) != 0)
      return send_response(r, &resp);
    ep_response_clear(&resp);
  }
  return MHD_YES;
}

static void on_body(conn_req *r, const char *data, size_t n) {
  r->bytes_in += n;
  if (r->too_large) return;
  if (r->chunked) {
    /* The decoder holds the payload to x-amz-decoded-content-length, which
     * put_begin held to the cap; a refusal is answered at the end. */
    ep_chunked_feed(r->chunked, data, n);
    return;
  }
  if (r->bytes_in > r->body_cap) {
    r->too_large = 1;
    ep_store_writer_abort(r->writer);
    r->writer = NULL;
    asd_buf_free(&r->body);
    return;
  }
  if (r->writer) {
    if (ep_store_writer_write(r->writer, data, n) != 0) {
      /* The commit reports the failure. */
    }
  } else if (asd_buf_append(&r->body, data, n) != 0) {
    r->too_large = 1;
  }
}

static enum MHD_Result on_complete(conn_req *r) {
  ep_server *srv = r->srv;
  enum MHD_Result rc = MHD_YES;
  if (r->too_large) return send_too_large(r);
  r->req.body = r->body.len ? r->body.data : NULL;
  r->req.body_len = r->body.len;

  if (r->auth_pending) {
    char hash[65];
    if (r->writer)
      ep_store_writer_sha256_hex(r->writer, hash);
    else
      asd_sha256_hex(r->body.data ? (const void *)r->body.data : "", r->body.len, hash);
    if (check_auth(r, hash, 0, &rc) != 0) return rc;
  }

  ep_response resp;
  ep_response_init(&resp);
  switch (r->route) {
    case ROUTE_STATS:
      stats_page(srv, &resp);
      break;
    case ROUTE_HEALTH:
      resp.status = 200;
      asd_buf_append_str(&resp.body, "{\"status\":\"ok\"}");
      ep_response_set_header(&resp, "Content-Type", "application/json");
      break;
    case ROUTE_NOT_FOUND:
      ep_json_error(&resp, &r->req, 404, "UnknownOperationException", "No such operation on this server");
      break;
    case ROUTE_STS:
      ep_sts_api_handle(srv->cfg.sts, &r->req, &resp);
      break;
    case ROUTE_CONTROL:
      ep_control_api_handle(srv->cfg.runtime, srv->cfg.policy, srv->cfg.region, &r->req, &resp);
      break;
    case ROUTE_SSO: /* CreateToken; GetRoleCredentials was answered in on_headers */
      ep_sso_api_handle(srv->cfg.sso, &r->req, &resp);
      break;
    case ROUTE_ASYNC:
    case ROUTE_SYNC: {
      if (strcmp(r->req.method, "POST") != 0) {
        ep_json_error(&resp, &r->req, 405, "UnknownOperationException", "Invocations must be POST requests");
        break;
      }
      if (!srv->cfg.runtime) {
        ep_json_error(&resp, &r->req, 400, "ValidationError",
                            CPLSPrintf("Endpoint %s not found (no endpoints are configured).", r->endpoint));
        break;
      }
      ep_rt_response rr;
      ep_rt_response_init(&rr);
      if (r->route == ROUTE_ASYNC)
        ep_runtime_invoke_async(srv->cfg.runtime, r->endpoint, rt_header, r, &rr);
      else
        ep_runtime_invoke_sync(srv->cfg.runtime, r->endpoint, rt_header, r, r->req.body, r->req.body_len, &rr);
      from_rt_response(&rr, &resp);
      if (rr.status >= 400 && rr.error_code) r->operation = r->route == ROUTE_ASYNC ? "InvokeEndpointAsync" : "InvokeEndpoint";
      ep_rt_response_clear(&rr);
      break;
    }
    case ROUTE_S3: {
      if (ep_policy_check_s3(srv->cfg.policy, srv->cfg.store, &r->req, &r->target, &resp) != 0) {
        ep_store_writer_abort(r->writer); /* -deny: IAM says no before S3 does anything */
        r->writer = NULL;
        break;
      }
      /* Faults apply to S3 requests only; the runtime applies its own. */
      if (srv->cfg.faults) {
        int ms = ep_faults_slow_consumer_ms(srv->cfg.faults);
        if (ms > 0) asd_sleep(ms / 1000.0);
        ep_s3_fault f = ep_faults_s3(srv->cfg.faults);
        if (f != ASD_S3_FAULT_NONE) {
          ep_store_writer_abort(r->writer);
          r->writer = NULL;
          if (f == ASD_S3_FAULT_DROP) {
            resp.drop_connection = 1;
          } else if (f == ASD_S3_FAULT_503_SLOWDOWN) {
            ep_s3_error(&resp, &r->req, 503, "SlowDown", "Please reduce your request rate.");
          } else {
            ep_s3_error(&resp, &r->req, 500, "InternalError", "We encountered an internal error. Please try again.");
          }
          break;
        }
      }
      if (r->writer) {
        ep_store_writer *w = r->writer;
        r->writer = NULL;
        ep_s3_put_finish(srv->cfg.s3, &r->req, &r->target, w, r->chunked, &resp);
      } else {
        /* The body (empty too) against the hash the signature covered. */
        char hash[65];
        asd_sha256_hex(r->body.data ? (const void *)r->body.data : "", r->body.len, hash);
        if (ep_s3_check_payload_hash(&r->req, hash, &resp) != 0) break;
        ep_s3_handle(srv->cfg.s3, &r->req, &r->target, &resp);
      }
      break;
    }
  }
  return send_response(r, &resp);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **req_cls) {
  (void)cls;
  (void)url;
  (void)version;
  conn_req *r = *req_cls;
  if (!r) return MHD_NO; /* out of memory in uri_log */
  r->conn = con;
  if (!r->started) return on_headers(r, method);
  if (*upload_data_size > 0) {
    if (!r->queued) on_body(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->queued) return MHD_YES;
  return on_complete(r);
}

/* --------------------------------------------------------------- daemon */

/* libmicrohttpd's own messages (a client that gave up a TLS handshake,
 * a connection it could not accept) go to stderr like the server's, named
 * as its: GnuTLS's bare "Error: ..." says nothing about who wrote it. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  fprintf(stderr, "asyncdetect_endpoint: libmicrohttpd: %s\n", msg);
}

ep_server *ep_server_start(const ep_server_config *cfg, char *err, size_t err_len) {
  ep_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  srv->cfg = *cfg;
  pthread_mutex_init(&srv->log_mu, NULL);
  atomic_init(&srv->in_flight, 0);
  atomic_init(&srv->closing, 0);
  if (cfg->access_log) {
    srv->log = fopen(cfg->access_log, "a");
    if (!srv->log) {
      snprintf(err, err_len, "cannot open access log %s: %s", cfg->access_log, strerror(errno));
      pthread_mutex_destroy(&srv->log_mu);
      free(srv);
      return NULL;
    }
  }
  const char *bind_addr = cfg->bind && *cfg->bind ? cfg->bind : "127.0.0.1";
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)cfg->port);
  } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)cfg->port);
    flags |= MHD_USE_IPv6;
  } else {
    snprintf(err, err_len, "-bind %s is not an IPv4 or IPv6 address", bind_addr);
    if (srv->log) fclose(srv->log);
    pthread_mutex_destroy(&srv->log_mu);
    free(srv);
    return NULL;
  }
  unsigned int threads = cfg->threads > 0 ? (unsigned int)cfg->threads : 4;
  /* HTTPS: libmicrohttpd's TLS (GnuTLS) with the PEM certificate and key
   * held in memory; everything above the socket is the same. */
  int tls = cfg->tls_cert_pem && cfg->tls_key_pem;
  if (tls) flags |= MHD_USE_TLS;
  if (tls) srv->tickets = ep_tls_tickets_new(); /* NULL: full handshakes only */
  struct MHD_OptionItem opts[] = {
      {MHD_OPTION_SOCK_ADDR, 0, &ss},
      {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
      {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
      {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, srv},
      {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_identity, srv},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, srv},
      {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify, srv},
      {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 256 * 1024, NULL},
      {MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
      {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
      {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cfg->tls_cert_pem},
      {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)cfg->tls_key_pem},
      {MHD_OPTION_END, 0, NULL}};
  srv->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, access_handler, srv, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
  if (!srv->d) {
    ep_tls_tickets_free(srv->tickets);
    if (tls)
      snprintf(err, err_len, "cannot serve HTTPS on %s port %d (port in use, or -tls-cert/-tls-key rejected by GnuTLS)",
               bind_addr, cfg->port);
    else
      snprintf(err, err_len, "cannot listen on %s port %d (in use or not permitted)", bind_addr, cfg->port);
    if (srv->log) fclose(srv->log);
    pthread_mutex_destroy(&srv->log_mu);
    free(srv);
    return NULL;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = di ? di->port : cfg->port;
  return srv;
}

int ep_server_port(const ep_server *srv) { return srv ? srv->port : 0; }

void ep_server_quiesce(ep_server *srv) {
  if (srv) atomic_store(&srv->closing, 1);
}

int ep_server_in_flight(const ep_server *srv) {
  return srv ? atomic_load(&((ep_server *)srv)->in_flight) : 0;
}

void ep_server_stop(ep_server *srv) {
  if (!srv) return;
  if (srv->d) MHD_stop_daemon(srv->d);
  ep_tls_tickets_free(srv->tickets);
  if (srv->log) fclose(srv->log);
  pthread_mutex_destroy(&srv->log_mu);
  free(srv);
}
