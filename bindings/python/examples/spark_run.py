"""Run a terrastat spec on Apache Spark: the buildings spread over the cluster.

Here (one machine, Spark in local[2], the sample data of the repository):

    pip install pyspark==4.0.1 ./bindings/python      # and a Java 17 runtime
    python bindings/python/examples/spark_run.py data/samples/idf92/indicators_spark.toml

On a cluster, the same script with the master of the cluster and paths every
executor can read (the spec's zone files and the layers), e.g.:

    spark-submit --master yarn --conf spark.executorEnv.PYSPARK_PYTHON=python3 \\
        bindings/python/examples/spark_run.py s3://bucket/france/indicators.toml \\
        --buildings s3://bucket/france/buildings/ --flood s3://bucket/france/flood.parquet \\
        --key-res 5 --split-above 2000000 --fine-res 7

terrastat (with pyarrow) must be installed on every executor.
"""

import argparse
import os
import sys
import tomllib

from pyspark.sql import SparkSession

import terrastat.spark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--buildings", help="buildings (GeoParquet file or directory); default: the spec's path")
    ap.add_argument("--flood", help="flood zones; default: the spec's path")
    ap.add_argument("--key-res", type=int, default=5)
    ap.add_argument("--split-above", type=int, default=2_000_000)
    ap.add_argument("--fine-res", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.master(args.master).appName("terrastat").getOrCreate()
    with open(args.spec, "rb") as f:
        doc = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(args.spec))
    path = lambda name: os.path.join(base, doc["layers"][name]["path"])  # noqa: E731
    layers = {"buildings": spark.read.parquet(args.buildings or path("buildings"))}
    if "flood" in doc.get("layers", {}):
        layers["flood"] = spark.read.parquet(args.flood or path("flood"))
    res = terrastat.spark.run(
        spark,
        args.spec,
        layers,
        key_res=args.key_res,
        split_above=args.split_above,
        fine_res=args.fine_res,
    )
    for zones, table in res.items():
        print(f"{zones}: {table.num_rows} zones, columns {table.column_names}")
    print("spread:", res.spark)
    spark.stop()


if __name__ == "__main__":
    main()
