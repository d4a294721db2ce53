/*
 * sso_api.h: the IAM Identity Center (SSO) portal's GetRoleCredentials for
 * the local endpoint.
 *
 * After `aws sso login`, SDKs turn the cached portal access token into role
 * credentials with GET /federation/credentials?account_id=..&role_name=..
 * carrying the token in the x-amz-sso_bearer_token header (unsigned: the
 * bearer token is the credential).  The local endpoint answers it when
 * started with -sso-token TOKEN, the one bearer token it accepts, so that
 * an SSO profile (sso_session + a token cache file) runs offline end to end.
 * The credentials it issues go into the STS session table (sts_api.c), so
 * the SigV4 verifier accepts them exactly as it accepts AssumeRole ones:
 * with their own session token only, until they expire.
 */
#ifndef ASD_EP_SSO_API_H
#define ASD_EP_SSO_API_H

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
struct ep_sts_api;
typedef struct ep_sso_api ep_sso_api;

/* token: the bearer token to accept (copied).  sessions: where issued
 * credentials are kept and looked up by the verifier (not owned).
 * duration: seconds the issued credentials live (0 = 3600). */
ep_sso_api *ep_sso_api_new(const char *token, struct ep_sts_api *sessions, int duration);
void ep_sso_api_free(ep_sso_api *s);

/* SSO OIDC CreateToken's refresh_token grant (sso_api.c) for the client
 * registration and refresh token in spec, CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN
 * (copied).  0, or -1 when spec is not of that shape. */
int ep_sso_api_set_oidc(ep_sso_api *s, const char *spec);

/* Is this GetRoleCredentials (GET /federation/credentials) or OIDC
 * CreateToken (POST /token)? */
int ep_sso_api_matches(const char *method, const char *path);
/* Whether the request's body is needed (CreateToken's JSON): then it is
 * handled once the body is read; else from the headers alone. */
int ep_sso_api_reads_body(const char *method);

/* Answers it: 200 {"roleCredentials":{...}}, or the service's errors
 * (UnauthorizedException 401 for a missing or wrong token,
 * InvalidRequestException 400 for missing or malformed parameters,
 * TooManyRequestsException 429 when the session table is full). */
void ep_sso_api_handle(ep_sso_api *s, const ep_request *req, ep_response *resp);

/* {"get_role_credentials_calls":n,"credentials_issued":n,"unauthorized":n,
 *  "create_token_calls":n,"tokens_refreshed":n,"invalid_grants":n} */
struct json_object *ep_sso_api_stats_json(ep_sso_api *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_SSO_API_H */
