/*
 * tls_resume_cpu.c: client CPU per new HTTPS connection through plugin/aws
 * (a HeadBucket on a connection of its own, asd_http_request.fresh_connection),
 * against a running local endpoint: with an endpoint that issues TLS session
 * tickets every connection after the first resumes; without, each is a full
 * handshake (certificate chain verified, signature checked).  Reports
 * process CPU (user+sys, getrusage) per request after one warm-up request.
 *
 *   tls_resume_cpu N BUCKET
 * Environment: AWS_ENDPOINT_URL (https://), AWS_CA_BUNDLE, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_REGION.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static int head_bucket_fresh(asd_aws_context *ctx, const char *path, asd_aws_error *err) {
  asd_http_request req;
  memset(&req, 0, sizeof req);
  req.method = "HEAD";
  req.service = ASD_AWS_S3;
  req.path = path;
  req.max_attempts = 1;
  req.fresh_connection = 1;
  asd_http_response resp;
  asd_http_response_init(&resp);
  int rc = asd_aws_send(ctx, &req, &resp, err);
  asd_http_response_free(&resp);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tls_resume_cpu N BUCKET\n");
    return 2;
  }
  int n = atoi(argv[1]);
  char path[128];
  snprintf(path, sizeof path, "/%s", argv[2]);
  asd_aws_config c;
  asd_aws_config_init(&c);
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_aws_context_new(&c, &err);
  if (!ctx || head_bucket_fresh(ctx, path, &err) != 0) {
    fprintf(stderr, "tls_resume_cpu: %s\n", err.message);
    return 1;
  }
  double t0 = cpu_seconds();
  for (int i = 0; i < n; i++) {
    if (head_bucket_fresh(ctx, path, &err) != 0) {
      fprintf(stderr, "tls_resume_cpu: %s\n", err.message);
      return 1;
    }
  }
  double ms = (cpu_seconds() - t0) * 1000.0 / n;
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  printf("%.4f %lu\n", ms, st.connections);
  asd_aws_context_free(ctx);
  return 0;
}
