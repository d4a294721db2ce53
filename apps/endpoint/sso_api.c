/*
 * sso_api.c: GetRoleCredentials of the IAM Identity Center portal for the
 * local endpoint (sso_api.h).
 *
 * Why here: SSO is how most analysts sign in on a workstation, and the
 * client's SSO provider (plugin/aws/sso.c) would otherwise only ever run
 * against AWS.  The protocol is the portal's rest-json API as botocore's
 * "sso" model describes it: GET /federation/credentials with the query
 * parameters account_id and role_name and the header
 * x-amz-sso_bearer_token; the request is not SigV4-signed (the bearer token
 * is the credential), so the server answers it from the headers alone,
 * before and without any signature check or body.
 *
 * Answers, as the service gives them:
 *   200 {"roleCredentials":{"accessKeyId":"ASIA...","secretAccessKey":...,
 *        "sessionToken":...,"expiration":<epoch milliseconds>}}
 *   401 UnauthorizedException "Session token not found or invalid" for a
 *       missing or wrong token (compared in constant time);
 *   400 InvalidRequestException for a missing parameter or an account id
 *       that is not 12 digits;
 *   429 TooManyRequestsException when the session table is full.
 * Errors are rest-json: x-amzn-ErrorType plus {"message": ...}.
 *
 * SSO OIDC CreateToken (POST /token, rest-json, unsigned: the client
 * secret is the credential), the refresh_token grant only, when the server
 * is given a registered client and a refresh token (-sso-oidc
 * CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN).  As botocore's sso-oidc model
 * has it:
 *   200 {"accessToken","tokenType":"Bearer","expiresIn":<seconds>,
 *        "refreshToken"}: a fresh access token, which GetRoleCredentials
 *       accepts from then on, and a fresh refresh token: the one presented
 *       is spent (rotation), so a client that does not keep the new one is
 *       refused the next time;
 *   400 InvalidRequestException (invalid_request) for a missing member or a
 *       body that is not a JSON object;
 *   401 InvalidClientException (invalid_client) for an unknown clientId or a
 *       wrong clientSecret;
 *   400 UnsupportedGrantTypeException (unsupported_grant_type) for any
 *       grantType but refresh_token (the device and authorization-code
 *       grants need a browser);
 *   400 InvalidGrantException (invalid_grant) for a refresh token that is
 *       not the current one.
 * OIDC errors carry {"error": "<oauth code>", "error_description": ...}
 * with x-amzn-ErrorType: the exception name, which botocore maps to the
 * modelled exception.  Secrets are compared in constant time and never
 * logged.
 *
 * Not modelled: account and permission-set assignments (every well-formed
 * account and role is granted, as every role ARN is assumable by the local
 * STS) and token expiry (the tokens accepted are valid for the server's
 * lifetime; the client checks expiresAt in its own cache file).
 */
#include "sso_api.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sts_api.h"

#define SSO_MAX_TOKENS 64

struct ep_sso_api {
  pthread_mutex_t mu;
  char *token;
  ep_sts_api *sessions;
  int duration;
  long long calls, issued, unauthorized;
  /* SSO OIDC (CreateToken): the registered client, the current refresh
     token, and the access tokens it issued (oldest replaced first). */
  char *client_id, *client_secret, *refresh_token;
  char *issued_tokens[SSO_MAX_TOKENS];
  int next_issued;
  long long create_token_calls, tokens_refreshed, invalid_grants;
};

static void wipe_free(char *p) {
  if (!p) return;
  OPENSSL_cleanse(p, strlen(p));
  free(p);
}

ep_sso_api *ep_sso_api_new(const char *token, ep_sts_api *sessions, int duration) {
  if (!token || !*token || !sessions) return NULL;
  ep_sso_api *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->token = strdup(token);
  s->sessions = sessions;
  s->duration = duration > 0 ? duration : 3600;
  if (!s->token) {
    ep_sso_api_free(s);
    return NULL;
  }
  return s;
}

void ep_sso_api_free(ep_sso_api *s) {
  if (!s) return;
  wipe_free(s->token);
  wipe_free(s->client_id);
  wipe_free(s->client_secret);
  wipe_free(s->refresh_token);
  for (int i = 0; i < SSO_MAX_TOKENS; i++) wipe_free(s->issued_tokens[i]);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int ep_sso_api_set_oidc(ep_sso_api *s, const char *spec) {
  const char *c1 = spec ? strchr(spec, ':') : NULL;
  const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (!c1 || !c2 || c1 == spec || c2 == c1 + 1 || !c2[1]) return -1;
  s->client_id = strndup(spec, (size_t)(c1 - spec));
  s->client_secret = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
  s->refresh_token = strdup(c2 + 1);
  return s->client_id && s->client_secret && s->refresh_token ? 0 : -1;
}

int ep_sso_api_matches(const char *method, const char *path) {
  if (!method || !path) return 0;
  return (strcmp(method, "GET") == 0 && strcmp(path, "/federation/credentials") == 0) ||
         (strcmp(method, "POST") == 0 && strcmp(path, "/token") == 0);
}

int ep_sso_api_reads_body(const char *method) { return method && strcmp(method, "POST") == 0; }

static void count(ep_sso_api *s, long long *field) {
  pthread_mutex_lock(&s->mu);
  (*field)++;
  pthread_mutex_unlock(&s->mu);
}

/* Constant time in the presented token's content: a wrong guess takes as
 * long wherever it differs. */
static int same_secret(const char *known, const char *presented) {
  if (!known || !presented) return 0;
  size_t n = strlen(known);
  return strlen(presented) == n && CRYPTO_memcmp(presented, known, n) == 0;
}

/* The -sso-token, or one CreateToken issued. */
static int token_ok(ep_sso_api *s, const char *presented) {
  if (same_secret(s->token, presented)) return 1;
  int ok = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < SSO_MAX_TOKENS; i++) ok |= same_secret(s->issued_tokens[i], presented);
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static int account_ok(const char *a) {
  if (strlen(a) != 12) return 0;
  for (const char *p = a; *p; p++)
    if (!isdigit((unsigned char)*p)) return 0;
  return 1;
}

static void answer(ep_sso_api *s, const ep_request *req, ep_response *resp) {
  char akid[24], secret[48];
  char *token = NULL;
  double expires = 0;
  if (ep_sts_api_issue(s->sessions, s->duration, akid, secret, &token, &expires) != 0) {
    ep_json_error(resp, req, 429, "TooManyRequestsException", "Too many active sessions; try again later.");
    return;
  }
  count(s, &s->issued);
  json_object *rc = json_object_new_object();
  json_object_object_add(rc, "accessKeyId", json_object_new_string(akid));
  json_object_object_add(rc, "secretAccessKey", json_object_new_string(secret));
  json_object_object_add(rc, "sessionToken", json_object_new_string(token));
  json_object_object_add(rc, "expiration", json_object_new_int64((int64_t)expires * 1000));
  json_object *o = json_object_new_object();
  json_object_object_add(o, "roleCredentials", rc);
  asd_buf_append_str(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  /* json-c's copies of the secret and token are wiped before they are freed. */
  json_object *v = NULL;
  if (json_object_object_get_ex(rc, "secretAccessKey", &v))
    OPENSSL_cleanse((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
  if (json_object_object_get_ex(rc, "sessionToken", &v))
    OPENSSL_cleanse((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
  json_object_put(o);
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(token, strlen(token));
  free(token);
  resp->status = 200;
  ep_response_set_header(resp, "Content-Type", "application/json");
}

/* ------------------------------------------------------ SSO OIDC CreateToken */

/* An OIDC error: the exception name in x-amzn-ErrorType, the OAuth code and
   a description in the body (sso-oidc's error shapes). */
static void oidc_error(ep_response *resp, int status, const char *exception, const char *oauth,
                       const char *description) {
  ep_json_error(resp, NULL, status, exception, description);
  asd_buf_reset(&resp->body);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "error", json_object_new_string(oauth));
  json_object_object_add(o, "error_description", json_object_new_string(description));
  asd_buf_append_str(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
}

/* A new opaque token: a prefix and 32 random bytes in hex (malloc'd). */
static char *new_token(const char *prefix) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return NULL;
  size_t pn = strlen(prefix);
  char *t = malloc(pn + 2 * sizeof raw + 1);
  if (!t) return NULL;
  memcpy(t, prefix, pn);
  for (size_t i = 0; i < sizeof raw; i++) snprintf(t + pn + 2 * i, 3, "%02x", raw[i]);
  OPENSSL_cleanse(raw, sizeof raw);
  return t;
}

static const char *member(json_object *o, const char *name) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string)) return NULL;
  return json_object_get_string(v);
}

/* Rotates the refresh token and issues an access token; 0, or -1 (no
   memory, or the refresh token was spent meanwhile). */
static int rotate(ep_sso_api *s, const char *presented, char **access, char **refresh) {
  *access = new_token("aoa");
  *refresh = new_token("aor");
  int rc = -1;
  pthread_mutex_lock(&s->mu);
  if (*access && *refresh && same_secret(s->refresh_token, presented)) {
    wipe_free(s->refresh_token);
    s->refresh_token = strdup(*refresh);
    wipe_free(s->issued_tokens[s->next_issued]);
    s->issued_tokens[s->next_issued] = strdup(*access);
    s->next_issued = (s->next_issued + 1) % SSO_MAX_TOKENS;
    s->tokens_refreshed++;
    rc = 0;
  } else {
    s->invalid_grants++;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void create_token(ep_sso_api *s, const ep_request *req, ep_response *resp) {
  resp->operation = "CreateToken";
  count(s, &s->create_token_calls);
  json_object *in = NULL;
  if (req->body && req->body_len) {
    struct json_tokener *tok = json_tokener_new();
    in = tok ? json_tokener_parse_ex(tok, (const char *)req->body, (int)req->body_len) : NULL;
    if (tok) json_tokener_free(tok);
  }
  const char *id = in ? member(in, "clientId") : NULL, *secret = in ? member(in, "clientSecret") : NULL;
  const char *grant = in ? member(in, "grantType") : NULL, *refresh = in ? member(in, "refreshToken") : NULL;
  char *access = NULL, *next = NULL;
  if (!in || !json_object_is_type(in, json_type_object) || !id || !secret || !grant) {
    oidc_error(resp, 400, "InvalidRequestException", "invalid_request",
               "clientId, clientSecret and grantType are required");
  } else if (!s->client_id || !same_secret(s->client_id, id) || !same_secret(s->client_secret, secret)) {
    oidc_error(resp, 401, "InvalidClientException", "invalid_client", "Invalid client provided");
  } else if (strcmp(grant, "refresh_token") != 0) {
    oidc_error(resp, 400, "UnsupportedGrantTypeException", "unsupported_grant_type",
               "Unsupported grant type");
  } else if (!refresh) {
    oidc_error(resp, 400, "InvalidRequestException", "invalid_request",
               "refreshToken is required for the refresh_token grant");
  } else if (rotate(s, refresh, &access, &next) != 0) {
    oidc_error(resp, 400, "InvalidGrantException", "invalid_grant", "Invalid refresh token provided");
  } else {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accessToken", json_object_new_string(access));
    json_object_object_add(o, "tokenType", json_object_new_string("Bearer"));
    json_object_object_add(o, "expiresIn", json_object_new_int(s->duration));
    json_object_object_add(o, "refreshToken", json_object_new_string(next));
    asd_buf_append_str(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    for (const char *k = "accessToken"; k; k = strcmp(k, "accessToken") == 0 ? "refreshToken" : NULL) {
      json_object *v = NULL;
      if (json_object_object_get_ex(o, k, &v))
        OPENSSL_cleanse((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
    json_object_put(o);
    resp->status = 200;
    ep_response_set_header(resp, "Content-Type", "application/json");
  }
  wipe_free(access);
  wipe_free(next);
  if (in) {
    /* json-c's copies of the presented secrets are wiped before they are freed. */
    for (const char *k = "clientSecret"; k; k = strcmp(k, "clientSecret") == 0 ? "refreshToken" : NULL) {
      json_object *v = NULL;
      if (json_object_object_get_ex(in, k, &v) && json_object_is_type(v, json_type_string))
        OPENSSL_cleanse((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
    json_object_put(in);
  }
}

void ep_sso_api_handle(ep_sso_api *s, const ep_request *req, ep_response *resp) {
  if (strcmp(req->method, "POST") == 0) {
    create_token(s, req, resp);
    return;
  }
  resp->operation = "GetRoleCredentials";
  count(s, &s->calls);
  const char *bearer = ep_request_header(req, "x-amz-sso_bearer_token");
  const char *account = ep_request_query(req, "account_id");
  const char *role = ep_request_query(req, "role_name");
  if (!token_ok(s, bearer)) {
    count(s, &s->unauthorized);
    ep_json_error(resp, req, 401, "UnauthorizedException", "Session token not found or invalid");
  } else if (!account || !*account) {
    ep_json_error(resp, req, 400, "InvalidRequestException", "The request must contain account_id.");
  } else if (!role || !*role) {
    ep_json_error(resp, req, 400, "InvalidRequestException", "The request must contain role_name.");
  } else if (!account_ok(account)) {
    ep_json_error(resp, req, 400, "InvalidRequestException", "account_id must be a 12-digit AWS account id.");
  } else {
    answer(s, req, resp);
  }
}

json_object *ep_sso_api_stats_json(ep_sso_api *s) {
  json_object *o = json_object_new_object();
  pthread_mutex_lock(&s->mu);
  json_object_object_add(o, "get_role_credentials_calls", json_object_new_int64(s->calls));
  json_object_object_add(o, "credentials_issued", json_object_new_int64(s->issued));
  json_object_object_add(o, "unauthorized", json_object_new_int64(s->unauthorized));
  json_object_object_add(o, "create_token_calls", json_object_new_int64(s->create_token_calls));
  json_object_object_add(o, "tokens_refreshed", json_object_new_int64(s->tokens_refreshed));
  json_object_object_add(o, "invalid_grants", json_object_new_int64(s->invalid_grants));
  pthread_mutex_unlock(&s->mu);
  return o;
}
