/*
 * metrics.c: AsyncMetricsTracker, named series summarised as count, sum,
 * min, max, mean, p50 and p95.
 *
 * The engine records a handful of metrics per job, so at a few hundred jobs
 * per second the tracker sees a few thousand samples per second from several
 * threads.  One mutex per tracker is enough for that rate, and a short array
 * searched by name beats a hash table for the twenty or so names in use.
 *
 * Percentiles come from a uniform reservoir (Vitter's algorithm R) of at
 * most ASD_METRICS_RESERVOIR samples per metric: exact while the series is
 * shorter than that, an unbiased sample beyond, and memory bounded whatever
 * the number of jobs, which matters for a run of millions of tiles.  The
 * reservoir's random source is seeded per metric so results are repeatable.
 */
#include "asyncdetect/asd_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "asyncdetect/asd_common.h"

typedef struct metric {
  char *name;
  long long count;
  double sum, min, max;
  double *samples;
  int n_samples, cap_samples;
  asd_rng rng;
} metric;

struct asd_metrics {
  pthread_mutex_t mu;
  metric *items;
  int n, cap;
};

asd_metrics *asd_metrics_new(void) {
  asd_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->mu, NULL);
  return m;
}

static void clear_items(asd_metrics *m) {
  for (int i = 0; i < m->n; i++) {
    free(m->items[i].name);
    free(m->items[i].samples);
  }
  free(m->items);
  m->items = NULL;
  m->n = m->cap = 0;
}

void asd_metrics_free(asd_metrics *m) {
  if (!m) return;
  clear_items(m);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void asd_metrics_reset(asd_metrics *m) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  clear_items(m);
  pthread_mutex_unlock(&m->mu);
}

/* Caller holds the lock.  Returns NULL on OOM (the sample is then lost). */
static metric *find_or_add(asd_metrics *m, const char *name, int create) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->items[i].name, name) == 0) return &m->items[i];
  if (!create) return NULL;
  if (m->n == m->cap) {
    int cap = m->cap ? m->cap * 2 : 16;
    metric *p = realloc(m->items, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    m->items = p;
    m->cap = cap;
  }
  metric *x = &m->items[m->n];
  memset(x, 0, sizeof *x);
  x->name = strdup(name);
  if (!x->name) return NULL;
  uint64_t seed = 1469598103934665603ULL;
  for (const char *s = name; *s; s++) seed = (seed ^ (unsigned char)*s) * 1099511628211ULL;
  asd_rng_seed(&x->rng, seed);
  m->n++;
  return x;
}

void asd_metrics_record(asd_metrics *m, const char *name, double value) {
  if (!m || !name || isnan(value)) return;
  pthread_mutex_lock(&m->mu);
  metric *x = find_or_add(m, name, 1);
  if (x) {
    if (x->count == 0 || value < x->min) x->min = value;
    if (x->count == 0 || value > x->max) x->max = value;
    x->count++;
    x->sum += value;
    if (x->n_samples < ASD_METRICS_RESERVOIR) {
      if (x->n_samples == x->cap_samples) {
        int cap = x->cap_samples ? x->cap_samples * 2 : 64;
        if (cap > ASD_METRICS_RESERVOIR) cap = ASD_METRICS_RESERVOIR;
        double *p = realloc(x->samples, (size_t)cap * sizeof *p);
        if (p) {
          x->samples = p;
          x->cap_samples = cap;
        }
      }
      if (x->n_samples < x->cap_samples) x->samples[x->n_samples++] = value;
    } else {
      /* Algorithm R: the k-th sample replaces a random slot with
       * probability RESERVOIR / k. */
      uint64_t j = asd_rng_next(&x->rng) % (uint64_t)x->count;
      if (j < ASD_METRICS_RESERVOIR) x->samples[j] = value;
    }
  }
  pthread_mutex_unlock(&m->mu);
}

void asd_metrics_incr(asd_metrics *m, const char *name, double n) { asd_metrics_record(m, name, n); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile on a sorted array. */
static double percentile(const double *v, int n, double p) {
  if (n <= 0) return 0;
  int rank = (int)ceil(p / 100.0 * n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1];
}

/* Caller holds the lock. */
static void summarise(const metric *x, asd_metric_summary *out) {
  out->count = x->count;
  out->sum = x->sum;
  out->min = x->min;
  out->max = x->max;
  out->mean = x->count ? x->sum / (double)x->count : 0;
  out->p50 = out->p95 = 0;
  if (x->n_samples > 0) {
    double *tmp = malloc((size_t)x->n_samples * sizeof *tmp);
    if (tmp) {
      memcpy(tmp, x->samples, (size_t)x->n_samples * sizeof *tmp);
      qsort(tmp, (size_t)x->n_samples, sizeof *tmp, cmp_double);
      out->p50 = percentile(tmp, x->n_samples, 50);
      out->p95 = percentile(tmp, x->n_samples, 95);
      free(tmp);
    }
  }
}

int asd_metrics_get(asd_metrics *m, const char *name, asd_metric_summary *out) {
  if (!m || !name) return -1;
  int rc = -1;
  pthread_mutex_lock(&m->mu);
  metric *x = find_or_add(m, name, 0);
  if (x) {
    if (out) summarise(x, out);
    rc = 0;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

double asd_metrics_sum(asd_metrics *m, const char *name) {
  if (!m || !name) return 0;
  double s = 0;
  pthread_mutex_lock(&m->mu);
  metric *x = find_or_add(m, name, 0);
  if (x) s = x->sum;
  pthread_mutex_unlock(&m->mu);
  return s;
}

static int cmp_metric_name(const void *a, const void *b) {
  return strcmp((*(const metric *const *)a)->name, (*(const metric *const *)b)->name);
}

char *asd_metrics_to_json(asd_metrics *m) {
  if (!m) return NULL;
  asd_buf b;
  asd_buf_init(&b);
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  const metric **order = malloc((size_t)(m->n ? m->n : 1) * sizeof *order);
  if (!order) {
    pthread_mutex_unlock(&m->mu);
    return NULL;
  }
  for (int i = 0; i < m->n; i++) order[i] = &m->items[i];
  qsort(order, (size_t)m->n, sizeof *order, cmp_metric_name);
  rc |= asd_buf_append_str(&b, "{");
  for (int i = 0; i < m->n && rc == 0; i++) {
    asd_metric_summary s;
    summarise(order[i], &s);
    /* Names are the engine's own identifiers or caller-chosen; escape the
     * two characters that would break the JSON. */
    rc |= asd_buf_append_str(&b, i ? ",\"" : "\"");
    for (const char *p = order[i]->name; *p; p++) {
      if (*p == '"' || *p == '\\') rc |= asd_buf_append(&b, "\\", 1);
      if ((unsigned char)*p >= 0x20) rc |= asd_buf_append(&b, p, 1);
    }
    rc |= asd_buf_appendf(&b,
                          "\":{\"count\":%lld,\"sum\":%.9g,\"min\":%.9g,\"max\":%.9g,"
                          "\"mean\":%.9g,\"p50\":%.9g,\"p95\":%.9g}",
                          s.count, s.sum, s.min, s.max, s.mean, s.p50, s.p95);
  }
  rc |= asd_buf_append_str(&b, "}");
  pthread_mutex_unlock(&m->mu);
  free(order);
  if (rc) {
    asd_buf_free(&b);
    return NULL;
  }
  return (char *)asd_buf_take(&b, NULL);
}
