// Client-chosen inference ids and the result locations they make
// predictable (plugin/engine/invoke.c).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "asyncdetect/asd_sagemaker.h"
#include "engine/invoke.h"
}

TEST(EngineInvoke, IdAndFilename) {
  char id[37], fn[ASD_INVOKE_FILENAME_MAX], again[ASD_INVOKE_FILENAME_MAX];
  asd_invoke_new_id(id, fn);
  EXPECT_EQ(36u, strlen(id));
  EXPECT_EQ(32u, strlen(fn));
  EXPECT_TRUE(asd_sm_filename_valid(fn)) << fn;
  // The Filename can be derived from the id alone (what -resume has).
  ASSERT_EQ(0, asd_invoke_filename_of(id, again));
  EXPECT_STREQ(fn, again);
  char id2[37], fn2[ASD_INVOKE_FILENAME_MAX];
  asd_invoke_new_id(id2, fn2);
  EXPECT_STRNE(fn, fn2);
  // Ids this library did not choose name no file.
  EXPECT_EQ(-1, asd_invoke_filename_of("a/b", again));
  EXPECT_EQ(-1, asd_invoke_filename_of("0123456789012345678901234567890123", again));
  EXPECT_EQ(-1, asd_invoke_filename_of("", again));
}

TEST(EngineInvoke, LearnsAndPredictsLocations) {
  asd_invoke_paths p;
  asd_invoke_paths_init(&p);
  char *out = nullptr, *fail = nullptr;
  EXPECT_EQ(0, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  EXPECT_EQ(nullptr, out);
  // A location that does not end with the Filename teaches nothing.
  asd_invoke_paths_learn(&p, "abc", "s3://b/o/ext/uuid.out", "s3://b/f/ext/uuid-error.out");
  EXPECT_EQ(0, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  asd_invoke_paths_learn(&p, "abc", "s3://b/o/ext/abc", "s3://b/f/ext/abc-error.out");
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "def", &out, &fail));
  EXPECT_STREQ("s3://b/o/ext/def", out);
  EXPECT_STREQ("s3://b/f/ext/def-error.out", fail);
  free(out);
  free(fail);
  asd_invoke_paths_free(&p);
  // An endpoint without S3FailurePath: only the output is predicted.
  asd_invoke_paths_init(&p);
  asd_invoke_paths_learn(&p, "abc", "s3://b/abc", nullptr);
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "x1", &out, &fail));
  EXPECT_STREQ("s3://b/x1", out);
  EXPECT_EQ(nullptr, fail);
  free(out);
  asd_invoke_paths_free(&p);
}

// Before any answer, the endpoint configuration's OutputConfig seeds the
// paths (gaps item 7), so a lost answer of the very first tiles is looked
// for too; what an answer shows replaces the seed, never the reverse.
TEST(EngineInvoke, SeedsFromTheEndpointConfigUntilAnAnswerShowsThePaths) {
  asd_invoke_paths p;
  asd_invoke_paths_init(&p);
  char *out = nullptr, *fail = nullptr;
  asd_invoke_paths_seed(&p, "s3://b/out/", "s3://f/fail", "ext/sub/");
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  EXPECT_STREQ("s3://b/out/ext/sub/abc", out);
  EXPECT_STREQ("s3://f/fail/ext/sub/abc-error.out", fail);
  free(out);
  free(fail);
  // An answer teaches where the endpoint really writes.
  asd_invoke_paths_learn(&p, "x1", "s3://b/other/x1", "s3://f/elsewhere/x1-error.out");
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  EXPECT_STREQ("s3://b/other/abc", out);
  EXPECT_STREQ("s3://f/elsewhere/abc-error.out", fail);
  free(out);
  free(fail);
  // A later seed changes nothing learnt.
  asd_invoke_paths_seed(&p, "s3://z/z", "s3://z/f", nullptr);
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  EXPECT_STREQ("s3://b/other/abc", out);
  free(out);
  free(fail);
  asd_invoke_paths_free(&p);

  // No S3FailurePath in the configuration: the output alone; no usable
  // S3OutputPath: nothing predicted.
  asd_invoke_paths_init(&p);
  asd_invoke_paths_seed(&p, "s3://b", "", "");
  ASSERT_EQ(1, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  EXPECT_STREQ("s3://b/abc", out);
  EXPECT_EQ(nullptr, fail);
  free(out);
  asd_invoke_paths_free(&p);
  asd_invoke_paths_init(&p);
  asd_invoke_paths_seed(&p, "https://b/out", "s3://f/fail", "");
  EXPECT_EQ(0, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  asd_invoke_paths_seed(&p, "s3:///out", nullptr, nullptr);
  EXPECT_EQ(0, asd_invoke_paths_predict(&p, "abc", &out, &fail));
  asd_invoke_paths_free(&p);
}
