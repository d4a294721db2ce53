// Unit tests for the bounding-resource decision (plugin/engine/bound.c):
// each class from the utilisations that make it, with its evidence line.
#include <gtest/gtest.h>

#include <string>

#include "engine/bound.h"

namespace {

// 100 tiles over 10 s, 2 encoders, 4 submission workers, 100 slots, nothing busy.
asd_bound_input idle() {
  asd_bound_input in = {};
  in.elapsed = 10;
  in.tiles = 100;
  in.encoder_threads = 2;
  in.encode_seconds = 2;  // 10 %
  in.submission_workers = 4;
  in.upload_seconds = 4;  // 10 %
  in.bytes_uploaded = 100 * 500000;
  in.max_concurrent_jobs = 100;
  in.slot_wait_seconds = 0;
  in.polls_per_job = 1.6;
  return in;
}

asd_bound classify(const asd_bound_input &in, std::string *why) {
  char buf[512];
  asd_bound b = asd_bound_classify(&in, buf, sizeof buf);
  *why = buf;
  return b;
}

}  // namespace

TEST(EngineBound, EachResourceFromItsUtilisation) {
  std::string why;
  asd_bound_input in = idle();
  EXPECT_EQ(ASD_BOUND_LATENCY, classify(in, &why));
  EXPECT_NE(std::string::npos, why.find("too few")) << why;

  in = idle();
  in.encode_seconds = 19;  // 95 % of 2 threads x 10 s
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(in, &why));
  EXPECT_NE(std::string::npos, why.find("95 %")) << why;

  in = idle();
  in.upload_seconds = 38;  // 95 % of 4 workers x 10 s
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(in, &why));
  EXPECT_NE(std::string::npos, why.find("5.00 MB/s")) << why;
  EXPECT_NE(std::string::npos, why.find("500 kB per tile")) << why;

  // Both busy: the busier one (the other waits on it).
  in.encode_seconds = 14;
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(in, &why));
  in.encode_seconds = 19.8;
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(in, &why));

  in = idle();
  in.slot_wait_seconds = 30;  // submission waited for slots 75 % of the time
  EXPECT_EQ(ASD_BOUND_ENDPOINT, classify(in, &why));
  EXPECT_NE(std::string::npos, why.find("all 100 job slots")) << why;
  EXPECT_NE(std::string::npos, why.find("still running")) << why;
  in.polls_per_job = 1.02;  // 98 % of the jobs found done at their first poll
  EXPECT_EQ(ASD_BOUND_POLLING, classify(in, &why));
  EXPECT_NE(std::string::npos, why.find("first poll")) << why;
}

TEST(EngineBound, NamesAndNothingMeasured) {
  std::string why;
  asd_bound_input in = idle();
  in.tiles = 0;
  EXPECT_EQ(ASD_BOUND_UNKNOWN, classify(in, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(ASD_BOUND_UNKNOWN, asd_bound_classify(nullptr, nullptr, 0));
  EXPECT_STREQ("encoding CPU", asd_bound_name(ASD_BOUND_ENCODING));
  EXPECT_STREQ("uplink", asd_bound_name(ASD_BOUND_UPLINK));
  EXPECT_STREQ("endpoint capacity", asd_bound_name(ASD_BOUND_ENDPOINT));
  EXPECT_STREQ("polling", asd_bound_name(ASD_BOUND_POLLING));
}
