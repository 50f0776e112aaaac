"""terrastat from Python: same numbers as the CLI, threads, errors, progress."""

import concurrent.futures
import os
import pathlib
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import terrastat

ROOT = pathlib.Path(__file__).resolve().parents[3]
SPEC = ROOT / "data/samples/idf92/indicators.toml"


def cli_binary() -> pathlib.Path:
    """The CLI built from this checkout (TERRASTAT_BIN, else the cargo target dir)."""
    if os.environ.get("TERRASTAT_BIN"):
        return pathlib.Path(os.environ["TERRASTAT_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "terrastat"


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    subprocess.run(
        [str(cli_binary()), "run", str(SPEC), "--out", str(out), "-q"], check=True
    )
    return out


@pytest.fixture(scope="module")
def res():
    return terrastat.run(SPEC)


def test_tables_equal_the_cli_output(res, cli_out):
    names = sorted(p.stem for p in cli_out.glob("*.parquet") if ".quality" not in p.name)
    assert sorted(res) == names
    # The quality records, one row per zone and published indicator.
    assert sorted(res.quality) == names
    for name in names:
        q = pq.read_table(cli_out / f"{name}.quality.parquet")
        assert res.quality[name].equals(q.cast(res.quality[name].schema)), name
    published = [i for i in res.catalog["indicators"] if not i["hidden"]]
    q = res.quality["communes"]
    assert q.num_rows == 36 * len(published)
    assert set(q.column("flag").to_pylist()) == {"ok"}
    for name in names:
        cli = pq.read_table(cli_out / f"{name}.parquet")
        got = res[name]
        assert isinstance(got, pa.Table)
        assert got.column_names == cli.column_names
        # Same bytes of values: the engine is deterministic.
        assert got.equals(cli.cast(got.schema)), name
    assert res["communes"].num_rows == 36
    assert res["communes"].column_names[0] == "insee"
    assert res["hex9"].column_names[:2] == ["h3", "h3_str"]


def test_catalog_documents_every_indicator(res):
    names = {i["name"] for i in res.catalog["indicators"]}
    assert "n_buildings" in names and "veg_share" in names
    roles = {f["role"]: f for f in res.catalog["inputs"]}
    assert len(roles["layers.buildings"]["sha256"]) == 64
    assert roles["zones.communes"]["report"]["kept"] == 36


def test_thread_count_does_not_change_results(res):
    one = terrastat.run(SPEC, threads=1)
    for name in res:
        assert one[name].equals(res[name]), name


def test_concurrent_calls_from_python_threads(res):
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(lambda _: terrastat.run(SPEC, threads=1), range(3)))
    for out in outs:
        assert out["communes"].equals(res["communes"])


def test_progress_callback_sees_the_stages():
    seen = []
    terrastat.run(SPEC, progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = {s for s, _, _ in seen}
    assert any(s.startswith("reading") for s in stages)
    assert any("centroids" in s for s in stages)


def test_failing_progress_callback_stops_the_run():
    def boom(stage, done, total):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        terrastat.run(SPEC, progress=boom)


def test_capsule_tables_without_pyarrow_conversion(res):
    raw = terrastat.run(SPEC, as_pyarrow=False)
    t = raw["communes"]
    assert hasattr(t, "__arrow_c_stream__")
    assert pa.table(t).equals(res["communes"])


def test_spec_errors_name_file_line_and_key(tmp_path):
    text = SPEC.read_text().replace('kind = "count"', 'kind = "cuont"', 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    for p in ["buildings", "vegetation", "flood", "communes"]:
        shutil.copy(SPEC.parent / f"{p}.parquet", tmp_path)
    with pytest.raises(terrastat.SpecError) as e:
        terrastat.run(bad)
    assert "bad.toml" in str(e.value) and "cuont" in str(e.value)
    assert isinstance(e.value, terrastat.TerrastatError)


def test_missing_input_is_an_input_error(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.read_text())
    with pytest.raises(terrastat.InputError) as e:
        terrastat.run(spec)
    assert "not found" in str(e.value) or "No such file" in str(e.value)
    # I/O errors by kind, as Python's own: a missing file is a FileNotFoundError.
    assert isinstance(e.value, FileNotFoundError)
    assert isinstance(e.value, terrastat.InputFileNotFoundError)


def test_unreadable_input_is_a_permission_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    for p in ["buildings", "vegetation", "flood", "communes"]:
        shutil.copy(SPEC.parent / f"{p}.parquet", tmp_path)
    (tmp_path / "spec.toml").write_text(SPEC.read_text())
    (tmp_path / "buildings.parquet").chmod(0)
    with pytest.raises(PermissionError) as e:
        terrastat.run(tmp_path / "spec.toml")
    assert isinstance(e.value, terrastat.InputError)


def test_missing_crs_is_a_crs_error(tmp_path):
    import pyarrow as pa

    # A plain Parquet file with WKB geometries and no CRS anywhere.
    wkb = bytes.fromhex("0101000000000000000000f03f0000000000000040")
    pq.write_table(pa.table({"geometry": [wkb]}), tmp_path / "pts.parquet")
    shutil.copy(SPEC.parent / "communes.parquet", tmp_path)
    (tmp_path / "spec.toml").write_text(
        'crs = "EPSG:2154"\n[layers.p]\npath = "pts.parquet"\n'
        '[zones.c]\npath = "communes.parquet"\nid = "insee"\n'
        '[[indicators]]\nname = "n"\nkind = "count"\nlayer = "p"\n'
    )
    with pytest.raises(terrastat.CrsError) as e:
        terrastat.run(tmp_path / "spec.toml")
    assert "pts.parquet" in str(e.value)


def test_to_geopandas_has_zone_polygons_and_crs(res):
    geo = terrastat.run(SPEC, geometry=True)
    gdf = geo.to_geopandas("communes")
    assert gdf.crs.to_epsg() == 2154
    assert len(gdf) == 36
    # Same values as without geometry, and the polygons are the communes'.
    assert gdf.drop(columns="geometry").equals(res.to_pandas("communes"))
    import geopandas as gpd

    communes = gpd.read_parquet(SPEC.parent / "communes.parquet").set_index("insee")
    areas = gdf.set_index("insee").area
    assert ((areas - communes.loc[areas.index].area).abs() <= 1e-6 * areas).all()
    hexes = geo.to_geopandas("hex9")
    assert len(hexes) == res["hex9"].num_rows
    with pytest.raises(ValueError, match="geometry=True"):
        res.to_geopandas("communes")


def test_spec_as_a_dict_equals_the_file(res):
    import tomllib

    spec = tomllib.loads(SPEC.read_text())
    for section in ("layers", "rasters", "zones"):
        for keys in spec[section].values():
            if "path" in keys:
                keys["path"] = str(SPEC.parent / keys["path"])
    got = terrastat.run(spec)
    assert sorted(got) == sorted(res)
    for name in res:
        assert got[name].equals(res[name]), name
    with pytest.raises(terrastat.SpecError):
        terrastat.run({"crs": "EPSG:2154", "indicators": []})
    # Checked as a file is: a misspelt section is named, not ignored.
    with pytest.raises(terrastat.SpecError, match="`layer`"):
        terrastat.run({**spec, "layer": {}})


def test_ctrl_c_interrupts_a_run_cleanly(res):
    import _thread
    import threading

    # Simulate Ctrl-C once the run has started (from its first progress
    # report, so that the timing cannot make it miss): the run stops with
    # KeyboardInterrupt, and the interpreter goes on working.
    fired = threading.Event()

    def press_ctrl_c(stage, done, total):
        if not fired.is_set():
            fired.set()
            _thread.interrupt_main()

    # Python's own SIGINT handler, as in a terminal: a process started in the
    # background (nohup, `cmd &`) inherits SIGINT ignored, and then
    # interrupt_main() does nothing.
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            terrastat.run(SPEC, threads=1, geometry=True, progress=press_ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert fired.is_set()
    again = terrastat.run(SPEC)
    assert again["communes"].equals(res["communes"])
