#!/usr/bin/env bash
# S3 throughput of the local endpoint: HEAD and 64 KiB PUT with 64 concurrent
# keep-alive clients.
#
#   bench/endpoint_s3.sh [BUILD_DIR] [SECONDS]
#
# Two clients, side by side in the same run:
#   - wrk (apt-get install wrk) against a server started with -no-auth,
#     since wrk cannot sign requests: the raw HTTP + store cost;
#   - bench/endpoint_s3_load.c (libcurl multi, 64 easy handles, every
#     request SigV4-signed by the project's signer) against a server with
#     signing on: what an SDK client sees, verification included.
# The load client shares the 2 cores with the server, so figures are a lower
# bound of what the server can do.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
SECS="${2:-10}"
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$BIN" ] || { echo "build first: scripts/setup.sh $BUILD" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

WORK=$(mktemp -d /tmp/asd-bench-s3-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cc -O2 -std=c11 -D_GNU_SOURCE bench/endpoint_s3_load.c -I plugin/include -L "$BUILD" -lasyncdetect -lcurl \
  -Wl,-rpath,"$(cd "$BUILD" && pwd)" -o "$WORK/load"

start_server() {  # args...; sets URL
  "$BIN" -port 0 -data-dir "$WORK/data$#" -bucket bench "$@" >"$WORK/url" 2>"$WORK/server.log" &
  PIDS+=($!)
  SPID=$!
  for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
  URL=$(head -1 "$WORK/url")
  : >"$WORK/url"
}

# Server CPU time (user+sys, in clock ticks) from /proc, to report the
# server's own cost per request independently of the client's speed.
ticks() { awk '{print $14+$15}' "/proc/$SPID/stat"; }
HZ=$(getconf CLK_TCK)
measure() {  # label, command...: runs the command, prints its output + server CPU per request
  local label=$1; shift
  local t0 t1 out n
  t0=$(ticks)
  out=$("$@")
  t1=$(ticks)
  echo "$out" | sed "s/^/$label /"
  n=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p; s/^ *\([0-9]*\) requests in.*/\1/p' | head -1)
  if [ -n "$n" ] && [ "$n" -gt 0 ]; then
    echo "$label server CPU: $(( (t1 - t0) * 1000000 / HZ / n )) us/request ($(( t1 - t0 )) ticks for $n requests)"
  fi
}

head -c 65536 /dev/zero | tr '\0' 'x' >"$WORK/body64k"
cat >"$WORK/head.lua" <<'LUA'
wrk.method = "HEAD"
LUA
cat >"$WORK/put.lua" <<LUA
wrk.method = "PUT"
local f = io.open("$WORK/body64k", "rb"); wrk.body = f:read("*a"); f:close()
LUA

echo "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"
echo "threads: server -threads 4 (libmicrohttpd epoll pool); clients: 64 keep-alive connections; ${SECS}s each"

start_server -no-auth -threads 4
# wrk waits for a body after HEAD when Content-Length > 0 (it does not know
# HEAD responses have none), so wrk HEADs an empty object; the HEAD cost
# does not depend on the object size (metadata comes from the in-memory index).
curl -s -X PUT --data-binary "" "$URL/bench/empty" >/dev/null
echo "--- wrk, -no-auth (unsigned)"
measure "wrk HEAD    " sh -c "wrk -t2 -c64 -d${SECS}s -s $WORK/head.lua $URL/bench/empty | grep -E 'Requests/sec|Latency|Non-2xx|requests in'"
measure "wrk PUT64KiB" sh -c "wrk -t2 -c64 -d${SECS}s -s $WORK/put.lua $URL/bench/put-target | grep -E 'Requests/sec|Latency|Non-2xx|requests in'"

start_server -threads 4
echo "--- endpoint_s3_load (libcurl multi), SigV4 signed and verified"
"$WORK/load" "$URL/bench/put-seed" PUT 1 1 65536 1 >/dev/null
measure "curl HEAD   " "$WORK/load" "$URL/bench/put-seed" HEAD 64 "$SECS" 0 1
measure "curl PUT64KiB" "$WORK/load" "$URL/bench/put-target" PUT 64 "$SECS" 65536 1
echo "--- endpoint_s3_load, unsigned against a -no-auth server (same client, baseline for the signing cost)"
start_server -no-auth -threads 4
"$WORK/load" "$URL/bench/put-seed" PUT 1 1 65536 0 >/dev/null
measure "curl HEAD   " "$WORK/load" "$URL/bench/put-seed" HEAD 64 "$SECS" 0 0
measure "curl PUT64KiB" "$WORK/load" "$URL/bench/put-target" PUT 64 "$SECS" 65536 0
echo "load after: $(uptime | sed 's/.*load average: //')"
