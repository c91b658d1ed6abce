# SPDX-License-Identifier: MIT
"""Promotion replay: one frame per trace event, the failing check red with Xen's reason,
the rollback on the state Xen left, and the CLI's self-contained page / numbered SVGs.
Outcomes are real Xen's (seed story: -ERANGE from promote_l3_table on 4.19)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pvlab.cli import main
from pvlab.render.replay import replay
from pvlab.scenario import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "scenarios" / "001-seed-issue-example.yaml"


def seed_run(step: int, profile: str | None = None):  # type: ignore[no-untyped-def]
    return run_scenario(load_scenario(SEED), profile=profile, stop_after=step)


def test_frames_equal_the_trace_events_and_stop_at_the_failing_check() -> None:
    run = seed_run(4)
    rep = replay(run)
    events = run.steps[-1].outcome.events
    assert len(rep) == len(events) and [f.event for f in rep.frames] == events
    fail = rep.failing_frame
    assert fail == 2
    frame = rep.frames[fail - 1]
    assert frame.phase == "fail" and "[promote_l3_table]" in frame.caption
    l3b = run.frames["l3b"]
    node = frame.model.node_for_mfn(l3b)
    assert node is not None and node.highlight
    assert any("PAE" in r.text or "4 GiB" in r.text for r in node.rows if r.tone == "bad")
    # the type reference taken by _get_page_type is shown rising, then rolled back
    assert rep.frames[0].type_counts[l3b] == 1
    assert [f.phase for f in rep.frames[fail:]] == ["rollback", "rollback"]
    assert rep.frames[-1].type_counts[l3b] == 0
    last = rep.frames[-1].model.node_for_mfn(l3b)
    assert last is not None and any(r.text.startswith("↓ rolled back") for r in last.rows)


def test_success_numbers_the_entry_xen_follows_and_ends_on_the_after_state() -> None:
    run = seed_run(1)
    rep = replay(run)
    assert rep.failing_frame is None and rep.frames[-1].phase == "done"
    l3, l2 = run.frames["l3"], run.frames["l2"]
    # promote_l2_table is reached through entry 3 of the L3: edge #1
    visit = rep.frames[2]
    assert visit.event.mfn == l2
    edge = next(e for e in visit.model.edges if e.src == f"m{l3:x}" and e.src_port == "e3")
    assert edge.label.startswith("#1")
    assert visit.type_counts == {l3: 1, l2: 1}
    end = rep.frames[-1].model.node_for_mfn(l3)
    assert end is not None and end.status == "pinned"


def test_the_4_17_profile_replays_the_same_pin_as_a_success() -> None:
    rep = replay(seed_run(4, "4.17"))
    assert rep.failing_frame is None and rep.frames[-1].phase == "done"


def test_leak_of_the_shared_slot3_l2_is_marked() -> None:
    scn = load_scenario(ROOT / "pvlab" / "examples" / "shared-slot3-l2-leak.yaml")
    leaky = [n for n in range(1, len(scn.steps) + 1)
             if any("leak" in e.explanation for e in
                    run_scenario(scn, stop_after=n).steps[-1].outcome.events)]
    assert leaky, "the example shows Xen's slot-3 leak"
    rep = replay(run_scenario(scn, stop_after=leaky[0]))
    rows = [r.text for f in rep.frames if f.phase == "rollback"
            for n in f.model.nodes for r in n.rows]
    assert any(t.startswith("⚠ leaked") for t in rows)


@pytest.mark.parametrize("backend", ["fallback", "dot"])
def test_cli_writes_a_self_contained_page(tmp_path: Path, backend: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from pvlab.render import dot_available

    if backend == "dot" and not dot_available():
        pytest.skip("Graphviz dot is not installed")
    out = tmp_path / "seed.html"
    assert main(["render", str(SEED), "--step", "4", "--replay", "--backend", backend,
                 "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    events = seed_run(4).steps[-1].outcome.events
    assert page.count('class="frame"') == len(events)
    assert page.count("<svg") == len(events)
    assert not re.search(r"(src|href)=\"https?://", page)  # no CDN, no network
    assert "4 frames (one per trace event)" in capsys.readouterr().out


def test_cli_writes_numbered_svgs_into_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    assert main(["render", str(SEED), "--step", "4", "--replay", "--backend", "fallback",
                 "-o", f"{folder}/"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["01-promote.svg", "02-pae_l3_below_4g.svg", "03-promote.svg", "04-pin.svg"]


def test_cli_replay_without_output_or_of_a_missing_step_says_how(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["render", str(SEED), "--replay"]) == 2
    assert "--replay needs an output" in capsys.readouterr().err
    assert main(["render", str(SEED), "--step", "0", "--replay", "-o",
                 str(tmp_path / "x.html")]) == 2
    assert "use --step 1 to 7" in capsys.readouterr().err
