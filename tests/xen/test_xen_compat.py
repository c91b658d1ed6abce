# SPDX-License-Identifier: MIT
"""32-bit PV (compat) L3/L2 rules (reference §9 C, S27-S35; §2.4, §2.5, §2.7)."""

from __future__ import annotations

import pytest
from xenkit import guest, pv32_l3, rw_mappable, st

from pvlab.xen.invariants import LeakLedger, audit


def test_s27_shared_slot3_and_the_leak() -> None:
    g = guest(32)
    l3a, s = pv32_l3(g)
    l3b, _ = pv32_l3(g, l2=s)
    ledger = LeakLedger()
    assert ledger.record(g.pin(l3a, 3)).ok
    out = ledger.record(g.pin(l3b, 3))
    assert out.errno == "EINVAL" and out.failure.check == "pv32_l3_slot3_shared"
    assert "PAE L3 3rd slot is shared" in out.reason
    assert g.unpin(l3a).ok
    # Quirk: s keeps the leaked type reference: still an L2, not RW-mappable.
    assert st(g, s) == ("l2", 1, True, False) and g.page(s).pae_xen_l2
    assert not rw_mappable(g, s)
    assert ledger.record(g.pin(l3b, 3)).errno == "EINVAL"  # count 2 != 1
    assert audit(g.xen, leaked=ledger.leaks) == []


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
def test_s28_slot3_required_and_adjusted(profile: str) -> None:
    g = guest(32, profile)
    l3, l2 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l3, 0, l2, "P")
    out = g.pin(l3, 3)
    assert out.errno == "EINVAL" and out.failure.check == "pv32_l3_slot3"
    assert g.read_entry(l3, 0) == (l2 << 12) | 1  # slot 0 un-adjusted again
    g.write_entry(l3, 0, value=0)
    g.write_entry(l3, 3, l2, "P")
    assert g.pin(l3, 3).ok
    assert g.read_entry(l3, 3) == (l2 << 12) | 0x7  # Xen added RW|US
    assert g.unpin(l3).ok
    assert g.read_entry(l3, 3) == (l2 << 12) | 0x1  # removed on demotion


@pytest.mark.parametrize(("flags", "result"), [
    ("P|RW|US|A|D", "ok"), ("P|PWT", "EINVAL"), ("P|PCD", "EINVAL"), ("P|NX", "EINVAL"),
    ("P|PS", "EINVAL"), ("P|AVAIL0", "ok"), ("P|G", "EINVAL"), ("P|BIT52", "EINVAL"),
])
def test_s29_compat_l3_flags(flags: str, result: str) -> None:
    g = guest(32)
    l3, _ = pv32_l3(g, flags=flags)
    assert g.pin(l3, 3).result == result


def test_s29_slot0_rw_allowed() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g)
    g.write_entry(l3, 0, g.alloc_frame(), "P|RW")
    assert g.pin(l3, 3).ok


def test_s30_pae_xen_l2_exclusivity() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    t = g.alloc_frame()
    g.write_entry(l3, 0, t, "P")
    assert g.pin(l3, 3).ok
    assert g.pin(s, 2).errno == "EINVAL"
    assert g.pin(t, 2).ok
    # An L2 pinned plain cannot go in slot 3; after unpinning it can.
    l3b, _ = pv32_l3(g, l2=t)
    assert g.unpin(l3).ok
    assert g.pin(l3b, 3).errno == "EINVAL"
    assert g.unpin(t).ok
    assert g.pin(l3b, 3).ok


def test_s30_same_l2_in_slot0_and_slot3() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    g.write_entry(l3, 0, s, "P")
    assert g.pin(l3, 3).errno == "EINVAL"
    assert g.page(s).type_count == 0


def test_s30_same_plain_l2_in_several_low_slots() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g)
    t = g.alloc_frame()
    for i in (0, 1, 2):
        g.write_entry(l3, i, t, "P")
    assert g.pin(l3, 3).ok
    assert g.page(t).type_count == 3


def test_s31_live_compat_l3_updates() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    t = g.alloc_frame()
    assert g.pin(l3, 3).ok
    assert g.mmu_update(l3, 3, value=g.read_entry(l3, 3)).errno == "EINVAL"
    assert g.mmu_update(l3, 4, t, "P").errno == "EINVAL"
    assert g.mmu_update(l3, 1, t, "P").ok
    assert g.mmu_update(l3, 2, t, "P").ok
    assert g.mmu_update(l3, 1, t, "P|PS").errno == "EINVAL"
    assert audit(g.xen) == []


def test_s32_slots_4_to_511_wiped() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g)
    g.write_entry(l3, 10, value=0x1234_5007)
    out = g.pin(l3, 3)
    assert out.ok and any(e.check == "pv32_l3_high_slots" for e in out.events)
    assert g.read_entry(l3, 10) == 0


def test_s33_no_linear_l3_for_pv32() -> None:
    g = guest(32)
    a, _ = pv32_l3(g)
    assert g.pin(a, 3).ok
    b, _ = pv32_l3(g)
    g.write_entry(b, 0, a, "P")
    out = g.pin(b, 3)
    assert out.errno == "EINVAL" and out.failure.check == "pv32_no_linear_l3"


def test_s34_xen_slots_of_the_slot3_l2() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    g.write_entry(s, 500, value=0xBAD_0000_0001)
    assert g.pin(l3, 3).ok  # slot 500 is Xen's: skipped, then overwritten
    assert g.read_entry(s, 500) != 0xBAD_0000_0001
    assert g.read_entry(s, 428) & 0x81 == 0x81  # a 2 MiB read-only M2P mapping
    out = g.mmu_update(s, 500, value=0)
    assert out.errno == "EPERM" and out.failure.check == "pae_xen_l2_slots"
    assert g.mmu_update(s, 427, value=0).ok
    assert g.unpin(l3).ok
    xen_entry = g.read_entry(s, 428)
    assert xen_entry & 0x81 == 0x81  # Xen's entries stay after demotion
    assert g.pin(s, 2).errno == "EINVAL"  # PSE entries in a plain L2
    for i in range(428, 512):
        g.write_entry(s, i, value=0)
    assert g.pin(s, 2).ok


def test_s34_junk_in_a_guest_slot_fails() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    g.write_entry(s, 100, value=0xBAD_0000_0081)
    assert g.pin(l3, 3).errno == "EINVAL"


def test_s35_64bit_only_operations_from_pv32() -> None:
    g = guest(32)
    x = g.alloc_frame()
    out = g.pin(x, 4)
    assert out.ok and g.page(x).type_count == 0  # does nothing
    assert g.unpin(x).errno == "EINVAL"
    g.domain.vcpus[0].is_initialised = True
    assert g.new_user_baseptr(x).errno == "EINVAL"
    out = g.vm_assist("enable", "m2p_strict")
    assert out.errno == "EINVAL" and out.failure.check == "vm_assist_valid"


def test_pv32_vcpu_context_takes_l3_reference() -> None:
    g = guest(32)
    l3, s = pv32_l3(g)
    assert g.set_vcpu_context(0, cr3=l3).ok
    assert st(g, l3) == ("l3", 1, True, False) and g.page(s).pae_xen_l2
    assert g.domain.vcpus[0].guest_table == l3
