/*
 * s3_multipart.h: S3 multipart uploads of the local endpoint, on disk.
 *
 * An upload is a folder <data-dir>/.uploads/<upload id>/ holding its
 * description (bucket, key, content type, start time) and one file per part
 * ("part-00001", same format as objects: metadata header, then the bytes).
 * Parts are streamed to disk by store part writers; completing an upload
 * validates the client's part list like S3 does, assembles the object with
 * a store writer (so it appears atomically, like any PutObject), and removes
 * the folder.  Uploads survive restarts.  All functions are thread-safe.
 */
#ifndef ASD_EP_S3_MULTIPART_H
#define ASD_EP_S3_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "s3_store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ASD_MPU_MAX_PARTS 10000
/* S3's smallest size for every part but the last. */
#define ASD_MPU_MIN_PART_SIZE ((uint64_t)5 * 1024 * 1024)

typedef struct ep_mpu ep_mpu;

/* Opens the uploads folder of a store (creating it), repairing what a crash
 * left behind.  NULL with a one-line reason in *err (free() it). */
ep_mpu *ep_mpu_open(ep_store *st, char **err);
void ep_mpu_close(ep_mpu *m);

/* 1 if s has the shape of an upload id this server hands out (32 lower-case
 * hex digits); anything else can never name a folder. */
int ep_mpu_id_valid(const char *s);

/* Starts an upload.  content_type and user_meta (see ep_store_head_user_meta)
 * may be NULL; the object gets them on completion.  upload_id receives the id. */
ep_store_status ep_mpu_create(ep_mpu *m, const char *bucket, const char *key, const char *content_type,
                                const char *user_meta, char upload_id[33]);

/* Checks that upload_id is an upload of bucket/key (ASD_STORE_NO_UPLOAD if not). */
ep_store_status ep_mpu_check(ep_mpu *m, const char *bucket, const char *key, const char *upload_id);

/* Opens a store writer for part part_number (1..10000) of the upload; the
 * part replaces an earlier one of the same number when committed. */
ep_store_status ep_mpu_part_writer_begin(ep_mpu *m, const char *bucket, const char *key,
                                           const char *upload_id, int part_number, ep_store_writer **w);

/* Aborts an upload: its parts are deleted. */
ep_store_status ep_mpu_abort(ep_mpu *m, const char *bucket, const char *key, const char *upload_id);

/* The parts uploaded so far, sorted by number (free() *parts). */
typedef struct ep_mpu_part {
  int number;
  ep_store_meta meta; /* size, etag (quoted MD5), mtime */
} ep_mpu_part;
ep_store_status ep_mpu_list_parts(ep_mpu *m, const char *bucket, const char *key, const char *upload_id,
                                    ep_mpu_part **parts, size_t *n);

/* Uploads in progress in a bucket whose key starts with prefix (NULL = all),
 * sorted by key, then start time.  Free with ep_mpu_uploads_free. */
typedef struct ep_mpu_upload {
  char *key;
  char upload_id[33];
  double initiated; /* seconds since the epoch */
} ep_mpu_upload;
ep_store_status ep_mpu_list_uploads(ep_mpu *m, const char *bucket, const char *prefix, ep_mpu_upload **ups,
                                      size_t *n);
void ep_mpu_uploads_free(ep_mpu_upload *ups, size_t n);

/* ------------------------------------------------------------ completion */

/* One <Part> of a CompleteMultipartUpload request. */
typedef struct ep_mpu_request_part {
  int number;
  const char *etag; /* as the client sent it, with or without quotes */
} ep_mpu_request_part;

typedef enum ep_mpu_verdict {
  ASD_MPU_OK = 0,
  ASD_MPU_INVALID_PART,       /* 400 InvalidPart: missing part or ETag mismatch */
  ASD_MPU_INVALID_PART_ORDER, /* 400 InvalidPartOrder: numbers not strictly ascending */
  ASD_MPU_ENTITY_TOO_SMALL,   /* 400 EntityTooSmall: a part but the last under the minimum */
  ASD_MPU_MALFORMED           /* 400 MalformedXML: no parts, or a number out of 1..10000 */
} ep_mpu_verdict;

/*
 * The S3 rules for a part list against the parts present (both sorted as
 * given; have sorted by number): numbers strictly ascending, each part
 * present with the same ETag (quotes and case of hex ignored), every part
 * but the last at least min_part_size bytes.  detail gets one line naming
 * the offending part.
 */
ep_mpu_verdict ep_mpu_validate(const ep_mpu_request_part *req, size_t n, const ep_mpu_part *have,
                                 size_t n_have, uint64_t min_part_size, char *detail, size_t detail_len);

/* The multipart ETag: "\"" + hex(MD5(md5(part 1) || ... || md5(part n))) + "-n\"",
 * from the parts' quoted hex MD5 ETags.  -1 if an ETag is not a hex MD5. */
int ep_mpu_etag(const char *const *part_etags, size_t n, char out[48]);

/*
 * Completes an upload: validates the list, assembles the object, removes the
 * upload.  Returns ASD_STORE_OK with *verdict ASD_MPU_OK and *meta filled on
 * success; ASD_STORE_OK with another verdict when the list was refused (the
 * upload stays, as on S3); or a store error (NO_UPLOAD, NO_BUCKET, IO).
 */
ep_store_status ep_mpu_complete(ep_mpu *m, const char *bucket, const char *key, const char *upload_id,
                                  const ep_mpu_request_part *parts, size_t n, ep_mpu_verdict *verdict,
                                  char *detail, size_t detail_len, ep_store_meta *meta);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_S3_MULTIPART_H */
