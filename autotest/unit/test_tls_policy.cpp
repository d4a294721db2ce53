// Issue 12: nothing in the project ever turns TLS verification off.  The
// sources are scanned for the libcurl options that would (SSL_VERIFYPEER,
// SSL_VERIFYHOST, PROXY_SSL_VERIFY*) and for OpenSSL's SSL_VERIFY_NONE:
// none may appear in code that talks to a server (tests included; a private
// CA goes through AWS_CA_BUNDLE instead).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "asd_test_paths.h"

TEST(TlsPolicy, NoSourceDisablesVerification) {
  namespace fs = std::filesystem;
  const std::vector<std::string> roots = {"plugin", "apps", "run", "tiler", "python", "autotest", "bench"};
  const std::vector<std::string> needles = {"SSL_VERIFYPEER", "SSL_VERIFYHOST", "SSL_VERIFY_NONE",
                                            "PROXY_SSL_VERIFY", "verify=False", "CERT_NONE"};
  const std::string self = "test_tls_policy.cpp";
  int scanned = 0;
  for (const auto &root : roots) {
    fs::path dir = fs::path(asd_test::source_dir()) / root;
    if (!fs::exists(dir)) continue;
    for (const auto &e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      if (ext != ".c" && ext != ".h" && ext != ".cpp" && ext != ".py" && ext != ".sh") continue;
      if (e.path().filename() == self) continue;
      std::ifstream f(e.path());
      std::stringstream ss;
      ss << f.rdbuf();
      const std::string text = ss.str();
      scanned++;
      for (const auto &n : needles)
        EXPECT_EQ(std::string::npos, text.find(n)) << e.path() << " mentions " << n;
    }
  }
  EXPECT_GT(scanned, 100) << "the scan must have seen the sources";
}
