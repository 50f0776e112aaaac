#!/usr/bin/env python3
"""GeoPandas + tobler implementation of the peer workloads.

    python benches/peers/run_geopandas.py {a,b,c,d,all} DATA_DIR OUT.parquet [--threads 2] [--layers-dir DIR]

Shapely/GEOS calls are single-threaded; --threads is passed to tobler as n_jobs
(joblib/loky worker processes) for workload b.
"""
import json
import os
import sys

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely
import tobler
from tobler.area_weighted import area_interpolate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import LAYERS, Phases, layer_path, parquet_files, parse_args, write_result, write_sidecar  # noqa: E402


def read_layer(path, columns):
    """gpd.read_parquet, except when PROJ rejects the file's GeoParquet CRS.

    `terrastat generate` writes a PROJJSON stub for EPSG:2154
    ({"$schema", "id": {"authority": "EPSG", "code": 2154}, "name", "type": "ProjectedCRS"},
    without base_crs / conversion / coordinate_system), which pyproj refuses
    ("Missing base_crs key"), so gpd.read_parquet fails. Then the same thing is done by
    hand: pyarrow read of the columns, shapely.from_wkb, CRS from the stub's id.
    A directory (partitioned GeoParquet) is always read by hand, with the GeoParquet
    metadata of its first file (pyarrow's dataset reader drops the `geo` metadata)."""
    geo = json.loads(pq.ParquetFile(parquet_files(path)[0]).metadata.metadata[b"geo"])
    name = geo["primary_column"]
    crs = geo["columns"][name].get("crs")
    try:
        if crs is not None:
            pyproj.CRS.from_user_input(crs)
        if not os.path.isdir(path):
            return gpd.read_parquet(path, columns=columns + [name])
    except pyproj.exceptions.CRSError:
        crs = f"{crs['id']['authority']}:{crs['id']['code']}"
    table = pq.read_table(path, columns=columns + [name])
    geom = shapely.from_wkb(table.column(name).to_numpy(zero_copy_only=False))
    df = table.drop_columns([name]).to_pandas()
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=crs, name="geometry"), crs=crs)


def assign_by_centroid(buildings, communes):
    """(building row, insee) pairs: building centroid intersects the commune
    (a centroid on a shared boundary would count in both communes)."""
    pts = gpd.GeoDataFrame(buildings.drop(columns="geometry"), geometry=buildings.centroid, crs=buildings.crs)
    return gpd.sjoin(pts, communes[["insee", "geometry"]], predicate="intersects", how="inner")


def workload_a(L):
    j = assign_by_centroid(L["buildings"], L["communes"])
    agg = j.groupby("insee").agg(n_buildings=("floor_area", "size"), floor_sum=("floor_area", "sum"))
    out = L["communes"][["insee"]].merge(agg, on="insee", how="left")
    return out.fillna({"n_buildings": 0, "floor_sum": 0.0})


def workload_b(L, threads):
    est = area_interpolate(L["buildings"][["floor_area", "geometry"]], L["communes"][["insee", "geometry"]],
                           extensive_variables=["floor_area"], allocate_total=True, n_jobs=threads)
    return pd.DataFrame({"insee": L["communes"]["insee"].values, "floor_ext": est["floor_area"].values})


def workload_c(L):
    communes, veg = L["communes"], L["vegetation"]
    # union (dissolve) the vegetation polygons touching each commune, then intersect with it;
    # invalid polygons (the generator writes some self-intersecting ones) are repaired
    # with make_valid before the union, as in the SQL (GEOS would raise a TopologyException)
    hits = gpd.sjoin(veg[["geometry"]], communes[["insee", "geometry"]], predicate="intersects", how="inner")
    hits = hits.set_geometry(hits.geometry.make_valid())
    union = hits[["insee", "geometry"]].dissolve(by="insee")
    zone = communes.set_index("insee").geometry.loc[union.index]
    covered = union.geometry.intersection(zone).area
    share = (covered / zone.area).rename("veg_share")
    out = communes[["insee"]].merge(share, left_on="insee", right_index=True, how="left")
    return out.fillna({"veg_share": 0.0})


def workload_d(L):
    buildings, flood = L["buildings"], L["flood"]
    j = assign_by_centroid(buildings[["id", "geometry"]], L["communes"])
    flooded_idx = flood.sindex.query(buildings.geometry, predicate="intersects")[0]  # building positions
    flooded_ids = set(buildings["id"].values[flooded_idx])
    j["flooded"] = j["id"].isin(flooded_ids)
    share = j.groupby("insee")["flooded"].mean().rename("flood_share")
    # communes without any building keep a null share
    return L["communes"][["insee"]].merge(share, left_on="insee", right_index=True, how="left")


def main():
    args = parse_args("geopandas")
    ph = Phases()
    L = {}
    for layer, cols in LAYERS[args.workload].items():
        L[layer] = read_layer(layer_path(args.data_dir, layer, args.layers_dir), cols)
    ph.mark("read")

    parts = []
    if args.workload in ("a", "all"):
        parts.append(workload_a(L))
    if args.workload in ("b", "all"):
        parts.append(workload_b(L, args.threads))
    if args.workload in ("c", "all"):
        parts.append(workload_c(L))
    if args.workload in ("d", "all"):
        parts.append(workload_d(L))
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p, on="insee", how="left")
    ph.mark("compute")

    write_result(pa.Table.from_pandas(out, preserve_index=False), args.out)
    ph.mark("write")
    write_sidecar(args.out, "geopandas+tobler", f"geopandas {gpd.__version__}, tobler {tobler.__version__}",
                  {"tobler_n_jobs": args.threads, "shapely": "single-threaded GEOS"}, ph)


if __name__ == "__main__":
    main()
