// One raw HTTP/1.1 exchange on a new loopback connection, for tests that must
// send bytes no client library would (a withheld body, aws-chunked framing,
// forged headers) and read the answer as it came.
#ifndef ASD_RAW_HTTP_H
#define ASD_RAW_HTTP_H

#include <string>

namespace asd_test {

struct RawReply {
  int status = -1;  // -1: no answer within the guard, or the connection closed first
  std::string head, body;
  // The value of a response header (case-insensitive name), "" when absent.
  std::string header(const std::string &name) const;
};

// Sends request (request line, headers, blank line and whatever part of the
// body the test chooses), then reads one response while keeping the
// connection open: a server that waits for the rest of an announced body
// never answers, and status stays -1 once guard_seconds have passed.
// head_request: the answer has no body whatever its Content-Length says.
RawReply raw_exchange(int port, const std::string &request, bool head_request = false, double guard_seconds = 30.0);

}  // namespace asd_test

#endif
