# SPDX-License-Identifier: MIT
"""`python -m benchmarks [--json] [--runs N] [--only walks,pin,...]`: issue 16's figures.

Prints one row per figure: the median over the runs, the spread (min-max), the same-run
baseline, the ratio (speed-up over the baseline), the goal and whether it is met.
`--json` prints one object instead: per figure name, value, unit, baseline, ratio, goal,
met (and spread, runs, note). Timings depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks import figures
from benchmarks.figures import FIGURES, OPT_IN, Figure, as_json, run


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def table(figs: list[Figure]) -> str:
    head = f"{'figure':<30} {'value':>12} {'unit':<8} {'spread':>19} {'baseline':>12} " \
           f"{'ratio':>7}  {'goal':<36} met"
    lines = [head, "-" * len(head)]
    for f in figs:
        spread = f"{_fmt(f.spread[0])}-{_fmt(f.spread[1])}" if f.spread else "-"
        lines.append(f"{f.name:<30} {_fmt(f.value):>12} {f.unit:<8} {spread:>19} "
                     f"{_fmt(f.baseline):>12} {_fmt(f.ratio):>7}  {f.goal:<36} "
                     f"{'yes' if f.met else 'NO'}")
    clock = "wall time" if figures.CLOCK is time.perf_counter else "CPU time of the process"
    lines.append(f"engine figures timed in {clock}; lab figures in wall time")
    lines.append("")
    for f in figs:
        base = f" baseline: {f.baseline_name}." if f.baseline_name else ""
        lines.append(f"{f.name}: {f.note}.{base}")
    try:
        load = os.getloadavg()[0]
        lines.append(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")
    except OSError:
        pass
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median, spread)")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated subset of {','.join(FIGURES)} (default: all but "
                    f"{','.join(OPT_IN)})")
    ap.add_argument("--wall", action="store_true",
                    help="time the engine figures in wall time (default: CPU time)")
    args = ap.parse_args(argv)
    if args.wall:
        figures.CLOCK = time.perf_counter
    only = args.only or ",".join(n for n in FIGURES if n not in OPT_IN)
    names = [n.strip() for n in only.split(",") if n.strip()]
    bad = [n for n in names if n not in FIGURES]
    if bad:
        ap.error(f"unknown figure {bad[0]!r}; choose from {', '.join(FIGURES)}")
    figs = run(names, max(1, args.runs), every=args.only is None)
    print(as_json(figs) if args.json else table(figs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
