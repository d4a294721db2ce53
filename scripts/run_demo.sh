#!/usr/bin/env bash
# The demo, once the build exists (scripts/demo.sh builds first, then runs
# this): start the local S3 + SageMaker-async endpoint with the `blobs`
# model on a free loopback port, point the standard AWS variables at it,
# detect the objects of the sample GeoTIFF with gdal_asyncdetect into a
# GeoPackage, print the summary and a short ogrinfo, and stop the endpoint
# whatever happens (trap on exit).
#
#   scripts/run_demo.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
APP="$BUILD/gdal_asyncdetect"
SERVER="$BUILD/asyncdetect_endpoint"
SCENE=data/scene_utm.tif
OUT_DIR="$BUILD/demo"
OUT="$OUT_DIR/detections.gpkg"

for f in "$APP" "$SERVER"; do
  [ -x "$f" ] || { echo "demo: $f is not built (run scripts/setup.sh build)" >&2; exit 1; }
done
[ -f "$SCENE" ] || { echo "demo: $SCENE is missing (sample data, see data/README.md)" >&2; exit 1; }

mkdir -p "$OUT_DIR"
rm -f "$OUT" "$OUT.asdjournal.gpkg"
WORK="$(mktemp -d /tmp/asd-demo-XXXXXX)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "== starting the local endpoint (model: blobs)"
"$SERVER" -port 0 -data-dir "$WORK/data" -bucket demo-input \
  -endpoint "demo-blobs,model=blobs,output=s3://demo-output/results,failure=s3://demo-output/failures,instances=1,concurrency=8" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 200); do
  URL="$(head -n 1 "$WORK/server.out" 2>/dev/null || true)"
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$URL" ]; then
  echo "demo: the local endpoint did not start:" >&2
  cat "$WORK/server.err" >&2
  exit 1
fi
echo "   listening on $URL"

# The same variables an AWS user sets; nothing else points at the server.
export AWS_ENDPOINT_URL="$URL"
export AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY
export AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws
export AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE || true

echo "== gdal_asyncdetect $SCENE -> $OUT"
set -x
"$APP" -endpoint demo-blobs -input-bucket demo-input \
  -polling-interval 0.2 -max-polling-interval 1 \
  -tile-size 512 -overlap 128 -metrics "$OUT_DIR/metrics.json" \
  "$SCENE" "$OUT"
{ set +x; } 2>/dev/null

echo "== ogrinfo -so $OUT detections"
ogrinfo -so "$OUT" detections | sed -n '/^Layer name/,/^Layer SRS/p'
echo "== the first detections"
ogrinfo -q "$OUT" -sql "SELECT class, ROUND(score, 3) AS score FROM detections LIMIT 5" | grep -E "class|score" | head -10
echo "== done: open $OUT in QGIS (layers detections and tiles)"
