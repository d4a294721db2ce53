#!/usr/bin/env bash
# Block-aligned reads against the previous per-window RasterIO path, side by
# side in one run, on the same 20,000 x 20,000 x 3 image stored two ways:
#   - tiled 512 x 512, DEFLATE;
#   - striped, DEFLATE, GDAL's default rows per strip (one row: 60 kB strips);
# each with a small GDAL block cache (GDAL_CACHEMAX=64 MB) and with the
# default (GDAL_CACHEMAX unset: the encoder caps GDAL's cache at 128 MB).
#
#   bench/tiling_blocks.sh                     # SIZE=20000 TILE=512 OVERLAP=128 THREADS=nproc
#   SIZE=6000 bench/tiling_blocks.sh           # a quicker look
#
# Every contender is bench/tiling_bench.c (asd_plan + one asd_encoder shared
# by THREADS threads, PNG payloads made and freed), with ASD_READ_MODE=window
# (one GDALDatasetRasterIO per tile, GDAL's block cache shared by
# neighbours: the path before block reads) or ASD_READ_MODE=blocks (each
# native block read once, tiles cut in memory).  The file is opened through
# a counting VSI handler (ASD_BENCH_COUNT_IO=1), so "file MB read" and
# "file reads" are what GDAL fetched from disk, the same measure for both
# paths: each fetch of a compressed block is followed by its decode.  Peak
# RSS from /usr/bin/time -v.  The image is generated here (not committed):
# data/scene_utm.tif repeated in a VRT mosaic, written once per layout.
#
# Environment: SIZE, TILE, OVERLAP, THREADS, BUILD_DIR (default build),
# ASD_BENCH_DIR (work dir, kept when given, else a temporary directory
# removed at the end), LAYOUTS (default "tiled striped"), CACHES (default
# "64 default").
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-20000}
TILE=${TILE:-512}
OVERLAP=${OVERLAP:-128}
THREADS=${THREADS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-build}
LAYOUTS=${LAYOUTS:-"tiled striped"}
CACHES=${CACHES:-"64 default"}
unset GDAL_CACHEMAX ASD_READ_MODE ASD_BLOCK_CACHEMAX

if [ -n "${ASD_BENCH_DIR:-}" ]; then
  WORK=$ASD_BENCH_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/asd-tiling-blocks.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi

[ -f "$BUILD_DIR/libasyncdetect.so" ] || scripts/setup.sh "$BUILD_DIR"
cc -O2 -std=c11 -D_GNU_SOURCE bench/tiling_bench.c -Iplugin/include -Itiler/include \
  $(pkg-config --cflags gdal) -L"$BUILD_DIR" -Wl,-rpath,"$PWD/$BUILD_DIR" -lasyncdetect \
  $(pkg-config --libs gdal) -lpthread -o "$WORK/tiling_bench"

# --- the images ---------------------------------------------------------------
MOSAIC=$WORK/mosaic_${SIZE}.vrt
if [ ! -f "$MOSAIC" ]; then
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
  } > "$MOSAIC"
fi
image() {
  local layout=$1 img=$WORK/big_${SIZE}_$1.tif
  if [ ! -f "$img" ]; then
    local co=(-co COMPRESS=DEFLATE -co BIGTIFF=IF_NEEDED)
    if [ "$layout" = tiled ]; then co+=(-co TILED=YES -co BLOCKXSIZE=512 -co BLOCKYSIZE=512); fi
    echo "generating $img ($SIZE x $SIZE x 3, $layout, DEFLATE)..." >&2
    gdal_translate -q -of GTiff "${co[@]}" --config GDAL_CACHEMAX 256 "$MOSAIC" "$img.part"
    mv "$img.part" "$img"
  fi
  echo "$img"
}

STRIDE=$((TILE - OVERLAP))
if [ "$SIZE" -le "$TILE" ]; then N1=1; else N1=$(( (SIZE - TILE + STRIDE - 1) / STRIDE + 1 )); fi
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')" >&2
echo "plan: $SIZE x $SIZE, tile $TILE, overlap $OVERLAP -> $((N1 * N1)) tiles, $THREADS threads" >&2

field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" "$1"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

ROWS=()
for layout in $LAYOUTS; do
  IMG=$(image "$layout")
  FILE_MB=$(echo "$(stat -c %s "$IMG") / 1048576" | bc -l)
  cat "$IMG" > /dev/null  # warm the page cache for every contender
  for cache in $CACHES; do
    for mode in window blocks; do
      tag=${layout}_${cache}_${mode}
      LOAD=$(uptime | sed 's/.*load average: //; s/,.*//')
      if [ "$cache" = default ]; then
        env -u GDAL_CACHEMAX ASD_READ_MODE=$mode ASD_BENCH_COUNT_IO=1 /usr/bin/time -v \
          "$WORK/tiling_bench" "$IMG" "$TILE" "$OVERLAP" "$THREADS" PNG > "$WORK/$tag.out" 2> "$WORK/$tag.time"
      else
        GDAL_CACHEMAX=$cache ASD_READ_MODE=$mode ASD_BENCH_COUNT_IO=1 /usr/bin/time -v \
          "$WORK/tiling_bench" "$IMG" "$TILE" "$OVERLAP" "$THREADS" PNG > "$WORK/$tag.out" 2> "$WORK/$tag.time"
      fi
      echo "$tag load=$LOAD $(cat "$WORK/$tag.out")" >&2
      o=$WORK/$tag.out
      if [ "$mode" = blocks ]; then
        dec="$(field "$o" blocks_read) blocks ($(field "$o" block)), $(field "$o" blocks_reread) again"
      else
        dec="$(field "$o" window_reads) windows"
      fi
      ROWS+=("$(printf '| %s (%.1f MB on disk) | %s | %s | %.2f | %.1f MB | %s | %.0f MB (%.2f× the file) | %s | %s |' \
        "$layout" "$FILE_MB" "$cache" "$mode" "$(field "$o" tiles_per_second)" \
        "$(echo "$(rss "$WORK/$tag.time") / 1024" | bc -l)" "$dec" \
        "$(field "$o" file_mb_read)" "$(echo "$(field "$o" file_mb_read) / $FILE_MB" | bc -l)" \
        "$(field "$o" file_reads)" "$LOAD")")
    done
  done
done

printf '\n| image | GDAL_CACHEMAX | read path | tiles/s | peak RSS | source reads | fetched from the file | file reads | load |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
printf '%s\n' "${ROWS[@]}"
echo "machine at the end: $(uptime | sed 's/.*load/load/')"
