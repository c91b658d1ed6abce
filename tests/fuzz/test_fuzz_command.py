# SPDX-License-Identifier: MIT
"""`pvlab fuzz` on the command line: its options, and clear errors before any boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.cli import main
from pvlab.commands.fuzz import resolve_build


def test_help_lists_the_issue_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    out = capsys.readouterr().out
    for opt in ("--xen", "--profile", "--bitness", "--budget", "--seed", "--out", "--json"):
        assert opt in out


def test_a_missing_build_is_a_clear_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--xen", str(tmp_path / "nope"), "--budget", "5"]) == 2
    err = capsys.readouterr().err
    assert "no such file and not a profile name" in err and "fix:" in err


def test_a_project_profile_without_a_build_says_how_to_get_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PVLAB_ORACLE_BUILD", str(tmp_path))
    assert main(["fuzz", "--xen", "4.19"]) == 2
    assert "no Xen build for profile 4.19" in capsys.readouterr().err


def test_a_path_plays_4_19_unless_told(tmp_path: Path) -> None:
    xen = tmp_path / "xen"
    xen.write_bytes(b"\x7fELF")
    assert resolve_build(str(xen), None) == (xen, "4.19")
    assert resolve_build(str(xen), "4.18") == (xen, "4.17")  # aliases resolve


def test_a_bad_known_file_stops_before_booting(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    xen = tmp_path / "xen"
    xen.write_bytes(b"\x7fELF")
    known = tmp_path / "known.yaml"
    known.write_text("- {id: x}\n")
    assert main(["fuzz", "--xen", str(xen), "--known", str(known), "--budget", "5"]) == 2
    assert "needs an id and a reason" in capsys.readouterr().err
