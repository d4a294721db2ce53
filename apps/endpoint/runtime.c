/*
 * runtime.c: the SageMaker Runtime half of the local endpoint.
 *
 * What SageMaker does with an asynchronous invocation, and what this file
 * does the same way:
 *
 *   1. InvokeEndpointAsync validates the request (endpoint, headers, input
 *      location), queues it and answers 202 at once with the inference id
 *      and the two S3 locations where the outcome will appear.  The
 *      locations are fixed at that moment, from the endpoint's output and
 *      failure paths and a fresh uuid (not the inference id).
 *   2. The request waits in the endpoint's FIFO queue until one of its
 *      instances has a free slot.  If it waits longer than
 *      RequestTTLSeconds it is not run; a failure object says it expired.
 *   3. A free slot reads the input object, runs the model (here: sleeps
 *      the simulated latency, then runs a built-in model or forwards to a
 *      container), and writes the output object, or a failure object when
 *      the model fails or runs past InvocationTimeoutSeconds.
 *
 * Where results go.  The output and failure objects are named from the
 * endpoint's paths, the request's S3OutputPathExtension (appended to both
 * paths) and its Filename (the output object's name, "<Filename>-error.out"
 * for the failure object; AWS documents only the output side) or a fresh
 * uuid.  Both headers are validated against the service model's patterns
 * and answered with SageMaker's ValidationError text when they fail.  An
 * endpoint declared with failure=none has no S3FailurePath, as on AWS: its
 * replies carry no FailureLocation and a failed job leaves nothing in S3.
 *
 * Cold start.  cold_start_ms=N models an endpoint scaling out from zero:
 * the first accepted invocation starts the clock, and no instance takes a
 * job until N ms later; requests queue meanwhile (and their TTL runs).
 *
 * Memory and speed.  A queued request is one small allocation (the record
 * and its strings in a single block, a few hundred bytes), never the
 * payload: the input object is read only when the job starts.  Ten thousand
 * queued requests thus cost a few megabytes.  Each endpoint has its own
 * mutex and condition variable, and instances x concurrency worker threads
 * pop from its queue; a job with zero latency costs one object read, one
 * model run and one atomic object write, with no other waiting.
 *
 * Time limits.  A model call runs in its worker thread and cannot be
 * preempted, so limits are enforced at the points where the runtime itself
 * waits: the simulated latency and a "hang" fault sleep at most until the
 * invocation deadline, then the job is written as timed out; the http://
 * model is given the remaining time as its transfer timeout; a built-in
 * model that returns after the deadline is written as timed out too.
 * Requests whose TTL passes while queued are expired by a janitor thread
 * (which also covers endpoints scaled to zero instances), and by the worker
 * that pops them if it gets there first.
 *
 * Shutdown.  ep_runtime_stop() refuses new invocations, wakes every
 * sleeper and waits for the workers.  A worker whose model already returned
 * writes its object (a put is atomic, so no partial object can appear); a
 * sleeping, hanging or queued job is abandoned without writing anything.
 */
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_string.h>
#include <json.h>

#include "asyncdetect/asd_common.h"
#include "models.h"

#define RT_LAT_RING 8192
#define RT_MAX_QUEUE 1000000
#define RT_JANITOR_PERIOD_S 0.2

/* ------------------------------------------------------------ spec parsing */

int ep_endpoint_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 63) return 0;
  if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)name[i]) || name[i] == '-')) return 0;
  return 1;
}

static int bucket_name_valid(const char *b) {
  size_t n = strlen(b);
  if (n < 3 || n > 63) return 0;
  if (!(islower((unsigned char)b[0]) || isdigit((unsigned char)b[0]))) return 0;
  if (!(islower((unsigned char)b[n - 1]) || isdigit((unsigned char)b[n - 1]))) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b[i];
    if (!(islower(c) || isdigit(c) || c == '-' || c == '.')) return 0;
    if (c == '.' && i + 1 < n && b[i + 1] == '.') return 0;
  }
  return 1;
}

/* s3://bucket[/prefix] -> bucket, prefix without leading/trailing slashes. */
static int parse_s3_path(const char *what, const char *uri, char *bucket, size_t bucket_len,
                         char *prefix, size_t prefix_len, char *err, size_t err_len) {
  if (strncmp(uri, "s3://", 5) != 0) {
    snprintf(err, err_len, "-endpoint: %s=%s is not an s3://bucket/prefix URI", what, uri);
    return -1;
  }
  const char *b = uri + 5;
  const char *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  if (blen >= bucket_len) blen = bucket_len - 1;
  memcpy(bucket, b, blen);
  bucket[blen] = '\0';
  if (!bucket_name_valid(bucket)) {
    snprintf(err, err_len, "-endpoint: %s=%s: '%s' is not a valid S3 bucket name", what, uri, bucket);
    return -1;
  }
  const char *p = slash ? slash : "";
  while (*p == '/') p++;
  size_t plen = strlen(p);
  while (plen && p[plen - 1] == '/') plen--;
  if (plen >= prefix_len) {
    snprintf(err, err_len, "-endpoint: %s=%s: prefix too long", what, uri);
    return -1;
  }
  memcpy(prefix, p, plen);
  prefix[plen] = '\0';
  /* The store refuses traversal anyway; refusing it here gives a clearer error. */
  if (strstr(prefix, "..") || strstr(prefix, "//")) {
    snprintf(err, err_len, "-endpoint: %s=%s: prefix must not contain '..' or '//'", what, uri);
    return -1;
  }
  return 0;
}

static int parse_number(const char *key, const char *value, double lo, double hi, double *out,
                        char *err, size_t err_len) {
  char *end = NULL;
  errno = 0;
  double v = strtod(value, &end);
  if (errno != 0 || end == value || *end != '\0' || !(v >= lo && v <= hi)) {
    snprintf(err, err_len, "-endpoint: %s=%s is not a number in [%g, %g]", key, value, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

int ep_endpoint_spec_parse(const char *text, ep_endpoint_spec *spec, char *err, size_t err_len) {
  memset(spec, 0, sizeof(*spec));
  snprintf(spec->model, sizeof(spec->model), "centerpoint");
  spec->instances = 1;
  spec->concurrency = 1;
  spec->time_scale = 1.0;
  if (err_len) err[0] = '\0';
  if (!text || !*text) {
    snprintf(err, err_len, "-endpoint: empty value (expected NAME,model=...,output=s3://...)");
    return -1;
  }
  char **items = CSLTokenizeString2(text, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES | CSLT_ALLOWEMPTYTOKENS);
  int rc = 0, have_output = 0, have_failure = 0;
  if (!items || !items[0] || strchr(items[0], '=')) {
    snprintf(err, err_len, "-endpoint: '%s' must start with the endpoint name", text);
    rc = -1;
    goto done;
  }
  if (!ep_endpoint_name_valid(items[0])) {
    snprintf(err, err_len,
             "-endpoint: '%s' is not a valid endpoint name (1-63 chars, letters, digits and inner '-')",
             items[0]);
    rc = -1;
    goto done;
  }
  snprintf(spec->name, sizeof(spec->name), "%s", items[0]);
  for (int i = 1; items[i] && rc == 0; i++) {
    const char *item = items[i];
    if (!*item) continue;
    const char *eq = strchr(item, '=');
    if (!eq || eq == item) {
      snprintf(err, err_len, "-endpoint: '%s' is not key=value", item);
      rc = -1;
      break;
    }
    char key[32];
    size_t klen = (size_t)(eq - item);
    if (klen >= sizeof(key)) klen = sizeof(key) - 1;
    memcpy(key, item, klen);
    key[klen] = '\0';
    const char *value = eq + 1;
    double v = 0;
    if (strcmp(key, "model") == 0) {
      if (!*value || strlen(value) >= sizeof(spec->model)) {
        snprintf(err, err_len, "-endpoint: model= must name a model");
        rc = -1;
      } else {
        snprintf(spec->model, sizeof(spec->model), "%s", value);
      }
    } else if (strcmp(key, "output") == 0) {
      rc = parse_s3_path(key, value, spec->output_bucket, sizeof(spec->output_bucket),
                         spec->output_prefix, sizeof(spec->output_prefix), err, err_len);
      have_output = 1;
    } else if (strcmp(key, "failure") == 0) {
      /* failure=none: an endpoint configured without an S3FailurePath. */
      if (strcmp(value, "none") != 0)
        rc = parse_s3_path(key, value, spec->failure_bucket, sizeof(spec->failure_bucket),
                           spec->failure_prefix, sizeof(spec->failure_prefix), err, err_len);
      have_failure = 1;
    } else if (strcmp(key, "instances") == 0) {
      rc = parse_number(key, value, 0, 64, &v, err, err_len);
      if (rc == 0 && v != floor(v)) {
        snprintf(err, err_len, "-endpoint: instances=%s is not an integer", value);
        rc = -1;
      }
      spec->instances = (int)v;
    } else if (strcmp(key, "concurrency") == 0) {
      rc = parse_number(key, value, 1, 256, &v, err, err_len);
      if (rc == 0 && v != floor(v)) {
        snprintf(err, err_len, "-endpoint: concurrency=%s is not an integer", value);
        rc = -1;
      }
      spec->concurrency = (int)v;
    } else if (strcmp(key, "latency_ms") == 0) {
      rc = parse_number(key, value, 0, 3600e3, &spec->latency_ms, err, err_len);
    } else if (strcmp(key, "spread_ms") == 0) {
      rc = parse_number(key, value, 0, 3600e3, &spec->spread_ms, err, err_len);
    } else if (strcmp(key, "time_scale") == 0) {
      rc = parse_number(key, value, 1e-6, 1e3, &spec->time_scale, err, err_len);
    } else if (strcmp(key, "cold_start_ms") == 0) {
      rc = parse_number(key, value, 0, 3600e3, &spec->cold_start_ms, err, err_len);
    } else if (strcmp(key, "async") == 0) {
      /* async=no: a real-time endpoint (no AsyncInferenceConfig). */
      if (strcmp(value, "yes") == 0) spec->realtime = 0;
      else if (strcmp(value, "no") == 0) spec->realtime = 1;
      else {
        snprintf(err, err_len, "-endpoint: async=%s must be yes or no", value);
        rc = -1;
      }
    } else {
      snprintf(err, err_len,
               "-endpoint: unknown key '%s' (expected model, output, failure, instances, "
               "concurrency, latency_ms, spread_ms, time_scale, cold_start_ms, async)",
               key);
      rc = -1;
    }
  }
  if (rc == 0 && spec->instances * spec->concurrency > 1024) {
    snprintf(err, err_len, "-endpoint: instances x concurrency must not exceed 1024");
    rc = -1;
  }
  if (rc == 0 && !ep_model_is_builtin(spec->model) && strncmp(spec->model, "http://", 7) != 0) {
    snprintf(err, err_len,
             "-endpoint: unknown model '%s' (expected centerpoint, flood, failure, blobs or http://HOST:PORT)",
             spec->model);
    rc = -1;
  }
  if (rc == 0 && !have_output) {
    snprintf(spec->output_bucket, sizeof(spec->output_bucket), "asd-async");
    snprintf(spec->output_prefix, sizeof(spec->output_prefix), "%s/output", spec->name);
  }
  if (rc == 0 && !have_failure) {
    snprintf(spec->failure_bucket, sizeof(spec->failure_bucket), "asd-async");
    snprintf(spec->failure_prefix, sizeof(spec->failure_prefix), "%s/failure", spec->name);
  }
done:
  CSLDestroy(items);
  return rc;
}

/* ---------------------------------------------------------------- response */

void ep_rt_response_init(ep_rt_response *resp) { memset(resp, 0, sizeof(*resp)); }

void ep_rt_response_clear(ep_rt_response *resp) {
  free(resp->body);
  for (int i = 0; i < resp->n_headers; i++) {
    free(resp->header_names[i]);
    free(resp->header_values[i]);
  }
  memset(resp, 0, sizeof(*resp));
}

static void resp_header(ep_rt_response *resp, const char *name, const char *value) {
  if (resp->n_headers >= ASD_RT_MAX_HEADERS) return;
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return;
  }
  resp->header_names[resp->n_headers] = n;
  resp->header_values[resp->n_headers] = v;
  resp->n_headers++;
}

static void resp_body(ep_rt_response *resp, const void *data, size_t len) {
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
  if (len == 0) return;
  resp->body = malloc(len);
  if (!resp->body) return;
  memcpy(resp->body, data, len);
  resp->body_len = len;
}

static void json_escape_into(asd_buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') asd_buf_appendf(b, "\\%c", c);
    else if (c < 0x20) asd_buf_appendf(b, "\\u%04x", c);
    else asd_buf_append(b, &c, 1);
  }
}

static void resp_start(ep_rt_response *resp, int status) {
  char rid[37];
  asd_uuid4(rid);
  resp->status = status;
  resp_header(resp, "x-amzn-RequestId", rid);
}

/* AWS rest-json error: status, x-amzn-ErrorType and {"__type","message"}. */
static void resp_error(ep_rt_response *resp, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void resp_error(ep_rt_response *resp, int status, const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  resp_start(resp, status);
  resp->error_code = code;
  resp_header(resp, "x-amzn-ErrorType", code);
  resp_header(resp, "Content-Type", "application/json");
  asd_buf b;
  asd_buf_init(&b);
  asd_buf_appendf(&b, "{\"__type\":\"%s\",\"message\":\"", code);
  json_escape_into(&b, msg);
  asd_buf_append_str(&b, "\"}");
  resp_body(resp, b.data, b.len);
  asd_buf_free(&b);
}

/* ----------------------------------------------------------------- runtime */

typedef struct rt_job {
  struct rt_job *next;
  double enqueued;         /* monotonic seconds */
  double ttl_deadline;     /* monotonic seconds */
  double timeout_s;        /* invocation timeout (scaled) */
  const char *inference_id;
  const char *input_bucket;
  const char *input_key;
  const char *content_type; /* NULL when absent */
  const char *accept;
  const char *custom_attributes;
  const char *out_key;      /* where the result goes in the output bucket */
  const char *fail_key;     /* and the failure object; NULL for failure=none */
  char uuid[37];
  char strings[]; /* every string above lives here: one allocation per job */
} rt_job;

typedef struct rt_ring {
  double v[RT_LAT_RING];
  uint64_t count;
} rt_ring;

typedef struct rt_endpoint {
  ep_runtime *rt;
  ep_endpoint_spec spec;
  ep_model *model;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rt_job *head, *tail;
  size_t depth;
  int n_workers;
  pthread_t *workers;
  /* counters, under mu */
  uint64_t accepted, rejected, completed, failed, sync_invocations, sync_failed, abandoned;
  uint64_t f_model_error, f_ttl, f_timeout, f_input_missing, store_errors, f_unreported;
  double warm_at; /* monotonic time instances are up; 0 = cold, never invoked */
  int in_flight;
  rt_ring latency, model_time;
} rt_endpoint;

struct ep_runtime {
  rt_endpoint *eps;
  int n_eps;
  ep_rt_store store;
  ep_faults *faults;
  ep_model *builtins[4]; /* for model_selection */
  atomic_int stopping;
  int stopped;
  pthread_mutex_t stop_mu; /* sleepers wait on stop_cv until their deadline or stop */
  pthread_cond_t stop_cv;
  pthread_t janitor;
  int janitor_started;
};

static const char *const builtin_names[4] = {"centerpoint", "flood", "failure", "blobs"};

static void ring_add(rt_ring *r, double v) { r->v[r->count++ % RT_LAT_RING] = v; }

static int rt_wait_until(ep_runtime *rt, double deadline) {
  pthread_mutex_lock(&rt->stop_mu);
  for (;;) {
    if (atomic_load(&rt->stopping)) break;
    double now = asd_time_monotonic();
    if (now >= deadline) break;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double wait = deadline - now;
    if (wait > 1.0) wait = 1.0; /* re-check periodically, cheap insurance */
    ts.tv_sec += (time_t)wait;
    ts.tv_nsec += (long)((wait - floor(wait)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&rt->stop_cv, &rt->stop_mu, &ts);
  }
  int stopped = atomic_load(&rt->stopping);
  pthread_mutex_unlock(&rt->stop_mu);
  return stopped ? -1 : 0;
}

/* prefix[/extension]/name+suffix, with no empty segment for an empty part. */
static void object_key(char *out, size_t out_len, const char *prefix, const char *ext, const char *name,
                       const char *suffix) {
  snprintf(out, out_len, "%s%s%s%s%s%s", prefix, *prefix ? "/" : "", ext ? ext : "", ext && *ext ? "/" : "",
           name, suffix);
}

enum fail_reason { FR_MODEL_ERROR, FR_TTL, FR_TIMEOUT, FR_INPUT_MISSING };

/* Writes the failure object, or nothing at all for an endpoint without a
 * failure path (failure=none): on AWS such a failure is only visible to an
 * SNS error topic, never in S3. */
static void write_failure(rt_endpoint *ep, const rt_job *job, enum fail_reason reason,
                          const void *payload, size_t len, const char *content_type) {
  const char *key = job->fail_key;
  int rc = 0;
  if (key)
    rc = ep->rt->store.put(ep->rt->store.ctx, ep->spec.failure_bucket, key, payload, len,
                           content_type ? content_type : "text/plain");
  double lat = (asd_time_monotonic() - job->enqueued) * 1000.0;
  pthread_mutex_lock(&ep->mu);
  ep->failed++;
  switch (reason) {
    case FR_MODEL_ERROR: ep->f_model_error++; break;
    case FR_TTL: ep->f_ttl++; break;
    case FR_TIMEOUT: ep->f_timeout++; break;
    case FR_INPUT_MISSING: ep->f_input_missing++; break;
  }
  if (rc != 0) ep->store_errors++;
  if (!key) ep->f_unreported++;
  ring_add(&ep->latency, lat);
  pthread_mutex_unlock(&ep->mu);
  if (rc != 0)
    fprintf(stderr, "asyncdetect_endpoint: cannot write failure object s3://%s/%s\n",
            ep->spec.failure_bucket, key);
}

static void write_failure_text(rt_endpoint *ep, const rt_job *job, enum fail_reason reason,
                               const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void write_failure_text(rt_endpoint *ep, const rt_job *job, enum fail_reason reason,
                               const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof(msg) - 2) n = (int)sizeof(msg) - 2;
  msg[n++] = '\n';
  msg[n] = '\0';
  write_failure(ep, job, reason, msg, (size_t)n, "text/plain");
}

static void write_ttl_expired(rt_endpoint *ep, const rt_job *job, double now) {
  write_failure_text(ep, job, FR_TTL,
                     "Request %s expired in the queue of endpoint %s after %.3f s "
                     "(RequestTTLSeconds exceeded); the model was not invoked.",
                     job->inference_id, ep->spec.name, now - job->enqueued);
}

static void write_timeout(rt_endpoint *ep, const rt_job *job) {
  write_failure_text(ep, job, FR_TIMEOUT,
                     "Invocation %s timed out on endpoint %s: the model did not finish within "
                     "InvocationTimeoutSeconds (%.3f s).",
                     job->inference_id, ep->spec.name, job->timeout_s);
}

/* The model for a request: model_selection=NAME picks a built-in. */
static ep_model *pick_model(ep_runtime *rt, rt_endpoint *ep, const char *attrs, char *bad, size_t bad_len) {
  char sel[128];
  bad[0] = '\0';
  if (!ep_custom_attribute(attrs, "model_selection", sel, sizeof(sel)) || !*sel ||
      strcmp(sel, ep->spec.model) == 0)
    return ep->model;
  for (int i = 0; i < 4; i++)
    if (strcmp(sel, builtin_names[i]) == 0) return rt->builtins[i];
  snprintf(bad, bad_len, "%s", sel);
  return NULL;
}

/* Per-invocation simulated latency in seconds: mean +/- spread, uniform.
 * The OSML custom attributes mock_latency_mean / mock_latency_std (ms)
 * override the endpoint's figures for one request. */
static double draw_latency(const rt_endpoint *ep, const char *attrs) {
  double mean = ep->spec.latency_ms, spread = ep->spec.spread_ms;
  char v[32];
  if (ep_custom_attribute(attrs, "mock_latency_mean", v, sizeof(v))) {
    char *end = NULL;
    double m = strtod(v, &end);
    if (end != v && *end == '\0' && m >= 0 && m <= 3600e3) {
      mean = m;
      spread = m * 0.1;
      if (ep_custom_attribute(attrs, "mock_latency_std", v, sizeof(v))) {
        double s = strtod(v, &end);
        if (end != v && *end == '\0' && s >= 0 && s <= 3600e3) spread = s;
      }
    }
  }
  double ms = mean;
  if (spread > 0) ms += (asd_random_uniform() * 2.0 - 1.0) * spread;
  return ms > 0 ? ms / 1000.0 : 0.0;
}

static void run_job(rt_endpoint *ep, rt_job *job) {
  ep_runtime *rt = ep->rt;
  double start = asd_time_monotonic();
  if (start > job->ttl_deadline) {
    write_ttl_expired(ep, job, start);
    return;
  }
  double deadline = start + job->timeout_s;
  ep_job_fault fault = ep_faults_job(rt->faults);

  unsigned char *payload = NULL;
  size_t payload_len = 0;
  int grc = rt->store.get(rt->store.ctx, job->input_bucket, job->input_key, &payload, &payload_len);
  if (grc != 0) {
    write_failure_text(ep, job, FR_INPUT_MISSING,
                       "Could not read the input object s3://%s/%s for invocation %s (%s).",
                       job->input_bucket, job->input_key, job->inference_id,
                       grc > 0 ? "it does not exist" : "store error");
    free(payload);
    return;
  }

  if (fault == ASD_JOB_FAULT_HANG) {
    free(payload);
    if (rt_wait_until(rt, deadline) != 0) goto abandoned;
    write_timeout(ep, job);
    return;
  }
  double latency = draw_latency(ep, job->custom_attributes);
  if (latency > 0) {
    double wake = start + latency;
    if (wake >= deadline) {
      free(payload);
      if (rt_wait_until(rt, deadline) != 0) goto abandoned;
      write_timeout(ep, job);
      return;
    }
    if (rt_wait_until(rt, wake) != 0) {
      free(payload);
      goto abandoned;
    }
  }

  char bad[128];
  ep_model *model = pick_model(rt, ep, job->custom_attributes, bad, sizeof(bad));
  ep_model_output out;
  ep_model_output_init(&out);
  int mrc;
  double m0 = asd_time_monotonic();
  if (!model) {
    mrc = -1;
    snprintf(out.error, sizeof(out.error),
             "model_selection=%s: no such model (expected centerpoint, flood, failure or blobs)", bad);
    asd_buf_append_str(&out.body, out.error);
    asd_buf_append_str(&out.body, "\n");
    snprintf(out.content_type, sizeof(out.content_type), "text/plain");
  } else if (fault == ASD_JOB_FAULT_MODEL_ERROR) {
    mrc = -1;
    snprintf(out.error, sizeof(out.error), "injected model error (fault injection)");
    asd_buf_append_str(&out.body, "ModelError: injected model error (fault injection)\n");
    snprintf(out.content_type, sizeof(out.content_type), "text/plain");
  } else {
    ep_model_input in = {payload,
                          payload_len,
                          job->content_type,
                          job->accept,
                          job->custom_attributes,
                          job->inference_id,
                          deadline - m0 > 0.001 ? deadline - m0 : 0.001};
    mrc = ep_model_invoke(model, &in, &out);
  }
  double m1 = asd_time_monotonic();
  free(payload);

  if (m1 > deadline) {
    write_timeout(ep, job);
  } else if (mrc != 0) {
    write_failure(ep, job, FR_MODEL_ERROR, out.body.data, out.body.len,
                  out.content_type[0] ? out.content_type : "text/plain");
  } else {
    const char *key = job->out_key;
    int prc = rt->store.put(rt->store.ctx, ep->spec.output_bucket, key, out.body.data, out.body.len,
                            out.content_type);
    double now = asd_time_monotonic();
    pthread_mutex_lock(&ep->mu);
    if (prc == 0) ep->completed++;
    else {
      ep->failed++;
      ep->store_errors++;
    }
    ring_add(&ep->latency, (now - job->enqueued) * 1000.0);
    ring_add(&ep->model_time, (m1 - m0) * 1000.0);
    pthread_mutex_unlock(&ep->mu);
    if (prc != 0)
      fprintf(stderr, "asyncdetect_endpoint: cannot write output object s3://%s/%s\n",
              ep->spec.output_bucket, key);
  }
  if (mrc != 0 && m1 <= deadline) {
    pthread_mutex_lock(&ep->mu);
    ring_add(&ep->model_time, (m1 - m0) * 1000.0);
    pthread_mutex_unlock(&ep->mu);
  }
  ep_model_output_free(&out);
  return;
abandoned:
  pthread_mutex_lock(&ep->mu);
  ep->abandoned++;
  pthread_mutex_unlock(&ep->mu);
}

static void *worker_main(void *arg) {
  rt_endpoint *ep = arg;
  ep_runtime *rt = ep->rt;
  for (;;) {
    pthread_mutex_lock(&ep->mu);
    while (!atomic_load(&rt->stopping) && !ep->head) pthread_cond_wait(&ep->cv, &ep->mu);
    if (atomic_load(&rt->stopping)) {
      pthread_mutex_unlock(&ep->mu);
      break;
    }
    /* A cold endpoint: no instance serves until warm_at (set by the first
     * invocation).  Jobs keep waiting in the queue, where their TTL runs. */
    double warm_at = ep->warm_at;
    if (warm_at > asd_time_monotonic()) {
      pthread_mutex_unlock(&ep->mu);
      if (rt_wait_until(rt, warm_at) != 0) break;
      continue;
    }
    rt_job *job = ep->head;
    ep->head = job->next;
    if (!ep->head) ep->tail = NULL;
    ep->depth--;
    ep->in_flight++;
    pthread_mutex_unlock(&ep->mu);

    run_job(ep, job);
    free(job);

    pthread_mutex_lock(&ep->mu);
    ep->in_flight--;
    pthread_mutex_unlock(&ep->mu);
  }
  return NULL;
}

/* Expires queued requests whose TTL has passed, on every endpoint, even
 * those with no free (or no) instance. */
static void *janitor_main(void *arg) {
  ep_runtime *rt = arg;
  while (rt_wait_until(rt, asd_time_monotonic() + RT_JANITOR_PERIOD_S) == 0) {
    for (int i = 0; i < rt->n_eps; i++) {
      rt_endpoint *ep = &rt->eps[i];
      double now = asd_time_monotonic();
      rt_job *expired = NULL, **tail = &expired;
      pthread_mutex_lock(&ep->mu);
      rt_job *prev = NULL, *j = ep->head;
      while (j) {
        rt_job *next = j->next;
        if (j->ttl_deadline < now) {
          if (prev) prev->next = next;
          else ep->head = next;
          if (ep->tail == j) ep->tail = prev;
          ep->depth--;
          j->next = NULL;
          *tail = j;
          tail = &j->next;
        } else {
          prev = j;
        }
        j = next;
      }
      pthread_mutex_unlock(&ep->mu);
      while (expired) {
        rt_job *next = expired->next;
        if (!atomic_load(&rt->stopping)) write_ttl_expired(ep, expired, now);
        free(expired);
        expired = next;
      }
    }
  }
  return NULL;
}

ep_runtime *ep_runtime_new(const ep_endpoint_spec *specs, int n_specs, const ep_rt_store *store,
                             ep_faults *faults, char *err, size_t err_len) {
  if (err_len) err[0] = '\0';
  if (!store || !store->get || !store->put || !store->exists) {
    snprintf(err, err_len, "runtime: no object store given");
    return NULL;
  }
  for (int i = 0; i < n_specs; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(specs[i].name, specs[j].name) == 0) {
        snprintf(err, err_len, "-endpoint: endpoint '%s' is declared twice", specs[i].name);
        return NULL;
      }
  ep_runtime *rt = calloc(1, sizeof(*rt));
  if (!rt) {
    snprintf(err, err_len, "runtime: out of memory");
    return NULL;
  }
  rt->store = *store;
  rt->faults = faults;
  atomic_init(&rt->stopping, 0);
  pthread_mutex_init(&rt->stop_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&rt->stop_cv, &ca);
  pthread_condattr_destroy(&ca);
  for (int i = 0; i < 4; i++) {
    rt->builtins[i] = ep_model_new(builtin_names[i], err, err_len);
    if (!rt->builtins[i]) goto fail;
  }
  rt->eps = calloc((size_t)(n_specs > 0 ? n_specs : 1), sizeof(rt_endpoint));
  if (!rt->eps) {
    snprintf(err, err_len, "runtime: out of memory");
    goto fail;
  }
  for (int i = 0; i < n_specs; i++) {
    rt_endpoint *ep = &rt->eps[i];
    ep->rt = rt;
    ep->spec = specs[i];
    pthread_mutex_init(&ep->mu, NULL);
    pthread_cond_init(&ep->cv, NULL);
    rt->n_eps++;
    char merr[512];
    ep->model = ep_model_new(ep->spec.model, merr, sizeof(merr));
    if (!ep->model) {
      snprintf(err, err_len, "-endpoint %s: %s", ep->spec.name, merr);
      goto fail;
    }
  }
  for (int i = 0; i < rt->n_eps; i++) {
    rt_endpoint *ep = &rt->eps[i];
    int n = ep->spec.instances * ep->spec.concurrency;
    ep->workers = calloc((size_t)(n > 0 ? n : 1), sizeof(pthread_t));
    if (!ep->workers) {
      snprintf(err, err_len, "runtime: out of memory");
      goto fail;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Workers need little stack (models allocate on the heap); a small
     * stack keeps hundreds of workers cheap. */
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (int w = 0; w < n; w++) {
      if (pthread_create(&ep->workers[w], &attr, worker_main, ep) != 0) {
        pthread_attr_destroy(&attr);
        snprintf(err, err_len, "runtime: cannot start worker threads for endpoint %s", ep->spec.name);
        goto fail;
      }
      ep->n_workers++;
    }
    pthread_attr_destroy(&attr);
  }
  if (pthread_create(&rt->janitor, NULL, janitor_main, rt) != 0) {
    snprintf(err, err_len, "runtime: cannot start the janitor thread");
    goto fail;
  }
  rt->janitor_started = 1;
  return rt;
fail:
  ep_runtime_free(rt);
  return NULL;
}

void ep_runtime_stop(ep_runtime *rt) {
  if (!rt || rt->stopped) return;
  pthread_mutex_lock(&rt->stop_mu);
  atomic_store(&rt->stopping, 1);
  pthread_cond_broadcast(&rt->stop_cv);
  pthread_mutex_unlock(&rt->stop_mu);
  for (int i = 0; i < rt->n_eps; i++) {
    pthread_mutex_lock(&rt->eps[i].mu);
    pthread_cond_broadcast(&rt->eps[i].cv);
    pthread_mutex_unlock(&rt->eps[i].mu);
  }
  for (int i = 0; i < rt->n_eps; i++)
    for (int w = 0; w < rt->eps[i].n_workers; w++) pthread_join(rt->eps[i].workers[w], NULL);
  if (rt->janitor_started) pthread_join(rt->janitor, NULL);
  rt->janitor_started = 0;
  /* Whatever is still queued is abandoned: nothing is written for it. */
  for (int i = 0; i < rt->n_eps; i++) {
    rt_endpoint *ep = &rt->eps[i];
    pthread_mutex_lock(&ep->mu);
    rt_job *j = ep->head;
    while (j) {
      rt_job *next = j->next;
      free(j);
      ep->abandoned++;
      j = next;
    }
    ep->head = ep->tail = NULL;
    ep->depth = 0;
    pthread_mutex_unlock(&ep->mu);
  }
  rt->stopped = 1;
}

void ep_runtime_free(ep_runtime *rt) {
  if (!rt) return;
  ep_runtime_stop(rt);
  for (int i = 0; i < rt->n_eps; i++) {
    rt_endpoint *ep = &rt->eps[i];
    ep_model_free(ep->model);
    free(ep->workers);
    pthread_mutex_destroy(&ep->mu);
    pthread_cond_destroy(&ep->cv);
  }
  free(rt->eps);
  for (int i = 0; i < 4; i++) ep_model_free(rt->builtins[i]);
  pthread_mutex_destroy(&rt->stop_mu);
  pthread_cond_destroy(&rt->stop_cv);
  free(rt);
}

int ep_runtime_endpoint_count(const ep_runtime *rt) { return rt ? rt->n_eps : 0; }

const ep_endpoint_spec *ep_runtime_endpoint_spec(const ep_runtime *rt, int i) {
  return rt && i >= 0 && i < rt->n_eps ? &rt->eps[i].spec : NULL;
}

static rt_endpoint *find_endpoint(ep_runtime *rt, const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < rt->n_eps; i++)
    if (strcmp(rt->eps[i].spec.name, name) == 0) return &rt->eps[i];
  return NULL;
}

/* ------------------------------------------------------- request handling */

#define H_INPUT "X-Amzn-SageMaker-InputLocation"
#define H_CTYPE "X-Amzn-SageMaker-Content-Type"
#define H_ACCEPT "X-Amzn-SageMaker-Accept"
#define H_ATTRS "X-Amzn-SageMaker-Custom-Attributes"
#define H_INFID "X-Amzn-SageMaker-Inference-Id"
#define H_TTL "X-Amzn-SageMaker-RequestTTLSeconds"
#define H_TIMEOUT "X-Amzn-SageMaker-InvocationTimeoutSeconds"
#define H_EXT "X-Amzn-SageMaker-S3OutputPathExtension"
#define H_FILENAME "X-Amzn-SageMaker-Filename"

/* 1 when every byte is in [lo, hi] and the length is within [min, max]. */
static int text_ok(const char *s, size_t min, size_t max, unsigned char lo, unsigned char hi) {
  size_t n = strlen(s);
  if (n < min || n > max) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi) return 0;
  return 1;
}

/* S3OutputPathExtension: ^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$, 1-512. */
static int extension_ok(const char *e) {
  size_t n = strlen(e);
  if (n < 1 || n > 512 || strncmp(e, "s3:", 3) == 0 || strncmp(e, "https:", 6) == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)e[i]) && !strchr("!_.*'()/-", e[i])) return 0;
  return 1;
}

/* Filename: ^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$, 1-32. */
static int filename_ok(const char *f) {
  size_t n = strlen(f);
  if (n < 1 || n > 32 || !isalnum((unsigned char)f[0])) return 0;
  int dots = 0;
  for (size_t i = 0; i < n; i++) {
    if (f[i] == '.') dots++;
    else if (!isalnum((unsigned char)f[i]) && f[i] != '-' && f[i] != '_') return 0;
  }
  return dots <= 1;
}

static int parse_int_header(const char *v, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  while (*v == ' ') v++;
  long x = strtol(v, &end, 10);
  while (end && *end == ' ') end++;
  if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) return -1;
  *out = x;
  return 0;
}

/*
 * Applies the invocation fault drawn for this request.  Returns 1 when the
 * request was answered (an error or a dropped connection), 0 when it goes on;
 * *after_accept then holds a fault to apply once the job is accepted
 * (accept_then_5xx / accept_then_drop), else ASD_INVOKE_FAULT_NONE.
 * Statuses, codes and texts are SageMaker Runtime's (its service model gives
 * the status of each error shape; 530 is InternalDependencyException's).
 */
static int apply_invoke_fault(ep_runtime *rt, const char *endpoint, ep_rt_response *resp,
                              ep_invoke_fault *after_accept) {
  ep_invoke_fault f = ep_faults_invoke(rt->faults);
  *after_accept = ASD_INVOKE_FAULT_NONE;
  switch (f) {
    case ASD_INVOKE_FAULT_NONE: return 0;
    case ASD_INVOKE_FAULT_ACCEPT_THEN_5XX:
    case ASD_INVOKE_FAULT_ACCEPT_THEN_DROP: *after_accept = f; return 0;
    case ASD_INVOKE_FAULT_THROTTLE:
      resp_error(resp, 400, "ThrottlingException", "Rate exceeded (injected fault).");
      return 1;
    case ASD_INVOKE_FAULT_VALIDATION:
      resp_error(resp, 400, "ValidationError",
                 "1 validation error detected: the request was refused by an injected fault on endpoint %s.",
                 endpoint);
      return 1;
    case ASD_INVOKE_FAULT_NOT_READY:
      resp_error(resp, 429, "ModelNotReadyException",
                 "Model for endpoint %s is not ready yet; wait and try your request again (injected fault).",
                 endpoint);
      return 1;
    case ASD_INVOKE_FAULT_500:
      resp_error(resp, 500, "InternalFailure", "An internal failure occurred (injected fault).");
      return 1;
    case ASD_INVOKE_FAULT_503:
      resp_error(resp, 503, "ServiceUnavailable", "The service is unavailable (injected fault).");
      return 1;
    case ASD_INVOKE_FAULT_DEPENDENCY:
      resp_error(resp, 530, "InternalDependencyException",
                 "Your request caused an exception with an internal dependency. Contact customer support "
                 "(injected fault).");
      return 1;
    case ASD_INVOKE_FAULT_DROP:
      resp->drop_connection = 1;
      resp->status = 0;
      return 1;
  }
  return 0;
}

/* The response of an accepted request is replaced by the fault drawn for it:
 * the job stays queued and runs, the client does not learn so. */
static void apply_after_accept(ep_invoke_fault f, ep_rt_response *resp) {
  if (f == ASD_INVOKE_FAULT_NONE) return;
  ep_rt_response_clear(resp);
  if (f == ASD_INVOKE_FAULT_ACCEPT_THEN_DROP) {
    resp->drop_connection = 1;
    resp->status = 0;
  } else {
    resp_error(resp, 500, "InternalFailure", "An internal failure occurred (injected fault).");
  }
}

static rt_endpoint *lookup_or_error(ep_runtime *rt, const char *endpoint, ep_rt_response *resp) {
  if (atomic_load(&rt->stopping)) {
    resp_error(resp, 503, "ServiceUnavailable", "The endpoint server is shutting down.");
    return NULL;
  }
  rt_endpoint *ep = NULL;
  if (!endpoint || !ep_endpoint_name_valid(endpoint)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value '%.80s' at 'endpointName' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: "
               "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ and have length less than or equal to 63",
               endpoint ? endpoint : "");
    return NULL;
  }
  ep = find_endpoint(rt, endpoint);
  if (!ep) {
    resp_error(resp, 400, "ValidationError", "Endpoint %s of account 000000000000 not found.", endpoint);
    return NULL;
  }
  return ep;
}

void ep_runtime_invoke_async(ep_runtime *rt, const char *endpoint, ep_rt_header_fn header,
                              void *header_ctx, ep_rt_response *resp) {
  ep_rt_response_clear(resp);
  rt_endpoint *ep = lookup_or_error(rt, endpoint, resp);
  if (!ep) return;
  ep_invoke_fault after_accept;
  if (apply_invoke_fault(rt, endpoint, resp, &after_accept)) {
    pthread_mutex_lock(&ep->mu);
    ep->rejected++;
    pthread_mutex_unlock(&ep->mu);
    return;
  }
  if (ep->spec.realtime) {
    resp_error(resp, 400, "ValidationError",
               "Endpoint %s is not an asynchronous inference endpoint: it was created without an "
               "AsyncInferenceConfig, so it only serves InvokeEndpoint.",
               endpoint);
    goto rejected;
  }
  const char *input = header(header_ctx, H_INPUT);
  const char *ctype = header(header_ctx, H_CTYPE);
  const char *accept = header(header_ctx, H_ACCEPT);
  const char *attrs = header(header_ctx, H_ATTRS);
  const char *infid = header(header_ctx, H_INFID);
  const char *ttl_s = header(header_ctx, H_TTL);
  const char *timeout_h = header(header_ctx, H_TIMEOUT);
  const char *ext_h = header(header_ctx, H_EXT);
  const char *filename = header(header_ctx, H_FILENAME);
  long ttl = 21600, timeout = 900;
  char bucket[ASD_RT_BUCKET_MAX + 8] = "";
  const char *key = NULL;

  if (!input || !*input) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value null at 'inputLocation' failed to satisfy "
               "constraint: Member must not be null");
    goto rejected;
  }
  if (!text_ok(input, 1, 1024, 0x21, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'inputLocation' failed to satisfy constraint: "
               "Member must have length between 1 and 1024 and contain no spaces or control characters");
    goto rejected;
  }
  if (strncmp(input, "s3://", 5) == 0) {
    const char *b = input + 5, *slash = strchr(b, '/');
    if (slash && (size_t)(slash - b) < sizeof(bucket) && slash[1]) {
      memcpy(bucket, b, (size_t)(slash - b));
      bucket[slash - b] = '\0';
      key = slash + 1;
    }
  }
  if (!key || !bucket_name_valid(bucket)) {
    resp_error(resp, 400, "ValidationError",
               "InputLocation '%.200s' is not an S3 URI of the form s3://bucket/key", input);
    goto rejected;
  }
  if (!rt->store.exists(rt->store.ctx, bucket, key)) {
    resp_error(resp, 400, "ValidationError", "Could not access the input location %.400s: no such object.",
               input);
    goto rejected;
  }
  if (ctype && !text_ok(ctype, 0, 1024, 0x20, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'contentType' failed to satisfy constraint: "
               "Member must have length less than or equal to 1024 and be ASCII");
    goto rejected;
  }
  if (accept && !text_ok(accept, 0, 1024, 0x20, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'accept' failed to satisfy constraint: "
               "Member must have length less than or equal to 1024 and be ASCII");
    goto rejected;
  }
  if (attrs && !text_ok(attrs, 0, 1024, 0x20, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'customAttributes' failed to satisfy "
               "constraint: Member must have length less than or equal to 1024 and be visible ASCII");
    goto rejected;
  }
  if (infid && !text_ok(infid, 1, 64, 0x21, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'inferenceId' failed to satisfy constraint: "
               "Member must have length between 1 and 64 and contain printable characters without spaces");
    goto rejected;
  }
  if (ttl_s && parse_int_header(ttl_s, 60, 21600, &ttl) != 0) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value '%.32s' at 'requestTTLSeconds' failed to satisfy "
               "constraint: Member must be an integer between 60 and 21600",
               ttl_s);
    goto rejected;
  }
  if (timeout_h && parse_int_header(timeout_h, 1, 3600, &timeout) != 0) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value '%.32s' at 'invocationTimeoutSeconds' failed to "
               "satisfy constraint: Member must be an integer between 1 and 3600",
               timeout_h);
    goto rejected;
  }

  if (ext_h && !extension_ok(ext_h)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value '%.600s' at 's3OutputPathExtension' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: "
               "^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$ and have length between 1 and 512",
               ext_h);
    goto rejected;
  }
  if (filename && !filename_ok(filename)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value '%.64s' at 'filename' failed to satisfy constraint: "
               "Member must satisfy regular expression pattern: ^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$ "
               "and have length between 1 and 32",
               filename);
    goto rejected;
  }
  /* The extension is appended to the output path with exactly one '/'
   * between segments; a '..' segment cannot be stored on disk here. */
  char ext[520] = "";
  if (ext_h) {
    const char *e = ext_h;
    while (*e == '/') e++;
    size_t n = strlen(e);
    while (n && e[n - 1] == '/') n--;
    memcpy(ext, e, n);
    ext[n] = '\0';
    if (strstr(ext, "//") || strcmp(ext, "..") == 0 || strncmp(ext, "../", 3) == 0 || strstr(ext, "/../") ||
        (n >= 3 && strcmp(ext + n - 3, "/..") == 0)) {
      resp_error(resp, 400, "ValidationError",
                 "S3OutputPathExtension '%.600s' has an empty or '..' path segment, which this local "
                 "endpoint cannot store",
                 ext_h);
      goto rejected;
    }
  }

  char gen_id[37];
  if (!infid) {
    asd_uuid4(gen_id);
    infid = gen_id;
  }
  char uuid[37];
  asd_uuid4(uuid);
  char out_key[ASD_RT_PREFIX_MAX + 600], fail_key[ASD_RT_PREFIX_MAX + 600];
  object_key(out_key, sizeof(out_key), ep->spec.output_prefix, ext, filename ? filename : uuid,
             filename ? "" : ".out");
  object_key(fail_key, sizeof(fail_key), ep->spec.failure_prefix, ext, filename ? filename : uuid, "-error.out");
  int has_failure = ep->spec.failure_bucket[0] != '\0';
  /* One allocation: the record followed by its strings. */
  size_t l_id = strlen(infid) + 1, l_b = strlen(bucket) + 1, l_k = strlen(key) + 1;
  size_t l_ct = ctype ? strlen(ctype) + 1 : 0, l_ac = accept ? strlen(accept) + 1 : 0;
  size_t l_at = attrs ? strlen(attrs) + 1 : 0;
  size_t l_ok = strlen(out_key) + 1, l_fk = has_failure ? strlen(fail_key) + 1 : 0;
  rt_job *job = malloc(sizeof(rt_job) + l_id + l_b + l_k + l_ct + l_ac + l_at + l_ok + l_fk);
  if (!job) {
    resp_error(resp, 500, "InternalFailure", "Out of memory queueing the request.");
    goto rejected;
  }
  char *p = job->strings;
#define PUT_STR(field, src, len)      \
  do {                                \
    if (len) {                        \
      memcpy(p, src, len);            \
      job->field = p;                 \
      p += len;                       \
    } else {                          \
      job->field = NULL;              \
    }                                 \
  } while (0)
  PUT_STR(inference_id, infid, l_id);
  PUT_STR(input_bucket, bucket, l_b);
  PUT_STR(input_key, key, l_k);
  PUT_STR(content_type, ctype, l_ct);
  PUT_STR(accept, accept, l_ac);
  PUT_STR(custom_attributes, attrs, l_at);
  PUT_STR(out_key, out_key, l_ok);
  PUT_STR(fail_key, fail_key, l_fk);
#undef PUT_STR
  job->next = NULL;
  job->enqueued = asd_time_monotonic();
  job->ttl_deadline = job->enqueued + (double)ttl * ep->spec.time_scale;
  job->timeout_s = (double)timeout * ep->spec.time_scale;
  memcpy(job->uuid, uuid, sizeof(uuid));

  char out_loc[ASD_RT_PREFIX_MAX + 700], fail_loc[ASD_RT_PREFIX_MAX + 700];
  snprintf(out_loc, sizeof(out_loc), "s3://%s/%s", ep->spec.output_bucket, out_key);
  snprintf(fail_loc, sizeof(fail_loc), "s3://%s/%s", ep->spec.failure_bucket, fail_key);
  asd_buf body;
  asd_buf_init(&body);
  asd_buf_append_str(&body, "{\"InferenceId\":\"");
  json_escape_into(&body, infid);
  asd_buf_append_str(&body, "\"}");

  pthread_mutex_lock(&ep->mu);
  if (ep->depth >= RT_MAX_QUEUE) {
    ep->rejected++;
    pthread_mutex_unlock(&ep->mu);
    free(job);
    asd_buf_free(&body);
    resp_error(resp, 503, "ServiceUnavailable", "The queue of endpoint %s is full.", ep->spec.name);
    return;
  }
  if (ep->tail) ep->tail->next = job;
  else ep->head = job;
  ep->tail = job;
  ep->depth++;
  ep->accepted++;
  if (ep->warm_at == 0) ep->warm_at = job->enqueued + ep->spec.cold_start_ms / 1000.0;
  pthread_cond_signal(&ep->cv);
  pthread_mutex_unlock(&ep->mu);

  resp_start(resp, 202);
  resp_header(resp, "Content-Type", "application/json");
  resp_header(resp, "X-Amzn-SageMaker-OutputLocation", out_loc);
  if (has_failure) resp_header(resp, "X-Amzn-SageMaker-FailureLocation", fail_loc);
  resp_body(resp, body.data, body.len);
  asd_buf_free(&body);
  apply_after_accept(after_accept, resp);
  return;
rejected:
  pthread_mutex_lock(&ep->mu);
  ep->rejected++;
  pthread_mutex_unlock(&ep->mu);
}

void ep_runtime_invoke_sync(ep_runtime *rt, const char *endpoint, ep_rt_header_fn header,
                             void *header_ctx, const unsigned char *body, size_t body_len,
                             ep_rt_response *resp) {
  ep_rt_response_clear(resp);
  rt_endpoint *ep = lookup_or_error(rt, endpoint, resp);
  if (!ep) return;
  ep_invoke_fault after_accept;
  if (apply_invoke_fault(rt, endpoint, resp, &after_accept)) return;
  /* InvokeEndpoint carries its content type and accept in the standard
   * headers; the SageMaker-specific ones are accepted too. */
  const char *ctype = header(header_ctx, "Content-Type");
  const char *accept = header(header_ctx, "Accept");
  const char *attrs = header(header_ctx, H_ATTRS);
  const char *infid = header(header_ctx, H_INFID);
  if (attrs && !text_ok(attrs, 0, 1024, 0x20, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'customAttributes' failed to satisfy "
               "constraint: Member must have length less than or equal to 1024 and be visible ASCII");
    return;
  }
  if (infid && !text_ok(infid, 1, 64, 0x21, 0x7e)) {
    resp_error(resp, 400, "ValidationError",
               "1 validation error detected: Value at 'inferenceId' failed to satisfy constraint: "
               "Member must have length between 1 and 64");
    return;
  }
  if (body_len > 6u * 1024 * 1024) {
    resp_error(resp, 400, "ValidationError", "Request payload exceeds the 6 MB limit of InvokeEndpoint.");
    return;
  }
  pthread_mutex_lock(&ep->mu);
  ep->sync_invocations++;
  ep->in_flight++;
  pthread_mutex_unlock(&ep->mu);

  /* SageMaker's own limit for a synchronous model call is 60 s. */
  double start = asd_time_monotonic(), deadline = start + 60.0 * ep->spec.time_scale;
  ep_job_fault fault = ep_faults_job(rt->faults);
  double latency = draw_latency(ep, attrs);
  int stopped = 0, timed_out = 0;
  if (fault == ASD_JOB_FAULT_HANG) {
    stopped = rt_wait_until(rt, deadline) != 0;
    timed_out = 1;
  } else if (latency > 0) {
    double wake = start + latency < deadline ? start + latency : deadline;
    stopped = rt_wait_until(rt, wake) != 0;
    timed_out = start + latency >= deadline;
  }
  ep_model_output out;
  ep_model_output_init(&out);
  int mrc = 0;
  char bad[128];
  double m0 = asd_time_monotonic();
  if (stopped) {
    resp_error(resp, 503, "ServiceUnavailable", "The endpoint server is shutting down.");
  } else if (timed_out) {
    resp_error(resp, 424, "ModelError", "Received server error (0) from primary: the model did not "
               "answer within 60 seconds.");
  } else {
    ep_model *model = pick_model(rt, ep, attrs, bad, sizeof(bad));
    if (!model) {
      mrc = -1;
      snprintf(out.error, sizeof(out.error), "model_selection=%s: no such model", bad);
    } else if (fault == ASD_JOB_FAULT_MODEL_ERROR) {
      mrc = -1;
      snprintf(out.error, sizeof(out.error), "injected model error (fault injection)");
    } else {
      ep_model_input in = {body, body_len, ctype, accept, attrs, infid, deadline - m0 > 0.001 ? deadline - m0 : 0.001};
      mrc = ep_model_invoke(model, &in, &out);
    }
    if (mrc != 0) {
      resp_error(resp, 424, "ModelError", "Received client error (424) from primary with message \"%s\".",
                 out.error);
    } else {
      resp_start(resp, 200);
      resp_header(resp, "Content-Type", out.content_type);
      resp_header(resp, "x-Amzn-Invoked-Production-Variant", "AllTraffic");
      resp_body(resp, out.body.data, out.body.len);
    }
  }
  double m1 = asd_time_monotonic();
  pthread_mutex_lock(&ep->mu);
  ep->in_flight--;
  if (resp->status != 200) ep->sync_failed++;
  if (!stopped && !timed_out) ring_add(&ep->model_time, (m1 - m0) * 1000.0);
  pthread_mutex_unlock(&ep->mu);
  ep_model_output_free(&out);
  /* The model ran (and was paid for); the answer is lost on the way. */
  apply_after_accept(after_accept, resp);
}

/* -------------------------------------------------------------------- stats */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static json_object *ring_json(const rt_ring *r, double *scratch) {
  json_object *o = json_object_new_object();
  size_t n = r->count < RT_LAT_RING ? (size_t)r->count : RT_LAT_RING;
  json_object_object_add(o, "count", json_object_new_int64((int64_t)r->count));
  json_object_object_add(o, "window", json_object_new_int64((int64_t)n));
  if (n == 0) return o;
  memcpy(scratch, r->v, n * sizeof(double));
  qsort(scratch, n, sizeof(double), cmp_double);
  const double qs[4] = {0.5, 0.9, 0.99, 1.0};
  const char *names[4] = {"p50", "p90", "p99", "max"};
  for (int i = 0; i < 4; i++) {
    size_t idx = (size_t)ceil(qs[i] * (double)n) - 1;
    if (idx >= n) idx = n - 1;
    json_object_object_add(o, names[i], json_object_new_double(round(scratch[idx] * 1000.0) / 1000.0));
  }
  return o;
}

struct json_object *ep_runtime_stats_json(ep_runtime *rt) {
  json_object *root = json_object_new_object();
  json_object *eps = json_object_new_object();
  int64_t t_depth = 0, t_inflight = 0, t_completed = 0, t_failed = 0;
  double *scratch = malloc(RT_LAT_RING * sizeof(double));
  rt_ring *copy = malloc(sizeof(rt_ring));
  for (int i = 0; rt && i < rt->n_eps && scratch && copy; i++) {
    rt_endpoint *ep = &rt->eps[i];
    json_object *o = json_object_new_object();
    json_object *fr = json_object_new_object();
    pthread_mutex_lock(&ep->mu);
    json_object_object_add(o, "model", json_object_new_string(ep->spec.model));
    json_object_object_add(o, "workers", json_object_new_int(ep->n_workers));
    json_object_object_add(o, "queue_depth", json_object_new_int64((int64_t)ep->depth));
    json_object_object_add(o, "in_flight", json_object_new_int(ep->in_flight));
    json_object_object_add(o, "accepted", json_object_new_int64((int64_t)ep->accepted));
    json_object_object_add(o, "rejected", json_object_new_int64((int64_t)ep->rejected));
    json_object_object_add(o, "completed", json_object_new_int64((int64_t)ep->completed));
    json_object_object_add(o, "failed", json_object_new_int64((int64_t)ep->failed));
    json_object_object_add(o, "abandoned", json_object_new_int64((int64_t)ep->abandoned));
    json_object_object_add(fr, "model_error", json_object_new_int64((int64_t)ep->f_model_error));
    json_object_object_add(fr, "ttl_expired", json_object_new_int64((int64_t)ep->f_ttl));
    json_object_object_add(fr, "invocation_timeout", json_object_new_int64((int64_t)ep->f_timeout));
    json_object_object_add(fr, "input_missing", json_object_new_int64((int64_t)ep->f_input_missing));
    json_object_object_add(fr, "store_error", json_object_new_int64((int64_t)ep->store_errors));
    json_object_object_add(fr, "no_failure_path", json_object_new_int64((int64_t)ep->f_unreported));
    json_object_object_add(o, "warm", json_object_new_boolean(ep->warm_at > 0 && ep->warm_at <= asd_time_monotonic()));
    json_object_object_add(o, "failed_by_reason", fr);
    json_object_object_add(o, "sync_invocations", json_object_new_int64((int64_t)ep->sync_invocations));
    json_object_object_add(o, "sync_failed", json_object_new_int64((int64_t)ep->sync_failed));
    t_depth += (int64_t)ep->depth;
    t_inflight += ep->in_flight;
    t_completed += (int64_t)ep->completed;
    t_failed += (int64_t)ep->failed;
    *copy = ep->latency;
    pthread_mutex_unlock(&ep->mu);
    json_object_object_add(o, "latency_ms", ring_json(copy, scratch));
    pthread_mutex_lock(&ep->mu);
    *copy = ep->model_time;
    pthread_mutex_unlock(&ep->mu);
    json_object_object_add(o, "model_ms", ring_json(copy, scratch));
    json_object_object_add(eps, ep->spec.name, o);
  }
  free(scratch);
  free(copy);
  json_object_object_add(root, "endpoints", eps);
  json_object *tot = json_object_new_object();
  json_object_object_add(tot, "queue_depth", json_object_new_int64(t_depth));
  json_object_object_add(tot, "in_flight", json_object_new_int64(t_inflight));
  json_object_object_add(tot, "completed", json_object_new_int64(t_completed));
  json_object_object_add(tot, "failed", json_object_new_int64(t_failed));
  json_object_object_add(root, "totals", tot);
  return root;
}
