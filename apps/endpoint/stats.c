/*
 * stats.c: per-operation request counters and latency percentiles.
 *
 * Operations are few (a dozen S3 calls, two runtime calls, the stats page),
 * so they live in a small array searched by pointer first and by name second;
 * statuses per operation are a small array too.  Latencies go into a
 * fixed-size ring per operation (the last 4096 requests), which bounds memory
 * whatever the run length and gives recent percentiles, which is what a
 * benchmark or a test wants to see.  One mutex guards everything: recording
 * is a few dozen instructions, far cheaper than the request it describes.
 * Connections accepted are counted too: requests per connection is what
 * shows whether clients keep connections alive (and so how many TCP and TLS
 * handshakes they pay).
 */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "asyncdetect/asd_common.h"

#define MAX_OPS 48
#define MAX_STATUS 16
#define RING 4096

typedef struct op_stats {
  const char *name;
  uint64_t count;
  int status[MAX_STATUS];
  uint64_t status_count[MAX_STATUS];
  int n_status;
  float ring[RING]; /* milliseconds */
  size_t ring_n, ring_pos;
} op_stats;

struct ep_stats {
  pthread_mutex_t mu;
  double t0;
  uint64_t total, bytes_in, bytes_out, dropped;
  uint64_t connections; /* TCP connections accepted */
  uint64_t tls_resumed; /* of which closed after a resumed TLS handshake */
  op_stats *ops[MAX_OPS];
  int n_ops;
};

ep_stats *ep_stats_new(void) {
  ep_stats *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->t0 = asd_time_monotonic();
  return s;
}

void ep_stats_free(ep_stats *s) {
  if (!s) return;
  for (int i = 0; i < s->n_ops; i++) free(s->ops[i]);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static op_stats *find_op(ep_stats *s, const char *name) {
  for (int i = 0; i < s->n_ops; i++)
    if (s->ops[i]->name == name || strcmp(s->ops[i]->name, name) == 0) return s->ops[i];
  if (s->n_ops == MAX_OPS) return NULL;
  op_stats *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->name = name;
  s->ops[s->n_ops++] = o;
  return o;
}

void ep_stats_record(ep_stats *s, const char *operation, int status, uint64_t bytes_in,
                         uint64_t bytes_out, double seconds) {
  if (!s) return;
  if (!operation) operation = "Unknown";
  pthread_mutex_lock(&s->mu);
  s->total++;
  s->bytes_in += bytes_in;
  s->bytes_out += bytes_out;
  op_stats *o = find_op(s, operation);
  if (o) {
    o->count++;
    int i;
    for (i = 0; i < o->n_status; i++)
      if (o->status[i] == status) break;
    if (i == o->n_status && o->n_status < MAX_STATUS) {
      o->status[i] = status;
      o->status_count[i] = 0;
      o->n_status++;
    }
    if (i < o->n_status) o->status_count[i]++;
    o->ring[o->ring_pos] = (float)(seconds * 1000.0);
    o->ring_pos = (o->ring_pos + 1) % RING;
    if (o->ring_n < RING) o->ring_n++;
  }
  pthread_mutex_unlock(&s->mu);
}

void ep_stats_dropped(ep_stats *s, const char *operation) {
  if (!s) return;
  (void)operation;
  pthread_mutex_lock(&s->mu);
  s->dropped++;
  pthread_mutex_unlock(&s->mu);
}

void ep_stats_connection(ep_stats *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->connections++;
  pthread_mutex_unlock(&s->mu);
}

void ep_stats_tls_resumed(ep_stats *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->tls_resumed++;
  pthread_mutex_unlock(&s->mu);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static double pct(const float *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  if (i >= n) i = n - 1;
  return sorted[i];
}

struct json_object *ep_stats_json(ep_stats *s) {
  json_object *root = json_object_new_object();
  if (!s) return root;
  float *tmp = malloc(sizeof(float) * RING);
  pthread_mutex_lock(&s->mu);
  json_object_object_add(root, "uptime_s", json_object_new_double(asd_time_monotonic() - s->t0));
  json_object_object_add(root, "requests_total", json_object_new_int64((int64_t)s->total));
  json_object_object_add(root, "bytes_in", json_object_new_int64((int64_t)s->bytes_in));
  json_object_object_add(root, "bytes_out", json_object_new_int64((int64_t)s->bytes_out));
  json_object_object_add(root, "dropped", json_object_new_int64((int64_t)s->dropped));
  json_object_object_add(root, "connections", json_object_new_int64((int64_t)s->connections));
  json_object_object_add(root, "tls_resumed", json_object_new_int64((int64_t)s->tls_resumed));
  json_object *reqs = json_object_new_object();
  for (int i = 0; i < s->n_ops; i++) {
    op_stats *o = s->ops[i];
    json_object *jo = json_object_new_object();
    json_object_object_add(jo, "count", json_object_new_int64((int64_t)o->count));
    json_object *bs = json_object_new_object();
    for (int k = 0; k < o->n_status; k++) {
      char code[16];
      snprintf(code, sizeof code, "%d", o->status[k]);
      json_object_object_add(bs, code, json_object_new_int64((int64_t)o->status_count[k]));
    }
    json_object_object_add(jo, "by_status", bs);
    if (tmp && o->ring_n) {
      memcpy(tmp, o->ring, o->ring_n * sizeof(float));
      qsort(tmp, o->ring_n, sizeof(float), cmp_float);
      json_object *lat = json_object_new_object();
      json_object_object_add(lat, "p50", json_object_new_double(pct(tmp, o->ring_n, 0.50)));
      json_object_object_add(lat, "p90", json_object_new_double(pct(tmp, o->ring_n, 0.90)));
      json_object_object_add(lat, "p99", json_object_new_double(pct(tmp, o->ring_n, 0.99)));
      json_object_object_add(lat, "max", json_object_new_double(tmp[o->ring_n - 1]));
      json_object_object_add(jo, "latency_ms", lat);
    }
    json_object_object_add(reqs, o->name, jo);
  }
  json_object_object_add(root, "requests", reqs);
  pthread_mutex_unlock(&s->mu);
  free(tmp);
  return root;
}
