// Test helper: an isolated AWS environment.  Saves and clears every AWS_*
// variable the credentials chain reads, points HOME at a fresh temporary
// directory (so ~/.aws of the machine is never read) and disables IMDS;
// everything is restored on destruction.
#ifndef ASD_AWS_ENV_H
#define ASD_AWS_ENV_H

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

namespace asd_test {

class AwsEnvSandbox {
 public:
  AwsEnvSandbox() {
    static const char *const vars[] = {
        "HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_CREDENTIAL_EXPIRATION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE", "AWS_MAX_ATTEMPTS", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
        "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", nullptr};
    for (int i = 0; vars[i]; i++) {
      const char *v = getenv(vars[i]);
      saved_[vars[i]] = v ? std::make_pair(true, std::string(v)) : std::make_pair(false, std::string());
      unsetenv(vars[i]);
    }
    char tmpl[] = "/tmp/asd_aws_env_XXXXXX";
    dir_ = mkdtemp(tmpl);
    setenv("HOME", dir_.c_str(), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  }
  ~AwsEnvSandbox() {
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (system(cmd.c_str()) != 0) {
    }
    for (auto &kv : saved_) {
      if (kv.second.first)
        setenv(kv.first.c_str(), kv.second.second.c_str(), 1);
      else
        unsetenv(kv.first.c_str());
    }
  }
  const std::string &dir() const { return dir_; }
  std::string write(const std::string &name, const std::string &content, bool executable = false) {
    std::string p = dir_ + "/" + name;
    std::ofstream f(p, std::ios::binary);
    f << content;
    f.close();
    if (executable) chmod_x(p);
    return p;
  }

 private:
  static void chmod_x(const std::string &p) {
    std::string cmd = "chmod +x '" + p + "'";
    if (system(cmd.c_str()) != 0) {
    }
  }
  std::map<std::string, std::pair<bool, std::string>> saved_;
  std::string dir_;
};

}  // namespace asd_test

#endif
