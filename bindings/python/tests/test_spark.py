"""terrastat.spark in local[2] mode against the single-machine run (issue 6).

Runs when PySpark and a Java runtime are installed (CI installs both); the
skip says why otherwise.
"""

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark", allow_module_level=True)

import terrastat  # noqa: E402
import terrastat.spark  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples" / "idf92"

SPEC = """
crs = "EPSG:2154"
[layers.buildings]
path = "{d}/buildings.parquet"
[layers.flood]
path = "{d}/flood.parquet"
[layers.vegetation]
path = "{d}/vegetation.parquet"
[zones.communes]
path = "{d}/communes.parquet"
id = "insee"
rollup = ["dep"]
[zones.hex8]
h3 = 8
cover = "communes"
[[indicators]]
name = "n"
kind = "count"
layer = "buildings"
[[indicators]]
name = "n_touch"
kind = "count"
layer = "buildings"
assign = "intersects"
[[indicators]]
name = "floor"
kind = "sum"
layer = "buildings"
column = "floor_area"
filter = "year < 1975"
[[indicators]]
name = "ext"
kind = "extensive"
layer = "buildings"
column = "floor_area"
[[indicators]]
name = "h_mean"
kind = "mean"
layer = "buildings"
column = "height"
[[indicators]]
name = "h_max"
kind = "max"
layer = "buildings"
column = "height"
[[indicators]]
name = "dens"
kind = "density"
layer = "buildings"
[[indicators]]
name = "flood"
kind = "share_within"
layer = "buildings"
other = "flood"
[[indicators]]
name = "energy"
kind = "category_share"
layer = "buildings"
column = "energy_class"
[[indicators]]
name = "veg"
kind = "coverage"
layer = "vegetation"
[[indicators]]
name = "floor_per_km2"
kind = "ratio"
expr = "floor / dens"
"""


@pytest.fixture(scope="module")
def spark():
    import sys

    from pyspark.sql import SparkSession

    # Workers run this interpreter (with terrastat and pyarrow installed).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("terrastat-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    yield s
    s.stop()


def _compare(a: pa.Table, b: pa.Table):
    """Equal column by column, floats bit for bit (NaN equal to NaN)."""
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        assert x.type == y.type, name
        if pa.types.is_floating(x.type):
            for k, (u, v) in enumerate(zip(x.to_pylist(), y.to_pylist())):
                same = u == v or (u is not None and v is not None and u != u and v != v)
                assert same, (name, k, u, v)
        else:
            assert x.equals(y), name


@pytest.mark.parametrize("split_above", [10**9, 500])
def test_spark_equals_the_single_machine_run(tmp_path, spark, split_above):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(d=SAMPLES))
    single = terrastat.run(str(spec))
    b = spark.read.parquet(str(SAMPLES / "buildings.parquet"))
    f = spark.read.parquet(str(SAMPLES / "flood.parquet"))
    # Small keys (res 7) so that the sample spreads over many groups; with
    # split_above=500 the dense keys are split further (res 9).
    res = terrastat.spark.run(
        spark,
        spec,
        {"buildings": b, "flood": f},
        key_res=7,
        split_above=split_above,
        fine_res=9,
    )
    assert set(res) == set(single)
    # With split_above=500, dense res-7 keys were split into res-9 keys.
    assert (res.spark["split_keys"] > 0) == (split_above == 500), res.spark
    for zones in single:
        _compare(res[zones], single[zones])
        # The quality records too: feature counts per zone and indicator,
        # completeness and coverage (the layer's extent) of the streamed layer.
        _compare(res.quality[zones], single.quality[zones])
    assert pc.sum(res.quality["communes"]["n_features"]).as_py() > 0
    # Counts are exact, and real: every building once over the communes.
    assert pc.sum(res["communes"]["n"]).as_py() == 16000
    # The catalog says where the streamed layer's partials came from.
    roles = {f["role"]: f for f in res.catalog["inputs"]}
    assert roles["layers.buildings"]["sha256"] == "distributed"


def test_spark_refuses_what_cannot_be_spread(tmp_path, spark):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.format(d=SAMPLES)
        + '[[indicators]]\nname = "h_med"\nkind = "median"\nlayer = "buildings"\ncolumn = "height"\n'
    )
    b = spark.read.parquet(str(SAMPLES / "buildings.parquet"))
    f = spark.read.parquet(str(SAMPLES / "flood.parquet"))
    with pytest.raises(ValueError, match="h_med"):
        terrastat.spark.run(spark, spec, {"buildings": b, "flood": f})
