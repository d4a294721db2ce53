// One raw HTTP/1.1 exchange on loopback (see asd_raw_http.h).
#include "asd_raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace asd_test {

std::string RawReply::header(const std::string &name) const {
  std::istringstream in(head);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon != name.size() || strncasecmp(line.c_str(), name.c_str(), name.size()) != 0) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    return v;
  }
  return "";
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

RawReply raw_exchange(int port, const std::string &request, bool head_request, double guard_seconds) {
  RawReply r;
  int fd = connect_loopback(port);
  if (fd < 0) return r;
  for (size_t off = 0; off < request.size();) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading it all
    off += static_cast<size_t>(n);
  }
  std::string in;
  double deadline = now_s() + guard_seconds;
  size_t head_end = std::string::npos;
  long long want = -1;
  for (;;) {
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      r.head = in.substr(0, head_end);
      if (sscanf(r.head.c_str(), "HTTP/1.%*d %d", &r.status) != 1) r.status = -1;
      std::string cl = r.header("Content-Length");
      want = head_request ? 0 : cl.empty() ? -1 : std::atoll(cl.c_str());
    }
    if (head_end != std::string::npos && want >= 0 && in.size() >= head_end + 4 + static_cast<size_t>(want)) break;
    double left = deadline - now_s();
    if (left <= 0) {
      r.status = -1;
      break;
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (head_end == std::string::npos) {
    r.status = -1;
    return r;
  }
  r.body = in.substr(head_end + 4);
  return r;
}

}  // namespace asd_test
