#!/usr/bin/env bash
# The library as a downstream project sees it, from an installed copy:
#  1. every installed header compiles alone, in C (c11) and in C++ (c++17);
#  2. the shared library exports exactly the ASD_API declarations of the
#     installed headers (asd_export.h), and no internal symbol;
#  3. a consumer built with find_package(asyncdetect) and one built with
#     pkg-config each run asd_detect() in-process on a MEM dataset against the
#     real local endpoint (started here on an ephemeral loopback port).
#   test_install.sh BUILD_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name asyncdetect.pc | head -n1)")
export PKG_CONFIG_PATH="$libdir"
cflags=$(pkg-config --cflags asyncdetect)

# ---- 1. Each header alone, C and C++.
n=0
for h in "$tmp"/prefix/include/asyncdetect/*.h; do
  name=$(basename "$h")
  printf '#include <asyncdetect/%s>\n#include <asyncdetect/%s>\nint asd_header_check;\n' "$name" "$name" >"$tmp/one.c"
  # No -Wpedantic: GDAL's own headers are not pedantic-clean.
  cc -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/one.c" ||
    { echo "install: $name does not compile alone in C" >&2; exit 1; }
  cp "$tmp/one.c" "$tmp/one.cpp"
  c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/one.cpp" ||
    { echo "install: $name does not compile alone in C++" >&2; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 10 ] || { echo "install: only $n headers installed" >&2; exit 1; }
for internal in asd_run.h asd_detect_options.h detector_priv.h poller.h blockread.h; do
  [ ! -e "$tmp/prefix/include/asyncdetect/$internal" ] || { echo "install: internal header $internal installed" >&2; exit 1; }
done

# ---- 2. Exported symbols = ASD_API declarations.
so=$(find "$tmp/prefix" -name 'libasyncdetect.so.*.*' | head -n1)
nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sort -u >"$tmp/exported"
cat "$tmp"/prefix/include/asyncdetect/*.h | tr '\n' ' ' | grep -o 'ASD_API [^;{(]*(' |
  grep -o 'asd_[A-Za-z0-9_]*[ ]*($' | tr -d ' (' | sort -u >"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/symdiff"; then
  echo "install: exported symbols differ from the ASD_API declarations (- declared only, + exported only):" >&2
  grep '^[-+]asd\|^[-+][a-z]' "$tmp/symdiff" | head -40 >&2
  exit 1
fi
echo "install: $n headers compile alone (C, C++); $(wc -l <"$tmp/exported") symbols exported, all declared"

# ---- 3. Consumers running asd_detect() against the local endpoint.
"$build/asyncdetect_endpoint" -port 0 -data-dir "$tmp/data" -bucket consumer-in \
  -endpoint "consumer,model=blobs,output=s3://consumer-out/results,failure=s3://consumer-out/failures,instances=1,concurrency=4" \
  >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
url=""
for _ in $(seq 1 400); do url="$(head -n 1 "$tmp/server.out" 2>/dev/null || true)"; [ -n "$url" ] && break; sleep 0.05; done
[ -n "$url" ] || { echo "install: local endpoint did not start: $(cat "$tmp/server.err")" >&2; exit 1; }
export AWS_ENDPOINT_URL="$url" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws \
  AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true

cmake -S "$here/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/cmake-build/consumer" consumer consumer-in "$tmp/cmake.gpkg"
cc -std=c11 -Wall -Werror "$here/consumer/main.c" -o "$tmp/pc-consumer" \
  $(pkg-config --cflags --libs asyncdetect) -Wl,-rpath,"$(dirname "$libdir")"
"$tmp/pc-consumer" consumer consumer-in "$tmp/pc.gpkg"
test -x "$tmp/prefix/bin/gdal_asyncdetect"
echo "install test passed"
