#!/usr/bin/env bash
# Many small scenes: one run over the whole set (SRC1 ... SRCN DST) side by
# side with one run per scene, the same endpoint, the same options.  Each
# scene is 1024 x 1024 (a crop of the sample scene, 15 different crops
# cycled), tiled 512 / overlap 64 (9 tiles a scene).  The endpoint runs the
# blobs model with LATENCY_MS per invocation and SLOTS in parallel.
#
# Figures per mode: wall time, tiles/s, and the endpoint's idle fraction:
# the share of samples of /_asd/stats (20 a second, taken by a poller for the
# whole of the mode) in which the endpoint had no invocation queued or in
# flight.  One process per scene pays its start (credentials, preflight, the
# pool) and drains its pool to zero at its end, so the endpoint idles at
# every scene boundary; one run for the set keeps it fed.
#
#   bench/many_images.sh [N_SCENES (200)] [BUILD_DIR (build)] [LATENCY_MS (500)] [SLOTS (16)]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
BUILD="${2:-build}"
LATENCY="${3:-500}"
SLOTS="${4:-16}"
APP="$BUILD/gdal_asyncdetect"
BIN="$BUILD/asyncdetect_endpoint"
for x in "$APP" "$BIN"; do [ -x "$x" ] || { echo "many_images: $x not built" >&2; exit 1; }; done
. bench/lib.sh
POLLER_PID=""
bench_on_exit() {
  if [ -n "$POLLER_PID" ]; then kill "$POLLER_PID" 2>/dev/null || true; wait "$POLLER_PID" 2>/dev/null || true; fi
}
bench_init

# The scenes.
mkdir -p "$WORK/scenes"
i=0
while [ "$i" -lt "$N" ]; do
  c=$((i % 15))
  x=$(( (c % 5) * 488 )); y=$(( (c / 5) * 488 ))
  gdal_translate -q -srcwin "$x" "$y" 1024 1024 -co TILED=YES data/scene_utm.tif "$WORK/scenes/s$(printf %04d "$i").tif"
  i=$((i + 1))
done
ls "$WORK"/scenes/*.tif > "$WORK/list.txt"

bench_start_endpoint "$BIN" -threads 8 -data-dir "$WORK/data" -bucket asd-bench \
  -endpoint "bench,model=blobs,output=s3://asd-out/r,failure=s3://asd-out/f,instances=1,concurrency=$SLOTS,latency_ms=$LATENCY"

# The idle poller: counts samples until the stop file appears.
cat > "$WORK/poll.py" <<'EOF'
import json, os, sys, time, urllib.request
url, stop, out = sys.argv[1] + "/_asd/stats", sys.argv[2], sys.argv[3]
samples = idle = 0
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            ep = json.load(r)["runtime"]["endpoints"]["bench"]
        samples += 1
        if ep["in_flight"] == 0 and ep["queue_depth"] == 0:
            idle += 1
    except Exception:
        pass
    time.sleep(0.05)
with open(out, "w") as f:
    f.write("%d %d\n" % (samples, idle))
EOF

OPTS=(-endpoint bench -input-bucket asd-bench -q -tile-size 512 -overlap 64)
echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
echo "$N scenes of 1024 x 1024 (9 tiles each), endpoint: blobs, ${LATENCY} ms, $SLOTS slots"
echo "| mode | wall s | tiles/s | endpoint idle | processes |"
echo "|---|---|---|---|---|"
measure() {  # label command...
  local label="$1"; shift
  rm -f "$WORK/stop" "$WORK/idle"
  python3 "$WORK/poll.py" "$URL" "$WORK/stop" "$WORK/idle" &
  POLLER_PID=$!
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  touch "$WORK/stop"
  wait "$POLLER_PID"
  POLLER_PID=""
  read -r samples idle < "$WORK/idle"
  local wall
  wall=$(echo "$t1 - $t0" | bc)
  printf "| %s | %.1f | %.1f | %.1f %% (%d of %d samples) | %s |\n" "$label" "$wall" \
    "$(echo "$N * 9 / $wall" | bc -l)" "$(echo "100 * $idle / $samples" | bc -l)" "$idle" "$samples" "$PROCS"
}
one_run() { "$APP" "${OPTS[@]}" -input_file_list "$WORK/list.txt" "$WORK/set.gpkg"; }
per_scene() {
  for s in "$WORK"/scenes/*.tif; do
    rm -f "$WORK/one.gpkg"
    "$APP" "${OPTS[@]}" "$s" "$WORK/one.gpkg"
  done
}
PROCS=1; measure "one run, -input_file_list" one_run
PROCS=$N; measure "one run per scene" per_scene
echo "load after: $(uptime | sed 's/.*load average: //')"
