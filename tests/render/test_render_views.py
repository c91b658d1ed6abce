# SPDX-License-Identifier: MIT
"""Walk, frame map and diff views; the View object; choosing the back end."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from render_support import HAVE_GRAPHVIZ, ROOT

import pvlab.render.view as view_mod
from pvlab import Xen
from pvlab.errors import PvlabError
from pvlab.render import (
    active_backend,
    diff_view,
    frames_view,
    set_backend,
    snapshot,
    tables_view,
    walk_view,
)
from pvlab.render.diffview import changes
from pvlab.render.tables_graph import node_id
from pvlab.scenario import load_scenario, run_scenario

HERE = ROOT / "tests" / "render" / "scenarios"


def run_of(name: str, step: int | None = None):  # type: ignore[no-untyped-def]
    return run_scenario(load_scenario(HERE / name), stop_after=step)


# ------------------------------------------------------------------ walk
def test_walk_32bit_goes_l3_l2_l1_to_the_physical_address(backend: str) -> None:
    run = run_of("seed-erange.yaml")
    v = walk_view(run, va=0xC0000123)
    steps = [n for n in v.model.nodes if n.kind == "step"]
    f = run.frames
    assert [n.mfn for n in steps] == [f["boot_l3"], f["boot_l2"], f["boot_l1"]]
    assert [n.title.split()[0] for n in steps] == ["L3", "L2", "L1"]
    assert "index 3 = VA bits 31–30" in steps[0].label
    result = v.model.node("result")
    assert result.kind == "result" and result.title == f"PA {f['kernel'] << 12 | 0x123:#x}"
    assert not v.model.highlighted()
    ET.fromstring(v.svg())


def test_walk_ends_in_the_fault_for_a_user_access_to_a_kernel_page() -> None:
    run = run_of("seed-erange.yaml")
    v = walk_view(run, va=0xC0000000, user=True)
    fault = v.model.node("result")
    assert fault.kind == "fault" and fault.highlight
    assert "supervisor-only" in fault.label and "error code 0x5" in fault.label


def test_walk_of_an_unmapped_address_stops_at_the_missing_entry() -> None:
    run = run_of("pv64-four-levels.yaml")
    v = walk_view(run, va=0x40000000)  # L3 index 1: not present
    steps = [n for n in v.model.nodes if n.kind == "step"]
    assert [n.title.split()[0] for n in steps] == ["L4", "L3"]
    assert steps[-1].highlight and "not present" in steps[-1].label
    assert "#PF" in v.model.node("result").title


def test_walk_needs_an_initialised_vcpu() -> None:
    run = run_of("seed-erange.yaml", 0)
    v = walk_view(run, va=0)
    assert "not initialised" in v.text()


# ------------------------------------------------------------------ frames
def test_frame_map_sides_and_failure(backend: str) -> None:
    run = run_of("seed-erange.yaml")
    v = frames_view(run)
    m = v.model
    high = [n.mfn for n in m.in_cluster("high")]
    assert high == [run.frames["new_l3"]]
    assert [n.mfn for n in m.highlighted()] == [run.frames["new_l3"]]
    assert m.node(f"f{run.frames['boot_l3']:x}").fill != m.node(f"f{run.frames['kernel']:x}").fill
    ET.fromstring(v.svg())


def test_frame_map_on_a_1tib_host_summarises_many_frames(backend: str) -> None:
    xen = Xen("4.19", "1TiB")
    g = xen.create_domain(64)
    for _ in range(400):
        g.alloc_frame()
    for _ in range(3):
        g.alloc_frame(above="512GiB")
    v = frames_view(xen, guest=g)
    cells = [n for n in v.model.nodes if n.kind == "frame"]
    assert len(cells) == 2  # one run below 4 GiB, one above
    assert cells[0].title == "0x100–0x28f" and "400 × d1" in cells[0].label
    assert cells[1].cluster == "high" and "3 × d1" in cells[1].label
    ET.fromstring(v.svg())


# ------------------------------------------------------------------ diff
def test_diff_of_a_successful_pin_marks_new_types_and_counts(backend: str) -> None:
    before, after = run_of("pv64-four-levels.yaml", 0), run_of("pv64-four-levels.yaml", 1)
    names = {m: n for n, m in after.frames.items()}
    v = diff_view(snapshot(before.xen, before.guest), snapshot(after.xen, after.guest),
                  outcome=after.steps[-1].outcome, names=names)
    l4 = v.model.node(node_id(after.frames["l4"]))
    assert l4.changed
    changed = [r.text for r in l4.rows if r.tone == "changed"]
    assert "Δ type none → l4" in changed and "Δ type count 0 → 1 (up)" in changed
    assert "Δ pinned" in changed and "Δ validated" in changed
    l1 = v.model.node(node_id(after.frames["l1"]))
    assert "Δ type count 0 → 1 (up)" in [r.text for r in l1.rows]
    ET.fromstring(v.svg())


def test_diff_of_erange_shows_the_failure_and_no_change() -> None:
    # Xen: -ERANGE is decided before promote_l3_table takes any reference.
    before, after = run_of("seed-erange.yaml", 2), run_of("seed-erange.yaml", 3)
    b, a = snapshot(before.xen, before.guest), snapshot(after.xen, after.guest)
    assert changes(b, a) == {}
    v = diff_view(b, a, outcome=after.steps[-1].outcome,
                  names={m: n for n, m in after.frames.items()})
    assert [n.mfn for n in v.model.highlighted()] == [after.frames["new_l3"]]
    assert not [n for n in v.model.nodes if n.changed]


def test_diff_of_vcpu_initialise_marks_the_cr3_and_the_count() -> None:
    before, after = run_of("seed-erange.yaml", 1), run_of("seed-erange.yaml", 2)
    b, a = snapshot(before.xen, before.guest), snapshot(after.xen, after.guest)
    v = diff_view(b, a, names={m: n for n, m in after.frames.items()})
    cr3 = v.model.node("cr3_0")
    assert cr3.changed and any("initialised" in r.text for r in cr3.rows)
    l3 = v.model.node(node_id(after.frames["boot_l3"]))
    assert "Δ type count 1 → 2 (up)" in [r.text for r in l3.rows]


def test_snapshot_is_immutable() -> None:
    run = run_of("seed-erange.yaml")
    snap = snapshot(run.xen, run.guest)
    with pytest.raises(TypeError):
        snap.pages[1] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.bitness = 64  # type: ignore[misc]


# ------------------------------------------------------------------ View, back ends
def test_mimebundle_include_exclude() -> None:
    v = tables_view(run_of("seed-erange.yaml"))
    assert set(v._repr_mimebundle_()) == {"image/svg+xml", "text/plain"}
    assert set(v._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert set(v._repr_mimebundle_(exclude=["image/svg+xml"])) == {"text/plain"}


def test_save_by_suffix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    v = tables_view(run_of("seed-erange.yaml"))
    set_backend("fallback")
    try:
        assert v.save(tmp_path / "a.txt").read_text() == v.text()
        ET.fromstring(v.save(tmp_path / "a.svg").read_text())
        if HAVE_GRAPHVIZ:
            assert v.save(tmp_path / "a.dot").read_text().startswith("digraph")
        with pytest.raises(PvlabError, match="suffix"):
            v.save(tmp_path / "a.jpeg")
    finally:
        set_backend("auto")


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(PvlabError, match="fallback"):
        set_backend("cairo")


def test_auto_falls_back_when_dot_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(view_mod._state, "dot", None)
    monkeypatch.setattr(view_mod.shutil, "which", lambda name: None)
    set_backend("auto")
    assert active_backend() == "fallback"
    svg = tables_view(run_of("seed-erange.yaml")).svg()
    assert 'class="pvlab-tables"' in svg  # the fallback's own mark


def test_core_never_imports_render_or_graphviz() -> None:
    code = ("import sys, pvlab, pvlab.xen, pvlab.scenario, pvlab.x86, pvlab.trace; "
            "from pvlab.scenario import load_scenario, run_scenario; "
            f"run_scenario(load_scenario({str(HERE / 'seed-erange.yaml')!r})); "
            "bad = [m for m in sys.modules if m.startswith(('graphviz', 'pvlab.render'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
