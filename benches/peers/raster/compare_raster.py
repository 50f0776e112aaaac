#!/usr/bin/env python3
"""Raster zonal statistics, side by side: terrastat vs exactextract vs rasterstats.

    cd /work/main
    /work/venv-peers/bin/python benches/peers/raster/make_data.py      # once, for `large`
    /work/venv-peers/bin/python benches/peers/raster/compare_raster.py \
        --terrastat /work/bench-bin/terrastat-raster

Every tool x workload runs in its own process (terrastat: `terrastat run SPEC --out DIR
--threads N`; the peers: run_exactextract.py / run_rasterstats.py), `--repeat` times
(default 3), keeping the fastest; when one run takes longer than `--single-run-above`
seconds (default 60) that tool x workload is not repeated. Wall time is the whole process;
peak memory is the peak RSS of the process tree (psutil polling every 20 ms, same code
as ../compare.py) or the kernel's ru_maxrss if higher.

Statistics: count, sum, mean, min, max (exactextract's definitions). Agreement:
terrastat vs exactextract per statistic (max relative difference over the zones,
|a-b| / max(|a|,|b|); flagged when > --rtol, default 1e-6; a null on one side only is
a mismatch); rasterstats (whole pixels by centre) vs terrastat is reported (max and
median relative difference) but never flagged.
Writes results/results.json and results/results.md (next to this script by default).
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
from compare import machine, run_measured, write_results  # noqa: E402  (same measurement code as the vector benchmark)

sys.path.insert(0, HERE)
from rasterpeer import STATS  # noqa: E402

TOOLS = ["terrastat", "exactextract", "rasterstats"]
DEFAULT_TERRASTAT_CMD = "{bin} run {spec} --out {out} --threads {threads} --timings"
ZONE_KEY = "zones"  # terrastat writes OUT/zones.parquet


def workloads(args):
    s = os.path.join(REPO, "data", "samples")
    return {
        "small": {"raster": os.path.join(s, "lux", "elev.tif"), "zones": os.path.join(s, "lux", "cantons.geojson"),
                  "id": "id", "crs": "EPSG:4326",
                  "what": "SRTM elevation over Luxembourg (95x90 Int16, EPSG:4326), 12 cantons (GeoJSON)"},
        "medium": {"raster": os.path.join(s, "idf92", "canopy.tif"),
                   "zones": os.path.join(s, "idf92", "communes.parquet"), "id": "insee", "crs": "EPSG:2154",
                   "what": "canopy share, Hauts-de-Seine (708x1233 UInt16, scale 1e-4, nodata 65535, 20 m), "
                           "36 communes (GeoParquet)"},
        "large": {"raster": args.large_raster, "zones": args.large_zones, "id": "insee", "crs": "EPSG:2154",
                  "what": "synthetic field over Ile-de-France (20000x20000 Float32, ~7.7 m, tiled 512, deflate, "
                          "nodata discs; make_data.py), 1,266 communes (GeoParquet)"},
    }


def write_spec(w, wl, path):
    lines = [f'title = "raster peer benchmark: {w}"', f'crs = "{wl["crs"]}"', "",
             "[rasters.r]", f"path = {json.dumps(wl['raster'])}", "",
             f"[zones.{ZONE_KEY}]", f"path = {json.dumps(wl['zones'])}", f'id = "{wl["id"]}"']
    for s in STATS:
        lines += ["", "[[indicators]]", f'name = "{s}"', 'kind = "zonal"', 'raster = "r"', f'stat = "{s}"']
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_timings(stderr_path):
    """terrastat --timings lines: '    13.350 s  zonal /path' -> {'zonal /path': 13.35}."""
    out = {}
    try:
        with open(stderr_path) as f:
            for line in f:
                m = re.match(r"^\s*([0-9.]+) s\s+(.+?)\s*$", line)
                if m:
                    out[m.group(2)] = out.get(m.group(2), 0.0) + float(m.group(1))
    except OSError:
        pass
    return out


def run_one(args, tool, w, wl, work):
    tag = f"{tool}_{w}"
    if tool == "terrastat":
        spec = os.path.join(work, f"spec_{w}.toml")
        write_spec(w, wl, spec)
        out_dir = os.path.join(work, tag)
        out_file = os.path.join(out_dir, f"{ZONE_KEY}.parquet")
        cmd = shlex.split(args.terrastat_cmd.format(bin=shlex.quote(args.terrastat), spec=shlex.quote(spec),
                                                    out=shlex.quote(out_dir), threads=args.threads))
    else:
        out_file = os.path.join(work, tag + ".parquet")
        cmd = [args.python, os.path.join(HERE, f"run_{tool}.py"), wl["raster"], wl["zones"], wl["id"], out_file]
    runs = []
    for i in range(args.repeat):
        if tool == "terrastat":
            shutil.rmtree(out_dir, ignore_errors=True)
        elif os.path.exists(out_file):
            os.remove(out_file)
        log = os.path.join(work, f"{tag}.run{i}")
        r = run_measured(cmd, log, args.timeout)
        if tool == "terrastat":
            r["stages_s"] = parse_timings(log + ".stderr")
        elif r["ok"] and os.path.exists(out_file + ".json"):
            with open(out_file + ".json") as f:
                r["script"] = json.load(f)
        runs.append(r)
        if not r["ok"] or r["wall_s"] > args.single_run_above:
            break
    best = min((r for r in runs if r["ok"]), key=lambda r: r["wall_s"], default=runs[-1])
    res = {"tool": tool, "workload": w, "command": shlex.join(cmd), **best,
           "all_wall_s": [r["wall_s"] for r in runs], "all_peak_rss_mib": [r["peak_rss_mib"] for r in runs]}
    res["compute_s"] = (sum(v for k, v in best.get("stages_s", {}).items() if k.startswith("zonal"))
                        if tool == "terrastat" else best.get("script", {}).get("compute_s"))
    table = None
    if res["ok"]:
        try:
            table = pd.read_parquet(out_file)
            missing = [c for c in [wl["id"]] + STATS if c not in table.columns]
            if missing:
                raise ValueError(f"{out_file} lacks columns {missing} (has {list(table.columns)})")
            table = table[[wl["id"]] + STATS].copy()
            table[wl["id"]] = table[wl["id"]].astype(str)
        except Exception as e:  # noqa: BLE001 - an unreadable output is a failure of that tool
            res.update(ok=False, error=f"bad output: {e}")
            table = None
    return res, table


def compare(ref, other, id_col):
    """Per statistic: max / median relative difference, mismatching nulls, worst zone."""
    a = ref.set_index(id_col)
    b = other.set_index(id_col)
    out = {"n_zones": len(a), "zones_only_in_ref": sorted(set(a.index) - set(b.index))[:10],
           "zones_only_in_other": sorted(set(b.index) - set(a.index))[:10],
           "same_row_order": list(ref[id_col]) == list(other[id_col]), "stats": {}}
    common = a.index.intersection(b.index)
    for s in STATS:
        x = a.loc[common, s].to_numpy(dtype="float64", na_value=np.nan)
        y = b.loc[common, s].to_numpy(dtype="float64", na_value=np.nan)
        xn, yn = np.isnan(x), np.isnan(y)
        both = ~xn & ~yn
        diff = np.abs(x - y)[both]
        scale = np.maximum(np.abs(x), np.abs(y))[both]
        rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
        r = {"max_rel_diff": float(rel.max()) if rel.size else 0.0,
             "median_rel_diff": float(np.median(rel)) if rel.size else 0.0,
             "max_abs_diff": float(diff.max()) if diff.size else 0.0,
             "n_null_mismatch": int((xn != yn).sum()), "n_both_null": int((xn & yn).sum()), "worst": None}
        if (xn != yn).any():
            i = int(np.flatnonzero(xn != yn)[0])
            r["worst"] = {"id": common[i], "ref": _f(x[i]), "other": _f(y[i])}
        elif rel.size and r["max_rel_diff"] > 0:
            i = int(np.flatnonzero(both)[int(rel.argmax())])
            r["worst"] = {"id": common[i], "ref": _f(x[i]), "other": _f(y[i])}
        out["stats"][s] = r
    return out


def _f(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


# ---------------------------------------------------------------------------- reporting

def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def markdown(rep):
    by = {(r["tool"], r["workload"]): r for r in rep["runs"]}
    ws, tools = rep["workloads"], rep["tools"]
    L = [f"# Raster zonal statistics: terrastat vs exactextract vs rasterstats ({rep['date']})", "",
         f"Machine: {rep['machine']['cpus']} CPUs, {rep['machine']['mem_gib']} GiB, {rep['machine']['platform']}, "
         f"Python {rep['machine']['python']}. terrastat threads: {rep['threads']} (exactextract and rasterstats "
         f"are single-threaded). Runs: fastest of {rep['repeat']} (a single run when one takes "
         f"> {rep['single_run_above_s']:g} s). Statistics: {', '.join(STATS)}.", "",
         "Reproduce:", "", "```sh", rep["reproduce"], "```", "", "Workloads:", ""]
    for w in ws:
        wl = rep["workload_defs"][w]
        L.append(f"- **{w}**: {wl['what']}; `{wl['raster']}` × `{wl['zones']}` (id `{wl['id']}`)")
    L += ["", "Versions:", ""] + [f"- **{t}**: {rep['versions'].get(t, '?')}" for t in tools]
    L += ["", "## Wall time · peak RSS of the process tree", "",
          "| tool | " + " | ".join(ws) + " |", "|---" * (len(ws) + 1) + "|"]
    for t in tools:
        cells = []
        for w in ws:
            r = by.get((t, w))
            if r is None:
                cells.append("")
            elif not r["ok"]:
                cells.append("FAILED")
            else:
                n = len(r["all_wall_s"])
                cells.append(f"{fmt(r['wall_s'])} s · {fmt(r['peak_rss_mib'], 0)} MiB" + (" (1 run)" if n == 1 and rep['repeat'] > 1 else ""))
        L.append(f"| {t} | " + " | ".join(cells) + " |")
    L += ["", "## Ratios to terrastat (peer / terrastat; > 1 means terrastat is faster / smaller)", "",
          "| peer | " + " | ".join(f"{w} time | {w} compute | {w} memory" for w in ws) + " |",
          "|---" * (3 * len(ws) + 1) + "|"]
    for t in tools:
        if t == "terrastat":
            continue
        cells = []
        for w in ws:
            r, ref = by.get((t, w)), by.get(("terrastat", w))
            if not (r and ref and r["ok"] and ref["ok"]):
                cells += ["-", "-", "-"]
                continue
            ct = r["compute_s"] / ref["compute_s"] if r.get("compute_s") and ref.get("compute_s") else None
            cells += [f"×{fmt(r['wall_s'] / ref['wall_s'])}", f"×{fmt(ct)}",
                      f"×{fmt(r['peak_rss_mib'] / ref['peak_rss_mib'])}"]
        L.append(f"| {t} | " + " | ".join(cells) + " |")
    L += ["", "time = whole process (interpreter start and imports included for the Python tools); "
          "compute = the zonal-statistics stage only (terrastat `--timings` `zonal` line; "
          "exact_extract() / zonal_stats() call in the Python scripts).", "",
          "| tool | " + " | ".join(f"{w} compute s" for w in ws) + " |", "|---" * (len(ws) + 1) + "|"]
    for t in tools:
        L.append(f"| {t} | " + " | ".join(fmt((by.get((t, w)) or {}).get("compute_s"), 3) for w in ws) + " |")
    fails = [r for r in rep["runs"] if not r["ok"]]
    if fails:
        L += ["", "## Failures", ""]
        for r in fails:
            L.append(f"- **{r['tool']} / {r['workload']}**: " + (r.get("error") or "").replace("\n", " ")[-600:])
    L += ["", "## Agreement with terrastat (max relative difference over the zones, |a-b|/max(|a|,|b|))", "",
          f"exactextract: flagged **DIFF** when > {rep['rtol']:g} or when a value is null on one side only. "
          "rasterstats (whole pixels whose centre is in the zone, no coverage fractions): reported as "
          "max / median, never flagged.", "",
          "| workload | peer | " + " | ".join(STATS) + " |", "|---" * (len(STATS) + 2) + "|"]
    for a in rep["agreement"]:
        cells = []
        for s in STATS:
            st = a["stats"][s]
            if a["peer"] == "exactextract":
                c = f"{st['max_rel_diff']:.1e}"
                bad = st["max_rel_diff"] > rep["rtol"] or st["n_null_mismatch"]
                if bad:
                    c += " **DIFF**"
                    if st["worst"]:
                        c += f" ({st['worst']['id']}: {st['worst']['ref']} vs {st['worst']['other']})"
            else:
                c = f"{st['max_rel_diff']:.1e} / {st['median_rel_diff']:.1e}"
            if st["n_null_mismatch"]:
                c += f"; {st['n_null_mismatch']} null on one side"
            cells.append(c)
        extra = ""
        if a["zones_only_in_ref"] or a["zones_only_in_other"]:
            extra = f" (zones only in terrastat: {a['zones_only_in_ref']}, only in {a['peer']}: {a['zones_only_in_other']})"
        L.append(f"| {a['workload']} | {a['peer']}{extra} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def tool_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        first = (out.stdout or out.stderr).strip().splitlines()
        if out.returncode == 0 and first:
            mtime = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).isoformat(timespec="seconds")
            return f"{first[0]} ({binary}, built {mtime})"
    except (OSError, subprocess.SubprocessError):
        pass
    return binary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terrastat", default="/work/bench-bin/terrastat-raster", help="terrastat binary (with GDAL)")
    ap.add_argument("--terrastat-cmd", default=DEFAULT_TERRASTAT_CMD,
                    help=f"command template (default: '{DEFAULT_TERRASTAT_CMD}')")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--workloads", default="small,medium,large")
    ap.add_argument("--large-raster", default="/work/bench-data/raster/idf_20k.tif", help="from make_data.py")
    ap.add_argument("--large-zones", default="/work/bench-data/idf/communes.parquet")
    ap.add_argument("--threads", type=int, default=2, help="terrastat --threads")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool x workload; the fastest is kept")
    ap.add_argument("--single-run-above", type=float, default=60.0,
                    help="do not repeat a tool x workload whose run took longer than this (s)")
    ap.add_argument("--rtol", type=float, default=1e-6, help="terrastat vs exactextract flag threshold")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peer scripts")
    ap.add_argument("--work", default="/work/bench-data/raster/out", help="outputs, specs and logs")
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="where results.json/.md go")
    args = ap.parse_args()

    reproduce = f"cd {shlex.quote(os.getcwd())} && " + shlex.join([args.python] + sys.argv)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools = [t for t in args.tools.split(",") if t]
    wls = workloads(args)
    selected = args.workloads.split(",")
    for w in selected:
        if w not in wls:
            sys.exit(f"unknown workload {w}")
        for key in ("raster", "zones"):
            if not os.path.exists(wls[w][key]):
                hint = " (run make_data.py first)" if w == "large" and key == "raster" else ""
                sys.exit(f"{w}: missing {wls[w][key]}{hint}")

    runs, agreement = [], []
    for w in selected:
        tables = {}
        for t in tools:
            print(f"[{w}] {t} ...", end=" ", flush=True)
            res, table = run_one(args, t, w, wls[w], work)
            runs.append(res)
            tables[t] = table
            print(f"{res['all_wall_s']} s, {res['peak_rss_mib']} MiB" if res["ok"]
                  else f"FAILED: {res.get('error', '')[:300]}", flush=True)
        if tables.get("terrastat") is not None:
            for t in tools:
                if t != "terrastat" and tables.get(t) is not None:
                    agreement.append({"workload": w, "peer": t,
                                      **compare(tables["terrastat"], tables[t], wls[w]["id"])})

    versions = {}
    for r in runs:
        if "script" in r:
            versions[r["tool"]] = r["script"]["version"]
    if "terrastat" in tools:
        versions["terrastat"] = tool_version(args.terrastat)
    try:
        import rasterio
        versions["rasterio / GDAL (peers)"] = f"rasterio {rasterio.__version__}, GDAL {rasterio.__gdal_version__}"
    except ImportError:
        pass
    rep = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "reproduce": reproduce,
        "machine": machine(),
        "threads": args.threads, "repeat": args.repeat, "single_run_above_s": args.single_run_above,
        "rtol": args.rtol, "tools": tools, "workloads": selected,
        "workload_defs": {w: wls[w] for w in selected}, "versions": versions,
        "terrastat_cmd": args.terrastat_cmd, "runs": runs, "agreement": agreement,
    }
    write_results(args.results, rep, markdown(rep))
    flagged = [(a["workload"], s) for a in agreement if a["peer"] == "exactextract"
               for s, st in a["stats"].items() if st["max_rel_diff"] > args.rtol or st["n_null_mismatch"]]
    print(f"{sum(not r['ok'] for r in runs)} failed runs; terrastat vs exactextract beyond {args.rtol:g}: "
          f"{flagged or 'none'}; results in {args.results}, outputs and logs in {work}")


if __name__ == "__main__":
    main()
