# SPDX-License-Identifier: MIT
"""`pvlab explain [FILE|-]`: explain Xen console lines (xl dmesg, a serial log, pasted text)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pvlab.errors import PvlabError
from pvlab.explain import Explanation


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="explain Xen log lines: the rule, the Xen function, the numbers, the fix",
        description="Read Xen console lines (xl dmesg, a serial log or pasted text, with or "
                    "without '(XEN)' and timestamps) and explain each line Xen's PV memory "
                    "management printed: the rule and Xen function, the numbers decoded "
                    "(flag words, caf/taf, MFNs, errno), what it means and what to change. "
                    "Unknown lines are listed as unknown.")
    p.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="log file to read ('-' or nothing: standard input)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per line (line, matched, rule, xen_function, "
                        "decoded, explanation, fix)")
    p.add_argument("--scenario", action="store_true",
                   help="also print a scenario skeleton reproducing each line, where one exists")
    p.add_argument("--known", action="store_true",
                   help="list only the lines pvlab recognises (default: every line; unknown "
                        "ones are marked '?')")
    p.set_defaults(func=main)


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    path = Path(name)
    try:
        return path.read_text(errors="replace")
    except OSError as err:
        raise PvlabError(f"{name}: cannot read the log ({err.strerror})",
                         "give the path of a saved xl dmesg / serial log, or '-' for stdin") \
            from err


def format_text(ex: Explanation, *, scenario: bool = False) -> list[str]:
    from pvlab.explain import scenario_for

    if not ex.matched:
        if not ex.xen:
            return [f"? {ex.line}"]
        return [f"? {ex.line}", "    unknown: " + ex.explanation]
    out = [f"= {ex.line}"]
    rule = f"rule {ex.rule}" if ex.rule else "no rule of its own"
    where = f"{ex.xen_function} ({ex.source})"
    out.append(f"    {rule}; printed by {where}"
               + (" [debug builds only]" if ex.printer == "gdprintk" else ""))
    for name, d in ex.decoded.items():
        if d.meaning:
            out.append(f"    {name} = {d.raw}: {d.meaning}")
    out.append(f"    means: {ex.explanation}")
    out.append(f"    fix:   {ex.fix}")
    if scenario:
        text = scenario_for(ex)
        if text:
            out.append("    scenario skeleton:")
            out.extend("      " + line for line in text.splitlines())
    return out


def main(args: argparse.Namespace) -> int:
    from pvlab.explain import coverage, explain_text

    explanations = explain_text(_read(args.file))
    shown = [e for e in explanations if e.matched or not args.known]
    if args.json:
        from pvlab.explain import scenario_for

        for e in shown:
            obj = e.as_dict()
            if args.scenario:
                obj["scenario"] = scenario_for(e)
            print(json.dumps(obj))
        return 0
    for e in shown:
        if e.line.strip():
            print("\n".join(format_text(e, scenario=args.scenario)))
    cov = coverage(explanations)
    known = sum(1 for e in explanations if e.matched)
    print(f"{len(explanations)} line(s) read, {known} recognised; memory-management lines: "
          f"{cov.recognised} of {cov.mm_lines} recognised")
    return 0
