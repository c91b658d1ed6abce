# SPDX-License-Identifier: MIT
"""Orchestrate `pvlab verify`: plan every scenario, boot one Xen per (profile, probe bitness),
and compare each replayed step with pvlab's own result."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from pvlab.errors import PvlabError
from pvlab.verify.boot import boot, boot_groups, build_probe, cmdline_words
from pvlab.verify.compare import PvlabStep, ScenarioReport, compare
from pvlab.verify.logparse import XenPanic, XenScenario, XenStep, parse_log
from pvlab.verify.plan import MULTICALL_SUB, PlanError, ScenarioPlan, plan_scenario
from pvlab.verify.xenbuild import build_lacks, xen_build_of

Progress = Callable[[str], None]


def pvlab_side(path: Path, profile: str, build: str = "debug",
               ) -> tuple[dict[int, PvlabStep], dict[str, int]]:
    """pvlab's own result for every step of the scenario at `path`, and its frame numbers."""
    from pvlab.scenario import load_scenario, run_scenario

    run = run_scenario(load_scenario(path), profile=profile, build=build)
    steps = {}
    for s in run.steps:
        if s.is_check:
            result = "held" if s.held else "failed"
        else:
            result = s.outcome.result
        steps[s.index] = PvlabStep(result, s.expected)
        for k, (call, out) in enumerate(zip(s.args.get("calls") or [], s.outcome.calls,
                                            strict=False), start=1):
            steps[s.index * MULTICALL_SUB + k] = PvlabStep(out.result,
                                                         call.expected_for(run.profile))
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
           xen_build: str | None = None) -> list[ScenarioReport]:
    """Replay `paths` on the hypervisor `xen` (playing `profile`); one report per scenario.

    `xen_build` ("debug"/"release", default: read from the build's configuration) decides
    which scenarios apply and how pvlab models the build. When Xen panics, the panic is that
    scenario's result; Xen is booted again for the scenarios that had not run yet."""
    build = xen_build or xen_build_of(xen)
    lacks = build_lacks(xen, profile)
    plans: list[ScenarioPlan] = []
    sides: dict[int, tuple[dict[int, PvlabStep], dict[str, int]]] = {}
    for sid, path in enumerate(paths, start=1):
        steps, frames = pvlab_side(path, profile, build)
        try:
            plan = plan_scenario(load_data(path), id=sid, source=str(path), pvlab_frames=frames,
                                 xen_build=build, lacks=lacks)
        except (PlanError, KeyError, TypeError, ValueError) as err:
            raise PvlabError(f"{path}: cannot plan a replay ({err})",
                             "check the scenario with `pvlab run`") from err
        plans.append(plan)
        sides[sid] = (steps, frames)
    reports: dict[int, ScenarioReport] = {}
    tag = profile if build == "debug" else f"{profile}, {build} build"
    boot_no = 0
    with tempfile.TemporaryDirectory(prefix="pvlab-verify-") as tmp:
        for bits, words, todo in (
                (bits, words, batch)
                for bits, words in boot_groups(plans)  # one boot per bitness and command line
                for batch in fresh_dom0_batches([p for p in plans if p.boot == bits
                                                 and not p.skip and cmdline_words(p) == words])):
            while todo:
                boot_no += 1
                progress(f"[verify {tag}] building the {bits}-bit probe for {len(todo)} "
                         "scenario(s)")
                probe = build_probe(todo, bits, Path(tmp) / f"probe{bits}-{boot_no}")
                progress(f"[verify {tag}] booting Xen ({xen}) with the {bits}-bit probe as dom0 "
                         "under QEMU (TCG)" + (f", boot {boot_no}" if boot_no > 1 else ""))
                log = (boot(xen, probe, timeout=timeout, cmdline=words) if words  # xen_cmdline
                       else boot(xen, probe, timeout=timeout))
                if keep_logs is not None:
                    keep_logs.mkdir(parents=True, exist_ok=True)
                    suffix = f"-{boot_no}" if boot_no > 1 else ""
                    suffix += "".join(f"-{w}".replace(",", "_") for w in words)
                    (keep_logs / f"serial-{profile}-{build}-{bits}{suffix}.log").write_text(log)
                parsed = parse_log(log)
                problem = None
                panic = parsed.panic
                if panic is not None:
                    where = (f"scenario {panic.scenario}" if panic.scenario is not None
                             else "before any scenario")
                    progress(f"[verify {tag}] Xen panicked in {where}: {panic.message}")
                    problem = f"Xen panicked earlier in this boot ({panic.message})"
                elif not parsed.done:
                    last = parsed.last_xen_lines[-1] if parsed.last_xen_lines else "no Xen output"
                    problem = f"the probe did not finish (last Xen line: {last})"
                progress(f"[verify {tag}] Xen {parsed.xen_version or '?'} replayed "
                         f"{len(parsed.scenarios)} scenario(s)")
                rest: list[ScenarioPlan] = []
                for plan in todo:
                    steps, frames = sides[plan.id]
                    xs = parsed.scenarios.get(plan.id)
                    if panic is not None and panic.scenario == plan.id:
                        xs = _crashed(plan, xs, panic)
                    elif panic is not None and (xs is None or not xs.ended):
                        rest.append(plan)  # not reached before the panic: boot again
                        continue
                    reports[plan.id] = compare(plan, profile, steps, frames, xs, problem)
                # boot again only while each boot makes progress (a panic in set-up of the
                # first scenario would otherwise loop)
                todo = rest if panic is not None and len(rest) < len(todo) else []
                for plan in rest if not todo else []:
                    steps, frames = sides[plan.id]
                    reports[plan.id] = compare(plan, profile, steps, frames, None, problem)
    for plan in plans:
        if plan.id not in reports:
            steps, frames = sides[plan.id]
            reports[plan.id] = compare(plan, profile, steps, frames, None, None)
    return [reports[p.id] for p in plans]


def fresh_dom0_batches(todo: list[ScenarioPlan]) -> list[list[ScenarioPlan]]:
    """The boots `todo` needs: a scenario in which dom0 unmaps grants by handle number
    (`ScenarioPlan.dom0_maps`) needs dom0's maptrack as fresh as pvlab's (handles from 0; a
    handle left behind by an earlier scenario, whose domain is gone, crashes dom0 when used),
    so each runs first in a boot of its own; the other scenarios follow the first one."""
    mapping = [p for p in todo if p.dom0_maps]
    rest = [p for p in todo if not p.dom0_maps]
    if not mapping:
        return [rest] if rest else []
    return [mapping[:1] + rest, *([p] for p in mapping[1:])]


def _crashed(plan: ScenarioPlan, xs: XenScenario | None, panic: XenPanic) -> XenScenario:
    """The scenario Xen panicked in: the panic is the result of the replayed step after the
    last one the probe reported (a panic during set-up is the scenario's problem)."""
    xs = xs or XenScenario()
    if panic.after_step is None:
        xs.setup_failed = f"Xen panicked during set-up: {panic.message}"
        return xs
    following = [s.index for s in plan.replayed if s.index > panic.after_step]
    if following:
        xs.steps[following[0]] = XenStep(panic=panic, log=[panic.message, *panic.trace])
    xs.ended = True
    return xs
