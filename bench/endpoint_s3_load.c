/*
 * endpoint_s3_load.c: a SigV4-signing S3 load client for the local endpoint.
 *
 * wrk cannot sign requests, so this client measures the server with
 * authentication on, the way SDK clients use it: N keep-alive connections
 * (one libcurl easy handle each, all driven by one curl multi loop), each
 * request signed with the project's own SigV4 signer (asd_sigv4_sign, with
 * its signing-key cache) with a fresh x-amz-date.  The PUT body is the same
 * 64 KiB for every request, so its SHA-256 is computed once (a real client
 * hashes each body; that cost is on the client, not the server).
 *
 *   endpoint_s3_load URL/bucket/key HEAD|PUT CONCURRENCY SECONDS BODY_BYTES SIGN(0|1)
 *
 * Prints: requests, errors, seconds, requests/s, p50/p99 latency (ms).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sigv4.h"

typedef struct slot {
  CURL *h;
  struct curl_slist *hdrs;
  double t0;
} slot;

static const char *g_body;
static size_t g_body_len;
static char g_body_sha[65];
static double *g_lat;
static size_t g_nlat, g_caplat;

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void prepare(slot *s, const char *url, const char *host, const char *path, const char *method, int sign,
                    asd_sigv4_key_cache *cache) {
  curl_slist_free_all(s->hdrs);
  s->hdrs = NULL;
  s->hdrs = curl_slist_append(s->hdrs, "Expect:");
  if (sign) {
    char amz[17];
    asd_sigv4_format_amz_date(asd_time_wall(), amz);
    const char *hash = strcmp(method, "PUT") == 0 ? g_body_sha : ASD_SIGV4_EMPTY_SHA256;
    asd_sigv4_header h[3] = {{"host", 0, host, 0}, {"x-amz-content-sha256", 0, hash, 0}, {"x-amz-date", 0, amz, 0}};
    unsigned char key[32];
    char date8[9];
    memcpy(date8, amz, 8);
    date8[8] = 0;
    asd_sigv4_key_cache_get(cache, "ASDLOCALACCESSKEY", "asdlocal-secret-not-for-aws", date8, "us-east-1", "s3",
                            key);
    asd_sigv4_params p;
    memset(&p, 0, sizeof p);
    p.method = method;
    p.path = path;
    p.headers = h;
    p.n_headers = 3;
    p.payload_hash = hash;
    p.region = "us-east-1";
    p.service = "s3";
    p.amz_date = amz;
    p.access_key_id = "ASDLOCALACCESSKEY";
    p.signing_key = key;
    asd_sigv4_signature sig;
    asd_sigv4_signature_init(&sig);
    if (asd_sigv4_sign(&p, &sig) == 0) {
      char line[1024];
      snprintf(line, sizeof line, "Authorization: %s", (const char *)sig.authorization.data);
      s->hdrs = curl_slist_append(s->hdrs, line);
      snprintf(line, sizeof line, "x-amz-date: %s", amz);
      s->hdrs = curl_slist_append(s->hdrs, line);
      snprintf(line, sizeof line, "x-amz-content-sha256: %s", hash);
      s->hdrs = curl_slist_append(s->hdrs, line);
    }
    asd_sigv4_signature_free(&sig);
  }
  curl_easy_setopt(s->h, CURLOPT_URL, url);
  curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
  curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(s->h, CURLOPT_TIMEOUT, 30L);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(s->h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(s->h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, g_body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)g_body_len);
  }
  s->t0 = asd_time_monotonic();
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s URL/bucket/key HEAD|PUT CONCURRENCY SECONDS BODY_BYTES SIGN(0|1)\n", argv[0]);
    return 2;
  }
  const char *url = argv[1], *method = argv[2];
  int conc = atoi(argv[3]);
  double secs = atof(argv[4]);
  g_body_len = (size_t)atol(argv[5]);
  int sign = atoi(argv[6]);
  if (conc < 1 || secs <= 0 || strncmp(url, "http://", 7) != 0) return 2;
  const char *hs = url + 7, *slash = strchr(hs, '/');
  if (!slash) return 2;
  char host[256];
  snprintf(host, sizeof host, "%.*s", (int)(slash - hs), hs);
  const char *path = slash;
  char *body = malloc(g_body_len + 1);
  for (size_t i = 0; i < g_body_len; i++) body[i] = (char)('a' + i % 26);
  g_body = body;
  asd_sha256_hex(body, g_body_len, g_body_sha);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  asd_sigv4_key_cache *cache = asd_sigv4_key_cache_new();
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conc);
  slot *slots = calloc((size_t)conc, sizeof *slots);
  for (int i = 0; i < conc; i++) {
    slots[i].h = curl_easy_init();
    curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
    prepare(&slots[i], url, host, path, method, sign, cache);
    curl_multi_add_handle(m, slots[i].h);
  }
  long done = 0, errors = 0;
  double t_start = asd_time_monotonic(), t_end = t_start + secs;
  int running = conc, active = conc;
  while (active > 0) {
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      slot *s = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
      long code = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      double now = asd_time_monotonic();
      if (msg->data.result == CURLE_OK && code == 200) {
        done++;
        if (g_nlat == g_caplat) {
          g_caplat = g_caplat ? g_caplat * 2 : 65536;
          g_lat = realloc(g_lat, g_caplat * sizeof *g_lat);
        }
        g_lat[g_nlat++] = (now - s->t0) * 1000.0;
      } else {
        errors++;
      }
      curl_multi_remove_handle(m, msg->easy_handle);
      if (now < t_end) {
        prepare(s, url, host, path, method, sign, cache);
        curl_multi_add_handle(m, msg->easy_handle);
      } else {
        active--;
      }
    }
    curl_multi_perform(m, &running);
    if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double elapsed = asd_time_monotonic() - t_start;
  qsort(g_lat, g_nlat, sizeof *g_lat, cmpd);
  double p50 = g_nlat ? g_lat[g_nlat / 2] : 0, p99 = g_nlat ? g_lat[(size_t)(g_nlat * 0.99)] : 0;
  printf("method=%s concurrency=%d signed=%d requests=%ld errors=%ld seconds=%.2f req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n",
         method, conc, sign, done, errors, elapsed, done / elapsed, p50, p99);
  for (int i = 0; i < conc; i++) {
    curl_easy_cleanup(slots[i].h);
    curl_slist_free_all(slots[i].hdrs);
  }
  free(slots);
  curl_multi_cleanup(m);
  asd_sigv4_key_cache_free(cache);
  free(body);
  free(g_lat);
  curl_global_cleanup();
  return errors > done ? 1 : 0;
}
