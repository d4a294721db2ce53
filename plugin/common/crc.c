/*
 * crc.c: CRC-32C and CRC-32 for S3's flexible checksums (asd_crc.h).
 *
 * Why CRC-32C.  Over HTTPS the AWS SDKs no longer hash a PUT body for the
 * signature (UNSIGNED-PAYLOAD: TLS protects it in transit) and send a
 * CRC-32C instead, which S3 checks end to end.  With the CPU's crc32
 * instruction that costs a fraction of a SHA-256 pass.
 *
 * Where it comes from.  Neither OpenSSL nor zlib offers CRC-32C (zlib has
 * CRC-32 only; the endpoint's checks of x-amz-checksum-crc32, its one use
 * of CRC-32, go through the table below).  On x86-64 the SSE4.2 crc32
 * instruction does it, 8 bytes per instruction, with the compiler's
 * intrinsic, chosen at run time (__builtin_cpu_supports); three lanes are
 * interleaved to keep the instruction busy (~3x one dependency chain:
 * ~5 GB/s on this shared machine, against SHA-256's ~1 GB/s with SHA-NI).
 * Intel's ISA-L (Debian libisal-dev, crc32_iscsi: PCLMULQDQ folding) measured
 * ~2.5x faster again, but would save ~0.1 ms of a 768 KiB tile's ~1 ms
 * upload for a new link dependency of the library (and of its pkg-config
 * and CMake package).  Elsewhere (no SSE4.2, other
 * architectures) a portable slice-by-8 table implementation (~1.5 GB/s) is
 * the fallback; the unit test checks both against the published check
 * values and each other at every length and alignment.
 */
#include "asd_crc.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ASD_CRC_X86 1
#endif

#define POLY_CRC32C 0x82F63B78u /* reflected Castagnoli */
#define POLY_CRC32 0xEDB88320u  /* reflected IEEE 802.3 */

static uint32_t g_tab_c[8][256], g_tab_i[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(uint32_t tab[8][256], uint32_t poly) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (poly & (0u - (c & 1u)));
    tab[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int s = 1; s < 8; s++) tab[s][n] = (tab[s - 1][n] >> 8) ^ tab[0][tab[s - 1][n] & 0xFF];
}

static void build_tables(void) {
  build(g_tab_c, POLY_CRC32C);
  build(g_tab_i, POLY_CRC32);
}

/* Slice-by-8: eight table lookups per 8 input bytes. */
static uint32_t slice8(uint32_t tab[8][256], uint32_t crc, const unsigned char *p, size_t n) {
  pthread_once(&g_once, build_tables);
  uint32_t c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = tab[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    n--;
  }
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= c;
    c = tab[7][lo & 0xFF] ^ tab[6][(lo >> 8) & 0xFF] ^ tab[5][(lo >> 16) & 0xFF] ^ tab[4][lo >> 24] ^
        tab[3][hi & 0xFF] ^ tab[2][(hi >> 8) & 0xFF] ^ tab[1][(hi >> 16) & 0xFF] ^ tab[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = tab[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t asd_crc32c_table(uint32_t crc, const void *data, size_t len) { return slice8(g_tab_c, crc, data, len); }

uint32_t asd_crc32_table(uint32_t crc, const void *data, size_t len) { return slice8(g_tab_i, crc, data, len); }

#ifdef ASD_CRC_X86
/*
 * Three lanes at once.  The crc32 instruction takes 3 cycles but can start
 * one per cycle, so a single dependency chain uses a third of it: the body
 * is cut into three consecutive lanes whose CRCs run side by side, then
 * joined.  The CRC register is linear over GF(2): feeding a lane's bytes
 * after a register c equals feeding them after 0, XOR the register c
 * advanced over as many zero bytes.  So crc(A|B|C) = shift(shift(crc(A)) ^
 * crc_0(B)) ^ crc_0(C), where shift advances a register over one lane of
 * zeros: a linear map, applied with four 256-entry tables (one per byte of
 * the register), built once from the portable table (no CPU feature needed
 * to build them).  Lanes of 8 KiB, then of 256 bytes for what is left, then
 * one chain for the last < 768 bytes.
 */
#define LANE_LONG 8192
#define LANE_SHORT 256
static uint32_t g_shift_long[4][256], g_shift_short[4][256];
static pthread_once_t g_shift_once = PTHREAD_ONCE_INIT;

/* The raw register (no pre/post inversion) advanced over n zero bytes. */
static uint32_t advance_zeros(uint32_t c, size_t n) {
  while (n--) c = g_tab_c[0][c & 0xFF] ^ (c >> 8);
  return c;
}

static void build_shift(uint32_t tab[4][256], size_t n) {
  uint32_t basis[32];
  for (int b = 0; b < 32; b++) basis[b] = advance_zeros(1u << b, n);
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) {
      uint32_t x = 0;
      for (int j = 0; j < 8; j++)
        if (v >> j & 1u) x ^= basis[8 * k + j];
      tab[k][v] = x;
    }
}

static void build_shifts(void) {
  pthread_once(&g_once, build_tables);
  build_shift(g_shift_long, LANE_LONG);
  build_shift(g_shift_short, LANE_SHORT);
}

static inline uint32_t shift(uint32_t tab[4][256], uint32_t c) {
  return tab[0][c & 0xFF] ^ tab[1][(c >> 8) & 0xFF] ^ tab[2][(c >> 16) & 0xFF] ^ tab[3][c >> 24];
}

/* Whole 3-lane rounds of `lane` bytes per lane, as long as they fit. */
__attribute__((target("sse4.2"))) static uint64_t three_lanes(uint64_t c0, const unsigned char **pp, size_t *np,
                                                              size_t lane, uint32_t tab[4][256]) {
  const unsigned char *p = *pp;
  size_t n = *np;
  while (n >= 3 * lane) {
    uint64_t c1 = 0, c2 = 0;
    for (const unsigned char *end = p + lane; p < end; p += 8) {
      uint64_t a, b, d;
      memcpy(&a, p, 8);
      memcpy(&b, p + lane, 8);
      memcpy(&d, p + 2 * lane, 8);
      c0 = __builtin_ia32_crc32di(c0, a);
      c1 = __builtin_ia32_crc32di(c1, b);
      c2 = __builtin_ia32_crc32di(c2, d);
    }
    c0 = shift(tab, (uint32_t)c0) ^ (uint32_t)c1;
    c0 = shift(tab, (uint32_t)c0) ^ (uint32_t)c2;
    p += 2 * lane;
    n -= 3 * lane;
  }
  *pp = p;
  *np = n;
  return c0;
}

/* The crc32 instruction computes CRC-32C (Castagnoli) on the raw register. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t n) {
  uint64_t c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  if (n >= 3 * LANE_SHORT) {
    pthread_once(&g_shift_once, build_shifts);
    c = three_lanes(c, &p, &n, LANE_LONG, g_shift_long);
    c = three_lanes(c, &p, &n, LANE_SHORT, g_shift_short);
  }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return ~(uint32_t)c;
}

static int g_sse42 = -1; /* unknown until the first call; a benign race (same value) */
#endif

uint32_t asd_crc32c(uint32_t crc, const void *data, size_t len) {
#ifdef ASD_CRC_X86
  int have = __atomic_load_n(&g_sse42, __ATOMIC_RELAXED);
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    __atomic_store_n(&g_sse42, have, __ATOMIC_RELAXED);
  }
  if (have) return crc32c_sse42(crc, data, len);
#endif
  return asd_crc32c_table(crc, data, len);
}

uint32_t asd_crc32(uint32_t crc, const void *data, size_t len) { return asd_crc32_table(crc, data, len); }

void asd_crc_base64(uint32_t crc, char out[9]) {
  unsigned char b[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                        (unsigned char)crc};
  EVP_EncodeBlock((unsigned char *)out, b, 4);
}

const char *asd_crc_implementation(void) {
#ifdef ASD_CRC_X86
  asd_crc32c(0, "", 0); /* settles the CPU check */
  if (__atomic_load_n(&g_sse42, __ATOMIC_RELAXED) == 1) return "sse4.2";
#endif
  return "table";
}
