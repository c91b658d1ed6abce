# SPDX-License-Identifier: MIT
"""CR3 encodings: what the hardware reads from CR3, and Xen's PV CR3 frame encodings.

Hardware (SDM Vol.3 4.2 and Table 4-1 / 4-7 / 4-12):
- 32-bit paging: CR3 bits 31:12 are the page-directory address (4 KiB aligned).
- PAE paging: CR3 bits 31:5 are the 32-byte aligned PDPT address. CR3 is used as a
  32-bit value outside long mode, so a PDPT at or above 4 GiB cannot be named at all.
  That is why Xen's 32-bit PV guests need `pae_extended_cr3` when their L3 table
  (Xen keeps the guest's PDPT in a whole page) lives above 4 GiB.
- 4-level paging: CR3 bits 51:12 (up to MAXPHYADDR) are the PML4 address.

Xen's guest-visible encodings (public `arch-x86/xen-x86_32.h` / `xen-x86_64.h`,
`xen_pfn_to_cr3` / `xen_cr3_to_pfn`): a 32-bit PV guest hands Xen a CR3 value in
which the frame number is rotated left by 12 within 32 bits, so frame bits 31:20
(frames at or above 4 GiB) land in CR3 bits 11:0. A 64-bit guest's CR3 is simply
`pfn << 12`.
"""

from __future__ import annotations

from pvlab.errors import PvlabError
from pvlab.units import GiB
from pvlab.x86.flags import ADDR_MASK
from pvlab.x86.modes import PagingMode

_U32 = 0xFFFFFFFF


def _check_int(value: int, what: str, limit: int, fix: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        shown = f"{value:#x}" if isinstance(value, int) else repr(value)
        raise PvlabError(f"{what} {shown} is out of range", fix)


def xen_pfn_to_cr3_x86_32(pfn: int) -> int:
    """Xen's CR3 value for a 32-bit PV guest: the 32-bit frame number rotated left by 12.

    `xen_pfn_to_cr3_x86_32(0x123456) == 0x23456001`.
    """
    _check_int(pfn, "frame number", 1 << 32,
               "a 32-bit PV guest can only name frames below 2**32 (16 TiB) in CR3")
    return ((pfn << 12) | (pfn >> 20)) & _U32


def xen_cr3_to_pfn_x86_32(cr3: int) -> int:
    """Inverse of `xen_pfn_to_cr3_x86_32`: rotate the 32-bit CR3 value right by 12."""
    _check_int(cr3, "32-bit CR3 value", 1 << 32, "a 32-bit guest's CR3 is below 2**32")
    return ((cr3 >> 12) | (cr3 << 20)) & _U32


def xen_pfn_to_cr3_x86_64(pfn: int) -> int:
    """Xen's CR3 value for a 64-bit PV guest: `pfn << 12`."""
    _check_int(pfn, "frame number", 1 << 52, "use a frame number below 2**52")
    return pfn << 12


def xen_cr3_to_pfn_x86_64(cr3: int) -> int:
    """Inverse of `xen_pfn_to_cr3_x86_64`: `cr3 >> 12`."""
    _check_int(cr3, "64-bit CR3 value", 1 << 64, "a CR3 value is below 2**64")
    return cr3 >> 12


def two_level_cr3(pd_paddr: int) -> int:
    """Native CR3 for 32-bit paging: a 4 KiB-aligned page directory below 4 GiB."""
    _check_int(pd_paddr, "page-directory address", 4 * GiB,
               "32-bit paging's CR3 holds only 32 bits: put the page directory below 4 GiB")
    if pd_paddr & 0xFFF:
        raise PvlabError(f"page-directory address {pd_paddr:#x} is not 4 KiB aligned",
                         "align it to 4 KiB")
    return pd_paddr


def pae_cr3(pdpt_paddr: int) -> int:
    """Native CR3 for PAE paging: a 32-byte aligned PDPT below 4 GiB (SDM Vol.3 4.4.1).

    A PDPT at or above 4 GiB cannot be expressed: outside long mode CR3 is a 32-bit
    register. Xen works around this for 32-bit PV guests with the `pae_extended_cr3`
    VM assist (the guest's L3 may then live above 4 GiB and Xen shadows it below).
    """
    if isinstance(pdpt_paddr, int) and not isinstance(pdpt_paddr, bool) and pdpt_paddr >= 4 * GiB:
        raise PvlabError(
            f"PDPT address {pdpt_paddr:#x} is at or above 4 GiB and cannot be put in a PAE CR3,"
            " which holds only 32 bits outside long mode",
            "place the PDPT below 4 GiB (that is what Xen's pae_extended_cr3 assist is for)",
        )
    _check_int(pdpt_paddr, "PDPT address", 4 * GiB, "give a physical address below 4 GiB")
    if pdpt_paddr & 0x1F:
        raise PvlabError(f"PDPT address {pdpt_paddr:#x} is not 32-byte aligned",
                         "align the PDPT to 32 bytes")
    return pdpt_paddr


def four_level_cr3(pml4_paddr: int) -> int:
    """Native CR3 for 4-level paging: a 4 KiB-aligned PML4 below 2**52."""
    _check_int(pml4_paddr, "PML4 address", 1 << 52, "give a physical address below 2**52")
    if pml4_paddr & 0xFFF:
        raise PvlabError(f"PML4 address {pml4_paddr:#x} is not 4 KiB aligned",
                         "align it to 4 KiB")
    return pml4_paddr


def cr3_base(mode: PagingMode, cr3: int) -> int:
    """Physical address of the top-level table named by `cr3` (SDM Vol.3 Tables 4-3, 4-7, 4-12).

    32-bit paging: bits 31:12; PAE: bits 31:5; 4-level: bits 51:12. Low control bits
    (PWT, PCD, PCID) are dropped.
    """
    mode = PagingMode.parse(mode)
    _check_int(cr3, "CR3 value", 1 << 64, "a CR3 value is below 2**64")
    if mode is PagingMode.TWO_LEVEL:
        return cr3 & 0xFFFFF000
    if mode is PagingMode.PAE:
        return cr3 & 0xFFFFFFE0
    return cr3 & ADDR_MASK
