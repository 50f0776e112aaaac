#!/usr/bin/env python3
"""DEV FIXTURE ONLY - small stand-in data with the schema of `terrastat generate`.

Not the benchmark data: it exists so the peer scripts can be developed and tested
before the real generator exists. Writes communes/buildings/vegetation/flood.parquet
(GeoParquet 1.1, WKB `geometry`, EPSG:2154) into OUT_DIR.

    python benches/peers/make_dev_fixture.py OUT_DIR                       # synthetic communes
    python benches/peers/make_dev_fixture.py OUT_DIR --communes idf/communes.parquet --deps 92,93,94

With --communes, the communes of the listed departements are taken from a communes.parquet
written by prepare_idf.py; without it, ~60 synthetic Voronoi communes are made.
Buildings are random rotated rectangles over the bounding box of the communes (so some
fall outside every commune and some straddle boundaries); vegetation polygons are
random discs that overlap each other; flood polygons are buffered random walks.
The first commune (in file order) is left without any building, to exercise nulls.
"""
import argparse
import os
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import write_geoparquet  # noqa: E402

CRS = "EPSG:2154"


def synthetic_communes(rng, n=60, x0=640_000.0, y0=6_850_000.0, size=20_000.0):
    pts = shapely.multipoints(rng.uniform([x0, y0], [x0 + size, y0 + size], size=(n, 2)))
    box = shapely.box(x0, y0, x0 + size, y0 + size)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=box))
    cells = shapely.intersection(cells, box)
    cells = [shapely.MultiPolygon([c]) for c in cells]
    return gpd.GeoDataFrame({
        "insee": [f"99{i:03d}" for i in range(len(cells))],
        "nom": [f"Commune {i}" for i in range(len(cells))],
        "population": rng.integers(500, 50_000, len(cells)).astype("int64"),
        "dep": "99",
        "epci": [f"2000000{i % 4}" for i in range(len(cells))],
    }, geometry=cells, crs=CRS)


def rectangles(rng, n, bounds, wmin, wmax, lmin, lmax):
    minx, miny, maxx, maxy = bounds
    cx = rng.uniform(minx, maxx, n)
    cy = rng.uniform(miny, maxy, n)
    w = rng.uniform(wmin, wmax, n) / 2
    h = rng.uniform(lmin, lmax, n) / 2
    a = rng.uniform(0, np.pi, n)
    c, s = np.cos(a), np.sin(a)
    corners = []
    for dx, dy in [(-w, -h), (w, -h), (w, h), (-w, h), (-w, -h)]:
        corners.append(np.stack([cx + dx * c - dy * s, cy + dx * s + dy * c], axis=1))
    rings = np.stack(corners, axis=1)  # (n, 5, 2)
    return shapely.polygons(rings)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--communes", help="communes.parquet from prepare_idf.py (default: synthetic)")
    ap.add_argument("--deps", default="92,93,94", help="departements to keep with --communes")
    ap.add_argument("--buildings", type=int, default=20_000)
    ap.add_argument("--vegetation", type=int, default=2_000)
    ap.add_argument("--flood", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)

    if args.communes:
        communes = gpd.read_parquet(args.communes)
        communes = communes[communes.dep.isin(args.deps.split(","))].reset_index(drop=True)
    else:
        communes = synthetic_communes(rng)
    bounds = communes.total_bounds

    n = args.buildings
    geom = rectangles(rng, n, bounds, 6, 30, 8, 60)
    floors = rng.integers(1, 11, n).astype("int32")
    classes = np.array(list("ABCDEFG"))
    buildings = gpd.GeoDataFrame({
        "id": np.arange(1, n + 1, dtype="int64"),
        "floors": floors,
        "height": floors * 3.0 + rng.uniform(0, 2, n),
        "floor_area": shapely.area(geom) * floors,
        "year": rng.integers(1850, 2025, n).astype("int32"),
        "material": rng.choice(["brique", "beton", "pierre", "bois", "acier"], n),
        "energy_class": classes[rng.integers(0, 7, n)],
        "energy_kwh": rng.uniform(2_000, 80_000, n),
    }, geometry=geom, crs=CRS)
    # Edge case: the first commune gets no building at all (flood_share must be null there).
    empty = communes.geometry.iloc[0]
    buildings = buildings[~shapely.intersects(empty, buildings.geometry.values)].reset_index(drop=True)

    n = args.vegetation
    centers = shapely.points(rng.uniform(bounds[:2], bounds[2:], size=(n, 2)))
    veg = gpd.GeoDataFrame({
        "id": np.arange(1, n + 1, dtype="int64"),
        "kind": rng.choice(["parc", "bois", "jardin", "friche"], n),
    }, geometry=shapely.buffer(centers, rng.uniform(20, 400, n), quad_segs=4), crs=CRS)

    polys = []
    for _ in range(args.flood):
        steps = rng.normal(0, 400, size=(int(rng.integers(10, 30)), 2)) + rng.normal(0, 300, 2)
        start = rng.uniform(bounds[:2], bounds[2:])
        line = shapely.linestrings(np.vstack([start, start + np.cumsum(steps, axis=0)]))
        poly = shapely.buffer(line, rng.uniform(30, 150))
        if poly.geom_type != "Polygon":  # keep the largest part
            poly = max(shapely.get_parts(poly), key=lambda p: p.area)
        polys.append(poly)
    flood = gpd.GeoDataFrame({
        "id": np.arange(1, len(polys) + 1, dtype="int64"),
        "level": rng.choice(["faible", "moyen", "fort"], len(polys)),
    }, geometry=polys, crs=CRS)

    for name, gdf in [("communes", communes), ("buildings", buildings),
                      ("vegetation", veg), ("flood", flood)]:
        write_geoparquet(gdf, os.path.join(args.out_dir, f"{name}.parquet"))
        print(f"{name}: {len(gdf)} rows")


if __name__ == "__main__":
    main()
