#!/usr/bin/env bash
# Sets everything up, builds, and runs every test: first the normal build,
# then the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/test.sh            all tests, both builds
#   scripts/test.sh -L unit    only the tests labelled unit (ctest arguments)
#   ASD_SANITIZE_RUN=0 scripts/test.sh   skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build
(cd build && ctest --output-on-failure -j2 "$@")

if [ "${ASD_SANITIZE_RUN:-1}" != 0 ]; then
  scripts/setup.sh build-asan -DASD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  # GDAL and curl keep some process-lifetime allocations; leak checking is
  # done with valgrind where it matters, so LeakSanitizer stays off here.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j2 -LE bench "$@")
fi
