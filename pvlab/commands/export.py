# SPDX-License-Identifier: MIT
"""`pvlab export SCENARIO -o DIR`: write a scenario as a regression test for any Xen build."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a scenario as a self-contained regression test for Xen",
        description="Write SCENARIO as a directory anyone can run against their own Xen build "
                    "without pvlab: the oracle's probe kernel and the scenario's plan (built "
                    "with make and gcc), the expected results, a README and a `run` script "
                    "(`./run --xen PATH`) that boots it under QEMU and ends with an XTF-style "
                    "'Test result: SUCCESS' or 'Test result: FAILURE' line.")
    p.add_argument("scenario", metavar="SCENARIO.yaml")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="directory to write (must not exist or be empty)")
    p.add_argument("--profile", choices=("4.17", "4.19"), default="4.19",
                   help="whose results to expect (default 4.19)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pvlab.export import export_scenario

    exp = export_scenario(Path(args.scenario), Path(args.output), profile=args.profile)
    replayed = sum(1 for s in exp.expected if not s["skip"])
    skipped = len(exp.expected) - replayed
    print(f"wrote {exp.directory}: {exp.plan.name}, {replayed} step(s) checked"
          + (f", {skipped} skipped (see its README)" if skipped else "")
          + f", {exp.plan.boot}-bit probe, expectations of Xen {exp.profile}")
    for s in exp.expected:
        if "scenario_expects" in s:
            print(f"note: step {s['step']} {s['op']}: the scenario file expects "
                  f"{s['scenario_expects']}, pvlab gives {s['expect']} under {exp.profile}; the "
                  "test expects pvlab's result (`pvlab run` shows the difference)")
    print(f"run it with: {exp.directory}/run --xen PATH/TO/xen/xen")
    return 0
