/*
 * endpoint_invoke_client.c: load generator for the local endpoint's
 * InvokeEndpointAsync (used by bench/endpoint_invocations.sh).
 *
 *   endpoint_invoke_client URL ENDPOINT INPUT_S3_URI COUNT CONCURRENCY [wait]
 *
 * Sends COUNT unsigned async invocations (the server runs with -no-auth)
 * over CONCURRENCY keep-alive connections with libcurl's multi interface,
 * then, with "wait", polls GET /_asd/stats until the runtime reports COUNT
 * finished jobs (completed + failed).  Prints one JSON line: submission and
 * completion times and rates.  Timing starts at the first request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

typedef struct sink {
  char *data;
  size_t len;
} sink;

static size_t keep(char *p, size_t s, size_t n, void *u) {
  sink *k = u;
  char *d = realloc(k->data, k->len + s * n + 1);
  if (!d) return 0;
  memcpy(d + k->len, p, s * n);
  k->data = d;
  k->len += s * n;
  d[k->len] = '\0';
  return s * n;
}

static long long finished_jobs(const char *url) {
  char u[512];
  snprintf(u, sizeof(u), "%s/_asd/stats", url);
  CURL *c = curl_easy_init();
  sink k = {NULL, 0};
  curl_easy_setopt(c, CURLOPT_URL, u);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
  long long done = -1;
  if (curl_easy_perform(c) == CURLE_OK && k.data) {
    json_object *root = json_tokener_parse(k.data), *rt, *tot, *v;
    if (root && json_object_object_get_ex(root, "runtime", &rt) && json_object_object_get_ex(rt, "totals", &tot)) {
      done = 0;
      if (json_object_object_get_ex(tot, "completed", &v)) done += json_object_get_int64(v);
      if (json_object_object_get_ex(tot, "failed", &v)) done += json_object_get_int64(v);
    }
    json_object_put(root);
  }
  free(k.data);
  curl_easy_cleanup(c);
  return done;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s URL ENDPOINT INPUT_S3_URI COUNT CONCURRENCY [wait]\n", argv[0]);
    return 2;
  }
  const char *url = argv[1], *endpoint = argv[2], *input = argv[3];
  long count = atol(argv[4]), conc = atol(argv[5]);
  int wait = argc > 6 && strcmp(argv[6], "wait") == 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  long long base = wait ? finished_jobs(url) : 0;
  char target[512], hdr[600];
  snprintf(target, sizeof(target), "%s/endpoints/%s/async-invocations", url, endpoint);
  snprintf(hdr, sizeof(hdr), "X-Amzn-SageMaker-InputLocation: %s", input);
  struct curl_slist *hl = curl_slist_append(NULL, hdr);
  hl = curl_slist_append(hl, "Expect:");
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
  CURL **handles = calloc((size_t)conc, sizeof(CURL *));
  long sent = 0, ok = 0, bad = 0;
  double t0 = now();
  for (long i = 0; i < conc && sent < count; i++, sent++) {
    handles[i] = curl_easy_init();
    curl_easy_setopt(handles[i], CURLOPT_URL, target);
    curl_easy_setopt(handles[i], CURLOPT_POST, 1L);
    curl_easy_setopt(handles[i], CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(handles[i], CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(handles[i], CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(handles[i], CURLOPT_WRITEFUNCTION, discard);
    curl_multi_add_handle(m, handles[i]);
  }
  int running = 1;
  while (running || sent < count) {
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *h = msg->easy_handle;
      long status = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result == CURLE_OK && status == 202) ok++;
      else bad++;
      curl_multi_remove_handle(m, h);
      if (sent < count) {
        sent++;
        curl_multi_add_handle(m, h); /* same handle: keeps its connection */
        running = 1;
      }
    }
    if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double t1 = now();
  double t2 = t1;
  long long finished = 0;
  if (wait) {
    for (;;) {
      finished = finished_jobs(url) - base;
      t2 = now();
      if (finished >= ok || t2 - t1 > 600) break;
      usleep(2000);
    }
  }
  printf("{\"sent\":%ld,\"accepted\":%ld,\"rejected\":%ld,\"submit_s\":%.3f,\"submit_per_s\":%.0f", sent, ok, bad,
         t1 - t0, (double)ok / (t1 - t0));
  if (wait)
    printf(",\"finished\":%lld,\"complete_s\":%.3f,\"completed_per_s\":%.0f", finished, t2 - t0,
           (double)finished / (t2 - t0));
  printf("}\n");
  for (long i = 0; i < conc; i++)
    if (handles[i]) curl_easy_cleanup(handles[i]);
  free(handles);
  curl_multi_cleanup(m);
  curl_slist_free_all(hl);
  curl_global_cleanup();
  return bad ? 1 : 0;
}
