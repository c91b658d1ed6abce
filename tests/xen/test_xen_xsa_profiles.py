# SPDX-License-Identifier: MIT
"""The pre-xsa-NNN profiles: each is 4.19 minus one security fix, cites the advisory and
its fixing commit, and has a scenario whose exploit step is the only difference."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pvlab.commands.diff import diff_file
from pvlab.errors import PvlabError
from pvlab.scenario import load_scenario, run_scenario
from pvlab.xen.danger import find_dangers
from pvlab.xen.profiles import ADVISORIES, NOT_EXPRESSIBLE, PROFILES, get_profile

CORPUS = Path(__file__).parent.parent / "scenarios"
#: The profile fields each fix is allowed to change (besides name/description/advisory).
FIX_FIELDS = {148: {"l2_pse_disallowed", "fastpath_checked", "has_allowsuperpage_option"},
              182: {"fastpath_checked"}, 185: {"pv32_linear_l3"}, 240: {"linear_one_level"},
              279: {"uvmf_flush_skipped_on_error"}, 299: {"l3_partial_child_cleanup"}}
IGNORED = {"name", "description", "advisory", "first_release"}


def test_the_advisories_the_issue_asks_for_are_all_there() -> None:
    assert {a.xsa for a in ADVISORIES} >= {148, 182, 185, 240, 279} | {299}
    assert 286 in NOT_EXPRESSIBLE and "TLB" in NOT_EXPRESSIBLE[286]


@pytest.mark.parametrize("adv", ADVISORIES, ids=lambda a: f"xsa-{a.xsa}")
def test_profile_is_419_minus_one_fix(adv: object) -> None:
    a = adv  # type: ignore[assignment]
    p, base = get_profile(f"pre-xsa-{a.xsa}"), get_profile("4.19")
    assert p.advisory is a
    changed = {f.name for f in dataclasses.fields(p) if f.name not in IGNORED
               and getattr(p, f.name) != getattr(base, f.name)}
    assert changed and changed <= FIX_FIELDS[a.xsa]
    assert re.fullmatch(r"[0-9a-f]{10}", a.commit) and a.cve.startswith("CVE-")
    assert a.commit in p.description and f"XSA-{a.xsa}" in p.description


@pytest.mark.parametrize("adv", ADVISORIES, ids=lambda a: f"xsa-{a.xsa}")
def test_diff_lists_the_exploit_step_and_nothing_else(adv: object) -> None:
    a = adv  # type: ignore[assignment]
    path = CORPUS / a.scenario
    rows = diff_file(str(path), f"pre-xsa-{a.xsa}", "4.19")
    assert len(rows) == 1, rows
    scn = load_scenario(path)
    step = scn.steps[rows[0]["step"] - 1]
    assert isinstance(step.expect, dict) and f"pre-xsa-{a.xsa}" in step.expect
    # the only step with a per-profile expectation is the exploit step
    assert [s.number for s in scn.steps if isinstance(s.expect, dict)] == [step.number]
    vulnerable = run_scenario(scn, profile=f"pre-xsa-{a.xsa}")
    assert vulnerable.ok and run_scenario(scn, profile="4.19").ok


@pytest.mark.parametrize("adv", [a for a in ADVISORIES if a.xsa != 279],
                         ids=lambda a: f"xsa-{a.xsa}")
def test_the_vulnerable_run_reaches_a_dangerous_state_and_fixed_xen_never(adv: object) -> None:
    a = adv  # type: ignore[assignment]
    scn = load_scenario(CORPUS / a.scenario)
    exploit = next(s.number for s in scn.steps if isinstance(s.expect, dict))
    bad = find_dangers(run_scenario(scn, profile=f"pre-xsa-{a.xsa}", stop_after=exploit).xen)
    assert any(d.xsa == a.xsa for d in bad), bad
    for prof in ("4.17", "4.19"):
        for n in range(len(scn.steps) + 1):
            assert find_dangers(run_scenario(scn, profile=prof, stop_after=n).xen) == []


def test_xsa_279_crashes_the_host_only_with_invpcid() -> None:
    scn = load_scenario(CORPUS / ADVISORIES[4].scenario)
    run = run_scenario(scn, profile="pre-xsa-279")
    assert run.steps[-1].outcome.crashed and "INVPCID" in str(run.steps[-1].outcome.crash)
    no_invpcid = dataclasses.replace(scn, hardware=dataclasses.replace(scn.hardware,
                                                                      invpcid=False))
    assert run_scenario(no_invpcid, profile="pre-xsa-279").steps[-1].result == "EINVAL"


def test_unknown_version_lists_the_profiles() -> None:
    with pytest.raises(PvlabError) as err:
        get_profile("4.10")
    assert "4.10" in err.value.message and "pre-xsa" in err.value.message
    for name in PROFILES:
        assert name in (err.value.fix or "")


def test_profile_417_says_which_history_it_stands_for() -> None:
    d = get_profile("4.17").description
    assert "4.14 to 4.18" in d and "XSA-148" in d and "pre-xsa" in d


@pytest.mark.parametrize("adv", ADVISORIES, ids=lambda a: f"xsa-{a.xsa}")
def test_the_bundled_example_is_the_corpus_scenario(adv: object) -> None:
    from pvlab.ui import example_path

    a = adv  # type: ignore[assignment]
    assert example_path(f"xsa-{a.xsa}").read_text() == (CORPUS / a.scenario).read_text()


def test_cli_diff_shows_the_exploit_step_and_refuses_unknown_versions(
        capsys: pytest.CaptureFixture[str]) -> None:
    from pvlab.cli import main

    path = str(CORPUS / "951-xsa-182-l4-fast-path-rw-recursive.yaml")
    assert main(["diff", "--profile", "pre-xsa-182", "--profile", "4.19", path]) == 0
    out = capsys.readouterr().out
    assert "step   2 mmu_update" in out and "linear entry must not have RW" in out
    assert "(1 steps)" in out
    assert main(["diff", "--profile", "4.10", "--profile", "4.19", path]) == 2
    err = capsys.readouterr().err
    assert "unknown Xen profile '4.10'" in err and "pre-xsa-182" in err


def test_fixed_xen_reaches_no_danger_anywhere_in_the_corpus() -> None:
    """Only Xen's own documented partial-validation leak (816/817) is a danger on fixed Xen."""
    for path in sorted(CORPUS.glob("*.yaml")):
        scn = load_scenario(path)
        for prof in ([scn.xen] if scn.xen else ["4.17", "4.19"]):
            if get_profile(prof).advisory is not None:
                continue
            kinds = {d.kind for d in find_dangers(run_scenario(scn, profile=prof).xen)}
            allowed = {"leaked_partial"} if path.name[:3] in ("816", "817") else set()
            assert kinds <= allowed, (path.name, prof, kinds)
