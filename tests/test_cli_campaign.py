# SPDX-License-Identifier: MIT
"""`pvlab campaign`: figures on stdout, exit status from the violations, --replay."""

from __future__ import annotations

import pytest

from pvlab.cli import main as cli_main


def test_campaign_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["campaign", "--sequences", "8", "--seed-from", "1100",
                     "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert "sequences:  8 (seeds 1100-1107" in out
    assert "violations: 0" in out
    assert "operations: " in out and "time: " in out
    assert "8/8 sequences" in err  # the progress line


def test_campaign_replays_one_seed(capsys: pytest.CaptureFixture[str]) -> None:
    # Seed 1135 once found kind (a) of issue 11: a failed pin through a dom_xen entry.
    assert cli_main(["campaign", "--replay", "1135"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seed 1135: 64-bit guest, profile 4.19")
    assert "no violation" in out


def test_campaign_refuses_zero_sequences(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["campaign", "--sequences", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
