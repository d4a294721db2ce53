/*
 * faults.c: reproducible fault injection (see faults.h for what each fault
 * means and who applies it).
 *
 * Reproducibility is the point of a seed, and a shared random generator
 * would not give it: the server runs many threads, and the order in which
 * they draw from one generator changes from run to run.  Instead each kind
 * of decision (S3 request, invocation, job) has its own atomic counter, and
 * the n-th decision of a kind is drawn from splitmix64(seed, kind, n), a
 * pure function.  A test that sends its S3 requests one by one therefore
 * sees the same faults on every run, and concurrent traffic only permutes
 * which request receives which decision.
 *
 * One uniform draw decides between the faults of a kind by cumulative
 * probability, so "s3_503=0.2,s3_500=0.1" gives 20% 503s and 10% 500s and
 * the probabilities of a kind must not add up to more than 1.  The
 * invocation faults are tried in a fixed order (the older keys first), so
 * that adding keys never changed what an existing seed and spec produce.
 *
 * The invocation faults named after SageMaker's errors are answered by the
 * runtime (runtime.c) with the status, x-amzn-ErrorType and JSON body of the
 * real error; accept_then_5xx and accept_then_drop are decided before the
 * request is validated but applied only once it was accepted and queued.
 */
#include "faults.h"

#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_string.h>
#include <json.h>

enum { KIND_S3 = 1, KIND_INVOKE = 2, KIND_JOB = 3 };

enum {
  C_S3_503,
  C_S3_500,
  C_S3_DROP,
  C_INV_THROTTLE,
  C_INV_500,
  C_INV_503,
  C_INV_DROP,
  C_MODEL_ERROR,
  C_HANG,
  C_INV_VALIDATION,
  C_INV_NOT_READY,
  C_INV_DEPENDENCY,
  C_ACCEPT_5XX,
  C_ACCEPT_DROP,
  C_COUNT
};

struct ep_faults {
  ep_fault_spec spec;
  atomic_uint_fast64_t seq[4];
  atomic_uint_fast64_t counts[C_COUNT];
};

void ep_fault_spec_init(ep_fault_spec *spec) {
  memset(spec, 0, sizeof(*spec));
  spec->seed = 1;
}

static int parse_probability(const char *key, const char *value, double *out, char *err,
                             size_t err_len) {
  char *end = NULL;
  errno = 0;
  double v = strtod(value, &end);
  if (errno != 0 || end == value || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
    snprintf(err, err_len, "-faults: %s=%s is not a probability in [0,1]", key, value);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_uint(const char *key, const char *value, unsigned long long max,
                      unsigned long long *out, char *err, size_t err_len) {
  char *end = NULL;
  errno = 0;
  if (value[0] == '-' || value[0] == '\0') goto bad;
  unsigned long long v = strtoull(value, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) goto bad;
  *out = v;
  return 0;
bad:
  snprintf(err, err_len, "-faults: %s=%s is not a non-negative integer <= %llu", key, value, max);
  return -1;
}

/* The probability a key sets, or NULL for a key that is not a probability.
 * ThrottlingException is invoke_throttle under its AWS name. */
static double *probability_field(ep_fault_spec *spec, const char *key) {
  const struct {
    const char *key;
    double *field;
  } keys[] = {
      {"s3_503", &spec->s3_503},
      {"s3_500", &spec->s3_500},
      {"invoke_throttle", &spec->invoke_throttle},
      {"ThrottlingException", &spec->invoke_throttle},
      {"invoke_5xx", &spec->invoke_5xx},
      {"drop", &spec->drop},
      {"model_error", &spec->model_error},
      {"hang", &spec->hang},
      {"ValidationError", &spec->validation},
      {"ModelNotReadyException", &spec->not_ready},
      {"ServiceUnavailable", &spec->unavailable},
      {"InternalFailure", &spec->internal},
      {"InternalDependencyException", &spec->dependency},
      {"accept_then_5xx", &spec->accept_then_5xx},
      {"accept_then_drop", &spec->accept_then_drop},
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strcmp(key, keys[i].key) == 0) return keys[i].field;
  return NULL;
}

/* The invocation faults other than drop, which one draw decides between. */
static double invoke_sum(const ep_fault_spec *s) {
  return s->invoke_throttle + s->invoke_5xx + s->validation + s->not_ready + s->unavailable + s->internal +
         s->dependency + s->accept_then_5xx + s->accept_then_drop;
}

int ep_fault_spec_parse(const char *text, ep_fault_spec *spec, char *err, size_t err_len) {
  ep_fault_spec_init(spec);
  if (err_len) err[0] = '\0';
  if (!text) return 0;
  char **items = CSLTokenizeString2(text, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
  int rc = 0;
  for (int i = 0; items && items[i] && rc == 0; i++) {
    const char *item = items[i];
    if (item[0] == '\0') continue;
    const char *eq = strchr(item, '=');
    if (!eq) {
      snprintf(err, err_len, "-faults: '%s' is not key=value", item);
      rc = -1;
      break;
    }
    char key[64];
    size_t klen = (size_t)(eq - item);
    if (klen == 0 || klen >= sizeof(key)) {
      snprintf(err, err_len, "-faults: bad key in '%s'", item);
      rc = -1;
      break;
    }
    memcpy(key, item, klen);
    key[klen] = '\0';
    const char *value = eq + 1;
    unsigned long long u = 0;
    double *prob = probability_field(spec, key);
    if (prob) rc = parse_probability(key, value, prob, err, err_len);
    else if (strcmp(key, "slow_consumer_ms") == 0) {
      rc = parse_uint(key, value, 600000, &u, err, err_len);
      if (rc == 0) spec->slow_consumer_ms = (int)u;
    } else if (strcmp(key, "seed") == 0) {
      rc = parse_uint(key, value, UINT64_MAX, &u, err, err_len);
      if (rc == 0) spec->seed = (uint64_t)u;
    } else {
      snprintf(err, err_len,
               "-faults: unknown key '%s' (expected s3_503, s3_500, invoke_throttle, invoke_5xx, "
               "drop, model_error, hang, ValidationError, ModelNotReadyException, ThrottlingException, "
               "ServiceUnavailable, InternalFailure, InternalDependencyException, accept_then_5xx, "
               "accept_then_drop, slow_consumer_ms, seed)",
               key);
      rc = -1;
    }
  }
  CSLDestroy(items);
  if (rc != 0) return -1;
  /* One draw decides between the faults of a kind, so their sum is a
   * probability too. */
  if (spec->s3_503 + spec->s3_500 + spec->drop > 1.0 + 1e-9) {
    snprintf(err, err_len, "-faults: s3_503 + s3_500 + drop must not exceed 1");
    return -1;
  }
  if (invoke_sum(spec) + spec->drop > 1.0 + 1e-9) {
    snprintf(err, err_len,
             "-faults: the invocation faults (invoke_*, the SageMaker error names, accept_then_*) "
             "and drop must not add up to more than 1");
    return -1;
  }
  if (spec->model_error + spec->hang > 1.0 + 1e-9) {
    snprintf(err, err_len, "-faults: model_error + hang must not exceed 1");
    return -1;
  }
  return 0;
}

ep_faults *ep_faults_new(const ep_fault_spec *spec) {
  ep_faults *f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  if (spec) f->spec = *spec;
  else ep_fault_spec_init(&f->spec);
  for (int i = 0; i < 4; i++) atomic_init(&f->seq[i], 0);
  for (int i = 0; i < C_COUNT; i++) atomic_init(&f->counts[i], 0);
  return f;
}

void ep_faults_free(ep_faults *f) { free(f); }

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* The n-th uniform draw in [0,1) of a kind: a pure function of (seed, kind, n). */
static double draw(ep_faults *f, int kind, uint64_t *bits) {
  uint64_t n = atomic_fetch_add(&f->seq[kind], 1);
  uint64_t h = splitmix64(splitmix64(f->spec.seed ^ ((uint64_t)kind << 56)) ^ n);
  if (bits) *bits = splitmix64(h);
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

int ep_faults_enabled(const ep_faults *f) {
  if (!f) return 0;
  const ep_fault_spec *s = &f->spec;
  return s->s3_503 > 0 || s->s3_500 > 0 || invoke_sum(s) > 0 || s->drop > 0 || s->model_error > 0 ||
         s->hang > 0 || s->slow_consumer_ms > 0;
}

ep_s3_fault ep_faults_s3(ep_faults *f) {
  if (!f) return ASD_S3_FAULT_NONE;
  const ep_fault_spec *s = &f->spec;
  if (s->s3_503 <= 0 && s->s3_500 <= 0 && s->drop <= 0) return ASD_S3_FAULT_NONE;
  double u = draw(f, KIND_S3, NULL);
  if (u < s->s3_503) {
    atomic_fetch_add(&f->counts[C_S3_503], 1);
    return ASD_S3_FAULT_503_SLOWDOWN;
  }
  u -= s->s3_503;
  if (u < s->s3_500) {
    atomic_fetch_add(&f->counts[C_S3_500], 1);
    return ASD_S3_FAULT_500_INTERNAL;
  }
  u -= s->s3_500;
  if (u < s->drop) {
    atomic_fetch_add(&f->counts[C_S3_DROP], 1);
    return ASD_S3_FAULT_DROP;
  }
  return ASD_S3_FAULT_NONE;
}

/* Takes the fault when the draw u falls in [0, p), else moves u past it. */
static int take(double *u, double p) {
  if (*u < p) return 1;
  *u -= p;
  return 0;
}

ep_invoke_fault ep_faults_invoke(ep_faults *f) {
  if (!f) return ASD_INVOKE_FAULT_NONE;
  const ep_fault_spec *s = &f->spec;
  if (invoke_sum(s) <= 0 && s->drop <= 0) return ASD_INVOKE_FAULT_NONE;
  uint64_t bits = 0;
  double u = draw(f, KIND_INVOKE, &bits);
  /* The order below is part of the reproducibility contract: a given seed
   * and spec give the same decisions as before these keys existed. */
  static const struct {
    size_t offset;
    ep_invoke_fault fault;
    int counter;
  } table[] = {
      {offsetof(ep_fault_spec, invoke_throttle), ASD_INVOKE_FAULT_THROTTLE, C_INV_THROTTLE},
      {offsetof(ep_fault_spec, invoke_5xx), ASD_INVOKE_FAULT_500, -1},
      {offsetof(ep_fault_spec, drop), ASD_INVOKE_FAULT_DROP, C_INV_DROP},
      {offsetof(ep_fault_spec, validation), ASD_INVOKE_FAULT_VALIDATION, C_INV_VALIDATION},
      {offsetof(ep_fault_spec, not_ready), ASD_INVOKE_FAULT_NOT_READY, C_INV_NOT_READY},
      {offsetof(ep_fault_spec, unavailable), ASD_INVOKE_FAULT_503, C_INV_503},
      {offsetof(ep_fault_spec, internal), ASD_INVOKE_FAULT_500, C_INV_500},
      {offsetof(ep_fault_spec, dependency), ASD_INVOKE_FAULT_DEPENDENCY, C_INV_DEPENDENCY},
      {offsetof(ep_fault_spec, accept_then_5xx), ASD_INVOKE_FAULT_ACCEPT_THEN_5XX, C_ACCEPT_5XX},
      {offsetof(ep_fault_spec, accept_then_drop), ASD_INVOKE_FAULT_ACCEPT_THEN_DROP, C_ACCEPT_DROP},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    double p = *(const double *)((const char *)s + table[i].offset);
    if (!take(&u, p)) continue;
    if (table[i].counter < 0) {
      /* invoke_5xx: half 500 InternalFailure, half 503 ServiceUnavailable,
       * both documented answers of InvokeEndpointAsync. */
      int is503 = (int)(bits & 1);
      atomic_fetch_add(&f->counts[is503 ? C_INV_503 : C_INV_500], 1);
      return is503 ? ASD_INVOKE_FAULT_503 : ASD_INVOKE_FAULT_500;
    }
    atomic_fetch_add(&f->counts[table[i].counter], 1);
    return table[i].fault;
  }
  return ASD_INVOKE_FAULT_NONE;
}

ep_job_fault ep_faults_job(ep_faults *f) {
  if (!f) return ASD_JOB_FAULT_NONE;
  const ep_fault_spec *s = &f->spec;
  if (s->model_error <= 0 && s->hang <= 0) return ASD_JOB_FAULT_NONE;
  double u = draw(f, KIND_JOB, NULL);
  if (u < s->model_error) {
    atomic_fetch_add(&f->counts[C_MODEL_ERROR], 1);
    return ASD_JOB_FAULT_MODEL_ERROR;
  }
  u -= s->model_error;
  if (u < s->hang) {
    atomic_fetch_add(&f->counts[C_HANG], 1);
    return ASD_JOB_FAULT_HANG;
  }
  return ASD_JOB_FAULT_NONE;
}

int ep_faults_slow_consumer_ms(const ep_faults *f) { return f ? f->spec.slow_consumer_ms : 0; }

struct json_object *ep_faults_stats_json(ep_faults *f) {
  static const char *const names[C_COUNT] = {
      "s3_503",      "s3_500",          "s3_drop",          "invoke_throttle",   "invoke_500",
      "invoke_503",  "invoke_drop",     "model_error",      "hang",              "invoke_validation",
      "invoke_not_ready", "invoke_dependency", "accept_then_5xx", "accept_then_drop"};
  json_object *o = json_object_new_object();
  for (int i = 0; i < C_COUNT; i++)
    json_object_object_add(o, names[i],
                           json_object_new_int64(f ? (int64_t)atomic_load(&f->counts[i]) : 0));
  json_object_object_add(o, "slow_consumer_ms", json_object_new_int(f ? f->spec.slow_consumer_ms : 0));
  json_object_object_add(o, "seed", json_object_new_int64(f ? (int64_t)f->spec.seed : 1));
  return o;
}
