/*
 * s3_buckets.c: bucket settings (region, owner, required encryption) and
 * bucket addressing from the Host header; see s3_buckets.h for the S3
 * behaviours they drive.
 *
 * Regions.  S3 serves a bucket from its region only.  A client that signs
 * for another region reaches another region's front end, which answers 301
 * PermanentRedirect with x-amz-bucket-region (HEAD: the same status and
 * header, no body), or, when the Host already names the bucket's region
 * (the client picked the right host but signed for the wrong region), 400
 * AuthorizationHeaderMalformed with <Region>.  The SDKs read the region
 * from either, re-sign and retry once.  The local endpoint serves every
 * region on one port, so only buckets placed with -bucket NAME@REGION are
 * held to this; other buckets accept any signing region, as before.
 * GetBucketLocation and CreateBucket are answered whatever the region, as
 * S3's us-east-1 does.
 *
 * Virtual-hosted addressing.  The SDKs put a DNS-compatible bucket name in
 * the host (BUCKET.s3.REGION.amazonaws.com); a local deployment does the
 * same under its own name (-domain NAME: BUCKET.NAME).  The Host header is
 * parsed from the right, because bucket names may hold dots and even "s3"
 * labels; a plain IP address or an unknown name means path style.
 *
 * Encryption.  Since 2023 S3 encrypts every object (SSE-S3, AES256) unless
 * told otherwise, and says so in x-amz-server-side-encryption on PUT, GET
 * and HEAD; SSE-KMS objects also carry the key's ARN.  The values travel as
 * object metadata lines whose names start with '=', a character no HTTP
 * header name (hence no x-amz-meta-* name) can hold, so they never show as
 * user metadata and survive restarts with the object.
 */
#include "s3_buckets.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpl_string.h"

struct ep_s3_buckets {
  ep_s3_bucket_spec *items;
  size_t n;
  char default_region[32];
};

/* ------------------------------------------------------------- the table */

static int region_ok(const char *r) {
  size_t n = strlen(r);
  if (n < 2 || n > 31) return 0;
  for (const char *p = r; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-')) return 0;
  return 1;
}

static int account_ok(const char *a) {
  if (strlen(a) != 12) return 0;
  for (const char *p = a; *p; p++)
    if (!isdigit((unsigned char)*p)) return 0;
  return 1;
}

static int sse_value_ok(const char *v) {
  return strcmp(v, "AES256") == 0 || strcmp(v, "aws:kms") == 0 || strcmp(v, "aws:kms:dsse") == 0;
}

/* One ",name=value" option of a bucket spec. */
static int spec_option(const char *opt, ep_s3_bucket_spec *out, char *err, size_t err_len) {
  const char *eq = strchr(opt, '=');
  if (!eq) {
    snprintf(err, err_len, "'%s' is not name=value (owner=ACCOUNT or require-sse=AES256|aws:kms)", opt);
    return -1;
  }
  const char *v = eq + 1;
  if (strncmp(opt, "owner", (size_t)(eq - opt)) == 0 && eq - opt == 5) {
    if (!account_ok(v)) {
      snprintf(err, err_len, "owner=%s is not a 12-digit AWS account id", v);
      return -1;
    }
    snprintf(out->owner, sizeof out->owner, "%s", v);
  } else if (strncmp(opt, "require-sse", (size_t)(eq - opt)) == 0 && eq - opt == 11) {
    if (!sse_value_ok(v)) {
      snprintf(err, err_len, "require-sse=%s: expected AES256, aws:kms or aws:kms:dsse", v);
      return -1;
    }
    snprintf(out->require_sse, sizeof out->require_sse, "%s", v);
  } else {
    snprintf(err, err_len, "unknown bucket option '%.*s' (owner, require-sse)", (int)(eq - opt), opt);
    return -1;
  }
  return 0;
}

int ep_s3_bucket_spec_parse(const char *spec, ep_s3_bucket_spec *out, char *err, size_t err_len) {
  memset(out, 0, sizeof *out);
  snprintf(out->owner, sizeof out->owner, "%s", ASD_S3_DEFAULT_OWNER);
  char **parts = CSLTokenizeString2(spec ? spec : "", ",", CSLT_ALLOWEMPTYTOKENS);
  int rc = -1;
  if (!parts || !parts[0] || !parts[0][0]) {
    snprintf(err, err_len, "empty bucket name");
    goto done;
  }
  char *at = strchr(parts[0], '@');
  if (at) {
    *at = '\0';
    if (!region_ok(at + 1)) {
      snprintf(err, err_len, "'%s' is not a region name (like eu-west-1)", at + 1);
      goto done;
    }
    snprintf(out->region, sizeof out->region, "%s", at + 1);
  }
  if (strlen(parts[0]) >= sizeof out->name) {
    snprintf(err, err_len, "bucket name longer than 63 characters");
    goto done;
  }
  snprintf(out->name, sizeof out->name, "%s", parts[0]);
  for (int i = 1; parts[i]; i++)
    if (spec_option(parts[i], out, err, err_len) != 0) goto done;
  rc = 0;
done:
  CSLDestroy(parts);
  return rc;
}

ep_s3_buckets *ep_s3_buckets_new(const char *default_region) {
  ep_s3_buckets *b = calloc(1, sizeof *b);
  if (b) snprintf(b->default_region, sizeof b->default_region, "%s", default_region ? default_region : "us-east-1");
  return b;
}

void ep_s3_buckets_set_default_region(ep_s3_buckets *b, const char *region) {
  if (b && region) snprintf(b->default_region, sizeof b->default_region, "%s", region);
}

void ep_s3_buckets_free(ep_s3_buckets *b) {
  if (!b) return;
  free(b->items);
  free(b);
}

int ep_s3_buckets_add(ep_s3_buckets *b, const ep_s3_bucket_spec *spec) {
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->items[i].name, spec->name) == 0) {
      b->items[i] = *spec;
      return 0;
    }
  ep_s3_bucket_spec *n = realloc(b->items, (b->n + 1) * sizeof *n);
  if (!n) return -1;
  b->items = n;
  b->items[b->n++] = *spec;
  return 0;
}

void ep_s3_buckets_get(const ep_s3_buckets *b, const char *name, ep_s3_bucket_spec *out, int *placed) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", name ? name : "");
  snprintf(out->owner, sizeof out->owner, "%s", ASD_S3_DEFAULT_OWNER);
  snprintf(out->region, sizeof out->region, "%s", b ? b->default_region : "us-east-1");
  if (placed) *placed = 0;
  for (size_t i = 0; b && name && i < b->n; i++) {
    if (strcmp(b->items[i].name, name) != 0) continue;
    *out = b->items[i];
    if (placed) *placed = out->region[0] != '\0';
    if (!out->region[0]) snprintf(out->region, sizeof out->region, "%s", b->default_region);
    return;
  }
}

/* ------------------------------------------------------------ addressing */

/* The S3 service suffix of an AWS host name, parsed from the right.  host
 * without ".amazonaws.com" is given as rest (n bytes).  Returns the length of
 * the bucket part (0 = none; -1 = not an S3 host) and fills region. */
static long aws_s3_host(const char *rest, size_t n, char region[32]) {
  region[0] = '\0';
  /* Labels from the right: at most three matter (s3.dualstack.REGION). */
  const char *lab[3] = {NULL, NULL, NULL};
  size_t len[3] = {0, 0, 0};
  size_t end = n;
  int k = 0;
  while (k < 3 && end > 0) {
    size_t start = end;
    while (start > 0 && rest[start - 1] != '.') start--;
    lab[k] = rest + start;
    len[k] = end - start;
    k++;
    end = start ? start - 1 : 0;
    if (!start) break;
  }
#define IS(i, s) (lab[i] && len[i] == strlen(s) && memcmp(lab[i], s, len[i]) == 0)
  const char *s3 = NULL;
  if (IS(0, "s3")) {
    s3 = lab[0]; /* global endpoint: the region is not named */
  } else if (lab[0] && len[0] > 3 && memcmp(lab[0], "s3-", 3) == 0) {
    s3 = lab[0];
    if (len[0] - 3 < 32) snprintf(region, 32, "%.*s", (int)(len[0] - 3), lab[0] + 3);
    if (strcmp(region, "external-1") == 0) snprintf(region, 32, "us-east-1");
  } else if (IS(1, "s3") && len[0] < 32) {
    s3 = lab[1];
    snprintf(region, 32, "%.*s", (int)len[0], lab[0]);
  } else if (IS(2, "s3") && IS(1, "dualstack") && len[0] < 32) {
    s3 = lab[2];
    snprintf(region, 32, "%.*s", (int)len[0], lab[0]);
  }
#undef IS
  if (!s3) return -1;
  return s3 > rest ? (long)(s3 - rest - 1) : 0;
}

int ep_s3_parse_host(const char *host, char *const *domains, char bucket[64], char region[32]) {
  bucket[0] = region[0] = '\0';
  if (!host || !*host || host[0] == '[') return 0; /* IPv6 literal: path style */
  char h[300];
  size_t n = strcspn(host, ":");
  if (n >= sizeof h) return 0;
  for (size_t i = 0; i < n; i++) h[i] = (char)tolower((unsigned char)host[i]);
  h[n] = '\0';
  while (n && h[n - 1] == '.') h[--n] = '\0'; /* a fully qualified name's root dot */
  struct in_addr a4;
  if (inet_pton(AF_INET, h, &a4) == 1) return 0;
  long blen = -1;
  for (int i = 0; domains && domains[i]; i++) {
    size_t dl = strlen(domains[i]);
    if (n == dl && strcasecmp(h, domains[i]) == 0) return 0;
    if (n > dl + 1 && h[n - dl - 1] == '.' && strcasecmp(h + n - dl, domains[i]) == 0) {
      blen = (long)(n - dl - 1);
      break;
    }
  }
  static const char *suffixes[] = {".amazonaws.com", ".amazonaws.com.cn"};
  for (size_t s = 0; blen < 0 && s < 2; s++) {
    size_t sl = strlen(suffixes[s]);
    if (n > sl && strcmp(h + n - sl, suffixes[s]) == 0) blen = aws_s3_host(h, n - sl, region);
  }
  if (blen <= 0 || blen >= 64) return 0;
  memcpy(bucket, h, (size_t)blen);
  bucket[blen] = '\0';
  return 1;
}

void ep_s3_signing_region(const ep_request *req, char region[32]) {
  region[0] = '\0';
  const char *cred = NULL;
  size_t cl = 0;
  const char *authz = ep_request_header(req, "Authorization");
  const char *c = authz && strncmp(authz, "AWS4-", 5) == 0 ? strstr(authz, "Credential=") : NULL;
  if (c) {
    cred = c + 11;
    cl = strcspn(cred, ", ");
  } else if ((cred = ep_request_query(req, "X-Amz-Credential")) != NULL) {
    cl = strlen(cred);
  }
  if (!cred) return;
  /* AKID/yyyymmdd/REGION/SERVICE/aws4_request: the region is third from the right. */
  const char *slash[3] = {NULL, NULL, NULL};
  int k = 0;
  for (size_t i = cl; i > 0 && k < 3; i--)
    if (cred[i - 1] == '/') slash[k++] = cred + i - 1;
  if (k < 3) return;
  size_t rl = (size_t)(slash[1] - slash[2] - 1);
  if (rl > 0 && rl < 32) {
    memcpy(region, slash[2] + 1, rl);
    region[rl] = '\0';
  }
}

/* --------------------------------------------------------------- checks */

int ep_s3_check_region(const ep_s3_buckets *b, const ep_request *req, const ep_s3_target *t,
                        ep_response *resp) {
  if (!t->bucket || t->op == ASD_S3_CREATE_BUCKET || t->op == ASD_S3_GET_BUCKET_LOCATION) return 0;
  ep_s3_bucket_spec bs;
  int placed = 0;
  ep_s3_buckets_get(b, t->bucket, &bs, &placed);
  if (!placed) return 0;
  char signed_for[32];
  ep_s3_signing_region(req, signed_for);
  if (!signed_for[0] || strcmp(signed_for, bs.region) == 0) return 0;
  int presigned = ep_request_query(req, "X-Amz-Credential") != NULL;
  if (req->host_region && strcmp(req->host_region, bs.region) == 0) {
    /* The right regional host, the wrong scope. */
    const char *extra[] = {"Region", bs.region, NULL};
    char msg[160];
    snprintf(msg, sizeof msg, "%s; the region '%s' is wrong; expecting '%s'",
             presigned ? "Error parsing the X-Amz-Credential parameter" : "The authorization header is malformed",
             signed_for, bs.region);
    ep_s3_error_extra(resp, req, 400,
                          presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed", msg,
                          extra);
  } else {
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "%s.s3.%s.amazonaws.com", t->bucket, bs.region);
    const char *extra[] = {"Endpoint", endpoint, "Bucket", t->bucket, NULL};
    ep_s3_error_extra(resp, req, 301, "PermanentRedirect",
                          "The bucket you are attempting to access must be addressed using the specified "
                          "endpoint. Please send all future requests to this endpoint.",
                          extra);
  }
  ep_response_set_header(resp, "x-amz-bucket-region", bs.region);
  return -1;
}

static int takes_sse(ep_s3_op op) {
  return op == ASD_S3_PUT_OBJECT || op == ASD_S3_COPY_OBJECT || op == ASD_S3_CREATE_MULTIPART_UPLOAD;
}

/* The source bucket of x-amz-copy-source ("/bucket/key" or "bucket/key"). */
static void copy_source_bucket(const ep_request *req, char out[64]) {
  out[0] = '\0';
  const char *cs = ep_request_header(req, "x-amz-copy-source");
  if (!cs) return;
  if (*cs == '/') cs++;
  size_t n = strcspn(cs, "/?");
  if (n && n < 64) {
    memcpy(out, cs, n);
    out[n] = '\0';
  }
}

static int owner_mismatch(const char *expected, const char *owner) {
  return expected && strcmp(expected, owner) != 0;
}

int ep_s3_check_bucket_policy(const ep_s3_buckets *b, const ep_request *req, const ep_s3_target *t,
                               int bucket_exists, ep_response *resp) {
  if (!t->bucket || !bucket_exists) return 0;
  ep_s3_bucket_spec bs;
  ep_s3_buckets_get(b, t->bucket, &bs, NULL);
  if (owner_mismatch(ep_request_header(req, "x-amz-expected-bucket-owner"), bs.owner)) {
    ep_s3_error(resp, req, 403, "AccessDenied", "Access Denied");
    return -1;
  }
  char src[64];
  copy_source_bucket(req, src);
  if (src[0] && (t->op == ASD_S3_COPY_OBJECT || t->op == ASD_S3_UPLOAD_PART_COPY)) {
    ep_s3_bucket_spec ss;
    ep_s3_buckets_get(b, src, &ss, NULL);
    if (owner_mismatch(ep_request_header(req, "x-amz-source-expected-bucket-owner"), ss.owner)) {
      ep_s3_error(resp, req, 403, "AccessDenied", "Access Denied");
      return -1;
    }
  }
  if (!takes_sse(t->op)) return 0;
  const char *sse = ep_request_header(req, "x-amz-server-side-encryption");
  const char *kms = ep_request_header(req, "x-amz-server-side-encryption-aws-kms-key-id");
  if (sse && !sse_value_ok(sse)) {
    ep_s3_error(resp, req, 400, "InvalidArgument", "The encryption method specified is not supported");
    return -1;
  }
  if (kms && (!sse || strncmp(sse, "aws:kms", 7) != 0)) {
    ep_s3_error(resp, req, 400, "InvalidArgument",
                    "Server Side Encryption with AWS KMS managed key requires HTTP header "
                    "x-amz-server-side-encryption : aws:kms");
    return -1;
  }
  if (bs.require_sse[0] && (!sse || strcmp(sse, bs.require_sse) != 0)) {
    /* What a bucket policy denying s3:PutObject without the header answers. */
    ep_s3_error(resp, req, 403, "AccessDenied", "Access Denied");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ encryption */

char *ep_s3_sse_meta_lines(const ep_s3_buckets *b, const ep_request *req, const char *bucket) {
  const char *sse = ep_request_header(req, "x-amz-server-side-encryption");
  if (!sse || !sse_value_ok(sse)) return NULL;
  const char *kms = ep_request_header(req, "x-amz-server-side-encryption-aws-kms-key-id");
  ep_s3_bucket_spec bs;
  ep_s3_buckets_get(b, bucket, &bs, NULL);
  char arn[400] = "";
  if (strncmp(sse, "aws:kms", 7) == 0) {
    /* S3 reports the key as an ARN: a bare key id or alias is qualified with
     * the bucket's region and owner; no key means the AWS managed aws/s3 key. */
    if (!kms || !*kms)
      snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:alias/aws/s3", bs.region, bs.owner);
    else if (strncmp(kms, "arn:", 4) == 0)
      snprintf(arn, sizeof arn, "%.300s", kms);
    else if (strncmp(kms, "alias/", 6) == 0)
      snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:%.300s", bs.region, bs.owner, kms);
    else
      snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:key/%.300s", bs.region, bs.owner, kms);
    for (char *p = arn; *p; p++)
      if (*p == '\n' || *p == '\r') *p = ' ';
  }
  return CPLStrdup(arn[0] ? CPLSPrintf("=sse:%s\n=sse-kms-key-id:%s\n", sse, arn) : CPLSPrintf("=sse:%s\n", sse));
}

/* The value of a "=name:" line of a metadata block, copied into out. */
static int system_line(const char *block, const char *name, char *out, size_t out_len) {
  size_t nl = strlen(name);
  for (const char *p = block; p && *p;) {
    size_t l = strcspn(p, "\n");
    if (p[0] == '=' && l > nl + 1 && strncmp(p + 1, name, nl) == 0 && p[nl + 1] == ':') {
      snprintf(out, out_len, "%.*s", (int)(l - nl - 2), p + nl + 2);
      return 1;
    }
    p += l;
    if (*p == '\n') p++;
  }
  return 0;
}

void ep_s3_object_system_headers(ep_response *resp, const char *meta_block, int with_checksum) {
  char v[400];
  if (system_line(meta_block, "sse", v, sizeof v)) {
    ep_response_set_header(resp, "x-amz-server-side-encryption", v);
    if (system_line(meta_block, "sse-kms-key-id", v, sizeof v))
      ep_response_set_header(resp, "x-amz-server-side-encryption-aws-kms-key-id", v);
  } else {
    ep_response_set_header(resp, "x-amz-server-side-encryption", "AES256");
  }
  if (!with_checksum) return;
  static const char *sums[] = {"crc32c", "crc32", "sha256", "sha1"};
  for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "checksum-%s", sums[i]);
    if (system_line(meta_block, name, v, sizeof v)) {
      ep_response_set_header(resp, CPLSPrintf("x-amz-checksum-%s", sums[i]), v);
      break;
    }
  }
}
