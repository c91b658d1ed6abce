# SPDX-License-Identifier: MIT
"""The scenario language's several domains: `domains:`, `as:`, domain-valued keys, grant
statuses as expectations, and the invariants over the multi-domain corpus (9xx)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.scenario import load_scenario, run_scenario
from pvlab.scenario.errors import ScenarioError
from pvlab.xen.invariants import audit

CORPUS = Path(__file__).parents[1] / "scenarios"
MULTI = sorted(CORPUS.glob("9[0-4]?-*.yaml"))

BASE = """
name: t
domains:
  dom0: {bitness: 64, privileged: true, vcpu0_initialised: true}
  guest: {bitness: 32}
frames:
  g: {}
  d: {owner: dom0}
steps:
"""


def _load(steps: str, head: str = BASE):  # type: ignore[no-untyped-def]
    return load_scenario(head + steps)


def test_domains_default_issuer_and_frame_owner() -> None:
    scn = _load("  - pin: {frame: g, level: 1}\n    expect: ok\n"
                "  - pin: {as: dom0, frame: d, level: 1}\n    expect: ok\n")
    assert scn.multi_domain and list(scn.domains) == ["dom0", "guest"]
    assert scn.default_domain == "guest" and scn.toolstack_domain == "dom0"
    assert scn.guest.bitness == 32  # scn.guest is the default domain's spec
    assert scn.frames["g"].owner == "guest" and scn.frames["d"].owner == "dom0"
    assert [scn.issuer(s) for s in scn.steps] == ["guest", "dom0"]
    run = run_scenario(scn)
    assert run.ok
    m = run.xen.machine
    assert m.owner(run.frames["d"]) == run.domains["dom0"].domid
    assert run.domains["dom0"].domain.privileged and run.domains["dom0"].bitness == 64


def test_guest_files_still_have_one_domain_named_guest() -> None:
    scn = load_scenario(CORPUS / "001-seed-issue-example.yaml")
    assert not scn.multi_domain and scn.default_domain == "guest"
    assert scn.issuer(scn.steps[0]) == "guest"


@pytest.mark.parametrize(("steps", "needle", "fix"), [
    ("  - pin: {as: dom1, frame: g, level: 1}\n", "unknown domain 'dom1'", "dom0, guest"),
    ("  - destroy_domain: {as: guest, domain: dom0}\n",
     "only a privileged domain issues it", "privileged: true"),
    ("  - grant_map: {as: dom0, from: nobody, ref: 1, pte: {table: d, index: 0}}\n",
     "key 'from': unknown domain 'nobody'", "DOMID_IO"),
    ("  - grant_map: {as: dom0, from: guest, ref: 1}\n", "needs an address", "pte:"),
    ("  - grant_map: {from: guest, ref: 1, va: 1, pte: {table: d, index: 0}}\n",
     "not both", "remove one"),
    ("  - multicall: {calls: [{pin: {as: dom0, frame: d, level: 1}}]}\n",
     "issued by the multicall's own domain", "put it on the multicall"),
    ("  - mmu_update: {foreign: [1], table: d, index: 0, value: 0}\n",
     "is not a domain", "DOMID_IO"),
])
def test_domain_errors_name_the_problem_and_the_fix(steps: str, needle: str,
                                                    fix: str) -> None:
    with pytest.raises(ScenarioError) as e:
        _load(steps)
    assert needle in e.value.message and fix in (e.value.fix or "")


def test_guest_and_domains_together_is_an_error() -> None:
    with pytest.raises(ScenarioError, match="either guest:"):
        load_scenario("name: t\nguest: {}\ndomains: {a: {}}\n")


def test_reserved_domain_names_are_refused() -> None:
    with pytest.raises(ScenarioError, match="not a usable domain name"):
        load_scenario("name: t\ndomains: {other: {}}\n")


def test_dead_domain_issues_nothing() -> None:
    scn = _load("  - destroy_domain: {domain: guest}\n    expect: ok\n"
                "  - pin: {frame: g, level: 1}\n")
    with pytest.raises(ScenarioError, match="destroyed at step 1") as e:
        run_scenario(scn)
    assert "as:" in (e.value.fix or "")


def test_gntst_expectations_parse_any_case_and_okay_is_ok() -> None:
    scn = _load("  - grant_unmap: {as: dom0, handle: 0}\n    expect: gntst_bad_handle\n"
                "  - grant_unmap: {as: dom0, handle: 0}\n    expect: GNTST_BAD_HANDLE\n"
                "  - pin: {as: dom0, frame: d, level: 1}\n    expect: GNTST_okay\n")
    assert [s.expected_for("4.19") for s in scn.steps] == [
        "GNTST_bad_handle", "GNTST_bad_handle", "ok"]
    run = run_scenario(scn)
    assert run.ok and run.steps[0].outcome.rc == 0
    assert run.steps[0].outcome.status == -4


def test_step_description_names_the_issuer() -> None:
    scn = _load("  - pin: {as: dom0, frame: d, level: 1}\n")
    assert scn.steps[0].describe() == "pin as=dom0 frame=d level=1"
    assert "as" not in scn.steps[0].args


@pytest.mark.parametrize("path", MULTI, ids=lambda p: p.name)
def test_multi_domain_corpus_keeps_the_invariants_after_every_step(path: Path) -> None:
    scn = load_scenario(path)
    for n in range(len(scn.steps) + 1):
        run = run_scenario(scn, stop_after=n)
        assert audit(run.xen) == [], f"after step {n}"


def test_multi_domain_corpus_is_large_enough() -> None:
    assert len(MULTI) >= 20


@pytest.mark.parametrize("path", MULTI[:6], ids=lambda p: p.name)
def test_lab_document_round_trips_domains_and_as(path: Path) -> None:
    from pvlab.scenario.model import parse_scenario
    from pvlab.ui.document import scenario_data

    scn = load_scenario(path)
    again = parse_scenario(scenario_data(scn), source="lab")
    assert again.domains == scn.domains and again.multi_domain
    assert [(s.op, s.as_domain, s.args) for s in again.steps] == \
        [(s.op, s.as_domain, s.args) for s in scn.steps]
    assert {n: f.owner for n, f in again.frames.items()} == \
        {n: f.owner for n, f in scn.frames.items()}
