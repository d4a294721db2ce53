#!/usr/bin/env bash
# Client CPU per tile and per uploaded MB, over HTTPS and HTTP (issue 12
# part 4), for uncompressed GTiff 512 x 512 RGB tiles (768 KiB each), side by
# side in one run: the build under test and a baseline build (default: the
# main checkout's), each against the same local endpoint binary (the one
# under test: the baseline's has no TLS), one server over HTTP and one over
# HTTPS (a CA made here, given as AWS_CA_BUNDLE and, for the baseline, which
# does not read AWS_CA_BUNDLE, as CURL_CA_BUNDLE).
#
# What differs on the wire:
#   HTTP:  the body's SHA-256 is signed (x-amz-content-sha256), both builds;
#   HTTPS: baseline: UNSIGNED-PAYLOAD, no checksum;
#          this build: UNSIGNED-PAYLOAD + x-amz-checksum-crc32c (SSE4.2 crc32 instruction).
# Client CPU is user + sys of the gdal_asyncdetect process (/usr/bin/time),
# everything it does (read, encode, upload, invoke, poll, parse), divided by
# the tiles it ran and by the MB it uploaded.  Runs alternate (base/new,
# http/https) REPEAT times so load drifts hit all four alike; the median is
# reported.  The machine is shared: expect noise.
#
# Two measures, each median of REPEAT:
#   - PutObject alone (bench/wire_put_cpu.c): PUTS bodies of 786432 bytes on
#     one warm connection, process CPU around the loop: the wire's cost per MB;
#   - the whole utility on a SIZE x SIZE texture, 512 x 512 GTiff tiles.
#
#   bench/wire_upload_cpu.sh [BUILD (build)] [BASE_BUILD (/work/main/build)] [REPEAT (5)] [SIZE (4096)] [PUTS (200)]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
BASE="${2:-/work/main/build}"
REPEAT="${3:-5}"
SIZE="${4:-4096}"
PUTS="${5:-200}"
for b in "$BUILD" "$BASE"; do
  [ -x "$b/gdal_asyncdetect" ] || { echo "wire_upload_cpu: $b/gdal_asyncdetect is not built" >&2; exit 1; }
done
BIN="$BUILD/asyncdetect_endpoint"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Copies of both builds' utility and library, so a rebuild meanwhile cannot
# change what is measured (RUNPATH gives way to LD_LIBRARY_PATH).
for n in new base; do
  src="$BUILD"; [ "$n" = base ] && src="$BASE"
  mkdir -p "$WORK/$n"
  cp "$src/gdal_asyncdetect" "$WORK/$n/"
  cp -L "$src/libasyncdetect.so.0" "$WORK/$n/"
done

/usr/bin/python3 bench/texture_raster.py "$WORK/texture.tif" "$SIZE"

# A CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -days 1 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/srv.key" -out "$WORK/srv.csr" \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\n" >"$WORK/ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/srv.pem" -days 1 -extfile "$WORK/ext" 2>/dev/null

start_server() {  # name, extra args...
  local name="$1"; shift
  "$BIN" -threads 4 -data-dir "$WORK/data-$name" -bucket asd-bench \
    -endpoint "bench,model=blobs,output=s3://asd-out/r,failure=s3://asd-out/f,instances=1,concurrency=64" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$WORK/$name.out" ] && break; sleep 0.05; done
  head -1 "$WORK/$name.out"
}
URL_http=$(start_server http)
URL_https=$(start_server https -tls-cert "$WORK/srv.pem" -tls-key "$WORK/srv.key")
[ -n "$URL_http" ] && [ -n "$URL_https" ] || { echo "servers did not start: $(cat "$WORK"/*.err)" >&2; exit 1; }

run() {  # build scheme i
  local b="$1" s="$2" i="$3" url
  url=$([ "$s" = http ] && echo "$URL_http" || echo "$URL_https")
  rm -f "$WORK/out.gpkg"
  env LD_LIBRARY_PATH="$WORK/$b" AWS_ENDPOINT_URL="$url" AWS_CA_BUNDLE="$WORK/ca.pem" CURL_CA_BUNDLE="$WORK/ca.pem" \
    AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 \
    AWS_PROFILE= AWS_SESSION_TOKEN= \
    /usr/bin/time -f "%U %S %e" -o "$WORK/time.$b.$s.$i" \
    "$WORK/$b/gdal_asyncdetect" -endpoint bench -input-bucket asd-bench -q -overwrite \
    -polling-interval 0.05 -max-polling-interval 0.2 -metrics "$WORK/m.$b.$s.$i.json" \
    -tile-size 512 -overlap 0 -tile-format GTiff -tco COMPRESS=NONE "$WORK/texture.tif" "$WORK/out.gpkg"
}

# The PUT path alone (bench/wire_put_cpu.c), compiled once, run on either library.
cc -O2 -std=c11 -D_GNU_SOURCE -Iplugin/include -o "$WORK/put" bench/wire_put_cpu.c -L"$WORK/new" -l:libasyncdetect.so.0
put() {  # build scheme i
  local b="$1" s="$2" i="$3" url
  url=$([ "$s" = http ] && echo "$URL_http" || echo "$URL_https")
  env LD_LIBRARY_PATH="$WORK/$b" AWS_ENDPOINT_URL="$url" AWS_CA_BUNDLE="$WORK/ca.pem" CURL_CA_BUNDLE="$WORK/ca.pem" \
    AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 \
    AWS_PROFILE= AWS_SESSION_TOKEN= "$WORK/put" "$PUTS" 786432 >"$WORK/put.$b.$s.$i"
}

echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
echo "crc32c: $(grep -q sse4_2 /proc/cpuinfo && echo 'sse4.2 (crc32 instruction)' || echo table)"
for i in $(seq "$REPEAT"); do
  for b in base new; do
    for s in http https; do put "$b" "$s" "$i"; run "$b" "$s" "$i"; done
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"

/usr/bin/python3 - "$WORK" "$REPEAT" <<'PY'
import json, statistics, sys
w, rep = sys.argv[1], int(sys.argv[2])
rows = {}
for b in ("base", "new"):
    for s in ("http", "https"):
        per_tile, per_mb, tiles, mb = [], [], 0, 0
        for i in range(1, rep + 1):
            u, sy, e = map(float, open(f"{w}/time.{b}.{s}.{i}").read().split()[:3])
            m = json.load(open(f"{w}/m.{b}.{s}.{i}.json"))
            tiles = m["tiles"]["succeeded"] if isinstance(m.get("tiles"), dict) else m["tiles_succeeded"]
            mb = m["upload"]["bytes"] / 1e6
            per_tile.append(1000 * (u + sy) / tiles)
            per_mb.append(1000 * (u + sy) / mb)
        puts = [list(map(float, open(f"{w}/put.{b}.{s}.{i}").read().split())) for i in range(1, rep + 1)]
        rows[(b, s)] = (statistics.median(per_tile), statistics.median(per_mb), tiles, mb,
                        statistics.median(p[0] for p in puts), statistics.median(p[1] for p in puts))
print("| build | scheme | PutObject CPU ms per 768 KiB body | PutObject CPU ms/MB | utility: tiles | MB | "
      "client CPU ms/tile | client CPU ms/MB |")
print("|---|---|---|---|---|---|---|---|")
for (b, s), (pt, pm, t, mb, pp, ppm) in rows.items():
    print(f"| {b} | {s} | {pp:.3f} | {ppm:.3f} | {t} | {mb:.1f} | {pt:.2f} | {pm:.2f} |")
for b in ("base", "new"):
    print(f"{b}: PutObject CPU per MB, HTTP / HTTPS = {rows[(b,'http')][5] / rows[(b,'https')][5]:.2f}")
for b in ("base", "new"):
    print(f"{b}: HTTPS / HTTP CPU per MB = {rows[(b,'https')][1] / rows[(b,'http')][1]:.2f}")
print(f"PutObject CPU per MB, base HTTP / new HTTPS = {rows[('base','http')][5] / rows[('new','https')][5]:.2f}")
PY
