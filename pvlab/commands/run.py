# SPDX-License-Identifier: MIT
"""`pvlab run FILE...`: run scenario files and check their expectations.

Exit status: 0 when every expectation holds, 1 when one does not, 2 when a file is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario import ScenarioRun, StepResult, load_scenario, run_scenario


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run scenario files and check their expectations",
                       description="Run scenario files step by step; print each result, "
                                   "whether its expectation held, and why a step failed.")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    p.add_argument("--profile", "--xen", dest="profile", default=None,
                   help="Xen profile to run under (default: each file's xen:, else newest)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print cost counters (hypercalls, type acquisitions, validations...)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step's full trace")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and a summary")
    p.set_defaults(func=main)


def step_json(s: StepResult) -> dict[str, Any]:
    return {
        "step": s.index, "op": s.op, "description": s.description,
        "result": s.result if not s.is_check else ("held" if s.held else "differs"),
        "rc": s.outcome.rc, "expected": s.expected, "held": s.held,
        **({"status": s.outcome.status} if s.outcome.status is not None else {}),
        "reason": s.outcome.reason, "crash": s.outcome.crash,
        "xen_log": s.outcome.xen_log(),
        "counters": s.outcome.counters.as_dict(),
        "trace": [{"check": e.check, "decision": e.decision, "explanation": e.explanation,
                   "xen_function": e.xen_function, "mfn": e.mfn, "index": e.index,
                   "level": e.level, "depth": e.depth} for e in s.outcome.events],
    }


def run_json(path: str, run: ScenarioRun) -> dict[str, Any]:
    return {"file": path, "name": run.scenario.name, "profile": run.profile, "ok": run.ok,
            "frames": {k: hex(v) for k, v in run.frames.items()},
            "steps": [step_json(s) for s in run.steps],
            "counters": run.counters().as_dict(),
            "dangers": danger_lines(run)}


def _mark(s: StepResult) -> str:
    return {True: "held", False: "FAILED", None: ""}[s.held]


def format_step(s: StepResult, *, verbose: bool = False, stats: bool = False) -> list[str]:
    shown = ("as expected" if s.held else "differs") if s.is_check else s.result
    exp = f"expected {s.expected}" if s.expected else ""
    lines = [f"  {s.index:>3} {s.description:<52} {shown:<11} {exp:<18} {_mark(s)}".rstrip()]
    for k, out in enumerate(s.outcome.calls, start=1):
        calls = s.args.get("calls") or []
        call = calls[k - 1] if k - 1 < len(calls) else None
        want = getattr(call, "expect", None)
        mark = "" if not isinstance(want, str) else (" held" if out.result == want else
                                                      f" FAILED (expected {want})")
        lines.append(f"        call {k}: {getattr(call, 'op', '?')} -> {out.result}{mark}")
    if s.outcome.crashed:
        lines.append(f"        XEN PANICS: {s.outcome.crash} (a debug build; the host is "
                     "gone, nothing runs after this step)")
    elif s.is_check and not s.held and s.outcome.failure:
        lines.append(f"        {s.outcome.failure.explanation}")
    elif not s.is_check and (s.outcome.rc or s.outcome.status) and not verbose:
        fail = s.outcome.failure
        if fail:
            lines.append(f"        why: {fail.explanation}  [{fail.xen_function}]")
        lines.extend(f"        xen: {log}" for log in s.outcome.xen_log())
    if verbose:
        lines.extend("        " + e.line() for e in s.outcome.events)
    if stats:
        c = s.outcome.counters
        lines.append(f"        cost: {c.hypercalls} hypercalls, {c.type_acquisitions} type "
                     f"acquisitions, {c.validations} validations, {c.entries_checked} entries "
                     f"checked, depth {c.max_depth}")
    return lines


def danger_lines(run: ScenarioRun) -> list[str]:
    """The danger marking of the final state (`pvlab.xen.danger.find_dangers`): what a
    guest could exploit, which only a pre-xsa-NNN profile lets it reach."""
    from pvlab.render.danger import line
    from pvlab.xen.danger import find_dangers

    return [line(d) for d in find_dangers(run.xen)]


def main(args: argparse.Namespace) -> int:
    invalid = failed = 0
    results: list[dict[str, Any]] = []
    nsteps = nexp = 0
    for path in args.files:
        try:
            scn = load_scenario(path)
            run = run_scenario(scn, profile=args.profile)
        except PvlabError as err:
            invalid += 1
            if args.json:
                results.append({"file": path, "error": str(err)})
            else:
                print(f"pvlab run: {err}", file=sys.stderr)
            continue
        if not run.ok:
            failed += 1
        nsteps += len(run.steps)
        nexp += sum(1 for s in run.steps if s.held is not None)
        if args.json:
            results.append(run_json(path, run))
            continue
        g = scn.guest
        if not args.quiet or not run.ok:
            who = f"{g.bitness}-bit PV guest"
            if scn.multi_domain:  # several domains: each with its bitness and privilege
                who = ", ".join(f"{n}: {d.bitness}-bit{' privileged' if d.privileged else ''}"
                                for n, d in scn.domains.items())
            print(f"{path}: {scn.name} (Xen {run.profile}, {who})")
            for s in run.steps:
                if args.quiet and s.held is not False:
                    continue
                print("\n".join(format_step(s, verbose=args.verbose, stats=args.stats)))
            print("".join(f"  {x}\n" for x in danger_lines(run)), end="")
        if args.stats:
            c = run.counters()
            print(f"  total: {c.hypercalls} hypercalls, {c.type_acquisitions} type acquisitions, "
                  f"{c.validations} validations, {c.entries_checked} entries checked, "
                  f"max depth {c.max_depth}")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        n = len(args.files)
        print(f"{n} file{'s' * (n != 1)}, {nsteps} steps, {nexp} expectations: "
              f"{n - failed - invalid} passed, {failed} failed, {invalid} invalid")
    if invalid:
        return 2
    return 1 if failed else 0
