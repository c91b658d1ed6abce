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

from dataclasses import dataclass, field
from typing import Any

from pvlab.units import MFN_4GIB, PAGE_SHIFT, parse_size
from pvlab.x86.flags import parse_flags

# probe op codes (oracle/probe.c)
OP_PIN, OP_UNPIN, OP_MMU_UPDATE, OP_MACHPHYS, OP_VM_ASSIST = 1, 2, 3, 4, 5
OP_VCPU_INIT, OP_VCPU_RESET, OP_WRITE, OP_TLB_FLUSH, OP_READ = 6, 7, 8, 9, 10
OP_NEW_USER_BASEPTR, OP_NEW_BASEPTR, OP_MMUEXT = 11, 12, 13
OP_MMU_UPDATE_AD, OP_UPDATE_VA, OP_MULTICALL = 14, 15, 16
#: a multicall step N's k-th call is reported as step N * MULTICALL_SUB + k
MULTICALL_SUB = 1000
MULTICALL_REPLAYED = {OP_PIN, OP_UNPIN, OP_MMU_UPDATE, OP_MMU_UPDATE_AD, OP_MMUEXT}
#: an mmuext arg2 that names a frame (the probe passes that frame's MFN)
AUX_FRAME = 0x8000_0000

# frame kinds (oracle/probe.c)
FK_HIGH, FK_LOW, FK_EXACT, FK_OTHER_HIGH, FK_OTHER_LOW = 1, 2, 3, 4, 5

VMASST = {
    "4gb_segments": 0,
    "4gb_segments_notify": 1,
    "writable_pagetables": 2,
    "pae_extended_cr3": 3,
    "architectural_iopl": 4,
    "runstate_update_flag": 5,
    "m2p_strict": 32,
}

SKIP_PAGE_INFO = "page_info cannot be read from inside a guest"
SKIP_GUEST_ONLY = "only the guest itself can issue it; the probe plays the toolstack here"
SKIP_OWN_VCPU = (
    "the guest is the probe (dom0), whose vCPU 0 is running: its context cannot be set or reset"
)
SKIP_VCPU0_TAKEN = (
    "vCPU 0 of the replayed guest was initialised by the probe with a context of its own, so "
    "its context cannot be set or reset as the scenario does"
)
SKIP_RAW_MFN = (
    "names machine frame {mfn:#x} directly; that frame's state on the QEMU machine differs "
    "from pvlab's"
)
GUEST_ONLY_OPS = {"vm_assist", "new_baseptr", "new_user_baseptr", "tlb_flush", "machphys_update",
                  "mmuext", "update_va_mapping", "vcpu_op_initialise",
                  "update_va_mapping_otherdomain"}
SKIP_CACHE_FLUSH = (
    "a cache flush by an unprivileged guest: the probe that issues it is dom0, which holds "
    "I/O resources and so cache-flush permission"
)
SKIP_UVMF = "UVMF flush flags are not replayed (the probe passes UVMF_NONE)"
SKIP_COMPAT_ASSIST = (
    "a 32-bit guest's vCPU context holds vm_assist in a 32-bit field: assist bits 32+ "
    "cannot be expressed"
)
SKIP_OWN_TABLES = (
    "acts on the running vCPU's own pagetables, which are the probe's: not replayed"
)
SKIP_VCPU_OP = (
    "the probe (dom0) has a single vCPU, so the guest's own VCPUOP_initialise cannot be "
    "replayed as the scenario does"
)
SKIP_BASEPTR = (
    "would switch the probe's own page tables to the scenario's table, which does not map the "
    "probe; not replayed"
)
STATELESS_OPS = {"expect_page", "expect_entry", "tlb_flush"}  # skipping them changes nothing


class PlanError(ValueError):
    """The scenario file cannot be planned at all (shape error); the message says why."""


@dataclass(frozen=True)
class FramePlan:
    name: str
    kind: int
    mfn: int = 0  # exact frame (FK_EXACT) or the address-bits limit (FK_LOW/FK_OTHER_LOW)
    note: str | None = None


@dataclass(frozen=True)
class EntryPlan:
    frame: int
    index: int
    target: int | None  # frame index, or None for a raw value
    value: int  # flags when target is set, else the raw entry


@dataclass(frozen=True)
class StepPlan:
    index: int  # 1-based step number, as in pvlab's results
    op: str
    code: int = 0
    frame: int = 0
    arg: int = 0
    target: int | None = None
    value: int = 0
    skip: str | None = None
    check: dict[str, Any] | None = None  # expect_entry arguments, evaluated on the read value
    aux: int = 0  # the probe step's `pad` word: mmuext arg2, the high half of a VA


@dataclass
class ScenarioPlan:
    id: int
    name: str
    source: str
    mode: str  # "dom0" | "toolstack" | "domu"
    bitness: int
    vcpus: int
    assists: int
    frames: list[FramePlan] = field(default_factory=list)
    entries: list[EntryPlan] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skip: str | None = None  # the whole scenario cannot be replayed
    pvlab_frames: dict[str, int] = field(default_factory=dict)
    privileged: bool = False  # the scenario's guest is privileged

    @property
    def boot(self) -> int:
        """Which probe (32 or 64) replays it: toolstack scenarios always use the 64-bit one."""
        return self.bitness if self.mode == "dom0" else 64

    @property
    def replayed(self) -> list[StepPlan]:
        return [] if self.skip else [s for s in self.steps if s.skip is None]

    def frame_index(self, name: str) -> int:
        for i, f in enumerate(self.frames):
            if f.name == name:
                return i
        raise PlanError(f"unknown frame '{name}'")


def _op_of(step: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    keys = [k for k in step if k != "expect"]
    if len(keys) != 1:
        raise PlanError(f"a step needs exactly one operation key, got {sorted(keys)}")
    args = step[keys[0]]
    return keys[0], args if isinstance(args, dict) else {}


def _assist_mask(names: Any) -> int:
    mask = 0
    for name in names or []:
        mask |= 1 << _assist_type(name)
    return mask


def _assist_type(name: Any) -> int:
    if isinstance(name, int):
        return name
    if str(name) in VMASST:
        return VMASST[str(name)]
    raise PlanError(f"unknown VM-assist '{name}'")


def _frame_plan(name: str, spec: dict[str, Any], pvlab_mfn: int | None) -> FramePlan:
    spec = spec or {}
    owner = spec.get("owner", "guest")
    mfn = spec.get("mfn")
    if owner == "io":
        return FramePlan(name, FK_EXACT, int(mfn) if mfn is not None else 1)
    note = None
    below, above = spec.get("below"), spec.get("above")
    if mfn is not None:
        high = int(mfn) >= MFN_4GIB
        note = (
            f"frame {name}: exact MFN {int(mfn):#x} replaced by a frame "
            f"{'at or above' if high else 'below'} 4 GiB (the same side of the boundary)"
        )
    elif above is not None:
        limit = parse_size(above)
        if limit > 4 << 30:
            raise _Unreplayable(f"frame {name}: above {above} is beyond the QEMU machine's RAM")
        high = True
    elif below is not None:
        high = False
    else:
        high = pvlab_mfn is None or pvlab_mfn >= MFN_4GIB
    bits = 32
    if not high and below is not None:
        limit = parse_size(below)
        bits = min(32, limit.bit_length() - 1)
        if bits < 24:
            raise _Unreplayable(f"frame {name}: below {below} is too low to request from Xen")
    if owner == "other":
        return FramePlan(name, FK_OTHER_HIGH if high else FK_OTHER_LOW, 0 if high else bits, note)
    return FramePlan(name, FK_HIGH if high else FK_LOW, 0 if high else bits, note)


def _addr_ok(va: int) -> bool:
    """Xen's `__addr_ok`: an update_va_mapping VA outside it is refused before any table is
    read, so such a step is replayed even though the probe's tables are not the scenario's."""
    return va < (1 << 47) or va >= 0xFFFF_8800_0000_0000


class _Unreplayable(Exception):
    pass


def _entry(plan: ScenarioPlan, spec: dict[str, Any]) -> tuple[int | None, int]:
    """(target frame index or None, flags or raw value) of an entry spec."""
    if "value" in spec:
        value = int(spec["value"])
        mfn = (value >> PAGE_SHIFT) & ADDR_MFN_MASK
        exact = _exact_frame(plan, mfn) if value & 1 else None
        if exact is not None:
            return exact, value & ~(ADDR_MFN_MASK << PAGE_SHIFT)
        return None, value
    flags = parse_flags(spec.get("flags", []))
    if "to" in spec:
        return plan.frame_index(str(spec["to"])), flags
    if "mfn" in spec:
        exact = _exact_frame(plan, int(spec["mfn"]))
        if exact is not None:
            return exact, flags
        return None, (int(spec["mfn"]) << PAGE_SHIFT) | flags
    return None, flags


ADDR_MFN_MASK = (1 << 40) - 1


def _exact_frame(plan: ScenarioPlan, mfn: int) -> int | None:
    """The scenario frame whose MFN (exact, or pvlab's) is `mfn`."""
    for i, f in enumerate(plan.frames):
        if f.kind == FK_EXACT and f.mfn == mfn:
            return i
        if plan.pvlab_frames.get(f.name) == mfn:
            return i
    return None


def _raw_mfn(plan: ScenarioPlan, target: int | None, value: int) -> int | None:
    """The machine frame a present raw entry names outside the scenario's frames, if any."""
    if target is not None or not value & 1:
        return None
    mfn = (value >> PAGE_SHIFT) & ADDR_MFN_MASK
    # the first MiB belongs to dom_io on real Xen as in pvlab: the same frame on both sides
    return None if mfn < FIRST_MIB_MFNS else mfn


FIRST_MIB_MFNS = 0x100


def plan_scenario(
    data: dict[str, Any],
    *,
    id: int,
    source: str = "",
    pvlab_frames: dict[str, int] | None = None,
    xen_build: str = "debug",
) -> ScenarioPlan:
    """Plan one scenario (the mapping read from its YAML file) for a hypervisor built as
    `xen_build` ("debug" or "release")."""
    guest = data.get("guest") or {}
    ops = {_op_of(step)[0] for step in data.get("steps") or [] if isinstance(step, dict)}
    if not guest.get("vcpu0_initialised", False):
        mode = "toolstack"
    elif guest.get("privileged", False) or ops & GUEST_ONLY_OPS:
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
        assists=_assist_mask(guest.get("vm_assists")),
        pvlab_frames=dict(pvlab_frames or {}),
        privileged=bool(guest.get("privileged", False)),
    )
    pvlab_frames = pvlab_frames or {}
    try:
        for name, spec in (data.get("frames") or {}).items():
            plan.frames.append(_frame_plan(str(name), spec or {}, pvlab_frames.get(str(name))))
    except _Unreplayable as err:
        plan.skip = str(err)
    plan.notes.extend(f.note for f in plan.frames if f.note)
    if plan.mode == "toolstack" and plan.assists:
        plan.skip = (
            "vm_assists on a domain whose vCPU 0 is not initialised: real Xen has no way to set "
            "them before vCPU 0's context is loaded"
        )
    if plan.mode == "toolstack" and guest.get("privileged", False):
        plan.skip = "a privileged domain still being built cannot be created by the probe"
    wants = data.get("xen_build")
    if wants is not None and wants != xen_build:
        plan.skip = (f"the scenario models a {wants} build of Xen (xen_build: {wants}); this "
                     f"hypervisor is a {xen_build} build")
    if plan.mode == "dom0" and not guest.get("privileged", False):
        plan.notes.append(
            "replayed as dom0 (a step only the guest itself can issue), which is privileged: "
            "L1 cache-attribute bits and MMIO frames are allowed for it"
        )
    if plan.skip:
        for i, step in enumerate(data.get("steps") or [], start=1):
            plan.steps.append(StepPlan(i, _op_of(step)[0], skip=plan.skip))
        return plan
    for name, entries in (data.get("tables") or {}).items():
        fi = plan.frame_index(str(name))
        for index, spec in (entries or {}).items():
            target, value = _entry(plan, spec or {})
            raw = _raw_mfn(plan, target, value)
            if raw is not None:
                plan.skip = f"table {name} entry {index} " + SKIP_RAW_MFN.format(mfn=raw)
            plan.entries.append(EntryPlan(fi, int(index), target, value))
    if plan.skip:
        plan.entries.clear()
        for i, step in enumerate(data.get("steps") or [], start=1):
            plan.steps.append(StepPlan(i, _op_of(step)[0], skip=plan.skip))
        return plan
    poisoned: int | None = None
    for i, step in enumerate(data.get("steps") or [], start=1):
        op, args = _op_of(step)
        subs: list[StepPlan] = []
        if op == "multicall":
            sp, subs = _multicall(plan, i, args)
        else:
            sp = _step(plan, i, op, args)
        if poisoned is not None and sp.skip is None:
            sp = StepPlan(i, op, skip=f"follows step {poisoned}, which was not replayed")
        elif sp.skip is not None and op not in STATELESS_OPS and poisoned is None:
            poisoned = i
        plan.steps.append(sp)
        if sp.skip is None:
            plan.steps.extend(subs)
    return plan


def _multicall(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> tuple[StepPlan, list[StepPlan]]:
    """One HYPERVISOR_multicall whose calls follow it in the plan (numbered
    i * MULTICALL_SUB + k); replayed only if every call can be."""
    subs = []
    for k, raw in enumerate(a.get("calls") or [], start=1):
        op, args = _op_of(raw)
        sub = _step(plan, i * MULTICALL_SUB + k, op, args)
        if sub.skip is None and sub.code not in MULTICALL_REPLAYED:
            sub = StepPlan(sub.index, op, skip=f"the probe does not batch '{op}' calls")
        if sub.skip is not None:
            return StepPlan(i, "multicall", skip=f"call {k} ({op}): {sub.skip}"), []
        subs.append(StepPlan(sub.index, f"call {k}: {op}", sub.code, sub.frame, sub.arg,
                             sub.target, sub.value, aux=sub.aux))
    return StepPlan(i, "multicall", OP_MULTICALL, arg=len(subs)), subs


def _step(plan: ScenarioPlan, i: int, op: str, a: dict[str, Any]) -> StepPlan:
    toolstack = plan.mode != "dom0"
    if op == "pin":
        return StepPlan(i, op, OP_PIN, plan.frame_index(str(a["frame"])), int(a["level"]))
    if op == "unpin":
        return StepPlan(i, op, OP_UNPIN, plan.frame_index(str(a["frame"])))
    if op in ("mmu_update", "write"):
        target, value = _entry(plan, a)
        raw = _raw_mfn(plan, target, value)
        if raw is not None:
            return StepPlan(i, op, skip=SKIP_RAW_MFN.format(mfn=raw))
        code = OP_MMU_UPDATE if op == "mmu_update" else OP_WRITE
        if op == "mmu_update" and a.get("preserve_ad"):
            code = OP_MMU_UPDATE_AD
        return StepPlan(
            i, op, code, plan.frame_index(str(a["table"])), int(a["index"]), target, value
        )
    if op == "expect_entry":
        return StepPlan(
            i, op, OP_READ, plan.frame_index(str(a["table"])), int(a["index"]), check=dict(a)
        )
    if op == "expect_page":
        return StepPlan(i, op, skip=SKIP_PAGE_INFO)
    if op == "vm_assist":
        if toolstack:
            return StepPlan(i, op, skip=SKIP_GUEST_ONLY)
        if "cmd" in a:
            return StepPlan(i, op, OP_VM_ASSIST, arg=int(a["cmd"]), value=_assist_type(a["type"]))
        cmd = 0 if "enable" in a else 1
        return StepPlan(i, op, OP_VM_ASSIST, arg=cmd, value=_assist_type(a.get("enable",
                                                                               a.get("disable"))))
    if op == "mmuext":
        if toolstack:
            return StepPlan(i, op, skip=SKIP_GUEST_ONLY)
        if int(a["cmd"]) in (12, 18) and not plan.privileged:
            return StepPlan(i, op, skip=SKIP_CACHE_FLUSH)
        aux = int(a.get("ents", 0))
        if "src" in a:
            aux = AUX_FRAME | plan.frame_index(str(a["src"]))
        if "frame" in a:
            return StepPlan(i, op, OP_MMUEXT, plan.frame_index(str(a["frame"])), int(a["cmd"]),
                            target=1, aux=aux)
        return StepPlan(i, op, OP_MMUEXT, arg=int(a["cmd"]), target=None,
                        value=int(a.get("va", 0)), aux=aux)
    if op in ("update_va_mapping", "update_va_mapping_otherdomain"):
        va = int(a["va"]) & ((1 << 64) - 1)
        if plan.bitness == 32:
            va &= 0xFFFF_FFFF
        if toolstack or _addr_ok(va):
            return StepPlan(i, op, skip=SKIP_OWN_TABLES if not toolstack else SKIP_GUEST_ONLY)
        if a.get("uvmf"):
            return StepPlan(i, op, skip=SKIP_UVMF)
        target, value = _entry(plan, a)
        sel = 0
        if op == "update_va_mapping_otherdomain":
            sel = 1 if a.get("domain") == "other" else 2
        return StepPlan(i, op, OP_UPDATE_VA, sel, va & 0xFFFF_FFFF, target, value,
                        aux=va >> 32)
    if op == "vcpu_op_initialise":
        return StepPlan(i, op, skip=SKIP_VCPU_OP if not toolstack else SKIP_GUEST_ONLY)
    if op in ("vcpu_initialise", "vcpu_reset") and plan.mode == "domu" and \
            int(a.get("vcpu", 0)) == 0:
        return StepPlan(i, op, skip=SKIP_VCPU0_TAKEN)
    if op == "vcpu_initialise":
        if not toolstack:
            return StepPlan(i, op, skip=SKIP_OWN_VCPU)
        if plan.bitness == 32 and _assist_mask(a.get("vm_assists")) >> 32:
            return StepPlan(i, op, skip=SKIP_COMPAT_ASSIST)
        return StepPlan(
            i, op, OP_VCPU_INIT, plan.frame_index(str(a["cr3"])), int(a.get("vcpu", 0)),
            value=_assist_mask(a.get("vm_assists")),
        )
    if op == "vcpu_reset":
        if not toolstack:
            return StepPlan(i, op, skip=SKIP_OWN_VCPU)
        return StepPlan(i, op, OP_VCPU_RESET, arg=int(a.get("vcpu", 0)))
    if op in ("tlb_flush", "machphys_update", "new_user_baseptr"):
        if toolstack:
            return StepPlan(i, op, skip=SKIP_GUEST_ONLY)
        if op == "tlb_flush":
            return StepPlan(i, op, OP_TLB_FLUSH)
        if op == "machphys_update":
            return StepPlan(i, op, OP_MACHPHYS, plan.frame_index(str(a["frame"])),
                            value=int(a["pfn"]))
        frame = a.get("frame", 0)
        if frame in (0, None, "0"):
            return StepPlan(i, op, OP_NEW_USER_BASEPTR, target=None)
        return StepPlan(i, op, OP_NEW_USER_BASEPTR, plan.frame_index(str(frame)), target=1)
    if op == "new_baseptr":
        return StepPlan(i, op, skip=SKIP_BASEPTR if not toolstack else SKIP_GUEST_ONLY)
    return StepPlan(i, op, skip=f"operation '{op}' is not supported by the probe")
