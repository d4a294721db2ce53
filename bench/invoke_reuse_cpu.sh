#!/usr/bin/env bash
# Client CPU per tile over HTTPS with InvokeEndpointAsync on kept-alive
# connections (this build) against a build that opens a new connection, and
# so pays a full TLS handshake, per invocation (BASE_BUILD, default main's
# /work/main/build), side by side in one run, for a sparse model
# ("centerpoint": one detection per tile) and a dense one ("blobs").
#
# Both builds run the same utility arguments against one local endpoint over
# HTTPS (this build's endpoint binary, whose stats page counts connections),
# with a one-certificate CA made here (AWS_CA_BUNDLE, so CA parsing is cheap
# for both and the figures show the handshake itself).  Tiles are 512 x 512
# uncompressed GTiff from a SIZE x SIZE texture.  Client CPU is user + sys of
# the utility process (/usr/bin/time), divided by the tiles it ran.  Runs
# alternate base/new REPEAT times per model so load drifts hit both alike;
# medians are reported with the connections the endpoint accepted per run
# and the 1-minute load average before and after.
#
#   bench/invoke_reuse_cpu.sh [BUILD (build)] [BASE_BUILD (/work/main/build)] [REPEAT (5)] [SIZE (4096)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD="${1:-build}"
BASE="${2:-/work/main/build}"
REPEAT="${3:-5}"
SIZE="${4:-4096}"
for b in "$BUILD" "$BASE"; do
  [ -x "$b/gdal_asyncdetect" ] || { echo "invoke_reuse_cpu: $b/gdal_asyncdetect is not built" >&2; exit 1; }
done
WORK=$(mktemp -d)
SRV=""
cleanup() {
  if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

source_of() { sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt"; }
# Copies of both builds, so a rebuild meanwhile cannot change what is measured.
for n in new base; do
  src="$BUILD"; [ "$n" = base ] && src="$BASE"
  mkdir -p "$WORK/$n"
  cp "$src/gdal_asyncdetect" "$WORK/$n/"
  cp -L "$src/libasyncdetect.so.0" "$WORK/$n/"
  echo "$n: $(git -C "$(source_of "$src")" log -1 --format='%h %s' | cut -c1-80)"
done
cp "$BUILD/asyncdetect_endpoint" "$WORK/endpoint"

/usr/bin/python3 bench/texture_raster.py "$WORK/texture.tif" "$SIZE"
bench_make_tls_ca "$WORK"

"$WORK/endpoint" -threads 4 -data-dir "$WORK/data" -bucket asd-bench -tls-cert "$WORK/srv.pem" -tls-key "$WORK/srv.key" \
  -endpoint "centerpoint,model=centerpoint,output=s3://asd-out/c,failure=s3://asd-out/cf,instances=1,concurrency=64" \
  -endpoint "blobs,model=blobs,output=s3://asd-out/b,failure=s3://asd-out/bf,instances=1,concurrency=64" \
  >"$WORK/ep.out" 2>"$WORK/ep.err" &
SRV=$!
for _ in $(seq 200); do [ -s "$WORK/ep.out" ] && break; sleep 0.05; done
URL=$(head -1 "$WORK/ep.out")
[ -n "$URL" ] || { echo "endpoint did not start: $(cat "$WORK/ep.err")" >&2; exit 1; }
stat_of() {  # key: a top-level counter of the endpoint's stats page
  curl -sf --cacert "$WORK/ca.pem" "$URL/_asd/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

run() {  # build model i
  local b="$1" m="$2" i="$3" c0
  rm -f "$WORK/out.gpkg"
  c0=$(stat_of connections)
  env LD_LIBRARY_PATH="$WORK/$b" AWS_ENDPOINT_URL="$URL" AWS_CA_BUNDLE="$WORK/ca.pem" CURL_CA_BUNDLE="$WORK/ca.pem" \
    AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1 \
    AWS_PROFILE= AWS_SESSION_TOKEN= \
    /usr/bin/time -f "%U %S %e" -o "$WORK/time.$b.$m.$i" \
    "$WORK/$b/gdal_asyncdetect" -metrics "$WORK/m.$b.$m.$i.json" -endpoint "$m" -input-bucket asd-bench -q -overwrite \
    -polling-interval 0.05 -max-polling-interval 0.2 -tile-size 512 -overlap 0 -tile-format GTiff \
    -tco COMPRESS=NONE "$WORK/texture.tif" "$WORK/out.gpkg"
  # Connections the run opened (the two stats requests' own excepted).
  echo $(($(stat_of connections) - c0 - 1)) >"$WORK/conn.$b.$m.$i"
}

echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
for i in $(seq "$REPEAT"); do
  for m in centerpoint blobs; do
    for b in base new; do run "$b" "$m" "$i"; done
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"

/usr/bin/python3 - "$WORK" "$REPEAT" <<'PY'
import json, statistics, sys
w, rep = sys.argv[1], int(sys.argv[2])
rows = {}
for m in ("centerpoint", "blobs"):
    for b in ("base", "new"):
        per_tile, conns, tiles = [], [], 0
        for i in range(1, rep + 1):
            u, sy, e = map(float, open(f"{w}/time.{b}.{m}.{i}").read().split()[:3])
            mj = json.load(open(f"{w}/m.{b}.{m}.{i}.json"))
            tiles = mj["tiles"]["succeeded"] if isinstance(mj.get("tiles"), dict) else mj["tiles_succeeded"]
            if not tiles:
                sys.exit(f"{b} {m}: no tile succeeded")
            per_tile.append(1000 * (u + sy) / tiles)
            conns.append(int(open(f"{w}/conn.{b}.{m}.{i}").read()))
        rows[(m, b)] = (tiles, statistics.median(per_tile), min(per_tile), max(per_tile), statistics.median(conns))
print("| model | build | tiles | connections per run | client CPU ms/tile (median) | min - max |")
print("|---|---|---|---|---|---|")
for (m, b), (t, med, lo, hi, c) in rows.items():
    print(f"| {m} | {b} | {t} | {c:.0f} | {med:.2f} | {lo:.2f} - {hi:.2f} |")
for m in ("centerpoint", "blobs"):
    d = rows[(m, "base")][1] - rows[(m, "new")][1]
    print(f"{m}: base - new = {d:.2f} ms per tile ({100 * d / rows[(m, 'base')][1]:.1f} % of base)")
PY
