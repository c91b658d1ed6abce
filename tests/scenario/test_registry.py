# SPDX-License-Identifier: MIT
"""The step registry: one definition per operation drives parsing, running, the schema,
the replay plan and the pictures' level hints. Adding an operation is one `@step`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pvlab.scenario import ScenarioError, ScenarioRun, load_scenario, run_scenario
from pvlab.scenario.params import FrameRef, param
from pvlab.scenario.registry import STEPS, StepArgs, check_ops, step, steps
from pvlab.scenario.schema import scenario_schema
from pvlab.trace import Outcome
from pvlab.verify.plan import plan_scenario
from pvlab.verify.replay import OP_PIN, ScenarioPlan, StepPlan
from pvlab.xen import hypercalls


@dataclass(frozen=True, kw_only=True)
class PinTwiceArgs(StepArgs):
    frame: FrameRef = param("frame", help="the table")
    level: int = param("int", 1, lo=1, hi=4, help="its level")


def _replay(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
    return StepPlan(i, "pin_twice", OP_PIN, plan.frame_index(str(a["frame"])),
                    int(a.get("level", 1)))


@pytest.fixture
def pin_twice() -> Iterator[None]:
    """A test-only operation, registered as a plugin would register it."""
    steps()

    @step("pin_twice", PinTwiceArgs, summary="pin, then pin again (-EINVAL: already pinned)",
          replay=_replay, level_hint=lambda a, abi: (a.frame, a.level))
    def _run(run: ScenarioRun, a: PinTwiceArgs) -> Outcome:
        run.guest.pin(run.mfn(a.frame), a.level)
        return hypercalls.mmuext_op(run.xen, run.guest.domain, a.level - 1, run.mfn(a.frame))

    yield
    del STEPS["pin_twice"]


DOC = """
name: twice
frames: {l1: {}}
steps:
  - pin_twice: {frame: l1}
    expect: EINVAL
"""


def test_a_registered_step_parses_runs_and_is_in_the_schema(pin_twice: None) -> None:
    scn = load_scenario(DOC)
    (s,) = scn.steps
    assert s.params == PinTwiceArgs(frame="l1") and s.args == {"frame": "l1"}
    run = run_scenario(scn)
    assert run.ok and run.steps[0].result == "EINVAL"
    assert "pin_twice" in scenario_schema()["$defs"]


def test_its_arguments_get_the_clear_messages(pin_twice: None) -> None:
    with pytest.raises(ScenarioError, match=r"step 1 \(pin_twice\): key 'level': 9 is out of "
                                            r"range \(1-4\)"):
        load_scenario(DOC.replace("{frame: l1}", "{frame: l1, level: 9}"))
    with pytest.raises(ScenarioError, match=r"key 'frame': unknown frame 'l9'"):
        load_scenario(DOC.replace("{frame: l1}", "{frame: l9}"))


def test_its_replay_comes_from_the_registry(pin_twice: None) -> None:
    import yaml

    plan = plan_scenario(yaml.safe_load(DOC), id=1)
    assert [(s.op, s.code, s.skip) for s in plan.steps] == [("pin_twice", OP_PIN, None)]


def test_every_operation_has_a_summary_and_a_replay_or_a_reason() -> None:
    for op, kind in steps().items():
        assert kind.summary, op
        assert kind.replay is not None or kind.no_replay, op
    assert check_ops() == {"expect_page", "expect_entry", "expect_grant"}
    pin = steps()["pin"]
    assert pin.required == {"frame", "level"} and pin.frame_fields == ("frame",)
    assert pin.form_fields == ("frame", "level")
    assert steps()["mmu_update"].frame_fields == ("to", "table")


def test_registering_an_operation_twice_is_refused(pin_twice: None) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        @step("pin_twice", PinTwiceArgs, summary="again")
        def _other(run: ScenarioRun, a: PinTwiceArgs) -> Outcome:
            raise AssertionError


def test_the_worked_example_in_the_architecture_doc_runs() -> None:
    """docs/architecture.md "Adding an operation": its code registers a working step."""
    import re
    from pathlib import Path

    import yaml

    from pvlab.scenario import operations

    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    match = re.search(r"### Adding an operation.*?```python\n(.*?)```", doc, re.S)
    assert match, "docs/architecture.md lost its worked example"
    steps()
    namespace = dict(vars(operations))
    try:
        exec("from __future__ import annotations\n" + match.group(1), namespace)  # noqa: S102
        text = ("name: t\nguest: {vcpu0_initialised: true}\nsteps:\n"
                "  - mmuext_flush_all: {}\n    expect: ok\n")
        run = run_scenario(load_scenario(text))
        assert run.ok and run.steps[0].result == "ok"
        (planned,) = plan_scenario(yaml.safe_load(text), id=1).steps
        assert planned.skip is None and planned.arg == hypercalls.MMUEXT_TLB_FLUSH_ALL
    finally:
        STEPS.pop("mmuext_flush_all", None)
