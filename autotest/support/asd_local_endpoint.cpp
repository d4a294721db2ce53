// The local endpoint fixture (see asd_local_endpoint.h).
//
// The server is a child process, not a thread: tests exercise exactly the
// binary users run, a crash in the server cannot take the test down, and the
// server's own signal handling (clean shutdown on SIGTERM) is exercised by
// every test.  The child gets PR_SET_PDEATHSIG so that a test killed by a
// timeout does not leave servers behind.
#include "asd_local_endpoint.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace asd_test {

const char *const kLocalAccessKey = "ASDLOCALACCESSKEY";
const char *const kLocalSecretKey = "asdlocal-secret-not-for-aws";
const char *const kLocalRegion = "us-east-1";

std::string endpoint_bin() {
  const char *env = std::getenv("ASD_ENDPOINT_BIN");
  if (env && *env) return env;
#ifdef ASD_ENDPOINT_BIN
  return ASD_ENDPOINT_BIN;
#else
  return "";
#endif
}

namespace {

std::string make_temp_dir() {
  const char *tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/asd-endpoint-test-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw std::runtime_error("LocalEndpoint: cannot create a temporary directory: " +
                             std::string(std::strerror(errno)));
  return buf.data();
}

// Reads one line from fd, waiting at most timeout_s in total.
bool read_line(int fd, double timeout_s, std::string *line) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  line->clear();
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    if (c != '\r') line->push_back(c);
    if (line->size() > 4096) return false;
  }
}

// HTTPS to a test server: its CA comes from AWS_CA_BUNDLE, as for the code under test.
void use_test_ca(CURL *c) {
  const char *ca = std::getenv("AWS_CA_BUNDLE");
  if (ca && *ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
}

size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
  static_cast<std::string *>(userdata)->append(ptr, size * nmemb);
  return size * nmemb;
}

}  // namespace

LocalEndpoint::LocalEndpoint(std::vector<std::string> extra_args) {
  std::string bin = endpoint_bin();
  if (bin.empty() || access(bin.c_str(), X_OK) != 0)
    throw std::runtime_error("LocalEndpoint: endpoint binary not found (set ASD_ENDPOINT_BIN): '" +
                             bin + "'");
  data_dir_ = make_temp_dir();

  std::vector<std::string> args = {bin, "-port", "0", "-data-dir", data_dir_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::filesystem::remove_all(data_dir_);
    throw std::runtime_error("LocalEndpoint: pipe failed");
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    std::filesystem::remove_all(data_dir_);
    throw std::runtime_error("LocalEndpoint: fork failed");
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    dup2(fds[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  pid_ = pid;

  std::string line;
  bool ok = read_line(fds[0], 20.0, &line);
  close(fds[0]);
  // "https://" when the server was given -tls-cert.
  const std::string prefix = line.rfind("https://", 0) == 0 ? "https://127.0.0.1:" : "http://127.0.0.1:";
  if (!ok || line.compare(0, prefix.size(), prefix) != 0) {
    stop();
    std::filesystem::remove_all(data_dir_);
    throw std::runtime_error("LocalEndpoint: the server did not print its URL (got '" + line +
                             "'); see its stderr above");
  }
  url_ = line;
  port_ = std::atoi(line.c_str() + prefix.size());
}

LocalEndpoint::~LocalEndpoint() {
  stop();
  if (!data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

int LocalEndpoint::stop() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      status = -2;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  exit_status_ = status;
  return status;
}

int http_get(const std::string &url, std::string *body, double timeout_s) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  std::string out;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  use_test_ca(c);
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (body) *body = out;
  return static_cast<int>(status);
}

namespace {
size_t collect_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
  auto *res = static_cast<HttpResult *>(userdata);
  std::string line(ptr, size * nmemb);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    for (auto &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    res->headers.emplace_back(name, value);
  } else if (line.rfind("HTTP/", 0) == 0) {
    res->headers.clear();  // a new response (after 100 Continue)
  }
  return size * nmemb;
}
}  // namespace

std::string HttpResult::header(const std::string &lower_name) const {
  for (const auto &h : headers)
    if (h.first == lower_name) return h.second;
  return "";
}

HttpResult http_request(const std::string &method, const std::string &url, const std::string &body,
                        const std::vector<std::string> &headers, double timeout_s) {
  HttpResult res;
  CURL *c = curl_easy_init();
  if (!c) return res;
  struct curl_slist *hl = nullptr;
  for (const auto &h : headers) hl = curl_slist_append(hl, h.c_str());
  hl = curl_slist_append(hl, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &res);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  use_test_ca(c);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty() || method == "PUT" || method == "POST") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  res.status = static_cast<int>(status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return res;
}

std::string LocalEndpoint::stats_json() {
  if (url_.empty()) return "";
  std::string body;
  int st = http_get(url_ + "/_asd/stats", &body);
  return st == 200 ? body : "";
}

void set_local_aws_env(const LocalEndpoint &ep) {
  setenv("AWS_ENDPOINT_URL", ep.url().c_str(), 1);
  setenv("AWS_ACCESS_KEY_ID", kLocalAccessKey, 1);
  setenv("AWS_SECRET_ACCESS_KEY", kLocalSecretKey, 1);
  setenv("AWS_REGION", kLocalRegion, 1);
  setenv("AWS_DEFAULT_REGION", kLocalRegion, 1);
  unsetenv("AWS_PROFILE");
  unsetenv("AWS_SESSION_TOKEN");
}

}  // namespace asd_test
