#!/usr/bin/env bash
# Installs every build and test dependency from Debian's archive, then
# configures and builds the project.  Idempotent: packages already present
# are not reinstalled, and `apt-get update` runs only when something is
# missing.  Used by both README commands and by CI.
#
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libgdal-dev gdal-bin libproj-dev proj-bin
  libcurl4-openssl-dev libssl-dev libjson-c-dev libgtest-dev libmicrohttpd-dev
  sqlite3 valgrind clang libclang-rt-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The conformance tests drive the AWS CLI and boto3.  The machine's python3
# usually has both; Debian's packages are the fallback.
if ! python3 -c 'import boto3' >/dev/null 2>&1; then missing+=(python3-boto3); fi
if ! command -v aws >/dev/null 2>&1; then missing+=(awscli); fi

# The QGIS Processing algorithm's tests run QGIS headless: Debian's python3
# with python3-qgis, and qgis_process (package qgis); about 810 MB installed.
for p in python3-qgis qgis; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

BUILD_DIR="${1:-build}"
shift || true
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
cmake --build "$BUILD_DIR" -j "$(nproc)" >&2
