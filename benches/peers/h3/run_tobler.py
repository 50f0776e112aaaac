#!/usr/bin/env python3
"""tobler implementation of the H3 workloads (h3fy + area_interpolate).

    python benches/peers/h3/run_tobler.py {fill9,interp8} DATA_DIR OUT.parquet [--threads 2] [--buffer]

fill9:   `tobler.util.h3fy(communes, resolution=9)` (clip=False, buffer=False): tobler
         unions all communes (in EPSG:4326), fills each polygon of the union with
         `h3.geo_to_cells` (center containment), builds every cell's polygon in lat/lng
         (`h3.cells_to_geo`) and reprojects the hexagons to the source CRS (EPSG:2154).
interp8: `hexes = h3fy(communes, resolution=8, clip=False[, buffer=True])`, then
         `tobler.area_weighted.area_interpolate(source_df=communes, target_df=hexes,
         extensive_variables=["population"], n_jobs=THREADS)` in EPSG:2154
         (allocate_total=True, the default). Without --buffer the target cells are those
         whose center lies in the union of the communes (h3fy's default); with --buffer
         h3fy buffers the communes by one cell edge length first, so every cell meeting a
         commune is a target (plus some cells meeting none, which get 0).
tobler's area table is float32 (relative differences ~1e-8 with float64 engines).
"""
import os
import sys

import geopandas as gpd
import h3
import tobler
from tobler.area_weighted import area_interpolate
from tobler.util import h3fy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h3common import WORKLOADS, Phases, communes_path, parse_args, write_cells, write_sidecar  # noqa: E402


def main():
    args = parse_args("tobler", lambda ap: ap.add_argument(
        "--buffer", action="store_true", help="interp8: h3fy(..., buffer=True)"))
    res = WORKLOADS[args.workload]
    ph = Phases()
    cols = ["insee", "population"] if args.workload == "interp8" else ["insee"]
    communes = gpd.read_parquet(communes_path(args.data_dir), columns=cols + ["geometry"])
    ph.mark("read")

    if args.workload == "fill9":
        hexes = h3fy(communes, resolution=res)
        pop = None
    else:
        hexes = h3fy(communes, resolution=res, clip=False, buffer=args.buffer)
        if not hexes.crs.equals(communes.crs):  # h3fy already reprojects to the source CRS
            hexes = hexes.to_crs(communes.crs)
        est = area_interpolate(source_df=communes, target_df=hexes, extensive_variables=["population"],
                               n_jobs=args.threads)
        pop = est["population"].to_numpy()  # positional: area_interpolate resets the target index
    ph.mark("compute")

    ids = [h3.str_to_int(c) for c in hexes.index]
    write_cells(args.out, ids, population=pop, area_m2=hexes.to_crs(communes.crs).area.to_numpy())
    ph.mark("write")
    settings = {"h3fy": f"resolution={res}, clip=False, buffer={bool(args.buffer) if args.workload == 'interp8' else False}"}
    if args.workload == "interp8":
        settings["area_interpolate"] = f"extensive_variables=['population'], allocate_total=True, n_jobs={args.threads}"
    write_sidecar(args.out, "tobler", f"tobler {tobler.__version__}, geopandas {gpd.__version__}, h3 {h3.__version__}",
                  settings, ph, {"n_cells": len(ids)})


if __name__ == "__main__":
    main()
