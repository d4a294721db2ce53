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
 *
 * Presigned URLs (query-string authentication, what `aws s3 presign` and
 * boto3's generate_presigned_url make) carry the signature in the query:
 * X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders, X-Amz-Signature (and X-Amz-Security-Token).  The
 * canonical request is the usual one with the query minus X-Amz-Signature,
 * only the headers named in X-Amz-SignedHeaders, and for S3 the literal
 * payload hash UNSIGNED-PAYLOAD (the signer cannot know the body).  It is
 * rebuilt here with the project's signer (asd_sigv4_sign, the same
 * canonicalisation the header verifier uses) and the signatures compared in
 * constant time.  Expiry is enforced as S3 does: 403 AccessDenied "Request
 * has expired" once X-Amz-Date + X-Amz-Expires has passed; X-Amz-Expires
 * is limited to a week (604800 s).
 *
 * Signature Version 2 query strings (AWSAccessKeyId, Expires, Signature) are
 * accepted too, because they are what the AWS CLI v1 and boto3 produce by
 * default when presigning S3 URLs in a region that still supports SigV2,
 * us-east-1 included: `aws s3 presign` against this endpoint makes one.  The
 * string to sign is "METHOD\nContent-MD5\nContent-Type\nExpires\n", the
 * x-amz-* headers ("name:value\n", sorted), then the path as sent plus the
 * S3 sub-resources of the query, and the signature is the base64 of its
 * HMAC-SHA1 under the secret (a session token travels in the query as
 * x-amz-security-token and is signed as if it were that header).  Both
 * kinds accept the configured key and the keys the endpoint's STS issued.
 * SigV2 in the Authorization header is still refused: no current client
 * sends it.
 *
 * Unsigned x-amz-* headers.  A signature only vouches for the headers it
 * names, and S3 reads its operation from x-amz-* headers (x-amz-copy-source
 * makes a PUT a CopyObject, x-amz-meta-* become metadata, ...), so S3 refuses
 * any x-amz-* header the signature leaves out: 403 AccessDenied "There were
 * headers present in the request which were not signed", with the names in a
 * <HeadersNotSigned> element.  x-amz-content-sha256 is the one exception (its
 * value is the payload hash the signature covers).  SigV2 query strings sign
 * every x-amz-* header by construction.  Range and Content-MD5 are not held
 * to this rule, as on S3: GDAL's /vsis3/ and /vsicurl/ (also on presigned
 * URLs) send Range unsigned, GDAL sends DeleteObjects' Content-MD5 unsigned,
 * and neither header can widen what a signer allowed (a range of an object
 * one may read, or one more integrity check).
 *
 * Two stages.  ep_auth_check_headers decides everything the headers
 * decide (form, key, token, clock skew, signed-header set) and stops before
 * the signature when the signer hashed a body not yet read; the server calls
 * it first and ep_auth_check once a (capped) body is in.  Session tokens
 * are compared in constant time, like signatures.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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
#pragma weak asd_sigv4_sign
#pragma weak asd_sigv4_signature_init
#pragma weak asd_sigv4_signature_free
#pragma weak asd_sigv4_parse_amz_date
#pragma weak asd_sigv4_derive_key
#endif

#define PRESIGN_MAX_EXPIRES 604800 /* one week, S3's limit */

struct ep_auth {
  char *access_key;
  char *secret_key;
  char *session_token;
  double max_skew;
  double clock; /* 0 = real time; tests set a fixed time */
  ep_auth_lookup_fn issued_lookup; /* STS-issued keys, or NULL */
  void *issued_user;
};

void ep_auth_set_clock(ep_auth *a, double now) {
  if (a) a->clock = now;
}

ep_auth *ep_auth_new(const char *access_key, const char *secret_key, const char *session_token,
                             double max_skew_s) {
  ep_auth *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->access_key = strdup(access_key ? access_key : "");
  a->secret_key = strdup(secret_key ? secret_key : "");
  a->session_token = session_token && *session_token ? strdup(session_token) : NULL;
  a->max_skew = max_skew_s > 0 ? max_skew_s : 900;
  if (!a->access_key || !a->secret_key) {
    ep_auth_free(a);
    return NULL;
  }
  return a;
}

void ep_auth_free(ep_auth *a) {
  if (!a) return;
  if (a->secret_key) OPENSSL_cleanse(a->secret_key, strlen(a->secret_key));
  free(a->secret_key);
  free(a->access_key);
  free(a->session_token);
  free(a);
}

int ep_secret_equal(const char *a, const char *b) {
  if (!a || !b) return 0;
  size_t la = strlen(a), lb = strlen(b);
  /* The length of a token is not secret; its bytes are. */
  return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

#ifdef ASD_HAVE_SIGV4
static int lookup_secret(void *user, const char *access_key_id, const char *session_token, char *secret_out,
                         size_t secret_out_size) {
  const ep_auth *a = user;
  if (strcmp(access_key_id, a->access_key) != 0)
    return a->issued_lookup ? a->issued_lookup(a->issued_user, access_key_id, session_token, secret_out,
                                               secret_out_size)
                            : -1;
  if (a->session_token && !ep_secret_equal(session_token, a->session_token)) return -2;
  if (strlen(a->secret_key) + 1 > secret_out_size) return -1;
  memcpy(secret_out, a->secret_key, strlen(a->secret_key) + 1);
  return 0;
}
#endif

void ep_auth_set_issued_keys(ep_auth *a, ep_auth_lookup_fn lookup, void *user) {
  if (!a) return;
  a->issued_lookup = lookup;
  a->issued_user = user;
}

static void fail(ep_auth_result *res, int status, const char *code, const char *msg) {
  res->status = status;
  res->code = code;
  snprintf(res->message, sizeof res->message, "%s", msg);
}

#ifdef ASD_HAVE_SIGV4
/* 1 when the ';'-separated list holds name (case-insensitive). */
static int list_has(const char *list, size_t list_len, const char *name) {
  size_t nl = strlen(name);
  const char *p = list, *end = list + list_len;
  while (p < end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    size_t l = semi ? (size_t)(semi - p) : (size_t)(end - p);
    if (l == nl && strncasecmp(p, name, nl) == 0) return 1;
    p += l + (semi ? 1 : 0);
  }
  return 0;
}

/* S3's rule: every x-amz-* header but x-amz-content-sha256 must be signed.
 * 0, or -1 with 403 AccessDenied and the unsigned names in res. */
static int check_signed_set(const char *list, size_t list_len, const ep_header *headers, int n_headers,
                            ep_auth_result *res) {
  char names[sizeof res->headers_not_signed] = "";
  size_t used = 0;
  for (int i = 0; i < n_headers; i++) {
    const char *h = headers[i].name;
    if (strncasecmp(h, "x-amz-", 6) != 0 || strcasecmp(h, "x-amz-content-sha256") == 0) continue;
    if (list_has(list, list_len, h)) continue;
    int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", h);
    if (w > 0) used = used + (size_t)w < sizeof names ? used + (size_t)w : sizeof names - 1;
  }
  if (!used) return 0;
  for (size_t k = 0; k < used; k++) names[k] = (char)tolower((unsigned char)names[k]);
  fail(res, 403, "AccessDenied", "There were headers present in the request which were not signed");
  snprintf(res->headers_not_signed, sizeof res->headers_not_signed, "%s", names);
  return -1;
}

/* The SignedHeaders= value of an Authorization header (not NUL-terminated). */
static const char *authz_signed_list(const char *authz, size_t *len) {
  const char *p = strstr(authz, "SignedHeaders=");
  if (!p) {
    *len = 0;
    return "";
  }
  p += 14;
  *len = strcspn(p, ", \t");
  return p;
}

/* Appends the raw query without its X-Amz-Signature parameter. */
static void query_without_signature(asd_buf *out, const char *raw) {
  const char *p = raw ? raw : "";
  int first = 1;
  while (*p) {
    size_t l = strcspn(p, "&");
    size_t nl = strcspn(p, "=&");
    if (l && !(nl == 15 && strncmp(p, "X-Amz-Signature", 15) == 0)) {
      if (!first) asd_buf_append(out, "&", 1);
      asd_buf_append(out, p, l);
      first = 0;
    }
    p += l;
    if (*p == '&') p++;
  }
  asd_buf_append(out, "", 0); /* NUL-terminated even when empty */
}

static int all_hex(const char *s, size_t n) {
  if (strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F'))) return 0;
  return 1;
}

/* Sub-resources that belong to a SigV2 canonical resource (as botocore's list). */
static const char *const v2_subresources[] = {
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "lifecycle",
    "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy", "replication",
    "requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "restore", "select",
    "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website", NULL};

static int cmp_cstr(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static const char *header_value(const ep_header *headers, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcasecmp(headers[i].name, name) == 0) return headers[i].value;
  return NULL;
}

static int check_presigned_v2(ep_auth *a, const ep_request *req, const ep_header *headers,
                              int n_headers, ep_auth_result *res) {
  const char *akid = ep_request_query(req, "AWSAccessKeyId");
  const char *expires = ep_request_query(req, "Expires");
  const char *sig = ep_request_query(req, "Signature");
  if (!akid || !expires || !sig) {
    fail(res, 403, "AccessDenied", "Query-string authentication requires the Signature, Expires and "
                                   "AWSAccessKeyId parameters");
    return -1;
  }
  char *end = NULL;
  long long ex = strtoll(expires, &end, 10);
  if (!*expires || *end) {
    fail(res, 403, "AccessDenied", "Invalid date (should be seconds since epoch)");
    return -1;
  }
  /* Same key sources as signed headers: the configured key, or one the
   * endpoint issued (STS), whose token travels as x-amz-security-token. */
  char secret[256];
  int lr = lookup_secret(a, akid, ep_request_query(req, "x-amz-security-token"), secret, sizeof secret);
  if (lr != 0) {
    if (lr == -1)
      fail(res, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    else
      fail(res, 400, "InvalidToken", "The provided token is malformed or otherwise invalid.");
    return -1;
  }
  double now = a->clock > 0 ? a->clock : asd_time_wall();
  if (now > (double)ex) {
    OPENSSL_cleanse(secret, sizeof secret);
    fail(res, 403, "AccessDenied", "Request has expired");
    return -1;
  }
  asd_buf sts;
  asd_buf_init(&sts);
  const char *md5 = header_value(headers, n_headers, "Content-MD5");
  const char *ctype = header_value(headers, n_headers, "Content-Type");
  asd_buf_appendf(&sts, "%s\n%s\n%s\n%s\n", req->method, md5 ? md5 : "", ctype ? ctype : "", expires);
  /* x-amz-* headers, lower-case, sorted; repeated names joined with ','. */
  char **amz = NULL;
  size_t n_amz = 0;
  for (int i = 0; i < n_headers; i++) {
    if (strncasecmp(headers[i].name, "x-amz-", 6) != 0) continue;
    char **na = realloc(amz, (n_amz + 1) * sizeof *na);
    if (!na) break;
    amz = na;
    size_t l = strlen(headers[i].name);
    amz[n_amz] = malloc(l + 1);
    if (!amz[n_amz]) break;
    for (size_t k = 0; k <= l; k++) amz[n_amz][k] = (char)tolower((unsigned char)headers[i].name[k]);
    n_amz++;
  }
  /* Signers add a session token as an x-amz-security-token header, sign it
   * as one, then move it to the query: it counts as a header here too. */
  const char *qtok = ep_request_query(req, "x-amz-security-token");
  if (qtok && !header_value(headers, n_headers, "x-amz-security-token")) {
    char **na = realloc(amz, (n_amz + 1) * sizeof *na);
    if (na) {
      amz = na;
      amz[n_amz] = strdup("x-amz-security-token");
      if (amz[n_amz]) n_amz++;
    }
  }
  if (n_amz) qsort(amz, n_amz, sizeof *amz, cmp_cstr);
  for (size_t i = 0; i < n_amz; i++) {
    if (i && strcmp(amz[i], amz[i - 1]) == 0) continue;
    asd_buf_appendf(&sts, "%s:", amz[i]);
    int first = 1;
    for (int k = 0; k < n_headers; k++) {
      if (strcasecmp(headers[k].name, amz[i]) != 0) continue;
      const char *v = headers[k].value;
      while (*v == ' ' || *v == '\t') v++;
      size_t vl = strlen(v);
      while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
      if (!first) asd_buf_append(&sts, ",", 1);
      asd_buf_append(&sts, v, vl);
      first = 0;
    }
    if (first && qtok && strcmp(amz[i], "x-amz-security-token") == 0) asd_buf_append_str(&sts, qtok);
    asd_buf_append(&sts, "\n", 1);
  }
  for (size_t i = 0; i < n_amz; i++) free(amz[i]);
  free(amz);
  asd_buf_append_str(&sts, req->raw_path);
  int nsub = 0;
  for (int i = 0; v2_subresources[i]; i++) {
    const char *v = ep_request_query(req, v2_subresources[i]);
    if (!v) continue;
    asd_buf_append_str(&sts, nsub++ ? "&" : "?");
    asd_buf_append_str(&sts, v2_subresources[i]);
    if (*v) asd_buf_appendf(&sts, "=%s", v);
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  int ok = sts.data && HMAC(EVP_sha1(), secret, (int)strlen(secret), sts.data, sts.len, mac, &maclen) != NULL;
  OPENSSL_cleanse(secret, sizeof secret);
  asd_buf_free(&sts);
  char want[64];
  if (ok) EVP_EncodeBlock((unsigned char *)want, mac, (int)maclen);
  ok = ok && strlen(sig) == strlen(want) && CRYPTO_memcmp(sig, want, strlen(want)) == 0;
  if (!ok) {
    fail(res, 403, "SignatureDoesNotMatch",
         "The request signature we calculated does not match the signature you provided. Check your key and "
         "signing method.");
    return -1;
  }
  return 0;
}

static int rebuilt_signature(const ep_request *req, const ep_header *headers, int n_headers,
                             const char *signed_list, char *const parts[5], const char *date,
                             const char *payload_hash, const char *secret, const char *sig, ep_auth_result *res);

static int check_presigned(ep_auth *a, const ep_request *req, const ep_header *headers, int n_headers,
                           const char *payload_hash, int headers_only, ep_auth_result *res) {
  if (!asd_sigv4_sign || !asd_sigv4_signature_init || !asd_sigv4_signature_free || !asd_sigv4_parse_amz_date) {
    fail(res, 501, "NotImplemented", "This build has no SigV4 signer; presigned URLs cannot be verified.");
    return -1;
  }
  const char *alg = ep_request_query(req, "X-Amz-Algorithm");
  const char *cred = ep_request_query(req, "X-Amz-Credential");
  const char *date = ep_request_query(req, "X-Amz-Date");
  const char *expires = ep_request_query(req, "X-Amz-Expires");
  const char *signed_list = ep_request_query(req, "X-Amz-SignedHeaders");
  const char *sig = ep_request_query(req, "X-Amz-Signature");
  const char *token = ep_request_query(req, "X-Amz-Security-Token");
  if (!alg || !cred || !date || !expires || !signed_list || !sig) {
    fail(res, 400, "AuthorizationQueryParametersError",
         "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
         "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    return -1;
  }
  if (strcmp(alg, "AWS4-HMAC-SHA256") != 0) {
    fail(res, 400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
    return -1;
  }
  /* Credential = AKID/yyyymmdd/region/service/aws4_request, split from the right. */
  char cbuf[512];
  if (strlen(cred) >= sizeof cbuf) {
    fail(res, 400, "AuthorizationQueryParametersError", "X-Amz-Credential is too long.");
    return -1;
  }
  snprintf(cbuf, sizeof cbuf, "%s", cred);
  char *parts[5];
  for (int i = 4; i >= 1; i--) {
    char *slash = strrchr(cbuf, '/');
    if (!slash) {
      fail(res, 400, "AuthorizationQueryParametersError",
           "X-Amz-Credential must be ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request.");
      return -1;
    }
    *slash = '\0';
    parts[i] = slash + 1;
  }
  parts[0] = cbuf;
  double t = 0;
  if (strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8 || !*parts[2] || !*parts[3] ||
      asd_sigv4_parse_amz_date(date, &t) != 0 || strncmp(date, parts[1], 8) != 0) {
    fail(res, 400, "AuthorizationQueryParametersError",
         "X-Amz-Credential or X-Amz-Date is malformed (the scope date must be the day of X-Amz-Date).");
    return -1;
  }
  char *end = NULL;
  long ex = strtol(expires, &end, 10);
  if (!*expires || *end || ex < 0) {
    fail(res, 400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number");
    return -1;
  }
  if (ex > PRESIGN_MAX_EXPIRES) {
    fail(res, 400, "AuthorizationQueryParametersError",
         "X-Amz-Expires must be less than a week (in seconds) that is 604800");
    return -1;
  }
  double now = a->clock > 0 ? a->clock : asd_time_wall();
  if (now > t + (double)ex) {
    fail(res, 403, "AccessDenied", "Request has expired");
    return -1;
  }
  if (t > now + a->max_skew) {
    fail(res, 403, "AccessDenied", "Request is not valid yet");
    return -1;
  }
  if (!all_hex(sig, 64)) {
    fail(res, 403, "SignatureDoesNotMatch",
         "The request signature we calculated does not match the signature you provided.");
    return -1;
  }
  /* The configured key, or one the endpoint issued (STS) with its token. */
  char secret[256];
  int lr = lookup_secret(a, parts[0], token, secret, sizeof secret);
  if (lr != 0) {
    if (lr == -1)
      fail(res, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    else
      fail(res, 400, "InvalidToken", "The provided token is malformed or otherwise invalid.");
    return -1;
  }
  /* Only non-S3 presigned requests sign a body hash: without the body,
   * headers_only stops here (S3 signs UNSIGNED-PAYLOAD or a hash in the query). */
  int rc = 0;
  if (!headers_only || strcmp(parts[3], "s3") == 0) {
    const char *qsha = ep_request_query(req, "X-Amz-Content-Sha256");
    const char *hash = qsha ? qsha : strcmp(parts[3], "s3") == 0 ? ASD_SIGV4_UNSIGNED_PAYLOAD : payload_hash;
    rc = rebuilt_signature(req, headers, n_headers, signed_list, parts, date, hash, secret, sig, res);
  }
  OPENSSL_cleanse(secret, sizeof secret);
  if (rc == 0) rc = check_signed_set(signed_list, strlen(signed_list), headers, n_headers, res);
  return rc;
}

/* Rebuilds a request's signature with the project's signer over the
 * headers signed_list names and the payload hash given, and compares it with
 * sig: presigned URLs, and aws-chunked requests whose payload "hash" the
 * header verifier does not take.  0, or -1 with res filled. */
static int rebuilt_signature(const ep_request *req, const ep_header *headers, int n_headers,
                             const char *signed_list, char *const parts[5], const char *date,
                             const char *payload_hash, const char *secret, const char *sig, ep_auth_result *res) {
  /* The signed headers, in the request's own values; host must be one. */
  asd_sigv4_header *hv = calloc((size_t)(n_headers > 0 ? n_headers : 1), sizeof *hv);
  if (!hv) {
    fail(res, 500, "InternalError", "out of memory");
    return -1;
  }
  size_t nh = 0;
  int has_host = 0, missing = 0;
  for (const char *p = signed_list; *p && !missing;) {
    size_t l = strcspn(p, ";");
    int found = 0;
    for (int i = 0; i < n_headers; i++) {
      if (strlen(headers[i].name) == l && strncasecmp(headers[i].name, p, l) == 0) {
        hv[nh].name = headers[i].name;
        hv[nh].value = headers[i].value;
        nh++;
        found = 1;
      }
    }
    if (l == 4 && strncasecmp(p, "host", 4) == 0) has_host = found;
    if (!found && l) missing = 1;
    p += l;
    if (*p == ';') p++;
  }
  if (!has_host || missing) {
    free(hv);
    fail(res, 403, "SignatureDoesNotMatch",
         has_host ? "A header named in X-Amz-SignedHeaders is not in the request."
                  : "X-Amz-SignedHeaders must include host.");
    return -1;
  }
  asd_buf q;
  asd_buf_init(&q);
  query_without_signature(&q, req->raw_query);
  asd_sigv4_params sp;
  memset(&sp, 0, sizeof sp);
  sp.method = req->method;
  sp.path = req->raw_path;
  sp.query = q.data ? (const char *)q.data : "";
  sp.headers = hv;
  sp.n_headers = nh;
  sp.payload_hash = payload_hash;
  sp.region = parts[2];
  sp.service = parts[3];
  sp.amz_date = date;
  sp.access_key_id = parts[0];
  sp.secret_access_key = secret;
  sp.session_token = NULL; /* in the query, not a signed header */
  asd_sigv4_signature out;
  asd_sigv4_signature_init(&out);
  int rc = asd_sigv4_sign(&sp, &out);
  free(hv);
  asd_buf_free(&q);
  char given[65];
  for (int i = 0; i < 64; i++) given[i] = (char)tolower((unsigned char)sig[i]);
  given[64] = '\0';
  int ok = rc == 0 && CRYPTO_memcmp(out.signature, given, 64) == 0;
  asd_sigv4_signature_free(&out);
  if (!ok) {
    fail(res, 403, "SignatureDoesNotMatch",
         "The request signature we calculated does not match the signature you provided. Check your key and "
         "signing method.");
    return -1;
  }
  return 0;
}
#endif

#ifdef ASD_HAVE_SIGV4
/* The x-amz-content-sha256 values S3 takes besides a hex digest and
 * UNSIGNED-PAYLOAD: the aws-chunked forms (SigV4a's ECDSA ones are not
 * supported here: their Authorization algorithm is refused anyway). */
static int streaming_value(const char *v, int *is_signed) {
  *is_signed = strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0 ||
               strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0;
  return *is_signed || strcmp(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0;
}

/*
 * The signature of an aws-chunked request.  The header verifier (shared
 * with the client) takes only digests and UNSIGNED-PAYLOAD as payload
 * hashes, so auth_check has it decide everything but the signature, and
 * the signature is rebuilt here over the STREAMING-... value, as for
 * presigned URLs.  For the signed forms the seed of the chunk signatures
 * (signing key, date, scope, this signature) goes to res.  0 or -1.
 */
static int streaming_signature(ep_auth *a, const ep_request *req, const ep_header *headers, int n_headers,
                               const char *authz, const char *payload_hash, int is_signed, ep_auth_result *res) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", authz);
  char *cred = strstr(buf, "Credential="), *sig = strstr(buf, "Signature=");
  size_t ll = 0;
  const char *list = authz_signed_list(authz, &ll);
  char signed_list[1024];
  const char *date = header_value(headers, n_headers, "x-amz-date");
  if (!cred || !sig || ll >= sizeof signed_list || !date || strlen(date) != 16 || !asd_sigv4_derive_key) {
    fail(res, 400, "AuthorizationHeaderMalformed", "The authorization header is malformed.");
    return -1;
  }
  snprintf(signed_list, sizeof signed_list, "%.*s", (int)ll, list);
  cred += 11;
  cred[strcspn(cred, ", \t")] = '\0';
  sig += 10;
  sig[strcspn(sig, ", \t")] = '\0';
  char *parts[5];
  for (int i = 4; i >= 1; i--) {
    char *slash = strrchr(cred, '/');
    if (!slash) {
      fail(res, 400, "AuthorizationHeaderMalformed", "The authorization header is malformed.");
      return -1;
    }
    *slash = '\0';
    parts[i] = slash + 1;
  }
  parts[0] = cred;
  char secret[256];
  if (lookup_secret(a, parts[0], header_value(headers, n_headers, "x-amz-security-token"), secret, sizeof secret) != 0) {
    fail(res, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    return -1;
  }
  int rc = rebuilt_signature(req, headers, n_headers, signed_list, parts, date, payload_hash, secret, sig, res);
  if (rc == 0 && is_signed) {
    asd_sigv4_derive_key(secret, parts[1], parts[2], parts[3], res->seed.key);
    snprintf(res->seed.amz_date, sizeof res->seed.amz_date, "%s", date);
    snprintf(res->seed.scope, sizeof res->seed.scope, "%s/%s/%s/aws4_request", parts[1], parts[2], parts[3]);
    for (int i = 0; i < 64; i++) res->seed.signature[i] = (char)tolower((unsigned char)sig[i]);
    res->seed.signature[64] = '\0';
    res->have_seed = 1;
  }
  OPENSSL_cleanse(secret, sizeof secret);
  return rc;
}
#endif

static int auth_check(ep_auth *a, const ep_request *req, const ep_header *headers, int n_headers,
                      const char *payload_hash, int headers_only, ep_auth_result *res) {
  memset(res, 0, sizeof *res);
  if (!a) return 0;
#ifndef ASD_HAVE_SIGV4
  (void)headers_only;
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
    if (ep_request_query(req, "X-Amz-Signature") || ep_request_query(req, "X-Amz-Credential"))
      return check_presigned(a, req, headers, n_headers, payload_hash, headers_only, res);
    else if (ep_request_query(req, "Signature") && ep_request_query(req, "AWSAccessKeyId"))
      return check_presigned_v2(a, req, headers, n_headers, res);
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
  vr.headers_only = headers_only;
  /* aws-chunked: the verifier checks all but the signature, with the
   * payload hash standing as UNSIGNED-PAYLOAD; streaming_signature does the
   * rest. */
  int streaming = sha_hdr && strncmp(sha_hdr, "STREAMING-", 10) == 0, is_signed = 0;
  if (streaming) {
    if (!streaming_value(sha_hdr, &is_signed)) {
      free(hv);
      fail(res, 400, "InvalidArgument",
           "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
           "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.");
      return -1;
    }
    for (int i = 0; i < n_headers; i++)
      if (strcasecmp(hv[i].name, "x-amz-content-sha256") == 0) hv[i].value = ASD_SIGV4_UNSIGNED_PAYLOAD;
    vr.body_sha256_hex = NULL;
    vr.headers_only = 1;
  }
  asd_sigv4_verify_result out;
  memset(&out, 0, sizeof out);
  asd_sigv4_status st = asd_sigv4_verify(&vr, &out);
  free(hv);
  if (st == ASD_SIGV4_OK) {
    size_t ll = 0;
    const char *list = authz_signed_list(authz, &ll);
    if (streaming && !headers_only &&
        streaming_signature(a, req, headers, n_headers, authz, sha_hdr, is_signed, res) != 0)
      return -1;
    return check_signed_set(list, ll, headers, n_headers, res);
  }
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

int ep_auth_check(ep_auth *a, const ep_request *req, const ep_header *headers, int n_headers,
                      const char *payload_hash, ep_auth_result *res) {
  return auth_check(a, req, headers, n_headers, payload_hash, 0, res);
}

int ep_auth_check_headers(ep_auth *a, const ep_request *req, const ep_header *headers,
                              int n_headers, ep_auth_result *res) {
  return auth_check(a, req, headers, n_headers, NULL, 1, res);
}
