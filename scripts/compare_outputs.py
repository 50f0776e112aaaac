#!/usr/bin/env python3
"""Nothing changes for users: run two `terrastat` binaries on the same specs
and compare every output file byte for byte.

    python3 scripts/compare_outputs.py OLD_BIN NEW_BIN [SPEC ...] [--work DIR]

Without SPEC, every sample spec (`data/samples/*/*.toml`) is run, once plainly
and once with `--geo`. Every output file must be byte-identical, except
`catalog.json` and `manifest.json`, which are compared as JSON with the run's
times and the engine's version set aside. Exits 1 on the first difference,
naming the spec, the file and (for JSON) the path of the first differing value.

A reviewer builds the old binary from the commit before a change (e.g. in a
`git worktree`) and the new one from the change, then runs this script.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keys whose values are times of the run or the engine's version.
VOLATILE = {"started_utc", "duration_s", "engine"}


def scrub(v):
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [scrub(x) for x in v]
    return v


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: present in only one"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def run(binary, spec, out, extra):
    cmd = [binary, "run", spec, "--out", out, "-q", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stderr


def compare_dirs(a, b):
    fa = sorted(os.path.relpath(p, a) for p in glob.glob(f"{a}/**/*", recursive=True) if os.path.isfile(p))
    fb = sorted(os.path.relpath(p, b) for p in glob.glob(f"{b}/**/*", recursive=True) if os.path.isfile(p))
    if fa != fb:
        return f"different files: {sorted(set(fa) ^ set(fb))}"
    for f in fa:
        pa, pb = os.path.join(a, f), os.path.join(b, f)
        if os.path.basename(f) in ("catalog.json", "manifest.json"):
            with open(pa) as x, open(pb) as y:
                d = first_difference(scrub(json.load(x)), scrub(json.load(y)))
            if d:
                return f"{f}: {d}"
        else:
            with open(pa, "rb") as x, open(pb, "rb") as y:
                if x.read() != y.read():
                    return f"{f}: bytes differ"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("specs", nargs="*")
    ap.add_argument("--work", help="keep the outputs here (default: a temporary directory)")
    args = ap.parse_args()
    specs = args.specs or sorted(glob.glob(f"{ROOT}/data/samples/*/*.toml"))
    work = args.work or tempfile.mkdtemp(prefix="terrastat-compare-")
    failures, compared = 0, 0
    for spec in specs:
        for extra in ([], ["--geo"]):
            tag = os.path.relpath(spec, ROOT).replace("/", "_") + ("_geo" if extra else "")
            outs = []
            codes = []
            for side, binary in (("old", args.old), ("new", args.new)):
                # Both write to the same path (the catalog records it), then move.
                here = os.path.join(work, "run", tag)
                out = os.path.join(work, side, tag)
                shutil.rmtree(here, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
                code, err = run(binary, spec, here, extra)
                codes.append((code, err.strip().splitlines()[-1:] if code else ""))
                if os.path.exists(here):
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    shutil.move(here, out)
                outs.append(out)
            if codes[0][0] != codes[1][0]:
                print(f"DIFF {tag}: exit {codes[0]} (old) vs {codes[1]} (new)")
                failures += 1
                continue
            if codes[0][0] != 0:
                print(f"both fail  {tag}: {codes[0][1]}")
                continue
            d = compare_dirs(*outs)
            compared += 1
            if d:
                print(f"DIFF {tag}: {d}")
                failures += 1
            else:
                print(f"same       {tag}")
    print(f"{compared - failures} identical, {failures} different (outputs in {work})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
