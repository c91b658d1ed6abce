# SPDX-License-Identifier: MIT
"""The PV memory-management hypercalls, with Xen's command numbers and return codes.

`do_mmuext_op`, `do_mmu_update` (`mod_l{1..4}_entry`), `do_vm_assist`,
`arch_set_info_guest` (via `XEN_DOMCTL_setvcpucontext` / `VCPUOP_initialise`) and
`vcpu_reset`. Each returns an :class:`~pvlab.trace.Outcome`; none raises for a Xen error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import Errno, Outcome, Tracer
from pvlab.x86.flags import NX, PS, US, A, D, G, P, entry_mfn
from pvlab.xen import l1tf
from pvlab.xen.domain import (
    VM_ASSIST_NAMES,
    Domain,
    VMASST_CMD_disable,
    VMASST_CMD_enable,
    VMASST_TYPE_pae_extended_cr3,
    vm_assist_names,
)
from pvlab.xen.hcall_base import _pae_extended_cr3_policy, _ref_mfn
from pvlab.xen.mmuext import (
    COMMANDS,
    MMUEXT_CLEAR_PAGE,
    MMUEXT_COPY_PAGE,
    MMUEXT_FLUSH_CACHE,
    MMUEXT_FLUSH_CACHE_GLOBAL,
    MMUEXT_INVLPG_ALL,
    MMUEXT_INVLPG_LOCAL,
    MMUEXT_INVLPG_MULTI,
    MMUEXT_MARK_SUPER,
    MMUEXT_NEW_BASEPTR,
    MMUEXT_NEW_USER_BASEPTR,
    MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L2_TABLE,
    MMUEXT_PIN_L3_TABLE,
    MMUEXT_PIN_L4_TABLE,
    MMUEXT_SET_LDT,
    MMUEXT_TLB_FLUSH_ALL,
    MMUEXT_TLB_FLUSH_LOCAL,
    MMUEXT_TLB_FLUSH_MULTI,
    MMUEXT_UNMARK_SUPER,
    MMUEXT_UNPIN_TABLE,
    MmuextArgs,
    do_mmuext_op,
)
from pvlab.xen.page_info import (
    PGT_writable_page,
    owner_name,
)
from pvlab.xen.rules import flag_word_names, ruleset
from pvlab.xen.typesys import describe_type
from pvlab.xen.vcpu_context import set_vcpu_context, vcpu_op_initialise

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

# mmuext_op commands: the table lives in pvlab.xen.mmuext (re-exported here)
MMUEXT_NAMES = {n: c.name for n, c in COMMANDS.items()}
TLB_FLUSH_CMDS = (MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL, MMUEXT_TLB_FLUSH_MULTI,
                  MMUEXT_INVLPG_MULTI, MMUEXT_TLB_FLUSH_ALL, MMUEXT_INVLPG_ALL)
# mmu_update commands
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1
MMU_PT_UPDATE_PRESERVE_AD = 2

#: Bits that may change in a live entry without re-validation (FASTPATH_FLAG_WHITELIST).
FASTPATH_FLAG_WHITELIST = NX | (((1 << 11) - 1) << 52) | (0x7 << 9) | G | D | A | US


def mmuext_op(xen: Xen, d: Domain, cmd: int, mfn: int = 0, *, vcpu: int = 0,
              linear_addr: int = 0, nr_ents: int = 0, src_mfn: int = 0) -> Outcome:
    """`do_mmuext_op` for one op, on behalf of (or as) domain `d`: dispatched through the
    command table :data:`pvlab.xen.mmuext.COMMANDS`."""
    return do_mmuext_op(xen, d, MmuextArgs(cmd, mfn, vcpu, linear_addr, nr_ents, src_mfn))


#: `update_va_mapping` flags (public/xen.h): flush type in bits 0-1, then LOCAL/ALL or a
#: guest pointer to a vCPU bitmap.
UVMF_NONE, UVMF_TLB_FLUSH, UVMF_INVLPG = 0, 1, 2
UVMF_FLUSHTYPE_MASK = 3
UVMF_LOCAL, UVMF_ALL = 0, 1 << 2
#: `__addr_ok`: a guest-supplied linear address below Xen's area (canonical lower half, or
#: above HYPERVISOR_VIRT_END).
HYPERVISOR_VIRT_END = 0xFFFF_8800_0000_0000


def addr_ok(va: int) -> bool:
    """`__addr_ok(va)`: in the lower canonical half, or at/above HYPERVISOR_VIRT_END."""
    return va < (1 << 47) or HYPERVISOR_VIRT_END <= va < (1 << 64)


def update_va_mapping(xen: Xen, d: Domain, va: int, value: int, *, vcpu: int = 0,
                      flags: int = 0, pg_owner: Domain | None = None) -> Outcome:
    """`__do_update_va_mapping`: find the L1 entry of `va` through the vCPU's current tables
    (Xen's `map_guest_l1e` reads the linear map), then `mod_l1_entry`, then flush as `flags`
    (UVMF_*) say. `pg_owner` set: `update_va_mapping_otherdomain` (the frames mapped belong
    to that domain; XSM lets only a privileged caller name another domain)."""
    other = pg_owner is not None and pg_owner is not d
    t = Tracer(f"update_va_mapping{'_otherdomain' if other else ''}({va:#x}, {value:#x})")
    t.outcome.counters.hypercalls += 1
    m = xen.machine
    v = d.vcpu(vcpu)
    base = v.guest_table if v is not None else None
    owner = pg_owner or d

    def refuse(why: str, mfn: int | None = None) -> Outcome:
        t.event("update_va_mapping", "fail", why, "__do_update_va_mapping (map_guest_l1e)",
                mfn=mfn)
        if not xen.profile.uvmf_flush_skipped_on_error:
            flush_after_error(xen, t, va, flags)
        return t.finish(-int(Errno.EINVAL))

    if other and not d.privileged:
        t.event("xsm", "fail", f"{d.label} may not map {owner.label}'s frames "
                "(xsm_update_va_mapping: XSM_TARGET)", "__do_update_va_mapping")
        return t.finish(-int(Errno.EPERM))
    va &= (1 << d.abi.va_bits) - 1  # compat_update_va_mapping takes a 32-bit VA
    if not addr_ok(va):
        return refuse(f"VA {va:#x} is not a guest address (non-canonical, or in Xen's area): "
                      "__addr_ok fails")
    if base is None:
        return refuse(f"vCPU {vcpu} has no pagetable base to find VA {va:#x} in")
    abi = d.abi
    if va >> abi.va_bits:
        return refuse(f"VA {va:#x} is beyond a {abi.bitness}-bit guest's "
                      f"{1 << abi.va_bits >> 30} GiB")
    table = base
    for level in abi.walk_levels:
        shift = 12 + 9 * (level - 1)
        idx = (va >> shift) & (abi.slots(level) - 1)
        e = m.read_entry(table, idx)
        if not e & P or (level == 2 and e & PS):
            return refuse(f"no L1 maps VA {va:#x}: L{level} entry {idx} of MFN {table:#x} is "
                          + ("a superpage" if e & P else "not present"), table)
        table = entry_mfn(e)
    pi = m.peek(table)
    if pi.owner != d.domid:
        return refuse(f"the L1 for VA {va:#x} (MFN {table:#x}) is not {d.label}'s", table)
    if not (pi.is_live_pagetable and pi.level == 1):
        return refuse(f"MFN {table:#x} is not a validated L1 (page_lock fails)", table)
    index = (va >> 12) & 511
    rc = mod_l1_entry(xen, d, t, table, index, value, pg_owner=owner)
    if rc:
        return t.finish(rc)
    kind = flags & UVMF_FLUSHTYPE_MASK
    if kind in (UVMF_TLB_FLUSH, UVMF_INVLPG):
        target = flags & ~UVMF_FLUSHTYPE_MASK
        what = "TLB flush" if kind == UVMF_TLB_FLUSH else f"INVLPG of {va:#x}"
        if target not in (UVMF_LOCAL, UVMF_ALL):
            t.event("uvmf", "fail", f"the entry is updated, but the vCPU mask at {target:#x} "
                    "cannot be read: -EFAULT", "__do_update_va_mapping (vcpumask_to_pcpumask)")
            return t.finish(-int(Errno.EFAULT))
        t.event("uvmf", "pass", f"{what} on {'this CPU' if target == UVMF_LOCAL else 'all '}"
                f"{'' if target == UVMF_LOCAL else 'CPUs the domain ran on'}",
                "__do_update_va_mapping")
    return t.finish(0)


def flush_after_error(xen: Xen, t: Tracer, va: int, flags: int) -> None:
    """Before XSA-279 (commit 6c8d502887) `__do_update_va_mapping` went on to the UVMF
    flush after an error, with the guest's unchecked VA. UVMF_INVLPG of a non-canonical
    VA on a CPU where Xen flushes with INVPCID raises #GP inside Xen: the host panics."""
    kind = flags & UVMF_FLUSHTYPE_MASK
    fn = "__do_update_va_mapping (UVMF flush after the error, before XSA-279)"
    if kind != UVMF_INVLPG:
        if kind == UVMF_TLB_FLUSH:
            t.event("uvmf_after_error", "info", "the flush runs although nothing was updated "
                    "(a whole-TLB flush: harmless)", fn)
        return
    canonical = va < (1 << 47) or va >= 0xFFFF_8000_0000_0000
    if canonical or not xen.settings.hardware.invpcid:
        t.event("uvmf_after_error", "info", f"INVLPG of {va:#x} runs although nothing was "
                "updated" + ("" if canonical else " (INVLPG ignores a non-canonical address; "
                             "this CPU has no INVPCID)"), fn)
        return
    t.outcome.crash = (f"FATAL TRAP: vector = 13 (general protection fault) in Xen: INVPCID "
                       f"of the non-canonical address {va:#x} (flush_area_local)")
    t.event("uvmf_after_error", "fail", f"the error path still flushes: INVPCID with the "
            f"guest's non-canonical VA {va:#x} raises #GP in Xen, which panics", fn)


# ------------------------------------------------------------------ mmu_update
def mmu_update(xen: Xen, d: Domain, table: int, index: int, value: int, *,
               cmd: int = MMU_NORMAL_PT_UPDATE, pg_owner: Domain | None = None) -> Outcome:
    """`do_mmu_update` with one request: `ptr = (table << 12) + index * 8 | cmd`.

    `pg_owner`: the page owner `foreigndom` named (see `pvlab.xen.foreign`); an L1 entry
    then maps that domain's frame (`get_page_from_l1e(l1e, d, pg_owner)`)."""
    t = Tracer(f"mmu_update(MFN {table:#x}[{index}] = {value:#x})")
    t.outcome.counters.hypercalls += 1
    types = xen.type_system
    m = xen.machine
    if cmd == MMU_MACHPHYS_UPDATE:
        t.outcome.op = f"mmu_update(MACHPHYS MFN {table:#x} -> PFN {value:#x})"
        if not types.get_page(table, d):
            return t.finish(_ref_mfn(xen, table, d, t, "MMU_MACHPHYS_UPDATE"))
        m.m2p[table] = value
        types.put_page(table)
        t.event("machphys", "pass", f"M2P[{table:#x}] = {value:#x}", "do_mmu_update")
        return t.finish(0)
    if cmd not in (MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD):
        t.event("mmu_update", "fail", f"unknown mmu_update command {cmd}", "do_mmu_update")
        return t.finish(-int(Errno.ENOSYS))
    if not types.get_page(table, d):
        owner = owner_name(m.owner(table)) if m.mfn_valid(table) else "no one"
        t.event("not_owned", "fail", f"Could not get page for normal update: MFN {table:#x} "
                f"belongs to {owner}", "do_mmu_update", mfn=table)
        return t.finish(-int(Errno.EINVAL))
    try:
        pi = m.page(table)
        if pi.is_live_pagetable:
            if cmd == MMU_PT_UPDATE_PRESERVE_AD:  # update_intpte(..., preserve_ad)
                value |= m.read_entry(table, index) & (A | D)
            level = pi.level
            if level == 1 and pg_owner is not None:
                return t.finish(mod_l1_entry(xen, d, t, table, index, value,
                                             pg_owner=pg_owner))
            rc = MOD_ENTRY[level](xen, d, t, table, index, value)
            return t.finish(rc)
        if pi.type_count and pi.type != PGT_writable_page:
            t.event("mmu_update", "fail", f"MFN {table:#x} is {describe_type(pi.type_info)}: "
                    "not a pagetable and not writable", "do_mmu_update", mfn=table)
            return t.finish(-int(Errno.EINVAL))
        # Not a live pagetable: a plain write under a temporary writable type
        # (paging_write_guest_entry; MMU_PT_UPDATE_PRESERVE_AD changes nothing here).
        rc = types.get_page_type(t, table, PGT_writable_page, d)
        if rc:
            return t.finish(rc)
        m.write_entry(table, index, value)
        types.put_page_type(t, table)
        t.event("plain_write", "pass", f"MFN {table:#x} is not a live pagetable: entry {index} "
                "written without any check", "do_mmu_update", mfn=table, index=index)
        return t.finish(0)
    finally:
        types.put_page(table)


#: `PADDR_MASK & PAGE_MASK`: the frame bits `l?e_has_changed` always compares.
_FRAME_BITS = ((1 << 52) - 1) & ~0xFFF


def _changed(xen: Xen, level: int, old: int, new: int) -> bool:
    """`l?e_has_changed(old, new, ~FASTPATH_FLAG_WHITELIST)`: frame, P, RW or cache bits.
    A profile without the XSA-182 (or XSA-148) fix compares the frame and fewer flags
    (`Profile.fastpath_checked`)."""
    checked = xen.profile.fastpath_checked[level - 1]
    if checked is None:
        return bool((old ^ new) & ~FASTPATH_FLAG_WHITELIST & 0xFFFF_FFFF_FFFF_FFFF)
    diff = old ^ new
    word = (diff & 0xFFF) | ((diff >> 40) & 0xFFF000)  # get_pte_flags
    return bool(diff & _FRAME_BITS or word & checked)


def _fast_path_note(xen: Xen, level: int, old: int, new: int) -> str:
    """What a pre-fix fast path let through (changes the fixed whitelist would check)."""
    if xen.profile.fastpath_checked[level - 1] is None:
        return ""
    slipped = (old ^ new) & ~FASTPATH_FLAG_WHITELIST & 0xFFFF_FFFF_FFFF_FFFF
    if not slipped:
        return ""
    adv = xen.profile.advisory
    return (f" — {flag_names_of(slipped, level)} changed without re-validation "
            f"(profile {xen.profile.name}: the fast path before "
            f"{f'XSA-{adv.xsa}' if adv else 'the whitelist'} compares only the frame and "
            "a few flags)")


def flag_names_of(bits: int, level: int) -> str:
    word = (bits & 0xFFF) | ((bits >> 40) & 0xFFF000)
    return flag_word_names(word, level)


def mod_l1_entry(xen: Xen, d: Domain, t: Tracer, table: int, index: int, new: int, *,
                 pg_owner: Domain | None = None) -> int:
    types = xen.type_system
    m = xen.machine
    old = m.read_entry(table, index)
    rules = ruleset(d)
    if new & P:
        bad = rules.bad_flags(1, new, d, xen.profile)
        if bad:
            return types.fail(t, rules, "l1_flags", f"L1 entry {index} of MFN {table:#x}: bad L1 "
                           f"flags {flag_word_names(bad, 1)}", mfn=table, index=index, level=1)
        if old & P and not _changed(xen, 1, old, new):
            m.write_entry(table, index, d.abi.adjust_l1e(new))
            t.event("mod_l1_entry", "pass", "only flags that need no re-check changed (fast path)"
                    + _fast_path_note(xen, 1, old, new),
                    "mod_l1_entry", mfn=table, index=index, level=1)
            return 0
        t.outcome.counters.entries_checked += 1
        rc = types.get_page_from_l1e(t, new, d, pg_owner or d, table=table, index=index)
        if rc:
            return rc
        m.write_entry(table, index, d.abi.adjust_l1e(new ^ types.l1e_mmio_flip(t, new, d)))
    elif l1tf.check(xen, t, d, 1, new, table=table, index=index):
        return -int(Errno.ERESTART)  # the domain crashed: the restart never runs
    else:
        m.write_entry(table, index, new)
    types.put_page_from_l1e(t, old, d)
    t.event("mod_l1_entry", "pass", f"L1 entry {index} of MFN {table:#x} updated", "mod_l1_entry",
            mfn=table, index=index, level=1)
    return 0


#: The message of each rule that refuses a guest update of one of Xen's slots.
_XEN_SLOT_REFUSALS = {
    "pae_xen_l2_slots": "L2 update in Xen-private area: slot {index} of PAE Xen L2 MFN {table:#x}",
    "pv32_l3_update_slot": "32-bit PV guest may not update slot {index} of L3 MFN {table:#x}",
    "l4_xen_slots": "L4 update in Xen-private area: slot {index} of MFN {table:#x}",
}


def mod_upper_entry(xen: Xen, d: Domain, t: Tracer, table: int, index: int, new: int,
                    level: int) -> int:
    """`mod_l{2,3,4}_entry`: refuse Xen's slots, then re-validate unless only harmless
    flags changed, and drop the old entry's references."""
    types = xen.type_system
    m = xen.machine
    pi = m.page(table)
    rules = ruleset(d)
    refused = d.abi.update_refused(level, index, pae_xen_l2=pi.pae_xen_l2)
    if refused:
        return types.fail(t, rules, refused,
                       _XEN_SLOT_REFUSALS[refused].format(index=index, table=table),
                       mfn=table, index=index)
    old = m.read_entry(table, index)
    if new & P:
        bad = rules.bad_flags(level, new, d, xen.profile)
        if bad:
            return types.fail(t, rules, f"l{level}_flags", f"L{level} entry {index} of MFN "
                           f"{table:#x}: bad flags {flag_word_names(bad, level)}", mfn=table,
                           index=index, level=level)
        adjust = d.abi.entry_adjust[level]
        if old & P and not _changed(xen, level, old, new):
            m.write_entry(table, index, new | adjust)
            t.event(f"mod_l{level}_entry", "pass", "fast path: same frame, only harmless "
                    "flags changed" + _fast_path_note(xen, level, old, new),
                    f"mod_l{level}_entry", mfn=table, index=index, level=level)
            return 0
        t.outcome.counters.entries_checked += 1
        rc = types.get_page_from_lne(t, level, new, table, index, d)
        if rc:
            return rc
        m.write_entry(table, index, new | adjust)
    elif l1tf.check(xen, t, d, level, new, table=table, index=index):
        return -int(Errno.ERESTART)  # the domain crashed: the restart never runs
    else:
        m.write_entry(table, index, new)
    types.put_page_from_lne(t, level, old, table)
    t.event(f"mod_l{level}_entry", "pass", f"L{level} entry {index} of MFN {table:#x} updated "
            "(no PAE-extended-CR3 re-check: that rule runs only at promotion)"
            if level == 3 else f"L{level} entry {index} of MFN {table:#x} updated",
            f"mod_l{level}_entry", mfn=table, index=index, level=level)
    return 0


MOD_ENTRY = {
    1: mod_l1_entry,
    2: lambda x, d, t, tb, i, v: mod_upper_entry(x, d, t, tb, i, v, 2),
    3: lambda x, d, t, tb, i, v: mod_upper_entry(x, d, t, tb, i, v, 3),
    4: lambda x, d, t, tb, i, v: mod_upper_entry(x, d, t, tb, i, v, 4),
}


# ------------------------------------------------------------------ vm_assist
def vm_assist(xen: Xen, d: Domain, cmd: int, vtype: int) -> Outcome:
    """`do_vm_assist(cmd, type)` for the calling domain."""
    name = VM_ASSIST_NAMES.get(vtype, f"type {vtype}")
    verb = {VMASST_CMD_enable: "enable", VMASST_CMD_disable: "disable"}.get(cmd, f"cmd {cmd}")
    t = Tracer(f"vm_assist({verb}, {name})")
    t.outcome.counters.hypercalls += 1
    rules = ruleset(d)
    if not d.abi.assist_valid(vtype):
        return t.finish(xen.type_system.fail(t, rules, "vm_assist_valid",
                                    f"VM-assist {name} is not valid for a {d.abi.bitness}-bit "
                                    "PV guest"))
    if cmd not in (VMASST_CMD_enable, VMASST_CMD_disable):
        return t.finish(xen.type_system.fail(t, rules, "vm_assist_cmd",
                                             f"vm_assist command {cmd} unknown"))
    if vtype == VMASST_TYPE_pae_extended_cr3 and cmd == VMASST_CMD_enable:
        rc, ignored = _pae_extended_cr3_policy(xen, d, t)
        if rc:
            return t.finish(rc)
        if ignored:
            t.event("vm_assist", "pass", f"profile {xen.profile.name}: accepted and ignored for a "
                    "64-bit guest", "do_vm_assist")
            return t.finish(0)
    if cmd == VMASST_CMD_enable:
        d.vm_assist |= 1 << vtype
    else:
        d.vm_assist &= ~(1 << vtype)
    note = " (no effect for 64-bit guests)" if (
        vtype == VMASST_TYPE_pae_extended_cr3 and not d.abi.pae_top) else ""
    t.event("vm_assist", "pass", f"{name} {verb}d{note}; assists now: "
            f"{', '.join(vm_assist_names(d.vm_assist)) or 'none'}", "do_vm_assist")
    return t.finish(0)


# ------------------------------------------------------------------ vCPU context
# set_vcpu_context and vcpu_op_initialise live in pvlab.xen.vcpu_context (re-exported).


def vcpu_reset(xen: Xen, d: Domain, vcpu: int) -> Outcome:
    """`vcpu_reset` (setvcpucontext with a NULL context): drop CR3, `is_initialised = 0`."""
    t = Tracer(f"vcpu_reset(vcpu {vcpu})")
    t.outcome.counters.hypercalls += 1
    v = d.vcpu(vcpu)
    if v is None:
        return t.finish(xen.type_system.fail(t, ruleset(d), "vcpu_missing",
                                             f"vCPU {vcpu} does not exist"))
    for attr in ("guest_table", "guest_table_user"):
        mfn = getattr(v, attr)
        if mfn is not None:
            xen.type_system.put_page_and_type(t, mfn)
            setattr(v, attr, None)
    v.is_initialised = False
    t.event("vcpu", "pass", f"vCPU {vcpu} reset: CR3 references dropped, not initialised",
            "vcpu_reset")
    return t.finish(0)


__all__ = ["MMUEXT_CLEAR_PAGE", "MMUEXT_COPY_PAGE", "MMUEXT_FLUSH_CACHE",
           "MMUEXT_FLUSH_CACHE_GLOBAL", "MMUEXT_INVLPG_ALL", "MMUEXT_INVLPG_LOCAL",
           "MMUEXT_INVLPG_MULTI", "MMUEXT_MARK_SUPER", "MMUEXT_NEW_BASEPTR",
           "MMUEXT_NEW_USER_BASEPTR", "MMUEXT_PIN_L1_TABLE", "MMUEXT_PIN_L2_TABLE",
           "MMUEXT_PIN_L3_TABLE", "MMUEXT_PIN_L4_TABLE", "MMUEXT_SET_LDT",
           "MMUEXT_TLB_FLUSH_ALL", "MMUEXT_TLB_FLUSH_LOCAL", "MMUEXT_TLB_FLUSH_MULTI",
           "MMUEXT_UNMARK_SUPER", "MMUEXT_UNPIN_TABLE", "mmu_update", "mmuext_op",
           "set_vcpu_context", "update_va_mapping", "vcpu_op_initialise", "vcpu_reset",
           "vm_assist"]
