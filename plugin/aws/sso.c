/*
 * sso.c: credentials of IAM Identity Center (SSO) profiles.
 *
 * Analysts sign in on a workstation with `aws sso login`; the AWS CLI then
 * keeps an access token for the portal in ~/.aws/sso/cache/ and every SDK
 * turns it into role credentials on demand.  This file does what botocore's
 * SSOProvider does, for the two profile shapes of ~/.aws/config:
 *
 *   [profile analyst]                    [profile legacy]
 *   sso_session = corp                   sso_start_url = https://d-123.awsapps.com/start
 *   sso_account_id = 123456789012        sso_region = eu-west-1
 *   sso_role_name = Detector             sso_account_id = 123456789012
 *   [sso-session corp]                   sso_role_name = Detector
 *   sso_start_url = https://...
 *   sso_region = eu-west-1
 *
 * The token is read from ~/.aws/sso/cache/<SHA-1 hex>.json, keyed (as
 * botocore's SSOTokenLoader keys it) by the session name for sso_session
 * profiles and by the start URL for legacy ones.  Its accessToken is sent as
 * the x-amz-sso_bearer_token header of the portal's GetRoleCredentials
 * (GET /federation/credentials?account_id=..&role_name=.., unsigned, at
 * portal.sso.<sso_region>.amazonaws.com or AWS_ENDPOINT_URL_SSO /
 * AWS_ENDPOINT_URL), which answers
 * {"roleCredentials":{"accessKeyId","secretAccessKey","sessionToken",
 * "expiration" (epoch milliseconds)}}.  The context caches those and, as for
 * every temporary credential, resolves the chain again shortly before they
 * expire, which reads the token file again (a fresh `aws sso login` in
 * another terminal is picked up without restarting the run).
 *
 * Refresh, as botocore's SSOTokenProvider does for sso_session profiles:
 * when the cached access token expires within 15 minutes and the cache
 * holds a refreshToken with its client registration (clientId,
 * clientSecret, registrationExpiresAt not past), SSO OIDC CreateToken
 * (POST /token at oidc.<sso_region>.amazonaws.com or
 * AWS_ENDPOINT_URL_SSO_OIDC / AWS_ENDPOINT_URL; JSON, unsigned) with the
 * refresh_token grant gives a new access token and usually a new refresh
 * token (the old one is spent), and the cache file is rewritten, mode 0600,
 * through a temporary file renamed over it, so that the AWS CLI and the
 * next run use them.  Refreshes of one login are serialised across
 * processes by a lock file next to it (refresh_lock): the refresh token is
 * spent by the first refresh, so a second process must take the login the
 * first one saved rather than present the spent token.  A failed refresh while the old token is still valid
 * is ignored, as botocore ignores it; otherwise a missing, unreadable,
 * expired, unrefreshable or rejected login gives one line telling the user
 * to run 'aws sso login --profile NAME', which fixes each of those cases.
 * Tokens and the client secret are never logged nor put in a message (a
 * failure says the AWS error code), and are wiped from memory after use.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "aws_internal.h"

#define SSO_TOKEN_FILE_MAX (64u << 10)

/* ------------------------------------------------------------ settings */

typedef struct sso_settings {
  const char *profile;
  const char *session; /* NULL for a legacy profile */
  const char *start_url;
  const char *region;
  const char *account_id;
  const char *role_name;
} sso_settings;

static const char *cfg(const asd_ini *config, const char *section, const char *key) {
  const char *v = asd_ini_get(config, section, key);
  return v && *v ? v : NULL;
}

int asd_aws_profile_uses_sso(const asd_ini *config, const char *profile) {
  static const char *const keys[] = {"sso_session", "sso_start_url", "sso_account_id", "sso_role_name", NULL};
  for (int i = 0; keys[i]; i++)
    if (cfg(config, profile, keys[i])) return 1;
  return 0;
}

/* A key the profile and its [sso-session] may both set must agree, as
 * botocore requires; otherwise the session's value applies. */
static int session_value(const asd_ini *config, const char *profile, const char *section, const char *key,
                         const char **out, asd_aws_error *err) {
  const char *p = cfg(config, profile, key);
  const char *s = cfg(config, section, key);
  if (p && s && strcmp(p, s) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "AWS profile '%s': %s is '%.100s' in the profile but '%.100s' in [%s]", profile, key, p, s,
                      section);
    return -1;
  }
  *out = s ? s : p;
  return 0;
}

static int load_settings(const asd_ini *config, const char *profile, char *section, size_t section_size,
                         sso_settings *st, asd_aws_error *err) {
  memset(st, 0, sizeof(*st));
  st->profile = profile;
  st->session = cfg(config, profile, "sso_session");
  if (st->session) {
    snprintf(section, section_size, "sso-session %s", st->session);
    if (!asd_ini_has_section(config, section)) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "AWS profile '%s' names sso_session '%.100s', but %s has no [sso-session %.100s] section",
                        profile, st->session, config->path, st->session);
      return -1;
    }
    if (session_value(config, profile, section, "sso_start_url", &st->start_url, err) != 0 ||
        session_value(config, profile, section, "sso_region", &st->region, err) != 0)
      return -1;
  } else {
    st->start_url = cfg(config, profile, "sso_start_url");
    st->region = cfg(config, profile, "sso_region");
  }
  st->account_id = cfg(config, profile, "sso_account_id");
  st->role_name = cfg(config, profile, "sso_role_name");
  const char *names[] = {"sso_start_url", "sso_region", "sso_account_id", "sso_role_name"};
  const char *values[] = {st->start_url, st->region, st->account_id, st->role_name};
  char missing[120] = "";
  for (int i = 0; i < 4; i++)
    if (!values[i]) snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
                             missing[0] ? ", " : "", names[i]);
  if (missing[0]) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "AWS profile '%s' is configured for IAM Identity Center (SSO) but lacks %s%s%s", profile,
                      missing, st->session ? " (in the profile or its sso-session " : "",
                      st->session ? "section)" : "");
    return -1;
  }
  size_t al = strlen(st->account_id);
  int digits = al == 12;
  for (size_t i = 0; digits && i < al; i++) digits = isdigit((unsigned char)st->account_id[i]) != 0;
  if (!digits) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS profile '%s': sso_account_id '%.40s' is not a 12-digit account id",
                      profile, st->account_id);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ token */

void asd_aws_sso_cache_name(const char *key, char out[46]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(key, strlen(key), md, &n, EVP_sha1(), NULL);
  for (unsigned int i = 0; i < n && i < 20; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  memcpy(out + 40, ".json", 6);
}

/* The one line every unusable-token case ends with. */
static void login_hint(const sso_settings *st, asd_aws_error *err, const char *what) {
  asd_aws_error_set(err, ASD_AWS_ERR_AUTH, "AWS profile '%s': %s; run 'aws sso login --profile %s'", st->profile,
                    what, st->profile);
}

/* The cached login, as read from ~/.aws/sso/cache/<name>.json. */
typedef struct sso_cache {
  char *path;
  json_object *o; /* the whole document, written back after a refresh */
  double expires; /* its accessToken's expiresAt */
  char label[200];
} sso_cache;

/* Wipes json-c's copies of the secrets a cache document may hold, then
 * frees it. */
static void cache_free(sso_cache *c) {
  static const char *const secrets[] = {"accessToken", "refreshToken", "clientSecret", NULL};
  if (c->o) {
    for (int i = 0; secrets[i]; i++) {
      json_object *v = NULL;
      if (json_object_object_get_ex(c->o, secrets[i], &v) && json_object_is_type(v, json_type_string))
        OPENSSL_cleanse((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
    json_object_put(c->o);
  }
  free(c->path);
  memset(c, 0, sizeof(*c));
}

static const char *str_member(json_object *o, const char *name) {
  json_object *v = NULL;
  if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string)) return NULL;
  return json_object_get_string(v);
}

/* Reads and parses the cached login.  Returns 0, or -1 with err telling the
 * user to log in again. */
static int cache_open(const sso_settings *st, sso_cache *c, asd_aws_error *err) {
  memset(c, 0, sizeof(*c));
  char name[46], rel[80];
  asd_aws_sso_cache_name(st->session ? st->session : st->start_url, name);
  snprintf(rel, sizeof(rel), ".aws/sso/cache/%s", name);
  c->path = asd_aws_home_path(rel);
  if (st->session)
    snprintf(c->label, sizeof(c->label), "session '%.100s'", st->session);
  else
    snprintf(c->label, sizeof(c->label), "start URL %.150s", st->start_url);
  FILE *f = c->path ? fopen(c->path, "rb") : NULL;
  if (!f) {
    login_hint(st, err, CPLSPrintf("no IAM Identity Center (SSO) login found for %s", c->label));
    CPLDebug("ASD_AWS", "SSO token cache %s: %s", c->path ? c->path : "?", strerror(errno));
    cache_free(c);
    return -1;
  }
  char *text = malloc(SSO_TOKEN_FILE_MAX + 1);
  size_t n = text ? fread(text, 1, SSO_TOKEN_FILE_MAX + 1, f) : 0;
  fclose(f);
  if (text && n <= SSO_TOKEN_FILE_MAX) {
    struct json_tokener *tok = json_tokener_new();
    c->o = tok ? json_tokener_parse_ex(tok, text, (int)n) : NULL;
    if (tok) json_tokener_free(tok);
  }
  if (text) {
    OPENSSL_cleanse(text, n);
    free(text);
  }
  const char *ex = str_member(c->o, "expiresAt");
  if (!c->o || !json_object_is_type(c->o, json_type_object) || !str_member(c->o, "accessToken") || !ex) {
    login_hint(st, err, CPLSPrintf("the cached IAM Identity Center (SSO) login for %s is unreadable", c->label));
  } else if (asd_aws_parse_iso8601(ex, &c->expires) != 0) {
    login_hint(st, err,
               CPLSPrintf("the cached IAM Identity Center (SSO) login for %s has an unreadable expiresAt", c->label));
  } else {
    return 0;
  }
  cache_free(c);
  return -1;
}

/* ------------------------------------------------------------ refresh */

/* botocore refreshes an sso_session login this long before it expires. */
#define SSO_REFRESH_WINDOW (15 * 60)

/* What botocore's SSOTokenProvider needs to refresh: an sso_session
 * profile (a legacy one's login has no refresh token), a refresh token and
 * a client registration that has not expired. */
static int can_refresh(const sso_settings *st, const sso_cache *c) {
  double reg = 0;
  const char *r = str_member(c->o, "registrationExpiresAt");
  return st->session && str_member(c->o, "refreshToken") && str_member(c->o, "clientId") &&
         str_member(c->o, "clientSecret") && r && asd_aws_parse_iso8601(r, &reg) == 0 && reg > asd_time_wall();
}

static void iso8601(double t, char out[32]) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Takes CreateToken's answer into the cache document: the new access token,
 * its expiry, and the new refresh token when one came (they rotate). */
static int take_new_token(sso_cache *c, const char *body, size_t len) {
  struct json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, body ? body : "", (int)len) : NULL;
  if (tok) json_tokener_free(tok);
  const char *at = str_member(o, "accessToken"), *rt = str_member(o, "refreshToken");
  json_object *ein = NULL;
  int ok = at && *at && json_object_object_get_ex(o, "expiresIn", &ein) && json_object_is_type(ein, json_type_int) &&
           json_object_get_int64(ein) > 0;
  if (ok) {
    char exp[32];
    c->expires = asd_time_wall() + (double)json_object_get_int64(ein);
    iso8601(c->expires, exp);
    sso_cache old = {NULL, NULL, 0, ""};
    /* The old secrets are wiped as json-c replaces them. */
    old.o = json_object_new_object();
    json_object *v = NULL;
    if (json_object_object_get_ex(c->o, "accessToken", &v)) json_object_object_add(old.o, "accessToken", json_object_get(v));
    if (rt && json_object_object_get_ex(c->o, "refreshToken", &v))
      json_object_object_add(old.o, "refreshToken", json_object_get(v));
    json_object_object_add(c->o, "accessToken", json_object_new_string(at));
    json_object_object_add(c->o, "expiresAt", json_object_new_string(exp));
    if (rt) json_object_object_add(c->o, "refreshToken", json_object_new_string(rt));
    cache_free(&old);
  }
  sso_cache answer = {NULL, o, 0, ""};
  cache_free(&answer);
  return ok ? 0 : -1;
}

/* SSO OIDC CreateToken with the refresh_token grant, as botocore's
 * SSOTokenProvider calls it (unsigned: the client secret is the
 * credential).  0 with the cache document updated, or -1 with the reason
 * (an AWS error code or a kind, never a token) in why. */
static int refresh_token(asd_aws_context *ctx, const sso_settings *st, sso_cache *c, char *why, size_t why_len) {
  asd_aws_endpoint ep;
  asd_aws_error e2;
  asd_aws_error_clear(&e2);
  if (asd_aws_resolve_sso_oidc_endpoint(st->region, ctx->cfg.endpoint_url, ctx->profile, &ep, &e2) != 0) {
    snprintf(why, why_len, "%.200s", e2.message);
    return -1;
  }
  json_object *req = json_object_new_object();
  json_object_object_add(req, "clientId", json_object_new_string(str_member(c->o, "clientId")));
  json_object_object_add(req, "clientSecret", json_object_new_string(str_member(c->o, "clientSecret")));
  json_object_object_add(req, "grantType", json_object_new_string("refresh_token"));
  json_object_object_add(req, "refreshToken", json_object_new_string(str_member(c->o, "refreshToken")));
  const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
  const char *headers[] = {"Content-Type: application/json", NULL};
  char *url = CPLStrdup(CPLSPrintf("%s/token", ep.base_url));
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_http_fetch(ctx, "POST", url, headers, body, strlen(body), 30.0, 3, &resp, &e2);
  OPENSSL_cleanse((void *)body, strlen(body));
  sso_cache wipe = {NULL, req, 0, ""};
  cache_free(&wipe);
  CPLFree(url);
  if (rc == 0 && take_new_token(c, (const char *)resp.body.data, resp.body.len) != 0) {
    snprintf(why, why_len, "CreateToken returned no usable accessToken");
    rc = -1;
  } else if (rc != 0) {
    snprintf(why, why_len, "%s%s%s", e2.code[0] ? e2.code : asd_aws_error_kind_name(e2.kind),
             e2.http_status ? " HTTP " : "", e2.http_status ? CPLSPrintf("%d", e2.http_status) : "");
  }
  if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.len);
  asd_http_response_free(&resp);
  return rc;
}

/* Writes the refreshed login back as the AWS CLI keeps it: mode 0600, and
 * atomically (a temporary file in the same folder, renamed over the old
 * one), so that a concurrent reader never sees half a file.  0, or -1 with
 * errno's text in why. */
static int cache_save(const sso_cache *c, char *why, size_t why_len) {
  char *tmp = CPLStrdup(CPLSPrintf("%s.XXXXXX", c->path));
  int fd = mkstemp(tmp); /* 0600 */
  const char *text = json_object_to_json_string_ext(c->o, JSON_C_TO_STRING_PLAIN);
  size_t n = strlen(text);
  int rc = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
  if (rc != 0) snprintf(why, why_len, "%s", strerror(errno));
  OPENSSL_cleanse((void *)text, n);
  if (fd >= 0 && close(fd) != 0 && rc == 0) {
    snprintf(why, why_len, "%s", strerror(errno));
    rc = -1;
  }
  if (rc == 0 && rename(tmp, c->path) != 0) {
    snprintf(why, why_len, "%s", strerror(errno));
    rc = -1;
  }
  if (rc != 0 && fd >= 0) unlink(tmp);
  CPLFree(tmp);
  return rc;
}

/* How long a refresh waits for another process's refresh of the same login:
 * longer than one CreateToken with its retries takes (30 s per try), short
 * enough that a process stuck holding the lock only delays the run. */
#define SSO_LOCK_WAIT_S 120.0

/*
 * Serialises refreshes of one login across processes: an exclusive flock()
 * on <cache file>.lock, taken before the refresh and released once the new
 * login is saved.  Why: the service rotates refresh tokens (the one presented
 * is spent), so two processes refreshing the same login at once (parallel
 * runs on one workstation, shards on one host) would both present it, and
 * the loser would be refused (invalid_grant) and, once the old access token
 * has expired, told to log in again although the winner just refreshed.
 * Holding the lock, a process reads the cache again (see read_token) and
 * uses a login another process refreshed meanwhile.  botocore has no such
 * lock (an in-process threading lock, and JSONFileCache's temporary file +
 * os.replace); the AWS CLI, which refreshes the same files, does not take
 * it, and it does not need to: readers never see half a file either way.
 * The lock file is separate because the cache file itself is replaced by a
 * rename, and a lock on it would lock the old inode; it is never removed
 * (removing a lock file races with a process about to lock it), and flock()
 * locks go with the process, so a crashed refresher leaves nothing held.
 * Returns the locked descriptor, or -1 (no lock: the refresh goes ahead
 * unserialised, as before, after a debug line).
 */
static int refresh_lock(const char *cache_path) {
  char *path = CPLStrdup(CPLSPrintf("%s.lock", cache_path));
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  const double until = asd_time_monotonic() + SSO_LOCK_WAIT_S;
  int locked = 0;
  while (fd >= 0 && !locked) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      locked = 1;
    else if ((errno != EWOULDBLOCK && errno != EINTR) || asd_time_monotonic() >= until)
      break;
    else
      usleep(20000);
  }
  if (!locked) {
    CPLDebug("ASD_AWS", "SSO token refresh: no lock on %s (%s); refreshing without it", path,
             fd < 0 ? strerror(errno) : "held by another process too long");
    if (fd >= 0) close(fd);
    fd = -1;
  }
  CPLFree(path);
  return fd;
}

static void refresh_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing the only descriptor releases the flock */
}

/* Refreshes the login in c (the cache as first read) when it expires within
 * botocore's window and can be, under the refresh lock: the cache is read
 * again once the lock is held, so that a login another process refreshed
 * while this one waited is taken as it is.  Sets *failed and why when a
 * refresh was tried and failed. */
static void refresh_if_due(asd_aws_context *ctx, const sso_settings *st, sso_cache *c, int *failed, char *why,
                           size_t why_len) {
  if (!(c->expires - asd_time_wall() < SSO_REFRESH_WINDOW && can_refresh(st, c))) return;
  const int lock = refresh_lock(c->path);
  if (lock >= 0) {
    sso_cache again;
    asd_aws_error ignored;
    asd_aws_error_clear(&ignored);
    if (cache_open(st, &again, &ignored) == 0) {
      cache_free(c);
      *c = again;
    }
  }
  if (c->expires - asd_time_wall() < SSO_REFRESH_WINDOW && can_refresh(st, c)) {
    if (refresh_token(ctx, st, c, why, why_len) != 0) {
      *failed = 1;
      CPLDebug("ASD_AWS", "SSO token refresh for %s failed: %s", c->label, why);
    } else if (cache_save(c, why, why_len) != 0) {
      CPLError(CE_Warning, CPLE_AppDefined,
               "AWS profile '%s': the refreshed IAM Identity Center (SSO) login could not be saved to %s (%s); the "
               "next run may need 'aws sso login --profile %s'",
               st->profile, c->path, why, st->profile);
    }
  } else if (lock >= 0) {
    CPLDebug("ASD_AWS", "SSO login for %s: refreshed by another process meanwhile", c->label);
  }
  refresh_unlock(lock);
}

/*
 * The access token to use (malloc'ed, wipe before freeing): the cached one,
 * refreshed first through SSO OIDC when it expires within botocore's window
 * and can be (sso_session profiles), and then written back to the cache so
 * that the AWS CLI and the next run see it (refresh_if_due).  A refresh that
 * fails while the cached token is still valid is no error (botocore's
 * advisory refresh); once it has expired the user is told to log in again.
 * Returns 0, or -1 with err.
 */
static int read_token(asd_aws_context *ctx, const sso_settings *st, char **token, asd_aws_error *err) {
  *token = NULL;
  sso_cache c;
  if (cache_open(st, &c, err) != 0) return -1;
  char why[256] = "";
  int refresh_failed = 0;
  refresh_if_due(ctx, st, &c, &refresh_failed, why, sizeof(why));
  int rc = -1;
  if (c.expires <= asd_time_wall()) {
    const char *ex = str_member(c.o, "expiresAt");
    login_hint(st, err,
               refresh_failed ? CPLSPrintf("the IAM Identity Center (SSO) login for %s expired at %.40s and could not "
                                           "be refreshed (%s)", c.label, ex, why)
                              : CPLSPrintf("the IAM Identity Center (SSO) login for %s expired at %.40s", c.label, ex));
  } else {
    *token = strdup(str_member(c.o, "accessToken"));
    rc = *token ? 0 : -1;
    if (rc) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  }
  cache_free(&c);
  return rc;
}

/* ------------------------------------------------------------ portal */

static int parse_role_credentials(const sso_settings *st, const char *body, size_t len, asd_aws_credentials *out,
                                  asd_aws_error *err) {
  struct json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, body ? body : "", (int)len) : NULL;
  if (tok) json_tokener_free(tok);
  json_object *rc_obj = NULL, *ak = NULL, *sk = NULL, *tk = NULL, *ex = NULL;
  int ok = o && json_object_object_get_ex(o, "roleCredentials", &rc_obj) &&
           json_object_object_get_ex(rc_obj, "accessKeyId", &ak) && json_object_is_type(ak, json_type_string) &&
           json_object_object_get_ex(rc_obj, "secretAccessKey", &sk) && json_object_is_type(sk, json_type_string) &&
           json_object_object_get_ex(rc_obj, "sessionToken", &tk) && json_object_is_type(tk, json_type_string) &&
           json_object_object_get_ex(rc_obj, "expiration", &ex) && json_object_is_type(ex, json_type_int) &&
           json_object_get_string_len(ak) > 0 && json_object_get_string_len(sk) > 0 &&
           json_object_get_string_len(tk) > 0;
  int rc = -1;
  if (!ok) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                      "IAM Identity Center GetRoleCredentials for AWS profile '%s' returned no usable "
                      "roleCredentials",
                      st->profile);
  } else {
    asd_aws_credentials_init(out);
    out->access_key_id = strdup(json_object_get_string(ak));
    out->secret_access_key = strdup(json_object_get_string(sk));
    out->session_token = strdup(json_object_get_string(tk));
    out->expiration = (double)json_object_get_int64(ex) / 1000.0;
    snprintf(out->source, sizeof(out->source), "sso:%.55s", st->profile);
    if (!out->access_key_id || !out->secret_access_key || !out->session_token) {
      asd_aws_credentials_free(out);
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    } else {
      rc = 0;
    }
  }
  if (sk) OPENSSL_cleanse((void *)json_object_get_string(sk), (size_t)json_object_get_string_len(sk));
  if (tk) OPENSSL_cleanse((void *)json_object_get_string(tk), (size_t)json_object_get_string_len(tk));
  if (o) json_object_put(o);
  return rc;
}

/* Explains a failed GetRoleCredentials.  A rejected token (401) needs a new
 * login; a refused role (403/404) a different sso_role_name or account. */
static void portal_error(const sso_settings *st, const asd_aws_error *e2, asd_aws_error *err) {
  char cause[200];
  snprintf(cause, sizeof(cause), "%s%s%s", e2->code[0] ? e2->code : asd_aws_error_kind_name(e2->kind),
           e2->http_status ? " HTTP " : "", e2->http_status ? CPLSPrintf("%d", e2->http_status) : "");
  if (e2->http_status == 401) {
    login_hint(st, err, CPLSPrintf("IAM Identity Center rejected the cached SSO login (%s)", cause));
  } else if (e2->http_status == 403 || e2->http_status == 404) {
    asd_aws_error_set(err, ASD_AWS_ERR_ACCESS_DENIED,
                      "AWS profile '%s': IAM Identity Center refused role '%.64s' in account %s (%s); check "
                      "sso_role_name and sso_account_id",
                      st->profile, st->role_name, st->account_id, cause);
  } else {
    asd_aws_error_set(err, e2->kind, "AWS profile '%s': IAM Identity Center GetRoleCredentials failed: %s",
                      st->profile, e2->message);
  }
  err->http_status = e2->http_status;
  snprintf(err->code, sizeof(err->code), "%s", e2->code);
}

static int get_role_credentials(asd_aws_context *ctx, const sso_settings *st, const char *token,
                                asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_endpoint ep;
  if (asd_aws_resolve_sso_endpoint(st->region, ctx->cfg.endpoint_url, ctx->profile, &ep, err) != 0) return -1;
  asd_buf url, hdr;
  asd_buf_init(&url);
  asd_buf_init(&hdr);
  int bad = asd_buf_appendf(&url, "%s/federation/credentials?account_id=", ep.base_url) != 0;
  bad |= asd_sigv4_uri_encode(&url, st->account_id, strlen(st->account_id), 0) != 0;
  bad |= asd_buf_append_str(&url, "&role_name=") != 0;
  bad |= asd_sigv4_uri_encode(&url, st->role_name, strlen(st->role_name), 0) != 0;
  bad |= asd_buf_append(&url, "", 1) != 0;
  bad |= asd_buf_appendf(&hdr, "x-amz-sso_bearer_token: %s", token) != 0;
  bad |= asd_buf_append(&hdr, "", 1) != 0;
  int rc = -1;
  if (bad) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  } else {
    const char *headers[] = {(const char *)hdr.data, NULL};
    asd_http_response resp;
    asd_http_response_init(&resp);
    asd_aws_error e2;
    asd_aws_error_clear(&e2);
    if (asd_http_fetch(ctx, "GET", (const char *)url.data, headers, NULL, 0, 30.0, 3, &resp, &e2) != 0)
      portal_error(st, &e2, err);
    else
      rc = parse_role_credentials(st, (const char *)resp.body.data, resp.body.len, out, err);
    if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.len);
    asd_http_response_free(&resp);
  }
  if (hdr.data) OPENSSL_cleanse(hdr.data, hdr.len);
  asd_buf_free(&hdr);
  asd_buf_free(&url);
  return rc;
}

int asd_aws_creds_from_sso(asd_aws_context *ctx, const asd_ini *config, const char *profile,
                           asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  sso_settings st;
  char section[300];
  if (load_settings(config, profile, section, sizeof(section), &st, err) != 0) return -1;
  char *token = NULL;
  if (read_token(ctx, &st, &token, err) != 0) return -1;
  int rc = -1;
  int token_ok = *token != '\0';
  for (const unsigned char *p = (const unsigned char *)token; token_ok && *p; p++)
    token_ok = *p >= ' ' && *p != 0x7f;
  if (!token_ok)
    login_hint(&st, err, "the cached IAM Identity Center (SSO) access token is empty or malformed");
  else
    rc = get_role_credentials(ctx, &st, token, out, err);
  OPENSSL_cleanse(token, strlen(token));
  free(token);
  return rc == 0 ? 1 : -1;
}
