#!/usr/bin/env bash
# Tile encodings and a shaped uplink (issue 15 part 3), against the local
# endpoint, with the utility itself (-metrics gives bytes and CPU per tile):
#   1. unshaped: bytes per tile and encoding CPU per tile for each tile
#      format and level (PNG ZLEVEL, JPEG QUALITY, WEBP QUALITY/LOSSLESS,
#      GTiff COMPRESS), 512 x 512 tiles of a 4096 x 4096 RGB texture;
#   2. the client's uplink shaped to RATE (50mbit) with tc on loopback, only
#      the traffic to the endpoint's port: tiles/s for PNG, JPEG and WEBP at
#      their default levels against RATE / bytes per tile (target: within
#      10 %), and the resource the run's summary says bounded it.  The shaped
#      runs read a 2 x 2 mosaic (VRT) of the texture, 8192 x 8192, in tiles
#      every 256 pixels (961 tiles): long enough that start-up and the last
#      tiles' drain weigh little even for JPEG at 70 tiles/s.
# Other loopback traffic is not shaped (HTB's direct queue); the qdisc is
# removed on exit, whatever happens.  Needs root, tc, a built
# gdal_asyncdetect and asyncdetect_endpoint, /usr/bin/python3 with GDAL and
# numpy (bench/texture_raster.py).
#
#   bench/uplink_tc.sh [BUILD_DIR] [RATE (50mbit)] [FORMATS ("PNG JPEG WEBP")]
#
# A FORMATS or TABLE item may carry creation options joined by "+", e.g.
# "WEBP:QUALITY=100+METHOD=0".  UNSHAPED=0 skips the unshaped table; TABLE="..."
# replaces its rows.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
RATE="${2:-50mbit}"
FORMATS="${3:-PNG JPEG WEBP}"
APP="$BUILD/gdal_asyncdetect"
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$APP" ] && [ -x "$BIN" ] || { echo "uplink_tc: build $BUILD first (scripts/setup.sh $BUILD)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "uplink_tc: tc needs root" >&2; exit 1; }
command -v tc >/dev/null || { echo "uplink_tc: tc (iproute2) is not installed" >&2; exit 1; }

. bench/lib.sh
SHAPED=""
bench_on_exit() { if [ -n "$SHAPED" ]; then tc qdisc del dev lo root 2>/dev/null || true; fi; }
bench_init

/usr/bin/python3 bench/texture_raster.py "$WORK/texture.tif" 4096
/usr/bin/python3 - "$WORK/texture.tif" "$WORK/mosaic.vrt" <<'PY'
import sys
from osgeo import gdal
src, out = sys.argv[1], sys.argv[2]
ds = gdal.Open(src)
n = ds.RasterXSize
gt = ds.GetGeoTransform()
bands = []
for b in range(1, 4):
    srcs = "".join(
        f"<SimpleSource><SourceFilename relativeToVRT='0'>{src}</SourceFilename><SourceBand>{b}</SourceBand>"
        f"<SrcRect xOff='0' yOff='0' xSize='{n}' ySize='{n}'/><DstRect xOff='{x}' yOff='{y}' xSize='{n}' ySize='{n}'/></SimpleSource>"
        for x in (0, n) for y in (0, n))
    bands.append(f"<VRTRasterBand dataType='Byte' band='{b}'>{srcs}</VRTRasterBand>")
open(out, "w").write(f"<VRTDataset rasterXSize='{2*n}' rasterYSize='{2*n}'><SRS>{ds.GetProjection()}</SRS>"
                     f"<GeoTransform>{', '.join(map(str, gt))}</GeoTransform>{''.join(bands)}</VRTDataset>")
PY

bench_start_endpoint "$BIN" -threads 8 -data-dir "$WORK/data" -bucket asd-bench \
  -endpoint "bench,model=centerpoint,output=s3://asd-out/r,failure=s3://asd-out/f,instances=1,concurrency=64"

tco() {  # "A=1+B=2" -> -tco A=1 -tco B=2
  local IFS=+ o
  for o in $1; do [ -n "$o" ] && printf -- '-tco\n%s\n' "$o"; done
}

run() {  # name, source, then extra options; writes $WORK/NAME.json
  local name="$1" src="$2"; shift 2
  rm -f "$WORK/out.gpkg"
  "$APP" -endpoint bench -input-bucket asd-bench -q -overwrite -metrics "$WORK/$name.json" "$@" \
    "$src" "$WORK/out.gpkg"
}

echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
echo "server: $BIN -endpoint bench,model=centerpoint,instances=1,concurrency=64 on $URL"
TABLE="${TABLE:-PNG:ZLEVEL=1 PNG:ZLEVEL=6 PNG:ZLEVEL=9 JPEG:QUALITY=50 JPEG:QUALITY=75 JPEG:QUALITY=90 \
WEBP:QUALITY=50 WEBP:QUALITY=75 WEBP:QUALITY=90 WEBP:LOSSLESS=YES GTiff:COMPRESS=NONE GTiff:COMPRESS=LZW \
GTiff:COMPRESS=DEFLATE WEBP:METHOD=0 WEBP:METHOD=1 WEBP:METHOD=2 WEBP:QUALITY=100+METHOD=0}"
if [ "${UNSHAPED:-1}" != 0 ]; then
for fl in $TABLE; do
  f=${fl%%:*}; co=${fl#*:}
  mapfile -t opts < <(tco "$co")
  echo "unshaped: gdal_asyncdetect -tile-size 512 -overlap 0 -tile-format $f ${opts[*]}; load $(bench_load)"
  run "t_${f}_${co}" "$WORK/texture.tif" -tile-size 512 -overlap 0 -tile-format "$f" "${opts[@]}"
done

/usr/bin/python3 - "$WORK" "$TABLE" <<'PY'
import json, sys
w, table = sys.argv[1], sys.argv[2].split()
print("| format | option | bytes/tile | encode CPU ms/tile |")
print("|---|---|---|---|")
for fl in table:
    f, co = fl.split(":", 1)
    d = json.load(open(f"{w}/t_{f}_{co}.json"))
    print(f"| {f} | {co} | {d['upload']['bytes_per_tile']:.0f} | {d['upload']['encode_cpu_ms_per_tile']:.1f} |")
PY
fi

# Shape only what goes to the endpoint's port (the client's uplink): HTB
# sends every unclassified loopback packet to its direct, unshaped queue.
tc qdisc add dev lo root handle 1: htb
SHAPED=1
tc class add dev lo parent 1: classid 1:10 htb rate "$RATE" ceil "$RATE" burst 256kb cburst 256kb
tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport "$PORT" 0xffff flowid 1:10
echo "shaped: tc qdisc add dev lo root handle 1: htb; class 1:10 htb rate $RATE; u32 match ip dport $PORT -> 1:10"
for fl in $FORMATS; do
  f=${fl%%:*}; co=""
  [ "$f" != "$fl" ] && co=${fl#*:}
  # Tiles every 256 pixels (overlap 256) over the 8192 x 8192 mosaic: 961 tiles.
  mapfile -t opts < <(tco "$co")
  echo "shaped: gdal_asyncdetect -tile-size 512 -overlap 256 -tile-format $f ${opts[*]}; load $(bench_load)"
  bench_load >"$WORK/s_$fl.load"
  run "s_$fl" "$WORK/mosaic.vrt" -tile-size 512 -overlap 256 -tile-format "$f" "${opts[@]}"
  echo "  through the shaped class so far: $(tc -s class show dev lo classid 1:10 | sed -n 2p)"
done
tc qdisc del dev lo root
SHAPED=""
echo "qdisc removed: $(tc qdisc show dev lo | head -1)"
echo "load after: $(uptime | sed 's/.*load average: //')"

/usr/bin/python3 - "$WORK" "$RATE" "$TABLE" "$FORMATS" <<'PY'
import json, re, sys
w, rate, table, formats = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
m = re.match(r"([\d.]+)([kmg]?)bit", rate)
bps = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)] / 8
print(f"| format (level) | bytes/tile | uplink {rate} / bytes per tile | measured tiles/s [load] | ratio | encode CPU ms/tile | tile on the wire | bound by (summary) |")
print("|---|---|---|---|---|---|---|---|")
for f in formats:
    d = json.load(open(f"{w}/s_{f}.json"))
    bpt = d["upload"]["bytes_per_tile"]
    ideal = bps / bpt
    load = open(f"{w}/s_{f}.load").read().strip()
    print(f"| {f} | {bpt:.0f} | {ideal:.2f} | {d['tiles_per_second']:.2f} [{load}] | {100*d['tiles_per_second']/ideal:.1f} % | "
          f"{d['upload']['encode_cpu_ms_per_tile']:.1f} | {100*d['upload'].get('link_busy_fraction', 0):.0f} % | "
          f"{d['bound']['resource']}: {d['bound']['detail']} |")
    e = d.get("engine", {})
    up = e.get("S3UploadDuration", {})
    enc = e.get("EncodeDuration", {})
    print(f"  figures for the classifier: elapsed {d['elapsed_seconds']:.3f} s, tiles {up.get('count')}, encode_seconds "
          f"{enc.get('sum', 0):.3f}, upload_seconds {up.get('sum', 0):.3f}, bytes {d['upload']['bytes']}, link busy "
          f"{d['upload'].get('link_busy_fraction')}, MB/s while sending {d['upload'].get('mb_per_s_while_sending')}",
          file=sys.stderr)
PY
