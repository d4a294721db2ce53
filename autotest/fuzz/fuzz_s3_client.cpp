// fuzz_s3_client.cpp: the S3 client's reply parsers (plugin/aws/s3.c,
// errors.c, http.c): ListObjectsV2 listings and pagination, DeleteObjects
// results, GetObject bodies and error replies, as the client meets them.
//
// The replies come from a loopback HTTP server in the fuzzing process
// (autotest/support's MiniHttp) that answers every request with the fuzz
// input: byte 0 picks the HTTP status, byte 1 the operation, the rest is the
// body.  So the parsers run exactly as in production, behind the real
// transport, signing and retry code (one attempt: retries would only repeat
// the same reply).  A server may be hostile: the same truncated listing
// page forever, thousands of per-key errors, garbage.  Checked: every call
// returns (libFuzzer's -timeout catches one that does not), an error is one
// line, and results are consistent (a listing's entries have keys, a
// DeleteObjects result accounts for the keys it was given).
#include <cstring>
#include <string>

#include "asd_mini_http.h"
#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_s3.h"
#include "fuzz_target.h"

namespace {

asd_test::MiniHttp *server;
asd_aws_context *ctx;
std::string reply;
int reply_status = 200;

const int kStatuses[] = {200, 200, 200, 200, 204, 206, 301, 400, 403, 404, 409, 500, 503};

void check_error(const asd_aws_error &err) {
  FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != nullptr);
  FUZZ_CHECK(strchr(err.message, '\n') == nullptr);
  FUZZ_CHECK(err.kind != ASD_AWS_ERR_NONE);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  server = new asd_test::MiniHttp([](const asd_test::MiniRequest &) {
    asd_test::MiniResponse r;
    r.status = reply_status;
    r.body = reply;
    r.headers.push_back({"Content-Type", "application/xml"});
    return r;
  });
  static std::string url = server->url();
  asd_aws_config cfg;
  asd_aws_config_init(&cfg);
  cfg.access_key_id = "AKIDEXAMPLE";
  cfg.secret_access_key = "fuzz-secret";
  cfg.region = "us-east-1";
  cfg.endpoint_url = url.c_str();
  cfg.max_attempts = 1;
  cfg.request_timeout = 10;
  asd_aws_error err;
  ctx = asd_aws_context_new(&cfg, &err);
  if (!ctx) {
    fprintf(stderr, "fuzz_s3_client: %s\n", err.message);
    abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  reply_status = kStatuses[data[0] % (sizeof kStatuses / sizeof kStatuses[0])];
  reply.assign(reinterpret_cast<const char *>(data) + 2, size - 2);
  asd_aws_error err;
  switch (data[1] % 4) {
    case 0: {
      asd_s3_list_result r;
      if (asd_s3_list_objects_v2(ctx, "bucket", "pre/", nullptr, 0, 0, &r, &err) == 0) {
        for (size_t i = 0; i < r.n_entries; i++) FUZZ_CHECK(r.entries[i].key != nullptr);
      } else {
        check_error(err);
      }
      asd_s3_list_result_free(&r);
      break;
    }
    case 1: {
      const char *keys[] = {"a", "b/c", "d&e<f>"};
      asd_s3_delete_result r;
      int rc = asd_s3_delete_objects(ctx, "bucket", keys, 3, &r, &err);
      if (rc != 0) check_error(err);
      FUZZ_CHECK(r.deleted <= 3);
      for (size_t i = 0; i < r.n_errors; i++) FUZZ_CHECK(r.errors[i].key != nullptr);
      asd_s3_delete_result_free(&r);
      break;
    }
    case 2: {
      asd_buf out;
      asd_buf_init(&out);
      asd_s3_object_info info;
      if (asd_s3_get_object(ctx, "bucket", "result.out", 4096, &out, &info, &err) == 0)
        FUZZ_CHECK(out.len <= 4096);
      else
        check_error(err);
      asd_buf_free(&out);
      break;
    }
    default: {
      asd_s3_object_info info;
      if (asd_s3_head_object(ctx, "bucket", "k", &info, &err) != 0) check_error(err);
      if (asd_s3_head_bucket(ctx, "bucket", &err) != 0) check_error(err);
      break;
    }
  }
  return 0;
}
