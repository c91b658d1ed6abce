# SPDX-License-Identifier: MIT
"""`pvlab explain` on the command line: text, --json, --scenario, unknown lines."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from pvlab.cli import main
from pvlab.explain import explain_line, scenario_for
from pvlab.scenario import load_scenario, run_scenario

LINES = """\
(XEN) [   12.345678] arch/x86/mm.c:1157:d0v0 Bad L3 flags 800000
arch/x86/mm.c:1593:d0v0 Failure -22 in promote_l3_table: slot 0x3
PAE pgd must be below 4GB (0x13ff73 >= 0x100000)
(XEN) Freed 660kB init memory
a line nobody knows
"""


def _run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main(argv)
    return rc, capsys.readouterr().out


def test_json_gives_one_object_per_line_and_keeps_unknown_lines(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(["explain", "--json", "-"], LINES, monkeypatch, capsys)
    objs = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and len(objs) == 5
    for key in ("line", "matched", "rule", "xen_function", "decoded", "explanation", "fix"):
        assert key in objs[0]
    assert objs[0]["rule"] == "l3_flags" and objs[0]["decoded"]["flags"]["value"] == 0x800000
    assert objs[1]["decoded"]["rc"]["meaning"] == "-EINVAL"
    assert objs[2]["rule"] == "pae_l3_below_4g"
    assert [o["matched"] for o in objs[3:]] == [False, False]


def test_text_output_lists_unknown_lines(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(["explain"], LINES, monkeypatch, capsys)
    assert "flags = 800000: NX (PTE bit 63)" in out
    assert "? (XEN) Freed 660kB init memory\n    unknown: Not a message" in out
    assert "? a line nobody knows\n" in out
    assert out.rstrip().endswith("5 line(s) read, 3 recognised; memory-management lines: "
                                 "3 of 3 recognised")
    _, known = _run(["explain", "--known"], LINES, monkeypatch, capsys)
    assert "Freed" not in known and "nobody" not in known and "Bad L3 flags" in known


def test_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    assert main(["explain", str(tmp_path / "nope.log")]) == 2
    assert "cannot read the log" in capsys.readouterr().err


@pytest.mark.parametrize("line", [
    "Bad L1 flags 18", "Bad L2 flags 80", "Bad L3 flags 800000", "Bad L3 flags 100",
    "Bad L4 flags 80", "PAE pgd must be below 4GB (0x13ff73 >= 0x100000)",
    "mfn 12345 already pinned", "mfn 12345 not pinned", "PAE L3 3rd slot is shared",
    "Could not get page type PGT_writable_page",
    "L4 update in Xen-private area, slot 0x10f", "L2 update in Xen-private area, slot 0x1ac",
    "Attempt to create linear p.t. with write perms",
])
def test_scenario_skeletons_reproduce_the_line(line: str, tmp_path: Path) -> None:
    ex = explain_line(line)
    text = scenario_for(ex)
    assert text is not None
    path = tmp_path / "s.yaml"
    path.write_text(text)
    run = run_scenario(load_scenario(path))
    assert run.ok
    printed = {explain_line(x).format_id for s in run.steps for x in s.outcome.xen_log()}
    assert ex.format_id in printed


def test_scenario_option_prints_the_skeleton(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _run(["explain", "--scenario"], "mfn 00123 already pinned\n", monkeypatch, capsys)
    assert "scenario skeleton:" in out and "name: pin-twice" in out


def test_docs_show_the_current_output_for_the_sample(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    sample = root / "tests" / "explain" / "data" / "doc-sample.log"
    assert main(["explain", str(sample)]) == 0
    out = capsys.readouterr().out
    doc = (root / "docs" / "explain.md").read_text()
    assert sample.read_text() in doc and out in doc, \
        "update docs/explain.md with: pvlab explain tests/explain/data/doc-sample.log"
