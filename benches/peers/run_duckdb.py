#!/usr/bin/env python3
"""DuckDB + spatial extension implementation of the peer workloads.

    python benches/peers/run_duckdb.py {a,b,c,d,all} DATA_DIR OUT.parquet [--threads 2] [--layers-dir DIR]

The spatial extension is loaded from the PyPI wheel duckdb-ext-spatial (no INSTALL from
the network); the connection allows unsigned extensions for that. GeoParquet files are
read with read_parquet (geometry columns become GEOMETRY) into in-memory tables, then
the SQL of sql_workloads.py runs with SET threads=N. A layer that is a directory
(partitioned GeoParquet) is read with read_parquet('DIR/**/*.parquet').
"""
import os
import sys

import duckdb
import duckdb_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import LAYERS, Phases, layer_path, parquet_glob, parse_args, write_result, write_sidecar  # noqa: E402
from sql_workloads import QUERIES  # noqa: E402


def spatial_extension_path():
    base = os.path.dirname(duckdb_ext.__file__) if getattr(duckdb_ext, "__file__", None) \
        else list(duckdb_ext.__path__)[0]
    path = os.path.join(base, "extensions", f"v{duckdb.__version__}", "linux_amd64", "spatial.duckdb_extension")
    if not os.path.exists(path):
        raise FileNotFoundError(f"spatial extension not found at {path} (pip install duckdb-ext-spatial)")
    return path


def main():
    args = parse_args("duckdb")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    ext = spatial_extension_path()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"SET threads = {args.threads}")
    ph = Phases()

    for layer, cols in LAYERS[args.workload].items():
        select = ", ".join(cols + ["geometry"])
        con.execute(f"CREATE TABLE {layer} AS SELECT {select} FROM read_parquet(?)",
                    [parquet_glob(layer_path(args.data_dir, layer, args.layers_dir))])
    ph.mark("read")

    table = con.execute(QUERIES[args.workload]).fetch_arrow_table()
    ph.mark("compute")

    write_result(table, args.out)
    ph.mark("write")
    settings = {"threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
                "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchone()[0],
                "spatial_extension": ext}
    spatial = con.execute("SELECT extension_version FROM duckdb_extensions() WHERE extension_name='spatial'").fetchone()
    write_sidecar(args.out, "duckdb", f"duckdb {duckdb.__version__}, spatial {spatial[0]}", settings, ph)


if __name__ == "__main__":
    main()
