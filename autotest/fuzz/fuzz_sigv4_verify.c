/*
 * fuzz_sigv4_verify.c: the server-side SigV4 verifier (plugin/aws/sigv4.c,
 * asd_sigv4_verify), which the local endpoint runs on every request before
 * anything else.
 *
 * The input is a request in the AWS test suite's .sreq form: request line,
 * "Name:value" header lines (a line starting with white space continues the
 * previous header), an empty line, the body.  The seeds are the official
 * suite's signed requests plus S3-style ones, all valid for the example key
 * at the suite's time, so mutations start from requests that verify.
 * Checked beyond "does not crash": a request that verifies stops verifying
 * when one hex digit of its signature changes (a verifier that accepts what
 * it should not is the worst failure it can have), and the result message is
 * one NUL-terminated line.
 */
#include <string.h>
#include <strings.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_sigv4.h"
#include "fuzz_target.h"

#define MAX_HEADERS 64

static int lookup(void *user, const char *akid, const char *token, char *out, size_t out_size) {
  (void)user;
  if (strcmp(akid, "AKIDEXAMPLE") == 0) {
    snprintf(out, out_size, "%s", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    return 0;
  }
  if (strcmp(akid, "ASIAFUZZTEMPORARY") == 0) {
    if (!token || strcmp(token, "fuzz-session-token") != 0) return -2;
    snprintf(out, out_size, "%s", "temporary-secret");
    return 0;
  }
  return -1;
}

typedef struct parsed {
  char *method, *path, *query;
  asd_sigv4_header h[MAX_HEADERS];
  size_t nh;
  const char *body;
  size_t body_len;
} parsed;

/* Splits text (NUL-terminated, modified in place) into a request. */
static int parse(char *text, size_t len, parsed *r) {
  memset(r, 0, sizeof *r);
  char *end = text + len;
  char *nl = memchr(text, '\n', len);
  if (!nl) return -1;
  *nl = '\0';
  char *sp = strchr(text, ' ');
  if (!sp) return -1;
  *sp = '\0';
  r->method = text;
  char *uri = sp + 1;
  char *http = strstr(uri, " HTTP/");
  if (http) *http = '\0';
  char *q = strchr(uri, '?');
  if (q) {
    *q = '\0';
    r->query = q + 1;
  }
  r->path = uri;
  char *p = nl + 1;
  while (p < end) {
    char *e = memchr(p, '\n', (size_t)(end - p));
    char *line_end = e ? e : end;
    if (line_end == p) {
      p = e ? e + 1 : end;
      break;
    }
    if ((*p == ' ' || *p == '\t') && r->nh) {
      /* Continuation: the value runs on over the newline. */
      asd_sigv4_header *last = &r->h[r->nh - 1];
      last->value_len = (size_t)(line_end - last->value);
    } else if (r->nh < MAX_HEADERS) {
      char *colon = memchr(p, ':', (size_t)(line_end - p));
      if (colon) {
        asd_sigv4_header *h = &r->h[r->nh++];
        h->name = p;
        h->name_len = (size_t)(colon - p);
        h->value = colon + 1;
        h->value_len = (size_t)(line_end - colon - 1);
      }
    }
    p = e ? e + 1 : end;
  }
  r->body = p;
  r->body_len = (size_t)(end - p);
  /* Zero lengths mean "use strlen": terminate every empty name and value. */
  for (size_t i = 0; i < r->nh; i++) {
    if (!r->h[i].name_len) r->h[i].name = "";
    if (!r->h[i].value_len) r->h[i].value = "";
  }
  return 0;
}

static asd_sigv4_status verify(const parsed *r, asd_sigv4_verify_result *res) {
  char hash[65];
  asd_sha256_hex(r->body, r->body_len, hash);
  asd_sigv4_verify_request vr;
  memset(&vr, 0, sizeof vr);
  vr.method = r->method;
  vr.path = r->path;
  vr.query = r->query;
  vr.headers = r->h;
  vr.n_headers = r->nh;
  vr.body_sha256_hex = hash;
  vr.now = 1440938160.0; /* 20150830T123600Z, the suite's time */
  vr.lookup = lookup;
  asd_sigv4_status st = asd_sigv4_verify(&vr, res);
  FUZZ_CHECK(memchr(res->message, '\0', sizeof res->message) != NULL);
  FUZZ_CHECK(memchr(res->access_key_id, '\0', sizeof res->access_key_id) != NULL);
  int http = 0;
  (void)asd_sigv4_status_code(st, &http);
  return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  parsed r;
  if (parse(text, size, &r) == 0) {
    asd_sigv4_verify_result res;
    if (verify(&r, &res) == ASD_SIGV4_OK) {
      /* Change the first hex digit of every signature: it must no longer verify. */
      char *flipped[16];
      char saved[16];
      int nf = 0;
      for (size_t i = 0; i < r.nh; i++) {
        if (r.h[i].name_len != 13 || strncasecmp(r.h[i].name, "authorization", 13) != 0) continue;
        char *v = (char *)r.h[i].value;
        for (size_t k = 0; k + 10 < r.h[i].value_len && nf < 16; k++) {
          if (strncasecmp(v + k, "signature=", 10) != 0) continue;
          flipped[nf] = v + k + 10;
          saved[nf] = *flipped[nf];
          *flipped[nf] = saved[nf] == '0' ? '1' : '0';
          nf++;
        }
      }
      if (nf > 0 && nf < 16) FUZZ_CHECK(verify(&r, &res) != ASD_SIGV4_OK);
      for (int k = 0; k < nf; k++) *flipped[k] = saved[k];
    }
  }
  free(text);
  return 0;
}
