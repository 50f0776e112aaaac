#!/usr/bin/env python3
"""H3 peer benchmark: terrastat vs h3-py, tobler (h3fy + area_interpolate) and DuckDB's
h3 extension, each tool x workload in its own process; wall time, peak RSS, agreement;
writes results.json + results.md.

    python benches/peers/h3/compare_h3.py --data DATA_DIR --terrastat BIN \
        [--duckdb-python /path/to/duckdb-1.5.2-venv/bin/python] [--repeat 3]

Workloads (DATA_DIR/communes.parquet, EPSG:2154, columns insee, population, geometry):
  fill9   polygon fill of all communes at res 9, center containment; output = cell set
  interp8 population -> res-8 cells, area-weighted (extensive, allocate_total)
Tools: terrastat (when --terrastat is given), h3py (fill9; interp8 = approximate equal
split, NOT area-weighted), tobler (both), duckdb_h3 (fill9; needs --duckdb-python).
Measurement (wall time of the whole process, peak RSS of the process tree polled every
20 ms, fastest of --repeat runs) is compare.py's run_measured.
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import sys

import h3
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benches/peers
from compare import _py, machine, run_measured, terrastat_version, write_results  # noqa: E402

WORKLOADS = {"fill9": 9, "interp8": 8}
TOOLS = {"fill9": ["terrastat", "h3py", "tobler", "duckdb_h3"],
         "interp8": ["terrastat", "tobler", "h3py"]}
NOT_APPLICABLE = {("duckdb_h3", "interp8"): "needs polygon intersection areas (spatial extension), "
                                            "which has no DuckDB 1.5.2 build on PyPI"}
DEFAULT_TERRASTAT_CMD = "{bin} run {spec} --out {out} --threads {threads} -q"
RTOL = 1e-6

SPEC_FILL9 = """crs = "EPSG:2154"
[zones.communes]
path = "{communes}"
id = "insee"
[zones.hex9]
h3 = 9
cover = "communes"
mode = "centroid"
[[indicators]]
name = "cell_area"
kind = "area"
zones = "hex9"
"""
SPEC_INTERP8 = """crs = "EPSG:2154"
[layers.communes_layer]
path = "{communes}"
[zones.communes]
path = "{communes}"
id = "insee"
[zones.hex8]
h3 = 8
cover = "communes"
mode = "{mode}"
[[indicators]]
name = "cell_area"
kind = "area"
zones = "hex8"
[[indicators]]
name = "pop"
kind = "extensive"
layer = "communes_layer"
column = "population"
zones = "hex8"
"""


def write_specs(args, work):
    communes = os.path.join(args.data, "communes.parquet")
    specs = {"fill9": SPEC_FILL9.format(communes=communes),
             "interp8": SPEC_INTERP8.format(communes=communes, mode=args.interp8_mode)}
    paths = {}
    for w, text in specs.items():
        paths[w] = os.path.join(work, f"terrastat_{w}.toml")
        with open(paths[w], "w") as f:
            f.write(text)
    return paths


def command(args, tool, workload, spec, out):
    if tool == "terrastat":
        return shlex.split(args.terrastat_cmd.format(bin=shlex.quote(args.terrastat), spec=shlex.quote(spec),
                                                     out=shlex.quote(out), threads=args.threads))
    py = args.duckdb_python if tool == "duckdb_h3" else args.python
    cmd = [py, os.path.join(HERE, f"run_{tool}.py"), workload, args.data, out, "--threads", str(args.threads)]
    if tool == "tobler" and workload == "interp8" and args.tobler_buffer:
        cmd.append("--buffer")
    return cmd


def load_output(tool, workload, out):
    """-> DataFrame indexed by h3 (uint64): [population] [area_m2]."""
    if tool == "terrastat":
        df = pd.read_parquet(os.path.join(out, f"hex{WORKLOADS[workload]}.parquet"))
        df = df.rename(columns={"pop": "population", "cell_area": "area_m2"}).drop(columns=["h3_str"])
    else:
        df = pd.read_parquet(out)
    if "h3" not in df.columns or (workload == "interp8" and "population" not in df.columns):
        raise ValueError(f"{out}: columns {list(df.columns)}")
    df["h3"] = df["h3"].astype("uint64")
    if df["h3"].duplicated().any():
        raise ValueError(f"{out}: duplicated cell ids")
    return df.set_index("h3").sort_index()


def run_one(args, tool, workload, specs, work):
    tag = f"{tool}_{workload}"
    out = os.path.join(work, tag if tool == "terrastat" else tag + ".parquet")
    cmd = command(args, tool, workload, specs.get(workload), out)
    runs = []
    for i in range(args.repeat):
        if tool == "terrastat":
            shutil.rmtree(out, ignore_errors=True)
        elif os.path.exists(out):
            os.remove(out)
        r = run_measured(cmd, os.path.join(work, f"{tag}.run{i}"), args.timeout)
        runs.append(r)
        if not r["ok"]:
            break
    best = min((r for r in runs if r["ok"]), key=lambda r: r["wall_s"], default=runs[-1])
    res = {"tool": tool, "workload": workload, "command": " ".join(shlex.quote(c) for c in cmd),
           **best, "all_wall_s": [r["wall_s"] for r in runs]}
    table = None
    if res["ok"]:
        try:
            table = load_output(tool, workload, out)
            res["n_cells"] = len(table)
        except Exception as e:  # noqa: BLE001
            res.update(ok=False, error=f"bad output: {e}")
    if tool != "terrastat" and os.path.exists(out + ".json"):
        with open(out + ".json") as f:
            res["script"] = json.load(f)
    return res, table


# ---------------------------------------------------------------------------- agreement

def hexes(ids, n=5):
    return [h3.int_to_str(int(i)) for i in list(ids)[:n]]


def compare_sets(ref, a, b):
    sa, sb = set(a.index), set(b.index)
    only_a, only_b = sorted(sa - sb), sorted(sb - sa)
    return {"ref": ref, "n_ref": len(sa), "n_tool": len(sb), "n_common": len(sa & sb),
            "n_only_ref": len(only_a), "n_only_tool": len(only_b),
            "sym_diff": len(only_a) + len(only_b), "examples_only_ref": hexes(only_a),
            "examples_only_tool": hexes(only_b), "agree": not only_a and not only_b}


def compare_pop(ref, a, b):
    r = compare_sets(ref, a, b)
    common = a.index.intersection(b.index)
    x, y = a.loc[common, "population"].to_numpy(float), b.loc[common, "population"].to_numpy(float)
    diff = np.abs(x - y)
    scale = np.maximum(np.abs(x), np.abs(y))
    rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1), 0.0)
    bad = rel > RTOL
    r.update(pop_only_ref=float(a.loc[a.index.difference(b.index), "population"].sum()),
             pop_only_tool=float(b.loc[b.index.difference(a.index), "population"].sum()),
             max_rel_diff=float(rel.max()) if rel.size else 0.0,
             n_differ=int(bad.sum()), median_rel_diff=float(np.median(rel)) if rel.size else 0.0)
    if rel.size and rel.max() > 0:
        i = int(rel.argmax())
        r["worst"] = {"h3": h3.int_to_str(int(common[i])), "ref": float(x[i]), "tool": float(y[i])}
    r["agree"] = r["agree"] and r["n_differ"] == 0
    return r


def area_stats(df, res, ref_df=None):
    if df is None or "area_m2" not in df.columns:
        return None
    nominal = h3.average_hexagon_area(res, "m^2")
    ratio = df["area_m2"].to_numpy(float) / nominal
    s = {"n": len(df), "nominal_m2": nominal, "min_ratio": float(ratio.min()), "max_ratio": float(ratio.max()),
         "mean_ratio": float(ratio.mean())}
    if ref_df is not None and "area_m2" in ref_df.columns:
        common = df.index.intersection(ref_df.index)
        x, y = ref_df.loc[common, "area_m2"].to_numpy(float), df.loc[common, "area_m2"].to_numpy(float)
        s["max_rel_diff_vs_ref"] = float((np.abs(x - y) / np.maximum(x, y)).max()) if len(common) else None
    return s


# ---------------------------------------------------------------------------- report

def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def markdown(rep):
    by = {(r["tool"], r["workload"]): r for r in rep["runs"]}
    tools = [t for t in ["terrastat", "h3py", "tobler", "duckdb_h3"] if t in rep["tools"]]
    W = rep["workloads"]
    L = [f"# H3 peer comparison ({rep['date']})", "",
         f"Data: `{rep['data_dir']}/communes.parquet`: {rep['n_communes']:,} communes, "
         f"population {rep['population_total']:,}.", "",
         f"Machine: {rep['machine']['cpus']} CPUs, {rep['machine']['mem_gib']} GiB, {rep['machine']['platform']}. "
         f"Threads: {rep['threads']}. Repeats: {rep['repeat']} (fastest kept). "
         f"terrastat interp8 mode: `{rep['interp8_mode']}`; tobler h3fy buffer (interp8): {rep['tobler_buffer']}.", "",
         "Versions / settings:", ""]
    for t in tools:
        L.append(f"- **{t}**: {rep['versions'].get(t, '?')}; {json.dumps(rep['settings'].get(t, {}))}")
    L += ["", "## Wall time (s) · peak RSS (MiB) · × terrastat (time / memory)", "",
          "| tool | " + " | ".join(W) + " |", "|---" * (len(W) + 1) + "|"]
    for t in tools:
        cells = []
        for w in W:
            r = by.get((t, w))
            if (t, w) in NOT_APPLICABLE:
                cells.append("n/a")
            elif r is None:
                cells.append("not run")
            elif not r["ok"]:
                cells.append("FAILED")
            else:
                c = f"{fmt(r['wall_s'])} s · {fmt(r['peak_rss_mib'], 0)} MiB"
                ref = by.get(("terrastat", w))
                if t != "terrastat" and ref and ref["ok"]:
                    c += f" · ×{r['wall_s'] / ref['wall_s']:.1f} / ×{r['peak_rss_mib'] / ref['peak_rss_mib']:.1f}"
                if t == "h3py" and w == "interp8":
                    c += " (approx., not area-weighted)"
                cells.append(c)
        L.append(f"| {t} | " + " | ".join(cells) + " |")
    L += ["", "Whole process, spawn to exit (Python: interpreter start and imports included). "
          "In-script phases of the Python tools:", "",
          "| tool | workload | phases (s) | in-script total s |", "|---|---|---|---|"]
    for r in rep["runs"]:
        s = r.get("script")
        if r["ok"] and s:
            ph = ", ".join(f"{k[:-2]} {v:.2f}" for k, v in s.items() if k.endswith("_s") and k != "script_total_s")
            L.append(f"| {r['tool']} | {r['workload']} | {ph} | {fmt(s.get('script_total_s'))} |")
    na = [f"- **{t} / {w}**: not applicable: {why}" for (t, w), why in NOT_APPLICABLE.items()
          if t in rep["tools"] and w in W]
    na += [f"- **{t}**: not run: {why}" for t, why in rep.get("skipped", {}).items()]
    failed = [f"- **{r['tool']} / {r['workload']}** FAILED: {(r.get('error') or '').replace(chr(10), ' ')[-600:]}"
              for r in rep["runs"] if not r["ok"]]
    if na or failed:
        L += ["", "## Not run / failed", ""] + na + failed
    ag = rep["agreement"]
    if ag.get("fill9"):
        L += ["", "## fill9 agreement (cell sets)", "",
              "| tool | cells | ref cells | only in ref | only in tool | symmetric diff | examples |", "|---|---|---|---|---|---|---|"]
        for t, a in ag["fill9"].items():
            ex = ", ".join(a["examples_only_ref"][:3] + a["examples_only_tool"][:3])
            L.append(f"| {t} vs {a['ref']} | {a['n_tool']:,} | {a['n_ref']:,} | {a['n_only_ref']} | {a['n_only_tool']} | "
                     f"**{a['sym_diff']}** | {ex} |")
    if ag.get("interp8"):
        L += ["", f"## interp8 agreement (population per cell, joined on cell id; differ = rel diff > {RTOL:g})", "",
              f"Communes' total population: {rep['population_total']:,}.", "",
              "| tool | cells | total pop (rel. to communes) | common / only ref / only tool (pop there) | "
              "max rel diff | median rel diff | cells differ | worst cell (ref vs tool) |", "|---|---|---|---|---|---|---|---|"]
        for t, a in ag["interp8"].items():
            tot = a["total"]
            rt = f"{tot:,.1f} ({(tot - rep['population_total']) / rep['population_total']:+.1e})"
            if t == a.get("ref"):
                L.append(f"| {t} (ref) | {a['n_tool']:,} | {rt} | | | | | |")
                continue
            w = a.get("worst")
            ws = f"{w['h3']}: {w['ref']:.6g} vs {w['tool']:.6g}" if w else ""
            L.append(f"| {t} | {a['n_tool']:,} | {rt} | {a['n_common']:,} / {a['n_only_ref']} ({a['pop_only_ref']:.4g}) / "
                     f"{a['n_only_tool']} ({a['pop_only_tool']:.4g}) | {a['max_rel_diff']:.2e} | {a['median_rel_diff']:.1e} | "
                     f"{a['n_differ']:,}/{a['n_common']:,} | {ws} |")
    if rep.get("area_stats"):
        L += ["", "## Cell areas in EPSG:2154 vs the nominal H3 average (`h3.average_hexagon_area(res, 'm^2')`)", "",
              "| workload | tool | cells | nominal m² | min ratio | mean ratio | max ratio | max rel diff vs terrastat |",
              "|---|---|---|---|---|---|---|---|"]
        for key, s in rep["area_stats"].items():
            w, t = key.split("/")
            L.append(f"| {w} | {t} | {s['n']:,} | {s['nominal_m2']:,.0f} | {s['min_ratio']:.4f} | {s['mean_ratio']:.4f} | "
                     f"{s['max_ratio']:.4f} | {'-' if s.get('max_rel_diff_vs_ref') is None else format(s['max_rel_diff_vs_ref'], '.1e')} |")
    L += ["", "Expected differences: h3-py / DuckDB / tobler test cell centers against the communes in lat/lng, "
          "terrastat in EPSG:2154 (differences only for centers within ~mm of a boundary); tobler fills the union "
          "of the communes (gaps and overlaps between communes are merged). interp8: tobler's targets are h3fy's "
          "cells (centers in the union, unless buffer) and its area table is float32; terrastat `covers` targets "
          "every cell meeting a commune, so per-cell values differ in cells whose commune meets cells that "
          "tobler lacks. Cell polygons: tobler = lat/lng vertices reprojected to EPSG:2154 with straight edges."]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory holding communes.parquet")
    ap.add_argument("--terrastat", help="terrastat binary")
    ap.add_argument("--terrastat-cmd", default=DEFAULT_TERRASTAT_CMD)
    ap.add_argument("--tools", default="h3py,tobler,duckdb_h3", help="peers to run")
    ap.add_argument("--workloads", default="fill9,interp8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--python", default=sys.executable, help="interpreter for h3py / tobler (needs h3, tobler)")
    ap.add_argument("--duckdb-python", help="interpreter with duckdb==1.5.2 + haybarn-ext-h3-h1-5-2 (see README)")
    ap.add_argument("--interp8-mode", default="covers", choices=["covers", "intersects", "centroid", "contains"],
                    help="terrastat cover mode of the res-8 zones (default covers)")
    ap.add_argument("--tobler-buffer", action="store_true", help="interp8: h3fy(..., buffer=True)")
    ap.add_argument("--work", help="outputs and logs (default DATA_DIR/h3_peers_out)")
    ap.add_argument("--results", default=HERE, help="where results.json / results.md go")
    args = ap.parse_args()

    args.data = os.path.abspath(args.data)
    work = os.path.abspath(args.work or os.path.join(args.data, "h3_peers_out"))
    os.makedirs(work, exist_ok=True)
    workloads = args.workloads.split(",")
    peers = [t for t in args.tools.split(",") if t]
    skipped = {}
    if "duckdb_h3" in peers and not args.duckdb_python:
        peers.remove("duckdb_h3")
        skipped["duckdb_h3"] = "no --duckdb-python given"
    tools = (["terrastat"] if args.terrastat else []) + peers
    if args.terrastat and os.path.exists(args.terrastat):
        args.terrastat = os.path.abspath(args.terrastat)
    specs = write_specs(args, work) if args.terrastat else {}
    comm = pq.read_table(os.path.join(args.data, "communes.parquet"), columns=["population"])
    pop_total = int(comm.column("population").to_numpy().sum())

    runs, agreement, areas = [], {}, {}
    for w in workloads:
        tables = {}
        for t in [t for t in TOOLS[w] if t in tools and (t, w) not in NOT_APPLICABLE]:
            print(f"[{w}] {t} ...", end=" ", flush=True)
            res, table = run_one(args, t, w, specs, work)
            runs.append(res)
            tables[t] = table
            print(f"{res['wall_s']} s, {res['peak_rss_mib']} MiB, {res.get('n_cells')} cells" if res["ok"]
                  else f"FAILED: {res.get('error', '')[:300]}", flush=True)
        ok = [t for t in tables if tables[t] is not None]
        ref = ok[0] if ok else None
        agreement[w] = {}
        for t in ok:
            if w == "fill9":
                if t != ref:
                    agreement[w][t] = compare_sets(ref, tables[ref], tables[t])
            else:
                a = compare_pop(ref, tables[ref], tables[t]) if t != ref else {"ref": ref, "n_tool": len(tables[t])}
                a["total"] = float(tables[t]["population"].sum())
                agreement[w][t] = a
            s = area_stats(tables[t], WORKLOADS[w], tables.get("terrastat") if t != "terrastat" else None)
            if s:
                areas[f"{w}/{t}"] = s

    versions, settings = {}, {}
    for r in runs:
        if "script" in r:
            versions[r["tool"]] = r["script"]["version"]
            settings[r["tool"]] = r["script"]["settings"]
    if args.terrastat:
        versions["terrastat"] = terrastat_version(args.terrastat)
        settings["terrastat"] = {"command": args.terrastat_cmd.replace("{threads}", str(args.threads)),
                                 "interp8_mode": args.interp8_mode}
    rep = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "data_dir": args.data,
           "n_communes": comm.num_rows, "population_total": pop_total,
           "machine": machine(),
           "threads": args.threads, "repeat": args.repeat, "tools": tools, "workloads": workloads,
           "interp8_mode": args.interp8_mode, "tobler_buffer": args.tobler_buffer,
           "versions": versions, "settings": settings, "skipped": skipped, "rtol": RTOL,
           "runs": runs, "agreement": agreement, "area_stats": areas}
    write_results(args.results, rep, markdown(rep), default=_py)
    print(f"{sum(not r['ok'] for r in runs)} failed runs; results in {args.results}/results.json and results.md, "
          f"outputs and logs in {work}")


if __name__ == "__main__":
    main()
