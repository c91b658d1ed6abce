# SPDX-License-Identifier: MIT
"""`pvlab verify` boots Xen with a scenario's `xen_cmdline`: one boot per distinct command
line (no QEMU needed: the boot is replaced and only its arguments are checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pvlab.verify.runner as runner
from pvlab.verify.boot import XEN_ARGS, boot_groups, cmdline_words
from pvlab.verify.plan import plan_scenario

CORPUS = Path(__file__).parent.parent / "scenarios"


def _plan(name: str, sid: int) -> Any:
    import yaml

    path = CORPUS / name
    return plan_scenario(yaml.safe_load(path.read_text()), id=sid, source=str(path))


def test_a_scenarios_command_line_becomes_xen_words() -> None:
    off = _plan("990-pv-linear-pt-off-l4-self-map.yaml", 1)
    plain = _plan("951-xsa-182-l4-fast-path-rw-recursive.yaml", 2)
    assert cmdline_words(off) == ("pv-linear-pt=false",)
    assert cmdline_words(plain) == ()
    groups = boot_groups([off, plain])
    assert (off.boot, ("pv-linear-pt=false",)) in groups and (plain.boot, ()) in groups


def test_verify_boots_once_per_command_line(monkeypatch: Any, tmp_path: Path) -> None:
    seen: list[tuple[str, ...]] = []

    def fake_boot(xen: Path, probe: Path, timeout: float, cmdline: tuple[str, ...] = ()) -> str:
        seen.append(cmdline)
        return ""

    monkeypatch.setattr(runner, "build_probe", lambda plans, bits, workdir: workdir)
    monkeypatch.setattr(runner, "boot", fake_boot)
    paths = [CORPUS / "990-pv-linear-pt-off-l4-self-map.yaml",
             CORPUS / "951-xsa-182-l4-fast-path-rw-recursive.yaml",
             CORPUS / "999-allowsuperpage-ignored-since-4-10.yaml"]
    runner.verify(paths, "4.19", tmp_path / "xen", xen_build="debug")
    assert sorted(seen) == [(), ("allowsuperpage",), ("pv-linear-pt=false",)]
    assert "pv-linear-pt" not in XEN_ARGS
