/*
 * vsis3.c: GDAL's /vsis3/ reads on the same terms as the tool's own S3 calls.
 *
 * The tool resolves its endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, a
 * profile's endpoint_url), its region and its credentials (the whole chain:
 * environment, profiles, SSO, assume-role with -assume-role, web identity,
 * ECS, IMDS) itself.  GDAL's /vsis3/ has its own, older rules: GDAL 3.6
 * reads AWS_S3_ENDPOINT, AWS_HTTPS and AWS_VIRTUAL_HOSTING, not the
 * AWS_ENDPOINT_URL* variables, and its own credential chain, which knows
 * nothing of -assume-role.  Left alone, an input named /vsis3/... could be
 * read from another place, with other credentials, than the one the user
 * pointed the tool at, or not at all.
 *
 * So for an input path under /vsis3/ or /vsis3_streaming/, the tool hands
 * GDAL what it resolved, as path-specific options for that bucket only
 * (VSISetPathSpecificOption, GDAL >= 3.6): endpoint host, scheme and
 * addressing style of a custom endpoint, the region, and the current
 * credentials (with their session token, or an empty one).  Nothing global
 * changes: another bucket, another /vsi handler and the user's own GDAL
 * settings behave as before.
 *
 * The user's explicit GDAL configuration wins.  Whoever set GDAL's own
 * endpoint options (AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING, by
 * --config or the environment) keeps their endpoint; whoever set
 * AWS_NO_SIGN_REQUEST, or credentials with --config, or any path-specific
 * option for the bucket, keeps their credentials.  The AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY environment variables are not "explicit GDAL
 * configuration": the tool's chain reads them too, so handing GDAL the
 * resolved credentials changes nothing then, and honours -assume-role.
 *
 * Credentials that expire (assume-role, SSO, STS, IMDS) are the ones
 * current when the input is opened.  asd_vsis3_refresh hands GDAL the
 * context's current ones for every bucket the tool configured, when they
 * changed (asd_aws_context_get_credentials renews them before they expire),
 * and asd_vsis3_configure may be called again too: the buckets whose
 * credentials the tool set are remembered, so that its own options are not
 * taken for the user's (which would freeze them).  GDAL 3.6 copies
 * path-specific credentials into each file handle when it opens it (its
 * "regular" credentials are never refreshed in a handle), so new values
 * reach handles opened after the refresh: a reader that keeps handles open
 * for a long run must reopen them once asd_vsis3_refresh reports a change.
 */
#include "asyncdetect/asd_vsis3.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

/* "/vsis3/" or "/vsis3_streaming/" and the bucket of path; 0 if path is
 * not an S3 path. */
static int split(const char *path, char *prefix, size_t psize, char *bucket, size_t bsize) {
  static const char *const handlers[] = {"/vsis3/", "/vsis3_streaming/", NULL};
  for (int i = 0; handlers[i]; i++) {
    const size_t n = strlen(handlers[i]);
    if (!path || strncmp(path, handlers[i], n) != 0) continue;
    const char *b = path + n, *slash = strchr(b, '/');
    const size_t len = slash ? (size_t)(slash - b) : strlen(b);
    if (len == 0 || len >= bsize) return 0;
    memcpy(bucket, b, len);
    bucket[len] = '\0';
    snprintf(prefix, psize, "%s", handlers[i]);
    return 1;
  }
  return 0;
}

int asd_vsis3_is_s3_path(const char *path) {
  char p[32], b[256];
  return split(path, p, sizeof p, b, sizeof b);
}

/* The buckets whose credentials this process handed to GDAL (a CSL list,
 * under g_mu): their path-specific credentials are the tool's, not the
 * user's, and asd_vsis3_refresh keeps them current. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char **g_buckets = NULL;

static int ours(const char *bucket) {
  pthread_mutex_lock(&g_mu);
  const int found = CSLFindString(g_buckets, bucket) >= 0;
  pthread_mutex_unlock(&g_mu);
  return found;
}

static void remember(const char *bucket) {
  pthread_mutex_lock(&g_mu);
  if (CSLFindString(g_buckets, bucket) < 0) g_buckets = CSLAddString(g_buckets, bucket);
  pthread_mutex_unlock(&g_mu);
}

/* Sets c on both handlers' prefixes of bucket; returns 1 if any of the
 * three values differed from what GDAL held (0: already current). */
static int set_credentials(const char *bucket, const asd_aws_credentials *c) {
  const char *token = c->session_token ? c->session_token : "";
  char prefixes[2][300];
  snprintf(prefixes[0], sizeof prefixes[0], "/vsis3/%s", bucket);
  snprintf(prefixes[1], sizeof prefixes[1], "/vsis3_streaming/%s", bucket);
  int changed = 0;
  for (int i = 0; i < 2; i++) {
    const char *ak = VSIGetPathSpecificOption(prefixes[i], "AWS_ACCESS_KEY_ID", NULL);
    const char *sk = VSIGetPathSpecificOption(prefixes[i], "AWS_SECRET_ACCESS_KEY", NULL);
    const char *tk = VSIGetPathSpecificOption(prefixes[i], "AWS_SESSION_TOKEN", NULL);
    if (ak && sk && tk && strcmp(ak, c->access_key_id) == 0 && strcmp(sk, c->secret_access_key) == 0 &&
        strcmp(tk, token) == 0)
      continue;
    VSISetPathSpecificOption(prefixes[i], "AWS_ACCESS_KEY_ID", c->access_key_id);
    VSISetPathSpecificOption(prefixes[i], "AWS_SECRET_ACCESS_KEY", c->secret_access_key);
    VSISetPathSpecificOption(prefixes[i], "AWS_SESSION_TOKEN", token);
    changed = 1;
  }
  return changed;
}

int asd_vsis3_refresh(asd_aws_context *ctx, asd_aws_error *err) {
  pthread_mutex_lock(&g_mu);
  char **buckets = CSLDuplicate(g_buckets);
  pthread_mutex_unlock(&g_mu);
  int changed = 0, rc = 0;
  if (buckets) {
    asd_aws_credentials c;
    asd_aws_credentials_init(&c);
    rc = asd_aws_context_get_credentials(ctx, &c, err);
    for (int i = 0; rc == 0 && buckets[i]; i++) changed += set_credentials(buckets[i], &c);
    if (changed) CPLDebug("ASYNCDETECT", "/vsis3/: credentials from %s handed to GDAL again", c.source);
    asd_aws_credentials_free(&c);
  }
  CSLDestroy(buckets);
  return rc != 0 ? -1 : changed;
}

/* A key the user set for GDAL: a config option (--config, or the
 * environment for GDAL-only names), or an option for this bucket. */
static int user_set(const char *key, int env_counts, char **const *paths) {
  if (env_counts && CPLGetConfigOption(key, NULL)) return 1;
  char **global = CPLGetConfigOptions();
  const int in_global = CSLFetchNameValue(global, key) != NULL;
  CSLDestroy(global);
  if (in_global || CPLGetThreadLocalConfigOption(key, NULL)) return 1;
  for (int i = 0; paths[i]; i++)
    if (VSIGetPathSpecificOption(*paths[i], key, NULL)) return 1;
  return 0;
}

int asd_vsis3_configure(const char *path, asd_aws_context *ctx, char *info, size_t info_size,
                        asd_aws_error *err) {
  char handler[32], bucket[256];
  if (info && info_size) info[0] = '\0';
  if (!split(path, handler, sizeof handler, bucket, sizeof bucket)) return 0;
  char *p1 = CPLStrdup(CPLSPrintf("/vsis3/%s", bucket));
  char *p2 = CPLStrdup(CPLSPrintf("/vsis3_streaming/%s", bucket));
  char **paths[] = {&p1, &p2, NULL};
  const char *const prefixes[] = {p1, p2};
  int rc = 0;
  char what[768] = "";

  const asd_aws_endpoint *ep = asd_aws_context_endpoint(ctx, ASD_AWS_S3);
  const int own_endpoint = user_set("AWS_S3_ENDPOINT", 1, paths) || user_set("AWS_HTTPS", 1, paths) ||
                           user_set("AWS_VIRTUAL_HOSTING", 1, paths);
  if (ep && ep->custom && !own_endpoint) {
    if (ep->base_path[0]) {
      asd_aws_error_set(err, ASD_AWS_ERR_CONFIG,
                        "GDAL's /vsis3/ cannot use an S3 endpoint with a path (%s): set AWS_S3_ENDPOINT for GDAL",
                        ep->base_url);
      rc = -1;
      goto done;
    }
    for (int i = 0; i < 2; i++) {
      VSISetPathSpecificOption(prefixes[i], "AWS_S3_ENDPOINT", ep->host);
      VSISetPathSpecificOption(prefixes[i], "AWS_HTTPS", ep->https ? "YES" : "NO");
      VSISetPathSpecificOption(prefixes[i], "AWS_VIRTUAL_HOSTING", ep->path_style ? "FALSE" : "TRUE");
    }
    snprintf(what, sizeof what, "endpoint %s", ep->base_url);
  }
  const char *region = asd_aws_context_region(ctx);
  if (region && *region && !user_set("AWS_REGION", 0, paths))
    for (int i = 0; i < 2; i++) VSISetPathSpecificOption(prefixes[i], "AWS_REGION", region);

  /* Credentials this process set earlier for the bucket are its own, not
   * the user's: they are replaced (a refresh), never kept. */
  const int own_creds = user_set("AWS_NO_SIGN_REQUEST", 1, paths) ||
                        (!ours(bucket) && (user_set("AWS_ACCESS_KEY_ID", 0, paths) ||
                                           user_set("AWS_SECRET_ACCESS_KEY", 0, paths)));
  if (!own_creds) {
    asd_aws_credentials c;
    asd_aws_credentials_init(&c);
    if (asd_aws_context_get_credentials(ctx, &c, err) != 0) {
      rc = -1;
      goto done;
    }
    set_credentials(bucket, &c);
    remember(bucket);
    snprintf(what + strlen(what), sizeof what - strlen(what), "%scredentials from %s", what[0] ? ", " : "",
             c.source);
    asd_aws_credentials_free(&c);
  }
  if (info && info_size)
    snprintf(info, info_size, "%s", what[0] ? what : "GDAL's own /vsis3/ settings (configured explicitly)");
done:
  CPLFree(p1);
  CPLFree(p2);
  return rc;
}
