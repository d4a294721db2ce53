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
 * Not modelled: account and permission-set assignments (every well-formed
 * account and role is granted, as every role ARN is assumable by the local
 * STS) and token expiry (the token given with -sso-token is valid for the
 * server's lifetime; the client checks expiresAt in its own cache file).
 */
#include "sso_api.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "sts_api.h"

struct ep_sso_api {
  pthread_mutex_t mu;
  char *token;
  ep_sts_api *sessions;
  int duration;
  long long calls, issued, unauthorized;
};

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
  if (s->token) {
    OPENSSL_cleanse(s->token, strlen(s->token));
    free(s->token);
  }
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int ep_sso_api_matches(const char *method, const char *path) {
  return method && path && strcmp(method, "GET") == 0 && strcmp(path, "/federation/credentials") == 0;
}

static void count(ep_sso_api *s, long long *field) {
  pthread_mutex_lock(&s->mu);
  (*field)++;
  pthread_mutex_unlock(&s->mu);
}

/* Constant time in the presented token's content: a wrong guess takes as
 * long wherever it differs. */
static int token_ok(const ep_sso_api *s, const char *presented) {
  if (!presented) return 0;
  size_t n = strlen(s->token);
  return strlen(presented) == n && CRYPTO_memcmp(presented, s->token, n) == 0;
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

void ep_sso_api_handle(ep_sso_api *s, const ep_request *req, ep_response *resp) {
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
  pthread_mutex_unlock(&s->mu);
  return o;
}
