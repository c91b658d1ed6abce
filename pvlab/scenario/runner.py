# SPDX-License-Identifier: MIT
"""Run a scenario: set the guest up, perform each step, compare with expectations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pvlab.errors import PvlabError
from pvlab.trace import DOMAIN_CRASHED, Counters, Outcome
from pvlab.x86.flags import make_entry
from pvlab.xen.hypervisor import Guest, Xen
from pvlab.xen.machine import AllocError
from pvlab.xen.page_info import DOMID_IO
from pvlab.xen.profiles import get_profile

from .model import Scenario, ScenarioError, Step
from .params import Where
from .registry import check_ops, load_plugins, steps

if TYPE_CHECKING:
    from pvlab.toolstack.flow import FlowResult


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
        return self.op in check_ops()


@dataclass
class ScenarioRun:
    scenario: Scenario
    profile: str
    xen: Xen
    guest: Guest
    frames: dict[str, int]
    steps: list[StepResult] = field(default_factory=list)
    other: Guest | None = None
    #: The flows toolstack steps ran, in order (`process_l3` acts as the last one's guest).
    toolstack: list[FlowResult] = field(default_factory=list)
    #: The number of the step being performed.
    step_number: int = 0
    #: Every domain of the scenario by name (`domains:`; a `guest:` file has "guest").
    domains: dict[str, Guest] = field(default_factory=dict)
    #: Domains destroyed by a `destroy_domain` step: name -> that step's number.
    destroyed: dict[str, int] = field(default_factory=dict)
    #: Grant handles named by `grant_map ... handle: NAME`: name -> (mapper, handle).
    handles: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: The domain issuing the step being performed (its name).
    acting: str | None = None

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

    def domain_named(self, name: str) -> Guest:
        """The scenario domain `name` ("other": the anonymous domain of {owner: other})."""
        if name == "other":
            if self.other is None:
                self.other = self.xen.create_domain(64, name="other")
            return self.other
        return self.domains[name]

    def name_of(self, guest: Guest) -> str:
        for name, g in self.domains.items():
            if g is guest:
                return name
        return guest.domain.label


class EntryFields(Protocol):
    """An entry written as a raw `value`, or a target (`to` a frame, or `mfn`) plus flags."""

    @property
    def to(self) -> str | int | None: ...
    @property
    def mfn(self) -> int | None: ...
    @property
    def flags(self) -> int | None: ...
    @property
    def value(self) -> int | None: ...


def entry_value(run: ScenarioRun, entry: EntryFields) -> int:
    """The 64-bit entry `entry` describes, with frame names resolved in `run`."""
    if entry.value is not None:
        return entry.value
    if entry.to is not None:
        return make_entry(run.mfn(entry.to), entry.flags or 0)
    if entry.mfn is not None:
        return make_entry(entry.mfn, entry.flags or 0)
    return entry.flags or 0


def _setup(scn: Scenario, profile: str, build: str | None = None) -> ScenarioRun:
    try:
        xen = Xen(profile, scn.host_memory, placement=scn.placement, seed=scn.seed,
                  build=scn.xen_build or build, cmdline=scn.xen_cmdline, hardware=scn.hardware)
    except PvlabError as e:
        raise ScenarioError(f"{scn.source}: {e.message}", e.fix) from None
    specs = scn.domains or {"guest": scn.guest}
    made: dict[str, Guest] = {}
    for dname, g in specs.items():
        try:
            made[dname] = xen.create_domain(
                g.bitness, vcpus=g.vcpus, vm_assists=g.vm_assists, privileged=g.privileged,
                name=dname if scn.multi_domain else scn.name,
                max_maptrack_frames=g.max_maptrack_frames)
        except PvlabError as e:
            raise ScenarioError(f"{scn.source}: domain {dname!r}: {e.message}", e.fix) from None
        if g.vcpu0_initialised:
            # A running guest: its boot pagetables are outside the scenario.
            made[dname].domain.vcpus[0].is_initialised = True
    run = ScenarioRun(scn, profile, xen, made[scn.default_domain], {}, domains=made)
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
            owner = run.domain_named(f.owner)  # a scenario domain, or "other"
            run.frames[f.name] = owner.alloc_frame(below=f.below, above=f.above, mfn=f.mfn)
        except AllocError as e:
            raise ScenarioError(f"{scn.source}: frame {f.name!r}: {e.message}", e.fix) from None
    for tname, entries in scn.tables.items():
        for entry in entries:
            xen.machine.write_entry(run.frames[tname], entry.index, entry_value(run, entry))
    return run


def perform(run: ScenarioRun, step: Step) -> Outcome:
    """Carry out one step on the run's state, through its registered kind."""
    kind = steps().get(step.op)
    if kind is None:
        raise ScenarioError(f"{run.scenario.source}: step {step.number}: unknown operation "
                            f"{step.op!r}", "see docs/scenarios.md")
    params = step.params
    if params is None:  # a Step built by hand: check its mapping now
        at = Where(run.scenario.source, f"step {step.number} ({step.op})")
        params, _ = kind.parse(at, step.args, run.frames)
    run.step_number = step.number
    name = _issuer(run, step, kind.privileged_only)
    if name in run.destroyed and not kind.check:
        raise ScenarioError(f"{run.scenario.source}: step {step.number} ({step.op}): domain "
                            f"{name!r} was destroyed at step {run.destroyed[name]}: a dead "
                            "domain issues no hypercalls",
                            "remove the step, or issue it as another domain with as:")
    prev, prev_acting = run.guest, run.acting
    if name in run.domains:
        run.guest = run.domains[name]
    run.acting = name
    try:
        return kind.run(run, params)
    finally:
        run.guest, run.acting = prev, prev_acting


def _issuer(run: ScenarioRun, step: Step, privileged_only: bool) -> str:
    """Who issues `step`: its `as:`, else the issuer of the enclosing multicall, else the
    scenario's default (the first privileged domain for a toolstack step)."""
    if step.as_domain is not None:
        return step.as_domain
    if run.acting is not None:
        return run.acting
    if privileged_only:
        return run.scenario.toolstack_domain or run.scenario.default_domain
    return run.scenario.default_domain


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
        if step.op in check_ops():
            held: bool | None = outcome.failure is None
            expected = None
        else:
            expected = step.expected_for(requested)
            held = None if expected is None else outcome.result == expected
            inner = calls_held(step, outcome, requested)
            if inner is not None:
                held = inner if held is None else held and inner
        res = StepResult(step.number, step.op, dict(step.args), outcome, expected, held,
                         step.describe())
        run.steps.append(res)
        if on_step is not None:
            on_step(res)
        if outcome.crashed or outcome.fate == DOMAIN_CRASHED:
            break  # Xen panicked (the host is gone) or the guest crashed: nothing runs after
    return run


def calls_held(step: Step, outcome: Outcome, profile: str) -> bool | None:
    """Whether the expectations of a multicall's calls held (None: none expected)."""
    verdicts = [out.result == call.expected_for(profile)
                for call, out in zip(step.args.get("calls") or [], outcome.calls, strict=False)
                if isinstance(call, Step) and call.expected_for(profile) is not None]
    return all(verdicts) if verdicts else None
