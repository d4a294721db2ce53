/*
 * s3.c: the S3 client.
 *
 * Every call is a thin shell over asd_aws_send(): build the path (path-style
 * "/bucket/key" for custom endpoints and for bucket names with dots, which
 * would break TLS host matching in virtual-host style; "bucket." host prefix
 * otherwise), percent-encode the key once with the SigV4 rules (so the wire
 * path is its own canonical form and the signature cannot disagree with what
 * is sent), and interpret the reply.
 *
 * Keys are arbitrary UTF-8 and may contain spaces, '+', '~', '%' or XML
 * metacharacters: the path encoding handles the first group, CPLEscapeString
 * the DeleteObjects body, and list replies are parsed with CPLParseXMLString
 * which decodes entities.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cpl_error.h>
#include <cpl_minixml.h>
#include <cpl_string.h>

#include "asyncdetect/asd_s3.h"
#include "aws_internal.h"
#include "common/asd_crc.h"

/* -------------------------------------------------------------------- URIs */

int asd_s3_bucket_name_valid(const char *b) {
  size_t n = b ? strlen(b) : 0;
  if (n < 3 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b[i];
    if (!(islower(c) || isdigit(c) || c == '.' || c == '-')) return 0;
  }
  if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1])) return 0;
  return 1;
}

/* Legacy buckets may hold upper case or '_': accept those when parsing URIs. */
static int bucket_name_acceptable(const char *b, size_t n) {
  if (n < 1 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b[i];
    if (!(isalnum(c) || c == '.' || c == '-' || c == '_')) return 0;
  }
  return 1;
}

void asd_s3_uri_free(asd_s3_uri *u) {
  if (!u) return;
  free(u->key);
  u->key = NULL;
  u->bucket[0] = '\0';
}

static char *pct_decode_str(const char *s) {
  size_t n = strlen(s);
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
      char h[3] = {s[i + 1], s[i + 2], 0};
      o[j++] = (char)strtol(h, NULL, 16);
      i += 2;
    } else {
      o[j++] = s[i];
    }
  }
  o[j] = '\0';
  return o;
}

int asd_s3_uri_parse(const char *uri, int allow_empty_key, asd_s3_uri *out, asd_aws_error *err) {
  memset(out, 0, sizeof(*out));
  if (!uri || !*uri) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "empty S3 URI");
    return -1;
  }
  const char *bucket = NULL, *key = NULL;
  size_t bl = 0;
  int encoded = 0;
  if (strncmp(uri, "s3://", 5) == 0) {
    bucket = uri + 5;
    const char *slash = strchr(bucket, '/');
    bl = slash ? (size_t)(slash - bucket) : strlen(bucket);
    key = slash ? slash + 1 : "";
  } else if (strncasecmp(uri, "https://", 8) == 0 || strncasecmp(uri, "http://", 7) == 0) {
    /* https://bucket.s3[.region].amazonaws.com/key or https://s3[.region].amazonaws.com/bucket/key */
    const char *h = strstr(uri, "://") + 3;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *s3 = NULL;
    for (const char *p = h; p + 3 <= h + hl; p++)
      if ((p == h || p[-1] == '.') && strncmp(p, "s3.", 3) == 0) {
        s3 = p;
        break;
      }
    if (!s3 && !(hl >= 14 && strncmp(h + hl - 14, ".amazonaws.com", 14) == 0)) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "'%.200s' is not an S3 URI (expected s3://bucket/key)", uri);
      return -1;
    }
    encoded = 1;
    if (s3 && s3 > h) {
      bucket = h;
      bl = (size_t)(s3 - h - 1);
      key = slash ? slash + 1 : "";
    } else {
      bucket = slash ? slash + 1 : "";
      const char *s2 = strchr(bucket, '/');
      bl = s2 ? (size_t)(s2 - bucket) : strlen(bucket);
      key = s2 ? s2 + 1 : "";
    }
  } else {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "'%.200s' is not an S3 URI (expected s3://bucket/key)", uri);
    return -1;
  }
  if (bl == 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 URI '%.200s' has no bucket name", uri);
    return -1;
  }
  if (!bucket_name_acceptable(bucket, bl)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 URI '%.200s' has an invalid bucket name", uri);
    return -1;
  }
  if (!*key && !allow_empty_key) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 URI '%.200s' has no object key (expected s3://bucket/key)", uri);
    return -1;
  }
  memcpy(out->bucket, bucket, bl);
  out->bucket[bl] = '\0';
  out->key = encoded ? pct_decode_str(key) : strdup(key);
  if (!out->key) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  if (strlen(out->key) > 1024) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 URI '%.100s...' has a key longer than 1024 bytes", uri);
    asd_s3_uri_free(out);
    return -1;
  }
  return 0;
}

char *asd_s3_uri_format(const char *bucket, const char *key) {
  size_t n = strlen(bucket) + strlen(key ? key : "") + 7;
  char *s = malloc(n);
  if (s) snprintf(s, n, "s3://%s/%s", bucket, key ? key : "");
  return s;
}

char *asd_s3_encode_key(const char *key) {
  asd_buf b;
  asd_buf_init(&b);
  if (asd_sigv4_uri_encode(&b, key, strlen(key), 1) != 0 || asd_buf_append(&b, "", 0) != 0) {
    asd_buf_free(&b);
    return NULL;
  }
  return (char *)asd_buf_take(&b, NULL);
}

/* ------------------------------------------------------------ request help */

typedef struct s3_target {
  char *path;
  char host_prefix[80];
  int virtual_host;
} s3_target;

static int target_make(asd_aws_context *ctx, const char *bucket, const char *key, s3_target *t,
                       asd_aws_error *err) {
  memset(t, 0, sizeof(*t));
  if (!bucket || !*bucket || !bucket_name_acceptable(bucket, strlen(bucket))) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid S3 bucket name '%.70s'", bucket ? bucket : "");
    return -1;
  }
  if (key && strlen(key) > 1024) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 key longer than 1024 bytes");
    return -1;
  }
  const asd_aws_endpoint *ep = asd_aws_context_endpoint(ctx, ASD_AWS_S3);
  t->virtual_host = !ep->path_style && !strchr(bucket, '.') && asd_s3_bucket_name_valid(bucket);
  asd_buf b;
  asd_buf_init(&b);
  int rc = 0;
  if (t->virtual_host) {
    snprintf(t->host_prefix, sizeof(t->host_prefix), "%s.", bucket);
    rc |= asd_buf_append(&b, "/", 1);
  } else {
    rc |= asd_buf_append(&b, "/", 1);
    rc |= asd_sigv4_uri_encode(&b, bucket, strlen(bucket), 0);
    if (key) rc |= asd_buf_append(&b, "/", 1);
  }
  if (key) rc |= asd_sigv4_uri_encode(&b, key, strlen(key), 1);
  rc |= asd_buf_append(&b, "", 0);
  if (rc) {
    asd_buf_free(&b);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  t->path = (char *)asd_buf_take(&b, NULL);
  return 0;
}

static void fill_info(const asd_http_response *r, asd_s3_object_info *info) {
  if (!info) return;
  memset(info, 0, sizeof(*info));
  info->size = -1;
  const char *v;
  if ((v = asd_http_response_header(r, "Content-Length"))) info->size = strtoll(v, NULL, 10);
  if ((v = asd_http_response_header(r, "ETag"))) asd_aws_copy_line(info->etag, sizeof(info->etag), v, strlen(v));
  if ((v = asd_http_response_header(r, "Content-Type")))
    asd_aws_copy_line(info->content_type, sizeof(info->content_type), v, strlen(v));
  if ((v = asd_http_response_header(r, "Last-Modified")))
    asd_aws_copy_line(info->last_modified, sizeof(info->last_modified), v, strlen(v));
  snprintf(info->request_id, sizeof(info->request_id), "%s", r->request_id);
}

static void describe_failure(asd_aws_error *err, const char *op, const char *bucket, const char *key) {
  char m[sizeof(err->message)];
  snprintf(m, sizeof(m), "%s", err->message);
  if (err->kind == ASD_AWS_ERR_NOT_FOUND && !err->code[0])
    asd_aws_error_set(err, err->kind, "S3 %s s3://%s/%s: not found", op, bucket, key ? key : "");
  else
    asd_aws_error_set(err, err->kind, "S3 %s s3://%s/%s failed: %s", op, bucket, key ? key : "", m);
}

/* ----------------------------------------------------------- region, policy */

/*
 * Bucket regions.  S3 serves a bucket from its own region; a request signed
 * for another gets 301 PermanentRedirect (or 400 AuthorizationHeaderMalformed
 * when the host was right but the signature's scope was not; a HEAD gets the
 * status alone), naming the region in x-amz-bucket-region or <Region>.  As
 * the SDKs do, the call is re-signed for that region (and, on AWS, sent to
 * its host) and tried once more, and the region is remembered for the
 * bucket, so later calls go right the first time.
 */
static int region_name_ok(const char *r, size_t n) {
  if (n < 2 || n > 31) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)r[i]) || isdigit((unsigned char)r[i]) || r[i] == '-')) return 0;
  return 1;
}

static int cached_region(asd_aws_context *ctx, const char *bucket, char out[32]) {
  int found = 0;
  pthread_mutex_lock(&ctx->lock);
  for (size_t i = 0; i < ctx->n_bucket_regions && !found; i++)
    if (strcmp(ctx->bucket_regions[i].bucket, bucket) == 0) {
      snprintf(out, 32, "%s", ctx->bucket_regions[i].region);
      found = 1;
    }
  pthread_mutex_unlock(&ctx->lock);
  return found;
}

static void remember_region(asd_aws_context *ctx, const char *bucket, const char *region) {
  pthread_mutex_lock(&ctx->lock);
  size_t i = 0;
  while (i < ctx->n_bucket_regions && strcmp(ctx->bucket_regions[i].bucket, bucket) != 0) i++;
  if (i == ctx->n_bucket_regions) {
    asd_bucket_region *n = realloc(ctx->bucket_regions, (i + 1) * sizeof(*n));
    if (n) {
      ctx->bucket_regions = n;
      ctx->n_bucket_regions++;
      snprintf(n[i].bucket, sizeof(n[i].bucket), "%s", bucket);
    }
  }
  if (i < ctx->n_bucket_regions) snprintf(ctx->bucket_regions[i].region, sizeof(ctx->bucket_regions[i].region), "%s", region);
  pthread_mutex_unlock(&ctx->lock);
}

/* The region a failed reply redirects to ("" when it is no redirect). */
static void redirect_region(const asd_http_response *resp, const asd_aws_error *err, char out[32]) {
  out[0] = '\0';
  int redirect = resp->status == 301 || resp->status == 307 ||
                 (resp->status == 400 && (strcmp(err->code, "AuthorizationHeaderMalformed") == 0 ||
                                          strcmp(err->code, "AuthorizationQueryParametersError") == 0 ||
                                          !resp->body.len));
  if (!redirect) return;
  const char *r = asd_http_response_header(resp, "x-amz-bucket-region");
  size_t n = r ? strcspn(r, " \r\n") : 0;
  if (!r && resp->body.data) {
    const char *body = (const char *)resp->body.data;
    const char *tag = strstr(body, "<Region>");
    if (tag) {
      r = tag + 8;
      n = strcspn(r, "<");
    }
  }
  if (r && region_name_ok(r, n)) {
    memcpy(out, r, n);
    out[n] = '\0';
  }
}

/* Sends an S3 request for a bucket, following one region redirect. */
static int s3_send(asd_aws_context *ctx, const char *bucket, asd_http_request *req, asd_http_response *resp,
                   asd_aws_error *err) {
  char region[32];
  req->region = cached_region(ctx, bucket, region) ? region : NULL;
  int rc = asd_aws_send(ctx, req, resp, err);
  char moved[32];
  if (rc == 0) return 0;
  redirect_region(resp, err, moved);
  const char *used = req->region ? req->region : ctx->endpoints[ASD_AWS_S3].signing_region;
  if (!moved[0] || strcmp(moved, used) == 0) return rc;
  CPLDebug("ASD_AWS", "S3 bucket %s is in %s, not %s: signing for %s from now on", bucket, moved, used, moved);
  remember_region(ctx, bucket, moved);
  req->region = moved;
  rc = asd_aws_send(ctx, req, resp, err);
  req->region = NULL;
  return rc;
}

/*
 * Headers enterprise bucket policies ask for (asd_aws_config): the expected
 * bucket owner on every call, the server-side encryption on uploads.  They
 * are added to the caller's list in out (room for n_in + 4 entries).
 */
static const char **policy_headers(const asd_aws_context *ctx, const char *const *in, int upload,
                                   char lines[3][320]) {
  size_t n_in = 0;
  for (const char *const *p = in; p && *p; p++) n_in++;
  const char **out = calloc(n_in + 4, sizeof(*out));
  if (!out) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n_in; i++) out[k++] = in[i];
  const asd_aws_config *c = &ctx->cfg;
  if (c->s3_expected_bucket_owner) {
    snprintf(lines[0], 320, "x-amz-expected-bucket-owner: %s", c->s3_expected_bucket_owner);
    out[k++] = lines[0];
  }
  if (upload && c->s3_sse) {
    snprintf(lines[1], 320, "x-amz-server-side-encryption: %s", c->s3_sse);
    out[k++] = lines[1];
    if (c->s3_sse_kms_key_id) {
      snprintf(lines[2], 320, "x-amz-server-side-encryption-aws-kms-key-id: %.250s", c->s3_sse_kms_key_id);
      out[k++] = lines[2];
    }
  }
  return out;
}

/* The policy headers around one s3_send. */
static int s3_send_policy(asd_aws_context *ctx, const char *bucket, int upload, asd_http_request *req,
                          asd_http_response *resp, asd_aws_error *err) {
  char lines[3][320];
  const char *const *orig = req->headers;
  const char **all = policy_headers(ctx, orig, upload, lines);
  if (!all) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  req->headers = all;
  int rc = s3_send(ctx, bucket, req, resp, err);
  req->headers = orig;
  free(all);
  return rc;
}

/* ----------------------------------------------------------------- objects */

/*
 * The single-object operations differ only in their method, headers, body
 * and what they take from the reply.  object_call does the rest once: the
 * key check, addressing (path- or virtual-hosted), sending with the
 * transport's retries, and naming the object in the error.  The caller fills
 * method/headers/body in req, reads what it needs from resp and always frees
 * resp.  A missing key counts as success when missing_ok is set, because
 * S3's DeleteObject itself answers 204 for it.
 */
static int object_call(asd_aws_context *ctx, const char *op, const char *bucket, const char *key,
                       int missing_ok, asd_http_request *req, asd_http_response *resp,
                       asd_aws_error *err) {
  asd_aws_error_clear(err);
  asd_http_response_init(resp);
  if (!key || !*key) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "S3 %s needs a non-empty key", op);
    return -1;
  }
  s3_target t;
  if (target_make(ctx, bucket, key, &t, err) != 0) return -1;
  req->service = ASD_AWS_S3;
  req->path = t.path;
  req->host_prefix = t.virtual_host ? t.host_prefix : NULL;
  int rc = s3_send_policy(ctx, bucket, strcmp(req->method, "PUT") == 0, req, resp, err);
  req->path = NULL;
  req->host_prefix = NULL;
  free(t.path);
  if (rc != 0 && missing_ok && err->kind == ASD_AWS_ERR_NOT_FOUND && strcmp(err->code, "NoSuchKey") == 0) {
    asd_aws_error_clear(err);
    return 0;
  }
  if (rc != 0) describe_failure(err, op, bucket, key);
  return rc;
}


/*
 * Integrity of a PUT body.  Over HTTP the signature covers the body's
 * SHA-256 (x-amz-content-sha256), so S3 rejects a body changed on the way.
 * Over HTTPS the body is not hashed for the signature (TLS protects it in
 * transit, and the SHA-256 pass was the dearest part of an upload), and,
 * as the current SDKs do, a CRC-32C (x-amz-checksum-crc32c, hardware
 * accelerated: asd_crc.h) lets S3 check it end to end: BadDigest on a
 * mismatch.  No Content-MD5 either way: a third pass over the same bytes
 * would buy nothing.  Fills the header lines (or leaves them "").
 */
static void body_checksum(const asd_aws_context *ctx, const void *data, size_t len, char line[64],
                          char algo[48]) {
  line[0] = algo[0] = '\0';
  if (!asd_aws_s3_body_unsigned(ctx)) return;
  char b64[9];
  asd_crc_base64(asd_crc32c(0, data, len), b64);
  snprintf(line, 64, "x-amz-checksum-crc32c: %s", b64);
  snprintf(algo, 48, "x-amz-sdk-checksum-algorithm: CRC32C");
}

int asd_s3_put_object(asd_aws_context *ctx, const char *bucket, const char *key, const void *data,
                      size_t len, const char *content_type, asd_s3_object_info *info, asd_aws_error *err) {
  char ct[300];
  snprintf(ct, sizeof(ct), "Content-Type: %.250s", content_type && *content_type ? content_type : "application/octet-stream");
  char ck[64], algo[48];
  body_checksum(ctx, data ? data : "", len, ck, algo);
  const char *headers[] = {ct, ck[0] ? ck : NULL, algo, NULL};
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "PUT";
  req.headers = headers;
  req.body = data ? data : "";
  req.body_len = len;
  req.max_response_bytes = 1 << 20;
  asd_http_response resp;
  int rc = object_call(ctx, "PutObject", bucket, key, 0, &req, &resp, err);
  if (rc == 0) {
    fill_info(&resp, info);
    if (info) info->size = (long long)len;
  }
  asd_http_response_free(&resp);
  return rc;
}

int asd_s3_get_object(asd_aws_context *ctx, const char *bucket, const char *key, size_t max_bytes, asd_buf *out,
                      asd_s3_object_info *info, asd_aws_error *err) {
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "GET";
  req.max_response_bytes = max_bytes;
  asd_http_response resp;
  int rc = object_call(ctx, "GetObject", bucket, key, 0, &req, &resp, err);
  if (rc == 0) {
    fill_info(&resp, info);
    if (asd_buf_append(out, resp.body.data ? resp.body.data : (const unsigned char *)"", resp.body.len) != 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_TOO_LARGE, "out of memory holding s3://%s/%s", bucket, key);
      rc = -1;
    }
  }
  asd_http_response_free(&resp);
  return rc;
}

int asd_s3_head_object(asd_aws_context *ctx, const char *bucket, const char *key, asd_s3_object_info *info,
                       asd_aws_error *err) {
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "HEAD";
  asd_http_response resp;
  int rc = object_call(ctx, "HeadObject", bucket, key, 0, &req, &resp, err);
  if (rc == 0) fill_info(&resp, info);
  asd_http_response_free(&resp);
  return rc;
}

int asd_s3_delete_object(asd_aws_context *ctx, const char *bucket, const char *key, asd_aws_error *err) {
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "DELETE";
  asd_http_response resp;
  int rc = object_call(ctx, "DeleteObject", bucket, key, 1, &req, &resp, err);
  asd_http_response_free(&resp);
  return rc;
}

void asd_s3_delete_result_free(asd_s3_delete_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_errors; i++) free(r->errors[i].key);
  free(r->errors);
  memset(r, 0, sizeof(*r));
}

static int add_delete_error(asd_s3_delete_result *r, const char *key, const char *code, const char *msg) {
  asd_s3_delete_error *n = realloc(r->errors, (r->n_errors + 1) * sizeof(*n));
  if (!n) return -1;
  r->errors = n;
  asd_s3_delete_error *e = &n[r->n_errors];
  memset(e, 0, sizeof(*e));
  e->key = strdup(key ? key : "");
  snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
  asd_aws_copy_line(e->message, sizeof(e->message), msg ? msg : "", msg ? strlen(msg) : 0);
  r->n_errors++;
  return e->key ? 0 : -1;
}

int asd_s3_delete_objects(asd_aws_context *ctx, const char *bucket, const char *const *keys, size_t n_keys,
                          asd_s3_delete_result *result, asd_aws_error *err) {
  asd_aws_error_clear(err);
  memset(result, 0, sizeof(*result));
  s3_target t;
  if (target_make(ctx, bucket, NULL, &t, err) != 0) return -1;
  int overall = 0;
  for (size_t start = 0; start < n_keys; start += 1000) {
    size_t end = start + 1000 < n_keys ? start + 1000 : n_keys;
    asd_buf body;
    asd_buf_init(&body);
    asd_buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
    for (size_t i = start; i < end; i++) {
      char *esc = CPLEscapeString(keys[i], -1, CPLES_XML);
      asd_buf_appendf(&body, "<Object><Key>%s</Key></Object>", esc);
      CPLFree(esc);
    }
    asd_buf_append_str(&body, "</Delete>");
    /* S3 requires an integrity header on DeleteObjects: Content-MD5 or,
     * as the SDKs now send, an x-amz-checksum-* header (cheaper). */
    char ck[9], ckh[64];
    asd_crc_base64(asd_crc32c(0, body.data, body.len), ck);
    snprintf(ckh, sizeof(ckh), "x-amz-checksum-crc32c: %s", ck);
    const char *headers[] = {ckh, "x-amz-sdk-checksum-algorithm: CRC32C", "Content-Type: application/xml", NULL};
    asd_http_request req;
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.service = ASD_AWS_S3;
    req.path = t.path;
    req.query = "delete";
    req.host_prefix = t.virtual_host ? t.host_prefix : NULL;
    req.headers = headers;
    req.body = body.data;
    req.body_len = body.len;
    req.max_response_bytes = 16u << 20;
    asd_http_response resp;
    asd_http_response_init(&resp);
    asd_aws_error berr;
    int rc = s3_send_policy(ctx, bucket, 0, &req, &resp, &berr);
    size_t batch_errors = 0;
    if (rc == 0) {
      CPLPushErrorHandler(CPLQuietErrorHandler);
      CPLXMLNode *root = resp.body.len ? CPLParseXMLString((const char *)resp.body.data) : NULL;
      CPLPopErrorHandler();
      CPLErrorReset();
      CPLXMLNode *dr = root ? CPLSearchXMLNode(root, "=DeleteResult") : NULL;
      if (resp.body.len && !dr) {
        rc = -1;
        asd_aws_error_set(&berr, ASD_AWS_ERR_PARSE, "S3 DeleteObjects on bucket %s: reply is not a DeleteResult",
                          bucket);
      }
      size_t deleted = 0;
      for (CPLXMLNode *c = dr ? dr->psChild : NULL; c; c = c->psNext) {
        if (c->eType != CXT_Element) continue;
        if (strcmp(c->pszValue, "Deleted") == 0)
          deleted++;
        else if (strcmp(c->pszValue, "Error") == 0) {
          add_delete_error(result, CPLGetXMLValue(c, "Key", ""), CPLGetXMLValue(c, "Code", ""),
                           CPLGetXMLValue(c, "Message", ""));
          batch_errors++;
        }
      }
      if (rc == 0) result->deleted += (end - start) - batch_errors;
      (void)deleted;
      if (root) CPLDestroyXMLNode(root);
    }
    if (rc != 0) {
      /* The whole batch failed: report each of its keys. */
      for (size_t i = start; i < end; i++)
        add_delete_error(result, keys[i], berr.code[0] ? berr.code : asd_aws_error_kind_name(berr.kind), berr.message);
      if (!overall) {
        *err = berr;
        char m[sizeof(err->message)];
        snprintf(m, sizeof(m), "%s", berr.message);
        asd_aws_error_set(err, berr.kind, "S3 DeleteObjects on bucket %s failed: %s", bucket, m);
      }
      overall = -1;
    }
    asd_http_response_free(&resp);
    asd_buf_free(&body);
    if (asd_aws_context_cancelled(ctx)) break;
  }
  free(t.path);
  return overall;
}

void asd_s3_list_result_free(asd_s3_list_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_entries; i++) free(r->entries[i].key);
  free(r->entries);
  CSLDestroy(r->common_prefixes);
  memset(r, 0, sizeof(*r));
}

static int add_query(asd_buf *q, const char *name, const char *value) {
  int rc = 0;
  if (q->len) rc |= asd_buf_append(q, "&", 1);
  rc |= asd_buf_append_str(q, name);
  rc |= asd_buf_append(q, "=", 1);
  rc |= asd_sigv4_uri_encode(q, value, strlen(value), 0);
  return rc;
}

int asd_s3_list_objects_v2(asd_aws_context *ctx, const char *bucket, const char *prefix, const char *delimiter,
                           int page_size, size_t max_keys_total, asd_s3_list_result *result, asd_aws_error *err) {
  asd_aws_error_clear(err);
  memset(result, 0, sizeof(*result));
  s3_target t;
  if (target_make(ctx, bucket, NULL, &t, err) != 0) return -1;
  if (page_size <= 0 || page_size > 1000) page_size = 1000;
  char *token = NULL;
  int rc = 0;
  size_t cap = 0;
  for (;;) {
    asd_buf q;
    asd_buf_init(&q);
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", page_size);
    int qrc = add_query(&q, "list-type", "2");
    if (token) qrc |= add_query(&q, "continuation-token", token);
    if (delimiter && *delimiter) qrc |= add_query(&q, "delimiter", delimiter);
    qrc |= add_query(&q, "max-keys", ps);
    if (prefix && *prefix) qrc |= add_query(&q, "prefix", prefix);
    qrc |= asd_buf_append(&q, "", 0);
    if (qrc) {
      asd_buf_free(&q);
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
      rc = -1;
      break;
    }
    asd_http_request req;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.service = ASD_AWS_S3;
    req.path = t.path;
    req.query = (const char *)q.data;
    req.host_prefix = t.virtual_host ? t.host_prefix : NULL;
    req.max_response_bytes = 32u << 20;
    asd_http_response resp;
    asd_http_response_init(&resp);
    rc = s3_send_policy(ctx, bucket, 0, &req, &resp, err);
    asd_buf_free(&q);
    result->pages++;
    /* Kept until the reply is read: a server answering with the token it
       was just sent would be followed forever (found by fuzz_s3_client). */
    char *sent = token;
    token = NULL;
    if (rc != 0) {
      free(sent);
      describe_failure(err, "ListObjectsV2", bucket, prefix);
      asd_http_response_free(&resp);
      break;
    }
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLXMLNode *root = resp.body.len ? CPLParseXMLString((const char *)resp.body.data) : NULL;
    CPLPopErrorHandler();
    CPLErrorReset();
    CPLXMLNode *lr = root ? CPLSearchXMLNode(root, "=ListBucketResult") : NULL;
    asd_http_response_free(&resp);
    if (!lr) {
      if (root) CPLDestroyXMLNode(root);
      free(sent);
      asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "S3 ListObjectsV2 on bucket %s: reply is not a ListBucketResult",
                        bucket);
      rc = -1;
      break;
    }
    int stop = 0;
    for (CPLXMLNode *c = lr->psChild; c; c = c->psNext) {
      if (c->eType != CXT_Element) continue;
      if (strcmp(c->pszValue, "Contents") == 0) {
        if (max_keys_total && result->n_entries >= max_keys_total) {
          stop = 1;
          break;
        }
        if (result->n_entries == cap) {
          size_t nc = cap ? cap * 2 : 64;
          asd_s3_list_entry *ne = realloc(result->entries, nc * sizeof(*ne));
          if (!ne) {
            rc = -1;
            break;
          }
          result->entries = ne;
          cap = nc;
        }
        asd_s3_list_entry *e = &result->entries[result->n_entries];
        memset(e, 0, sizeof(*e));
        e->key = strdup(CPLGetXMLValue(c, "Key", ""));
        e->size = strtoll(CPLGetXMLValue(c, "Size", "-1"), NULL, 10);
        const char *et = CPLGetXMLValue(c, "ETag", "");
        asd_aws_copy_line(e->etag, sizeof(e->etag), et, strlen(et));
        const char *lm = CPLGetXMLValue(c, "LastModified", "");
        asd_aws_copy_line(e->last_modified, sizeof(e->last_modified), lm, strlen(lm));
        if (!e->key) {
          rc = -1;
          break;
        }
        result->n_entries++;
      } else if (strcmp(c->pszValue, "CommonPrefixes") == 0) {
        result->common_prefixes = CSLAddString(result->common_prefixes, CPLGetXMLValue(c, "Prefix", ""));
      }
    }
    const char *trunc = CPLGetXMLValue(lr, "IsTruncated", "false");
    const char *next = CPLGetXMLValue(lr, "NextContinuationToken", NULL);
    if (!stop && rc == 0 && strcasecmp(trunc, "true") == 0) {
      if (!next || !*next) {
        asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                          "S3 ListObjectsV2 on bucket %s: truncated reply without NextContinuationToken", bucket);
        rc = -1;
      } else if (sent && strcmp(sent, next) == 0) {
        asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                          "S3 ListObjectsV2 on bucket %s: the server returned the same continuation token twice",
                          bucket);
        rc = -1;
      } else {
        token = strdup(next);
      }
    }
    free(sent);
    CPLDestroyXMLNode(root);
    if (rc != 0) {
      if (!err->kind) asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
      break;
    }
    if (!token || stop) break;
    if (max_keys_total && result->n_entries >= max_keys_total) break;
  }
  free(token);
  free(t.path);
  return rc;
}

int asd_s3_head_bucket(asd_aws_context *ctx, const char *bucket, asd_aws_error *err) {
  asd_aws_error_clear(err);
  s3_target t;
  if (target_make(ctx, bucket, NULL, &t, err) != 0) return -1;
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "HEAD";
  req.service = ASD_AWS_S3;
  req.path = t.path;
  req.host_prefix = t.virtual_host ? t.host_prefix : NULL;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = s3_send_policy(ctx, bucket, 0, &req, &resp, err);
  if (rc != 0) {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    if (err->kind == ASD_AWS_ERR_NOT_FOUND)
      asd_aws_error_set(err, err->kind, "S3 bucket '%s' does not exist", bucket);
    else if (err->kind == ASD_AWS_ERR_ACCESS_DENIED)
      asd_aws_error_set(err, err->kind, "S3 bucket '%s': access denied (HeadBucket returned 403)", bucket);
    else
      asd_aws_error_set(err, err->kind, "S3 HeadBucket %s failed: %s", bucket, m);
  }
  asd_http_response_free(&resp);
  free(t.path);
  return rc;
}
