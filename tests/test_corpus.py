# SPDX-License-Identifier: MIT
"""The public conformance corpus: every scenario's expectations hold.

Files that name no `xen:` profile run under both measured profiles (4.17 and 4.19);
their per-profile `expect:` mappings say where real Xen differs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.cli import main as cli_main
from pvlab.scenario import load_scenario, run_scenario

CORPUS = Path(__file__).parent / "scenarios"
FILES = sorted(CORPUS.glob("*.yaml")) + sorted(CORPUS.glob("flows/*.yaml"))


def _cases() -> list[tuple[Path, str]]:
    cases = []
    for f in FILES:
        scn = load_scenario(f)
        for prof in ([scn.xen] if scn.xen else ["4.17", "4.19"]):
            cases.append((f, prof))
    return cases


def test_corpus_is_large_enough() -> None:
    assert len(list(CORPUS.glob("*.yaml"))) >= 60


@pytest.mark.parametrize(("path", "profile"), _cases(),
                         ids=lambda v: v.name if isinstance(v, Path) else v)
def test_scenario_expectations_hold(path: Path, profile: str) -> None:
    run = run_scenario(load_scenario(path), profile=profile)
    failed = [f"step {s.index} {s.description}: got {s.result}, expected {s.expected}; "
              f"{s.outcome.reason}" for s in run.steps if s.held is False]
    assert not failed, "\n".join(failed)
    assert any(s.held is not None for s in run.steps), "a scenario must check something"


def test_pvlab_run_exits_0_on_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", "-q", *map(str, sorted(CORPUS.glob("*.yaml")))]) == 0
    assert "0 failed, 0 invalid" in capsys.readouterr().out
