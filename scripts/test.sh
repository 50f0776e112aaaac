#!/usr/bin/env bash
# Every test of terrastat: the Rust workspace (all features), then the Python
# bindings (built with maturin into a virtual environment) with pytest.
#
#   ./scripts/test.sh
#
# Needs: a Rust toolchain, Python >= 3.9 with `venv`, network access to PyPI
# (maturin, pytest, pyarrow, geopandas, polars, duckdb, nbmake, matplotlib, tobler), and what the `gdal`/`proj` features need
# (libgdal-dev, cmake, libsqlite3-dev; see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo test --workspace --all-features

# The CLI the Python tests compare against.
cargo build --release -p terrastat-indicators
export TERRASTAT_BIN="$CARGO_TARGET_DIR/release/terrastat"

VENV="${TERRASTAT_VENV:-$CARGO_TARGET_DIR/venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check maturin pytest pyarrow geopandas polars duckdb nbmake matplotlib ipykernel tobler==0.13.0 exactextract==0.3.0 rasterio pyspark==4.0.1
"$VENV/bin/pip" install -q --disable-pip-version-check ./bindings/python
"$VENV/bin/python" -m pytest -q bindings/python/tests
# The docstring examples of the installed package.
(cd "$CARGO_TARGET_DIR" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules --pyargs terrastat)
# The example notebook, executed (nbmake) so that it never rots.
"$VENV/bin/python" -m pytest -q --nbmake bindings/python/examples
