#!/usr/bin/env bash
# Merge benchmark: 1,000,000 synthetic detections streamed through the
# merger (time, peak RSS), the same detections merged without streaming
# (held in memory), and the baseline: a naive O(n^2) greedy NMS at 10,000
# detections, with our merger on the same list.  See bench/merge_bench.c.
#
#   bench/merge.sh [BUILD_DIR] [N] [N_NAIVE]     (defaults: build 1000000 10000)
#
# Builds the library if needed, compiles the driver against it, runs each
# measurement in its own process (so each peak RSS is its own).
# Its detections are boxes; polygon outlines (the NMM union) and result parsing
# on a dense real scene are measured by bench/merge_blobs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
N="${2:-1000000}"
NN="${3:-10000}"
if [ ! -f "$BUILD/libasyncdetect.so" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j2 --target asyncdetect >/dev/null
fi
BIN="$BUILD/merge_bench"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$BIN" bench/merge_bench.c \
  -Iplugin/include -Itiler/include -L"$BUILD" -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lasyncdetect -lm
echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
echo "# command: bench/merge.sh $BUILD $N $NN"
"$BIN" naive "$NN"
"$BIN" stream "$NN"
"$BIN" stream "$N"
"$BIN" hold "$N"
