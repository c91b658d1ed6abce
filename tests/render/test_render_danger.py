# SPDX-License-Identifier: MIT
"""The danger marking in pictures: computed by `pvlab.xen.danger`, drawn on the frame."""

from __future__ import annotations

from pathlib import Path

from pvlab.render import tables_view
from pvlab.render.danger import MARK, dangers_in
from pvlab.scenario import load_scenario, run_scenario

CORPUS = Path(__file__).parent.parent / "scenarios"


def test_vulnerable_picture_marks_the_writable_pagetable() -> None:
    scn = load_scenario(CORPUS / "951-xsa-182-l4-fast-path-rw-recursive.yaml")
    run = run_scenario(scn, profile="pre-xsa-182", stop_after=2)
    view = tables_view(run)
    notes = dangers_in(view.model)
    assert notes and "XSA-182" in notes[0] and "writable" in notes[0]
    node = view.model.node_for_mfn(run.frames["l4"])
    assert node is not None and any(r.text.startswith(MARK) and r.tone == "bad"
                                     for r in node.rows)
    assert MARK in view.svg(backend="fallback")


def test_fixed_picture_has_no_danger() -> None:
    scn = load_scenario(CORPUS / "951-xsa-182-l4-fast-path-rw-recursive.yaml")
    run = run_scenario(scn, profile="4.19", stop_after=2)
    assert dangers_in(tables_view(run).model) == []
