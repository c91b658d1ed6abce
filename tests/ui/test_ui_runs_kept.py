# SPDX-License-Identifier: MIT
"""Runs the lab keeps (`Document.build`'s memo): a kept run is the state a fresh replay
gives, and belongs to the document that asked for it."""

from __future__ import annotations

import pytest

from pvlab.render import text_dump
from pvlab.ui import LabSession
from pvlab.ui import document as docmod


def _fresh(lab: LabSession, cursor: int | None = None) -> str:
    """The state the document's steps give when replayed from scratch, as text."""
    from pvlab.scenario import run_scenario

    scn = lab.doc.build_scenario()
    run = run_scenario(scn, stop_after=lab.doc.cursor if cursor is None else cursor)
    return text_dump(run.xen, run.guest) + repr([s.outcome.result for s in run.steps])


def _state(run) -> str:  # type: ignore[no-untyped-def]
    return text_dump(run.xen, run.guest) + repr([s.outcome.result for s in run.steps])


def test_undo_toggle_and_replay_reuse_equal_fresh_runs() -> None:
    lab = LabSession()
    lab.set_bitness(32)
    lab.allocate("l3", above="4GiB")
    lab.allocate("l2")
    lab.set_entry("l3", 3, "l2", "P")
    lab.set_vcpu0_initialised(True)
    before_pin = _state(lab.run)
    out = lab.pin("l3", 3)
    assert out is not None and out.errno == "ERANGE"
    assert _state(lab.run) == _fresh(lab)
    before = lab.run_before_last_step()
    assert before is not None and _state(before) == _fresh(lab, lab.doc.cursor - 1)
    assert before.scenario is lab.doc.scenario or before.scenario.steps == \
        lab.doc.scenario.steps[:len(before.scenario.steps)]
    for _ in range(2):  # toggling back and forth hands out kept runs
        lab.set_vm_assist("pae_extended_cr3", True)
        assert lab.last_outcome is not None and lab.last_outcome.ok
        assert _state(lab.run) == _fresh(lab)
        assert lab.run.scenario is lab.doc.build_scenario()
        lab.set_vm_assist("pae_extended_cr3", False)
        assert lab.last_outcome is not None and lab.last_outcome.errno == "ERANGE"
        assert _state(lab.run) == _fresh(lab)
    while lab.doc.cursor:
        assert lab.undo()
    assert _state(lab.run) == before_pin == _fresh(lab)
    assert len(docmod._RUNS) <= docmod.RUNS_KEPT


def test_kept_runs_are_per_profile_and_cursor() -> None:
    lab = LabSession()
    lab.allocate("l4")
    lab.pin("l4", 4)
    lab.unpin("l4")
    a = lab.doc.build(cursor=1)
    b = lab.doc.build(cursor=2)
    c = lab.doc.build(cursor=2, profile="4.17")
    assert len(a.steps) == 1 and len(b.steps) == 2 and c.profile == "4.17"
    assert b is not c and _state(b) == _fresh(lab, 2)


def test_runs_kept_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(docmod.RUNS_KEPT_ENV, "2")
    assert docmod._runs_kept() == 2
    for junk in ("", "0", "-3", "many"):
        monkeypatch.setenv(docmod.RUNS_KEPT_ENV, junk)
        assert docmod._runs_kept() == 12
