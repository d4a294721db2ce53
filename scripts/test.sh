#!/usr/bin/env bash
# Sets everything up, builds, and runs every test in three passes:
#   1. the normal build;
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#      and LeakSanitizer on: a test whose process (the test itself, the
#      utility or the local endpoint it starts) leaks memory fails.  The
#      process-lifetime allocations of GDAL, PROJ, libcurl and OpenSSL are
#      suppressed by scripts/lsan.supp, each line justified there;
#   3. fuzzing: a clang build (ASan + UBSan + libFuzzer) runs every target of
#      autotest/fuzz/ for ASD_FUZZ_SECONDS seconds (default 25) from its
#      corpus.  (Every build also replays the corpora as unit tests.)
#
#   scripts/test.sh            all tests, all passes
#   scripts/test.sh -L unit    only the tests labelled unit (ctest arguments;
#                              the fuzzing pass then runs only if ASD_FUZZ_RUN=1)
#   ASD_SANITIZE_RUN=0 scripts/test.sh   skip the sanitizer pass
#   ASD_FUZZ_RUN=0 scripts/test.sh       skip the fuzzing pass
#   ASD_FUZZ_SECONDS=300 scripts/test.sh fuzz longer
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build
(cd build && ctest --output-on-failure -j2 "$@")

if [ "${ASD_SANITIZE_RUN:-1}" != 0 ]; then
  scripts/setup.sh build-asan -DASD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j2 -LE bench "$@")
fi

if [ "${ASD_FUZZ_RUN:-$([ $# -eq 0 ] && echo 1 || echo 0)}" != 0 ]; then
  # Its own build tree: libFuzzer needs clang, and the library is compiled
  # with coverage instrumentation for it.  Only the fuzz targets are built.
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DASD_SANITIZE=ON -DASD_FUZZ=ON -DASD_FUZZ_SECONDS="${ASD_FUZZ_SECONDS:-25}" >&2
  cmake --build build-fuzz -j "$(nproc)" --target asd_fuzz >&2
  (cd build-fuzz && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/../scripts/lsan.supp" \
     ctest --output-on-failure -j2 -L fuzz)
fi
