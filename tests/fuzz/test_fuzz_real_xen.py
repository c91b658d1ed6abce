# SPDX-License-Identifier: MIT
"""`pvlab fuzz` against the project's real Xen builds under QEMU (slow).

Gets the builds as tests/verify/test_oracle_corpus.py does: in CI (CI set, root) the tools
are installed and Xen is built (cached); locally the tests are skipped when the builds are
absent. Two runs: the CI smoke run (fixed seed, about a minute per build, no unknown
difference allowed) and the planted model bug (a test-only profile with one rule flipped,
played by pvlab against real Xen), which the fuzzer must find and shrink to <= 5 steps.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from pvlab.fuzz.known import load_known
from pvlab.fuzz.loop import FuzzConfig, fuzz
from pvlab.scenario import load_scenario, run_scenario
from pvlab.xen import profiles

_CORPUS_TEST = Path(__file__).resolve().parents[1] / "verify" / "test_oracle_corpus.py"


def _builds() -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("_oracle_corpus", _CORPUS_TEST)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._prepare()  # type: ignore[no-any-return]


SMOKE_SEED = 19000
SMOKE_SCENARIOS = 500  # a fixed amount of work: the same scenarios however fast the machine
SMOKE_BUDGET = 150.0  # a safety limit; about a minute on the CI machine


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["4.17", "4.19"])
def test_smoke_no_unknown_difference(profile: str, tmp_path: Path) -> None:
    xen = _builds()[profile]
    figs = fuzz(FuzzConfig(xen=xen, model=profile, budget=SMOKE_BUDGET, seed=SMOKE_SEED,
                           out=tmp_path, known=load_known(), max_scenarios=SMOKE_SCENARIOS),
                progress=print)
    print(figs.line())
    assert figs.scenarios >= 100 and figs.steps >= 500, figs.summary()
    assert not figs.findings, "\n\n".join(p.read_text() for p in figs.paths)


PLANTED = "test-planted-no-linear"


@pytest.mark.slow
def test_planted_model_bug_is_found_on_real_xen(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    # The bug: the model refuses linear pagetable entries (pv-linear-pt), real Xen allows them.
    monkeypatch.setitem(profiles.PROFILES, PLANTED,
                        replace(profiles.PROFILES["4.19"], name=PLANTED, linear_pagetables=False))
    xen = _builds()["4.19"]
    figs = fuzz(FuzzConfig(xen=xen, model=PLANTED, budget=45.0, seed=SMOKE_SEED, out=tmp_path,
                           known=load_known(), max_findings=1), progress=print)
    assert figs.findings, f"the planted bug was not found: {figs.summary()}"
    f = figs.findings[0]
    assert f.kind == "difference"
    assert len(f.data["steps"]) <= 5, figs.paths[0].read_text()
    # The written reproducer fails on the buggy model and holds on the right one.
    path = figs.paths[0]
    assert not run_scenario(load_scenario(path), profile=PLANTED).ok
    assert run_scenario(load_scenario(path), profile="4.19").ok
