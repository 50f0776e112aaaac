"""Small helpers shared by the peer benchmark scripts (no tool-specific code here).

Every run_<tool>.py is called as
    python run_<tool>.py WORKLOAD DATA_DIR OUT.parquet [--threads N]
and writes OUT.parquet (insee + result columns, one row per commune, sorted by insee)
plus OUT.parquet.json (tool, version, settings, phase timings in seconds).
"""
import argparse
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


def layer_path(data_dir, layer):
    return os.path.join(data_dir, f"{layer}.parquet")


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
