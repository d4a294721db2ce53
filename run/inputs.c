/*
 * inputs.c: what a run is given to work on, before any dataset is opened
 * (inputs.h): source names made safe to write, -input_file_list, -shard.
 *
 * Source labels.  A source can be a presigned URL (/vsicurl/https://...?
 * X-Amz-Signature=...): whoever reads the output, the journal, the metrics
 * or a log line must not get a working signature.  The label is the only
 * form of the name the run writes anywhere; the name as given is used to
 * open the dataset and for nothing else.  Dropping the query string also
 * makes the label stable across presignings, so a journal written with one
 * presigned URL is resumed with a fresh one (signatures expire).
 *
 * Shards.  A part is a contiguous block (asd_shard_range), decided from the
 * count alone: every shard of a fleet computes the same split without
 * talking to the others, and neighbouring tiles stay together, so seams
 * between shards are few (they are merged exactly either way: -merge-shards
 * runs the same streaming merge over the union).
 */
#include "inputs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpl_conv.h"
#include "cpl_string.h"
#include "cpl_vsi.h"

/* "scheme://[userinfo@]host/path?query#fragment" -> without userinfo,
   query and fragment.  A '?' inside a chained path (/vsizip/{...?q}/x)
   ends at the closing brace. */
static char *strip_url(const char *url) {
  const char *scheme_end = strstr(url, "://");
  size_t n = strlen(url);
  char *out = CPLMalloc(n + 1);
  size_t o = 0;
  const char *p = url;
  if (scheme_end) {
    const char *host = scheme_end + 3;
    size_t pre = (size_t)(host - url);
    memcpy(out, url, pre);
    o = pre;
    const char *host_end = host + strcspn(host, "/?#}");
    const char *at = NULL;
    for (const char *q = host; q < host_end; q++)
      if (*q == '@') at = q;
    p = at ? at + 1 : host;
  }
  int skipping = 0;
  for (; *p; p++) {
    if (!skipping && (*p == '?' || *p == '#')) {
      skipping = 1;
      continue;
    }
    if (skipping && *p != '}') continue;
    skipping = 0;
    out[o++] = *p;
  }
  out[o] = '\0';
  return out;
}

/* /vsicurl?url=ENCODED&other=... (GDAL's option form): the URL, decoded. */
static char *vsicurl_option_form(const char *name, const char *prefix) {
  const char *q = name + strlen(prefix) + 1; /* after '?' */
  char **params = CSLTokenizeString2(q, "&", 0);
  char *url = NULL;
  for (char **p = params; p && *p; p++) {
    if (STARTS_WITH_CI(*p, "url=")) {
      int len = 0;
      url = CPLUnescapeString(*p + 4, &len, CPLES_URL);
      break;
    }
  }
  CSLDestroy(params);
  char *stripped = url ? strip_url(url) : CPLStrdup("");
  CPLFree(url);
  char *out = CPLStrdup(CPLSPrintf("%s/%s", prefix, stripped));
  CPLFree(stripped);
  return out;
}

char *asd_source_label(const char *name) {
  if (!name) return CPLStrdup("");
  static const char *const option_forms[] = {"/vsicurl_streaming", "/vsicurl", NULL};
  for (int i = 0; option_forms[i]; i++) {
    size_t n = strlen(option_forms[i]);
    if (strncmp(name, option_forms[i], n) == 0 && name[n] == '?') return vsicurl_option_form(name, option_forms[i]);
  }
  if (!strstr(name, "://")) return CPLStrdup(name);
  return strip_url(name);
}

/* Where a URL quoted in a message ends. */
static int url_end(char c) {
  return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == '`';
}

void asd_scrub_urls(char *text) {
  if (!text) return;
  char *out = text;
  const char *p = text;
  while (*p) {
    const char *scheme = strstr(p, "://");
    if (!scheme) break;
    /* Copy up to the URL's host, then its path, dropping ?query and #fragment. */
    while (p < scheme + 3) *out++ = *p++;
    while (!url_end(*p) && *p != '?' && *p != '#') *out++ = *p++;
    while (!url_end(*p)) p++;
  }
  while (*p) *out++ = *p++;
  *out = '\0';
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
  return s;
}

char **asd_read_input_file_list(const char *path, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  VSILFILE *f = VSIFOpenL(path, "rb");
  if (!f) {
    if (err) snprintf(err, errlen, "-input_file_list: cannot read '%s': %s", path, VSIStrerror(errno));
    return NULL;
  }
  char **list = NULL;
  const char *line;
  /* CPLReadLine2L bounds a line, so a binary file given by mistake cannot
     make one huge allocation. */
  while ((line = CPLReadLine2L(f, 64 * 1024, NULL)) != NULL) {
    char *copy = CPLStrdup(line);
    char *t = trim(copy);
    if (*t && *t != '#') list = CSLAddString(list, t);
    CPLFree(copy);
  }
  VSIFCloseL(f);
  return list;
}

static int parse_count(const char *s, const char *end, int *out) {
  if (s == end || end - s > 9) return -1;
  long v = 0;
  for (const char *p = s; p < end; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  *out = (int)v;
  return 0;
}

int asd_shard_parse(const char *spec, int *k, int *n, char *err, size_t errlen) {
  const char *slash = spec ? strchr(spec, '/') : NULL;
  if (!slash || parse_count(spec, slash, k) != 0 || parse_count(slash + 1, slash + 1 + strlen(slash + 1), n) != 0) {
    snprintf(err, errlen, "option -shard wants K/N (the K-th of N parts, K from 0 to N-1), not '%s'",
             spec ? spec : "");
    return -1;
  }
  if (*n < 1 || *k >= *n) {
    snprintf(err, errlen, "option -shard %s: K must be between 0 and N-1, and N at least 1", spec);
    return -1;
  }
  return 0;
}

void asd_shard_range(int count, int k, int n, int *first, int *end) {
  if (n < 1 || k < 0 || k >= n || count <= 0) {
    *first = *end = 0;
    return;
  }
  *first = (int)((long long)k * count / n);
  *end = (int)((long long)(k + 1) * count / n);
}
