#!/usr/bin/env python3
"""rasterstats zonal statistics for the raster peer benchmark.

    python benches/peers/raster/run_rasterstats.py RASTER ZONES ID OUT.parquet \
        [--stats count,sum,mean,min,max] [--all-touched]

zonal_stats(geometries, raster_path, stats="count sum mean min max") with the raster's
own nodata. rasterstats picks whole pixels (pixel centre in the polygon, or every
touched pixel with --all-touched) instead of coverage fractions, so its numbers are
expected to differ from exactextract/terrastat. rasterstats ignores the band's
scale/offset; they are applied here afterwards (sum -> scale*sum + offset*count,
mean/min/max -> scale*v + offset) so that the values are comparable.
rasterstats is single-threaded.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rasterpeer import Phases, parse_args, raster_info, read_zones, write_result, write_sidecar  # noqa: E402


def main():
    ap = parse_args("rasterstats")
    ap.add_argument("--all-touched", action="store_true")
    args = ap.parse_args()
    stats = args.stats.split(",")

    ph = Phases()
    import rasterstats
    from rasterstats import zonal_stats
    ph.mark("import")

    zones = read_zones(args.zones, args.id)
    info = raster_info(args.raster)
    ph.mark("read")

    res = zonal_stats(list(zones.geometry), args.raster, stats=" ".join(stats),
                      all_touched=args.all_touched)
    ph.mark("compute")

    cols = {s: np.array([np.nan if r.get(s) is None else float(r[s]) for r in res]) for s in stats}
    scale, offset = info["scale"], info["offset"]
    if (scale, offset) != (1.0, 0.0):
        for s in stats:
            if s == "sum":
                n = np.array([float(r.get("count") or 0) for r in res])
                cols[s] = cols[s] * scale + offset * n
            elif s in ("mean", "min", "max"):
                cols[s] = cols[s] * scale + offset
    for s in ("count", "sum"):  # rasterstats gives count 0 / sum None for an empty zone
        if s in cols:
            cols[s] = np.where(np.isnan(cols[s]), 0.0, cols[s])
    write_result(zones[args.id].tolist(), args.id, cols, args.out)
    ph.mark("write")
    write_sidecar(args.out, "rasterstats", f"rasterstats {rasterstats.__version__}",
                  {"all_touched": args.all_touched, "threads": 1,
                   "scale_offset_applied_after": (scale, offset) != (1.0, 0.0)},
                  ph, {"n_zones": len(zones), "raster": info})


if __name__ == "__main__":
    main()
