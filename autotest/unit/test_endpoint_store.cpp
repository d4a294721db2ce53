// Unit tests of the local endpoint's object store (apps/endpoint/s3_store.c):
// names, atomic writes, listings with prefixes/delimiters/continuation, and
// persistence across reopen.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern "C" {
#include "s3_store.h"
}
#include "cpl_string.h"

namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/asd-store-unit-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    open();
  }
  void TearDown() override {
    ep_store_close(st_);
    std::filesystem::remove_all(dir_);
  }
  void open() {
    char *err = nullptr;
    st_ = ep_store_open(dir_.c_str(), &err);
    ASSERT_NE(st_, nullptr) << (err ? err : "");
    free(err);
  }
  void put(const char *b, const char *k, const std::string &v) {
    ASSERT_EQ(ASD_STORE_OK, ep_store_put(st_, b, k, v.data(), v.size(), nullptr, nullptr)) << k;
  }
  std::string get(const char *b, const char *k) {
    unsigned char *d = nullptr;
    size_t n = 0;
    if (ep_store_get(st_, b, k, 0, &d, &n, nullptr) != ASD_STORE_OK) return "<missing>";
    std::string s(reinterpret_cast<char *>(d), n);
    free(d);
    return s;
  }
  std::vector<std::string> list(const char *b, const char *prefix, const char *delim, const char *after, size_t max,
                                int *truncated = nullptr, std::string *next = nullptr) {
    ep_store_listing l;
    std::vector<std::string> out;
    EXPECT_EQ(ASD_STORE_OK, ep_store_list(st_, b, prefix, delim, after, max, &l));
    for (size_t i = 0; i < l.count; i++) out.push_back(std::string(l.entries[i].is_prefix ? "P:" : "") + l.entries[i].key);
    if (truncated) *truncated = l.truncated;
    if (next) *next = l.next_after ? l.next_after : "";
    ep_store_listing_free(&l);
    return out;
  }
  std::string dir_;
  ep_store *st_ = nullptr;
};

}  // namespace

TEST(EndpointStoreNames, BucketAndKeyRules) {
  EXPECT_TRUE(ep_store_bucket_name_valid("abc"));
  EXPECT_TRUE(ep_store_bucket_name_valid("my.bucket-1"));
  EXPECT_FALSE(ep_store_bucket_name_valid("ab"));
  EXPECT_FALSE(ep_store_bucket_name_valid(std::string(64, 'a').c_str()));
  EXPECT_FALSE(ep_store_bucket_name_valid("Upper"));
  EXPECT_FALSE(ep_store_bucket_name_valid("a..b"));
  EXPECT_FALSE(ep_store_bucket_name_valid("-abc"));
  EXPECT_FALSE(ep_store_bucket_name_valid("abc-"));
  EXPECT_FALSE(ep_store_bucket_name_valid("10.0.0.1"));
  EXPECT_FALSE(ep_store_bucket_name_valid("_asd"));
  EXPECT_FALSE(ep_store_bucket_name_valid(".."));
  EXPECT_TRUE(ep_store_key_valid("a/b/c.txt"));
  EXPECT_TRUE(ep_store_key_valid("..a/b.."));
  EXPECT_FALSE(ep_store_key_valid(""));
  EXPECT_FALSE(ep_store_key_valid("../x"));
  EXPECT_FALSE(ep_store_key_valid("a/../x"));
  EXPECT_FALSE(ep_store_key_valid("a/.."));
  EXPECT_FALSE(ep_store_key_valid(std::string(1025, 'k').c_str()));
  EXPECT_TRUE(ep_store_key_valid(std::string(1024, 'k').c_str()));
}

TEST(EndpointStoreNames, ParseS3Uri) {
  char *b = nullptr, *k = nullptr;
  ASSERT_EQ(0, ep_store_parse_s3_uri("s3://bucket/a/b.out", 0, &b, &k));
  EXPECT_STREQ("bucket", b);
  EXPECT_STREQ("a/b.out", k);
  free(b);
  free(k);
  EXPECT_EQ(-1, ep_store_parse_s3_uri("s3://bucket", 0, &b, &k));
  ASSERT_EQ(0, ep_store_parse_s3_uri("s3://bucket", 1, &b, &k));
  EXPECT_STREQ("", k);
  free(b);
  free(k);
  EXPECT_EQ(-1, ep_store_parse_s3_uri("https://x/y", 1, &b, &k));
}

TEST_F(StoreTest, PutGetHeadDelete) {
  EXPECT_EQ(ASD_STORE_NO_BUCKET, ep_store_put(st_, "bkt", "k", "v", 1, nullptr, nullptr));
  ASSERT_EQ(ASD_STORE_OK, ep_store_create_bucket(st_, "bkt"));
  EXPECT_EQ(ASD_STORE_EXISTS, ep_store_create_bucket(st_, "bkt"));
  ep_store_meta m;
  ASSERT_EQ(ASD_STORE_OK, ep_store_put(st_, "bkt", "k", "hello", 5, "text/plain", &m));
  EXPECT_STREQ("\"5d41402abc4b2a76b9719d911017c592\"", m.etag);
  EXPECT_EQ(5u, m.size);
  ep_store_meta h;
  ASSERT_EQ(ASD_STORE_OK, ep_store_head(st_, "bkt", "k", &h));
  EXPECT_STREQ(m.etag, h.etag);
  EXPECT_STREQ("text/plain", h.content_type);
  EXPECT_EQ("hello", get("bkt", "k"));
  unsigned char *d = nullptr;
  size_t n = 0;
  EXPECT_EQ(ASD_STORE_TOO_LARGE, ep_store_get(st_, "bkt", "k", 4, &d, &n, nullptr));
  put("bkt", "k", "replaced");
  EXPECT_EQ("replaced", get("bkt", "k"));
  EXPECT_EQ(ASD_STORE_OK, ep_store_delete(st_, "bkt", "k"));
  EXPECT_EQ(ASD_STORE_OK, ep_store_delete(st_, "bkt", "k"));
  EXPECT_EQ(ASD_STORE_NO_KEY, ep_store_head(st_, "bkt", "k", nullptr));
  EXPECT_EQ(ASD_STORE_BAD_KEY, ep_store_put(st_, "bkt", "../x", "v", 1, nullptr, nullptr));
  EXPECT_EQ(ASD_STORE_NOT_EMPTY, (put("bkt", "z", "1"), ep_store_delete_bucket(st_, "bkt")));
  ep_store_delete(st_, "bkt", "z");
  EXPECT_EQ(ASD_STORE_OK, ep_store_delete_bucket(st_, "bkt"));
  EXPECT_EQ(ASD_STORE_NO_BUCKET, ep_store_head_bucket(st_, "bkt"));
}

TEST_F(StoreTest, AbortedWriterLeavesNothing) {
  ASSERT_EQ(ASD_STORE_OK, ep_store_create_bucket(st_, "bkt"));
  put("bkt", "k", "old");
  ep_store_writer *w = nullptr;
  ASSERT_EQ(ASD_STORE_OK, ep_store_writer_begin(st_, "bkt", "k", &w));
  ASSERT_EQ(0, ep_store_writer_write(w, "new-but-aborted", 15));
  EXPECT_EQ("old", get("bkt", "k"));  // not visible before commit
  ep_store_writer_abort(w);
  EXPECT_EQ("old", get("bkt", "k"));
  for (auto &e : std::filesystem::recursive_directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos);
}

TEST_F(StoreTest, ListingPrefixDelimiterContinuation) {
  ASSERT_EQ(ASD_STORE_OK, ep_store_create_bucket(st_, "bkt"));
  for (const char *k : {"a/1", "a/2", "a/b/3", "a/b/4", "a/c/5", "b", "c/6"}) put("bkt", k, "x");
  EXPECT_EQ((std::vector<std::string>{"a/1", "a/2", "a/b/3", "a/b/4", "a/c/5", "b", "c/6"}),
            list("bkt", nullptr, nullptr, nullptr, 1000));
  EXPECT_EQ((std::vector<std::string>{"P:a/", "b", "P:c/"}), list("bkt", "", "/", nullptr, 1000));
  EXPECT_EQ((std::vector<std::string>{"a/1", "a/2", "P:a/b/", "P:a/c/"}), list("bkt", "a/", "/", nullptr, 1000));
  // Page through with max 2: common prefixes count as entries and are not repeated.
  std::vector<std::string> all;
  std::string after;
  int truncated = 1;
  int pages = 0;
  while (truncated && pages < 10) {
    std::string next;
    auto page = list("bkt", "a/", "/", after.c_str(), 2, &truncated, &next);
    all.insert(all.end(), page.begin(), page.end());
    after = next;
    pages++;
  }
  EXPECT_EQ((std::vector<std::string>{"a/1", "a/2", "P:a/b/", "P:a/c/"}), all);
  EXPECT_EQ(2, pages);
  EXPECT_EQ((std::vector<std::string>{"a/b/4", "a/c/5", "b"}), list("bkt", nullptr, nullptr, "a/b/3", 3));
  EXPECT_TRUE(list("bkt", "zzz", nullptr, nullptr, 1000).empty());
  EXPECT_TRUE(list("bkt", nullptr, nullptr, nullptr, 0).empty());
}

TEST_F(StoreTest, ReopenKeepsObjectsAndDropsTemporaries) {
  ASSERT_EQ(ASD_STORE_OK, ep_store_create_bucket(st_, "bkt"));
  put("bkt", "dir/obj", "persisted");
  std::string weird = "we\nird %key";
  put("bkt", weird.c_str(), "w");
  ep_store_writer *w = nullptr;
  ASSERT_EQ(ASD_STORE_OK, ep_store_writer_begin(st_, "bkt", "half", &w));
  ASSERT_EQ(0, ep_store_writer_write(w, "partial", 7));
  // Simulate a crash: the temporary file stays, the writer is never committed.
  ep_store_close(st_);
  st_ = nullptr;
  open();
  EXPECT_EQ("persisted", get("bkt", "dir/obj"));
  EXPECT_EQ("w", get("bkt", weird.c_str()));
  EXPECT_EQ("<missing>", get("bkt", "half"));
  uint64_t objs = 0, bytes = 0;
  ep_store_totals(st_, &objs, &bytes);
  EXPECT_EQ(2u, objs);
  EXPECT_EQ(10u, bytes);
  ep_store_writer_abort(w);  // unlinking an already-removed file is harmless
}
