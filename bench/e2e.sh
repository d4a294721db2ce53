#!/usr/bin/env bash
# End-to-end benchmark of gdal_asyncdetect (issue 7).
#
# The sample scene (3000 x 2000) tiled 7 x 10 times into a 20,000 x 20,000 px
# VRT mosaic (generated here, nothing large is written: the VRT only points
# at the sample), run through the local endpoint with the blobs model at a
# simulated latency of 200 ms and a capacity of 64 concurrent jobs, so the
# ideal end-to-end rate is capacity / latency = 320 tiles/s.  The same run is
# made twice, with enable_worker_optimization=true (timer-heap poller) and
# =false (the seed's thread-per-job baseline), side by side; peak RSS from
# /usr/bin/time.  Figures are printed and appended to bench/RESULTS.md.
#
#   bench/e2e.sh [BUILD_DIR]          (default: build)
#   ASD_BENCH_SIZE=8000 bench/e2e.sh  (a smaller square, for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
APP="$BUILD/gdal_asyncdetect"
SERVER="$BUILD/asyncdetect_endpoint"
SIZE="${ASD_BENCH_SIZE:-20000}"
LATENCY_MS=200
CAPACITY=64
TILE=512
OVERLAP=64
SCENE="$PWD/data/scene_utm.tif"
for f in "$APP" "$SERVER" "$SCENE"; do [ -e "$f" ] || { echo "bench: $f missing (build first)" >&2; exit 1; }; done

WORK="$(mktemp -d /tmp/asd-bench-e2e-XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# ---- The mosaic: one SimpleSource per copy of the scene.
SW=3000; SH=2000
NX=$(( (SIZE + SW - 1) / SW )); NY=$(( (SIZE + SH - 1) / SH ))
VRT="$WORK/mosaic.vrt"
{
  echo "<VRTDataset rasterXSize=\"$SIZE\" rasterYSize=\"$SIZE\">"
  echo "  <SRS>EPSG:32633</SRS>"
  echo "  <GeoTransform>448000.0, 0.5, 0.0, 5411000.0, 0.0, -0.5</GeoTransform>"
  for b in 1 2 3; do
    echo "  <VRTRasterBand dataType=\"Byte\" band=\"$b\">"
    for ((j = 0; j < NY; j++)); do
      for ((i = 0; i < NX; i++)); do
        echo "    <SimpleSource><SourceFilename relativeToVRT=\"0\">$SCENE</SourceFilename><SourceBand>$b</SourceBand>"
        echo "      <SrcRect xOff=\"0\" yOff=\"0\" xSize=\"$SW\" ySize=\"$SH\"/><DstRect xOff=\"$((i * SW))\" yOff=\"$((j * SH))\" xSize=\"$SW\" ySize=\"$SH\"/></SimpleSource>"
      done
    done
    echo "  </VRTRasterBand>"
  done
  echo "</VRTDataset>"
} >"$VRT"

# ---- The local endpoint: capacity 64 = 1 instance x 64 concurrent jobs.
"$SERVER" -port 0 -data-dir "$WORK/data" -bucket bench-input \
  -endpoint "bench,model=blobs,output=s3://bench-output/out,failure=s3://bench-output/fail,instances=1,concurrency=$CAPACITY,latency_ms=$LATENCY_MS" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 200); do URL="$(head -n 1 "$WORK/server.out" 2>/dev/null || true)"; [ -n "$URL" ] && break; sleep 0.05; done
[ -n "$URL" ] || { echo "bench: endpoint did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
export AWS_ENDPOINT_URL="$URL" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true

run() { # $1 = YES|NO (worker optimization)
  local out="$WORK/out_$1.gpkg" metrics="$WORK/metrics_$1.json"
  /usr/bin/time -v "$APP" -q -endpoint bench -input-bucket bench-input \
    -tile-size $TILE -overlap $OVERLAP -max-concurrent-jobs $CAPACITY \
    -submission-workers 8 -polling-workers 4 -polling-interval 0.05 -max-polling-interval 0.5 \
    -worker-optimization "$1" -encoder-threads 2 -metrics "$metrics" "$VRT" "$out" \
    2>"$WORK/time_$1.txt" || { echo "bench: run failed:"; cat "$WORK/time_$1.txt"; exit 1; } >&2
  python3 - "$metrics" "$WORK/time_$1.txt" "$1" <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
print(f"{sys.argv[3]}|{m['tiles']['planned']}|{m['tiles']['succeeded']}|{m['tiles']['failed']}|{m['elapsed_seconds']:.1f}|{m['tiles_per_second']:.1f}|{rss/1024:.0f}|{cpu:.1f}|{m['features']['kept']}")
PY
}

LOAD_BEFORE="$(uptime | sed 's/.*load average: //')"
R_YES="$(run YES)"
R_NO="$(run NO)"
LOAD_AFTER="$(uptime | sed 's/.*load average: //')"
IDEAL=$(( CAPACITY * 1000 / LATENCY_MS ))

table() {
  echo "| worker optimization | tiles | succeeded | failed | elapsed s | tiles/s | ideal tiles/s | peak RSS MiB | CPU s (app) | features kept |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in "$R_YES" "$R_NO"; do
    IFS='|' read -r opt n ok bad el tps rss cpu kept <<<"$r"
    echo "| $opt | $n | $ok | $bad | $el | $tps | $IDEAL | $rss | $cpu | $kept |"
  done
}
table
{
  echo
  echo "## gdal_asyncdetect end to end (app, issue 7)"
  echo
  echo "\`bench/e2e.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): ${SIZE} x ${SIZE} px VRT mosaic of data/scene_utm.tif, tiles ${TILE} px /"
  echo "overlap ${OVERLAP}, PNG tiles, blobs model, local endpoint latency ${LATENCY_MS} ms x capacity ${CAPACITY}"
  echo "(ideal = capacity / latency = ${IDEAL} tiles/s); app flags: -max-concurrent-jobs ${CAPACITY} -submission-workers 8"
  echo "-polling-workers 4 -polling-interval 0.05 -max-polling-interval 0.5 -encoder-threads 2."
  echo "Machine: $(nproc) cores shared with the other helpers and with the endpoint (which runs the model on the"
  echo "same cores); load average before ${LOAD_BEFORE}, after ${LOAD_AFTER}."
  echo
  table
} >>bench/RESULTS.md
echo "bench: figures appended to bench/RESULTS.md"
