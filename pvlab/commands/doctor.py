# SPDX-License-Identifier: MIT
"""`pvlab doctor`: check the set-up and print a short report with a fix for each failing line."""

from __future__ import annotations

import argparse

from pvlab.doctor import Check, all_ok, run_checks


def format_report(checks: list[Check]) -> str:
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        mark = "OK  " if check.ok else "FAIL"
        lines.append(f"{mark} {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"     {'':<{width}}  fix: {check.fix}")
    failed = sum(not check.ok for check in checks)
    lines.append("all checks passed" if failed == 0 else f"{failed} check(s) failed")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    print(format_report(checks))
    return 0 if all_ok(checks) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check Python, pvlab, Graphviz, widgets and the Jupyter kernel",
        description="Check the set-up a learner needs and print a fix for each failing line.",
    )
    parser.set_defaults(func=run)
