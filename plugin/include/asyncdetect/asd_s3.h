/*
 * asd_s3.h: the S3 client of gdal_asyncdetect.
 *
 * The subset the engine and the app need: PutObject from memory, GetObject
 * into memory with a size cap, HeadObject, DeleteObject, DeleteObjects in
 * batches of at most 1000 with Content-MD5 and per-key errors, ListObjectsV2
 * with pagination, HeadBucket, and s3:// URI handling.  Every call goes
 * through an asd_aws_context (signing, retries, error parsing) and is
 * thread-safe.  Keys are plain (unencoded) UTF-8; the client encodes them.
 */
#ifndef ASD_S3_H
#define ASD_S3_H

#include "asd_export.h"

#include <stddef.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* URIs                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct asd_s3_uri {
  char bucket[64];  /* S3 bucket names are 3-63 characters */
  char *key;        /* malloc'ed, may be "" when allow_empty_key was set */
} asd_s3_uri;

/*
 * Parses "s3://bucket/key".  With allow_empty_key = 0 a URI without a key
 * ("s3://bucket" or "s3://bucket/") is an error (CONFIG, naming the URI).
 * Also accepts "https://bucket.s3.region.amazonaws.com/key" and
 * "https://s3.region.amazonaws.com/bucket/key" as SageMaker may return them.
 * Free with asd_s3_uri_free.
 */
ASD_API int asd_s3_uri_parse(const char *uri, int allow_empty_key, asd_s3_uri *out, asd_aws_error *err);
ASD_API void asd_s3_uri_free(asd_s3_uri *u);
/* "s3://bucket/key" (malloc'ed). */
ASD_API char *asd_s3_uri_format(const char *bucket, const char *key);
/* Whether a bucket name follows the S3 rules (3-63 chars, lower-case, digits, '.', '-'). */
ASD_API int asd_s3_bucket_name_valid(const char *bucket);

/* Percent-encodes an object key for a request path (keeps '/'); malloc'ed. */
ASD_API char *asd_s3_encode_key(const char *key);

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct asd_s3_object_info {
  long long size;          /* Content-Length, -1 when unknown */
  char etag[80];           /* with its quotes, as S3 sends it */
  char content_type[128];
  char last_modified[64];  /* HTTP date as sent */
  char request_id[128];
} asd_s3_object_info;

/* PutObject from memory.  content_type NULL = application/octet-stream. */
ASD_API int asd_s3_put_object(asd_aws_context *ctx, const char *bucket, const char *key,
                      const void *data, size_t len, const char *content_type,
                      asd_s3_object_info *info /* may be NULL */, asd_aws_error *err);

/* GetObject into out (appended).  A body larger than max_bytes (0 = context
 * default) fails with ASD_AWS_ERR_TOO_LARGE without reading the rest. */
ASD_API int asd_s3_get_object(asd_aws_context *ctx, const char *bucket, const char *key,
                      size_t max_bytes, asd_buf *out, asd_s3_object_info *info,
                      asd_aws_error *err);

/* HeadObject.  A missing object gives -1 with kind NOT_FOUND (HEAD has no body,
 * so 403 without ListBucket permission gives ACCESS_DENIED). */
ASD_API int asd_s3_head_object(asd_aws_context *ctx, const char *bucket, const char *key,
                       asd_s3_object_info *info, asd_aws_error *err);

/* DeleteObject; a missing key is success (S3 answers 204). */
ASD_API int asd_s3_delete_object(asd_aws_context *ctx, const char *bucket, const char *key,
                         asd_aws_error *err);

/* Per-key failure of a DeleteObjects call. */
typedef struct asd_s3_delete_error {
  char *key;
  char code[64];
  char message[256];
} asd_s3_delete_error;

typedef struct asd_s3_delete_result {
  size_t deleted;               /* keys reported deleted (Quiet mode: requested - errors) */
  asd_s3_delete_error *errors;  /* per-key errors */
  size_t n_errors;
} asd_s3_delete_result;

ASD_API void asd_s3_delete_result_free(asd_s3_delete_result *r);

/* Deletes any number of keys, in batches of <= 1000 (POST ?delete with
 * Content-MD5, Quiet mode).  Returns 0 when every batch call succeeded (even
 * if some keys have per-key errors: check result->n_errors), -1 when a batch
 * call failed as a whole (err set; keys of failed batches are reported as
 * per-key errors too). */
ASD_API int asd_s3_delete_objects(asd_aws_context *ctx, const char *bucket, const char *const *keys,
                          size_t n_keys, asd_s3_delete_result *result, asd_aws_error *err);

typedef struct asd_s3_list_entry {
  char *key;
  long long size;
  char etag[80];
  char last_modified[40];
} asd_s3_list_entry;

typedef struct asd_s3_list_result {
  asd_s3_list_entry *entries;
  size_t n_entries;
  char **common_prefixes;       /* CSL list (NULL when none) */
  int pages;                    /* requests made */
} asd_s3_list_result;

ASD_API void asd_s3_list_result_free(asd_s3_list_result *r);

/* ListObjectsV2 following continuation tokens until done or max_keys_total
 * entries (0 = no limit).  prefix/delimiter may be NULL.  page_size 0 = 1000. */
ASD_API int asd_s3_list_objects_v2(asd_aws_context *ctx, const char *bucket, const char *prefix,
                           const char *delimiter, int page_size, size_t max_keys_total,
                           asd_s3_list_result *result, asd_aws_error *err);

/* HeadBucket: 0 when the bucket exists and is accessible, else -1 with
 * NOT_FOUND or ACCESS_DENIED (or a transport error). */
ASD_API int asd_s3_head_bucket(asd_aws_context *ctx, const char *bucket, asd_aws_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ASD_S3_H */
