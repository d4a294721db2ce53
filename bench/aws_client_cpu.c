/*
 * aws_client_cpu.c: client-side CPU cost of one engine job through the AWS
 * layer (PutObject of a tile, InvokeEndpointAsync, three HeadObject polls,
 * GetObject of the result-sized object), against a running local endpoint
 * with signature checking on.  Reports process CPU (user+sys, getrusage)
 * per job: the server runs in another process and is not counted.
 *
 *   aws_client_cpu MODE JOBS TILE_BYTES
 *     MODE reuse: one asd_aws_context for all jobs (the engine's way)
 *     MODE fresh: a new context per job (baseline: no connection, handle or
 *                 signing-key reuse)
 *     MODE sign:  only asd_sigv4_sign with a cached key, per request
 * Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_s3.h"
#include "asyncdetect/asd_sagemaker.h"
#include "asyncdetect/asd_sigv4.h"

static double user_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static asd_aws_context *make_ctx(void) {
  asd_aws_config c;
  asd_aws_config_init(&c);
  asd_aws_error err;
  asd_aws_context *ctx = asd_aws_context_new(&c, &err);
  if (!ctx) {
    fprintf(stderr, "context: %s\n", err.message);
    exit(1);
  }
  return ctx;
}

static int job(asd_aws_context *ctx, int i, const unsigned char *tile, size_t n) {
  asd_aws_error err;
  char key[64];
  snprintf(key, sizeof(key), "bench/tile-%06d.png", i);
  if (asd_s3_put_object(ctx, "bench-in", key, tile, n, "image/png", NULL, &err) != 0) goto fail;
  char loc[128];
  snprintf(loc, sizeof(loc), "s3://bench-in/%s", key);
  asd_sm_invoke_async_params p;
  memset(&p, 0, sizeof(p));
  p.endpoint_name = "bench";
  p.input_location = loc;
  p.content_type = "image/png";
  asd_sm_invoke_async_result r;
  if (asd_sm_invoke_async(ctx, &p, &r, &err) != 0) goto fail;
  asd_sm_invoke_async_result_free(&r);
  for (int h = 0; h < 3; h++)
    if (asd_s3_head_object(ctx, "bench-in", key, NULL, &err) != 0) goto fail;
  asd_buf out;
  asd_buf_init(&out);
  if (asd_s3_get_object(ctx, "bench-in", "bench/result.json", 0, &out, NULL, &err) != 0) goto fail;
  asd_buf_free(&out);
  return 0;
fail:
  fprintf(stderr, "job %d: %s\n", i, err.message);
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: aws_client_cpu reuse|fresh|sign JOBS TILE_BYTES\n");
    return 2;
  }
  const char *mode = argv[1];
  int jobs = atoi(argv[2]);
  size_t tile_bytes = (size_t)atol(argv[3]);
  unsigned char *tile = malloc(tile_bytes);
  for (size_t i = 0; i < tile_bytes; i++) tile[i] = (unsigned char)(i * 31 + 7);

  if (strcmp(mode, "sign") == 0) {
    unsigned char key[32];
    asd_sigv4_derive_key("secret", "20260101", "us-east-1", "s3", key);
    char hash[65];
    asd_sha256_hex("", 0, hash);
    asd_sigv4_header hs[] = {{"host", 0, "127.0.0.1:9000", 0}, {"x-amz-date", 0, "20260101T000000Z", 0},
                             {"x-amz-content-sha256", 0, hash, 0}, {"content-type", 0, "image/png", 0}};
    double t0 = cpu_seconds();
    int n = jobs * 6;
    for (int i = 0; i < n; i++) {
      asd_sigv4_params sp;
      memset(&sp, 0, sizeof(sp));
      sp.method = "PUT";
      sp.path = "/bench-in/bench/tile-000001.png";
      sp.headers = hs;
      sp.n_headers = 4;
      sp.payload_hash = hash;
      sp.region = "us-east-1";
      sp.service = "s3";
      sp.amz_date = "20260101T000000Z";
      sp.access_key_id = "AKID";
      sp.signing_key = key;
      asd_sigv4_signature sig;
      asd_sigv4_signature_init(&sig);
      asd_sigv4_sign(&sp, &sig);
      asd_sigv4_signature_free(&sig);
    }
    double dt = cpu_seconds() - t0;
    printf("mode=sign requests=%d cpu_per_request_us=%.2f\n", n, dt / n * 1e6);
    free(tile);
    return 0;
  }

  asd_aws_context *ctx = make_ctx();
  asd_aws_error err;
  /* Setup outside the measurement: bucket content for the GETs. */
  char result[4096];
  memset(result, 'r', sizeof(result));
  if (asd_s3_put_object(ctx, "bench-in", "bench/result.json", result, sizeof(result), "application/json", NULL, &err)) {
    fprintf(stderr, "setup: %s\n", err.message);
    return 1;
  }
  if (job(ctx, -1, tile, tile_bytes) != 0) return 1; /* warm up */
  int reuse = strcmp(mode, "reuse") == 0;
  double w0 = asd_time_monotonic(), t0 = cpu_seconds(), u0 = user_seconds();
  int failures = 0;
  for (int i = 0; i < jobs; i++) {
    if (reuse) {
      failures += job(ctx, i, tile, tile_bytes) != 0;
    } else {
      asd_aws_context *c2 = make_ctx();
      failures += job(c2, i, tile, tile_bytes) != 0;
      asd_aws_context_free(c2);
    }
  }
  double dt = cpu_seconds() - t0, wall = asd_time_monotonic() - w0, du = user_seconds() - u0;
  asd_http_stats st;
  asd_aws_context_http_stats(ctx, &st);
  printf("mode=%s jobs=%d tile_bytes=%zu failures=%d cpu_per_job_ms=%.3f (user %.3f, sys %.3f) wall_per_job_ms=%.3f "
         "(reused context: %lu requests over %lu connections)\n",
         mode, jobs, tile_bytes, failures, dt / jobs * 1e3, du / jobs * 1e3, (dt - du) / jobs * 1e3, wall / jobs * 1e3, st.requests, st.connections);
  asd_aws_context_free(ctx);
  free(tile);
  return failures ? 1 : 0;
}
