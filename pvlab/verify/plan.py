# SPDX-License-Identifier: MIT
"""Turn a scenario into a replay plan for the probe kernel: frames, entries, steps or skips.

The plan is made from the scenario file's own data (the YAML mapping), so it does not depend on
how the emulator represents a loaded scenario. pvlab's frame numbers, when known, decide on
which side of 4 GiB a frame without a constraint is taken, so both sides see the same case.

Two modes:
- ``dom0``: vCPU 0 initialised; the probe, booted as dom0 of the scenario's bitness, is the
  guest (a privileged one).
- ``toolstack``: vCPU 0 not initialised; the 64-bit probe creates a PV domU of the scenario's
  bitness and acts on it (mmuext_op/mmu_update with foreigndom, setvcpucontext).
- ``agent``: an unprivileged guest whose vCPU 0 is initialised: the 64-bit probe builds and
  starts a PV domU of the scenario's bitness running the agent image (with the scenario's
  VM-assists), which issues the guest's steps itself, as the unprivileged domain it is; the
  probe keeps the toolstack's steps (setvcpucontext, direct writes, read-backs). Every step
  records who issued it (`by`).
Operations that only the guest itself can issue are skipped with a reason in toolstack mode;
operations on the issuing guest's own running vCPU 0 are skipped in dom0 and agent mode.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pvlab.scenario.registry import steps
from pvlab.verify.domains import (
    DOM0_OWN_STATE,
    GRANT_OPS,
    NOTE_PINS,
    SKIP_DESTROYED,
    SKIP_DOM0_OWN,
    Roles,
    domain_sel,
    frame_owner,
    issuer_is_dom0,
    plan_domain_step,
    roles_of,
)
from pvlab.verify.replay import (  # the plan's vocabulary, also importable from here
    FK_EXACT,
    FK_HIGH,
    FK_LOW,
    FK_OTHER_HIGH,
    MULTICALL_REPLAYED,
    MULTICALL_SUB,
    OP_MULTICALL,
    OP_PIN,
    OP_READ,
    OP_VCPU_INIT,
    OP_VCPU_OP_INIT,
    OP_VCPU_RESET,
    OP_WRITE,
    SKIP_AGENT_VCPU0,
    SKIP_GUEST_ONLY,
    SKIP_PAGE_INFO,
    SKIP_RAW_MFN,
    TOOLSTACK_OPS,
    EntryPlan,
    PlanError,
    ReplayMode,
    ScenarioPlan,
    StepPlan,
    Unreplayable,
    assist_mask,
    entry_plan,
    frame_plan,
    op_of,
    raw_mfn,
)


def plan_scenario(
    data: dict[str, Any],
    *,
    id: int,
    source: str = "",
    pvlab_frames: dict[str, int] | None = None,
    xen_build: str = "debug",
    lacks: frozenset[str] = frozenset(),
) -> ScenarioPlan:
    """Plan one scenario (the mapping read from its YAML file) for a hypervisor built as
    `xen_build` ("debug" or "release") that lacks the profile behaviours `lacks`."""
    roles: Roles | None = None
    if isinstance(data.get("domains"), dict) and data["domains"]:
        roles, guest = roles_of(data["domains"])
        if roles.agent is None:  # dom0 alone: the one-domain case
            roles = None
    else:
        guest = data.get("guest") or {}
    kinds = steps()
    mode: ReplayMode
    if not guest.get("vcpu0_initialised", False):
        mode = "toolstack"
    elif guest.get("privileged", False):
        mode = "dom0"
    else:
        mode = "agent"
    plan = ScenarioPlan(
        id=id,
        name=str(data.get("name", source)),
        source=source,
        mode=mode,
        bitness=int(guest.get("bitness", 64)),
        vcpus=int(guest.get("vcpus", 1)),
        assists=assist_mask(guest.get("vm_assists")),
        pvlab_frames=dict(pvlab_frames or {}),
        privileged=bool(guest.get("privileged", False)),
        lacks=lacks,
        domains=roles.played() if roles is not None else {"guest": "domU" if mode == "agent"
                                                          else "dom0"},
    )
    pvlab_frames = pvlab_frames or {}
    try:
        for name, spec in (data.get("frames") or {}).items():
            spec = dict(spec or {})
            if roles is not None:
                spec["owner"] = frame_owner(roles, spec.get("owner"))
            plan.frames.append(frame_plan(str(name), spec, pvlab_frames.get(str(name))))
    except Unreplayable as err:
        plan.skip = str(err)
    plan.notes.extend(f.note for f in plan.frames if f.note)
    if plan.mode == "toolstack" and plan.assists:
        plan.skip = (
            "vm_assists on a domain whose vCPU 0 is not initialised: real Xen has no way to set "
            "them before vCPU 0's context is loaded"
        )
    if plan.mode == "toolstack" and guest.get("privileged", False):
        plan.skip = "a privileged domain still being built cannot be created by the probe"
    if roles is not None and roles.skip:
        plan.skip = roles.skip
    why = hardware_skip(data, privileged=plan.mode == "dom0")
    if why:
        plan.skip = why
    wants = data.get("xen_build")
    if wants is not None and wants != xen_build:
        plan.skip = (f"the scenario models a {wants} build of Xen (xen_build: {wants}); this "
                     f"hypervisor is a {xen_build} build")
    if plan.skip:
        for i, step in enumerate(data.get("steps") or [], start=1):
            plan.steps.append(StepPlan(i, op_of(step)[0], skip=plan.skip))
        return plan
    for name, entries in (data.get("tables") or {}).items():
        fi = plan.frame_index(str(name))
        for index, spec in (entries or {}).items():
            target, value = entry_plan(plan, spec or {})
            raw = raw_mfn(plan, target, value)
            if raw is not None:
                plan.skip = f"table {name} entry {index} " + SKIP_RAW_MFN.format(mfn=raw)
            plan.entries.append(EntryPlan(fi, int(index), target, value))
    if plan.skip:
        plan.entries.clear()
        for i, step in enumerate(data.get("steps") or [], start=1):
            plan.steps.append(StepPlan(i, op_of(step)[0], skip=plan.skip))
        return plan
    poisoned: int | None = None
    for i, step in enumerate(data.get("steps") or [], start=1):
        op, args = op_of(step)
        subs: list[StepPlan] = []
        by_dom0 = issuer_is_dom0(roles, args) and op != "expect_grant"  # the granter reads
        harmless = False  # a skip that changes no state on Xen either
        if op == "multicall":
            sp, subs = _multicall(plan, i, args)
        elif op in GRANT_OPS:
            sp = plan_domain_step(plan, roles, i, op, args)
        else:
            sp = _step(plan, i, op, args)
        if sp.skip is None and "foreign" in args:  # mmu_update's foreigndom
            sel = domain_sel(roles, args["foreign"])
            sp = StepPlan(i, op, skip=sel) if isinstance(sel, str) else replace(sp, aux=sel)
        if sp.skip is None and by_dom0 and op in DOM0_OWN_STATE:
            sp = StepPlan(i, op, skip=SKIP_DOM0_OWN)
        if (sp.skip is None and roles is not None and roles.destroyed_at is not None
                and not by_dom0 and sp.code not in TOOLSTACK_OPS):
            sp = StepPlan(i, op, skip=SKIP_DESTROYED.format(name=roles.agent,
                                                            n=roles.destroyed_at))
            harmless = True
        if poisoned is not None and sp.skip is None:
            sp = StepPlan(i, op, skip=f"follows step {poisoned}, which was not replayed")
        elif sp.skip is not None and poisoned is None and not harmless and not (
                op in kinds and kinds[op].stateless):
            poisoned = i
        if op == "destroy_domain" and sp.skip is None and roles is not None:
            roles.destroyed_at = i
        if op == "expect_grant" and sp.skip is None and args.get("pins") is not None \
                and NOTE_PINS not in plan.notes:
            plan.notes.append(NOTE_PINS)
        by = issuer(plan, sp, by_dom0)
        plan.steps.append(replace(sp, by=by))
        if sp.skip is None:
            plan.steps.extend(replace(sub, by=by) for sub in subs)
    return plan


def hardware_skip(data: dict[str, Any], *, privileged: bool) -> str | None:
    """Why the QEMU machine cannot stand for the scenario's `hardware:`, or None.

    Xen under QEMU (TCG, -cpu max) says "L1TF: believed not vulnerable", so its PV L1TF checks
    (`pv-l1tf`) default to off for dom0 and domUs alike, where a vulnerable host's default is
    on for domUs; the project's builds have shadow paging."""
    from pvlab.errors import PvlabError
    from pvlab.xen.cmdline import Hardware, XenCommandLine

    try:
        hw = Hardware.parse(data.get("hardware"))
        cmd = XenCommandLine.parse(data.get("xen_cmdline"))
    except PvlabError as err:
        return f"hardware/xen_cmdline not understood: {err}"
    if not hw.shadow_paging:
        return ("the scenario's Xen has no shadow paging; the project's builds have it "
                "(CONFIG_SHADOW_PAGING=y)")
    forced = cmd.pv_l1tf_dom0 if privileged else cmd.pv_l1tf_domu
    modelled = forced if forced is not None else (hw.l1tf_vulnerable and not privileged)
    on_qemu = bool(forced)
    if modelled != on_qemu:
        return ("hardware: l1tf_vulnerable: Xen finds the QEMU CPU not L1TF-vulnerable, so the "
                f"PV L1TF checks of {'dom0' if privileged else 'a domU'} are off by default; "
                "set xen_cmdline pv-l1tf to force them")
    return None


def issuer(plan: ScenarioPlan, step: StepPlan, by_dom0: bool = False) -> str:
    """Who issues a replayed step on Xen: "domU" (the agent) or "dom0" (the probe, as the guest,
    as its toolstack, or as a scenario's privileged domain: `by_dom0`); "" for a skipped step."""
    if step.skip is not None or plan.skip:
        return ""
    if plan.mode == "agent" and step.code not in TOOLSTACK_OPS and not by_dom0:
        return "domU"
    return "dom0"


def _multicall(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> tuple[StepPlan, list[StepPlan]]:
    """One HYPERVISOR_multicall whose calls follow it in the plan (numbered
    i * MULTICALL_SUB + k); replayed only if every call can be."""
    subs = []
    for k, raw in enumerate(a.get("calls") or [], start=1):
        op, args = op_of(raw)
        sub = _step(plan, i * MULTICALL_SUB + k, op, args)
        if sub.skip is None and "foreign" in args:
            sub = StepPlan(sub.index, op, skip="the probe does not batch foreign mmu_updates")
        if sub.skip is None and sub.code not in MULTICALL_REPLAYED:
            sub = StepPlan(sub.index, op, skip=f"the probe does not batch '{op}' calls")
        if sub.skip is not None:
            return StepPlan(i, "multicall", skip=f"call {k} ({op}): {sub.skip}"), []
        subs.append(StepPlan(sub.index, f"call {k}: {op}", sub.code, sub.frame, sub.arg,
                             sub.target, sub.value, aux=sub.aux))
    return StepPlan(i, "multicall", OP_MULTICALL, arg=len(subs)), subs




def _step(plan: ScenarioPlan, i: int, op: str, a: dict[str, Any]) -> StepPlan:
    """The registered step's replay, or a skip saying why it has none."""
    kind = steps().get(op)
    if kind is None or kind.replay is None:
        why = kind.no_replay if kind is not None and kind.no_replay else (
            f"operation '{op}' is not supported by the probe")
        return StepPlan(i, op, skip=why)
    return kind.replay(plan, i, a)


__all__ = ["FK_EXACT", "FK_HIGH", "FK_LOW", "FK_OTHER_HIGH", "OP_PIN", "OP_READ", "OP_VCPU_INIT",
           "OP_VCPU_OP_INIT", "OP_VCPU_RESET", "OP_WRITE", "SKIP_AGENT_VCPU0", "SKIP_GUEST_ONLY",
           "SKIP_PAGE_INFO", "PlanError", "ScenarioPlan", "StepPlan", "MULTICALL_SUB", "issuer",
           "plan_scenario"]
