// Unit tests for plugin/common: buffer, digests, random sources, UUIDs.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "asyncdetect/asd_common.h"

TEST(Common, BufferAppendsAndTerminates) {
  asd_buf b;
  asd_buf_init(&b);
  ASSERT_EQ(0, asd_buf_append_str(&b, "hello"));
  ASSERT_EQ(0, asd_buf_appendf(&b, " %d %s", 42, "world"));
  EXPECT_EQ(std::string("hello 42 world"), reinterpret_cast<char *>(b.data));
  EXPECT_EQ(14u, b.len);
  size_t n = 0;
  unsigned char *p = asd_buf_take(&b, &n);
  EXPECT_EQ(14u, n);
  EXPECT_EQ(nullptr, b.data);
  free(p);
  asd_buf_free(&b);
}

TEST(Common, Sha256KnownAnswer) {
  char hex[65];
  asd_sha256_hex("", 0, hex);
  EXPECT_STREQ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex);
  asd_sha256_hex("abc", 3, hex);
  EXPECT_STREQ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex);
}

TEST(Common, Md5Base64KnownAnswer) {
  char b64[25];
  asd_md5_base64("", 0, b64);
  EXPECT_STREQ("1B2M2Y8AsgTpgAmY7PhCfg==", b64);
}

TEST(Common, HmacSha256Rfc4231Case2) {
  unsigned char out[32];
  char hex[65];
  const char *data = "what do ya want for nothing?";
  asd_hmac_sha256("Jefe", 4, data, strlen(data), out);
  asd_hex_encode(out, 32, hex);
  EXPECT_STREQ("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", hex);
}

TEST(Common, SeededRngIsReproducibleAndUniform) {
  asd_rng a, b;
  asd_rng_seed(&a, 7);
  asd_rng_seed(&b, 7);
  double sum = 0;
  for (int i = 0; i < 10000; i++) {
    ASSERT_EQ(asd_rng_next(&a), asd_rng_next(&b));
    double u = asd_rng_uniform(&a);
    (void)asd_rng_next(&b);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(0.5, sum / 10000, 0.02);
}

TEST(Common, Uuid4FormatAndUniqueness) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; i++) {
    char u[37];
    asd_uuid4(u);
    ASSERT_EQ(36u, strlen(u));
    ASSERT_EQ('-', u[8]);
    ASSERT_EQ('4', u[14]);
    ASSERT_TRUE(std::strchr("89ab", u[19]) != nullptr);
    seen.insert(u);
  }
  EXPECT_EQ(1000u, seen.size());
}

TEST(Common, MonotonicClockAdvances) {
  double a = asd_time_monotonic();
  asd_sleep(0.01);
  EXPECT_GT(asd_time_monotonic(), a);
}

// The library's one retry backoff: capped exponential, full jitter.
TEST(Common, BackoffIsCappedExponentialWithFullJitter) {
  EXPECT_DOUBLE_EQ(0.0, asd_backoff_delay(0.5, 30, 3, 0.0));     // full jitter reaches 0
  EXPECT_DOUBLE_EQ(0.5, asd_backoff_delay(0.5, 30, 0, 1.0));     // attempt 0: the base
  EXPECT_DOUBLE_EQ(4.0, asd_backoff_delay(0.5, 30, 3, 1.0));     // 0.5 * 2^3
  EXPECT_DOUBLE_EQ(2.0, asd_backoff_delay(0.5, 30, 3, 0.5));     // uniform share of the cap
  EXPECT_DOUBLE_EQ(30.0, asd_backoff_delay(0.5, 30, 10, 1.0));   // capped
  EXPECT_DOUBLE_EQ(20.0, asd_backoff_delay(1, 20, 100000, 1.0)); // no overflow
  EXPECT_DOUBLE_EQ(0.0, asd_backoff_delay(0, 20, 3, 1.0));
  // Over many draws the delays spread over the whole [0, cap) range.
  double lo = 1e9, hi = 0;
  for (int i = 0; i < 2000; i++) {
    double d = asd_backoff_delay(0.1, 5, 2, asd_random_uniform());
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 0.4);
  }
  EXPECT_LT(lo, 0.05);
  EXPECT_GT(hi, 0.35);
}
