// End-to-end test of an IAM Identity Center (SSO) profile: gdal_asyncdetect
// with nothing but AWS_PROFILE pointing at an sso_session profile and the
// token cache file `aws sso login` leaves in ~/.aws/sso/cache/.  The utility
// reads the token, calls GetRoleCredentials on the local endpoint
// (-sso-token), and signs every S3 and SageMaker call with the role
// credentials it got, which the endpoint verifies with their session token.
// An expired login stops the run before any work with one line saying
// "run 'aws sso login --profile NAME'".  On main at 2d28b95 the profile was
// refused ("IAM Identity Center (SSO), which is not supported").  An expired
// login with a refresh token is refreshed through SSO OIDC CreateToken and
// written back to the cache, as botocore does.
#include <gtest/gtest.h>

#include <dirent.h>
#include <json-c/json.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <ctime>
#include <memory>
#include <string>

#include "asd_aws_env.h"
#include "asd_local_endpoint.h"
#include "asd_raw_http.h"
#include "aws/aws_internal.h"
#include "e2e_helpers.h"

using asd_e2e::AppProcess;
using asd_e2e::RunResult;
using asd_e2e::TempDir;
using asd_e2e::app_args;
using asd_e2e::endpoint_args;
using asd_e2e::sample;
using asd_e2e::vector_concat;

namespace {

const char *kToken = "e2e-portal-token-51c0";

long long stat_of(asd_test::LocalEndpoint &ep, const char *group, const char *field) {
  json_object *root = json_tokener_parse(ep.stats_json().c_str());
  json_object *g = nullptr, *f = nullptr;
  long long v = -1;
  if (root && json_object_object_get_ex(root, group, &g) && json_object_object_get_ex(g, field, &f))
    v = json_object_get_int64(f);
  json_object_put(root);
  return v;
}

std::string iso_in(double seconds) {
  time_t t = time(nullptr) + (time_t)seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[40];
  strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

class E2eSso : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GDALAllRegister(); }
};

TEST_F(E2eSso, SsoSessionProfileRunsEndToEnd) {
  asd_test::AwsEnvSandbox env;  // HOME is a fresh directory; no AWS_* variables
  asd_test::LocalEndpoint ep(vector_concat(endpoint_args(), {"-sso-token", kToken}));
  setenv("AWS_ENDPOINT_URL", ep.url().c_str(), 1);
  setenv("AWS_REGION", "us-east-1", 1);
  setenv("AWS_PROFILE", "analyst", 1);
  mkdir((env.dir() + "/.aws").c_str(), 0700);
  mkdir((env.dir() + "/.aws/sso").c_str(), 0700);
  mkdir((env.dir() + "/.aws/sso/cache").c_str(), 0700);
  env.write(".aws/config",
            "[profile analyst]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Detector\n"
            "region = us-east-1\n\n[sso-session corp]\nsso_start_url = https://d-1234567890.awsapps.com/start\n"
            "sso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n");
  char name[46];
  asd_aws_sso_cache_name("corp", name);
  auto write_token = [&](const std::string &expires) {
    env.write(std::string(".aws/sso/cache/") + name,
              std::string("{\"startUrl\": \"https://d-1234567890.awsapps.com/start\", \"region\": \"eu-west-1\", "
                          "\"accessToken\": \"") +
                  kToken + "\", \"expiresAt\": \"" + expires + "\"}");
  };
  write_token(iso_in(8 * 3600));

  TempDir dir;
  std::string out = dir.path() + "/out.gpkg";
  std::vector<std::string> tiling = {"-tile-size", "1024", "-overlap", "128"};
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out, tiling), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  asd_e2e::Accuracy a = asd_e2e::accuracy(out);
  EXPECT_GE(a.score.recall(), 0.99) << a.score.describe();
  EXPECT_GE(a.score.precision(), 0.99) << a.score.describe();
  EXPECT_EQ(1, stat_of(ep, "sso", "credentials_issued"));
  EXPECT_EQ(0, stat_of(ep, "sso", "unauthorized"));
  // Every S3 and SageMaker request was signed with the issued key and token.
  EXPECT_GT(stat_of(ep, "sts", "session_key_lookups"), 20);
  EXPECT_EQ(0, stat_of(ep, "sts", "rejected_tokens"));

  // An expired login: one line saying what to run, nothing invoked or written.
  write_token(iso_in(-120));
  std::string out2 = dir.path() + "/out2.gpkg";
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), out2, tiling), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("run 'aws sso login --profile analyst'")) << r.err;
  EXPECT_EQ(-1, access(out2.c_str(), F_OK));
  EXPECT_EQ(1, stat_of(ep, "sso", "get_role_credentials_calls"));
}

// An expired login with a refresh token (gaps item 6): refreshed through SSO
// OIDC CreateToken as botocore does, written back to the cache (0600, the
// new refresh token kept: the endpoint rotates them), no token in any
// message; a refresh token the service refuses: one line, aws sso login.
TEST_F(E2eSso, ExpiredLoginIsRefreshedThroughSsoOidc) {
  asd_test::AwsEnvSandbox env;
  asd_test::LocalEndpoint ep(
      vector_concat(endpoint_args(), {"-sso-token", kToken, "-sso-oidc", "e2e-client:e2e-client-secret:e2e-refresh-1"}));
  setenv("AWS_ENDPOINT_URL", ep.url().c_str(), 1);
  setenv("AWS_REGION", "us-east-1", 1);
  setenv("AWS_PROFILE", "analyst", 1);
  mkdir((env.dir() + "/.aws").c_str(), 0700);
  mkdir((env.dir() + "/.aws/sso").c_str(), 0700);
  mkdir((env.dir() + "/.aws/sso/cache").c_str(), 0700);
  env.write(".aws/config",
            "[profile analyst]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Detector\n"
            "region = us-east-1\n\n[sso-session corp]\nsso_start_url = https://d-1234567890.awsapps.com/start\n"
            "sso_region = eu-west-1\n");
  char name[46];
  asd_aws_sso_cache_name("corp", name);
  const std::string cache = env.dir() + "/.aws/sso/cache/" + name;
  auto write_login = [&](const std::string &refresh, const std::string &registration_expires) {
    env.write(std::string(".aws/sso/cache/") + name,
              "{\"startUrl\": \"https://d-1234567890.awsapps.com/start\", \"region\": \"eu-west-1\", "
              "\"accessToken\": \"expired-access-token-77\", \"expiresAt\": \"" + iso_in(-120) + "\", "
              "\"refreshToken\": \"" + refresh + "\", \"clientId\": \"e2e-client\", "
              "\"clientSecret\": \"e2e-client-secret\", \"registrationExpiresAt\": \"" + registration_expires + "\"}");
    chmod(cache.c_str(), 0600);
  };
  write_login("e2e-refresh-1", iso_in(30 * 86400));

  TempDir dir;
  std::vector<std::string> tiling = {"-tile-size", "1024", "-overlap", "128"};
  RunResult r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/a.gpkg", tiling), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(1, stat_of(ep, "sso", "tokens_refreshed"));
  EXPECT_EQ(1, stat_of(ep, "sso", "credentials_issued"));
  EXPECT_EQ(0, stat_of(ep, "sso", "unauthorized"));
  // Written back: a new access token valid for a while, the rotated refresh
  // token, the registration kept; the file the user's alone.
  struct stat st;
  ASSERT_EQ(0, stat(cache.c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 0777);
  json_object *o = json_object_from_file(cache.c_str());
  ASSERT_NE(nullptr, o);
  json_object *v = nullptr;
  std::string access, refresh, expires;
  if (json_object_object_get_ex(o, "accessToken", &v)) access = json_object_get_string(v);
  if (json_object_object_get_ex(o, "refreshToken", &v)) refresh = json_object_get_string(v);
  if (json_object_object_get_ex(o, "expiresAt", &v)) expires = json_object_get_string(v);
  EXPECT_TRUE(json_object_object_get_ex(o, "clientSecret", &v));
  EXPECT_TRUE(json_object_object_get_ex(o, "startUrl", &v));
  json_object_put(o);
  EXPECT_FALSE(access.empty());
  EXPECT_NE("expired-access-token-77", access);
  EXPECT_FALSE(refresh.empty());
  EXPECT_NE("e2e-refresh-1", refresh);
  EXPECT_GT(expires, iso_in(30 * 60)) << expires;
  for (const std::string &secret : {access, refresh, std::string("e2e-client-secret"), std::string("e2e-refresh-1")}) {
    EXPECT_EQ(std::string::npos, r.err.find(secret));
    EXPECT_EQ(std::string::npos, r.out.find(secret));
  }
  // The next run uses the saved token as it is: no second refresh.
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/b.gpkg", tiling), dir.path());
  ASSERT_EQ(0, r.status) << r.err;
  EXPECT_EQ(1, stat_of(ep, "sso", "tokens_refreshed"));

  // The spent refresh token: refused by the service, one line, no secret.
  write_login("e2e-refresh-1", iso_in(30 * 86400));
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/c.gpkg", tiling), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_EQ(1, asd_e2e::count_lines(r.err)) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("could not be refreshed (InvalidGrantException")) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("run 'aws sso login --profile analyst'")) << r.err;
  EXPECT_EQ(std::string::npos, r.err.find("e2e-refresh-1")) << r.err;
  EXPECT_EQ(std::string::npos, r.err.find("e2e-client-secret")) << r.err;
  // A client registration that has expired: no refresh is tried.
  write_login(refresh, iso_in(-60));
  r = asd_e2e::run_app(app_args(sample("scene_utm.tif"), dir.path() + "/d.gpkg", tiling), dir.path());
  EXPECT_EQ(1, r.status);
  EXPECT_NE(std::string::npos, r.err.find("expired at")) << r.err;
  EXPECT_EQ(2, stat_of(ep, "sso", "create_token_calls"));
}

// Two processes refreshing one login (gaps, session 6).  The endpoint, as
// the service, spends a refresh token when it is used, so refreshes of one
// login must be serialised: a process that finds another one refreshing
// waits for it (the lock file next to the cache), reads the cache again and
// uses the login saved there, presenting no spent token.
class E2eSsoConcurrent : public E2eSso {
 protected:
  void SetUp() override {
    ep_.reset(new asd_test::LocalEndpoint(vector_concat(
        endpoint_args(), {"-sso-token", kToken, "-sso-oidc", "e2e-client:e2e-client-secret:e2e-refresh-1"})));
    setenv("AWS_ENDPOINT_URL", ep_->url().c_str(), 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_PROFILE", "analyst", 1);
    for (const char *d : {"/.aws", "/.aws/sso", "/.aws/sso/cache"}) mkdir((env_.dir() + d).c_str(), 0700);
    env_.write(".aws/config",
               "[profile analyst]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Detector\n"
               "region = us-east-1\n\n[sso-session corp]\nsso_start_url = https://d-1234567890.awsapps.com/start\n"
               "sso_region = eu-west-1\n");
    char name[46];
    asd_aws_sso_cache_name("corp", name);
    rel_ = std::string(".aws/sso/cache/") + name;
    cache_ = env_.dir() + "/" + rel_;
  }
  void write_login(const std::string &access, const std::string &expires, const std::string &refresh) {
    env_.write(rel_, "{\"startUrl\": \"https://d-1234567890.awsapps.com/start\", \"region\": \"eu-west-1\", "
                     "\"accessToken\": \"" + access + "\", \"expiresAt\": \"" + expires + "\", "
                     "\"refreshToken\": \"" + refresh + "\", \"clientId\": \"e2e-client\", "
                     "\"clientSecret\": \"e2e-client-secret\", \"registrationExpiresAt\": \"" +
                     iso_in(30 * 86400) + "\"}");
    chmod(cache_.c_str(), 0600);
  }
  std::string cached(const char *member) {
    json_object *o = json_object_from_file(cache_.c_str()), *v = nullptr;
    std::string s = o && json_object_object_get_ex(o, member, &v) ? json_object_get_string(v) : "";
    json_object_put(o);
    return s;
  }
  std::vector<std::string> dry_run(const std::string &dir, int k) {
    return app_args(sample("scene_utm.tif"), dir + "/r" + std::to_string(k) + ".gpkg",
                    {"-dry-run", "-tile-size", "1024", "-overlap", "128"});
  }
  asd_test::AwsEnvSandbox env_;
  std::unique_ptr<asd_test::LocalEndpoint> ep_;
  std::string rel_, cache_;
};

// Whether process pid has path open (it has opened the lock file and waits
// for the lock the test holds).
bool has_open(pid_t pid, const std::string &path) {
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  DIR *d = opendir(fds.c_str());
  bool found = false;
  for (struct dirent *e = d ? readdir(d) : nullptr; e && !found; e = readdir(d)) {
    char target[4096];
    ssize_t n = readlink((fds + "/" + e->d_name).c_str(), target, sizeof target - 1);
    found = n > 0 && std::string(target, (size_t)n) == path;
  }
  if (d) closedir(d);
  return found;
}

// Deterministic: the test is the other process.  It holds the lock, starts a
// run with an expired login, waits until the run is waiting for the lock,
// refreshes the login itself (CreateToken, spending e2e-refresh-1) and saves
// it, then lets go.  The run must use the saved login: without the lock it
// would have refreshed at once and the test's own refresh would be refused.
TEST_F(E2eSsoConcurrent, ARunWaitsForAnotherProcesssRefreshAndUsesItsLogin) {
  write_login("expired-access-token-77", iso_in(-120), "e2e-refresh-1");
  const std::string lock_path = cache_ + ".lock";
  // Not inherited by the run (its open descriptors are what the test looks at).
  int lock = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(0, flock(lock, LOCK_EX));
  TempDir dir;
  AppProcess run(dry_run(dir.path(), 0), dir.path());
  bool waiting = false;
  for (int i = 0; i < 3000 && !waiting; i++) {
    waiting = has_open(run.pid(), lock_path);
    if (!waiting && waitpid(run.pid(), nullptr, WNOHANG) != 0) break;  // it ended without waiting
    if (!waiting) usleep(10000);
  }
  ASSERT_TRUE(waiting) << "the run did not wait for the refresh lock";
  const std::string body = "{\"clientId\":\"e2e-client\",\"clientSecret\":\"e2e-client-secret\","
                           "\"grantType\":\"refresh_token\",\"refreshToken\":\"e2e-refresh-1\"}";
  asd_test::RawReply rep = asd_test::raw_exchange(
      ep_->port(), "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  ASSERT_EQ(200, rep.status) << rep.head << rep.body;
  json_object *o = json_tokener_parse(rep.body.c_str()), *v = nullptr;
  ASSERT_NE(nullptr, o);
  const std::string access = json_object_object_get_ex(o, "accessToken", &v) ? json_object_get_string(v) : "";
  const std::string refresh = json_object_object_get_ex(o, "refreshToken", &v) ? json_object_get_string(v) : "";
  json_object_put(o);
  write_login(access, iso_in(3600), refresh);
  close(lock);  // lets the run go on
  RunResult r = run.wait();
  EXPECT_EQ(0, r.status) << r.err;
  EXPECT_EQ(1, stat_of(*ep_, "sso", "create_token_calls")) << "the run refreshed the login again";
  EXPECT_EQ(0, stat_of(*ep_, "sso", "invalid_grants"));
  EXPECT_EQ(1, stat_of(*ep_, "sso", "credentials_issued"));
  EXPECT_EQ(refresh, cached("refreshToken"));
}

// Four runs started together on one expired login: one refresh, every run
// gets credentials, nobody is told to log in again.
TEST_F(E2eSsoConcurrent, RunsStartedTogetherRefreshOnce) {
  write_login("expired-access-token-77", iso_in(-120), "e2e-refresh-1");
  TempDir dir;
  std::vector<std::unique_ptr<AppProcess>> runs;
  for (int k = 0; k < 4; k++) runs.emplace_back(new AppProcess(dry_run(dir.path(), k), dir.path()));
  for (auto &p : runs) {
    RunResult r = p->wait();
    EXPECT_EQ(0, r.status) << r.err;
  }
  EXPECT_EQ(1, stat_of(*ep_, "sso", "tokens_refreshed"));
  EXPECT_EQ(0, stat_of(*ep_, "sso", "invalid_grants"));
  EXPECT_EQ(4, stat_of(*ep_, "sso", "credentials_issued"));
  EXPECT_NE("e2e-refresh-1", cached("refreshToken"));
  struct stat st;
  ASSERT_EQ(0, stat(cache_.c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 0777);
}

}  // namespace
