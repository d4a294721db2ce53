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
 * What we deliberately do not do: refresh the portal token itself through
 * the SSO OIDC service with the cached refreshToken (botocore does for
 * sso_session profiles).  That writes the user's token cache, which we would
 * rather leave to the AWS CLI; a missing, unreadable, expired or rejected
 * token gives one line telling the user to run
 * 'aws sso login --profile NAME', which fixes each of those cases.  The
 * token is never logged and is wiped from memory after use.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Reads the cached access token (malloc'ed, wipe before freeing).  Returns
 * 0, or -1 with err telling the user to log in again. */
static int read_token(const sso_settings *st, char **token, asd_aws_error *err) {
  *token = NULL;
  char name[46], rel[80];
  asd_aws_sso_cache_name(st->session ? st->session : st->start_url, name);
  snprintf(rel, sizeof(rel), ".aws/sso/cache/%s", name);
  char *path = asd_aws_home_path(rel);
  char label[200];
  if (st->session)
    snprintf(label, sizeof(label), "session '%.100s'", st->session);
  else
    snprintf(label, sizeof(label), "start URL %.150s", st->start_url);
  FILE *f = path ? fopen(path, "rb") : NULL;
  if (!f) {
    login_hint(st, err, CPLSPrintf("no IAM Identity Center (SSO) login found for %s", label));
    CPLDebug("ASD_AWS", "SSO token cache %s: %s", path ? path : "?", strerror(errno));
    free(path);
    return -1;
  }
  free(path);
  char *text = malloc(SSO_TOKEN_FILE_MAX + 1);
  size_t n = text ? fread(text, 1, SSO_TOKEN_FILE_MAX + 1, f) : 0;
  fclose(f);
  json_object *o = NULL;
  if (text && n <= SSO_TOKEN_FILE_MAX) {
    struct json_tokener *tok = json_tokener_new();
    o = tok ? json_tokener_parse_ex(tok, text, (int)n) : NULL;
    if (tok) json_tokener_free(tok);
  }
  if (text) {
    OPENSSL_cleanse(text, n);
    free(text);
  }
  json_object *at = NULL, *ex = NULL;
  double expires = 0;
  int rc = -1;
  if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "accessToken", &at) ||
      !json_object_is_type(at, json_type_string) || !json_object_object_get_ex(o, "expiresAt", &ex) ||
      !json_object_is_type(ex, json_type_string)) {
    login_hint(st, err, CPLSPrintf("the cached IAM Identity Center (SSO) login for %s is unreadable", label));
  } else if (asd_aws_parse_iso8601(json_object_get_string(ex), &expires) != 0) {
    login_hint(st, err,
               CPLSPrintf("the cached IAM Identity Center (SSO) login for %s has an unreadable expiresAt", label));
  } else if (expires <= asd_time_wall()) {
    login_hint(st, err,
               CPLSPrintf("the IAM Identity Center (SSO) login for %s expired at %.40s", label,
                          json_object_get_string(ex)));
  } else {
    *token = strdup(json_object_get_string(at));
    rc = *token ? 0 : -1;
    if (rc) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
  }
  if (o) {
    /* json-c keeps the token in its string object: wipe it before freeing. */
    if (at && json_object_is_type(at, json_type_string))
      OPENSSL_cleanse((void *)json_object_get_string(at), (size_t)json_object_get_string_len(at));
    json_object_put(o);
  }
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
  if (read_token(&st, &token, err) != 0) return -1;
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
