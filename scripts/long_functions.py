#!/usr/bin/env python3
"""List the functions of the Rust sources longer than a limit (default 120
lines), with whether a comment above them gives the reason.

    python3 scripts/long_functions.py [LIMIT]

A function is counted from its `fn` line to the closing brace at its indent.
"""
import glob
import re
import sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 120
found = []
for path in sorted(glob.glob("**/src/**/*.rs", recursive=True)):
    if "/target/" in path or path.startswith("target"):
        continue
    lines = open(path, encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)", line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j] == indent + "}"), None
        )
        if end is None:
            continue
        n = end - i + 1
        if n > limit:
            above = "\n".join(lines[max(0, i - 8) : i])
            reason = "long because" in above.lower()
            found.append((n, path, i + 1, m.group(5), reason))
for n, path, line, name, reason in sorted(found, reverse=True):
    print(f"{n:5} {path}:{line} {name}{'' if reason else '  (no reason given)'}")
print(f"{len(found)} functions over {limit} lines", file=sys.stderr)
