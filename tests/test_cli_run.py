# SPDX-License-Identifier: MIT
"""`pvlab run`: exit codes 0/1/2, the text report, and the --json shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvlab.cli import main

PASSING = """\
name: passing
xen: "4.19"
guest: {bitness: 32, vcpu0_initialised: true}
frames:
  l3: {above: 4GiB}
  l2: {}
tables:
  l3:
    3: {to: l2, flags: [P]}
steps:
  - pin: {frame: l3, level: 3}
    expect: ERANGE
  - vm_assist: {enable: pae_extended_cr3}
  - pin: {frame: l3, level: 3}
    expect: ok
  - expect_page: {frame: l2, type: l2, type_count: 1, pae_xen_l2: true}
"""
FAILING = PASSING.replace("expect: ERANGE", "expect: ok").replace("name: passing",
                                                                    "name: failing")
INVALID = PASSING.replace("level: 3}\n    expect: ERANGE", "level: 9}\n    expect: ERANGE")


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_exit_0_when_every_expectation_holds(tmp_path: Path, capsys) -> None:
    f = _write(tmp_path, "ok.yaml", PASSING)
    assert main(["run", f]) == 0
    out = capsys.readouterr().out
    assert "ERANGE" in out and "held" in out and "1 passed, 0 failed, 0 invalid" in out


def test_exit_1_when_one_does_not_and_the_reason_is_printed(tmp_path: Path, capsys) -> None:
    f = _write(tmp_path, "bad.yaml", FAILING)
    assert main(["run", f]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "PAE pgd must be below 4GB" in out
    assert "promote_l3_table" in out


def test_exit_2_for_an_invalid_file_with_one_clear_message(tmp_path: Path, capsys) -> None:
    good = _write(tmp_path, "ok.yaml", PASSING)
    bad = _write(tmp_path, "invalid.yaml", INVALID)
    assert main(["run", good, bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "invalid.yaml" in err and "step 1" in err and "'level'" in err


def test_profile_option_overrides_the_file(tmp_path: Path) -> None:
    f = _write(tmp_path, "ok.yaml", PASSING)
    assert main(["run", "--profile", "4.17", f]) == 1  # no ERANGE on 4.17


def test_json_shape(tmp_path: Path, capsys) -> None:
    f = _write(tmp_path, "ok.yaml", PASSING)
    bad = _write(tmp_path, "bad.yaml", FAILING)
    assert main(["run", "--json", f, bad]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [d["file"] for d in data] == [f, bad]
    first = data[0]
    assert first["name"] == "passing"
    for s in first["steps"]:
        assert {"op", "result", "expected", "held", "trace"} <= s.keys()
    s1 = first["steps"][0]
    assert (s1["op"], s1["result"], s1["expected"], s1["held"]) == ("pin", "ERANGE",
                                                                    "ERANGE", True)
    assert any(e["decision"] == "fail" and e["xen_function"] == "promote_l3_table"
               for e in s1["trace"])
    assert first["steps"][1]["expected"] is None and first["steps"][1]["held"] is None
    assert data[1]["steps"][0]["held"] is False


def test_json_invalid_file_exit_2(tmp_path: Path, capsys) -> None:
    bad = _write(tmp_path, "invalid.yaml", INVALID)
    assert main(["run", "--json", bad]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data[0]["file"] == bad and "step 1" in data[0]["error"]


def test_missing_file_is_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-v", "--stats", "-q"])
def test_output_options(tmp_path: Path, capsys, flag: str) -> None:
    f = _write(tmp_path, "ok.yaml", PASSING)
    assert main(["run", flag, f]) == 0
    out = capsys.readouterr().out
    assert "1 passed" in out
    if flag == "-v":
        assert "[promote_l3_table]" in out
    if flag == "--stats":
        assert "type acquisitions" in out
