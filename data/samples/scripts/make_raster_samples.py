"""Build the raster samples of data/samples/{lux,olinda,pr} and idf92/canopy.tif.

Sources (Debian packages, fetched with `apt-get download r-cran-stars r-cran-terra`
and unpacked with `dpkg-deb -x <deb> <dir>`; see data/samples/SOURCES.md):
  terra/ex/elev.tif, terra/ex/lux.shp   -> lux/elev.tif (copied), lux/cantons.geojson
  stars/tif/L7_ETMs.tif                 -> olinda/l7_b34.tif (bands 3, 4), olinda/ndvi.tif
  stars/tif/lc.tif                      -> pr/landcover.tif (palette dropped, EPSG:5070)
and idf92/vegetation.parquet -> idf92/canopy.tif (20 m share of vegetation).

Usage: python make_raster_samples.py <dir with usr/lib/R/site-library> <data/samples>
Needs: numpy, rasterio, geopandas, shapely (e.g. pip install rasterio geopandas).
"""

import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.transform import from_origin

src = Path(sys.argv[1]) / "usr/lib/R/site-library"
out = Path(sys.argv[2])

# --- Luxembourg: SRTM elevation (EPSG:4326, nodata -32768) and its 12 cantons
(out / "lux").mkdir(exist_ok=True)
shutil.copyfile(src / "terra/ex/elev.tif", out / "lux/elev.tif")
lux = gpd.read_file(src / "terra/ex/lux.shp")
lux["id"] = lux["ID_2"].astype(int).astype(str)
lux[["id", "NAME_1", "NAME_2", "AREA", "geometry"]].to_file(
    out / "lux/cantons.geojson", driver="GeoJSON", COORDINATE_PRECISION=15
)

# --- Olinda (Brazil): Landsat 7 ETM+ bands 3 (red) and 4 (near infrared), 28.5 m, UTM 25S
(out / "olinda").mkdir(exist_ok=True)
with rasterio.open(src / "stars/tif/L7_ETMs.tif") as l7:
    b3, b4 = l7.read(3), l7.read(4)
    profile = l7.profile
profile.update(count=2, compress="deflate", predictor=2, tiled=False, blockysize=32)
with rasterio.open(out / "olinda/l7_b34.tif", "w", **profile) as dst:
    dst.write(b3, 1)
    dst.write(b4, 2)
    dst.set_band_description(1, "B3 red")
    dst.set_band_description(2, "B4 near infrared")
b3f, b4f = b3.astype("float64"), b4.astype("float64")
den = b4f + b3f
ndvi = np.where(den > 0, (b4f - b3f) / np.where(den > 0, den, 1), np.nan).astype("float32")
profile.update(count=1, dtype="float32", nodata=np.nan, predictor=3, tiled=True, blockxsize=128, blockysize=128)
with rasterio.open(out / "olinda/ndvi.tif", "w", **profile) as dst:
    dst.write(ndvi, 1)
    dst.set_band_description(1, "NDVI = (B4 - B3) / (B4 + B3)")

# --- Puerto Rico: NLCD land cover at 3 km (classes 11-95; 0 outside the island)
(out / "pr").mkdir(exist_ok=True)
with rasterio.open(src / "stars/tif/lc.tif") as lc:
    classes = lc.read(1)
    profile = lc.profile
profile.update(crs="EPSG:5070", photometric="minisblack", compress="deflate", nodata=0)
profile.pop("colormap", None)
with rasterio.open(out / "pr/landcover.tif", "w", **profile) as dst:
    dst.write(classes, 1)

# --- Hauts-de-Seine: share of each 20 m pixel covered by the (synthetic) vegetation
# layer, from a 2 m rasterisation (cell centres) averaged over 10 x 10 blocks;
# UInt16 with scale 1e-4; nodata (65535) where the pixel centre is outside the communes.
veg = gpd.read_parquet(out / "idf92/vegetation.parquet")
communes = gpd.read_parquet(out / "idf92/communes.parquet")
x0, y0, x1, y1 = communes.total_bounds
x0, y1 = np.floor(x0 / 20) * 20, np.ceil(y1 / 20) * 20
w, h = int(np.ceil((x1 - x0) / 20)), int(np.ceil((y1 - y0) / 20))
fine = rasterize(
    ((g, 1) for g in veg.geometry),
    out_shape=(h * 10, w * 10),
    transform=from_origin(x0, y1, 2, 2),
    dtype="uint8",
)
share = fine.reshape(h, 10, w, 10).mean(axis=(1, 3))
inside = rasterize(
    ((g, 1) for g in communes.geometry), out_shape=(h, w), transform=from_origin(x0, y1, 20, 20), dtype="uint8"
)
canopy = np.where(inside == 1, np.round(share * 10000), 65535).astype("uint16")
with rasterio.open(
    out / "idf92/canopy.tif",
    "w",
    driver="GTiff",
    width=w,
    height=h,
    count=1,
    dtype="uint16",
    crs="EPSG:2154",
    transform=from_origin(x0, y1, 20, 20),
    nodata=65535,
    compress="deflate",
    predictor=2,
    tiled=True,
    blockxsize=256,
    blockysize=256,
) as dst:
    dst.write(canopy, 1)
    dst.scales = (1e-4,)
    dst.offsets = (0.0,)
    dst.set_band_description(1, "share of the pixel covered by vegetation (0-1)")
print("done")
