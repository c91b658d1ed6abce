# SPDX-License-Identifier: MIT
"""scripts/setup.sh: valid bash, refuses unknown options, `make test` installs the test extras."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "setup.sh"


def test_the_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_an_unknown_option_is_refused_before_anything_is_installed() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "use --lab, --test or --hub" in result.stderr


def test_each_mode_installs_known_extras_and_test_mode_installs_them_all() -> None:
    text = SCRIPT.read_text()
    modes = dict(re.findall(r'^\s+(lab|hub|test)\) EXTRAS="([\w,]+)" ;;', text, re.M))
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["project"]["optional-dependencies"])
    assert set(modes) == {"lab", "hub", "test"}
    for mode, wanted in modes.items():
        assert set(wanted.split(",")) <= extras, mode
    assert {"lab", "test", "browser", "hub"} <= set(modes["test"].split(",")), (
        "CI (make test) must install what the tests need, the hub's tools included")
    assert "hub" in modes["hub"].split(",") and "lab" in modes["hub"].split(",")


def test_makefile_has_hub_and_keeps_the_two_commands() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab:", "test:", "hub:", "setup-hub:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    assert "scripts/setup.sh --hub" in makefile
