# SPDX-License-Identifier: MIT
"""Solutions and exercises: exercises/ is what solutions/ generates; every solution runs
with all checks passing; every exercise fails only with the stubs' NotImplementedError;
real nbgrader turns every solution into a student version with no solution text left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pvlab.exercises import EXERCISES
from pvlab.exercises.notebooks import build, source, student_version

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
ids = [p.name for p in SOLUTIONS]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def solution_lines(nb: dict) -> list[str]:
    """Every non-blank line inside a solution region."""
    out = []
    for cell in nb["cells"]:
        inside = False
        for line in source(cell).split("\n"):
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside and line.strip():
                out.append(line.strip())
    return out


def test_four_solution_notebooks_hold_every_exercise() -> None:
    assert len(SOLUTIONS) >= 4
    text = "".join(source(c) for p in SOLUTIONS for c in load(p)["cells"])
    for ex in EXERCISES.values():
        assert f'pvlab.check("{ex.id}"' in text
        assert (ROOT / "solutions" / f"{ex.notebook}.ipynb").exists()


def test_committed_exercises_are_generated_from_the_solutions() -> None:
    stale = build(ROOT / "solutions", ROOT / "exercises", check=True)
    assert stale == [], "run `pvlab exercise build` (python scripts/make_exercises.py)"


def test_student_version_stubs_solutions_and_drops_hidden_tests() -> None:
    nb = {"metadata": {"widgets": {}}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "outputs": [{"x": 1}],
         "source": "def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION\n"
                   "check(f())"},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "# test\n### BEGIN HIDDEN TESTS\nassert f() == 42\n### END HIDDEN TESTS"}]}
    out = student_version(nb)
    assert source(out["cells"][0]) == ("def f():\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\ncheck(f())")
    assert source(out["cells"][1]) == "# test"
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert "widgets" not in out["metadata"]


def test_every_answer_cell_has_nbgrader_metadata() -> None:
    for path in SOLUTIONS:
        grade_ids = set()
        for cell in load(path)["cells"]:
            text = source(cell)
            meta = cell["metadata"].get("nbgrader")
            if "BEGIN SOLUTION" in text:
                assert meta and meta["solution"] and not meta["grade"], path.name
            if "BEGIN HIDDEN TESTS" in text:
                assert meta and meta["grade"] and meta["locked"] and meta["points"] > 0
            if meta:
                assert meta["schema_version"] == 3
                assert meta["grade_id"] not in grade_ids
                grade_ids.add(meta["grade_id"])


def _execute(path: Path, *, allow_errors: bool) -> dict:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_solution_notebook_runs_and_every_check_passes(path: Path) -> None:
    nb = _execute(path, allow_errors=False)
    checked = 0
    for cell in nb.cells:
        if "pvlab.check(" in cell.source and "BEGIN SOLUTION" in cell.source:
            shown = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
            assert ": Correct." in shown, shown
            checked += 1
    assert checked >= 4


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_exercise_notebook_fails_only_with_the_stubs(path: Path) -> None:
    exercise = ROOT / "exercises" / path.name
    nb = _execute(exercise, allow_errors=True)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    stubs = sum("raise NotImplementedError()" in c.source for c in nb.cells)
    assert stubs >= 4
    assert [e.ename for e in errors] == ["NotImplementedError"] * stubs


@pytest.mark.slow
def test_nbgrader_generate_assignment_leaves_no_solution_text(tmp_path: Path) -> None:
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    source_dir = course / "source" / "pvlab"
    source_dir.mkdir(parents=True)
    for path in SOLUTIONS:
        shutil.copy(path, source_dir / path.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'pvlab'\n"
        "c.CourseDirectory.db_assignments = [dict(name='pvlab')]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "pvlab", "--force",
         "--db", f"sqlite:///{tmp_path / 'gradebook.db'}"],
        cwd=course, capture_output=True, text=True, timeout=300,
        # nbgrader runs the `alembic` script of its own environment
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                   f"{os.environ.get('PATH', '')}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in SOLUTIONS:
        released = course / "release" / "pvlab" / path.name
        assert released.exists(), proc.stdout + proc.stderr
        student = load(released)
        text = "\n".join(source(c) for c in student["cells"])
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        for line in solution_lines(load(path)):
            if not any(ch.isalnum() for ch in line):
                continue  # a lone "]" or ")" also closes the prose's markdown links
            assert line not in text, f"{path.name}: solution text left: {line!r}"
        # nbgrader's student version has the same cells as our generated exercises/
        ours = load(ROOT / "exercises" / path.name)
        assert [source(c) for c in student["cells"]] == [source(c) for c in ours["cells"]]
