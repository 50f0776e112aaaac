"""Raster zonal statistics on real rasters, against two oracles:

- a brute force in float64: every pixel of a zone's bounding box clipped to
  the zone with shapely (GEOS), the statistics computed with numpy from the
  exact coverage fractions: terrastat agrees to 1e-12 (it is exact up to
  rounding);
- exactextract 0.3.0 (PyPI): the reference implementation of these
  definitions. It stores coverage fractions as float32, so its sums and
  means can be off by up to 2^-24 of each pixel's contribution: agreement is
  checked within 1e-9 relative or within that float32 bound, whichever is
  larger, and majority/minority within exactextract's float32 ties.

Rasters (see data/samples/SOURCES.md): SRTM elevation over the cantons of
Luxembourg (EPSG:4326, nodata), Landsat NDVI of Olinda on a 500 m grid and
on H3 cells (raster -> H3), NLCD land cover of Puerto Rico (classes, frac).
"""

import pathlib

import exactextract
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

import terrastat

SAMPLES = pathlib.Path(__file__).resolve().parents[3] / "data/samples"
EPS32 = 2.0**-24

# (sample, zone layer, raster file, {terrastat column: statistic})
CASES = [
    (
        "lux",
        "cantons",
        "elev.tif",
        {
            "elev_pixels": "count",
            "elev_sum": "sum",
            "elev_mean": "mean",
            "elev_min": "min",
            "elev_max": "max",
            "elev_stdev": "stdev",
            "elev_majority": "majority",
            "elev_minority": "minority",
            "elev_variety": "variety",
        },
    ),
    ("olinda", "grid500", "ndvi.tif", {"pixels": "count", "ndvi_mean": "mean", "ndvi_stdev": "stdev", "ndvi_max": "max"}),
    ("olinda", "hex9", "ndvi.tif", {"pixels": "count", "ndvi_mean": "mean", "ndvi_stdev": "stdev", "ndvi_max": "max"}),
    ("pr", "grid15km", "landcover.tif", {"lc_majority": "majority", "lc_minority": "minority", "lc_variety": "variety"}),
    ("pr", "hex6", "landcover.tif", {"lc_majority": "majority", "lc_minority": "minority", "lc_variety": "variety"}),
]


@pytest.fixture(scope="module")
def runs():
    return {s: terrastat.run(SAMPLES / s / "indicators.toml", geometry=True) for s in ("lux", "olinda", "pr")}


def pixels(raster, zone):
    """(values, exact coverage fractions) of the valid pixels a zone covers."""
    t = raster["transform"]
    a = raster["values"]
    minx, miny, maxx, maxy = zone.bounds
    c0 = max(int(np.floor((minx - t.c) / t.a)), 0)
    c1 = min(int(np.ceil((maxx - t.c) / t.a)), a.shape[1])
    r0 = max(int(np.floor((maxy - t.f) / t.e)), 0)
    r1 = min(int(np.ceil((miny - t.f) / t.e)), a.shape[0])
    if c0 >= c1 or r0 >= r1:
        return np.array([]), np.array([])
    rows, cols = np.mgrid[r0:r1, c0:c1]
    rows, cols = rows.ravel(), cols.ravel()
    # Clip in pixel space (pixel (r, c) is the unit square at (c, r)): with
    # world coordinates in the millions, GEOS would lose ~1e-11 of a pixel.
    local = shapely.transform(zone, lambda xy: np.column_stack(((xy[:, 0] - t.c) / t.a, (xy[:, 1] - t.f) / t.e)))
    boxes = shapely.box(cols, rows, cols + 1, rows + 1)
    frac = shapely.area(shapely.intersection(boxes, local))
    vals = a[rows, cols].astype("float64")
    keep = (frac > 0) & ~np.isnan(vals)
    return vals[keep], frac[keep]


def brute(vals, c):
    """The statistics from their definitions, in float64."""
    if c.sum() == 0:
        return {"count": 0.0, "sum": 0.0}
    mean = (c * vals).sum() / c.sum()
    uniq = np.unique(vals)
    per = np.array([c[vals == u].sum() for u in uniq])
    top = uniq[per == per.max()].max()  # ties: the largest value
    low = uniq[per == per.min()].min()  # ties: the smallest value
    return {
        "count": c.sum(),
        "sum": (c * vals).sum(),
        "mean": mean,
        "min": vals.min(),
        "max": vals.max(),
        "stdev": np.sqrt((c * (vals - mean) ** 2).sum() / c.sum()),
        "majority": top,
        "minority": low,
        "variety": float(len(uniq)),
        "frac": dict(zip(uniq, per / c.sum())),
    }


def load(path):
    with rasterio.open(path) as ds:
        a = ds.read(1, masked=True).astype("float64").filled(np.nan)
        return {"values": a * (ds.scales[0] or 1.0) + (ds.offsets[0] or 0.0), "transform": ds.transform}


@pytest.mark.parametrize("sample,zones,raster,columns", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_exact_against_brute_force(runs, sample, zones, raster, columns):
    out = runs[sample].to_geopandas(zones)
    r = load(SAMPLES / sample / raster)
    checked = 0
    for k, zone in enumerate(out.geometry):
        b = brute(*pixels(r, zone))
        for col, stat in columns.items():
            got = out[col].iloc[k]
            want = b.get(stat)
            if want is None:
                assert np.isnan(got) or got is None, f"{zones}[{k}] {col}: {got}, expected null"
                continue
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), f"{zones}[{k}] {col}"
            checked += 1
    assert checked > 0


def f32_bounds(row):
    """How far exactextract's float32 coverage fractions can move count and sum."""
    c = np.asarray(row["coverage"], dtype="float64")
    v = np.abs(np.asarray(row["values"], dtype="float64"))
    return 2 * EPS32 * c.sum(), 2 * EPS32 * (c * v).sum()


@pytest.mark.parametrize("sample,zones,raster,columns", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_agrees_with_exactextract(runs, sample, zones, raster, columns):
    out = runs[sample].to_geopandas(zones)
    ops = sorted(set(columns.values()) | {"count", "sum", "mean", "coverage", "values", "frac", "unique"})
    ee = exactextract.exact_extract(str(SAMPLES / sample / raster), out, ops, output="pandas")
    compared = 0
    for k in range(len(out)):
        row = ee.iloc[k]
        bc, bs = f32_bounds(row)
        count = row["count"]
        for col, stat in columns.items():
            got, want = out[col].iloc[k], row[stat]
            if count == 0:
                # No valid pixel: terrastat writes null (count and sum 0); exactextract 0 or NaN.
                assert (stat in ("count", "sum") and got == 0) or np.isnan(got), f"{zones}[{k}] {col}"
                continue
            if stat in ("min", "max", "variety"):
                assert got == want, f"{zones}[{k}] {col}: {got} vs {want}"
            elif stat in ("majority", "minority"):
                if got != want:
                    # Only where exactextract's float32 fractions break a tie.
                    fr = dict(zip(row["unique"], row["frac"]))
                    assert abs(fr[got] - fr[want]) <= 4 * EPS32, f"{zones}[{k}] {col}: {got} vs {want}"
            else:
                tol = {
                    "count": bc,
                    "sum": bs,
                    "mean": (bs + abs(want) * bc) / count,
                    "stdev": 4 * EPS32 * (want + np.abs(np.asarray(row["values"]) - row["mean"]).max()),
                }[stat]
                assert abs(got - want) <= max(1e-9 * abs(want), tol), f"{zones}[{k}] {col}: {got} vs {want}"
            compared += 1
    assert compared > len(out)


def test_frac_and_coverage_of_classes(runs):
    out = runs["pr"].to_geopandas("grid15km")
    r = load(SAMPLES / "pr/landcover.tif")
    frac_cols = [c for c in out.columns if c.startswith("lc_frac_")]
    assert {"lc_frac_11", "lc_frac_42", "lc_frac_95"} <= set(frac_cols)
    for k, zone in enumerate(out.geometry):
        b = brute(*pixels(r, zone))
        if b["count"] == 0:
            assert all(np.isnan(out[c].iloc[k]) for c in frac_cols)
            assert np.isnan(out["forest_share"].iloc[k])
            continue
        for c in frac_cols:
            want = b["frac"].get(float(c.removeprefix("lc_frac_")), 0.0)
            assert out[c].iloc[k] == pytest.approx(want, rel=1e-12, abs=1e-15)
        forest = sum(b["frac"].get(x, 0.0) for x in (41.0, 42.0, 43.0))
        assert out["forest_share"].iloc[k] == pytest.approx(forest, rel=1e-12, abs=1e-15)
        assert sum(out[c].iloc[k] for c in frac_cols) == pytest.approx(1.0, rel=1e-12)


def test_weighted_mean_and_predicate_coverage(runs):
    out = runs["olinda"].to_geopandas("grid500")
    ndvi = load(SAMPLES / "olinda/ndvi.tif")
    with rasterio.open(SAMPLES / "olinda/l7_b34.tif") as ds:
        nir = ds.read(2).astype("float64")
    for k, zone in enumerate(out.geometry):
        v, c = pixels(ndvi, zone)
        w, _ = pixels({"values": np.where(np.isnan(ndvi["values"]), np.nan, nir), "transform": ndvi["transform"]}, zone)
        if c.sum() == 0:
            continue
        assert out["ndvi_nir_weighted"].iloc[k] == pytest.approx((c * w * v).sum() / (c * w).sum(), rel=1e-12)
        assert out["green_share"].iloc[k] == pytest.approx(c[v > 0.5].sum() / c.sum(), rel=1e-12, abs=1e-15)
