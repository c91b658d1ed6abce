# SPDX-License-Identifier: MIT
"""The built-in scenario operations, each one registered step (see `registry`).

Every operation is defined here once: its argument class, cross-field checks, how it
runs, its summary, how `pvlab verify` replays it (or why not) and the level it tells a
picture about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvlab.scenario.domain_steps import domid_of
from pvlab.scenario.params import FrameRef, Where, param
from pvlab.scenario.registry import SKIP_OTHER_DOMAIN, StepArgs, step
from pvlab.scenario.runner import entry_value
from pvlab.trace import Outcome, Tracer
from pvlab.verify.replay import (
    AUX_FRAME,
    GUEST_ISSUES,
    OP_MACHPHYS,
    OP_MMU_UPDATE,
    OP_MMU_UPDATE_AD,
    OP_MMUEXT,
    OP_NEW_USER_BASEPTR,
    OP_PIN,
    OP_READ,
    OP_TLB_FLUSH,
    OP_UNPIN,
    OP_UPDATE_VA,
    OP_VCPU_INIT,
    OP_VCPU_OP_INIT,
    OP_VCPU_RESET,
    OP_VM_ASSIST,
    OP_WRITE,
    SKIP_AGENT_VCPU0,
    SKIP_BASEPTR,
    SKIP_BUILD_LACKS,
    SKIP_CACHE_FLUSH,
    SKIP_COMPAT_ASSIST,
    SKIP_GUEST_ONLY,
    SKIP_OWN_TABLES,
    SKIP_OWN_VCPU,
    SKIP_PAGE_INFO,
    SKIP_RAW_MFN,
    SKIP_UVMF,
    SKIP_VCPU_OP,
    ScenarioPlan,
    StepPlan,
    addr_ok,
    assist_mask,
    assist_type,
    entry_plan,
    raw_mfn,
)
from pvlab.x86.flags import flag_names
from pvlab.xen import hypercalls
from pvlab.xen.abi import abi_for
from pvlab.xen.foreign import mmu_update_foreign, mmuext_foreign, update_va_mapping_foreign
from pvlab.xen.vmassist import vm_assist_number

if TYPE_CHECKING:
    from pvlab.scenario.runner import ScenarioRun
    from pvlab.xen.abi import PV64Abi

_ENTRY_ADDR = (1 << 40) - 1


# ------------------------------------------------------------------ shared argument shapes
@dataclass(frozen=True, kw_only=True)
class EntryArgs(StepArgs):
    """An entry value: a raw `value`, or a target (`to` a frame, or `mfn`) plus `flags`."""

    to: FrameRef | None = param("frame", None, help="the frame the entry points at")
    mfn: int | None = param("int", None, help="the machine frame the entry points at")
    flags: int | None = param("flags", None, help="entry flags, e.g. [P, RW]")
    value: int | None = param("int", None, help="the raw 64-bit entry")

    def entry(self, run: ScenarioRun) -> int:
        return entry_value(run, self)


def _one_entry_form(at: Where, raw: Mapping[str, Any]) -> None:
    if "value" in raw and ({"to", "mfn"} & raw.keys()):
        raise at.err("give either value or to/mfn + flags, not both",
                     "remove value, or remove to/mfn")
    if "to" in raw and "mfn" in raw:
        raise at.err("give either to (a frame name) or mfn (a number)", "remove one of them")


def _guest_only(plan: ScenarioPlan, i: int, op: str) -> StepPlan | None:
    """In toolstack mode the probe is not the guest: a guest-only step is skipped (the guest,
    dom0 itself or the agent domU, issues it)."""
    return StepPlan(i, op, skip=SKIP_GUEST_ONLY) if plan.mode not in GUEST_ISSUES else None


def _frame(plan: ScenarioPlan, a: Mapping[str, Any], key: str = "frame") -> int:
    return plan.frame_index(str(a[key]))


# ------------------------------------------------------------------ pin / unpin
@dataclass(frozen=True, kw_only=True)
class PinArgs(StepArgs):
    frame: FrameRef = param("frame", help="the table to pin")
    level: int = param("int", lo=1, hi=4, help="its level (MMUEXT_PIN_L<level>_TABLE)")
    foreign: str | int | None = param("domain", None, help="foreigndom: the domain whose "
                                      "table it is (a toolstack pinning a guest's tables)")


@step("pin", PinArgs, summary="MMUEXT_PIN_L{1..4}_TABLE: take a type reference and pin",
      replay=lambda plan, i, a: StepPlan(i, "pin", OP_PIN, _frame(plan, a), int(a["level"])),
      level_hint=lambda a, abi: (a.frame, a.level), form=("frame", "level"))
def _pin(run: ScenarioRun, a: PinArgs) -> Outcome:
    if a.foreign is not None:
        return mmuext_foreign(run.xen, run.guest.domain, a.level - 1, run.mfn(a.frame),
                              foreigndom=domid_of(run, a.foreign))
    return run.guest.pin(run.mfn(a.frame), a.level)


@dataclass(frozen=True, kw_only=True)
class FrameArgs(StepArgs):
    frame: FrameRef = param("frame", help="the frame")
    foreign: str | int | None = param("domain", None, help="foreigndom: the domain whose "
                                      "table it is")


@step("unpin", FrameArgs, summary="MMUEXT_UNPIN_TABLE: drop the pin's type reference",
      replay=lambda plan, i, a: StepPlan(i, "unpin", OP_UNPIN, _frame(plan, a)),
      form=("frame",))
def _unpin(run: ScenarioRun, a: FrameArgs) -> Outcome:
    if a.foreign is not None:
        return mmuext_foreign(run.xen, run.guest.domain, hypercalls.MMUEXT_UNPIN_TABLE,
                              run.mfn(a.frame), foreigndom=domid_of(run, a.foreign))
    return run.guest.unpin(run.mfn(a.frame))


# ------------------------------------------------------------------ base pointers
@dataclass(frozen=True, kw_only=True)
class BaseptrArgs(StepArgs):
    frame: FrameRef = param("frame", help="the new top-level table")
    vcpu: int = param("int", 0, help="the vCPU")


def _replay_new_baseptr(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    return StepPlan(i, "new_baseptr", skip=SKIP_BASEPTR if plan.mode in GUEST_ISSUES
                    else SKIP_GUEST_ONLY)


@step("new_baseptr", BaseptrArgs, summary="MMUEXT_NEW_BASEPTR: load a new top-level table",
      replay=_replay_new_baseptr, guest_only=True,
      level_hint=lambda a, abi: (a.frame, abi.top_level))
def _new_baseptr(run: ScenarioRun, a: BaseptrArgs) -> Outcome:
    return run.guest.new_baseptr(run.mfn(a.frame), vcpu=a.vcpu)


def _replay_new_user_baseptr(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    op = "new_user_baseptr"
    skip = _guest_only(plan, i, op)
    if skip:
        return skip
    frame = a.get("frame", 0)
    if frame in (0, None, "0"):
        return StepPlan(i, op, OP_NEW_USER_BASEPTR, target=None)
    return StepPlan(i, op, OP_NEW_USER_BASEPTR, plan.frame_index(str(frame)), target=1)


@step("new_user_baseptr", BaseptrArgs,
      summary="MMUEXT_NEW_USER_BASEPTR: load the user-mode L4 (64-bit guests)",
      replay=_replay_new_user_baseptr, guest_only=True, level_hint=lambda a, abi: (a.frame, 4))
def _new_user_baseptr(run: ScenarioRun, a: BaseptrArgs) -> Outcome:
    return run.guest.new_user_baseptr(run.mfn(a.frame), vcpu=a.vcpu)


@dataclass(frozen=True, kw_only=True)
class NoArgs(StepArgs):
    pass


@step("tlb_flush", NoArgs, summary="MMUEXT_TLB_FLUSH_LOCAL (no effect on types)",
      replay=lambda plan, i, a: _guest_only(plan, i, "tlb_flush") or StepPlan(
          i, "tlb_flush", OP_TLB_FLUSH), guest_only=True, stateless=True)
def _tlb_flush(run: ScenarioRun, a: NoArgs) -> Outcome:
    return run.guest.tlb_flush()


@dataclass(frozen=True, kw_only=True)
class MmuextArgs(StepArgs):
    cmd: int = param("int", help="the mmuext command number (public/xen.h)")
    frame: FrameRef | None = param("frame", None, help="arg1 as a frame (pin, clear, copy...)")
    vcpu: int = param("int", 0, help="the vCPU")
    va: int = param("int", 0, help="arg1 as a linear address (INVLPG, SET_LDT)")
    ents: int = param("int", 0, help="arg2 as a count (SET_LDT's entries)")
    src: FrameRef | None = param("frame", None, help="arg2 as a frame (COPY_PAGE's source)")


def _replay_mmuext(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    skip = _guest_only(plan, i, "mmuext")
    if skip:
        return skip
    if int(a["cmd"]) in (12, 18) and not plan.privileged and plan.mode == "dom0":
        return StepPlan(i, "mmuext", skip=SKIP_CACHE_FLUSH)
    if (int(a["cmd"]) == 18 and not plan.privileged
            and "flush_cache_global_denied" in plan.lacks):
        return StepPlan(i, "mmuext", skip=SKIP_BUILD_LACKS.format(
            what="MMUEXT_FLUSH_CACHE_GLOBAL's answer, commit bbaea9878b"))
    aux = int(a.get("ents", 0))
    if "src" in a:
        aux = AUX_FRAME | _frame(plan, a, "src")
    if "frame" in a:
        return StepPlan(i, "mmuext", OP_MMUEXT, _frame(plan, a), int(a["cmd"]), target=1,
                        aux=aux)
    return StepPlan(i, "mmuext", OP_MMUEXT, arg=int(a["cmd"]), target=None,
                    value=int(a.get("va", 0)), aux=aux)


@step("mmuext", MmuextArgs, summary="any mmuext_op command by number (pvlab/xen/mmuext.py)",
      replay=_replay_mmuext, guest_only=True)
def _mmuext(run: ScenarioRun, a: MmuextArgs) -> Outcome:
    return hypercalls.mmuext_op(run.xen, run.guest.domain, a.cmd,
                                run.mfn(a.frame) if a.frame is not None else 0, vcpu=a.vcpu,
                                linear_addr=a.va, nr_ents=a.ents,
                                src_mfn=run.mfn(a.src) if a.src is not None else 0)


# ------------------------------------------------------------------ entries
@dataclass(frozen=True, kw_only=True)
class TableEntryArgs(EntryArgs):
    table: FrameRef = param("frame", help="the table written")
    index: int = param("int", lo=0, hi=511, help="the entry's slot")


@dataclass(frozen=True, kw_only=True)
class MmuUpdateArgs(TableEntryArgs):
    preserve_ad: bool = param("bool", False, help="MMU_PT_UPDATE_PRESERVE_AD")
    foreign: str | int | None = param("domain", None, help="foreigndom: the owner of the "
                                      "frame mapped (a domain, DOMID_IO, DOMID_XEN)")


def _replay_entry_write(op: str, code: int) -> Any:
    def replay(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
        target, value = entry_plan(plan, a)
        raw = raw_mfn(plan, target, value)
        if raw is not None:
            return StepPlan(i, op, skip=SKIP_RAW_MFN.format(mfn=raw))
        # MMU_PT_UPDATE_PRESERVE_AD is its own request type (ptr's low bits = 2)
        how = OP_MMU_UPDATE_AD if op == "mmu_update" and a.get("preserve_ad") else code
        return StepPlan(i, op, how, _frame(plan, a, "table"), int(a["index"]), target, value)
    return replay


@step("mmu_update", MmuUpdateArgs, summary="mmu_update (MMU_NORMAL_PT_UPDATE) of one entry",
      validate=_one_entry_form, replay=_replay_entry_write("mmu_update", OP_MMU_UPDATE))
def _mmu_update(run: ScenarioRun, a: MmuUpdateArgs) -> Outcome:
    cmd = (hypercalls.MMU_PT_UPDATE_PRESERVE_AD if a.preserve_ad
           else hypercalls.MMU_NORMAL_PT_UPDATE)
    if a.foreign is not None:
        return mmu_update_foreign(run.xen, run.guest.domain, run.mfn(a.table), a.index,
                                  a.entry(run), foreigndom=domid_of(run, a.foreign), cmd=cmd)
    return hypercalls.mmu_update(run.xen, run.guest.domain, run.mfn(a.table), a.index,
                                 a.entry(run), cmd=cmd)


@step("write", TableEntryArgs, summary="a direct guest write (no hypercall, no check)",
      validate=_one_entry_form, replay=_replay_entry_write("write", OP_WRITE))
def _write(run: ScenarioRun, a: TableEntryArgs) -> Outcome:
    mfn = run.mfn(a.table)
    t = Tracer(f"write {a.table}[{a.index}]")
    pi = run.xen.machine.page(mfn)
    if pi.owner != run.guest.domid:
        t.event("write", "fail", f"MFN {mfn:#x} is not the guest's frame", "guest write",
                mfn=mfn)
        return t.finish(-14)
    if pi.is_live_pagetable:
        t.event("write", "fail", f"MFN {mfn:#x} is a live L{pi.level} pagetable, mapped "
                "read-only: a direct write faults (use mmu_update)", "guest write (#PF)",
                mfn=mfn, index=a.index)
        return t.finish(-14)
    run.xen.machine.write_entry(mfn, a.index, a.entry(run))
    t.event("write", "pass", f"entry {a.index} of MFN {mfn:#x} written directly",
            "guest write", mfn=mfn, index=a.index)
    return t.finish(0)


@dataclass(frozen=True, kw_only=True)
class MachphysArgs(StepArgs):
    frame: FrameRef = param("frame", help="the machine frame")
    pfn: int = param("int", help="the guest frame number the M2P records")


@step("machphys_update", MachphysArgs, summary="mmu_update (MMU_MACHPHYS_UPDATE): set M2P",
      guest_only=True,
      replay=lambda plan, i, a: _guest_only(plan, i, "machphys_update") or StepPlan(
          i, "machphys_update", OP_MACHPHYS, _frame(plan, a), value=int(a["pfn"])))
def _machphys_update(run: ScenarioRun, a: MachphysArgs) -> Outcome:
    return run.guest.machphys_update(run.mfn(a.frame), a.pfn)


@dataclass(frozen=True, kw_only=True)
class UpdateVaArgs(EntryArgs):
    va: int = param("int", help="the virtual address whose L1 entry is rewritten")
    vcpu: int = param("int", 0, help="the vCPU whose tables are walked")
    uvmf: int = param("int", 0, help="the flags word: UVMF_TLB_FLUSH 1 / UVMF_INVLPG 2, | 4 "
                      "for all CPUs (any other target is a vCPU-bitmap pointer)")


@dataclass(frozen=True, kw_only=True)
class UpdateVaOtherArgs(UpdateVaArgs):
    domain: str | int = param("domain", help="the page owner (the hypercall's domid, "
                              "`get_pg_owner`): a domain named under domains:, other (the "
                              "helper domain of {owner: other} frames), self (DOMID_SELF), "
                              "DOMID_IO, DOMID_XEN or a domain id number")


def _replay_update_va(op: str) -> Any:
    def replay(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
        va = int(a["va"]) & ((1 << 64) - 1)
        if plan.bitness == 32:
            va &= 0xFFFF_FFFF
        if plan.mode not in GUEST_ISSUES or addr_ok(va):
            return StepPlan(i, op, skip=(SKIP_OWN_TABLES if plan.mode in GUEST_ISSUES
                                         else SKIP_GUEST_ONLY))
        if a.get("uvmf"):
            return StepPlan(i, op, skip=SKIP_UVMF)
        target, value = entry_plan(plan, a)
        dom = str(a.get("domain", "")).lower()  # as written: other, self, DOMID_SELF
        if op != "update_va_mapping" and dom not in ("other", "self", "domid_self"):
            return StepPlan(i, op, skip=SKIP_OTHER_DOMAIN)  # a named domain, DOMID_IO, ...
        sel = 0 if op == "update_va_mapping" else (1 if dom == "other" else 2)
        return StepPlan(i, op, OP_UPDATE_VA, sel, va & 0xFFFF_FFFF, target, value,
                        aux=va >> 32)
    return replay


@step("update_va_mapping", UpdateVaArgs, summary="HYPERVISOR_update_va_mapping",
      validate=_one_entry_form, guest_only=True,
      replay=_replay_update_va("update_va_mapping"))
def _update_va_mapping(run: ScenarioRun, a: UpdateVaArgs) -> Outcome:
    return hypercalls.update_va_mapping(run.xen, run.guest.domain, a.va, a.entry(run),
                                        vcpu=a.vcpu, flags=a.uvmf)


@step("update_va_mapping_otherdomain", UpdateVaOtherArgs,
      summary="HYPERVISOR_update_va_mapping_otherdomain", validate=_one_entry_form,
      guest_only=True, replay=_replay_update_va("update_va_mapping_otherdomain"))
def _update_va_mapping_otherdomain(run: ScenarioRun, a: UpdateVaOtherArgs) -> Outcome:
    """`do_update_va_mapping_otherdomain`: `get_pg_owner(domid)` (-ESRCH for an unknown
    domain, DOMID_XEN, or the caller's own id), then `__do_update_va_mapping` with that
    page owner (`xsm_update_va_mapping`, XSM_TARGET: -EPERM unless the caller is the owner
    or a control domain)."""
    return update_va_mapping_foreign(run.xen, run.guest.domain, a.va, a.entry(run),
                                     domid=domid_of(run, a.domain), vcpu=a.vcpu,
                                     flags=a.uvmf)


# ------------------------------------------------------------------ multicall
@dataclass(frozen=True, kw_only=True)
class MulticallArgs(StepArgs):
    calls: tuple[Any, ...] = param("calls", help="the batched operations, each a step with "
                                   "its own optional expect")


@step("multicall", MulticallArgs, summary="HYPERVISOR_multicall: each call its own result",
      no_replay="planned by pvlab.verify.plan (one HYPERVISOR_multicall)")
def _multicall(run: ScenarioRun, a: MulticallArgs) -> Outcome:
    """`do_multicall`: every entry runs in order, whatever the previous one returned; each
    gets its own result (`multicall_entry.result`), the batch itself returns 0."""
    from pvlab.scenario.runner import perform

    t = Tracer(f"multicall({len(a.calls)} calls)")
    t.outcome.counters.hypercalls += 1
    for call in a.calls:
        out = perform(run, call)
        t.outcome.calls.append(out)
        t.outcome.counters.add(out.counters)
        t.event("multicall", "info", f"call {call.number}: {call.describe()} -> {out.result}",
                "do_multicall (arch_do_multicall_call)")
        if out.crashed:
            t.outcome.crash = out.crash
            break
    return t.finish(0)


# ------------------------------------------------------------------ VM-assists
@dataclass(frozen=True, kw_only=True)
class VmAssistArgs(StepArgs):
    enable: str | int | None = param("assist", None, help="the VM-assist to enable")
    disable: str | int | None = param("assist", None, help="the VM-assist to disable")
    cmd: int | None = param("int", None, help="raw form: the command number")
    type: str | int | None = param("assist", None, help="raw form: the VM-assist")


def _one_assist_form(at: Where, raw: Mapping[str, Any]) -> None:
    if {"cmd", "type"} & raw.keys():
        if set(raw) != {"cmd", "type"}:
            raise at.err("the raw form needs exactly cmd: N and type: NAME|N",
                         "write vm_assist: {cmd: 2, type: pae_extended_cr3}")
    elif len(raw) != 1:
        raise at.err("give exactly one of enable: NAME or disable: NAME",
                     "write vm_assist: {enable: pae_extended_cr3}")


def _replay_vm_assist(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    skip = _guest_only(plan, i, "vm_assist")
    if skip:
        return skip
    if "cmd" in a:
        return StepPlan(i, "vm_assist", OP_VM_ASSIST, arg=int(a["cmd"]),
                        value=assist_type(a["type"]))
    cmd = 0 if "enable" in a else 1
    return StepPlan(i, "vm_assist", OP_VM_ASSIST, arg=cmd,
                    value=assist_type(a.get("enable", a.get("disable"))))


@step("vm_assist", VmAssistArgs, summary="HYPERVISOR_vm_assist(enable|disable, type)",
      validate=_one_assist_form, replay=_replay_vm_assist, guest_only=True)
def _vm_assist(run: ScenarioRun, a: VmAssistArgs) -> Outcome:
    if a.cmd is not None and a.type is not None:
        return run.guest.vm_assist(a.cmd, a.type)
    if a.enable is not None:
        return run.guest.vm_assist("enable", a.enable)
    assert a.disable is not None
    return run.guest.vm_assist("disable", a.disable)


# ------------------------------------------------------------------ vCPUs
@dataclass(frozen=True, kw_only=True)
class VcpuArgs(StepArgs):
    vcpu: int = param("int", help="the vCPU")


@dataclass(frozen=True, kw_only=True)
class VcpuCr3Args(VcpuArgs):
    cr3: FrameRef = param("frame", help="the top-level table CR3 names")


@dataclass(frozen=True, kw_only=True)
class VcpuContextArgs(VcpuCr3Args):
    vm_assists: tuple[str | int, ...] | None = param(
        "assists", None, help="vCPU 0's context also sets the domain's VM-assists")


@step("vcpu_op_initialise", VcpuCr3Args, summary="VCPUOP_initialise from the guest itself",
      guest_only=True,
      replay=lambda plan, i, a: StepPlan(
          i, "vcpu_op_initialise", OP_VCPU_OP_INIT, _frame(plan, a, "cr3"), int(a["vcpu"]),
          target=1) if plan.mode == "agent" else StepPlan(i, "vcpu_op_initialise", skip=(
              SKIP_VCPU_OP if plan.mode == "dom0" else SKIP_GUEST_ONLY)),
      level_hint=lambda a, abi: (a.cr3, abi.top_level))
def _vcpu_op_initialise(run: ScenarioRun, a: VcpuCr3Args) -> Outcome:
    return run.guest.vcpu_op_initialise(a.vcpu, cr3=run.mfn(a.cr3))


def _replay_vcpu_context(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    op = "vcpu_initialise"
    if plan.mode == "agent" and int(a.get("vcpu", 0)) == 0:
        return StepPlan(i, op, skip=SKIP_AGENT_VCPU0)
    if plan.mode == "dom0":
        return StepPlan(i, op, skip=SKIP_OWN_VCPU)
    if assist_mask(a.get("vm_assists")) >> abi_for(plan.bitness).context_vm_assist_bits:
        return StepPlan(i, op, skip=SKIP_COMPAT_ASSIST)
    return StepPlan(i, op, OP_VCPU_INIT, _frame(plan, a, "cr3"), int(a.get("vcpu", 0)),
                    value=assist_mask(a.get("vm_assists")))


@step("vcpu_initialise", VcpuContextArgs,
      summary="XEN_DOMCTL_setvcpucontext: load a vCPU's CR3 (and vCPU 0's VM-assists)",
      replay=_replay_vcpu_context, level_hint=lambda a, abi: (a.cr3, abi.top_level))
def _vcpu_initialise(run: ScenarioRun, a: VcpuContextArgs) -> Outcome:
    assists = ([vm_assist_number(x) for x in a.vm_assists] if a.vm_assists is not None
               else None)
    return run.guest.set_vcpu_context(a.vcpu, cr3=run.mfn(a.cr3), vm_assists=assists)


def _replay_vcpu_reset(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    if plan.mode == "agent" and int(a.get("vcpu", 0)) == 0:
        return StepPlan(i, "vcpu_reset", skip=SKIP_AGENT_VCPU0)
    if plan.mode == "dom0":
        return StepPlan(i, "vcpu_reset", skip=SKIP_OWN_VCPU)
    return StepPlan(i, "vcpu_reset", OP_VCPU_RESET, arg=int(a.get("vcpu", 0)))


@step("vcpu_reset", VcpuArgs, summary="vcpu_reset: drop CR3, is_initialised = 0",
      replay=_replay_vcpu_reset)
def _vcpu_reset(run: ScenarioRun, a: VcpuArgs) -> Outcome:
    return run.guest.vcpu_reset(a.vcpu)


# ------------------------------------------------------------------ checks
@dataclass(frozen=True, kw_only=True)
class ExpectPageArgs(StepArgs):
    frame: FrameRef = param("frame", help="the frame whose page_info is checked")
    type: str | None = param("page_type", None, help="its page type")
    type_count: int | None = param("int", None, help="its type count")
    count: int | None = param("int", None, help="its general reference count")
    pinned: bool | None = param("bool", None, help="pinned (PGT_pinned)")
    validated: bool | None = param("bool", None, help="validated (PGT_validated)")
    pae_xen_l2: bool | None = param("bool", None, help="the PAE Xen L2 (PGT_pae_xen_l2)")


def _page_level_hint(a: ExpectPageArgs, abi: PV64Abi) -> tuple[FrameRef, int] | None:
    if a.type in ("l1", "l2", "l3", "l4"):
        return a.frame, int(a.type[1])
    return None


@step("expect_page", ExpectPageArgs, summary="check a frame's page_info", check=True,
      stateless=True, no_replay=SKIP_PAGE_INFO, level_hint=_page_level_hint)
def _expect_page(run: ScenarioRun, a: ExpectPageArgs) -> Outcome:
    mfn = run.mfn(a.frame)
    pi = run.xen.machine.page(mfn)
    t = Tracer(f"expect_page {a.frame}")
    actual = {"type": pi.type_name, "type_count": pi.type_count, "count": pi.count,
              "pinned": pi.pinned, "validated": pi.validated, "pae_xen_l2": pi.pae_xen_l2}
    wanted = {k: getattr(a, k) for k in actual if getattr(a, k) is not None}
    bad = [f"{k} is {actual[k]}, expected {want}" for k, want in wanted.items()
           if actual[k] != want]
    detail = f"MFN {mfn:#x}: " + ", ".join(f"{k}={actual[k]}" for k in actual)
    if bad:
        t.event("expect_page", "fail", f"{detail}; " + "; ".join(bad), "page_info")
        t.outcome.failed_mfn = mfn
        return t.finish(0)
    t.event("expect_page", "pass", detail, "page_info", mfn=mfn)
    return t.finish(0)


@dataclass(frozen=True, kw_only=True)
class ExpectEntryArgs(TableEntryArgs):
    present: bool | None = param("bool", None, help="whether P is set")


@step("expect_entry", ExpectEntryArgs, summary="check an entry as the guest reads it",
      check=True, stateless=True, validate=_one_entry_form,
      replay=lambda plan, i, a: StepPlan(i, "expect_entry", OP_READ, _frame(plan, a, "table"),
                                         int(a["index"]), check=dict(a)))
def _expect_entry(run: ScenarioRun, a: ExpectEntryArgs) -> Outcome:
    mfn = run.mfn(a.table)
    actual = run.xen.machine.read_entry(mfn, a.index)
    t = Tracer(f"expect_entry {a.table}[{a.index}]")
    bad = []
    if a.value is not None and actual != a.value:
        bad.append(f"value is {actual:#x}, expected {a.value:#x}")
    if a.to is not None or a.mfn is not None:
        want = run.mfn(a.to) if a.to is not None else a.mfn
        if (actual >> 12) & _ENTRY_ADDR != want:
            bad.append(f"points at {(actual >> 12) & _ENTRY_ADDR:#x}, expected {want:#x}")
    if a.flags is not None:
        got = actual & 0xFFF0_0000_0000_0FFF
        if got != a.flags:
            bad.append(f"flags are {'|'.join(flag_names(got)) or '0'}, expected "
                       f"{'|'.join(flag_names(a.flags)) or '0'}")
    if a.present is not None and bool(actual & 1) != a.present:
        bad.append(f"present is {bool(actual & 1)}")
    names = "|".join(flag_names(actual)) or "-"
    detail = f"entry {a.index} of MFN {mfn:#x} reads {actual:#x} ({names})"
    t.event("expect_entry", "fail" if bad else "pass",
            detail + ("; " + "; ".join(bad) if bad else ""), "guest read", mfn=mfn,
            index=a.index)
    return t.finish(0)
