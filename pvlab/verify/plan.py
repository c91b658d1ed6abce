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
- ``domu``: an unprivileged guest whose vCPU 0 is initialised: as ``toolstack``, but the probe
  first loads vCPU 0's context (its own extra top-level table, the scenario's VM-assists).
  Chosen for unprivileged running guests unless a step is one only the guest can issue
  (vm_assist, new_baseptr, ...); those run as ``dom0``, which is privileged (noted).
Operations that only the guest itself can issue are skipped with a reason in toolstack mode;
operations on the probe's own running vCPU are skipped in dom0 mode.
"""

from __future__ import annotations

from typing import Any

from pvlab.scenario.registry import steps
from pvlab.verify.replay import (  # the plan's vocabulary, also importable from here
    FK_EXACT,
    FK_HIGH,
    FK_LOW,
    FK_OTHER_HIGH,
    OP_PIN,
    OP_READ,
    OP_VCPU_INIT,
    OP_WRITE,
    SKIP_GUEST_ONLY,
    SKIP_PAGE_INFO,
    SKIP_RAW_MFN,
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
) -> ScenarioPlan:
    """Plan one scenario (the mapping read from its YAML file)."""
    guest = data.get("guest") or {}
    kinds = steps()
    ops = {op_of(step)[0] for step in data.get("steps") or [] if isinstance(step, dict)}
    guest_only = {op for op in ops if op in kinds and kinds[op].guest_only}
    mode: ReplayMode
    if not guest.get("vcpu0_initialised", False):
        mode = "toolstack"
    elif guest.get("privileged", False) or guest_only:
        mode = "dom0"
    else:
        mode = "domu"
    plan = ScenarioPlan(
        id=id,
        name=str(data.get("name", source)),
        source=source,
        mode=mode,
        bitness=int(guest.get("bitness", 64)),
        vcpus=int(guest.get("vcpus", 1)),
        assists=assist_mask(guest.get("vm_assists")),
        pvlab_frames=dict(pvlab_frames or {}),
    )
    pvlab_frames = pvlab_frames or {}
    try:
        for name, spec in (data.get("frames") or {}).items():
            plan.frames.append(frame_plan(str(name), spec or {}, pvlab_frames.get(str(name))))
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
    if plan.mode == "dom0" and not guest.get("privileged", False):
        plan.notes.append(
            "replayed as dom0 (a step only the guest itself can issue), which is privileged: "
            "L1 cache-attribute bits and MMIO frames are allowed for it"
        )
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
        sp = _step(plan, i, op, args)
        if poisoned is not None and sp.skip is None:
            sp = StepPlan(i, op, skip=f"follows step {poisoned}, which was not replayed")
        elif sp.skip is not None and poisoned is None and not (op in kinds and
                                                               kinds[op].stateless):
            poisoned = i
        plan.steps.append(sp)
    return plan




def _step(plan: ScenarioPlan, i: int, op: str, a: dict[str, Any]) -> StepPlan:
    """The registered step's replay, or a skip saying why it has none."""
    kind = steps().get(op)
    if kind is None or kind.replay is None:
        why = kind.no_replay if kind is not None and kind.no_replay else (
            f"operation '{op}' is not supported by the probe")
        return StepPlan(i, op, skip=why)
    return kind.replay(plan, i, a)


__all__ = ["FK_EXACT", "FK_HIGH", "FK_LOW", "FK_OTHER_HIGH", "OP_PIN", "OP_READ", "OP_VCPU_INIT",
           "OP_WRITE", "SKIP_GUEST_ONLY", "SKIP_PAGE_INFO", "PlanError", "ScenarioPlan", "StepPlan",
           "plan_scenario"]
