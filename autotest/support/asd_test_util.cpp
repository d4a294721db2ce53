// Helpers shared by the test files (see asd_test_util.h for what each does
// and why they are shared).
#include "asd_test_util.h"

#include <json.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "asd_local_endpoint.h"
#include "cpl_conv.h"
#include "cpl_vsi.h"
#include "gdal.h"

namespace asd_test {

std::string run_command(const std::string &cmd, int *rc) {
  std::string out;
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

bool have_boto3() {
  int rc = 0;
  run_command("python3 -c 'import boto3' >/dev/null 2>&1", &rc);
  return rc == 0;
}

std::string write_temp_file(const std::string &text, const std::string &prefix) {
  std::string tmpl = "/tmp/" + prefix + "XXXXXX";
  int fd = mkstemp(&tmpl[0]);
  if (fd < 0) return "";
  ssize_t w = write(fd, text.data(), text.size());
  close(fd);
  if (w != static_cast<ssize_t>(text.size())) {
    unlink(tmpl.c_str());
    return "";
  }
  return tmpl;
}

// GDAL writes the PNG to /vsimem/ and hands its buffer over; the cache keeps
// one per size because several tests of a file ask for the same tile from
// several threads.
const std::string &tiny_png(int width, int height) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::string &png = cache[{width, height}];
  if (!png.empty()) return png;
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", width, height, 3, GDT_Byte, nullptr);
  std::string path = "/vsimem/asd_test_tiny_" + std::to_string(width) + "x" + std::to_string(height) + ".png";
  GDALClose(GDALCreateCopy(GDALGetDriverByName("PNG"), path.c_str(), ds, FALSE, nullptr, nullptr, nullptr));
  GDALClose(ds);
  vsi_l_offset n = 0;
  GByte *bytes = VSIGetMemFileBuffer(path.c_str(), &n, TRUE);
  if (bytes) png.assign(reinterpret_cast<char *>(bytes), static_cast<size_t>(n));
  CPLFree(bytes);
  return png;
}

asd_async_config engine_config(const char *prefix, int max_jobs) {
  asd_async_config c;
  asd_config_init(&c);
  snprintf(c.input_bucket, sizeof c.input_bucket, "asd-in");
  snprintf(c.input_prefix, sizeof c.input_prefix, "%s", prefix);
  c.polling_interval = 0.02;
  c.max_polling_interval = 0.2;
  c.exponential_backoff_multiplier = 1.5;
  c.max_wait_time = 20;
  c.submission_workers = 4;
  c.polling_workers = 2;
  c.max_concurrent_jobs = max_jobs;
  c.job_queue_timeout = 60;
  c.max_retries = 3;
  return c;
}

long long runtime_stat(LocalEndpoint &ep, const char *endpoint, const char *key) {
  json_object *j = json_tokener_parse(ep.stats_json().c_str());
  json_object *rt = nullptr, *eps = nullptr, *e = nullptr, *v = nullptr;
  long long n = -1;
  if (j && json_object_object_get_ex(j, "runtime", &rt) && json_object_object_get_ex(rt, "endpoints", &eps) &&
      json_object_object_get_ex(eps, endpoint, &e) && json_object_object_get_ex(e, key, &v))
    n = json_object_get_int64(v);
  if (j) json_object_put(j);
  return n;
}

asd_aws_context *local_client(const LocalEndpoint &ep, asd_aws_error *err, int max_attempts) {
  asd_aws_config c;
  asd_aws_config_init(&c);
  c.endpoint_url = ep.url().c_str();
  c.access_key_id = kLocalAccessKey;
  c.secret_access_key = kLocalSecretKey;
  c.region = "us-east-1";
  if (max_attempts > 0) c.max_attempts = max_attempts;
  return asd_aws_context_new(&c, err);
}

}  // namespace asd_test
