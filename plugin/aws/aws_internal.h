/*
 * aws_internal.h: what the files of plugin/aws/ share and the public headers
 * do not show: the context's layout, the HTTP transport, the INI parser of
 * the shared config/credentials files and the credential sources.  Tests
 * include it (the test support library has plugin/ on its include path) to
 * reach pure logic directly.
 */
#ifndef ASD_AWS_INTERNAL_H
#define ASD_AWS_INTERNAL_H

#include <pthread.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_sigv4.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- INI files */

/* One parsed file: a flat list of (section, key, value).  Config-file
 * sections "[profile x]" are stored as "x"; "[default]" as "default";
 * other typed sections ("[sso-session x]", "[services x]") keep their full
 * name so they never collide with profiles. */
typedef struct asd_ini_entry {
  char *section;
  char *key;   /* lower-cased */
  char *value;
} asd_ini_entry;

typedef struct asd_ini {
  asd_ini_entry *entries;
  size_t n;
  char *path;
} asd_ini;

/* Parses text.  is_config selects "[profile x]" handling.  Returns 0, or -1
 * with err (CONFIG) naming file and line for a garbled file. */
int asd_ini_parse(const char *text, const char *path, int is_config, asd_ini *out, asd_aws_error *err);
/* Reads and parses a file; a missing file gives an empty ini and 0. */
int asd_ini_load(const char *path, int is_config, asd_ini *out, asd_aws_error *err);
void asd_ini_free(asd_ini *ini);
const char *asd_ini_get(const asd_ini *ini, const char *section, const char *key);
int asd_ini_has_section(const asd_ini *ini, const char *section);

/* Paths of the shared files ($AWS_SHARED_CREDENTIALS_FILE / $AWS_CONFIG_FILE
 * or ~/.aws/...); malloc'ed. */
char *asd_aws_credentials_file_path(void);
char *asd_aws_config_file_path(void);
/* Profile name in effect (explicit, $AWS_PROFILE, $AWS_DEFAULT_PROFILE, "default"). */
const char *asd_aws_profile_name(const char *explicit_profile);

/* $HOME/rel (HOME unset: /rel); malloc'ed. */
char *asd_aws_home_path(const char *rel);

/* Looks a key up in a profile: credentials file first, then config file.
 * Returns a malloc'ed value or NULL. */
char *asd_aws_profile_value(const char *profile, const char *key);

/* --------------------------------------------------------------- transport */

typedef struct asd_http_transport asd_http_transport;

typedef struct asd_http_attempt {
  const char *method;
  const char *url;
  const char *const *headers; /* "Name: value", NULL-terminated */
  const void *body;
  size_t body_len;
  size_t max_response_bytes;
  double timeout;             /* 0 = transport default */
  double connect_timeout;     /* 0 = transport default */
  int fresh_connection;       /* 1 = never on a reused connection (see asd_http_request) */
  int send_once;              /* 1 = on the wire at most once (see asd_http_request) */
} asd_http_attempt;

/* Outcome of one attempt at the transport level. */
typedef enum asd_http_outcome {
  ASD_HTTP_DONE = 0,     /* got a complete response (any status) */
  ASD_HTTP_CONNECT_FAILED,
  ASD_HTTP_NETWORK,      /* reset, truncated, nothing received */
  ASD_HTTP_TIMEOUT,
  ASD_HTTP_TOO_LARGE,
  ASD_HTTP_TLS,
  ASD_HTTP_CANCELLED,
  ASD_HTTP_BAD_URL,
  ASD_HTTP_INTERNAL
} asd_http_outcome;

asd_http_transport *asd_http_transport_new(const asd_aws_config *cfg, const int *cancel_flag /* read with __atomic_load_n */);
void asd_http_transport_free(asd_http_transport *t);
/* One attempt; fills resp (status, body, headers).  detail receives curl's
 * error text on failure. */
asd_http_outcome asd_http_transport_perform(asd_http_transport *t, const asd_http_attempt *a,
                                            asd_http_response *resp, char *detail,
                                            size_t detail_size);
void asd_http_transport_stats(asd_http_transport *t, asd_http_stats *out);
void asd_http_transport_count_retry(asd_http_transport *t);

/* ----------------------------------------------------------------- context */

/* S3 region redirects (s3.c): the region S3 named for a bucket, learnt from a
 * 301/400 with x-amz-bucket-region, cached per bucket for the context's life. */
typedef struct asd_bucket_region {
  char bucket[64];
  char region[32];
} asd_bucket_region;

struct asd_aws_context {
  /* Configuration (owned copies of the strings). */
  asd_aws_config cfg;
  char **owned; /* CSL list holding every string cfg points to */
  char region[64];
  char profile[128];
  asd_aws_endpoint endpoints[ASD_AWS_SERVICE_COUNT];

  asd_http_transport *transport;
  asd_sigv4_key_cache *keys;
  int cancelled; /* __atomic builtins */

  pthread_mutex_t lock;          /* guards creds, clock_offset */
  pthread_mutex_t refresh_lock;  /* one refresh at a time */
  asd_aws_credentials creds;     /* cached; access_key_id NULL = none */
  int have_creds;
  double clock_offset;           /* server - local, seconds */
  asd_bucket_region *bucket_regions; /* guarded by lock; see s3.c */
  size_t n_bucket_regions;
};

/* Resolves credentials from scratch (the whole chain plus the optional
 * assumed role); no caching.  Used by the context's refresh. */
int asd_aws_resolve_credentials(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err);

/* Individual sources, exposed for tests.  Each returns 1 when it produced
 * credentials, 0 when it does not apply (e.g. variable unset), -1 on error. */
int asd_aws_creds_from_env(asd_aws_credentials *out, asd_aws_error *err);
int asd_aws_creds_from_profile(asd_aws_context *ctx, const char *profile, int explicit_profile,
                               asd_aws_credentials *out, asd_aws_error *err);
int asd_aws_creds_from_process(const char *command, asd_aws_credentials *out, asd_aws_error *err);
int asd_aws_creds_from_web_identity_env(asd_aws_context *ctx, asd_aws_credentials *out,
                                        asd_aws_error *err);
int asd_aws_creds_from_ecs(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err);
int asd_aws_creds_from_imds(asd_aws_context *ctx, asd_aws_credentials *out, asd_aws_error *err);

/* credential_process (process.c): splits a command line into argv as the
 * AWS CLI does (Python's shlex.split, POSIX rules).  Returns a CSL list
 * (CSLDestroy), or NULL with *error set to shlex's reason ("No closing
 * quotation", "No escaped character", "empty command"). */
char **asd_aws_split_command(const char *line, const char **error);

/* Checks a container credentials URL (ECS/EKS): http or https, no user
 * information, plain http only to loopback or the ECS/EKS agent addresses.
 * Returns 0 with the URL as curl re-serialised it in out, or -1 with the
 * reason in why. */
int asd_aws_ecs_url_check(const char *url, char *out, size_t out_size, char *why, size_t why_size);
/* IMDSv2 values received from the network, checked before they go into a
 * header (token: 1-1024 base64 characters) or a URL (role name: IAM's
 * 1-64 characters of [A-Za-z0-9+=,.@_-], no ".."). 1 = acceptable. */
int asd_aws_imds_token_ok(const char *token, size_t len);
int asd_aws_imds_role_ok(const char *name, size_t len);

/* IAM Identity Center (sso.c).  Does profile (a section of the config
 * file) use SSO (sso_session, sso_start_url, sso_account_id or
 * sso_role_name)? */
int asd_aws_profile_uses_sso(const asd_ini *config, const char *profile);
/* Credentials of an SSO profile: the cached token of `aws sso login`, then
 * the portal's GetRoleCredentials.  Returns 1, or -1 with err (a missing or
 * expired token says "run 'aws sso login --profile NAME'"). */
int asd_aws_creds_from_sso(asd_aws_context *ctx, const asd_ini *config, const char *profile,
                           asd_aws_credentials *out, asd_aws_error *err);
/* The cache file name of a session name or start URL (SHA-1 hex + ".json"). */
void asd_aws_sso_cache_name(const char *key, char out[46]);
/* The portal endpoint (endpoints.c): override, AWS_ENDPOINT_URL_SSO,
 * AWS_ENDPOINT_URL, profile endpoint_url, else portal.sso.REGION.amazonaws.com. */
int asd_aws_resolve_sso_endpoint(const char *sso_region, const char *override_url, const char *profile,
                                 asd_aws_endpoint *out, asd_aws_error *err);
/* SSO OIDC (CreateToken): AWS_ENDPOINT_URL_SSO_OIDC, else the general endpoint URL, else
 * https://oidc.<sso_region>.amazonaws.com. */
int asd_aws_resolve_sso_oidc_endpoint(const char *sso_region, const char *override_url, const char *profile,
                                      asd_aws_endpoint *out, asd_aws_error *err);

/* Parses the JSON credentials document of ECS, IMDS and credential_process
 * (AccessKeyId, SecretAccessKey, Token/SessionToken, Expiration). */
int asd_aws_parse_credentials_json(const char *json, size_t len, const char *source,
                                   asd_aws_credentials *out, asd_aws_error *err);
/* ISO 8601 "2026-11-29T06:00:00Z" (fraction and offset allowed) → epoch. */
int asd_aws_parse_iso8601(const char *s, double *epoch);

/* STS (sts.c). */
int asd_sts_assume_role(asd_aws_context *ctx, const asd_aws_credentials *base, const char *role_arn,
                        const char *session_name, const char *external_id, int duration_seconds,
                        asd_aws_credentials *out, asd_aws_error *err);
int asd_sts_assume_role_with_web_identity(asd_aws_context *ctx, const char *role_arn,
                                          const char *session_name, const char *token,
                                          asd_aws_credentials *out, asd_aws_error *err);
/* Parses an AssumeRole / AssumeRoleWithWebIdentity XML reply. */
int asd_sts_parse_credentials(const char *xml, size_t len, asd_aws_credentials *out,
                              asd_aws_error *err);

/* asd_aws_send with credentials given by the caller (STS calls made while
 * resolving credentials must not recurse into the provider). */
int asd_aws_send_with(asd_aws_context *ctx, const asd_http_request *req,
                      const asd_aws_credentials *creds, asd_http_response *resp, asd_aws_error *err);

/* Whether S3 request bodies travel as UNSIGNED-PAYLOAD: over HTTPS unless
 * payload signing was forced (cfg.payload_signing), as botocore does.  s3.c
 * then adds a CRC-32C; send_impl leaves the body out of the signature. */
int asd_aws_s3_body_unsigned(const asd_aws_context *ctx);

/* Builds "scheme://host/base_path" for a request; malloc'ed. */
char *asd_aws_request_url(const asd_aws_endpoint *ep, const asd_http_request *req);

/* Copies at most size-1 bytes of s, replacing control characters. */
void asd_aws_copy_line(char *dst, size_t size, const char *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ASD_AWS_INTERNAL_H */
