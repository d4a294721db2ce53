/*
 * s3_api.h: the S3 operations of the local endpoint, over the store.
 *
 * server.c decides that a request belongs to S3 (anything that is not
 * /endpoints/... or /_asd/...), asks ep_s3_route() which operation it is,
 * and then either streams a PutObject body into a store writer
 * (ep_s3_put_begin / ep_s3_put_finish) or hands the complete request to
 * ep_s3_handle().  Responses follow PROTOCOL.md: status codes, ETag,
 * Last-Modified, Content-Range, and XML error bodies.
 */
#ifndef ASD_EP_S3_API_H
#define ASD_EP_S3_API_H

#include <stdint.h>

#include "s3_chunked.h"
#include "s3_store.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ep_s3_op {
  ASD_S3_LIST_BUCKETS,
  ASD_S3_CREATE_BUCKET,
  ASD_S3_HEAD_BUCKET,
  ASD_S3_DELETE_BUCKET,
  ASD_S3_LIST_OBJECTS,
  ASD_S3_LIST_OBJECTS_V2,
  ASD_S3_GET_BUCKET_LOCATION,
  ASD_S3_DELETE_OBJECTS,
  ASD_S3_PUT_OBJECT,
  ASD_S3_GET_OBJECT,
  ASD_S3_HEAD_OBJECT,
  ASD_S3_DELETE_OBJECT,
  ASD_S3_COPY_OBJECT,
  ASD_S3_CREATE_MULTIPART_UPLOAD,
  ASD_S3_UPLOAD_PART,      /* streamed like PutObject */
  ASD_S3_UPLOAD_PART_COPY,
  ASD_S3_COMPLETE_MULTIPART_UPLOAD,
  ASD_S3_ABORT_MULTIPART_UPLOAD,
  ASD_S3_LIST_PARTS,
  ASD_S3_LIST_MULTIPART_UPLOADS,
  ASD_S3_UNSUPPORTED
} ep_s3_op;

typedef struct ep_s3_target {
  ep_s3_op op;
  const char *operation; /* static name: "PutObject", ... */
  char *bucket;          /* decoded; NULL for ListBuckets */
  char *key;             /* decoded; NULL for bucket operations */
  char *upload_id;       /* ?uploadId= of multipart operations (validated by the handler) */
  int part_number;       /* ?partNumber= of UploadPart / UploadPartCopy, 1..10000 */
} ep_s3_target;

typedef struct ep_s3_api ep_s3_api;

ep_s3_api *ep_s3_api_new(ep_store *store, uint64_t max_body, const char *region);
void ep_s3_api_free(ep_s3_api *api);
/* Bucket settings (s3_buckets.h) for regions, owners and encryption; not owned. */
struct ep_s3_buckets;
void ep_s3_api_set_buckets(ep_s3_api *api, struct ep_s3_buckets *buckets);

/* Classifies the request.  Returns 0, or -1 with an error response filled
 * (invalid bucket name, bad key, unsupported subresource...). */
int ep_s3_route(ep_s3_api *api, const ep_request *req, ep_s3_target *t, ep_response *resp);
void ep_s3_target_clear(ep_s3_target *t);

/* Bodies that stream to disk: PutObject and UploadPart. */
int ep_s3_op_streams_body(ep_s3_op op);

/*
 * PutObject and UploadPart, streamed: begin checks the bucket, key and
 * declared length and opens a writer; finish checks Content-MD5,
 * x-amz-content-sha256 and the flexible checksum, then commits (or aborts)
 * the writer and fills the response.  0 / -1 (resp filled).
 *
 * An aws-chunked body (x-amz-content-sha256: STREAMING-..., s3_chunked.h)
 * is announced by its headers, which begin checks before any byte is read
 * (x-amz-decoded-content-length, required, against the size cap; the
 * x-amz-trailer checksum); it then gives *dec a decoder whose payload goes
 * to sink(sink_ctx, ...) (server.c's writes it into the writer).  seed is
 * the chain of the request's chunk signatures (ep_auth_result), or NULL
 * (unsigned forms, -no-auth).  *dec stays NULL for a plain body; the
 * caller frees the decoder after finish, which ends it and verifies the
 * trailing checksum as a header checksum is.
 */
int ep_s3_put_begin(ep_s3_api *api, const ep_request *req, const ep_s3_target *t, const ep_chunk_seed *seed,
                    ep_chunked_sink sink, void *sink_ctx, ep_store_writer **w, ep_chunked **dec, ep_response *resp);
void ep_s3_put_finish(ep_s3_api *api, const ep_request *req, const ep_s3_target *t, ep_store_writer *w,
                      ep_chunked *dec, ep_response *resp);

/* Every other operation, with the whole body in req. */
void ep_s3_handle(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                   ep_response *resp);

/* Checks the declared payload hash (x-amz-content-sha256, and a presigned
 * URL's X-Amz-Content-Sha256) against a body's hex SHA-256.  Returns 0 when
 * it matches or is not a literal hash (UNSIGNED-PAYLOAD...), -1 with a 400
 * XAmzContentSHA256Mismatch filled otherwise. */
int ep_s3_check_payload_hash(const ep_request *req, const char *sha256_hex, ep_response *resp);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_S3_API_H */
