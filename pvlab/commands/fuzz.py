# SPDX-License-Identifier: MIT
"""`pvlab fuzz`: differential fuzzing of the model against real Xen (docs/fuzzing.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pvlab.errors import PvlabError


def resolve_build(build: str, profile: str | None) -> tuple[Path, str]:
    """BUILD is a path to a Xen ELF or a project build's profile name -> (path, model)."""
    from pvlab.verify.xenbuild import PROFILES, find_xen
    from pvlab.xen.profiles import get_profile

    model = get_profile(profile).name if profile else None
    if build in PROFILES:
        found = find_xen(build)
        if found is None:
            raise PvlabError(f"--xen {build}: no Xen build for profile {build}",
                             "run `pvlab verify --build ...` (or oracle/build-xen.sh), or pass "
                             "--xen PATH to your own xen/xen")
        return found, model or build
    path = Path(build)
    if not path.is_file():
        raise PvlabError(f"--xen {build}: no such file and not a profile name",
                         f"give the path of the xen/xen ELF of a build, or one of "
                         f"{', '.join(PROFILES)}")
    return path, model or "4.19"


def run(args: argparse.Namespace) -> int:
    from pvlab.fuzz.known import load_known
    from pvlab.fuzz.loop import FuzzConfig, fuzz

    xen, model = resolve_build(args.xen, args.profile)
    if args.budget <= 0:
        raise PvlabError("--budget must be positive", "give the seconds to fuzz, e.g. 600")
    known = load_known(Path(args.known) if args.known else None)
    cfg = FuzzConfig(xen=xen, model=model, budget=args.budget, seed=args.seed,
                     bitness=args.bitness, out=Path(args.out) if args.out else None,
                     known=known, batch=args.batch, shrink=not args.no_shrink,
                     max_scenarios=args.scenarios)

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    progress(f"[fuzz] model: profile {model}; oracle: {xen}; seed {args.seed}; "
             f"budget {args.budget:.0f} s; {len(known)} known difference(s)")
    figs = fuzz(cfg, progress=progress)
    progress(figs.line())
    summary = figs.summary() | {"xen": str(xen), "profile": model, "seed": args.seed}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for f, path in zip(figs.findings, figs.paths + [None] * len(figs.findings),
                           strict=False):
            where = f" -> {path}" if path else ""
            print(f"{f.kind}: {f.summary()} (seed {f.seed}, {len(f.data.get('steps') or [])} "
                  f"step(s)){where}")
        print(f"{figs.scenarios} scenarios, {figs.steps} steps replayed on Xen, "
              f"{len(figs.findings)} unknown difference(s), {figs.boots} boots, "
              f"{figs.seconds:.0f} s")
    return 1 if figs.findings else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fuzz",
        help="differential fuzzing: random scenarios in pvlab and on real Xen, compared",
        description=(
            "Generate random scenarios, run each in pvlab and replay batches of them on a real "
            "Xen (one QEMU boot per batch), compare every step, and write every unknown "
            "difference or Xen crash to --out as a shrunk scenario file. Exit 0 when no "
            "unknown difference was found, 1 when one was, 2 for a bad option or set-up."
        ),
    )
    p.add_argument("--xen", required=True, metavar="BUILD",
                   help="your Xen ELF (xen/xen of a build), or 4.17/4.19 for a project build")
    p.add_argument("--profile", help="the profile pvlab plays (default: BUILD's profile; 4.19 "
                   "for a path)")
    p.add_argument("--bitness", type=int, choices=(32, 64),
                   help="only guests of this bitness (default: both)")
    p.add_argument("--budget", type=float, default=600.0, metavar="SECONDS",
                   help="seconds to fuzz (default 600; shrinking may run past it)")
    p.add_argument("--seed", type=int, default=0, help="first scenario seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="write findings here as scenario files")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--known", metavar="FILE",
                   help="known differences (default: pvlab/fuzz/known.yaml)")
    p.add_argument("--batch", type=int, default=400, metavar="N",
                   help="most scenarios per QEMU boot (default 400)")
    p.add_argument("--scenarios", type=int, metavar="N",
                   help="stop after N scenarios (a fixed amount of work, as CI's smoke run)")
    p.add_argument("--no-shrink", action="store_true", help="write findings unshrunk")
    p.set_defaults(func=run)
