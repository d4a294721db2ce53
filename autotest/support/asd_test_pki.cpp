// The test PKI (see asd_test_pki.h), on the OpenSSL API: no openssl CLI, no
// shell, the same code on every machine.
#include "asd_test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace asd_test {

namespace {

EVP_PKEY *new_key() {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  if (!k) throw std::runtime_error("TestPki: EC key generation failed");
  return k;
}

void add_ext(X509 *cert, X509 *issuer, int nid, const std::string &value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("TestPki: bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509 *new_cert(EVP_PKEY *key, const std::string &cn, long serial) {
  X509 *c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 86400);
  X509_set_pubkey(c, key);
  X509_NAME *name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>(cn.c_str()), -1,
                             -1, 0);
  return c;
}

void write_pem(const std::string &path, X509 *cert, EVP_PKEY *key) {
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("TestPki: cannot write " + path + ": " + std::strerror(errno));
  int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  if (!ok) throw std::runtime_error("TestPki: cannot write " + path);
}

}  // namespace

TestPki::TestPki(const std::string &ca_name) {
  const char *tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/asd-pki-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("TestPki: mkdtemp failed");
  dir_ = buf.data();
  EVP_PKEY *key = new_key();
  X509 *ca = new_cert(key, ca_name, 1);
  X509_set_issuer_name(ca, X509_get_subject_name(ca));
  add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(ca, ca, NID_subject_key_identifier, "hash");
  X509_sign(ca, key, EVP_sha256());
  ca_key_ = key;
  ca_cert_ = ca;
  ca_path_ = dir_ + "/ca.pem";
  write_pem(ca_path_, ca, nullptr);
}

TestPki::~TestPki() {
  EVP_PKEY_free(static_cast<EVP_PKEY *>(ca_key_));
  X509_free(static_cast<X509 *>(ca_cert_));
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

TestPki::Leaf TestPki::issue(const std::string &file_stem, const std::vector<std::string> &sans) {
  static long serial = 100;
  if (sans.empty()) throw std::runtime_error("TestPki: a certificate needs at least one name");
  EVP_PKEY *key = new_key();
  std::string cn = sans[0].substr(sans[0].find(':') + 1);
  X509 *c = new_cert(key, cn, ++serial);
  X509 *ca = static_cast<X509 *>(ca_cert_);
  X509_set_issuer_name(c, X509_get_subject_name(ca));
  std::string san;
  for (const auto &s : sans) san += (san.empty() ? "" : ",") + s;
  add_ext(c, ca, NID_subject_alt_name, san);
  add_ext(c, ca, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(c, ca, NID_key_usage, "critical,digitalSignature");
  add_ext(c, ca, NID_ext_key_usage, "serverAuth");
  add_ext(c, ca, NID_authority_key_identifier, "keyid:always");
  X509_sign(c, static_cast<EVP_PKEY *>(ca_key_), EVP_sha256());
  Leaf leaf{dir_ + "/" + file_stem + ".crt", dir_ + "/" + file_stem + ".key"};
  write_pem(leaf.cert, c, nullptr);
  write_pem(leaf.key, nullptr, key);
  X509_free(c);
  EVP_PKEY_free(key);
  return leaf;
}

}  // namespace asd_test
