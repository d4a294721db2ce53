/*
 * asd_sigv4.h: AWS Signature Version 4, client signer and server verifier.
 *
 * Both sides share one canonicalisation, so that what the client signs and
 * what the local endpoint verifies can never drift apart.  The code is the
 * project's own (libcurl 7.88's CURLOPT_AWS_SIGV4 signs wrongly in several
 * cases) and is tested against the official AWS SigV4 test suite.
 *
 * Paths and query strings are given as they travel on the wire (already
 * percent-encoded).  The canonical URI follows the SDKs:
 *   - generic services (sts, sagemaker, ...): the path is normalised
 *     (".", "..", duplicate slashes removed) and percent-encoded again
 *     ("double encoding": a wire "%20" becomes "%2520");
 *   - S3 (service "s3"): no normalisation; the path is decoded and encoded
 *     once with the SigV4 rules, so any correctly encoded wire path is its own
 *     canonical form.
 * The canonical query decodes each name and value and re-encodes them with
 * the SigV4 rules ('+' is a literal plus, never a space), then sorts.
 *
 * All functions are thread-safe; the key cache has its own lock.
 */
#ifndef ASD_SIGV4_H
#define ASD_SIGV4_H

#include "asd_export.h"

#include <stddef.h>

#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ASD_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define ASD_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, the payload hash of every body-less request. */
#define ASD_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One header; names are matched case-insensitively. Lengths avoid copies. */
typedef struct asd_sigv4_header {
  const char *name;
  size_t name_len; /* 0 = strlen(name) */
  const char *value;
  size_t value_len; /* 0 = strlen(value) */
} asd_sigv4_header;

/* What the signer needs.  Every header listed is signed (add host, x-amz-date,
 * x-amz-content-sha256 yourself; x-amz-security-token is added to the signed
 * set when session_token is not NULL and the list does not already hold it). */
typedef struct asd_sigv4_params {
  const char *method;        /* "GET", "PUT", ... */
  const char *path;          /* wire path, starts with '/' ("" or NULL = "/") */
  const char *query;         /* wire query without '?', NULL or "" = none */
  const asd_sigv4_header *headers;
  size_t n_headers;
  const char *payload_hash;  /* lower-case hex SHA-256 of the body or UNSIGNED-PAYLOAD;
                                NULL = hash of the empty body */
  const char *region;        /* "us-east-1" */
  const char *service;       /* signing name: "s3", "sagemaker", "sts" */
  const char *amz_date;      /* "YYYYMMDDTHHMMSSZ" */
  const char *access_key_id;
  const char *secret_access_key; /* used when signing_key is NULL */
  const unsigned char *signing_key; /* optional precomputed 32-byte key (see cache) */
  const char *session_token; /* optional */
} asd_sigv4_params;

/* Outputs of signing; release with asd_sigv4_signature_free. */
typedef struct asd_sigv4_signature {
  asd_buf canonical_request;
  asd_buf string_to_sign;
  asd_buf authorization;  /* the full Authorization header value */
  asd_buf signed_headers; /* "host;x-amz-date" */
  char signature[65];     /* lower-case hex */
} asd_sigv4_signature;

ASD_API void asd_sigv4_signature_init(asd_sigv4_signature *sig);
ASD_API void asd_sigv4_signature_free(asd_sigv4_signature *sig);

/* Signs.  Returns 0, or -1 on invalid parameters (missing field, malformed
 * amz_date, out of memory) with a reason in sig->authorization as text. */
ASD_API int asd_sigv4_sign(const asd_sigv4_params *p, asd_sigv4_signature *sig);

/* Derives the signing key HMAC("AWS4"+secret, date8, region, service, "aws4_request"). */
ASD_API void asd_sigv4_derive_key(const char *secret_access_key, const char *date8, const char *region,
                          const char *service, unsigned char key[32]);

/* Formats an epoch time (seconds) as "YYYYMMDDTHHMMSSZ" (17 bytes incl. NUL). */
ASD_API void asd_sigv4_format_amz_date(double epoch_seconds, char out[17]);
/* Parses "YYYYMMDDTHHMMSSZ"; returns 0 and the epoch seconds, or -1. */
ASD_API int asd_sigv4_parse_amz_date(const char *s, double *epoch_seconds);

/*
 * Percent-encodes with the SigV4 rules: A-Z a-z 0-9 - _ . ~ stay, everything
 * else becomes %XY (upper-case hex); '/' is kept when keep_slash is set
 * (S3 keys in paths).  Appends to out; returns 0 or -1 (out of memory).
 */
ASD_API int asd_sigv4_uri_encode(asd_buf *out, const char *s, size_t len, int keep_slash);

/*
 * A thread-safe cache of signing keys keyed by (access key, date, region,
 * service): the four HMACs of the derivation run once a day per scope
 * instead of once per request.  Secrets are kept only in memory and wiped on
 * free.
 */
typedef struct asd_sigv4_key_cache asd_sigv4_key_cache;
ASD_API asd_sigv4_key_cache *asd_sigv4_key_cache_new(void);
ASD_API void asd_sigv4_key_cache_free(asd_sigv4_key_cache *cache);
/* Fills key for the scope, deriving it on a miss. */
ASD_API void asd_sigv4_key_cache_get(asd_sigv4_key_cache *cache, const char *access_key_id,
                             const char *secret_access_key, const char *date8,
                             const char *region, const char *service, unsigned char key[32]);

/* ------------------------------------------------------------------------ */
/* Server side                                                               */
/* ------------------------------------------------------------------------ */

typedef enum asd_sigv4_status {
  ASD_SIGV4_OK = 0,
  ASD_SIGV4_MISSING,               /* no Authorization header: anonymous request */
  ASD_SIGV4_MALFORMED,             /* AuthorizationHeaderMalformed / missing x-amz-date, host unsigned ... */
  ASD_SIGV4_UNSUPPORTED,           /* other algorithm, presigned URL, streaming payload */
  ASD_SIGV4_INVALID_ACCESS_KEY,    /* InvalidAccessKeyId */
  ASD_SIGV4_INVALID_TOKEN,         /* InvalidToken: the lookup rejected the session token */
  ASD_SIGV4_SIGNATURE_MISMATCH,    /* SignatureDoesNotMatch */
  ASD_SIGV4_TIME_SKEWED,           /* RequestTimeTooSkewed */
  ASD_SIGV4_CONTENT_SHA256_MISMATCH /* XAmzContentSHA256Mismatch */
} asd_sigv4_status;

/* Returns the S3-style error code of a status ("SignatureDoesNotMatch", ...),
 * "" for OK, and the usual HTTP status in *http_status (403 or 400). */
ASD_API const char *asd_sigv4_status_code(asd_sigv4_status st, int *http_status);

/*
 * Looks up the secret of an access key.  Writes the secret (NUL-terminated)
 * into secret_out and returns 0; returns -1 for an unknown key, -2 when the
 * key is known but session_token (NULL when the request has none) is not
 * acceptable.
 */
typedef int (*asd_sigv4_secret_lookup_fn)(void *user, const char *access_key_id,
                                          const char *session_token, char *secret_out,
                                          size_t secret_out_size);

typedef struct asd_sigv4_verify_request {
  const char *method;
  const char *path;  /* raw wire path (percent-encoded as received) */
  const char *query; /* raw wire query without '?', or NULL */
  const asd_sigv4_header *headers; /* every header received */
  size_t n_headers;
  /* Lower-case hex SHA-256 of the received body.  Required unless the
   * request declares UNSIGNED-PAYLOAD; NULL with a body-less request is
   * treated as the empty body. */
  const char *body_sha256_hex;
  double now;              /* epoch seconds; 0 = current time */
  double max_skew_seconds; /* 0 = 900 (15 minutes, as AWS) */
  const char *expected_region; /* NULL = accept any region in the scope */
  asd_sigv4_secret_lookup_fn lookup;
  void *lookup_user;
  /* 1 = check only what the headers decide (form, signed-header set, key,
   * token, clock) and stop before the signature and the body hash, which
   * need the body: a server calls this before reading a body it may refuse,
   * then verifies in full once the body is in. */
  int headers_only;
} asd_sigv4_verify_request;

typedef struct asd_sigv4_verify_result {
  asd_sigv4_status status;
  char access_key_id[128];
  char region[64];
  char service[64];
  char message[256];       /* one line, never contains the secret or the signature */
} asd_sigv4_verify_result;

/* Verifies a request.  The service (and so S3 mode) comes from the credential
 * scope.  Accepts both ", " and "," between the Authorization parts. */
ASD_API asd_sigv4_status asd_sigv4_verify(const asd_sigv4_verify_request *req,
                                  asd_sigv4_verify_result *result);

#ifdef __cplusplus
}
#endif

#endif /* ASD_SIGV4_H */
