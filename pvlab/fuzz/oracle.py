# SPDX-License-Identifier: MIT
"""Run a batch of scenarios in pvlab and on real Xen, many scenarios per QEMU boot.

Built on `pvlab verify`'s parts (plan, probe build, boot, log parsing, comparison). What is
added: scenarios come as mappings (no files), the model may be any registered profile (a
test-only one too), and a Xen crash or hung probe does not end the batch: the scenario that
was running gets a :class:`Crash` with Xen's last lines (the panic and its call trace), and
the scenarios after it are replayed in a new boot.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvlab.verify.boot import boot, build_probe
from pvlab.verify.compare import PvlabStep, ScenarioReport, compare
from pvlab.verify.logparse import XenScenario, parse_log
from pvlab.verify.plan import ScenarioPlan, plan_scenario

Scenario = dict[str, Any]
Side = tuple[dict[int, PvlabStep], dict[str, int]]

_PANIC = re.compile(r"Panic on CPU|Assertion '|FATAL (?:PAGE FAULT|TRAP)|BUG at|"
                    r"ASSERT_UNREACHABLE|Xen BUG|Xen call trace|GENERAL PROTECTION FAULT")
_SCN_LINE = re.compile(r"PVLAB: scenario (\d+) ")
_STACK_WORDS = re.compile(r"^\(XEN\)\s+(?:[0-9a-f]{16}\s*)+$")  # raw stack dump: left out


def pvlab_side(data: Scenario, model: str) -> Side:
    """pvlab's result for every step of `data` under profile `model`, and its frames."""
    from pvlab.scenario import parse_scenario, run_scenario

    run = run_scenario(parse_scenario(data, source=str(data.get("name", "fuzz"))),
                       profile=model)
    steps = {}
    for s in run.steps:
        result = ("held" if s.held else "failed") if s.is_check else s.outcome.result
        steps[s.index] = PvlabStep(result, s.expected)
    return steps, dict(run.frames)


def plan_for(data: Scenario, sid: int, model: str) -> tuple[ScenarioPlan, Side]:
    """The replay plan of `data` (scenario number `sid` in its boot) and pvlab's side."""
    side = pvlab_side(data, model)
    plan = plan_scenario(data, id=sid, source=str(data.get("name", "")), pvlab_frames=side[1])
    return plan, side


@dataclass
class Crash:
    """Xen died (or the probe hung) while a scenario ran."""

    kind: str  # "panic" or "hang"
    headline: str  # the first line that says what happened
    lines: list[str]  # Xen's last lines: the message and its call trace
    step: int | None = None  # the step that was running (1-based), when known


@dataclass
class Result:
    data: Scenario
    report: ScenarioReport | None = None
    crash: Crash | None = None
    xen: XenScenario | None = None  # what the probe printed (every Xen line per step)

    def xen_lines_before(self, step: int) -> list[str]:
        """Every Xen line printed while the steps before `step` ran."""
        if self.xen is None:
            return []
        return [ln for k, xs in sorted(self.xen.steps.items()) if k < step for ln in xs.log]


@dataclass
class BatchFigures:
    boots: int = 0
    steps: int = 0  # steps replayed on Xen
    seconds_booting: float = 0.0


@dataclass
class _Case:
    data: Scenario
    plan: ScenarioPlan
    side: Side
    result: Result = field(init=False)

    def __post_init__(self) -> None:
        self.result = Result(self.data)


def crash_lines(log: str, sid: int | None) -> list[str]:
    """Xen's lines after the probe's last line about scenario `sid` (or the last 60)."""
    lines = log.splitlines()
    start = 0
    for i, line in enumerate(lines):
        m = _SCN_LINE.search(line)
        if m and (sid is None or int(m.group(1)) == sid):
            start = i + 1
    tail = [ln.rstrip("\r") for ln in lines[start:]
            if (ln.startswith("(XEN)") or "QEMU" in ln) and not _STACK_WORDS.match(ln)]
    return tail[-80:]


def classify_crash(lines: list[str]) -> Crash:
    for line in lines:
        if _PANIC.search(line):
            return Crash("panic", _strip(line), lines)
    return Crash("hang", lines[-1] if lines else "no Xen output", lines)


def _strip(line: str) -> str:
    return re.sub(r"^\(XEN\) (?:\[[ \d.]+\] )?", "", line).strip()


def run_batch(datas: list[Scenario], *, model: str, xen: Path, timeout: float | None = None,
              figures: BatchFigures | None = None, stop_at_crash: bool = False,
              progress: Callable[[str], None] = lambda _m: None) -> list[Result]:
    """Run every scenario of `datas` (each fully replayable) in pvlab under `model` and on
    the hypervisor `xen`; one result per scenario, in order. After a crash the rest of the
    batch is replayed in a new boot, unless `stop_at_crash` (they then have no result)."""
    figs = figures if figures is not None else BatchFigures()
    cases = []
    for sid, data in enumerate(datas, start=1):
        plan, side = plan_for(data, sid, model)
        cases.append(_Case(data, plan, side))
    pending = [c for c in cases if not c.plan.skip and c.plan.boot == 64]
    for c in cases:
        if c not in pending:  # not replayable in the shared 64-bit boot: reported as is
            c.result.report = compare(c.plan, model, *c.side, None, None)
    import time

    with tempfile.TemporaryDirectory(prefix="pvlab-fuzz-") as tmp:
        while pending:
            probe = build_probe([c.plan for c in pending], 64, Path(tmp) / "probe")
            t0 = time.monotonic()
            limit = timeout if timeout is not None else 60.0 + 2.0 * len(pending)
            log = boot(xen, probe, timeout=limit)
            figs.seconds_booting += time.monotonic() - t0
            figs.boots += 1
            parsed = parse_log(log)
            rest: list[_Case] = []
            for i, c in enumerate(pending):
                xs = parsed.scenarios.get(c.plan.id)
                if xs is not None and (xs.ended or xs.setup_failed):
                    c.result.report = compare(c.plan, model, *c.side, xs, None)
                    c.result.xen = xs
                    figs.steps += len(xs.steps)
                    continue
                if xs is None and i == 0:
                    # The probe never reached the first scenario: Xen or the probe broke.
                    lines = crash_lines(log, None)
                    crash = classify_crash(lines)
                    for d in pending:
                        d.result.crash = crash
                    break
                if xs is None:
                    rest = pending[i:]
                    break
                # This scenario began and never ended: Xen crashed or the probe hung.
                c.result.crash = classify_crash(crash_lines(log, c.plan.id))
                c.result.xen = xs
                replayed = c.plan.replayed
                if len(xs.steps) < len(replayed):
                    c.result.crash.step = replayed[len(xs.steps)].index
                figs.steps += len(xs.steps)
                rest = [] if stop_at_crash else pending[i + 1:]
                if rest:
                    progress(f"[fuzz] Xen {c.result.crash.kind} in {c.data.get('name')}: "
                             f"{c.result.crash.headline}; rebooting for {len(rest)} "
                             "scenario(s)")
                break
            pending = rest
    return [c.result for c in cases]
