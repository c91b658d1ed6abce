# SPDX-License-Identifier: MIT
"""`pvlab campaign`: the long random-operation campaign (`make campaign`).

Runs the checker of :mod:`pvlab.xen.campaign` on plainly random sequences, seed after
seed (seed N: bitness/profile ``PARAMS[N % 4]``, so every batch covers 32- and 64-bit
guests on the 4.17 and 4.19 profiles), in worker processes, with a progress line on
stderr and the figures on stdout: sequences, operations, hypercalls, violations, time.
Exit status 0 when no violation was found, 1 otherwise. ``--replay SEED`` re-runs one
seed and prints its operations and the full violation message.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Iterator

from pvlab.xen.campaign import (
    CampaignFigures,
    check_sequence,
    run_seeds,
    sequence_for_seed,
)

CHUNK = 250  # seeds per task handed to a worker
SHOW_VIOLATIONS = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign", help="check many random operation sequences against Xen's rules",
        description="Run random operation sequences (both bitnesses, profiles 4.17 and "
                    "4.19) and check Xen's bookkeeping after every operation.")
    p.add_argument("--sequences", type=int, default=1000, metavar="N",
                   help="number of sequences (seeds) to run (default 1000)")
    p.add_argument("--seed-from", type=int, default=0, metavar="S",
                   help="first seed; seeds S .. S+N-1 are run (default 0)")
    p.add_argument("--workers", type=int, default=2, metavar="W",
                   help="worker processes (default 2; use the machine's cores)")
    p.add_argument("--replay", type=int, metavar="SEED",
                   help="re-run one seed and print its operations and any violation")
    p.set_defaults(func=main)


def _chunks(start: int, n: int) -> Iterator[range]:
    for lo in range(start, start + n, CHUNK):
        yield range(lo, min(lo + CHUNK, start + n))


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def replay(seed: int) -> int:
    bitness, profile, ops = sequence_for_seed(seed)
    print(f"seed {seed}: {bitness}-bit guest, profile {profile}, {len(ops)} operations")
    res = check_sequence(bitness, profile, ops)
    for i, op in enumerate(ops[:res.operations], 1):
        print(f"  {i:2d} {op}")
    if res.violation is None:
        print("no violation")
        return 0
    print(f"violation at operation {res.operations}:\n{res.violation}")
    return 1


def main(args: argparse.Namespace) -> int:
    if args.replay is not None:
        return replay(args.replay)
    n, start = args.sequences, args.seed_from
    if n < 1 or args.workers < 1:
        print("pvlab campaign: --sequences and --workers must be at least 1", file=sys.stderr)
        return 2
    print(f"pvlab campaign: {n} sequences, seeds {start}-{start + n - 1}, "
          f"{args.workers} worker(s)", file=sys.stderr)
    total = CampaignFigures()
    t0 = time.monotonic()
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(args.workers) as pool:
        for figs in pool.imap_unordered(run_seeds, _chunks(start, n)):
            total.add(figs)
            elapsed = time.monotonic() - t0
            print(f"\r  {total.sequences}/{n} sequences, {total.operations} operations, "
                  f"{len(total.violations)} violations, {_clock(elapsed)}",
                  end="", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - t0
    print(file=sys.stderr)
    print(f"sequences:  {total.sequences} (seeds {start}-{start + n - 1}; 32/64-bit x "
          "4.17/4.19)")
    print(f"operations: {total.operations} ({total.hypercalls} hypercalls)")
    print(f"violations: {len(total.violations)}")
    print(f"time:       {_clock(elapsed)} ({args.workers} worker(s))")
    for seed, msg in sorted(total.violations)[:SHOW_VIOLATIONS]:
        print(f"  seed {seed}: {msg.splitlines()[0]}   (pvlab campaign --replay {seed})")
    return 1 if total.violations else 0
