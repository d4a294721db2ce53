#!/usr/bin/env bash
# Client CPU per new HTTPS connection (bench/tls_resume_cpu.c: a HeadBucket
# on a connection of its own) against two local endpoints side by side in one
# run: BASE_BUILD's endpoint (default main's /work/main/build), which issues
# no TLS session tickets, and this build's, which does (apps/endpoint/
# tls_tickets.c), so every connection after the first resumes.  The client is
# this build's library in both cases; the CA is a one-certificate P-256 one
# made here.  Runs alternate REPEAT times; medians, with the server's own
# count of resumed handshakes and the 1-minute load average.
#
#   bench/tls_resume_cpu.sh [BUILD (build)] [BASE_BUILD (/work/main/build)] [REPEAT (5)] [N (300)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD="${1:-build}"
BASE="${2:-/work/main/build}"
REPEAT="${3:-5}"
N="${4:-300}"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
cp -L "$BUILD/libasyncdetect.so.0" "$WORK/"
cc -O2 -std=c11 -D_GNU_SOURCE -Iplugin/include -o "$WORK/client" bench/tls_resume_cpu.c -L"$WORK" -l:libasyncdetect.so.0
bench_make_tls_ca "$WORK"
declare -A URL
for n in base new; do
  bin="$BUILD/asyncdetect_endpoint"; [ "$n" = base ] && bin="$BASE/asyncdetect_endpoint"
  "$bin" -bucket bench -tls-cert "$WORK/srv.pem" -tls-key "$WORK/srv.key" >"$WORK/$n.out" 2>"$WORK/$n.err" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$WORK/$n.out" ] && break; sleep 0.05; done
  URL[$n]=$(head -1 "$WORK/$n.out")
  [ -n "${URL[$n]}" ] || { echo "endpoint $n did not start: $(cat "$WORK/$n.err")" >&2; exit 1; }
done
echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
for i in $(seq "$REPEAT"); do
  for n in base new; do
    env LD_LIBRARY_PATH="$WORK" AWS_ENDPOINT_URL="${URL[$n]}" AWS_CA_BUNDLE="$WORK/ca.pem" \
      AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 \
      AWS_PROFILE= AWS_SESSION_TOKEN= "$WORK/client" "$N" bench >"$WORK/r.$n.$i"
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
for n in base new; do
  resumed=$(curl -sf --cacert "$WORK/ca.pem" "${URL[$n]}/_asd/stats" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("tls_resumed", "n/a"))')
  /usr/bin/python3 - "$WORK" "$REPEAT" "$n" "$resumed" "$N" <<'PY'
import statistics, sys
w, rep, n, resumed, per = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
r = [list(map(float, open(f"{w}/r.{n}.{i}").read().split())) for i in range(1, rep + 1)]
ms = [x[0] for x in r]
print(f"{n}: client CPU per new connection {statistics.median(ms):.3f} ms (min {min(ms):.3f}, max {max(ms):.3f}); "
      f"{rep} x {per} connections, server counted {resumed} resumed")
PY
done
