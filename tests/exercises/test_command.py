# SPDX-License-Identifier: MIT
"""`pvlab exercise list | new | build`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pvlab
from pvlab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_list_names_every_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    for ex_id in pvlab.exercises.EXERCISES:
        assert ex_id in out
    assert "walk" in out and "l3-check" in out


def test_new_prints_the_problem_and_with_answer_the_solution(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exercise", "new", "cr3", "--seed", "3", "--difficulty", "pencil"]) == 0
    question = capsys.readouterr().out
    p = pvlab.generate("cr3", seed=3, difficulty="pencil")
    assert p.question in question and "Answer:" not in question
    assert main(["exercise", "new", "cr3", "--seed", "3", "--difficulty", "pencil",
                 "--answer"]) == 0
    assert f"Answer: {p.answer:#x}" in capsys.readouterr().out


def test_new_rejects_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["exercise", "new", "nonsense"])


def test_build_regenerates_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", sol)
    args = ["exercise", "build", "--solutions", str(sol), "--exercises", str(ex)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    for path in sol.glob("*.ipynb"):
        assert (ex / path.name).read_text() == (ROOT / "exercises" / path.name).read_text()


def test_new_takes_the_generator_options_the_docs_describe(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exercise", "new", "walk", "--seed", "4", "--difficulty", "pencil",
                 "--mode", "2-level", "--fault", "no"]) == 0
    out = capsys.readouterr().out
    p = pvlab.generate("walk", seed=4, difficulty="pencil", mode="2-level", fault=False)
    assert p.question in out and f"[{p.id}]" in out
    assert main(["exercise", "new", "cr3", "--direction", "decode"]) == 0
    assert "holds CR3" in capsys.readouterr().out
    assert main(["exercise", "new", "l3-check", "--situations", "2"]) == 0
    assert "  2. " in capsys.readouterr().out
    assert main(["exercise", "new", "cr3", "--mode", "pae"]) == 2
    assert "has no option 'mode'" in capsys.readouterr().err
