# SPDX-License-Identifier: MIT
"""The replay plan's vocabulary: probe op codes, frame kinds, skip reasons, the plan records
and the helpers a step's replay uses (`pvlab.scenario.registry.StepKind.replay`).

Each registered step says how `pvlab verify` replays it with these; `pvlab.verify.plan`
puts a whole scenario together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pvlab.units import MFN_4GIB, PAGE_SHIFT, parse_size
from pvlab.x86.flags import parse_flags
from pvlab.xen.vmassist import VM_ASSISTS

# probe op codes (oracle/probe.c)
OP_PIN, OP_UNPIN, OP_MMU_UPDATE, OP_MACHPHYS, OP_VM_ASSIST = 1, 2, 3, 4, 5
OP_VCPU_INIT, OP_VCPU_RESET, OP_WRITE, OP_TLB_FLUSH, OP_READ = 6, 7, 8, 9, 10
OP_NEW_USER_BASEPTR, OP_NEW_BASEPTR, OP_MMUEXT = 11, 12, 13
OP_MMU_UPDATE_AD, OP_UPDATE_VA, OP_MULTICALL, OP_VCPU_OP_INIT = 14, 15, 16, 17
OP_GRANT, OP_GRANT_MAP, OP_GRANT_UNMAP, OP_GRANT_UNMAP_REPLACE, OP_DESTROY = 18, 19, 20, 21, 22
OP_GRANT_READ = 23
#: a step's `pad` naming a domain, which the probe resolves: DSEL | DS_* (pvlab.verify.domains)
DSEL = 0x4000_0000
DS_DOM0, DS_AGENT, DS_OTHER, DS_IO, DS_XEN, DS_SELF = 0, 1, 2, 3, 4, 5
#: in the agent mode, the probe (dom0) keeps these, the toolstack's steps; the agent domU
#: issues every other replayed step itself (oracle/probe.c: agent_op)
TOOLSTACK_OPS = {OP_WRITE, OP_READ, OP_VCPU_INIT, OP_VCPU_RESET, OP_DESTROY}
#: an mmuext arg2 that names a frame (the probe passes that frame's MFN)
AUX_FRAME = 0x8000_0000
#: a multicall step N's k-th call is reported as step N * MULTICALL_SUB + k
MULTICALL_SUB = 1000
MULTICALL_REPLAYED = {OP_PIN, OP_UNPIN, OP_MMU_UPDATE, OP_MMU_UPDATE_AD, OP_MMUEXT}

# frame kinds (oracle/probe.c)
FK_HIGH, FK_LOW, FK_EXACT, FK_OTHER_HIGH, FK_OTHER_LOW = 1, 2, 3, 4, 5
#: a frame of the probe itself (dom0 of a multi-domain scenario), above or below 4 GiB
FK_DOM0_HIGH, FK_DOM0_LOW = 6, 7

VMASST = VM_ASSISTS  # the VM-assist type numbers (public/xen.h)

SKIP_PAGE_INFO = "page_info cannot be read from inside a guest"
SKIP_GUEST_ONLY = "only the guest itself can issue it; the probe plays the toolstack here"
SKIP_AGENT_VCPU0 = (
    "vCPU 0 of the agent domU runs the agent: its context is the agent's, so it cannot be set "
    "or reset as the scenario does"
)
SKIP_OWN_VCPU = (
    "the guest is the probe (dom0), whose vCPU 0 is running: its context cannot be set or reset"
)
SKIP_RAW_MFN = (
    "names machine frame {mfn:#x} directly; that frame's state on the QEMU machine differs "
    "from pvlab's"
)
SKIP_COMPAT_ASSIST = (
    "a 32-bit guest's vCPU context holds vm_assist in a 32-bit field: assist bits 32+ "
    "cannot be expressed"
)
SKIP_OWN_TABLES = (
    "acts on the running vCPU's own pagetables, which are the probe's (or the agent's): not "
    "replayed"
)
SKIP_VCPU_OP = (
    "the probe (dom0) has a single vCPU, so the guest's own VCPUOP_initialise cannot be "
    "replayed as the scenario does"
)
SKIP_BASEPTR = (
    "would switch the probe's (or the agent's) own page tables to the scenario's table, which "
    "does not map it; not replayed"
)


SKIP_CACHE_FLUSH = (
    "a cache flush by an unprivileged guest: the probe that issues it is dom0, which holds "
    "I/O resources and so cache-flush permission"
)
SKIP_BUILD_LACKS = (
    "this hypervisor is the project's \"4.19\" build (4.17 plus the PAE-extended-CR3 check): "
    "it lacks what the profile models here ({what})"
)
SKIP_UVMF = "UVMF flush flags are not replayed (the probe passes UVMF_NONE)"


def addr_ok(va: int) -> bool:
    """Xen's `__addr_ok`: an update_va_mapping VA outside it is refused before any table is
    read, so such a step is replayed even though the probe's tables are not the scenario's."""
    return va < (1 << 47) or va >= 0xFFFF_8800_0000_0000


#: Who the probe plays: the guest itself (dom0), the toolstack building a domU, or the
#: toolstack of a running domU whose agent issues the guest's steps itself (see
#: pvlab.verify.plan).
ReplayMode = Literal["dom0", "toolstack", "agent"]

#: the modes in which the guest's own steps are issued by the guest (dom0 itself, or the
#: agent domU)
GUEST_ISSUES = ("dom0", "agent")


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
    by: str = ""  # who issued it on Xen: "dom0" or "domU" (set by pvlab.verify.plan)


@dataclass
class ScenarioPlan:
    id: int
    name: str
    source: str
    mode: ReplayMode
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
    #: profile behaviours the hypervisor under test lacks (pvlab.verify.xenbuild.build_lacks)
    lacks: frozenset[str] = frozenset()
    #: who plays each scenario domain on Xen ("dom0": the probe, "domU": the agent); set by
    #: pvlab.verify.plan, which replays `as:` and `foreign:` itself (the registry's guard
    #: skips them in a plan without it)
    domains: dict[str, str] | None = None

    @property
    def boot(self) -> int:
        """Which probe (32 or 64) replays it: toolstack and agent scenarios always use the
        64-bit one (it embeds both agent images)."""
        return self.bitness if self.mode == "dom0" else 64

    @property
    def dom0_maps(self) -> bool:
        """dom0 (the probe) unmaps a grant by its handle number: dom0's maptrack must be as
        fresh as pvlab's, handles from 0 (the first scenario of a boot,
        pvlab.verify.runner.fresh_dom0_batches). A named handle is the one Xen returned."""
        return any(s.code in (OP_GRANT_UNMAP, OP_GRANT_UNMAP_REPLACE) and s.target is None
                   and s.by == "dom0" for s in self.replayed)

    @property
    def replayed(self) -> list[StepPlan]:
        return [] if self.skip else [s for s in self.steps if s.skip is None]

    def frame_index(self, name: str) -> int:
        for i, f in enumerate(self.frames):
            if f.name == name:
                return i
        raise PlanError(f"unknown frame '{name}'")


def op_of(step: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    keys = [k for k in step if k != "expect"]
    if len(keys) != 1:
        raise PlanError(f"a step needs exactly one operation key, got {sorted(keys)}")
    args = step[keys[0]]
    return keys[0], args if isinstance(args, dict) else {}


def assist_mask(names: Any) -> int:
    mask = 0
    for name in names or []:
        mask |= 1 << assist_type(name)
    return mask


def assist_type(name: Any) -> int:
    if isinstance(name, int):
        return name
    if str(name) in VMASST:
        return VMASST[str(name)]
    raise PlanError(f"unknown VM-assist '{name}'")


def frame_plan(name: str, spec: dict[str, Any], pvlab_mfn: int | None) -> FramePlan:
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
            raise Unreplayable(f"frame {name}: above {above} is beyond the QEMU machine's RAM")
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
            raise Unreplayable(f"frame {name}: below {below} is too low to request from Xen")
    if owner == "other":
        return FramePlan(name, FK_OTHER_HIGH if high else FK_OTHER_LOW, 0 if high else bits, note)
    if owner == "dom0":
        return FramePlan(name, FK_DOM0_HIGH if high else FK_DOM0_LOW, 0 if high else bits, note)
    return FramePlan(name, FK_HIGH if high else FK_LOW, 0 if high else bits, note)


class Unreplayable(Exception):
    pass


def entry_plan(plan: ScenarioPlan, spec: dict[str, Any]) -> tuple[int | None, int]:
    """(target frame index or None, flags or raw value) of an entry spec."""
    if "value" in spec:
        value = int(spec["value"])
        mfn = (value >> PAGE_SHIFT) & ADDR_MFN_MASK
        exact = exact_frame(plan, mfn) if value & 1 else None
        if exact is not None:
            return exact, value & ~(ADDR_MFN_MASK << PAGE_SHIFT)
        return None, value
    flags = parse_flags(spec.get("flags", []))
    if "to" in spec:
        return plan.frame_index(str(spec["to"])), flags
    if "mfn" in spec:
        exact = exact_frame(plan, int(spec["mfn"]))
        if exact is not None:
            return exact, flags
        return None, (int(spec["mfn"]) << PAGE_SHIFT) | flags
    return None, flags


ADDR_MFN_MASK = (1 << 40) - 1


def exact_frame(plan: ScenarioPlan, mfn: int) -> int | None:
    """The scenario frame whose MFN (exact, or pvlab's) is `mfn`."""
    for i, f in enumerate(plan.frames):
        if f.kind == FK_EXACT and f.mfn == mfn:
            return i
        if plan.pvlab_frames.get(f.name) == mfn:
            return i
    return None


def raw_mfn(plan: ScenarioPlan, target: int | None, value: int) -> int | None:
    """The machine frame a present raw entry names outside the scenario's frames, if any."""
    if target is not None or not value & 1:
        return None
    mfn = (value >> PAGE_SHIFT) & ADDR_MFN_MASK
    # the first MiB belongs to dom_io on real Xen as in pvlab: the same frame on both sides
    return None if mfn < FIRST_MIB_MFNS else mfn


FIRST_MIB_MFNS = 0x100


