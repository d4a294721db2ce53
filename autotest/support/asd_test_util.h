// Small helpers that many test files needed and each wrote again: running a
// command and reading its output, writing a temporary file, knowing whether
// boto3 is there, a tiny PNG tile the endpoint's models decode, the engine
// configuration the engine tests start from, and one runtime counter of the
// local endpoint's stats page.
//
// They live here so that a fix (a pclose status read wrongly, a temporary
// file left behind) is made once.  None of them asserts anything: callers
// decide what a failure means for their test.
#ifndef ASD_TEST_UTIL_H
#define ASD_TEST_UTIL_H

#include <string>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_config.h"

namespace asd_test {

class LocalEndpoint;

// Runs cmd through the shell and returns its standard output; *rc is its exit
// status, or -1 when it could not run or was killed by a signal.
std::string run_command(const std::string &cmd, int *rc);

// True when python3 can import boto3 (the independent client of the
// conformance tests).
bool have_boto3();

// Writes text to a new file named /tmp/<prefix>XXXXXX and returns its path,
// or "" on failure.  The caller removes it.
std::string write_temp_file(const std::string &text, const std::string &prefix = "asd_test_");

// A PNG of width x height RGB zeros, made once per size by GDAL.
const std::string &tiny_png(int width = 32, int height = 24);

// The engine tests' configuration: input bucket asd-in under prefix, fast
// polling (20 ms, at most 200 ms, x1.5), 20 s per job, 4 submission and 2
// polling workers, max_jobs in flight, 60 s queue timeout, 3 retries.
asd_async_config engine_config(const char *prefix, int max_jobs);

// A client context for the local endpoint ep: its published keys, region
// us-east-1, and max_attempts per call (0: the configuration's default).  A
// CA, when the endpoint serves HTTPS, comes from AWS_CA_BUNDLE as the caller
// set it, as any user would give it.  NULL with err when it cannot be made.
asd_aws_context *local_client(const LocalEndpoint &ep, asd_aws_error *err, int max_attempts = 0);

// runtime.endpoints.<endpoint>.<key> of the endpoint's stats page, or -1.
long long runtime_stat(LocalEndpoint &ep, const char *endpoint, const char *key);

}  // namespace asd_test

#endif
