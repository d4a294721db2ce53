#!/usr/bin/env bash
# Client CPU per engine job through plugin/aws (PUT tile + InvokeEndpointAsync
# + 3 HEAD + GET), against the local endpoint with SigV4 checking on, next to
# the baseline of a fresh context per job (no connection/handle/key reuse).
#
#   bench/aws_client_cpu.sh [BUILD_DIR] [JOBS] [TILE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
JOBS="${2:-1000}"
TILE="${3:-262144}"
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$BIN" ] || { echo "aws_client_cpu: $BIN not built (scripts/setup.sh $BUILD)" >&2; exit 1; }
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cc -O2 -std=c11 -D_GNU_SOURCE -Iplugin/include -o "$WORK/client" bench/aws_client_cpu.c \
  -L"$BUILD" -lasyncdetect -Wl,-rpath,"$(cd "$BUILD" && pwd)"
"$BIN" -bucket bench-in \
  -endpoint "bench,model=centerpoint,output=s3://bench-out/out,failure=s3://bench-out/fail,instances=1,concurrency=2" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 200); do URL=$(head -1 "$WORK/server.out" 2>/dev/null || true); [ -n "$URL" ] && break; sleep 0.05; done
[ -n "$URL" ] || { echo "server did not start: $(cat "$WORK/server.err")" >&2; exit 1; }
export AWS_ENDPOINT_URL="$URL" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"
"$WORK/client" reuse "$JOBS" "$TILE"
"$WORK/client" fresh "$JOBS" "$TILE"
"$WORK/client" sign "$JOBS" "$TILE"
