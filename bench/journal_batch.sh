#!/usr/bin/env bash
# Output transactions of gdal_asyncdetect (issue 7's known gap): detections in
# batches in the same GeoPackage connection as the journal, against one
# transaction per detection (what the utility did while the journal had its
# own connection to the output GeoPackage).
#
# A 4096 x 4096 image with a 6 x 6 px bright square every 16 px (65,536
# objects, generated here with gdal_create + gdal_rasterize) goes through the
# local endpoint's blobs model at zero latency, 1024 px tiles with 64 px
# overlap (25 tiles, 102,400 detections received, 65,536 kept), into a
# GeoPackage.  Runs alternate, REPEAT times each:
#   batched   the default (10,000 features or 5 s per transaction, and a
#             commit at each journal state change)
#   per-row   --config ASD_OUTPUT_BATCH_SIZE 1 (one transaction per detection)
# and, if BASELINE_APP names an older gdal_asyncdetect binary, that one too.
# Wall time and CPU from /usr/bin/time; the feature count of each output is
# checked.
#
#   bench/journal_batch.sh [BUILD_DIR]        (default: build)
#   REPEAT=3 BASELINE_APP=/path/to/old/gdal_asyncdetect bench/journal_batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
APP="$PWD/$BUILD/gdal_asyncdetect"
SERVER="$PWD/$BUILD/asyncdetect_endpoint"
REPEAT="${REPEAT:-2}"
for f in "$APP" "$SERVER"; do [ -x "$f" ] || { echo "bench: $f missing (build first)" >&2; exit 1; }; done

WORK="$(mktemp -d /tmp/asd-bench-batch-XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# ---- The image: squares burnt into a dark background (EPSG:4326, 1e-5 deg/px).
python3 - "$WORK/squares.geojson" <<'PY'
import json, sys
n, step, size, r = 4096, 16, 6, 1e-5
feats = []
for j in range(0, n, step):
    for i in range(0, n, step):
        x0, y0, d = 10 + (i + 5) * r, 50 - (j + 5) * r, size * r
        ring = [[x0, y0], [x0 + d, y0], [x0 + d, y0 - d], [x0, y0 - d], [x0, y0]]
        feats.append({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}})
json.dump({"type": "FeatureCollection", "features": feats}, open(sys.argv[1], "w"))
PY
IMG="$WORK/dense.tif"
gdal_create -q -of GTiff -outsize 4096 4096 -bands 3 -burn 40 -co TILED=YES -a_srs EPSG:4326 \
  -a_ullr 10 50 10.04096 49.95904 "$IMG"
gdal_rasterize -q -b 1 -b 2 -b 3 -burn 230 -burn 230 -burn 230 "$WORK/squares.geojson" "$IMG"

# ---- The local endpoint.
"$SERVER" -port 0 -data-dir "$WORK/data" -bucket bench-input \
  -endpoint "bench,model=blobs,output=s3://bench-output/out,failure=s3://bench-output/fail,instances=1,concurrency=8" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 200); do URL="$(head -n 1 "$WORK/server.out" 2>/dev/null || true)"; [ -n "$URL" ] && break; sleep 0.05; done
[ -n "$URL" ] || { echo "bench: endpoint did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
export AWS_ENDPOINT_URL="$URL" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true

run() { # $1 = label, $2 = binary, $3... = extra options
  local label="$1" bin="$2"; shift 2
  local out="$WORK/out_$label.gpkg"
  rm -f "$out"
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$bin" -q -endpoint bench -input-bucket bench-input \
    -tile-size 1024 -overlap 64 -polling-interval 0.05 -max-polling-interval 0.3 "$@" "$IMG" "$out" \
    || { echo "bench: $label run failed" >&2; exit 1; }
  local n; n="$(ogrinfo -q -sql 'SELECT COUNT(*) AS n FROM detections' "$out" | sed -n 's/.*n (Integer[^)]*) = //p')"
  read -r wall user sys rss <"$WORK/time"
  printf '%-10s wall %6.2f s  cpu %6.2f s  peak RSS %4d MiB  detections %s\n' "$label" "$wall" \
    "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$n"
}

echo "load: $(uptime)"
for ((k = 1; k <= REPEAT; k++)); do
  run batched "$APP"
  run per-row "$APP" --config ASD_OUTPUT_BATCH_SIZE 1
  [ -n "${BASELINE_APP:-}" ] && run baseline "$BASELINE_APP"
done
echo "load: $(uptime)"
