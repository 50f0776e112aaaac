#!/usr/bin/env python3
"""exactextract (Python bindings) zonal statistics for the raster peer benchmark.

    python benches/peers/raster/run_exactextract.py RASTER ZONES ID OUT.parquet \
        [--stats count,sum,mean,min,max] [--strategy feature-sequential]

exact_extract(raster_path, gdf, ops, include_cols=[...], output="pandas"). The raster is
opened by exactextract itself (rasterio source here, since the GDAL Python bindings are
not installed); scale/offset are applied and nodata is honoured by exactextract. The id
column is renamed to a private name before the call (with output="pandas",
include_cols=["id"] can pick up the GeoJSON feature id instead of the property), and
the result is checked to be in zone order. exactextract is single-threaded.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rasterpeer import Phases, parse_args, raster_info, read_zones, write_result, write_sidecar  # noqa: E402

KEY = "__zone_id__"


def main():
    ap = parse_args("exactextract")
    ap.add_argument("--strategy", default="feature-sequential",
                    choices=["feature-sequential", "raster-sequential"])
    args = ap.parse_args()
    stats = args.stats.split(",")

    ph = Phases()
    import exactextract
    from exactextract import exact_extract
    ph.mark("import")

    zones = read_zones(args.zones, args.id).rename(columns={args.id: KEY})
    ph.mark("read")

    df = exact_extract(args.raster, zones, stats, include_cols=[KEY], output="pandas",
                       strategy=args.strategy)
    ph.mark("compute")

    if list(df[KEY].astype(str)) != list(zones[KEY]):
        sys.exit("exactextract output is not in zone order / ids do not match")
    write_result(zones[KEY].tolist(), args.id, {s: df[s].to_numpy(dtype="float64") for s in stats}, args.out)
    ph.mark("write")
    write_sidecar(args.out, "exactextract", f"exactextract {exactextract.__version__}",
                  {"strategy": args.strategy, "raster_source": "rasterio (path given to exact_extract)",
                   "threads": 1},
                  ph, {"n_zones": len(zones), "raster": raster_info(args.raster)})


if __name__ == "__main__":
    main()
