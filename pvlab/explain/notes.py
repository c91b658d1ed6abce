# SPDX-License-Identifier: MIT
"""What each of Xen's messages means, and what a guest or toolstack author would change.

Keyed by the message ids of :mod:`pvlab.xen.logformats`; a message without a note here gets a
plain explanation from its Xen function.
"""

from __future__ import annotations

_FLAGS_FIX = "PV guests cannot use superpages (PS), global (G) or PWT/PCD above L1"

NOTES: dict[str, tuple[str, str]] = {
    "linear_disabled": (
        "An entry points at a table of its own level (a linear/recursive pagetable), and this "
        "Xen was booted with pv-linear-pt=0 (or built without CONFIG_PV_LINEAR_PT).",
        "do not use recursive mappings, or boot Xen with pv-linear-pt=1"),
    "linear_rw": (
        "A linear (same-level) pagetable entry has RW set: it would let the guest write its "
        "own validated pagetable.", "map the table read-only (clear RW) in the linear entry"),
    "bad_l1_flags": (
        "The L1 entry (a PTE) sets bits in Xen's l1_disallow_mask, shown decoded: cache "
        "attributes (PWT/PCD/PAT) need I/O permission, bit 62 (_PAGE_GNTTAB) is refused by "
        "debug builds. The number is Xen's 24-bit flag word, not the PTE: bit 23 is NX.",
        "cache attributes need I/O memory permission; bit 62 is Xen's own (grant mappings)"),
    "bad_l2_flags": (
        "The L2 entry sets disallowed bits (PWT, PCD, PS or G; the number is Xen's flag word): "
        "PV guests cannot use 2 MiB superpages.", _FLAGS_FIX),
    "bad_l3_flags": (
        "The L3 entry sets disallowed bits. For a 32-bit PV (compat) guest every PTE bit 52-63 "
        "is disallowed too, so `800000` (flag-word bit 23 = PTE bit 63) is NX in a PAE L3, "
        "where the architecture reserves it.",
        "a PAE guest must not set NX (or bits 52-62) in L3 entries; no guest may set PS or G"),
    "bad_l4_flags": ("The L4 entry sets disallowed bits (PWT, PCD, PS or G).", _FLAGS_FIX),
    "l1_mmio_nonpriv": (
        "An unprivileged domain's L1 entry maps a frame that is MMIO (not RAM Xen knows) "
        "without I/O memory permission.",
        "grant the range with iomem= / xl's iomem, or map only the domain's own RAM"),
    "l1_mmio_foreign": (
        "A domain tried to map MMIO space into another domain's pagetables.",
        "map MMIO only for the domain that holds the I/O permission"),
    "mmio_emul_range": ("Informational: writes to this MMIO range will be emulated.", "nothing"),
    "mmio_read_only": ("Informational: the MMIO frame is mapped read-only.", "nothing"),
    "l1_real_owner": (
        "An L1 entry names a frame that belongs to a third domain: neither the pagetable's "
        "owner nor the domain the mapping is made for (pg_owner).",
        "map only frames of pg_owner (foreign mappings go through grant tables)"),
    "l1_writable_type": (
        "An L1 entry with RW maps a frame that cannot be made writable: it is in use as a "
        "pagetable or descriptor table (type count > 0). A PV guest may never have a writable "
        "mapping of a live pagetable.",
        "map pagetable frames read-only (clear RW), or unpin/unhook the table first"),
    "l1_xenheap_cacheattr": (
        "An L1 entry asks for a different cache attribute on a Xen-heap page.",
        "keep the default cache attributes for Xen-shared pages"),
    "l1_get_page": (
        "The L1 entry names a frame the domain cannot take a reference on: not its own (and not "
        "dom_io with permission), or a frame without allocation.",
        "map only frames the domain owns; check the p2m translation of the pfn"),
    "implicit_grant_unmap": (
        "A PTE holding a grant mapping was overwritten instead of being unmapped through "
        "GNTTABOP_unmap_grant_ref.", "unmap grants with the grant-table hypercall"),
    "promote_l1_failure": (
        "Validating a new L1 table stopped at this slot: the entry there was refused (the line "
        "before names why).", "fix the entry at that slot (see the preceding message)"),
    "promote_l2_failure": (
        "Validating a new L2 table stopped at this slot: the entry there (or the L1 it points "
        "to) was refused.", "fix the entry at that slot (see the preceding message)"),
    "promote_l3_failure": (
        "Validating a new L3 table stopped at this slot: the entry there (or a table below it) "
        "was refused.", "fix the entry at that slot (see the preceding message)"),
    "promote_l4_failure": (
        "Validating a new L4 table stopped at this slot: the entry there (or a table below it) "
        "was refused.", "fix the entry at that slot (see the preceding message)"),
    "pae_l3_shared": (
        "A 32-bit PV guest's L3 slot 3 points at an L2 already used by another L3: that L2 "
        "becomes the PAE Xen L2 (Xen writes its own mappings into it) and must be private.",
        "give every L3 its own L2 in slot 3"),
    "pae_pgd_below_4g": (
        "A 32-bit PV guest without the pae_extended_cr3 VM-assist can only load CR3 values "
        "below 4 GiB, so Xen refuses to promote an L3 at MFN >= 0x100000 (-ERANGE) once vCPU 0 "
        "is initialised (Xen 4.19+; 4.17 has no such check).",
        "allocate L3 tables below 4 GiB (address bits 32), or declare PAE_MODE "
        "\"bimodal\"/\"extended-cr3\" and enable VMASST_TYPE_pae_extended_cr3"),
    "l2_xen_private": (
        "The guest updated a slot of the PAE Xen L2 that belongs to Xen (slot 428 and up, VA "
        "0xF5800000 and above, for a 32-bit guest).", "do not touch Xen's slots"),
    "l4_xen_private": (
        "The guest updated one of the L4 slots Xen reserves for itself (256-271).",
        "do not write slots 256-271 of an L4"),
    "leaking_mfn": ("A frame's last reference was dropped while it was still owned; Xen leaks it "
                    "rather than free it in an inconsistent state.", "report it: a Xen bug"),
    "get_page": (
        "get_page() refused a general reference: the frame is not owned by the requesting "
        "domain (rd vs od), not allocated (caf count 0), or its count would overflow. caf and "
        "taf are decoded.", "use frames the domain owns; rd must equal od"),
    "get_page_ref": (
        "A hypercall named a frame the domain cannot reference (not its own, or free).",
        "pass an MFN the domain owns"),
    "validate_bad_type": ("validate_page() was asked for a type it cannot validate: a Xen bug.",
                          "report it"),
    "validate_error": (
        "Validating the frame as the named type failed (the lines before say which entry); its "
        "type reference was dropped. caf/taf show the frame's state at that point.",
        "fix the refused entry"),
    "devalidate_bad_type": ("Demoting a frame met a type that has no demotion: a Xen bug.",
                            "report it"),
    "type_count_overflow": ("The frame's type count would overflow.",
                            "drop references (unpin, unmap) before taking more"),
    "bad_type": (
        "The frame already holds type references of another type ('saw', decoded) and cannot "
        "also be taken as 'exp': a page is one of L1..L4, writable, descriptor at a time.",
        "drop the other use first (unpin, unmap the writable mapping), or use another frame"),
    "compat_baseptr": (
        "MMUEXT_NEW_BASEPTR of a 32-bit guest: the new L3 could not be taken as a pagetable "
        "(refused on validation, e.g. above 4 GiB without pae_extended_cr3, or wrong type).",
        "pin/validate the table first and see the preceding message"),
    "baseptr": ("MMUEXT_NEW_BASEPTR: the new top-level table could not be validated.",
                "pin/validate the table first and see the preceding message"),
    "pin_error": (
        "MMUEXT_PIN_Ln_TABLE failed with the errno shown (the lines before say why).",
        "fix what the preceding message names"),
    "already_pinned": ("Pinning is not nested: the frame is already pinned.",
                       "pin once; unpin before pinning again"),
    "unpin_bad_owner": ("MMUEXT_UNPIN_TABLE named a frame of another domain.",
                        "unpin only your own frames"),
    "not_pinned": ("MMUEXT_UNPIN_TABLE on a frame that is not pinned.",
                   "unpin only what you pinned"),
    "new_user_baseptr": ("MMUEXT_NEW_USER_BASEPTR: the user L4 could not be validated.",
                         "validate the user L4 first"),
    "set_ldt": ("MMUEXT_SET_LDT with a misaligned or too large LDT.",
                "page-align the LDT and keep it within 8192 entries"),
    "mmu_update_page": (
        "MMU_NORMAL_PT_UPDATE named a pagetable frame the domain does not own.",
        "update only your own pagetables"),
    "m2p_update_page": ("MMU_MACHPHYS_UPDATE named a frame the domain does not own.",
                        "update the M2P only for your own frames"),
    "steal_page": ("A frame could not be transferred (in use, or not owned by the domain).",
                   "drop all references before giving the frame away"),
    "bad_access": ("An emulated write to a read-only page was not pagetable-sized or aligned.",
                   "write whole, aligned entries"),
    "ptwr_get_page": (
        "A trapped write to a pagetable (writable-pagetable emulation) would install an entry "
        "Xen refuses (the same checks as an mmu_update).", "fix the entry being written"),
    "ptwr_pae_fixup": ("A 32-bit guest wrote half of a PAE entry; Xen fixed it up.",
                       "write both halves (or use cmpxchg8b)"),
    "assertion": (
        "A debug build's ASSERT() failed: Xen crashes. An assertion in mm.c or pv/ reached from "
        "a guest's hypercall is a Xen bug (the kit found one reachable from a guest's pin).",
        "report it on xen-devel with the call trace; export the scenario as a regression test"),
    "xen_bug": ("A BUG()/BUG_ON() fired: Xen crashes.", "report it with the call trace"),
    "xen_warn": ("A WARN() fired: Xen carries on.", "report it if a guest can trigger it"),
    "panic_on_cpu": ("Xen panicked; the next lines give the reason.", "see the next lines"),
    "fatal_trap": ("Xen took an exception it cannot handle in its own code.",
                   "report it with the call trace"),
}


def note(fmt_id: str, xen_function: str) -> tuple[str, str]:
    """(explanation, fix) for the message `fmt_id`."""
    if fmt_id in NOTES:
        return NOTES[fmt_id]
    if fmt_id.startswith(("dom0_", "dump_")):
        return (f"Informational, printed by {xen_function} (dom0 build or a debug-key dump).",
                "nothing")
    return (f"Printed by {xen_function}.", "see the Xen function named")
