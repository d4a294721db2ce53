// Unit tests of run/inputs.c: source labels (no secret of a presigned URL
// survives), -input_file_list, and the -shard split (disjoint, complete,
// deterministic, contiguous).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cpl_conv.h"
#include "cpl_string.h"
#include "inputs.h"

namespace {

std::string label(const char *name) {
  char *l = asd_source_label(name);
  std::string s = l;
  CPLFree(l);
  return s;
}

TEST(SourceLabel, LocalPathsAndVsiPathsAreKept) {
  EXPECT_EQ("/data/scene.tif", label("/data/scene.tif"));
  EXPECT_EQ("/vsis3/bucket/key/scene.tif", label("/vsis3/bucket/key/scene.tif"));
  // '?' is a legal character in a local file name.
  EXPECT_EQ("/data/what?.tif", label("/data/what?.tif"));
  EXPECT_EQ("", label(""));
}

TEST(SourceLabel, PresignedUrlLosesItsQueryString) {
  const char *url =
      "/vsicurl/https://b.s3.amazonaws.com/scenes/a.tif?X-Amz-Algorithm=AWS4-HMAC-SHA256"
      "&X-Amz-Credential=AKIDEXAMPLE%2F20261202%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeef"
      "&X-Amz-Security-Token=tok";
  std::string l = label(url);
  EXPECT_EQ("/vsicurl/https://b.s3.amazonaws.com/scenes/a.tif", l);
  EXPECT_EQ(std::string::npos, l.find("deadbeef"));
  EXPECT_EQ(std::string::npos, l.find("AKIDEXAMPLE"));
  EXPECT_EQ("https://h/x.tif", label("https://h/x.tif#frag"));
}

TEST(SourceLabel, UserinfoIsDropped) {
  EXPECT_EQ("/vsicurl/https://host.example/a.tif", label("/vsicurl/https://user:secret@host.example/a.tif?s=1"));
  EXPECT_EQ("/vsicurl/ftp://h/a.tif", label("/vsicurl/ftp://me@h/a.tif"));
}

TEST(SourceLabel, VsicurlOptionFormKeepsOnlyTheUrl) {
  std::string l = label("/vsicurl?use_head=no&url=https%3A%2F%2Fh%2Fa.tif%3FX-Amz-Signature%3Dsecret&max_retry=3");
  EXPECT_EQ("/vsicurl/https://h/a.tif", l);
  EXPECT_EQ(std::string::npos, l.find("secret"));
  EXPECT_EQ("/vsicurl/", label("/vsicurl?use_head=no"));
}

TEST(SourceLabel, ChainedPathKeepsWhatFollowsTheBrace) {
  EXPECT_EQ("/vsizip/{/vsicurl/https://h/a.zip}/b.tif", label("/vsizip/{/vsicurl/https://h/a.zip?sig=abc}/b.tif"));
}

TEST(ScrubUrls, QueryStringsOfQuotedUrlsGo) {
  std::string m = "HTTP error code: 403 - http://h:1/b/k.tif?X-Amz-Signature=abc&X-Amz-Credential=AK. "
                  "'/vsicurl/https://h/x.tif?sig=1' again https://h/y#frag and plain? text";
  std::vector<char> buf(m.begin(), m.end());
  buf.push_back('\0');
  asd_scrub_urls(buf.data());
  EXPECT_STREQ("HTTP error code: 403 - http://h:1/b/k.tif '/vsicurl/https://h/x.tif' again https://h/y and plain? text",
               buf.data());
  char none[] = "no url here?x=1";
  asd_scrub_urls(none);
  EXPECT_STREQ("no url here?x=1", none);
}

TEST(InputFileList, OnePathPerLine) {
  std::string path = std::string(CPLGetPath(CPLGenerateTempFilename("asd"))) + "/asd_list_" +
                     std::to_string(getpid()) + ".txt";
  FILE *f = fopen(path.c_str(), "wb");
  ASSERT_NE(nullptr, f);
  fputs("a.tif\r\n\n  # a comment\n  /vsis3/b/c d.tif  \nlast.tif", f);
  fclose(f);
  char err[256];
  char **l = asd_read_input_file_list(path.c_str(), err, sizeof err);
  ASSERT_EQ(3, CSLCount(l)) << err;
  EXPECT_STREQ("a.tif", l[0]);
  EXPECT_STREQ("/vsis3/b/c d.tif", l[1]);
  EXPECT_STREQ("last.tif", l[2]);
  CSLDestroy(l);
  remove(path.c_str());
}

TEST(InputFileList, MissingFileIsOneLine) {
  char err[256];
  EXPECT_EQ(nullptr, asd_read_input_file_list("/nonexistent/list.txt", err, sizeof err));
  EXPECT_NE(nullptr, strstr(err, "-input_file_list: cannot read '/nonexistent/list.txt'")) << err;
}

TEST(Shard, Parse) {
  int k = -1, n = -1;
  char err[256];
  EXPECT_EQ(0, asd_shard_parse("0/1", &k, &n, err, sizeof err));
  EXPECT_EQ(0, k);
  EXPECT_EQ(1, n);
  EXPECT_EQ(0, asd_shard_parse("6/7", &k, &n, err, sizeof err));
  EXPECT_EQ(6, k);
  EXPECT_EQ(7, n);
  for (const char *bad : {"7/7", "1/0", "-1/3", "a/3", "3", "/3", "1/", "1/3x", "1 /3", ""}) {
    EXPECT_EQ(-1, asd_shard_parse(bad, &k, &n, err, sizeof err)) << bad;
    EXPECT_NE(nullptr, strstr(err, "-shard")) << err;
  }
}

TEST(Shard, RangesAreDisjointCompleteAndContiguous) {
  for (int count : {0, 1, 5, 24, 25, 100}) {
    for (int n : {1, 2, 3, 7, 30}) {
      std::vector<int> owner(count, -1);
      int prev_end = 0;
      for (int k = 0; k < n; k++) {
        int a, b;
        asd_shard_range(count, k, n, &a, &b);
        EXPECT_EQ(prev_end, a) << count << " " << k << "/" << n;
        EXPECT_LE(a, b);
        // Nearly equal parts: sizes differ by at most one.
        EXPECT_LE(b - a, count / n + 1);
        EXPECT_GE(b - a, count / n);
        for (int i = a; i < b; i++) {
          EXPECT_EQ(-1, owner[i]);
          owner[i] = k;
        }
        prev_end = b;
      }
      EXPECT_EQ(count, prev_end);
      for (int i = 0; i < count; i++) EXPECT_NE(-1, owner[i]);
    }
  }
}

}  // namespace
