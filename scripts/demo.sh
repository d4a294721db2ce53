#!/usr/bin/env bash
# The demo: set up, start the local endpoint with the blobs model, detect
# objects in the sample GeoTIFF with gdal_asyncdetect, write a GeoPackage,
# print the summary, stop the endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

if [ ! -x build/gdal_asyncdetect ] || [ ! -x build/asyncdetect_endpoint ]; then
  echo "demo: gdal_asyncdetect and the local endpoint are not built yet (see the open issues); the build itself succeeded." >&2
  exit 2
fi
exec bash scripts/run_demo.sh
