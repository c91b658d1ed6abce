# SPDX-License-Identifier: MIT
"""`pvlab diff --profile A --profile B FILE...`: where two Xen profiles disagree.

Runs every scenario under both profiles and lists each step whose result differs (an
operation's return code, or whether a check holds), with both explanations. `--json`
prints a list with one object per differing step; scenarios that agree print nothing.
Exit status 0 (2 when a file is invalid).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario import StepResult, load_scenario, run_scenario
from pvlab.xen.profiles import get_profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="list the scenario steps whose outcome differs between two "
                                    "Xen profiles",
                       description="Run each scenario under two profiles and show every step "
                                   "whose result differs, with both explanations.")
    p.add_argument("--profile", "--xen", dest="profiles", action="append", required=True,
                   metavar="PROFILE", help="a Xen profile; give exactly two")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    p.add_argument("--json", action="store_true", help="print the differing steps as JSON")
    p.set_defaults(func=main)


def _shown(s: StepResult) -> str:
    if s.is_check:
        return "holds" if s.held else "differs"
    return s.result


def _why(s: StepResult) -> str:
    if s.outcome.crashed:
        return f"Xen panics: {s.outcome.crash}"
    fail = s.outcome.failure
    return f"{fail.explanation} [{fail.xen_function}]" if fail else ""


def diff_file(path: str, a: str, b: str) -> list[dict[str, Any]]:
    """The differing steps of one scenario file under profiles `a` and `b`."""
    scn = load_scenario(path)
    ra, rb = run_scenario(scn, profile=a), run_scenario(scn, profile=b)
    out = []
    for sa, sb in zip(ra.steps, rb.steps, strict=True):
        if _shown(sa) == _shown(sb):
            continue
        out.append({"file": path, "name": scn.name, "step": sa.index, "op": sa.op,
                    "description": sa.description,
                    "results": {a: _shown(sa), b: _shown(sb)},
                    "reasons": {a: _why(sa), b: _why(sb)},
                    "expected": {a: sa.expected, b: sb.expected},
                    a: _shown(sa), b: _shown(sb)})
    return out


def main(args: argparse.Namespace) -> int:
    if len(args.profiles) != 2:
        raise PvlabError(f"pvlab diff needs exactly two profiles, got {len(args.profiles)}",
                         "write --profile 4.17 --profile 4.19")
    a, b = (get_profile(p).name for p in args.profiles)
    if a == b:
        raise PvlabError(f"both profiles are {a}", "compare two different profiles")
    rows: list[dict[str, Any]] = []
    invalid = 0
    for path in args.files:
        try:
            found = diff_file(path, a, b)
        except PvlabError as err:
            invalid += 1
            print(f"pvlab diff: {err}", file=sys.stderr)
            continue
        rows.extend(found)
        if args.json or not found:
            continue
        print(f"{path}: {found[0]['name']}")
        for r in found:
            print(f"  step {r['step']:>3} {r['description']}")
            for prof in (a, b):
                why = r["reasons"][prof]
                print(f"      {prof:<18} {r['results'][prof]:<8}" + (f" {why}" if why else ""))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        files = len({r["file"] for r in rows})
        print(f"{len(args.files)} scenarios: {files} differ between {a} and {b} "
              f"({len(rows)} steps)")
    return 2 if invalid else 0
