"""Run a terrastat spec on Apache Spark (PySpark >= 4.0), beyond one machine.

The largest layer (``streamed``, e.g. buildings) is spread over the cluster;
zones are read by every worker from the spec's paths (a shared file system or
object store in production), once per Python worker process. The plan:

1. **Keys.** Each feature of ``streamed`` is keyed by the H3 cell of its
   centroid at ``key_res`` (``mapInArrow`` calling the Rust kernel).
   **Skew:** a key holding more than ``split_above`` features (Paris at
   resolution 5) is split: its features are keyed by their resolution-
   ``fine_res`` cell instead, so a dense cell becomes up to 7**(fine_res -
   key_res) groups.
2. **Context.** Each feature of a layer that the streamed layer's indicators
   relate to (``share_within``'s ``other``) is duplicated to every key whose
   cell meets its bounding box grown by the largest extent of a streamed
   feature (``margin``): a feature of ``streamed`` keyed to cell c can only
   meet context features whose grown box meets c, so every pair is seen.
3. **Kernel.** ``groupBy(key).cogroup(context.groupBy(key)).applyInArrow``:
   the Rust kernel folds each group's features into per-zone partial
   aggregates (a long Arrow table whose types are exactly the declared
   Spark schema ``PARTIALS_SCHEMA``).
4. **Combine.** ``groupBy(zones, zone, indicator, category, slot, op,
   scale)``: ``sum(digit)`` for the decomposable partials, min / max of
   ``value`` for extremes. A partial sum travels as base-2**32 integer
   digits, one row per binary ``scale`` (``digit * 2**(32 * scale)``), so
   Spark adds them as 64-bit integers: exactly, in whatever order the
   shuffle delivers them.
5. **Finish**, on the driver: the combined partials become indicators
   (ratios, means and shares computed last) and every other indicator of
   the spec (coverage of vegetation, rasters, medians) is computed from the
   other layers, as a single machine would.

Every feature is owned by exactly one key, and terrastat's sums are exact,
rounded once at the end (on one machine too), so every value equals the
single-machine run's bit for bit, whatever the keys, the split and the
shuffle order.

Indicators over ``streamed`` must be streamable (counts, sums, densities,
means, minima, maxima, extensive / intensive interpolation, ``share_within``,
``category_share``); ``nearest_distance`` and medians over it are refused
(the nearest feature may be in any partition; a median is not decomposable).

Example (``local[2]`` here; the same call on any cluster)::

    from pyspark.sql import SparkSession
    import terrastat.spark
    spark = SparkSession.builder.master("local[2]").getOrCreate()
    b = spark.read.parquet("buildings/")          # WKB `geometry` + attributes
    f = spark.read.parquet("flood.parquet")
    res = terrastat.spark.run(spark, "indicators.toml", {"buildings": b, "flood": f})
    res["communes"]                               # a pyarrow.Table
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Dict, Optional

from terrastat import Results, _results
from terrastat._terrastat import at_once as _at_once
from terrastat._terrastat import centroid_keys, finish_partials, max_extent, meeting_keys
from terrastat._terrastat import partition_partials as _partition_partials

__all__ = ["PARTIALS_SCHEMA", "run"]

#: The Spark schema of the kernel's output (its Arrow types match exactly:
#: utf8, int64, utf8, utf8, int32, utf8, int32, int64, float64).
PARTIALS_SCHEMA = (
    "zones string, zone long, indicator string, category string, slot int, op string, "
    "scale int, digit long, value double"
)

_KEYS = ["zones", "zone", "indicator", "category", "slot", "op", "scale"]


def _pa():
    import pyarrow as pa

    return pa


def run(
    spark: Any,
    spec: "os.PathLike[str] | str",
    layers: Dict[str, Any],
    streamed: str = "buildings",
    key_res: int = 5,
    split_above: int = 2_000_000,
    fine_res: int = 7,
    geometry: bool = False,
) -> Results:
    """Run ``spec`` with ``layers[streamed]`` spread over the cluster.

    ``layers`` maps layer names of the spec to Spark DataFrames with a WKB
    ``geometry`` column (in the layer's ``crs`` from the spec, else the
    spec's working CRS) and the attribute columns the indicators use. Layers
    of the spec not given are read from their paths on the driver. Returns
    the same :class:`terrastat.Results` as :func:`terrastat.run` (tables as
    pyarrow Tables, and the catalog).
    """
    from pyspark.sql import functions as F

    pa = _pa()
    path = os.path.abspath(os.fspath(spec))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doc = tomllib.loads(text)
    if streamed not in layers:
        raise ValueError(f"layers has no DataFrame for the streamed layer `{streamed}`")
    working = doc.get("crs", "")
    crs_of = {n: (l.get("crs") or working) for n, l in doc.get("layers", {}).items()}
    mine = [i for i in doc.get("indicators", []) if i.get("layer") == streamed]
    # What needs every feature at once, as the engine says (medians,
    # quantiles, union areas); and distances to the nearest feature of another
    # layer, which a partition cannot bound.
    whole = _at_once(text, path, streamed)
    whole += [(i.get("name"), "nearest_distance") for i in mine if i.get("kind") == "nearest_distance"]
    for name, kind in whole:
        raise ValueError(
            f"indicator `{name}` ({kind}) needs every feature of "
            f"`{streamed}` at once: it cannot be spread over a cluster"
        )
    others = sorted({i["other"] for i in mine if i.get("other")})
    for o in others:
        if o not in layers:
            raise ValueError(f"layers has no DataFrame for `{o}`, which `{streamed}` relates to")

    crs = crs_of.get(streamed, working)
    b = layers[streamed]

    # 1. Keys, and the split of dense keys.
    def keyed(res, split=None, fine=None):
        split = set(split or [])

        def add(batches):
            for batch in batches:
                t = pa.Table.from_batches([batch])
                k = centroid_keys(t, crs, res)
                if split:
                    kf = centroid_keys(t, crs, fine)
                    k = [f if c in split else c for c, f in zip(k, kf)]
                yield batch.append_column("_key", pa.array(k, pa.int64()))

        return add

    from pyspark.sql.types import LongType, StructField, StructType

    key_schema = StructType(list(b.schema.fields) + [StructField("_key", LongType())])
    coarse = b.mapInArrow(keyed(key_res), key_schema)
    heavy = [
        r["_key"]
        for r in coarse.groupBy("_key").count().where(F.col("count") > split_above).collect()
    ]
    parts = b.mapInArrow(keyed(key_res, heavy, fine_res), key_schema) if heavy else coarse

    # 2. Context layers, duplicated to every key their grown box meets.
    def extent(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict(
                {"e": [max_extent(pa.Table.from_batches([batch]))]},
                schema=pa.schema([("e", pa.float64())]),
            )

    margin = b.mapInArrow(extent, "e double").agg(F.max("e")).collect()[0][0] or 0.0
    ctx_schema = "_key long, _layer string, geometry binary"
    ctx = None
    for o in others:

        def explode(batches, o=o):
            for batch in batches:
                t = pa.Table.from_batches([batch])
                rows, keys = meeting_keys(
                    t, crs_of.get(o, working), key_res, margin, heavy, fine_res
                )
                g = t.column("geometry").combine_chunks().take(pa.array(rows, pa.int64()))
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array(keys, pa.int64()),
                        pa.array([o] * len(keys), pa.string()),
                        g.cast(pa.binary()),
                    ],
                    names=["_key", "_layer", "geometry"],
                )

        d = layers[o].select("geometry").mapInArrow(explode, ctx_schema)
        ctx = d if ctx is None else ctx.unionByName(d)
    if ctx is None:
        ctx = spark.createDataFrame([], ctx_schema)

    # 3. The kernel, on each key's features and context.
    def kernel(left, right):
        data = {streamed: left.drop_columns(["_key"])}
        for o in others:
            sel = right.filter(pa.compute.equal(right.column("_layer"), o))
            data[o] = sel.select(["geometry"])
        out = pa.table(_partition_partials(text, path, streamed, data))
        return out

    import pyarrow.compute  # noqa: F401  (pa.compute in the kernel)

    partial = parts.groupBy("_key").cogroup(ctx.groupBy("_key")).applyInArrow(
        kernel, PARTIALS_SCHEMA
    )

    # 4. Combine per zone: integer sums of digits (exact in any order), or
    #    min / max for extremes (a non-finite sum's value adds as IEEE does).
    combined = (
        partial.groupBy(*_KEYS)
        .agg(
            F.sum("digit").alias("digit"),
            F.sum("value").alias("s"),
            F.min("value").alias("lo"),
            F.max("value").alias("hi"),
        )
        .select(
            *_KEYS,
            "digit",
            F.when(F.col("op") == "min", F.col("lo"))
            .when(F.col("op") == "max", F.col("hi"))
            .otherwise(F.col("s"))
            .alias("value"),
        )
    )
    table = combined.toArrow()

    # 5. Finish on the driver; other layers given as DataFrames come along.
    data = {
        n: df.toArrow() for n, df in layers.items() if n != streamed and n not in others
    }
    tables, catalog = finish_partials(text, path, streamed, table, data, geometry=geometry)
    res = _results(tables, catalog, True)
    #: How the run was spread: dense keys split, the context margin, rows combined.
    res.spark = {
        "key_res": key_res,
        "split_keys": len(heavy),
        "fine_res": fine_res,
        "margin": margin,
        "partial_rows": table.num_rows,
    }
    return res
