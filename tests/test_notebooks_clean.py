# SPDX-License-Identifier: MIT
"""Committed notebooks carry no outputs, execution counts or widget state, and open with the
SPDX licence cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")


def committed_notebooks() -> list[Path]:
    found = []
    for folder in FOLDERS:
        base = ROOT / folder
        if base.is_dir():
            found += [p for p in base.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


def problems(nb: dict) -> list[str]:
    """Everything that makes a notebook not clean; empty when it is clean."""
    found = []
    if "widgets" in nb.get("metadata", {}):
        found.append("notebook metadata holds widget state ('widgets')")
    cells = nb.get("cells", [])
    for i, cell in enumerate(cells):
        if cell.get("outputs"):
            found.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count")
        if "widgets" in cell.get("metadata", {}):
            found.append(f"cell {i} metadata holds widget state")
    first = cells[0] if cells else {}
    source = "".join(first.get("source", []))
    if first.get("cell_type") != "markdown" or "SPDX-License-Identifier: MIT" not in source:
        found.append("the first cell must be markdown saying 'SPDX-License-Identifier: MIT'")
    return found


CLEAN = {
    "metadata": {"kernelspec": {"name": "python3"}},
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["SPDX-License-Identifier: MIT"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["1 + 1"]},
    ],
}


def test_checker_accepts_a_clean_notebook() -> None:
    assert problems(CLEAN) == []


def test_checker_finds_outputs_counts_and_widget_state() -> None:
    dirty = json.loads(json.dumps(CLEAN))
    dirty["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    code = dirty["cells"][1]
    code["execution_count"] = 3
    code["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "2"}}]
    assert problems(dirty) == [
        "notebook metadata holds widget state ('widgets')",
        "cell 1 has outputs",
        "cell 1 has an execution count",
    ]


def test_checker_wants_the_spdx_cell_first() -> None:
    no_licence = {"metadata": {}, "cells": CLEAN["cells"][1:]}
    assert problems(no_licence) == [
        "the first cell must be markdown saying 'SPDX-License-Identifier: MIT'"]


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = json.loads(path.read_text())
    assert problems(nb) == [], (
        f"{path.relative_to(ROOT)}: clear outputs before committing "
        "(e.g. jupyter nbconvert --clear-output --inplace, and remove metadata.widgets)")
