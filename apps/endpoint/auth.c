/*
 * auth.c: SigV4 verification of the local endpoint's requests.
 *
 * The verification itself lives in the AWS layer (asd_sigv4_verify in
 * plugin/aws/sigv4.c), beside the signer, so the client and the server
 * share one canonicalisation and cannot drift apart.  This file adapts the
 * server's request to it, holds the configured credentials, and maps the
 * verifier's status to the AWS error the client should see:
 *   wrong signature         -> 403 SignatureDoesNotMatch
 *   unknown access key      -> 403 InvalidAccessKeyId
 *   no Authorization at all -> 403 AccessDenied
 *   clock too far off       -> 403 RequestTimeTooSkewed
 *   malformed header        -> 400 AuthorizationHeaderMalformed
 *
 * The payload hash: S3 clients sign the value of x-amz-content-sha256 and
 * the S3 layer compares that value with the body it actually received, so
 * S3 requests can be verified as soon as the headers arrive (before a large
 * body is read).  SageMaker clients sign the body's hash directly, so those
 * requests are verified once the body is in.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "asyncdetect/asd_common.h"

#if defined(__has_include)
#if __has_include("asyncdetect/asd_sigv4.h")
#define ASD_HAVE_SIGV4 1
#endif
#endif

#ifdef ASD_HAVE_SIGV4
#include "asyncdetect/asd_sigv4.h"
/* The verifier's header can land before its implementation; weak references
 * keep the server linkable meanwhile (requests then get NotImplemented). */
#pragma weak asd_sigv4_verify
#pragma weak asd_sigv4_status_code
#endif

struct asd_ep_auth {
  char *access_key;
  char *secret_key;
  char *session_token;
  double max_skew;
  asd_ep_auth_lookup_fn issued_lookup; /* STS-issued keys, or NULL */
  void *issued_user;
};

asd_ep_auth *asd_ep_auth_new(const char *access_key, const char *secret_key, const char *session_token,
                             double max_skew_s) {
  asd_ep_auth *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->access_key = strdup(access_key ? access_key : "");
  a->secret_key = strdup(secret_key ? secret_key : "");
  a->session_token = session_token && *session_token ? strdup(session_token) : NULL;
  a->max_skew = max_skew_s > 0 ? max_skew_s : 900;
  if (!a->access_key || !a->secret_key) {
    asd_ep_auth_free(a);
    return NULL;
  }
  return a;
}

void asd_ep_auth_free(asd_ep_auth *a) {
  if (!a) return;
  if (a->secret_key) OPENSSL_cleanse(a->secret_key, strlen(a->secret_key));
  free(a->secret_key);
  free(a->access_key);
  free(a->session_token);
  free(a);
}

#ifdef ASD_HAVE_SIGV4
static int lookup_secret(void *user, const char *access_key_id, const char *session_token, char *secret_out,
                         size_t secret_out_size) {
  const asd_ep_auth *a = user;
  if (strcmp(access_key_id, a->access_key) != 0)
    return a->issued_lookup ? a->issued_lookup(a->issued_user, access_key_id, session_token, secret_out,
                                               secret_out_size)
                            : -1;
  if (a->session_token && (!session_token || strcmp(session_token, a->session_token) != 0)) return -2;
  if (strlen(a->secret_key) + 1 > secret_out_size) return -1;
  memcpy(secret_out, a->secret_key, strlen(a->secret_key) + 1);
  return 0;
}
#endif

void asd_ep_auth_set_issued_keys(asd_ep_auth *a, asd_ep_auth_lookup_fn lookup, void *user) {
  if (!a) return;
  a->issued_lookup = lookup;
  a->issued_user = user;
}

static void fail(asd_ep_auth_result *res, int status, const char *code, const char *msg) {
  res->status = status;
  res->code = code;
  snprintf(res->message, sizeof res->message, "%s", msg);
}

int asd_ep_auth_check(asd_ep_auth *a, const asd_http_request *req, const asd_ep_header *headers, int n_headers,
                      const char *payload_hash, asd_ep_auth_result *res) {
  memset(res, 0, sizeof *res);
  if (!a) return 0;
#ifndef ASD_HAVE_SIGV4
  (void)req;
  (void)headers;
  (void)n_headers;
  (void)payload_hash;
  fail(res, 501, "NotImplemented",
       "This build has no SigV4 verifier (asd_sigv4.h); start the endpoint with -no-auth.");
  return -1;
#else
  if (!asd_sigv4_verify || !asd_sigv4_status_code) {
    fail(res, 501, "NotImplemented",
         "This build has no SigV4 verifier (plugin/aws/sigv4.c); start the endpoint with -no-auth.");
    return -1;
  }
  const char *authz = NULL, *sha_hdr = NULL;
  for (int i = 0; i < n_headers; i++) {
    if (strcasecmp(headers[i].name, "Authorization") == 0) authz = headers[i].value;
    if (strcasecmp(headers[i].name, "x-amz-content-sha256") == 0) sha_hdr = headers[i].value;
  }
  if (!authz) {
    if (asd_http_request_query(req, "X-Amz-Signature"))
      fail(res, 501, "NotImplemented", "Presigned URLs are not supported by the local endpoint.");
    else
      fail(res, 403, "AccessDenied", "Access Denied: the request is not signed (start the endpoint with -no-auth "
                                     "to accept anonymous requests).");
    return -1;
  }
  asd_sigv4_header *hv = calloc((size_t)(n_headers > 0 ? n_headers : 1), sizeof *hv);
  if (!hv) {
    fail(res, 500, "InternalError", "out of memory");
    return -1;
  }
  for (int i = 0; i < n_headers; i++) {
    hv[i].name = headers[i].name;
    hv[i].value = headers[i].value;
  }
  asd_sigv4_verify_request vr;
  memset(&vr, 0, sizeof vr);
  vr.method = req->method;
  vr.path = req->raw_path;
  vr.query = req->raw_query;
  vr.headers = hv;
  vr.n_headers = (size_t)n_headers;
  /* Without a computed hash, the signed x-amz-content-sha256 value stands in
   * for the body; the S3 layer checks the body against it afterwards. */
  vr.body_sha256_hex = payload_hash ? payload_hash : sha_hdr;
  vr.max_skew_seconds = a->max_skew;
  vr.lookup = lookup_secret;
  vr.lookup_user = a;
  asd_sigv4_verify_result out;
  memset(&out, 0, sizeof out);
  asd_sigv4_status st = asd_sigv4_verify(&vr, &out);
  free(hv);
  if (st == ASD_SIGV4_OK) return 0;
  int http = 403;
  const char *code = asd_sigv4_status_code(st, &http);
  switch (st) {
    case ASD_SIGV4_MISSING: code = "AccessDenied"; break;
    case ASD_SIGV4_MALFORMED: code = code && *code ? code : "AuthorizationHeaderMalformed"; break;
    case ASD_SIGV4_UNSUPPORTED: http = 400; code = "InvalidRequest"; break;
    default: break;
  }
  fail(res, http, code && *code ? code : "AccessDenied", out.message[0] ? out.message : "Access Denied");
  return -1;
#endif
}
