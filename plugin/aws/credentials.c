/*
 * credentials.c: the AWS context and the standard credentials chain.
 *
 * Credentials are looked for in the order AWS users expect (PROTOCOL.md):
 * explicit values from the caller, the environment, web identity, the
 * shared profile files (role_arn with source_profile or credential_source,
 * IAM Identity Center / SSO in sso.c, static keys, credential_process in
 * process.c), the ECS container endpoint, and EC2 instance metadata (IMDSv2).  An explicit role ARN in the configuration
 * is then assumed on top of whatever base was found, for cross-account use.
 *
 * The first source that *applies* decides: a source that applies but fails
 * (a garbled profile file, a credential_process that exits with an error,
 * AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY) stops the chain with an
 * error naming the source, rather than silently falling through to another
 * account's credentials.
 *
 * Values that come from the environment or the network are checked before
 * they are used: the container credentials URL is parsed with curl's URL
 * API (no user information; plain http only to loopback or the ECS/EKS agent
 * addresses), the container authorization token and the IMDS session token
 * must be valid header values, and the IMDS role name must be an IAM role
 * name before it becomes part of a URL.
 *
 * The context caches the resolved credentials.  Temporary credentials are
 * refreshed when they come within a margin (5 minutes by default) of their
 * expiry.  Only one thread refreshes at a time; while it does, the others
 * keep using the cached credentials as long as those have not actually
 * expired, so a slow STS call never stalls the whole worker pool.  If a
 * refresh fails while the old credentials are still valid, they are kept and
 * the refresh is retried on the next request.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <curl/curl.h>
#include <cpl_string.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "aws_internal.h"

/* ------------------------------------------------------------- credentials */

void asd_aws_credentials_init(asd_aws_credentials *c) { memset(c, 0, sizeof(*c)); }

static void wipe_free(char *s) {
  if (!s) return;
  OPENSSL_cleanse(s, strlen(s));
  free(s);
}

void asd_aws_credentials_free(asd_aws_credentials *c) {
  if (!c) return;
  free(c->access_key_id);
  wipe_free(c->secret_access_key);
  wipe_free(c->session_token);
  memset(c, 0, sizeof(*c));
}

int asd_aws_credentials_copy(asd_aws_credentials *dst, const asd_aws_credentials *src) {
  asd_aws_credentials_init(dst);
  dst->access_key_id = src->access_key_id ? strdup(src->access_key_id) : NULL;
  dst->secret_access_key = src->secret_access_key ? strdup(src->secret_access_key) : NULL;
  dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
  dst->expiration = src->expiration;
  memcpy(dst->source, src->source, sizeof(dst->source));
  if ((src->access_key_id && !dst->access_key_id) ||
      (src->secret_access_key && !dst->secret_access_key) ||
      (src->session_token && !dst->session_token)) {
    asd_aws_credentials_free(dst);
    return -1;
  }
  return 0;
}

static int creds_set(asd_aws_credentials *c, const char *ak, const char *sk, const char *token,
                     double expiration, const char *source) {
  asd_aws_credentials_init(c);
  c->access_key_id = strdup(ak);
  c->secret_access_key = strdup(sk);
  c->session_token = token && *token ? strdup(token) : NULL;
  c->expiration = expiration;
  snprintf(c->source, sizeof(c->source), "%s", source);
  if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
    asd_aws_credentials_free(c);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ config */

void asd_aws_config_init(asd_aws_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->s3_path_style = -1;
  cfg->max_attempts = 0; /* AWS_MAX_ATTEMPTS, else 3 */
  cfg->retry_base_delay = 0.1;
  cfg->retry_max_backoff = 20.0;
  cfg->connect_timeout = 10.0;
  cfg->request_timeout = 300.0;
  cfg->low_speed_time = 30.0;
  cfg->low_speed_limit = 1;
  cfg->max_response_bytes = 64u << 20;
  cfg->credential_refresh_margin = 300.0;
  cfg->max_connections = 64;
  cfg->payload_signing = -1;
}

static const char *own(asd_aws_context *ctx, const char *s) {
  if (!s) return NULL;
  ctx->owned = CSLAddString(ctx->owned, s);
  return ctx->owned[CSLCount(ctx->owned) - 1];
}

/*
 * AWS_S3_ADDRESSING_STYLE (environment or --config): path, virtual or auto,
 * the values of botocore's s3.addressing_style.  auto (the default) is what
 * the SDKs do: virtual-hosted (BUCKET.s3.REGION.amazonaws.com) on AWS for
 * DNS-compatible names, path style for a custom endpoint URL, which may
 * have no wildcard DNS or certificate for bucket names.  0, or -1 (CONFIG).
 */
static int addressing_style(int *path_style, asd_aws_error *err) {
  const char *v = CPLGetConfigOption("AWS_S3_ADDRESSING_STYLE", NULL);
  if (!v || !*v || strcasecmp(v, "auto") == 0) return 0;
  if (strcasecmp(v, "path") == 0) {
    *path_style = 1;
  } else if (strcasecmp(v, "virtual") == 0) {
    *path_style = 0;
  } else {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS_S3_ADDRESSING_STYLE='%.40s': expected path, virtual or auto", v);
    return -1;
  }
  return 0;
}

/* The S3 encryption and ownership settings, checked before any call so a
 * typo is one line at startup, not an AccessDenied per tile.  0 or -1. */
static int s3_policy_headers_check(const asd_aws_config *c, asd_aws_error *err) {
  const char *sse = c->s3_sse;
  if (sse && strcmp(sse, "AES256") != 0 && strcmp(sse, "aws:kms") != 0 && strcmp(sse, "aws:kms:dsse") != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "server-side encryption '%.40s': expected AES256, aws:kms or aws:kms:dsse",
                      sse);
    return -1;
  }
  if (c->s3_sse_kms_key_id && (!sse || strncmp(sse, "aws:kms", 7) != 0)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "a KMS key id needs server-side encryption aws:kms (or aws:kms:dsse)");
    return -1;
  }
  for (const char *k = c->s3_sse_kms_key_id; k && *k; k++)
    if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "the KMS key id must be printable ASCII without spaces");
      return -1;
    }
  const char *o = c->s3_expected_bucket_owner;
  size_t digits = 0;
  for (const char *p = o; p && *p && isdigit((unsigned char)*p); p++) digits++;
  if (o && (strlen(o) != 12 || digits != 12)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "expected bucket owner '%.40s' is not a 12-digit AWS account id", o);
    return -1;
  }
  return 0;
}

asd_aws_context *asd_aws_context_new(const asd_aws_config *cfg_in, asd_aws_error *err) {
  asd_aws_error_clear(err);
  asd_aws_config defaults;
  if (!cfg_in) {
    asd_aws_config_init(&defaults);
    cfg_in = &defaults;
  }
  asd_aws_context *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_mutex_init(&ctx->refresh_lock, NULL);
  ctx->cfg = *cfg_in;
  asd_aws_config *c = &ctx->cfg;
  c->access_key_id = own(ctx, c->access_key_id);
  c->secret_access_key = own(ctx, c->secret_access_key);
  c->session_token = own(ctx, c->session_token);
  c->profile = own(ctx, c->profile);
  c->region = own(ctx, c->region);
  c->role_arn = own(ctx, c->role_arn);
  c->external_id = own(ctx, c->external_id);
  c->role_session_name = own(ctx, c->role_session_name);
  c->endpoint_url = own(ctx, c->endpoint_url);
  c->s3_endpoint_url = own(ctx, c->s3_endpoint_url);
  c->sagemaker_runtime_endpoint_url = own(ctx, c->sagemaker_runtime_endpoint_url);
  c->sts_endpoint_url = own(ctx, c->sts_endpoint_url);
  /* AWS_CA_BUNDLE is the AWS convention (CLI, SDKs) for a private CA; the
   * transport falls back to GDAL's CURL_CA_BUNDLE, then the system store. */
  if (!c->ca_bundle || !*c->ca_bundle) c->ca_bundle = CPLGetConfigOption("AWS_CA_BUNDLE", NULL);
  c->ca_bundle = own(ctx, c->ca_bundle);
  c->proxy = own(ctx, c->proxy);
  c->s3_sse = own(ctx, c->s3_sse && *c->s3_sse ? c->s3_sse : NULL);
  c->s3_sse_kms_key_id = own(ctx, c->s3_sse_kms_key_id && *c->s3_sse_kms_key_id ? c->s3_sse_kms_key_id : NULL);
  c->s3_expected_bucket_owner =
      own(ctx, c->s3_expected_bucket_owner && *c->s3_expected_bucket_owner ? c->s3_expected_bucket_owner : NULL);
  if (s3_policy_headers_check(c, err) != 0) {
    asd_aws_context_free(ctx);
    return NULL;
  }
  c->user_agent = own(ctx, c->user_agent);
  if (c->max_attempts <= 0) {
    const char *e = getenv("AWS_MAX_ATTEMPTS");
    int v = e ? atoi(e) : 0;
    c->max_attempts = v > 0 && v <= 20 ? v : 3;
  }
  if (c->retry_base_delay < 0) c->retry_base_delay = 0;
  if (c->retry_max_backoff <= 0) c->retry_max_backoff = 20.0;
  if (c->credential_refresh_margin < 0) c->credential_refresh_margin = 0;

  int bad_explicit = (c->access_key_id && *c->access_key_id) != (c->secret_access_key && *c->secret_access_key);
  if (bad_explicit) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "explicit AWS credentials need both an access key id and a secret access key");
    asd_aws_context_free(ctx);
    return NULL;
  }
  if (c->s3_path_style < 0 && addressing_style(&c->s3_path_style, err) != 0) {
    asd_aws_context_free(ctx);
    return NULL;
  }
  snprintf(ctx->profile, sizeof(ctx->profile), "%s", asd_aws_profile_name(c->profile));
  if (asd_aws_resolve_region(c->region, ctx->profile, ctx->region, sizeof(ctx->region), err) != 0) {
    asd_aws_context_free(ctx);
    return NULL;
  }
  const char *overrides[ASD_AWS_SERVICE_COUNT] = {
      c->s3_endpoint_url ? c->s3_endpoint_url : c->endpoint_url,
      c->sagemaker_runtime_endpoint_url ? c->sagemaker_runtime_endpoint_url : c->endpoint_url,
      c->sts_endpoint_url ? c->sts_endpoint_url : c->endpoint_url};
  for (int s = 0; s < ASD_AWS_SERVICE_COUNT; s++) {
    if (asd_aws_resolve_endpoint((asd_aws_service)s, ctx->region, overrides[s], ctx->profile,
                                 c->s3_path_style, &ctx->endpoints[s], err) != 0) {
      asd_aws_context_free(ctx);
      return NULL;
    }
  }
  ctx->transport = asd_http_transport_new(c, &ctx->cancelled);
  ctx->keys = asd_sigv4_key_cache_new();
  if (!ctx->transport || !ctx->keys) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "could not initialise the HTTP transport");
    asd_aws_context_free(ctx);
    return NULL;
  }
  CPLDebug("ASD_AWS", "region %s, S3 %s (%s), SageMaker Runtime %s, STS %s", ctx->region,
           ctx->endpoints[ASD_AWS_S3].base_url,
           ctx->endpoints[ASD_AWS_S3].path_style ? "path style" : "virtual host",
           ctx->endpoints[ASD_AWS_SAGEMAKER_RUNTIME].base_url, ctx->endpoints[ASD_AWS_STS].base_url);
  return ctx;
}

void asd_aws_context_free(asd_aws_context *ctx) {
  if (!ctx) return;
  asd_http_transport_free(ctx->transport);
  asd_sigv4_key_cache_free(ctx->keys);
  asd_aws_credentials_free(&ctx->creds);
  free(ctx->bucket_regions);
  for (char **p = ctx->owned; p && *p; p++) OPENSSL_cleanse(*p, strlen(*p));
  CSLDestroy(ctx->owned);
  pthread_mutex_destroy(&ctx->lock);
  pthread_mutex_destroy(&ctx->refresh_lock);
  free(ctx);
}

const char *asd_aws_context_region(const asd_aws_context *ctx) { return ctx->region; }

const asd_aws_endpoint *asd_aws_context_endpoint(const asd_aws_context *ctx, asd_aws_service svc) {
  if ((int)svc < 0 || svc >= ASD_AWS_SERVICE_COUNT) return NULL;
  return &ctx->endpoints[svc];
}

void asd_aws_context_cancel(asd_aws_context *ctx) { __atomic_store_n(&ctx->cancelled, 1, __ATOMIC_SEQ_CST); }

int asd_aws_context_cancelled(const asd_aws_context *ctx) {
  return __atomic_load_n(&ctx->cancelled, __ATOMIC_SEQ_CST);
}

double asd_aws_context_clock_offset(const asd_aws_context *ctx) {
  asd_aws_context *m = (asd_aws_context *)ctx;
  pthread_mutex_lock(&m->lock);
  double o = m->clock_offset;
  pthread_mutex_unlock(&m->lock);
  return o;
}

void asd_aws_context_invalidate_credentials(asd_aws_context *ctx) {
  pthread_mutex_lock(&ctx->lock);
  asd_aws_credentials_free(&ctx->creds);
  ctx->have_creds = 0;
  pthread_mutex_unlock(&ctx->lock);
}

/* Copies the cache into out when usable: fresh (outside the margin), or,
 * with allow_stale, merely unexpired.  Called with ctx->lock held. */
static int cached_usable(asd_aws_context *ctx, double now, int allow_stale) {
  if (!ctx->have_creds) return 0;
  double exp = ctx->creds.expiration;
  if (exp <= 0) return 1;
  double margin = allow_stale ? 0 : ctx->cfg.credential_refresh_margin;
  return now < exp - margin;
}

int asd_aws_context_get_credentials(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  double now = asd_time_wall();
  pthread_mutex_lock(&ctx->lock);
  if (cached_usable(ctx, now, 0)) {
    int rc = asd_aws_credentials_copy(out, &ctx->creds);
    pthread_mutex_unlock(&ctx->lock);
    if (rc) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return rc;
  }
  pthread_mutex_unlock(&ctx->lock);

  /* Someone else refreshing?  Use unexpired credentials meanwhile. */
  if (pthread_mutex_trylock(&ctx->refresh_lock) != 0) {
    pthread_mutex_lock(&ctx->lock);
    if (cached_usable(ctx, now, 1)) {
      int rc = asd_aws_credentials_copy(out, &ctx->creds);
      pthread_mutex_unlock(&ctx->lock);
      return rc;
    }
    pthread_mutex_unlock(&ctx->lock);
    pthread_mutex_lock(&ctx->refresh_lock);
  }
  /* Re-check: the previous holder may have refreshed. */
  pthread_mutex_lock(&ctx->lock);
  if (cached_usable(ctx, asd_time_wall(), 0)) {
    int rc = asd_aws_credentials_copy(out, &ctx->creds);
    pthread_mutex_unlock(&ctx->lock);
    pthread_mutex_unlock(&ctx->refresh_lock);
    return rc;
  }
  pthread_mutex_unlock(&ctx->lock);

  asd_aws_credentials fresh;
  asd_aws_credentials_init(&fresh);
  int rc = asd_aws_resolve_credentials(ctx, &fresh, err);
  pthread_mutex_lock(&ctx->lock);
  if (rc == 0) {
    asd_aws_credentials_free(&ctx->creds);
    ctx->creds = fresh;
    ctx->have_creds = 1;
    CPLDebug("ASD_AWS", "credentials from %s (access key %.4s..., %s)", fresh.source,
             fresh.access_key_id, fresh.expiration > 0 ? "temporary" : "long-term");
    rc = asd_aws_credentials_copy(out, &ctx->creds);
  } else if (cached_usable(ctx, asd_time_wall(), 1)) {
    CPLDebug("ASD_AWS", "credential refresh failed (%s); keeping the current ones until expiry",
             err->message);
    rc = asd_aws_credentials_copy(out, &ctx->creds);
    asd_aws_error_clear(err);
  }
  pthread_mutex_unlock(&ctx->lock);
  pthread_mutex_unlock(&ctx->refresh_lock);
  return rc;
}

/* ------------------------------------------------------------------ parsing */

int asd_aws_parse_iso8601(const char *s, double *epoch) {
  int Y, M, D, h, m;
  double sec;
  int n = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf%n", &Y, &M, &D, &h, &m, &sec, &n) != 6) return -1;
  const char *tz = s + n;
  double off = 0;
  /* "Z", nothing, or "UTC" (older AWS CLI versions wrote SSO token expiry
   * times as "2026-11-29T06:00:00UTC"). */
  if (*tz == 'Z' || *tz == 'z' || *tz == '\0' || strcmp(tz, "UTC") == 0) {
    off = 0;
  } else if (*tz == '+' || *tz == '-') {
    int th = 0, tm = 0;
    if (sscanf(tz + 1, "%2d:%2d", &th, &tm) < 1) return -1;
    off = (th * 3600 + tm * 60) * (*tz == '+' ? 1 : -1);
  } else {
    return -1;
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec < 0 || sec >= 61) return -1;
  struct tm t;
  memset(&t, 0, sizeof(t));
  t.tm_year = Y - 1900;
  t.tm_mon = M - 1;
  t.tm_mday = D;
  t.tm_hour = h;
  t.tm_min = m;
  t.tm_sec = (int)sec;
  *epoch = (double)timegm(&t) - off;
  return 0;
}

static const char *jstr(json_object *o, const char *key) {
  json_object *v;
  if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  return NULL;
}

int asd_aws_parse_credentials_json(const char *json, size_t len, const char *source,
                                   asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  struct json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, json ? json : "", (int)len) : NULL;
  if (tok) json_tokener_free(tok);
  if (!o || !json_object_is_type(o, json_type_object)) {
    if (o) json_object_put(o);
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "%s returned a credentials document that is not a JSON object",
                      source);
    return -1;
  }
  const char *code = jstr(o, "Code");
  if (code && strcmp(code, "Success") != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_AUTH, "%s returned Code '%.60s': %.200s", source, code,
                      jstr(o, "Message") ? jstr(o, "Message") : "no message");
    json_object_put(o);
    return -1;
  }
  const char *ak = jstr(o, "AccessKeyId");
  const char *sk = jstr(o, "SecretAccessKey");
  const char *tk = jstr(o, "Token");
  if (!tk) tk = jstr(o, "SessionToken");
  const char *ex = jstr(o, "Expiration");
  if (!ak || !*ak || !sk || !*sk) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "%s returned credentials without %s", source,
                      !ak || !*ak ? "AccessKeyId" : "SecretAccessKey");
    json_object_put(o);
    return -1;
  }
  double exp = 0;
  if (ex && *ex && asd_aws_parse_iso8601(ex, &exp) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "%s returned an unparsable Expiration '%.40s'", source, ex);
    json_object_put(o);
    return -1;
  }
  int rc = creds_set(out, ak, sk, tk, exp, source);
  json_object_put(o);
  if (rc) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  return rc;
}

static int read_small_file(const char *path, size_t max, char **out, asd_aws_error *err, const char *what) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "cannot read %s '%s': %s", what, path, strerror(errno));
    return -1;
  }
  asd_buf b;
  asd_buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (b.len + n > max || asd_buf_append(&b, chunk, n) != 0) {
      fclose(f);
      asd_buf_free(&b);
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s '%s' is larger than %zu bytes", what, path, max);
      return -1;
    }
  }
  fclose(f);
  if (asd_buf_append(&b, "", 0) != 0) {
    asd_buf_free(&b);
    return -1;
  }
  *out = (char *)asd_buf_take(&b, NULL);
  /* Trim white space: token files often end with a newline. */
  char *s = *out;
  size_t l = strlen(s);
  while (l && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
  size_t lead = strspn(s, " \t\r\n");
  if (lead) memmove(s, s + lead, l - lead + 1);
  return 0;
}

/* ---------------------------------------------------------------- sources */

int asd_aws_creds_from_env(asd_aws_credentials *out, asd_aws_error *err) {
  const char *ak = getenv("AWS_ACCESS_KEY_ID");
  const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
  if (!ak || !*ak) ak = getenv("AWS_ACCESS_KEY");
  if (!sk || !*sk) sk = getenv("AWS_SECRET_KEY");
  int has_ak = ak && *ak, has_sk = sk && *sk;
  if (!has_ak && !has_sk) return 0;
  if (!has_ak || !has_sk) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s is set in the environment but %s is not",
                      has_ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                      has_ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    return -1;
  }
  const char *tk = getenv("AWS_SESSION_TOKEN");
  if (!tk || !*tk) tk = getenv("AWS_SECURITY_TOKEN");
  double exp = 0;
  const char *ex = getenv("AWS_CREDENTIAL_EXPIRATION");
  if (ex && *ex) asd_aws_parse_iso8601(ex, &exp);
  if (creds_set(out, ak, sk, tk, exp, "env") != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  return 1;
}

static void default_session_name(char *out, size_t size) {
  snprintf(out, size, "gdal-asyncdetect-%ld-%ld", (long)getpid(), (long)time(NULL));
}

static int web_identity(asd_aws_context *ctx, const char *token_file, const char *role_arn,
                        const char *session_name, asd_aws_credentials *out, asd_aws_error *err) {
  char *token = NULL;
  if (read_small_file(token_file, 64 * 1024, &token, err, "web identity token file") != 0) return -1;
  if (!*token) {
    free(token);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "web identity token file '%s' is empty", token_file);
    return -1;
  }
  char sn[80];
  if (session_name && *session_name)
    snprintf(sn, sizeof(sn), "%s", session_name);
  else
    default_session_name(sn, sizeof(sn));
  int rc = asd_sts_assume_role_with_web_identity(ctx, role_arn, sn, token, out, err);
  wipe_free(token);
  return rc == 0 ? 1 : -1;
}

int asd_aws_creds_from_web_identity_env(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err) {
  const char *tf = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
  const char *role = getenv("AWS_ROLE_ARN");
  if (!tf || !*tf) return 0;
  if (!role || !*role) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    return -1;
  }
  return web_identity(ctx, tf, role, getenv("AWS_ROLE_SESSION_NAME"), out, err);
}

/* A value that may go into an HTTP header line: no CR, LF or other control
 * character that could end the line or smuggle another header in. */
static int header_value_ok(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if ((*p < ' ' && *p != '\t') || *p == 0x7f) return 0;
  return 1;
}

/* The hosts a plain-http container credentials URL may name: loopback
 * (127.0.0.0/8, ::1, localhost) and the addresses the ECS and EKS agents
 * listen on.  Anything else would send the container's authorization token
 * and receive credentials in clear text from a host we cannot trust; https
 * URLs may name any host, as in the SDKs. */
static int ecs_http_host_allowed(const char *host) {
  static const char *const fixed[] = {"localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23", NULL};
  char h[128];
  size_t n = strlen(host);
  if (n >= sizeof(h)) return 0;
  /* curl gives IPv6 hosts in brackets. */
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    memcpy(h, host + 1, n - 2);
    h[n - 2] = '\0';
  } else {
    memcpy(h, host, n + 1);
  }
  for (int i = 0; fixed[i]; i++)
    if (strcasecmp(h, fixed[i]) == 0) return 1;
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, h, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, h, &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
    struct in6_addr ecs;
    return inet_pton(AF_INET6, "fd00:ec2::23", &ecs) == 1 && memcmp(&a6, &ecs, sizeof ecs) == 0;
  }
  return 0;
}

int asd_aws_ecs_url_check(const char *url, char *out, size_t out_size, char *why, size_t why_size) {
  why[0] = '\0';
  for (const unsigned char *p = (const unsigned char *)url; *p; p++)
    if (*p <= ' ' || *p == 0x7f) {
      snprintf(why, why_size, "it contains a space or control character");
      return -1;
    }
  CURLU *u = curl_url();
  char *scheme = NULL, *user = NULL, *password = NULL, *host = NULL, *full = NULL;
  int rc = -1;
  if (!u) {
    snprintf(why, why_size, "out of memory");
  } else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
    snprintf(why, why_size, "it is not a valid URL");
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    snprintf(why, why_size, "its scheme must be http or https");
  } else if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
             curl_url_get(u, CURLUPART_PASSWORD, &password, 0) != CURLUE_NO_PASSWORD) {
    snprintf(why, why_size, "user information ('...@') is not allowed in it");
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    snprintf(why, why_size, "it has no host");
  } else if (strcmp(scheme, "http") == 0 && !ecs_http_host_allowed(host)) {
    snprintf(why, why_size,
             "plain http is allowed only to a loopback address or the ECS/EKS agent (169.254.170.2, "
             "169.254.170.23, fd00:ec2::23), not to '%.80s'",
             host);
  } else if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK || strlen(full) >= out_size) {
    snprintf(why, why_size, "it is too long");
  } else {
    /* The URL we fetch is the one curl parsed and checked, re-serialised. */
    snprintf(out, out_size, "%s", full);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(user);
  curl_free(password);
  curl_free(host);
  curl_free(full);
  curl_url_cleanup(u);
  return rc;
}

int asd_aws_creds_from_ecs(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err) {
  const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  char given[1024], url[1024], why[200];
  const char *var, *value;
  if (rel && *rel) {
    /* The relative URI is a path on the ECS agent; the slash makes sure it
     * cannot turn into user information or another host ("@evil/"). */
    snprintf(given, sizeof(given), "http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/", rel);
    var = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    value = rel;
  } else if (full && *full) {
    snprintf(given, sizeof(given), "%s", full);
    var = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    value = full;
  } else {
    return 0;
  }
  if (asd_aws_ecs_url_check(given, url, sizeof(url), why, sizeof(why)) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s '%.200s' is refused: %s", var, value, why);
    return -1;
  }
  char *token = NULL;
  const char *tf = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  if (tf && *tf) {
    if (read_small_file(tf, 16 * 1024, &token, err, "container authorization token file") != 0) return -1;
  } else {
    const char *t = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (t && *t) token = strdup(t);
  }
  if (token && !header_value_ok(token)) {
    wipe_free(token);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "container authorization token contains a line break or another control character");
    return -1;
  }
  char *auth = NULL;
  if (token) {
    size_t l = strlen(token) + 32;
    auth = malloc(l);
    if (auth) snprintf(auth, l, "Authorization: %s", token);
    wipe_free(token);
  }
  const char *headers[2] = {auth, NULL};
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_http_fetch(ctx, "GET", url, auth ? headers : NULL, NULL, 0, 2.0, 3, &resp, err);
  wipe_free(auth);
  if (rc == 0)
    rc = asd_aws_parse_credentials_json((const char *)resp.body.data, resp.body.len, "ecs", out, err) == 0 ? 1 : -1;
  else {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    asd_aws_error_set(err, err->kind, "ECS container credentials: %s", m);
  }
  if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.len);
  asd_http_response_free(&resp);
  return rc;
}

int asd_aws_imds_token_ok(const char *token, size_t len) {
  if (len == 0 || len > 1024 || strlen(token) != len) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)token[i];
    if (!isalnum(c) && !strchr("+/=_-.", c)) return 0;
  }
  return 1;
}

int asd_aws_imds_role_ok(const char *name, size_t len) {
  if (len == 0 || len > 64) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!isalnum(c) && !strchr("+=,.@_-", c)) return 0;
    if (c == '.' && i + 1 < len && name[i + 1] == '.') return 0;
  }
  return 1;
}

int asd_aws_creds_from_imds(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err) {
  const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
  if (dis && strcasecmp(dis, "true") == 0) return 0;
  const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (!base || !*base) base = "http://169.254.169.254";
  size_t bl = strlen(base);
  while (bl && base[bl - 1] == '/') bl--;
  char url[1024];
  asd_http_response resp;
  asd_http_response_init(&resp);
  asd_aws_error e2;
  asd_aws_error_clear(&e2);
  snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)bl, base);
  const char *th[] = {"x-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
  if (asd_http_fetch(ctx, "PUT", url, th, NULL, 0, 1.0, 2, &resp, &e2) != 0) {
    asd_http_response_free(&resp);
    if (e2.http_status == 0) {
      CPLDebug("ASD_AWS", "no EC2 instance metadata service (%s)", e2.message);
      return 0; /* not on EC2 */
    }
    asd_aws_error_set(err, e2.kind, "EC2 instance metadata token request failed: %s", e2.message);
    err->http_status = e2.http_status;
    return -1;
  }
  /* The token goes into a header and the role name into a URL: both come
   * from the network, so both are checked before use (a token is base64,
   * a role name IAM's [\w+=,.@-]{1,64}; see asd_aws_imds_token_ok). */
  char tokhdr[1100];
  const char *tok = resp.body.data ? (const char *)resp.body.data : "";
  if (!asd_aws_imds_token_ok(tok, resp.body.len)) {
    asd_http_response_free(&resp);
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                      "EC2 instance metadata returned a malformed session token (not 1-1024 base64 characters)");
    return -1;
  }
  snprintf(tokhdr, sizeof(tokhdr), "x-aws-ec2-metadata-token: %s", tok);
  const char *gh[] = {tokhdr, NULL};
  snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/", (int)bl, base);
  int rc = asd_http_fetch(ctx, "GET", url, gh, NULL, 0, 1.0, 2, &resp, &e2);
  if (rc != 0) {
    OPENSSL_cleanse(tokhdr, sizeof(tokhdr));
    asd_http_response_free(&resp);
    if (e2.http_status == 404) return 0; /* no instance profile attached */
    asd_aws_error_set(err, e2.kind, "EC2 instance metadata role lookup failed: %s", e2.message);
    return -1;
  }
  char role[256];
  const char *body = resp.body.data ? (const char *)resp.body.data : "";
  size_t rl = strcspn(body, "\r\n");
  if (rl == 0 || rl >= sizeof(role) || !asd_aws_imds_role_ok(body, rl)) {
    char shown[80];
    asd_aws_copy_line(shown, sizeof(shown), body, rl);
    OPENSSL_cleanse(tokhdr, sizeof(tokhdr));
    asd_http_response_free(&resp);
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                      "EC2 instance metadata returned %s role name '%s' (expected 1-64 characters of "
                      "[A-Za-z0-9+=,.@_-], no '..')",
                      rl ? "an invalid" : "no", shown);
    return -1;
  }
  memcpy(role, body, rl);
  role[rl] = '\0';
  snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl, base, role);
  rc = asd_http_fetch(ctx, "GET", url, gh, NULL, 0, 1.0, 2, &resp, &e2);
  OPENSSL_cleanse(tokhdr, sizeof(tokhdr));
  if (rc != 0) {
    asd_http_response_free(&resp);
    asd_aws_error_set(err, e2.kind, "EC2 instance metadata credentials request failed: %s", e2.message);
    return -1;
  }
  rc = asd_aws_parse_credentials_json((const char *)resp.body.data, resp.body.len, "imds", out, err) == 0 ? 1 : -1;
  if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.len);
  asd_http_response_free(&resp);
  return rc;
}

/* ---------------------------------------------------------------- profiles */

typedef struct profile_files {
  asd_ini creds;
  asd_ini config;
} profile_files;

static const char *pget(const profile_files *f, const char *profile, const char *key) {
  const char *v = asd_ini_get(&f->creds, profile, key);
  if (!v) v = asd_ini_get(&f->config, profile, key);
  return v && *v ? v : NULL;
}

static int profile_resolve(asd_aws_context *ctx, const profile_files *f, const char *name, int depth,
                           char **visited, int must_exist, asd_aws_credentials *out, asd_aws_error *err);

static int static_keys(const profile_files *f, const char *name, asd_aws_credentials *out,
                       asd_aws_error *err) {
  const char *ak = pget(f, name, "aws_access_key_id");
  const char *sk = pget(f, name, "aws_secret_access_key");
  if (!ak && !sk) return 0;
  if (!ak || !sk) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile '%s' has %s but no %s (in %s)", name,
                      ak ? "aws_access_key_id" : "aws_secret_access_key",
                      ak ? "aws_secret_access_key" : "aws_access_key_id",
                      asd_ini_get(&f->creds, name, ak ? "aws_access_key_id" : "aws_secret_access_key")
                          ? f->creds.path
                          : f->config.path);
    return -1;
  }
  char src[64];
  snprintf(src, sizeof(src), "profile:%.50s", name);
  if (creds_set(out, ak, sk, pget(f, name, "aws_session_token"), 0, src) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  return 1;
}

static int profile_role(asd_aws_context *ctx, const profile_files *f, const char *name, const char *role_arn,
                        int depth, char **visited, asd_aws_credentials *out, asd_aws_error *err) {
  const char *wif = pget(f, name, "web_identity_token_file");
  if (wif) return web_identity(ctx, wif, role_arn, pget(f, name, "role_session_name"), out, err);
  if (pget(f, name, "mfa_serial")) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "AWS profile '%s' needs an MFA code (mfa_serial), which a batch tool cannot ask "
                      "for; export temporary credentials instead",
                      name);
    return -1;
  }
  const char *sp = pget(f, name, "source_profile");
  const char *cs = pget(f, name, "credential_source");
  asd_aws_credentials base;
  asd_aws_credentials_init(&base);
  int r;
  if (sp && cs) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "AWS profile '%s' sets both source_profile and credential_source", name);
    return -1;
  }
  if (sp) {
    if (strcmp(sp, name) == 0)
      r = static_keys(f, name, &base, err);
    else
      r = profile_resolve(ctx, f, sp, depth + 1, visited, 1, &base, err);
    if (r == 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "source_profile '%s' of AWS profile '%s' has no credentials",
                        sp, name);
      return -1;
    }
  } else if (cs) {
    if (strcasecmp(cs, "Environment") == 0)
      r = asd_aws_creds_from_env(&base, err);
    else if (strcasecmp(cs, "EcsContainer") == 0)
      r = asd_aws_creds_from_ecs(ctx, &base, err);
    else if (strcasecmp(cs, "Ec2InstanceMetadata") == 0)
      r = asd_aws_creds_from_imds(ctx, &base, err);
    else {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "AWS profile '%s': credential_source '%.40s' is not Environment, EcsContainer or "
                        "Ec2InstanceMetadata",
                        name, cs);
      return -1;
    }
    if (r == 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "credential_source %s of AWS profile '%s' found no credentials",
                        cs, name);
      return -1;
    }
  } else {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "AWS profile '%s' has role_arn but neither source_profile nor credential_source", name);
    return -1;
  }
  if (r < 0) return -1;
  const char *ds = pget(f, name, "duration_seconds");
  int duration = ds ? atoi(ds) : 0;
  char sn[80];
  const char *rsn = pget(f, name, "role_session_name");
  if (rsn)
    snprintf(sn, sizeof(sn), "%s", rsn);
  else
    default_session_name(sn, sizeof(sn));
  int rc = asd_sts_assume_role(ctx, &base, role_arn, sn, pget(f, name, "external_id"), duration, out, err);
  asd_aws_credentials_free(&base);
  return rc == 0 ? 1 : -1;
}

static int profile_resolve(asd_aws_context *ctx, const profile_files *f, const char *name, int depth,
                           char **visited, int must_exist, asd_aws_credentials *out, asd_aws_error *err) {
  if (depth > 8) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile chain through '%s' is longer than 8 profiles", name);
    return -1;
  }
  for (int i = 0; i < depth; i++)
    if (strcmp(visited[i], name) == 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile '%s' is part of a source_profile cycle", name);
      return -1;
    }
  visited[depth] = (char *)name;
  if (!asd_ini_has_section(&f->creds, name) && !asd_ini_has_section(&f->config, name)) {
    if (!must_exist) return 0;
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile '%s' not found in '%s' or '%s'", name,
                      f->creds.path ? f->creds.path : "", f->config.path ? f->config.path : "");
    return -1;
  }
  const char *role = pget(f, name, "role_arn");
  if (role) return profile_role(ctx, f, name, role, depth, visited, out, err);
  /* SSO before static keys, in botocore's provider order. */
  if (asd_aws_profile_uses_sso(&f->config, name)) return asd_aws_creds_from_sso(ctx, &f->config, name, out, err);
  int r = static_keys(f, name, out, err);
  if (r != 0) return r;
  const char *proc = pget(f, name, "credential_process");
  if (proc) {
    r = asd_aws_creds_from_process(proc, out, err);
    if (r == 1) snprintf(out->source, sizeof(out->source), "process:%.50s", name);
    return r;
  }
  if (must_exist) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile '%s' has no credentials (no keys, role_arn, credential_process or sso_* settings)",
                      name);
    return -1;
  }
  return 0;
}

int asd_aws_creds_from_profile(asd_aws_context *ctx, const char *profile, int explicit_profile,
                               asd_aws_credentials *out, asd_aws_error *err) {
  profile_files f;
  memset(&f, 0, sizeof(f));
  char *cp = asd_aws_credentials_file_path();
  char *fp = asd_aws_config_file_path();
  int rc = -1;
  if (!cp || !fp) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  } else if (asd_ini_load(cp, 0, &f.creds, err) == 0 && asd_ini_load(fp, 1, &f.config, err) == 0) {
    char *visited[10];
    rc = profile_resolve(ctx, &f, profile, 0, visited, explicit_profile, out, err);
  }
  asd_ini_free(&f.creds);
  asd_ini_free(&f.config);
  free(cp);
  free(fp);
  return rc;
}

/* ------------------------------------------------------------------- chain */

int asd_aws_resolve_credentials(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials base;
  asd_aws_credentials_init(&base);
  asd_aws_credentials_init(out);
  const asd_aws_config *c = &ctx->cfg;
  int r = 0;
  if (c->access_key_id && *c->access_key_id) {
    r = creds_set(&base, c->access_key_id, c->secret_access_key, c->session_token, 0, "explicit") == 0 ? 1 : -1;
    if (r < 0) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  }
  if (r == 0) r = asd_aws_creds_from_env(&base, err);
  if (r == 0) r = asd_aws_creds_from_web_identity_env(ctx, &base, err);
  if (r == 0) {
    const char *envp = getenv("AWS_PROFILE");
    int explicit_profile = (c->profile && *c->profile) || (envp && *envp);
    r = asd_aws_creds_from_profile(ctx, ctx->profile, explicit_profile, &base, err);
  }
  if (r == 0) r = asd_aws_creds_from_ecs(ctx, &base, err);
  if (r == 0) r = asd_aws_creds_from_imds(ctx, &base, err);
  if (r == 0) {
    char *cp = asd_aws_credentials_file_path();
    char *fp = asd_aws_config_file_path();
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "no AWS credentials found (looked at: explicit configuration, AWS_ACCESS_KEY_ID, "
                      "AWS_WEB_IDENTITY_TOKEN_FILE, profile '%s' in %s and %s, ECS container, EC2 "
                      "instance metadata)",
                      ctx->profile, cp ? cp : "?", fp ? fp : "?");
    free(cp);
    free(fp);
    return -1;
  }
  if (r < 0) return -1;
  if (c->role_arn && *c->role_arn) {
    char sn[80];
    if (c->role_session_name && *c->role_session_name)
      snprintf(sn, sizeof(sn), "%s", c->role_session_name);
    else
      default_session_name(sn, sizeof(sn));
    int rc = asd_sts_assume_role(ctx, &base, c->role_arn, sn, c->external_id, c->role_duration_seconds, out, err);
    asd_aws_credentials_free(&base);
    return rc;
  }
  *out = base;
  return 0;
}
