# SPDX-License-Identifier: MIT
"""The PV ABI as objects: what a 64-bit PV guest sees, and the 32-bit (compat) variant.

:class:`PV64Abi` describes a 64-bit PV guest on 64-bit Xen; :class:`PV32Abi` derives from it
and overrides what Xen does differently for a compat guest (`is_pv_32bit_domain(d)` in Xen):
a 3-level PAE top, Xen's slots in the PAE Xen L2, the compat L3 entry adjustment, the compat
rule set, the rotated extended-CR3 encoding, the smaller VM-assist mask and the mmuext
commands that do nothing. This is py65's pattern: a variant subclasses its parent and
overrides its tables. Nothing outside this module needs to test a guest's bitness; it asks
``domain.abi`` (or :func:`abi_for`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pvlab.errors import PvlabError
from pvlab.x86.cr3 import (
    xen_cr3_to_pfn_x86_32,
    xen_cr3_to_pfn_x86_64,
    xen_pfn_to_cr3_x86_32,
    xen_pfn_to_cr3_x86_64,
)
from pvlab.x86.flags import RW, US, A, G, P
from pvlab.xen.page_info import PGT_l3_page_table, PGT_l4_page_table
from pvlab.xen.profiles import AssistPolicy, Profile
from pvlab.xen.rules import (
    COMPAT_L2_FIRST_XEN_SLOT,
    L4_FIRST_XEN_SLOT,
    L4_LAST_XEN_SLOT,
    PV32_RULES,
    PV64_RULES,
    RuleSet,
)
from pvlab.xen.vmassist import PV32_VM_ASSIST_MASK, PV64_VM_ASSIST_MASK

_PAGE_GUEST_KERNEL = 1 << 52
ENTRIES = 512
Bitness = Literal[32, 64]


class PV64Abi:
    """A 64-bit PV guest: 4-level paging, Xen owns L4 slots 256-271."""

    name: ClassVar[str] = "PV64"
    bitness: ClassVar[Bitness] = 64
    #: The level of the table CR3 names (`guest_table`), and its page type.
    top_level: ClassVar[int] = 4
    top_type: ClassVar[int] = PGT_l4_page_table
    paging_mode: ClassVar[str] = "4-level"
    #: The levels `update_va_mapping` walks down to the L1 (`guest_map_l1e`).
    walk_levels: ClassVar[tuple[int, ...]] = (4, 3, 2)
    #: A guest virtual address is below 2 ** va_bits.
    va_bits: ClassVar[int] = 64
    #: `arch_vm_assist_valid_mask` (asm/domain.h, Xen 4.14+).
    vm_assist_valid_mask: ClassVar[int] = PV64_VM_ASSIST_MASK
    #: The vCPU context's `vm_assist` field width (`vcpu_guest_context`).
    context_vm_assist_bits: ClassVar[int] = 64
    rules: ClassVar[RuleSet] = PV64_RULES
    #: What `new_guest_cr3` calls the table in its error message.
    baseptr_name: ClassVar[str] = "baseptr"
    #: Whether the guest has a separate user-mode L4 (`MMUEXT_NEW_USER_BASEPTR`).
    has_user_baseptr: ClassVar[bool] = True
    #: The L3 is a PAE page-directory-pointer table that CR3 names (pae_extended_cr3 matters).
    pae_top: ClassVar[bool] = False
    #: Whether CR3 values use the rotated extended-CR3 encoding.
    extended_cr3_codec: ClassVar[bool] = False
    #: Bits `adjust_guest_l{2,3,4}e` add to a validated entry.
    entry_adjust: ClassVar[dict[int, int]] = {2: US, 3: US, 4: A | US}
    #: The L3 promotion path (`promote_l3_table`): every slot, or the compat 4-slot path.
    l3_promotion: ClassVar[Literal["native", "compat"]] = "native"
    #: The level of the tables Xen writes its own slots into, and what those slots hold.
    xen_table_level: ClassVar[int] = 4
    xen_slots_summary: ClassVar[str] = "L4 256–271: Xen's mappings, 258: linear"
    #: The domain is switched to compat by `XEN_DOMCTL_set_address_size` (`switch_compat`).
    switch_compat: ClassVar[bool] = False
    #: libxenguest's arch hooks (`alloc_pgtables_x86_64`) and the ELF guest type.
    xc_arch: ClassVar[str] = "64"
    guest_type: ClassVar[str] = "xen-3.0-x86_64"
    #: Bytes per p2m entry (an unsigned long of the guest).
    p2m_entry_size: ClassVar[int] = 8

    def __repr__(self) -> str:
        return f"<{self.name} ABI>"

    # ----------------------------------------------------------- slots per level
    def slots(self, level: int) -> int:
        """How many entries of a level-`level` table the guest's walks use."""
        return ENTRIES

    def xen_slots(self, level: int, *, pae_xen_l2: bool = False) -> range:
        """The slots Xen owns in a table of this level (`init_xen_l4_slots`, ...)."""
        if level == 2 and pae_xen_l2:
            return range(COMPAT_L2_FIRST_XEN_SLOT, ENTRIES)
        if level == 4:
            return range(L4_FIRST_XEN_SLOT, L4_LAST_XEN_SLOT + 1)
        return range(0)

    def drawn_xen_slots(self) -> range:
        """The slots Xen writes into this guest's tables (`xen_table_level`): a picture
        collapses them into one "Xen" node."""
        return self.xen_slots(self.xen_table_level, pae_xen_l2=True)

    def ps_means_superpage(self, level: int) -> bool:
        """Whether PS (bit 7) in an entry of `level` asks for a superpage (a compat L3
        entry is a PAE PDPTE, where bit 7 is reserved)."""
        return level >= 2

    def guest_slots(self, level: int, *, pae_xen_l2: bool = False) -> range | list[int]:
        """The slots Xen validates (`is_guest_l2_slot`, `is_guest_l4_slot`)."""
        xen = self.xen_slots(level, pae_xen_l2=pae_xen_l2)
        if not xen:
            return range(self.slots(level))
        if xen.start == 0 or xen.stop == ENTRIES:
            return range(xen.start) if xen.start else range(xen.stop, ENTRIES)
        return [i for i in range(self.slots(level)) if i not in xen]

    def update_refused(self, level: int, index: int, *, pae_xen_l2: bool) -> str | None:
        """The rule id that refuses a guest update of slot `index` (`mod_l{2,3,4}_entry`)."""
        if level == 2 and pae_xen_l2 and index >= COMPAT_L2_FIRST_XEN_SLOT:
            return "pae_xen_l2_slots"
        if level == 4 and index in self.xen_slots(4):
            return "l4_xen_slots"
        return None

    # ----------------------------------------------------------- entries
    def adjust_l1e(self, e: int) -> int:
        """`adjust_guest_l1e`: 64-bit guest kernels run in ring 3, so Xen marks kernel pages."""
        if not e & P:
            return e
        if not e & US:
            e |= _PAGE_GUEST_KERNEL | US
        if not e & _PAGE_GUEST_KERNEL:
            e |= G | US
        return e

    def unadjust_l3e(self, e: int) -> int:
        """`unadjust_guest_l3e` on demotion (only compat L3 entries are un-adjusted)."""
        return e

    def linear_l3_allowed(self, profile: Profile) -> bool:
        """Linear L3 entries (refused for compat guests since XSA-185)."""
        return True

    # ----------------------------------------------------------- CR3 codec
    def cr3_of(self, mfn: int) -> int:
        """`xen_pfn_to_cr3`: the CR3 value a toolstack puts in this guest's context."""
        return xen_pfn_to_cr3_x86_64(mfn)

    def mfn_of_cr3(self, cr3: int) -> int:
        """`xen_cr3_to_pfn`."""
        return xen_cr3_to_pfn_x86_64(cr3)

    # ----------------------------------------------------------- VM-assists
    def pae_extended_cr3_policy(self, profile: Profile) -> AssistPolicy:
        """What enabling pae_extended_cr3 does for this guest under `profile`."""
        return profile.pv64_pae_extended_cr3

    def pae_l3_check_applies(self, profile: Profile) -> bool:
        """Whether `promote_l3_table`'s "PAE pgd must be below 4GB" check looks at this guest."""
        return not profile.pae_l3_check_pv32_only

    def assist_valid(self, vtype: int) -> bool:
        return 0 <= vtype < 64 and bool(self.vm_assist_valid_mask >> vtype & 1)

    # ----------------------------------------------------------- mmuext
    def pin_does_nothing(self, level: int) -> bool:
        """`MMUEXT_PIN_L4_TABLE` from a compat guest returns 0 and does nothing."""
        return False


class PV32Abi(PV64Abi):
    """A 32-bit PV (compat) guest on 64-bit Xen: PAE paging, its L3 in Xen's compat L4."""

    name: ClassVar[str] = "PV32"
    bitness: ClassVar[Bitness] = 32
    top_level: ClassVar[int] = 3
    top_type: ClassVar[int] = PGT_l3_page_table
    paging_mode: ClassVar[str] = "PAE (3-level)"
    walk_levels: ClassVar[tuple[int, ...]] = (3, 2)
    va_bits: ClassVar[int] = 32
    vm_assist_valid_mask: ClassVar[int] = PV32_VM_ASSIST_MASK
    context_vm_assist_bits: ClassVar[int] = 32
    rules: ClassVar[RuleSet] = PV32_RULES
    baseptr_name: ClassVar[str] = "compat baseptr"
    has_user_baseptr: ClassVar[bool] = False
    pae_top: ClassVar[bool] = True
    extended_cr3_codec: ClassVar[bool] = True
    entry_adjust: ClassVar[dict[int, int]] = {2: 0, 3: US | RW, 4: A | US}
    l3_promotion: ClassVar[Literal["native", "compat"]] = "compat"
    xen_table_level: ClassVar[int] = 2
    xen_slots_summary: ClassVar[str] = "PAE L2 428–511: compat M2P (read-only)"
    switch_compat: ClassVar[bool] = True
    xc_arch: ClassVar[str] = "32_pae"
    guest_type: ClassVar[str] = "xen-3.0-x86_32p"
    p2m_entry_size: ClassVar[int] = 4

    def slots(self, level: int) -> int:
        # The guest writes 4 L3 entries; Xen's per-vCPU compat L4 uses only slot 0.
        return {3: 4, 4: 1}.get(level, ENTRIES)

    def xen_slots(self, level: int, *, pae_xen_l2: bool = False) -> range:
        if level == 2 and pae_xen_l2:
            return range(COMPAT_L2_FIRST_XEN_SLOT, ENTRIES)
        return range(0)

    def ps_means_superpage(self, level: int) -> bool:
        return level == 2

    def update_refused(self, level: int, index: int, *, pae_xen_l2: bool) -> str | None:
        if level == 3 and index >= 3:
            return "pv32_l3_update_slot"
        return super().update_refused(level, index, pae_xen_l2=pae_xen_l2)

    def adjust_l1e(self, e: int) -> int:
        return e  # a compat kernel runs in ring 1: nothing to mark

    def unadjust_l3e(self, e: int) -> int:
        return e & ~(RW | US | A) if e & P else e

    def linear_l3_allowed(self, profile: Profile) -> bool:
        return profile.pv32_linear_l3

    def cr3_of(self, mfn: int) -> int:
        return xen_pfn_to_cr3_x86_32(mfn)

    def mfn_of_cr3(self, cr3: int) -> int:
        return xen_cr3_to_pfn_x86_32(cr3)

    def pae_extended_cr3_policy(self, profile: Profile) -> AssistPolicy:
        return "accept"

    def pae_l3_check_applies(self, profile: Profile) -> bool:
        return True

    def pin_does_nothing(self, level: int) -> bool:
        return level == 4


PV64 = PV64Abi()
PV32 = PV32Abi()
ABIS: dict[int, PV64Abi] = {abi.bitness: abi for abi in (PV64, PV32)}


def abi_for(bitness: int) -> PV64Abi:
    """The ABI of a guest of `bitness` (32 or 64)."""
    try:
        return ABIS[bitness]
    except (KeyError, TypeError):
        raise PvlabError(f"guest bitness {bitness!r} is not 32 or 64",
                         "use 32 (PV32 on 64-bit Xen) or 64") from None


__all__ = ["ABIS", "PV32", "PV64", "AssistPolicy", "Bitness", "PV32Abi", "PV64Abi", "abi_for"]
