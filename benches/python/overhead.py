"""Overhead of the Python bindings over the Rust engine, in one process.

For each run, the engine measures its own duration (catalog `run.duration_s`:
reading, overlays, indicators, catalog); the Python wall time around
`terrastat.run` adds the binding's work: spawning the engine thread, waiting
without the GIL, exporting the tables through the Arrow PyCapsule interface,
converting them to pyarrow, parsing the catalog. Overhead = wall − engine.

    python benches/python/overhead.py SPEC.toml [--repeat 5] [--threads 2]
"""

import argparse
import statistics
import time

import pyarrow  # noqa: F401  (imported once up front: its import is not a per-run cost)

import terrastat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = terrastat.run(args.spec, threads=args.threads)
        wall = time.perf_counter() - t0
        engine = res.catalog["run"]["duration_s"]
        rows.append((wall, engine, wall - engine))
    for w, e, o in rows:
        print(f"wall {w:.3f} s  engine {e:.3f} s  overhead {o * 1000:.1f} ms ({100 * o / e:.2f} %)")
    o = statistics.median(r[2] for r in rows)
    e = statistics.median(r[1] for r in rows)
    print(f"median overhead {o * 1000:.1f} ms = {100 * o / e:.2f} % of the engine's {e:.3f} s")


if __name__ == "__main__":
    main()
