// CRC-32C and CRC-32 (plugin/common/crc.c): the published check values, the
// hardware (SSE4.2 crc32 instruction, three interleaved lanes joined by shift
// tables) and table implementations agreeing on every length and alignment,
// with a bit-at-a-time reference on long bodies (every lane boundary),
// incremental use, and S3's base64 form.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "common/asd_crc.h"

TEST(Crc, CheckValues) {
  // The "check" value of each CRC catalogue entry: the CRC of "123456789".
  EXPECT_EQ(0xE3069283u, asd_crc32c(0, "123456789", 9));
  EXPECT_EQ(0xE3069283u, asd_crc32c_table(0, "123456789", 9));
  EXPECT_EQ(0xCBF43926u, asd_crc32(0, "123456789", 9));
  EXPECT_EQ(0xCBF43926u, asd_crc32_table(0, "123456789", 9));
  EXPECT_EQ(0u, asd_crc32c(0, "", 0));
  // RFC 3720 B.4: 32 bytes of zeros, and of 0xFF.
  std::vector<unsigned char> z(32, 0), f(32, 0xFF);
  EXPECT_EQ(0x8A9136AAu, asd_crc32c(0, z.data(), z.size()));
  EXPECT_EQ(0x62A8AB43u, asd_crc32c(0, f.data(), f.size()));
}

TEST(Crc, ImplementationsAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(12);
  std::vector<unsigned char> buf(70000);
  for (auto &b : buf) b = static_cast<unsigned char>(rng());
  for (size_t off = 0; off < 9; off++)
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 65u, 255u, 256u, 1000u, 4096u, 65537u}) {
      EXPECT_EQ(asd_crc32c_table(0, buf.data() + off, len), asd_crc32c(0, buf.data() + off, len))
          << asd_crc_implementation() << " off " << off << " len " << len;
      EXPECT_EQ(asd_crc32_table(0, buf.data() + off, len), asd_crc32(0, buf.data() + off, len))
          << asd_crc_implementation() << " off " << off << " len " << len;
    }
}

namespace {
// The definition, one bit at a time: slow, obviously right.
uint32_t crc32c_bitwise(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
}  // namespace

// Long bodies go through the three-lane rounds (8 KiB lanes, then 256-byte
// lanes, then one chain): lengths on and around each boundary, a tile's
// 786432 bytes, at odd alignments, against the bitwise definition.
TEST(Crc, LongBodiesMatchTheDefinitionAtEveryLaneBoundary) {
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(786432 + 64);
  for (auto &b : buf) b = static_cast<unsigned char>(rng());
  const size_t lens[] = {767,   768,   769,   3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 768,
                         2 * 3 * 8192 + 3 * 256 * 5 + 7,  100000,   786432,       786432 + 13};
  for (size_t off : {0u, 1u, 5u})
    for (size_t len : lens) {
      const unsigned char *p = buf.data() + off;
      uint32_t want = crc32c_bitwise(p, len);
      EXPECT_EQ(want, asd_crc32c(0, p, len)) << asd_crc_implementation() << " off " << off << " len " << len;
      EXPECT_EQ(want, asd_crc32c_table(0, p, len)) << "table off " << off << " len " << len;
    }
  // Zeros and ones: a shift table built wrong for one register byte shows here.
  std::vector<unsigned char> z(3 * 8192 * 2, 0), f(3 * 8192 * 2, 0xFF);
  EXPECT_EQ(crc32c_bitwise(z.data(), z.size()), asd_crc32c(0, z.data(), z.size()));
  EXPECT_EQ(crc32c_bitwise(f.data(), f.size()), asd_crc32c(0, f.data(), f.size()));
}

TEST(Crc, IncrementalEqualsWhole) {
  std::vector<unsigned char> buf(10000);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<unsigned char>(i * 31 + 7);
  uint32_t c = 0, i = 0;
  for (size_t pos = 0; pos < buf.size(); pos += 333) {
    size_t n = std::min<size_t>(333, buf.size() - pos);
    c = asd_crc32c(c, buf.data() + pos, n);
    i = asd_crc32(i, buf.data() + pos, n);
  }
  EXPECT_EQ(asd_crc32c(0, buf.data(), buf.size()), c);
  EXPECT_EQ(asd_crc32(0, buf.data(), buf.size()), i);
  // In pieces long enough for the three-lane rounds, continuing a CRC.
  std::vector<unsigned char> big(200000);
  for (size_t k = 0; k < big.size(); k++) big[k] = static_cast<unsigned char>(k * 131 + 17);
  uint32_t whole = asd_crc32c(0, big.data(), big.size());
  uint32_t part = asd_crc32c(0, big.data(), 30001);
  part = asd_crc32c(part, big.data() + 30001, 100000);
  part = asd_crc32c(part, big.data() + 130001, big.size() - 130001);
  EXPECT_EQ(whole, part);
  EXPECT_EQ(crc32c_bitwise(big.data(), big.size()), whole);
}

TEST(Crc, Base64AsS3HasIt) {
  char out[9];
  asd_crc_base64(0xE3069283u, out);
  EXPECT_STREQ("4waSgw==", out);
  asd_crc_base64(0u, out);
  EXPECT_STREQ("AAAAAA==", out);
}

#if defined(__x86_64__)
TEST(Crc, HardwarePathIsTakenWhereTheCpuHasIt) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sse4.2")) GTEST_SKIP() << "this CPU has no SSE4.2";
  EXPECT_STREQ("sse4.2", asd_crc_implementation());
}
#endif
