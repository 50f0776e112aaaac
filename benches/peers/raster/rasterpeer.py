"""Helpers shared by run_exactextract.py and run_rasterstats.py (no tool-specific code).

Every run_<tool>.py is called as
    python run_<tool>.py RASTER ZONES ID_COLUMN OUT.parquet
and writes OUT.parquet (ID_COLUMN as string + one float64 column per statistic, rows in
zone-file order, like terrastat's output) plus OUT.parquet.json (tool, version,
settings, phase timings in seconds).
"""
import argparse
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# The phase timer of the vector benchmark's scripts.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peerlib import Phases  # noqa: E402,F401

STATS = ["count", "sum", "mean", "min", "max"]


def parse_args(tool):
    ap = argparse.ArgumentParser(description=f"{tool} zonal statistics (raster peer benchmark)")
    ap.add_argument("raster")
    ap.add_argument("zones", help="polygons readable by geopandas (GeoParquet, GeoJSON, FlatGeobuf)")
    ap.add_argument("id", help="zone id column")
    ap.add_argument("out", help="output parquet")
    ap.add_argument("--stats", default=",".join(STATS))
    return ap


def read_zones(path, id_col):
    """The zones as a GeoDataFrame with only the id (as string) and the geometry."""
    import geopandas as gpd

    if path.endswith(".parquet"):
        gdf = gpd.read_parquet(path, columns=[id_col, "geometry"])
    else:
        gdf = gpd.read_file(path, columns=[id_col])
    gdf[id_col] = gdf[id_col].astype(str)
    if gdf[id_col].duplicated().any():
        sys.exit(f"{path}: column {id_col} has duplicate ids")
    return gdf[[id_col, "geometry"]].reset_index(drop=True)


def write_result(ids, id_col, columns, out):
    """ids: list/array of str; columns: {stat: array-like}. NaN -> null, float64."""
    cols = {id_col: pa.array([str(i) for i in ids], pa.string())}
    for name, values in columns.items():
        arr = np.asarray(values, dtype="float64")
        cols[name] = pa.array(arr, pa.float64(), mask=np.isnan(arr))
    pq.write_table(pa.table(cols), out)


def write_sidecar(out, tool, version, settings, phases, extra=None):
    info = {"tool": tool, "version": version, "settings": settings,
            **phases.phases, "script_total_s": phases.total()}
    info.update(extra or {})
    with open(out + ".json", "w") as f:
        json.dump(info, f, indent=2)


def raster_info(path):
    import rasterio

    with rasterio.open(path) as ds:
        return {"width": ds.width, "height": ds.height, "dtype": ds.dtypes[0], "nodata": ds.nodata,
                "scale": ds.scales[0], "offset": ds.offsets[0], "crs": str(ds.crs),
                "res": list(ds.res), "block": list(ds.block_shapes[0])}
