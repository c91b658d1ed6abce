# SPDX-License-Identifier: MIT
"""`pvlab render SCENARIO.yaml`: draw a scenario's state after any step.

The output format follows the file name: `.svg` (dot when installed, else the built-in
fallback), `.png` (needs dot), `.dot` (Graphviz source) or `.txt` (the canonical text).
Without `-o` the text form goes to standard output.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pvlab.errors import PvlabError

if TYPE_CHECKING:
    from pvlab.render.view import View
    from pvlab.scenario import ScenarioRun

VIEWS = ("tables", "walk", "frames", "diff")


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (write 0x401000 or "
                                         "4198400)") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="draw a scenario's pagetables, a walk, the frame map "
                                      "or a step's diff",
                       description="Run a scenario up to a step and draw the state: the "
                                   "pagetable graph (default), one address walk, the machine "
                                   "frame map, or what the step changed.")
    p.add_argument("file", metavar="SCENARIO.yaml", help="scenario file")
    p.add_argument("--step", type=int, default=None,
                   help="draw the state after step N (default: the last step; 0: set-up)")
    p.add_argument("--view", choices=VIEWS, default="tables", help="what to draw")
    p.add_argument("--va", type=_int, default=None,
                   help="virtual address for --view walk (e.g. 0xc0000000)")
    p.add_argument("--vcpu", type=int, default=0, help="vCPU whose tables --view walk uses")
    p.add_argument("--domain", default=None, metavar="NAME",
                   help="with domains: draw this domain's tables (default: the default domain)")
    p.add_argument("--write", action="store_true", help="walk as a write access")
    p.add_argument("--user", action="store_true", help="walk as a user-mode access")
    p.add_argument("--profile", "--xen", dest="profile", default=None,
                   help="Xen profile (default: the file's xen:, else the newest)")
    p.add_argument("--backend", choices=("auto", "dot", "fallback"), default="auto",
                   help="SVG back end (default: dot when installed, else the fallback)")
    p.add_argument("--replay", action="store_true",
                   help="replay step N's trace event by event (needs -o: one self-contained "
                        ".html page, or DIR/ for numbered SVGs)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="output file: .svg, .png, .dot or .txt (default: text to stdout); "
                        "with --replay .html or DIR/")
    p.set_defaults(func=main)


def build_view(args: argparse.Namespace) -> View:
    from pvlab.render import diff_view, frames_view, snapshot, tables_view, walk_view
    from pvlab.render.api import run_context
    from pvlab.scenario import load_scenario, run_scenario

    scn = load_scenario(args.file)
    n = len(scn.steps) if args.step is None else args.step
    if not 0 <= n <= len(scn.steps):
        raise PvlabError(f"{args.file}: step {n} does not exist (the scenario has "
                         f"{len(scn.steps)} steps)", f"use --step 0 to {len(scn.steps)}")
    run = run_scenario(scn, profile=args.profile, stop_after=n)
    domain = getattr(args, "domain", None)
    if domain is not None:
        if domain not in run.domains:
            raise PvlabError(f"{args.file}: no domain {domain!r}",
                             f"use one of: {', '.join(run.domains)}")
        run.guest = run.domains[domain]  # the pictures draw run.guest's tables
    if args.view == "tables":
        return tables_view(run)
    if args.view == "frames":
        return frames_view(run)
    if args.view == "walk":
        if args.va is None:
            raise PvlabError("--view walk needs an address", "add --va 0xc0000000, for example")
        return walk_view(run, va=args.va, vcpu=args.vcpu, write=args.write, user=args.user)
    if n == 0:
        raise PvlabError("--view diff compares step N-1 with step N", "use --step 1 or later")
    before = run_scenario(scn, profile=args.profile, stop_after=n - 1)
    names, outcome, hints, title = run_context(run)
    view = diff_view(snapshot(before.xen, before.guest), snapshot(run.xen, run.guest),
                     outcome=run.steps[-1].outcome, names=names, hints=hints,
                     title=title.replace(" — after step", " — step", 1) + " — what changed")
    return with_dangers(view, run)


def with_dangers(view: View, run: ScenarioRun) -> View:
    """A picture of snapshots (the diff view) with the danger marking of the live state
    after the step, as the tables view has it (picture and text)."""
    from pvlab.render import danger
    from pvlab.render.view import View as _View
    from pvlab.xen.danger import find_dangers

    found = find_dangers(run.xen)
    if not found:
        return view
    danger.mark(view.model, found)
    return _View(view.model, view.text() + danger.text(found))


def write_replay(args: argparse.Namespace) -> list[str]:
    """`--replay`: the frames of step N's trace, as one HTML page or numbered SVGs."""
    from pvlab.render.replay import replay
    from pvlab.scenario import load_scenario, run_scenario

    if args.output is None:
        raise PvlabError("--replay needs an output", "add -o replay.html (one page) or "
                         "-o DIR/ (numbered SVGs)")
    scn = load_scenario(args.file)
    n = len(scn.steps) if args.step is None else args.step
    if not 1 <= n <= len(scn.steps):
        raise PvlabError(f"{args.file}: step {n} cannot be replayed (the scenario has "
                         f"{len(scn.steps)} steps)", f"use --step 1 to {len(scn.steps)}")
    rep = replay(run_scenario(scn, profile=args.profile, stop_after=n))
    if not rep.frames:
        raise PvlabError(f"{args.file}: step {n} has no trace events to replay",
                         "pick a hypercall step (pin, mmu_update, ...)")
    paths = rep.save(args.output)
    return [f"pvlab render: wrote {p}" for p in paths[:1]] + (
        [f"pvlab render: ... {len(paths)} frames in {paths[0].parent}"] if len(paths) > 1
        else [f"pvlab render: {len(rep.frames)} frames (one per trace event)"])


def main(args: argparse.Namespace) -> int:
    from pvlab.render import get_backend, set_backend

    old = get_backend()
    try:
        set_backend(args.backend)
        if args.replay:
            print("\n".join(write_replay(args)))
            return 0
        view = build_view(args)
        if args.output is None:
            sys.stdout.write(view.text())
        else:
            path = view.save(args.output)
            print(f"pvlab render: wrote {path}")
    except PvlabError as err:
        print(f"pvlab render: {err}", file=sys.stderr)
        return 2
    finally:
        set_backend(old)
    return 0
