/*
 * http.c: the http://HOST:PORT model, forwarding to a SageMaker-compatible
 * model container.
 *
 * SageMaker runs a user's container behind its async layer and talks to it
 * with two calls: GET /ping (200 = healthy) and POST /invocations (the
 * payload in, the model's answer out).  This model does the same, so that a
 * user's own container (an OSML model, a Flask app...) runs behind the local
 * queue, TTL and failure handling exactly as it would on AWS.
 *
 * Like SageMaker, the runtime sends traffic to a container only once it is
 * healthy: until GET /ping has answered 200, each invocation pings first
 * (bounded by a few seconds) and fails with a clear model error when the
 * container is not up.  Once healthy, invocations go straight through.
 *
 * Each invocation uses its own curl easy handle: handles are not
 * thread-safe, and one per worker would need thread-local state for little
 * gain next to a model's run time.  The request carries the content type,
 * accept and custom attributes of the original invocation (SageMaker passes
 * the custom attributes to the container unchanged), and is bounded by the
 * time left before the invocation timeout.  A 2xx answer is the output; any
 * other status, or no answer, is a model error whose payload is the
 * container's body (or the transport error).
 */
#include "models/model_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define ASD_HTTP_MODEL_MAX_RESPONSE (256u * 1024 * 1024)

typedef struct http_model {
  char invocations_url[512];
  char ping_url[512];
  atomic_int healthy; /* set once GET /ping has answered 200 */
} http_model;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void *ep_model_http_new(const char *url, char *err, size_t err_len) {
  pthread_once(&curl_once, curl_init_once);
  size_t n = strlen(url);
  while (n > 7 && url[n - 1] == '/') n--;
  const char *host = url + 7;
  if (n <= 7 || n > 400 || strchr(host, '?') || strchr(host, '#') || strchr(host, ' ')) {
    snprintf(err, err_len, "model URL '%s' is not http://HOST:PORT", url);
    return NULL;
  }
  http_model *m = calloc(1, sizeof(*m));
  if (!m) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  snprintf(m->invocations_url, sizeof(m->invocations_url), "%.*s/invocations", (int)n, url);
  snprintf(m->ping_url, sizeof(m->ping_url), "%.*s/ping", (int)n, url);
  return m;
}

void ep_model_http_free(void *state) { free(state); }

typedef struct sink {
  asd_buf *buf;
  int overflow;
} sink;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
  sink *s = userdata;
  size_t n = size * nmemb;
  if (s->buf->len + n > ASD_HTTP_MODEL_MAX_RESPONSE || asd_buf_append(s->buf, ptr, n) != 0) {
    s->overflow = 1;
    return 0;
  }
  return n;
}

typedef struct header_state {
  char content_type[128];
} header_state;

static size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata) {
  header_state *h = userdata;
  size_t n = size * nitems;
  if (n > 13 && strncasecmp(buffer, "Content-Type:", 13) == 0) {
    const char *v = buffer + 13;
    size_t len = n - 13;
    while (len && (*v == ' ' || *v == '\t')) v++, len--;
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) len--;
    if (len >= sizeof(h->content_type)) len = sizeof(h->content_type) - 1;
    memcpy(h->content_type, v, len);
    h->content_type[len] = '\0';
  }
  return n;
}

/* Header values come from validated request headers (printable ASCII, no
 * CR/LF), so they can be passed on as they are. */
static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value) {
  if (!value || !*value) return list;
  char line[1200];
  snprintf(line, sizeof(line), "%s: %s", name, value);
  struct curl_slist *l = curl_slist_append(list, line);
  return l ? l : list;
}

/* GET /ping: 0 when the container answers 200, else -1 with a reason. */
static int ping(http_model *m, double timeout_s, char *err, size_t err_len) {
  CURL *curl = curl_easy_init();
  if (!curl) {
    snprintf(err, err_len, "cannot create a curl handle");
    return -1;
  }
  asd_buf body;
  asd_buf_init(&body);
  sink s = {&body, 0};
  char errbuf[CURL_ERROR_SIZE] = "";
  long timeout_ms = (long)(timeout_s * 1000.0);
  if (timeout_ms < 1) timeout_ms = 1;
  curl_easy_setopt(curl, CURLOPT_URL, m->ping_url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  asd_buf_free(&body);
  if (rc != CURLE_OK) {
    snprintf(err, err_len, "%s: %s", m->ping_url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return -1;
  }
  if (status != 200) {
    snprintf(err, err_len, "%s answered HTTP %ld", m->ping_url, status);
    return -1;
  }
  return 0;
}

int ep_model_http_run(void *state, const ep_model_input *in, ep_model_output *out) {
  http_model *m = state;
  if (!atomic_load(&m->healthy)) {
    char err[CURL_ERROR_SIZE + 640];
    double budget = in->timeout_s < 5.0 ? in->timeout_s : 5.0;
    if (ping(m, budget, err, sizeof(err)) != 0)
      return ep_model_fail(out, "http", "the model container is not healthy (GET /ping): %s", err);
    atomic_store(&m->healthy, 1);
  }
  CURL *curl = curl_easy_init();
  if (!curl) return ep_model_fail(out, "http", "cannot create a curl handle");
  struct curl_slist *headers = NULL;
  headers = add_header(headers, "Content-Type", in->content_type ? in->content_type : "application/octet-stream");
  headers = add_header(headers, "Accept", in->accept);
  headers = add_header(headers, "X-Amzn-SageMaker-Custom-Attributes", in->custom_attributes);
  headers = add_header(headers, "X-Amzn-SageMaker-Inference-Id", in->inference_id);
  headers = curl_slist_append(headers, "Expect:");
  sink s = {&out->body, 0};
  header_state hs = {""};
  char errbuf[CURL_ERROR_SIZE] = "";
  long timeout_ms = (long)(in->timeout_s * 1000.0);
  if (timeout_ms < 1) timeout_ms = 1;
  curl_easy_setopt(curl, CURLOPT_URL, m->invocations_url);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, in->data ? (const char *)in->data : "");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in->len);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hs);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    if (s.overflow)
      return ep_model_fail(out, "http", "the model container answered more than %u bytes",
                            ASD_HTTP_MODEL_MAX_RESPONSE);
    return ep_model_fail(out, "http", "%s: %s", m->invocations_url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
  }
  if (status < 200 || status > 299) {
    /* The container's own error body is the most useful failure payload,
     * as on SageMaker; keep it and say what happened in out->error. */
    snprintf(out->error, sizeof(out->error), "http: the model container answered HTTP %ld", status);
    if (out->body.len == 0) asd_buf_append_str(&out->body, out->error);
    snprintf(out->content_type, sizeof(out->content_type), "%s", hs.content_type[0] ? hs.content_type : "text/plain");
    return -1;
  }
  snprintf(out->content_type, sizeof(out->content_type), "%s",
           hs.content_type[0] ? hs.content_type : "application/json");
  return 0;
}
