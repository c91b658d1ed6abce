# SPDX-License-Identifier: MIT
"""README.md tells the truth: its Python example runs and shows the seed rule."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_python_example_runs_and_shows_erange_then_ok() -> None:
    (block,) = _python_blocks()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # the README's own example, not user input
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("<Outcome MMUEXT_PIN_L3_TABLE") and lines[0].endswith(": ok>")
    assert lines[1].startswith("ERANGE - L3 at MFN 0x1") and "pae_extended_cr3 is off" in lines[1]
    assert "[promote_l3_table]" in out.getvalue()
    assert "ok" in lines and any(line.startswith("<PageInfo ") for line in lines)


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
