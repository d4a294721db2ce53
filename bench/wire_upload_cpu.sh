#!/usr/bin/env bash
# Client CPU per tile and per uploaded MB, over HTTPS and HTTP (issue 12
# part 4), for uncompressed GTiff 512 x 512 RGB tiles (768 KiB each), side by
# side in one run: the build under test and a baseline build, each against
# the same local endpoint binary (the one under test: old endpoints have no
# TLS), one server over HTTP and one over HTTPS (a CA made here, given as
# AWS_CA_BUNDLE and, for old builds, which only read GDAL's name for it, as
# CURL_CA_BUNDLE).
#
# The baseline of issue 12 is main at 2d28b95 (the build it was filed at).
# Its utility has no -tco and always made DEFLATE GeoTIFF tiles, so it is
# built with bench/wire_base_2d28b95.patch applied (one line: the GTiff
# COMPRESS default read from ASD_BENCH_GTIFF_COMPRESS), which this script
# sets to NONE; nothing on its upload path changes:
#   git worktree add /work/wt5/base-2d28b95 2d28b95
#   (cd /work/wt5/base-2d28b95 && git apply "$OLDPWD"/bench/wire_base_2d28b95.patch &&
#    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2 --target gdal_asyncdetect)
# A build whose utility knows -tco gets "-tco COMPRESS=NONE" instead.  Every
# run's uploaded bytes are read from the endpoint's own counter
# (/_asd/stats bytes_in), so a baseline that did not make uncompressed tiles
# shows up as ~0.3 MB per tile instead of 0.79 and the script stops.
#
# What differs on the wire (by default; see the RESULTS.md section):
#   HTTP:  both builds sign the body's SHA-256 (x-amz-content-sha256);
#   HTTPS: 2d28b95: UNSIGNED-PAYLOAD, nothing computed over the body;
#          today:   UNSIGNED-PAYLOAD + x-amz-checksum-crc32c.
# Client CPU is user + sys of the process (/usr/bin/time), everything it
# does (read, encode, upload, invoke, poll, parse, write), divided by the
# tiles it ran and by the MB it uploaded.  Runs alternate (base/new,
# http/https) REPEAT times so load drifts hit all four alike; the median is
# reported, with the 1-minute load average before and after.
#
# Two measures, each median of REPEAT:
#   - PutObject alone (bench/wire_put_cpu.c, compiled against each build's
#     own headers): PUTS bodies of 786432 bytes on one warm connection,
#     process CPU around the loop: the wire's cost per MB;
#   - the whole utility on a SIZE x SIZE texture, 512 x 512 GTiff tiles.
# WIRE_PERF=DIR also records one PutObject run and one utility run per
# build and scheme under `perf record -g` into DIR (outside the timed runs).
#
# The scene decides how much of the utility's CPU is not about bytes at all:
# MODEL=blobs (the default) answers ~110 detections per 512 x 512 tile of the
# texture, so merging and parsing them weigh as much as the upload;
# MODEL=centerpoint answers one per tile, leaving the per-tile work (read,
# encode, upload, invoke, poll, journal).  SOURCE_COMPRESS (DEFLATE by
# default, or NONE) is the texture's own compression: decoding a DEFLATE
# source is a per-byte cost the two builds share.
#
#   [MODEL=blobs|centerpoint] [SOURCE_COMPRESS=DEFLATE|NONE] \
#   bench/wire_upload_cpu.sh [BUILD (build)] [BASE_BUILD (/work/main/build)] [REPEAT (5)] [SIZE (4096)] [PUTS (200)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD="${1:-build}"
BASE="${2:-/work/main/build}"
REPEAT="${3:-5}"
SIZE="${4:-4096}"
PUTS="${5:-200}"
MODEL="${MODEL:-blobs}"
SOURCE_COMPRESS="${SOURCE_COMPRESS:-DEFLATE}"
case "$MODEL" in blobs|centerpoint) ;; *) echo "wire_upload_cpu: MODEL must be blobs or centerpoint" >&2; exit 1 ;; esac
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

# The source tree a build was configured from (for its headers).
source_of() { sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt"; }

# Copies of both builds' utility and library, so a rebuild meanwhile cannot
# change what is measured (RUNPATH gives way to LD_LIBRARY_PATH), and the
# PutObject loop compiled against each one's headers (struct sizes differ).
declare -A TCO
for n in new base; do
  src="$BUILD"; [ "$n" = base ] && src="$BASE"
  mkdir -p "$WORK/$n"
  cp "$src/gdal_asyncdetect" "$WORK/$n/"
  cp -L "$src/libasyncdetect.so.0" "$WORK/$n/"
  cc -O2 -std=c11 -D_GNU_SOURCE -I"$(source_of "$src")/plugin/include" -o "$WORK/$n/put" bench/wire_put_cpu.c \
    -L"$WORK/$n" -l:libasyncdetect.so.0
  usage=$("$WORK/$n/gdal_asyncdetect" --help 2>&1 || true)
  case "$usage" in *-tco*) TCO[$n]="-tco COMPRESS=NONE" ;; *) TCO[$n]="" ;; esac
  echo "$n: $(git -C "$(source_of "$src")" log -1 --format='%h %s' | cut -c1-70)$( [ -z "${TCO[$n]}" ] && echo ' (tiles: ASD_BENCH_GTIFF_COMPRESS=NONE)')"
done

/usr/bin/python3 bench/texture_raster.py "$WORK/texture.tif" "$SIZE" "$SOURCE_COMPRESS"

# A CA and a server certificate for 127.0.0.1.
bench_make_tls_ca "$WORK"

start_server() {  # name, extra args...
  local name="$1"; shift
  "$BIN" -threads 4 -data-dir "$WORK/data-$name" -bucket asd-bench \
    -endpoint "bench,model=$MODEL,output=s3://asd-out/r,failure=s3://asd-out/f,instances=1,concurrency=64" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$WORK/$name.out" ] && break; sleep 0.05; done
  head -1 "$WORK/$name.out"
}
URL_http=$(start_server http)
URL_https=$(start_server https -tls-cert "$WORK/srv.pem" -tls-key "$WORK/srv.key")
[ -n "$URL_http" ] && [ -n "$URL_https" ] || { echo "servers did not start: $(cat "$WORK"/*.err)" >&2; exit 1; }
url_of() { [ "$1" = http ] && echo "$URL_http" || echo "$URL_https"; }
# Bytes the server has received so far (request bodies), from its stats page.
bytes_in() {
  curl -sf --cacert "$WORK/ca.pem" "$(url_of "$1")/_asd/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_in"])'
}
aws_env() {  # build scheme: the environment of a client run
  echo LD_LIBRARY_PATH="$WORK/$1" AWS_ENDPOINT_URL="$(url_of "$2")" AWS_CA_BUNDLE="$WORK/ca.pem" \
    CURL_CA_BUNDLE="$WORK/ca.pem" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY \
    AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 AWS_PROFILE= AWS_SESSION_TOKEN= \
    ASD_BENCH_GTIFF_COMPRESS=NONE
}
utility_args() {  # build
  # shellcheck disable=SC2086
  echo -endpoint bench -input-bucket asd-bench -q -overwrite -polling-interval 0.05 -max-polling-interval 0.2 \
    -tile-size 512 -overlap 0 -tile-format GTiff ${TCO[$1]} "$WORK/texture.tif" "$WORK/out.gpkg"
}

run() {  # build scheme i
  local b="$1" s="$2" i="$3" b0
  rm -f "$WORK/out.gpkg"
  b0=$(bytes_in "$s")
  # shellcheck disable=SC2046
  env $(aws_env "$b" "$s") /usr/bin/time -f "%U %S %e" -o "$WORK/time.$b.$s.$i" \
    "$WORK/$b/gdal_asyncdetect" -metrics "$WORK/m.$b.$s.$i.json" $(utility_args "$b")
  echo $(($(bytes_in "$s") - b0)) >"$WORK/bytes.$b.$s.$i"
}

put() {  # build scheme i
  # shellcheck disable=SC2046
  env $(aws_env "$1" "$2") "$WORK/$1/put" "$PUTS" 786432 >"$WORK/put.$1.$2.$3"
}

if [ -n "${WIRE_PERF:-}" ]; then
  mkdir -p "$WIRE_PERF"
  for b in base new; do
    for s in http https; do
      # shellcheck disable=SC2046
      env $(aws_env "$b" "$s") perf record -q -g -o "$WIRE_PERF/put.$b.$s.data" "$WORK/$b/put" "$PUTS" 786432 >/dev/null
      rm -f "$WORK/out.gpkg"
      # shellcheck disable=SC2046
      env $(aws_env "$b" "$s") perf record -q -g -o "$WIRE_PERF/utility.$b.$s.data" \
        "$WORK/$b/gdal_asyncdetect" $(utility_args "$b")
    done
  done
  echo "perf data in $WIRE_PERF (perf report -i FILE --no-children --sort dso,sym)"
fi

echo "scene: ${SIZE}x${SIZE} texture ($SOURCE_COMPRESS), model $MODEL"
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
        per_tile, per_mb, tiles, mbs = [], [], 0, []
        for i in range(1, rep + 1):
            u, sy, e = map(float, open(f"{w}/time.{b}.{s}.{i}").read().split()[:3])
            m = json.load(open(f"{w}/m.{b}.{s}.{i}.json"))
            tiles = m["tiles"]["succeeded"] if isinstance(m.get("tiles"), dict) else m["tiles_succeeded"]
            mb = int(open(f"{w}/bytes.{b}.{s}.{i}").read()) / 1e6
            if not tiles or mb / tiles < 0.7:
                sys.exit(f"{b} {s}: {tiles} tiles, {mb:.1f} MB uploaded: not uncompressed 512x512 RGB tiles "
                         "(a baseline without -tco needs bench/wire_base_2d28b95.patch)")
            per_tile.append(1000 * (u + sy) / tiles)
            per_mb.append(1000 * (u + sy) / mb)
            mbs.append(mb)
        puts = [list(map(float, open(f"{w}/put.{b}.{s}.{i}").read().split())) for i in range(1, rep + 1)]
        rows[(b, s)] = (statistics.median(per_tile), statistics.median(per_mb), tiles, statistics.median(mbs),
                        statistics.median(p[0] for p in puts), statistics.median(p[1] for p in puts))
print("| build | scheme | PutObject CPU ms per 768 KiB body | PutObject CPU ms/MB | utility: tiles | MB | "
      "client CPU ms/tile | client CPU ms/MB |")
print("|---|---|---|---|---|---|---|---|")
for (b, s), (pt, pm, t, mb, pp, ppm) in rows.items():
    print(f"| {b} | {s} | {pp:.3f} | {ppm:.3f} | {t} | {mb:.1f} | {pt:.2f} | {pm:.2f} |")
for s in ("http", "https"):
    print(f"{s}: base / new, PutObject CPU per MB = {rows[('base', s)][5] / rows[('new', s)][5]:.2f}x, "
          f"utility CPU per MB = {rows[('base', s)][1] / rows[('new', s)][1]:.2f}x")
print(f"base HTTP / new HTTPS: PutObject {rows[('base','http')][5] / rows[('new','https')][5]:.2f}x, "
      f"utility {rows[('base','http')][1] / rows[('new','https')][1]:.2f}x")
PY
