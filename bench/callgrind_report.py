#!/usr/bin/env python3
"""bench/callgrind.sh's report: instructions per request by mode, and where a gateway mode's
instructions beyond plain Pingora's go, by crate and by function.

    callgrind_report.py OUT_DIR        (OUT_DIR holds totals.tsv and the callgrind files)

Per request = (count in the long run - count in the short run) / (LONG - SHORT), for the
totals and for each function's own (exclusive) count alike.

One start-up cost does not cancel out: quanta (the rate limiter's clock, and Pingora's) calibrates
its clock by looping on the wall clock, so its count depends on how fast valgrind runs that
moment (seen: 2 million instructions apart between two runs). Its calls are left out of every
count here.
"""
import collections
import re
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1])
TOP = 45
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")
# callgrind_annotate names a function `file:name [object]`; without debug info file is ???.
FILE_PREFIX = re.compile(r"^(\?\?\?|/[^ :]*|[^ :<]*\.[A-Za-z]+):")
OBJECT = re.compile(r"\s+\[[^\]]*\]$")


WALL_CLOCK_LOOPS = ("quanta::Calibration::calibrate",)


def annotate(path, inclusive):
    return subprocess.run(
        ["callgrind_annotate", "--threshold=100", f"--inclusive={inclusive}", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout


def left_out(path):
    """The inclusive count of the wall-clock loops in one run."""
    total = 0
    for line in annotate(path, "yes").splitlines():
        m = LINE.match(line)
        if m and OBJECT.sub("", FILE_PREFIX.sub("", m.group(2).strip())) in WALL_CLOCK_LOOPS:
            total += int(m.group(1).replace(",", ""))
    return total


def functions(path):
    text = annotate(path, "no")
    counts = collections.Counter()
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = OBJECT.sub("", FILE_PREFIX.sub("", m.group(2).strip()))
        counts[name] += int(m.group(1).replace(",", ""))
    return counts


def crate(name):
    """The crate a symbol belongs to, or the C library's part."""
    bare = name.lstrip("<&*").removeprefix("dyn ").removeprefix("mut ")
    if "::" in bare:
        return bare.split("::", 1)[0]
    if bare.startswith(("mi_", "_mi_")):
        return "mimalloc (C)"
    return "libc and other C"


modes = []
for line in (out / "totals.tsv").read_text().splitlines():
    mode, short_n, short_ir, long_n, long_ir = line.split()
    span = int(long_n) - int(short_n)
    tag = re.sub(r"[^a-z0-9-]", "_", mode)
    short_f = functions(out / f"{tag}-{short_n}.callgrind")
    long_f = functions(out / f"{tag}-{long_n}.callgrind")
    per_fn = {k: (long_f[k] - short_f.get(k, 0)) / span for k in long_f if k not in WALL_CLOCK_LOOPS}
    short_file, long_file = (out / f"{tag}-{n}.callgrind" for n in (short_n, long_n))
    long_ir = int(long_ir) - left_out(long_file)
    short_ir = int(short_ir) - left_out(short_file)
    modes.append((mode, (long_ir - short_ir) / span, per_fn))

base = next((m for m in modes if m[0] == "pingora"), None)
print("## Instructions per request (callgrind, user space, every thread)\n")
print("| mode | instructions per request | ratio to plain Pingora |")
print("|---|---:|---:|")
for mode, per_req, _ in modes:
    ratio = f"{per_req / base[1]:.2f}x" if base else "-"
    print(f"| {mode} | {per_req:,.0f} | {ratio} |")

for mode, per_req, per_fn in modes:
    if base is None or mode == "pingora":
        continue
    base_fn = base[2]
    print(f"\n## {mode}: beyond plain Pingora, by crate (instructions per request)\n")
    by_crate = collections.Counter()
    for name in set(per_fn) | set(base_fn):
        by_crate[crate(name)] += per_fn.get(name, 0) - base_fn.get(name, 0)
    print("| crate | extra |")
    print("|---|---:|")
    for name, extra in sorted(by_crate.items(), key=lambda kv: -abs(kv[1])):
        if abs(extra) >= 50:
            print(f"| {name} | {extra:,.0f} |")
    print(f"\n## {mode}: the top {TOP} functions by own instructions per request\n")
    print("| function | gateway | plain Pingora | extra |")
    print("|---|---:|---:|---:|")
    ranked = sorted(per_fn.items(), key=lambda kv: -kv[1])[:TOP]
    for name, n in ranked:
        b = base_fn.get(name, 0)
        short = name if len(name) <= 110 else name[:107] + "..."
        print(f"| `{short}` | {n:,.0f} | {b:,.0f} | {n - b:,.0f} |")
