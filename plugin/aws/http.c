/*
 * http.c: the HTTP transport (libcurl) and the AWS call loop.
 *
 * Two layers live here.  The transport performs one HTTP exchange: it keeps
 * a pool of curl easy handles, and each handle keeps its own cache of idle
 * keep-alive connections (with its TLS session and buffers, costly to
 * rebuild), so a worker that takes a handle back from the pool reuses the
 * connection it left there.  The connection cache is deliberately not put
 * in the CURLSH share with the DNS cache and TLS sessions: libcurl does not
 * support sharing connections between concurrent threads (CURLSHOPT_SHARE(3),
 * CURL_LOCK_DATA_CONNECT: a known concurrency bug; e2e.InProcess.
 * TwoConcurrentRuns crashed once in a fresh-clone CI while it was shared).
 * It enforces the connect,
 * low-speed and total timeouts, TLS verification, the response size cap
 * (checked against Content-Length before the body arrives, and again while
 * it streams), proxies (GDAL_HTTP_PROXY, else libcurl's own HTTPS_PROXY /
 * NO_PROXY handling) and cancellation (progress callback).  TLS verifies
 * against one CA file, parsed once per handle rather than once per
 * connection (ca_file_only); a request body goes to libcurl as it is
 * (CURLOPT_POSTFIELDS: no read callback, no copy of ours).  A request that
 * must not run twice (send_once: InvokeEndpointAsync) travels on kept-alive
 * connections too, with libcurl's silent resend after a dead reused
 * connection refused (on_prereq) and reported as a possibly received
 * request.
 *
 * asd_aws_send() is the AWS call: it signs each attempt (fresh date, the
 * cached signing key), runs it through the transport and applies the
 * standard retry mode of the SDKs: up to max_attempts, with full-jitter
 * exponential backoff (sleep = random * min(max_backoff, base * 2^n)),
 * retrying 500/502/503/504, 429, throttling and transient codes and
 * connection failures, never other 4xx.  Two replies get a free immediate
 * retry because the fix is on our side: RequestTimeTooSkewed (the clock
 * offset is learned from the server's Date header and applied to every later
 * signature) and ExpiredToken (cached credentials are dropped and
 * re-resolved).
 *
 * Logging uses CPLDebug("ASD_HTTP") and shows method, URL, status, time,
 * attempt and request id: never headers, so never the Authorization
 * signature, security token or secret.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "aws_internal.h"

/* --------------------------------------------------------------- response */

void asd_http_response_init(asd_http_response *r) {
  memset(r, 0, sizeof(*r));
  asd_buf_init(&r->body);
}

void asd_http_response_free(asd_http_response *r) {
  if (!r) return;
  asd_buf_free(&r->body);
  CSLDestroy(r->headers);
  r->headers = NULL;
  r->n_headers = r->cap_headers = 0;
  r->status = 0;
  r->request_id[0] = '\0';
}

const char *asd_http_response_header(const asd_http_response *r, const char *name) {
  size_t nl = strlen(name);
  for (char **h = r ? r->headers : NULL; h && *h; h++) {
    if (strncasecmp(*h, name, nl) == 0 && (*h)[nl] == ':') {
      const char *v = *h + nl + 1;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
  }
  return NULL;
}

/* -------------------------------------------------------------- transport */

struct asd_http_transport {
  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t pool_lock;
  CURL **pool;
  size_t n_pool;
  size_t pool_cap;
  const int *cancel_flag;
  double connect_timeout;
  double request_timeout;
  long low_speed_limit;
  long low_speed_time;
  size_t max_response_bytes;
  char *ca_bundle;
  int ca_file_only;           /* verify against the CA file alone: see ca_file_only() */
  struct curl_slist *resolve; /* ASD_RESOLVE: test-only host:port:address pins */
  char *proxy;
  char *proxy_userpwd;
  char *user_agent;
  unsigned long stat_requests, stat_retries, stat_connections, stat_handles;
};

/* Idle seconds after which a cached connection is not used for a send_once
 * request (see send_once_guard). */
#define MAX_IDLE_REUSE_S 20

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user) {
  (void)h;
  (void)access;
  asd_http_transport *t = user;
  if ((int)data >= 0 && (int)data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&t->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user) {
  (void)h;
  asd_http_transport *t = user;
  if ((int)data >= 0 && (int)data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&t->share_locks[data]);
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

/*
 * ASD_RESOLVE: "HOST:PORT:ADDRESS[,HOST:PORT:ADDRESS...]", libcurl's
 * CURLOPT_RESOLVE entries.  Test-only: it lets a test reach a local server
 * under the names real clients use (BUCKET.s3.asd.test over TLS) without
 * DNS, while everything else (URL, Host header, SNI, certificate name
 * check, signature) runs exactly as in production.  Unset, nothing changes.
 */
static struct curl_slist *resolve_list(const char *spec) {
  struct curl_slist *l = NULL;
  char **items = spec && *spec ? CSLTokenizeString2(spec, ", ", 0) : NULL;
  for (int i = 0; items && items[i]; i++) {
    struct curl_slist *n = curl_slist_append(l, items[i]);
    if (n) l = n;
  }
  CSLDestroy(items);
  return l;
}

/*
 * Whether TLS verification can use a CA file alone (AWS_CA_BUNDLE, else
 * libcurl's built-in bundle when that file exists), without libcurl's CA
 * directory.  It matters for CPU: libcurl keeps a parsed CA store between
 * connections only when no CA directory is configured (CURLOPT_CA_CACHE_TIMEOUT,
 * 24 h), and Debian's libcurl has both built in, so by default it parses the
 * whole bundle again for every new TLS connection: ~50 ms of CPU for the
 * system's ~140 certificates under OpenSSL 3, paid again by every worker's
 * connection and every connection a server closed.  The AWS SDKs and CLI
 * verify against one bundle file too.  With no CA file at all, libcurl's
 * defaults stay as they are.
 */
static int ca_file_only(const char *ca_bundle) {
  if (ca_bundle) return 1;
#if LIBCURL_VERSION_NUM >= 0x075400 /* CURLINFO_CAINFO: 7.84 */
  CURL *h = curl_easy_init();
  char *def = NULL;
  int ok = h && curl_easy_getinfo(h, CURLINFO_CAINFO, &def) == CURLE_OK && def && access(def, R_OK) == 0;
  curl_easy_cleanup(h);
  return ok;
#else
  return 0;
#endif
}

asd_http_transport *asd_http_transport_new(const asd_aws_config *cfg, const int *cancel_flag) {
  pthread_once(&g_curl_once, curl_init_once);
  asd_http_transport *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&t->share_locks[i], NULL);
  pthread_mutex_init(&t->pool_lock, NULL);
  t->cancel_flag = cancel_flag;
  t->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 10;
  t->request_timeout = cfg->request_timeout >= 0 ? cfg->request_timeout : 300;
  t->low_speed_limit = cfg->low_speed_limit > 0 ? cfg->low_speed_limit : 1;
  t->low_speed_time = cfg->low_speed_time > 0 ? (long)ceil(cfg->low_speed_time) : 30;
  t->max_response_bytes = cfg->max_response_bytes ? cfg->max_response_bytes : (64u << 20);
  t->resolve = resolve_list(CPLGetConfigOption("ASD_RESOLVE", NULL));
  t->pool_cap = cfg->max_connections > 0 ? (size_t)cfg->max_connections : 64;
  t->ca_bundle = dup_or_null(cfg->ca_bundle);
  if (!t->ca_bundle) t->ca_bundle = dup_or_null(CPLGetConfigOption("CURL_CA_BUNDLE", NULL));
  t->ca_file_only = ca_file_only(t->ca_bundle);
  t->proxy = dup_or_null(cfg->proxy);
  if (!t->proxy) t->proxy = dup_or_null(CPLGetConfigOption("GDAL_HTTPS_PROXY", NULL));
  if (!t->proxy) t->proxy = dup_or_null(CPLGetConfigOption("GDAL_HTTP_PROXY", NULL));
  t->proxy_userpwd = dup_or_null(CPLGetConfigOption("GDAL_HTTP_PROXYUSERPWD", NULL));
  char ua[128];
  snprintf(ua, sizeof(ua), "gdal-asyncdetect/%s %s", asd_version(), curl_version());
  t->user_agent = strdup(cfg->user_agent && *cfg->user_agent ? cfg->user_agent : ua);
  t->pool = calloc(t->pool_cap, sizeof(CURL *));
  t->share = curl_share_init();
  if (!t->pool || !t->share || !t->user_agent) {
    asd_http_transport_free(t);
    return NULL;
  }
  curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return t;
}

void asd_http_transport_free(asd_http_transport *t) {
  if (!t) return;
  /* Easy handles first: they hold references into the share. */
  for (size_t i = 0; i < t->n_pool; i++) curl_easy_cleanup(t->pool[i]);
  free(t->pool);
  if (t->share) curl_share_cleanup(t->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&t->share_locks[i]);
  pthread_mutex_destroy(&t->pool_lock);
  free(t->ca_bundle);
  curl_slist_free_all(t->resolve);
  free(t->proxy);
  if (t->proxy_userpwd) {
    memset(t->proxy_userpwd, 0, strlen(t->proxy_userpwd));
    free(t->proxy_userpwd);
  }
  free(t->user_agent);
  free(t);
}

static CURL *handle_get(asd_http_transport *t) {
  CURL *h = NULL;
  pthread_mutex_lock(&t->pool_lock);
  if (t->n_pool) h = t->pool[--t->n_pool];
  pthread_mutex_unlock(&t->pool_lock);
  if (h) {
    curl_easy_reset(h);
    return h;
  }
  h = curl_easy_init();
  if (h) __atomic_add_fetch(&t->stat_handles, 1, __ATOMIC_RELAXED);
  return h;
}

static void handle_put(asd_http_transport *t, CURL *h) {
  pthread_mutex_lock(&t->pool_lock);
  if (t->n_pool < t->pool_cap) {
    t->pool[t->n_pool++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&t->pool_lock);
  if (h) curl_easy_cleanup(h);
}

typedef struct xfer {
  asd_http_response *resp;
  size_t cap;
  int too_large;
  int head; /* HEAD: Content-Length describes the object, not a body to come */
  const int *cancel_flag;
  int sends;          /* times libcurl was about to send the request (on_prereq) */
  int resend_refused; /* on_prereq refused a second send: see send_once_guard() */
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  if (x->resp->body.len + n > x->cap) {
    x->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (asd_buf_append(&x->resp->body, ptr, n) != 0) return 0;
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
    /* A new response (after 100-continue or an interim reply): start over. */
    CSLDestroy(x->resp->headers);
    x->resp->headers = NULL;
    x->resp->n_headers = x->resp->cap_headers = 0;
    return n;
  }
  size_t l = n;
  while (l && (ptr[l - 1] == '\r' || ptr[l - 1] == '\n')) l--;
  if (!l || !memchr(ptr, ':', l)) return n;
  /* The list stays a NULL-terminated CSL list for its readers, but grows by
   * doubling with one allocation per line: CSLAddString would reallocate and
   * count the whole list for every header of every response. */
  asd_http_response *r = x->resp;
  if (r->n_headers + 2 > r->cap_headers) {
    size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
    char **grown = realloc(r->headers, cap * sizeof *grown);
    if (!grown) return 0;
    r->headers = grown;
    r->cap_headers = cap;
  }
  char *line = malloc(l + 1);
  if (!line) return 0;
  memcpy(line, ptr, l);
  line[l] = '\0';
  r->headers[r->n_headers++] = line;
  r->headers[r->n_headers] = NULL;
  /* Refuse oversized bodies before they arrive. */
  if (!x->head && l > 15 && strncasecmp(ptr, "content-length:", 15) == 0) {
    unsigned long long cl = strtoull(ptr + 15, NULL, 10);
    if (cl > x->cap) {
      x->too_large = 1;
      return 0;
    }
  }
  return n;
}

/*
 * At most one send per transfer, for a request that must not run twice
 * (asd_http_attempt.send_once: InvokeEndpointAsync).
 *
 * libcurl resends a request by itself (Curl_retry_request, up to
 * CONN_MAX_RETRIES = 5 times per transfer) whenever it went out on a
 * *reused* connection and that connection then failed before any byte of
 * an answer came back: a send error while writing the request
 * (MSTATE_DO), or a receive error or end of stream with nothing received
 * (MSTATE_PERFORMING).  It then closes that connection and goes back to
 * MSTATE_CONNECT with the same URL (Curl_follow(FOLLOW_RETRY)), which takes
 * another connection and sends the request again.  That is right for an
 * idle connection the server had just closed, and wrong for an invocation
 * SageMaker had queued before the connection died: the model would run
 * twice.  No option turns the retry off.
 *
 * CURLOPT_PREREQFUNCTION (libcurl 7.80) runs in MSTATE_DO of every pass,
 * once the connection is ready (new and its TLS handshake done, or taken
 * from the cache) and before a byte of the request is written; the resend
 * is a second pass through MSTATE_DO of the same transfer, so a second call
 * of the callback is that resend, refused here before it reaches the wire
 * (the transfer ends with CURLE_ABORTED_BY_CALLBACK; the connection libcurl
 * readied for it carries nothing and is closed).  The caller reports it
 * as a network failure after the request may have been received: ambiguous,
 * not "not sent", so the engine looks for the result before invoking again.
 * (libcurl 7.88's multi.c and CURLOPT_PREREQFUNCTION(3), which also says it
 * runs again for each redirect followed; this transport follows none.)
 */
static int on_prereq(void *user, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  (void)primary_ip;
  (void)local_ip;
  (void)primary_port;
  (void)local_port;
  xfer *x = user;
  if (++x->sends == 1) return CURL_PREREQFUNC_OK;
  x->resend_refused = 1;
  return CURL_PREREQFUNC_ABORT;
}

/*
 * Installs the guard above on h.  Without it (libcurl older than 7.80, at
 * build or at run time), the request goes on a new connection instead, where
 * libcurl never resends (its retry needs a reused connection), at the price
 * of a connection and TLS handshake per request.
 */
static void send_once_guard(CURL *h, xfer *x) {
  int guarded = 0;
#if LIBCURL_VERSION_NUM >= 0x075000 /* CURLOPT_PREREQFUNCTION: 7.80 */
  guarded = curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PREREQDATA, x) == CURLE_OK;
#else
  (void)x;
#endif
  if (!guarded) {
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    return;
  }
  /* A guarded request still fails (ambiguously) when the reused connection
   * dies under it, and the common way for that to happen is a server
   * closing a connection idle for as long as its idle timeout allows while
   * the request is on its way.  libcurl checks a cached connection for an
   * arrived close before reusing it, which catches most of them; not
   * reusing one idle for longer than MAX_IDLE_REUSE_S leaves that race to
   * servers whose idle timeout is shorter still (AWS's load balancers
   * default to 60 s). */
  curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, (long)MAX_IDLE_REUSE_S);
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  xfer *x = user;
  return x->cancel_flag && __atomic_load_n(x->cancel_flag, __ATOMIC_RELAXED) ? 1 : 0;
}

asd_http_outcome asd_http_transport_perform(asd_http_transport *t, const asd_http_attempt *a,
                                            asd_http_response *resp, char *detail, size_t dsize) {
  if (detail && dsize) detail[0] = '\0';
  asd_buf_reset(&resp->body);
  CSLDestroy(resp->headers);
  resp->headers = NULL;
  resp->n_headers = resp->cap_headers = 0;
  resp->status = 0;
  if (t->cancel_flag && __atomic_load_n(t->cancel_flag, __ATOMIC_RELAXED)) return ASD_HTTP_CANCELLED;
  CURL *h = handle_get(t);
  if (!h) {
    snprintf(detail, dsize, "could not create a curl handle");
    return ASD_HTTP_INTERNAL;
  }
  xfer x = {resp, a->max_response_bytes ? a->max_response_bytes : t->max_response_bytes, 0,
            a->method && strcmp(a->method, "HEAD") == 0, t->cancel_flag, 0, 0};
  struct curl_slist *hl = NULL;
  int has_ct = 0;
  for (const char *const *p = a->headers; p && *p; p++) {
    if (strncasecmp(*p, "content-type:", 13) == 0) has_ct = 1;
    hl = curl_slist_append(hl, *p);
  }
  /* No "Expect: 100-continue" round trip, and no form content type curl
   * would invent for a POST the caller did not type. */
  hl = curl_slist_append(hl, "Expect:");
  if (!has_ct) hl = curl_slist_append(hl, "Content-Type:");
  hl = curl_slist_append(hl, "Accept:");

  curl_easy_setopt(h, CURLOPT_SHARE, t->share);
  curl_easy_setopt(h, CURLOPT_URL, a->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_USERAGENT, t->user_agent);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  /* The shared cache keeps at most this many idle connections; curl's
   * default (5) would close connections of a busy pool on every return. */
  curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)t->pool_cap);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  /* Set every time: handles are pooled, and the option sticks. */
  curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, a->fresh_connection ? 1L : 0L);
  if (a->send_once) send_once_guard(h, &x);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  double ct = a->connect_timeout > 0 ? a->connect_timeout : t->connect_timeout;
  double to = a->timeout > 0 ? a->timeout : t->request_timeout;
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(ct * 1000));
  if (to > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(to * 1000));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, t->low_speed_limit);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, t->low_speed_time);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  /* TLS: libcurl verifies the peer's chain and host name by default and
   * nothing here ever turns that off; a private CA comes in through
   * AWS_CA_BUNDLE (or GDAL's CURL_CA_BUNDLE). */
  if (t->ca_bundle) curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_bundle);
  if (t->ca_file_only) curl_easy_setopt(h, CURLOPT_CAPATH, NULL); /* the CA store is then parsed once */
  if (t->resolve) curl_easy_setopt(h, CURLOPT_RESOLVE, t->resolve);
  if (t->proxy) curl_easy_setopt(h, CURLOPT_PROXY, t->proxy);
  if (t->proxy_userpwd) curl_easy_setopt(h, CURLOPT_PROXYUSERPWD, t->proxy_userpwd);

  const char *m = a->method ? a->method : "GET";
  if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(m, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    if (a->body || strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, a->body ? (const char *)a->body : "");
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
  }
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl_easy_perform(h);
  __atomic_add_fetch(&t->stat_requests, 1, __ATOMIC_RELAXED);
  long status = 0, nconn = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
  if (nconn > 0) __atomic_add_fetch(&t->stat_connections, (unsigned long)nconn, __ATOMIC_RELAXED);
  resp->status = status;
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(hl);

  asd_http_outcome out = ASD_HTTP_DONE;
  if (rc != CURLE_OK) {
    if (x.too_large) {
      out = ASD_HTTP_TOO_LARGE;
      snprintf(detail, dsize, "response body larger than the %zu-byte limit", x.cap);
    } else if (rc == CURLE_ABORTED_BY_CALLBACK && x.resend_refused) {
      /* The first send went out on a reused connection that then died with
       * no answer: the server may have received and acted on it. */
      out = ASD_HTTP_NETWORK;
      snprintf(detail, dsize, "the connection closed before any answer, after the request was sent "
                              "(not sent again: it may have been received)");
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
      out = ASD_HTTP_CANCELLED;
      snprintf(detail, dsize, "cancelled");
    } else {
      switch (rc) {
        case CURLE_OPERATION_TIMEDOUT: out = ASD_HTTP_TIMEOUT; break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: out = ASD_HTTP_CONNECT_FAILED; break;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL: out = ASD_HTTP_BAD_URL; break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE: out = ASD_HTTP_TLS; break;
        default: out = ASD_HTTP_NETWORK; break;
      }
      snprintf(detail, dsize, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
      size_t dl = strlen(detail);
      while (dl && (detail[dl - 1] == '\n' || detail[dl - 1] == '\r')) detail[--dl] = '\0';
    }
    /* A failed transfer may leave the connection in any state; curl closes
     * it, but the handle itself stays reusable. */
  }
  handle_put(t, h);
  return out;
}

void asd_http_transport_stats(asd_http_transport *t, asd_http_stats *out) {
  out->requests = __atomic_load_n(&t->stat_requests, __ATOMIC_RELAXED);
  out->retries = __atomic_load_n(&t->stat_retries, __ATOMIC_RELAXED);
  out->connections = __atomic_load_n(&t->stat_connections, __ATOMIC_RELAXED);
  out->handles = __atomic_load_n(&t->stat_handles, __ATOMIC_RELAXED);
}

void asd_http_transport_count_retry(asd_http_transport *t) {
  __atomic_add_fetch(&t->stat_retries, 1, __ATOMIC_RELAXED);
}

void asd_aws_context_http_stats(asd_aws_context *ctx, asd_http_stats *out) {
  memset(out, 0, sizeof(*out));
  if (ctx && ctx->transport) asd_http_transport_stats(ctx->transport, out);
}

/* -------------------------------------------------------------- AWS calls */

char *asd_aws_request_url(const asd_aws_endpoint *ep, const asd_http_request *req) {
  asd_buf u;
  asd_buf_init(&u);
  int rc = 0;
  rc |= asd_buf_append_str(&u, ep->https ? "https://" : "http://");
  if (req->host_prefix) rc |= asd_buf_append_str(&u, req->host_prefix);
  rc |= asd_buf_append_str(&u, ep->host);
  rc |= asd_buf_append_str(&u, ep->base_path);
  rc |= asd_buf_append_str(&u, req->path && *req->path ? req->path : "/");
  if (req->query && *req->query) {
    rc |= asd_buf_append(&u, "?", 1);
    rc |= asd_buf_append_str(&u, req->query);
  }
  if (rc) {
    asd_buf_free(&u);
    return NULL;
  }
  return (char *)asd_buf_take(&u, NULL);
}

/* Interruptible sleep: returns nonzero when cancelled meanwhile. */
static int sleep_cancellable(asd_aws_context *ctx, double seconds) {
  double end = asd_time_monotonic() + seconds;
  for (;;) {
    if (__atomic_load_n(&ctx->cancelled, __ATOMIC_RELAXED)) return 1;
    double left = end - asd_time_monotonic();
    if (left <= 0) return 0;
    asd_sleep(left < 0.05 ? left : 0.05);
  }
}

static double get_clock_offset(asd_aws_context *ctx) {
  pthread_mutex_lock(&ctx->lock);
  double o = ctx->clock_offset;
  pthread_mutex_unlock(&ctx->lock);
  return o;
}

/* Learns the server/local clock offset from a Date header. */
static int learn_clock_offset(asd_aws_context *ctx, const asd_http_response *resp) {
  const char *d = asd_http_response_header(resp, "Date");
  if (!d) return 0;
  time_t server = curl_getdate(d, NULL);
  if (server <= 0) return 0;
  double off = (double)server - asd_time_wall();
  pthread_mutex_lock(&ctx->lock);
  ctx->clock_offset = off;
  pthread_mutex_unlock(&ctx->lock);
  CPLDebug("ASD_HTTP", "clock skew detected: server time differs by %.0f s; correcting", off);
  return 1;
}

static void set_transport_error(asd_aws_error *err, asd_http_outcome o, const char *method,
                                const char *what, const char *detail) {
  asd_aws_error_kind k = ASD_AWS_ERR_NETWORK;
  const char *label = "network error";
  switch (o) {
    case ASD_HTTP_TIMEOUT: k = ASD_AWS_ERR_TIMEOUT; label = "timed out"; break;
    case ASD_HTTP_TOO_LARGE: k = ASD_AWS_ERR_TOO_LARGE; label = "response too large"; break;
    case ASD_HTTP_CANCELLED: k = ASD_AWS_ERR_CANCELLED; label = "cancelled"; break;
    case ASD_HTTP_BAD_URL: k = ASD_AWS_ERR_CONFIG; label = "bad URL"; break;
    case ASD_HTTP_TLS: k = ASD_AWS_ERR_NETWORK; label = "TLS error"; break;
    case ASD_HTTP_CONNECT_FAILED: k = ASD_AWS_ERR_NETWORK; label = "could not connect"; break;
    default: break;
  }
  /* A certificate problem is nearly always a private CA the client was not
   * told about: say where to tell it. */
  const char *hint = o == ASD_HTTP_TLS && strstr(detail, "certificate problem")
                         ? " (give the server's CA in AWS_CA_BUNDLE)"
                         : "";
  asd_aws_error_set(err, k, "%s %s: %s: %s%s", method, what, label, detail, hint);
  /* Whether the service can have seen the request: a caller that must not
   * repeat a non-idempotent call (InvokeEndpointAsync) needs to know. */
  err->not_sent = o == ASD_HTTP_CONNECT_FAILED || o == ASD_HTTP_TLS || o == ASD_HTTP_BAD_URL;
}

static int transport_retryable(asd_http_outcome o) {
  return o == ASD_HTTP_NETWORK || o == ASD_HTTP_TIMEOUT || o == ASD_HTTP_CONNECT_FAILED;
}

/* Joins n strings into out (cap bytes, always terminated).  Returns 0, or -1
 * when the result was cut.  Used instead of snprintf on the per-request path:
 * once a library has registered a printf extension (libquadmath, pulled in
 * by GDAL's dependencies, does), every printf call in the process takes
 * glibc's slow positional path. */
static int concat(char *out, size_t cap, const char *const *parts, size_t n) {
  size_t len = 0;
  int cut = 0;
  for (size_t i = 0; i < n && !cut; i++) {
    size_t l = strlen(parts[i]);
    if (len + l >= cap) {
      l = cap - 1 - len;
      cut = 1;
    }
    memcpy(out + len, parts[i], l);
    len += l;
  }
  out[len] = '\0';
  return cut ? -1 : 0;
}

/* "name: value" in a new allocation (NULL when out of memory). */
static char *join_line(const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 1;
  char *line = malloc(n);
  if (line) concat(line, n, (const char *[]){name, value}, 2);
  return line;
}

/* Lines that hold a signature or a token are wiped before being freed. */
static void wipe_free(char *line) {
  if (!line) return;
  OPENSSL_cleanse(line, strlen(line));
  free(line);
}

int asd_aws_s3_body_unsigned(const asd_aws_context *ctx) {
  return ctx->cfg.payload_signing == 0 || (ctx->cfg.payload_signing < 0 && ctx->endpoints[ASD_AWS_S3].https);
}

/*
 * The endpoint of a request for a bucket in another region (req->region,
 * from S3's redirect): signed for that region; on AWS also sent to that
 * region's host (s3.REGION.amazonaws.com), as S3 asks.  A custom endpoint
 * (the local one, MinIO...) serves every region at one URL, so only the
 * signing scope changes there, as the SDKs do.
 */
static void region_endpoint(const asd_aws_endpoint *base, const char *region, asd_aws_endpoint *out) {
  *out = *base;
  snprintf(out->signing_region, sizeof(out->signing_region), "%s", region);
  if (base->custom) return;
  const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
  snprintf(out->host, sizeof(out->host), "s3.%s.%s", region, suffix);
  snprintf(out->base_url, sizeof(out->base_url), "https://%s", out->host);
}

static int send_impl(asd_aws_context *ctx, const asd_http_request *req,
                     const asd_aws_credentials *fixed_creds, asd_http_response *resp,
                     asd_aws_error *err) {
  asd_aws_error_clear(err);
  const asd_aws_endpoint *ep = &ctx->endpoints[req->service];
  asd_aws_endpoint moved;
  if (req->service == ASD_AWS_S3 && req->region && *req->region && strcmp(req->region, ep->signing_region) != 0) {
    region_endpoint(ep, req->region, &moved);
    ep = &moved;
  }
  char *url = asd_aws_request_url(ep, req);
  if (!url) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory building the request URL");
    return -1;
  }
  /* What to name in messages: URL without the query (no tokens there, but
   * continuation tokens are long and useless). */
  char what[300];
  const char *what_parts[] = {ep->https ? "https://" : "http://", req->host_prefix ? req->host_prefix : "",
                              ep->host, req->path ? req->path : "/"};
  if (concat(what, sizeof(what), what_parts, 4) != 0) {
    /* The label only names the request in messages; a cut one still does. */
    memcpy(what + sizeof(what) - 4, "...", 4);
  }
  char host[400];
  const char *host_parts[] = {req->host_prefix ? req->host_prefix : "", ep->host};
  concat(host, sizeof(host), host_parts, 2);

  char payload_hash[80];
  int unsigned_payload = req->service == ASD_AWS_S3 && req->body_len > 0 && !req->payload_hash &&
                         asd_aws_s3_body_unsigned(ctx);
  if (unsigned_payload)
    snprintf(payload_hash, sizeof(payload_hash), "%s", ASD_SIGV4_UNSIGNED_PAYLOAD);
  else if (req->payload_hash)
    snprintf(payload_hash, sizeof(payload_hash), "%s", req->payload_hash);
  else if (req->body && req->body_len)
    asd_sha256_hex(req->body, req->body_len, payload_hash);
  else
    snprintf(payload_hash, sizeof(payload_hash), "%s", ASD_SIGV4_EMPTY_SHA256);

  int max_attempts = req->max_attempts > 0 ? req->max_attempts : ctx->cfg.max_attempts;
  if (max_attempts < 1) max_attempts = 1;
  int attempts = 0, skew_retried = 0, token_retried = 0, rc = -1;
  asd_aws_credentials creds;
  asd_aws_credentials_init(&creds);

  for (;;) {
    attempts++;
    /* ---- build the signed header set for this attempt */
    char amz_date[17];
    asd_sigv4_format_amz_date(asd_time_wall() + get_clock_offset(ctx), amz_date);
    size_t nextra = 0;
    for (const char *const *p = req->headers; p && *p; p++) nextra++;
    const char **lines = calloc(nextra + 8, sizeof(char *));
    asd_sigv4_header *sh = calloc(nextra + 8, sizeof(*sh));
    /* The signature and the session token: allocated, wiped before freeing. */
    char *line_token = NULL, *line_auth = NULL;
    if (!lines || !sh) {
      free(lines);
      free(sh);
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
      break;
    }
    size_t nl = 0, ns = 0;
    /* The fixed-size header lines live on the stack; only the signature and
     * the session token, whose lengths vary, are allocated (and wiped). */
    char line_host[sizeof(host) + 8], line_date[40], line_sha[sizeof(payload_hash) + 24];
    concat(line_host, sizeof(line_host), (const char *[]){"Host: ", host}, 2);
    concat(line_date, sizeof(line_date), (const char *[]){"x-amz-date: ", amz_date}, 2);
    concat(line_sha, sizeof(line_sha), (const char *[]){"x-amz-content-sha256: ", payload_hash}, 2);
    lines[nl++] = line_host;
    lines[nl++] = line_date;
    lines[nl++] = line_sha;
    sh[ns++] = (asd_sigv4_header){"host", 4, host, strlen(host)};
    sh[ns++] = (asd_sigv4_header){"x-amz-date", 10, amz_date, 16};
    sh[ns++] = (asd_sigv4_header){"x-amz-content-sha256", 20, payload_hash, strlen(payload_hash)};
    for (const char *const *p = req->headers; p && *p; p++) {
      const char *colon = strchr(*p, ':');
      if (!colon) continue;
      const char *v = colon + 1;
      while (*v == ' ') v++;
      sh[ns++] = (asd_sigv4_header){*p, (size_t)(colon - *p), v, strlen(v)};
    }
    int sign_ok = 1;
    if (!req->unsigned_request) {
      const asd_aws_credentials *use = fixed_creds;
      if (!use) {
        asd_aws_credentials_free(&creds);
        if (asd_aws_context_get_credentials(ctx, &creds, err) != 0) {
          sign_ok = 0;
        } else {
          use = &creds;
        }
      }
      if (sign_ok) {
        if (use->session_token) line_token = join_line("x-amz-security-token: ", use->session_token);
        unsigned char key[32];
        char date8[9];
        memcpy(date8, amz_date, 8);
        date8[8] = '\0';
        asd_sigv4_key_cache_get(ctx->keys, use->access_key_id, use->secret_access_key, date8,
                                ep->signing_region, ep->signing_name, key);
        asd_sigv4_params sp;
        memset(&sp, 0, sizeof(sp));
        sp.method = req->method;
        /* The signed path includes a custom endpoint's base path. */
        char *spath = NULL;
        if (ep->base_path[0]) {
          size_t l = strlen(ep->base_path) + strlen(req->path ? req->path : "/") + 1;
          spath = malloc(l);
          if (spath) snprintf(spath, l, "%s%s", ep->base_path, req->path ? req->path : "/");
        }
        sp.path = spath ? spath : req->path;
        sp.query = req->query;
        sp.headers = sh;
        sp.n_headers = ns;
        sp.payload_hash = payload_hash;
        sp.region = ep->signing_region;
        sp.service = ep->signing_name;
        sp.amz_date = amz_date;
        sp.access_key_id = use->access_key_id;
        sp.signing_key = key;
        sp.session_token = use->session_token;
        asd_sigv4_signature sig;
        asd_sigv4_signature_init(&sig);
        if (asd_sigv4_sign(&sp, &sig) != 0) {
          asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s", (const char *)sig.authorization.data);
          sign_ok = 0;
        } else {
          line_auth = join_line("Authorization: ", (const char *)sig.authorization.data);
          if (!line_auth || (use->session_token && !line_token)) {
            asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory signing the request");
            sign_ok = 0;
          }
        }
        asd_sigv4_signature_free(&sig);
        free(spath);
        memset(key, 0, sizeof(key));
      }
    }
    if (!sign_ok) {
      wipe_free(line_token);
      wipe_free(line_auth);
      free(lines);
      free(sh);
      break;
    }
    if (line_token) lines[nl++] = line_token;
    if (line_auth) lines[nl++] = line_auth;
    for (const char *const *p = req->headers; p && *p; p++) lines[nl++] = *p;
    lines[nl] = NULL;

    asd_http_attempt at;
    memset(&at, 0, sizeof(at));
    at.method = req->method;
    at.url = url;
    at.headers = lines;
    at.body = req->body;
    at.body_len = req->body_len;
    at.max_response_bytes = req->max_response_bytes;
    at.fresh_connection = req->fresh_connection;
    at.send_once = req->send_once;
    char detail[CURL_ERROR_SIZE + 32];
    double t0 = asd_time_monotonic();
    asd_http_outcome o = asd_http_transport_perform(ctx->transport, &at, resp, detail, sizeof(detail));
    double ms = (asd_time_monotonic() - t0) * 1000;
    /* Credentials lines are wiped before freeing: they hold the token. */
    wipe_free(line_token);
    wipe_free(line_auth);
    free(lines);
    free(sh);

    const char *rid = asd_http_response_header(resp, "x-amzn-RequestId");
    if (!rid) rid = asd_http_response_header(resp, "x-amz-request-id");
    asd_aws_copy_line(resp->request_id, sizeof(resp->request_id), rid ? rid : "", rid ? strlen(rid) : 0);
    resp->attempts = attempts;
    CPLDebug("ASD_HTTP", "%s %s -> %ld%s%s (%.1f ms, attempt %d%s%s)", req->method, what, resp->status,
             o != ASD_HTTP_DONE ? " " : "", o != ASD_HTTP_DONE ? detail : "", ms, attempts,
             rid ? ", request id " : "", rid ? rid : "");

    int retry = 0, immediate = 0;
    if (o != ASD_HTTP_DONE) {
      set_transport_error(err, o, req->method, what, detail);
      retry = transport_retryable(o);
    } else if (resp->status >= 200 && resp->status < 300) {
      rc = 0;
      asd_aws_error_clear(err);
      break;
    } else {
      asd_aws_parse_error(resp->status, (const char *const *)resp->headers,
                          (const char *)resp->body.data, resp->body.len, err);
      char msg[sizeof(err->message)];
      snprintf(msg, sizeof(msg), "%s", err->message);
      asd_aws_error_set(err, err->kind, "%s %s: %s", req->method, what, msg);
      if (strcmp(err->code, "RequestTimeTooSkewed") == 0 && !skew_retried &&
          learn_clock_offset(ctx, resp)) {
        skew_retried = 1;
        retry = immediate = 1;
      } else if ((strcmp(err->code, "ExpiredToken") == 0 || strcmp(err->code, "ExpiredTokenException") == 0 ||
                  strcmp(err->code, "RequestExpired") == 0) &&
                 !token_retried && !fixed_creds && !req->unsigned_request) {
        token_retried = 1;
        asd_aws_context_invalidate_credentials(ctx);
        retry = immediate = 1;
      } else {
        retry = asd_aws_is_retryable(resp->status, err->code);
      }
    }
    err->attempts = attempts;
    if (!retry || __atomic_load_n(&ctx->cancelled, __ATOMIC_RELAXED)) break;
    if (!immediate && attempts >= max_attempts) break;
    if (immediate && attempts >= max_attempts + 2) break;
    asd_http_transport_count_retry(ctx->transport);
    if (!immediate) {
      double delay = asd_backoff_delay(ctx->cfg.retry_base_delay, ctx->cfg.retry_max_backoff, attempts - 1,
                                       asd_random_uniform());
      CPLDebug("ASD_HTTP", "retrying %s %s in %.3f s (%s)", req->method, what, delay,
               err->code[0] ? err->code : asd_aws_error_kind_name(err->kind));
      if (sleep_cancellable(ctx, delay)) break;
    }
  }
  if (rc != 0) {
    if (__atomic_load_n(&ctx->cancelled, __ATOMIC_RELAXED) && err->kind != ASD_AWS_ERR_CANCELLED) {
      asd_aws_error_set(err, ASD_AWS_ERR_CANCELLED, "%s %s: cancelled", req->method, what);
    }
    err->attempts = attempts;
    if (!err->request_id[0]) snprintf(err->request_id, sizeof(err->request_id), "%s", resp->request_id);
    if (!err->http_status) err->http_status = (int)resp->status;
  }
  asd_aws_credentials_free(&creds);
  free(url);
  return rc;
}

int asd_aws_send(asd_aws_context *ctx, const asd_http_request *req, asd_http_response *resp,
                 asd_aws_error *err) {
  return send_impl(ctx, req, NULL, resp, err);
}

int asd_aws_send_with(asd_aws_context *ctx, const asd_http_request *req,
                      const asd_aws_credentials *creds, asd_http_response *resp, asd_aws_error *err) {
  return send_impl(ctx, req, creds, resp, err);
}

int asd_http_fetch(asd_aws_context *ctx, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t body_len, double timeout,
                   int max_attempts, asd_http_response *resp, asd_aws_error *err) {
  asd_aws_error_clear(err);
  if (max_attempts < 1) max_attempts = 1;
  int attempts = 0;
  for (;;) {
    attempts++;
    asd_http_attempt at;
    memset(&at, 0, sizeof(at));
    at.method = method;
    at.url = url;
    at.headers = headers;
    at.body = body;
    at.body_len = body_len;
    at.timeout = timeout;
    at.connect_timeout = timeout > 0 && timeout < 10 ? timeout : 0;
    at.max_response_bytes = 1 << 20;
    char detail[CURL_ERROR_SIZE + 32];
    asd_http_outcome o = asd_http_transport_perform(ctx->transport, &at, resp, detail, sizeof(detail));
    resp->attempts = attempts;
    int retry = 0;
    if (o != ASD_HTTP_DONE) {
      set_transport_error(err, o, method, url, detail);
      retry = transport_retryable(o);
    } else if (resp->status >= 200 && resp->status < 300) {
      asd_aws_error_clear(err);
      return 0;
    } else {
      asd_aws_parse_error(resp->status, (const char *const *)resp->headers,
                          (const char *)resp->body.data, resp->body.len, err);
      char msg[sizeof(err->message)];
      snprintf(msg, sizeof(msg), "%s", err->message);
      asd_aws_error_set(err, err->kind, "%s %s: %s", method, url, msg);
      retry = resp->status >= 500 || resp->status == 429;
    }
    err->attempts = attempts;
    if (!retry || attempts >= max_attempts) return -1;
    /* Credential endpoints (IMDS, ECS) answer fast or not at all: the same
       policy from a 0.2 s base. */
    if (sleep_cancellable(ctx, asd_backoff_delay(0.2, ctx->cfg.retry_max_backoff, attempts - 1, asd_random_uniform())))
      return -1;
  }
}

