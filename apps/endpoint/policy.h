/*
 * policy.h: -deny rules of the local endpoint, IAM's "no policy allows this
 * action on this resource", answered exactly as the services answer it.
 *
 * A rule is ACTION[:RESOURCE], for example
 *   s3:ListBucket:results          no ListBucket on bucket "results"
 *   s3:GetObject:*                 no GetObject anywhere
 *   sagemaker:DescribeEndpoint     no DescribeEndpoint on any endpoint
 *   sagemaker:DescribeEndpointConfig:demo
 * The action is an IAM action name (case-insensitive; "s3:*" denies every
 * S3 action, "sagemaker:*" both Describe actions), the resource a bucket name for S3 and
 * an endpoint (or endpoint configuration) name for SageMaker, "*" or absent
 * for every one.  Everything not denied is allowed, as with -no-auth's
 * all-powerful caller.
 *
 * What a denial looks like is the service's, including the case that
 * surprises clients most: GetObject or HeadObject of a key that does not
 * exist answers 403 AccessDenied, not 404 NoSuchKey, when the caller lacks
 * s3:ListBucket on the bucket (S3 will not tell who cannot list a bucket
 * whether a key exists).  HEAD answers carry no body, as S3's do.
 */
#ifndef ASD_EP_POLICY_H
#define ASD_EP_POLICY_H

#include <stddef.h>

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ep_store;
struct ep_s3_target;

typedef struct ep_policy ep_policy;

ep_policy *ep_policy_new(void);
void ep_policy_free(ep_policy *p);

/* Adds one -deny rule.  Returns 0, or -1 with a one-line reason in err. */
int ep_policy_add_deny(ep_policy *p, const char *rule, char *err, size_t err_len);

/* Whether a rule denies action (e.g. "s3:GetObject") on resource (a bucket
 * or endpoint name; NULL for none).  A NULL policy denies nothing. */
int ep_policy_denies(const ep_policy *p, const char *action, const char *resource);

/*
 * Checks an S3 request already routed (t) and authenticated.  Returns 0 when
 * it may proceed, or -1 with S3's 403 AccessDenied filled into resp.  store
 * tells whether a key exists (for the missing-key-without-ListBucket case).
 */
int ep_policy_check_s3(const ep_policy *p, struct ep_store *store, const ep_request *req,
                           const struct ep_s3_target *t, ep_response *resp);

/*
 * The IAM-style denial text: "User: arn:aws:iam::000000000000:user/local is
 * not authorized to perform: ACTION on resource: ARN because no
 * identity-based policy allows the ACTION action".
 */
void ep_policy_denial_message(const char *action, const char *arn, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_POLICY_H */
