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
 *
 * A timing recorded as a span (start and end on the monotonic clock, not
 * just its length) also keeps the union of its spans: how long at least one
 * of them was in progress, which the sum cannot tell when they overlap.  The
 * upload spans give the time the uplink carried a tile, so that a run whose
 * link was never idle is seen as uplink-bound however many workers shared
 * it (engine/bound.c).  Spans end in about the order they are recorded, so
 * only the most recent SPAN_SEGMENTS disjoint segments are kept open; the
 * oldest is folded into the total when a new one needs room.  A span that
 * starts before a folded segment ended (one upload outlasting 32 gaps of
 * the link) counts its overlap twice; the union is capped at last - first.
 */
#include "asyncdetect/asd_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "asyncdetect/asd_common.h"

/* The union of a series' spans (asd_metrics_record_span): the recent part
 * as disjoint segments sorted by start, the older part folded into done. */
#define SPAN_SEGMENTS 32

typedef struct span_union {
  double seg[SPAN_SEGMENTS][2];
  int n;
  double done, first, last;
} span_union;

typedef struct metric {
  char *name;
  long long count;
  double sum, min, max;
  double *samples;
  int n_samples, cap_samples;
  asd_rng rng;
  span_union *spans; /* NULL until a span is recorded */
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
    free(m->items[i].spans);
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

/* Merges [a, b] into u's segments, kept disjoint and sorted by start. */
static void span_add(span_union *u, double a, double b) {
  if (u->n == 0 && u->done == 0) {
    u->first = a;
    u->last = b;
  }
  if (a < u->first) u->first = a;
  if (b > u->last) u->last = b;
  int i = 0;
  while (i < u->n && u->seg[i][1] < a) i++; /* segments wholly before [a, b] */
  int j = i;
  while (j < u->n && u->seg[j][0] <= b) { /* segments overlapping it: absorbed */
    if (u->seg[j][0] < a) a = u->seg[j][0];
    if (u->seg[j][1] > b) b = u->seg[j][1];
    j++;
  }
  if (j == i && u->n == SPAN_SEGMENTS) { /* no room: fold the oldest segment */
    u->done += u->seg[0][1] - u->seg[0][0];
    memmove(&u->seg[0], &u->seg[1], (size_t)(u->n - 1) * sizeof u->seg[0]);
    u->n--;
    if (i > 0) i--;
    j = i;
  }
  /* Replace seg[i..j) by [a, b]. */
  memmove(&u->seg[i + 1], &u->seg[j], (size_t)(u->n - j) * sizeof u->seg[0]);
  u->n += 1 - (j - i);
  u->seg[i][0] = a;
  u->seg[i][1] = b;
}

void asd_metrics_record_span(asd_metrics *m, const char *name, double t_start, double t_end) {
  if (!m || !name || isnan(t_start) || isnan(t_end)) return;
  if (t_end < t_start) t_end = t_start;
  asd_metrics_record(m, name, t_end - t_start);
  pthread_mutex_lock(&m->mu);
  metric *x = find_or_add(m, name, 1);
  if (x && !x->spans) x->spans = calloc(1, sizeof *x->spans);
  if (x && x->spans) span_add(x->spans, t_start, t_end);
  pthread_mutex_unlock(&m->mu);
}

int asd_metrics_get_span(asd_metrics *m, const char *name, asd_metric_span *out) {
  if (!m || !name) return -1;
  int rc = -1;
  pthread_mutex_lock(&m->mu);
  metric *x = find_or_add(m, name, 0);
  if (x && x->spans) {
    const span_union *u = x->spans;
    double covered = u->done;
    for (int i = 0; i < u->n; i++) covered += u->seg[i][1] - u->seg[i][0];
    if (covered > u->last - u->first) covered = u->last - u->first;
    if (out) {
      out->covered = covered;
      out->first = u->first;
      out->last = u->last;
    }
    rc = 0;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

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
