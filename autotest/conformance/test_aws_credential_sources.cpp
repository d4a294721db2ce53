// Regression tests for issue 13's client credential items: the credentials
// chain trusts nothing it is told.
//   - The ECS/EKS container credentials URL is parsed with curl's URL API:
//     no user information, plain http only to loopback or the documented
//     agent addresses (a prefix check let http://127.0.0.1@evil.example/ and
//     http://127.0.0.1.evil.example/ through).
//   - The IMDSv2 session token and role name are validated before they go
//     into a header or a URL (CR/LF, '/', '..').
//   - credential_process is split into argv as the AWS CLI splits it
//     (shlex.split: checked against Python's own shlex) and spawned without
//     a shell, with its descriptors closed and a timeout.
// Each of these tests failed on main at 2d28b95.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <json-c/json.h>

#include "asd_aws_env.h"
#include "asd_mini_http.h"
#include "aws/aws_internal.h"

using asd_test::MiniHttp;
using asd_test::MiniRequest;
using asd_test::MiniResponse;

namespace {

const char *kCredsJson =
    "{\"Version\": 1, \"AccessKeyId\": \"AKIDTEST\", \"SecretAccessKey\": \"secret-test\"}";

std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class CredentialSources : public ::testing::Test {
 protected:
  asd_test::AwsEnvSandbox env;
  asd_aws_context *ctx = nullptr;
  asd_aws_credentials cr;
  asd_aws_error err;

  void SetUp() override {
    asd_aws_credentials_init(&cr);
    asd_aws_error_clear(&err);
    asd_aws_config c;
    asd_aws_config_init(&c);
    c.region = "us-east-1";
    c.max_attempts = 1;
    c.connect_timeout = 2;
    asd_aws_error e;
    ctx = asd_aws_context_new(&c, &e);
    ASSERT_NE(nullptr, ctx) << e.message;
  }
  void TearDown() override {
    asd_aws_credentials_free(&cr);
    asd_aws_context_free(ctx);
    CPLSetConfigOption("ASD_CREDENTIAL_PROCESS_TIMEOUT", nullptr);
  }
};

// ------------------------------------------------------------------ ECS

TEST_F(CredentialSources, EcsUrlWithUserInformationIsRefused) {
  // A prefix check saw "127." and let the request go to evil.example.
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1@evil.example/creds", 1);
  EXPECT_EQ(-1, asd_aws_creds_from_ecs(ctx, &cr, &err));
  EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "user information")) << err.message;
}

TEST_F(CredentialSources, EcsUrlHostIsComparedWhole) {
  static const char *const refused[] = {
      "http://127.0.0.1.evil.example/creds", "http://localhost.evil.example/creds",
      "http://169.254.170.2.evil.example/", "http://169.254.170.20/", "http://[fd00:ec2::24]/creds",
      "http://example.com/creds", "ftp://127.0.0.1/creds", "http://127.0.0.1/cr\r\neds", nullptr};
  for (int i = 0; refused[i]; i++) {
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_aws_creds_from_ecs(ctx, &cr, &err)) << refused[i];
    EXPECT_EQ(ASD_AWS_ERR_CONFIG, err.kind) << refused[i] << ": " << err.message;
  }
  // Accepted shapes (checked without fetching: the URL check alone).
  static const char *const accepted[] = {"http://127.0.0.1:9/creds", "http://127.9.8.7/x", "http://localhost/x",
                                         "http://[::1]:80/x", "http://169.254.170.2/v2/credentials/abc",
                                         "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/creds",
                                         "https://creds.example.com/anything", nullptr};
  char url[1024], why[200];
  for (int i = 0; accepted[i]; i++)
    EXPECT_EQ(0, asd_aws_ecs_url_check(accepted[i], url, sizeof url, why, sizeof why)) << accepted[i] << ": " << why;
}

TEST_F(CredentialSources, EcsRelativeUriCannotChangeTheHost) {
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example/creds", 1);
  char url[1024], why[200];
  ASSERT_EQ(0, asd_aws_ecs_url_check("http://169.254.170.2/@evil.example/creds", url, sizeof url, why, sizeof why));
  EXPECT_EQ(0u, std::string(url).find("http://169.254.170.2/")) << url;
}

// ------------------------------------------------------------------ IMDS

// An IMDS fake whose token and role-list answers are set per test; it
// answers credentials to any other GET carrying the token, so a client that
// used a malformed role name would get credentials (and pass) on main.
struct FakeImds {
  std::string token = "AQAEAKZ0b2tlbi1iYXNlNjQ=";
  std::string roles = "my-role\n";
  MiniHttp http{[this](const MiniRequest &r) {
    MiniResponse resp;
    if (r.method == "PUT" && r.path == "/latest/api/token") {
      resp.body = token;
    } else if (r.path == "/latest/meta-data/iam/security-credentials/") {
      resp.body = roles;
    } else {
      resp.body = std::string("{\"Code\":\"Success\",\"AccessKeyId\":\"AKIDTEST\",\"SecretAccessKey\":\"s\","
                              "\"Token\":\"t\",\"Expiration\":\"2099-01-01T00:00:00Z\"}");
    }
    return resp;
  }};
};

TEST_F(CredentialSources, ImdsRoleNameIsValidatedBeforeItGoesIntoTheUrl) {
  static const char *const bad_roles[] = {"../../user-data\n", "a/b\n", "role..name\n", "role name\n",
                                          "r%0d%0aX: y\n", nullptr};
  for (int i = 0; bad_roles[i]; i++) {
    FakeImds imds;
    imds.roles = bad_roles[i];
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.http.url().c_str(), 1);
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_aws_creds_from_imds(ctx, &cr, &err)) << bad_roles[i];
    EXPECT_NE(nullptr, strstr(err.message, "role name")) << err.message;
    EXPECT_EQ(2u, imds.http.request_count()) << "the malformed role name was used in a request: " << bad_roles[i];
    asd_aws_credentials_free(&cr);
  }
  // A well-formed name still works.
  FakeImds good;
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", good.http.url().c_str(), 1);
  EXPECT_EQ(1, asd_aws_creds_from_imds(ctx, &cr, &err)) << err.message;
  ASSERT_EQ(3u, good.http.request_count());
  EXPECT_EQ("/latest/meta-data/iam/security-credentials/my-role", good.http.requests()[2].path);
}

TEST_F(CredentialSources, ImdsTokenIsValidatedBeforeItGoesIntoAHeader) {
  static const char *const bad_tokens[] = {"tok\r\nX-Injected: yes", "tok\n", "tok en", "", nullptr};
  for (int i = 0; bad_tokens[i]; i++) {
    FakeImds imds;
    imds.token = bad_tokens[i];
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.http.url().c_str(), 1);
    asd_aws_error_clear(&err);
    EXPECT_EQ(-1, asd_aws_creds_from_imds(ctx, &cr, &err)) << i;
    EXPECT_NE(nullptr, strstr(err.message, "token")) << err.message;
    EXPECT_EQ(1u, imds.http.request_count()) << "the malformed token was sent back: case " << i;
    for (auto &r : imds.http.requests()) EXPECT_FALSE(r.has_header("X-Injected"));
    asd_aws_credentials_free(&cr);
  }
}

// ------------------------------------------------------- credential_process

}  // namespace

TEST(CredentialProcessSplit, MatchesPythonShlex) {
  if (std::system("python3 -c 'import shlex' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  // Python's shlex.split is what the AWS CLI uses (botocore's compat_shell_split).
  static const char *const lines[] = {
      "/usr/bin/helper --profile prod",
      "helper 'two words' three",
      "helper \"double quoted\" 'single'",
      "helper a\\ b c",
      "helper 'semi;colon' \"dollar $HOME\" back\\tick",
      "helper ''",
      "helper \"\" x",
      "helper   spaced\tout\n",
      "helper mixed'quo'\"tes\"",
      "helper 'it''s'",
      "helper # not a comment",
      "helper \"a \\\"q\\\" \\\\ \\$x\"",
      nullptr};
  // One python3 run splits every line (a JSON list in, a JSON list of lists out).
  json_object *in = json_object_new_array();
  for (int i = 0; lines[i]; i++) json_object_array_add(in, json_object_new_string(lines[i]));
  char tmpl[] = "/tmp/asd_shlex_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string text = json_object_to_json_string(in);
  json_object_put(in);
  ASSERT_EQ((ssize_t)text.size(), write(fd, text.data(), text.size()));
  close(fd);
  std::string cmd = std::string("python3 -c 'import json,shlex,sys; "
                                "print(json.dumps([shlex.split(l) for l in json.load(open(sys.argv[1]))]))' ") +
                    tmpl;
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(0, pclose(p));
  unlink(tmpl);
  json_object *py = json_tokener_parse(out.c_str());
  ASSERT_NE(nullptr, py) << out;
  for (int i = 0; lines[i]; i++) {
    const char *why = nullptr;
    char **argv = asd_aws_split_command(lines[i], &why);
    std::vector<std::string> ours, theirs;
    for (char **q = argv; q && *q; q++) ours.push_back(*q);
    CSLDestroy(argv);
    json_object *words = json_object_array_get_idx(py, (size_t)i);
    for (size_t k = 0; words && k < json_object_array_length(words); k++)
      theirs.push_back(json_object_get_string(json_object_array_get_idx(words, k)));
    EXPECT_EQ(theirs, ours) << "line: " << lines[i];
  }
  json_object_put(py);
  // What shlex refuses, we refuse with its reason.
  const char *why = nullptr;
  EXPECT_EQ(nullptr, asd_aws_split_command("helper 'open", &why));
  EXPECT_STREQ("No closing quotation", why);
  EXPECT_EQ(nullptr, asd_aws_split_command("helper \"open", &why));
  EXPECT_STREQ("No closing quotation", why);
  EXPECT_EQ(nullptr, asd_aws_split_command("helper trailing\\", &why));
  EXPECT_STREQ("No escaped character", why);
  EXPECT_EQ(nullptr, asd_aws_split_command("   ", &why));
}

TEST_F(CredentialSources, CredentialProcessRunsWithoutAShell) {
  std::string args_file = env.dir() + "/args.txt";
  std::string marker = env.dir() + "/pwned";
  std::string helper = env.write("helper.sh",
                                 "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + args_file +
                                     "'\necho '" + kCredsJson + "'\n",
                                 true);
  std::string line = helper + " 'two words' \"say \\\"hi\\\"\" semi;touch " + marker + " $HOME `id`";
  ASSERT_EQ(1, asd_aws_creds_from_process(line.c_str(), &cr, &err)) << err.message;
  EXPECT_STREQ("AKIDTEST", cr.access_key_id);
  EXPECT_EQ("two words\nsay \"hi\"\nsemi;touch\n" + marker + "\n$HOME\n`id`\n", read_file(args_file));
  EXPECT_NE(0, access(marker.c_str(), F_OK)) << "a shell ran the ';touch' part of the command";
}

TEST_F(CredentialSources, CredentialProcessInheritsNoDescriptors) {
  std::string report = env.dir() + "/fds.txt";
  std::string helper = env.write("helper.sh",
                                 "#!/bin/sh\nif [ -e /proc/$$/fd/57 ]; then echo LEAKED; else echo CLOSED; fi > '" +
                                     report + "'\necho '" + kCredsJson + "'\n",
                                 true);
  // A descriptor without close-on-exec, as a library or the user's code may hold.
  int fd = open(helper.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(57, dup2(fd, 57));
  close(fd);
  int rc = asd_aws_creds_from_process(helper.c_str(), &cr, &err);
  close(57);
  ASSERT_EQ(1, rc) << err.message;
  EXPECT_EQ("CLOSED\n", read_file(report));
}

TEST_F(CredentialSources, CredentialProcessThatHangsIsKilledAtTheTimeout) {
  std::string helper = env.write("hang.sh", "#!/bin/sh\nexec sleep 30\n", true);
  CPLSetConfigOption("ASD_CREDENTIAL_PROCESS_TIMEOUT", "1");
  EXPECT_EQ(-1, asd_aws_creds_from_process(helper.c_str(), &cr, &err));
  EXPECT_NE(nullptr, strstr(err.message, "timed out")) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "ASD_CREDENTIAL_PROCESS_TIMEOUT")) << err.message;
}

TEST_F(CredentialSources, CredentialProcessFailureNamesItsLastStderrLine) {
  std::string helper = env.write("fail.sh", "#!/bin/sh\necho 'warming up' >&2\necho 'token expired, log in' >&2\nexit 4\n",
                                 true);
  EXPECT_EQ(-1, asd_aws_creds_from_process(helper.c_str(), &cr, &err));
  EXPECT_NE(nullptr, strstr(err.message, "exit status 4")) << err.message;
  EXPECT_NE(nullptr, strstr(err.message, "token expired, log in")) << err.message;
  // Not found on PATH: said so, no shell "command not found" (exit 127).
  EXPECT_EQ(-1, asd_aws_creds_from_process("no-such-helper-asd --x", &cr, &err));
  EXPECT_NE(nullptr, strstr(err.message, "could not be started")) << err.message;
}
