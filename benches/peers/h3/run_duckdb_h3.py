#!/usr/bin/env python3
"""DuckDB + the `h3` community extension: fill9 only.

    PY=/path/to/venv-with-duckdb-1.5.2/bin/python
    $PY benches/peers/h3/run_duckdb_h3.py fill9 DATA_DIR OUT.parquet [--threads 2] [--h3-ext FILE]

The extension cannot be installed offline (`INSTALL h3 FROM community` needs the
network). The PyPI wheel `haybarn-ext-h3-h1-5-2==202603.9.195856` ships the extension
binary (h3 extension commit 9425bd3) built for DuckDB v1.5.2; stock `duckdb==1.5.2` from
PyPI loads it with allow_unsigned_extensions. DuckDB's spatial extension has no build for
1.5.2 on PyPI, so there is no ST_Transform: the communes are read with pyarrow and
reprojected to EPSG:4326 with pyproj (shapely.transform) inside this process (phase
`read` = read + reproject). `h3_polygon_wkb_to_cells` rejects MultiPolygon WKB ("Invalid
WKB: expected polygon") and `h3_polygon_wkt_to_cells` silently returns no cell for a
MULTIPOLYGON, so the multipolygons are split into polygons (shapely.get_parts) first.
Then, in DuckDB (SET threads=N):
    SELECT DISTINCT unnest(h3_polygon_wkb_to_cells(wkb, 9)) AS h3 FROM parts ORDER BY h3
interp8 (area-weighted) needs polygon intersection areas, i.e. the spatial extension:
not applicable here.
"""
import gzip
import os
import shutil
import sys
import tempfile

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h3common import WORKLOADS, Phases, communes_path, parse_args, write_sidecar  # noqa: E402


def find_extension():
    """h3.duckdb_extension from the haybarn-ext-h3-h1-5-2 wheel, gunzipped to a temp dir."""
    import haybarn_ext_h3_h1_5_2 as pkg
    gz = os.path.join(os.path.dirname(pkg.__file__), "h3.duckdb_extension.gz")
    d = os.path.join(tempfile.gettempdir(), f"duckdb-{duckdb.__version__}-h3")
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, "h3.duckdb_extension")  # DuckDB derives the entry point from the file name
    if not os.path.exists(dst):
        with gzip.open(gz, "rb") as fi, open(dst + ".tmp", "wb") as fo:
            shutil.copyfileobj(fi, fo)
        os.replace(dst + ".tmp", dst)
    return dst


def main():
    args = parse_args("duckdb_h3", lambda ap: ap.add_argument("--h3-ext", help="h3.duckdb_extension file"))
    if args.workload != "fill9":
        sys.exit("duckdb_h3: only fill9 (interp8 needs ST_Intersection/ST_Area from the spatial extension, "
                 "not available for DuckDB 1.5.2 offline)")
    res = WORKLOADS[args.workload]
    ext = os.path.abspath(args.h3_ext) if args.h3_ext else find_extension()
    ph = Phases()
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"SET threads={int(args.threads)}")
    con.execute(f"LOAD '{ext}'")
    ph.mark("load_ext")

    t = pq.read_table(communes_path(args.data_dir), columns=["insee", "geometry"])
    geom = shapely.from_wkb(t.column("geometry").to_numpy(zero_copy_only=False))
    tr = pyproj.Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
    geom = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    parts = shapely.get_parts(geom)
    parts_tbl = pa.table({"wkb": pa.array(shapely.to_wkb(parts), pa.binary())})  # noqa: F841 (used by SQL)
    ph.mark("read")

    con.execute(f"CREATE TABLE cells AS SELECT DISTINCT unnest(h3_polygon_wkb_to_cells(wkb, {res})) AS h3 "
                "FROM parts_tbl")
    ph.mark("compute")
    con.execute(f"COPY (SELECT h3 FROM cells ORDER BY h3) TO '{args.out}' (FORMAT parquet)")
    n = con.execute("SELECT count(*) FROM cells").fetchone()[0]
    ph.mark("write")
    ext_ver = con.execute("SELECT extension_version FROM duckdb_extensions() WHERE extension_name = 'h3'").fetchone()[0]
    write_sidecar(args.out, "duckdb_h3", f"duckdb {duckdb.__version__} + h3 extension {ext_ver} "
                  "(binary from PyPI haybarn-ext-h3-h1-5-2), pyproj reprojection",
                  {"threads": args.threads, "extension": ext,
                   "sql": f"SELECT DISTINCT unnest(h3_polygon_wkb_to_cells(wkb, {res})) FROM polygons (EPSG:4326)"},
                  ph, {"n_cells": n, "n_polygons": len(parts)})


if __name__ == "__main__":
    main()
