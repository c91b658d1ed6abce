# SPDX-License-Identifier: MIT
"""Run a scenario: set the guest up, perform each step, compare with expectations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pvlab.errors import PvlabError
from pvlab.trace import Counters, Outcome, Tracer
from pvlab.x86.flags import flag_names, make_entry
from pvlab.xen.domain import vm_assist_number
from pvlab.xen.hypervisor import Guest, Xen
from pvlab.xen.machine import AllocError
from pvlab.xen.page_info import DOMID_IO, TYPE_BY_NAME
from pvlab.xen.profiles import get_profile

from .model import CHECK_OPS, EntrySpec, Scenario, ScenarioError, Step
from .registry import EXTRA_STEPS, load_plugins


@dataclass
class StepResult:
    index: int  # 1-based step number
    op: str
    args: dict[str, Any]
    outcome: Outcome
    expected: str | None
    held: bool | None  # None when nothing was expected
    description: str = ""

    @property
    def result(self) -> str:
        return self.outcome.result

    @property
    def is_check(self) -> bool:
        return self.op in CHECK_OPS


@dataclass
class ScenarioRun:
    scenario: Scenario
    profile: str
    xen: Xen
    guest: Guest
    frames: dict[str, int]
    steps: list[StepResult] = field(default_factory=list)
    other: Guest | None = None

    @property
    def domain(self) -> Guest:
        return self.guest

    @property
    def ok(self) -> bool:
        return all(s.held is not False for s in self.steps)

    @property
    def crashed(self) -> StepResult | None:
        """The step that made Xen panic (nothing runs after it), if any."""
        for s in self.steps:
            if s.outcome.crashed:
                return s
        return None

    @property
    def last(self) -> StepResult | None:
        return self.steps[-1] if self.steps else None

    def counters(self) -> Counters:
        total = Counters()
        for s in self.steps:
            total.add(s.outcome.counters)
        return total

    def frame_name(self, mfn: int) -> str | None:
        for name, m in self.frames.items():
            if m == mfn:
                return name
        return None

    # used by step runners
    def mfn(self, ref: str | int) -> int:
        return self.frames[ref] if isinstance(ref, str) else int(ref)


def _entry_value(run: ScenarioRun, args: dict[str, Any] | EntrySpec) -> int:
    get = args.get if isinstance(args, dict) else (lambda k, d=None: getattr(args, k, d))
    value = get("value")
    if value is not None:
        return int(value)
    to, mfn, flags = get("to"), get("mfn"), get("flags") or 0
    if to is not None:
        return make_entry(run.mfn(to), flags)
    if mfn is not None:
        return make_entry(int(mfn), flags)
    return int(flags)


def _setup(scn: Scenario, profile: str, build: str | None = None) -> ScenarioRun:
    try:
        xen = Xen(profile, scn.host_memory, placement=scn.placement, seed=scn.seed,
                  build=scn.xen_build or build)
    except PvlabError as e:
        raise ScenarioError(f"{scn.source}: {e.message}", e.fix) from None
    g = scn.guest
    guest = xen.create_domain(g.bitness, vcpus=g.vcpus, vm_assists=g.vm_assists,
                              privileged=g.privileged, name=scn.name)
    if g.vcpu0_initialised:
        # A running guest: its boot pagetables are outside the scenario.
        guest.domain.vcpus[0].is_initialised = True
    run = ScenarioRun(scn, profile, xen, guest, {})
    # Exact MFNs first, so "any frame" requests cannot take them.
    order = sorted(scn.frames.values(), key=lambda f: (f.mfn is None, f.below is None and
                                                       f.above is None))
    for f in order:
        try:
            if f.owner == "io":
                if xen.machine.owner(f.mfn or 0) != DOMID_IO:
                    raise ScenarioError(f"{scn.source}: frame {f.name!r}: MFN {f.mfn:#x} is not "
                                        "a dom_io frame", "use an MFN below 0x100 (first MiB)")
                run.frames[f.name] = int(f.mfn or 0)
                continue
            owner = guest
            if f.owner == "other":
                if run.other is None:
                    run.other = xen.create_domain(64, name="other")
                owner = run.other
            run.frames[f.name] = owner.alloc_frame(below=f.below, above=f.above, mfn=f.mfn)
        except AllocError as e:
            raise ScenarioError(f"{scn.source}: frame {f.name!r}: {e.message}", e.fix) from None
    for tname, entries in scn.tables.items():
        for entry in entries:
            xen.machine.write_entry(run.frames[tname], entry.index, _entry_value(run, entry))
    return run


def _check_page(run: ScenarioRun, args: dict[str, Any]) -> Outcome:
    mfn = run.mfn(args["frame"])
    pi = run.xen.machine.page(mfn)
    t = Tracer(f"expect_page {args['frame']}")
    actual = {"type": pi.type_name, "type_count": pi.type_count, "count": pi.count,
              "pinned": pi.pinned, "validated": pi.validated, "pae_xen_l2": pi.pae_xen_l2}
    bad = []
    for key in ("type", "type_count", "count", "pinned", "validated", "pae_xen_l2"):
        if key in args:
            want = args[key]
            if key == "type":
                want = str(want)
                assert want in TYPE_BY_NAME
            if actual[key] != want:
                bad.append(f"{key} is {actual[key]}, expected {want}")
    detail = f"MFN {mfn:#x}: " + ", ".join(f"{k}={actual[k]}" for k in actual)
    if bad:
        t.event("expect_page", "fail", f"{detail}; " + "; ".join(bad), "page_info")
        t.outcome.failed_mfn = mfn
        return t.finish(0)
    t.event("expect_page", "pass", detail, "page_info", mfn=mfn)
    return t.finish(0)


def _check_entry(run: ScenarioRun, args: dict[str, Any]) -> Outcome:
    mfn = run.mfn(args["table"])
    idx = args["index"]
    actual = run.xen.machine.read_entry(mfn, idx)
    t = Tracer(f"expect_entry {args['table']}[{idx}]")
    bad = []
    if "value" in args and actual != args["value"]:
        bad.append(f"value is {actual:#x}, expected {args['value']:#x}")
    if "to" in args or "mfn" in args:
        want = run.mfn(args["to"]) if "to" in args else args["mfn"]
        if (actual >> 12) & ((1 << 40) - 1) != want:
            bad.append(f"points at {(actual >> 12) & ((1 << 40) - 1):#x}, expected {want:#x}")
    if "flags" in args:
        got = actual & 0xFFF0_0000_0000_0FFF
        if got != args["flags"]:
            bad.append(f"flags are {'|'.join(flag_names(got)) or '0'}, expected "
                       f"{'|'.join(flag_names(args['flags'])) or '0'}")
    if "present" in args and bool(actual & 1) != bool(args["present"]):
        bad.append(f"present is {bool(actual & 1)}")
    names = "|".join(flag_names(actual)) or "-"
    detail = f"entry {idx} of MFN {mfn:#x} reads {actual:#x} ({names})"
    t.event("expect_entry", "fail" if bad else "pass", detail + ("; " + "; ".join(bad) if bad
                                                               else ""), "guest read", mfn=mfn,
            index=idx)
    return t.finish(0)


def _do_write(run: ScenarioRun, args: dict[str, Any]) -> Outcome:
    mfn = run.mfn(args["table"])
    t = Tracer(f"write {args['table']}[{args['index']}]")
    pi = run.xen.machine.page(mfn)
    if pi.owner != run.guest.domid:
        t.event("write", "fail", f"MFN {mfn:#x} is not the guest's frame", "guest write",
                mfn=mfn)
        return t.finish(-14)
    if pi.is_live_pagetable:
        t.event("write", "fail", f"MFN {mfn:#x} is a live L{pi.level} pagetable, mapped read-only: "
                "a direct write faults (use mmu_update)", "guest write (#PF)", mfn=mfn,
                index=args["index"])
        return t.finish(-14)
    run.xen.machine.write_entry(mfn, args["index"], _entry_value(run, args))
    t.event("write", "pass", f"entry {args['index']} of MFN {mfn:#x} written directly",
            "guest write", mfn=mfn, index=args["index"])
    return t.finish(0)


def _multicall(run: ScenarioRun, calls: list[Step]) -> Outcome:
    """`do_multicall`: every entry runs in order, whatever the previous one returned; each
    gets its own result (`multicall_entry.result`), the batch itself returns 0."""
    t = Tracer(f"multicall({len(calls)} calls)")
    t.outcome.counters.hypercalls += 1
    for call in calls:
        out = perform(run, call)
        t.outcome.calls.append(out)
        t.outcome.counters.add(out.counters)
        t.event("multicall", "info", f"call {call.number}: {call.describe()} -> {out.result}",
                "do_multicall (arch_do_multicall_call)")
        if out.crashed:
            t.outcome.crash = out.crash
            break
    return t.finish(0)


def calls_held(step: Step, outcome: Outcome, profile: str) -> bool | None:
    """Whether the expectations of a multicall's calls held (None: none expected)."""
    verdicts = [out.result == call.expected_for(profile)
                for call, out in zip(step.args.get("calls") or [], outcome.calls, strict=False)
                if call.expected_for(profile) is not None]
    return all(verdicts) if verdicts else None


def perform(run: ScenarioRun, step: Step) -> Outcome:
    """Carry out one step on the run's state."""
    g = run.guest
    a = step.args
    op = step.op
    if op == "pin":
        return g.pin(run.mfn(a["frame"]), a["level"])
    if op == "unpin":
        return g.unpin(run.mfn(a["frame"]))
    if op == "new_baseptr":
        return g.new_baseptr(run.mfn(a["frame"]), vcpu=a.get("vcpu", 0))
    if op == "new_user_baseptr":
        return g.new_user_baseptr(run.mfn(a["frame"]), vcpu=a.get("vcpu", 0))
    if op == "tlb_flush":
        return g.tlb_flush()
    if op == "mmu_update":
        from pvlab.xen import hypercalls as hc
        cmd = hc.MMU_PT_UPDATE_PRESERVE_AD if a.get("preserve_ad") else hc.MMU_NORMAL_PT_UPDATE
        return hc.mmu_update(run.xen, g.domain, run.mfn(a["table"]), a["index"],
                             _entry_value(run, a), cmd=cmd)
    if op == "machphys_update":
        return g.machphys_update(run.mfn(a["frame"]), a["pfn"])
    if op == "vm_assist":
        if "cmd" in a:
            return g.vm_assist(a["cmd"], a["type"])
        ((verb, name),) = a.items()
        return g.vm_assist(verb, name)
    if op in ("update_va_mapping", "update_va_mapping_otherdomain"):
        from pvlab.xen import hypercalls as hc
        pg_owner = None
        if op == "update_va_mapping_otherdomain":
            if a["domain"] == "other" and run.other is None:
                run.other = run.xen.create_domain(64, name="other")
            pg_owner = (run.other if a["domain"] == "other" else g).domain  # type: ignore[union-attr]
        return hc.update_va_mapping(run.xen, g.domain, a["va"], _entry_value(run, a),
                                    vcpu=a.get("vcpu", 0), flags=a.get("uvmf", 0),
                                    pg_owner=pg_owner)
    if op == "mmuext":
        from pvlab.xen import hypercalls as hc
        return hc.mmuext_op(run.xen, g.domain, a["cmd"],
                            run.mfn(a["frame"]) if "frame" in a else 0, vcpu=a.get("vcpu", 0),
                            linear_addr=a.get("va", 0), nr_ents=a.get("ents", 0),
                            src_mfn=run.mfn(a["src"]) if "src" in a else 0)
    if op == "vcpu_op_initialise":
        return g.vcpu_op_initialise(a["vcpu"], cr3=run.mfn(a["cr3"]))
    if op == "vcpu_initialise":
        assists = a.get("vm_assists")
        return g.set_vcpu_context(a["vcpu"], cr3=run.mfn(a["cr3"]),
                                  vm_assists=[vm_assist_number(x) for x in assists]
                                  if assists is not None else None)
    if op == "vcpu_reset":
        return g.vcpu_reset(a["vcpu"])
    if op == "multicall":
        return _multicall(run, a["calls"])
    if op == "write":
        return _do_write(run, a)
    if op == "expect_page":
        return _check_page(run, a)
    if op == "expect_entry":
        return _check_entry(run, a)
    if op in EXTRA_STEPS:
        return EXTRA_STEPS[op].run(run, step)
    raise ScenarioError(f"{run.scenario.source}: step {step.number}: unknown operation {op!r}",
                        "see docs/scenarios.md")


def run_scenario(scn: Scenario, *, profile: str | None = None, stop_after: int | None = None,
                 on_step: Callable[[StepResult], None] | None = None,
                 build: str | None = None) -> ScenarioRun:
    """Run `scn` under `profile` (default: the file's `xen:`, else the newest).

    `stop_after=N` runs only the first N steps (0: set-up only). `build` ("debug" or
    "release") applies when the file has no `xen_build:`. A step that makes Xen panic
    (result "crash") is the last one run.
    """
    load_plugins()
    requested = profile or scn.xen or get_profile(None).name
    prof = get_profile(requested).name
    run = _setup(scn, prof, build)
    for step in scn.steps[: stop_after if stop_after is not None else None]:
        try:
            outcome = perform(run, step)
        except ScenarioError:
            raise
        except PvlabError as e:
            raise ScenarioError(f"{scn.source}: step {step.number} ({step.op}): {e.message}",
                                e.fix) from None
        if step.op in CHECK_OPS:
            held: bool | None = outcome.failure is None
            expected = None
        else:
            expected = step.expected_for(requested)
            held = None if expected is None else outcome.result == expected
            if step.op == "multicall":
                inner = calls_held(step, outcome, requested)
                if inner is not None:
                    held = inner if held is None else held and inner
        res = StepResult(step.number, step.op, dict(step.args), outcome, expected, held,
                         step.describe())
        run.steps.append(res)
        if on_step is not None:
            on_step(res)
        if outcome.crashed:
            break  # Xen panicked: the host is gone, no later step runs
    return run
