# SPDX-License-Identifier: MIT
"""`pvlab explain` on the serial logs `pvlab verify --keep-logs` kept for the public corpus, and
pvlab's own traces checked against the lines real Xen printed for the same steps.

data/serial-<profile>-<bits>.log are real logs (trimmed to start at the dom0 build) from the two
project builds; data/scenarios-<profile>.txt maps the scenario numbers of that run to files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.explain import coverage, explain_line, explain_text
from pvlab.scenario import load_scenario, run_scenario
from pvlab.verify.logparse import parse_log

DATA = Path(__file__).resolve().parent / "data"
CORPUS = Path(__file__).resolve().parents[1] / "scenarios"
LOGS = sorted(DATA.glob("serial-*.log"))
# Numbers that do not depend on which machine frames the run got.
STABLE = ("flags", "rc", "slot")


def test_the_sample_holds_both_probe_bitnesses() -> None:
    assert {p.name.rsplit("-", 1)[1] for p in LOGS} >= {"32.log", "64.log"}


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_at_least_95_percent_of_memory_management_lines_are_recognised(log: Path) -> None:
    text = log.read_text()
    explanations = explain_text(text)
    assert len(explanations) == len(text.splitlines())  # unknown lines are kept, not dropped
    cov = coverage(explanations)
    assert cov.mm_lines >= 30, "the sample should hold many memory-management lines"
    unknown = [e.line for e in explanations if e.mm and not e.matched]
    assert cov.ratio >= 0.95, unknown


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_every_positioned_mm_line_names_a_rule_or_a_xen_function(log: Path) -> None:
    for ex in explain_text(log.read_text()):
        if ex.matched and ex.mm:
            assert ex.xen_function and ex.explanation and ex.fix, ex.line


def _runs(profile: str) -> list[tuple[str, dict]]:
    index = DATA / f"scenarios-{profile}.txt"
    if not index.is_file():
        return []
    boots = [parse_log(p.read_text()) for p in DATA.glob(f"serial-{profile}-*.log")]
    out = []
    for line in index.read_text().splitlines():
        sid, name = line.split()
        for boot in boots:
            if int(sid) in boot.scenarios and (CORPUS / name).is_file():
                out.append((name, boot.scenarios[int(sid)].steps))
    return out


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
def test_the_xen_lines_pvlab_traces_show_are_the_ones_xen_printed(profile: str) -> None:
    runs = _runs(profile)
    if not runs:
        pytest.skip(f"no kept logs for profile {profile}")
    compared = 0
    wrong = []
    for name, xen_steps in runs:
        run = run_scenario(load_scenario(CORPUS / name), profile=profile)
        for s in run.steps:
            xs = xen_steps.get(s.index)
            if xs is None:
                continue
            real = {}
            for line in xs.log:
                ex = explain_line(line)
                real.setdefault(ex.format_id, ex)
            for line in s.outcome.xen_log():
                mine = explain_line(line)
                theirs = real.get(mine.format_id)
                stable = {k: v.value for k, v in mine.decoded.items() if k in STABLE}
                if theirs is None or stable != {k: v.value for k, v in theirs.decoded.items()
                                                if k in STABLE}:
                    wrong.append(f"{name} step {s.index}: pvlab shows '{line}', Xen printed "
                                 f"{xs.log}")
                compared += 1
    assert compared >= 50
    assert not wrong, "\n".join(wrong)
