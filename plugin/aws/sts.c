/*
 * sts.c: the two STS calls the credentials chain needs.
 *
 * AssumeRole (signed with the base credentials, SigV4 service "sts") and
 * AssumeRoleWithWebIdentity (unsigned: the web identity token is the
 * credential) both use the query protocol: a form-encoded POST answered by
 * an XML document whose <Credentials> element holds AccessKeyId,
 * SecretAccessKey, SessionToken and an ISO 8601 Expiration.  The session
 * token and secret are wiped from the response buffer after parsing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <cpl_minixml.h>
#include <openssl/crypto.h>

#include "aws_internal.h"

int asd_sts_parse_credentials(const char *xml, size_t len, asd_aws_credentials *out, asd_aws_error *err) {
  (void)len;
  asd_aws_credentials_init(out);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLXMLNode *root = xml ? CPLParseXMLString(xml) : NULL;
  CPLPopErrorHandler();
  CPLErrorReset();
  if (!root) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "STS reply is not XML");
    return -1;
  }
  CPLXMLNode *c = CPLSearchXMLNode(root, "=Credentials");
  const char *ak = c ? CPLGetXMLValue(c, "AccessKeyId", NULL) : NULL;
  const char *sk = c ? CPLGetXMLValue(c, "SecretAccessKey", NULL) : NULL;
  const char *tk = c ? CPLGetXMLValue(c, "SessionToken", NULL) : NULL;
  const char *ex = c ? CPLGetXMLValue(c, "Expiration", NULL) : NULL;
  int rc = -1;
  double exp = 0;
  if (!ak || !*ak || !sk || !*sk || !tk || !*tk) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE,
                      "STS reply lacks Credentials/AccessKeyId, SecretAccessKey or SessionToken");
  } else if (!ex || asd_aws_parse_iso8601(ex, &exp) != 0) {
    asd_aws_error_set(err, ASD_AWS_ERR_PARSE, "STS reply has a missing or unparsable Expiration");
  } else {
    out->access_key_id = strdup(ak);
    out->secret_access_key = strdup(sk);
    out->session_token = strdup(tk);
    out->expiration = exp;
    if (!out->access_key_id || !out->secret_access_key || !out->session_token) {
      asd_aws_credentials_free(out);
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    } else {
      rc = 0;
    }
  }
  CPLDestroyXMLNode(root);
  return rc;
}

static int append_param(asd_buf *b, const char *name, const char *value) {
  int rc = 0;
  if (b->len) rc |= asd_buf_append(b, "&", 1);
  rc |= asd_buf_append_str(b, name);
  rc |= asd_buf_append(b, "=", 1);
  rc |= asd_sigv4_uri_encode(b, value, strlen(value), 0);
  return rc;
}

static int validate_role(const char *role_arn, const char *session_name, asd_aws_error *err) {
  if (!role_arn || strncmp(role_arn, "arn:", 4) != 0 || strlen(role_arn) < 20 || strlen(role_arn) > 2048) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid role ARN '%.100s' (expected arn:aws:iam::ACCOUNT:role/NAME)",
                      role_arn ? role_arn : "");
    return -1;
  }
  size_t sl = strlen(session_name);
  if (sl < 2 || sl > 64) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "role session name must be 2-64 characters");
    return -1;
  }
  for (size_t i = 0; i < sl; i++) {
    unsigned char ch = (unsigned char)session_name[i];
    if (!(isalnum(ch) || strchr("_+=,.@-", ch))) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "role session name '%.64s' may only contain letters, digits and _+=,.@-", session_name);
      return -1;
    }
  }
  return 0;
}

static int sts_call(asd_aws_context *ctx, const asd_aws_credentials *base, asd_buf *form, const char *what,
                    const char *role_arn, asd_aws_credentials *out, asd_aws_error *err) {
  static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
  asd_http_request req;
  memset(&req, 0, sizeof(req));
  req.method = "POST";
  req.service = ASD_AWS_STS;
  req.path = "/";
  req.headers = headers;
  req.body = form->data;
  req.body_len = form->len;
  req.unsigned_request = base == NULL;
  req.max_response_bytes = 1 << 20;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_aws_send_with(ctx, &req, base, &resp, err);
  if (rc == 0) {
    rc = asd_sts_parse_credentials((const char *)resp.body.data, resp.body.len, out, err);
    if (rc == 0) snprintf(out->source, sizeof(out->source), "%s:%.40s", what, role_arn);
  } else {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    asd_aws_error_set(err, err->kind, "STS %s for %.100s failed: %s", what, role_arn, m);
  }
  if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.len);
  asd_http_response_free(&resp);
  return rc;
}

int asd_sts_assume_role(asd_aws_context *ctx, const asd_aws_credentials *base, const char *role_arn,
                        const char *session_name, const char *external_id, int duration_seconds,
                        asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  if (validate_role(role_arn, session_name, err) != 0) return -1;
  if (duration_seconds && (duration_seconds < 900 || duration_seconds > 43200)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "role duration %d s is outside 900-43200", duration_seconds);
    return -1;
  }
  asd_buf form;
  asd_buf_init(&form);
  int rc = 0;
  rc |= append_param(&form, "Action", "AssumeRole");
  rc |= append_param(&form, "Version", "2011-06-15");
  rc |= append_param(&form, "RoleArn", role_arn);
  rc |= append_param(&form, "RoleSessionName", session_name);
  if (duration_seconds) {
    char d[16];
    snprintf(d, sizeof(d), "%d", duration_seconds);
    rc |= append_param(&form, "DurationSeconds", d);
  }
  if (external_id && *external_id) rc |= append_param(&form, "ExternalId", external_id);
  if (rc) {
    asd_buf_free(&form);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  rc = sts_call(ctx, base, &form, "assume-role", role_arn, out, err);
  asd_buf_free(&form);
  return rc;
}

int asd_sts_assume_role_with_web_identity(asd_aws_context *ctx, const char *role_arn, const char *session_name,
                                          const char *token, asd_aws_credentials *out, asd_aws_error *err) {
  asd_aws_credentials_init(out);
  if (validate_role(role_arn, session_name, err) != 0) return -1;
  asd_buf form;
  asd_buf_init(&form);
  int rc = 0;
  rc |= append_param(&form, "Action", "AssumeRoleWithWebIdentity");
  rc |= append_param(&form, "Version", "2011-06-15");
  rc |= append_param(&form, "RoleArn", role_arn);
  rc |= append_param(&form, "RoleSessionName", session_name);
  rc |= append_param(&form, "WebIdentityToken", token);
  if (rc) {
    asd_buf_free(&form);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory");
    return -1;
  }
  rc = sts_call(ctx, NULL, &form, "web-identity", role_arn, out, err);
  if (form.data) OPENSSL_cleanse(form.data, form.len);
  asd_buf_free(&form);
  return rc;
}
