# SPDX-License-Identifier: MIT
"""Running a learner's or an exercise's scenario, and reading what decided its outcome."""

from __future__ import annotations

from dataclasses import dataclass

from pvlab.exercises.answers import RULE_IDS
from pvlab.scenario import Scenario, ScenarioRun, StepResult, load_scenario, run_scenario
from pvlab.trace import Outcome


def load_text(text: str, name: str) -> Scenario:
    return load_scenario(text if text.endswith("\n") else text + "\n", source=f"<{name}>")


def failing_rule(outcome: Outcome) -> str | None:
    """The id of the registered rule that refused the operation (None when it passed)."""
    for ev in outcome.events:
        if ev.decision == "fail" and ev.check in RULE_IDS:
            return ev.check
    return None


def last_operation(run: ScenarioRun) -> StepResult | None:
    """The last step that is an operation (not an expect_* check)."""
    for s in reversed(run.steps):
        if not s.is_check:
            return s
    return None


@dataclass(frozen=True)
class Observed:
    result: str
    rule: str | None
    step: StepResult


def observe(scn: Scenario, *, profile: str | None = None) -> tuple[ScenarioRun, Observed | None]:
    run = run_scenario(scn, profile=profile)
    last = last_operation(run)
    if last is None:
        return run, None
    return run, Observed(last.outcome.result, failing_rule(last.outcome), last)
