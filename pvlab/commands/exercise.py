# SPDX-License-Identifier: MIT
"""`pvlab exercise`: list the course's exercises, print a fresh problem, rebuild exercises/.

    pvlab exercise list
    pvlab exercise new walk --seed 7 --difficulty pencil [--mode pae] [--fault yes] [--answer]
    pvlab exercise new cr3 --direction decode
    pvlab exercise new l3-check --situations 5
    pvlab exercise build [--check]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError
from pvlab.exercises import DIFFICULTIES, EXERCISES, generate, generator_kinds
from pvlab.exercises.notebooks import build


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercise", help="exercises: list them, make a new problem, rebuild",
                       description="Exercises with instant checks and a seeded generator.")
    esub = p.add_subparsers(dest="exercise_command", metavar="ACTION")
    ls = esub.add_parser("list", help="list the course's exercises and the generator kinds")
    ls.set_defaults(func=cmd_list)
    new = esub.add_parser("new", help="print a fresh problem (same seed, same problem)")
    new.add_argument("kind", choices=generator_kinds(), metavar="KIND",
                     help=f"one of: {', '.join(generator_kinds())}")
    new.add_argument("--seed", type=int, default=0, help="the problem's seed (default 0)")
    new.add_argument("--difficulty", choices=DIFFICULTIES, default="normal",
                     help="pencil (small, for hand work), normal or hard")
    new.add_argument("--mode", choices=("2-level", "pae", "4-level"),
                     help="walk: the paging mode (default: any)")
    new.add_argument("--fault", choices=("yes", "no"),
                     help="walk: whether the walk faults (default: either)")
    new.add_argument("--direction", choices=("encode", "decode"),
                     help="cr3: encode a frame or decode a CR3 (default: either)")
    new.add_argument("--situations", "-n", type=int, metavar="N", dest="n",
                     help="l3-check: how many situations (default: by difficulty)")
    new.add_argument("--answer", action="store_true", help="also print the solution")
    new.set_defaults(func=cmd_new)
    b = esub.add_parser("build", help="regenerate exercises/ from solutions/")
    b.add_argument("--solutions", type=Path, default=Path("solutions"))
    b.add_argument("--exercises", type=Path, default=Path("exercises"))
    b.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when exercises/ is out of date")
    b.set_defaults(func=cmd_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def cmd_list(args: argparse.Namespace) -> int:
    for ex in EXERCISES.values():
        print(f"{ex.id:<24} {ex.kind:<9} {ex.notebook:<22} {ex.title}")
    print(f"\ngenerator kinds (pvlab exercise new KIND): {', '.join(generator_kinds())}")
    return 0


def generator_options(args: argparse.Namespace) -> dict[str, Any]:
    """The kind options given on the command line (generate() refuses foreign ones)."""
    opts: dict[str, Any] = {"mode": args.mode, "direction": args.direction, "n": args.n,
                            "fault": None if args.fault is None else args.fault == "yes"}
    if args.n is not None and args.n < 1:
        raise PvlabError(f"--situations {args.n} is not a positive number",
                         "give e.g. --situations 5")
    return {k: v for k, v in opts.items() if v is not None}


def cmd_new(args: argparse.Namespace) -> int:
    p = generate(args.kind, seed=args.seed, difficulty=args.difficulty,
                 **generator_options(args))
    print(f"[{p.id}]")
    print(p.text(answer=args.answer))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    changed = build(args.solutions, args.exercises, check=args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    if args.check and changed:
        print("run `pvlab exercise build` (or python scripts/make_exercises.py) to regenerate")
        return 1
    if not changed:
        print("exercises/ is up to date")
    return 0
