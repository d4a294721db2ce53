/*
 * s3_chunked.c: aws-chunked request bodies, decoded as they arrive (see
 * s3_chunked.h for the wire format).
 *
 * The decoder is a state machine over the body's bytes:
 *   LINE     a chunk header "SIZE[;chunk-signature=SIG]\r\n", collected in a
 *            small bounded buffer (a longer line is a malformed body);
 *   DATA     SIZE payload bytes, handed to the sink as they come (and hashed
 *            for the chunk's signature), never collected;
 *   DATA_END the "\r\n" after them, then the chunk's signature is checked;
 *   TRAILER  after the zero-size chunk: header lines up to an empty line
 *            (the trailing checksum, and in the signed form its signature);
 *   DONE     nothing may follow.
 * Pieces of the body split anywhere (a size digit, the CRLF, a trailer line)
 * are fine: every state resumes where the last piece stopped.
 *
 * S3's answers, as it gives them (observed by S3-compatible servers that
 * replicate them, e.g. versitygw and OpenStack Swift's s3api; S3 documents
 * the codes in its error list): a body that is not aws-chunked as announced,
 * or that stops early, is 400 IncompleteBody "The request body terminated
 * unexpectedly"; more or fewer payload bytes than x-amz-decoded-content-length
 * is 400 IncompleteBody with NumberBytesExpected / NumberBytesProvided; a chunk
 * or trailer signature that does not verify is 403 SignatureDoesNotMatch; a
 * signed chunk under 8 KiB that is not the last is 400 InvalidChunkSizeError
 * (Chunk, BadChunkSize); a trailer that is not "name:value" lines is 400
 * MalformedTrailerError.  Checking the trailing checksum's value is the S3
 * layer's job (s3_api.c), with the header checksums' code.
 */
#include "s3_chunked.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "asyncdetect/asd_common.h"

#define EMPTY_SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* A chunk header is "hex;chunk-signature=<64 hex>" (~90 bytes); trailer lines
 * are a checksum header or the trailer signature (< 120 bytes). */
#define LINE_MAX_BYTES 256
#define TRAILER_MAX_BYTES 2048
/* S3's smallest signed chunk but the last. */
#define MIN_SIGNED_CHUNK 8192

typedef enum state { ST_LINE, ST_DATA, ST_DATA_END, ST_TRAILER, ST_DONE, ST_FAILED } state;

struct ep_chunked {
  ep_chunked_mode mode;
  int check_sigs;
  ep_chunk_seed seed; /* seed.signature advances along the chain */
  uint64_t declared;  /* x-amz-decoded-content-length or UINT64_MAX */
  ep_chunked_sink sink;
  void *sink_ctx;
  state st;
  char line[LINE_MAX_BYTES + 1];
  size_t line_len;
  int saw_cr; /* the line's '\r' arrived, its '\n' not yet */
  uint64_t left;      /* payload bytes still due in the current chunk */
  uint64_t chunk_size, chunk_no;
  uint64_t small_chunk_no, small_chunk_size; /* a signed chunk under 8 KiB seen (0 = none) */
  int end_bytes;      /* bytes of the "\r\n" after the data seen */
  char chunk_sig[65]; /* the current chunk's claimed signature */
  EVP_MD_CTX *sha;
  uint64_t decoded;
  char trailer[TRAILER_MAX_BYTES + 1]; /* "name:value\n" lines */
  size_t trailer_len;
  char trailer_sig[65];
  ep_chunked_error err;
};

ep_chunked_mode ep_chunked_mode_of(const char *v) {
  if (!v || strncmp(v, "STREAMING-", 10) != 0) return EP_CHUNKED_NONE;
  if (strcmp(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0) return EP_CHUNKED_UNSIGNED_TRAILER;
  if (strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0) return EP_CHUNKED_SIGNED;
  if (strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0) return EP_CHUNKED_SIGNED_TRAILER;
  return EP_CHUNKED_UNKNOWN;
}

static int signed_mode(const ep_chunked *d) {
  return d->mode == EP_CHUNKED_SIGNED || d->mode == EP_CHUNKED_SIGNED_TRAILER;
}

ep_chunked *ep_chunked_new(ep_chunked_mode mode, const ep_chunk_seed *seed, uint64_t decoded_length,
                           ep_chunked_sink sink, void *sink_ctx) {
  if (mode == EP_CHUNKED_NONE || mode == EP_CHUNKED_UNKNOWN) return NULL;
  ep_chunked *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->mode = mode;
  d->declared = decoded_length;
  d->sink = sink;
  d->sink_ctx = sink_ctx;
  d->sha = EVP_MD_CTX_new();
  if (!d->sha) {
    free(d);
    return NULL;
  }
  if (seed && signed_mode(d)) {
    d->seed = *seed;
    d->check_sigs = 1;
  }
  return d;
}

void ep_chunked_free(ep_chunked *d) {
  if (!d) return;
  OPENSSL_cleanse(&d->seed, sizeof d->seed);
  EVP_MD_CTX_free(d->sha);
  free(d);
}

const ep_chunked_error *ep_chunked_error_of(const ep_chunked *d) { return d ? &d->err : NULL; }
uint64_t ep_chunked_decoded(const ep_chunked *d) { return d ? d->decoded : 0; }
const char *ep_chunked_trailer(const ep_chunked *d) { return d && d->st == ST_DONE ? d->trailer : ""; }

int ep_chunked_trailer_value(const ep_chunked *d, const char *name, char *out, size_t out_len) {
  size_t nl = strlen(name);
  for (const char *p = ep_chunked_trailer(d); *p;) {
    size_t l = strcspn(p, "\n");
    if (l > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
      snprintf(out, out_len, "%.*s", (int)(l - nl - 1), p + nl + 1);
      return 0;
    }
    p += l + (p[l] == '\n');
  }
  return -1;
}

/* ------------------------------------------------------------- failures */

static int fail(ep_chunked *d, int status, const char *code, const char *message) {
  d->st = ST_FAILED;
  d->err.status = status;
  d->err.code = code;
  snprintf(d->err.message, sizeof d->err.message, "%s", message);
  return -1;
}

static int incomplete(ep_chunked *d) {
  return fail(d, 400, "IncompleteBody", "The request body terminated unexpectedly");
}

static int bad_signature(ep_chunked *d) {
  return fail(d, 403, "SignatureDoesNotMatch",
              "The request signature we calculated does not match the signature you provided. Check your key and "
              "signing method.");
}

static void set_extra(ep_chunked *d, int i, const char *name, uint64_t v) {
  snprintf(d->err.extra_name[i], sizeof d->err.extra_name[i], "%s", name);
  snprintf(d->err.extra_value[i], sizeof d->err.extra_value[i], "%llu", (unsigned long long)v);
}

static int length_mismatch(ep_chunked *d, uint64_t provided) {
  fail(d, 400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header");
  set_extra(d, 0, "NumberBytesExpected", d->declared);
  set_extra(d, 1, "NumberBytesProvided", provided);
  return -1;
}

/* ----------------------------------------------------------- signatures */

/* HMAC-SHA256 under the seed's key of "ALGORITHM\nDATE\nSCOPE\nPREV\n" + rest,
 * compared in constant time with the claimed signature; on success the chain
 * moves on to it. */
static int verify_link(ep_chunked *d, const char *algorithm, const char *rest, const char *claimed) {
  if (!d->check_sigs) return 0;
  asd_buf sts;
  asd_buf_init(&sts);
  asd_buf_appendf(&sts, "%s\n%s\n%s\n%s\n%s", algorithm, d->seed.amz_date, d->seed.scope, d->seed.signature, rest);
  unsigned char mac[32];
  unsigned int ml = 0;
  int ok = sts.data && HMAC(EVP_sha256(), d->seed.key, 32, sts.data, sts.len, mac, &ml) != NULL && ml == 32;
  asd_buf_free(&sts);
  char hex[65];
  if (ok) asd_hex_encode(mac, 32, hex);
  if (!ok || strlen(claimed) != 64 || CRYPTO_memcmp(hex, claimed, 64) != 0) return bad_signature(d);
  memcpy(d->seed.signature, hex, 65);
  return 0;
}

/* The chunk that just ended (its data hashed in d->sha). */
static int verify_chunk(ep_chunked *d) {
  if (!signed_mode(d)) return 0;
  unsigned char h[32];
  unsigned int hl = 0;
  char hex[65];
  EVP_DigestFinal_ex(d->sha, h, &hl);
  asd_hex_encode(h, 32, hex);
  char rest[140];
  snprintf(rest, sizeof rest, "%s\n%s", EMPTY_SHA256_HEX, hex);
  return verify_link(d, "AWS4-HMAC-SHA256-PAYLOAD", rest, d->chunk_sig);
}

/* The trailer's signature: over the SHA-256 of its "name:value\n" lines. */
static int verify_trailer(ep_chunked *d) {
  if (d->mode != EP_CHUNKED_SIGNED_TRAILER) return 0;
  if (!d->trailer_sig[0])
    return fail(d, 400, "MalformedTrailerError",
                "The request contained trailing data that was not well-formed or did not conform to our published "
                "schema.");
  char hex[65];
  asd_sha256_hex(d->trailer, d->trailer_len, hex);
  return verify_link(d, "AWS4-HMAC-SHA256-TRAILER", hex, d->trailer_sig);
}

/* ------------------------------------------------------------ the lines */

static int hexdigit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Starts a chunk from its header line. */
static int chunk_header(ep_chunked *d) {
  const char *p = d->line;
  uint64_t size = 0;
  int digits = 0;
  for (; hexdigit((unsigned char)*p) >= 0; p++, digits++) {
    if (digits >= 16) return incomplete(d);
    size = size * 16 + (uint64_t)hexdigit((unsigned char)*p);
  }
  if (!digits) return incomplete(d);
  d->chunk_sig[0] = '\0';
  if (signed_mode(d)) {
    if (strncmp(p, ";chunk-signature=", 17) != 0 || strlen(p + 17) != 64) return incomplete(d);
    for (int i = 0; i < 64; i++) d->chunk_sig[i] = (char)tolower((unsigned char)p[17 + i]);
    d->chunk_sig[64] = '\0';
  } else if (*p) {
    return incomplete(d);
  }
  /* Only the last chunk with data may be small: a small one followed by
   * another with data is S3's InvalidChunkSizeError. */
  if (signed_mode(d) && size > 0 && d->small_chunk_no) {
    fail(d, 400, "InvalidChunkSizeError", "Only the last chunk is allowed to have a size less than 8192 bytes");
    set_extra(d, 0, "Chunk", d->small_chunk_no);
    set_extra(d, 1, "BadChunkSize", d->small_chunk_size);
    return -1;
  }
  d->chunk_no++;
  d->chunk_size = size;
  if (signed_mode(d) && size > 0 && size < MIN_SIGNED_CHUNK) {
    d->small_chunk_no = d->chunk_no;
    d->small_chunk_size = size;
  }
  if (d->declared != UINT64_MAX && size > d->declared - d->decoded) return length_mismatch(d, d->decoded + size);
  if (signed_mode(d) && EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1)
    return fail(d, 500, "InternalError", "We encountered an internal error. Please try again.");
  d->left = size;
  d->end_bytes = 0;
  if (size > 0) {
    d->st = ST_DATA;
    return 0;
  }
  /* The zero-size chunk ends the payload; its signature covers no data. */
  if (verify_chunk(d) != 0) return -1;
  d->st = ST_TRAILER;
  return 0;
}

/* One trailer line (without its line end); the empty line ends the body. */
static int trailer_line(ep_chunked *d) {
  if (!d->line_len) {
    if (verify_trailer(d) != 0) return -1;
    if (d->declared != UINT64_MAX && d->decoded != d->declared) return length_mismatch(d, d->decoded);
    d->st = ST_DONE;
    return 0;
  }
  const char *colon = memchr(d->line, ':', d->line_len);
  int trailer_mode = d->mode != EP_CHUNKED_SIGNED;
  if (!trailer_mode || !colon || colon == d->line || d->trailer_sig[0])
    return fail(d, 400, "MalformedTrailerError",
                "The request contained trailing data that was not well-formed or did not conform to our published "
                "schema.");
  size_t nl = (size_t)(colon - d->line);
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (nl == 23 && strncasecmp(d->line, "x-amz-trailer-signature", 23) == 0 && d->mode == EP_CHUNKED_SIGNED_TRAILER) {
    if (strlen(v) != 64) return bad_signature(d);
    for (int i = 0; i < 64; i++) d->trailer_sig[i] = (char)tolower((unsigned char)v[i]);
    d->trailer_sig[64] = '\0';
    return 0;
  }
  size_t need = nl + 1 + strlen(v) + 1;
  if (d->trailer_len + need > TRAILER_MAX_BYTES)
    return fail(d, 400, "MalformedTrailerError", "The trailing headers are too large.");
  for (size_t i = 0; i < nl; i++) d->trailer[d->trailer_len++] = (char)tolower((unsigned char)d->line[i]);
  d->trailer_len += (size_t)snprintf(d->trailer + d->trailer_len, TRAILER_MAX_BYTES + 1 - d->trailer_len, ":%s\n", v);
  return 0;
}

/* Collects a line ending in "\r\n" (a bare "\n" too in the trailer, which
 * AWS's own examples write so).  Returns the bytes used; *done when the
 * line is complete. */
static size_t take_line(ep_chunked *d, const unsigned char *p, size_t n, int *done) {
  size_t i = 0;
  *done = 0;
  while (i < n) {
    unsigned char c = p[i++];
    if (c == '\n' && (d->saw_cr || d->st == ST_TRAILER)) {
      d->line[d->line_len] = '\0';
      d->saw_cr = 0;
      *done = 1;
      return i;
    }
    if (d->saw_cr || c == '\n' || c == '\0' || d->line_len >= LINE_MAX_BYTES) {
      incomplete(d);
      return i;
    }
    if (c == '\r')
      d->saw_cr = 1;
    else
      d->line[d->line_len++] = (char)c;
  }
  return i;
}

/* ------------------------------------------------------------- the body */

static size_t take_data(ep_chunked *d, const unsigned char *p, size_t n) {
  size_t k = n < d->left ? n : (size_t)d->left;
  if (d->sink && d->sink(d->sink_ctx, p, k) != 0) {
    fail(d, 500, "InternalError", "We encountered an internal error. Please try again.");
    return k;
  }
  if (signed_mode(d)) EVP_DigestUpdate(d->sha, p, k);
  d->decoded += k;
  d->left -= k;
  if (!d->left) d->st = ST_DATA_END;
  return k;
}

static size_t take_data_end(ep_chunked *d, const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n && d->end_bytes < 2) {
    if (p[i] != (d->end_bytes == 0 ? '\r' : '\n')) {
      incomplete(d);
      return i;
    }
    i++;
    d->end_bytes++;
  }
  if (d->end_bytes == 2) {
    if (verify_chunk(d) == 0) d->st = ST_LINE;
  }
  return i;
}

int ep_chunked_feed(ep_chunked *d, const void *data, size_t len) {
  if (!d) return -1;
  const unsigned char *p = data;
  while (len > 0 && d->st != ST_FAILED) {
    size_t used = 0;
    int done = 0;
    switch (d->st) {
      case ST_LINE:
      case ST_TRAILER:
        used = take_line(d, p, len, &done);
        if (done) {
          int rc = d->st == ST_LINE ? chunk_header(d) : trailer_line(d);
          d->line_len = 0;
          (void)rc;
        }
        break;
      case ST_DATA:
        used = take_data(d, p, len);
        break;
      case ST_DATA_END:
        used = take_data_end(d, p, len);
        break;
      case ST_DONE:
        return incomplete(d); /* bytes after the end */
      case ST_FAILED:
        break;
    }
    p += used;
    len -= used;
  }
  return d->st == ST_FAILED ? -1 : 0;
}

int ep_chunked_finish(ep_chunked *d) {
  if (!d || d->st == ST_FAILED) return -1;
  return d->st == ST_DONE ? 0 : incomplete(d);
}
