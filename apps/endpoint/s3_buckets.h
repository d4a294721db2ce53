/*
 * s3_buckets.h: what the local endpoint knows about a bucket beyond its
 * objects (its region, its owner account, the encryption its policy
 * requires), and how a request addresses a bucket (path or Host header).
 *
 * S3 behaviours that depend on these, each as S3 answers it:
 *   - a request signed for another region than the bucket's: 301
 *     PermanentRedirect (or 400 AuthorizationHeaderMalformed when the Host
 *     already names the bucket's region), with x-amz-bucket-region;
 *   - x-amz-expected-bucket-owner (and x-amz-source-expected-bucket-owner
 *     of copies) naming another account: 403 AccessDenied;
 *   - a bucket policy requiring x-amz-server-side-encryption: 403
 *     AccessDenied for uploads without it;
 *   - encryption headers that make no sense: 400 InvalidArgument.
 * The table is filled at startup (-bucket specs) and only read afterwards,
 * so it needs no lock.
 */
#ifndef ASD_EP_S3_BUCKETS_H
#define ASD_EP_S3_BUCKETS_H

#include <stddef.h>

#include "s3_api.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The account that owns buckets not given one (also the runtime's). */
#define ASD_S3_DEFAULT_OWNER "000000000000"

typedef struct ep_s3_bucket_spec {
  char name[64];
  char region[32];      /* "" = not placed: requests signed for any region are served */
  char owner[13];       /* 12 digits */
  char require_sse[16]; /* "" or AES256, aws:kms, aws:kms:dsse */
} ep_s3_bucket_spec;

/* Parses "NAME[@REGION][,owner=ACCOUNT][,require-sse=AES256|aws:kms|aws:kms:dsse]".
 * 0, or -1 with a one-line reason in err. */
int ep_s3_bucket_spec_parse(const char *spec, ep_s3_bucket_spec *out, char *err, size_t err_len);

typedef struct ep_s3_buckets ep_s3_buckets;

ep_s3_buckets *ep_s3_buckets_new(const char *default_region);
void ep_s3_buckets_free(ep_s3_buckets *b);
/* The region of buckets not placed (the server's -region). */
void ep_s3_buckets_set_default_region(ep_s3_buckets *b, const char *region);
/* Adds (or replaces) a bucket's settings.  0 or -1 (out of memory). */
int ep_s3_buckets_add(ep_s3_buckets *b, const ep_s3_bucket_spec *spec);
/* A bucket's settings, defaults filled in for buckets never added
 * (region = the server's, owner = ASD_S3_DEFAULT_OWNER).  *placed is 1 when
 * the bucket was given a region.  b may be NULL. */
void ep_s3_buckets_get(const ep_s3_buckets *b, const char *name, ep_s3_bucket_spec *out, int *placed);

/* Virtual-hosted addressing.  host is the Host header; domains the -domain
 * names.  Fills bucket (BUCKET.s3.REGION.amazonaws.com, BUCKET.s3.amazonaws.com,
 * BUCKET.s3-REGION.amazonaws.com, BUCKET.DOMAIN) and region (when the host
 * names one, else "").  Returns 1 when the host names a bucket. */
int ep_s3_parse_host(const char *host, char *const *domains, char bucket[64], char region[32]);

/* The region a request was signed for (Authorization's or X-Amz-Credential's
 * scope), "" when it is unsigned or signed without a region (SigV2). */
void ep_s3_signing_region(const ep_request *req, char region[32]);

/* The region redirect, decided from the headers before the signature is
 * checked (as S3's front end of another region does).  0 when the request
 * may go on, -1 with the 301/400 filled. */
int ep_s3_check_region(const ep_s3_buckets *b, const ep_request *req, const ep_s3_target *t,
                        ep_response *resp);

/* Ownership, required encryption and the form of encryption headers, after
 * authentication and before the body.  bucket_exists: a missing bucket is
 * left to the handler (NoSuchBucket).  0, or -1 with the error filled. */
int ep_s3_check_bucket_policy(const ep_s3_buckets *b, const ep_request *req, const ep_s3_target *t,
                               int bucket_exists, ep_response *resp);

/* The encryption an upload asks for, as object metadata lines ("=sse:...\n",
 * "=sse-kms-key-id:...\n"; '=' cannot start a user metadata name), with the
 * KMS key as the ARN S3 reports.  malloc'd, NULL when none was asked for. */
char *ep_s3_sse_meta_lines(const ep_s3_buckets *b, const ep_request *req, const char *bucket);
/* Response headers from an object's metadata block: its encryption (AES256,
 * S3's default, when none was recorded) and, when with_checksum, a stored
 * x-amz-checksum-*. */
void ep_s3_object_system_headers(ep_response *resp, const char *meta_block, int with_checksum);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_S3_BUCKETS_H */
