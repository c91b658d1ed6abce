# SPDX-License-Identifier: MIT
"""The `pvlab` command line.

Each sub-command lives in its own module `pvlab.commands.<name>` exposing
`register(subparsers) -> None`; the module's parser sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from pvlab.errors import PvlabError

COMMANDS = ("run", "render", "diff", "verify", "rules", "schema", "exercise", "doctor", "lab",
            "campaign", "explain", "export", "hub", "fuzz")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pvlab",
        description="Emulate Xen's PV pagetable checks and teach them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"pvlab.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except PvlabError as err:
        print(f"pvlab {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into e.g. `head`: stop quietly.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
