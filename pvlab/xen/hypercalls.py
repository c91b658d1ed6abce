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
from pvlab.xen.domain import (
    VM_ASSIST_NAMES,
    Domain,
    Vcpu,
    VMASST_CMD_disable,
    VMASST_CMD_enable,
    VMASST_TYPE_pae_extended_cr3,
    vm_assist_names,
)
from pvlab.xen.page_info import (
    LEVEL_TYPE,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_writable_page,
    owner_name,
)
from pvlab.xen.rules import flag_word_names, ruleset
from pvlab.xen.typesys import describe_type

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

# mmuext_op commands (public/xen.h)
MMUEXT_PIN_L1_TABLE = 0
MMUEXT_PIN_L2_TABLE = 1
MMUEXT_PIN_L3_TABLE = 2
MMUEXT_PIN_L4_TABLE = 3
MMUEXT_UNPIN_TABLE = 4
MMUEXT_NEW_BASEPTR = 5
MMUEXT_TLB_FLUSH_LOCAL = 6
MMUEXT_INVLPG_LOCAL = 7
MMUEXT_TLB_FLUSH_MULTI = 8
MMUEXT_INVLPG_MULTI = 9
MMUEXT_TLB_FLUSH_ALL = 10
MMUEXT_INVLPG_ALL = 11
MMUEXT_NEW_USER_BASEPTR = 15
MMUEXT_MARK_SUPER = 19
MMUEXT_UNMARK_SUPER = 20
TLB_FLUSH_CMDS = (MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL, MMUEXT_TLB_FLUSH_MULTI,
                  MMUEXT_INVLPG_MULTI, MMUEXT_TLB_FLUSH_ALL, MMUEXT_INVLPG_ALL)
MMUEXT_NAMES = {0: "MMUEXT_PIN_L1_TABLE", 1: "MMUEXT_PIN_L2_TABLE", 2: "MMUEXT_PIN_L3_TABLE",
                3: "MMUEXT_PIN_L4_TABLE", 4: "MMUEXT_UNPIN_TABLE", 5: "MMUEXT_NEW_BASEPTR",
                6: "MMUEXT_TLB_FLUSH_LOCAL", 7: "MMUEXT_INVLPG_LOCAL",
                8: "MMUEXT_TLB_FLUSH_MULTI", 9: "MMUEXT_INVLPG_MULTI",
                10: "MMUEXT_TLB_FLUSH_ALL", 11: "MMUEXT_INVLPG_ALL",
                15: "MMUEXT_NEW_USER_BASEPTR", 19: "MMUEXT_MARK_SUPER",
                20: "MMUEXT_UNMARK_SUPER"}
# mmu_update commands
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1
MMU_PT_UPDATE_PRESERVE_AD = 2

#: Bits that may change in a live entry without re-validation (FASTPATH_FLAG_WHITELIST).
FASTPATH_FLAG_WHITELIST = NX | (((1 << 11) - 1) << 52) | (0x7 << 9) | G | D | A | US


def _ref_mfn(xen: Xen, mfn: int, d: Domain, t: Tracer, what: str) -> int:
    """`get_page_from_gfn` for a PV guest: the frame must be the domain's own."""
    if xen.type_system.get_page(mfn, d):
        return 0
    owner = owner_name(xen.machine.owner(mfn)) if xen.machine.mfn_valid(mfn) else "no one"
    return xen.type_system.fail(t, ruleset(d), "not_owned",
                       f"{what}: MFN {mfn:#x} belongs to {owner}, not {d.label}", mfn=mfn)


def mmuext_op(xen: Xen, d: Domain, cmd: int, mfn: int = 0, *, vcpu: int = 0) -> Outcome:
    """`do_mmuext_op` for one op, on behalf of (or as) domain `d`."""
    name = MMUEXT_NAMES.get(cmd, f"mmuext cmd {cmd}")
    t = Tracer(f"{name}({mfn:#x})" if cmd not in TLB_FLUSH_CMDS else name)
    t.outcome.counters.hypercalls += 1
    ts = xen.ts
    if cmd in (MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE,
               MMUEXT_PIN_L4_TABLE):
        level = cmd + 1
        if level == 4 and d.is_pv_32bit:
            t.event("pin", "info", "MMUEXT_PIN_L4_TABLE from a 32-bit PV guest does nothing "
                    "and returns 0", "do_mmuext_op", mfn=mfn)
            return t.finish(0)
        rc = _ref_mfn(xen, mfn, d, t, name)
        if rc:
            return t.finish(rc)
        rc = ts.get_page_type(t, mfn, LEVEL_TYPE[level], d)
        if rc:
            ts.put_page(mfn)
            t.event("pin", "fail", f"error {Errno(-rc).name} while pinning MFN {mfn:#x}",
                    "do_mmuext_op", mfn=mfn, level=level)
            return t.finish(rc)
        pi = xen.machine.page(mfn)
        if pi.type_info & PGT_pinned:
            ts.put_page_and_type(t, mfn)
            return t.finish(ts.fail(t, ruleset(d), "already_pinned",
                                    f"MFN {mfn:#x} already pinned", mfn=mfn))
        pi.type_info |= PGT_pinned
        t.event("pin", "pass", f"MFN {mfn:#x} pinned as L{level} (type count {pi.type_count})",
                "do_mmuext_op", mfn=mfn, level=level)
        return t.finish(0)
    if cmd == MMUEXT_UNPIN_TABLE:
        rc = _ref_mfn(xen, mfn, d, t, name)
        if rc:
            return t.finish(rc)
        pi = xen.machine.page(mfn)
        if not pi.type_info & PGT_pinned:
            ts.put_page(mfn)
            return t.finish(ts.fail(t, ruleset(d), "not_pinned", f"MFN {mfn:#x} not pinned",
                                    mfn=mfn))
        pi.type_info &= ~PGT_pinned
        ts.put_page_and_type(t, mfn)
        ts.put_page(mfn)
        t.event("unpin", "pass", f"MFN {mfn:#x} unpinned; now {describe_type(pi.type_info)}",
                "do_mmuext_op", mfn=mfn)
        return t.finish(0)
    if cmd == MMUEXT_NEW_BASEPTR:
        return t.finish(new_guest_cr3(xen, d, vcpu, mfn, t))
    if cmd == MMUEXT_NEW_USER_BASEPTR:
        return t.finish(_new_user_baseptr(xen, d, vcpu, mfn, t))
    if cmd in TLB_FLUSH_CMDS:
        t.event("tlb_flush", "pass", f"{name} accepted (no effect on types)", "do_mmuext_op")
        return t.finish(0)
    if cmd in (MMUEXT_MARK_SUPER, MMUEXT_UNMARK_SUPER):
        t.event("mmuext", "fail", "PV superpages were removed in Xen 4.10 (commit 56fff3e5e9)",
                "do_mmuext_op")
        return t.finish(-int(Errno.EOPNOTSUPP))
    t.event("mmuext", "fail", f"unknown mmuext command {cmd}", "do_mmuext_op")
    return t.finish(-int(Errno.ENOSYS))


def update_va_mapping(xen: Xen, d: Domain, va: int, value: int, *, vcpu: int = 0) -> Outcome:
    """`do_update_va_mapping`: find the L1 entry of `va` through the vCPU's current tables
    (Xen uses its linear map, `guest_map_l1e`), then `mod_l1_entry`."""
    t = Tracer(f"update_va_mapping({va:#x}, {value:#x})")
    t.outcome.counters.hypercalls += 1
    m = xen.machine
    v = d.vcpu(vcpu)
    base = v.guest_table if v is not None else None

    def refuse(why: str, mfn: int | None = None) -> Outcome:
        t.event("update_va_mapping", "fail", why, "do_update_va_mapping", mfn=mfn)
        return t.finish(-int(Errno.EINVAL))

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
    return t.finish(mod_l1_entry(xen, d, t, table, index, value))


def new_guest_cr3(xen: Xen, d: Domain, vcpu: int, mfn: int, t: Tracer) -> int:
    """`new_guest_cr3`: PV32 installs an L3 in compat L4 slot 0; 64-bit installs an L4."""
    types = xen.type_system
    v = d.vcpu(vcpu)
    if v is None:
        return types.fail(t, ruleset(d), "vcpu_missing", f"vCPU {vcpu} does not exist")
    if v.guest_table == mfn:
        t.event("new_baseptr", "pass", f"MFN {mfn:#x} is already the base pointer",
                "new_guest_cr3")
        return 0
    rc = _ref_mfn(xen, mfn, d, t, "new base pointer")
    if rc:
        return rc
    rc = types.get_page_type(t, mfn, d.abi.top_type, d)
    if rc:
        types.put_page(mfn)
        t.event("new_baseptr", "fail",
                f"Error while installing new {d.abi.baseptr_name} {mfn:#x}",
                "new_guest_cr3", mfn=mfn)
        return rc
    old = v.guest_table
    v.guest_table = mfn
    if old is not None:
        types.put_page_and_type(t, old)
    t.event("new_baseptr", "pass", f"vCPU {vcpu} now runs on MFN {mfn:#x}", "new_guest_cr3",
            mfn=mfn)
    return 0


def _new_user_baseptr(xen: Xen, d: Domain, vcpu: int, mfn: int, t: Tracer) -> int:
    types = xen.type_system
    rules = ruleset(d)
    if not d.abi.has_user_baseptr:
        t.event("new_user_baseptr", "fail", "MMUEXT_NEW_USER_BASEPTR is for 64-bit guests only",
                "do_mmuext_op")
        return -int(Errno.EINVAL)
    v = d.vcpu(vcpu)
    if v is None:
        return types.fail(t, rules, "vcpu_missing", f"vCPU {vcpu} does not exist")
    old = v.guest_table_user
    if mfn:
        rc = _ref_mfn(xen, mfn, d, t, "new user base pointer")
        if rc:
            return rc
        rc = types.get_page_type(t, mfn, PGT_l4_page_table, d)
        if rc:
            types.put_page(mfn)
            return rc
    v.guest_table_user = mfn or None
    if old is not None:
        types.put_page_and_type(t, old)
    t.event("new_user_baseptr", "pass", f"user base pointer now {mfn:#x}", "do_mmuext_op")
    return 0


# ------------------------------------------------------------------ mmu_update
def mmu_update(xen: Xen, d: Domain, table: int, index: int, value: int, *,
               cmd: int = MMU_NORMAL_PT_UPDATE) -> Outcome:
    """`do_mmu_update` with one request: `ptr = (table << 12) + index * 8 | cmd`."""
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
        if cmd == MMU_PT_UPDATE_PRESERVE_AD:
            value |= m.read_entry(table, index) & (A | D)
        if pi.is_live_pagetable:
            level = pi.level
            rc = MOD_ENTRY[level](xen, d, t, table, index, value)
            return t.finish(rc)
        if pi.type_count and pi.type != PGT_writable_page:
            t.event("mmu_update", "fail", f"MFN {table:#x} is {describe_type(pi.type_info)}: "
                    "not a pagetable and not writable", "do_mmu_update", mfn=table)
            return t.finish(-int(Errno.EINVAL))
        # Not a live pagetable: a plain write under a temporary writable type.
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


def _changed(old: int, new: int) -> bool:
    """`l?e_has_changed(old, new, ~FASTPATH_FLAG_WHITELIST)`: frame, P, RW or cache bits."""
    return bool((old ^ new) & ~FASTPATH_FLAG_WHITELIST & 0xFFFF_FFFF_FFFF_FFFF)


def mod_l1_entry(xen: Xen, d: Domain, t: Tracer, table: int, index: int, new: int) -> int:
    types = xen.type_system
    m = xen.machine
    old = m.read_entry(table, index)
    rules = ruleset(d)
    if new & P:
        bad = rules.bad_flags(1, new, d, xen.profile)
        if bad:
            return types.fail(t, rules, "l1_flags", f"L1 entry {index} of MFN {table:#x}: bad L1 "
                           f"flags {flag_word_names(bad, 1)}", mfn=table, index=index, level=1)
        if old & P and not _changed(old, new):
            m.write_entry(table, index, d.abi.adjust_l1e(new))
            t.event("mod_l1_entry", "pass", "only flags that need no re-check changed (fast path)",
                    "mod_l1_entry", mfn=table, index=index, level=1)
            return 0
        t.outcome.counters.entries_checked += 1
        rc = types.get_page_from_l1e(t, new, d, d, table=table, index=index)
        if rc:
            return rc
        m.write_entry(table, index, d.abi.adjust_l1e(new))
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
        if old & P and not _changed(old, new):
            m.write_entry(table, index, new | adjust)
            t.event(f"mod_l{level}_entry", "pass", "fast path: same frame, only harmless "
                    "flags changed", f"mod_l{level}_entry", mfn=table, index=index, level=level)
            return 0
        t.outcome.counters.entries_checked += 1
        rc = types.get_page_from_lne(t, level, new, table, index, d)
        if rc:
            return rc
        m.write_entry(table, index, new | adjust)
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
def _pae_extended_cr3_policy(xen: Xen, d: Domain, t: Tracer) -> tuple[int, bool]:
    """The profile's policy for a guest enabling pae_extended_cr3, asked of `d`'s ABI
    (only 64-bit guests have one): (rc, whether the bit is ignored)."""
    policy = d.abi.pae_extended_cr3_policy(xen.profile)
    if policy == "refuse":
        return xen.type_system.fail(t, ruleset(d), "vm_assist_valid",
                           f"profile {xen.profile.name}: 64-bit guests may not enable "
                           "pae_extended_cr3"), False
    return 0, policy == "ignore"


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
def set_vcpu_context(xen: Xen, d: Domain, vcpu: int, cr3: int, vm_assist_value: int | None = None,
                     *, op: str = "XEN_DOMCTL_setvcpucontext") -> Outcome:
    """`arch_set_info_guest`: CR3 (encoded as the guest's ABI encodes it) and VM-assists."""
    t = Tracer(f"{op}(vcpu {vcpu}, cr3={cr3:#x})")
    t.outcome.counters.hypercalls += 1
    types = xen.type_system
    rules = ruleset(d)
    v = d.vcpu(vcpu)
    if v is None:
        return t.finish(types.fail(t, rules, "vcpu_missing", f"vCPU {vcpu} does not exist"))
    mfn = d.abi.mfn_of_cr3(cr3)
    if d.abi.extended_cr3_codec:
        t.event("cr3", "info", f"CR3 {cr3:#x} decodes to MFN {mfn:#x} (xen_cr3_to_pfn, "
                "extended-CR3 rotate)", "arch_set_info_guest")
    if v.is_initialised:
        return t.finish(_reload_same_cr3(xen, d, t, v, mfn))
    if vcpu == 0 and vm_assist_value is not None:
        rc = _load_context_vm_assist(xen, d, t, vm_assist_value)
        if rc:
            return t.finish(rc)
    return t.finish(_install_context_cr3(xen, d, t, v, mfn))


def _reload_same_cr3(xen: Xen, d: Domain, t: Tracer, v: Vcpu, mfn: int) -> int:
    """An initialised vCPU's context may only be reloaded with the CR3 it runs on."""
    if v.guest_table != mfn:
        return xen.type_system.fail(t, ruleset(d), "vcpu_cr3_mismatch",
                           f"vCPU {v.vcpu_id} is initialised with MFN {(v.guest_table or 0):#x}; "
                           f"a different CR3 ({mfn:#x}) cannot be loaded", mfn=mfn)
    t.event("vcpu", "pass", "same CR3: only the registers are reloaded", "arch_set_info_guest")
    return 0


def _load_context_vm_assist(xen: Xen, d: Domain, t: Tracer, value: int) -> int:
    """vCPU 0's first context sets `d->vm_assist` (after the ABI's field width and policy)."""
    width = d.abi.context_vm_assist_bits
    if value >> width:
        # The compat vcpu_guest_context's vm_assist is an unsigned long: 32 bits.
        truncated = value & ((1 << width) - 1)
        t.event("vm_assist", "info", f"a {d.abi.bitness}-bit guest's context holds vm_assist in "
                f"{width} bits: {value:#x} arrives as {truncated:#x}",
                "arch_set_info_guest (compat context)")
        value = truncated
    pae_bit = 1 << VMASST_TYPE_pae_extended_cr3
    if value & pae_bit:
        rc, ignored = _pae_extended_cr3_policy(xen, d, t)
        if rc:
            return rc
        if ignored:
            value &= ~pae_bit
            t.event("vm_assist", "info", f"profile {xen.profile.name}: pae_extended_cr3 "
                    "ignored for a 64-bit guest", "arch_set_info_guest")
    if value & ~d.abi.vm_assist_valid_mask:
        return xen.type_system.fail(t, ruleset(d), "vm_assist_valid",
                           f"vm_assist {value:#x} has bits invalid for a {d.abi.bitness}-bit "
                           "guest")
    d.vm_assist = value
    t.event("vm_assist", "info", "vCPU 0's first context sets the domain's VM-assists: "
            f"{', '.join(vm_assist_names(value)) or 'none'}", "arch_set_info_guest")
    return 0


def _install_context_cr3(xen: Xen, d: Domain, t: Tracer, v: Vcpu, mfn: int) -> int:
    """Take the top-level type on the CR3 frame and mark the vCPU initialised."""
    types = xen.type_system
    rc = _ref_mfn(xen, mfn, d, t, "CR3")
    if rc:
        return rc
    rc = types.get_page_type(t, mfn, d.abi.top_type, d)
    if rc:
        types.put_page(mfn)
        return rc
    old = v.guest_table
    v.guest_table = mfn
    v.is_initialised = True
    if old is not None:
        # Only reachable in the emulator (a guest's NEW_BASEPTR before its vCPU ran):
        # the new context replaces that base, whose references are dropped.
        types.put_page_and_type(t, old)
        t.event("vcpu", "info", f"the previous base MFN {old:#x} is released",
                "arch_set_info_guest", mfn=old)
    t.event("vcpu", "pass", f"vCPU {v.vcpu_id} initialised with CR3 MFN {mfn:#x}",
            "arch_set_info_guest", mfn=mfn)
    return 0


def vcpu_op_initialise(xen: Xen, d: Domain, vcpu: int, cr3: int) -> Outcome:
    """`VCPUOP_initialise` from the guest itself: -EEXIST on an initialised vCPU."""
    v = d.vcpu(vcpu)
    if v is not None and v.is_initialised:
        t = Tracer(f"VCPUOP_initialise(vcpu {vcpu}, cr3={cr3:#x})")
        t.outcome.counters.hypercalls += 1
        t.event("vcpu", "fail", f"vCPU {vcpu} is already initialised", "default_initialise_vcpu")
        return t.finish(-int(Errno.EEXIST))
    return set_vcpu_context(xen, d, vcpu, cr3, None, op="VCPUOP_initialise")


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


__all__ = ["mmu_update", "mmuext_op", "set_vcpu_context", "update_va_mapping", "vcpu_op_initialise",
           "vcpu_reset", "vm_assist"]
