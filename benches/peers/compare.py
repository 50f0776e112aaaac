#!/usr/bin/env python3
"""Run every tool x workload in its own process, measure wall time and peak memory,
check that the tools agree, and write results.json + results.md.

    python benches/peers/compare.py --data DATA_DIR [--layers-dir DIR] [--terrastat target/release/terrastat]

Tools: geopandas (+tobler), duckdb (+spatial), sedonadb, and terrastat when --terrastat
is given. Workloads: a, b, c, d (see README.md) and `all` (the four in one process).
A layer is DIR/<layer>.parquet or, failing that, the directory DIR/<layer> (partitioned
GeoParquet); DIR is DATA_DIR for communes and --layers-dir (default DATA_DIR) for the others.
Peak memory = peak RSS of the process tree (psutil polling every 20 ms, summed over
the process and its children, e.g. tobler's joblib workers), or the kernel's
ru_maxrss of the main process if that is higher.
A tool that fails (non-zero exit, timeout, missing output) is reported as failed with
the tail of its stderr; the comparison goes on.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peerlib import COUNT_COLUMNS, WORKLOADS, layer_path, parquet_files  # noqa: E402

PEERS = ["geopandas", "duckdb", "sedonadb"]
DEFAULT_TERRASTAT_CMD = "{bin} run {spec} --out {out} --threads {threads}"
RTOL = 1e-6   # floats agree when |x-y| <= RTOL*max(|x|,|y|) ...
ATOL = 1e-12  # ... or |x-y| <= ATOL (both ~0, e.g. a share of 0 vs 1e-17)


# ---------------------------------------------------------------------------- running

def run_measured(cmd, log_prefix, timeout):
    """Run cmd; return wall time, peak RSS (MiB) of the process tree, exit status."""
    out_f, err_f = open(log_prefix + ".stdout", "w"), open(log_prefix + ".stderr", "w")
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f)
    except OSError as e:
        return {"ok": False, "error": f"cannot start {cmd[0]}: {e}", "wall_s": None, "peak_rss_mib": None}
    ps = psutil.Process(proc.pid)
    peak, status, rusage, timed_out = 0, None, None, False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            break
        try:
            rss = ps.memory_info().rss
            for child in ps.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > timeout:
            timed_out = True
            for child in ps.children(recursive=True):
                child.kill()
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.close()
    err_f.close()
    peak = max(peak, rusage.ru_maxrss * 1024)  # ru_maxrss is in KiB on Linux
    res = {"ok": proc.returncode == 0 and not timed_out, "exit_code": proc.returncode,
           "wall_s": round(wall, 3), "peak_rss_mib": round(peak / 2**20, 1)}
    if timed_out:
        res["error"] = f"timeout after {timeout} s"
    elif proc.returncode != 0:
        with open(log_prefix + ".stderr") as f:
            tail = f.read()[-2000:].strip()
        res["error"] = f"exit code {proc.returncode}: {tail}"
    return res


def peer_command(python, tool, workload, data_dir, out, threads, layers_dir=None):
    cmd = [python, os.path.join(HERE, f"run_{tool}.py"), workload, data_dir, out, "--threads", str(threads)]
    return cmd + (["--layers-dir", layers_dir] if layers_dir else [])


def terrastat_command(template, binary, spec, out_dir, threads):
    return shlex.split(template.format(bin=shlex.quote(binary), spec=shlex.quote(spec),
                                       out=shlex.quote(out_dir), threads=threads))


def terrastat_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        first = (out.stdout or out.stderr).strip().splitlines()
        if out.returncode == 0 and first:
            return f"{first[0]} ({binary})"
    except (OSError, subprocess.SubprocessError):
        pass
    return binary


def write_specs(data_dir, workloads, layers_dir=None):
    """Copy specs/<w>.toml to DATA_DIR/peers_spec_<w>.toml (paths in them are relative).
    A layer found elsewhere than DATA_DIR/<layer>.parquet (a partitioned directory, or in
    --layers-dir) gets its absolute path instead; terrastat reads a directory layer natively."""
    specs = {}
    for w in workloads:
        dst = os.path.join(data_dir, f"peers_spec_{w}.toml")
        with open(os.path.join(HERE, "specs", f"{w}.toml")) as f:
            text = f.read()
        for layer in ["communes", "buildings", "vegetation", "flood"]:
            path = layer_path(data_dir, layer, layers_dir)
            if path != os.path.join(data_dir, f"{layer}.parquet"):
                text = text.replace(f'path = "{layer}.parquet"', f"path = {json.dumps(os.path.abspath(path))}")
        with open(dst, "w") as f:
            f.write(text)
        specs[w] = dst
    return specs


def run_one(args, tool, workload, specs, work):
    """Run one tool x workload (args.repeat times, keeping the fastest); load its output."""
    tag = f"{tool}_{workload}"
    if tool == "terrastat":
        out_dir = os.path.join(work, tag)
        out_file = os.path.join(out_dir, "communes.parquet")
        cmd = terrastat_command(args.terrastat_cmd, args.terrastat, specs[workload], out_dir, args.threads)
    else:
        out_file = os.path.join(work, tag + ".parquet")
        cmd = peer_command(args.python, tool, workload, args.data, out_file, args.threads, args.layers_dir)
    runs = []
    for i in range(args.repeat):
        if tool == "terrastat":
            shutil.rmtree(out_dir, ignore_errors=True)
        elif os.path.exists(out_file):
            os.remove(out_file)
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
            table = pd.read_parquet(out_file)
            missing = [c for c in ["insee"] + WORKLOADS[workload] if c not in table.columns]
            if missing:
                raise ValueError(f"output {out_file} lacks columns {missing} (has {list(table.columns)})")
            table = table[["insee"] + WORKLOADS[workload]]
        except Exception as e:  # noqa: BLE001 - any unreadable output is a failure of that tool
            res.update(ok=False, error=f"bad output: {e}")
            table = None
    if tool != "terrastat" and os.path.exists(out_file + ".json"):  # sidecar of the python peers
        with open(out_file + ".json") as f:
            res["script"] = json.load(f)
    return res, table


# ---------------------------------------------------------------------------- comparing

def compare_columns(name, x, y):
    """x, y: aligned pandas Series. Returns max rel diff, mismatch count, worst index."""
    xn, yn = x.isna().to_numpy(), y.isna().to_numpy()
    null_mismatch = xn != yn
    both = ~xn & ~yn
    xv = x.to_numpy(dtype="float64", na_value=np.nan)[both]
    yv = y.to_numpy(dtype="float64", na_value=np.nan)[both]
    diff = np.abs(xv - yv)
    scale = np.maximum(np.abs(xv), np.abs(yv))
    rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
    if name in COUNT_COLUMNS:
        bad = diff != 0
    else:
        bad = (diff > RTOL * scale) & (diff > ATOL)
    n_bad = int(bad.sum() + null_mismatch.sum())
    max_rel = float(rel.max()) if rel.size else 0.0
    worst = None
    if null_mismatch.any():
        i = np.flatnonzero(null_mismatch)[0]
        worst = {"insee": x.index[i], "values": [_py(x.iloc[i]), _py(y.iloc[i])]}
    elif rel.size and max_rel > 0:
        i = np.flatnonzero(both)[int(rel.argmax())]
        worst = {"insee": x.index[i], "values": [_py(x.iloc[i]), _py(y.iloc[i])]}
    return {"max_rel_diff": max_rel, "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "n_mismatch": n_bad, "n_null_mismatch": int(null_mismatch.sum()), "worst": worst}


def _py(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def compare_outputs(workload, tables):
    """All pairs of successful tools for one workload."""
    rows = []
    tools = [t for t in tables if tables[t] is not None]
    for i, ta in enumerate(tools):
        for tb in tools[i + 1:]:
            a = tables[ta].set_index("insee").sort_index()
            b = tables[tb].set_index("insee").sort_index()
            only_a, only_b = sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index))
            common = a.index.intersection(b.index)
            for col in WORKLOADS[workload]:
                r = compare_columns(col, a.loc[common, col], b.loc[common, col])
                r.update(workload=workload, column=col, a=ta, b=tb,
                         n_zones=len(common), zones_only_in_a=only_a[:10], zones_only_in_b=only_b[:10])
                r["agree"] = r["n_mismatch"] == 0 and not only_a and not only_b
                rows.append(r)
    return rows


# ---------------------------------------------------------------------------- reporting

def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def ratio(x, ref):
    return None if x is None or not ref else x / ref


def markdown(report):
    res, agree = report["runs"], report["agreement"]
    tools = report["tools"]
    workloads = report["workloads"]
    by = {(r["tool"], r["workload"]): r for r in res}
    lines = [f"# Peer comparison ({report['date']})", "",
             f"Data: `{report['data_dir']}`"
             + (f" (layers from `{report['layers_dir']}`)" if report.get("layers_dir") else "") + ": "
             + ", ".join(f"{k} {v:,} rows" for k, v in report["data_rows"].items()),
             "",
             f"Machine: {report['machine']['cpus']} CPUs, {report['machine']['mem_gib']} GiB, "
             f"{report['machine']['platform']}. Threads: {report['threads']}. "
             f"Repeats: {report['repeat']} (fastest kept).", "",
             "Versions / settings:", ""]
    for t in tools:
        lines.append(f"- **{t}**: {report['versions'].get(t, '?')}; settings {json.dumps(report['settings'].get(t, {}))}")
    lines += ["", "## Wall time (s) · peak RSS (MiB) · × terrastat (time / memory)", "",
              "| tool | " + " | ".join(workloads) + " |", "|---" * (len(workloads) + 1) + "|"]
    for t in tools:
        cells = []
        for w in workloads:
            r = by.get((t, w))
            if r is None:
                cells.append("")
            elif not r["ok"]:
                cells.append("FAILED")
            else:
                ref = by.get(("terrastat", w))
                c = f"{fmt(r['wall_s'])} s · {fmt(r['peak_rss_mib'], 0)} MiB"
                if ref and ref["ok"] and t != "terrastat":
                    c += f" · ×{fmt(ratio(r['wall_s'], ref['wall_s']), 1)} / ×{fmt(ratio(r['peak_rss_mib'], ref['peak_rss_mib']), 1)}"
                cells.append(c)
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "Wall time is the whole process (interpreter start and imports included for the Python tools). "
              "In-script phases of the Python tools (read GeoParquet / compute / write):", "",
              "| tool | workload | read s | compute s | write s | in-script total s |", "|---|---|---|---|---|---|"]
    for r in res:
        s = r.get("script")
        if r["ok"] and s:
            lines.append(f"| {r['tool']} | {r['workload']} | {fmt(s.get('read_s'))} | {fmt(s.get('compute_s'))} | "
                         f"{fmt(s.get('write_s'))} | {fmt(s.get('script_total_s'))} |")
    failed = [r for r in res if not r["ok"]]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            err = (r.get("error") or "").replace("\n", " ")[-600:]
            lines.append(f"- **{r['tool']} / {r['workload']}**: {err}")
    lines += ["", f"## Agreement (counts exact; floats: rel diff <= {RTOL:g} or abs diff <= {ATOL:g})", "",
              "Each tool against the reference (`ref`: terrastat, or the first tool that succeeded). "
              "Cells: max relative difference over the zones, then `ok` or the number of disagreeing zones "
              "(worst zone: reference value vs tool value). All pairs are in results.json.", "",
              "| workload | column | " + " | ".join(tools) + " |", "|---" * (len(tools) + 2) + "|"]
    pairs = {(a["workload"], a["column"], a["a"], a["b"]): a for a in agree}
    for w in workloads:
        ref = next((t for t in tools if by.get((t, w), {}).get("ok")), None)
        for col in WORKLOADS[w]:
            cells = []
            for t in tools:
                a = pairs.get((w, col, ref, t)) or pairs.get((w, col, t, ref))
                if t == ref:
                    cells.append("ref")
                    continue
                if a is None:
                    cells.append("failed" if (t, w) in by else "")
                    continue
                c = f"{a['max_rel_diff']:.1e} "
                if a["agree"]:
                    c += "ok"
                else:
                    c += f"**{a['n_mismatch']}/{a['n_zones']} differ**"
                    if a["worst"]:
                        v = a["worst"]["values"] if a["a"] == ref else a["worst"]["values"][::-1]
                        c += f" (worst {a['worst']['insee']}: {v[0]} vs {v[1]})"
                    only = {a["a"]: a["zones_only_in_a"], a["b"]: a["zones_only_in_b"]}
                    for side in (ref, t):
                        if only[side]:
                            c += f"; zones only in {side}: {', '.join(only[side])}"
                cells.append(c)
            lines.append(f"| {w} | {col} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def data_rows(data_dir, layers_dir=None):
    rows = {}
    for layer in ["communes", "buildings", "vegetation", "flood"]:
        p = layer_path(data_dir, layer, layers_dir)
        rows[layer] = sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(p)) if os.path.exists(p) else 0
    return rows


def machine():
    """The machine a report was measured on."""
    return {"cpus": os.cpu_count(), "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def write_results(results_dir, report, md, default=str):
    """Write results.json and results.md into results_dir, and print the markdown."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "results.json"), "w") as f:
        json.dump(report, f, indent=2, default=default)
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write(md)
    print()
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory with communes/buildings/vegetation/flood.parquet")
    ap.add_argument("--layers-dir", help="where buildings/vegetation/flood are looked up (default: DATA_DIR); "
                                         "communes.parquet stays in DATA_DIR")
    ap.add_argument("--terrastat", help="path to the terrastat binary (optional)")
    ap.add_argument("--terrastat-cmd", default=DEFAULT_TERRASTAT_CMD,
                    help=f"command template (default: '{DEFAULT_TERRASTAT_CMD}')")
    ap.add_argument("--tools", default=",".join(PEERS), help="comma-separated peers to run")
    ap.add_argument("--workloads", default="a,b,c,d,all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool x workload; the fastest is kept")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peer scripts")
    ap.add_argument("--work", help="directory for outputs and logs (default: DATA_DIR/peers_out)")
    ap.add_argument("--results", default=HERE, help="where results.json / results.md go")
    args = ap.parse_args()

    args.data = os.path.abspath(args.data)
    args.layers_dir = os.path.abspath(args.layers_dir) if args.layers_dir else None
    work = os.path.abspath(args.work or os.path.join(args.data, "peers_out"))
    os.makedirs(work, exist_ok=True)
    workloads = args.workloads.split(",")
    tools = (["terrastat"] if args.terrastat else []) + [t for t in args.tools.split(",") if t]
    specs = write_specs(args.data, workloads, args.layers_dir) if args.terrastat else {}
    if args.terrastat:
        args.terrastat = os.path.abspath(args.terrastat) if os.path.exists(args.terrastat) else args.terrastat

    runs, agreement = [], []
    for w in workloads:
        tables = {}
        for t in tools:
            print(f"[{w}] {t} ...", end=" ", flush=True)
            res, table = run_one(args, t, w, specs, work)
            runs.append(res)
            tables[t] = table
            print(f"{res['wall_s']} s, {res['peak_rss_mib']} MiB" if res["ok"] else f"FAILED: {res.get('error', '')[:300]}",
                  flush=True)
        agreement += compare_outputs(w, tables)

    versions, settings = {}, {}
    for r in runs:
        if "script" in r:
            versions[r["tool"]] = r["script"]["version"]
            settings[r["tool"]] = r["script"]["settings"]
    if args.terrastat:
        versions["terrastat"] = terrastat_version(args.terrastat)
        settings["terrastat"] = {"command": args.terrastat_cmd.replace("{threads}", str(args.threads))}
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "data_dir": args.data, "layers_dir": args.layers_dir, "data_rows": data_rows(args.data, args.layers_dir),
        "machine": machine(),
        "threads": args.threads, "repeat": args.repeat, "tools": tools, "workloads": workloads,
        "versions": versions, "settings": settings,
        "tolerance": {"rtol": RTOL, "atol": ATOL, "counts": "exact"},
        "runs": runs, "agreement": agreement,
    }
    write_results(args.results, report, markdown(report), default=_py)
    disagreements = [a for a in agreement if not a["agree"]]
    print(f"{len(runs) - sum(r['ok'] for r in runs)} failed runs, {len(disagreements)} disagreeing columns; "
          f"results in {args.results}/results.json and results.md, outputs and logs in {work}")


if __name__ == "__main__":
    main()
