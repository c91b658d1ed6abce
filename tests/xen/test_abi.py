# SPDX-License-Identifier: MIT
"""One suite, both ABIs: the same behavioural checks run against PV64 and PV32 (compat),
each reading what differs from the guest's ABI object (py65's shared-suite pattern).

The expected values are real Xen's: a compat guest's top level is a PAE L3 that Xen puts
in slot 0 of its per-vCPU compat L4; a 64-bit guest's L4 has Xen's slots 256-271;
`xen_pfn_to_cr3` rotates a compat guest's frame number; m2p_strict is 64-bit only.
"""

from __future__ import annotations

import pytest

from pvlab.x86.flags import RW, US, A, P, entry_mfn, make_entry
from pvlab.xen import Xen
from pvlab.xen.abi import PV32, PV64, PV64Abi, abi_for
from pvlab.xen.hypervisor import Guest
from pvlab.xen.invariants import audit
from pvlab.xen.page_info import PGT_l3_page_table, PGT_l4_page_table

ABIS = pytest.mark.parametrize("abi", [PV64, PV32], ids=lambda a: a.name)


def _guest(abi: PV64Abi, **kw: object) -> Guest:
    g = Xen("4.19", "8GiB").create_domain(abi.bitness, **kw)  # type: ignore[arg-type]
    assert g.domain.abi is abi
    return g


def _tree(g: Guest) -> tuple[int, int]:
    """A minimal valid tree below 4 GiB: (top-level table, the L2 it reaches)."""
    abi = g.domain.abi
    top, l2 = g.alloc_frame(below="4GiB"), g.alloc_frame()
    if abi.top_level == 4:
        l3 = g.alloc_frame()
        g.write_entry(top, 0, l3, "P|RW")
        g.write_entry(l3, 0, l2, "P|RW")
    else:
        g.write_entry(top, 3, l2, "P")  # a compat L3 must fill slot 3
    return top, l2


def test_the_compat_abi_derives_from_the_64_bit_one() -> None:
    assert isinstance(PV32, type(PV64)) and type(PV32) is not type(PV64)
    assert abi_for(32) is PV32 and abi_for(64) is PV64
    assert (PV64.top_level, PV32.top_level) == (4, 3)
    assert (PV64.top_type, PV32.top_type) == (PGT_l4_page_table, PGT_l3_page_table)


@ABIS
def test_a_vcpu_context_loads_the_top_level_table(abi: PV64Abi) -> None:
    g = _guest(abi)
    top, _ = _tree(g)
    out = g.set_vcpu_context(0, cr3=top)
    assert out.ok, out.explain()
    pi = g.page(top)
    assert (pi.level, pi.validated, pi.type_count) == (abi.top_level, True, 1)
    assert g.domain.vcpus[0].guest_table == top
    assert audit(g.xen) == []


@ABIS
def test_the_cr3_codec_round_trips_on_both_sides_of_4_gib(abi: PV64Abi) -> None:
    for mfn in (0x1234, 0xFFFFF, 0x100000, 0x123456):
        assert abi.mfn_of_cr3(abi.cr3_of(mfn)) == mfn
    # public arch-x86/xen-x86_32.h: the frame number rotated left by 12 within 32 bits
    assert abi.cr3_of(0x123456) == (0x23456001 if abi.extended_cr3_codec else 0x123456000)


@ABIS
def test_xen_owns_its_slots(abi: PV64Abi) -> None:
    """An update of one of Xen's slots is refused by the rule the ABI names."""
    g = _guest(abi)
    top, _ = _tree(g)
    assert g.pin(top, abi.top_level).ok
    slot = 256 if abi.top_level == 4 else 3
    rule = abi.update_refused(abi.top_level, slot, pae_xen_l2=False)
    assert rule == ("l4_xen_slots" if abi.top_level == 4 else "pv32_l3_update_slot")
    out = g.mmu_update(top, slot, g.alloc_frame(), "P")
    assert out.errno == "EINVAL" and out.failure is not None and out.failure.check == rule
    assert audit(g.xen) == []


@ABIS
def test_guest_slots_are_the_complement_of_xens(abi: PV64Abi) -> None:
    for level in (1, 2, 3, 4):
        for pae in (False, True):
            guest = set(abi.guest_slots(level, pae_xen_l2=pae))
            xen = set(abi.xen_slots(level, pae_xen_l2=pae))
            assert not guest & xen
            assert guest | xen == set(range(abi.slots(level))) | xen
    assert len(abi.guest_slots(abi.top_level)) == (512 - 16 if abi.top_level == 4 else 4)


@ABIS
def test_validated_entries_are_adjusted_as_the_abi_says(abi: PV64Abi) -> None:
    """adjust_guest_l2e: a 64-bit guest's L2 entries get US (its kernel runs in ring 3)."""
    g = _guest(abi)
    l2, l1 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.pin(l2, 2).ok
    assert g.read_entry(l2, 0) == make_entry(l1, P | RW) | abi.entry_adjust[2]
    assert (abi.entry_adjust[2] == US) == (abi is PV64)


@ABIS
def test_a_failed_compat_l3_unadjusts_what_it_adjusted(abi: PV64Abi) -> None:
    assert abi.unadjust_l3e(make_entry(5, P | RW | US | A)) == (
        make_entry(5, P) if abi.l3_promotion == "compat" else make_entry(5, P | RW | US | A))


@ABIS
def test_pin_l4_does_what_the_abi_says(abi: PV64Abi) -> None:
    g = _guest(abi)
    l4 = g.alloc_frame()
    out = g.pin(l4, 4)
    assert out.ok
    assert g.page(l4).pinned is not abi.pin_does_nothing(4)
    assert abi.pin_does_nothing(4) is (abi is PV32)


@ABIS
@pytest.mark.parametrize("assist", ["pae_extended_cr3", "m2p_strict", "writable_pagetables"])
def test_vm_assist_validity_comes_from_the_abi(abi: PV64Abi, assist: str) -> None:
    g = _guest(abi)
    out = g.vm_assist("enable", assist)
    valid = abi.assist_valid({"pae_extended_cr3": 3, "m2p_strict": 32,
                              "writable_pagetables": 2}[assist])
    assert out.ok is valid
    assert valid is not (assist == "m2p_strict" and abi is PV32)


@ABIS
def test_a_context_vm_assist_field_is_as_wide_as_the_abi_says(abi: PV64Abi) -> None:
    """A compat vcpu_guest_context holds vm_assist in 32 bits: bit 32 is lost."""
    g = _guest(abi)
    top, _ = _tree(g)
    out = g.set_vcpu_context(0, cr3=top, vm_assists=[32, 2])
    assert out.ok, out.explain()
    assert g.domain.vm_assist == ((1 << 32) | 4 if abi.context_vm_assist_bits == 64 else 4)


@ABIS
def test_update_va_mapping_walks_the_abis_levels(abi: PV64Abi) -> None:
    g = _guest(abi)
    top, l2 = _tree(g)
    l1, page = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.set_vcpu_context(0, cr3=top).ok
    va = 3 << 30 if abi.top_level == 3 else 0  # compat: slot 3 of the L3 covers 3-4 GiB
    assert g.update_va_mapping(va, page, "P|RW").ok
    e = g.read_entry(l1, 0)
    assert entry_mfn(e) == page and e == abi.adjust_l1e(make_entry(page, P | RW))
    if abi.va_bits < 64:  # a compat guest has 4 GiB of virtual address space
        assert g.update_va_mapping(1 << abi.va_bits, page, "P").errno == "EINVAL"
