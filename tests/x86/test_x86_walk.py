# SPDX-License-Identifier: MIT
"""Hand-built page walks with the outcome and #PF error code the SDM prescribes."""

from __future__ import annotations

import pytest
from x86mem import DictMem

from pvlab.errors import PvlabError
from pvlab.x86 import NX, PS, RW, US, P, PagingMode, walk
from pvlab.x86.walk import PFEC_INSN, PFEC_PRESENT, PFEC_RSVD, PFEC_USER, PFEC_WRITE

TWO, PAE, FOUR = PagingMode.TWO_LEVEL, PagingMode.PAE, PagingMode.FOUR_LEVEL
PML4, PDPT, PD, PT = 0x1000, 0x2000, 0x3000, 0x4000
VA = 0x0000_0000_4060_5123  # L4 0, L3 1, L2 3, L1 5, offset 0x123
PAGE = 0xABCDE000


def four_level(l4=P | RW | US, l3=P | RW | US, l2=P | RW | US, l1=P | RW | US) -> DictMem:
    m = DictMem()
    m.write_u64(PML4 + 0 * 8, PDPT | l4)
    m.write_u64(PDPT + 1 * 8, PD | l3)
    m.write_u64(PD + 3 * 8, PT | l2)
    m.write_u64(PT + 5 * 8, PAGE | l1)
    return m


def test_four_level_success_records_each_step() -> None:
    w = walk(four_level(), FOUR, PML4, VA)
    assert w.ok and w.fault is None
    assert w.paddr == PAGE | 0x123 and w.page_size == 4096
    assert [(s.level, s.table, s.index, s.entry_addr) for s in w.steps] == [
        (4, PML4, 0, PML4), (3, PDPT, 1, PDPT + 8), (2, PD, 3, PD + 24), (1, PT, 5, PT + 40)]
    assert w.steps[0].decision == f"next table at {PDPT:#x}"
    assert "4 KiB page" in w.steps[-1].decision


def test_walk_is_read_only() -> None:
    m = four_level()
    before = dict(m.words)
    walk(m, FOUR, PML4, VA, write=True)
    assert m.words == before  # no Accessed/Dirty bits set


@pytest.mark.parametrize(("kw", "ec"), [
    ({}, 0), ({"write": True}, PFEC_WRITE), ({"user": True}, PFEC_USER),
    ({"user": True, "write": True}, PFEC_USER | PFEC_WRITE),
    ({"fetch": True}, PFEC_INSN), ({"fetch": True, "efer_nxe": False}, 0),
])
def test_not_present_error_codes(kw: dict, ec: int) -> None:
    w = walk(four_level(l2=RW | US), FOUR, PML4, VA, **kw)
    assert w.fault is not None and w.fault.kind == "page-fault"
    assert w.fault.level == 2 and w.fault.error_code == ec
    assert w.paddr is None and len(w.steps) == 3


def test_user_read_of_supervisor_page() -> None:
    w = walk(four_level(l3=P | RW), FOUR, PML4, VA, user=True)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_USER  # 5
    assert walk(four_level(l3=P | RW), FOUR, PML4, VA).ok


def test_rw_is_anded_and_cr0_wp_governs_supervisor_writes() -> None:
    m = four_level(l4=P | US)
    assert walk(m, FOUR, PML4, VA, user=True).ok
    w = walk(m, FOUR, PML4, VA, write=True)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_WRITE  # 3
    assert walk(m, FOUR, PML4, VA, write=True, cr0_wp=False).ok
    w = walk(m, FOUR, PML4, VA, write=True, user=True, cr0_wp=False)
    assert w.fault is not None and w.fault.error_code == 7


def test_nx_is_ored_and_needs_nxe() -> None:
    m = four_level(l3=P | RW | US | NX)
    w = walk(m, FOUR, PML4, VA, fetch=True)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_INSN  # 0x11
    w = walk(m, FOUR, PML4, VA, fetch=True, user=True)
    assert w.fault is not None and w.fault.error_code == 0x15
    assert walk(m, FOUR, PML4, VA).ok  # reads are fine
    # NXE=0: bit 63 is reserved -> RSVD fault even for a read, and no I/D bit.
    w = walk(m, FOUR, PML4, VA, efer_nxe=False)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_RSVD
    assert w.fault.level == 3
    w = walk(m, FOUR, PML4, VA, efer_nxe=False, fetch=True)
    assert w.fault is not None and w.fault.error_code == 9


def test_bits_52_to_62_are_not_reserved_in_four_level_entries() -> None:
    m = four_level(l1=P | RW | US | (0x7FF << 52))
    w = walk(m, FOUR, PML4, VA)
    assert w.ok and w.paddr == PAGE | 0x123


def test_ps_in_l4_is_reserved() -> None:
    w = walk(four_level(l4=P | RW | US | PS), FOUR, PML4, VA, write=True)
    assert w.fault is not None and w.fault.level == 4
    assert w.fault.error_code == PFEC_PRESENT | PFEC_RSVD | PFEC_WRITE  # 0xB
    assert "7" in w.fault.reason


def test_address_bits_above_maxphyaddr_are_reserved() -> None:
    m = four_level(l1=P | RW | (1 << 45))
    assert walk(m, FOUR, PML4, VA).paddr == (1 << 45) | PAGE | 0x123
    w = walk(m, FOUR, PML4, VA, maxphyaddr=40)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_RSVD


def test_reserved_fault_wins_over_a_later_not_present_entry() -> None:
    # the walk stops at the first bad entry; the not-present L1 is never read
    w = walk(four_level(l2=P | RW | US | NX, l1=0), FOUR, PML4, VA, efer_nxe=False)
    assert w.fault is not None and w.fault.level == 2 and w.fault.error_code == 9


def test_two_mib_and_one_gib_pages() -> None:
    m = four_level()
    m.write_u64(PD + 3 * 8, 0x40000000 | P | RW | PS | (1 << 12))  # PAT bit 12 allowed
    w = walk(m, FOUR, PML4, VA)
    assert w.ok and w.page_size == 2 << 20 and w.paddr == 0x40000000 | (VA & 0x1FFFFF)
    m.write_u64(PD + 3 * 8, 0x40000000 | P | RW | PS | (1 << 13))  # misaligned: reserved
    w = walk(m, FOUR, PML4, VA)
    assert w.fault is not None and w.fault.level == 2 and w.fault.error_code == 9
    m.write_u64(PDPT + 8, 0x80000000 | P | RW | PS)
    w = walk(m, FOUR, PML4, VA)
    assert w.ok and w.page_size == 1 << 30 and w.paddr == 0x80000000 | (VA & 0x3FFFFFFF)
    m.write_u64(PDPT + 8, 0x80000000 | P | RW | PS | (1 << 21))
    w = walk(m, FOUR, PML4, VA)
    assert w.fault is not None and w.fault.level == 3 and w.fault.error_code == 9


def test_non_canonical_is_gp() -> None:
    w = walk(four_level(), FOUR, PML4, 0x0000_8000_0000_0000)
    assert w.fault is not None and w.fault.kind == "gp" and w.fault.error_code == 0
    assert w.steps == ()
    assert walk(DictMem(), FOUR, PML4, 0xFFFF_8000_0000_0000).fault.kind == "page-fault"


# --- PAE ---------------------------------------------------------------------------------

PAE_VA = 0xC0601123  # PDPTE 3, PDE 3, PTE 1


def pae(pdpte=P, pde=P | RW | US, pte=P | RW | US) -> DictMem:
    m = DictMem()
    m.write_u64(PDPT + 3 * 8, PD | pdpte)
    m.write_u64(PD + 3 * 8, PT | pde)
    m.write_u64(PT + 1 * 8, PAGE | pte)
    return m


def test_pae_walk_levels_and_pdpte_rights() -> None:
    w = walk(pae(), PAE, PDPT, PAE_VA, user=True, write=True)
    assert w.ok and w.paddr == PAGE | 0x123
    assert [s.level for s in w.steps] == [3, 2, 1]
    assert w.steps[0].entry_addr == PDPT + 24


def test_pae_cr3_uses_bits_31_to_5() -> None:
    m = DictMem()
    m.write_u64(PDPT + 0x60 + 3 * 8, PD | P)
    m.write_u64(PD + 3 * 8, PT | P | RW)
    m.write_u64(PT + 8, PAGE | P)
    assert walk(m, PAE, PDPT + 0x60 | 0x18, PAE_VA).paddr == PAGE | 0x123


@pytest.mark.parametrize("bit", [1, 2, 5, 6, 7, 8, 52, 62, 63, 45])
def test_pae_pdpte_reserved_bits_are_gp(bit: int) -> None:
    w = walk(pae(pdpte=P | (1 << bit)), PAE, PDPT, PAE_VA, maxphyaddr=40)
    assert w.fault is not None and w.fault.kind == "gp" and w.fault.level == 3
    assert w.fault.error_code == 0 and str(bit) in w.fault.reason


def test_pae_bad_pdpte_elsewhere_still_faults_at_cr3_load() -> None:
    m = pae()
    m.write_u64(PDPT, PD | P | RW)  # PDPTE 0 has reserved bit 1
    w = walk(m, PAE, PDPT, PAE_VA)
    assert w.fault is not None and w.fault.kind == "gp" and w.steps[0].index == 0
    m.write_u64(PDPT, PD | RW)  # not present: reserved bits are not checked
    assert walk(m, PAE, PDPT, PAE_VA).ok


def test_pae_not_present_pdpte_is_page_fault() -> None:
    w = walk(pae(pdpte=0), PAE, PDPT, PAE_VA, write=True)
    assert w.fault is not None and w.fault.kind == "page-fault"
    assert w.fault.level == 3 and w.fault.error_code == PFEC_WRITE


def test_pae_pde_pte_bits_52_to_62_are_reserved() -> None:
    w = walk(pae(pte=P | (1 << 55)), PAE, PDPT, PAE_VA)
    assert w.fault is not None and w.fault.level == 1 and w.fault.error_code == 9


def test_pae_2mib_page_and_nx() -> None:
    m = pae()
    m.write_u64(PD + 3 * 8, 0x7FE00000 | P | PS | NX)
    w = walk(m, PAE, PDPT, PAE_VA)
    assert w.ok and w.page_size == 2 << 20 and w.paddr == 0x7FE00000 | (PAE_VA & 0x1FFFFF)
    w = walk(m, PAE, PDPT, PAE_VA, fetch=True)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_INSN


# --- 2-level -----------------------------------------------------------------------------

TWO_VA = 0xC0805123  # PDE 0x302, PTE 5


def two_level(pde=P | RW | US, pte=P | RW | US) -> DictMem:
    m = DictMem()
    m.write_u32(PD + 0x302 * 4, PT | pde)
    m.write_u32(PT + 5 * 4, PAGE | pte)
    return m


def test_two_level_4k() -> None:
    w = walk(two_level(), TWO, PD, TWO_VA)
    assert w.ok and w.paddr == PAGE | 0x123 and [s.level for s in w.steps] == [2, 1]
    assert w.steps[0].entry_addr == PD + 0x302 * 4


def test_two_level_has_no_nx_and_no_insn_bit() -> None:
    w = walk(two_level(pte=RW), TWO, PD, TWO_VA, fetch=True, efer_nxe=True)
    assert w.fault is not None and w.fault.error_code == 0
    w = walk(two_level(pte=P | US), TWO, PD, TWO_VA, fetch=True, user=True)
    assert w.ok  # no XD in 32-bit paging: fetches only need U/S


def test_two_level_4mib_pse_and_pse36() -> None:
    m = DictMem()
    m.write_u32(PD + 0x302 * 4, 0x40000000 | P | RW | PS | (0x5 << 13) | (1 << 12))
    w = walk(m, TWO, PD, TWO_VA)
    assert w.ok and w.page_size == 4 << 20
    assert w.paddr == (0x5 << 32) | 0x40000000 | (TWO_VA & 0x3FFFFF)
    # CR4.PSE=0: PS is ignored and the PDE points at a page table
    m.write_u32(0x4000B000 + 5 * 4, PAGE | P)  # bits 31:12 of the PDE name the table
    w = walk(m, TWO, PD, TWO_VA, cr4_pse=False)
    assert w.ok and w.page_size == 4096
    # bit 21 of a 4 MiB PDE is reserved
    m.write_u32(PD + 0x302 * 4, 0x40000000 | P | PS | (1 << 21))
    w = walk(m, TWO, PD, TWO_VA, user=True)
    assert w.fault is not None and w.fault.error_code == PFEC_PRESENT | PFEC_RSVD | PFEC_USER


def test_caller_errors_are_pvlab_errors() -> None:
    with pytest.raises(PvlabError, match="both"):
        walk(DictMem(), FOUR, 0, 0, write=True, fetch=True)
    with pytest.raises(PvlabError, match="does not fit"):
        walk(DictMem(), PAE, 0, 1 << 32)
    with pytest.raises(PvlabError, match="32 bits"):
        walk(DictMem(), PAE, 1 << 32, 0)
