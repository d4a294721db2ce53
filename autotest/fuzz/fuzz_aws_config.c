/*
 * fuzz_aws_config.c: the shared credentials/config file parser and the
 * credential documents the client reads (plugin/aws/endpoints.c,
 * credentials.c, sts.c).
 *
 * The same bytes are read as each of the things a user's machine or a
 * credentials service can hand the client: ~/.aws/credentials and
 * ~/.aws/config (asd_ini_parse, both section dialects, then every lookup the
 * chain makes: endpoint_url parsed as an URL, region, role settings), the
 * JSON document of ECS, IMDS and credential_process, and an STS XML reply
 * (with its ISO 8601 expiration).  Nothing is executed and no network is
 * used: credential_process values are only looked up, never run.
 * Checked: a parsed file keeps every key lower-case and findable, and every
 * error is one NUL-terminated line (messages reach the terminal and logs).
 */
#include <ctype.h>
#include <string.h>

#include "aws/aws_internal.h"
#include "fuzz_target.h"

static void check_error(const asd_aws_error *err) {
  FUZZ_CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
  FUZZ_CHECK(strchr(err->message, '\n') == NULL);
}

static void read_ini(const char *text, int is_config) {
  asd_ini ini;
  asd_aws_error err;
  asd_aws_error_clear(&err);
  if (asd_ini_parse(text, "fuzz", is_config, &ini, &err) != 0) {
    FUZZ_CHECK(err.kind == ASD_AWS_ERR_CONFIG);
    check_error(&err);
    return;
  }
  static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key", "region", "endpoint_url",
                                     "role_arn", "source_profile", "credential_source", "credential_process",
                                     "sso_session", "sso_start_url", "duration_seconds", NULL};
  for (size_t i = 0; i < ini.n; i++) {
    const asd_ini_entry *e = &ini.entries[i];
    FUZZ_CHECK(e->section && e->key && e->value && *e->key);
    for (const char *k = e->key; *k; k++) FUZZ_CHECK(!isupper((unsigned char)*k));
    FUZZ_CHECK(asd_ini_has_section(&ini, e->section));
    FUZZ_CHECK(asd_ini_get(&ini, e->section, e->key) != NULL);
    for (int k = 0; keys[k]; k++) {
      const char *v = asd_ini_get(&ini, e->section, keys[k]);
      if (!v) continue;
      if (strcmp(keys[k], "endpoint_url") == 0) {
        asd_aws_endpoint ep;
        if (asd_aws_parse_endpoint_url(v, &ep, &err) != 0) check_error(&err);
      }
    }
  }
  asd_ini_free(&ini);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  read_ini(text, 0);
  read_ini(text, 1);

  asd_aws_credentials c;
  asd_aws_error err;
  asd_aws_error_clear(&err);
  if (asd_aws_parse_credentials_json(text, size, "fuzz", &c, &err) == 0) {
    FUZZ_CHECK(c.access_key_id && *c.access_key_id && c.secret_access_key && *c.secret_access_key);
  } else {
    check_error(&err);
  }
  asd_aws_credentials_free(&c);

  asd_aws_error_clear(&err);
  if (asd_sts_parse_credentials(text, size, &c, &err) == 0)
    FUZZ_CHECK(c.access_key_id && c.secret_access_key);
  else
    check_error(&err);
  asd_aws_credentials_free(&c);

  double t;
  (void)asd_aws_parse_iso8601(text, &t);
  free(text);
  return 0;
}
