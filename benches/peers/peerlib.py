"""Small helpers shared by the peer benchmark scripts (no tool-specific code here).

Every run_<tool>.py is called as
    python run_<tool>.py WORKLOAD DATA_DIR OUT.parquet [--threads N] [--layers-dir DIR]
and writes OUT.parquet (insee + result columns, one row per commune, sorted by insee)
plus OUT.parquet.json (tool, version, settings, phase timings in seconds).
"""
import argparse
import glob
import json
import os
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

WORKLOADS = {
    "a": ["n_buildings", "floor_sum"],
    "b": ["floor_ext"],
    "c": ["veg_share"],
    "d": ["flood_share"],
}
WORKLOADS["all"] = [c for w in "abcd" for c in WORKLOADS[w]]
COUNT_COLUMNS = {"n_buildings"}  # compared exactly; every other column is a float

# Layers (and columns) each workload reads; everything else is never loaded.
LAYERS = {
    "a": {"communes": ["insee"], "buildings": ["id", "floor_area"]},
    "b": {"communes": ["insee"], "buildings": ["id", "floor_area"]},
    "c": {"communes": ["insee"], "vegetation": []},
    "d": {"communes": ["insee"], "buildings": ["id", "floor_area"], "flood": []},
    "all": {"communes": ["insee"], "buildings": ["id", "floor_area"], "vegetation": [], "flood": []},
}


def parse_args(tool):
    ap = argparse.ArgumentParser(description=f"{tool} peer benchmark")
    ap.add_argument("workload", choices=list(WORKLOADS))
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers-dir", help="where buildings/vegetation/flood are (default: DATA_DIR); "
                                         "communes always come from DATA_DIR")
    return ap.parse_args()


class Phases:
    """Wall-clock timer for read / compute / write phases."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.phases = {}

    def mark(self, name):
        now = time.perf_counter()
        self.phases[f"{name}_s"] = round(now - self.last, 4)
        self.last = now

    def total(self):
        return round(time.perf_counter() - self.t0, 4)


def layer_path(data_dir, layer, layers_dir=None):
    """DIR/<layer>.parquet (a file, or a directory of Parquet files), else the directory
    DIR/<layer> when it exists (partitioned GeoParquet, e.g. buildings/h3_5=<cell>/part-0.parquet).
    DIR is DATA_DIR for communes, layers_dir (default DATA_DIR) for the other layers.
    Symlinks are followed."""
    base = layers_dir if layers_dir and layer != "communes" else data_dir
    path = os.path.join(base, f"{layer}.parquet")
    if not os.path.exists(path) and os.path.isdir(os.path.join(base, layer)):
        return os.path.join(base, layer)
    return path


def parquet_files(path):
    """The Parquet files of a layer path: the file itself, or every *.parquet under a directory."""
    if not os.path.isdir(path):
        return [path]
    files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    if not files:
        raise FileNotFoundError(f"no *.parquet file under {path}")
    return files


def parquet_glob(path):
    """read_parquet argument for a layer path: the file, or DIR/**/*.parquet for a directory."""
    return os.path.join(path, "**", "*.parquet") if os.path.isdir(path) else path


def write_result(table, out):
    """Write an Arrow table (insee + result columns) sorted by insee; NaN -> null,
    large_string -> string, count columns -> int64, others -> float64."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name == "insee":
            cols[name] = col.cast(pa.string())
        elif name in COUNT_COLUMNS:
            cols[name] = col.cast(pa.int64())
        else:
            col = col.cast(pa.float64())
            nan = pc.is_nan(col)
            cols[name] = pc.if_else(nan, pa.scalar(None, pa.float64()), col)
    t = pa.table(cols).sort_by("insee")
    pq.write_table(t, out)


def write_sidecar(out, tool, version, settings, phases, extra=None):
    info = {"tool": tool, "version": version, "settings": settings,
            **phases.phases, "script_total_s": phases.total()}
    info.update(extra or {})
    with open(out + ".json", "w") as f:
        json.dump(info, f, indent=2)


def write_geoparquet(gdf, path):
    """GeoParquet 1.1 (WKB), plain `string` columns (pandas 3 would write large_string),
    no pandas index metadata."""
    tmp = path + ".tmp"
    gdf.to_parquet(tmp, index=False, schema_version="1.1.0")
    t = pq.read_table(tmp)
    os.remove(tmp)
    fields = [pa.field(f.name, pa.string(), f.nullable, f.metadata) if pa.types.is_large_string(f.type) else f
              for f in t.schema]
    meta = {k: v for k, v in (t.schema.metadata or {}).items() if k != b"pandas"}
    t = t.cast(pa.schema(fields, metadata=meta))
    pq.write_table(t, path, row_group_size=64 * 1024)
