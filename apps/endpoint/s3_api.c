/*
 * s3_api.c: S3 operations (path-style) of the local endpoint.
 *
 * This file translates between the S3 REST dialect and the store: it picks
 * the operation from the method, the path and the query (a subresource like
 * ?delete or ?list-type=2 changes the operation, as on S3), validates names,
 * and writes the responses S3 clients expect: ETag and Last-Modified on
 * objects, 206 + Content-Range for ranges, 204 for deletes (also of missing
 * keys), XML listings (V1 for GDAL's /vsis3/, V2 for the SDKs, with
 * encoding-type=url which botocore always asks for) and XML error bodies.
 *
 * HEAD responses never carry a body, even for errors (server.c relies on
 * libmicrohttpd dropping bodies of HEAD responses).
 *
 * Multipart uploads (?uploads, ?uploadId=, ?partNumber=) and copies
 * (x-amz-copy-source) are routed here and carried out by s3_multipart.c and
 * the store: UploadPart bodies stream to disk exactly like PutObject bodies
 * (server.c asks ep_s3_op_streams_body), and copies move bytes from the
 * source's file descriptor to the destination's writer through a bounded
 * buffer, so neither ever holds an object in memory.  Presigned URLs need
 * little here: auth.c verifies their query string before the request
 * reaches this file, and ep_s3_check_payload_hash holds the body to a
 * signed X-Amz-Content-Sha256 as it does to the x-amz-content-sha256 header.
 *
 * aws-chunked bodies (x-amz-content-sha256: STREAMING-..., what botocore
 * >= 1.36 and the AWS CLI send by default, with the CRC32 of the payload as
 * a trailing header) are decoded by s3_chunked.c on their way to the writer;
 * this file checks what their headers announce before the body
 * (x-amz-decoded-content-length, x-amz-trailer) and, at the end, the
 * trailing checksum exactly as a header checksum: stored, echoed, returned
 * by GET/HEAD with x-amz-checksum-mode: ENABLED.
 *
 * Byte offsets (Range, x-amz-copy-source-range, Content-Length) are parsed
 * as 64-bit numbers that never saturate (ep_parse_u64): objects above
 * 10^9 bytes are ordinary, and a wrong offset would hand /vsis3/ wrong bytes.
 *
 * What is deliberately not here: versioning, ACLs, tagging and the other
 * subresources answer 501 NotImplemented, so a client that needs them fails
 * loudly instead of silently misbehaving.
 */
#include "s3_api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cpl_error.h"
#include "cpl_minixml.h"
#include "cpl_string.h"

#include <openssl/evp.h>

#include "asyncdetect/asd_common.h"
#include "s3_buckets.h"
#include "s3_multipart.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

struct ep_s3_api {
  ep_store *store;
  ep_mpu *mpu;
  uint64_t max_body;
  char region[64];
  ep_s3_buckets *buckets; /* regions, owners, encryption (not owned; may be NULL) */
};

void ep_s3_api_set_buckets(ep_s3_api *api, struct ep_s3_buckets *buckets) {
  if (api) api->buckets = buckets;
}

ep_s3_api *ep_s3_api_new(ep_store *store, uint64_t max_body, const char *region) {
  ep_s3_api *api = calloc(1, sizeof *api);
  if (!api) return NULL;
  api->store = store;
  api->max_body = max_body;
  snprintf(api->region, sizeof api->region, "%s", region ? region : "us-east-1");
  char *err = NULL;
  api->mpu = ep_mpu_open(store, &err);
  if (!api->mpu) {
    CPLError(CE_Failure, CPLE_AppDefined, "%s", err ? err : "store: cannot open the multipart uploads folder");
    free(err);
    free(api);
    return NULL;
  }
  return api;
}

void ep_s3_api_free(ep_s3_api *api) {
  if (!api) return;
  ep_mpu_close(api->mpu);
  free(api);
}

void ep_s3_target_clear(ep_s3_target *t) {
  if (!t) return;
  free(t->bucket);
  free(t->key);
  free(t->upload_id);
  memset(t, 0, sizeof *t);
}

int ep_s3_op_streams_body(ep_s3_op op) { return op == ASD_S3_PUT_OBJECT || op == ASD_S3_UPLOAD_PART; }

/* --------------------------------------------------------------- helpers */

static void xml_escape(asd_buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    switch (*p) {
      case '&': asd_buf_append_str(b, "&amp;"); break;
      case '<': asd_buf_append_str(b, "&lt;"); break;
      case '>': asd_buf_append_str(b, "&gt;"); break;
      case '"': asd_buf_append_str(b, "&quot;"); break;
      case '\'': asd_buf_append_str(b, "&apos;"); break;
      default:
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
          asd_buf_appendf(b, "&#x%X;", *p);
        else
          asd_buf_append(b, p, 1);
    }
  }
}

/* URL encoding for encoding-type=url: everything but unreserved and '/'.
 * botocore decodes with unquote_plus, so '+' must be encoded. */
static void url_encode(asd_buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '/')
      asd_buf_append(b, p, 1);
    else
      asd_buf_appendf(b, "%%%02X", c);
  }
}

static void xml_elem(asd_buf *b, const char *name, const char *value, int url) {
  asd_buf_appendf(b, "<%s>", name);
  if (url) {
    asd_buf tmp;
    asd_buf_init(&tmp);
    url_encode(&tmp, value);
    xml_escape(b, tmp.data ? (const char *)tmp.data : "");
    asd_buf_free(&tmp);
  } else {
    xml_escape(b, value);
  }
  asd_buf_appendf(b, "</%s>", name);
}

static void http_date(double t, char *out, size_t n) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void iso_date(double t, char *out, size_t n) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  int ms = (int)((t - (double)tt) * 1000.0);
  if (ms < 0) ms = 0;
  if (ms > 999) ms = 999;
  snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static void set_xml_body(ep_response *resp, int status, asd_buf *xml) {
  resp->status = status;
  asd_buf_reset(&resp->body);
  asd_buf_append(&resp->body, xml->data, xml->len);
  ep_response_set_header(resp, "Content-Type", "application/xml");
}

static void store_error(ep_response *resp, const ep_request *req, ep_store_status st,
                        const char *bucket) {
  switch (st) {
    case ASD_STORE_NO_BUCKET:
      ep_s3_error(resp, req, 404, "NoSuchBucket", "The specified bucket does not exist");
      break;
    case ASD_STORE_NO_KEY:
      ep_s3_error(resp, req, 404, "NoSuchKey", "The specified key does not exist.");
      break;
    case ASD_STORE_BAD_BUCKET:
      ep_s3_error(resp, req, 400, "InvalidBucketName", "The specified bucket is not valid.");
      break;
    case ASD_STORE_BAD_KEY:
      ep_s3_error(resp, req, 400, "InvalidArgument",
                        "The object key is not valid: empty, longer than 1024 bytes, or with a '..' segment.");
      break;
    case ASD_STORE_EXISTS:
      ep_s3_error(resp, req, 409, "BucketAlreadyOwnedByYou",
                        "Your previous request to create the named bucket succeeded and you already own it.");
      break;
    case ASD_STORE_NOT_EMPTY:
      ep_s3_error(resp, req, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
      break;
    case ASD_STORE_TOO_LARGE:
      ep_s3_error(resp, req, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
      break;
    case ASD_STORE_META_TOO_LARGE:
      ep_s3_error(resp, req, 400, "MetadataTooLarge",
                        "Your metadata headers exceed the maximum allowed metadata size");
      break;
    case ASD_STORE_NO_UPLOAD:
      ep_s3_error(resp, req, 404, "NoSuchUpload",
                        "The specified upload does not exist. The upload ID may be invalid, or the upload may have "
                        "been aborted or completed.");
      break;
    default:
      ep_s3_error(resp, req, 500, "InternalError", "We encountered an internal error. Please try again.");
      break;
  }
  (void)bucket;
}

/* Parses a non-negative decimal count (max-keys, part numbers), saturated at
 * 10^9, which is above every limit these are checked against; -1 if not one.
 * Byte offsets and lengths are 64-bit and never saturate: ep_parse_u64. */
static long long parse_count(const char *s) {
  if (!s || !*s) return -1;
  long long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
    if (v > 1000000000LL) return 1000000000LL;
  }
  return v;
}

/* ---------------------------------------------------------------- routing */

static int route_object_or_bucket(const ep_request *req, const char *bucket, const char *key,
                                  ep_s3_target *t, ep_response *resp);

int ep_s3_route(ep_s3_api *api, const ep_request *req, ep_s3_target *t, ep_response *resp) {
  (void)api;
  memset(t, 0, sizeof *t);
  t->op = ASD_S3_UNSUPPORTED;
  t->operation = "S3Unsupported";
  const char *path = req->path;
  const char *m = req->method;
  if (req->host_bucket) return route_object_or_bucket(req, req->host_bucket, path + (*path == '/'), t, resp);
  while (*path == '/') path++;
  if (!*path) {
    if (strcmp(m, "GET") == 0) {
      t->op = ASD_S3_LIST_BUCKETS;
      t->operation = "ListBuckets";
      return 0;
    }
    ep_s3_error(resp, req, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    return -1;
  }
  const char *slash = strchr(path, '/');
  char *bucket = slash ? strndup(path, (size_t)(slash - path)) : strdup(path);
  int rc = route_object_or_bucket(req, bucket ? bucket : "", slash ? slash + 1 : "", t, resp);
  free(bucket);
  return rc;
}

/* The operation on bucket and key ("" = a bucket operation), however the
 * request addressed them (path style or virtual-hosted). */
static int route_object_or_bucket(const ep_request *req, const char *bucket, const char *key,
                                  ep_s3_target *t, ep_response *resp) {
  const char *m = req->method;
  t->bucket = strdup(bucket);
  if (*key) t->key = strdup(key);
  if (!t->bucket || (*key && !t->key)) {
    ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
    return -1;
  }
  int head = strcmp(m, "HEAD") == 0;
  if (!t->key) {
    if (strcmp(m, "PUT") == 0) {
      t->op = ASD_S3_CREATE_BUCKET, t->operation = "CreateBucket";
    } else if (head) {
      t->op = ASD_S3_HEAD_BUCKET, t->operation = "HeadBucket";
    } else if (strcmp(m, "DELETE") == 0) {
      t->op = ASD_S3_DELETE_BUCKET, t->operation = "DeleteBucket";
    } else if (strcmp(m, "POST") == 0 && ep_request_query(req, "delete")) {
      t->op = ASD_S3_DELETE_OBJECTS, t->operation = "DeleteObjects";
    } else if (strcmp(m, "GET") == 0) {
      const char *lt = ep_request_query(req, "list-type");
      if (ep_request_query(req, "location")) {
        t->op = ASD_S3_GET_BUCKET_LOCATION, t->operation = "GetBucketLocation";
      } else if (ep_request_query(req, "uploads")) {
        t->op = ASD_S3_LIST_MULTIPART_UPLOADS, t->operation = "ListMultipartUploads";
      } else if (lt && strcmp(lt, "2") == 0) {
        t->op = ASD_S3_LIST_OBJECTS_V2, t->operation = "ListObjectsV2";
      } else {
        static const char *unsupported[] = {"acl", "versioning", "policy", "cors", "lifecycle",
                                            "tagging", "versions", "website", "logging", "encryption", NULL};
        for (int i = 0; unsupported[i]; i++)
          if (ep_request_query(req, unsupported[i])) {
            ep_s3_error(resp, req, 501, "NotImplemented",
                              "This bucket subresource is not implemented by the local endpoint.");
            return -1;
          }
        t->op = ASD_S3_LIST_OBJECTS, t->operation = "ListObjects";
      }
    }
  } else {
    static const char *unsupported[] = {"acl", "tagging", "retention", "legal-hold", "torrent", "restore",
                                        "select", "attributes", NULL};
    for (int i = 0; unsupported[i]; i++)
      if (ep_request_query(req, unsupported[i])) {
        ep_s3_error(resp, req, 501, "NotImplemented",
                          "This object subresource is not implemented by the local endpoint.");
        return -1;
      }
    const char *upload_id = ep_request_query(req, "uploadId");
    int copy = ep_request_header(req, "x-amz-copy-source") != NULL;
    if (upload_id) {
      t->upload_id = strdup(upload_id);
      if (!t->upload_id) {
        ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
        return -1;
      }
      if (strcmp(m, "PUT") == 0) {
        long long pn = parse_count(ep_request_query(req, "partNumber"));
        if (pn < 1 || pn > ASD_MPU_MAX_PARTS) {
          ep_s3_error(resp, req, 400, "InvalidArgument",
                            "Part number must be an integer between 1 and 10000, inclusive");
          return -1;
        }
        t->part_number = (int)pn;
        if (copy)
          t->op = ASD_S3_UPLOAD_PART_COPY, t->operation = "UploadPartCopy";
        else
          t->op = ASD_S3_UPLOAD_PART, t->operation = "UploadPart";
      } else if (strcmp(m, "POST") == 0) {
        t->op = ASD_S3_COMPLETE_MULTIPART_UPLOAD, t->operation = "CompleteMultipartUpload";
      } else if (strcmp(m, "DELETE") == 0) {
        t->op = ASD_S3_ABORT_MULTIPART_UPLOAD, t->operation = "AbortMultipartUpload";
      } else if (strcmp(m, "GET") == 0) {
        t->op = ASD_S3_LIST_PARTS, t->operation = "ListParts";
      }
    } else if (ep_request_query(req, "uploads")) {
      if (strcmp(m, "POST") == 0) t->op = ASD_S3_CREATE_MULTIPART_UPLOAD, t->operation = "CreateMultipartUpload";
    } else if (strcmp(m, "PUT") == 0 && copy) {
      t->op = ASD_S3_COPY_OBJECT, t->operation = "CopyObject";
    } else if (strcmp(m, "PUT") == 0) {
      t->op = ASD_S3_PUT_OBJECT, t->operation = "PutObject";
    } else if (strcmp(m, "GET") == 0) {
      t->op = ASD_S3_GET_OBJECT, t->operation = "GetObject";
    } else if (head) {
      t->op = ASD_S3_HEAD_OBJECT, t->operation = "HeadObject";
    } else if (strcmp(m, "DELETE") == 0) {
      t->op = ASD_S3_DELETE_OBJECT, t->operation = "DeleteObject";
    }
  }
  if (t->op == ASD_S3_UNSUPPORTED) {
    ep_s3_error(resp, req, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    return -1;
  }
  if (!ep_store_bucket_name_valid(t->bucket)) {
    ep_s3_error(resp, req, 400, "InvalidBucketName", "The specified bucket is not valid.");
    return -1;
  }
  if (t->key && !ep_store_key_valid(t->key)) {
    if (strlen(t->key) > 1024)
      ep_s3_error(resp, req, 400, "KeyTooLongError", "Your key is too long");
    else
      ep_s3_error(resp, req, 400, "InvalidArgument", "Object keys with a '..' path segment are refused.");
    return -1;
  }
  return 0;
}

/* --------------------------------------------------------- payload checks */

/* The signature covers the payload hash a request declares, not the body:
 * the body must be held to that hash, whether it travels as the
 * x-amz-content-sha256 header or, in a presigned URL, as the signed
 * X-Amz-Content-Sha256 query parameter. */
int ep_s3_check_payload_hash(const ep_request *req, const char *sha256_hex, ep_response *resp) {
  const char *declared[2] = {ep_request_header(req, "x-amz-content-sha256"),
                             ep_request_query(req, "X-Amz-Content-Sha256")};
  for (int i = 0; i < 2; i++) {
    const char *h = declared[i];
    if (!h || strlen(h) != 64) continue; /* absent, UNSIGNED-PAYLOAD, STREAMING-... */
    if (strcasecmp(h, sha256_hex) == 0) continue;
    ep_s3_error(resp, req, 400, "XAmzContentSHA256Mismatch",
                    i == 0 ? "The provided 'x-amz-content-sha256' header does not match what was computed."
                           : "The provided 'X-Amz-Content-Sha256' query parameter does not match what was "
                             "computed.");
    return -1;
  }
  return 0;
}

/* Compares a base64 Content-MD5 header to a digest.  0 match, 1 mismatch,
 * -1 when the header is not the base64 of 16 bytes. */
static int check_content_md5(const char *header, const unsigned char md5[16]) {
  unsigned char dec[64];
  size_t hl = strlen(header);
  if (hl == 0 || hl > 40) return -1;
  int n = EVP_DecodeBlock(dec, (const unsigned char *)header, (int)hl);
  /* EVP_DecodeBlock counts padding bytes as data. */
  if (hl >= 1 && header[hl - 1] == '=') n--;
  if (hl >= 2 && header[hl - 2] == '=') n--;
  if (n != 16) return -1;
  return memcmp(dec, md5, 16) == 0 ? 0 : 1;
}

/* CRC-32 (IEEE, reflected 0xEDB88320) and CRC-32C (Castagnoli, 0x82F63B78),
 * bitwise: only DeleteObjects bodies (a few KiB) are checked this way. */
static uint32_t crc32_generic(const unsigned char *p, size_t n, uint32_t poly) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (poly & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

static void b64(const unsigned char *in, int n, char *out) { EVP_EncodeBlock((unsigned char *)out, in, n); }

/*
 * S3 requires an integrity header on DeleteObjects: Content-MD5, or (since
 * the SDKs moved to flexible checksums) one of x-amz-checksum-crc32, -crc32c,
 * -sha1, -sha256.  Returns 0 when one is present and matches.
 */
static int check_body_integrity(const ep_request *req, ep_response *resp) {
  const unsigned char *body = req->body ? req->body : (const unsigned char *)"";
  size_t n = req->body_len;
  const char *md5h = ep_request_header(req, "Content-MD5");
  int checked = 0;
  if (md5h) {
    unsigned char md5[16];
    unsigned int ml = 0;
    EVP_Digest(body, n, md5, &ml, EVP_md5(), NULL);
    int rc = check_content_md5(md5h, md5);
    if (rc < 0) {
      ep_s3_error(resp, req, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
      return -1;
    }
    if (rc > 0) {
      ep_s3_error(resp, req, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      return -1;
    }
    checked = 1;
  }
  struct {
    const char *header;
    int kind;
  } sums[] = {{"x-amz-checksum-crc32", 0}, {"x-amz-checksum-crc32c", 1}, {"x-amz-checksum-sha1", 2},
              {"x-amz-checksum-sha256", 3}};
  for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++) {
    const char *h = ep_request_header(req, sums[i].header);
    if (!h) continue;
    unsigned char d[32];
    int dl;
    if (sums[i].kind <= 1) {
      uint32_t c = crc32_generic(body, n, sums[i].kind == 0 ? 0xEDB88320u : 0x82F63B78u);
      d[0] = (unsigned char)(c >> 24), d[1] = (unsigned char)(c >> 16), d[2] = (unsigned char)(c >> 8),
      d[3] = (unsigned char)c;
      dl = 4;
    } else {
      unsigned int l = 0;
      EVP_Digest(body, n, d, &l, sums[i].kind == 2 ? EVP_sha1() : EVP_sha256(), NULL);
      dl = (int)l;
    }
    char expect[64];
    b64(d, dl, expect);
    if (strcmp(expect, h) != 0) {
      ep_s3_error(resp, req, 400, "BadDigest",
                        CPLSPrintf("The %s you specified did not match the calculated checksum.", sums[i].header));
      return -1;
    }
    checked = 1;
  }
  if (!checked) {
    ep_s3_error(resp, req, 400, "InvalidRequest",
                      "Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)");
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- objects */

static void object_headers(ep_response *resp, const ep_store_meta *m, const char *user_meta) {
  char date[64];
  http_date(m->mtime, date, sizeof date);
  ep_response_set_header(resp, "ETag", m->etag);
  ep_response_set_header(resp, "Last-Modified", date);
  ep_response_set_header(resp, "Accept-Ranges", "bytes");
  ep_response_set_header(resp, "Content-Type", m->content_type[0] ? m->content_type : "binary/octet-stream");
  /* User metadata: one "name:value" line per x-amz-meta-name header. */
  for (const char *p = user_meta; p && *p;) {
    size_t l = strcspn(p, "\n");
    const char *colon = memchr(p, ':', l);
    if (colon && p[0] != '=') /* '=' lines are the endpoint's own (s3_buckets.c) */
      ep_response_set_header(resp, CPLSPrintf("x-amz-meta-%.*s", (int)(colon - p), p),
                                   CPLSPrintf("%.*s", (int)(l - (size_t)(colon - p) - 1), colon + 1));
    p += l;
    if (*p == '\n') p++;
  }
}

/* S3's limit on user metadata: names and values together, in bytes. */
#define USER_META_MAX 2048

typedef struct umeta_vec {
  char **items; /* "name:value", name lower-case without the x-amz-meta- prefix */
  size_t n;
  int oom;
} umeta_vec;

static void umeta_collect(void *ctx, const char *name, const char *value) {
  umeta_vec *v = ctx;
  if (strncasecmp(name, "x-amz-meta-", 11) != 0 || !name[11] || name[11] == '=' || v->oom) return;
  while (*value == ' ' || *value == '\t') value++;
  size_t vl = strlen(value);
  while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t')) vl--;
  char **ni = realloc(v->items, (v->n + 1) * sizeof *ni);
  char *item = ni ? malloc(strlen(name + 11) + vl + 2) : NULL;
  if (!ni || !item) {
    if (ni) v->items = ni;
    v->oom = 1;
    return;
  }
  v->items = ni;
  size_t o = 0;
  for (const char *p = name + 11; *p; p++) item[o++] = (char)tolower((unsigned char)*p);
  item[o++] = ':';
  memcpy(item + o, value, vl);
  item[o + vl] = '\0';
  v->items[v->n++] = item;
}

static int cmp_umeta(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  size_t lx = strcspn(x, ":"), ly = strcspn(y, ":");
  int c = strncmp(x, y, lx < ly ? lx : ly);
  return c ? c : (lx > ly) - (lx < ly);
}

/*
 * The request's x-amz-meta-* headers as a store metadata block (sorted by
 * name; repeated names joined with ',' as HTTP does).  0 with *block
 * malloc'd (NULL when there are none), or -1 with 400 MetadataTooLarge.
 */
static int request_user_meta(const ep_request *req, ep_response *resp, char **block) {
  *block = NULL;
  umeta_vec v = {0};
  ep_request_each_header(req, umeta_collect, &v);
  if (v.n) qsort(v.items, v.n, sizeof *v.items, cmp_umeta);
  asd_buf b;
  asd_buf_init(&b);
  size_t bytes = 0;
  for (size_t i = 0; i < v.n; i++) {
    size_t nl = strcspn(v.items[i], ":");
    if (i && cmp_umeta(&v.items[i], &v.items[i - 1]) == 0) {
      b.len--; /* drop the '\n' and continue the previous value */
      asd_buf_appendf(&b, ",%s\n", v.items[i] + nl + 1);
      bytes += strlen(v.items[i] + nl + 1) + 1;
    } else {
      asd_buf_appendf(&b, "%s\n", v.items[i]);
      bytes += strlen(v.items[i]) - 1;
    }
  }
  for (size_t i = 0; i < v.n; i++) free(v.items[i]);
  free(v.items);
  if (bytes > USER_META_MAX || v.oom) {
    asd_buf_free(&b);
    if (v.oom)
      ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
    else
      ep_s3_error(resp, req, 400, "MetadataTooLarge",
                        "Your metadata headers exceed the maximum allowed metadata size");
    return -1;
  }
  if (b.len) *block = (char *)asd_buf_take(&b, NULL);
  asd_buf_free(&b);
  return 0;
}

/* S3's flexible checksums of a PUT body, as headers and store kinds. */
static const struct {
  const char *header;
  const char *name; /* as in messages and the object's "=checksum-NAME:" line */
  unsigned kind;
  size_t b64_len;
} k_checksums[] = {{"x-amz-checksum-crc32c", "crc32c", ASD_STORE_CK_CRC32C, 8},
                   {"x-amz-checksum-crc32", "crc32", ASD_STORE_CK_CRC32, 8},
                   {"x-amz-checksum-sha1", "sha1", ASD_STORE_CK_SHA1, 28},
                   {"x-amz-checksum-sha256", "sha256", ASD_STORE_CK_SHA256, 44}};
#define N_CHECKSUMS (sizeof k_checksums / sizeof k_checksums[0])

/* The k_checksums entry of a header name, or N_CHECKSUMS. */
static size_t checksum_index(const char *header) {
  for (size_t i = 0; header && i < N_CHECKSUMS; i++)
    if (strcasecmp(header, k_checksums[i].header) == 0) return i;
  return N_CHECKSUMS;
}

#define MALFORMED_TRAILER                                                                                       \
  "The request contained trailing data that was not well-formed or did not conform to our published schema."

/*
 * The checksum a PUT body came with: one x-amz-checksum-* header at most,
 * or (aws-chunked) the trailing header x-amz-trailer announced, which must
 * then be the body's only trailing header.  *found is its k_checksums index
 * (N_CHECKSUMS: none) and value its value.  0, or -1 (resp filled).
 */
static int put_checksum_given(const ep_request *req, const ep_chunked *dec, ep_response *resp, size_t *found,
                              char value[96]) {
  *found = N_CHECKSUMS;
  for (size_t i = 0; i < N_CHECKSUMS; i++) {
    if (!ep_request_header(req, k_checksums[i].header)) continue;
    if (*found != N_CHECKSUMS) {
      ep_s3_error(resp, req, 400, "InvalidRequest",
                  "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
      return -1;
    }
    *found = i;
    snprintf(value, 96, "%s", ep_request_header(req, k_checksums[i].header));
  }
  if (!dec) return 0;
  const char *declared = ep_request_header(req, "x-amz-trailer");
  const char *trailer = ep_chunked_trailer(dec);
  if (!declared) {
    if (!*trailer) return 0;
    ep_s3_error(resp, req, 400, "MalformedTrailerError", MALFORMED_TRAILER);
    return -1;
  }
  *found = checksum_index(declared);
  /* The announced header, and nothing else (begin checked that it is a checksum). */
  if (ep_chunked_trailer_value(dec, k_checksums[*found].header, value, 96) != 0 ||
      strlen(trailer) != strlen(k_checksums[*found].header) + strlen(value) + 2) {
    ep_s3_error(resp, req, 400, "MalformedTrailerError", MALFORMED_TRAILER);
    return -1;
  }
  return 0;
}

/*
 * Holds the body to the checksum it came with (put_checksum_given), as S3
 * does: of the right length, equal to what the bytes give, else 400
 * (InvalidRequest for the form, BadDigest for the value).  On success *line
 * is the object's "=checksum-NAME:VALUE\n" line (or "") and the checksum is
 * echoed as a header of the response.  0 or -1 (resp filled).
 */
static int check_put_checksum(const ep_request *req, const ep_chunked *dec, ep_store_writer *w, ep_response *resp,
                              char line[96]) {
  line[0] = '\0';
  size_t found;
  char given[96];
  if (put_checksum_given(req, dec, resp, &found, given) != 0) return -1;
  if (found == N_CHECKSUMS) return 0;
  char actual[64];
  if (strlen(given) != k_checksums[found].b64_len ||
      ep_store_writer_checksum_b64(w, k_checksums[found].kind, actual) != 0) {
    int trailing = dec && ep_request_header(req, "x-amz-trailer");
    ep_s3_error(resp, req, 400, "InvalidRequest",
                CPLSPrintf("Value for %s %s is invalid.", k_checksums[found].header,
                           trailing ? "trailing header" : "header"));
    return -1;
  }
  if (strcmp(given, actual) != 0) {
    char upper[16];
    snprintf(upper, sizeof upper, "%s", k_checksums[found].name);
    for (char *p = upper; *p; p++) *p = (char)toupper((unsigned char)*p);
    ep_s3_error(resp, req, 400, "BadDigest",
                    CPLSPrintf("The %s you specified did not match the calculated checksum.", upper));
    return -1;
  }
  snprintf(line, 96, "=checksum-%s:%s\n", k_checksums[found].name, actual);
  ep_response_set_header(resp, k_checksums[found].header, actual);
  return 0;
}

static const char *const k_sha256_values =
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.";

/*
 * What the headers of an aws-chunked PUT announce, checked before the body:
 * the payload's length (x-amz-decoded-content-length, which S3 requires:
 * 411 MissingContentLength without it) within the size cap, and an
 * x-amz-trailer naming one checksum, only with a ...-TRAILER form and not
 * beside a checksum header.  0 with *mode and *declared, or -1 (resp filled).
 */
static int chunked_announcement(ep_s3_api *api, const ep_request *req, ep_chunked_mode *mode, uint64_t *declared,
                                ep_response *resp) {
  *mode = ep_chunked_mode_of(ep_request_header(req, "x-amz-content-sha256"));
  *declared = UINT64_MAX;
  const char *trailer = ep_request_header(req, "x-amz-trailer");
  if (*mode == EP_CHUNKED_UNKNOWN) {
    ep_s3_error(resp, req, 400, "InvalidArgument", k_sha256_values);
    return -1;
  }
  if (trailer && *mode != EP_CHUNKED_UNSIGNED_TRAILER && *mode != EP_CHUNKED_SIGNED_TRAILER) {
    ep_s3_error(resp, req, 400, "InvalidRequest",
                "x-amz-trailer needs x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER or "
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.");
    return -1;
  }
  if (*mode == EP_CHUNKED_NONE) return 0;
  if (trailer && checksum_index(trailer) == N_CHECKSUMS) {
    ep_s3_error(resp, req, 400, "InvalidRequest", "The value specified in the x-amz-trailer header is not supported");
    return -1;
  }
  for (size_t i = 0; trailer && i < N_CHECKSUMS; i++) {
    if (!ep_request_header(req, k_checksums[i].header)) continue;
    ep_s3_error(resp, req, 400, "InvalidRequest",
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
    return -1;
  }
  const char *dl = ep_request_header(req, "x-amz-decoded-content-length");
  if (!dl) {
    ep_s3_error(resp, req, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    return -1;
  }
  if (ep_parse_u64(dl, declared) != 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "x-amz-decoded-content-length is not a number.");
    return -1;
  }
  if (api->max_body && *declared > api->max_body) {
    ep_s3_error(resp, req, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    return -1;
  }
  return 0;
}

/* Content-Length of a plain body, against the size cap (an aws-chunked
 * body's is its encoded length: its payload was checked instead). */
static int check_plain_length(ep_s3_api *api, const ep_request *req, ep_response *resp) {
  const char *cl = ep_request_header(req, "Content-Length");
  if (!cl) return 0;
  uint64_t n = 0;
  if (ep_parse_u64(cl, &n) != 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "Content-Length is not a number.");
    return -1;
  }
  if (api->max_body && n > api->max_body) {
    ep_s3_error(resp, req, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    return -1;
  }
  return 0;
}

int ep_s3_put_begin(ep_s3_api *api, const ep_request *req, const ep_s3_target *t, const ep_chunk_seed *seed,
                    ep_chunked_sink sink, void *sink_ctx, ep_store_writer **w, ep_chunked **dec, ep_response *resp) {
  *w = NULL;
  *dec = NULL;
  ep_chunked_mode mode;
  uint64_t declared;
  if (chunked_announcement(api, req, &mode, &declared, resp) != 0) return -1;
  if (t->op == ASD_S3_PUT_OBJECT) {
    /* Refused before the body is read, not after. */
    char *um = NULL;
    if (request_user_meta(req, resp, &um) != 0) return -1;
    free(um);
  }
  if (mode == EP_CHUNKED_NONE && check_plain_length(api, req, resp) != 0) return -1;
  ep_store_status st;
  if (t->op == ASD_S3_UPLOAD_PART) {
    /* The bucket is checked first so that a missing bucket is NoSuchBucket,
     * as on S3, rather than NoSuchUpload. */
    st = ep_store_head_bucket(api->store, t->bucket);
    if (st == ASD_STORE_OK)
      st = ep_mpu_part_writer_begin(api->mpu, t->bucket, t->key, t->upload_id, t->part_number, w);
  } else {
    st = ep_store_writer_begin(api->store, t->bucket, t->key, w);
  }
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return -1;
  }
  unsigned kinds = 0;
  for (size_t i = 0; i < N_CHECKSUMS; i++)
    if (ep_request_header(req, k_checksums[i].header)) kinds |= k_checksums[i].kind;
  size_t ti = checksum_index(ep_request_header(req, "x-amz-trailer"));
  if (ti != N_CHECKSUMS) kinds |= k_checksums[ti].kind;
  ep_store_writer_want_checksums(*w, kinds);
  if (mode != EP_CHUNKED_NONE && !(*dec = ep_chunked_new(mode, seed, declared, sink, sink_ctx))) {
    ep_store_writer_abort(*w);
    *w = NULL;
    ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
    return -1;
  }
  return 0;
}

/* The decoder's refusal as S3's error body. */
static void chunked_error(ep_response *resp, const ep_request *req, const ep_chunked *dec) {
  const ep_chunked_error *e = ep_chunked_error_of(dec);
  const char *extra[5] = {NULL};
  int n = 0;
  for (int i = 0; i < 2; i++)
    if (e->extra_name[i][0]) {
      extra[n++] = e->extra_name[i];
      extra[n++] = e->extra_value[i];
    }
  ep_s3_error_extra(resp, req, e->status ? e->status : 400, e->code ? e->code : "IncompleteBody", e->message,
                    n ? extra : NULL);
}

void ep_s3_put_finish(ep_s3_api *api, const ep_request *req, const ep_s3_target *t, ep_store_writer *w,
                      ep_chunked *dec, ep_response *resp) {
  (void)api;
  char sha[65];
  unsigned char md5[16];
  if (dec && ep_chunked_finish(dec) != 0) {
    ep_store_writer_abort(w);
    chunked_error(resp, req, dec);
    return;
  }
  ep_store_writer_sha256_hex(w, sha);
  ep_store_writer_md5(w, md5);
  if (ep_s3_check_payload_hash(req, sha, resp) != 0) {
    ep_store_writer_abort(w);
    return;
  }
  const char *md5h = ep_request_header(req, "Content-MD5");
  if (md5h) {
    int rc = check_content_md5(md5h, md5);
    if (rc != 0) {
      ep_store_writer_abort(w);
      if (rc < 0)
        ep_s3_error(resp, req, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
      else
        ep_s3_error(resp, req, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      return;
    }
  }
  char ck_line[96];
  if (check_put_checksum(req, dec, w, resp, ck_line) != 0) {
    ep_store_writer_abort(w);
    return;
  }
  ep_store_meta m;
  /* Parts keep no content type: the upload's, given at its creation, applies. */
  const char *ctype = t->op == ASD_S3_UPLOAD_PART ? NULL : ep_request_header(req, "Content-Type");
  char *block = NULL;
  if (t->op == ASD_S3_PUT_OBJECT) {
    char *um = NULL;
    if (request_user_meta(req, resp, &um) != 0) {
      ep_store_writer_abort(w);
      return;
    }
    char *sse = ep_s3_sse_meta_lines(api->buckets, req, t->bucket);
    block = CPLStrdup(CPLSPrintf("%s%s%s", um ? um : "", sse ? sse : "", ck_line));
    ep_store_writer_set_user_meta(w, block);
    free(um);
    CPLFree(sse);
  }
  ep_store_status st = ep_store_writer_commit(w, ctype, &m);
  if (st != ASD_STORE_OK) {
    CPLFree(block);
    store_error(resp, req, st, t->bucket);
    return;
  }
  resp->status = 200;
  ep_response_set_header(resp, "ETag", m.etag);
  if (t->op == ASD_S3_PUT_OBJECT) ep_s3_object_system_headers(resp, block, 0);
  CPLFree(block);
}

/* Parses a single "bytes=a-b" range against size.  0: no usable range (serve
 * all), 1: range in start..end (inclusive), -1: unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *end) {
  if (!h || strncmp(h, "bytes=", 6) != 0) return 0;
  const char *p = h + 6;
  if (strchr(p, ',')) return 0; /* multiple ranges: S3 serves the whole object */
  const char *dash = strchr(p, '-');
  if (!dash) return 0;
  char a[32] = "", b[32] = "";
  size_t la = (size_t)(dash - p), lb = strlen(dash + 1);
  if (la >= sizeof a || lb >= sizeof b) return 0;
  memcpy(a, p, la);
  memcpy(b, dash + 1, lb);
  /* 64-bit offsets: objects above 4 GiB (and 10^9) are ordinary. */
  uint64_t va = 0, vb = 0;
  if ((!la && !lb) || (la && ep_parse_u64(a, &va) != 0) || (lb && ep_parse_u64(b, &vb) != 0)) return 0;
  if (!la) { /* suffix: last vb bytes */
    if (vb == 0 || size == 0) return -1;
    *start = vb >= size ? 0 : size - vb;
    *end = size - 1;
    return 1;
  }
  if (va >= size) return -1;
  if (lb && vb < va) return 0;
  *start = va;
  *end = (!lb || vb >= size) ? size - 1 : vb;
  return 1;
}

/* x-amz-checksum-mode: ENABLED asks GET and HEAD for the stored checksum. */
static int checksum_mode(const ep_request *req) {
  const char *v = ep_request_header(req, "x-amz-checksum-mode");
  return v && strcasecmp(v, "ENABLED") == 0;
}

static void get_object(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                       ep_response *resp, int head) {
  ep_store_meta m;
  char *um = NULL;
  if (head) {
    ep_store_status st = ep_store_head_user_meta(api->store, t->bucket, t->key, &m, &um);
    if (st != ASD_STORE_OK) {
      store_error(resp, req, st, t->bucket);
      return;
    }
    resp->status = 200;
    resp->head_size = m.size;
    object_headers(resp, &m, um);
    ep_s3_object_system_headers(resp, um, checksum_mode(req));
    free(um);
    return;
  }
  int fd = -1;
  uint64_t off = 0;
  ep_store_status st = ep_store_open_read_user_meta(api->store, t->bucket, t->key, &fd, &off, &m, &um);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  uint64_t a = 0, b = 0;
  int r = parse_range(ep_request_header(req, "Range"), m.size, &a, &b);
  if (r < 0) {
    close(fd);
    free(um);
    ep_s3_error(resp, req, 416, "InvalidRange", "The requested range is not satisfiable");
    ep_response_set_header(resp, "Content-Range", CPLSPrintf("bytes */%llu", (unsigned long long)m.size));
    return;
  }
  object_headers(resp, &m, um);
  /* A range's bytes are not the whole object's: no whole-object checksum. */
  ep_s3_object_system_headers(resp, um, checksum_mode(req) && r != 1);
  free(um);
  resp->fd = fd;
  if (r == 1) {
    resp->status = 206;
    resp->fd_offset = off + a;
    resp->fd_size = b - a + 1;
    ep_response_set_header(resp, "Content-Range",
                                 CPLSPrintf("bytes %llu-%llu/%llu", (unsigned long long)a, (unsigned long long)b,
                                            (unsigned long long)m.size));
  } else {
    resp->status = 200;
    resp->fd_offset = off;
    resp->fd_size = m.size;
  }
}

/* ---------------------------------------------------------------- buckets */

static void list_buckets(ep_s3_api *api, const ep_request *req, ep_response *resp) {
  (void)req;
  char **names = ep_store_list_buckets(api->store);
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<ListAllMyBucketsResult xmlns=\"%s\"><Owner><ID>asdlocal</ID>"
                       "<DisplayName>asdlocal</DisplayName></Owner><Buckets>", S3_XMLNS);
  char date[80];
  iso_date(asd_time_wall(), date, sizeof date);
  for (int i = 0; names && names[i]; i++) {
    asd_buf_append_str(&x, "<Bucket>");
    xml_elem(&x, "Name", names[i], 0);
    xml_elem(&x, "CreationDate", date, 0);
    asd_buf_append_str(&x, "</Bucket>");
  }
  asd_buf_append_str(&x, "</Buckets></ListAllMyBucketsResult>");
  CSLDestroy(names);
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

static void list_objects(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                         ep_response *resp, int v2) {
  const char *prefix = ep_request_query(req, "prefix");
  const char *delim = ep_request_query(req, "delimiter");
  const char *enc = ep_request_query(req, "encoding-type");
  const char *mk = ep_request_query(req, "max-keys");
  int url = 0;
  if (enc) {
    if (strcmp(enc, "url") != 0) {
      ep_s3_error(resp, req, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
      return;
    }
    url = 1;
  }
  long long max_keys = 1000;
  if (mk) {
    max_keys = parse_count(mk);
    if (max_keys < 0) {
      ep_s3_error(resp, req, 400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
      return;
    }
    if (max_keys > 1000) max_keys = 1000;
  }
  char *after = NULL;
  const char *token = NULL, *start_after = NULL, *marker = NULL;
  if (v2) {
    token = ep_request_query(req, "continuation-token");
    start_after = ep_request_query(req, "start-after");
    if (token) {
      size_t tl = strlen(token);
      int ok = tl % 2 == 0;
      after = malloc(tl / 2 + 1);
      for (size_t i = 0; ok && after && i < tl; i += 2) {
        int hi = token[i], lo = token[i + 1];
        hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
        lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
          ok = 0;
        else
          after[i / 2] = (char)(hi * 16 + lo);
      }
      if (!ok || !after) {
        free(after);
        ep_s3_error(resp, req, 400, "InvalidArgument", "The continuation token provided is incorrect");
        return;
      }
      after[tl / 2] = '\0';
    } else if (start_after) {
      after = strdup(start_after);
    }
  } else {
    marker = ep_request_query(req, "marker");
    if (marker) after = strdup(marker);
  }
  ep_store_listing l;
  ep_store_status st = ep_store_list(api->store, t->bucket, prefix, delim, after, (size_t)max_keys, &l);
  free(after);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<ListBucketResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "Name", t->bucket, 0);
  xml_elem(&x, "Prefix", prefix ? prefix : "", url);
  if (v2) {
    if (token) xml_elem(&x, "ContinuationToken", token, 0);
    if (start_after) xml_elem(&x, "StartAfter", start_after, url);
    asd_buf_appendf(&x, "<KeyCount>%zu</KeyCount>", l.count);
  } else {
    xml_elem(&x, "Marker", marker ? marker : "", url);
  }
  asd_buf_appendf(&x, "<MaxKeys>%lld</MaxKeys>", max_keys);
  if (delim && *delim) xml_elem(&x, "Delimiter", delim, url);
  if (url) xml_elem(&x, "EncodingType", "url", 0);
  asd_buf_appendf(&x, "<IsTruncated>%s</IsTruncated>", l.truncated ? "true" : "false");
  if (l.truncated && l.next_after) {
    if (v2) {
      char *hex = malloc(strlen(l.next_after) * 2 + 1);
      if (hex) {
        asd_hex_encode((const unsigned char *)l.next_after, strlen(l.next_after), hex);
        xml_elem(&x, "NextContinuationToken", hex, 0);
        free(hex);
      }
    } else {
      xml_elem(&x, "NextMarker", l.next_after, url);
    }
  }
  for (size_t i = 0; i < l.count; i++) {
    if (l.entries[i].is_prefix) continue;
    char date[80];
    iso_date(l.entries[i].meta.mtime, date, sizeof date);
    asd_buf_append_str(&x, "<Contents>");
    xml_elem(&x, "Key", l.entries[i].key, url);
    xml_elem(&x, "LastModified", date, 0);
    xml_elem(&x, "ETag", l.entries[i].meta.etag, 0);
    asd_buf_appendf(&x, "<Size>%llu</Size><StorageClass>STANDARD</StorageClass>",
                    (unsigned long long)l.entries[i].meta.size);
    if (!v2) asd_buf_append_str(&x, "<Owner><ID>asdlocal</ID><DisplayName>asdlocal</DisplayName></Owner>");
    asd_buf_append_str(&x, "</Contents>");
  }
  for (size_t i = 0; i < l.count; i++) {
    if (!l.entries[i].is_prefix) continue;
    asd_buf_append_str(&x, "<CommonPrefixes>");
    xml_elem(&x, "Prefix", l.entries[i].key, url);
    asd_buf_append_str(&x, "</CommonPrefixes>");
  }
  asd_buf_append_str(&x, "</ListBucketResult>");
  ep_store_listing_free(&l);
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

/* Parses a request body as XML (quietly: a bad body is the client's error,
 * answered by the caller) and finds the top-level element named `element`.
 * Sets *root to the document (NULL when the body is empty or not XML) and
 * *found to the element or NULL.  Returns 0, or -1 after answering 500 when
 * out of memory. */
static int parse_body_xml(ep_response *resp, const ep_request *req, const char *element,
                          CPLXMLNode **root_out, CPLXMLNode **found) {
  *root_out = *found = NULL;
  char *text = malloc(req->body_len + 1);
  if (!text) {
    ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
    return -1;
  }
  if (req->body_len) memcpy(text, req->body, req->body_len);
  text[req->body_len] = '\0';
  CPLPushErrorHandler(CPLQuietErrorHandler);
  /* A body with a NUL inside is not XML: strlen stops short of it. */
  CPLXMLNode *root = req->body_len && strlen(text) == req->body_len ? CPLParseXMLString(text) : NULL;
  CPLPopErrorHandler();
  CPLErrorReset();
  free(text);
  for (CPLXMLNode *n = root; n; n = n->psNext)
    if (n->eType == CXT_Element && strcmp(n->pszValue, element) == 0) *found = n;
  *root_out = root;
  return 0;
}

static void delete_objects(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                           ep_response *resp) {
  if (check_body_integrity(req, resp) != 0) return;
  if (ep_store_head_bucket(api->store, t->bucket) != ASD_STORE_OK) {
    store_error(resp, req, ASD_STORE_NO_BUCKET, t->bucket);
    return;
  }
  CPLXMLNode *root = NULL, *del = NULL;
  if (parse_body_xml(resp, req, "Delete", &root, &del) != 0) return;
  int count = 0, quiet = 0, bad = del == NULL;
  for (CPLXMLNode *c = del ? del->psChild : NULL; c; c = c->psNext) {
    if (c->eType != CXT_Element) continue;
    if (strcmp(c->pszValue, "Object") == 0) {
      if (!CPLGetXMLValue(c, "Key", NULL)) bad = 1;
      count++;
    } else if (strcmp(c->pszValue, "Quiet") == 0) {
      quiet = EQUAL(CPLGetXMLValue(c, NULL, "false"), "true");
    }
  }
  if (bad || count == 0 || count > 1000) {
    CPLDestroyXMLNode(root);
    ep_s3_error(resp, req, 400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema");
    return;
  }
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<DeleteResult xmlns=\"%s\">", S3_XMLNS);
  for (CPLXMLNode *c = del->psChild; c; c = c->psNext) {
    if (c->eType != CXT_Element || strcmp(c->pszValue, "Object") != 0) continue;
    const char *key = CPLGetXMLValue(c, "Key", "");
    ep_store_status st = ep_store_delete(api->store, t->bucket, key);
    if (st == ASD_STORE_OK) {
      if (!quiet) {
        asd_buf_append_str(&x, "<Deleted>");
        xml_elem(&x, "Key", key, 0);
        asd_buf_append_str(&x, "</Deleted>");
      }
    } else {
      asd_buf_append_str(&x, "<Error>");
      xml_elem(&x, "Key", key, 0);
      xml_elem(&x, "Code", st == ASD_STORE_BAD_KEY ? "InvalidArgument" : "InternalError", 0);
      xml_elem(&x, "Message", ep_store_status_text(st), 0);
      asd_buf_append_str(&x, "</Error>");
    }
  }
  asd_buf_append_str(&x, "</DeleteResult>");
  CPLDestroyXMLNode(root);
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

/* ------------------------------------------------------- copies (CopyObject) */

static int hexdigit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/*
 * x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded, optionally
 * followed by "?versionId=...".  This server keeps no versions, so a version
 * id other than "null" names nothing.  0, or -1 with the 400 filled.
 */
static int parse_copy_source(const ep_request *req, ep_response *resp, char **bucket, char **key) {
  *bucket = *key = NULL;
  const char *h = ep_request_header(req, "x-amz-copy-source");
  if (!h) h = "";
  while (*h == '/') h++;
  size_t n = strcspn(h, "?");
  const char *q = h[n] == '?' ? h + n + 1 : NULL;
  char *dec = malloc(n + 1);
  size_t o = 0;
  int bad = dec == NULL;
  for (size_t i = 0; !bad && i < n; i++) {
    if (h[i] == '%' && i + 2 < n && hexdigit(h[i + 1]) >= 0 && hexdigit(h[i + 2]) >= 0) {
      dec[o] = (char)(hexdigit(h[i + 1]) * 16 + hexdigit(h[i + 2]));
      i += 2;
    } else {
      dec[o] = h[i];
    }
    if (dec[o++] == '\0') bad = 1;
  }
  char *slash = bad ? NULL : (dec[o] = '\0', strchr(dec, '/'));
  if (bad || !slash || slash == dec || !slash[1]) {
    free(dec);
    ep_s3_error(resp, req, 400, "InvalidArgument",
                      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    return -1;
  }
  if (q && strncmp(q, "versionId=", 10) == 0 && strcmp(q + 10, "null") != 0) {
    free(dec);
    ep_s3_error(resp, req, 400, "InvalidArgument", "Invalid version id specified");
    return -1;
  }
  *slash = '\0';
  *bucket = strdup(dec);
  *key = strdup(slash + 1);
  free(dec);
  if (!*bucket || !*key) {
    free(*bucket);
    free(*key);
    *bucket = *key = NULL;
    ep_s3_error(resp, req, 500, "InternalError", "Out of memory");
    return -1;
  }
  if (!ep_store_bucket_name_valid(*bucket) || !ep_store_key_valid(*key)) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "The copy source bucket or key is not valid.");
    free(*bucket);
    free(*key);
    *bucket = *key = NULL;
    return -1;
  }
  return 0;
}

/* Compares two ETags ignoring quotes. */
static int etag_equal(const char *a, const char *b) {
  while (*a == '"') a++;
  while (*b == '"') b++;
  size_t la = strcspn(a, "\""), lb = strcspn(b, "\"");
  return la == lb && strncmp(a, b, la) == 0;
}

/* x-amz-copy-source-if-match / -if-none-match.  0, or -1 with 412 filled. */
static int copy_preconditions(const ep_request *req, const ep_store_meta *src, ep_response *resp) {
  const char *im = ep_request_header(req, "x-amz-copy-source-if-match");
  const char *inm = ep_request_header(req, "x-amz-copy-source-if-none-match");
  if ((im && !etag_equal(im, src->etag)) || (inm && etag_equal(inm, src->etag))) {
    ep_s3_error(resp, req, 412, "PreconditionFailed",
                      "At least one of the pre-conditions you specified did not hold");
    return -1;
  }
  return 0;
}

/*
 * Opens the copy source for reading.  The descriptor keeps that version's
 * bytes even if the source is replaced meanwhile, and bytes go from it to the
 * destination's writer through a bounded buffer.  0, or -1 with resp filled.
 */
static int open_copy_source(ep_s3_api *api, const ep_request *req, ep_response *resp, int *fd,
                            uint64_t *off, ep_store_meta *m, char **um, char **sb, char **sk) {
  if (parse_copy_source(req, resp, sb, sk) != 0) return -1;
  ep_store_status st = ep_store_open_read_user_meta(api->store, *sb, *sk, fd, off, m, um);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, *sb);
    return -1;
  }
  if (copy_preconditions(req, m, resp) != 0) {
    close(*fd);
    *fd = -1;
    free(*um);
    *um = NULL;
    return -1;
  }
  return 0;
}

/* A metadata block without the endpoint's own '=' lines; malloc'd or NULL. */
static char *without_system_lines(const char *block) {
  if (!block) return NULL;
  asd_buf b;
  asd_buf_init(&b);
  for (const char *p = block; *p;) {
    size_t l = strcspn(p, "\n");
    if (p[0] != '=') {
      asd_buf_append(&b, p, l);
      asd_buf_append(&b, "\n", 1);
    }
    p += l;
    if (*p == '\n') p++;
  }
  asd_buf_append(&b, "", 1);
  return (char *)asd_buf_take(&b, NULL);
}

static void copy_object(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                        ep_response *resp) {
  const char *dir = ep_request_header(req, "x-amz-metadata-directive");
  if (dir && strcmp(dir, "COPY") != 0 && strcmp(dir, "REPLACE") != 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "Unknown metadata directive.");
    return;
  }
  int replace = dir && strcmp(dir, "REPLACE") == 0;
  /* REPLACE takes the request's metadata: refuse it before any copying. */
  char *new_um = NULL;
  if (replace && request_user_meta(req, resp, &new_um) != 0) return;
  char *sb = NULL, *sk = NULL, *src_um = NULL;
  int fd = -1;
  uint64_t off = 0;
  ep_store_meta src;
  if (open_copy_source(api, req, resp, &fd, &off, &src, &src_um, &sb, &sk) != 0) {
    free(sb);
    free(sk);
    free(new_um);
    return;
  }
  int self = strcmp(sb, t->bucket) == 0 && strcmp(sk, t->key) == 0;
  free(sb);
  free(sk);
  /* COPY keeps the source's metadata, REPLACE takes the request's. */
  char *um = replace ? new_um : src_um;
  free(replace ? src_um : new_um);
  if (self && !replace) {
    free(um);
    close(fd);
    ep_s3_error(resp, req, 400, "InvalidRequest",
                      "This copy request is illegal because it is trying to copy an object to itself without "
                      "changing the object's metadata, storage class, website redirect location or encryption "
                      "attributes.");
    return;
  }
  ep_store_writer *w = NULL;
  ep_store_status st = ep_store_writer_begin(api->store, t->bucket, t->key, &w);
  if (st != ASD_STORE_OK) {
    free(um);
    close(fd);
    store_error(resp, req, st, t->bucket);
    return;
  }
  /* The copy's encryption is the request's (S3's default when none), never the source's. */
  char *block = without_system_lines(um);
  char *sse = ep_s3_sse_meta_lines(api->buckets, req, t->bucket);
  char *full = CPLStrdup(CPLSPrintf("%s%s", block ? block : "", sse ? sse : ""));
  ep_store_writer_set_user_meta(w, full);
  ep_s3_object_system_headers(resp, full, 0);
  free(um);
  free(block);
  CPLFree(sse);
  CPLFree(full);
  int rc = ep_store_writer_append_fd(w, fd, off, src.size, 1);
  close(fd);
  if (rc != 0) {
    ep_store_writer_abort(w);
    ep_s3_error(resp, req, 500, "InternalError", "We encountered an internal error. Please try again.");
    return;
  }
  /* COPY keeps the source's content type; REPLACE takes the request's. */
  const char *ctype = replace ? ep_request_header(req, "Content-Type")
                              : src.content_type[0] ? src.content_type : NULL;
  ep_store_meta m;
  st = ep_store_writer_commit(w, ctype, &m);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  char date[80];
  iso_date(m.mtime, date, sizeof date);
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<CopyObjectResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "LastModified", date, 0);
  xml_elem(&x, "ETag", m.etag, 0);
  asd_buf_append_str(&x, "</CopyObjectResult>");
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

/* ------------------------------------------------------- multipart uploads */

static void create_multipart_upload(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                                    ep_response *resp) {
  char id[33];
  char *um = NULL;
  if (request_user_meta(req, resp, &um) != 0) return;
  /* The upload's encryption is given here and applies to the object it completes. */
  char *sse = ep_s3_sse_meta_lines(api->buckets, req, t->bucket);
  char *block = sse ? CPLStrdup(CPLSPrintf("%s%s", um ? um : "", sse)) : NULL;
  ep_store_status st = ep_mpu_create(api->mpu, t->bucket, t->key, ep_request_header(req, "Content-Type"),
                                       block ? block : um, id);
  free(um);
  CPLFree(sse);
  if (st == ASD_STORE_OK) ep_s3_object_system_headers(resp, block, 0);
  CPLFree(block);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<InitiateMultipartUploadResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "Bucket", t->bucket, 0);
  xml_elem(&x, "Key", t->key, 0);
  xml_elem(&x, "UploadId", id, 0);
  asd_buf_append_str(&x, "</InitiateMultipartUploadResult>");
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

/* NoSuchBucket before NoSuchUpload, as S3 answers.  0 or -1 (resp filled). */
static int check_bucket(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                        ep_response *resp) {
  ep_store_status st = ep_store_head_bucket(api->store, t->bucket);
  if (st == ASD_STORE_OK) return 0;
  store_error(resp, req, st, t->bucket);
  return -1;
}

static void upload_part_copy(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                             ep_response *resp) {
  if (check_bucket(api, req, t, resp) != 0) return;
  if (ep_mpu_check(api->mpu, t->bucket, t->key, t->upload_id) != ASD_STORE_OK) {
    store_error(resp, req, ASD_STORE_NO_UPLOAD, t->bucket);
    return;
  }
  char *sb = NULL, *sk = NULL, *src_um = NULL;
  int fd = -1;
  uint64_t off = 0;
  ep_store_meta src;
  int rc = open_copy_source(api, req, resp, &fd, &off, &src, &src_um, &sb, &sk);
  free(sb);
  free(sk);
  free(src_um); /* parts have no metadata of their own */
  if (rc != 0) return;
  uint64_t a = 0, len = src.size;
  const char *range = ep_request_header(req, "x-amz-copy-source-range");
  if (range) {
    /* Only the exact form "bytes=first-last" is allowed here, within the source. */
    uint64_t x = 0, y = 0;
    const char *dash = strncmp(range, "bytes=", 6) == 0 ? strchr(range + 6, '-') : NULL;
    char first[24] = "";
    if (dash && (size_t)(dash - range - 6) < sizeof first) memcpy(first, range + 6, (size_t)(dash - range - 6));
    if (!dash || ep_parse_u64(first, &x) != 0 || ep_parse_u64(dash + 1, &y) != 0 || x > y ||
        y >= src.size) {
      close(fd);
      ep_s3_error(resp, req, 400, "InvalidArgument",
                        CPLSPrintf("Range specified is not valid for source object of size: %llu",
                                   (unsigned long long)src.size));
      return;
    }
    a = x;
    len = y - x + 1;
  }
  ep_store_writer *w = NULL;
  ep_store_status st = ep_mpu_part_writer_begin(api->mpu, t->bucket, t->key, t->upload_id, t->part_number, &w);
  if (st != ASD_STORE_OK) {
    close(fd);
    store_error(resp, req, st, t->bucket);
    return;
  }
  rc = ep_store_writer_append_fd(w, fd, off + a, len, 1);
  close(fd);
  if (rc != 0) {
    ep_store_writer_abort(w);
    ep_s3_error(resp, req, 500, "InternalError", "We encountered an internal error. Please try again.");
    return;
  }
  ep_store_meta m;
  st = ep_store_writer_commit(w, NULL, &m);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  char date[80];
  iso_date(m.mtime, date, sizeof date);
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<CopyPartResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "LastModified", date, 0);
  xml_elem(&x, "ETag", m.etag, 0);
  asd_buf_append_str(&x, "</CopyPartResult>");
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

static void malformed_xml(ep_response *resp, const ep_request *req) {
  ep_s3_error(resp, req, 400, "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema");
}

static void complete_multipart_upload(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                                      ep_response *resp) {
  if (check_bucket(api, req, t, resp) != 0) return;
  if (ep_mpu_check(api->mpu, t->bucket, t->key, t->upload_id) != ASD_STORE_OK) {
    store_error(resp, req, ASD_STORE_NO_UPLOAD, t->bucket);
    return;
  }
  CPLXMLNode *root = NULL, *cmu = NULL;
  if (parse_body_xml(resp, req, "CompleteMultipartUpload", &root, &cmu) != 0) return;
  size_t n = 0, cap = 0;
  ep_mpu_request_part *parts = NULL;
  int bad = cmu == NULL;
  for (CPLXMLNode *c = cmu ? cmu->psChild : NULL; c && !bad; c = c->psNext) {
    if (c->eType != CXT_Element || strcmp(c->pszValue, "Part") != 0) continue;
    long long num = parse_count(CPLGetXMLValue(c, "PartNumber", ""));
    const char *etag = CPLGetXMLValue(c, "ETag", NULL);
    if (num < 1 || num > ASD_MPU_MAX_PARTS || !etag || n >= ASD_MPU_MAX_PARTS) {
      bad = 1;
      break;
    }
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      ep_mpu_request_part *np = realloc(parts, nc * sizeof *np);
      if (!np) {
        bad = 1;
        break;
      }
      parts = np;
      cap = nc;
    }
    parts[n].number = (int)num;
    parts[n].etag = etag;
    n++;
  }
  if (bad || n == 0) {
    free(parts);
    CPLDestroyXMLNode(root);
    malformed_xml(resp, req);
    return;
  }
  ep_mpu_verdict v = ASD_MPU_OK;
  char detail[400];
  ep_store_meta m;
  ep_store_status st =
      ep_mpu_complete(api->mpu, t->bucket, t->key, t->upload_id, parts, n, &v, detail, sizeof detail, &m);
  free(parts);
  CPLDestroyXMLNode(root);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  switch (v) {
    case ASD_MPU_OK: break;
    case ASD_MPU_INVALID_PART: ep_s3_error(resp, req, 400, "InvalidPart", detail); return;
    case ASD_MPU_INVALID_PART_ORDER: ep_s3_error(resp, req, 400, "InvalidPartOrder", detail); return;
    case ASD_MPU_ENTITY_TOO_SMALL: ep_s3_error(resp, req, 400, "EntityTooSmall", detail); return;
    case ASD_MPU_MALFORMED: malformed_xml(resp, req); return;
  }
  const char *host = ep_request_header(req, "Host");
  asd_buf loc;
  asd_buf_init(&loc);
  asd_buf_appendf(&loc, "http://%s/", host ? host : "localhost");
  url_encode(&loc, t->bucket);
  asd_buf_append_str(&loc, "/");
  url_encode(&loc, t->key);
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<CompleteMultipartUploadResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "Location", loc.data ? (const char *)loc.data : "", 0);
  xml_elem(&x, "Bucket", t->bucket, 0);
  xml_elem(&x, "Key", t->key, 0);
  xml_elem(&x, "ETag", m.etag, 0);
  asd_buf_append_str(&x, "</CompleteMultipartUploadResult>");
  asd_buf_free(&loc);
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

static void abort_multipart_upload(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                                   ep_response *resp) {
  if (check_bucket(api, req, t, resp) != 0) return;
  ep_store_status st = ep_mpu_abort(api->mpu, t->bucket, t->key, t->upload_id);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  resp->status = 204;
}

static void owner_xml(asd_buf *x, const char *elem) {
  asd_buf_appendf(x, "<%s><ID>asdlocal</ID><DisplayName>asdlocal</DisplayName></%s>", elem, elem);
}

static void list_parts(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                       ep_response *resp) {
  if (check_bucket(api, req, t, resp) != 0) return;
  const char *mp = ep_request_query(req, "max-parts");
  const char *pm = ep_request_query(req, "part-number-marker");
  long long max_parts = mp ? parse_count(mp) : 1000, marker = pm && *pm ? parse_count(pm) : 0;
  if (max_parts < 0 || marker < 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "max-parts and part-number-marker must be integers");
    return;
  }
  if (max_parts > 1000) max_parts = 1000;
  ep_mpu_part *parts = NULL;
  size_t n = 0;
  ep_store_status st = ep_mpu_list_parts(api->mpu, t->bucket, t->key, t->upload_id, &parts, &n);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  asd_buf x;
  asd_buf_init(&x);
  asd_buf_appendf(&x, XML_DECL "<ListPartsResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "Bucket", t->bucket, 0);
  xml_elem(&x, "Key", t->key, 0);
  xml_elem(&x, "UploadId", t->upload_id, 0);
  owner_xml(&x, "Initiator");
  owner_xml(&x, "Owner");
  asd_buf_append_str(&x, "<StorageClass>STANDARD</StorageClass>");
  asd_buf_appendf(&x, "<PartNumberMarker>%lld</PartNumberMarker>", marker);
  asd_buf body;
  asd_buf_init(&body);
  long long shown = 0;
  int last = (int)marker, truncated = 0;
  for (size_t i = 0; i < n; i++) {
    if (parts[i].number <= marker) continue;
    if (shown >= max_parts) {
      truncated = 1;
      break;
    }
    char date[80];
    iso_date(parts[i].meta.mtime, date, sizeof date);
    asd_buf_appendf(&body, "<Part><PartNumber>%d</PartNumber>", parts[i].number);
    xml_elem(&body, "LastModified", date, 0);
    xml_elem(&body, "ETag", parts[i].meta.etag, 0);
    asd_buf_appendf(&body, "<Size>%llu</Size></Part>", (unsigned long long)parts[i].meta.size);
    last = parts[i].number;
    shown++;
  }
  free(parts);
  asd_buf_appendf(&x, "<NextPartNumberMarker>%d</NextPartNumberMarker><MaxParts>%lld</MaxParts>"
                      "<IsTruncated>%s</IsTruncated>", last, max_parts, truncated ? "true" : "false");
  if (body.len) asd_buf_append(&x, body.data, body.len);
  asd_buf_free(&body);
  asd_buf_append_str(&x, "</ListPartsResult>");
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

static void list_multipart_uploads(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                                   ep_response *resp) {
  const char *prefix = ep_request_query(req, "prefix");
  const char *enc = ep_request_query(req, "encoding-type");
  const char *mu = ep_request_query(req, "max-uploads");
  const char *km = ep_request_query(req, "key-marker");
  const char *um = ep_request_query(req, "upload-id-marker");
  if (enc && strcmp(enc, "url") != 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
    return;
  }
  int url = enc != NULL;
  long long max_uploads = mu ? parse_count(mu) : 1000;
  if (max_uploads < 0) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "max-uploads must be an integer");
    return;
  }
  if (max_uploads > 1000) max_uploads = 1000;
  ep_mpu_upload *ups = NULL;
  size_t n = 0;
  ep_store_status st = ep_mpu_list_uploads(api->mpu, t->bucket, prefix, &ups, &n);
  if (st != ASD_STORE_OK) {
    store_error(resp, req, st, t->bucket);
    return;
  }
  asd_buf x, body;
  asd_buf_init(&x);
  asd_buf_init(&body);
  asd_buf_appendf(&x, XML_DECL "<ListMultipartUploadsResult xmlns=\"%s\">", S3_XMLNS);
  xml_elem(&x, "Bucket", t->bucket, 0);
  xml_elem(&x, "KeyMarker", km ? km : "", url);
  xml_elem(&x, "UploadIdMarker", um ? um : "", 0);
  xml_elem(&x, "Prefix", prefix ? prefix : "", url);
  if (url) xml_elem(&x, "EncodingType", "url", 0);
  long long shown = 0;
  int truncated = 0;
  const ep_mpu_upload *last = NULL;
  for (size_t i = 0; i < n; i++) {
    /* Markers: keys after key-marker, or with the same key, ids after upload-id-marker
     * (ids sort by time here, not by value, so this is approximate, as documented). */
    if (km && *km) {
      int c = strcmp(ups[i].key, km);
      if (c < 0 || (c == 0 && (!um || !*um || strcmp(ups[i].upload_id, um) <= 0))) continue;
    }
    if (shown >= max_uploads) {
      truncated = 1;
      break;
    }
    char date[80];
    iso_date(ups[i].initiated, date, sizeof date);
    asd_buf_append_str(&body, "<Upload>");
    xml_elem(&body, "Key", ups[i].key, url);
    xml_elem(&body, "UploadId", ups[i].upload_id, 0);
    owner_xml(&body, "Initiator");
    owner_xml(&body, "Owner");
    asd_buf_append_str(&body, "<StorageClass>STANDARD</StorageClass>");
    xml_elem(&body, "Initiated", date, 0);
    asd_buf_append_str(&body, "</Upload>");
    last = &ups[i];
    shown++;
  }
  if (truncated && last) {
    xml_elem(&x, "NextKeyMarker", last->key, url);
    xml_elem(&x, "NextUploadIdMarker", last->upload_id, 0);
  }
  asd_buf_appendf(&x, "<MaxUploads>%lld</MaxUploads><IsTruncated>%s</IsTruncated>", max_uploads,
                  truncated ? "true" : "false");
  if (body.len) asd_buf_append(&x, body.data, body.len);
  asd_buf_free(&body);
  asd_buf_append_str(&x, "</ListMultipartUploadsResult>");
  ep_mpu_uploads_free(ups, n);
  set_xml_body(resp, 200, &x);
  asd_buf_free(&x);
}

/* The sink of a buffered aws-chunked body: into the writer *ctx. */
static int buffered_sink(void *ctx, const void *data, size_t len) {
  return ep_store_writer_write(*(ep_store_writer **)ctx, data, len);
}

void ep_s3_handle(ep_s3_api *api, const ep_request *req, const ep_s3_target *t,
                   ep_response *resp) {
  ep_store_status st;
  switch (t->op) {
    case ASD_S3_LIST_BUCKETS: list_buckets(api, req, resp); return;
    case ASD_S3_CREATE_BUCKET:
      st = ep_store_create_bucket(api->store, t->bucket);
      if (st != ASD_STORE_OK) {
        store_error(resp, req, st, t->bucket);
        return;
      }
      resp->status = 200;
      ep_response_set_header(resp, "Location", CPLSPrintf("/%s", t->bucket));
      return;
    case ASD_S3_HEAD_BUCKET:
      st = ep_store_head_bucket(api->store, t->bucket);
      if (st != ASD_STORE_OK) {
        store_error(resp, req, st, t->bucket);
        return;
      }
      resp->status = 200;
      {
        ep_s3_bucket_spec bs;
        ep_s3_buckets_get(api->buckets, t->bucket, &bs, NULL);
        ep_response_set_header(resp, "x-amz-bucket-region", api->buckets ? bs.region : api->region);
      }
      return;
    case ASD_S3_DELETE_BUCKET:
      st = ep_store_delete_bucket(api->store, t->bucket);
      if (st != ASD_STORE_OK) {
        store_error(resp, req, st, t->bucket);
        return;
      }
      resp->status = 204;
      return;
    case ASD_S3_GET_BUCKET_LOCATION: {
      st = ep_store_head_bucket(api->store, t->bucket);
      if (st != ASD_STORE_OK) {
        store_error(resp, req, st, t->bucket);
        return;
      }
      asd_buf x;
      asd_buf_init(&x);
      /* us-east-1 is reported as an empty LocationConstraint, as on S3. */
      ep_s3_bucket_spec bs;
      ep_s3_buckets_get(api->buckets, t->bucket, &bs, NULL);
      const char *where = api->buckets ? bs.region : api->region;
      asd_buf_appendf(&x, XML_DECL "<LocationConstraint xmlns=\"%s\">%s</LocationConstraint>", S3_XMLNS,
                      strcmp(where, "us-east-1") == 0 ? "" : where);
      set_xml_body(resp, 200, &x);
      asd_buf_free(&x);
      return;
    }
    case ASD_S3_LIST_OBJECTS: list_objects(api, req, t, resp, 0); return;
    case ASD_S3_LIST_OBJECTS_V2: list_objects(api, req, t, resp, 1); return;
    case ASD_S3_DELETE_OBJECTS: delete_objects(api, req, t, resp); return;
    case ASD_S3_GET_OBJECT: get_object(api, req, t, resp, 0); return;
    case ASD_S3_HEAD_OBJECT: get_object(api, req, t, resp, 1); return;
    case ASD_S3_DELETE_OBJECT:
      st = ep_store_delete(api->store, t->bucket, t->key);
      if (st != ASD_STORE_OK) {
        store_error(resp, req, st, t->bucket);
        return;
      }
      resp->status = 204;
      return;
    case ASD_S3_COPY_OBJECT: copy_object(api, req, t, resp); return;
    case ASD_S3_CREATE_MULTIPART_UPLOAD: create_multipart_upload(api, req, t, resp); return;
    case ASD_S3_UPLOAD_PART_COPY: upload_part_copy(api, req, t, resp); return;
    case ASD_S3_COMPLETE_MULTIPART_UPLOAD: complete_multipart_upload(api, req, t, resp); return;
    case ASD_S3_ABORT_MULTIPART_UPLOAD: abort_multipart_upload(api, req, t, resp); return;
    case ASD_S3_LIST_PARTS: list_parts(api, req, t, resp); return;
    case ASD_S3_LIST_MULTIPART_UPLOADS: list_multipart_uploads(api, req, t, resp); return;
    case ASD_S3_UPLOAD_PART:
    case ASD_S3_PUT_OBJECT: {
      /* Only reached when the body was buffered (server.c streams these
       * bodies, and verifies aws-chunked signatures with the request's seed;
       * here chunk signatures are parsed, not checked). */
      ep_store_writer *w = NULL;
      ep_chunked *dec = NULL;
      if (ep_s3_put_begin(api, req, t, NULL, buffered_sink, &w, &w, &dec, resp) != 0) return;
      int wrc = !req->body_len ? 0
                : dec      ? (ep_chunked_feed(dec, req->body, req->body_len), 0)
                           : ep_store_writer_write(w, req->body, req->body_len);
      if (wrc != 0) {
        ep_store_writer_abort(w);
        ep_s3_error(resp, req, 500, "InternalError", "Write failed");
      } else {
        ep_s3_put_finish(api, req, t, w, dec, resp);
      }
      ep_chunked_free(dec);
      return;
    }
    case ASD_S3_UNSUPPORTED: break;
  }
  ep_s3_error(resp, req, 501, "NotImplemented", "Not implemented by the local endpoint.");
}
