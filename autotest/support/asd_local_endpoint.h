// The local endpoint fixture: starts the real asyncdetect_endpoint on an
// ephemeral loopback port with a fresh data directory, and stops it.
//
// Every wait is bounded (startup, shutdown), so a broken server makes a test
// fail instead of hanging the suite.  The constructor throws
// std::runtime_error with a one-line reason when the server does not come up
// (GoogleTest reports it as a test failure).
#ifndef ASD_LOCAL_ENDPOINT_H
#define ASD_LOCAL_ENDPOINT_H

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace asd_test {

// Local default credentials of asyncdetect_endpoint (see its --help).
extern const char *const kLocalAccessKey;  // "ASDLOCALACCESSKEY"
extern const char *const kLocalSecretKey;  // "asdlocal-secret-not-for-aws"
extern const char *const kLocalRegion;     // "us-east-1"

// Path of the endpoint binary: $ASD_ENDPOINT_BIN, else the one built with the tests.
std::string endpoint_bin();

class LocalEndpoint {
 public:
  // Starts ASD_ENDPOINT_BIN -port 0 -data-dir <fresh tmp> <extra_args...>
  // and waits (at most 20 s) for the URL on its first stdout line.
  explicit LocalEndpoint(std::vector<std::string> extra_args = {});
  ~LocalEndpoint();  // stop() + removes the temporary data directory
  LocalEndpoint(const LocalEndpoint &) = delete;
  LocalEndpoint &operator=(const LocalEndpoint &) = delete;

  const std::string &url() const { return url_; }  // "http://127.0.0.1:PORT" (https:// with -tls-cert)
  int port() const { return port_; }
  const std::string &data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // GET /_asd/stats (unsigned; the stats page needs no credentials).  "" on error.
  std::string stats_json();

  // SIGTERM, then waits at most 10 s for exit (SIGKILL after that).  Returns the
  // exit status as waitpid reports it (-1 if it was not running).
  int stop();

 private:
  std::string url_;
  int port_ = 0;
  std::string data_dir_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Points the standard AWS environment at the endpoint: AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (and AWS_DEFAULT_REGION);
// clears AWS_PROFILE and AWS_SESSION_TOKEN.
void set_local_aws_env(const LocalEndpoint &ep);

// A minimal HTTP GET on loopback (no signing).  HTTPS trusts AWS_CA_BUNDLE.  Returns the status (or -1) and
// fills body.  Bounded by timeout_s.
int http_get(const std::string &url, std::string *body, double timeout_s = 10.0);

// One unsigned HTTP request (for servers started with -no-auth, or to check
// that unsigned requests are refused).  The URL path is sent as given (no
// "../" normalisation).  status is -1 when no answer came (connection
// dropped, timeout).  Header names in `headers` of the result are lower case.
struct HttpResult {
  int status = -1;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string &lower_name) const;  // "" if absent
};
HttpResult http_request(const std::string &method, const std::string &url, const std::string &body = "",
                        const std::vector<std::string> &headers = {}, double timeout_s = 20.0);

}  // namespace asd_test

#endif
