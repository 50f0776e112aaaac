"""Helpers shared by the H3 peer scripts (run_h3py.py, run_tobler.py, run_duckdb_h3.py).

Every run_<tool>.py is called as
    python run_<tool>.py {fill9,interp8} DATA_DIR OUT.parquet [--threads N]
reads DATA_DIR/communes.parquet (GeoParquet, EPSG:2154) and writes OUT.parquet sorted by
`h3` (uint64 cell id) plus OUT.parquet.json (tool, version, settings, phase timings):
  fill9   -> h3 [, area_m2]
  interp8 -> h3, population (float64) [, area_m2]
`area_m2` (when the tool has cell polygons) is the area of the tool's own cell polygon in
EPSG:2154, computed in the write phase (not part of the workload).
"""
import argparse
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benches/peers: peerlib.py
from peerlib import Phases, write_sidecar  # noqa: E402,F401  (re-exported)

WORKLOADS = {"fill9": 9, "interp8": 8}  # workload -> H3 resolution


def parse_args(tool, extra=None):
    ap = argparse.ArgumentParser(description=f"{tool} H3 peer benchmark")
    ap.add_argument("workload", choices=list(WORKLOADS))
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    if extra:
        extra(ap)
    return ap.parse_args()


def communes_path(data_dir):
    return os.path.join(data_dir, "communes.parquet")


def write_cells(out, h3_u64, population=None, area_m2=None):
    """Write h3 (uint64) [+ population, area_m2 (float64)] sorted by h3."""
    cols = {"h3": pa.array(h3_u64, pa.uint64())}
    if population is not None:
        cols["population"] = pa.array(population, pa.float64())
    if area_m2 is not None:
        cols["area_m2"] = pa.array(area_m2, pa.float64())
    pq.write_table(pa.table(cols).sort_by("h3"), out)
