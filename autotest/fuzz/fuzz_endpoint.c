/*
 * fuzz_endpoint.c: the local endpoint's request routing, S3 handlers and
 * multipart assembly (apps/endpoint/), through its public interface: a real
 * server (ep_server_start) on a loopback port, fed HTTP requests.
 *
 * The endpoint is exposed to anyone who reaches its port, so everything
 * after the socket is attack surface: target parsing and routing, SigV4 and
 * presigned-URL checks, the S3 operations and their XML bodies
 * (DeleteObjects, CompleteMultipartUpload), multipart part bookkeeping and
 * assembly, STS, the stats page.  libmicrohttpd's own HTTP parsing is not
 * the target: the harness writes each request well-formed (request line,
 * headers, its own Content-Length, Connection: close) and fuzzes what is in
 * it.
 *
 * Input: byte 0 selects the server's mode (bit 0: SigV4 required with the
 * default keys, else -no-auth); the rest is a sequence of requests separated
 * by a line "~~~".  Each request is
 *
 *   [SIGN ]METHOD TARGET
 *   Name: value          (any number of header lines)
 *                        (empty line)
 *   body
 *
 * "SIGN " makes the harness sign the request (SigV4, current time, every
 * header given plus host, x-amz-date and x-amz-content-sha256) so that the
 * fuzzer reaches the handlers with authentication on.  An aws-chunked
 * upload (x-amz-content-sha256: STREAMING-... among the headers) is signed
 * with that value, and each "@CHUNKSIG@" in its body becomes the chunk or
 * trailer signature an SDK would write there, chained from the request's,
 * so that the chunk decoder (s3_chunked.c) is reached past its first
 * signature with SigV4 on.  In targets, headers
 * and bodies, "@UPLOAD@" becomes the last UploadId a response returned and
 * "@ETAGn@" (n = 1..9) the n-th ETag header received, so that a multipart
 * upload can be created, filled and completed.
 *
 * One server per mode serves the whole fuzzing process, and every input
 * starts from the same state: an empty store with the bucket "bucket".
 * A server per input (what this harness did first) made libmicrohttpd abort
 * at random ("Failed to remove listen FD from epoll set"): with an epoll
 * thread pool, MHD_quiesce_daemon() and the worker threads both remove the
 * listening socket from the epoll set, unlocked, and the loser panics on
 * ENOENT (libmicrohttpd 0.9.75; see autotest/fuzz/README.md).  That is a
 * defect of the library at shutdown, not of the endpoint's request
 * handling, which is what this target is about; starting the server once
 * also makes an input 5-10 times cheaper.  Between inputs the harness waits
 * until the server has completed every request (ep_server_in_flight), then
 * empties the store through its own API (uploads aborted, objects deleted,
 * other buckets removed); the process's end stops the servers without
 * quiescing them (no request is in progress then).  What survives an input
 * is the STS sessions issued (capped by sts_api.c) and the stats counters,
 * neither of which changes how a later request is routed.
 *
 * Checked: every request gets an HTTP answer (the endpoint never drops a
 * connection it was not told to), after the sequence the server still
 * answers its health check, every request completes (none stays in
 * flight once its answer was read), and the store can be emptied again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sigv4.h"
#include "auth.h"
#include "cpl_string.h"
#include "gdal.h"
#include "s3_api.h"
#include "s3_multipart.h"
#include "s3_store.h"
#include "server.h"
#include "stats.h"
#include "sts_api.h"
#include "fuzz_target.h"

#define ACCESS_KEY "ASDLOCALACCESSKEY"
#define SECRET_KEY "asdlocal-secret-not-for-aws"
#define MAX_REQUESTS 16
#define MAX_ETAGS 9

typedef struct endpoint {
  char dir[64];
  ep_store *store;
  ep_auth *auth;
  ep_sts_api *sts;
  ep_stats *stats;
  ep_s3_api *s3;
  ep_server *srv;
  ep_mpu *mpu; /* the harness's own handle on the uploads folder, to abort leftovers */
  int port;
} endpoint;

/* The process's servers: [0] -no-auth, [1] SigV4 required; started on first use. */
static endpoint g_endpoints[2];
static int g_started[2];

/* What earlier responses taught the harness, for the placeholders. */
typedef struct learnt {
  char upload_id[128];
  char etags[MAX_ETAGS][80];
  int n_etags;
} learnt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  GDALAllRegister();
  /* OpenSSL registers its atexit clean-up when it is first initialised.
   * Done here, before the servers register theirs, it runs after the
   * servers stopped; otherwise the server threads would exit after OpenSSL's
   * clean-up and their per-thread OpenSSL state would leak. */
  OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
  return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int endpoint_start(endpoint *e, int with_auth) {
  memset(e, 0, sizeof *e);
  const char *tmp = getenv("TMPDIR");
  snprintf(e->dir, sizeof e->dir, "%s/asd-fuzz-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
  if (!mkdtemp(e->dir)) return -1;
  char *err = NULL;
  e->store = ep_store_open(e->dir, &err);
  free(err);
  if (!e->store || ep_store_create_bucket(e->store, "bucket") != ASD_STORE_OK) return -1;
  if (with_auth) e->auth = ep_auth_new(ACCESS_KEY, SECRET_KEY, NULL, 900);
  e->sts = ep_sts_api_new(NULL);
  if (e->auth && e->sts) ep_auth_set_issued_keys(e->auth, ep_sts_api_lookup, e->sts);
  e->stats = ep_stats_new();
  e->s3 = ep_s3_api_new(e->store, 64u << 20, "us-east-1");
  ep_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.bind = "127.0.0.1";
  cfg.port = 0;
  cfg.threads = 2;
  cfg.max_body = 64u << 20;
  cfg.store = e->store;
  cfg.s3 = e->s3;
  cfg.stats = e->stats;
  cfg.auth = e->auth;
  cfg.sts = e->sts;
  char serr[256] = "";
  e->srv = ep_server_start(&cfg, serr, sizeof serr);
  if (!e->srv) {
    fprintf(stderr, "fuzz_endpoint: %s\n", serr);
    return -1;
  }
  e->port = ep_server_port(e->srv);
  e->mpu = ep_mpu_open(e->store, &err);
  free(err);
  return e->mpu ? 0 : -1;
}

/* No ep_server_quiesce() here: no request is in progress when the process
 * ends, and quiescing an epoll thread pool is what made libmicrohttpd abort
 * (see the top of this file). */
static void endpoint_stop(endpoint *e) {
  if (e->srv) ep_server_stop(e->srv);
  ep_mpu_close(e->mpu);
  ep_s3_api_free(e->s3);
  ep_stats_free(e->stats);
  ep_auth_free(e->auth);
  ep_sts_api_free(e->sts);
  if (e->store) ep_store_close(e->store);
  if (e->dir[0]) nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void stop_all(void) {
  for (int m = 0; m < 2; m++)
    if (g_started[m]) endpoint_stop(&g_endpoints[m]);
}

/* The server of this mode, started on first use (and stopped at exit). */
static endpoint *endpoint_get(int with_auth) {
  endpoint *e = &g_endpoints[with_auth];
  if (!g_started[with_auth]) {
    if (endpoint_start(e, with_auth) != 0) {
      fprintf(stderr, "fuzz_endpoint: cannot start the endpoint\n");
      abort();
    }
    if (!g_started[0] && !g_started[1]) atexit(stop_all);
    g_started[with_auth] = 1;
  }
  return e;
}

/* Waits until the server completed every request it received.  The client
 * has read each answer to the end, so anything still in flight after 10 s
 * is a request the server answered but never finished: a finding. */
static void wait_idle(const endpoint *e) {
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 10000 && ep_server_in_flight(e->srv) > 0; i++) nanosleep(&ms, NULL);
  FUZZ_CHECK(ep_server_in_flight(e->srv) == 0);
}

/* Deletes every object and upload of one bucket. */
static void empty_bucket(endpoint *e, const char *bucket) {
  ep_mpu_upload *ups = NULL;
  size_t n = 0;
  if (ep_mpu_list_uploads(e->mpu, bucket, NULL, &ups, &n) == ASD_STORE_OK) {
    for (size_t i = 0; i < n; i++) ep_mpu_abort(e->mpu, bucket, ups[i].key, ups[i].upload_id);
    ep_mpu_uploads_free(ups, n);
  }
  char *after = NULL;
  for (;;) {
    ep_store_listing l;
    memset(&l, 0, sizeof l);
    if (ep_store_list(e->store, bucket, NULL, NULL, after, 1000, &l) != ASD_STORE_OK) break;
    for (size_t i = 0; i < l.count; i++) ep_store_delete(e->store, bucket, l.entries[i].key);
    free(after);
    after = l.truncated && l.next_after ? strdup(l.next_after) : NULL;
    ep_store_listing_free(&l);
    if (!after) break;
  }
}

/* Brings the store back to what every input starts from: the bucket
 * "bucket", empty, and nothing else. */
static void endpoint_reset(endpoint *e) {
  wait_idle(e);
  char **buckets = ep_store_list_buckets(e->store);
  for (int i = 0; buckets && buckets[i]; i++) {
    empty_bucket(e, buckets[i]);
    if (strcmp(buckets[i], "bucket") != 0) FUZZ_CHECK(ep_store_delete_bucket(e->store, buckets[i]) == ASD_STORE_OK);
  }
  CSLDestroy(buckets);
  ep_store_status st = ep_store_create_bucket(e->store, "bucket");
  FUZZ_CHECK(st == ASD_STORE_OK || st == ASD_STORE_EXISTS);
  uint64_t objects = 0, bytes = 0;
  ep_store_totals(e->store, &objects, &bytes);
  FUZZ_CHECK(objects == 0);
}

/* Replaces every placeholder in [s, s+n) into out. */
static void substitute(asd_buf *out, const char *s, size_t n, const learnt *l) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '@' && i + 8 <= n && memcmp(s + i, "@UPLOAD@", 8) == 0) {
      asd_buf_append_str(out, l->upload_id);
      i += 7;
    } else if (s[i] == '@' && i + 7 <= n && memcmp(s + i, "@ETAG", 5) == 0 && s[i + 5] >= '1' &&
               s[i + 5] <= '9' && s[i + 6] == '@') {
      int k = s[i + 5] - '1';
      if (k < l->n_etags) asd_buf_append_str(out, l->etags[k]);
      i += 6;
    } else {
      asd_buf_append(out, s + i, 1);
    }
  }
}

typedef struct hdr {
  char *name, *value;
} hdr;

static void hmac_hex(const unsigned char key[32], const asd_buf *msg, char out[65]) {
  unsigned char mac[32];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), key, 32, msg->data, msg->len, mac, &ml);
  asd_hex_encode(mac, 32, out);
}

/*
 * The signed aws-chunked forms: every "@CHUNKSIG@" in the body becomes the
 * next link of the chain from seed, as an SDK computes it: after a chunk
 * header "SIZE;chunk-signature=" the signature of the SIZE bytes that follow
 * the header line (as many as the body has), after "x-amz-trailer-signature:"
 * the trailer's signature over the lines since the zero-size chunk.  Lets the
 * fuzzer reach the decoder past the first signature with SigV4 on.
 */
static void chain_sign(asd_buf *body, const unsigned char key[32], const char *date, const char *scope,
                       const char *seed) {
  static const char mark[] = "@CHUNKSIG@";
  char prev[65];
  snprintf(prev, sizeof prev, "%s", seed);
  asd_buf out, sts;
  asd_buf_init(&out);
  asd_buf_init(&sts);
  const char *b = body->data ? (const char *)body->data : "", *end = b + body->len, *p = b, *trailer_from = NULL;
  while (p < end) {
    const char *m = memmem(p, (size_t)(end - p), mark, sizeof mark - 1);
    if (!m) break;
    asd_buf_append(&out, p, (size_t)(m - p));
    const char *line = m;
    while (line > b && line[-1] != '\n') line--;
    const char *after = m + sizeof mark - 1;
    asd_buf_reset(&sts);
    char hex[65];
    if (strncasecmp(line, "x-amz-trailer-signature:", 24) == 0) {
      const char *from = trailer_from ? trailer_from : line;
      asd_buf lines;
      asd_buf_init(&lines);
      for (const char *q = from; q < line;) { /* "name:value\n" per trailer line, CRLFs dropped */
        const char *e = memchr(q, '\n', (size_t)(line - q));
        size_t l = e ? (size_t)(e - q) : (size_t)(line - q);
        if (l && q[l - 1] == '\r') l--;
        if (l) asd_buf_appendf(&lines, "%.*s\n", (int)l, q);
        q += (e ? (size_t)(e - q) + 1 : (size_t)(line - q));
      }
      asd_sha256_hex(lines.data ? (const char *)lines.data : "", lines.len, hex);
      asd_buf_free(&lines);
      asd_buf_appendf(&sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", date, scope, prev, hex);
    } else {
      unsigned long long size = strtoull(line, NULL, 16);
      const char *data = memchr(after, '\n', (size_t)(end - after));
      data = data ? data + 1 : end;
      size_t n = size < (unsigned long long)(end - data) ? (size_t)size : (size_t)(end - data);
      asd_sha256_hex(data, n, hex);
      asd_buf_appendf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", date, scope, prev,
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex);
      if (size == 0) trailer_from = data;
    }
    hmac_hex(key, &sts, prev);
    asd_buf_append(&out, prev, 64);
    p = after;
  }
  if (p != b) {
    asd_buf_append(&out, p, (size_t)(end - p));
    asd_buf_free(body);
    *body = out;
  } else {
    asd_buf_free(&out);
  }
  asd_buf_free(&sts);
}

/* Signs the request as an SDK would; adds Authorization and friends to h.
 * A STREAMING-... x-amz-content-sha256 among the fuzzer's headers is signed
 * as given (not replaced by the body's hash), and "@CHUNKSIG@" in the body
 * then chained from the signature (chain_sign). */
static void sign(const char *method, const char *target, hdr *h, int *nh, asd_buf *body, char *host,
                 char *amz_date, char *sha_hex, char **authz) {
  char path[2048], *query = NULL;
  snprintf(path, sizeof path, "%s", target);
  char *q = strchr(path, '?');
  if (q) {
    *q = '\0';
    query = q + 1;
  }
  asd_sha256_hex(body->data ? (const char *)body->data : "", body->len, sha_hex);
  asd_sigv4_format_amz_date((double)time(NULL), amz_date);
  int s3 = strncmp(path, "/endpoints/", 11) != 0 && strcmp(path, "/") != 0;
  int streaming = 0;
  for (int i = 0; i < *nh; i++)
    if (strcasecmp(h[i].name, "x-amz-content-sha256") == 0 && strncmp(h[i].value, "STREAMING-", 10) == 0 &&
        strlen(h[i].value) < 65) {
      snprintf(sha_hex, 65, "%s", h[i].value);
      streaming = 1;
    }
  asd_sigv4_header sh[40];
  size_t n = 0;
  for (int i = 0; i < *nh && n < 36; i++) {
    if (streaming && strcasecmp(h[i].name, "x-amz-content-sha256") == 0) continue;
    sh[n].name = h[i].name;
    sh[n].name_len = 0;
    sh[n].value = h[i].value;
    sh[n].value_len = 0;
    n++;
  }
  sh[n++] = (asd_sigv4_header){"host", 0, host, 0};
  sh[n++] = (asd_sigv4_header){"x-amz-date", 0, amz_date, 0};
  if (s3) sh[n++] = (asd_sigv4_header){"x-amz-content-sha256", 0, sha_hex, 0};
  asd_sigv4_params p;
  memset(&p, 0, sizeof p);
  p.method = method;
  p.path = path;
  p.query = query;
  p.headers = sh;
  p.n_headers = n;
  p.payload_hash = sha_hex;
  p.region = "us-east-1";
  p.service = s3 ? "s3" : strcmp(path, "/") == 0 ? "sts" : "sagemaker";
  p.amz_date = amz_date;
  p.access_key_id = ACCESS_KEY;
  p.secret_access_key = SECRET_KEY;
  asd_sigv4_signature sig;
  asd_sigv4_signature_init(&sig);
  if (asd_sigv4_sign(&p, &sig) == 0) {
    *authz = strdup((const char *)sig.authorization.data);
    if (streaming) {
      unsigned char key[32];
      char scope[64];
      asd_sigv4_derive_key(SECRET_KEY, CPLSPrintf("%.8s", amz_date), "us-east-1", "s3", key);
      snprintf(scope, sizeof scope, "%.8s/us-east-1/s3/aws4_request", amz_date);
      chain_sign(body, key, amz_date, scope, sig.signature);
    }
  }
  asd_sigv4_signature_free(&sig);
  /* A STREAMING value the fuzzer gave is sent once, as signed. */
  for (int i = 0; i < *nh; i++)
    if (streaming && strcasecmp(h[i].name, "x-amz-content-sha256") == 0) h[i] = h[--(*nh)], i--;
  h[(*nh)++] = (hdr){"x-amz-date", amz_date};
  if (s3) h[(*nh)++] = (hdr){"x-amz-content-sha256", sha_hex};
  if (*authz) h[(*nh)++] = (hdr){"Authorization", *authz};
}

/* Reads the whole answer (the server closes: Connection: close).  0, or
 * the errno that ended the read. */
static int read_all(int fd, asd_buf *resp) {
  char chunk[16384];
  for (;;) {
    ssize_t r = recv(fd, chunk, sizeof chunk, 0);
    if (r > 0) {
      if (resp->len < (8u << 20)) asd_buf_append(resp, chunk, (size_t)r);
      continue;
    }
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    return errno;
  }
}

static void learn(const char *t, learnt *l) {
  const char *hend = strstr(t, "\r\n\r\n");
  for (const char *p = t; p && (!hend || p < hend);) {
    if (strncasecmp(p, "ETag:", 5) == 0 && l->n_etags < MAX_ETAGS) {
      const char *v = p + 5;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r\n");
      snprintf(l->etags[l->n_etags++], sizeof l->etags[0], "%.*s", (int)n, v);
    }
    p = strstr(p, "\r\n");
    if (p) p += 2;
  }
  const char *u = strstr(t, "<UploadId>");
  if (u) {
    u += 10;
    const char *e = strstr(u, "</UploadId>");
    if (e) snprintf(l->upload_id, sizeof l->upload_id, "%.*s", (int)(e - u), u);
  }
}

/* connect(), resumed when a signal interrupts it: libFuzzer's -timeout
 * alarm fires every second, and an interrupted connect() is not restarted
 * (the connection goes on in the background; poll for its outcome).  0 or
 * the errno. */
static int connect_loopback(int fd, const struct sockaddr_in *a) {
  if (connect(fd, (const struct sockaddr *)a, sizeof *a) == 0) return 0;
  if (errno != EINTR && errno != EINPROGRESS) return errno;
  struct pollfd pf = {fd, POLLOUT, 0};
  int rc;
  while ((rc = poll(&pf, 1, 10000)) < 0 && errno == EINTR) {
  }
  if (rc <= 0) return rc == 0 ? ETIMEDOUT : errno;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* Sends one request; returns the HTTP status (0: no valid answer). */
static int send_request(int port, const char *text, size_t len, learnt *l) {
  asd_buf sub;
  asd_buf_init(&sub);
  substitute(&sub, text, len, l);
  if (!sub.data) asd_buf_append_str(&sub, ""); /* asd_buf keeps a NUL after the bytes */
  char *s = (char *)sub.data;
  int do_sign = strncmp(s, "SIGN ", 5) == 0;
  if (do_sign) s += 5;
  char *nl = strchr(s, '\n');
  char *hdrs = nl ? nl + 1 : s + strlen(s);
  if (nl) *nl = '\0';
  char method[32], target[2048];
  if (sscanf(s, "%31s %2047s", method, target) != 2) {
    asd_buf_free(&sub);
    return -1; /* not a request: skipped */
  }
  hdr h[48];
  int nh = 0;
  char *p = hdrs, *body_start = hdrs + strlen(hdrs);
  while (*p) {
    char *e = strchr(p, '\n');
    if (e == p) {
      body_start = p + 1;
      break;
    }
    if (e) *e = '\0';
    char *colon = strchr(p, ':');
    /* The harness frames the request: the fuzzer does not choose these. */
    if (colon && nh < 32 && strncasecmp(p, "content-length:", 15) != 0 &&
        strncasecmp(p, "transfer-encoding:", 18) != 0 && strncasecmp(p, "connection:", 11) != 0 &&
        strncasecmp(p, "host:", 5) != 0 && !memchr(p, '\r', strlen(p))) {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ') v++;
      if (*p) h[nh++] = (hdr){p, v};
    }
    if (!e) {
      body_start = p + strlen(p);
      break;
    }
    p = e + 1;
  }
  asd_buf body;
  asd_buf_init(&body);
  asd_buf_append(&body, body_start, sub.len - (size_t)(body_start - (char *)sub.data));

  char host[64], amz_date[17], sha_hex[65];
  char *authz = NULL;
  snprintf(host, sizeof host, "127.0.0.1:%d", port);
  if (do_sign) sign(method, target, h, &nh, &body, host, amz_date, sha_hex, &authz);

  asd_buf req;
  asd_buf_init(&req);
  asd_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %zu\r\n", method,
                  target, host, body.len);
  for (int i = 0; i < nh; i++) asd_buf_appendf(&req, "%s: %s\r\n", h[i].name, h[i].value);
  asd_buf_append_str(&req, "\r\n");
  asd_buf_append(&req, body.data, body.len);

  int status = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* Reset on close: thousands of connections must not leave TIME_WAITs. */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int conn_err = fd < 0 ? errno : connect_loopback(fd, &a);
  size_t off = 0;
  int send_err = 0, recv_err = 0;
  size_t received = 0;
  if (!conn_err) {
    while (off < req.len) {
      ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
      if (w <= 0) {
        send_err = errno;
        break;
      }
      off += (size_t)w;
    }
    asd_buf resp;
    asd_buf_init(&resp);
    recv_err = read_all(fd, &resp);
    received = resp.len;
    asd_buf_append(&resp, "", 0);
    const char *r = (const char *)resp.data;
    /* Skip interim 1xx answers (Expect: 100-continue). */
    while (r && strncmp(r, "HTTP/1.1 1", 10) == 0) {
      r = strstr(r, "\r\n\r\n");
      if (r) r += 4;
    }
    if (r && sscanf(r, "HTTP/1.%*d %d", &status) == 1) learn(r, l);
    if (getenv("FUZZ_VERBOSE") && status >= 400 && r && strstr(r, "\r\n\r\n"))
      fprintf(stderr, "  %.600s\n", strstr(r, "\r\n\r\n") + 4);
    asd_buf_free(&resp);
  }
  if (fd >= 0) close(fd);
  /* What the invariant "every request gets an answer" failed on. */
  if (status == 0)
    fprintf(stderr, "fuzz_endpoint: no answer to %s %s: connect %s, sent %zu of %zu bytes (%s), received %zu (%s)\n",
            method, target, conn_err ? strerror(conn_err) : "ok", off, req.len, send_err ? strerror(send_err) : "ok",
            received, recv_err ? strerror(recv_err) : "closed");
  /* FUZZ_VERBOSE=1 shows each exchange, to check what a seed reaches. */
  if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "  %s %s -> %d\n", method, target, status);
  free(authz);
  asd_buf_free(&req);
  asd_buf_free(&body);
  asd_buf_free(&sub);
  return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  endpoint *e = endpoint_get(data[0] & 1);
  endpoint_reset(e);
  learnt l;
  memset(&l, 0, sizeof l);
  const char *p = (const char *)data + 1, *end = (const char *)data + size;
  for (int n = 0; p < end && n < MAX_REQUESTS; n++) {
    const char *sep = memmem(p, (size_t)(end - p), "\n~~~\n", 5);
    size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
    int status = send_request(e->port, p, len, &l);
    FUZZ_CHECK(status != 0);
    p = sep ? sep + 5 : end;
  }
  learnt none;
  memset(&none, 0, sizeof none);
  static const char health[] = "GET /_asd/health\n\n";
  FUZZ_CHECK(send_request(e->port, health, sizeof health - 1, &none) == 200);
  /* Every request of this input completes before the next input starts. */
  wait_idle(e);
  return 0;
}
