/*
 * sts_api.c: STS AssumeRole for the local endpoint (sts_api.h).
 *
 * Why a local STS at all?  Cross-account access through an assumed role is
 * how SageMaker endpoints are usually reached from a pipeline (the utility's
 * -assume-role ARN [-external-id ID]), and a code path that only ever runs
 * against AWS is a code path nobody tests.  With this file the whole chain
 * runs offline: the client signs AssumeRole with its base credentials, this
 * file answers with temporary credentials, and every S3 and SageMaker call
 * after that is signed with them and verified by the same SigV4 verifier as
 * any other request (auth.c asks ep_sts_api_lookup for the secret of a key
 * it does not know).
 *
 * The protocol is STS's "query" protocol: a form-encoded POST to "/" with
 * Action=AssumeRole&Version=2011-06-15&RoleArn=...&RoleSessionName=...
 * [&DurationSeconds=N][&ExternalId=...], answered by
 * <AssumeRoleResponse><AssumeRoleResult><Credentials>... in the STS XML
 * namespace, errors by <ErrorResponse><Error><Type>Sender</Type><Code>...
 * The parameters are validated with the limits AWS documents (role ARN 20 to
 * 2048 characters, session name 2 to 64 of [\w+=,.@-], duration 900 to
 * 43200 s, external id 2 to 1224 of [\w+=,.@:/-]) so that a client bug shows
 * here as it would on AWS.
 *
 * Issued credentials: an access key id "ASIA" + 16 characters, a 40-character
 * secret and a session token, all from OpenSSL's RAND_bytes, kept in memory
 * with their expiration until they expire.  A request signed with an issued
 * key is accepted only with the session token issued with it, and only
 * before the expiration; a wrong, missing or expired token is refused
 * (InvalidToken from the verifier); tokens are compared in constant time.
 * Role chaining is capped as on AWS: AssumeRole signed with credentials
 * this endpoint issued (by AssumeRole or by SSO GetRoleCredentials,
 * sso_api.c, which issues into the same table) may not ask for more than
 * 3600 s (ValidationError), so issued keys cannot keep extending themselves
 * past an hour per hop.  Secrets and tokens are never logged;
 * they leave this file only in the AssumeRole answer and, for the secret, to
 * the verifier's buffer.
 */
#include "sts_api.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cpl_string.h"

#define STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define MAX_SESSIONS 10000

typedef struct session {
  char access_key[24];
  char secret[48];
  char *token;
  double expires; /* wall-clock seconds */
} session;

struct ep_sts_api {
  pthread_mutex_t mu;
  char *external_id;
  session *sessions;
  int n, cap;
  long long calls, issued, lookups, rejected;
  double clock; /* 0 = real time; tests set a fixed time */
};

static double now_s(const ep_sts_api *s) { return s->clock > 0 ? s->clock : (double)time(NULL); }

void ep_sts_api_set_clock(ep_sts_api *s, double now) {
  if (s) s->clock = now;
}

ep_sts_api *ep_sts_api_new(const char *required_external_id) {
  ep_sts_api *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  if (required_external_id && *required_external_id) {
    s->external_id = strdup(required_external_id);
    if (!s->external_id) {
      ep_sts_api_free(s);
      return NULL;
    }
  }
  return s;
}

static void session_wipe(session *x) {
  OPENSSL_cleanse(x->secret, sizeof x->secret);
  if (x->token) {
    OPENSSL_cleanse(x->token, strlen(x->token));
    free(x->token);
  }
  memset(x, 0, sizeof *x);
}

void ep_sts_api_free(ep_sts_api *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) session_wipe(&s->sessions[i]);
  free(s->sessions);
  free(s->external_id);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int ep_sts_api_matches(const char *method, const char *path, const char *content_type) {
  if (!method || !path || strcmp(method, "POST") != 0 || strcmp(path, "/") != 0 || !content_type) return 0;
  return strncasecmp(content_type, "application/x-www-form-urlencoded", 33) == 0;
}

/* ------------------------------------------------------------ answers */

static void xml_escape(asd_buf *b, const char *s) {
  char *e = CPLEscapeString(s ? s : "", -1, CPLES_XML);
  asd_buf_append_str(b, e);
  CPLFree(e);
}

void ep_sts_api_error(ep_response *resp, const ep_request *req, int status, const char *code,
                       const char *message) {
  asd_buf_reset(&resp->body);
  resp->status = status;
  resp->fd = -1;
  asd_buf *b = &resp->body;
  asd_buf_append_str(b, "<ErrorResponse xmlns=\"" STS_NS "\">\n  <Error>\n    <Type>");
  asd_buf_append_str(b, status >= 500 ? "Receiver" : "Sender");
  asd_buf_append_str(b, "</Type>\n    <Code>");
  xml_escape(b, code);
  asd_buf_append_str(b, "</Code>\n    <Message>");
  xml_escape(b, message);
  asd_buf_append_str(b, "</Message>\n  </Error>\n  <RequestId>");
  xml_escape(b, req && req->request_id ? req->request_id : "");
  asd_buf_append_str(b, "</RequestId>\n</ErrorResponse>\n");
  ep_response_set_header(resp, "Content-Type", "text/xml");
  if (req && req->request_id) ep_response_set_header(resp, "x-amzn-RequestId", req->request_id);
}

/* ------------------------------------------------------------ parameters */

/* The decoded value of name in an application/x-www-form-urlencoded body
 * (CPLFree), or NULL.  '+' is a space there; %2B a plus. */
static char *form_value(const unsigned char *body, size_t len, const char *name) {
  size_t nlen = strlen(name);
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && body[j] != '&') j++;
    if (j - i > nlen && memcmp(body + i, name, nlen) == 0 && body[i + nlen] == '=') {
      size_t vlen = j - i - nlen - 1;
      char *raw = CPLMalloc(vlen + 1);
      memcpy(raw, body + i + nlen + 1, vlen);
      raw[vlen] = '\0';
      for (char *p = raw; *p; p++)
        if (*p == '+') *p = ' ';
      char *v = CPLUnescapeString(raw, NULL, CPLES_URL);
      CPLFree(raw);
      return v;
    }
    i = j + 1;
  }
  return NULL;
}

/* A parameter from the body, else from the query string (STS accepts both). */
static char *param(const ep_request *req, const char *name) {
  char *v = req->body ? form_value(req->body, req->body_len, name) : NULL;
  if (v) return v;
  const char *q = ep_request_query(req, name);
  return q ? CPLStrdup(q) : NULL;
}

static int chars_ok(const char *s, const char *extra) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!isalnum(*p) && *p != '_' && !strchr(extra, *p)) return 0;
  return 1;
}

/* Role ARN: arn:PARTITION:iam::ACCOUNT(12 digits):role/PATH/NAME. */
static int parse_role_arn(const char *arn, char account[13], const char **role_name) {
  size_t len = strlen(arn);
  if (len < 20 || len > 2048 || strncmp(arn, "arn:", 4) != 0) return -1;
  const char *p = strchr(arn + 4, ':'); /* after the partition */
  if (!p || strncmp(p, ":iam::", 6) != 0) return -1;
  p += 6;
  for (int i = 0; i < 12; i++)
    if (!isdigit((unsigned char)p[i])) return -1;
  if (strncmp(p + 12, ":role/", 6) != 0) return -1;
  memcpy(account, p, 12);
  account[12] = '\0';
  const char *name = strrchr(p + 18, '/');
  name = name ? name + 1 : p + 18;
  if (!*name) return -1;
  *role_name = name;
  return 0;
}

/* ------------------------------------------------------------ credentials */

/* n random characters of alphabet (n <= 64). */
static int random_text(char *out, size_t n, const char *alphabet) {
  unsigned char raw[64];
  if (n > sizeof raw || RAND_bytes(raw, (int)n) != 1) return -1;
  size_t k = strlen(alphabet);
  for (size_t i = 0; i < n; i++) out[i] = alphabet[raw[i] % k];
  out[n] = '\0';
  OPENSSL_cleanse(raw, sizeof raw);
  return 0;
}

static const char UPPER32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char SECRET64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Drops expired sessions (caller holds the mutex). */
static void prune(ep_sts_api *s, double now) {
  int k = 0;
  for (int i = 0; i < s->n; i++) {
    if (s->sessions[i].expires <= now)
      session_wipe(&s->sessions[i]);
    else
      s->sessions[k++] = s->sessions[i];
  }
  s->n = k;
}

int ep_sts_api_issue(ep_sts_api *s, int duration, char akid[24], char secret[48], char **token,
                      double *expires) {
  session x;
  memset(&x, 0, sizeof x);
  char tok[65], text[96];
  if (random_text(akid, 20, UPPER32) != 0 || random_text(secret, 40, SECRET64) != 0 ||
      random_text(tok, 64, SECRET64) != 0)
    return -1;
  memcpy(akid, "ASIA", 4);
  memcpy(x.access_key, akid, 21);
  memcpy(x.secret, secret, 41);
  /* A recognisable prefix tells a human where a token came from; the rest
     is the random part. */
  snprintf(text, sizeof text, "AsdLocalSession/%s", tok);
  x.token = strdup(text);
  *token = strdup(text);
  OPENSSL_cleanse(tok, sizeof tok);
  OPENSSL_cleanse(text, sizeof text);
  double now = now_s(s);
  x.expires = now + duration;
  int rc = -1;
  pthread_mutex_lock(&s->mu);
  prune(s, now);
  if (s->n == s->cap && s->cap < MAX_SESSIONS) {
    int nc = s->cap ? s->cap * 2 : 16;
    if (nc > MAX_SESSIONS) nc = MAX_SESSIONS;
    session *ns = realloc(s->sessions, sizeof *ns * (size_t)nc);
    if (ns) {
      s->sessions = ns;
      s->cap = nc;
    }
  }
  if (x.token && *token && s->n < s->cap) {
    s->sessions[s->n++] = x;
    s->issued++;
    *expires = x.expires;
    rc = 0;
  }
  pthread_mutex_unlock(&s->mu);
  if (rc != 0) {
    session_wipe(&x);
    if (*token) {
      OPENSSL_cleanse(*token, strlen(*token));
      free(*token);
      *token = NULL;
    }
  }
  return rc;
}

/* Compares a presented session token with the issued one in time that
 * does not depend on where they differ (CRYPTO_memcmp), so that response
 * times do not reveal a token byte by byte. */
static int token_matches(const char *presented, const char *issued) {
  if (!presented || !issued) return 0;
  size_t n = strlen(issued);
  return strlen(presented) == n && CRYPTO_memcmp(presented, issued, n) == 0;
}

int ep_sts_api_is_issued(ep_sts_api *s, const char *access_key_id) {
  if (!s || !access_key_id) return 0;
  int found = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n && !found; i++) found = strcmp(s->sessions[i].access_key, access_key_id) == 0;
  pthread_mutex_unlock(&s->mu);
  return found;
}

/* The access key id a request was signed with: the Credential= of the
 * Authorization header, or X-Amz-Credential of a presigned URL. */
static void signing_key_id(const ep_request *req, char *out, size_t size) {
  out[0] = '\0';
  const char *cred = NULL;
  const char *auth = ep_request_header(req, "Authorization");
  if (auth && (cred = strstr(auth, "Credential=")) != NULL) cred += 11;
  if (!cred) cred = ep_request_query(req, "X-Amz-Credential");
  if (!cred) return;
  size_t n = strcspn(cred, "/, ");
  if (n >= size) return;
  memcpy(out, cred, n);
  out[n] = '\0';
}

int ep_sts_api_lookup(void *user, const char *access_key_id, const char *session_token, char *secret_out,
                       size_t secret_out_size) {
  ep_sts_api *s = user;
  if (!s || !access_key_id) return -1;
  int rc = -1;
  double now = now_s(s);
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n; i++) {
    session *x = &s->sessions[i];
    if (strcmp(x->access_key, access_key_id) != 0) continue;
    s->lookups++;
    if (!token_matches(session_token, x->token) || x->expires <= now) {
      s->rejected++;
      rc = -2;
    } else if (strlen(x->secret) + 1 <= secret_out_size) {
      memcpy(secret_out, x->secret, strlen(x->secret) + 1);
      rc = 0;
    }
    break;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ------------------------------------------------------------ AssumeRole */

static void assume_role(ep_sts_api *s, const ep_request *req, ep_response *resp) {
  char *arn = param(req, "RoleArn");
  char *name = param(req, "RoleSessionName");
  char *dur = param(req, "DurationSeconds");
  char *ext = param(req, "ExternalId");
  char account[13];
  const char *role_name = NULL;
  int duration = 3600;
  char caller[64];
  signing_key_id(req, caller, sizeof caller);
  int chained = caller[0] && ep_sts_api_is_issued(s, caller);
  if (!arn || !*arn) {
    ep_sts_api_error(resp, req, 400, "MissingParameter", "The request must contain the parameter RoleArn.");
  } else if (!name || !*name) {
    ep_sts_api_error(resp, req, 400, "MissingParameter", "The request must contain the parameter RoleSessionName.");
  } else if (parse_role_arn(arn, account, &role_name) != 0) {
    ep_sts_api_error(resp, req, 400, "ValidationError",
                      CPLSPrintf("%.200s is invalid: expected arn:aws:iam::ACCOUNT:role/NAME", arn));
  } else if (strlen(name) < 2 || strlen(name) > 64 || !chars_ok(name, "+=,.@-")) {
    ep_sts_api_error(resp, req, 400, "ValidationError",
                      "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: "
                      "2 to 64 characters of [\\w+=,.@-]");
  } else if (dur && (sscanf(dur, "%d", &duration) != 1 || duration < 900 || duration > 43200)) {
    ep_sts_api_error(resp, req, 400, "ValidationError",
                      "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: "
                      "Member must have value between 900 and 43200");
  } else if (ext && (strlen(ext) < 2 || strlen(ext) > 1224 || !chars_ok(ext, "+=,.@:/-"))) {
    ep_sts_api_error(resp, req, 400, "ValidationError",
                      "1 validation error detected: Value at 'externalId' failed to satisfy constraint: "
                      "2 to 1224 characters of [\\w+=,.@:/-]");
  } else if (duration > 3600 && chained) {
    /* Role chaining: credentials this endpoint issued (AssumeRole or SSO
     * GetRoleCredentials) assuming a role again get at most an hour, as on
     * AWS, so issued sessions cannot be extended indefinitely. */
    ep_sts_api_error(resp, req, 400, "ValidationError",
                      "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
                      "chaining.");
  } else if (s->external_id && (!ext || strcmp(ext, s->external_id) != 0)) {
    ep_sts_api_error(resp, req, 403, "AccessDenied",
                      CPLSPrintf("User is not authorized to perform: sts:AssumeRole on resource: %.200s "
                                 "(the external id is missing or wrong)",
                                 arn));
  } else {
    char akid[24], secret[48];
    char *token = NULL;
    double expires = 0;
    if (ep_sts_api_issue(s, duration, akid, secret, &token, &expires) != 0) {
      ep_sts_api_error(resp, req, 500, "ServiceUnavailable", "Too many active sessions; try again later.");
    } else {
      char when[32];
      time_t t = (time_t)expires;
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      char role_id[24];
      random_text(role_id, 17, UPPER32);
      memcpy(role_id, "AROA", 4);
      asd_buf *b = &resp->body;
      asd_buf_append_str(b, "<AssumeRoleResponse xmlns=\"" STS_NS "\">\n  <AssumeRoleResult>\n"
                            "    <SourceIdentity/>\n    <AssumedRoleUser>\n      <AssumedRoleId>");
      asd_buf_append_str(b, role_id);
      asd_buf_append_str(b, ":");
      xml_escape(b, name);
      asd_buf_append_str(b, "</AssumedRoleId>\n      <Arn>");
      char *arn_user = CPLStrdup(CPLSPrintf("arn:aws:sts::%s:assumed-role/%s/%s", account, role_name, name));
      xml_escape(b, arn_user);
      CPLFree(arn_user);
      asd_buf_append_str(b, "</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>");
      asd_buf_append_str(b, akid);
      asd_buf_append_str(b, "</AccessKeyId>\n      <SecretAccessKey>");
      asd_buf_append_str(b, secret);
      asd_buf_append_str(b, "</SecretAccessKey>\n      <SessionToken>");
      xml_escape(b, token);
      asd_buf_append_str(b, "</SessionToken>\n      <Expiration>");
      asd_buf_append_str(b, when);
      asd_buf_append_str(b, "</Expiration>\n    </Credentials>\n  </AssumeRoleResult>\n  <ResponseMetadata>\n"
                            "    <RequestId>");
      xml_escape(b, req->request_id ? req->request_id : "");
      asd_buf_append_str(b, "</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n");
      resp->status = 200;
      ep_response_set_header(resp, "Content-Type", "text/xml");
      if (req->request_id) ep_response_set_header(resp, "x-amzn-RequestId", req->request_id);
      OPENSSL_cleanse(secret, sizeof secret);
      OPENSSL_cleanse(token, strlen(token));
      free(token);
    }
  }
  CPLFree(arn);
  CPLFree(name);
  CPLFree(dur);
  CPLFree(ext);
}

void ep_sts_api_handle(ep_sts_api *s, const ep_request *req, ep_response *resp) {
  resp->operation = "STS";
  char *action = param(req, "Action");
  char *version = param(req, "Version");
  if (!action) {
    ep_sts_api_error(resp, req, 400, "MissingAction", "The request must contain the parameter Action.");
  } else if (version && strcmp(version, "2011-06-15") != 0) {
    ep_sts_api_error(resp, req, 400, "InvalidParameterValue",
                      CPLSPrintf("Could not find operation %.64s for version %.32s", action, version));
  } else if (strcmp(action, "AssumeRole") == 0) {
    resp->operation = "AssumeRole";
    pthread_mutex_lock(&s->mu);
    s->calls++;
    pthread_mutex_unlock(&s->mu);
    assume_role(s, req, resp);
  } else {
    ep_sts_api_error(resp, req, 400, "InvalidAction",
                      CPLSPrintf("Could not find operation %.64s: the local endpoint implements AssumeRole only",
                                 action));
  }
  CPLFree(action);
  CPLFree(version);
}

json_object *ep_sts_api_stats_json(ep_sts_api *s) {
  json_object *o = json_object_new_object();
  pthread_mutex_lock(&s->mu);
  prune(s, now_s(s));
  json_object_object_add(o, "assume_role_calls", json_object_new_int64(s->calls));
  json_object_object_add(o, "sessions_issued", json_object_new_int64(s->issued));
  json_object_object_add(o, "active_sessions", json_object_new_int(s->n));
  json_object_object_add(o, "session_key_lookups", json_object_new_int64(s->lookups));
  json_object_object_add(o, "rejected_tokens", json_object_new_int64(s->rejected));
  pthread_mutex_unlock(&s->mu);
  return o;
}
