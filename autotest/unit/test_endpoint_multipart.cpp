// Unit tests of the local endpoint's multipart uploads (apps/endpoint/s3_multipart.c):
// the S3 validation rules of CompleteMultipartUpload, the multipart ETag, and
// the on-disk life of an upload (parts, completion, abort, restart, hostile ids).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "s3_multipart.h"
#include "s3_store.h"
}

namespace {

ep_mpu_part have_part(int number, const char *etag, uint64_t size) {
  ep_mpu_part p;
  memset(&p, 0, sizeof p);
  p.number = number;
  snprintf(p.meta.etag, sizeof p.meta.etag, "%s", etag);
  p.meta.size = size;
  return p;
}

const char *kA = "\"5d41402abc4b2a76b9719d911017c592\"";  // md5("hello")
const char *kB = "\"7d793037a0760186574b0282f2f435e7\"";  // md5("world")
const uint64_t kMin = ASD_MPU_MIN_PART_SIZE;

TEST(EndpointMultipartValidate, AcceptsAscendingExistingPartsWithSmallLastPart) {
  std::vector<ep_mpu_part> have = {have_part(1, kA, kMin), have_part(3, kB, 1)};
  // Quotes are optional and hex case does not matter, as on S3.
  ep_mpu_request_part req[] = {{1, "5D41402ABC4B2A76B9719D911017C592"}, {3, kB}};
  char detail[256];
  EXPECT_EQ(ASD_MPU_OK, ep_mpu_validate(req, 2, have.data(), have.size(), kMin, detail, sizeof detail)) << detail;
  // A subset of the uploaded parts is fine too.
  ep_mpu_request_part only3[] = {{3, kB}};
  EXPECT_EQ(ASD_MPU_OK, ep_mpu_validate(only3, 1, have.data(), have.size(), kMin, detail, sizeof detail));
}

TEST(EndpointMultipartValidate, RefusesWhatS3Refuses) {
  std::vector<ep_mpu_part> have = {have_part(1, kA, kMin), have_part(2, kB, kMin - 1), have_part(3, kA, 10)};
  char detail[256];
  ep_mpu_request_part order[] = {{2, kB}, {1, kA}};
  EXPECT_EQ(ASD_MPU_INVALID_PART_ORDER, ep_mpu_validate(order, 2, have.data(), 3, kMin, detail, sizeof detail));
  ep_mpu_request_part dup[] = {{1, kA}, {1, kA}};
  EXPECT_EQ(ASD_MPU_INVALID_PART_ORDER, ep_mpu_validate(dup, 2, have.data(), 3, kMin, detail, sizeof detail));
  ep_mpu_request_part wrong_etag[] = {{1, kB}};
  EXPECT_EQ(ASD_MPU_INVALID_PART, ep_mpu_validate(wrong_etag, 1, have.data(), 3, kMin, detail, sizeof detail));
  EXPECT_NE(std::string(detail).find("part 1"), std::string::npos) << detail;
  ep_mpu_request_part missing[] = {{1, kA}, {4, kA}};
  EXPECT_EQ(ASD_MPU_INVALID_PART, ep_mpu_validate(missing, 2, have.data(), 3, kMin, detail, sizeof detail));
  ep_mpu_request_part garbage[] = {{1, "not-an-etag"}};
  EXPECT_EQ(ASD_MPU_INVALID_PART, ep_mpu_validate(garbage, 1, have.data(), 3, kMin, detail, sizeof detail));
  // Part 2 is one byte short of 5 MiB and not last.
  ep_mpu_request_part small[] = {{1, kA}, {2, kB}, {3, kA}};
  EXPECT_EQ(ASD_MPU_ENTITY_TOO_SMALL, ep_mpu_validate(small, 3, have.data(), 3, kMin, detail, sizeof detail));
  // ... but as the last part it is fine.
  ep_mpu_request_part small_last[] = {{1, kA}, {2, kB}};
  EXPECT_EQ(ASD_MPU_OK, ep_mpu_validate(small_last, 2, have.data(), 3, kMin, detail, sizeof detail));
  EXPECT_EQ(ASD_MPU_MALFORMED, ep_mpu_validate(nullptr, 0, have.data(), 3, kMin, detail, sizeof detail));
  ep_mpu_request_part out_of_range[] = {{10001, kA}};
  EXPECT_EQ(ASD_MPU_MALFORMED, ep_mpu_validate(out_of_range, 1, have.data(), 3, kMin, detail, sizeof detail));
}

TEST(EndpointMultipartEtag, IsMd5OfBinaryMd5sWithPartCount) {
  const char *etags[] = {kA, kB};
  char out[48];
  ASSERT_EQ(0, ep_mpu_etag(etags, 2, out));
  // python3: md5(bytes.fromhex(md5(b"hello")) + bytes.fromhex(md5(b"world"))).hexdigest()
  EXPECT_STREQ("\"065947336a2f2a95ba8899f3675c3be6-2\"", out);
  const char *bad[] = {"\"xyz\""};
  EXPECT_EQ(-1, ep_mpu_etag(bad, 1, out));
}

TEST(EndpointMultipartIds, OnlyServerShapedIdsAreAccepted) {
  EXPECT_TRUE(ep_mpu_id_valid("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(ep_mpu_id_valid("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(ep_mpu_id_valid("../../../../etc/passwd/aaaaaaaaaa"));
  EXPECT_FALSE(ep_mpu_id_valid("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(ep_mpu_id_valid(""));
  EXPECT_FALSE(ep_mpu_id_valid(nullptr));
}

class MultipartStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/asd-mpu-unit-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    open();
    ep_store_create_bucket(st_, "bkt");
  }
  void TearDown() override {
    close();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    char *err = nullptr;
    st_ = ep_store_open(dir_.c_str(), &err);
    ASSERT_NE(st_, nullptr) << (err ? err : "");
    free(err);
    mpu_ = ep_mpu_open(st_, &err);
    ASSERT_NE(mpu_, nullptr) << (err ? err : "");
    free(err);
  }
  void close() {
    ep_mpu_close(mpu_);
    ep_store_close(st_);
    mpu_ = nullptr;
    st_ = nullptr;
  }
  // Uploads one part; returns its ETag ("" on failure).
  std::string part(const std::string &id, int n, const std::string &data, const char *key = "big/object.bin") {
    ep_store_writer *w = nullptr;
    if (ep_mpu_part_writer_begin(mpu_, "bkt", key, id.c_str(), n, &w) != ASD_STORE_OK) return "";
    // In small chunks, as the server streams them.
    for (size_t off = 0; off < data.size(); off += 65536)
      EXPECT_EQ(0, ep_store_writer_write(w, data.data() + off, std::min<size_t>(65536, data.size() - off)));
    ep_store_meta m;
    if (ep_store_writer_commit(w, nullptr, &m) != ASD_STORE_OK) return "";
    return m.etag;
  }
  std::string get(const char *k) {
    unsigned char *d = nullptr;
    size_t n = 0;
    if (ep_store_get(st_, "bkt", k, 0, &d, &n, nullptr) != ASD_STORE_OK) return "<missing>";
    std::string s(reinterpret_cast<char *>(d), n);
    free(d);
    return s;
  }
  size_t upload_folders() {
    size_t n = 0;
    for (auto &e : std::filesystem::directory_iterator(dir_ + "/.uploads")) {
      (void)e;
      n++;
    }
    return n;
  }
  std::string dir_;
  ep_store *st_ = nullptr;
  ep_mpu *mpu_ = nullptr;
};

TEST_F(MultipartStoreTest, CompleteAssemblesPartsAndRemovesTheUpload) {
  char id[33];
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "big/object.bin", "image/tiff", "color:blue\nsize:xl\n", id));
  EXPECT_TRUE(ep_mpu_id_valid(id));
  std::string p1(ASD_MPU_MIN_PART_SIZE, 'a'), p2 = "tail";
  p1[12345] = 'z';
  std::string e2 = part(id, 2, p2);
  std::string e1 = part(id, 1, "first version, replaced below");
  e1 = part(id, 1, p1);
  ASSERT_FALSE(e1.empty());
  ASSERT_FALSE(e2.empty());
  ep_mpu_part *parts = nullptr;
  size_t n = 0;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_list_parts(mpu_, "bkt", "big/object.bin", id, &parts, &n));
  ASSERT_EQ(2u, n);
  EXPECT_EQ(1, parts[0].number);
  EXPECT_EQ(p1.size(), parts[0].meta.size);
  EXPECT_EQ(e1, parts[0].meta.etag);
  EXPECT_EQ(2, parts[1].number);
  free(parts);
  // Not visible before completion.
  EXPECT_EQ("<missing>", get("big/object.bin"));

  ep_mpu_request_part req[] = {{1, e1.c_str()}, {2, e2.c_str()}};
  ep_mpu_verdict v;
  char detail[256];
  ep_store_meta m;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_complete(mpu_, "bkt", "big/object.bin", id, req, 2, &v, detail, sizeof detail, &m));
  ASSERT_EQ(ASD_MPU_OK, v) << detail;
  EXPECT_EQ(p1 + p2, get("big/object.bin"));
  EXPECT_EQ(p1.size() + p2.size(), m.size);
  EXPECT_STREQ("image/tiff", m.content_type);
  const char *etags[] = {e1.c_str(), e2.c_str()};
  char want[48];
  ASSERT_EQ(0, ep_mpu_etag(etags, 2, want));
  EXPECT_STREQ(want, m.etag);
  EXPECT_NE(std::string(m.etag).find("-2\""), std::string::npos);
  // The upload is gone: folder removed, further operations NoSuchUpload.
  EXPECT_EQ(0u, upload_folders());
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_check(mpu_, "bkt", "big/object.bin", id));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_complete(mpu_, "bkt", "big/object.bin", id, req, 2, &v, detail,
                                                  sizeof detail, &m));
  // The ETag survives a restart (it is in the object's header).
  close();
  open();
  ep_store_meta h;
  char *um = nullptr;
  ASSERT_EQ(ASD_STORE_OK, ep_store_head_user_meta(st_, "bkt", "big/object.bin", &h, &um));
  EXPECT_STREQ(want, h.etag);
  // The user metadata given at creation, kept across the restart too.
  ASSERT_NE(um, nullptr);
  EXPECT_STREQ("color:blue\nsize:xl\n", um);
  free(um);
}

TEST_F(MultipartStoreTest, UserMetadataIsStoredAndSurvivesRestart) {
  ep_store_writer *w = nullptr;
  ASSERT_EQ(ASD_STORE_OK, ep_store_writer_begin(st_, "bkt", "with-meta", &w));
  ASSERT_EQ(0, ep_store_writer_write(w, "x", 1));
  // Bytes that need encoding in the header survive too.
  ep_store_writer_set_user_meta(w, "a:1%2\nb:caf\xc3\xa9\n");
  ASSERT_EQ(ASD_STORE_OK, ep_store_writer_commit(w, "text/plain", nullptr));
  ASSERT_EQ(ASD_STORE_OK, ep_store_put(st_, "bkt", "without-meta", "y", 1, nullptr, nullptr));
  for (int round = 0; round < 2; round++) {
    char *um = nullptr;
    int fd = -1;
    uint64_t off = 0;
    ASSERT_EQ(ASD_STORE_OK, ep_store_open_read_user_meta(st_, "bkt", "with-meta", &fd, &off, nullptr, &um));
    ::close(fd);
    ASSERT_NE(um, nullptr);
    EXPECT_STREQ("a:1%2\nb:caf\xc3\xa9\n", um);
    free(um);
    um = reinterpret_cast<char *>(1);
    ASSERT_EQ(ASD_STORE_OK, ep_store_head_user_meta(st_, "bkt", "without-meta", nullptr, &um));
    EXPECT_EQ(um, nullptr);
    close();
    open();
  }
  // Too much to fit in the object header: refused, nothing written.
  ASSERT_EQ(ASD_STORE_OK, ep_store_writer_begin(st_, "bkt", "huge-meta", &w));
  ep_store_writer_set_user_meta(w, std::string(9000, 'm').c_str());
  EXPECT_EQ(ASD_STORE_META_TOO_LARGE, ep_store_writer_commit(w, nullptr, nullptr));
  EXPECT_EQ(ASD_STORE_NO_KEY, ep_store_head(st_, "bkt", "huge-meta", nullptr));
}

TEST_F(MultipartStoreTest, RefusedCompletionKeepsTheUpload) {
  char id[33];
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "big/object.bin", nullptr, nullptr, id));
  std::string e1 = part(id, 1, "too small to be a first part");
  std::string e2 = part(id, 2, "last");
  ep_mpu_request_part req[] = {{1, e1.c_str()}, {2, e2.c_str()}};
  ep_mpu_verdict v;
  char detail[256];
  ep_store_meta m;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_complete(mpu_, "bkt", "big/object.bin", id, req, 2, &v, detail, sizeof detail, &m));
  EXPECT_EQ(ASD_MPU_ENTITY_TOO_SMALL, v);
  EXPECT_EQ("<missing>", get("big/object.bin"));
  // Still there: completing with the last part alone works.
  EXPECT_EQ(ASD_STORE_OK, ep_mpu_check(mpu_, "bkt", "big/object.bin", id));
  ep_mpu_request_part only2[] = {{2, e2.c_str()}};
  ASSERT_EQ(ASD_STORE_OK,
            ep_mpu_complete(mpu_, "bkt", "big/object.bin", id, only2, 1, &v, detail, sizeof detail, &m));
  EXPECT_EQ(ASD_MPU_OK, v);
  EXPECT_EQ("last", get("big/object.bin"));
}

TEST_F(MultipartStoreTest, AbortDeletesPartsAndLatePartsFail) {
  char id[33];
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "k", nullptr, nullptr, id));
  ASSERT_FALSE(part(id, 1, "data", "k").empty());
  // A part streaming while the upload is aborted fails at commit.
  ep_store_writer *w = nullptr;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_part_writer_begin(mpu_, "bkt", "k", id, 2, &w));
  ASSERT_EQ(0, ep_store_writer_write(w, "late", 4));
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_abort(mpu_, "bkt", "k", id));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_store_writer_commit(w, nullptr, nullptr));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_abort(mpu_, "bkt", "k", id));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_check(mpu_, "bkt", "k", id));
  EXPECT_TRUE(part(id, 3, "x", "k").empty());
  // Nothing is left on disk once the store is reopened (which sweeps leftovers).
  close();
  open();
  EXPECT_EQ(0u, upload_folders());
}

TEST_F(MultipartStoreTest, UploadsSurviveRestartAndCrashLeftoversAreRepaired) {
  char id[33], other[33];
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "b-key", nullptr, nullptr, id));
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "a-key", nullptr, nullptr, other));
  std::string e1 = part(id, 1, "persisted", "b-key");
  // Simulate a crash: a half-written part file, and a completion interrupted
  // after the claim.
  {
    std::ofstream f(dir_ + "/.uploads/" + id + "/.tmp-crashed-part");
    f << "partial";
  }
  std::filesystem::rename(dir_ + "/.uploads/" + other, dir_ + "/.uploads/.completing-" + other);
  close();
  open();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/.uploads/" + id + "/.tmp-crashed-part"));
  ep_mpu_upload *ups = nullptr;
  size_t n = 0;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_list_uploads(mpu_, "bkt", nullptr, &ups, &n));
  ASSERT_EQ(2u, n);
  EXPECT_STREQ("a-key", ups[0].key);  // sorted by key
  EXPECT_STREQ(other, ups[0].upload_id);
  EXPECT_STREQ("b-key", ups[1].key);
  ep_mpu_uploads_free(ups, n);
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_list_uploads(mpu_, "bkt", "b-", &ups, &n));
  EXPECT_EQ(1u, n);
  ep_mpu_uploads_free(ups, n);
  ep_mpu_request_part req[] = {{1, e1.c_str()}};
  ep_mpu_verdict v;
  char detail[256];
  ep_store_meta m;
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_complete(mpu_, "bkt", "b-key", id, req, 1, &v, detail, sizeof detail, &m));
  EXPECT_EQ(ASD_MPU_OK, v);
  EXPECT_EQ("persisted", get("b-key"));
}

TEST_F(MultipartStoreTest, IdsOfOtherKeysBucketsOrHostileShapesAreNoSuchUpload) {
  char id[33];
  ASSERT_EQ(ASD_STORE_OK, ep_mpu_create(mpu_, "bkt", "mine", nullptr, nullptr, id));
  ASSERT_EQ(ASD_STORE_OK, ep_store_create_bucket(st_, "other"));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_check(mpu_, "bkt", "not-mine", id));
  EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_check(mpu_, "other", "mine", id));
  ep_store_writer *w = nullptr;
  for (const char *bad : {"../../x", "..", "", "0123456789ABCDEF0123456789ABCDEF", "/etc/passwd"}) {
    EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_check(mpu_, "bkt", "mine", bad)) << bad;
    EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_part_writer_begin(mpu_, "bkt", "mine", bad, 1, &w)) << bad;
    EXPECT_EQ(ASD_STORE_NO_UPLOAD, ep_mpu_abort(mpu_, "bkt", "mine", bad)) << bad;
  }
  EXPECT_EQ(ASD_STORE_NO_BUCKET, ep_mpu_create(mpu_, "missing-bucket", "k", nullptr, nullptr, id));
  // Every file stays under the data directory's own folders.
  for (auto &e : std::filesystem::recursive_directory_iterator(dir_))
    EXPECT_EQ(0u, e.path().string().rfind(dir_ + "/", 0)) << e.path();
}

}  // namespace
