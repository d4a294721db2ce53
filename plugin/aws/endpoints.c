/*
 * endpoints.c: shared config files, region and endpoint resolution.
 *
 * AWS users configure tools through ~/.aws/credentials, ~/.aws/config and a
 * handful of environment variables, and expect every tool to read them the
 * same way the AWS CLI does.  This file implements that reading:
 *
 *   - The two files are INI-like.  The credentials file names sections
 *     "[name]"; the config file names them "[profile name]" except for
 *     "[default]".  Indented lines under a key with an empty value are
 *     nested settings (e.g. "s3 =\n  addressing_style = path"); they are
 *     accepted and ignored.  A line that is none of these is an error naming
 *     the file and line, because silently skipping it could mean using the
 *     wrong account.
 *   - Region: explicit, AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
 *   - Endpoints: explicit, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the
 *     profile's endpoint_url, else the real AWS host name of the region
 *     (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true disables the overrides, as in
 *     the SDKs).  Custom endpoints use path-style S3 addressing, since a
 *     local server cannot answer bucket subdomains.
 *   - The IAM Identity Center (SSO) portal, which is not one of the
 *     context's services because its region is the profile's sso_region,
 *     not the context's: AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL, the
 *     profile's endpoint_url, else portal.sso.<sso_region>.amazonaws.com.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cpl_conv.h>
#include <cpl_string.h>

#include "aws_internal.h"

/* ---------------------------------------------------------------- INI */

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static int ini_add(asd_ini *ini, const char *section, const char *key, const char *value) {
  asd_ini_entry *n = realloc(ini->entries, (ini->n + 1) * sizeof(*n));
  if (!n) return -1;
  ini->entries = n;
  asd_ini_entry *e = &n[ini->n];
  e->section = strdup(section);
  e->key = strdup(key);
  e->value = strdup(value);
  if (!e->section || !e->key || !e->value) {
    free(e->section);
    free(e->key);
    free(e->value);
    return -1;
  }
  for (char *k = e->key; *k; k++) *k = (char)tolower((unsigned char)*k);
  ini->n++;
  return 0;
}

int asd_ini_parse(const char *text, const char *path, int is_config, asd_ini *out, asd_aws_error *err) {
  memset(out, 0, sizeof(*out));
  out->path = strdup(path ? path : "");
  char *copy = strdup(text ? text : "");
  if (!copy || !out->path) {
    free(copy);
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory reading %s", path);
    return -1;
  }
  char section[256] = "";
  int have_section = 0;
  int in_nested = 0; /* after "key =" with an empty value */
  int lineno = 0;
  char *save = NULL;
  int rc = 0;
  /* strtok_r would merge empty lines and lose line numbers: walk by hand. */
  char *p = copy;
  (void)save;
  while (p && rc == 0) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    lineno++;
    char *raw = p;
    p = nl ? nl + 1 : NULL;
    size_t rl = strlen(raw);
    if (rl && raw[rl - 1] == '\r') raw[--rl] = '\0';
    int indented = raw[0] == ' ' || raw[0] == '\t';
    char *line = trim(raw);
    if (!*line || *line == '#' || *line == ';') continue;
    if (*line == '[') {
      char *close = strchr(line, ']');
      if (!close) {
        asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                          "AWS %s file '%s' line %d: section header '[' has no closing ']'",
                          is_config ? "config" : "credentials", path, lineno);
        rc = -1;
        break;
      }
      *close = '\0';
      char *name = trim(line + 1);
      char *rest = trim(close + 1);
      if (*rest && *rest != '#' && *rest != ';') {
        asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                          "AWS %s file '%s' line %d: unexpected text after section header",
                          is_config ? "config" : "credentials", path, lineno);
        rc = -1;
        break;
      }
      if (!*name) {
        asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS %s file '%s' line %d: empty section name",
                          is_config ? "config" : "credentials", path, lineno);
        rc = -1;
        break;
      }
      if (is_config && strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]))
        name = trim(name + 8);
      snprintf(section, sizeof(section), "%s", name);
      have_section = 1;
      in_nested = 0;
      continue;
    }
    if (indented && in_nested) continue; /* nested setting: accepted, ignored */
    char *eq = strchr(line, '=');
    if (!eq) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "AWS %s file '%s' line %d: expected 'key = value' or '[section]'",
                        is_config ? "config" : "credentials", path, lineno);
      rc = -1;
      break;
    }
    if (!have_section) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "AWS %s file '%s' line %d: setting outside of any [section]",
                        is_config ? "config" : "credentials", path, lineno);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *key = trim(line);
    char *value = trim(eq + 1);
    if (!*key) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS %s file '%s' line %d: empty key",
                        is_config ? "config" : "credentials", path, lineno);
      rc = -1;
      break;
    }
    in_nested = *value == '\0';
    if (ini_add(out, section, key, value) != 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory reading %s", path);
      rc = -1;
    }
  }
  free(copy);
  if (rc != 0) asd_ini_free(out);
  return rc;
}

int asd_ini_load(const char *path, int is_config, asd_ini *out, asd_aws_error *err) {
  memset(out, 0, sizeof(*out));
  FILE *f = fopen(path, "rb");
  if (!f) {
    out->path = strdup(path);
    return 0; /* a missing file is simply empty, as for the SDKs */
  }
  asd_buf b;
  asd_buf_init(&b);
  char chunk[4096];
  size_t n;
  int rc = 0;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (b.len + n > (1u << 22)) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS %s file '%s' is larger than 4 MiB",
                        is_config ? "config" : "credentials", path);
      rc = -1;
      break;
    }
    if (asd_buf_append(&b, chunk, n) != 0) {
      rc = -1;
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "out of memory reading %s", path);
      break;
    }
  }
  fclose(f);
  if (rc == 0) {
    if (b.len && memchr(b.data, '\0', b.len)) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "AWS %s file '%s' is binary, not text",
                        is_config ? "config" : "credentials", path);
      rc = -1;
    } else {
      rc = asd_ini_parse(b.data ? (const char *)b.data : "", path, is_config, out, err);
    }
  }
  asd_buf_free(&b);
  return rc;
}

void asd_ini_free(asd_ini *ini) {
  if (!ini) return;
  for (size_t i = 0; i < ini->n; i++) {
    free(ini->entries[i].section);
    free(ini->entries[i].key);
    if (ini->entries[i].value) {
      memset(ini->entries[i].value, 0, strlen(ini->entries[i].value));
      free(ini->entries[i].value);
    }
  }
  free(ini->entries);
  free(ini->path);
  memset(ini, 0, sizeof(*ini));
}

const char *asd_ini_get(const asd_ini *ini, const char *section, const char *key) {
  /* The last occurrence wins, as in the CLI. */
  const char *v = NULL;
  for (size_t i = 0; i < ini->n; i++)
    if (strcmp(ini->entries[i].section, section) == 0 && strcasecmp(ini->entries[i].key, key) == 0)
      v = ini->entries[i].value;
  return v;
}

int asd_ini_has_section(const asd_ini *ini, const char *section) {
  for (size_t i = 0; i < ini->n; i++)
    if (strcmp(ini->entries[i].section, section) == 0) return 1;
  return 0;
}

char *asd_aws_home_path(const char *rel) {
  const char *home = getenv("HOME");
  if (!home || !*home) home = "/";
  size_t n = strlen(home) + strlen(rel) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", home, rel);
  return p;
}

static char *expand_user(const char *p) {
  if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) return asd_aws_home_path(p[1] ? p + 2 : "");
  return strdup(p);
}

char *asd_aws_credentials_file_path(void) {
  const char *e = getenv("AWS_SHARED_CREDENTIALS_FILE");
  return e && *e ? expand_user(e) : asd_aws_home_path(".aws/credentials");
}

char *asd_aws_config_file_path(void) {
  const char *e = getenv("AWS_CONFIG_FILE");
  return e && *e ? expand_user(e) : asd_aws_home_path(".aws/config");
}

const char *asd_aws_profile_name(const char *explicit_profile) {
  if (explicit_profile && *explicit_profile) return explicit_profile;
  const char *e = getenv("AWS_PROFILE");
  if (e && *e) return e;
  e = getenv("AWS_DEFAULT_PROFILE");
  if (e && *e) return e;
  return "default";
}

char *asd_aws_profile_value(const char *profile, const char *key) {
  asd_aws_error err;
  asd_aws_error_clear(&err);
  char *result = NULL;
  char *cp = asd_aws_credentials_file_path();
  char *fp = asd_aws_config_file_path();
  asd_ini ini;
  if (cp && asd_ini_load(cp, 0, &ini, &err) == 0) {
    const char *v = asd_ini_get(&ini, profile, key);
    if (v) result = strdup(v);
    asd_ini_free(&ini);
  }
  if (!result && fp && asd_ini_load(fp, 1, &ini, &err) == 0) {
    const char *v = asd_ini_get(&ini, profile, key);
    if (v) result = strdup(v);
    asd_ini_free(&ini);
  }
  free(cp);
  free(fp);
  return result;
}

/* ---------------------------------------------------------------- region */

static int region_valid(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > 50) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)r[i]) || r[i] == '-')) return 0;
  return 1;
}

int asd_aws_resolve_region(const char *explicit_region, const char *profile, char *out, size_t size,
                           asd_aws_error *err) {
  const char *src = "configuration";
  const char *r = NULL;
  char *fromfile = NULL;
  const char *e;
  if (explicit_region && *explicit_region) {
    r = explicit_region;
  } else if ((e = getenv("AWS_REGION")) && *e) {
    r = e;
    src = "AWS_REGION";
  } else if ((e = getenv("AWS_DEFAULT_REGION")) && *e) {
    r = e;
    src = "AWS_DEFAULT_REGION";
  }
  if (!r) {
    const char *pn = asd_aws_profile_name(profile);
    /* The region lives in the config file; malformed files are reported. */
    char *fp = asd_aws_config_file_path();
    asd_ini ini;
    asd_aws_error e2;
    asd_aws_error_clear(&e2);
    if (fp && asd_ini_load(fp, 1, &ini, &e2) == 0) {
      const char *v = asd_ini_get(&ini, pn, "region");
      if (v && *v) fromfile = strdup(v);
      asd_ini_free(&ini);
    } else if (fp) {
      if (err) *err = e2;
      free(fp);
      return -1;
    }
    free(fp);
    r = fromfile;
    src = "profile";
  }
  if (!r) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION) or 'region' "
                      "in profile '%s' of the AWS config file",
                      asd_aws_profile_name(profile));
    return -1;
  }
  if (!region_valid(r)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid AWS region '%.60s' (from %s)", r, src);
    free(fromfile);
    return -1;
  }
  snprintf(out, size, "%s", r);
  free(fromfile);
  return 0;
}

/* -------------------------------------------------------------- endpoints */

int asd_aws_parse_endpoint_url(const char *url, asd_aws_endpoint *out, asd_aws_error *err) {
  memset(out, 0, sizeof(*out));
  if (!url || !*url) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "empty endpoint URL");
    return -1;
  }
  const char *p;
  if (strncasecmp(url, "https://", 8) == 0) {
    out->https = 1;
    p = url + 8;
  } else if (strncasecmp(url, "http://", 7) == 0) {
    p = url + 7;
  } else {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "invalid endpoint URL '%.200s': must start with http:// or https://", url);
    return -1;
  }
  size_t hl = strcspn(p, "/?#");
  if (p[hl] == '?' || p[hl] == '#' || strchr(p + hl, '?') || strchr(p + hl, '#')) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "invalid endpoint URL '%.200s': query strings and fragments are not allowed", url);
    return -1;
  }
  if (memchr(p, '@', hl)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                      "invalid endpoint URL '%.200s': user information is not allowed", url);
    return -1;
  }
  char hostport[256];
  if (hl == 0 || hl >= sizeof(hostport)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': missing or too long host", url);
    return -1;
  }
  memcpy(hostport, p, hl);
  hostport[hl] = '\0';
  /* Split an optional port ([v6]:port or host:port). */
  char *port = NULL;
  char *host = hostport;
  if (host[0] == '[') {
    char *close = strchr(host, ']');
    if (!close) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': unterminated IPv6 address", url);
      return -1;
    }
    if (close[1] == ':') port = close + 2;
    else if (close[1]) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': bad host", url);
      return -1;
    }
    close[1] = '\0';
  } else {
    char *colon = strchr(host, ':');
    if (colon) {
      *colon = '\0';
      port = colon + 1;
    }
  }
  if (!*host) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': empty host", url);
    return -1;
  }
  for (const char *c = host; *c; c++) {
    unsigned char ch = (unsigned char)*c;
    if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == '[' || ch == ']' || ch == ':')) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "invalid endpoint URL '%.200s': bad character in host name", url);
      return -1;
    }
  }
  long portnum = 0;
  if (port) {
    char *end = NULL;
    errno = 0;
    portnum = strtol(port, &end, 10);
    if (!*port || *end || errno || portnum < 1 || portnum > 65535) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': bad port '%.20s'", url, port);
      return -1;
    }
  }
  int default_port = !port || portnum == (out->https ? 443 : 80);
  if (default_port)
    snprintf(out->host, sizeof(out->host), "%s", host);
  else
    snprintf(out->host, sizeof(out->host), "%s:%ld", host, portnum);
  /* Base path without trailing slashes. */
  const char *path = p + hl;
  size_t pl = strlen(path);
  while (pl && path[pl - 1] == '/') pl--;
  if (pl >= sizeof(out->base_path)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid endpoint URL '%.200s': path too long", url);
    return -1;
  }
  memcpy(out->base_path, path, pl);
  out->base_path[pl] = '\0';
  snprintf(out->base_url, sizeof(out->base_url), "%s://%s%s", out->https ? "https" : "http",
           out->host, out->base_path);
  out->custom = 1;
  out->path_style = 1;
  return 0;
}

static const char *service_env(asd_aws_service svc) {
  switch (svc) {
    case ASD_AWS_S3: return "AWS_ENDPOINT_URL_S3";
    case ASD_AWS_SAGEMAKER_RUNTIME: return "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME";
    case ASD_AWS_STS: return "AWS_ENDPOINT_URL_STS";
  }
  return "AWS_ENDPOINT_URL";
}

static int env_true(const char *name) {
  const char *v = getenv(name);
  return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

/* The configured URL of a service, if any: the override, then the
 * service's AWS_ENDPOINT_URL_<ID>, AWS_ENDPOINT_URL, the profile's
 * endpoint_url.  *fromprofile is malloc'ed when the profile supplied it. */
static const char *configured_url(const char *env_name, const char *override_url, const char *profile,
                                  char **fromprofile, const char **src) {
  *fromprofile = NULL;
  *src = "configuration";
  if (override_url && *override_url) return override_url;
  if (env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) return NULL;
  const char *e = getenv(env_name);
  if (e && *e) {
    *src = env_name;
    return e;
  }
  if ((e = getenv("AWS_ENDPOINT_URL")) && *e) {
    *src = "AWS_ENDPOINT_URL";
    return e;
  }
  *fromprofile = asd_aws_profile_value(asd_aws_profile_name(profile), "endpoint_url");
  if (*fromprofile && **fromprofile) {
    *src = "profile endpoint_url";
    return *fromprofile;
  }
  return NULL;
}

/* The SSO portal (sso) and SSO OIDC (oidc) endpoints: their own variable,
   else the general ones, else https://<host_prefix>.<sso_region>.amazonaws.com. */
static int resolve_sso_service(const char *env_name, const char *host_prefix, const char *signing_name,
                               const char *sso_region, const char *override_url, const char *profile,
                               asd_aws_endpoint *out, asd_aws_error *err);

int asd_aws_resolve_sso_endpoint(const char *sso_region, const char *override_url, const char *profile,
                                 asd_aws_endpoint *out, asd_aws_error *err) {
  return resolve_sso_service("AWS_ENDPOINT_URL_SSO", "portal.sso", "awsssoportal", sso_region, override_url, profile,
                             out, err);
}

int asd_aws_resolve_sso_oidc_endpoint(const char *sso_region, const char *override_url, const char *profile,
                                      asd_aws_endpoint *out, asd_aws_error *err) {
  return resolve_sso_service("AWS_ENDPOINT_URL_SSO_OIDC", "oidc", "sso-oauth", sso_region, override_url, profile,
                             out, err);
}

static int resolve_sso_service(const char *env_name, const char *host_prefix, const char *signing_name,
                               const char *sso_region, const char *override_url, const char *profile,
                               asd_aws_endpoint *out, asd_aws_error *err) {
  char *fromprofile = NULL;
  const char *src = NULL;
  const char *url = configured_url(env_name, override_url, profile, &fromprofile, &src);
  int rc = 0;
  if (url) {
    asd_aws_error e2;
    asd_aws_error_clear(&e2);
    if (asd_aws_parse_endpoint_url(url, out, &e2) != 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s (from %s)", e2.message, src);
      rc = -1;
    }
  } else if (!sso_region || !region_valid(sso_region)) {
    asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "invalid sso_region '%.60s'", sso_region ? sso_region : "");
    rc = -1;
  } else {
    memset(out, 0, sizeof(*out));
    const char *suffix = strncmp(sso_region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    snprintf(out->host, sizeof(out->host), "%s.%s.%s", host_prefix, sso_region, suffix);
    snprintf(out->base_url, sizeof(out->base_url), "https://%s", out->host);
    out->https = 1;
  }
  free(fromprofile);
  if (rc == 0) {
    snprintf(out->signing_region, sizeof(out->signing_region), "%s", sso_region ? sso_region : "");
    snprintf(out->signing_name, sizeof(out->signing_name), "%s", signing_name);
  }
  return rc;
}

int asd_aws_resolve_endpoint(asd_aws_service svc, const char *region, const char *override_url,
                             const char *profile, int s3_path_style, asd_aws_endpoint *out,
                             asd_aws_error *err) {
  char *fromprofile = NULL;
  const char *src = NULL;
  const char *url = configured_url(service_env(svc), override_url, profile, &fromprofile, &src);
  const char *signing = svc == ASD_AWS_S3 ? "s3" : svc == ASD_AWS_STS ? "sts" : "sagemaker";
  if (url) {
    asd_aws_error e2;
    asd_aws_error_clear(&e2);
    if (asd_aws_parse_endpoint_url(url, out, &e2) != 0) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "%s (from %s)", e2.message, src);
      free(fromprofile);
      return -1;
    }
    free(fromprofile);
    if (svc == ASD_AWS_S3 && s3_path_style == 0) out->path_style = 0;
  } else {
    free(fromprofile);
    if (!region || !*region) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG, "no AWS region to build the %s endpoint from", signing);
      return -1;
    }
    memset(out, 0, sizeof(*out));
    const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    if (svc == ASD_AWS_S3)
      snprintf(out->host, sizeof(out->host), "s3.%s.%s", region, suffix);
    else if (svc == ASD_AWS_STS)
      snprintf(out->host, sizeof(out->host), "sts.%s.%s", region, suffix);
    else
      snprintf(out->host, sizeof(out->host), "runtime.sagemaker.%s.%s", region, suffix);
    snprintf(out->base_url, sizeof(out->base_url), "https://%s", out->host);
    out->https = 1;
    out->custom = 0;
    out->path_style = svc == ASD_AWS_S3 ? (s3_path_style == 1) : 1;
  }
  snprintf(out->signing_region, sizeof(out->signing_region), "%s", region ? region : "");
  snprintf(out->signing_name, sizeof(out->signing_name), "%s", signing);
  return 0;
}
