#!/usr/bin/env bash
# Every test of terrastat: the Rust workspace (all features), then the Python
# bindings (built with maturin into a virtual environment) with pytest.
#
#   ./scripts/test.sh
#
# Needs: a Rust toolchain, Python >= 3.9 with `venv`, network access to PyPI
# (maturin, pytest, pyarrow, geopandas, polars, duckdb, nbmake, matplotlib, tobler).
# The system packages the `gdal`/`proj` features, PySpark and the docs test
# need (libgdal-dev, cmake, clang, Java, Chromium...) are installed first by
# scripts/setup.sh when missing (as root or through sudo); set
# TERRASTAT_SKIP_SETUP=1 to skip that step.
#
# Every cargo build is `--locked`: Cargo.lock and bindings/python/Cargo.lock
# must be up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

[ -n "${TERRASTAT_SKIP_SETUP:-}" ] || ./scripts/setup.sh

cargo test --workspace --all-features --locked

# The CLI the Python tests compare against.
cargo build --release --locked -p terrastat-cli
export TERRASTAT_BIN="$CARGO_TARGET_DIR/release/terrastat"

VENV="${TERRASTAT_VENV:-$CARGO_TARGET_DIR/venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check maturin pytest pyarrow geopandas polars duckdb nbmake matplotlib ipykernel tobler==0.13.0 exactextract==0.3.0 rasterio pyspark==4.0.1
# maturin passes MATURIN_PEP517_ARGS to its build: the extension is built
# from bindings/python/Cargo.lock as it stands, or not at all.
MATURIN_PEP517_ARGS="--locked" "$VENV/bin/pip" install -q --disable-pip-version-check ./bindings/python
"$VENV/bin/python" -m pytest -q bindings/python/tests
# The docstring examples of the installed package.
(cd "$CARGO_TARGET_DIR" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules --pyargs terrastat)
# The example notebook, executed (nbmake) so that it never rots.
"$VENV/bin/python" -m pytest -q --nbmake bindings/python/examples
