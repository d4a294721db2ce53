// Unit tests for tiler/journal.c: state changes are committed as they
// happen, survive closing (and killing) the process, and a journal refuses to
// resume a run whose identity differs.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "asyncdetect/asd_journal.h"
#include "cpl_conv.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"
#include "ogr_api.h"

namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GDALAllRegister();
    char tmpl[] = "/tmp/asd-journal-XXXXXX";
    ASSERT_NE(nullptr, mkdtemp(tmpl));
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(0, std::system(cmd.c_str()));
  }
  std::string dir_;
};

TEST_F(JournalTest, RecordsStatesAndReopens) {
  std::string path = dir_ + "/j.gpkg";
  asd_journal *j = asd_journal_open_path(path.c_str(), 1);
  ASSERT_NE(nullptr, j);
  EXPECT_EQ(0, asd_journal_count(j));
  ASSERT_EQ(0, asd_journal_submitted(j, 3, "inf-3", "s3://in/3", "s3://out/3.out", "s3://fail/3-error.out"));
  ASSERT_EQ(0, asd_journal_submitted(j, 5, "inf-5", "s3://in/5", "s3://out/5.out", "s3://fail/5-error.out"));
  ASSERT_EQ(0, asd_journal_succeeded(j, 3, "{\"type\":\"FeatureCollection\",\"features\":[]}"));
  ASSERT_EQ(0, asd_journal_failed(j, 7, "model error: boom"));
  EXPECT_EQ(3, asd_journal_count(j));
  asd_journal_close(j);

  j = asd_journal_open_path(path.c_str(), 0);
  ASSERT_NE(nullptr, j);
  EXPECT_EQ(3, asd_journal_count(j));
  asd_journal_entry *e = asd_journal_get(j, 3);
  ASSERT_NE(nullptr, e);
  EXPECT_EQ(ASD_JOURNAL_SUCCEEDED, e->state);
  EXPECT_STREQ("inf-3", e->inference_id);
  EXPECT_STREQ("s3://out/3.out", e->output_location);
  EXPECT_EQ(1, e->attempts);
  asd_journal_entry_free(e);
  char *res = asd_journal_result(j, 3);
  ASSERT_NE(nullptr, res);
  EXPECT_STREQ("{\"type\":\"FeatureCollection\",\"features\":[]}", res);
  CPLFree(res);

  e = asd_journal_get(j, 5);
  ASSERT_NE(nullptr, e);
  EXPECT_EQ(ASD_JOURNAL_SUBMITTED, e->state);
  EXPECT_STREQ("s3://fail/5-error.out", e->failure_location);
  asd_journal_entry_free(e);
  EXPECT_EQ(nullptr, asd_journal_result(j, 5));

  e = asd_journal_get(j, 7);
  ASSERT_NE(nullptr, e);
  EXPECT_EQ(ASD_JOURNAL_FAILED, e->state);
  EXPECT_STREQ("model error: boom", e->reason);
  asd_journal_entry_free(e);
  EXPECT_EQ(nullptr, asd_journal_get(j, 4));

  // A retried tile counts its attempts and forgets its old failure.
  ASSERT_EQ(0, asd_journal_submitted(j, 7, "inf-7b", "s3://in/7", "s3://out/7.out", "s3://fail/7"));
  e = asd_journal_get(j, 7);
  EXPECT_EQ(ASD_JOURNAL_SUBMITTED, e->state);
  EXPECT_EQ(nullptr, e->reason);
  EXPECT_EQ(1, e->attempts);
  asd_journal_entry_free(e);
  int sub = 0, ok = 0, bad = 0;
  asd_journal_counts(j, &sub, &ok, &bad);
  EXPECT_EQ(2, sub);
  EXPECT_EQ(1, ok);
  EXPECT_EQ(0, bad);
  asd_journal_close(j);
}

TEST_F(JournalTest, IdentityMustMatch) {
  std::string path = dir_ + "/j.gpkg";
  asd_journal *j = asd_journal_open_path(path.c_str(), 1);
  ASSERT_NE(nullptr, j);
  char **meta = CSLSetNameValue(nullptr, "source", "scene.tif");
  meta = CSLSetNameValue(meta, "tile_size", "512");
  char *mismatch = nullptr;
  EXPECT_EQ(0, asd_journal_bind(j, meta, &mismatch));
  asd_journal_close(j);

  j = asd_journal_open_path(path.c_str(), 0);
  ASSERT_NE(nullptr, j);
  EXPECT_EQ(0, asd_journal_bind(j, meta, &mismatch));
  EXPECT_EQ(nullptr, mismatch);
  char **other = CSLSetNameValue(CSLDuplicate(meta), "tile_size", "256");
  EXPECT_EQ(-1, asd_journal_bind(j, other, &mismatch));
  ASSERT_NE(nullptr, mismatch);
  EXPECT_NE(nullptr, strstr(mismatch, "tile_size"));
  CPLFree(mismatch);
  CSLDestroy(other);
  CSLDestroy(meta);
  asd_journal_close(j);
}

TEST_F(JournalTest, MissingJournalIsAClearError) {
  std::string path = dir_ + "/none.gpkg";
  CPLPushErrorHandler(CPLQuietErrorHandler);
  EXPECT_EQ(nullptr, asd_journal_open_path(path.c_str(), 0));
  CPLPopErrorHandler();
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "nothing to resume"));
}

// The journal lives in the output GeoPackage next to other layers.
TEST_F(JournalTest, LivesInsideAnOutputGeoPackage) {
  std::string path = dir_ + "/out.gpkg";
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GPKG"), path.c_str(), 0, 0, 0, GDT_Unknown, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH det = GDALDatasetCreateLayer(ds, "detections", nullptr, wkbPolygon, nullptr);
  ASSERT_NE(nullptr, det);
  asd_journal *j = asd_journal_open_dataset(ds, 1);
  ASSERT_NE(nullptr, j);
  ASSERT_EQ(0, asd_journal_succeeded(j, 0, "{}"));
  asd_journal_close(j);
  GDALClose(ds);

  const char *const drv[] = {"GPKG", nullptr};
  ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, drv, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  EXPECT_NE(nullptr, GDALDatasetGetLayerByName(ds, "detections"));
  j = asd_journal_open_dataset(ds, 0);
  ASSERT_NE(nullptr, j);
  EXPECT_EQ(1, asd_journal_count(j));
  asd_journal_close(j);
  GDALClose(ds);
}

// A process killed right after a state change returns keeps that change.
TEST_F(JournalTest, SurvivesKill9) {
  std::string path = dir_ + "/k.gpkg";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    asd_journal *j = asd_journal_open_path(path.c_str(), 1);
    if (!j) _exit(3);
    for (int t = 0; t < 20; t++) asd_journal_submitted(j, t, "i", "in", "out", "fail");
    for (int t = 0; t < 10; t++) asd_journal_succeeded(j, t, "{\"features\":[]}");
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFSIGNALED(status));
  asd_journal *j = asd_journal_open_path(path.c_str(), 0);
  ASSERT_NE(nullptr, j);
  int sub = 0, ok = 0, bad = 0;
  asd_journal_counts(j, &sub, &ok, &bad);
  EXPECT_EQ(10, sub);
  EXPECT_EQ(10, ok);
  asd_journal_close(j);
}

// Notes (how the output was opened) are kept beside the identity and never
// compared: a resumed run binds with the same identity and reads them back.
TEST_F(JournalTest, NotesAreKeptButNotCompared) {
  std::string path = dir_ + "/notes.gpkg";
  char *meta[] = {(char *)"source=a.tif", (char *)"tiles=4", nullptr};
  asd_journal *j = asd_journal_open_path(path.c_str(), 1);
  ASSERT_NE(nullptr, j);
  ASSERT_EQ(0, asd_journal_bind(j, meta, nullptr));
  ASSERT_EQ(0, asd_journal_set_note(j, "output_mode", "append"));
  ASSERT_EQ(0, asd_journal_set_note(j, "output_mode", "create"));
  asd_journal_close(j);
  j = asd_journal_open_path(path.c_str(), 0);
  ASSERT_NE(nullptr, j);
  char *mismatch = nullptr;
  EXPECT_EQ(0, asd_journal_bind(j, meta, &mismatch)) << (mismatch ? mismatch : "");
  CPLFree(mismatch);
  char *v = asd_journal_get_note(j, "output_mode");
  ASSERT_NE(nullptr, v);
  EXPECT_STREQ("create", v);
  CPLFree(v);
  EXPECT_EQ(nullptr, asd_journal_get_note(j, "absent"));
  asd_journal_close(j);
}

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define ASD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASD_ASAN 1
#endif
#endif

// The index follows the rows present, not the largest tile number: a
// journal whose one row names tile 99,999,999 (damaged, edited, or a huge
// plan) opens in a child whose address space may grow by only 256 MB.  A
// flat index took 9.6 GB here (found by autotest/fuzz/fuzz_journal.c).
// Address-space limits do not mix with ASan, so the sanitizer build checks
// only that such a journal opens and reads back.
TEST_F(JournalTest, SparseTileNumbersCostLittleMemory) {
  std::string path = dir_ + "/sparse.gpkg";
  asd_journal *j = asd_journal_open_path(path.c_str(), 1);
  ASSERT_NE(nullptr, j);
  ASSERT_EQ(0, asd_journal_failed(j, 99999999, "far away"));
  ASSERT_EQ(0, asd_journal_submitted(j, 2, "inf-2", "s3://in/2", "s3://out/2.out", nullptr));
  asd_journal_close(j);
  fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
#ifndef ASD_ASAN
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(3);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256u << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(4);
#endif
    asd_journal *r = asd_journal_open_path(path.c_str(), 0);
    if (!r) _exit(1);
    asd_journal_entry *e = asd_journal_get(r, 99999999);
    int ok = e && e->state == ASD_JOURNAL_FAILED && asd_journal_count(r) == 2 && !asd_journal_get(r, 99999998);
    asd_journal_entry_free(e);
    int s = 0, d = 0, fl = 0;
    asd_journal_counts(r, &s, &d, &fl);
    ok = ok && s == 1 && d == 0 && fl == 1;
    asd_journal_close(r);
    _exit(ok ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << "reading the journal died";
  EXPECT_EQ(0, WEXITSTATUS(status)) << "the journal did not open or read back within 256 MB";
}
