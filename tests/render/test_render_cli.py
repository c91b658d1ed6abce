# SPDX-License-Identifier: MIT
"""`pvlab render`: formats by suffix, steps, views, and clear errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from render_support import HAVE_GRAPHVIZ, ROOT

from pvlab.cli import main

SEED = str(ROOT / "tests" / "render" / "scenarios" / "seed-erange.yaml")


def test_text_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", SEED]) == 0
    out = capsys.readouterr().out
    assert "new_l3 mfn=0x100200 >=4GiB L3 (candidate)" in out and "FAILED" in out


def test_step_zero_is_the_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", SEED, "--step", "0"]) == 0
    assert "FAILED" not in capsys.readouterr().out


@pytest.mark.parametrize("view", ["tables", "frames", "diff", "walk"])
@pytest.mark.parametrize("suffix", ["svg", "dot", "txt"])
def test_every_view_to_every_format(tmp_path, view: str, suffix: str) -> None:  # type: ignore[no-untyped-def]
    if suffix == "dot" and not HAVE_GRAPHVIZ:
        pytest.skip("graphviz package missing")
    out = tmp_path / f"pic.{suffix}"
    args = ["render", SEED, "--view", view, "-o", str(out), "--backend", "fallback"]
    if view == "walk":
        args += ["--va", "0xc0000000"]
    assert main(args) == 0
    text = out.read_text()
    if suffix == "svg":
        ET.fromstring(text)
    elif suffix == "dot":
        assert text.startswith("digraph")
    else:
        assert text.endswith("\n")


@pytest.mark.parametrize("args, message", [
    (["--step", "9"], "step 9 does not exist"),
    (["--view", "walk"], "needs an address"),
    (["--view", "diff", "--step", "0"], "step N-1"),
    (["-o", "x.jpeg"], "suffix"),
])
def test_errors_are_one_clear_line(args: list[str], message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", SEED, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
