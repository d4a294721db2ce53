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
. bench/lib.sh
bench_init
cc -O2 -std=c11 -D_GNU_SOURCE -Iplugin/include -o "$WORK/client" bench/aws_client_cpu.c \
  -L"$BUILD" -lasyncdetect -Wl,-rpath,"$(cd "$BUILD" && pwd)"
bench_start_endpoint "$BIN" -bucket bench-in \
  -endpoint "bench,model=centerpoint,output=s3://bench-out/out,failure=s3://bench-out/fail,instances=1,concurrency=2"
echo "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"
"$WORK/client" reuse "$JOBS" "$TILE"
"$WORK/client" fresh "$JOBS" "$TILE"
"$WORK/client" sign "$JOBS" "$TILE"
