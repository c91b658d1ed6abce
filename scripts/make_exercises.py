#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Regenerate exercises/ from solutions/ (same as `pvlab exercise build`).

    python scripts/make_exercises.py           # write
    python scripts/make_exercises.py --check   # exit 1 if exercises/ is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pvlab.exercises.notebooks import build  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    changed = build(ROOT / "solutions", ROOT / "exercises", check=check)
    for path in changed:
        print(f"{'out of date' if check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
