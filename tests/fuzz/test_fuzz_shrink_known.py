# SPDX-License-Identifier: MIT
"""Shrinking, signatures, known differences and finding files, with pvlab under a correct
profile standing in for Xen (no QEMU; the real-Xen runs are in test_fuzz_real_xen.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from fuzzkit import model_oracle

from pvlab.errors import PvlabError
from pvlab.fuzz.findings import Finding, signature, write_finding
from pvlab.fuzz.generate import generate
from pvlab.fuzz.known import load_known
from pvlab.fuzz.shrink import items, materialise, shrink
from pvlab.scenario import load_scenario, run_scenario
from pvlab.xen import profiles

PLANTED = "test-planted-no-linear"


@pytest.fixture()
def planted(monkeypatch: pytest.MonkeyPatch) -> str:
    """A test-only profile with one rule flipped: linear pagetables refused."""
    monkeypatch.setitem(profiles.PROFILES, PLANTED,
                        replace(profiles.PROFILES["4.19"], name=PLANTED, linear_pagetables=False))
    return PLANTED


def _first_finding(model: str, oracle_profile: str, known: list) -> tuple:  # noqa: ANN401
    oracle = model_oracle(model, oracle_profile)
    for seed in range(400):
        [res] = oracle([generate(seed)])
        sig = signature(res, known, model)
        if sig is not None:
            return seed, res, sig, oracle
    raise AssertionError("no difference in 400 seeds")


def test_planted_bug_is_found_and_shrunk(planted: str, tmp_path: Path) -> None:
    seed, res, sig, oracle = _first_finding(planted, "4.19", [])
    assert sig[0] == "step"
    shrunk = shrink(res.data, res, sig, oracle, lambda r: signature(r, [], planted))
    assert signature(shrunk.result, [], planted) == sig
    assert len(shrunk.data["steps"]) <= 5
    assert len(items(shrunk.data)) < len(items(res.data))
    # a 1-minimal reproducer for the step list: dropping any remaining step loses it
    for i in range(len(shrunk.data["steps"])):
        cand = materialise(shrunk.data, frozenset({("step", i)}))
        if cand is not None:
            [r] = oracle([cand])
            assert signature(r, [], planted) != sig
    f = Finding(sig, seed, len(res.data["steps"]), shrunk.result)
    path = write_finding(f, tmp_path, profile=planted, xen="pvlab 4.19", index=1)
    text = path.read_text()
    assert text.startswith("# SPDX-License-Identifier: MIT")
    assert "<-- differs" in text
    # the file is a regression test: it fails on the buggy model, holds on the right one
    assert not run_scenario(load_scenario(path), profile=planted).ok
    assert run_scenario(load_scenario(path), profile="4.19").ok


def test_known_difference_is_filtered(planted: str, tmp_path: Path) -> None:
    _seed, res, sig, _ = _first_finding(planted, "4.19", [])
    known_file = tmp_path / "known.yaml"
    known_file.write_text(yaml.safe_dump([
        {"id": f"planted-{i}", "reason": "the test's own flip", "op": r.op, "pvlab": r.pvlab,
         "xen": r.xen} for i, r in enumerate(res.report.disagreements)]))
    known = load_known(known_file)
    assert signature(res, known, planted) is None
    assert signature(res, known[1:], planted) == sig  # the first difference is unknown again


def test_known_file_shipped_is_valid_and_explains_every_entry() -> None:
    for k in load_known():
        assert k.reason and k.id


@pytest.mark.parametrize("bad", [
    "- {id: x, op: pin}",  # no reason
    "- {id: x, reason: r}",  # would match everything
    "- {id: x, reason: r, op: pin, colour: red}",  # unknown key
    "- {id: x, reason: r, crash: '('}",  # bad regex
    "{id: x}",  # not a list
])
def test_bad_known_file_is_a_clear_error(bad: str, tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(bad)
    with pytest.raises(PvlabError) as err:
        load_known(path)
    assert str(path) in err.value.message and err.value.fix


def test_materialise_refuses_a_frame_still_named() -> None:
    data = generate(3)
    named = next(iter(data["frames"]))
    used = any(named in str(s) for s in data["steps"]) or named in str(data["tables"])
    cand = materialise(data, frozenset({("frame", named)}))
    assert (cand is None) == used or cand is None


def test_a_model_crash_is_a_finding_with_its_traceback(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from pvlab.fuzz import loop
    from pvlab.fuzz.oracle import Result

    assert loop._model_crash(generate(1), "4.19") is None

    def broken(data: dict, model: str) -> None:
        raise KeyError("planted")

    monkeypatch.setattr(loop, "pvlab_side", broken)
    crash = loop._model_crash(generate(1), "4.19")
    assert crash is not None and crash.kind == "model" and "KeyError" in crash.headline
    f = Finding(("model-crash", crash.headline), 1, 3, Result(generate(1), crash=crash))
    assert f.kind == "model crash"
    text = write_finding(f, tmp_path, profile="4.19", xen="x", index=1).read_text()
    assert "pvlab's traceback:" in text and "KeyError" in text


def test_after_matches_only_behind_an_earlier_xen_line(tmp_path: Path) -> None:
    from pvlab.fuzz.oracle import Result, plan_for
    from pvlab.verify.compare import Row, ScenarioReport
    from pvlab.verify.logparse import XenScenario, XenStep

    data = generate(1)
    plan, _ = plan_for(data, 1, "4.19")
    rep = ScenarioReport(plan, "4.19", rows=[Row(2, "pin", None, "EBUSY", "ok", "DISAGREE")])
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump([{"id": "k", "reason": "r", "op": "pin", "pvlab": "EBUSY",
                                     "after": "Failure -22 in promote_l2_table: slot 0x3"}]))
    known = load_known(path)
    before = XenScenario(steps={1: XenStep(0, log=["mm.c:1: d0v0 Failure -22 in "
                                                   "promote_l2_table: slot 0x3"]),
                                2: XenStep(0)})
    assert signature(Result(data, rep, xen=before), known, "4.19") is None
    other = XenScenario(steps={1: XenStep(0, log=["something else"]), 2: XenStep(0)})
    assert signature(Result(data, rep, xen=other), known, "4.19") == ("step", "pin", "EBUSY",
                                                                       "ok")
