/*
 * fuzz_aws_error.c: the AWS error-reply parser (plugin/aws/errors.c).
 *
 * Every failed S3, SageMaker Runtime and STS call goes through
 * asd_aws_parse_error with whatever the server (or a proxy in between) sent:
 * S3's XML <Error>, rest-json {"message"...}, an x-amzn-ErrorType header, or
 * an HTML page.  Input layout: byte 0 picks the HTTP status, then optional
 * header lines ("Name: value\n") up to an empty line, then the body.  The
 * body is handed over NUL-terminated, as the transport's asd_buf keeps it.
 * Checked: the error is always filled (a kind, a one-line message, no
 * control characters in code, message or request id: they reach logs).
 */
#include <string.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "fuzz_target.h"

static const long statuses[] = {200, 301, 400, 403, 404, 409, 413, 424, 429, 500, 502, 503, 504, 418};

static void check_line(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  FUZZ_CHECK(n < cap);
  for (size_t i = 0; i < n; i++) FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
  const char *p = (const char *)data + 1, *end = (const char *)data + size;
  /* Header lines, at most 8, until an empty line. */
  char *headers[9] = {0};
  int nh = 0;
  while (p < end && nh < 8) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == p) {
      if (nl) p = nl + 1;
      break;
    }
    headers[nh] = strndup(p, (size_t)(nl - p));
    nh++;
    p = nl + 1;
  }
  size_t blen = (size_t)(end - p);
  char *body = malloc(blen + 1);
  if (!body) return 0;
  memcpy(body, p, blen);
  body[blen] = '\0';

  asd_aws_error err;
  memset(&err, 0x5a, sizeof err);
  asd_aws_parse_error(status, (const char *const *)headers, body, blen, &err);
  FUZZ_CHECK(err.http_status == (int)status);
  FUZZ_CHECK(err.message[0] != '\0');
  check_line(err.message, sizeof err.message);
  check_line(err.code, sizeof err.code);
  check_line(err.request_id, sizeof err.request_id);
  char line[1024];
  asd_aws_error_format(&err, line, sizeof line);
  (void)asd_aws_is_retryable(status, err.code);

  free(body);
  for (int i = 0; i < nh; i++) free(headers[i]);
  return 0;
}
