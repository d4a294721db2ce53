/*
 * config.c: the engine configuration (the seed's AsyncEndpointConfig).
 *
 * One table describes every field: its name, its ASYNC_SM_* key, its kind
 * and where it lives in the structure.  Loading, setting by name and
 * exporting to JSON all walk that table, so a field cannot be forgotten by
 * one of them.  Validation is written out by hand because each field has its
 * own accepted range and its own message.
 *
 * Where a value comes from.  Every ASYNC_SM_* key is read through GDAL's
 * CPLGetConfigOption(), as every GDAL setting is: a `--config KEY VALUE` on
 * the command line (or CPLSetConfigOption() in a program) beats the process
 * environment, and GDAL's configuration file ([configoptions] of
 * ~/.gdal/gdalrc or GDAL_CONFIG_FILE) supplies keys the environment does not
 * set (GDAL's own rule: that file never overrides an environment variable).
 * The utility applies its flags over the result, so the order is
 * flag > --config > environment / configuration file > default.  Reading
 * getenv() directly, as the first version did, made `--config` a silent
 * no-op.
 *
 * Durations are doubles in seconds.  Parsing is strict: "30s" or "1e999" is
 * an error naming the variable, not a silent zero, because a mistyped
 * environment variable should stop a run before it starts uploading.
 *
 * The backoff schedule lives here too, as a pure function of the
 * configuration, so the poller, the simple-mode workers, the tests and the
 * benchmark all compute the same delays.
 */
#include "asyncdetect/asd_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sagemaker.h"
#include "cpl_conv.h"

typedef enum field_kind { F_STRING, F_DOUBLE, F_INT, F_BOOL, F_POLICY } field_kind;

typedef struct field {
  const char *name;
  const char *env;
  field_kind kind;
  size_t offset;
  size_t size; /* for strings: capacity */
} field;

#define FS(name, env, member) \
  {name, env, F_STRING, offsetof(asd_async_config, member), sizeof(((asd_async_config *)0)->member)}
#define FD(name, env, member) {name, env, F_DOUBLE, offsetof(asd_async_config, member), 0}
#define FI(name, env, member) {name, env, F_INT, offsetof(asd_async_config, member), 0}
#define FB(name, env, member) {name, env, F_BOOL, offsetof(asd_async_config, member), 0}

static const field k_fields[] = {
    FS("input_bucket", "ASYNC_SM_INPUT_BUCKET", input_bucket),
    FS("output_bucket", "ASYNC_SM_OUTPUT_BUCKET", output_bucket),
    FS("input_prefix", "ASYNC_SM_INPUT_PREFIX", input_prefix),
    FS("output_prefix", "ASYNC_SM_OUTPUT_PREFIX", output_prefix),
    FD("max_wait_time", "ASYNC_SM_MAX_WAIT_TIME", max_wait_time),
    FD("polling_interval", "ASYNC_SM_POLLING_INTERVAL", polling_interval),
    FD("max_polling_interval", "ASYNC_SM_MAX_POLLING_INTERVAL", max_polling_interval),
    FD("exponential_backoff_multiplier", "ASYNC_SM_BACKOFF_MULTIPLIER",
       exponential_backoff_multiplier),
    FD("polling_jitter", "ASYNC_SM_POLLING_JITTER", polling_jitter),
    FB("adaptive_polling", "ASYNC_SM_ADAPTIVE_POLLING", adaptive_polling),
    FI("max_retries", "ASYNC_SM_MAX_RETRIES", max_retries),
    FB("cleanup_enabled", "ASYNC_SM_CLEANUP_ENABLED", cleanup_enabled),
    {"cleanup_policy", "ASYNC_SM_CLEANUP_POLICY", F_POLICY, offsetof(asd_async_config, cleanup_policy), 0},
    FD("cleanup_delay_seconds", "ASYNC_SM_CLEANUP_DELAY_SECONDS", cleanup_delay_seconds),
    FB("enable_worker_optimization", "ASYNC_SM_WORKER_OPTIMIZATION", enable_worker_optimization),
    FI("submission_workers", "ASYNC_SM_SUBMISSION_WORKERS", submission_workers),
    FI("polling_workers", "ASYNC_SM_POLLING_WORKERS", polling_workers),
    FI("max_concurrent_jobs", "ASYNC_SM_MAX_CONCURRENT_JOBS", max_concurrent_jobs),
    FD("job_queue_timeout", "ASYNC_SM_JOB_QUEUE_TIMEOUT", job_queue_timeout),
    FS("content_type", "ASYNC_SM_CONTENT_TYPE", content_type),
    FS("accept", "ASYNC_SM_ACCEPT", accept),
    FS("custom_attributes", "ASYNC_SM_CUSTOM_ATTRIBUTES", custom_attributes),
    FI("invocation_timeout_seconds", "ASYNC_SM_INVOCATION_TIMEOUT", invocation_timeout_seconds),
    FI("request_ttl_seconds", "ASYNC_SM_REQUEST_TTL", request_ttl_seconds),
    FS("endpoint", "ASYNC_SM_ENDPOINT", endpoint),
    FS("region", "ASYNC_SM_REGION", region),
    FS("sse", "ASYNC_SM_SSE", sse),
    FS("sse_kms_key_id", "ASYNC_SM_SSE_KMS_KEY_ID", sse_kms_key_id),
    FS("expected_bucket_owner", "ASYNC_SM_EXPECTED_BUCKET_OWNER", expected_bucket_owner),
};
#define N_FIELDS (sizeof k_fields / sizeof k_fields[0])

static void set_err(char *err, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_err(char *err, size_t len, const char *fmt, ...) {
  if (!err || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

void asd_config_init(asd_async_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->input_prefix, sizeof cfg->input_prefix, "%s", "async-inference/input/");
  snprintf(cfg->output_prefix, sizeof cfg->output_prefix, "%s", "async-inference/output/");
  cfg->max_wait_time = 3600;
  cfg->polling_interval = 30;
  cfg->max_polling_interval = 300;
  cfg->exponential_backoff_multiplier = 1.5;
  cfg->polling_jitter = 0.1;
  cfg->adaptive_polling = 1;
  cfg->max_retries = 3;
  cfg->cleanup_enabled = 1;
  cfg->cleanup_policy = ASD_CLEANUP_IMMEDIATE;
  cfg->cleanup_delay_seconds = 300;
  cfg->enable_worker_optimization = 1;
  cfg->submission_workers = 4;
  cfg->polling_workers = 2;
  cfg->max_concurrent_jobs = 100;
  cfg->job_queue_timeout = 300;
  snprintf(cfg->content_type, sizeof cfg->content_type, "%s", "application/octet-stream");
}

const char *asd_cleanup_policy_name(asd_cleanup_policy p) {
  switch (p) {
    case ASD_CLEANUP_IMMEDIATE: return "immediate";
    case ASD_CLEANUP_DELAYED: return "delayed";
    case ASD_CLEANUP_DISABLED: return "disabled";
  }
  return "unknown";
}

int asd_cleanup_policy_parse(const char *text, asd_cleanup_policy *out) {
  if (!text) return -1;
  while (isspace((unsigned char)*text)) text++;
  size_t n = strlen(text);
  while (n > 0 && isspace((unsigned char)text[n - 1])) n--;
  static const asd_cleanup_policy all[] = {ASD_CLEANUP_IMMEDIATE, ASD_CLEANUP_DELAYED,
                                           ASD_CLEANUP_DISABLED};
  for (size_t i = 0; i < 3; i++) {
    const char *name = asd_cleanup_policy_name(all[i]);
    if (strlen(name) == n && strncasecmp(text, name, n) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return -1;
}

asd_cleanup_policy asd_config_effective_policy(const asd_async_config *cfg) {
  return cfg->cleanup_enabled ? cfg->cleanup_policy : ASD_CLEANUP_DISABLED;
}

static int parse_bool(const char *s, int *out) {
  static const char *yes[] = {"1", "true", "yes", "on"};
  static const char *no[] = {"0", "false", "no", "off"};
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  for (size_t i = 0; i < 4; i++) {
    if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) {
      *out = 1;
      return 0;
    }
    if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

static int parse_double(const char *s, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE || !isfinite(v)) return -1;
  while (isspace((unsigned char)*end)) end++;
  if (*end) return -1;
  *out = v;
  return 0;
}

static int parse_int(const char *s, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || errno == ERANGE || v < -2147483647L || v > 2147483647L) return -1;
  while (isspace((unsigned char)*end)) end++;
  if (*end) return -1;
  *out = (int)v;
  return 0;
}

static const field *find_field(const char *name) {
  for (size_t i = 0; i < N_FIELDS; i++)
    if (strcasecmp(k_fields[i].name, name) == 0 || strcasecmp(k_fields[i].env, name) == 0)
      return &k_fields[i];
  return NULL;
}

/* Remembers that the user chose the polling schedule or the polling mode,
 * so that asd_config_adaptive_polling() lets the explicit choice win. */
static void note_explicit(asd_async_config *cfg, const field *f) {
  if (f->offset == offsetof(asd_async_config, adaptive_polling))
    cfg->polling_explicit |= ASD_POLLING_SET_MODE;
  else if (f->offset == offsetof(asd_async_config, polling_interval) ||
           f->offset == offsetof(asd_async_config, max_polling_interval) ||
           f->offset == offsetof(asd_async_config, exponential_backoff_multiplier))
    cfg->polling_explicit |= ASD_POLLING_SET_SCHEDULE;
}

/* Stores text into the field f; label names the field or the variable in errors. */
static int set_field(asd_async_config *cfg, const field *f, const char *value, const char *label,
                     char *err, size_t err_len) {
  char *base = (char *)cfg + f->offset;
  note_explicit(cfg, f);
  switch (f->kind) {
    case F_STRING:
      if (strlen(value) >= f->size) {
        set_err(err, err_len, "%s is too long (at most %zu characters)", label, f->size - 1);
        return -1;
      }
      memcpy(base, value, strlen(value) + 1);
      return 0;
    case F_DOUBLE: {
      double v;
      if (parse_double(value, &v) != 0) {
        set_err(err, err_len, "%s must be a number of seconds (got '%s')", label, value);
        return -1;
      }
      memcpy(base, &v, sizeof v);
      return 0;
    }
    case F_INT: {
      int v;
      if (parse_int(value, &v) != 0) {
        set_err(err, err_len, "%s must be an integer (got '%s')", label, value);
        return -1;
      }
      memcpy(base, &v, sizeof v);
      return 0;
    }
    case F_BOOL: {
      int v;
      if (parse_bool(value, &v) != 0) {
        set_err(err, err_len, "%s must be true or false (got '%s')", label, value);
        return -1;
      }
      memcpy(base, &v, sizeof v);
      return 0;
    }
    case F_POLICY: {
      asd_cleanup_policy p;
      if (asd_cleanup_policy_parse(value, &p) != 0) {
        set_err(err, err_len, "%s must be one of immediate, delayed, disabled (got '%s')", label,
                value);
        return -1;
      }
      memcpy(base, &p, sizeof p);
      return 0;
    }
  }
  return -1;
}

int asd_config_set(asd_async_config *cfg, const char *name, const char *value, char *err,
                   size_t err_len) {
  if (!cfg || !name || !value) {
    set_err(err, err_len, "configuration field name and value are required");
    return -1;
  }
  const field *f = find_field(name);
  if (!f) {
    set_err(err, err_len, "unknown configuration field '%s'", name);
    return -1;
  }
  return set_field(cfg, f, value, f->name, err, err_len);
}

int asd_config_load_env(asd_async_config *cfg, char *err, size_t err_len) {
  for (size_t i = 0; i < N_FIELDS; i++) {
    const char *v = CPLGetConfigOption(k_fields[i].env, NULL);
    if (!v) continue;
    if (set_field(cfg, &k_fields[i], v, k_fields[i].env, err, err_len) != 0) return -1;
  }
  return 0;
}

/* S3 bucket naming rules, the subset that matters for a clear early error. */
static int bucket_name_ok(const char *b) {
  size_t n = strlen(b);
  if (n < 3 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' || c == '.'))
      return 0;
  }
  return isalnum((unsigned char)b[0]) && isalnum((unsigned char)b[n - 1]);
}

/* AWS account ids: 12 digits. */
static int account_ok(const char *a) {
  if (strlen(a) != 12) return 0;
  for (const char *p = a; *p; p++)
    if (!isdigit((unsigned char)*p)) return 0;
  return 1;
}

/* AWS region names: lower-case letters, digits and '-' (us-east-1,
   us-gov-west-1, cn-north-1); anything else would end up in a host name. */
static int region_ok(const char *r) {
  size_t n = strlen(r);
  if (n < 2 || n > 32 || !islower((unsigned char)r[0])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)r[i]) || isdigit((unsigned char)r[i]) || r[i] == '-')) return 0;
  return r[n - 1] != '-';
}

static int header_ok(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

int asd_config_validate(const asd_async_config *c, char *err, size_t err_len) {
  if (!c) {
    set_err(err, err_len, "configuration is missing");
    return -1;
  }
  if (!c->input_bucket[0]) {
    set_err(err, err_len, "input_bucket is required (set it or ASYNC_SM_INPUT_BUCKET)");
    return -1;
  }
  if (!bucket_name_ok(c->input_bucket)) {
    set_err(err, err_len,
            "input_bucket '%s' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)",
            c->input_bucket);
    return -1;
  }
  if (c->output_bucket[0] && !bucket_name_ok(c->output_bucket)) {
    set_err(err, err_len,
            "output_bucket '%s' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)",
            c->output_bucket);
    return -1;
  }
  if (c->input_prefix[0] == '/') {
    set_err(err, err_len, "input_prefix must not start with '/' (got '%s')", c->input_prefix);
    return -1;
  }
  if (strlen(c->input_prefix) > 900) {
    set_err(err, err_len, "input_prefix must be at most 900 characters (S3 keys are <= 1024)");
    return -1;
  }
#define RANGE_CHECK(cond, ...)              \
  do {                                      \
    if (!(cond)) {                          \
      set_err(err, err_len, __VA_ARGS__);   \
      return -1;                            \
    }                                       \
  } while (0)
  RANGE_CHECK(c->max_wait_time > 0 && c->max_wait_time <= 86400,
              "max_wait_time must be in (0, 86400] seconds (got %g)", c->max_wait_time);
  RANGE_CHECK(c->polling_interval >= 0.001 && c->polling_interval <= 86400,
              "polling_interval must be in [0.001, 86400] seconds (got %g)", c->polling_interval);
  RANGE_CHECK(c->max_polling_interval >= c->polling_interval && c->max_polling_interval <= 86400,
              "max_polling_interval must be >= polling_interval (%g) and <= 86400 seconds (got %g)",
              c->polling_interval, c->max_polling_interval);
  RANGE_CHECK(c->exponential_backoff_multiplier > 1 && c->exponential_backoff_multiplier <= 10,
              "exponential_backoff_multiplier must be > 1 and <= 10 (got %g)",
              c->exponential_backoff_multiplier);
  RANGE_CHECK(c->polling_jitter >= 0 && c->polling_jitter <= 0.5,
              "polling_jitter must be in [0, 0.5] (got %g)", c->polling_jitter);
  RANGE_CHECK(c->max_retries >= 0 && c->max_retries <= 100,
              "max_retries must be in [0, 100] (got %d)", c->max_retries);
  RANGE_CHECK(c->cleanup_policy == ASD_CLEANUP_IMMEDIATE || c->cleanup_policy == ASD_CLEANUP_DELAYED ||
                  c->cleanup_policy == ASD_CLEANUP_DISABLED,
              "cleanup_policy must be one of immediate, delayed, disabled");
  RANGE_CHECK(c->cleanup_delay_seconds >= 0 && c->cleanup_delay_seconds <= 7 * 86400,
              "cleanup_delay_seconds must be in [0, 604800] (got %g)", c->cleanup_delay_seconds);
  RANGE_CHECK(c->submission_workers >= 1 && c->submission_workers <= 1024,
              "submission_workers must be in [1, 1024] (got %d)", c->submission_workers);
  RANGE_CHECK(c->polling_workers >= 1 && c->polling_workers <= 1024,
              "polling_workers must be in [1, 1024] (got %d)", c->polling_workers);
  RANGE_CHECK(c->max_concurrent_jobs >= 1 && c->max_concurrent_jobs <= 1000000,
              "max_concurrent_jobs must be in [1, 1000000] (got %d)", c->max_concurrent_jobs);
  RANGE_CHECK(c->job_queue_timeout > 0 && c->job_queue_timeout <= 86400,
              "job_queue_timeout must be in (0, 86400] seconds (got %g)", c->job_queue_timeout);
  RANGE_CHECK(header_ok(c->content_type), "content_type must be printable ASCII");
  RANGE_CHECK(header_ok(c->accept), "accept must be printable ASCII");
  RANGE_CHECK(header_ok(c->custom_attributes), "custom_attributes must be printable ASCII");
  RANGE_CHECK(c->invocation_timeout_seconds == 0 ||
                  (c->invocation_timeout_seconds >= 1 && c->invocation_timeout_seconds <= 3600),
              "invocation_timeout_seconds must be 0 (derived from max_wait_time) or in [1, 3600] (got %d)",
              c->invocation_timeout_seconds);
  RANGE_CHECK(c->request_ttl_seconds == 0 ||
                  (c->request_ttl_seconds >= 60 && c->request_ttl_seconds <= 21600),
              "request_ttl_seconds must be 0 (derived from max_wait_time) or in [60, 21600] (got %d)",
              c->request_ttl_seconds);
  RANGE_CHECK(!c->endpoint[0] || asd_sm_endpoint_name_valid(c->endpoint),
              "endpoint '%s' is not a valid SageMaker endpoint name (1-63 of a-z A-Z 0-9 and '-', "
              "not at either end)",
              c->endpoint);
  RANGE_CHECK(!c->region[0] || region_ok(c->region),
              "region '%s' is not an AWS region name (e.g. us-east-1)", c->region);
  RANGE_CHECK(!c->sse[0] || strcmp(c->sse, "AES256") == 0 || strcmp(c->sse, "aws:kms") == 0 ||
                  strcmp(c->sse, "aws:kms:dsse") == 0,
              "sse '%s' must be AES256, aws:kms or aws:kms:dsse", c->sse);
  RANGE_CHECK(!c->sse_kms_key_id[0] || strncmp(c->sse, "aws:kms", 7) == 0,
              "sse_kms_key_id needs sse aws:kms (or aws:kms:dsse)%s", "");
  RANGE_CHECK(!c->expected_bucket_owner[0] || account_ok(c->expected_bucket_owner),
              "expected_bucket_owner '%s' is not a 12-digit AWS account id", c->expected_bucket_owner);
  char ext[ASD_CONFIG_PREFIX_MAX];
  asd_config_output_path_extension(c, ext, sizeof ext);
  RANGE_CHECK(!ext[0] || asd_sm_output_path_extension_valid(ext),
              "output_prefix '%s' cannot be sent as SageMaker's S3OutputPathExtension: at most 512 of "
              "a-z A-Z 0-9 ! _ . * ' ( ) / -, not starting with s3: or https:",
              c->output_prefix);
#undef RANGE_CHECK
  return 0;
}

size_t asd_config_output_path_extension(const asd_async_config *cfg, char *out, size_t out_len) {
  if (!out || out_len == 0) return 0;
  const char *p = cfg->output_prefix;
  while (*p == '/') p++;
  size_t n = strlen(p);
  while (n > 0 && p[n - 1] == '/') n--;
  if (n >= out_len) n = out_len - 1;
  memcpy(out, p, n);
  out[n] = '\0';
  return n;
}

/* The deadline the endpoint itself enforces follows max_wait_time unless the
   user gave one: a job that cannot finish in time for us is better expired by
   the endpoint (which then writes a failure object) than left running. */
int asd_config_request_ttl(const asd_async_config *cfg) {
  if (cfg->request_ttl_seconds > 0) return cfg->request_ttl_seconds;
  double v = ceil(cfg->max_wait_time);
  return v < 60 ? 60 : v > 21600 ? 21600 : (int)v;
}

int asd_config_invocation_timeout(const asd_async_config *cfg) {
  if (cfg->invocation_timeout_seconds > 0) return cfg->invocation_timeout_seconds;
  double v = ceil(cfg->max_wait_time);
  return v < 1 ? 1 : v > 3600 ? 3600 : (int)v;
}

double asd_config_poll_interval(const asd_async_config *cfg, int attempt) {
  double v = cfg->polling_interval;
  for (int i = 0; i < attempt && v < cfg->max_polling_interval; i++)
    v *= cfg->exponential_backoff_multiplier;
  return v < cfg->max_polling_interval ? v : cfg->max_polling_interval;
}

double asd_config_poll_delay(const asd_async_config *cfg, int attempt, double u) {
  double base = asd_config_poll_interval(cfg, attempt);
  double j = cfg->polling_jitter;
  double v = base * (1.0 - j + 2.0 * j * u);
  if (v > cfg->max_polling_interval) v = cfg->max_polling_interval;
  if (v < 0) v = 0;
  return v;
}

int asd_config_adaptive_polling(const asd_async_config *cfg) {
  if (cfg->polling_explicit & ASD_POLLING_SET_MODE) return cfg->adaptive_polling != 0;
  return cfg->adaptive_polling && !(cfg->polling_explicit & ASD_POLLING_SET_SCHEDULE);
}

int asd_config_min_polls(const asd_async_config *cfg, double latency) {
  double t = 0;
  int k = 0;
  do {
    t += asd_config_poll_interval(cfg, k);
    k++;
  } while (t + 1e-12 < latency && k < 1000000);
  return k;
}

char *asd_config_to_json(const asd_async_config *cfg) {
  asd_buf b;
  asd_buf_init(&b);
  int rc = asd_buf_append_str(&b, "{");
  for (size_t i = 0; i < N_FIELDS && rc == 0; i++) {
    const field *f = &k_fields[i];
    const char *base = (const char *)cfg + f->offset;
    rc |= asd_buf_appendf(&b, "%s\"%s\":", i ? "," : "", f->name);
    switch (f->kind) {
      case F_STRING: {
        rc |= asd_buf_append_str(&b, "\"");
        for (const char *s = base; *s && rc == 0; s++) {
          unsigned char ch = (unsigned char)*s;
          if (ch == '"' || ch == '\\')
            rc |= asd_buf_appendf(&b, "\\%c", ch);
          else if (ch < 0x20)
            rc |= asd_buf_appendf(&b, "\\u%04x", ch);
          else
            rc |= asd_buf_append(&b, s, 1);
        }
        rc |= asd_buf_append_str(&b, "\"");
        break;
      }
      case F_DOUBLE: {
        double v;
        memcpy(&v, base, sizeof v);
        rc |= asd_buf_appendf(&b, "%.17g", v);
        break;
      }
      case F_INT: {
        int v;
        memcpy(&v, base, sizeof v);
        rc |= asd_buf_appendf(&b, "%d", v);
        break;
      }
      case F_BOOL: {
        int v;
        memcpy(&v, base, sizeof v);
        rc |= asd_buf_append_str(&b, v ? "true" : "false");
        break;
      }
      case F_POLICY: {
        asd_cleanup_policy p;
        memcpy(&p, base, sizeof p);
        rc |= asd_buf_appendf(&b, "\"%s\"", asd_cleanup_policy_name(p));
        break;
      }
    }
  }
  rc |= asd_buf_append_str(&b, "}");
  if (rc != 0) {
    asd_buf_free(&b);
    return NULL;
  }
  return (char *)asd_buf_take(&b, NULL);
}
