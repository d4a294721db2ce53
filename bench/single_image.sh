#!/usr/bin/env bash
# The single-image path, this build side by side with a baseline build (e.g.
# main before issue 15), same endpoint, same run: the sample scene in 256 x
# 256 tiles (overlap 32, 126 tiles) through the blobs model at 200 ms with 64
# slots, (a) with the polling flags the e2e tests use (both builds then run
# the same fixed schedule: the cost of the new bookkeeping shows), and (b)
# with no polling flag at all (the baseline's 30 s first poll against
# adaptive polling).  Each pair runs alternately, twice.
#
#   bench/single_image.sh BASELINE_BUILD [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:?usage: bench/single_image.sh BASELINE_BUILD [BUILD_DIR]}"
BUILD="${2:-build}"
for b in "$BASE" "$BUILD"; do
  [ -x "$b/gdal_asyncdetect" ] || { echo "single_image: $b/gdal_asyncdetect not built" >&2; exit 1; }
done
BIN="$BUILD/asyncdetect_endpoint"
. bench/lib.sh
bench_init
bench_start_endpoint "$BIN" -threads 8 -data-dir "$WORK/data" -bucket asd-bench \
  -endpoint "bench,model=blobs,output=s3://asd-out/r,failure=s3://asd-out/f,instances=1,concurrency=64,latency_ms=200"
unset ASYNC_SM_POLLING_INTERVAL ASYNC_SM_MAX_POLLING_INTERVAL ASYNC_SM_BACKOFF_MULTIPLIER ASYNC_SM_ADAPTIVE_POLLING
FLAGS=(-polling-interval 0.05 -max-polling-interval 0.3)
echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
one() {  # label build [flags...]
  local label="$1" b="$2"; shift 2
  rm -f "$WORK/out.gpkg"
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$b/gdal_asyncdetect" -endpoint bench -input-bucket asd-bench \
    -q -tile-size 256 -overlap 32 "$@" data/scene_utm.tif "$WORK/out.gpkg"
  read -r wall user sys rss < "$WORK/time"
  printf "| %s | %s | %.1f | %.2f | %.0f |\n" "$label" "$b" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}
echo "| run | build | wall s | CPU s | peak RSS MB |"
echo "|---|---|---|---|---|"
for round in 1 2; do
  one "fixed 50-300 ms polling flags" "$BASE" "${FLAGS[@]}"
  one "fixed 50-300 ms polling flags" "$BUILD" "${FLAGS[@]}"
done
for round in 1 2; do
  one "no polling flag (defaults)" "$BASE"
  one "no polling flag (defaults)" "$BUILD"
done
echo "load after: $(uptime | sed 's/.*load average: //')"
