/*
 * wire_put_cpu.c: client CPU of S3 PutObject alone, per uploaded MB, for the
 * wire comparison of bench/wire_upload_cpu.sh (issue 12 part 4): the same
 * binary runs against either library (LD_LIBRARY_PATH) and either server
 * (AWS_ENDPOINT_URL http:// or https://), so the only differences are what
 * the library does per body: SHA-256 for the signature (HTTP), nothing
 * (baseline HTTPS), CRC-32C (this build's HTTPS), plus TLS itself.
 * Process CPU (user + sys, getrusage) around the PUT loop only; the server is
 * another process and is not counted.  Only functions whose signatures
 * both libraries share are called.
 *
 *   wire_put_cpu PUTS BYTES   (environment: AWS_ENDPOINT_URL, keys, region, CA)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_s3.h"

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv) {
  int puts = argc > 1 ? atoi(argv[1]) : 200;
  size_t n = argc > 2 ? (size_t)atol(argv[2]) : 786432;
  unsigned char *tile = malloc(n);
  if (!tile) return 1;
  unsigned x = 12345;
  for (size_t i = 0; i < n; i++) tile[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
  asd_aws_error err;
  asd_aws_context *ctx = asd_aws_context_new(NULL, &err);
  if (!ctx) {
    fprintf(stderr, "wire_put_cpu: %s\n", err.message);
    return 1;
  }
  /* One PUT first: connection, TLS handshake, signing key, out of the loop. */
  if (asd_s3_put_object(ctx, "asd-bench", "warm", tile, n, NULL, NULL, &err) != 0) {
    fprintf(stderr, "wire_put_cpu: %s\n", err.message);
    return 1;
  }
  double c0 = cpu_seconds();
  for (int i = 0; i < puts; i++) {
    char key[64];
    snprintf(key, sizeof key, "put/%06d.tif", i);
    if (asd_s3_put_object(ctx, "asd-bench", key, tile, n, "image/tiff", NULL, &err) != 0) {
      fprintf(stderr, "wire_put_cpu: %s\n", err.message);
      return 1;
    }
  }
  double cpu = cpu_seconds() - c0;
  printf("%.6f %.6f\n", 1000 * cpu / puts, 1000 * cpu / (puts * (double)n / 1e6));
  asd_aws_context_free(ctx);
  free(tile);
  return 0;
}
