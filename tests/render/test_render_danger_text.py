# SPDX-License-Identifier: MIT
"""The danger marking in the text dumps (`pvlab render` text, `text_dump`, `pvlab run`)
and in the summarised picture of a large guest: the same facts as the pictures, from
`pvlab.xen.danger.find_dangers` (XSA-182: an L4 made writable through its own recursive
entry by the fast path that the fix routes through the linear-pagetable check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvlab import Xen
from pvlab.cli import main
from pvlab.render import tables_view, text_dump
from pvlab.render.danger import MARK, dangers_in
from pvlab.render.summary import SUMMARY_TABLES
from pvlab.scenario import load_scenario, run_scenario
from pvlab.toolstack.fullmap import map_whole_guest
from pvlab.x86.flags import RW, A, P

XSA182 = Path(__file__).parent.parent / "scenarios" / "951-xsa-182-l4-fast-path-rw-recursive.yaml"


def test_text_dump_lists_the_danger_under_the_vulnerable_profile_only() -> None:
    scn = load_scenario(XSA182)
    bad = run_scenario(scn, profile="pre-xsa-182", stop_after=2)
    text = text_dump(bad)
    assert f"{MARK} (XSA-182): live L4 MFN {bad.frames['l4']:#x} is writable" in text
    assert tables_view(bad).text() == text
    good = run_scenario(scn, profile="4.19", stop_after=2)
    assert MARK not in text_dump(good) and MARK not in tables_view(good).text()


def test_pvlab_render_text_and_run_output_mark_the_danger(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["render", "--profile", "pre-xsa-182", "--step", "2", str(XSA182)]) == 0
    assert f"{MARK} (XSA-182)" in capsys.readouterr().out
    # pvlab run prints the dangers of the final state: stop the file after the exploit
    cut = tmp_path / "cut.yaml"
    text = XSA182.read_text()
    cut.write_text(text[:text.index("  - mmu_update: {table: l4, index: 0, value: 0}")])
    assert main(["run", "--profile", "pre-xsa-182", str(cut)]) == 0
    assert f"  {MARK} (XSA-182)" in capsys.readouterr().out
    assert main(["run", "--profile", "4.19", str(cut)]) == 0
    assert MARK not in capsys.readouterr().out
    assert main(["run", "--json", "--profile", "pre-xsa-182", str(cut)]) == 0
    got = json.loads(capsys.readouterr().out)[0]["dangers"]
    assert len(got) == 1 and got[0].startswith(f"{MARK} (XSA-182)")


def _large_guest(profile: str) -> tuple[Xen, object, int]:
    xen = Xen(profile, "16GiB")
    g = xen.create_domain(64)
    mg = map_whole_guest(xen, g, "160MiB")  # 80 L1s: the summarised picture
    assert g.pin(mg.top, mg.level).ok
    slot = 255  # a guest slot map_whole_guest leaves empty
    assert xen.machine.read_entry(mg.top, slot) == 0
    assert g.mmu_update(mg.top, slot, mg.top, P | A).ok  # a read-only linear L4
    out = g.mmu_update(mg.top, slot, mg.top, P | RW | A)  # XSA-182's fast path
    assert out.ok == (profile == "pre-xsa-182")  # fixed Xen: EINVAL (get_l4_linear_pagetable)
    return xen, g, int(mg.top)


def test_summarised_picture_marks_the_danger() -> None:
    xen, g, top = _large_guest("pre-xsa-182")
    v = tables_view(xen, g)  # type: ignore[arg-type]
    assert "summarised" in v.model.title and len(v.model.nodes) > 1
    assert sum(1 for n in v.model.nodes if n.kind == "table") < SUMMARY_TABLES
    notes = dangers_in(v.model)
    assert notes == [f"{MARK} (XSA-182): live L4 MFN {top:#x} is writable through the "
                     f"recursive entry 255 (RW) of MFN {top:#x}"]
    assert notes[0] in v.text()
    xen2, g2, _ = _large_guest("4.19")
    v2 = tables_view(xen2, g2)  # type: ignore[arg-type]
    assert "summarised" in v2.model.title
    assert dangers_in(v2.model) == [] and MARK not in v2.text()


def test_pvlab_render_diff_view_marks_the_danger(capsys: pytest.CaptureFixture[str]) -> None:
    """The diff view is built from snapshots; the command adds the live state's dangers."""
    chain = XSA182.parent / "953-xsa-240-linear-pagetable-chain.yaml"
    args = ["render", "--view", "diff", "--step", "3", str(chain)]
    assert main([*args[:1], "--profile", "pre-xsa-240", *args[1:]]) == 0
    out = capsys.readouterr().out
    assert "what changed" in out or "->" in out
    assert f"{MARK} (XSA-240)" in out
    assert main([*args[:1], "--profile", "4.19", *args[1:]]) == 0
    assert MARK not in capsys.readouterr().out
