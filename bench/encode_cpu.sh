#!/usr/bin/env bash
# CPU per tile of reading + encoding, two builds side by side in one run.
#
#   bench/encode_cpu.sh BASE_BUILD NEW_BUILD IMAGE [FORMAT[:OPT=V+OPT=V]...]
#   bench/encode_cpu.sh /work/main/build build /tmp/texture.tif GTiff:COMPRESS=NONE PNG JPEG WEBP
#
# Compiles bench/tiling_bench.c against each build's library, then for each
# format runs both, alternating, RUNS times (default 3) on one encoder
# thread: tiles of TILE (512) with OVERLAP (256, so that a 4096² image gives
# 225 tiles), and prints the process CPU per tile (user + system, from the
# encoder's creation to the last tile; start-up excluded) and the mean
# payload size of each run, with the 1-minute load average before and after.
# CPU time rather than wall time: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?base build dir}
NEW=${2:?new build dir}
IMAGE=${3:?image}
shift 3
FORMATS=("$@")
[ ${#FORMATS[@]} -gt 0 ] || FORMATS=(GTiff:COMPRESS=NONE)
RUNS=${RUNS:-3}
TILE=${TILE:-512}
OVERLAP=${OVERLAP:-256}
WORK=$(mktemp -d /tmp/asd-encode-cpu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

for side in base new; do
  dir=$BASE
  [ $side = new ] && dir=$NEW
  dir=$(cd "$dir" && pwd)
  cc -O2 -std=c11 -D_GNU_SOURCE bench/tiling_bench.c -Iplugin/include -Itiler/include $(pkg-config --cflags gdal) \
    -L"$dir" -Wl,-rpath,"$dir" -lasyncdetect $(pkg-config --libs gdal) -lpthread -o "$WORK/tb_$side"
done

load() { uptime | sed 's/.*load average: \([^,]*\).*/\1/'; }
echo "image $IMAGE, tile $TILE, overlap $OVERLAP, 1 encoder thread, $RUNS runs each; load before: $(load)"
printf '| format | build | CPU ms/tile (runs) | median | bytes/tile |\n|---|---|---|---|---|\n'
for f in "${FORMATS[@]}"; do
  fmt=${f%%:*}
  opts=()
  [ "$f" != "$fmt" ] && IFS=+ read -r -a opts <<< "${f#*:}"
  declare -A cpus=() bytes=()
  for ((r = 0; r < RUNS; r++)); do
    for side in base new; do
      line=$("$WORK/tb_$side" "$IMAGE" "$TILE" "$OVERLAP" 1 "$fmt" ${opts[@]+"${opts[@]}"})
      cpus[$side]+="$(sed -n 's/.*cpu_ms_per_tile=\([0-9.]*\).*/\1/p' <<< "$line") "
      bytes[$side]=$(sed -n 's/.*mean_payload_bytes=\([0-9]*\).*/\1/p' <<< "$line")
    done
  done
  for side in base new; do
    med=$(tr ' ' '\n' <<< "${cpus[$side]}" | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
    printf '| %s | %s | %s| %s | %s |\n' "$f" "$side" "${cpus[$side]}" "$med" "${bytes[$side]}"
  done
  unset cpus bytes
done
echo "load after: $(load)"
