#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a consumer against
# it twice: with find_package(asyncdetect) and with pkg-config.
#   test_install.sh BUILD_DIR
set -euo pipefail
build="$1"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$here/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/cmake-build/consumer"
libdir=$(dirname "$(find "$tmp/prefix" -name asyncdetect.pc | head -n1)")
export PKG_CONFIG_PATH="$libdir"
cc -std=c11 -Wall -Werror "$here/consumer/main.c" -o "$tmp/pc-consumer" \
  $(pkg-config --cflags --libs asyncdetect) -Wl,-rpath,"$(dirname "$libdir")"
"$tmp/pc-consumer"
for h in asd_common.h; do test -f "$tmp/prefix/include/asyncdetect/$h"; done
test -x "$tmp/prefix/bin/gdal_asyncdetect" || echo "note: gdal_asyncdetect not built yet"
echo "install test passed"
