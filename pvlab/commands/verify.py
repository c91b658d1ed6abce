# SPDX-License-Identifier: MIT
"""`pvlab verify`: replay scenarios on real Xen (under QEMU) and compare with pvlab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pvlab.errors import PvlabError


def run(args: argparse.Namespace) -> int:
    from pvlab.verify.compare import render, summary
    from pvlab.verify.runner import verify
    from pvlab.verify.xenbuild import PROFILES, RELEASE, RELEASE_PROFILE, xen_for

    scenarios = list(args.scenarios)
    build = args.build
    if build not in (None, "debug", RELEASE):
        scenarios.insert(0, build)  # `--build FILE.yaml`: the flag alone, then a scenario
        build = "debug"
    if not scenarios:
        raise PvlabError("no scenario given", "name one or more SCENARIO.yaml files")
    paths = [Path(p) for p in scenarios]
    for p in paths:
        if not p.is_file():
            raise PvlabError(f"{p}: no such scenario file", "give the path of a .yaml scenario")
    builds: dict[str, str] = {}  # profile -> the cache variant that plays it
    if args.xen and not args.profile:
        profiles: tuple[str, ...] = ("4.19",)
    elif build == RELEASE and not args.xen:
        profiles = (RELEASE_PROFILE,)
        builds[RELEASE_PROFILE] = RELEASE
    else:
        profiles = (args.profile,) if args.profile else PROFILES
    reports = []
    for profile in profiles:
        xen = xen_for(builds.get(profile, profile), args.xen, build is not None)

        def progress(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        keep = Path(args.keep_logs) if args.keep_logs else None
        reports.extend(verify(paths, profile, xen, timeout=args.timeout, progress=progress,
                              keep_logs=keep))
    print(render(reports))
    print(summary(reports))
    return 0 if all(rep.ok for rep in reports) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="replay scenarios on the real Xen hypervisor under QEMU and compare",
        description=(
            "Replay each scenario on a real Xen (booted under QEMU with a probe kernel as dom0) "
            "and print, step by step, pvlab's result beside Xen's. Exit 0 when all agree."
        ),
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO.yaml")
    parser.add_argument("--xen", help="path of your own Xen ELF image (xen/xen of a build)")
    parser.add_argument("--profile", choices=("4.17", "4.19"),
                        help="profile the Xen plays (default: both project builds; 4.19 with "
                        "--xen)")
    parser.add_argument("--build", nargs="?", const="debug", metavar="debug|release",
                        help="build the hypervisors from Debian's xen source first (cached); "
                        "--build release builds and uses a third one without CONFIG_DEBUG "
                        "(plays 4.17 as a release build)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds before QEMU is killed (default 300)")
    parser.add_argument("--keep-logs", metavar="DIR", help="save the serial logs in DIR")
    parser.set_defaults(func=run)
