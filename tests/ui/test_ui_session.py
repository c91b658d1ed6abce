# SPDX-License-Identifier: MIT
"""The lab driven from Python through the seed stories; outcomes are real Xen's
(shared reference §9 A: S01-S05, S09; [OBS P45/P45b, D06-D10, Q17-Q19])."""

from __future__ import annotations

import pytest

from pvlab.ui import LabSession
from pvlab.units import MFN_4GIB


def seed_sketch(lab: LabSession) -> None:
    """32-bit guest, assist off, L3 above 4 GiB with slot 3 -> L2, vCPU 0 running."""
    assert lab.set_bitness(32)
    assert lab.set_vm_assist("pae_extended_cr3", False)
    assert lab.allocate("l3", above="4GiB") == "l3"
    assert lab.allocate("l2") == "l2"
    assert lab.set_entry("l3", 3, "l2", "P")
    assert lab.set_vcpu0_initialised(True)


def test_seed_story_erange_with_explanation() -> None:
    lab = LabSession()
    seed_sketch(lab)
    assert lab.mfn("l3") >= MFN_4GIB
    out = lab.pin("l3", 3)
    assert out is not None and out.rc == -34 and out.errno == "ERANGE"
    assert lab.status_kind == "fail"
    assert "ERANGE (-34)" in lab.status_text
    assert "PAE pgd must be below 4GB" in lab.status_text
    assert "promote_l3_table" in lab.status_text
    assert lab.failed_frame == "l3"
    # The failed promotion leaves nothing behind (S01: L3 none, 0, not pinned).
    row = {r.name: r for r in lab.frame_rows()}["l3"]
    assert (row.type, row.type_count, row.pinned, row.failed) == ("none", 0, False, True)
    assert "promote_l3_table" in lab.trace_text()


def test_toggles_replay_the_pin_under_the_new_settings() -> None:
    lab = LabSession()
    seed_sketch(lab)
    lab.pin("l3")  # level from the frame's name
    assert lab.last_outcome is not None and lab.last_outcome.errno == "ERANGE"
    lab.set_vm_assist("pae_extended_cr3", True)  # S03
    assert lab.last_outcome.ok and "replayed 1 step" in lab.status_text
    lab.set_vm_assist("pae_extended_cr3", False)
    assert lab.last_outcome.errno == "ERANGE"
    lab.set_profile("4.17")  # no check before 4.19
    assert lab.last_outcome.ok
    lab.set_profile("4.19")
    lab.set_vcpu0_initialised(False)  # S04: the toolstack's slack
    assert lab.last_outcome.ok
    lab.set_vcpu0_initialised(True)
    lab.set_bitness(64)  # S09: no rule for 64-bit guests
    assert lab.last_outcome.ok


def test_vcpu_initialise_then_second_high_l3() -> None:
    """S05: vCPU 0's context with the unvalidated high L3 succeeds, then a new high L3 fails."""
    lab = LabSession()
    lab.set_bitness(32)
    for name in ("l3", "l3b"):
        lab.allocate(name, above="4GiB")
    lab.allocate("l2")
    lab.allocate("l2b")
    lab.set_entry("l3", 3, "l2", "P")
    lab.set_entry("l3b", 3, "l2b", "P")
    out = lab.initialise_vcpu0(cr3="l3")
    assert out is not None and out.ok
    assert "CR3 -> l3" in lab.domain_summary()
    out = lab.pin("l3b", 3)
    assert out is not None and out.errno == "ERANGE" and lab.failed_frame == "l3b"
    # The context may carry the assist instead (S03/S11).
    lab.undo()
    lab.undo()
    out = lab.initialise_vcpu0(cr3="l3", vm_assists=["pae_extended_cr3"])
    assert out is not None and out.ok
    assert lab.pin("l3b", 3).ok  # type: ignore[union-attr]


def test_undo_restores_each_kind_of_action() -> None:
    lab = LabSession()
    seed_sketch(lab)
    lab.pin("l3", 3)
    assert lab.undo()  # the pin
    assert lab.last_outcome is None and lab.steps == []
    assert lab.undo()  # vCPU 0 initialised
    assert lab.doc.vcpu0_initialised is False
    assert lab.undo() and lab.undo()  # the entry, then l2
    assert "l2" not in lab.frames and not lab.doc.tables.get("l3")
    lab.undo()
    lab.undo()  # l3, the assist toggle
    assert lab.undo()  # bitness
    assert lab.bitness == 64 and lab.frames == {}
    assert not lab.undo() and lab.status_text == "nothing to undo"


def test_mistakes_change_nothing_and_say_why() -> None:
    lab = LabSession()
    seed_sketch(lab)
    before = lab.doc.copy()
    assert lab.pin("nope", 3) is None
    assert lab.status_kind == "error" and "no frame named 'nope'" in lab.status_text
    assert lab.set_entry("l3", 600, "l2") is False and "0-511" in lab.status_text
    assert lab.set_entry("l3", 1, "l2", "P|BOGUS") is False
    assert "unknown page-table flag" in lab.status_text
    assert lab.free("l2") is False and "entry 3 of l3" in lab.status_text
    taken = lab.mfn("l2")
    assert lab.allocate("x", mfn=taken) is None and lab.status_kind == "error"
    assert f"MFN {taken:#x} is already frame l2" in lab.status_text
    assert lab.doc == before


def test_m2p_strict_is_64_bit_only() -> None:
    lab = LabSession()
    assert lab.set_vm_assist("m2p_strict", True)
    assert lab.set_bitness(32)
    assert "m2p_strict" not in lab.vm_assists and "dropped m2p_strict" in lab.status_text
    assert lab.set_vm_assist("m2p_strict", True) is False
    assert "arch_vm_assist_valid_mask" in lab.status_text


def test_allocation_places_frames_where_asked() -> None:
    lab = LabSession()
    low = lab.allocate(below="4GiB")
    high = lab.allocate(level=3, above="4GiB")
    exact = lab.allocate("x", mfn=0x123456)
    assert (low, high, exact) == ("f", "l3", "x")
    assert lab.mfn("f") < MFN_4GIB <= lab.mfn("l3")
    assert lab.mfn("x") == 0x123456 and "mfn 0x123456" in lab.status_text
    assert lab.free("x") and "x" not in lab.frames


def test_frames_stay_where_they_were_placed() -> None:
    """A later, more constrained allocation does not move earlier frames on replay."""
    lab = LabSession()
    lab.allocate("a")
    first = lab.mfn("a")
    lab.allocate("b", below="4GiB")
    lab.set_bitness(32)
    assert lab.mfn("a") == first and lab.mfn("b") != first


def test_mmu_update_on_a_live_table_and_write_fault() -> None:
    """Writing a live pagetable directly faults; mmu_update is checked (mod_l1_entry)."""
    lab = LabSession()
    lab.set_vcpu0_initialised(True)
    lab.allocate("l1")
    lab.allocate("data")
    assert lab.pin("l1").ok  # type: ignore[union-attr]
    assert lab.set_entry("l1", 0, "data", "P|RW")  # a write step
    assert lab.last_outcome is not None and lab.last_outcome.rc == -14
    out = lab.mmu_update("l1", 0, "data", "P|RW")
    assert out is not None and out.ok
    out = lab.mmu_update("l1", 1, "l1", "P|RW")  # map the live L1 writable
    assert out is not None and out.errno == "EBUSY"


def test_step_and_back_through_the_seed_example() -> None:
    lab = LabSession()
    assert lab.load_example("seed-erange")
    assert lab.position == 0 and len(lab.steps) == 6 and lab.last_outcome is None
    results = []
    while lab.step():
        results.append(lab.last_outcome.result)  # type: ignore[union-attr]
    assert results == ["ok", "ok", "ERANGE", "ok", "ok", "ok"]
    assert "no more steps" in lab.status_text
    assert "6/6 expect_page" in lab.log[-2] and "holds" in lab.log[-2]
    lab.back()
    lab.back()
    lab.back()
    assert lab.position == 3 and lab.last_outcome.errno == "ERANGE"  # type: ignore[union-attr]
    assert "(as expected)" in lab.status_text and lab.failed_frame == "l3b"
    # A new action at this point replaces the steps after it.
    lab.vm_assist("enable", "pae_extended_cr3")
    assert len(lab.steps) == 4 and "3 later step(s) dropped" in lab.status_text


def test_loading_a_broken_scenario_reports_and_keeps_the_sketch() -> None:
    lab = LabSession()
    lab.allocate("keep")
    assert not lab.load("name: x\nsteps:\n  - pin: {frame: nope, level: 3}\n")
    assert lab.status_kind == "error" and "unknown frame 'nope'" in lab.status_text
    assert "keep" in lab.frames
    assert not lab.load_example("no-such-example")
    assert "seed-erange" in lab.status_text


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_set_role_is_the_pin_default(level: int) -> None:
    lab = LabSession()
    lab.set_vcpu0_initialised(True)
    lab.allocate("t")
    lab.set_role("t", level)
    out = lab.pin("t")
    assert out is not None and out.op.startswith(f"MMUEXT_PIN_L{level}_TABLE")
