# SPDX-License-Identifier: MIT
"""The flow scenario steps and the flow corpus under tests/scenarios/flows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab import ScenarioError, load_scenario, run_scenario

FLOWS = sorted((Path(__file__).parents[1] / "scenarios" / "flows").glob("*.yaml"))


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.name)
def test_flow_corpus(path: Path, profile: str) -> None:
    run = run_scenario(load_scenario(path), profile=profile)
    assert run.ok, [(s.op, s.result, s.expected) for s in run.steps]


def test_no_slack_profile_breaks_the_builder() -> None:
    run = run_scenario(load_scenario(FLOWS[3]), profile="no-slack")
    assert [s.result for s in run.steps] == ["ERANGE", "ok"]
    assert run.ok


def test_step_outcome_concatenates_and_fails_with_first_rc() -> None:
    scn = load_scenario("""
name: t
guest: {bitness: 32}
steps:
  - restore_domain: {vcpus: 2, l3s: {above: 4GiB}}
""")
    (step,) = run_scenario(scn, profile="4.19").steps
    assert step.result == "ERANGE"
    heads = [e.explanation for e in step.outcome.events if e.check == "flow_step"]
    assert heads == ["createdomain: ok", "populate_physmap: ok", "localise_pagetables: ok",
                     "update_vcpu_context: ERANGE"]
    assert "Failed to set vcpu1's basic info" in step.outcome.explain()


def test_bad_arguments_are_clear() -> None:
    # A bad argument is refused when the file is loaded, before anything runs.
    with pytest.raises(ScenarioError, match="step 1 \\(build_domain\\): key 'l3'"):
        load_scenario("name: t\nsteps:\n  - build_domain: {l3: {beyond: 4GiB}}\n")
    scn = load_scenario("name: t\nsteps:\n  - build_domain: {kernel: nope}\n")
    with pytest.raises(ScenarioError, match="unknown kernel kind"):
        run_scenario(scn)
    scn = load_scenario("name: t\nsteps:\n  - process_l3: {above: 4GiB}\n")
    with pytest.raises(ScenarioError, match="no domain was built"):
        run_scenario(scn)
    with pytest.raises(ScenarioError, match="unknown key"):
        load_scenario("name: t\nsteps:\n  - build_domain: {colour: red}\n")
