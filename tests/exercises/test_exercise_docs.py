# SPDX-License-Identifier: MIT
"""docs/exercises.md prints no exercise's answer and documents the CLI it has."""

from __future__ import annotations

from pathlib import Path

from pvlab.cli import build_parser
from pvlab.exercises import EXERCISES, show

DOC = (Path(__file__).resolve().parents[2] / "docs" / "exercises.md").read_text()


def test_the_exercises_doc_prints_no_answer() -> None:
    for ex_id in EXERCISES:
        a = show(ex_id).answer
        if isinstance(a, int) and not isinstance(a, bool):
            assert hex(a) not in DOC.lower(), f"{ex_id}'s answer {a:#x} is printed"


def test_the_generator_options_the_doc_names_exist_on_the_command_line() -> None:
    for flag in ("--mode", "--fault", "--direction", "--situations"):
        assert f"`{flag}" in DOC, flag
    p = build_parser()
    a = p.parse_args(["exercise", "new", "walk", "--mode", "pae", "--fault", "yes"])
    assert (a.mode, a.fault) == ("pae", "yes")
    assert p.parse_args(["exercise", "new", "cr3", "--direction", "encode"]).direction
    assert p.parse_args(["exercise", "new", "l3-check", "--situations", "3"]).n == 3
