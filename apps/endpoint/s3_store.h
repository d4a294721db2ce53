/*
 * s3_store.h: the local endpoint's object store (buckets and objects on disk).
 *
 * The store (with s3_multipart.c, which keeps uploads in progress in the
 * store's ".uploads" folder) is the only code that touches the data
 * directory.  Every object is
 * one file inside its bucket's folder, named by the SHA-256 of its key, so a
 * key can never name a path outside the data directory whatever bytes it
 * holds.  A file starts with a fixed-size metadata header (key, size, ETag,
 * content type, modification time) followed by the object's bytes; objects
 * are written to a temporary file in the same folder and renamed into place,
 * so a reader sees either the old object or the new one, never a part.
 * A restart on the same directory rebuilds the in-memory index from the
 * headers, so objects survive restarts.
 *
 * All functions are thread-safe: the HTTP handlers (S3 API) and the
 * SageMaker runtime's workers (results and failures) share one store.
 */
#ifndef ASD_EP_S3_STORE_H
#define ASD_EP_S3_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ep_store ep_store;
typedef struct ep_store_writer ep_store_writer;

typedef enum ep_store_status {
  ASD_STORE_OK = 0,
  ASD_STORE_NO_BUCKET,     /* NoSuchBucket */
  ASD_STORE_NO_KEY,        /* NoSuchKey */
  ASD_STORE_BAD_BUCKET,    /* InvalidBucketName */
  ASD_STORE_BAD_KEY,       /* key empty, too long (> 1024 bytes) or with a ".." segment */
  ASD_STORE_EXISTS,        /* bucket already exists (BucketAlreadyOwnedByYou) */
  ASD_STORE_NOT_EMPTY,     /* BucketNotEmpty */
  ASD_STORE_TOO_LARGE,     /* over the size cap given to ep_store_get */
  ASD_STORE_NO_UPLOAD,     /* NoSuchUpload: the multipart upload does not exist (any more) */
  ASD_STORE_META_TOO_LARGE, /* key, content type and user metadata do not fit the object header */
  ASD_STORE_IO             /* the file system failed; details went to CPLError */
} ep_store_status;

/* A short human readable text for a status ("no such bucket", ...). */
const char *ep_store_status_text(ep_store_status st);

/* Object metadata as S3 reports it. */
typedef struct ep_store_meta {
  uint64_t size;
  char etag[48];          /* quoted hex MD5, e.g. "\"d41d8cd98f00b204e9800998ecf8427e\"", or for a
                             multipart object the MD5 of the parts' MD5s and the part count:
                             "\"<hex>-3\"" */
  double mtime;           /* seconds since the epoch */
  char content_type[256]; /* "" if none was given */
} ep_store_meta;

/*
 * Opens (creating it if needed) a store rooted at dir.  Existing buckets and
 * objects are indexed; leftover temporary files of an interrupted write are
 * removed.  Returns NULL with a one-line reason in *err (free() it) on failure.
 */
ep_store *ep_store_open(const char *dir, char **err);
void ep_store_close(ep_store *st);
const char *ep_store_root(const ep_store *st);

/* S3 bucket naming rules: 3-63 chars of [a-z0-9.-], starting and ending with a
 * letter or digit, no "..", not an IPv4 address.  1 if valid. */
int ep_store_bucket_name_valid(const char *name);
/* 1 if the key is acceptable: 1-1024 bytes, no ".." path segment. */
int ep_store_key_valid(const char *key);

ep_store_status ep_store_create_bucket(ep_store *st, const char *bucket);
ep_store_status ep_store_head_bucket(ep_store *st, const char *bucket);
/* Deletes an empty bucket. */
ep_store_status ep_store_delete_bucket(ep_store *st, const char *bucket);
/* Names of all buckets, sorted; a CSL string list (CSLDestroy it). */
char **ep_store_list_buckets(ep_store *st);

/* Writes a whole object atomically from memory (what the runtime uses for
 * results and failures).  content_type may be NULL.  meta may be NULL. */
ep_store_status ep_store_put(ep_store *st, const char *bucket, const char *key,
                               const void *data, size_t len, const char *content_type,
                               ep_store_meta *meta);

/* Reads a whole object into memory (malloc'd, NUL-terminated beyond len).
 * Objects larger than max_size give ASD_STORE_TOO_LARGE (0 = no cap). */
ep_store_status ep_store_get(ep_store *st, const char *bucket, const char *key,
                               size_t max_size, unsigned char **data, size_t *len,
                               ep_store_meta *meta);

ep_store_status ep_store_head(ep_store *st, const char *bucket, const char *key,
                                ep_store_meta *meta);

/* Opens an object for reading: *fd is positioned nowhere in particular; the
 * object's bytes start at file offset *data_offset.  The caller closes *fd.
 * A later PUT or DELETE of the key does not disturb an open descriptor. */
ep_store_status ep_store_open_read(ep_store *st, const char *bucket, const char *key,
                                     int *fd, uint64_t *data_offset, ep_store_meta *meta);

/*
 * User metadata (the x-amz-meta-* headers of S3) is one block of lines
 * "name:value\n" (names lower-case, without the prefix), kept in the object's
 * header and in the index only for objects that have some.  These variants of
 * head and open_read also return it (malloc'd; NULL when the object has none).
 */
ep_store_status ep_store_head_user_meta(ep_store *st, const char *bucket, const char *key,
                                          ep_store_meta *meta, char **user_meta);
ep_store_status ep_store_open_read_user_meta(ep_store *st, const char *bucket, const char *key, int *fd,
                                               uint64_t *data_offset, ep_store_meta *meta, char **user_meta);

/* Deletes an object; deleting a missing key is ASD_STORE_OK (as S3). */
ep_store_status ep_store_delete(ep_store *st, const char *bucket, const char *key);

/*
 * Streaming writes: begin, write chunks, then commit (atomic rename into
 * place) or abort (the temporary file is removed; nothing becomes visible).
 * The writer computes the MD5 (ETag) and SHA-256 of what it was given.
 */
ep_store_status ep_store_writer_begin(ep_store *st, const char *bucket, const char *key,
                                        ep_store_writer **out);
int ep_store_writer_write(ep_store_writer *w, const void *data, size_t len); /* 0 or -1 */
uint64_t ep_store_writer_size(const ep_store_writer *w);
/* Digests of everything written so far (call before commit). */
void ep_store_writer_md5(ep_store_writer *w, unsigned char out[16]);
void ep_store_writer_sha256_hex(ep_store_writer *w, char out[65]);
/* S3's flexible checksums (x-amz-checksum-*): the writer computes those
 * asked for, from the first byte, beside its MD5 and SHA-256. */
#define ASD_STORE_CK_CRC32C 1u
#define ASD_STORE_CK_CRC32 2u
#define ASD_STORE_CK_SHA1 4u
#define ASD_STORE_CK_SHA256 8u /* always computed */
void ep_store_writer_want_checksums(ep_store_writer *w, unsigned kinds);
/* The base64 of one checksum (as the header carries it).  0, or -1 when it
 * was not asked for. */
int ep_store_writer_checksum_b64(ep_store_writer *w, unsigned kind, char out[64]);
/* Commits and frees the writer. */
ep_store_status ep_store_writer_commit(ep_store_writer *w, const char *content_type,
                                         ep_store_meta *meta);
/* Aborts and frees the writer (NULL is fine). */
void ep_store_writer_abort(ep_store_writer *w);

/*
 * Appends len bytes of an open file, from offset, to a writer, through a
 * bounded buffer (never the whole object in memory): how CopyObject and
 * CompleteMultipartUpload assemble objects.  With hash == 0 the digests are
 * not updated (the caller then gives the ETag with ep_store_writer_set_etag).
 * 0, or -1 on a read or write failure.
 */
int ep_store_writer_append_fd(ep_store_writer *w, int fd, uint64_t offset, uint64_t len, int hash);
/* Gives the object user metadata (see ep_store_head_user_meta); NULL or "" = none. */
void ep_store_writer_set_user_meta(ep_store_writer *w, const char *block);
/* Commits with this ETag (quoted) instead of the MD5 of the bytes. */
void ep_store_writer_set_etag(ep_store_writer *w, const char *etag);

/*
 * Writers for multipart parts (s3_multipart.c).  The part is streamed to a
 * temporary file in dir (an upload's folder) and renamed to dir/name on
 * commit, in the same format as objects (metadata header, then the bytes),
 * but without entering the bucket index.  Commit answers ASD_STORE_NO_UPLOAD
 * when dir disappeared meanwhile (the upload was aborted or completed).
 */
ep_store_status ep_store_part_writer_begin(ep_store *st, const char *dir, const char *name,
                                             ep_store_writer **out);
/* Reads the metadata header of a part file written by a part writer, and
 * checks that the file holds exactly that many bytes.  0, or -1 if the file
 * is missing, torn or not ours.  *data_offset is where the bytes start. */
int ep_store_read_part_meta(const char *path, ep_store_meta *meta, uint64_t *data_offset);

/*
 * Listing.  Keys of the bucket that start with prefix and sort strictly after
 * `after` (NULL or "" = from the start), in byte order, at most max_keys
 * entries (objects plus common prefixes when delimiter is set).
 */
typedef struct ep_store_entry {
  char *key;           /* object key, or common prefix when is_prefix */
  int is_prefix;
  ep_store_meta meta; /* objects only */
} ep_store_entry;

typedef struct ep_store_listing {
  ep_store_entry *entries;
  size_t count;
  int truncated;       /* more entries follow */
  char *next_after;    /* the value to pass as `after` to continue (NULL if not truncated) */
} ep_store_listing;

ep_store_status ep_store_list(ep_store *st, const char *bucket, const char *prefix,
                                const char *delimiter, const char *after, size_t max_keys,
                                ep_store_listing *out);
void ep_store_listing_free(ep_store_listing *l);

/* Number of objects and total bytes (for stats). */
void ep_store_totals(ep_store *st, uint64_t *objects, uint64_t *bytes);

/* Parses "s3://bucket/key" into malloc'd bucket and key (key may be "" when
 * allow_empty_key).  0 on success, -1 if not an s3:// URI. */
int ep_store_parse_s3_uri(const char *uri, int allow_empty_key, char **bucket, char **key);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_S3_STORE_H */
