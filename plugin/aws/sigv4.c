/*
 * sigv4.c: AWS Signature Version 4, signer and verifier.
 *
 * A SigV4 signature is an HMAC over a "string to sign" that hashes a
 * "canonical request": a normalised rendering of method, path, query,
 * headers and payload hash.  Everything that can go wrong with SigV4 goes
 * wrong in the canonicalisation, so this file has exactly one implementation
 * of it, used both by the client (asd_sigv4_sign) and by the local
 * endpoint's verifier (asd_sigv4_verify).  A bug would then show up as a
 * mismatch against the official test vectors or against independent clients
 * (botocore, GDAL), never be hidden by a symmetric bug on the other side.
 *
 * Canonicalisation rules, following the AWS documentation and the SDKs:
 *
 *   - URI: for services other than S3 the path is normalised (empty and "."
 *     segments dropped, ".." pops) and percent-encoded again, so a wire
 *     "%20" is signed as "%2520".  S3 neither normalises nor double-encodes:
 *     the wire path is decoded and encoded once, which maps every correct
 *     encoding of a key (e.g. "~" or "%7E") to one canonical form.
 *   - Query: each name and value is decoded and re-encoded (unreserved
 *     characters A-Z a-z 0-9 - _ . ~ stay, the rest is %XY upper-case), then
 *     the pairs are sorted by name and value; a parameter without '=' is
 *     rendered "name=".
 *   - Headers: names lower-cased, values trimmed with inner runs of white
 *     space (including folded continuation lines) collapsed to one space,
 *     repeated headers joined with ',' in the order received, sorted by name.
 *
 * The signing key (four chained HMACs) only depends on the secret, the date,
 * the region and the service, so a small cache keeps it per scope; on the
 * engine's hot path a request costs one SHA-256 of the canonical request and
 * one HMAC of the string to sign.
 *
 * The verifier never logs or returns the secret or the computed signature;
 * its messages name which part of the request was wrong.
 */
#include "asyncdetect/asd_sigv4.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

/* ----------------------------------------------------------------- helpers */

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int asd_sigv4_uri_encode(asd_buf *out, const char *s, size_t len, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  if (asd_buf_reserve(out, len * 3) != 0) return -1;
  unsigned char *p = out->data + out->len;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      *p++ = c;
    } else {
      *p++ = '%';
      *p++ = (unsigned char)hex[c >> 4];
      *p++ = (unsigned char)hex[c & 15];
    }
  }
  out->len = (size_t)(p - out->data);
  out->data[out->len] = '\0';
  return 0;
}

/* Decodes %XY escapes ('+' stays a plus: SigV4 never treats it as a space);
 * an invalid escape is kept literally. */
static int pct_decode(asd_buf *out, const char *s, size_t len) {
  if (asd_buf_reserve(out, len) != 0) return -1;
  unsigned char *p = out->data + out->len;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '%' && i + 2 < len) {
      int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
      if (h >= 0 && l >= 0) {
        *p++ = (unsigned char)(h * 16 + l);
        i += 2;
        continue;
      }
    }
    *p++ = (unsigned char)s[i];
  }
  out->len = (size_t)(p - out->data);
  out->data[out->len] = '\0';
  return 0;
}

/* Decode then encode once: the canonical form of a wire component. */
static int recode(asd_buf *out, const char *s, size_t len, int keep_slash) {
  asd_buf tmp;
  asd_buf_init(&tmp);
  int rc = pct_decode(&tmp, s, len);
  if (rc == 0) rc = asd_sigv4_uri_encode(out, tmp.data ? (const char *)tmp.data : "", tmp.len, keep_slash);
  asd_buf_free(&tmp);
  return rc;
}

/* Path normalisation for non-S3 services (RFC 3986 dot segments plus
 * removal of empty segments, as the SDKs do). */
static int canonical_uri(asd_buf *out, const char *path, int s3) {
  if (!path || !*path) return asd_buf_append(out, "/", 1);
  size_t len = strlen(path);
  if (s3) return recode(out, path, len, 1);

  /* Collect segments. */
  const char *segs[256];
  size_t seglen[256];
  size_t n = 0;
  const char *p = path;
  const char *end = path + len;
  while (p < end) {
    while (p < end && *p == '/') p++;
    if (p >= end) break;
    const char *q = p;
    while (q < end && *q != '/') q++;
    size_t l = (size_t)(q - p);
    if (l == 1 && p[0] == '.') {
      /* drop */
    } else if (l == 2 && p[0] == '.' && p[1] == '.') {
      if (n) n--;
    } else {
      if (n >= sizeof(segs) / sizeof(segs[0])) return -1;
      segs[n] = p;
      seglen[n] = l;
      n++;
    }
    p = q;
  }
  int trailing = len > 0 && path[len - 1] == '/';
  if (asd_buf_append(out, "/", 1) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    if (i && asd_buf_append(out, "/", 1) != 0) return -1;
    /* Encoding the wire segment again: this is the SDKs' double encoding. */
    if (asd_sigv4_uri_encode(out, segs[i], seglen[i], 0) != 0) return -1;
  }
  if (trailing && n && asd_buf_append(out, "/", 1) != 0) return -1;
  return 0;
}

typedef struct qpair {
  char *name;
  char *value;
} qpair;

static int qpair_cmp(const void *a, const void *b) {
  const qpair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(asd_buf *out, const char *query) {
  if (!query || !*query) return 0;
  size_t cap = 1;
  for (const char *c = query; *c; c++)
    if (*c == '&') cap++;
  qpair *pairs = calloc(cap, sizeof(*pairs));
  if (!pairs) return -1;
  size_t n = 0;
  int rc = 0;
  const char *p = query;
  while (*p && rc == 0) {
    const char *amp = strchr(p, '&');
    size_t l = amp ? (size_t)(amp - p) : strlen(p);
    if (l) {
      const char *eq = memchr(p, '=', l);
      size_t nl = eq ? (size_t)(eq - p) : l;
      asd_buf bn, bv;
      asd_buf_init(&bn);
      asd_buf_init(&bv);
      if (recode(&bn, p, nl, 0) != 0 || asd_buf_append(&bn, "", 0) != 0) rc = -1;
      if (rc == 0 && eq && recode(&bv, eq + 1, l - nl - 1, 0) != 0) rc = -1;
      if (rc == 0 && asd_buf_append(&bv, "", 0) != 0) rc = -1;
      pairs[n].name = (char *)asd_buf_take(&bn, NULL);
      pairs[n].value = (char *)asd_buf_take(&bv, NULL);
      n++;
      asd_buf_free(&bn);
      asd_buf_free(&bv);
    }
    p += l;
    if (*p == '&') p++;
  }
  if (rc == 0) {
    qsort(pairs, n, sizeof(*pairs), qpair_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (i) rc |= asd_buf_append(out, "&", 1);
      rc |= asd_buf_append_str(out, pairs[i].name);
      rc |= asd_buf_append(out, "=", 1);
      rc |= asd_buf_append_str(out, pairs[i].value);
    }
  }
  for (size_t i = 0; i < n; i++) {
    free(pairs[i].name);
    free(pairs[i].value);
  }
  free(pairs);
  return rc ? -1 : 0;
}

typedef struct hentry {
  char name[128]; /* lower-cased */
  const char *value;
  size_t value_len;
  size_t order;
} hentry;

static int hentry_cmp(const void *a, const void *b) {
  const hentry *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends a header value trimmed, with runs of white space (folded lines
 * included) collapsed to a single space. */
static int append_trimmed(asd_buf *out, const char *v, size_t len) {
  size_t i = 0;
  while (i < len && isspace((unsigned char)v[i])) i++;
  while (len > i && isspace((unsigned char)v[len - 1])) len--;
  if (asd_buf_reserve(out, len - i) != 0) return -1;
  int space = 0;
  for (; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if (isspace(c)) {
      space = 1;
      continue;
    }
    if (space) {
      out->data[out->len++] = ' ';
      space = 0;
    }
    out->data[out->len++] = c;
  }
  out->data[out->len] = '\0';
  return 0;
}

/* Builds canonical headers and the signed-headers list.  The token header is
 * added when token is non-NULL and not already present. */
static int canonical_headers(asd_buf *out, asd_buf *signed_headers, const asd_sigv4_header *hs,
                             size_t n, const char *token) {
  hentry stack[24];
  hentry *e = n + 1 <= sizeof(stack) / sizeof(stack[0]) ? stack : malloc((n + 1) * sizeof(*e));
  if (!e) return -1;
  size_t m = 0;
  int have_token = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    size_t nl = hs[i].name_len ? hs[i].name_len : strlen(hs[i].name);
    /* Trim the name too: a sloppy "Name :" must still match. */
    const char *nm = hs[i].name;
    while (nl && isspace((unsigned char)*nm)) nm++, nl--;
    while (nl && isspace((unsigned char)nm[nl - 1])) nl--;
    if (nl == 0 || nl >= sizeof(e[0].name)) {
      rc = -1;
      goto done;
    }
    for (size_t k = 0; k < nl; k++) e[m].name[k] = (char)tolower((unsigned char)nm[k]);
    e[m].name[nl] = '\0';
    e[m].value = hs[i].value ? hs[i].value : "";
    e[m].value_len = hs[i].value_len ? hs[i].value_len : strlen(e[m].value);
    e[m].order = i;
    if (strcmp(e[m].name, "x-amz-security-token") == 0) have_token = 1;
    m++;
  }
  if (token && !have_token) {
    strcpy(e[m].name, "x-amz-security-token");
    e[m].value = token;
    e[m].value_len = strlen(token);
    e[m].order = n;
    m++;
  }
  qsort(e, m, sizeof(*e), hentry_cmp);
  for (size_t i = 0; i < m; i++) {
    int same = i > 0 && strcmp(e[i].name, e[i - 1].name) == 0;
    if (same) {
      rc |= asd_buf_append(out, ",", 1);
    } else {
      if (i) {
        rc |= asd_buf_append(out, "\n", 1);
        rc |= asd_buf_append(signed_headers, ";", 1);
      }
      rc |= asd_buf_append_str(out, e[i].name);
      rc |= asd_buf_append(out, ":", 1);
      rc |= asd_buf_append_str(signed_headers, e[i].name);
    }
    rc |= append_trimmed(out, e[i].value, e[i].value_len);
  }
  if (m) rc |= asd_buf_append(out, "\n", 1);
done:
  if (e != stack) free(e);
  return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ dates */

void asd_sigv4_format_amz_date(double epoch_seconds, char out[17]) {
  time_t t = (time_t)epoch_seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int asd_sigv4_parse_amz_date(const char *s, double *epoch_seconds) {
  if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z') return -1;
  for (int i = 0; i < 15; i++)
    if (i != 8 && !isdigit((unsigned char)s[i])) return -1;
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
  tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
  tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
  tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
  tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
  tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return -1;
  *epoch_seconds = (double)timegm(&tm);
  return 0;
}

/* ----------------------------------------------------------------- signing */

void asd_sigv4_derive_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char key[32]) {
  size_t sl = strlen(secret);
  char *k = malloc(sl + 5);
  unsigned char a[32], b[32];
  if (!k) {
    memset(key, 0, 32);
    return;
  }
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, sl + 1);
  asd_hmac_sha256(k, sl + 4, date8, strlen(date8), a);
  asd_hmac_sha256(a, 32, region, strlen(region), b);
  asd_hmac_sha256(b, 32, service, strlen(service), a);
  asd_hmac_sha256(a, 32, "aws4_request", 12, key);
  OPENSSL_cleanse(k, sl + 4);
  OPENSSL_cleanse(a, sizeof(a));
  OPENSSL_cleanse(b, sizeof(b));
  free(k);
}

void asd_sigv4_signature_init(asd_sigv4_signature *sig) {
  asd_buf_init(&sig->canonical_request);
  asd_buf_init(&sig->string_to_sign);
  asd_buf_init(&sig->authorization);
  asd_buf_init(&sig->signed_headers);
  sig->signature[0] = '\0';
}

void asd_sigv4_signature_free(asd_sigv4_signature *sig) {
  asd_buf_free(&sig->canonical_request);
  asd_buf_free(&sig->string_to_sign);
  asd_buf_free(&sig->authorization);
  asd_buf_free(&sig->signed_headers);
  sig->signature[0] = '\0';
}

static int sign_error(asd_sigv4_signature *sig, const char *msg) {
  asd_buf_reset(&sig->authorization);
  asd_buf_append_str(&sig->authorization, msg);
  return -1;
}

/* Appends strings one after the other.  Signing runs for every request, and
 * printf-style formatting is slow here: once any library in the process has
 * registered a printf extension (libquadmath, pulled in by GDAL's
 * dependencies, does), glibc sends every printf call down its slow
 * positional path. */
static int append_parts(asd_buf *b, const char *const *parts, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) rc |= asd_buf_append_str(b, parts[i]);
  return rc;
}

/* Shared by signer and verifier: fills canonical request, string to sign and
 * signature for p.  add_token controls whether p->session_token is added to
 * the signed headers (the verifier works from received headers only). */
static int compute(const asd_sigv4_params *p, asd_sigv4_signature *sig, int add_token) {
  if (!p || !p->method || !p->region || !p->service || !p->amz_date || !p->access_key_id)
    return sign_error(sig, "SigV4: missing method, region, service, date or access key");
  if (!p->signing_key && !p->secret_access_key) return sign_error(sig, "SigV4: missing secret key");
  double t;
  if (asd_sigv4_parse_amz_date(p->amz_date, &t) != 0)
    return sign_error(sig, "SigV4: amz_date is not YYYYMMDDTHHMMSSZ");
  int s3 = strcmp(p->service, "s3") == 0;
  asd_buf_reset(&sig->canonical_request);
  asd_buf_reset(&sig->string_to_sign);
  asd_buf_reset(&sig->authorization);
  asd_buf_reset(&sig->signed_headers);
  asd_buf *cr = &sig->canonical_request;
  int rc = 0;
  rc |= asd_buf_append_str(cr, p->method);
  rc |= asd_buf_append(cr, "\n", 1);
  if (rc == 0 && canonical_uri(cr, p->path, s3) != 0) return sign_error(sig, "SigV4: path too deep");
  rc |= asd_buf_append(cr, "\n", 1);
  rc |= canonical_query(cr, p->query);
  rc |= asd_buf_append(cr, "\n", 1);
  if (rc == 0 && canonical_headers(cr, &sig->signed_headers, p->headers, p->n_headers,
                                   add_token ? p->session_token : NULL) != 0)
    return sign_error(sig, "SigV4: invalid header name");
  rc |= asd_buf_append(cr, "\n", 1);
  rc |= asd_buf_append(cr, sig->signed_headers.data ? (const char *)sig->signed_headers.data : "",
                       sig->signed_headers.len);
  rc |= asd_buf_append(cr, "\n", 1);
  rc |= asd_buf_append_str(cr, p->payload_hash ? p->payload_hash : ASD_SIGV4_EMPTY_SHA256);
  if (rc) return sign_error(sig, "SigV4: out of memory");

  char crhash[65];
  asd_sha256_hex(cr->data, cr->len, crhash);
  char date8[9];
  memcpy(date8, p->amz_date, 8);
  date8[8] = '\0';
  asd_buf *sts = &sig->string_to_sign;
  const char *sts_parts[] = {ASD_SIGV4_ALGORITHM, "\n", p->amz_date, "\n", date8, "/", p->region, "/",
                             p->service, "/aws4_request\n", crhash};
  rc |= append_parts(sts, sts_parts, sizeof(sts_parts) / sizeof(sts_parts[0]));
  if (rc) return sign_error(sig, "SigV4: out of memory");

  unsigned char key[32], mac[32];
  if (p->signing_key)
    memcpy(key, p->signing_key, 32);
  else
    asd_sigv4_derive_key(p->secret_access_key, date8, p->region, p->service, key);
  asd_hmac_sha256(key, 32, sts->data, sts->len, mac);
  OPENSSL_cleanse(key, sizeof(key));
  asd_hex_encode(mac, 32, sig->signature);
  const char *auth_parts[] = {ASD_SIGV4_ALGORITHM, " Credential=", p->access_key_id, "/", date8, "/",
                              p->region, "/", p->service, "/aws4_request, SignedHeaders=",
                              sig->signed_headers.data ? (const char *)sig->signed_headers.data : "",
                              ", Signature=", sig->signature};
  rc |= append_parts(&sig->authorization, auth_parts, sizeof(auth_parts) / sizeof(auth_parts[0]));
  return rc ? sign_error(sig, "SigV4: out of memory") : 0;
}

int asd_sigv4_sign(const asd_sigv4_params *p, asd_sigv4_signature *sig) { return compute(p, sig, 1); }

/* --------------------------------------------------------------- key cache */

#define KEY_CACHE_SLOTS 16

typedef struct key_slot {
  char access_key[128];
  char secret[128];
  char date8[9];
  char region[40];
  char service[24];
  unsigned char key[32];
  unsigned long used;
  int valid;
} key_slot;

struct asd_sigv4_key_cache {
  pthread_mutex_t lock;
  key_slot slots[KEY_CACHE_SLOTS];
  unsigned long tick;
};

asd_sigv4_key_cache *asd_sigv4_key_cache_new(void) {
  asd_sigv4_key_cache *c = calloc(1, sizeof(*c));
  if (c) pthread_mutex_init(&c->lock, NULL);
  return c;
}

void asd_sigv4_key_cache_free(asd_sigv4_key_cache *c) {
  if (!c) return;
  pthread_mutex_destroy(&c->lock);
  OPENSSL_cleanse(c, sizeof(*c));
  free(c);
}

void asd_sigv4_key_cache_get(asd_sigv4_key_cache *c, const char *ak, const char *secret,
                             const char *date8, const char *region, const char *service,
                             unsigned char key[32]) {
  /* Over-long fields are not cached (they would not fit the slot): derive. */
  if (!c || strlen(ak) >= 128 || strlen(secret) >= 128 || strlen(region) >= 40 ||
      strlen(service) >= 24 || strlen(date8) != 8) {
    asd_sigv4_derive_key(secret, date8, region, service, key);
    return;
  }
  pthread_mutex_lock(&c->lock);
  key_slot *victim = &c->slots[0];
  for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
    key_slot *s = &c->slots[i];
    if (s->valid && strcmp(s->access_key, ak) == 0 && strcmp(s->date8, date8) == 0 &&
        strcmp(s->region, region) == 0 && strcmp(s->service, service) == 0 &&
        strcmp(s->secret, secret) == 0) {
      memcpy(key, s->key, 32);
      s->used = ++c->tick;
      pthread_mutex_unlock(&c->lock);
      return;
    }
    if (!s->valid || s->used < victim->used) victim = s;
  }
  pthread_mutex_unlock(&c->lock);
  /* Derive outside the lock; a concurrent miss derives twice, harmlessly. */
  unsigned char k[32];
  asd_sigv4_derive_key(secret, date8, region, service, k);
  memcpy(key, k, 32);
  pthread_mutex_lock(&c->lock);
  snprintf(victim->access_key, sizeof(victim->access_key), "%s", ak);
  snprintf(victim->secret, sizeof(victim->secret), "%s", secret);
  snprintf(victim->date8, sizeof(victim->date8), "%s", date8);
  snprintf(victim->region, sizeof(victim->region), "%s", region);
  snprintf(victim->service, sizeof(victim->service), "%s", service);
  memcpy(victim->key, k, 32);
  victim->used = ++c->tick;
  victim->valid = 1;
  pthread_mutex_unlock(&c->lock);
  OPENSSL_cleanse(k, sizeof(k));
}

/* ---------------------------------------------------------------- verifier */

const char *asd_sigv4_status_code(asd_sigv4_status st, int *http_status) {
  int hs = 403;
  const char *c = "";
  switch (st) {
    case ASD_SIGV4_OK: hs = 200; break;
    case ASD_SIGV4_MISSING: c = "AccessDenied"; break;
    case ASD_SIGV4_MALFORMED: c = "AuthorizationHeaderMalformed"; hs = 400; break;
    case ASD_SIGV4_UNSUPPORTED: c = "InvalidRequest"; hs = 400; break;
    case ASD_SIGV4_INVALID_ACCESS_KEY: c = "InvalidAccessKeyId"; break;
    case ASD_SIGV4_INVALID_TOKEN: c = "InvalidToken"; hs = 400; break;
    case ASD_SIGV4_SIGNATURE_MISMATCH: c = "SignatureDoesNotMatch"; break;
    case ASD_SIGV4_TIME_SKEWED: c = "RequestTimeTooSkewed"; break;
    case ASD_SIGV4_CONTENT_SHA256_MISMATCH: c = "XAmzContentSHA256Mismatch"; hs = 400; break;
  }
  if (http_status) *http_status = hs;
  return c;
}

static asd_sigv4_status vfail(asd_sigv4_verify_result *r, asd_sigv4_status st, const char *fmt,
                              const char *arg) {
  r->status = st;
  snprintf(r->message, sizeof(r->message), fmt, arg ? arg : "");
  return st;
}

/* Finds the first header with this name (case-insensitive). */
static const asd_sigv4_header *find_header(const asd_sigv4_verify_request *req, const char *name,
                                           size_t *vlen) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < req->n_headers; i++) {
    const asd_sigv4_header *h = &req->headers[i];
    size_t hl = h->name_len ? h->name_len : strlen(h->name);
    if (hl == nl && strncasecmp(h->name, name, nl) == 0) {
      if (vlen) *vlen = h->value ? (h->value_len ? h->value_len : strlen(h->value)) : 0;
      return h;
    }
  }
  return NULL;
}

/* Copies a header value, trimmed, into out (truncates safely). */
static void header_copy(const asd_sigv4_header *h, size_t vlen, char *out, size_t size) {
  const char *v = h->value ? h->value : "";
  while (vlen && isspace((unsigned char)*v)) v++, vlen--;
  while (vlen && isspace((unsigned char)v[vlen - 1])) vlen--;
  if (vlen >= size) vlen = size - 1;
  memcpy(out, v, vlen);
  out[vlen] = '\0';
}

static int is_hex64(const char *s) {
  if (strlen(s) != 64) return 0;
  for (int i = 0; i < 64; i++)
    if (hexval((unsigned char)s[i]) < 0) return 0;
  return 1;
}

asd_sigv4_status asd_sigv4_verify(const asd_sigv4_verify_request *req, asd_sigv4_verify_result *r) {
  memset(r, 0, sizeof(*r));
  size_t alen = 0;
  const asd_sigv4_header *ah = find_header(req, "authorization", &alen);
  if (!ah) {
    if (req->query && strstr(req->query, "X-Amz-Signature="))
      return vfail(r, ASD_SIGV4_UNSUPPORTED, "presigned URLs are not supported%s", NULL);
    return vfail(r, ASD_SIGV4_MISSING, "request is not signed (no Authorization header)%s", NULL);
  }
  char auth[4096];
  if (alen >= sizeof(auth))
    return vfail(r, ASD_SIGV4_MALFORMED, "Authorization header is too long%s", NULL);
  header_copy(ah, alen, auth, sizeof(auth));
  size_t algl = strlen(ASD_SIGV4_ALGORITHM);
  if (strncmp(auth, ASD_SIGV4_ALGORITHM, algl) != 0 || (auth[algl] != ' ' && auth[algl] != '\t')) {
    if (strncmp(auth, "AWS ", 4) == 0)
      return vfail(r, ASD_SIGV4_UNSUPPORTED, "Signature Version 2 is not supported; use SigV4%s", NULL);
    return vfail(r, ASD_SIGV4_MALFORMED, "Authorization algorithm is not AWS4-HMAC-SHA256%s", NULL);
  }
  /* Parts separated by ',' with optional white space (GDAL sends none). */
  char *cred = NULL, *signed_list = NULL, *signature = NULL;
  char *save = NULL;
  for (char *tok = strtok_r(auth + algl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ' || *tok == '\t') tok++;
    char *e = tok + strlen(tok);
    while (e > tok && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    if (strncmp(tok, "Credential=", 11) == 0)
      cred = tok + 11;
    else if (strncmp(tok, "SignedHeaders=", 14) == 0)
      signed_list = tok + 14;
    else if (strncmp(tok, "Signature=", 10) == 0)
      signature = tok + 10;
    else
      return vfail(r, ASD_SIGV4_MALFORMED, "unexpected Authorization component '%.40s'", tok);
  }
  if (!cred || !signed_list || !signature)
    return vfail(r, ASD_SIGV4_MALFORMED,
                 "Authorization lacks Credential, SignedHeaders or Signature%s", NULL);
  /* Credential = AKID/date/region/service/aws4_request; split from the right. */
  char *parts[5];
  char *end = cred + strlen(cred);
  for (int i = 4; i >= 1; i--) {
    char *slash = NULL;
    for (char *q = end - 1; q >= cred; q--)
      if (*q == '/') {
        slash = q;
        break;
      }
    if (!slash) return vfail(r, ASD_SIGV4_MALFORMED, "Credential scope is incomplete%s", NULL);
    *slash = '\0';
    parts[i] = slash + 1;
    end = slash;
  }
  parts[0] = cred;
  if (!*parts[0]) return vfail(r, ASD_SIGV4_MALFORMED, "Credential has an empty access key%s", NULL);
  if (strcmp(parts[4], "aws4_request") != 0)
    return vfail(r, ASD_SIGV4_MALFORMED, "Credential scope must end with aws4_request, not '%.40s'",
                 parts[4]);
  snprintf(r->access_key_id, sizeof(r->access_key_id), "%s", parts[0]);
  snprintf(r->region, sizeof(r->region), "%s", parts[2]);
  snprintf(r->service, sizeof(r->service), "%s", parts[3]);
  if (strlen(parts[1]) != 8 || !*parts[2] || !*parts[3])
    return vfail(r, ASD_SIGV4_MALFORMED, "Credential scope date/region/service is invalid%s", NULL);
  if (req->expected_region && *req->expected_region && strcmp(parts[2], req->expected_region) != 0) {
    r->status = ASD_SIGV4_MALFORMED;
    snprintf(r->message, sizeof(r->message), "the region '%.60s' is wrong; expecting '%.60s'",
             parts[2], req->expected_region);
    return r->status;
  }
  if (strlen(signature) != 64 || !is_hex64(signature))
    return vfail(r, ASD_SIGV4_MALFORMED, "Signature is not 64 hex digits%s", NULL);

  size_t dlen = 0;
  const asd_sigv4_header *dh = find_header(req, "x-amz-date", &dlen);
  if (!dh) return vfail(r, ASD_SIGV4_MALFORMED, "missing X-Amz-Date header%s", NULL);
  char amz_date[32];
  header_copy(dh, dlen, amz_date, sizeof(amz_date));
  double t;
  if (asd_sigv4_parse_amz_date(amz_date, &t) != 0)
    return vfail(r, ASD_SIGV4_MALFORMED, "X-Amz-Date '%.32s' is not YYYYMMDDTHHMMSSZ", amz_date);
  if (strncmp(amz_date, parts[1], 8) != 0)
    return vfail(r, ASD_SIGV4_MALFORMED, "Credential date does not match X-Amz-Date%s", NULL);

  /* SignedHeaders must include host and name only headers that exist. */
  int has_host = 0;
  size_t nsigned = 1;
  for (const char *c = signed_list; *c; c++)
    if (*c == ';') nsigned++;
  asd_sigv4_header stackh[32];
  asd_sigv4_header *sh = stackh;
  size_t shcap = sizeof(stackh) / sizeof(stackh[0]);
  if (req->n_headers > shcap) {
    sh = malloc(req->n_headers * sizeof(*sh));
    if (!sh) return vfail(r, ASD_SIGV4_MALFORMED, "out of memory%s", NULL);
    shcap = req->n_headers;
  }
  size_t nsh = 0;
  asd_sigv4_status st = ASD_SIGV4_OK;
  {
    const char *p = signed_list;
    while (*p && st == ASD_SIGV4_OK) {
      const char *semi = strchr(p, ';');
      size_t l = semi ? (size_t)(semi - p) : strlen(p);
      if (l == 4 && strncasecmp(p, "host", 4) == 0) has_host = 1;
      int found = 0;
      for (size_t i = 0; i < req->n_headers; i++) {
        const asd_sigv4_header *h = &req->headers[i];
        size_t hl = h->name_len ? h->name_len : strlen(h->name);
        if (hl == l && strncasecmp(h->name, p, l) == 0 && nsh < shcap) {
          sh[nsh++] = *h;
          found = 1;
        }
      }
      if (!found) {
        char nm[64];
        snprintf(nm, sizeof(nm), "%.*s", (int)(l < 60 ? l : 60), p);
        vfail(r, ASD_SIGV4_MALFORMED, "signed header '%s' is not in the request", nm);
        st = ASD_SIGV4_MALFORMED;
      }
      p += l;
      if (*p == ';') p++;
    }
  }
  (void)nsigned;
  if (st == ASD_SIGV4_OK && !has_host) {
    vfail(r, ASD_SIGV4_MALFORMED, "the host header must be signed%s", NULL);
    st = ASD_SIGV4_MALFORMED;
  }

  int s3 = strcmp(parts[3], "s3") == 0;
  char payload_hash[80];
  if (st == ASD_SIGV4_OK) {
    size_t clen = 0;
    const asd_sigv4_header *ch = find_header(req, "x-amz-content-sha256", &clen);
    const char *body_hash = req->body_sha256_hex ? req->body_sha256_hex : ASD_SIGV4_EMPTY_SHA256;
    if (ch) {
      header_copy(ch, clen, payload_hash, sizeof(payload_hash));
      if (strncmp(payload_hash, "STREAMING-", 10) == 0) {
        vfail(r, ASD_SIGV4_UNSUPPORTED, "streaming (chunked) payload signing is not supported%s",
              NULL);
        st = ASD_SIGV4_UNSUPPORTED;
      } else if (strcmp(payload_hash, ASD_SIGV4_UNSIGNED_PAYLOAD) != 0) {
        if (!is_hex64(payload_hash)) {
          vfail(r, ASD_SIGV4_MALFORMED, "x-amz-content-sha256 is not a SHA-256 hex digest%s", NULL);
          st = ASD_SIGV4_MALFORMED;
        } else if (!req->headers_only && strcasecmp(payload_hash, body_hash) != 0) {
          vfail(r, ASD_SIGV4_CONTENT_SHA256_MISMATCH,
                "x-amz-content-sha256 does not match the SHA-256 of the body received%s", NULL);
          st = ASD_SIGV4_CONTENT_SHA256_MISMATCH;
        }
      }
    } else if (s3) {
      vfail(r, ASD_SIGV4_MALFORMED, "missing x-amz-content-sha256 header (required by S3)%s", NULL);
      st = ASD_SIGV4_MALFORMED;
    } else {
      snprintf(payload_hash, sizeof(payload_hash), "%s", body_hash);
    }
  }

  char token[4096];
  const char *tokp = NULL;
  if (st == ASD_SIGV4_OK) {
    size_t tlen = 0;
    const asd_sigv4_header *th = find_header(req, "x-amz-security-token", &tlen);
    if (th) {
      header_copy(th, tlen, token, sizeof(token));
      tokp = token;
    }
  }

  char secret[256];
  secret[0] = '\0';
  if (st == ASD_SIGV4_OK) {
    int lr = req->lookup ? req->lookup(req->lookup_user, parts[0], tokp, secret, sizeof(secret)) : -1;
    if (lr == -1) {
      vfail(r, ASD_SIGV4_INVALID_ACCESS_KEY,
            "the AWS access key id '%.100s' does not exist in our records", parts[0]);
      st = ASD_SIGV4_INVALID_ACCESS_KEY;
    } else if (lr != 0) {
      vfail(r, ASD_SIGV4_INVALID_TOKEN, "the provided session token is invalid%s", NULL);
      st = ASD_SIGV4_INVALID_TOKEN;
    }
  }

  if (st == ASD_SIGV4_OK) {
    double now = req->now > 0 ? req->now : (double)time(NULL);
    double skew = req->max_skew_seconds > 0 ? req->max_skew_seconds : 900.0;
    if (t - now > skew || now - t > skew) {
      vfail(r, ASD_SIGV4_TIME_SKEWED,
            "the difference between the request time (%s) and the server time is too large",
            amz_date);
      st = ASD_SIGV4_TIME_SKEWED;
    }
  }

  if (st == ASD_SIGV4_OK && !req->headers_only) {
    asd_sigv4_params p;
    memset(&p, 0, sizeof(p));
    p.method = NULL;
    p.path = req->path;
    p.query = req->query;
    p.headers = sh;
    p.n_headers = nsh;
    p.payload_hash = payload_hash;
    p.region = parts[2];
    p.service = parts[3];
    p.amz_date = amz_date;
    p.access_key_id = parts[0];
    p.secret_access_key = secret;
    p.method = req->method ? req->method : "GET";
    asd_sigv4_signature sig;
    asd_sigv4_signature_init(&sig);
    if (compute(&p, &sig, 0) != 0) {
      vfail(r, ASD_SIGV4_MALFORMED, "request could not be canonicalised: %.120s",
            (const char *)sig.authorization.data);
      st = ASD_SIGV4_MALFORMED;
    } else if (CRYPTO_memcmp(sig.signature, signature, 64) != 0) {
      vfail(r, ASD_SIGV4_SIGNATURE_MISMATCH,
            "the request signature we calculated does not match the signature you provided; "
            "check your key and signing method%s",
            NULL);
      st = ASD_SIGV4_SIGNATURE_MISMATCH;
    }
    asd_sigv4_signature_free(&sig);
  }
  OPENSSL_cleanse(secret, sizeof(secret));
  if (sh != stackh) free(sh);
  (void)s3;
  r->status = st;
  if (st == ASD_SIGV4_OK) r->message[0] = '\0';
  return st;
}
