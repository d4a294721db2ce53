#!/usr/bin/env bash
# Memory of the client for one hostile model result (issue 13): a model that
# answers a tile with 64 MiB of [0,0,0,...] (just under the default
# ASD_MAX_RESULT_BYTES).  Before, the worker pool parsed it into a full
# json-c tree to check its type and the sink parsed it again; now the text is
# handed on unparsed and features.c scans it, building one feature at a time.
# Reports gdal_asyncdetect's peak RSS (GNU time) for each build given, on the
# same input, in one run, and the tile's status and reason.
#
#   bench/result_cap.sh NEW_BUILD_DIR [BASELINE_BUILD_DIR] [MiB]
#
# A build dir needs gdal_asyncdetect and asyncdetect_endpoint.  The model is
# a python3 container on loopback behind the local endpoint's async runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW="${1:-build}"
BASE="${2:-}"
MIB="${3:-64}"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The model container: GET /ping, POST /invocations -> [0,0,...] of MIB MiB - 1 kB.
cat > "$WORK/model.py" <<'PY'
import http.server, sys
size = int(sys.argv[1]) * 1024 * 1024 - 1024
body = b"[0" + b",0" * ((size - 3) // 2) + b"]"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self): self.reply(b"{}")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.reply(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$WORK/model.py" "$MIB" > "$WORK/model.port" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/model.port" ] && break; sleep 0.1; done
MODEL_PORT=$(head -1 "$WORK/model.port")

run_one() {
  local build="$1" label="$2"
  mkdir -p "$WORK/data-$label"
  "$build/asyncdetect_endpoint" -port 0 -bucket cap-input -data-dir "$WORK/data-$label" \
    -endpoint "cap,model=http://127.0.0.1:$MODEL_PORT,output=s3://cap-output/results,failure=s3://cap-output/failures,instances=1" \
    > "$WORK/ep-$label.url" 2> "$WORK/ep-$label.err" &
  local ep=$!
  PIDS+=($ep)
  for _ in $(seq 100); do [ -s "$WORK/ep-$label.url" ] && break; sleep 0.1; done
  AWS_ENDPOINT_URL=$(head -1 "$WORK/ep-$label.url") AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY \
    AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 \
    /usr/bin/time -v "$build/gdal_asyncdetect" -endpoint cap -input-bucket cap-input -srcwin 0 0 512 512 \
      -tile-size 512 -overlap 0 -polling-interval 0.2 -max-wait-time 300 -q \
      data/scene_utm.tif "$WORK/out-$label.gpkg" > "$WORK/app-$label.out" 2> "$WORK/app-$label.err" || true
  kill "$ep" 2>/dev/null || true
  wait "$ep" 2>/dev/null || true
  local rss reason
  rss=$(grep "Maximum resident set size" "$WORK/app-$label.err" | awk '{print $NF}' || true)
  [ -n "$rss" ] || { echo "$label: gdal_asyncdetect did not run:" >&2; tail -3 "$WORK/app-$label.err" >&2; return 1; }
  reason=$(ogrinfo -q -ro "$WORK/out-$label.gpkg" -sql "SELECT status, reason FROM tiles" 2>/dev/null |
           grep -E "status|reason" | sed 's/^ *//' | tr '\n' ' ' || true)
  printf '%-9s peak RSS %7.1f MiB  %s\n' "$label" "$(echo "$rss / 1024" | bc -l)" "$reason"
}

echo "result: ${MIB} MiB - 1 kB of [0,0,...]; one 512x512 tile; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
[ -n "$BASE" ] && run_one "$BASE" baseline
run_one "$NEW" new
