# SPDX-License-Identifier: MIT
"""Flows: an ordered list of traced steps, each one :class:`~pvlab.trace.Outcome`.

A toolstack flow (domain build, dom0 build, restore) stops at its first failing step,
as libxenguest does. Its result keeps every step's outcome and can fold them into one
outcome whose events concatenate the steps' traces (what a scenario step returns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pvlab.errors import PvlabError
from pvlab.trace import Counters, Event, Outcome, Tracer, errno_name
from pvlab.xen.hypervisor import Guest, Xen


def allocated_mfn(out: Outcome) -> int:
    """The frame a successful `XENMEM_populate_physmap` handed back."""
    if out.allocated is None:
        raise AssertionError(f"{out.op} returned no frame")
    return out.allocated


def absorb(t: Tracer, out: Outcome, *, events: bool = True) -> None:
    """Add a hypercall's outcome to the step being traced: its counters and events."""
    t.outcome.counters.add(out.counters)
    if t.depth:
        c = t.outcome.counters
        c.max_depth = max(c.max_depth, out.counters.max_depth)
    if events:
        for ev in out.events:
            t.outcome.events.append(replace(ev, depth=ev.depth + t.depth))
    if out.rc and t.outcome.failed_mfn is None:
        t.outcome.failed_mfn = out.failed_mfn
        t.outcome.failed_index = out.failed_index


@dataclass
class FlowResult:
    """What a flow did: `steps` is the ordered list of (step name, Outcome)."""

    flow: str
    xen: Xen
    guest: Guest | None = None
    steps: list[tuple[str, Outcome]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for _, o in self.steps)

    @property
    def rc(self) -> int:
        """The first failing step's return code, else 0."""
        for _, o in self.steps:
            if o.rc:
                return o.rc
        return 0

    @property
    def result(self) -> str:
        return errno_name(self.rc)

    @property
    def failed_step(self) -> str | None:
        for name, o in self.steps:
            if o.rc:
                return name
        return None

    @property
    def step_names(self) -> list[str]:
        return [n for n, _ in self.steps]

    def step(self, name: str) -> Outcome:
        for n, o in self.steps:
            if n == name:
                return o
        raise KeyError(name)

    @property
    def reason(self) -> str:
        for _, o in self.steps:
            if o.rc:
                return o.reason
        return ""

    def counters(self) -> Counters:
        total = Counters()
        for _, o in self.steps:
            total.add(o.counters)
        return total

    def outcome(self, op: str | None = None) -> Outcome:
        """One outcome for the whole flow: each step as an info line, then its events."""
        out = Outcome(op=op or self.flow)
        for name, o in self.steps:
            out.events.append(Event("flow_step", "info", f"{name}: {o.result}",
                                    f"{self.flow} / {name}"))
            out.events.extend(replace(ev, depth=ev.depth + 1) for ev in o.events)
            out.counters.add(o.counters)
            if o.rc and not out.rc:
                out.rc = o.rc
                out.failed_mfn, out.failed_index = o.failed_mfn, o.failed_index
        return out

    def summary(self) -> list[str]:
        return [f"{name}: {o.result}" + (f" — {o.reason}" if o.rc else "")
                for name, o in self.steps]


def plan_order(default: Sequence[str], order: Iterable[str] | None,
               skip: Iterable[str] | None, *, flow: str) -> tuple[list[str], list[str]]:
    """The steps to run: `order` (a permutation or subset of `default`) minus `skip`."""
    known = list(default)
    if order is not None:
        order = [str(s) for s in order]
        for s in order:
            if s not in known:
                raise PvlabError(f"{flow}: unknown step {s!r} in order",
                                 f"use steps from: {', '.join(known)}")
        if len(set(order)) != len(order):
            raise PvlabError(f"{flow}: a step is listed twice in order",
                             "name each step at most once")
        steps = order
    else:
        steps = known
    skip_list = [str(s) for s in (skip or ())]
    for s in skip_list:
        if s not in known:
            raise PvlabError(f"{flow}: unknown step {s!r} in skip",
                             f"use steps from: {', '.join(known)}")
    run = [s for s in steps if s not in skip_list]
    return run, [s for s in known if s not in run]
