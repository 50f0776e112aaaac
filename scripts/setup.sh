#!/usr/bin/env bash
# The system packages terrastat's tests need, installed if missing (Debian or
# Ubuntu, with apt-get): GDAL for the `gdal` feature; cmake, sqlite and clang
# to build PROJ for `proj`; Java 17 for PySpark (the terrastat.spark tests run
# Spark in local[2]); Chromium for the docs test (the HTML data dictionary).
#
#   ./scripts/setup.sh
#
# Run by ./scripts/test.sh and .ci/run. Quick when everything is present.
# Installs with apt-get as root, else through sudo; otherwise names the
# missing packages and exits with status 1. TERRASTAT_SKIP_SETUP=1 makes
# test.sh skip this script (packages installed another way).
set -euo pipefail

packages=(libgdal-dev cmake libsqlite3-dev sqlite3 pkg-config clang libclang-dev openjdk-17-jre-headless chromium)

if ! command -v dpkg >/dev/null 2>&1; then
  echo "setup: no dpkg (not Debian or Ubuntu?): install the equivalents of these packages," >&2
  echo "  ${packages[*]}" >&2
  echo "then run the tests with TERRASTAT_SKIP_SETUP=1 ./scripts/test.sh" >&2
  exit 1
fi

need=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "setup: missing packages, and neither root nor sudo to install them:" >&2
  echo "  as root: apt-get install ${need[*]}" >&2
  exit 1
fi

echo "setup: installing ${need[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
