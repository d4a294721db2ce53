/*
 * auth.h: SigV4 verification of incoming requests (server side).
 *
 * Every request except /_asd/health (and /_asd/stats without -stats-auth)
 * must be signed (Authorization header, or a presigned query string) with the
 * configured access key and secret, or keys the endpoint's STS issued.
 * The verification rebuilds the canonical request exactly as the client's
 * signer did (S3: path encoded once, not normalised; other services: encoded
 * twice) and compares signatures in constant time.  Secrets and signatures
 * never appear in error messages.
 *
 * As S3 does, every x-amz-* header of a request must be covered by its
 * signature (x-amz-content-sha256 excepted: its value is the payload hash
 * the signature covers anyway); a request carrying another one is refused
 * with 403 AccessDenied and the unsigned names, whatever the signature says.
 * Without that rule the holder of a presigned PutObject URL could add
 * x-amz-copy-source and turn it into a CopyObject of anything.
 */
#ifndef ASD_EP_AUTH_H
#define ASD_EP_AUTH_H

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ep_auth ep_auth;

/* session_token may be NULL (then any x-amz-security-token is accepted as
 * long as it is signed); max_skew_s is the allowed clock difference (900). */
ep_auth *ep_auth_new(const char *access_key, const char *secret_key, const char *session_token,
                             double max_skew_s);
void ep_auth_free(ep_auth *a);

/*
 * What the chunk signatures of a signed aws-chunked body
 * (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) are
 * checked with (s3_chunked.c): each chunk's signature is an HMAC under the
 * request's signing key of a string naming the request's date and scope and
 * the previous signature, starting from the Authorization header's own.
 * The key is secret: wipe it (OPENSSL_cleanse) when done.
 */
typedef struct ep_chunk_seed {
  unsigned char key[32]; /* the SigV4 signing key of the request's scope */
  char amz_date[17];     /* x-amz-date */
  char scope[160];       /* yyyymmdd/region/service/aws4_request */
  char signature[65];    /* the seed: the request's signature, lower-case hex */
} ep_chunk_seed;

typedef struct ep_auth_result {
  int status;          /* 0 when authorised, else the HTTP status (400/403) */
  const char *code;    /* AWS error code: SignatureDoesNotMatch, InvalidAccessKeyId, ... */
  char message[256];
  /* With AccessDenied for unsigned x-amz-* headers: their names, ", "-separated,
   * for S3's <HeadersNotSigned> error element; "" otherwise. */
  char headers_not_signed[256];
  /* A signed aws-chunked request that verified: the chain its chunks
   * continue (have_seed = 1); 0 for every other request. */
  int have_seed;
  ep_chunk_seed seed;
} ep_auth_result;

/*
 * A second source of credentials: keys the endpoint issued itself (STS
 * AssumeRole, sts_api.c).  The verifier asks it for the secret of any
 * access key other than the configured one; it returns 0 with the secret,
 * -1 for an unknown key, -2 for a missing, wrong or expired session token.
 */
typedef int (*ep_auth_lookup_fn)(void *user, const char *access_key_id, const char *session_token,
                                     char *secret_out, size_t secret_out_size);
void ep_auth_set_issued_keys(ep_auth *a, ep_auth_lookup_fn lookup, void *user);

/* Header access for the verifier: names as received (any case). */
typedef struct ep_header {
  const char *name;
  const char *value;
} ep_header;

/*
 * Verifies req.  headers are all request headers.  payload_hash is the hex
 * SHA-256 of the body, or NULL to use the x-amz-content-sha256 header's
 * value (S3 signs that value; it is checked against the body separately).
 * Returns 0 or -1 (res filled).
 */
int ep_auth_check(ep_auth *a, const ep_request *req, const ep_header *headers,
                      int n_headers, const char *payload_hash, ep_auth_result *res);

/*
 * Everything ep_auth_check decides from the headers alone: the form of
 * the Authorization header or presigned query, the access key, the session
 * token, the clock skew and the signed-header set.  Only the signature over
 * the body's hash is left out, for requests whose signer hashed a body that
 * has not been read yet (SageMaker, STS): the server calls this before it
 * reads such a body and ep_auth_check once the body (capped) is in.
 * Returns 0 or -1 (res filled).
 */
int ep_auth_check_headers(ep_auth *a, const ep_request *req, const ep_header *headers,
                              int n_headers, ep_auth_result *res);

/* Compares two secrets (session tokens) in time independent of where they
 * differ; 1 when equal.  NULL equals nothing. */
int ep_secret_equal(const char *a, const char *b);

/* Tests: pretend the clock reads now (seconds since the epoch; 0 = the real
 * clock), so expiry of presigned URLs can be checked against fixed vectors. */
void ep_auth_set_clock(ep_auth *a, double now);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_AUTH_H */
