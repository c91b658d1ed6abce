# SPDX-License-Identifier: MIT
"""Exercise notebooks are generated from the solution notebooks.

Solution regions (`### BEGIN SOLUTION` .. `### END SOLUTION`) become the stub
`# YOUR CODE HERE` / `raise NotImplementedError()`, indented like the marker, exactly as
nbgrader's ClearSolutions does; hidden-test regions are dropped as nbgrader's
ClearHiddenTests does; outputs, execution counts and widget state are stripped.
Plain JSON, so `pvlab exercise build` needs no Jupyter packages.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"


def source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _strip_regions(text: str, code: bool, where: str) -> str:
    out: list[str] = []
    state = None
    for line in text.split("\n"):
        if BEGIN_SOLUTION in line or BEGIN_HIDDEN in line:
            if state is not None:
                raise PvlabError(f"{where}: nested BEGIN markers", "close each region first")
            state = "solution" if BEGIN_SOLUTION in line else "hidden"
            if state == "solution":
                indent = re.match(r"\s*", line).group(0)  # type: ignore[union-attr]
                stub = CODE_STUB if code else (TEXT_STUB,)
                out.extend(indent + s for s in stub)
        elif END_SOLUTION in line or END_HIDDEN in line:
            state = None
        elif state is None:
            out.append(line)
    if state is not None:
        raise PvlabError(f"{where}: a BEGIN marker has no END", "add the END marker")
    return "\n".join(out)


def student_version(nb: dict[str, Any], name: str = "notebook") -> dict[str, Any]:
    """The exercise notebook of a solution notebook."""
    out = copy.deepcopy(nb)
    out.get("metadata", {}).pop("widgets", None)
    out.get("metadata", {}).pop("celltoolbar", None)
    for i, cell in enumerate(out.get("cells", [])):
        text = source(cell)
        cell["source"] = _strip_regions(text, cell.get("cell_type") == "code", f"{name} cell {i}")
        cell.get("metadata", {}).pop("widgets", None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return out


def dumps(nb: dict[str, Any]) -> str:
    """Notebook JSON as nbformat writes it (indent 1, sorted keys)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def solution_notebooks(solutions: Path) -> list[Path]:
    return sorted(p for p in solutions.glob("*.ipynb"))


def build(solutions: Path, exercises: Path, *, check: bool = False) -> list[Path]:
    """Write `exercises/` from `solutions/`; return the exercise files that differed.

    With `check=True` nothing is written (for tests and CI).
    """
    if not solutions.is_dir():
        raise PvlabError(f"{solutions} is not a folder", "run from the repository root, or "
                         "pass --solutions")
    changed = []
    expected = set()
    for path in solution_notebooks(solutions):
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = dumps(student_version(nb, path.name))
        target = exercises / path.name
        expected.add(target.name)
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != text:
            changed.append(target)
            if not check:
                exercises.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    if exercises.is_dir():
        for stale in exercises.glob("*.ipynb"):
            if stale.name not in expected:
                changed.append(stale)
                if not check:
                    stale.unlink()
    return changed
