// A throwaway PKI for TLS tests: a CA made at test time and the server
// certificates it signs, written as PEM files in a fresh temporary directory
// (removed by the destructor).  Nothing is ever checked in: every run has its
// own keys, so no test depends on a certificate that could expire or leak.
//
//   asd_test::TestPki pki;
//   auto leaf = pki.issue("server", {"DNS:localhost", "IP:127.0.0.1"});
//   LocalEndpoint ep({"-tls-cert", leaf.cert, "-tls-key", leaf.key});
//   setenv("AWS_CA_BUNDLE", pki.ca_path().c_str(), 1);
#ifndef ASD_TEST_PKI_H
#define ASD_TEST_PKI_H

#include <string>
#include <vector>

namespace asd_test {

class TestPki {
 public:
  // A CA with this common name (P-256 key, valid for a day).  Throws
  // std::runtime_error on failure.
  explicit TestPki(const std::string &ca_name = "gdal-asyncdetect test CA");
  ~TestPki();
  TestPki(const TestPki &) = delete;
  TestPki &operator=(const TestPki &) = delete;

  const std::string &ca_path() const { return ca_path_; }  // the CA certificate (PEM)
  const std::string &dir() const { return dir_; }

  struct Leaf {
    std::string cert;  // PEM certificate file
    std::string key;   // PEM private key file
  };
  // A server certificate for the subject alternative names given as
  // "DNS:name" or "IP:address" (the first one is also the common name).
  Leaf issue(const std::string &file_stem, const std::vector<std::string> &sans);

 private:
  std::string dir_, ca_path_;
  void *ca_key_ = nullptr;   // EVP_PKEY*
  void *ca_cert_ = nullptr;  // X509*
};

}  // namespace asd_test

#endif
