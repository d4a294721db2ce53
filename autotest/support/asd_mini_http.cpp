// See asd_mini_http.h.  Thread per connection, so a hanging handler blocks
// only its own connection; the destructor wakes hanging handlers first.
#include "asd_mini_http.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <strings.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace asd_test {

std::string MiniRequest::header(const std::string &name) const {
  for (auto &h : headers)
    if (strcasecmp(h.first.c_str(), name.c_str()) == 0) return h.second;
  return "";
}

bool MiniRequest::has_header(const std::string &name) const {
  for (auto &h : headers)
    if (strcasecmp(h.first.c_str(), name.c_str()) == 0) return true;
  return false;
}

std::string s3_error_xml(const std::string &code, const std::string &message, const std::string &rid) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" + message +
         "</Message><Resource>/x</Resource><RequestId>" + rid + "</RequestId></Error>";
}

namespace {

struct ConnState {
  MiniRequest req;
  bool started = false;
};

size_t no_unescape(void *, struct MHD_Connection *, char *s) { return strlen(s); }

enum MHD_Result collect_header(void *cls, enum MHD_ValueKind, const char *k, const char *v) {
  auto *r = static_cast<MiniRequest *>(cls);
  r->headers.emplace_back(k, v ? v : "");
  return MHD_YES;
}

enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind, const char *k, const char *v) {
  auto *r = static_cast<MiniRequest *>(cls);
  if (!r->query.empty()) r->query += "&";
  r->query += k;
  if (v) r->query += std::string("=") + v;
  return MHD_YES;
}

struct TruncState {
  std::string body;
  size_t pos = 0;
};

ssize_t trunc_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  auto *t = static_cast<TruncState *>(cls);
  if (pos >= t->body.size()) return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t n = std::min(max, t->body.size() - (size_t)pos);
  memcpy(buf, t->body.data() + pos, n);
  return (ssize_t)n;
}

void trunc_free(void *cls) { delete static_cast<TruncState *>(cls); }

enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *, const char *upload, size_t *upload_size, void **con_cls) {
  auto *srv = static_cast<MiniHttp *>(cls);
  auto *st = static_cast<ConnState *>(*con_cls);
  if (!st) {
    st = new ConnState();
    st->req.method = method;
    st->req.path = url;
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &st->req);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &st->req);
    *con_cls = st;
    return MHD_YES;
  }
  if (*upload_size) {
    st->req.body.append(upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  MiniResponse r = srv->dispatch(st->req);
  if (r.action == MiniResponse::kClose) return MHD_NO;
  if (r.action == MiniResponse::kHang) {
    for (int i = 0; i < 600 && !srv->stopping(); i++) usleep(50 * 1000);
    return MHD_NO;
  }
  struct MHD_Response *resp;
  if (r.action == MiniResponse::kTruncate) {
    auto *t = new TruncState();
    t->body = r.body;
    resp = MHD_create_response_from_callback(r.declared_length, 4096, trunc_reader, t, trunc_free);
  } else {
    resp = MHD_create_response_from_buffer(r.body.size(), (void *)r.body.data(), MHD_RESPMEM_MUST_COPY);
  }
  for (auto &h : r.headers) MHD_add_response_header(resp, h.first.c_str(), h.second.c_str());
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

void on_completed(void *, struct MHD_Connection *, void **con_cls, enum MHD_RequestTerminationCode) {
  delete static_cast<ConnState *>(*con_cls);
  *con_cls = nullptr;
}

}  // namespace

MiniHttp::MiniHttp(Handler handler) : handler_(std::move(handler)) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, nullptr, nullptr,
                             on_request, this, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED,
                             on_completed, nullptr, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, nullptr,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
  if (!daemon_) throw std::runtime_error("MiniHttp: could not start libmicrohttpd on 127.0.0.1");
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info ? info->port : 0;
}

MiniHttp::~MiniHttp() {
  stopping_ = true;
  if (daemon_) MHD_stop_daemon(daemon_);
}

std::string MiniHttp::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<MiniRequest> MiniHttp::requests() {
  std::lock_guard<std::mutex> g(mu_);
  return log_;
}

size_t MiniHttp::request_count() {
  std::lock_guard<std::mutex> g(mu_);
  return log_.size();
}

void MiniHttp::set_handler(Handler h) {
  std::lock_guard<std::mutex> g(mu_);
  handler_ = std::move(h);
}

MiniResponse MiniHttp::dispatch(const MiniRequest &r) {
  Handler h;
  {
    std::lock_guard<std::mutex> g(mu_);
    log_.push_back(r);
    h = handler_;
  }
  return h ? h(r) : MiniResponse{};
}

}  // namespace asd_test
