/*
 * auth.h: SigV4 verification of incoming requests (server side).
 *
 * Every request except the stats page must be signed (Authorization header,
 * or a presigned query string) with the configured access key and secret.
 * The verification rebuilds the canonical request exactly as the client's
 * signer did (S3: path encoded once, not normalised; other services: encoded
 * twice) and compares signatures in constant time.  Secrets and signatures
 * never appear in error messages.
 */
#ifndef ASD_EP_AUTH_H
#define ASD_EP_AUTH_H

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_ep_auth asd_ep_auth;

/* session_token may be NULL (then any x-amz-security-token is accepted as
 * long as it is signed); max_skew_s is the allowed clock difference (900). */
asd_ep_auth *asd_ep_auth_new(const char *access_key, const char *secret_key, const char *session_token,
                             double max_skew_s);
void asd_ep_auth_free(asd_ep_auth *a);

typedef struct asd_ep_auth_result {
  int status;          /* 0 when authorised, else the HTTP status (400/403) */
  const char *code;    /* AWS error code: SignatureDoesNotMatch, InvalidAccessKeyId, ... */
  char message[256];
} asd_ep_auth_result;

/*
 * A second source of credentials: keys the endpoint issued itself (STS
 * AssumeRole, sts_api.c).  The verifier asks it for the secret of any
 * access key other than the configured one; it returns 0 with the secret,
 * -1 for an unknown key, -2 for a missing, wrong or expired session token.
 */
typedef int (*asd_ep_auth_lookup_fn)(void *user, const char *access_key_id, const char *session_token,
                                     char *secret_out, size_t secret_out_size);
void asd_ep_auth_set_issued_keys(asd_ep_auth *a, asd_ep_auth_lookup_fn lookup, void *user);

/* Header access for the verifier: names as received (any case). */
typedef struct asd_ep_header {
  const char *name;
  const char *value;
} asd_ep_header;

/*
 * Verifies req.  headers are all request headers.  payload_hash is the hex
 * SHA-256 of the body, or NULL to use the x-amz-content-sha256 header's
 * value (S3 signs that value; it is checked against the body separately).
 * Returns 0 or -1 (res filled).
 */
int asd_ep_auth_check(asd_ep_auth *a, const asd_ep_request *req, const asd_ep_header *headers,
                      int n_headers, const char *payload_hash, asd_ep_auth_result *res);

/* Tests: pretend the clock reads now (seconds since the epoch; 0 = the real
 * clock), so expiry of presigned URLs can be checked against fixed vectors. */
void asd_ep_auth_set_clock(asd_ep_auth *a, double now);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_AUTH_H */
