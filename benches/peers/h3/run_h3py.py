#!/usr/bin/env python3
"""h3-py (the reference `h3` package, 4.x) implementation of the H3 workloads.

    python benches/peers/h3/run_h3py.py {fill9,interp8} DATA_DIR OUT.parquet

fill9:   every commune reprojected to EPSG:4326 (geopandas `to_crs`), `h3.geo_to_h3shape`,
         `h3.polygon_to_cells(shape, 9)` (center containment, h3's only mode outside the
         experimental API); the union of the per-commune cell sets is written.
interp8: h3-py has no area-weighted interpolation. This is the shortcut people use
         instead, APPROXIMATE AND NOT AREA-WEIGHTED: each commune's population is split
         equally among its res-8 cells (`polygon_to_cells`, center containment); a commune
         that holds no cell center gives all its population to the cell containing its
         representative point (`latlng_to_cell`). Totals are preserved, per-cell values
         are not comparable with an area-weighted result.
h3-py is single-threaded; --threads is ignored.
"""
import os
import sys
from collections import defaultdict

import geopandas as gpd
import h3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h3common import WORKLOADS, Phases, communes_path, parse_args, write_cells, write_sidecar  # noqa: E402


def main():
    args = parse_args("h3py")
    res = WORKLOADS[args.workload]
    ph = Phases()
    cols = ["insee", "population"] if args.workload == "interp8" else ["insee"]
    communes = gpd.read_parquet(communes_path(args.data_dir), columns=cols + ["geometry"])
    ph.mark("read")

    ll = communes.geometry.to_crs(4326)
    extra = {}
    if args.workload == "fill9":
        cells = set()
        for geom in ll.values:
            cells.update(h3.polygon_to_cells(h3.geo_to_h3shape(geom), res))
    else:
        acc = defaultdict(float)
        n_fallback = 0
        reps = None
        for i, (geom, p) in enumerate(zip(ll.values, communes["population"].to_numpy())):
            cs = h3.polygon_to_cells(h3.geo_to_h3shape(geom), res)
            if not cs:
                if reps is None:
                    reps = ll.representative_point()
                pt = reps.iloc[i]
                cs = [h3.latlng_to_cell(pt.y, pt.x, res)]
                n_fallback += 1
            share = float(p) / len(cs)
            for c in cs:
                acc[c] += share
        cells = acc
        extra["communes_without_cell_center"] = n_fallback
    ph.mark("compute")

    keys = list(cells)
    ids = [h3.str_to_int(c) for c in keys]
    write_cells(args.out, ids, population=[cells[c] for c in keys] if args.workload == "interp8" else None)
    ph.mark("write")
    settings = {"api": "h3.polygon_to_cells (center containment), string cell ids",
                "single_threaded": True}
    if args.workload == "interp8":
        settings["interp8"] = "APPROXIMATE: population split equally among each commune's cells (not area-weighted)"
    write_sidecar(args.out, "h3py", f"h3 {h3.__version__} (H3 C {h3.versions()['c']}), geopandas {gpd.__version__}",
                  settings, ph, {"n_cells": len(keys), **extra})


if __name__ == "__main__":
    main()
