# SPDX-License-Identifier: MIT
"""`do_mmuext_op` as a table: one entry per command number (public/xen.h), each with its
handler, its name, which guests may use it and the Xen code it models.

Modelled from xen/arch/x86/mm.c `do_mmuext_op` (RELEASE-4.17.7 and RELEASE-4.20.4). A command
number without an entry is `-ENOSYS`, as Xen's `default:` case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvlab.trace import Errno, Outcome, Tracer
from pvlab.xen.domain import Domain, VMASST_TYPE_m2p_strict
from pvlab.xen.hcall_base import _ref_mfn, new_guest_cr3
from pvlab.xen.page_info import LEVEL_TYPE, PGT_l4_page_table, PGT_pinned, PGT_writable_page
from pvlab.xen.rules import ruleset
from pvlab.xen.typesys import describe_type

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

#: L4 slot of RO_MPT_VIRT_START (the read-only M2P a 64-bit guest reads).
RO_MPT_L4_SLOT = 256
#: `MMUEXT_SET_LDT`: at most 8192 descriptors.
LDT_MAX_ENTS = 8192


@dataclass(frozen=True)
class MmuextArgs:
    """One `struct mmuext_op`: `arg1` (an MFN or a linear address) and `arg2` (an entry
    count or a source MFN), plus the vCPU issuing it (pvlab runs every vCPU of a guest)."""

    cmd: int
    mfn: int = 0
    vcpu: int = 0
    linear_addr: int = 0
    nr_ents: int = 0
    src_mfn: int = 0


Handler = Callable[["Xen", Domain, MmuextArgs, Tracer], int]


@dataclass(frozen=True)
class MmuextCommand:
    number: int
    name: str
    handler: Handler
    guests: str  # "all", "pv64" (a 32-bit guest gets the handler's own answer) or "pv32"
    models: str
    takes_mfn: bool = True


def _einval(t: Tracer, check: str, why: str, fn: str, mfn: int | None = None) -> int:
    t.event(check, "fail", why, fn, mfn=mfn)
    return -int(Errno.EINVAL)


# ------------------------------------------------------------------ pin / unpin
def _pin(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ts = xen.type_system
    mfn = op.mfn
    level = op.cmd + 1
    name = COMMANDS[op.cmd].name
    if d.abi.pin_does_nothing(level):
        t.event("pin", "info", "MMUEXT_PIN_L4_TABLE from a 32-bit PV guest does nothing "
                "and returns 0", "do_mmuext_op", mfn=mfn)
        return 0
    rc = _ref_mfn(xen, mfn, d, t, name)
    if rc:
        return rc
    rc = ts.get_page_type(t, mfn, LEVEL_TYPE[level], d)
    if rc:
        ts.put_page(mfn)
        t.event("pin", "fail", f"error {Errno(-rc).name} while pinning MFN {mfn:#x}",
                "do_mmuext_op", mfn=mfn, level=level)
        return rc
    pi = xen.machine.page(mfn)
    if pi.type_info & PGT_pinned:
        ts.put_page_and_type(t, mfn)
        return ts.fail(t, ruleset(d), "already_pinned", f"MFN {mfn:#x} already pinned", mfn=mfn)
    pi.type_info |= PGT_pinned
    t.event("pin", "pass", f"MFN {mfn:#x} pinned as L{level} (type count {pi.type_count})",
            "do_mmuext_op", mfn=mfn, level=level)
    return 0


def _unpin(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ts = xen.type_system
    mfn = op.mfn
    rc = _ref_mfn(xen, mfn, d, t, "MMUEXT_UNPIN_TABLE")
    if rc:
        return rc
    pi = xen.machine.page(mfn)
    if not pi.type_info & PGT_pinned:
        ts.put_page(mfn)
        return ts.fail(t, ruleset(d), "not_pinned", f"MFN {mfn:#x} not pinned", mfn=mfn)
    pi.type_info &= ~PGT_pinned
    ts.put_page_and_type(t, mfn)
    ts.put_page(mfn)
    t.event("unpin", "pass", f"MFN {mfn:#x} unpinned; now {describe_type(pi.type_info)}",
            "do_mmuext_op", mfn=mfn)
    return 0


# ------------------------------------------------------------------ base pointers
def _new_baseptr(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    rc = new_guest_cr3(xen, d, op.vcpu, op.mfn, t)
    if rc == 0 and d.abi.has_user_baseptr:  # a 64-bit guest's L4
        fill_ro_mpt(xen, d, op.mfn, t)
    return rc


def _new_user_baseptr(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ts = xen.type_system
    rules = ruleset(d)
    mfn = op.mfn
    if not d.abi.has_user_baseptr:
        t.event("new_user_baseptr", "fail", "MMUEXT_NEW_USER_BASEPTR is for 64-bit guests only",
                "do_mmuext_op")
        return -int(Errno.EINVAL)
    v = d.vcpu(op.vcpu)
    if v is None:
        return ts.fail(t, rules, "vcpu_missing", f"vCPU {op.vcpu} does not exist")
    old = v.guest_table_user
    if old == (mfn or None):
        t.event("new_user_baseptr", "pass", f"MFN {mfn:#x} is already the user base pointer",
                "do_mmuext_op")
        return 0
    if mfn:
        rc = _ref_mfn(xen, mfn, d, t, "new user base pointer")
        if rc:
            return rc
        rc = ts.get_page_type(t, mfn, PGT_l4_page_table, d)
        if rc:
            ts.put_page(mfn)
            return rc
        if d.vm_assist >> VMASST_TYPE_m2p_strict & 1:
            zap_ro_mpt(xen, mfn, t)
    v.guest_table_user = mfn or None
    if old is not None:
        ts.put_page_and_type(t, old)
    t.event("new_user_baseptr", "pass", f"user base pointer now {mfn:#x}", "do_mmuext_op")
    return 0


def fill_ro_mpt(xen: Xen, d: Domain, mfn: int, t: Tracer) -> None:
    """`fill_ro_mpt`: without `m2p_strict`, an installed kernel L4 gets the read-only M2P
    (slot 256) if that slot is empty (`new_guest_cr3`, `arch_set_info_guest`)."""
    if d.vm_assist >> VMASST_TYPE_m2p_strict & 1:
        return
    m = xen.machine
    if m.read_entry(mfn, RO_MPT_L4_SLOT):
        return
    m.write_entry(mfn, RO_MPT_L4_SLOT, xen.ro_mpt_l4e())
    t.event("ro_mpt", "info", f"L4 slot {RO_MPT_L4_SLOT} of MFN {mfn:#x} filled with the "
            "read-only M2P (m2p_strict is off)", "fill_ro_mpt", mfn=mfn, index=RO_MPT_L4_SLOT)


def zap_ro_mpt(xen: Xen, mfn: int, t: Tracer) -> None:
    """`zap_ro_mpt`: with `m2p_strict`, a user L4 loses the read-only M2P (slot 256)."""
    xen.machine.write_entry(mfn, RO_MPT_L4_SLOT, 0)
    t.event("ro_mpt", "info", f"L4 slot {RO_MPT_L4_SLOT} of MFN {mfn:#x} cleared: user mode "
            "may not read the M2P (m2p_strict)", "zap_ro_mpt", mfn=mfn, index=RO_MPT_L4_SLOT)


# ------------------------------------------------------------------ TLB and cache
def _tlb(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    name = COMMANDS[op.cmd].name
    if op.cmd in (MMUEXT_TLB_FLUSH_MULTI, MMUEXT_INVLPG_MULTI):
        # arg2 points to a vCPU bitmap in guest memory (vcpumask_to_pcpumask); an
        # unreadable one is EINVAL. pvlab models no guest memory: the bitmap is taken as
        # readable (real Xen: the probe's NULL arg2 reads its page 0, which is mapped).
        t.event("tlb_flush", "pass", f"{name}: the vCPU bitmap at arg2 is read "
                "(vcpumask_to_pcpumask), those vCPUs' CPUs are flushed", "do_mmuext_op")
        return 0
    t.event("tlb_flush", "pass", f"{name} accepted (no effect on types)", "do_mmuext_op")
    return 0


def _flush_cache(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    name = COMMANDS[op.cmd].name
    if not d.privileged:  # cache_flush_permitted: the domain holds I/O memory or ports
        if op.cmd == MMUEXT_FLUSH_CACHE_GLOBAL:
            e = xen.profile.flush_cache_global_denied
        else:
            e = Errno.EACCES
        t.event("cache_flush", "fail", f"{name}: {d.label} has no I/O resources, so no "
                f"cache-flush permission ({e.name})", "do_mmuext_op (cache_flush_permitted)")
        return -int(e)
    t.event("cache_flush", "pass", f"{name}: caches written back and invalidated (wbinvd)",
            "do_mmuext_op")
    return 0


def _set_ldt(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ents, ptr = op.nr_ents, op.linear_addr
    if ents > LDT_MAX_ENTS or (ents and (ptr & 0xFFF or not _addr_ok(ptr))):
        return _einval(t, "set_ldt", f"Bad args to SET_LDT: ptr={ptr:#x}, ents={ents:#x}",
                       "do_mmuext_op (MMUEXT_SET_LDT)")
    t.event("set_ldt", "pass", f"LDT now {ents} entries" + (f" at {ptr:#x}" if ents else ""),
            "do_mmuext_op (MMUEXT_SET_LDT)")
    return 0


def _addr_ok(va: int) -> bool:
    """`__addr_ok`: below the hypervisor's part of the address space."""
    return va < (1 << 47) or 0xFFFF_8800_0000_0000 <= va < (1 << 64)


def _ram_rw(xen: Xen, d: Domain, mfn: int) -> bool:
    """`get_page_from_gfn(pg_owner, mfn, P2M_ALLOC)` with `p2m_ram_rw`: the domain's own RAM."""
    return xen.type_system.get_page(mfn, d)


def _clear_page(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ts = xen.type_system
    mfn = op.mfn
    if not _ram_rw(xen, d, mfn):
        return _einval(t, "clear_page", f"Error clearing mfn {mfn:#x}: not {d.label}'s RAM",
                       "do_mmuext_op (MMUEXT_CLEAR_PAGE)", mfn)
    if ts.get_page_type(t, mfn, PGT_writable_page, d, quiet_conflict=True):
        ts.put_page(mfn)
        return _einval(t, "clear_page", f"Error clearing mfn {mfn:#x}: it is "
                       f"{describe_type(xen.machine.page(mfn).type_info)}, not writable",
                       "do_mmuext_op (MMUEXT_CLEAR_PAGE)", mfn)
    xen.machine.clear_frame(mfn)
    ts.put_page_and_type(t, mfn)
    t.event("clear_page", "pass", f"MFN {mfn:#x} zeroed", "do_mmuext_op (MMUEXT_CLEAR_PAGE)",
            mfn=mfn)
    return 0


def _copy_page(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    ts = xen.type_system
    m = xen.machine
    dst, src = op.mfn, op.src_mfn
    fn = "do_mmuext_op (MMUEXT_COPY_PAGE)"
    if not _ram_rw(xen, d, src):
        return _einval(t, "copy_page", f"Error copying from mfn {src:#x}: not {d.label}'s RAM",
                       fn, src)
    if not _ram_rw(xen, d, dst):
        ts.put_page(src)
        return _einval(t, "copy_page", f"Error copying to mfn {dst:#x}: not {d.label}'s RAM",
                       fn, dst)
    if ts.get_page_type(t, dst, PGT_writable_page, d, quiet_conflict=True):
        ts.put_page(src)
        ts.put_page(dst)
        return _einval(t, "copy_page", f"Error copying to mfn {dst:#x}: it is "
                       f"{describe_type(m.page(dst).type_info)}, not writable", fn, dst)
    m.clear_frame(dst)
    for i, e in list(m.entries(src)):
        m.write_entry(dst, i, e)
    ts.put_page_and_type(t, dst)
    ts.put_page(src)
    t.event("copy_page", "pass", f"MFN {src:#x} copied to MFN {dst:#x}", fn, mfn=dst)
    return 0


def _superpage(xen: Xen, d: Domain, op: MmuextArgs, t: Tracer) -> int:
    t.event("mmuext", "fail", "PV superpages were removed in Xen 4.10 (commit 56fff3e5e9)",
            "do_mmuext_op")
    return -int(Errno.EOPNOTSUPP)


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
MMUEXT_FLUSH_CACHE = 12
MMUEXT_SET_LDT = 13
MMUEXT_NEW_USER_BASEPTR = 15
MMUEXT_CLEAR_PAGE = 16
MMUEXT_COPY_PAGE = 17
MMUEXT_FLUSH_CACHE_GLOBAL = 18
MMUEXT_MARK_SUPER = 19
MMUEXT_UNMARK_SUPER = 20

_PIN = "pin_page: get_page_and_type_from_mfn, then set PGT_pinned"
COMMANDS: dict[int, MmuextCommand] = {c.number: c for c in (
    MmuextCommand(0, "MMUEXT_PIN_L1_TABLE", _pin, "all", _PIN),
    MmuextCommand(1, "MMUEXT_PIN_L2_TABLE", _pin, "all", _PIN),
    MmuextCommand(2, "MMUEXT_PIN_L3_TABLE", _pin, "all", _PIN),
    MmuextCommand(3, "MMUEXT_PIN_L4_TABLE", _pin, "all",
                  _PIN + "; a 32-bit guest's request is a no-op returning 0"),
    MmuextCommand(4, "MMUEXT_UNPIN_TABLE", _unpin, "all",
                  "clear PGT_pinned, put_page_and_type"),
    MmuextCommand(5, "MMUEXT_NEW_BASEPTR", _new_baseptr, "all",
                  "new_guest_cr3; fill_ro_mpt without m2p_strict (64-bit)"),
    MmuextCommand(6, "MMUEXT_TLB_FLUSH_LOCAL", _tlb, "all", "flush_tlb_local", False),
    MmuextCommand(7, "MMUEXT_INVLPG_LOCAL", _tlb, "all", "paging_invlpg", False),
    MmuextCommand(8, "MMUEXT_TLB_FLUSH_MULTI", _tlb, "all",
                  "vcpumask_to_pcpumask (arg2), flush_tlb_mask", False),
    MmuextCommand(9, "MMUEXT_INVLPG_MULTI", _tlb, "all",
                  "vcpumask_to_pcpumask (arg2), flush_tlb_one_mask", False),
    MmuextCommand(10, "MMUEXT_TLB_FLUSH_ALL", _tlb, "all", "flush_tlb_mask", False),
    MmuextCommand(11, "MMUEXT_INVLPG_ALL", _tlb, "all", "flush_tlb_one_mask", False),
    MmuextCommand(12, "MMUEXT_FLUSH_CACHE", _flush_cache, "all",
                  "cache_flush_permitted, wbinvd", False),
    MmuextCommand(13, "MMUEXT_SET_LDT", _set_ldt, "all",
                  "ldt_ents <= 8192, page-aligned base, __addr_ok; load_LDT", False),
    MmuextCommand(15, "MMUEXT_NEW_USER_BASEPTR", _new_user_baseptr, "pv64",
                  "guest_table_user; zap_ro_mpt with m2p_strict"),
    MmuextCommand(16, "MMUEXT_CLEAR_PAGE", _clear_page, "all",
                  "get_page_from_gfn + get_page_type(PGT_writable_page), clear_domain_page"),
    MmuextCommand(17, "MMUEXT_COPY_PAGE", _copy_page, "all",
                  "source: get_page_from_gfn; destination: + PGT_writable_page"),
    MmuextCommand(18, "MMUEXT_FLUSH_CACHE_GLOBAL", _flush_cache, "all",
                  "cache_flush_permitted, flush_mask(FLUSH_CACHE)", False),
    MmuextCommand(19, "MMUEXT_MARK_SUPER", _superpage, "all",
                  "removed with PV superpages (4.10): -EOPNOTSUPP"),
    MmuextCommand(20, "MMUEXT_UNMARK_SUPER", _superpage, "all",
                  "removed with PV superpages (4.10): -EOPNOTSUPP"),
)}


def command_name(cmd: int) -> str:
    c = COMMANDS.get(cmd)
    return c.name if c else f"mmuext cmd {cmd}"


def do_mmuext_op(xen: Xen, d: Domain, op: MmuextArgs) -> Outcome:
    """`do_mmuext_op` for one op, on behalf of (or as) domain `d`."""
    c = COMMANDS.get(op.cmd)
    name = command_name(op.cmd)
    t = Tracer(f"{name}({op.mfn:#x})" if c is None or c.takes_mfn else name)
    t.outcome.counters.hypercalls += 1
    if c is None:
        t.event("mmuext", "fail", f"unknown mmuext command {op.cmd}", "do_mmuext_op")
        return t.finish(-int(Errno.ENOSYS))
    return t.finish(c.handler(xen, d, op, t))
