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
 * the probabilities of a kind must not add up to more than 1.
 */
#include "faults.h"

#include <errno.h>
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
  C_COUNT
};

struct asd_faults {
  asd_fault_spec spec;
  atomic_uint_fast64_t seq[4];
  atomic_uint_fast64_t counts[C_COUNT];
};

void asd_fault_spec_init(asd_fault_spec *spec) {
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

int asd_fault_spec_parse(const char *text, asd_fault_spec *spec, char *err, size_t err_len) {
  asd_fault_spec_init(spec);
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
    if (strcmp(key, "s3_503") == 0) rc = parse_probability(key, value, &spec->s3_503, err, err_len);
    else if (strcmp(key, "s3_500") == 0) rc = parse_probability(key, value, &spec->s3_500, err, err_len);
    else if (strcmp(key, "invoke_throttle") == 0)
      rc = parse_probability(key, value, &spec->invoke_throttle, err, err_len);
    else if (strcmp(key, "invoke_5xx") == 0)
      rc = parse_probability(key, value, &spec->invoke_5xx, err, err_len);
    else if (strcmp(key, "drop") == 0) rc = parse_probability(key, value, &spec->drop, err, err_len);
    else if (strcmp(key, "model_error") == 0)
      rc = parse_probability(key, value, &spec->model_error, err, err_len);
    else if (strcmp(key, "hang") == 0) rc = parse_probability(key, value, &spec->hang, err, err_len);
    else if (strcmp(key, "slow_consumer_ms") == 0) {
      rc = parse_uint(key, value, 600000, &u, err, err_len);
      if (rc == 0) spec->slow_consumer_ms = (int)u;
    } else if (strcmp(key, "seed") == 0) {
      rc = parse_uint(key, value, UINT64_MAX, &u, err, err_len);
      if (rc == 0) spec->seed = (uint64_t)u;
    } else {
      snprintf(err, err_len,
               "-faults: unknown key '%s' (expected s3_503, s3_500, invoke_throttle, invoke_5xx, "
               "drop, model_error, hang, slow_consumer_ms, seed)",
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
  if (spec->invoke_throttle + spec->invoke_5xx + spec->drop > 1.0 + 1e-9) {
    snprintf(err, err_len, "-faults: invoke_throttle + invoke_5xx + drop must not exceed 1");
    return -1;
  }
  if (spec->model_error + spec->hang > 1.0 + 1e-9) {
    snprintf(err, err_len, "-faults: model_error + hang must not exceed 1");
    return -1;
  }
  return 0;
}

asd_faults *asd_faults_new(const asd_fault_spec *spec) {
  asd_faults *f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  if (spec) f->spec = *spec;
  else asd_fault_spec_init(&f->spec);
  for (int i = 0; i < 4; i++) atomic_init(&f->seq[i], 0);
  for (int i = 0; i < C_COUNT; i++) atomic_init(&f->counts[i], 0);
  return f;
}

void asd_faults_free(asd_faults *f) { free(f); }

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* The n-th uniform draw in [0,1) of a kind: a pure function of (seed, kind, n). */
static double draw(asd_faults *f, int kind, uint64_t *bits) {
  uint64_t n = atomic_fetch_add(&f->seq[kind], 1);
  uint64_t h = splitmix64(splitmix64(f->spec.seed ^ ((uint64_t)kind << 56)) ^ n);
  if (bits) *bits = splitmix64(h);
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

int asd_faults_enabled(const asd_faults *f) {
  if (!f) return 0;
  const asd_fault_spec *s = &f->spec;
  return s->s3_503 > 0 || s->s3_500 > 0 || s->invoke_throttle > 0 || s->invoke_5xx > 0 ||
         s->drop > 0 || s->model_error > 0 || s->hang > 0 || s->slow_consumer_ms > 0;
}

asd_s3_fault asd_faults_s3(asd_faults *f) {
  if (!f) return ASD_S3_FAULT_NONE;
  const asd_fault_spec *s = &f->spec;
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

asd_invoke_fault asd_faults_invoke(asd_faults *f) {
  if (!f) return ASD_INVOKE_FAULT_NONE;
  const asd_fault_spec *s = &f->spec;
  if (s->invoke_throttle <= 0 && s->invoke_5xx <= 0 && s->drop <= 0) return ASD_INVOKE_FAULT_NONE;
  uint64_t bits = 0;
  double u = draw(f, KIND_INVOKE, &bits);
  if (u < s->invoke_throttle) {
    atomic_fetch_add(&f->counts[C_INV_THROTTLE], 1);
    return ASD_INVOKE_FAULT_THROTTLE;
  }
  u -= s->invoke_throttle;
  if (u < s->invoke_5xx) {
    /* Half 500 InternalFailure, half 503 ServiceUnavailable: both are
     * documented answers of InvokeEndpointAsync and clients must retry both. */
    if (bits & 1) {
      atomic_fetch_add(&f->counts[C_INV_503], 1);
      return ASD_INVOKE_FAULT_503;
    }
    atomic_fetch_add(&f->counts[C_INV_500], 1);
    return ASD_INVOKE_FAULT_500;
  }
  u -= s->invoke_5xx;
  if (u < s->drop) {
    atomic_fetch_add(&f->counts[C_INV_DROP], 1);
    return ASD_INVOKE_FAULT_DROP;
  }
  return ASD_INVOKE_FAULT_NONE;
}

asd_job_fault asd_faults_job(asd_faults *f) {
  if (!f) return ASD_JOB_FAULT_NONE;
  const asd_fault_spec *s = &f->spec;
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

int asd_faults_slow_consumer_ms(const asd_faults *f) { return f ? f->spec.slow_consumer_ms : 0; }

struct json_object *asd_faults_stats_json(asd_faults *f) {
  static const char *const names[C_COUNT] = {"s3_503",     "s3_500",     "s3_drop",
                                             "invoke_throttle", "invoke_500", "invoke_503",
                                             "invoke_drop", "model_error", "hang"};
  json_object *o = json_object_new_object();
  for (int i = 0; i < C_COUNT; i++)
    json_object_object_add(o, names[i],
                           json_object_new_int64(f ? (int64_t)atomic_load(&f->counts[i]) : 0));
  json_object_object_add(o, "slow_consumer_ms", json_object_new_int(f ? f->spec.slow_consumer_ms : 0));
  json_object_object_add(o, "seed", json_object_new_int64(f ? (int64_t)f->spec.seed : 1));
  return o;
}
