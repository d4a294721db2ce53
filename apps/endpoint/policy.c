/*
 * policy.c: the -deny rules (policy.h) and the IAM action each S3
 * operation needs.
 *
 * A client that runs on a real account meets IAM: a role with PutObject and
 * GetObject but no ListBucket, a bucket policy that forbids deletes, a user
 * who may invoke an endpoint but not describe it.  The local endpoint grants
 * everything by default, so without rules those paths of a client are never
 * exercised.  -deny takes away one action, on one resource or on all, and
 * the answer is the one the service gives, so that a client tested here
 * behaves on AWS as it did here.
 *
 * The S3 side maps each routed operation to the action IAM evaluates
 * (HeadObject is s3:GetObject, HeadBucket and both ListObjects are
 * s3:ListBucket, the multipart steps are s3:PutObject...).  A denial is
 * 403 AccessDenied with IAM's explicit text; the one implicit denial is
 * GetObject/HeadObject of a missing key without s3:ListBucket, which S3
 * answers with a bare "Access Denied" in place of 404 NoSuchKey.
 *
 * Not modelled: allow rules, conditions, per-key resources (a rule names a
 * whole bucket), DeleteObjects' per-key answers (a denied s3:DeleteObject
 * refuses the whole DeleteObjects request with 403), and the runtime's
 * actions (sagemaker:InvokeEndpoint*), which -deny refuses to take rather
 * than accept and ignore.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_api.h"
#include "s3_store.h"

#define MAX_RULES 64

typedef struct rule {
  char action[64];    /* "s3:ListBucket", "s3:*" */
  char resource[256]; /* bucket / endpoint name, or "*" */
} rule;

struct ep_policy {
  rule rules[MAX_RULES];
  int n;
};

ep_policy *ep_policy_new(void) { return calloc(1, sizeof(ep_policy)); }

void ep_policy_free(ep_policy *p) { free(p); }

/* The services whose actions a rule may name, and their actions. */
static const char *const k_actions[] = {
    "s3:ListAllMyBuckets", "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:GetBucketLocation",
    "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads", "s3:*",
    "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:*", NULL};

int ep_policy_add_deny(ep_policy *p, const char *text, char *err, size_t err_len) {
  if (!p || !text) return -1;
  if (p->n >= MAX_RULES) {
    snprintf(err, err_len, "-deny: at most %d rules", MAX_RULES);
    return -1;
  }
  /* ACTION is SERVICE:NAME, so the resource follows a second ':'. */
  const char *c1 = strchr(text, ':');
  const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  size_t alen = c2 ? (size_t)(c2 - text) : strlen(text);
  const char *res = c2 ? c2 + 1 : "*";
  const char *known = NULL;
  for (int i = 0; k_actions[i]; i++)
    if (strlen(k_actions[i]) == alen && strncasecmp(k_actions[i], text, alen) == 0) known = k_actions[i];
  if (!c1 || !known) {
    snprintf(err, err_len,
             "-deny '%s': expected ACTION[:RESOURCE] with an IAM action such as s3:ListBucket, s3:GetObject, "
             "s3:PutObject, s3:DeleteObject, sagemaker:DescribeEndpoint, sagemaker:DescribeEndpointConfig",
             text);
    return -1;
  }
  if (!*res || strlen(res) >= sizeof p->rules[0].resource || strchr(res, ':') || strchr(res, '/')) {
    snprintf(err, err_len, "-deny '%s': the resource must be a bucket or endpoint name, or *", text);
    return -1;
  }
  rule *r = &p->rules[p->n++];
  snprintf(r->action, sizeof r->action, "%s", known);
  snprintf(r->resource, sizeof r->resource, "%s", res);
  return 0;
}

static int action_matches(const char *pattern, const char *action) {
  size_t n = strlen(pattern);
  if (n >= 2 && strcmp(pattern + n - 2, ":*") == 0) return strncasecmp(pattern, action, n - 1) == 0;
  return strcasecmp(pattern, action) == 0;
}

int ep_policy_denies(const ep_policy *p, const char *action, const char *resource) {
  if (!p || !action) return 0;
  for (int i = 0; i < p->n; i++) {
    const rule *r = &p->rules[i];
    if (!action_matches(r->action, action)) continue;
    if (strcmp(r->resource, "*") == 0 || (resource && strcmp(r->resource, resource) == 0)) return 1;
  }
  return 0;
}

void ep_policy_denial_message(const char *action, const char *arn, char *out, size_t out_len) {
  snprintf(out, out_len,
           "User: arn:aws:iam::000000000000:user/local is not authorized to perform: %s on resource: "
           "\"%s\" because no identity-based policy allows the %s action",
           action, arn, action);
}

/* The IAM action an S3 operation is authorised by. */
static const char *s3_action(ep_s3_op op) {
  switch (op) {
    case ASD_S3_LIST_BUCKETS: return "s3:ListAllMyBuckets";
    case ASD_S3_CREATE_BUCKET: return "s3:CreateBucket";
    case ASD_S3_DELETE_BUCKET: return "s3:DeleteBucket";
    case ASD_S3_HEAD_BUCKET:
    case ASD_S3_LIST_OBJECTS:
    case ASD_S3_LIST_OBJECTS_V2: return "s3:ListBucket";
    case ASD_S3_GET_BUCKET_LOCATION: return "s3:GetBucketLocation";
    case ASD_S3_DELETE_OBJECTS:
    case ASD_S3_DELETE_OBJECT: return "s3:DeleteObject";
    case ASD_S3_GET_OBJECT:
    case ASD_S3_HEAD_OBJECT: return "s3:GetObject";
    case ASD_S3_PUT_OBJECT:
    case ASD_S3_COPY_OBJECT:
    case ASD_S3_CREATE_MULTIPART_UPLOAD:
    case ASD_S3_UPLOAD_PART:
    case ASD_S3_UPLOAD_PART_COPY:
    case ASD_S3_COMPLETE_MULTIPART_UPLOAD: return "s3:PutObject";
    case ASD_S3_ABORT_MULTIPART_UPLOAD: return "s3:AbortMultipartUpload";
    case ASD_S3_LIST_PARTS: return "s3:ListMultipartUploadParts";
    case ASD_S3_LIST_MULTIPART_UPLOADS: return "s3:ListBucketMultipartUploads";
    case ASD_S3_UNSUPPORTED: break;
  }
  return NULL;
}

/* The source bucket of a CopyObject / UploadPartCopy (x-amz-copy-source:
   [/]bucket/key), which needs s3:GetObject there. */
static void copy_source_bucket(const ep_request *req, char *out, size_t out_len) {
  out[0] = '\0';
  const char *src = ep_request_header(req, "x-amz-copy-source");
  if (!src) return;
  if (*src == '/') src++;
  const char *slash = strchr(src, '/');
  size_t n = slash ? (size_t)(slash - src) : strlen(src);
  if (n >= out_len) n = out_len - 1;
  memcpy(out, src, n);
  out[n] = '\0';
}

static int deny(ep_response *resp, const ep_request *req, const char *action, const char *bucket,
                const char *key) {
  char arn[1400], msg[2000];
  if (key)
    snprintf(arn, sizeof arn, "arn:aws:s3:::%s/%s", bucket, key);
  else if (bucket)
    snprintf(arn, sizeof arn, "arn:aws:s3:::%s", bucket);
  else
    snprintf(arn, sizeof arn, "*");
  ep_policy_denial_message(action, arn, msg, sizeof msg);
  ep_s3_error(resp, req, 403, "AccessDenied", msg);
  return -1;
}

int ep_policy_check_s3(const ep_policy *p, struct ep_store *store, const ep_request *req,
                           const struct ep_s3_target *t, ep_response *resp) {
  if (!p || p->n == 0 || !t) return 0;
  const char *action = s3_action(t->op);
  if (!action) return 0;
  if (ep_policy_denies(p, action, t->bucket)) return deny(resp, req, action, t->bucket, t->key);
  if (t->op == ASD_S3_COPY_OBJECT || t->op == ASD_S3_UPLOAD_PART_COPY) {
    char src[256];
    copy_source_bucket(req, src, sizeof src);
    if (src[0] && ep_policy_denies(p, "s3:GetObject", src)) return deny(resp, req, "s3:GetObject", src, NULL);
  }
  /* S3 tells whether a key exists only to who may list the bucket. */
  if ((t->op == ASD_S3_GET_OBJECT || t->op == ASD_S3_HEAD_OBJECT) && t->bucket && t->key &&
      ep_policy_denies(p, "s3:ListBucket", t->bucket) &&
      ep_store_head(store, t->bucket, t->key, NULL) == ASD_STORE_NO_KEY) {
    ep_s3_error(resp, req, 403, "AccessDenied", "Access Denied");
    return -1;
  }
  return 0;
}
