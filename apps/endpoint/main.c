/*
 * main.c: asyncdetect_endpoint, the local S3 + SageMaker-async server.
 *
 * This is the wiring: parse the command line, open the store, create the
 * buckets asked for (and those the endpoints write to), start the runtime
 * (queues, instances, models) and the HTTP server, print the base URL as the
 * first line on stdout (tests and scripts wait for it), then sleep in
 * sigwait() until SIGINT or SIGTERM.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * starts and is inherited), so the only place a termination signal is seen is
 * that sigwait(): no handler runs in the middle of a write, and shutdown is
 * ordinary code.  Shutdown stops accepting connections, gives requests in
 * progress a bounded time to finish, stops the runtime (which completes the
 * result objects it is writing), closes the server and, when the data
 * directory was a temporary one, removes it.
 *
 * Exposure.  The endpoint is a test and demo server with published default
 * keys, so main() keeps it from being exposed by accident: a -bind address
 * other than loopback is refused with -no-auth or the default secret unless
 * -insecure-bind says it is meant (and then it warns loudly); the secret can
 * come from a file or the environment instead of the command line, and one
 * given on the command line is wiped from the process's argument memory so
 * `ps` and /proc/PID/cmdline stop showing it; the umask is 077, so the data
 * directory and every object, part and log file are the user's only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"

#include "asyncdetect/asd_common.h"
#include "auth.h"
#include "faults.h"
#include "runtime.h"
#include "s3_api.h"
#include "s3_buckets.h"
#include "s3_store.h"
#include "server.h"
#include "stats.h"
#include "sso_api.h"
#include "sts_api.h"
#include "policy.h"


#define DEFAULT_ACCESS_KEY "ASDLOCALACCESSKEY"
#define DEFAULT_SECRET_KEY "asdlocal-secret-not-for-aws"
#define DEFAULT_REGION "us-east-1"
#define DEFAULT_MAX_BODY (5ULL * 1024 * 1024 * 1024) /* S3's single-PUT limit */
#define SECRET_ENV "ASD_ENDPOINT_SECRET_KEY"
#define SECRET_MAX 256

static void usage(FILE *f) {
  fprintf(f,
          "Usage: asyncdetect_endpoint [-port N] [-bind ADDR] [-insecure-bind] [-data-dir DIR]\n"
          "           [-bucket NAME[@REGION][,owner=ACCOUNT][,require-sse=ALG]]...\n"
          "           [-tls-cert FILE -tls-key FILE] [-domain NAME]...\n"
          "           [-access-key KEY (-secret-key-file FILE | -secret-key SECRET)]\n"
          "           [-session-token TOKEN] [-no-auth] [-stats-auth]\n"
          "           [-region REGION] [-max-body BYTES] [-endpoint SPEC]... [-faults SPEC]\n"
          "           [-sts-external-id ID] [-no-sts] [-sso-token TOKEN [-sso-oidc ID:SECRET:REFRESH]]\n"
          "           [-deny ACTION[:RESOURCE]]...\n"
          "           [-access-log FILE] [-threads N] [--help] [--version]\n"
          "\n"
          "A local server speaking the S3 (path-style and virtual-hosted) and SageMaker\n"
          "Runtime protocols, with built-in models, for demos, tests, benchmarks and\n"
          "offline development.  When ready it prints its base URL (http://127.0.0.1:PORT,\n"
          "https:// with -tls-cert) as the first line on stdout.  SIGINT or SIGTERM stop\n"
          "it cleanly.\n"
          "\n"
          "Options:\n"
          "  -port N            TCP port; 0 (the default) picks a free port.\n"
          "  -bind ADDR         listen address (default 127.0.0.1, loopback only).  An\n"
          "                     address other than loopback is refused with -no-auth or the\n"
          "                     default secret below, which anyone can read here.\n"
          "  -insecure-bind     allow that anyway (a warning is printed).\n"
          "  -data-dir DIR      where buckets and objects are stored; kept across restarts.\n"
          "                     Default: a fresh temporary directory removed at exit.\n"
          "                     Made 0700, files 0600 (the umask is 077).\n"
          "  -bucket SPEC       create this bucket at startup (repeatable).  SPEC is\n"
          "                     NAME[@REGION][,owner=ACCOUNT][,require-sse=AES256|aws:kms|aws:kms:dsse]:\n"
          "                     @REGION places it in a region (requests signed for another\n"
          "                     region get S3's 301 PermanentRedirect, or 400\n"
          "                     AuthorizationHeaderMalformed, with x-amz-bucket-region);\n"
          "                     owner= is its 12-digit account (default 000000000000, checked\n"
          "                     against x-amz-expected-bucket-owner); require-sse= refuses\n"
          "                     uploads without that x-amz-server-side-encryption (403).\n"
          "  -tls-cert FILE     serve HTTPS with this PEM certificate (chain) ...\n"
          "  -tls-key FILE      ... and its PEM private key.\n"
          "  -domain NAME       virtual-hosted addressing under NAME: Host BUCKET.NAME is\n"
          "                     bucket BUCKET (repeatable).  BUCKET.s3[.REGION].amazonaws.com\n"
          "                     hosts are always understood.\n"
          "  -access-key KEY    access key id clients must sign with.\n");
  /* Split in two: ISO C caps string literals at 4095 characters. */
  fprintf(f,
          "  -secret-key-file FILE  its secret, the first line of FILE.  Or set\n"
          "                     " SECRET_ENV ".\n"
          "  -secret-key SECRET its secret on the command line (wiped from the process's\n"
          "                     arguments at startup, but briefly visible in ps: prefer the\n"
          "                     file or the environment).\n"
          "  -session-token T   require this x-amz-security-token on every request.\n"
          "  -no-auth           accept unsigned requests (signatures are not checked).\n"
          "  -stats-auth        /_asd/stats needs a signed request too (default: open).\n"
          "  -sts-external-id ID  STS AssumeRole (a form-encoded POST to /, as AWS_ENDPOINT_URL_STS\n"
          "                     clients send it) requires this ExternalId.  AssumeRole issues\n"
          "                     temporary credentials (ASIA... + session token) that the\n"
          "                     server then accepts until they expire.\n"
          "  -no-sts            do not answer STS requests.\n"
          );
  fprintf(f,
          "  -sso-token TOKEN   answer SSO GetRoleCredentials (GET /federation/credentials)\n"
          "                     for this bearer token; issued keys are verified like STS ones.\n"
          "  -sso-oidc CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN  with -sso-token: answer SSO OIDC\n"
          "                     CreateToken (POST /token, refresh_token grant) for this client and\n"
          "                     refresh token, rotating it; the tokens issued are accepted too.\n"
          "  -region REGION     region reported by the server (default us-east-1); clients\n"
          "                     may sign for any region.\n"
          "  -max-body BYTES    largest request body accepted (default 5 GiB for PutObject\n"
          "                     and UploadPart, which stream to disk).  Other bodies are held\n"
          "                     in memory and have lower caps: 2 MiB for S3 XML bodies,\n"
          "                     6 MiB for InvokeEndpoint, 64 KiB for STS, none for\n"
          "                     InvokeEndpointAsync and /_asd/ pages.  Every request is\n"
          "                     authenticated from its headers before its body is read.\n"
          "  -endpoint SPEC     declare a SageMaker endpoint (repeatable):\n"
          "                     \"NAME,model=blobs,output=s3://bucket/prefix,failure=s3://bucket/prefix,\n"
          "                      instances=1,concurrency=4,latency_ms=0,spread_ms=0,cold_start_ms=0\"\n"
          "                     failure=none: no S3FailurePath (no FailureLocation, failures\n"
          "                     leave nothing in S3); cold_start_ms=N: instances start N ms\n"
          "                     after the first invocation; async=no: a real-time endpoint\n"
          "                     (InvokeEndpointAsync is a ValidationError).  DescribeEndpoint and\n"
          "                     DescribeEndpointConfig (X-Amz-Target: SageMaker.*) describe them.\n"
          "                     models: centerpoint, flood, failure, blobs, http://HOST:PORT.\n"
          "  -faults SPEC       fault injection: \"s3_503=P,s3_500=P,invoke_throttle=P,invoke_5xx=P,\n"
          "                      drop=P,model_error=P,hang=P,slow_consumer_ms=N,seed=N\"; SageMaker's\n"
          "                     errors by name: ValidationError, ModelNotReadyException,\n"
          "                     ThrottlingException, ServiceUnavailable, InternalFailure,\n"
          "                     InternalDependencyException =P; accept_then_5xx=P and\n"
          "                     accept_then_drop=P accept and run the job, then answer 500 or\n"
          "                     close the connection.\n"
          "  -deny ACTION[:RESOURCE]  answer ACTION (an IAM action: s3:ListBucket, s3:GetObject,\n"
          "                     s3:PutObject, s3:DeleteObject, sagemaker:DescribeEndpoint...) on\n"
          "                     RESOURCE (a bucket or endpoint name, default every one) with\n"
          "                     AccessDenied, as AWS does (repeatable).  E.g. -deny s3:ListBucket:results\n"
          "                     makes GetObject of a missing key there 403, not 404.\n"
          "  -access-log FILE   append one line per request to FILE.\n"
          "  -threads N         HTTP worker threads (default 4).\n"
          "\n"
          "Local default credentials (never valid on AWS):\n"
          "  access key  " DEFAULT_ACCESS_KEY "\n"
          "  secret key  " DEFAULT_SECRET_KEY "\n"
          "  region      " DEFAULT_REGION "\n"
          "For example:\n"
          "  export AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=" DEFAULT_ACCESS_KEY "\n"
          "  export AWS_SECRET_ACCESS_KEY=" DEFAULT_SECRET_KEY " AWS_REGION=" DEFAULT_REGION "\n"
          "\n"
          "GET /_asd/stats returns a JSON document of request counts, bytes, queue depth,\n"
          "invocations and latency percentiles (no signature needed unless -stats-auth).\n");
}

/* ------------------------------------------------------------------ main */

static int parse_u64(const char *s, unsigned long long *out) {
  if (!s || !*s) return -1;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

/* 1 when addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z);
 * -1 when it is no address at all (the server reports that itself). */
static int is_loopback(const char *addr) {
  unsigned char a6[16];
  struct in_addr a4;
  if (inet_pton(AF_INET, addr, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, addr, a6) != 1) return -1;
  static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a6, one, 16) == 0 || (memcmp(a6, mapped, 12) == 0 && a6[12] == 127);
}

/* Reads a secret: the first line of path, without its line end.  0, or -1
 * with a one-line error printed (never the secret). */
static int read_secret_file(const char *path, char *out, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "asyncdetect_endpoint: -secret-key-file %s: %s\n", path, strerror(errno));
    return -1;
  }
  int ok = fgets(out, (int)size, f) != NULL;
  fclose(f);
  size_t n = ok ? strcspn(out, "\r\n") : 0;
  if (ok && out[n] == '\0' && n == size - 1) ok = 0; /* no line end within the buffer: too long */
  if (ok) out[n] = '\0';
  if (!ok || n == 0) {
    fprintf(stderr, "asyncdetect_endpoint: -secret-key-file %s: expected the secret on its first line (1 to %d "
                    "characters)\n", path, (int)size - 2);
    return -1;
  }
  return 0;
}

/* Overwrites the values of -secret-key, -session-token, -sso-token and -sso-oidc in the process's
 * own argument memory, which is what ps and /proc/PID/cmdline show.  The
 * parsed copies (GDALGeneralCmdLineProcessor made them) are not touched. */
static void scrub_secret_args(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i++)
    if (EQUAL(argv[i], "-secret-key") || EQUAL(argv[i], "-session-token") || EQUAL(argv[i], "-sso-token") ||
        EQUAL(argv[i], "-sso-oidc")) {
      memset(argv[i + 1], 'x', strlen(argv[i + 1]));
      i++;
    }
}

/* Reads a whole (small) text file; malloc'd, NULL with errno set. */
static char *read_text_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  asd_buf b;
  asd_buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1u << 20)) asd_buf_append(&b, chunk, n);
  fclose(f);
  asd_buf_append(&b, "", 1);
  return (char *)asd_buf_take(&b, NULL);
}

/*
 * -tls-cert and -tls-key: read both PEM files and check them with OpenSSL
 * before libmicrohttpd sees them, so a wrong file gets a line naming the
 * problem instead of GnuTLS's silence.  0, or -1 with the line printed.
 */
static int load_tls(const char *cert_path, const char *key_path, char **cert_pem, char **key_pem) {
  *cert_pem = read_text_file(cert_path);
  if (!*cert_pem) {
    fprintf(stderr, "asyncdetect_endpoint: -tls-cert %s: %s\n", cert_path, strerror(errno));
    return -1;
  }
  *key_pem = read_text_file(key_path);
  if (!*key_pem) {
    fprintf(stderr, "asyncdetect_endpoint: -tls-key %s: %s\n", key_path, strerror(errno));
    return -1;
  }
  BIO *cb = BIO_new_mem_buf(*cert_pem, -1), *kb = BIO_new_mem_buf(*key_pem, -1);
  X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  int rc = -1;
  if (!x)
    fprintf(stderr, "asyncdetect_endpoint: -tls-cert %s: not a PEM certificate\n", cert_path);
  else if (!k)
    fprintf(stderr, "asyncdetect_endpoint: -tls-key %s: not an unencrypted PEM private key\n", key_path);
  else if (X509_check_private_key(x, k) != 1)
    fprintf(stderr, "asyncdetect_endpoint: -tls-key %s is not the key of the certificate in %s\n", key_path,
            cert_path);
  else
    rc = 0;
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  return rc;
}

int main(int argc, char **argv) {
  /* Objects, parts, logs and the data directory are the user's only. */
  umask(077);
  /* Termination signals are only ever seen by sigwait() below. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  GDALAllRegister();
  int orig_argc = argc;
  char **orig_argv = argv;
  argc = GDALGeneralCmdLineProcessor(argc, &argv, 0);
  if (argc < 1) return 0; /* --version, --help-general, ... were handled */
  scrub_secret_args(orig_argc, orig_argv);

  int port = 0, threads = 4, no_auth = 0, no_sts = 0, stats_auth = 0, insecure_bind = 0;
  const char *sts_external_id = NULL, *sso_token = NULL, *sso_oidc = NULL, *secret_file = NULL;
  char secret_buf[SECRET_MAX] = "";
  const char *bind_addr = "127.0.0.1", *data_dir = NULL, *access_key = NULL, *secret_key = NULL;
  const char *session_token = NULL, *region = DEFAULT_REGION, *faults_spec = NULL, *access_log = NULL;
  unsigned long long max_body = DEFAULT_MAX_BODY;
  char **buckets = NULL, **endpoints = NULL, **domains = NULL;
  const char *tls_cert = NULL, *tls_key = NULL;
  char *tls_cert_pem = NULL, *tls_key_pem = NULL;
  ep_s3_buckets *bucket_conf = ep_s3_buckets_new(NULL);
  int rc = 1;
  ep_policy *policy = ep_policy_new(); /* -deny rules */

#define NEED_ARG()                                                         \
  do {                                                                     \
    if (i + 1 >= argc) {                                                   \
      fprintf(stderr, "asyncdetect_endpoint: %s needs a value\n", argv[i]); \
      goto out;                                                            \
    }                                                                      \
  } while (0)

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (EQUAL(a, "--help") || EQUAL(a, "-help") || EQUAL(a, "-h")) {
      usage(stdout);
      rc = 0;
      goto out;
    } else if (EQUAL(a, "-port")) {
      NEED_ARG();
      unsigned long long v;
      if (parse_u64(argv[++i], &v) != 0 || v > 65535) {
        fprintf(stderr, "asyncdetect_endpoint: -port must be 0..65535, got '%s'\n", argv[i]);
        goto out;
      }
      port = (int)v;
    } else if (EQUAL(a, "-bind")) {
      NEED_ARG();
      bind_addr = argv[++i];
    } else if (EQUAL(a, "-data-dir")) {
      NEED_ARG();
      data_dir = argv[++i];
    } else if (EQUAL(a, "-bucket")) {
      NEED_ARG();
      buckets = CSLAddString(buckets, argv[++i]);
    } else if (EQUAL(a, "-tls-cert")) {
      NEED_ARG();
      tls_cert = argv[++i];
    } else if (EQUAL(a, "-tls-key")) {
      NEED_ARG();
      tls_key = argv[++i];
    } else if (EQUAL(a, "-domain")) {
      NEED_ARG();
      domains = CSLAddString(domains, argv[++i]);
    } else if (EQUAL(a, "-access-key")) {
      NEED_ARG();
      access_key = argv[++i];
    } else if (EQUAL(a, "-secret-key")) {
      NEED_ARG();
      secret_key = argv[++i];
    } else if (EQUAL(a, "-secret-key-file")) {
      NEED_ARG();
      secret_file = argv[++i];
    } else if (EQUAL(a, "-stats-auth")) {
      stats_auth = 1;
    } else if (EQUAL(a, "-insecure-bind")) {
      insecure_bind = 1;
    } else if (EQUAL(a, "-session-token")) {
      NEED_ARG();
      session_token = argv[++i];
    } else if (EQUAL(a, "-no-auth")) {
      no_auth = 1;
    } else if (EQUAL(a, "-no-sts")) {
      no_sts = 1;
    } else if (EQUAL(a, "-sso-token")) {
      NEED_ARG();
      sso_token = argv[++i];
    } else if (EQUAL(a, "-sso-oidc")) {
      NEED_ARG();
      sso_oidc = argv[++i];
    } else if (EQUAL(a, "-sts-external-id")) {
      NEED_ARG();
      sts_external_id = argv[++i];
    } else if (EQUAL(a, "-region")) {
      NEED_ARG();
      region = argv[++i];
    } else if (EQUAL(a, "-max-body")) {
      NEED_ARG();
      if (parse_u64(argv[++i], &max_body) != 0 || max_body == 0) {
        fprintf(stderr, "asyncdetect_endpoint: -max-body must be a positive number of bytes, got '%s'\n", argv[i]);
        goto out;
      }
    } else if (EQUAL(a, "-endpoint")) {
      NEED_ARG();
      endpoints = CSLAddString(endpoints, argv[++i]);
    } else if (EQUAL(a, "-deny")) {
      NEED_ARG();
      char derr[512];
      if (!policy || ep_policy_add_deny(policy, argv[++i], derr, sizeof derr) != 0) {
        fprintf(stderr, "asyncdetect_endpoint: %s\n", policy ? derr : "out of memory");
        goto out;
      }
    } else if (EQUAL(a, "-faults")) {
      NEED_ARG();
      faults_spec = argv[++i];
    } else if (EQUAL(a, "-access-log")) {
      NEED_ARG();
      access_log = argv[++i];
    } else if (EQUAL(a, "-threads")) {
      NEED_ARG();
      unsigned long long v;
      if (parse_u64(argv[++i], &v) != 0 || v < 1 || v > 256) {
        fprintf(stderr, "asyncdetect_endpoint: -threads must be 1..256, got '%s'\n", argv[i]);
        goto out;
      }
      threads = (int)v;
    } else {
      fprintf(stderr, "asyncdetect_endpoint: unknown option '%s' (see --help)\n", a);
      goto out;
    }
  }
  if (stats_auth && no_auth) {
    fprintf(stderr, "asyncdetect_endpoint: -stats-auth needs signatures, so not -no-auth\n");
    goto out;
  }
  if (secret_file && secret_key) {
    fprintf(stderr, "asyncdetect_endpoint: give -secret-key or -secret-key-file, not both\n");
    goto out;
  }
  if (secret_file) {
    if (read_secret_file(secret_file, secret_buf, sizeof secret_buf) != 0) goto out;
    secret_key = secret_buf;
  } else if (!secret_key && getenv(SECRET_ENV) && *getenv(SECRET_ENV)) {
    if (strlen(getenv(SECRET_ENV)) >= sizeof secret_buf) {
      fprintf(stderr, "asyncdetect_endpoint: " SECRET_ENV " is longer than %d characters\n", SECRET_MAX - 1);
      goto out;
    }
    snprintf(secret_buf, sizeof secret_buf, "%s", getenv(SECRET_ENV));
    secret_key = secret_buf;
  }
  if ((access_key == NULL) != (secret_key == NULL)) {
    fprintf(stderr, "asyncdetect_endpoint: -access-key and its secret (-secret-key-file, " SECRET_ENV
                    " or -secret-key) go together\n");
    goto out;
  }
  {
    /* The published default secret, or none, on an address others can reach. */
    const char *exposure = no_auth ? "with -no-auth"
                           : (!secret_key || strcmp(secret_key, DEFAULT_SECRET_KEY) == 0)
                               ? "with the published default secret key"
                               : NULL;
    if (exposure && is_loopback(bind_addr) == 0) {
      if (!insecure_bind) {
        fprintf(stderr, "asyncdetect_endpoint: refusing -bind %s %s: anyone who reaches that address could read, "
                        "write and delete every object; give your own -access-key and -secret-key-file, or add "
                        "-insecure-bind if that is really meant\n", bind_addr, exposure);
        goto out;
      }
      fprintf(stderr, "asyncdetect_endpoint: WARNING: listening on %s, beyond this machine, %s: anyone who "
                      "reaches it can read, write and delete every object (-insecure-bind)\n", bind_addr, exposure);
    }
  }
  if (!bucket_conf) goto out;
  for (int i = 0; buckets && buckets[i]; i++) {
    ep_s3_bucket_spec bs;
    char berr[256];
    if (ep_s3_bucket_spec_parse(buckets[i], &bs, berr, sizeof berr) != 0) {
      fprintf(stderr, "asyncdetect_endpoint: -bucket '%s': %s\n", buckets[i], berr);
      goto out;
    }
    if (!ep_store_bucket_name_valid(bs.name)) {
      fprintf(stderr, "asyncdetect_endpoint: -bucket '%s' is not a valid S3 bucket name\n", bs.name);
      goto out;
    }
    if (ep_s3_buckets_add(bucket_conf, &bs) != 0) goto out;
    CPLFree(buckets[i]);
    buckets[i] = CPLStrdup(bs.name);
  }
  if ((tls_cert == NULL) != (tls_key == NULL)) {
    fprintf(stderr, "asyncdetect_endpoint: -tls-cert and -tls-key go together\n");
    goto out;
  }
  if (tls_cert && load_tls(tls_cert, tls_key, &tls_cert_pem, &tls_key_pem) != 0) goto out;

  /* Endpoints and faults: parsed by the runtime's own parsers. */
  int n_specs = CSLCount(endpoints);
  ep_endpoint_spec *specs = NULL;
  ep_fault_spec fspec;
  memset(&fspec, 0, sizeof fspec);
  if (n_specs > 0) {
    specs = calloc((size_t)n_specs, sizeof *specs);
    if (!specs) goto out;
    for (int i = 0; i < n_specs; i++) {
      char err[256] = "";
      if (ep_endpoint_spec_parse(endpoints[i], &specs[i], err, sizeof err) != 0) {
        fprintf(stderr, "asyncdetect_endpoint: -endpoint '%s': %s\n", endpoints[i], err);
        free(specs);
        goto out;
      }
    }
  }
  if (faults_spec) {
    char err[256] = "";
    if (ep_fault_spec_parse(faults_spec, &fspec, err, sizeof err) != 0) {
      fprintf(stderr, "asyncdetect_endpoint: -faults '%s': %s\n", faults_spec, err);
      free(specs);
      goto out;
    }
  }

  /* The data directory: given, or a fresh temporary one removed at exit. */
  char *tmp_dir = NULL;
  if (!data_dir) {
    const char *t = getenv("TMPDIR");
    char *templ = CPLStrdup(CPLSPrintf("%s/asd-endpoint-XXXXXX", t && *t ? t : "/tmp"));
    if (!mkdtemp(templ)) {
      fprintf(stderr, "asyncdetect_endpoint: cannot create a temporary data directory: %s\n", strerror(errno));
      CPLFree(templ);
      free(specs);
      goto out;
    }
    tmp_dir = templ;
    data_dir = tmp_dir;
  }

  ep_store *store = NULL;
  ep_faults *faults = NULL;
  ep_runtime *runtime = NULL;
  ep_auth *auth = NULL;
  ep_sts_api *sts = NULL;
  ep_sso_api *sso = NULL;
  ep_stats *stats = NULL;
  ep_s3_api *s3 = NULL;
  ep_server *srv = NULL;
  char *serr = NULL;
  store = ep_store_open(data_dir, &serr);
  if (!store) {
    fprintf(stderr, "asyncdetect_endpoint: %s\n", serr ? serr : "cannot open the data directory");
    free(serr);
    goto cleanup;
  }
  for (int i = 0; buckets && buckets[i]; i++) {
    ep_store_status st = ep_store_create_bucket(store, buckets[i]);
    if (st != ASD_STORE_OK && st != ASD_STORE_EXISTS) {
      fprintf(stderr, "asyncdetect_endpoint: cannot create bucket %s: %s\n", buckets[i], ep_store_status_text(st));
      goto cleanup;
    }
  }
  for (int i = 0; i < n_specs; i++) {
    const char *bs[2] = {specs[i].output_bucket, specs[i].failure_bucket};
    for (int k = 0; k < 2; k++) {
      if (!bs[k][0]) continue; /* failure=none */
      ep_store_status st = ep_store_create_bucket(store, bs[k]);
      if (st != ASD_STORE_OK && st != ASD_STORE_EXISTS) {
        fprintf(stderr, "asyncdetect_endpoint: -endpoint %s: cannot create bucket '%s': %s\n", specs[i].name, bs[k],
                ep_store_status_text(st));
        goto cleanup;
      }
    }
  }
  if (faults_spec) {
    faults = ep_faults_new(&fspec);
    if (!faults) goto cleanup;
  }
  if (n_specs > 0) {
    ep_rt_store rs;
    ep_rt_store_from_store(store, &rs);
    char err[256] = "";
    runtime = ep_runtime_new(specs, n_specs, &rs, faults, err, sizeof err);
    if (!runtime) {
      fprintf(stderr, "asyncdetect_endpoint: %s\n", err[0] ? err : "cannot start the runtime");
      goto cleanup;
    }
  }
  if (!no_auth) {
    auth = ep_auth_new(access_key ? access_key : DEFAULT_ACCESS_KEY, secret_key ? secret_key : DEFAULT_SECRET_KEY,
                           session_token, 900);
    if (!auth) goto cleanup;
  }
  if (!no_sts || sso_token) { /* SSO issues into the STS session table */
    sts = ep_sts_api_new(sts_external_id);
    if (!sts) goto cleanup;
    ep_auth_set_issued_keys(auth, ep_sts_api_lookup, sts);
  }
  if (sso_token && !(sso = ep_sso_api_new(sso_token, sts, 0))) goto cleanup;
  if (sso_oidc && (!sso || ep_sso_api_set_oidc(sso, sso_oidc) != 0)) {
    fprintf(stderr, "asyncdetect_endpoint: -sso-oidc wants CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN and -sso-token\n");
    goto cleanup;
  }
  stats = ep_stats_new();
  s3 = ep_s3_api_new(store, max_body, region);
  if (!stats || !s3) goto cleanup;
  ep_s3_buckets_set_default_region(bucket_conf, region);
  ep_s3_api_set_buckets(s3, bucket_conf);

  ep_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.bind = bind_addr;
  cfg.port = port;
  cfg.threads = threads;
  cfg.max_body = max_body;
  cfg.access_log = access_log;
  cfg.store = store;
  cfg.s3 = s3;
  cfg.runtime = runtime;
  cfg.faults = faults;
  cfg.stats = stats;
  cfg.auth = auth;
  cfg.sts = no_sts ? NULL : sts;
  cfg.sso = sso;
  cfg.policy = policy;
  cfg.region = region;
  cfg.stats_auth = stats_auth && auth;
  cfg.tls_cert_pem = tls_cert_pem;
  cfg.tls_key_pem = tls_key_pem;
  cfg.buckets = bucket_conf;
  cfg.domains = domains;
  char err[256] = "";
  srv = ep_server_start(&cfg, err, sizeof err);
  if (!srv) {
    fprintf(stderr, "asyncdetect_endpoint: %s\n", err);
    goto cleanup;
  }
  {
    const char *host = bind_addr;
    const char *scheme = tls_cert_pem ? "https" : "http";
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    if (strchr(host, ':'))
      printf("%s://[%s]:%d\n", scheme, strcmp(host, "::") == 0 ? "::1" : host, ep_server_port(srv));
    else
      printf("%s://%s:%d\n", scheme, host, ep_server_port(srv));
    fflush(stdout);
  }
  fprintf(stderr, "asyncdetect_endpoint: serving %s on %s port %d (data in %s, %s, %d endpoint(s))\n",
          tls_cert_pem ? "HTTPS" : "HTTP", bind_addr, ep_server_port(srv), ep_store_root(store),
          auth ? "SigV4 required" : "no auth", n_specs);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  fprintf(stderr, "asyncdetect_endpoint: signal %d, shutting down\n", sig);
  rc = 0;

  /* Stop accepting, let requests in progress finish (bounded), then stop. */
  ep_server_quiesce(srv);
  double deadline = asd_time_monotonic() + 10.0;
  while (ep_server_in_flight(srv) > 0 && asd_time_monotonic() < deadline) asd_sleep(0.01);
  if (runtime) ep_runtime_stop(runtime);

cleanup:
  ep_server_stop(srv);
  if (runtime) ep_runtime_free(runtime);
  if (faults) ep_faults_free(faults);
  ep_s3_api_free(s3);
  ep_stats_free(stats);
  ep_auth_free(auth);
  ep_sso_api_free(sso);
  ep_sts_api_free(sts);
  ep_store_close(store);
  if (tmp_dir) {
    CPLUnlinkTree(tmp_dir);
    CPLFree(tmp_dir);
  }
  free(specs);
out:
  ep_policy_free(policy);
  ep_s3_buckets_free(bucket_conf);
  CSLDestroy(domains);
  free(tls_cert_pem);
  if (tls_key_pem) {
    OPENSSL_cleanse(tls_key_pem, strlen(tls_key_pem));
    free(tls_key_pem);
  }
  CSLDestroy(buckets);
  CSLDestroy(endpoints);
  CSLDestroy(argv);
  OPENSSL_cleanse(secret_buf, sizeof secret_buf);
  GDALDestroyDriverManager();
  return rc;
}
