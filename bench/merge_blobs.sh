#!/usr/bin/env bash
# Dense-scene parse + NMM merge benchmark (bench/merge_blobs_bench.c): the
# "blobs" model's results on a texture, parsed and merged by each build given,
# alternating, best of REPEATS per run; the outputs are compared geometry by
# geometry against the first build (bench/merge_compare.py).
#
#   bench/merge_blobs.sh RASTER "TILE/OVERLAP ..." REPEATS BUILD_DIR...
#   e.g. bench/merge_blobs.sh /tmp/texture.tif "512/0 512/64" 5 /work/main/build build
#
# RASTER: an RGB raster, e.g. from bench/texture_raster.py OUT.tif 4096.
set -euo pipefail
cd "$(dirname "$0")/.."
RASTER="$1"; GRIDS="$2"; REPS="$3"; shift 3
OUT="${MERGE_BLOBS_OUT:-$(mktemp -d)}"
i=0
for B in "$@"; do
  i=$((i + 1))
  # The driver is compiled against each build's own library and endpoint core.
  cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$OUT/mbb$i" bench/merge_blobs_bench.c \
    -Iplugin/include -Itiler/include -Iapps/endpoint -I/usr/include/gdal \
    "$B/libasyncdetect_endpoint_core.a" -L"$B" -Wl,-rpath,"$(cd "$B" && pwd)" -lasyncdetect -lgdal $(pkg-config --libs libmicrohttpd) -lcurl -ljson-c -lssl -lcrypto -lpthread -lm
done
echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
for g in $GRIDS; do
  for round in 1 2; do
    i=0
    for B in "$@"; do
      i=$((i + 1))
      echo "build=$B round=$round $("$OUT/mbb$i" "$RASTER" "${g%/*}" "${g#*/}" "$REPS" "$OUT/out$i-${g%/*}-${g#*/}.tsv")"
    done
  done
  i=0
  for B in "$@"; do
    i=$((i + 1))
    [ "$i" = 1 ] && continue
    /usr/bin/python3 bench/merge_compare.py "$OUT/out1-${g%/*}-${g#*/}.tsv" "$OUT/out$i-${g%/*}-${g#*/}.tsv"
  done
done
echo "# load after: $(uptime | sed 's/.*load average: //')"
