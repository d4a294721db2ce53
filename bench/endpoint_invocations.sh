#!/usr/bin/env bash
# Benchmark of the local endpoint's SageMaker async runtime:
#   1. async invocations completed per second with a zero-latency model
#      (centerpoint on a 64x64 PNG, latency_ms=0), target >= 1,000/s;
#   2. peak RSS of the server holding 10,000 queued invocations (an endpoint
#      scaled to zero instances, so nothing runs), target < 100 MB, next to
#      the RSS of the same server idle (the baseline);
#   3. the blobs model on 512x512 PNG tiles (60 objects each): model time
#      per tile (decode + labelling + GeoJSON, from the runtime's model_ms
#      percentiles) and completed invocations per second.
#
#   bench/endpoint_invocations.sh [BUILD_DIR] [COUNT] [CONCURRENCY]
#
# Requests are unsigned (-no-auth) so that the figure measures the runtime,
# not the client's signing.  Needs a built asyncdetect_endpoint, cc, libcurl
# and json-c development files, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
COUNT="${2:-20000}"
CONC="${3:-32}"
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$BIN" ] || { echo "endpoint_invocations: $BIN not built (scripts/setup.sh $BUILD)" >&2; exit 1; }

. bench/lib.sh
bench_init

cc -O2 -o "$WORK/client" bench/endpoint_invoke_client.c $(pkg-config --cflags --libs json-c libcurl)
python3 - "$WORK/tile.png" <<'PY'
import struct, sys, zlib
w = h = 64
raw = b"".join(b"\x00" + bytes((40 + (x * 7 + y * 13) % 90) for x in range(w) for _ in range(3)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                               + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
python3 - "$WORK/tile512.png" <<'PY'
import random, struct, sys, zlib
w = h = 512
random.seed(1)
img = [bytearray(bytes((40 + (x * 7 + y * 13) % 90 for x in range(w) for _ in range(3)))) for y in range(h)]
for _ in range(60):
    x0, y0, rw, rh = random.randrange(0, 480), random.randrange(0, 480), random.randrange(6, 30), random.randrange(6, 30)
    col = (230, 230, 230) if random.random() < 0.6 else (240, 110, 40)
    for y in range(y0, min(h, y0 + rh)):
        for x in range(x0, min(w, x0 + rw)):
            img[y][3 * x:3 * x + 3] = bytes(col)
raw = b"".join(b"\x00" + bytes(r) for r in img)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                               + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY

start_server() {  # args: endpoint spec
  bench_start_endpoint "$BIN" -no-auth -bucket inputs -endpoint "$1"
  curl -sf -X PUT --data-binary @"$WORK/tile.png" "$URL/inputs/tile.png" >/dev/null
  curl -sf -X PUT --data-binary @"$WORK/tile512.png" "$URL/inputs/tile512.png" >/dev/null
}
stop_server() { bench_stop_endpoint; }
rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

echo "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"

# 1. Throughput with a zero-latency model.
SPEC="bench,model=centerpoint,instances=1,concurrency=4,latency_ms=0,output=s3://results/out,failure=s3://results/fail"
start_server "$SPEC"
echo "server: $BIN -no-auth -endpoint \"$SPEC\""
echo "client: endpoint_invoke_client URL bench s3://inputs/tile.png $COUNT $CONC wait"
"$WORK/client" "$URL" bench s3://inputs/tile.png "$COUNT" "$CONC" wait | tee "$WORK/throughput.json"
echo "server peak RSS during the run: $(( $(rss_kb "$SERVER_PID" VmHWM) / 1024 )) MB"
stop_server

# 2. Peak RSS with 10,000 queued invocations (instances=0: nothing runs).
SPEC="queued,model=centerpoint,instances=0,output=s3://results/out,failure=s3://results/fail"
start_server "$SPEC"
IDLE=$(rss_kb "$SERVER_PID" VmRSS)
"$WORK/client" "$URL" queued s3://inputs/tile.png 10000 "$CONC" >"$WORK/queued.json"
DEPTH=$(curl -sf "$URL/_asd/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runtime"]["totals"]["queue_depth"])')
PEAK=$(rss_kb "$SERVER_PID" VmHWM)
echo "queued: $(cat "$WORK/queued.json")"
echo "queue depth: $DEPTH; server RSS idle (baseline): $((IDLE / 1024)) MB; peak RSS with $DEPTH queued: $((PEAK / 1024)) MB"
stop_server

# 3. The blobs model on 512x512 PNG tiles.
SPEC="blobs,model=blobs,instances=1,concurrency=2,latency_ms=0,output=s3://results/out,failure=s3://results/fail"
start_server "$SPEC"
echo "server: $BIN -no-auth -endpoint \"$SPEC\""
"$WORK/client" "$URL" blobs s3://inputs/tile512.png 2000 "$CONC" wait | tee "$WORK/blobs.json"
curl -sf "$URL/_asd/stats" | python3 -c 'import json,sys; e=json.load(sys.stdin)["runtime"]["endpoints"]["blobs"]; print("blobs 512x512 model_ms:", json.dumps(e["model_ms"]), "completed:", e["completed"], "failed:", e["failed"])'
stop_server
