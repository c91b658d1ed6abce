# SPDX-License-Identifier: MIT
"""The console messages Xen's PV memory-management code prints, as data.

Each :class:`LogFormat` is one message: the format string's literal words (with Xen's
`PRI_mfn`, `PRtype_info`, ... written out as the printf conversions they stand for), the
function and source file that print it, the printer (`gdprintk` lines appear in debug builds
only), the rule of the registry it corresponds to (if any), and the names of its numbers, which
tell `pvlab explain` how to decode them.

Collected from `xen/arch/x86/mm.c`, `xen/arch/x86/include/asm/mm.h`, `xen/arch/x86/pv/*.c`
and `xen/arch/x86/domain.c` at RELEASE-4.17.x and RELEASE-4.20.x (plus the oracle's 4.19
patch); only the format strings' literal words are kept, no Xen source text.

Field names (decoders in :mod:`pvlab.explain.decode`): ``flags`` Xen's 24-bit flag word of an
entry at ``level``; ``mfn``/``pfn`` frame numbers; ``rc`` a negative errno; ``caf``/``taf``
`count_info`/`type_info`; ``type``/``saw``/``exp`` type words; ``slot`` an entry index;
``dom``/``pg_owner``/... domain ids (``%d``) and ``rd``/``od``/``vcpu`` Xen's ``%pd``/``%pv``
names; ``pte`` a whole entry; anything else is shown as printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pvlab.trace import Errno, Event, install_xen_log_line


@dataclass(frozen=True)
class LogFormat:
    """One message Xen prints (`formats[0]` the newest wording, the rest older ones)."""

    id: str
    formats: tuple[str, ...]
    xen_function: str
    source: str  # path under xen/
    fields: tuple[str, ...] = ()
    rule: str | None = None  # rule id in pvlab/xen/rules.py
    printer: str = "gdprintk"  # gdprintk (debug builds only), gprintk, dprintk, printk, panic
    level: int | None = None  # pagetable level the flag word / slot belongs to
    versions: str = "4.17+"
    #: False when Xen prints it without a trailing newline: the next message is glued on.
    newline: bool = True

    @property
    def text(self) -> str:
        return self.formats[0]


def _f(id: str, formats: str | tuple[str, ...], function: str, fields: tuple[str, ...] = (),
       *, rule: str | None = None, printer: str = "gdprintk", level: int | None = None,
       source: str = "arch/x86/mm.c", versions: str = "4.17+", newline: bool = True,
       ) -> LogFormat:
    fmts = (formats,) if isinstance(formats, str) else formats
    return LogFormat(id, fmts, function, source, fields, rule, printer, level, versions,
                     newline)


MFN = "%05lx"  # PRI_mfn, PRI_pfn, PRI_gfn
TYPE = "%016lx"  # PRtype_info
PTE = "%016lx"  # PRIpte
_MM = "arch/x86/mm.c"
_DOM = "arch/x86/domain.c"
_ROPF = "arch/x86/pv/ro-page-fault.c"
_GNT = "arch/x86/pv/grant_table.c"
_DOM0 = "arch/x86/pv/dom0_build.c"
_TRAPS = "arch/x86/traps.c"


def _flag_formats() -> list[LogFormat]:
    out = []
    for n in (1, 2, 3, 4):
        fmts = (f"Bad L{n} flags %x", f"Bad L{n} flags %#x") if n == 1 else f"Bad L{n} flags %x"
        out.append(_f(f"bad_l{n}_flags", fmts,
                      f"get_page_from_l{n}e (promotion) / mod_l{n}_entry (update)",
                      ("flags",), rule=f"l{n}_flags", level=n))
    return out


def _promote_formats() -> list[LogFormat]:
    return [_f(f"promote_l{n}_failure", f"Failure %d in promote_l{n}_table: slot %#x",
               f"promote_l{n}_table", ("rc", "slot"), level=n) for n in (1, 2, 3, 4)]


LOG_FORMATS: tuple[LogFormat, ...] = (
    # --- linear pagetables --------------------------------------------------------------
    _f("linear_disabled", "Attempt to create linear p.t. (feature disabled)",
       "define_get_linear_pagetable", rule="linear_disabled"),
    _f("linear_rw", "Attempt to create linear p.t. with write perms",
       "define_get_linear_pagetable", rule="linear_rw"),
    # --- get_page_from_l1e ----------------------------------------------------------------
    *_flag_formats(),
    _f("l1_mmio_nonpriv", f"d%d non-privileged attempt to map MMIO space {MFN}",
       "get_page_from_l1e", ("dom", "mfn"), rule="l1_mmio"),
    _f("l1_mmio_foreign", f"d%d attempted to map MMIO space {MFN} in d%d to d%d",
       "get_page_from_l1e", ("dom", "mfn", "pg_owner", "l1e_owner"), rule="l1_mmio"),
    _f("mmio_emul_range", "d%d: Forcing write emulation on MFNs %lx-%lx",
       "print_mmio_emul_range (get_page_from_l1e)", ("dom", "mfn", "mfn_last"),
       printer="printk"),
    _f("mmio_read_only", "d%d: Forcing read-only access to MFN %lx", "get_page_from_l1e",
       ("dom", "mfn"), printer="printk"),
    _f("l1_real_owner", "pg_owner d%d l1e_owner d%d, but real_pg_owner d%d",
       "get_page_from_l1e", ("pg_owner", "l1e_owner", "real_pg_owner"), rule="l1_foreign"),
    _f("l1_writable_type", "Could not get page type PGT_writable_page", "get_page_from_l1e",
       rule="l1_writable_pagetable"),
    _f("l1_xenheap_cacheattr", "Attempt to change cache attributes of Xen heap page",
       "get_page_from_l1e"),
    _f("l1_get_page", f"Error getting mfn {MFN} (pfn {MFN}) from L1 entry {PTE} for "
       "l1e_owner d%d, pg_owner d%d", "get_page_from_l1e",
       ("mfn", "pfn", "pte", "l1e_owner", "pg_owner"), rule="l1_foreign", level=1),
    _f("implicit_grant_unmap", f"Attempt to implicitly unmap %pd's grant PTE {PTE}",
       "put_page_from_l1e", ("rd", "pte"), printer="gprintk", level=1),
    # --- between domains: foreigndom, grant tables (pvlab/xen/foreign.py, grants.py) -------
    _f("pg_owner_self", "Cannot specify itself as foreign domain", "get_pg_owner",
       source="common/page_alloc.c (4.19), arch/x86/mm.c (4.17)"),
    _f("pg_owner_unknown", "Unknown domain d%d", "get_pg_owner", ("dom",),
       source="common/page_alloc.c (4.19), arch/x86/mm.c (4.17)"),
    _f("gnttab_bad_flags", "Bad flags in grant map op: %x", "map_grant_ref", ("flags",),
       source="common/grant_table.c"),
    _f("gnttab_no_domain", "Could not find domain %d", "map_grant_ref / unmap_common",
       ("dom",), source="common/grant_table.c"),
    _f("gnttab_bad_ref", "Bad ref %#x for d%d", "map_grant_ref", ("ref", "dom"),
       source="common/grant_table.c"),
    _f("gnttab_bad_entry", "Bad flags (%x) or dom (%d); expected d%d", "_set_status_v1",
       ("gtf", "dom", "ldom"), source="common/grant_table.c"),
    _f("gnttab_ro_write_pin", "Attempt to write-pin a r/o grant entry", "_set_status_v1",
       source="common/grant_table.c"),
    _f("gnttab_in_use", "Bad domain (%d != %d), or risk of counter overflow %08x, or "
       "subpage %d", "map_grant_ref", ("dom", "ldom", "pin", "subpage"),
       source="common/grant_table.c"),
    _f("gnttab_cannot_pin", "Could not pin grant frame %#05lx", "map_grant_ref", ("mfn",),
       source="common/grant_table.c"),
    _f("gnttab_bad_handle", "Bad d%d handle %#x", "unmap_common", ("dom", "handle"),
       source="common/grant_table.c"),
    _f("gnttab_zero_flags", "Zero flags for d%d handle %#x", "unmap_common",
       ("dom", "handle"), source="common/grant_table.c"),
    _f("grant_misaligned_pte", "Misaligned PTE address %lx", "create_grant_pv_mapping",
       ("addr",), source=_GNT),
    _f("grant_no_l1e", ("Could not find L1 PTE for linear address %lx",
                        "Could not find L1 PTE for linear %lx"),
       "create_grant_pv_mapping / steal_linear_address", ("addr",), source=_GNT),
    _f("grant_pte_mismatch", f"PTE {PTE} for %lx doesn't match grant ({PTE})",
       "replace_grant_pv_mapping", ("pte", "addr", "want"), source=_GNT),
    # --- promotion ------------------------------------------------------------------------
    *_promote_formats(),
    _f("pae_l3_shared", "PAE L3 3rd slot is shared", "pae_xen_mappings_check",
       rule="pv32_l3_slot3_shared"),
    _f("pae_pgd_below_4g", "PAE pgd must be below 4GB (%#lx >= 0x100000)", "promote_l3_table",
       ("mfn",), rule="pae_l3_below_4g", versions="4.19+ (and the oracle's 4.19 patch)",
       newline=False),
    # --- updates ----------------------------------------------------------------------------
    _f("l2_xen_private", "L2 update in Xen-private area, slot %#lx", "mod_l2_entry", ("slot",),
       rule="pae_xen_l2_slots", level=2),
    _f("l4_xen_private", "L4 update in Xen-private area, slot %#lx", "mod_l4_entry", ("slot",),
       rule="l4_xen_slots", level=4),
    # --- references and types ---------------------------------------------------------------
    _f("leaking_mfn", f"Leaking mfn {MFN}", "put_page", ("mfn",)),
    _f("get_page", f"Error mfn {MFN}: rd=%pd od=%pd caf=%08lx taf={TYPE}", "get_page",
       ("mfn", "rd", "od", "caf", "taf"), rule="not_owned", printer="gprintk"),
    _f("get_page_ref", f"Could not get page ref for mfn {MFN}", "get_page_from_mfn",
       ("mfn",), rule="not_owned", source="arch/x86/include/asm/mm.h"),
    _f("validate_bad_type", f"Bad type in validate_page %lx t={TYPE} c=%lx", "validate_page",
       ("type", "taf", "caf"), printer="printk"),
    _f("validate_error", f"Error while validating mfn {MFN} (pfn {MFN}) for type {TYPE}: "
       f"caf=%08lx taf={TYPE}", "validate_page", ("mfn", "pfn", "type", "caf", "taf")),
    _f("devalidate_bad_type", f"type {TYPE} mfn {MFN}", "devalidate_page (free_page_type)",
       ("type", "mfn")),
    _f("type_count_overflow", f"Type count overflow on mfn {MFN}", "_get_page_type", ("mfn",),
       rule="type_conflict"),
    _f("bad_type", f"Bad type (saw {TYPE} != exp {TYPE}) for mfn {MFN} (pfn {MFN})",
       "_get_page_type", ("saw", "exp", "mfn", "pfn"), rule="type_conflict"),
    # --- baseptr, pinning, mmuext ----------------------------------------------------------
    _f("compat_baseptr", f"Error while installing new compat baseptr {MFN}",
       "new_guest_cr3 (MMUEXT_NEW_BASEPTR, 32-bit guest)", ("mfn",), level=3),
    _f("baseptr", f"Error while installing new baseptr {MFN}",
       "new_guest_cr3 (MMUEXT_NEW_BASEPTR)", ("mfn",), level=4),
    _f("pin_error", f"Error %d while pinning mfn {MFN}", "do_mmuext_op (MMUEXT_PIN_*)",
       ("rc", "mfn")),
    _f("already_pinned", f"mfn {MFN} already pinned", "do_mmuext_op (MMUEXT_PIN_*)", ("mfn",),
       rule="already_pinned"),
    _f("unpin_bad_owner", f"mfn {MFN} bad, or bad owner d%d",
       "do_mmuext_op (MMUEXT_UNPIN_TABLE)", ("mfn", "dom"), rule="not_owned"),
    _f("not_pinned", f"mfn {MFN} not pinned", "do_mmuext_op (MMUEXT_UNPIN_TABLE)", ("mfn",),
       rule="not_pinned"),
    _f("new_user_baseptr", f"Error %d installing new mfn {MFN}",
       "do_mmuext_op (MMUEXT_NEW_USER_BASEPTR)", ("rc", "mfn"), level=4),
    _f("set_ldt", "Bad args to SET_LDT: ptr=%lx, ents=%x", "do_mmuext_op (MMUEXT_SET_LDT)",
       ("va", "count")),
    _f("clear_page", f"Error clearing mfn {MFN}", "do_mmuext_op (MMUEXT_CLEAR_PAGE)",
       ("mfn",)),
    _f("copy_from", f"Error copying from mfn {MFN}", "do_mmuext_op (MMUEXT_COPY_PAGE)",
       ("mfn",)),
    _f("copy_to", f"Error copying to mfn {MFN}", "do_mmuext_op (MMUEXT_COPY_PAGE)", ("mfn",)),
    _f("mmu_update_page", "Could not get page for normal update",
       "do_mmu_update (MMU_NORMAL_PT_UPDATE)", rule="not_owned"),
    _f("m2p_update_page", "Could not get page for mach->phys update",
       "do_mmu_update (MMU_MACHPHYS_UPDATE)", rule="not_owned"),
    _f("steal_page", f"Bad steal mfn {MFN} from d%d (owner d%d) caf=%08lx taf={TYPE}",
       "steal_page", ("mfn", "dom", "owner", "caf", "taf")),
    # --- emulated writes ----------------------------------------------------------------------
    _f("bad_access", "bad access (cr2=%lx, addr=%lx, bytes=%u)",
       "ptwr_emulated_update (pv/ro-page-fault.c) / mmio_ro_emulated_write",
       ("cr2", "addr", "bytes"), source=_ROPF),
    _f("mmcfg_bad_write", "bad write (cr2=%lx, addr=%lx, bytes=%u)", "mmcfg_intercept_write",
       ("cr2", "addr", "bytes")),
    _f("mmio_map_failed", "Failed to map page for MMIO write at 0x%lx", "mmio_ro_emulated_write",
       ("addr",), printer="gprintk", versions="4.20"),
    _f("mmio_ro_ignored", "ignoring write to R/O MMIO 0x%lx len %u", "mmio_ro_emulated_write",
       ("addr", "bytes"), printer="gprintk", versions="4.20"),
    _f("mmio_ro_unsupported", "unsupported %u-byte write to R/O MMIO 0x%lx",
       "mmio_ro_emulated_write", ("bytes", "addr"), printer="gprintk", versions="4.20"),
    _f("shared_frames", "Shared frames %u -- Saved frames %u", "arch_dump_shared_mem_info",
       ("count", "count2"), printer="printk", versions="4.17"),
    _f("ptwr_get_page", "could not get_page_from_l1e()", "ptwr_emulated_update", source=_ROPF,
       rule="l1_writable_pagetable"),
    _f("ptwr_pae_fixup", f"ptwr_emulate: fixing up invalid PAE PTE {PTE}",
       "ptwr_emulated_update", ("pte",), source=_ROPF, level=1),
    _f("ptwr_write_size", "bad write size (addr=%lx, bytes=%u)", "ptwr_emulated_write",
       ("addr", "bytes"), source=_ROPF),
    _f("ptwr_cmpxchg_size", "bad cmpxchg size (addr=%lx, bytes=%u)", "ptwr_emulated_cmpxchg",
       ("addr", "bytes"), source=_ROPF),
    _f("ro_pf_event", "Unexpected event (type %u, vector %#x) from emulation",
       "pv_ro_page_fault", ("count", "vector"), source=_ROPF),
    # --- grant mappings (pv/grant_table.c) ----------------------------------------------------
    _f("gnt_misaligned", "Misaligned PTE address %lx", "create_grant_pv_mapping", ("addr",),
       source=_GNT),
    _f("gnt_no_l1", "Could not find L1 PTE for linear address %lx",
       "create_grant_pv_mapping / replace_grant_pv_mapping", ("addr",), source=_GNT),
    _f("gnt_no_l1_steal", "Could not find L1 PTE for linear %lx", "steal_linear_address",
       ("addr",), source=_GNT),
    _f("gnt_pte_mismatch", f"PTE {PTE} for %lx doesn't match grant ({PTE})",
       "replace_grant_pv_mapping", ("pte", "addr", "pte2"), source=_GNT, level=1),
    _f("gnt_flags_mismatch", "PTE flags %x for %lx don't match grant (%x)",
       "replace_grant_pv_mapping", ("flags", "addr", "flags2"), source=_GNT, level=1),
    # --- pv/iret.c, pv/traps.c, pv/emul-priv-op.c, pv/emulate.c ------------------------------
    _f("iret_fault", "Fault while reading IRET context from guest stack", "do_iret",
       printer="gprintk", source="arch/x86/pv/iret.c"),
    _f("iret_no_user_pt", "Guest switching to user mode with no user page tables", "do_iret",
       printer="gprintk", source="arch/x86/pv/iret.c"),
    _f("iret_vm86", "VM86 mode unavailable (ksp:%08X->%08X)", "compat_iret",
       ("va", "va2"), source="arch/x86/pv/iret.c"),
    _f("pv_unhandled_trap", "Unhandled: vec %u, %s[%04x]", "pv_inject_event", ("vector", "text",
       "code"), printer="gprintk", source="arch/x86/pv/traps.c"),
    _f("cr0_unmodifiable", "Attempt to change unmodifiable CR0 flags", "write_cr",
       source="arch/x86/pv/emul-priv-op.c"),
    _f("rdmsr_faking", "faking RDMSR 0x%08x", "read_msr", ("msr",), printer="gprintk",
       source="arch/x86/pv/emul-priv-op.c"),
    _f("rdmsr_unimpl", "RDMSR 0x%08x unimplemented", "read_msr", ("msr",),
       source="arch/x86/pv/emul-priv-op.c"),
    _f("wrmsr_unimpl", "WRMSR 0x%08x val 0x%016lx unimplemented", "write_msr", ("msr", "value"),
       source="arch/x86/pv/emul-priv-op.c"),
    _f("wrmsr_change", "Domain attempted WRMSR 0x%08x from 0x%016lx to 0x%016lx", "write_msr",
       ("msr", "value", "value2"), source="arch/x86/pv/emul-priv-op.c"),
    _f("emulate_bad_reg", "%s(%pv, 0x%08x) Bad register", "pv_emul_read_descriptor helpers",
       ("text", "vcpu", "value"), printer="printk", source="arch/x86/pv/emulate.c"),
    _f("emulate_bad_reg_wr", "%s(%pv, 0x%08x, 0x%016lx) Bad register",
       "pv_emul_read_descriptor helpers", ("text", "vcpu", "value", "value2"),
       printer="printk", source="arch/x86/pv/emulate.c"),
    # --- domain.c -----------------------------------------------------------------------------
    _f("dump_pages_head", "Memory pages belonging to domain %u:", "dump_pageframe_info",
       ("dom",), printer="printk", source=_DOM),
    _f("dump_pages_long", "    DomPage list too long to display", "dump_pageframe_info",
       printer="printk", source=_DOM),
    _f("dump_dompage", f"    DomPage %p: caf=%08lx, taf={TYPE}", "dump_pageframe_info",
       ("ptr", "caf", "taf"), printer="printk", source=_DOM),
    _f("dump_xenpage", f"    XenPage %p: caf=%08lx, taf={TYPE}", "dump_pageframe_info",
       ("ptr", "caf", "taf"), printer="printk", source=_DOM),
    _f("dump_extrapage", f"    ExtraPage %p: caf=%08lx, taf={TYPE}", "dump_pageframe_info",
       ("ptr", "caf", "taf"), printer="printk", source=_DOM),
    _f("failsafe_compat", "error while creating compat failsafe callback frame",
       "load_segments", printer="gprintk", source=_DOM, versions="4.17"),
    _f("failsafe", "error while creating failsafe callback frame", "load_segments",
       printer="gprintk", source=_DOM, versions="4.17"),
    _f("cfg_not_available", "%s support not available", "arch_sanitise_domain_config",
       ("text",), printer="dprintk", source=_DOM),
    _f("cfg_vcpus", "Requested vCPUs (%u) exceeds max (%u)", "arch_sanitise_domain_config",
       ("count", "count2"), printer="dprintk", source=_DOM),
    _f("cfg_s3", "S3 integrity check not valid without CONFIG_TBOOT",
       "arch_sanitise_domain_config", printer="dprintk", source=_DOM),
    _f("cfg_hap", "HAP requested but not available", "arch_sanitise_domain_config",
       printer="dprintk", source=_DOM),
    _f("cfg_nested", "Nested virt not supported without HAP", "arch_sanitise_domain_config",
       printer="dprintk", source=_DOM),
    _f("cfg_nested_na", "Nested virt requested but not available",
       "arch_sanitise_domain_config", printer="dprintk", source=_DOM, versions="4.20"),
    _f("cfg_nested_altp2m", "Nested virt and altp2m are not supported together",
       "arch_sanitise_domain_config", printer="dprintk", source=_DOM, versions="4.20"),
    _f("cfg_altp2m_opts", "Invalid altp2m options selected: %#x", "arch_sanitise_domain_config",
       ("value",), printer="dprintk", source=_DOM, versions="4.20"),
    _f("cfg_altp2m_hap", "altp2m is only supported with HAP", "arch_sanitise_domain_config",
       printer="dprintk", source=_DOM, versions="4.20"),
    _f("cfg_vmtrace_pv", "vmtrace not supported for PV", "arch_sanitise_domain_config",
       printer="dprintk", source=_DOM),
    _f("cfg_vmtrace_size", "Unsupported vmtrace size: %#x", "arch_sanitise_domain_config",
       ("value",), printer="dprintk", source=_DOM),
    _f("cfg_misc_flags", "Invalid arch misc flags %#x", "arch_sanitise_domain_config",
       ("value",), printer="dprintk", source=_DOM),
    _f("create_insecure", "Xen does not allow DomU creation on this CPU for security reasons.",
       "arch_domain_create", printer="printk", source=_DOM),
    _f("create_may_compromise", "Dom%d may compromise security on this CPU.",
       "arch_domain_create", ("dom",), printer="printk", source=_DOM),
    _f("create_emul_bitmap", "d%d: Invalid emulation bitmap: %#x", "arch_domain_create",
       ("dom", "value"), printer="printk", source=_DOM),
    _f("create_emulators", "d%d: Xen does not allow %s domain creation with the current "
       "selection of emulators: %#x", "arch_domain_create", ("dom", "text", "value"),
       printer="printk", source=_DOM),
    _f("reset_shinfo_get", "Failed to get %pd's shared_info GFN (%05lx)",
       "arch_domain_soft_reset", ("rd", "gfn"), printer="printk", source=_DOM),
    _f("reset_shinfo_alloc", "Failed to alloc a page to replace %pd's shared_info GFN %05lx",
       "arch_domain_soft_reset", ("rd", "gfn"), printer="printk", source=_DOM),
    _f("reset_shinfo_remove", "Failed to remove %pd's shared_info GFN %05lx",
       "arch_domain_soft_reset", ("rd", "gfn"), printer="printk", source=_DOM),
    _f("reset_shinfo_add", "Failed to add a page to replace %pd's shared_info frame %05lx",
       "arch_domain_soft_reset", ("rd", "gfn"), printer="printk", source=_DOM),
    # --- the PV dom0 builder (pv/dom0_build.c) ---------------------------------------------
    _f("dom0_building", "*** Building a PV Dom%d ***", "dom0_construct_pv", ("dom",),
       printer="printk", source=_DOM0),
    _f("dom0_xen_kernel", " Xen  kernel: 64-bit, lsb%s", "dom0_construct_pv", ("text",),
       printer="printk", source=_DOM0),
    _f("dom0_kernel", " Dom0 kernel: %s-bit%s, %s, paddr %#lx -> %#lx", "dom0_construct_pv",
       ("text", "text2", "text3", "addr", "addr2"), printer="printk", source=_DOM0),
    _f("dom0_symbols", " Dom0 symbol map %#lx -> %#lx", "dom0_construct_pv", ("addr", "addr2"),
       printer="printk", source=_DOM0),
    _f("dom0_phys_head", "PHYSICAL MEMORY ARRANGEMENT:", "dom0_construct_pv", printer="printk",
       source=_DOM0),
    _f("dom0_alloc", (" Dom0 alloc.:   %lx->%lx (%lu pages to be allocated)",
                      " Dom0 alloc.:   %lx->%lx"), "dom0_construct_pv",
       ("addr", "addr2", "count"), printer="printk", source=_DOM0),
    _f("dom0_virt_head", "VIRTUAL MEMORY ARRANGEMENT:", "dom0_construct_pv", printer="printk",
       source=_DOM0),
    *(_f(f"dom0_virt_{key}", f" {label}%p->%p", "dom0_construct_pv", ("va", "va2"),
         printer="printk", source=_DOM0)
      for key, label in (("kernel", "Loaded kernel: "), ("ramdisk", "Init. ramdisk: "),
                         ("p2m", "Phys-Mach map: "), ("start_info", "Start info:    "),
                         ("xenstore", "Xenstore ring: "), ("console", "Console ring:  "),
                         ("pagetables", "Page tables:   "), ("stack", "Boot stack:    "),
                         ("total", "TOTAL:         "))),
    _f("dom0_entry", " ENTRY ADDRESS: %p", "dom0_construct_pv", ("va",), printer="printk",
       source=_DOM0),
    _f("dom0_vcpus", "Dom%u has maximum %u VCPUs", "dom0_construct_pv", ("dom", "count"),
       printer="printk", source=_DOM0),
    _f("dom0_iommu_premap", "pre-mapping %s MFN [%lx,%lx) into IOMMU failed: %ld",
       "dom0_construct_pv", ("text", "mfn", "mfn_last", "rc"), printer="printk", source=_DOM0),
    _f("dom0_compat_failed", "Dom0 failed to switch to compat: %d", "dom0_construct_pv",
       ("rc",), printer="printk", source=_DOM0),
    _f("dom0_no_pv32", "Found 32-bit PV kernel, but CONFIG_PV32 missing", "dom0_construct_pv",
       printer="printk", source=_DOM0),
    _f("dom0_mismatch", "Mismatch between Xen and DOM0 kernel", "dom0_construct_pv",
       printer="printk", source=_DOM0),
    _f("dom0_not_supported", "Kernel does not support Dom0 operation", "dom0_construct_pv",
       printer="printk", source=_DOM0, versions="4.17"),
    _f("dom0_hv_start", "Dom0 expects too high a hypervisor start address",
       "dom0_construct_pv", printer="printk", source=_DOM0),
    _f("dom0_p2m_ignored", "P2M table base ignored", "dom0_construct_pv", printer="printk",
       source=_DOM0),
    _f("dom0_overlap", "DOM0 image overlaps with Xen private area.", "dom0_construct_pv",
       printer="printk", source=_DOM0),
    _f("dom0_load_failed", "Failed to load the kernel binary", "dom0_construct_pv",
       printer="printk", source=_DOM0),
    _f("dom0_hypercall_page", "Invalid HYPERCALL_PAGE field in ELF notes.",
       "dom0_construct_pv", printer="printk", source=_DOM0),
    _f("dom0_shadow", "Switching dom0 to using shadow paging", "dom0_construct_pv",
       printer="printk", source=_DOM0),
    _f("dom0_broken_elf", ("%pd kernel: broken ELF: %s", "Dom0 kernel broken ELF: %s"),
       "dom0_construct_pv", ("rd", "text"), printer="printk", source=_DOM0),
    *(_f(f"dom0_panic_{i}", text, "dom0_construct_pv", printer="panic", source=_DOM0)
      for i, text in enumerate((
          "DOM0 P->M table overlaps initial mapping", "Dom0 allocation too small for initial "
          "P->M table", "Not enough RAM for DOM0 P->M table", "Domain 0 allocation is too "
          "small for kernel image", "Not enough RAM for domain 0 allocation",
          "Not enough RAM for domain 0 initrd", "Not enough RAM for DOM0 reservation",
          "Dom0 requires supervisor-mode execution",
          "Missing kernel boot module for %pd construction"))),
    # --- the PV shim (pv/shim.c): Xen running as a PV guest's shim inside an HVM guest ------
    *(_f(f"shim_{key}", text, function, fields, printer=printer,
         source="arch/x86/pv/shim.c")
      for key, text, function, fields, printer in (
          ("nrpages", "pages used by shim > shim_nrpages (%#lx > %#lx)", "pv_shim_fixup_e820",
           ("count", "count2"), "panic"),
          ("reserving", "shim used pages %#lx reserving %#lx free pages", "pv_shim_fixup_e820",
           ("count", "count2"), "printk"),
          ("ram_type", "Unable to add/change memory type of pfn %#lx to RAM", "mark_pfn_as_ram",
           ("pfn",), "panic"),
          ("param", "Unable to get %s", "pv_shim_fixup_e820 (HVM params)", ("text",), "panic"),
          ("grant_mem", "unable to get memory for grant table", "pv_shim_grant_table_op", (),
           "gprintk"),
          ("cpu_up", "Failed to bring up CPU#%u: %ld", "pv_shim_cpu_up", ("cpu", "rc"),
           "gprintk"),
          ("cpu_down", "Failed to bring down CPU#%u: %ld", "pv_shim_cpu_down", ("cpu", "rc"),
           "gprintk"),
          ("online_alloc", "failed to allocate %u extents of order %u for onlining",
           "pv_shim_online_memory", ("count", "count2"), "gprintk"),
          ("online", "failed to online some of the memory regions", "pv_shim_online_memory",
           (), "gprintk"),
          ("offline_reserve", "failed to reserve %u extents of order %u for offlining",
           "pv_shim_offline_memory", ("count", "count2"), "gprintk"),
          ("offline", "failed to offline some of the memory regions", "pv_shim_offline_memory",
           (), "gprintk"),
      )),
    # --- crashes in these files (printed by do_invalid_op / panic) ---------------------------
    _f("assertion", "Assertion '%s' failed at %s:%d", "do_invalid_op (ASSERT)",
       ("predicate", "file", "line"), printer="printk", source=_TRAPS),
    _f("xen_bug", "Xen BUG at %s:%d", "do_invalid_op (BUG/BUG_ON)", ("file", "line"),
       printer="printk", source=_TRAPS),
    _f("xen_warn", "Xen WARN at %s:%d", "do_invalid_op (WARN)", ("file", "line"),
       printer="printk", source=_TRAPS),
    _f("fatal_trap", "FATAL TRAP: vec %u, %s[%04x]%s", "fatal_trap", ("vector", "text", "code",
       "text2"), printer="panic", source=_TRAPS),
    _f("panic_on_cpu", "Panic on CPU %d:", "panic", ("cpu",), printer="printk",
       source="common/ (drivers/char/console.c)"),
    _f("reboot", "Reboot in five seconds...", "panic", printer="printk",
       source="drivers/char/console.c"),
    _f("manual_reset", "Manual reset required ('noreboot' specified)", "panic",
       printer="printk", source="drivers/char/console.c"),
)

BY_ID: dict[str, LogFormat] = {f.id: f for f in LOG_FORMATS}


def formats_for_rule(rule_id: str) -> tuple[LogFormat, ...]:
    """The messages Xen prints when the check `rule_id` refuses something."""
    return tuple(f for f in LOG_FORMATS if f.rule == rule_id)


# --------------------------------------------------------------------- printf helpers
_CONV = re.compile(r"%([-#0 +]*)(\d*)(?:\.\d+)?(l{0,2}|z)?([diuxXs%]|p[dv]?)")


def c_format(fmt: str, *args: int | str) -> str:
    """Xen's `vsnprintf` for the conversions its MM messages use (`%#x` of 0 prints `0`)."""
    out: list[str] = []
    values = list(args)
    pos = 0
    for m in _CONV.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, _, conv = m.groups()
        if conv == "%":
            out.append("%")
            continue
        value = values.pop(0)
        if conv in ("pd", "pv"):
            out.append(str(value))
            continue
        if conv in "xX" and isinstance(value, int):
            text = format(value & ((1 << 64) - 1), conv)
            if "#" in flags and value:
                text = "0x" + text
        else:
            text = str(value)
        pad = "0" if "0" in flags else " "
        out.append(text.rjust(int(width), pad) if width else text)
    out.append(fmt[pos:])
    return "".join(out)


@cache
def pattern(fmt: str, *, whole: bool = True) -> re.Pattern[str]:
    """A regex matching what `fmt` prints, one group per conversion (in order); with
    `whole=False` text may follow (a message printed without its newline)."""
    parts: list[str] = []
    pos = 0
    for m in _CONV.finditer(fmt):
        parts.append(re.escape(fmt[pos:m.start()]))
        pos = m.end()
        conv = m.group(4)
        if conv == "%":
            parts.append("%")
        elif conv in ("pd", "pv"):
            parts.append(r"(d(?:\d+|\[[A-Za-z?]+\])(?:v\d+)?)")
        elif conv in "xXp":
            parts.append(r"((?:0x)?[0-9a-fA-F]+)")
        elif conv in "di":
            parts.append(r"(-?\d+)")
        elif conv == "u":
            parts.append(r"(\d+)")
        else:
            parts.append(r"(.*?)")
    parts.append(re.escape(fmt[pos:]))
    body = "".join(parts).replace(r"\ ", " ")
    return re.compile("^" + body.strip() + (r"\s*$" if whole else ""))


# ------------------------------------------------------- the line a pvlab verdict stands for
_PTE_SHIFT = 40  # PTE bits 52-63 sit at bits 12-23 of the flag word


def _bad_word(explanation: str) -> int | None:
    """The flag word of a pvlab flag-rule explanation ('... sets PWT|PCD ...')."""
    from pvlab.x86.flags import FLAG_ALIASES, FLAG_BITS

    m = re.search(r"\bsets ([A-Z0-9|]+)", explanation)
    if not m:
        return None
    pte = 0
    for name in m.group(1).split("|"):
        bit = FLAG_BITS.get(name, FLAG_ALIASES.get(name))
        if bit is None:
            return None
        pte |= bit
    return (pte & 0xFFF) | ((pte >> _PTE_SHIFT) & 0xFFF000)


def xen_log_line(ev: Event, rc: int = 0) -> str | None:
    """The message Xen's debug build prints for the failing check `ev` (numbers filled), or
    None when the check has no message of its own (or the trace lacks its numbers).

    `rc` is the operation's return code, for messages that print it.
    """
    if ev.decision != "fail":
        return None
    check, mfn, index = ev.check, ev.mfn, ev.index
    flag_rule = re.fullmatch(r"l([1-4])_flags", check)
    if flag_rule:
        if check == "l3_flags" and index == 3 and "compat" in ev.xen_function:
            # promote_l3_table checks a 32-bit guest's slot 3 itself, silently: only the
            # "Failure -22 in promote_l3_table: slot 0x3" that follows is printed.
            return None
        word = _bad_word(ev.explanation)
        return None if word is None else c_format(BY_ID[f"bad_l{flag_rule.group(1)}_flags"].text,
                                                  word)
    if check == "promote" and index is not None and ev.level:
        m = re.search(r"failure (E[A-Z]+) in", ev.explanation)
        err = -int(Errno[m.group(1)]) if m and m.group(1) in Errno.__members__ else rc
        return c_format(BY_ID[f"promote_l{ev.level}_failure"].text, err, index)
    if check == "pin" and mfn is not None and rc:
        return c_format(BY_ID["pin_error"].text, rc, mfn)
    if check == "new_baseptr" and mfn is not None:
        compat = "compat" in ev.explanation
        return c_format(BY_ID["compat_baseptr" if compat else "baseptr"].text, mfn)
    by_mfn = {"already_pinned": "already_pinned", "not_pinned": "not_pinned",
              "pae_l3_below_4g": "pae_pgd_below_4g"}
    if check in by_mfn and mfn is not None:
        return c_format(BY_ID[by_mfn[check]].text, mfn)
    by_slot = {"pae_xen_l2_slots": "l2_xen_private", "l4_xen_slots": "l4_xen_private"}
    if check in by_slot and index is not None and "update" in ev.explanation:
        return c_format(BY_ID[by_slot[check]].text, index)
    plain = {"pv32_l3_slot3_shared": "pae_l3_shared", "linear_rw": "linear_rw",
             "linear_disabled": "linear_disabled",
             "l1_writable_pagetable": "l1_writable_type"}
    if check in plain:
        return BY_ID[plain[check]].text
    if check == "not_owned" and ev.explanation.startswith("Could not get page for normal"):
        return BY_ID["mmu_update_page"].text
    if check in _QUOTING_CHECKS and ev.explanation.startswith("'"):
        # the explanation quotes Xen's message, numbers filled
        for t in _QUOTED:
            m = pattern(t, whole=False).match(ev.explanation[1:])
            if m and ev.explanation[1 + m.end():].startswith("'"):
                return m.group(0)
    return None


#: Checks between domains whose explanations start with Xen's own message in quotes.
_QUOTING_CHECKS = {"pg_owner", "gnttab_flags", "gnttab_domain", "gnttab_ref", "grant_entry",
                   "gnttab_pin", "gnttab_handle", "grant_pte", "grant_va", "grant_replace"}
_QUOTED = tuple(t for f in LOG_FORMATS if f.source.startswith(("common/grant", "common/page",
                                                                "arch/x86/pv/grant"))
                for t in f.formats)


install_xen_log_line(xen_log_line)
