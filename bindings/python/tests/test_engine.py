"""The Engine: layers from Arrow data (pyarrow, GeoPandas' to_arrow) or
files give the same numbers as the spec file run on the same data."""

import pathlib

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pyarrow.parquet as pq
import pytest

import terrastat

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "data/samples/idf92"


def engine(buildings, communes) -> terrastat.Engine:
    eng = terrastat.Engine(crs="EPSG:2154")
    eng.add_layer("buildings", buildings)
    eng.add_zones("communes", communes, id="insee")
    eng.add_indicator(name="n_buildings", kind="count", layer="buildings", assign="centroid")
    eng.add_indicator(name="floor_sum", kind="sum", layer="buildings", column="floor_area")
    eng.add_indicator(name="floor_ext", kind="extensive", layer="buildings", column="floor_area")
    eng.add_indicator(name="old", kind="count", layer="buildings", filter="year < 1975")
    return eng


@pytest.fixture(scope="module")
def reference():
    full = terrastat.run(SAMPLE / "indicators.toml")["communes"]
    return full.select(["insee", "n_buildings", "floor_sum", "floor_ext"])


def check(res, reference):
    t = res["communes"].select(["insee", "n_buildings", "floor_sum", "floor_ext"])
    assert t.equals(reference.cast(t.schema))


def test_engine_from_files(reference):
    res = engine(SAMPLE / "buildings.parquet", SAMPLE / "communes.parquet").compute()
    check(res, reference)


def test_engine_from_geopandas_to_arrow(reference):
    b = gpd.read_parquet(SAMPLE / "buildings.parquet")
    c = gpd.read_parquet(SAMPLE / "communes.parquet")
    res = engine(b.to_arrow(), c.to_arrow()).compute()
    check(res, reference)
    inputs = {f["role"]: f for f in res.catalog["inputs"]}
    assert inputs["layers.buildings"]["path"] == "memory:buildings"
    assert inputs["layers.buildings"]["report"]["kept"] == 16000


def test_engine_from_pyarrow_wkb_with_crs(reference):
    # A plain pyarrow table: WKB column named `geometry`, no CRS metadata.
    b = pq.read_table(SAMPLE / "buildings.parquet")
    plain = pa.table({n: b[n] for n in b.column_names})  # drops the `geo` metadata
    eng = engine(plain, SAMPLE / "communes.parquet")
    with pytest.raises(terrastat.CrsError, match="memory:buildings"):
        eng.compute()
    eng.add_layer("buildings", plain, crs="EPSG:2154")
    check(eng.compute(), reference)


def test_engine_builds_the_spec_its_toml_text_says(tmp_path):
    # compute() hands the parts to the Rust builder; spec_text() writes the
    # same spec as TOML: both give the same table, new kinds included.
    eng = engine(SAMPLE / "buildings.parquet", SAMPLE / "communes.parquet")
    eng.add_indicator(name="h_q90", kind="quantile", layer="buildings", column="height", q=0.9)
    eng.add_indicator(name="h_med", kind="median", layer="buildings", column="height")
    eng.add_indicator(name="h_q50", kind="quantile", layer="buildings", column="height", q=0.5)
    built = eng.compute()["communes"]
    spec = tmp_path / "spec.toml"
    spec.write_text(eng.spec_text())
    assert built.equals(terrastat.run(spec)["communes"])
    assert built["h_q50"].equals(built["h_med"])
    eng.add_indicator(name="bad_q", kind="quantile", layer="buildings", column="height", q=2)
    with pytest.raises(terrastat.SpecError, match="key `q`"):
        eng.compute()


def test_engine_errors_name_the_key():
    eng = terrastat.Engine()
    eng.add_zones("communes", SAMPLE / "communes.parquet", id="insee")
    eng.add_indicator(name="n", kind="count", layer="nope")
    with pytest.raises(terrastat.SpecError, match="nope"):
        eng.compute()
    with pytest.raises(TypeError):
        eng.add_layer("x", 42)


def test_engine_from_polars_and_duckdb_and_back(reference):
    import duckdb
    import polars as pl

    b = pl.read_parquet(SAMPLE / "buildings.parquet")  # WKB as Binary, no CRS
    res = engine(b, SAMPLE / "communes.parquet")
    res.add_layer("buildings", b, crs="EPSG:2154")
    out = res.compute()
    check(out, reference)
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{SAMPLE / 'buildings.parquet'}')")
    res.add_layer("buildings", rel, crs="EPSG:2154")
    check(res.compute(), reference)
    # Results read back without copies by polars and DuckDB.
    df = pl.from_arrow(out["communes"])
    assert df.height == 36
    t = out["communes"]
    assert duckdb.sql("SELECT sum(n_buildings) AS s FROM t").fetchall()[0][0] == pa.compute.sum(
        reference["n_buildings"]
    ).as_py()
    assert df["n_buildings"].sum() == pa.compute.sum(reference["n_buildings"]).as_py()


def test_engine_rasters_to_h3_and_zones(tmp_path):
    """add_raster: zonal statistics on H3 cells covering the raster (raster
    -> H3) and on a grid, with a progress callback; a bad band is an InputError."""
    olinda = pathlib.Path(__file__).resolve().parents[3] / "data/samples/olinda"
    seen = []
    eng = (
        terrastat.Engine(crs="EPSG:31985")
        .add_raster("ndvi", olinda / "ndvi.tif")
        .add_zones("hex8", h3=8, cover="ndvi", mode="intersects")
        .add_indicator(name="ndvi_mean", kind="zonal", raster="ndvi", stat="mean")
        .add_indicator(name="green", kind="zonal", raster="ndvi", stat="coverage", where="value > 0.5")
    )
    out = eng.compute(progress=lambda stage, done, total: seen.append(stage)).to_pandas("hex8")
    assert len(out) > 100 and {"h3", "h3_str", "ndvi_mean", "green"} <= set(out.columns)
    inside = out["ndvi_mean"].notna()
    assert inside.sum() > 100
    assert ((out["green"][inside] >= 0) & (out["green"][inside] <= 1)).all()
    assert any(s.startswith("zonal") for s in seen)
    # Raster -> H3 directly: every cell meeting the raster's extent, cells at
    # its edge partly covered (fewer valid pixels than a whole cell).
    n = eng.add_indicator(name="n", kind="zonal", raster="ndvi", stat="count").compute().to_pandas("hex8")["n"]
    assert n.max() > 3 * n[n > 0].min()
    bad = terrastat.Engine(crs="EPSG:31985").add_raster("r", olinda / "ndvi.tif", band=2)
    bad = bad.add_zones("g", grid=1000, extent="r").add_indicator(name="m", kind="zonal", raster="r", stat="mean")
    with pytest.raises(terrastat.InputError, match="no band 2"):
        bad.compute()


def test_raster_info_and_raster_to_h3():
    olinda = pathlib.Path(__file__).resolve().parents[3] / "data/samples/olinda"
    info = terrastat.raster_info(olinda / "l7_b34.tif", band=2)
    assert (info["width"], info["height"], info["crs"], info["data_type"]) == (349, 352, "EPSG:31985", "UInt8")
    assert info["transform"][1] == pytest.approx(28.5) and info["transform"][5] == pytest.approx(-28.5)
    with pytest.raises(terrastat.InputError, match="no band 3"):
        terrastat.raster_info(olinda / "l7_b34.tif", band=3)
    t = terrastat.raster_to_h3(olinda / "ndvi.tif", 8, stats=["mean", "count", "max"])
    assert t.column_names == ["h3", "h3_str", "mean", "count", "max"]
    # The same cells and values as the equivalent Engine computation.
    eng = (
        terrastat.Engine(crs="EPSG:31985")
        .add_raster("ndvi", olinda / "ndvi.tif")
        .add_zones("hex8", h3=8, cover="ndvi", mode="intersects")
        .add_indicator(name="mean", kind="zonal", raster="ndvi", stat="mean")
    )
    e = eng.compute()["hex8"]
    assert e.column("h3").to_pylist() == t.column("h3").to_pylist()
    assert e.column("mean").to_pylist() == t.column("mean").to_pylist()
    # Counts of exact fractions: all 349 x 352 pixels but the nodata ones, once.
    import numpy as np
    import rasterio

    with rasterio.open(olinda / "ndvi.tif") as ds:
        valid = int(np.isfinite(ds.read(1)).sum())
    assert sum(t.column("count").to_pylist()) == pytest.approx(valid, rel=1e-12)
