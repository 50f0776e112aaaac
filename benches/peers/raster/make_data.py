#!/usr/bin/env python3
"""Generate the synthetic raster of the `large` workload of the raster peer benchmark.

    /work/venv-peers/bin/python benches/peers/raster/make_data.py \
        --communes /work/bench-data/idf/communes.parquet \
        --out /work/bench-data/raster/idf_20k.tif

Writes a 20,000 x 20,000 Float32 GeoTIFF (EPSG:2154, square pixels) whose extent covers
the 1,266 communes of Île-de-France (bounding box of the communes, centred, pixel size
rounded up to the cm), tiled 512 x 512, DEFLATE + floating-point predictor (3), nodata
-9999. Nothing here is committed: the file (~0.5 GB) lives outside the repo.

Values (an "elevation-like" field in metres, ~0..250):

    v(x, y) = 120 + 45 sin(2π x / 23 km) + 35 cos(2π y / 17 km)
                  + 15 sin(2π (x + y) / 7.1 km)
                  + 6 sin(2π x / 1.3 km) cos(2π y / 0.9 km)
                  + noise,   noise ~ U(-0.5, 0.5)

rounded to a multiple of 1/64 (so the low mantissa bits are zero and the file
compresses to a manageable size). The noise of each 512-row strip comes from
numpy.random.default_rng([seed, strip_index]), so the file is the same whatever the
strip order or machine. Nodata: 30 discs (centres uniform in the extent, radii
U(200 m, 3 km), from default_rng(seed)) are set to -9999.

The raster is written strip by strip (512 rows x full width, ~40 MB of float32) through
rasterio windows, so memory stays bounded (~0.3 GB peak). With --force an existing file
is overwritten; otherwise the script does nothing if the output exists.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

SIZE = 20_000
BLOCK = 512
NODATA = -9999.0
N_DISCS = 30


def grid_for(bounds, size=SIZE):
    """Square-pixel grid of size x size covering bounds (centred)."""
    minx, miny, maxx, maxy = bounds
    res = math.ceil(max(maxx - minx, maxy - miny) / size * 100) / 100  # cm
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    left = math.floor(cx - res * size / 2)
    top = math.ceil(cy + res * size / 2)
    return left, top, res


def field(xs, ys, rng):
    """Values on the grid xs (1-D, pixel-centre x) by ys (1-D, pixel-centre y)."""
    tau = 2 * math.pi
    fx = 45 * np.sin(tau * xs / 23_000)
    fy = 35 * np.cos(tau * ys / 17_000)
    v = 120 + fy[:, None] + fx[None, :]
    # sin(a + b) = sin a cos b + cos a sin b keeps the diagonal term separable
    ax, ay = tau * xs / 7_100, tau * ys / 7_100
    v += 15 * (np.cos(ay)[:, None] * np.sin(ax)[None, :] + np.sin(ay)[:, None] * np.cos(ax)[None, :])
    v += 6 * (np.cos(tau * ys / 900)[:, None] * np.sin(tau * xs / 1_300)[None, :])
    v += rng.uniform(-0.5, 0.5, size=v.shape)
    return (np.round(v * 64) / 64).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--communes", default="/work/bench-data/idf/communes.parquet")
    ap.add_argument("--out", default="/work/bench-data/raster/idf_20k.tif")
    ap.add_argument("--size", type=int, default=SIZE, help="pixels per side (default 20000)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    args = ap.parse_args()

    if os.path.exists(args.out) and not args.force:
        print(f"{args.out} exists; nothing to do (use --force to regenerate)")
        return

    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    communes = gpd.read_parquet(args.communes, columns=["insee", "geometry"])
    if communes.crs is None or communes.crs.to_epsg() != 2154:
        sys.exit(f"{args.communes}: expected EPSG:2154, got {communes.crs}")
    left, top, res = grid_for(communes.total_bounds, args.size)
    transform = from_origin(left, top, res, res)

    rng = np.random.default_rng(args.seed)
    cx = rng.uniform(left, left + res * args.size, N_DISCS)
    cy = rng.uniform(top - res * args.size, top, N_DISCS)
    radius = rng.uniform(200, 3_000, N_DISCS)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".partial.tif"
    profile = dict(driver="GTiff", width=args.size, height=args.size, count=1, dtype="float32",
                   crs="EPSG:2154", transform=transform, nodata=NODATA, tiled=True,
                   blockxsize=BLOCK, blockysize=BLOCK, compress="deflate", predictor=3,
                   zlevel=6, num_threads=2, BIGTIFF="IF_SAFER")
    t0 = time.perf_counter()
    xs = left + res * (np.arange(args.size) + 0.5)
    n_strips = (args.size + BLOCK - 1) // BLOCK
    with rasterio.open(tmp, "w", **profile) as dst:
        for s in range(n_strips):
            r0 = s * BLOCK
            nr = min(BLOCK, args.size - r0)
            ys = top - res * (np.arange(r0, r0 + nr) + 0.5)
            v = field(xs, ys, np.random.default_rng([args.seed, s]))
            # nodata discs that reach this strip
            for x0, y0, rad in zip(cx, cy, radius):
                if y0 - rad > ys[0] or y0 + rad < ys[-1]:
                    continue
                c0 = max(0, int((x0 - rad - left) / res) - 1)
                c1 = min(args.size, int((x0 + rad - left) / res) + 2)
                dx = xs[c0:c1] - x0
                dy = ys - y0
                inside = dy[:, None] ** 2 + dx[None, :] ** 2 <= rad * rad
                v[:, c0:c1][inside] = NODATA
            dst.write(v, 1, window=Window(0, r0, args.size, nr))
            if s % 8 == 0 or s == n_strips - 1:
                print(f"strip {s + 1}/{n_strips} ({time.perf_counter() - t0:.0f} s)", flush=True)
        dst.update_tags(generator="benches/peers/raster/make_data.py", seed=str(args.seed),
                        discs=json.dumps([[round(a, 1), round(b, 1), round(c, 1)] for a, b, c in zip(cx, cy, radius)]))
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {args.size} x {args.size}, pixel {res} m, origin ({left}, {top}), "
          f"{size / 2**20:.0f} MiB in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
