# SPDX-License-Identifier: MIT
"""`pvlab diff` between 4.17 and 4.19 over the public corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvlab.cli import main
from pvlab.scenario import load_scenario

CORPUS = Path(__file__).parents[1] / "scenarios"
FILES = sorted(CORPUS.glob("*.yaml"))

#: Seed scenarios that must always differ (the ERANGE story).
SEED_DIFFER = {
    "001-seed-issue-example.yaml", "004-pv32-high-l3-after-init.yaml",
    "005-pv32-high-l3-after-init-4.19-state.yaml", "013-pv32-new-baseptr-high-l3.yaml",
    "021-pv32-secondary-vcpu-context-high-cr3.yaml", "025-pv32-erange-boundary-mfn.yaml",
}
#: Seed scenarios that must never differ (no check involved, or the assist is on).
SEED_AGREE = {"002-pv32-high-l3-before-vcpu0-init.yaml", "007-pv32-high-l3-with-assist.yaml",
              "010-pv32-low-l3-after-init.yaml", "011-pv64-high-tables-no-check.yaml"}


def expected_by_annotation(path: Path) -> bool:
    """Whether the file's per-profile expectations say 4.17 and 4.19 differ."""
    scn = load_scenario(path)
    return any(s.expected_for("4.17") != s.expected_for("4.19") for s in scn.steps)


def run_diff(capsys: pytest.CaptureFixture[str], files: list[Path]) -> list[dict]:
    rc = main(["diff", "--profile", "4.17", "--profile", "4.19", "--json",
               *map(str, files)])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_diff_lists_exactly_the_differing_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_diff(capsys, FILES)
    for r in rows:
        assert {"file", "step", "op", "4.17", "4.19"} <= r.keys()
        assert r["4.17"] != r["4.19"]
    differing = {Path(r["file"]).name for r in rows}
    assert SEED_DIFFER <= differing
    assert not SEED_AGREE & differing
    # Files not pinned to one profile: the diff is what their expectations say.
    unpinned = [p for p in FILES if load_scenario(p).xen is None]
    want = {p.name for p in unpinned if expected_by_annotation(p)}
    assert {n for n in differing if n in {p.name for p in unpinned}} == want


def test_diff_quiet_for_agreeing_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    agree = [CORPUS / n for n in sorted(SEED_AGREE)]
    assert run_diff(capsys, agree) == []


def test_diff_text_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--profile", "4.17", "--profile", "4.19",
                 str(CORPUS / "004-pv32-high-l3-after-init.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ERANGE" in out and "PAE pgd must be below 4GB" in out
    one = str(CORPUS / "004-pv32-high-l3-after-init.yaml")
    assert main(["diff", "--profile", "4.17", one]) == 2
