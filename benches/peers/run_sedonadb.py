#!/usr/bin/env python3
"""SedonaDB implementation of the peer workloads (same SQL as DuckDB: sql_workloads.py).

    python benches/peers/run_sedonadb.py {a,b,c,d,all} DATA_DIR OUT.parquet [--threads 2] [--layers-dir DIR]

GeoParquet files are read with sd.read_parquet (GeoParquet metadata -> geometry type)
and collected into in-memory tables (to_memtable) so that the read time is separate;
--threads sets DataFusion's target_partitions. A layer that is a directory (partitioned
GeoParquet) is passed as the list of its *.parquet files (sd.read_parquet of the directory
itself finds no file when they are nested below a non-hive directory level).
"""
import os
import sys

import geoarrow.pyarrow  # noqa: F401  (registers the geoarrow extension types with pyarrow)
import sedonadb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import LAYERS, Phases, layer_path, parquet_files, parse_args, write_result, write_sidecar  # noqa: E402
from sql_workloads import QUERIES  # noqa: E402


def main():
    args = parse_args("sedonadb")
    sd = sedonadb.connect()
    sd.sql(f"SET datafusion.execution.target_partitions = {args.threads}").execute()
    ph = Phases()

    for layer, cols in LAYERS[args.workload].items():
        path = layer_path(args.data_dir, layer, args.layers_dir)
        sd.read_parquet(parquet_files(path) if os.path.isdir(path) else path).to_view(f"{layer}_file")
        select = ", ".join(cols + ["geometry"])
        sd.sql(f"SELECT {select} FROM {layer}_file").to_memtable().to_view(layer)
    ph.mark("read")

    table = sd.sql(QUERIES[args.workload]).to_arrow_table()
    ph.mark("compute")

    write_result(table, args.out)
    ph.mark("write")
    partitions = sd.sql("SHOW datafusion.execution.target_partitions").to_pandas()["value"][0]
    write_sidecar(args.out, "sedonadb", f"sedonadb {sedonadb.__version__}",
                  {"target_partitions": partitions}, ph)


if __name__ == "__main__":
    main()
