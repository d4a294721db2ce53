/*
 * asd_common.h: small utilities shared by every module of gdal_asyncdetect.
 *
 * Everything here is either missing from GDAL's CPL or needed in a form CPL
 * does not give (a growable byte buffer with explicit ownership, a fast
 * thread-safe random source for jitter, SHA-256/MD5 through OpenSSL).  Where
 * CPL already has a tool (string lists, CPLSPrintf, config options, /vsimem/,
 * CPLParseXMLString, mutexes), modules use CPL directly instead.
 *
 * The public C API of the project uses one prefix, asd_, with opaque handles
 * and create/destroy pairs.
 */
#ifndef ASD_COMMON_H
#define ASD_COMMON_H

#include "asd_export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version, e.g. "0.1.0". */
ASD_API const char *asd_version(void);

/* Seconds from an arbitrary origin that never jumps (CLOCK_MONOTONIC). */
ASD_API double asd_time_monotonic(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME). */
ASD_API double asd_time_wall(void);
/* Sleeps for the given number of seconds (fractions allowed, <= 0 returns). */
ASD_API void asd_sleep(double seconds);

/*
 * A growable byte buffer.  The bytes are always followed by a NUL that is not
 * counted in len, so text can be handed to string functions directly.
 * Functions return 0 on success and -1 when memory runs out (the buffer is
 * left as it was).
 */
typedef struct asd_buf {
  unsigned char *data;
  size_t len;
  size_t cap;
} asd_buf;

ASD_API void asd_buf_init(asd_buf *b);
ASD_API int asd_buf_reserve(asd_buf *b, size_t extra);
ASD_API int asd_buf_append(asd_buf *b, const void *bytes, size_t n);
ASD_API int asd_buf_append_str(asd_buf *b, const char *s);
ASD_API int asd_buf_appendf(asd_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
ASD_API void asd_buf_reset(asd_buf *b);
/* Hands the bytes to the caller (free() them) and leaves the buffer empty. */
ASD_API unsigned char *asd_buf_take(asd_buf *b, size_t *len);
ASD_API void asd_buf_free(asd_buf *b);

/*
 * Random numbers.  asd_random_* use a per-thread generator seeded from the
 * kernel, for jitter and identifiers.  asd_rng is a seedable generator
 * (xoshiro256**) for anything that must be reproducible, such as fault
 * injection with a seed.
 */
ASD_API uint64_t asd_random_u64(void);
ASD_API double asd_random_uniform(void); /* in [0, 1) */

typedef struct asd_rng {
  uint64_t s[4];
} asd_rng;
ASD_API void asd_rng_seed(asd_rng *rng, uint64_t seed);
ASD_API uint64_t asd_rng_next(asd_rng *rng);
ASD_API double asd_rng_uniform(asd_rng *rng); /* in [0, 1) */

/*
 * The one retry backoff of the library: capped exponential backoff with full
 * jitter, the AWS SDKs' standard retry mode:
 *   delay = u * min(cap, base * 2^attempt)
 * with attempt counting from 0 and u uniform in [0, 1) (asd_random_uniform();
 * a parameter so that tests can check the bounds).  The HTTP layer's request
 * retries and the engine's job-level retries both use it, each with its own
 * base and cap.
 */
ASD_API double asd_backoff_delay(double base, double cap, int attempt, double u);

/* A random (version 4) UUID in lower-case 8-4-4-4-12 form; out has 37 bytes. */
ASD_API void asd_uuid4(char out[37]);

/*
 * The largest model result the client accepts, in bytes: the GDAL
 * configuration option ASD_MAX_RESULT_BYTES (a number, optionally with a
 * K, M or G suffix for KiB, MiB, GiB), 64 MiB by default.  The download of
 * a result stops as soon as it passes this size and the tile fails with a
 * reason, so at most this much per polling worker is ever held.  An
 * unreadable value gives the default with a CPLError warning.
 */
#define ASD_DEFAULT_MAX_RESULT_BYTES ((size_t)64 << 20)
ASD_API size_t asd_max_result_bytes(void);

/* Lower-case hex of n bytes into out, which must hold 2n+1 bytes. */
ASD_API void asd_hex_encode(const unsigned char *in, size_t n, char *out);

/* Digests through OpenSSL. */
ASD_API void asd_sha256(const void *data, size_t len, unsigned char out[32]);
ASD_API void asd_sha256_hex(const void *data, size_t len, char out[65]);
ASD_API void asd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     unsigned char out[32]);
/* Base64 of the MD5 digest, as S3's Content-MD5 header wants (25 bytes). */
ASD_API void asd_md5_base64(const void *data, size_t len, char out[25]);

#ifdef __cplusplus
}
#endif

#endif /* ASD_COMMON_H */
