/*
 * common.c: the shared utilities declared in asd_common.h.
 *
 * The random source deserves a word.  Retry and polling jitter is drawn on
 * every request by many threads at once, so a single locked generator would
 * be a point of contention, and rand() is neither thread-safe nor good.  Each
 * thread therefore owns a xoshiro256** state, seeded once from getrandom();
 * the same algorithm serves asd_rng, whose explicit seed makes fault
 * injection reproducible.
 */
#include "asyncdetect/asd_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <pthread.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define ASD_VERSION_STRING "0.1.0"

const char *asd_version(void) { return ASD_VERSION_STRING; }

double asd_time_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double asd_time_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void asd_sleep(double seconds) {
  if (!(seconds > 0)) return;
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  /* Restart after signals so the caller gets the full delay it asked for. */
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------ buffer */

void asd_buf_init(asd_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

int asd_buf_reserve(asd_buf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len - 1) return -1;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int asd_buf_append(asd_buf *b, const void *bytes, size_t n) {
  if (asd_buf_reserve(b, n) != 0) return -1;
  if (n) memcpy(b->data + b->len, bytes, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int asd_buf_append_str(asd_buf *b, const char *s) { return asd_buf_append(b, s, strlen(s)); }

int asd_buf_appendf(asd_buf *b, const char *fmt, ...) {
  /* One formatting pass when the text fits in the room already there (the
   * usual case for a reused buffer), a second only after growing. */
  if (asd_buf_reserve(b, 63) != 0) return -1;
  size_t room = b->cap - b->len;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->data[b->len] = '\0';
    return -1;
  }
  if ((size_t)n >= room) {
    if (asd_buf_reserve(b, (size_t)n) != 0) {
      b->data[b->len] = '\0';
      return -1;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
  return 0;
}

void asd_buf_reset(asd_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

unsigned char *asd_buf_take(asd_buf *b, size_t *len) {
  unsigned char *p = b->data;
  if (len) *len = b->len;
  if (!p) {
    /* An empty buffer still hands over a valid, NUL-terminated block. */
    p = calloc(1, 1);
  }
  asd_buf_init(b);
  return p;
}

void asd_buf_free(asd_buf *b) {
  free(b->data);
  asd_buf_init(b);
}

/* ------------------------------------------------------------------ random */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void asd_rng_seed(asd_rng *rng, uint64_t seed) {
  for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

uint64_t asd_rng_next(asd_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double asd_rng_uniform(asd_rng *rng) { return (double)(asd_rng_next(rng) >> 11) * 0x1.0p-53; }

static _Thread_local asd_rng tls_rng;
static _Thread_local int tls_rng_ready;

static asd_rng *thread_rng(void) {
  if (!tls_rng_ready) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
      /* getrandom cannot fail on Linux >= 3.17 for 8 bytes; still, never
       * leave the generator unseeded. */
      seed = (uint64_t)(asd_time_wall() * 1e9) ^ (uint64_t)(uintptr_t)&seed;
    }
    asd_rng_seed(&tls_rng, seed);
    tls_rng_ready = 1;
  }
  return &tls_rng;
}

uint64_t asd_random_u64(void) { return asd_rng_next(thread_rng()); }
double asd_random_uniform(void) { return asd_rng_uniform(thread_rng()); }

double asd_backoff_delay(double base, double cap, int attempt, double u) {
  if (base <= 0 || cap <= 0) return 0;
  if (u < 0) u = 0;
  if (u > 1) u = 1;
  /* Doubling stops at the cap, so a large attempt number cannot overflow. */
  double v = base;
  for (int i = 0; i < attempt && v < cap; i++) v *= 2;
  return u * (v < cap ? v : cap);
}

void asd_uuid4(char out[37]) {
  unsigned char b[16];
  uint64_t a = asd_random_u64(), c = asd_random_u64();
  memcpy(b, &a, 8);
  memcpy(b + 8, &c, 8);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  /* Hex by hand: one per job, and printf is slow in this process (see
   * sigv4.c's append_parts). */
  static const char digits[] = "0123456789abcdef";
  size_t j = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
    out[j++] = digits[b[i] >> 4];
    out[j++] = digits[b[i] & 15];
  }
  out[j] = '\0';
}

/* ----------------------------------------------------------------- digests */

void asd_hex_encode(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/*
 * OpenSSL 3 resolves an algorithm by name every time SHA256(), HMAC() or
 * EVP_sha256() is used (a locked lookup in its method store), and its
 * one-shot functions allocate and free their contexts on every call: for
 * the short strings of request signing that costs several times the hashing
 * itself, and every signed request hashes and MACs a few times.  So the
 * algorithms are fetched once per process, and each thread keeps one digest
 * context and one HMAC context that it re-initialises per call (the HMAC
 * context already carries its digest, so a new key needs no lookup).  The
 * per-thread contexts are freed when the thread ends.  If anything here
 * fails (an unusual provider configuration), the one-shot functions remain
 * as the fallback.
 */
typedef struct digest_tls {
  EVP_MD_CTX *md;
  EVP_MAC_CTX *mac;
} digest_tls;

static pthread_once_t digests_once = PTHREAD_ONCE_INIT;
static pthread_key_t digests_key;
static int digests_key_ok;
static EVP_MD *md_sha256, *md_md5;
static EVP_MAC_CTX *hmac_sha256_template;

static void digest_tls_free(void *p) {
  digest_tls *t = p;
  if (!t) return;
  EVP_MD_CTX_free(t->md);
  EVP_MAC_CTX_free(t->mac);
  free(t);
}

static void digests_init(void) {
  md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (mac) {
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (c && EVP_MAC_CTX_set_params(c, params) == 1)
      hmac_sha256_template = c;
    else
      EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac); /* the context keeps its own reference */
  }
  digests_key_ok = pthread_key_create(&digests_key, digest_tls_free) == 0;
}

/* This thread's contexts, created on first use; NULL when unavailable. */
static digest_tls *digests_for_thread(void) {
  pthread_once(&digests_once, digests_init);
  if (!digests_key_ok) return NULL;
  digest_tls *t = pthread_getspecific(digests_key);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (md_sha256) t->md = EVP_MD_CTX_new();
  if (hmac_sha256_template) t->mac = EVP_MAC_CTX_dup(hmac_sha256_template);
  if (pthread_setspecific(digests_key, t) != 0) {
    digest_tls_free(t);
    return NULL;
  }
  return t;
}

void asd_sha256(const void *data, size_t len, unsigned char out[32]) {
  const void *p = data ? data : (const void *)"";
  digest_tls *t = digests_for_thread();
  if (t && t->md && EVP_DigestInit_ex2(t->md, md_sha256, NULL) == 1 &&
      EVP_DigestUpdate(t->md, p, len) == 1 && EVP_DigestFinal_ex(t->md, out, NULL) == 1)
    return;
  SHA256(p, len, out);
}

void asd_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char d[32];
  asd_sha256(data, len, d);
  asd_hex_encode(d, 32, out);
}

void asd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     unsigned char out[32]) {
  const void *p = data ? data : (const void *)"";
  digest_tls *t = digests_for_thread();
  size_t out_len = 0;
  if (t && t->mac && EVP_MAC_init(t->mac, key, key_len, NULL) == 1 &&
      EVP_MAC_update(t->mac, p, len) == 1 && EVP_MAC_final(t->mac, out, &out_len, 32) == 1 &&
      out_len == 32)
    return;
  unsigned int n = 32;
  HMAC(EVP_sha256(), key, (int)key_len, p, len, out, &n);
}

void asd_md5_base64(const void *data, size_t len, char out[25]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  pthread_once(&digests_once, digests_init);
  EVP_Digest(data ? data : (const void *)"", len, d, &dlen, md_md5 ? md_md5 : EVP_md5(), NULL);
  EVP_EncodeBlock((unsigned char *)out, d, (int)dlen);
}

size_t asd_max_result_bytes(void) {
  const char *v = CPLGetConfigOption("ASD_MAX_RESULT_BYTES", NULL);
  if (!v || !*v) return ASD_DEFAULT_MAX_RESULT_BYTES;
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  unsigned shift = 0;
  if (end && (*end == 'K' || *end == 'k')) shift = 10, end++;
  else if (end && (*end == 'M' || *end == 'm')) shift = 20, end++;
  else if (end && (*end == 'G' || *end == 'g')) shift = 30, end++;
  if (errno || end == v || *end || n == 0 || v[0] == '-' || n > (SIZE_MAX >> shift)) {
    CPLError(CE_Warning, CPLE_IllegalArg, "ASD_MAX_RESULT_BYTES=%s is not a size in bytes; using %zu",
             v, ASD_DEFAULT_MAX_RESULT_BYTES);
    return ASD_DEFAULT_MAX_RESULT_BYTES;
  }
  return (size_t)n << shift;
}
