"""SQL text of the workloads, shared by run_duckdb.py and run_sedonadb.py.

Tables expected: communes(insee, geometry), buildings(id, floor_area, geometry),
vegetation(geometry), flood(geometry). Every query returns one row per commune.
Spatial predicates are kept in plain inner joins (which both engines turn into a
spatial join); communes without a match are added back with equi LEFT JOINs.
"""

# (building, commune) pairs by area centroid; ST_Intersects: a centroid on a shared
# boundary counts in both communes (same as the geopandas sjoin predicate).
ASSIGN = """
    SELECT c.insee, b.id, b.floor_area
    FROM (SELECT id, floor_area, ST_Centroid(geometry) AS pt FROM buildings) b
    JOIN communes c ON ST_Intersects(c.geometry, b.pt)
"""

A = f"""
WITH assign AS ({ASSIGN}),
agg AS (SELECT insee, count(*) AS n_buildings, sum(floor_area) AS floor_sum
        FROM assign GROUP BY insee)
SELECT c.insee, coalesce(agg.n_buildings, 0) AS n_buildings, coalesce(agg.floor_sum, 0.0) AS floor_sum
FROM communes c LEFT JOIN agg ON c.insee = agg.insee
"""

# tobler area_interpolate(extensive, allocate_total=True):
#   floor_ext(z) = sum_f floor_area_f * area(f ∩ z) / sum_k area(f ∩ z_k)
B = """
WITH pieces AS (
    SELECT c.insee, b.id, b.floor_area, ST_Area(ST_Intersection(b.geometry, c.geometry)) AS a
    FROM buildings b JOIN communes c ON ST_Intersects(b.geometry, c.geometry)),
tot AS (SELECT id, sum(a) AS a_tot FROM pieces GROUP BY id),
agg AS (SELECT p.insee, sum(p.floor_area * p.a / t.a_tot) AS floor_ext
        FROM pieces p JOIN tot t ON p.id = t.id
        WHERE t.a_tot > 0 GROUP BY p.insee)
SELECT c.insee, coalesce(agg.floor_ext, 0.0) AS floor_ext
FROM communes c LEFT JOIN agg ON c.insee = agg.insee
"""

# Union the vegetation polygons touching each commune first (no double counting of
# overlaps), then intersect the union with the commune. Invalid (self-intersecting)
# vegetation polygons are repaired with ST_MakeValid first, like terrastat's default
# `invalid = "repair"`: without it DuckDB spatial's ST_Union_Agg crashes (SIGSEGV) on the
# generator's 77 self-intersecting polygons instead of raising GEOS' TopologyException.
C = """
WITH u AS (
    SELECT c.insee, ST_Union_Agg(ST_MakeValid(v.geometry)) AS geom
    FROM vegetation v JOIN communes c ON ST_Intersects(v.geometry, c.geometry)
    GROUP BY c.insee)
SELECT c.insee,
       coalesce(ST_Area(ST_Intersection(u.geom, c.geometry)) / ST_Area(c.geometry), 0.0) AS veg_share
FROM communes c LEFT JOIN u ON c.insee = u.insee
"""

D = f"""
WITH assign AS ({ASSIGN}),
flooded AS (SELECT DISTINCT b.id
            FROM buildings b JOIN flood f ON ST_Intersects(b.geometry, f.geometry)),
agg AS (SELECT a.insee, count(*) AS n, count(fl.id) AS n_flooded
        FROM assign a LEFT JOIN flooded fl ON a.id = fl.id GROUP BY a.insee)
SELECT c.insee, CAST(agg.n_flooded AS DOUBLE) / CAST(agg.n AS DOUBLE) AS flood_share
FROM communes c LEFT JOIN agg ON c.insee = agg.insee
"""

ALL = f"""
WITH qa AS ({A}), qb AS ({B}), qc AS ({C}), qd AS ({D})
SELECT qa.insee, qa.n_buildings, qa.floor_sum, qb.floor_ext, qc.veg_share, qd.flood_share
FROM qa JOIN qb ON qa.insee = qb.insee JOIN qc ON qa.insee = qc.insee JOIN qd ON qa.insee = qd.insee
"""

QUERIES = {"a": A, "b": B, "c": C, "d": D, "all": ALL}
