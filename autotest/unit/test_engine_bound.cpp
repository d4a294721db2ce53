// Unit tests for the bounding-resource decision (plugin/engine/bound.c):
// each class from the utilisations that make it, with its evidence line.
#include <gtest/gtest.h>

#include <string>

#include "asyncdetect/asd_metrics.h"
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

// The union of upload spans (asd_metrics_record_span) is the time a tile was
// on the wire, whatever the overlap; the sum of the durations is not.
TEST(EngineBound, UploadSpansGiveTheTimeATileWasOnTheWire) {
  asd_metrics *m = asd_metrics_new();
  asd_metric_span sp = {};
  EXPECT_EQ(-1, asd_metrics_get_span(m, "S3UploadDuration", &sp));
  asd_metrics_record_span(m, "S3UploadDuration", 10, 11);
  asd_metrics_record_span(m, "S3UploadDuration", 10.5, 12);  // overlaps the first
  asd_metrics_record_span(m, "S3UploadDuration", 13, 14);    // after a gap of 1 s
  ASSERT_EQ(0, asd_metrics_get_span(m, "S3UploadDuration", &sp));
  EXPECT_DOUBLE_EQ(3, sp.covered);
  EXPECT_DOUBLE_EQ(10, sp.first);
  EXPECT_DOUBLE_EQ(14, sp.last);
  EXPECT_DOUBLE_EQ(3.5, asd_metrics_sum(m, "S3UploadDuration"));  // the durations, overlap counted twice
  // A long upload recorded last (it ended last) that spans the gap: no gap left.
  asd_metrics_record_span(m, "S3UploadDuration", 9.5, 14.5);
  ASSERT_EQ(0, asd_metrics_get_span(m, "S3UploadDuration", &sp));
  EXPECT_DOUBLE_EQ(5, sp.covered);
  EXPECT_DOUBLE_EQ(9.5, sp.first);
  // Many disjoint spans (more than are kept open): 1 s on, 1 s off.
  for (int i = 0; i < 200; i++) asd_metrics_record_span(m, "Disjoint", 2.0 * i, 2.0 * i + 1);
  ASSERT_EQ(0, asd_metrics_get_span(m, "Disjoint", &sp));
  EXPECT_DOUBLE_EQ(200, sp.covered);
  EXPECT_DOUBLE_EQ(399, sp.last - sp.first);
  // Four workers sharing a link back to back: always one on the wire.
  for (int i = 0; i < 400; i++) asd_metrics_record_span(m, "Shared", 0.25 * i, 0.25 * i + 1);
  ASSERT_EQ(0, asd_metrics_get_span(m, "Shared", &sp));
  EXPECT_DOUBLE_EQ(100.75, sp.covered);
  EXPECT_DOUBLE_EQ(400, asd_metrics_sum(m, "Shared"));
  asd_metrics_free(m);
}

// Figures of real runs with the uplink shaped on loopback (bench/uplink_tc.sh,
// tc htb on the endpoint's port; 961 tiles of 512 x 512 from an 8192^2 RGB
// texture, 2 encoder threads, 4 submission workers, 100 slots, a machine at
// load 2-13).  The utilisations alone called the first five something else:
// encoding (encoders 67-81 % busy, upload workers 43-62 %) and "nothing
// saturated" (encoders 9 %, workers 26 %), although each ran at 87-99 % of its
// link.
namespace {
asd_bound_input shaped(double elapsed, double encode_s, double upload_s, long long bytes, double mb_s_sending,
                       double link_busy) {
  asd_bound_input in = {};
  in.elapsed = elapsed;
  in.tiles = 961;
  in.encoder_threads = 2;
  in.encode_seconds = encode_s;
  in.submission_workers = 4;
  in.upload_seconds = upload_s;
  in.bytes_uploaded = bytes;
  in.upload_busy_seconds = bytes / 1e6 / mb_s_sending;
  in.upload_span_seconds = in.upload_busy_seconds / link_busy;
  in.max_concurrent_jobs = 100;
  in.polls_per_job = 1.0;
  return in;
}
}  // namespace

TEST(EngineBound, AShapedUplinkIsReadAsTheUplink) {
  std::string why;
  // JPEG (87 kB per tile) at 50 Mbit/s: 67.8 tiles/s, 94 % of the link.
  asd_bound_input jpeg = shaped(14.691, 21.964, 25.500, 83480731, 6.817, 0.876);
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(jpeg, &why)) << why;
  EXPECT_NE(std::string::npos, why.find("on the wire 88 %")) << why;
  EXPECT_NE(std::string::npos, why.find("6.82 MB/s while sending")) << why;
  // WEBP (74 kB) at 4 Mbit/s: 6.2 tiles/s, 92 % of the link, encoders 81 % busy.
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(shaped(155.016, 251.494, 268.514, 71434578, 0.563, 0.824), &why)) << why;
  // JPEG QUALITY=50 (24 kB) at 4 Mbit/s: 18 tiles/s, 87 % of the link (the
  // polls and invocations take the rest), encoders 9 % busy.
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(shaped(53.640, 9.103, 55.879, 23167324, 0.569, 0.767), &why)) << why;
  // PNG (516 kB) at 50 Mbit/s on a quiet machine: 12.0 tiles/s, 99 % of the
  // link, encoders 74 % busy, upload workers 62 % (once called encoding).
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(shaped(80.320, 118.227, 199.448, 496046604, 6.385, 0.971), &why)) << why;
  // WEBP QUALITY=100 METHOD=0 (220 kB) at 50 Mbit/s, quiet: 98 % of the link.
  EXPECT_EQ(ASD_BOUND_UPLINK, classify(shaped(34.661, 46.005, 71.360, 211305114, 6.571, 0.935), &why)) << why;
  // PNG (516 kB) at 50 Mbit/s on a loaded machine: 67 % of the link, encoders
  // 98 % busy, a tile on the wire 48 % of the time: encoding.
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(shaped(118.482, 232.530, 61.453, 496046604, 8.852, 0.477), &why)) << why;
  EXPECT_NE(std::string::npos, why.find("on the wire 48 %")) << why;
  // WEBP (74 kB) at 50 Mbit/s: 10 % of the link, encoders 98 %: encoding.
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(shaped(115.838, 226.878, 2.360, 71434578, 30.78, 0.020), &why)) << why;
  // Both saturated, the encoders more: their gaps are the link's idle time.
  asd_bound_input both = jpeg;
  both.encode_seconds = 0.97 * 2 * both.elapsed;
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(both, &why)) << why;
  // Without span figures (a caller that has none) the old reading stands.
  asd_bound_input none = jpeg;
  none.upload_busy_seconds = none.upload_span_seconds = 0;
  EXPECT_EQ(ASD_BOUND_ENCODING, classify(none, &why)) << why;
}
