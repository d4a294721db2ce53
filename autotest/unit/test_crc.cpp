// CRC-32C and CRC-32 (plugin/common/crc.c): the published check values, the
// hardware (SSE4.2 crc32 instruction) and table implementations agreeing on every length and
// alignment, incremental use, and S3's base64 form.
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
