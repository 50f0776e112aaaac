#!/usr/bin/env python3
"""DEV FIXTURE ONLY - three square communes with hand-computed answers for the edge cases.

    python benches/peers/edge_fixture.py make DIR
    python benches/peers/compare.py --data DIR --workloads all [--terrastat BIN]
    python benches/peers/edge_fixture.py check DIR/peers_out/*_all.parquet DIR/peers_out/terrastat_all/communes.parquet

Communes: A = [0,100]x[0,100], B = [100,200]x[0,100] (shares the edge x=100 with A),
C = [500,600]^2 (nothing in it). Buildings (floor_area):
  1: [90,110]x[40,60] (400)  centroid (100,50) ON the A|B edge, half of its area in each
  2: [10,20]x[10,20]  (100)  inside A
  3: [300,310]^2      (100)  outside every commune
  4: [195,215]x[10,20](200)  centroid outside, a quarter of its area in B
Vegetation: [0,50]x[0,100] and [25,75]x[0,100] overlap -> union covers 75% of A.
Flood: [105,120]x[0,100] touches building 1 only.
Expected with the peers' rule (centroid *intersects* commune, so building 1 counts in A and B):
"""
import os
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import write_geoparquet  # noqa: E402

EXPECTED = pd.DataFrame({
    "insee": ["00001", "00002", "00003"],
    "n_buildings": [2, 1, 0],
    "floor_sum": [500.0, 400.0, 0.0],
    "floor_ext": [300.0, 400.0, 0.0],   # 400/2 + 100 ; 400/2 + 200 (allocate_total)
    "veg_share": [0.75, 0.0, 0.0],
    "flood_share": [0.5, 1.0, None],
})
__doc__ += EXPECTED.to_string(index=False)


def make(d):
    os.makedirs(d, exist_ok=True)
    crs = "EPSG:2154"
    mp = lambda *b: shapely.MultiPolygon([shapely.box(*b)])  # noqa: E731
    communes = gpd.GeoDataFrame({
        "insee": EXPECTED.insee, "nom": ["A", "B", "C"], "population": np.array([1, 2, 3], dtype="int64"),
        "dep": "00", "epci": "000000000"},
        geometry=[mp(0, 0, 100, 100), mp(100, 0, 200, 100), mp(500, 500, 600, 600)], crs=crs)
    boxes = [(90, 40, 110, 60), (10, 10, 20, 20), (300, 300, 310, 310), (195, 10, 215, 20)]
    buildings = gpd.GeoDataFrame({
        "id": np.arange(1, 5, dtype="int64"), "floors": np.ones(4, dtype="int32"), "height": 3.0,
        "floor_area": [400.0, 100.0, 100.0, 200.0], "year": np.full(4, 2000, dtype="int32"),
        "material": "beton", "energy_class": "C", "energy_kwh": 1000.0},
        geometry=[shapely.box(*b) for b in boxes], crs=crs)
    veg = gpd.GeoDataFrame({"id": np.array([1, 2], dtype="int64"), "kind": "parc"},
                           geometry=[shapely.box(0, 0, 50, 100), shapely.box(25, 0, 75, 100)], crs=crs)
    flood = gpd.GeoDataFrame({"id": np.array([1], dtype="int64"), "level": "fort"},
                             geometry=[shapely.box(105, 0, 120, 100)], crs=crs)
    for name, g in [("communes", communes), ("buildings", buildings), ("vegetation", veg), ("flood", flood)]:
        write_geoparquet(g, os.path.join(d, f"{name}.parquet"))
    print(f"wrote {d}; expected:\n{EXPECTED.to_string(index=False)}")


def check(paths):
    bad = 0
    exp = EXPECTED.set_index("insee")
    for p in paths:
        got = pd.read_parquet(p).set_index("insee").sort_index()
        for col in [c for c in exp.columns if c in got.columns]:
            for z in exp.index:
                e = exp.at[z, col]
                g = got.at[z, col] if z in got.index else None
                if pd.isna(e):
                    ok = z in got.index and pd.isna(g)
                else:
                    ok = g is not None and not pd.isna(g) and abs(float(g) - e) < 1e-9
                if not ok:
                    bad += 1
                    print(f"{p}: {col}[{z}] = {g}, expected {e}")
        print(f"{p}: checked {[c for c in exp.columns if c in got.columns]}")
    print("edge cases:", "all as expected" if bad == 0 else f"{bad} differences")
    return bad


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(1 if check(sys.argv[2:]) else 0)
    else:
        print(__doc__)
        sys.exit(2)
