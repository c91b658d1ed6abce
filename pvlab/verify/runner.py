# SPDX-License-Identifier: MIT
"""Orchestrate `pvlab verify`: plan every scenario, boot one Xen per (profile, probe bitness),
and compare each replayed step with pvlab's own result."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from pvlab.errors import PvlabError
from pvlab.verify.boot import boot, build_probe
from pvlab.verify.compare import PvlabStep, ScenarioReport, compare
from pvlab.verify.logparse import parse_log
from pvlab.verify.plan import PlanError, ScenarioPlan, plan_scenario

Progress = Callable[[str], None]


def pvlab_side(path: Path, profile: str) -> tuple[dict[int, PvlabStep], dict[str, int]]:
    """pvlab's own result for every step of the scenario at `path`, and its frame numbers."""
    from pvlab.scenario import load_scenario, run_scenario

    run = run_scenario(load_scenario(path), profile=profile)
    steps = {}
    for s in run.steps:
        if s.is_check:
            result = "held" if s.held else "failed"
        else:
            result = s.outcome.result
        steps[s.index] = PvlabStep(result, s.expected)
    return steps, dict(run.frames)


def load_data(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PvlabError(f"{path}: cannot read the scenario ({err})", "check the file") from err
    if not isinstance(data, dict):
        raise PvlabError(f"{path}: not a scenario mapping", "see docs/scenarios.md")
    return data


def verify(paths: list[Path], profile: str, xen: Path, *, timeout: float = 300.0,
           progress: Progress = lambda _msg: None, keep_logs: Path | None = None,
           ) -> list[ScenarioReport]:
    """Replay `paths` on the hypervisor `xen` (playing `profile`); one report per scenario."""
    plans: list[ScenarioPlan] = []
    sides: dict[int, tuple[dict[int, PvlabStep], dict[str, int]]] = {}
    for sid, path in enumerate(paths, start=1):
        steps, frames = pvlab_side(path, profile)
        try:
            plan = plan_scenario(load_data(path), id=sid, source=str(path), pvlab_frames=frames)
        except (PlanError, KeyError, TypeError, ValueError) as err:
            raise PvlabError(f"{path}: cannot plan a replay ({err})",
                             "check the scenario with `pvlab run`") from err
        plans.append(plan)
        sides[sid] = (steps, frames)
    reports: dict[int, ScenarioReport] = {}
    with tempfile.TemporaryDirectory(prefix="pvlab-verify-") as tmp:
        for bits in (32, 64):
            group = [p for p in plans if p.boot == bits and not p.skip]
            if not group:
                continue
            progress(f"[verify {profile}] building the {bits}-bit probe for {len(group)} "
                     "scenario(s)")
            probe = build_probe(group, bits, Path(tmp) / f"probe{bits}")
            progress(f"[verify {profile}] booting Xen ({xen}) with the {bits}-bit probe as dom0 "
                     "under QEMU (TCG)")
            log = boot(xen, probe, timeout=timeout)
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                (keep_logs / f"serial-{profile}-{bits}.log").write_text(log)
            parsed = parse_log(log)
            problem = None
            if not parsed.done:
                last = parsed.last_xen_lines[-1] if parsed.last_xen_lines else "no Xen output"
                problem = f"the probe did not finish (last Xen line: {last})"
            progress(f"[verify {profile}] Xen {parsed.xen_version or '?'} replayed "
                     f"{len(parsed.scenarios)} scenario(s)")
            for plan in group:
                steps, frames = sides[plan.id]
                reports[plan.id] = compare(plan, profile, steps, frames,
                                           parsed.scenarios.get(plan.id), problem)
    for plan in plans:
        if plan.id not in reports:
            steps, frames = sides[plan.id]
            reports[plan.id] = compare(plan, profile, steps, frames, None, None)
    return [reports[p.id] for p in plans]
