/*
 * s3_chunked.h: the decoder of S3's aws-chunked request bodies.
 *
 * Current SDKs (botocore >= 1.36, the AWS CLI, the Java and Rust SDKs) send
 * PutObject and UploadPart bodies wrapped in the aws-chunked content
 * encoding, which x-amz-content-sha256 announces:
 *
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER          SIZE\r\nDATA\r\n ... 0\r\nTRAILER\r\n\r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          SIZE;chunk-signature=SIG\r\nDATA\r\n ... 0;chunk-signature=SIG\r\n\r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  the same, then TRAILER lines and x-amz-trailer-signature:SIG
 *
 * (SIZE in hex; TRAILER is "x-amz-checksum-NAME:BASE64" lines).  The
 * decoder is a state machine fed the body as it arrives, in pieces of any
 * size: it hands the payload bytes to a sink (the store writer) and keeps
 * at most one header or trailer line (bounded) in memory, never the body.
 * In the signed forms every chunk carries a signature chained from the
 * request's own (the seed, auth.h's ep_chunk_seed) over the SHA-256 of its
 * data, and the trailer one over its lines; both are checked as each ends.
 * Without a seed (-no-auth) the signatures are parsed but not checked.
 *
 * The payload may not run past x-amz-decoded-content-length: the decoder
 * stops at the first byte beyond it, so the disk never holds more than the
 * declared object.  Errors are S3's (see ep_chunked_error).
 */
#ifndef ASD_EP_S3_CHUNKED_H
#define ASD_EP_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ep_chunked_mode {
  EP_CHUNKED_NONE = 0,      /* not aws-chunked (a plain body) */
  EP_CHUNKED_UNSIGNED_TRAILER,
  EP_CHUNKED_SIGNED,
  EP_CHUNKED_SIGNED_TRAILER,
  EP_CHUNKED_UNKNOWN        /* another STREAMING-... value (SigV4a): not supported */
} ep_chunked_mode;

/* The mode an x-amz-content-sha256 value announces (NULL: EP_CHUNKED_NONE). */
ep_chunked_mode ep_chunked_mode_of(const char *content_sha256);

/* S3's answer to a body the decoder refused. */
typedef struct ep_chunked_error {
  int status;          /* 400 or 403 */
  const char *code;    /* IncompleteBody, SignatureDoesNotMatch, InvalidChunkSizeError, MalformedTrailerError */
  char message[160];
  /* Extra elements of the error body (S3 names them so): for IncompleteBody after a length
   * mismatch NumberBytesExpected/NumberBytesProvided, for InvalidChunkSizeError
   * Chunk/BadChunkSize; "" when unused. */
  char extra_name[2][24];
  char extra_value[2][24];
} ep_chunked_error;

/* Receives decoded payload bytes; 0, or -1 to stop (a write failure). */
typedef int (*ep_chunked_sink)(void *ctx, const void *data, size_t len);

typedef struct ep_chunked ep_chunked;

/*
 * A decoder for one body.  seed: the request's signature chain for the
 * signed modes (copied), or NULL not to check chunk signatures.
 * decoded_length: x-amz-decoded-content-length, or UINT64_MAX when the
 * client did not give it.  NULL when out of memory.
 */
ep_chunked *ep_chunked_new(ep_chunked_mode mode, const ep_chunk_seed *seed, uint64_t decoded_length,
                           ep_chunked_sink sink, void *sink_ctx);
void ep_chunked_free(ep_chunked *d);

/* Decodes the next len bytes of the body.  0, or -1 once the body was refused
 * (then every later call returns -1 at once; see ep_chunked_error_of). */
int ep_chunked_feed(ep_chunked *d, const void *data, size_t len);
/* The body has ended: 0 when it ended exactly after its last chunk and
 * trailer and held decoded_length bytes, else -1. */
int ep_chunked_finish(ep_chunked *d);
const ep_chunked_error *ep_chunked_error_of(const ep_chunked *d);

/* Payload bytes decoded so far. */
uint64_t ep_chunked_decoded(const ep_chunked *d);
/* The trailer's header lines after a successful finish, "name:value\n"
 * each, names lower-case, without x-amz-trailer-signature ("" if none). */
const char *ep_chunked_trailer(const ep_chunked *d);
/* The value of one trailing header (name case-insensitive), copied into out;
 * 0, or -1 when the trailer has no such line. */
int ep_chunked_trailer_value(const ep_chunked *d, const char *name, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_S3_CHUNKED_H */
