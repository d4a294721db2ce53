/*
 * sts_api.h: a minimal AWS STS (Security Token Service) for the local
 * endpoint: the AssumeRole action and the temporary credentials it issues.
 *
 * A client that assumes a role (gdal_asyncdetect -assume-role, the AWS CLI's
 * `aws sts assume-role`, boto3) POSTs a form-encoded query-protocol request
 * signed with its base credentials to the endpoint's root; the answer is the
 * XML document STS sends, with a fresh AccessKeyId (ASIA...), secret,
 * session token and expiration.  The endpoint's SigV4 verifier then accepts
 * those credentials, and only with the session token they were issued with,
 * until they expire (ep_sts_api_lookup is its secret lookup for them).
 *
 * What is not modelled: IAM policies (every well-formed role ARN can be
 * assumed by any authenticated caller), session policies and tags.  An
 * external id can be required (ep_sts_api_new), so that a client's
 * -external-id is checked end to end.
 */
#ifndef ASD_EP_STS_API_H
#define ASD_EP_STS_API_H

#include <stddef.h>

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
typedef struct ep_sts_api ep_sts_api;

/* required_external_id: when not NULL, AssumeRole must carry exactly this
 * ExternalId (AccessDenied otherwise). */
ep_sts_api *ep_sts_api_new(const char *required_external_id);
void ep_sts_api_free(ep_sts_api *s);

/* Is this an STS request?  STS's query protocol is a form-encoded POST to
 * the root path, which no S3 operation is.  content_type may be NULL. */
int ep_sts_api_matches(const char *method, const char *path, const char *content_type);

/* Answers an STS request (already authenticated) into resp. */
void ep_sts_api_handle(ep_sts_api *s, const ep_request *req, ep_response *resp);

/* An error in STS's XML dialect (<ErrorResponse><Error><Type/><Code/>
 * <Message/></Error><RequestId/></ErrorResponse>). */
void ep_sts_api_error(ep_response *resp, const ep_request *req, int status, const char *code,
                       const char *message);

/*
 * Secret lookup for the SigV4 verifier (asd_sigv4_secret_lookup_fn shape):
 * user is the ep_sts_api.  Returns 0 with the secret copied out for issued,
 * unexpired credentials presented with their own session token; -1 for an
 * access key it never issued; -2 for a missing, wrong or expired token.
 */
int ep_sts_api_lookup(void *user, const char *access_key_id, const char *session_token, char *secret_out,
                       size_t secret_out_size);

/* Issues a session of duration seconds into the table (used by AssumeRole
 * and by the SSO portal, sso_api.c): an "ASIA" access key id, a secret and
 * a session token (malloc'ed: wipe and free() it).  0, or -1 when the table
 * is full or randomness failed. */
int ep_sts_api_issue(ep_sts_api *s, int duration, char akid[24], char secret[48], char **token,
                      double *expires);

/* Was access_key_id issued by this table (and not yet pruned)? */
int ep_sts_api_is_issued(ep_sts_api *s, const char *access_key_id);

/* Tests: a fixed wall-clock time (seconds since the epoch) for issuing and
 * checking expirations; 0 returns to the real clock. */
void ep_sts_api_set_clock(ep_sts_api *s, double now);

/* {"assume_role_calls":n,"sessions_issued":n,"active_sessions":n,
 *  "session_key_lookups":n,"rejected_tokens":n} (new object). */
struct json_object *ep_sts_api_stats_json(ep_sts_api *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_STS_API_H */
