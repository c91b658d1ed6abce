# SPDX-License-Identifier: MIT
"""The audit itself: clean on Xen-correct states, and each check fires on a corruption."""

from __future__ import annotations

import pytest
from xenkit import guest, pv32_l3

from pvlab.xen.invariants import LeakLedger, audit, leaked_refs
from pvlab.xen.page_info import PGT_pae_xen_l2, PGT_partial, PGT_pinned, PGT_validated


def _tree64():
    g = guest(64)
    l4, l3, l2, l1, data = (g.alloc_frame() for _ in range(5))
    g.write_entry(l4, 0, l3, "P|RW")
    g.write_entry(l3, 0, l2, "P|RW")
    g.write_entry(l2, 0, l1, "P|RW")
    g.write_entry(l1, 0, data, "P|RW")
    g.write_entry(l1, 1, data, "P")
    assert g.pin(l4, 4).ok
    return g, (l4, l3, l2, l1, data)


def test_clean_after_a_deep_64bit_pin() -> None:
    g, _ = _tree64()
    assert audit(g.xen) == []


def test_clean_after_pv32_pin_and_vcpu_context() -> None:
    g = guest(32)
    l3, l2 = pv32_l3(g)
    l1 = g.alloc_frame()
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.set_vcpu_context(0, cr3=l3).ok
    assert g.pin(l1, 1).ok
    assert audit(g.xen) == []


@pytest.mark.parametrize(("field", "delta", "needle"), [
    ("type", 1, "type count"), ("type", -1, "type count"),
    ("count", 1, "general count"), ("count", -1, "general count"),
])
def test_counts_are_recomputed_not_trusted(field: str, delta: int, needle: str) -> None:
    g, (_, _, l2, _, data) = _tree64()
    pi = g.page(data if field == "count" else l2)
    if field == "type":
        pi.type_info += delta
    else:
        pi.count_info += delta
    errs = audit(g.xen)
    assert any(needle in e for e in errs), errs


def test_live_pagetable_mapped_writable_is_reported() -> None:
    g, (_, _, _, l1, data) = _tree64()
    # Forge an RW mapping of the live L1 into itself, bypassing Xen.
    g.xen.machine.write_entry(l1, 5, (l1 << 12) | 3)
    errs = audit(g.xen)
    assert any("mapped writable" in e for e in errs), errs


@pytest.mark.parametrize(("flag", "needle"), [
    (PGT_partial, "PGT_partial"), (PGT_pae_xen_l2, "pae_xen_l2"),
])
def test_flag_misuse_is_reported(flag: int, needle: str) -> None:
    g, (_, _, _, l1, _) = _tree64()
    g.page(l1).type_info |= flag
    assert any(needle in e for e in audit(g.xen))


def test_pinned_without_validation_is_reported() -> None:
    g = guest(64)
    f = g.alloc_frame()
    pi = g.page(f)
    pi.type_info = (1 << 61) | PGT_pinned | 1
    pi.count_info += 1
    errs = audit(g.xen)
    assert any("pinned but validated=False" in e for e in errs), errs


def test_validated_pagetable_at_count_zero_is_reported() -> None:
    g = guest(64)
    f = g.alloc_frame()
    g.page(f).type_info = (1 << 61) | PGT_validated
    assert any("type count 0" in e for e in audit(g.xen))


def test_linear_pt_count_is_checked() -> None:
    g = guest(64)
    a, b = g.alloc_frame(), g.alloc_frame()
    assert g.pin(a, 2).ok
    g.write_entry(b, 0, a, "P")  # b[0] -> a read-only: a linear L2 entry
    assert g.pin(b, 2).ok
    assert (g.page(a).linear_pt_count, g.page(b).linear_pt_count) == (-1, 1)
    assert audit(g.xen) == []
    g.page(a).linear_pt_count = 0
    assert any("linear_pt_count" in e for e in audit(g.xen))


def test_s27_leak_is_accepted_only_when_declared() -> None:
    g = guest(32)
    l3a, s = pv32_l3(g)
    l3b, _ = pv32_l3(g, l2=s)
    assert g.pin(l3a, 3).ok
    out = g.pin(l3b, 3)
    assert out.errno == "EINVAL"
    assert leaked_refs(out) == {s: 1}
    errs = audit(g.xen)
    assert any(f"{s:#x}" in e and "type count" in e for e in errs), errs
    ledger = LeakLedger()
    ledger.record(out)
    assert audit(g.xen, leaked=ledger.leaks) == []


def test_vcpu_base_pointer_of_wrong_type_is_reported() -> None:
    g = guest(64)
    f = g.alloc_frame()
    g.domain.vcpus[0].guest_table = f
    errs = audit(g.xen)
    assert any("guest_table" in e for e in errs), errs
