#!/usr/bin/env bash
# Tiling + PNG encoding throughput of the tiler (asd_plan + asd_encoder)
# against the baseline a GDAL user would script: one
# `gdal_translate -of PNG -srcwin` per tile.
#
#   bench/tiling.sh            # 20000 x 20000 x 3 image, 512 px tiles, 64 px overlap
#   SIZE=8000 SAMPLE=20 bench/tiling.sh
#
# The image is generated here (not committed): data/scene_utm.tif
# (3000 x 2000, 3 bands) repeated in a VRT mosaic, written once as a tiled
# (256 x 256), uncompressed GeoTIFF in the work directory.  The baseline
# runs gdal_translate on SAMPLE tiles spread evenly over the same plan and
# is extrapolated to the whole plan; ours encodes every tile.  Both run in
# the same invocation, on the same file, after the file has been read once
# (so both see a warm page cache).  Peak RSS of ours comes from
# /usr/bin/time -v; GDAL's block cache is capped at GDAL_CACHEMAX (64 MB
# by default here), which together with the tiles in flight bounds memory.
#
# Environment: SIZE, TILE, OVERLAP, THREADS (default: nproc), SAMPLE,
# GDAL_CACHEMAX, BUILD_DIR (default build), ASD_BENCH_DIR (work dir, kept
# when given, else a temporary directory removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-20000}
TILE=${TILE:-512}
OVERLAP=${OVERLAP:-64}
THREADS=${THREADS:-$(nproc)}
SAMPLE=${SAMPLE:-40}
BUILD_DIR=${BUILD_DIR:-build}
export GDAL_CACHEMAX=${GDAL_CACHEMAX:-64}

if [ -n "${ASD_BENCH_DIR:-}" ]; then
  WORK=$ASD_BENCH_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/asd-tiling-bench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi

[ -f "$BUILD_DIR/libasyncdetect.so" ] || scripts/setup.sh "$BUILD_DIR"
cc -O2 -std=c11 -D_GNU_SOURCE bench/tiling_bench.c -Iplugin/include -Itiler/include \
  $(pkg-config --cflags gdal) -L"$BUILD_DIR" -Wl,-rpath,"$PWD/$BUILD_DIR" -lasyncdetect \
  $(pkg-config --libs gdal) -lpthread -o "$WORK/tiling_bench"

# --- the image -------------------------------------------------------------
IMG=$WORK/big_${SIZE}.tif
if [ ! -f "$IMG" ]; then
  SRC=$PWD/data/scene_utm.tif
  SW=3000 SH=2000
  NX=$(( (SIZE + SW - 1) / SW )) NY=$(( (SIZE + SH - 1) / SH ))
  {
    echo "<VRTDataset rasterXSize=\"$SIZE\" rasterYSize=\"$SIZE\">"
    echo "  <SRS>EPSG:32633</SRS><GeoTransform>448000, 0.5, 0, 5411000, 0, -0.5</GeoTransform>"
    for b in 1 2 3; do
      echo "  <VRTRasterBand dataType=\"Byte\" band=\"$b\">"
      for ((j = 0; j < NY; j++)); do
        for ((i = 0; i < NX; i++)); do
          echo "    <SimpleSource><SourceFilename relativeToVRT=\"0\">$SRC</SourceFilename><SourceBand>$b</SourceBand>"
          echo "      <SrcRect xOff=\"0\" yOff=\"0\" xSize=\"$SW\" ySize=\"$SH\"/><DstRect xOff=\"$((i * SW))\" yOff=\"$((j * SH))\" xSize=\"$SW\" ySize=\"$SH\"/></SimpleSource>"
        done
      done
      echo "  </VRTRasterBand>"
    done
    echo "</VRTDataset>"
  } > "$WORK/mosaic.vrt"
  echo "generating $IMG ($SIZE x $SIZE x 3, tiled GeoTIFF)..." >&2
  gdal_translate -q -co TILED=YES -co BLOCKXSIZE=256 -co BLOCKYSIZE=256 -co BIGTIFF=IF_NEEDED \
    --config GDAL_CACHEMAX 256 "$WORK/mosaic.vrt" "$IMG"
fi
cat "$IMG" > /dev/null  # warm the page cache for both contenders

# --- the plan (same grid as asd_plan: edge tiles shifted back inside) ------
STRIDE=$((TILE - OVERLAP))
if [ "$SIZE" -le "$TILE" ]; then N1=1; else N1=$(( (SIZE - TILE + STRIDE - 1) / STRIDE + 1 )); fi
NTILES=$((N1 * N1))
pos() { local p=$(( $1 * STRIDE )); [ $((p + TILE)) -gt "$SIZE" ] && p=$((SIZE - TILE)); echo "$p"; }

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')" >&2
echo "plan: $SIZE x $SIZE, tile $TILE, overlap $OVERLAP -> $NTILES tiles" >&2

# --- baseline: gdal_translate per tile, on a sample -------------------------
LOAD_BASE=$(uptime | sed 's/.*load average: //')
t0=$(date +%s.%N)
for ((k = 0; k < SAMPLE; k++)); do
  idx=$(( k * NTILES / SAMPLE ))
  x=$(pos $((idx % N1))) y=$(pos $((idx / N1)))
  gdal_translate -q -of PNG -srcwin "$x" "$y" "$TILE" "$TILE" "$IMG" "$WORK/base_$k.png"
  rm -f "$WORK/base_$k.png" "$WORK/base_$k.png.aux.xml"
done
t1=$(date +%s.%N)
BASE_TPS=$(echo "$SAMPLE / ($t1 - $t0)" | bc -l)
BASE_TOTAL=$(echo "$NTILES / $BASE_TPS" | bc -l)

# --- ours ---------------------------------------------------------------------
run_ours() {
  /usr/bin/time -v "$WORK/tiling_bench" "$IMG" "$TILE" "$OVERLAP" "$1" PNG > "$WORK/ours_$1.out" 2> "$WORK/ours_$1.time"
  cat "$WORK/ours_$1.out" >&2
}
LOAD_OURS=$(uptime | sed 's/.*load average: //')
run_ours 1
run_ours "$THREADS"
tps() { sed -n 's/.*tiles_per_second=\([0-9.]*\).*/\1/p' "$WORK/ours_$1.out"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/ours_$1.time"; }
OURS1=$(tps 1) OURSN=$(tps "$THREADS")

printf '\n| contender | tiles/s | %s tiles would take | peak RSS |\n|---|---|---|---|\n' "$NTILES"
printf '| baseline: gdal_translate -of PNG -srcwin per tile (%s sampled, sequential) | %.2f | %.0f s | - |\n' \
  "$SAMPLE" "$BASE_TPS" "$BASE_TOTAL"
printf '| asd_encoder, 1 thread | %.2f | %.1f s | %.1f MB |\n' "$OURS1" "$(echo "$NTILES / $OURS1" | bc -l)" \
  "$(echo "$(rss 1) / 1024" | bc -l)"
printf '| asd_encoder, %s threads | %.2f | %.1f s | %.1f MB |\n' "$THREADS" "$OURSN" \
  "$(echo "$NTILES / $OURSN" | bc -l)" "$(echo "$(rss "$THREADS") / 1024" | bc -l)"
printf '\nspeed-up vs baseline: %.1fx (1 thread), %.1fx (%s threads); load average before baseline: %s, before ours: %s\n' \
  "$(echo "$OURS1 / $BASE_TPS" | bc -l)" "$(echo "$OURSN / $BASE_TPS" | bc -l)" "$THREADS" "$LOAD_BASE" "$LOAD_OURS"
