// A tiny programmable HTTP server on loopback for protocol tests (libmicrohttpd).
//
// Each test passes a handler that sees the raw request (method, raw wire
// path and query — percent escapes are NOT decoded, so SigV4 can be
// verified — headers, body) and returns what to do: answer, close the
// connection without answering (a "reset"), hang until the server stops
// (to test client timeouts), or answer with a body shorter than its
// Content-Length (a truncated response).  Every request is logged.
#ifndef ASD_MINI_HTTP_H
#define ASD_MINI_HTTP_H

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

struct MHD_Daemon;

namespace asd_test {

struct MiniRequest {
  std::string method;
  std::string path;   // raw, as on the wire
  std::string query;  // raw, without '?', arguments in received order
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  // Case-insensitive header lookup; "" when absent.
  std::string header(const std::string &name) const;
  bool has_header(const std::string &name) const;
};

struct MiniResponse {
  enum Action { kRespond, kClose, kHang, kTruncate };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Action action = kRespond;
  // kTruncate: the Content-Length announced (the body sent is `body`).
  size_t declared_length = 0;
};

class MiniHttp {
 public:
  using Handler = std::function<MiniResponse(const MiniRequest &)>;
  explicit MiniHttp(Handler handler);
  ~MiniHttp();
  MiniHttp(const MiniHttp &) = delete;
  MiniHttp &operator=(const MiniHttp &) = delete;

  std::string url() const;  // "http://127.0.0.1:PORT"
  int port() const { return port_; }
  std::vector<MiniRequest> requests();
  size_t request_count();
  void set_handler(Handler h);

  // Internal (called from the C callback).
  MiniResponse dispatch(const MiniRequest &r);
  bool stopping() const { return stopping_; }

 private:
  Handler handler_;
  std::mutex mu_;
  std::vector<MiniRequest> log_;
  MHD_Daemon *daemon_ = nullptr;
  int port_ = 0;
  volatile bool stopping_ = false;
};

// S3-style XML error body.
std::string s3_error_xml(const std::string &code, const std::string &message,
                         const std::string &request_id = "REQ123");

}  // namespace asd_test

#endif
