"""A GeoPandas/shapely oracle on the sample data (36 real communes of the
Hauts-de-Seine; seeded synthetic buildings and vegetation): counts exactly,
sums by centroid bit for bit (`math.fsum`), areas within 1e-9 relative.

Independent of the engine: shapely (GEOS) for centroids, point-in-polygon,
intersections and unions; pandas for the group-bys.
"""

import math
import pathlib

import geopandas as gpd
import numpy as np
import pytest
import shapely

import terrastat

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "data/samples/idf92"


@pytest.fixture(scope="module")
def data():
    communes = gpd.read_parquet(SAMPLE / "communes.parquet")
    buildings = gpd.read_parquet(SAMPLE / "buildings.parquet")
    vegetation = gpd.read_parquet(SAMPLE / "vegetation.parquet")
    out = terrastat.run(SAMPLE / "indicators.toml")["communes"].to_pandas().set_index("insee")
    return communes, buildings, vegetation, out


def test_counts_and_sums_by_centroid(data):
    communes, buildings, _, out = data
    pts = gpd.GeoDataFrame(buildings[["floor_area"]], geometry=buildings.centroid, crs=buildings.crs)
    joined = gpd.sjoin(pts, communes[["insee", "geometry"]], predicate="intersects")
    # Every centroid in exactly one commune (none on a shared boundary in this sample).
    assert not joined.index.duplicated().any()
    n = joined.groupby("insee").size().reindex(out.index, fill_value=0)
    assert (n.values == out["n_buildings"].values).all()
    s = joined.groupby("insee")["floor_area"].sum().reindex(out.index, fill_value=0.0)
    np.testing.assert_allclose(out["floor_sum"].values, s.values, rtol=1e-9, atol=0)
    # Sums are exact, rounded once: Python's math.fsum of each commune's
    # floor areas, bit for bit (pandas' pairwise sum differs in the last bits).
    exact = joined.groupby("insee")["floor_area"].agg(math.fsum).reindex(out.index, fill_value=0.0)
    assert out["floor_sum"].tolist() == exact.tolist()


def test_extensive_interpolation(data):
    communes, buildings, _, out = data
    b = buildings[["floor_area", "geometry"]].reset_index(names="bid")
    pieces = gpd.overlay(b, communes[["insee", "geometry"]], how="intersection", keep_geom_type=True)
    pieces["a"] = pieces.area
    total = pieces.groupby("bid")["a"].transform("sum")
    pieces["v"] = pieces["floor_area"] * pieces["a"] / total
    ext = pieces.groupby("insee")["v"].sum().reindex(out.index, fill_value=0.0)
    np.testing.assert_allclose(out["floor_ext"].values, ext.values, rtol=1e-9, atol=1e-9)


def test_vegetation_coverage(data):
    communes, _, vegetation, out = data
    veg = shapely.make_valid(vegetation.geometry.values)
    want = []
    for zone in communes.geometry.values:
        near = veg[shapely.intersects(veg, zone)]
        covered = shapely.union_all(shapely.intersection(near, zone)) if len(near) else None
        want.append(0.0 if covered is None else covered.area / zone.area)
    want = np.array(want)
    got = out.loc[communes["insee"], "veg_share"].values
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_tobler_area_interpolate_agrees(data):
    """tobler's `area_interpolate` (what data teams use today) gives the same
    extensive interpolation, within its float32 area table's precision."""
    from tobler.area_weighted import area_interpolate

    communes, buildings, _, out = data
    est = area_interpolate(
        source_df=buildings[["floor_area", "geometry"]],
        target_df=communes[["insee", "geometry"]],
        extensive_variables=["floor_area"],
        n_jobs=1,
    )
    est.index = communes["insee"].values
    got = out.loc[est.index, "floor_ext"].values
    # tobler stores the intersection-area table as float32: ~1e-7 relative.
    np.testing.assert_allclose(got, est["floor_area"].values, rtol=1e-6, atol=1e-6)
    # ... while terrastat matches an exact GeoPandas computation to 1e-9 (above).
