# SPDX-License-Identifier: MIT
"""The pagetable graph, checked through its model: nodes, edges, labels, highlights."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from render_support import ROOT, needs_graphviz

from pvlab import Xen
from pvlab.render import tables_view
from pvlab.render.tables_graph import node_id
from pvlab.scenario import load_scenario, run_scenario

HERE = ROOT / "tests" / "render" / "scenarios"


def seed_run(step: int | None = None):  # type: ignore[no-untyped-def]
    return run_scenario(load_scenario(HERE / "seed-erange.yaml"), stop_after=step)


def test_failed_l3_is_red_with_reason_and_above_4g(backend: str) -> None:
    run = seed_run()
    v = tables_view(run)
    m = v.model
    l3 = m.node(node_id(run.frames["new_l3"]))
    assert l3.highlight and l3.status == "failed" and l3.border == "#c62828"
    assert l3.cluster == "high" and l3.layer == m.node(node_id(run.frames["boot_l3"])).layer
    assert [n.id for n in m.highlighted()] == [l3.id]
    reason = " ".join(r.text for r in l3.rows if r.tone == "bad")
    assert "at or above 4 GiB" in reason and "pae_extended_cr3 is off" in reason
    assert reason.endswith("-ERANGE")
    # the candidate L3 is drawn with its entry and the chain below it
    assert l3.row("e3") is not None and "new_l2" in l3.row("e3").text  # type: ignore[union-attr]
    edges = {(e.src, e.src_port, e.dst) for e in m.edges}
    assert (l3.id, "e3", node_id(run.frames["new_l2"])) in edges
    assert m.node(node_id(run.frames["new_l2"])).status == "unvalidated"
    # the picture names the failure, whichever back end draws it
    svg = v.svg()
    ET.fromstring(svg)
    assert "ERANGE" in svg and "new_l3" in svg


def test_live_tables_below_4g_are_validated_and_pinned() -> None:
    run = seed_run()
    m = tables_view(run).model
    boot_l3 = m.node(node_id(run.frames["boot_l3"]))
    assert boot_l3.cluster == "low" and boot_l3.status == "pinned" and not boot_l3.highlight
    assert "type count 2" in boot_l3.label  # the pin and vCPU 0's guest_table
    assert m.node(node_id(run.frames["boot_l2"])).status == "validated"
    roots = [n for n in m.nodes if n.kind == "root"]
    assert [r.id for r in roots] == ["cr3_0"]
    assert [e.dst for e in m.edges_from("cr3_0")] == [boot_l3.id]
    assert m.boundary == "4 GiB" and [c.id for c in m.clusters] == ["low", "high"]


def test_layers_go_cr3_l3_l2_l1_data() -> None:
    run = seed_run()
    m = tables_view(run).model
    f = run.frames
    layers = [m.node(node_id(f[k])).layer for k in ("boot_l3", "boot_l2", "boot_l1", "kernel")]
    assert m.node("cr3_0").layer < layers[0] < layers[1] < layers[2] < layers[3]


def test_pae_xen_slots_collapse_into_one_xen_node() -> None:
    xen = Xen("4.19")
    g = xen.create_domain(32, vm_assists=["pae_extended_cr3"])
    l3s = []
    for _ in range(2):
        l3, l2 = g.alloc_frame(), g.alloc_frame()
        g.write_entry(l3, 3, l2, "P")
        assert g.pin(l3, 3).ok
        l3s.append((l3, l2))
    m = tables_view(xen, g).model
    xen_nodes = [n for n in m.nodes if n.kind == "xen"]
    assert [n.id for n in xen_nodes] == ["xen"]
    into_xen = sorted(e.src for e in m.edges if e.dst == "xen")
    assert into_xen == sorted(node_id(l2) for _, l2 in l3s)
    for _, l2 in l3s:
        assert "entries 428–511: Xen's own slots" in m.node(node_id(l2)).label
    # no node for the compat M2P frames themselves
    assert not [n for n in m.nodes if n.kind == "data"]


def test_l4_xen_slots_collapse() -> None:
    run = run_scenario(load_scenario(HERE / "pv64-four-levels.yaml"))
    m = tables_view(run).model
    l4 = m.node(node_id(run.frames["l4"]))
    assert l4.row("xen") is not None and "256–271" in l4.row("xen").text  # type: ignore[union-attr]
    assert [e.dst for e in m.edges_from(l4.id) if e.src_port == "xen"] == ["xen"]


def test_long_runs_of_entries_collapse() -> None:
    xen = Xen("4.19", "8GiB")
    g = xen.create_domain(64)
    l1 = g.alloc_frame()
    for i in (0, 2, 4, 6):
        g.write_entry(l1, i, g.alloc_frame(), "P")
    for i in range(8, 512):
        g.write_entry(l1, i, g.alloc_frame(), "P|RW")
    assert g.pin(l1, 1).ok
    m = tables_view(xen, g).model
    node = m.node(node_id(l1))
    # Xen's adjust_guest_l1e marks a 64-bit guest's kernel pages (no US): US + bit 52
    run_rows = [r for r in node.rows if r.port == "r8"]
    assert [r.text for r in run_rows] == ["entries 8–511: 504 × → data · P|RW|US|BIT52"]
    singles = [r.port for r in node.rows if r.port and r.port.startswith("e")]
    assert singles == ["e0", "e2", "e4", "e6"]
    runs = [n for n in m.nodes if n.kind == "run"]
    assert len(runs) == 1 and runs[0].title == "504 data frames"
    assert len([n for n in m.nodes if n.kind == "data"]) == 4
    assert len(m.nodes) < 20


def test_failed_entry_is_highlighted_with_its_edge(backend: str) -> None:
    # An L1 that maps itself writable cannot be promoted: -EBUSY at entry 0 (Xen:
    # get_page_from_l1e -> get_page_type(PGT_writable_page) on a frame being an L1).
    xen = Xen("4.19")
    g = xen.create_domain(64)
    l1 = g.alloc_frame()
    g.write_entry(l1, 0, l1, "P|RW")
    out = g.pin(l1, 1)
    assert out.errno == "EBUSY"
    v = tables_view(xen, g, outcome=out, names={l1: "l1"})
    node = v.model.node(node_id(l1))
    assert node.highlight
    assert node.row("e0") is not None and node.row("e0").tone == "bad"  # type: ignore[union-attr]
    [edge] = v.model.highlighted_edges()
    assert (edge.src, edge.src_port, edge.dst) == (node.id, "e0", node.id)
    assert edge.label == "maps RW"
    ET.fromstring(v.svg())


@needs_graphviz
def test_dot_source_names_entry_ports() -> None:
    run = seed_run()
    src = tables_view(run).dot_source()
    assert f"{node_id(run.frames['new_l3'])}:e3:e -> {node_id(run.frames['new_l2'])}" in src
    assert "4 GiB" in src


def test_fallback_svg_marks_the_highlighted_node() -> None:
    from pvlab.render.svg import render_svg

    run = seed_run()
    m = tables_view(run).model
    root = ET.fromstring(render_svg(m))
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("id"): g.get("class") for g in root.iter(f"{ns}g") if g.get("id")}
    assert groups[node_id(run.frames["new_l3"])] == "node highlight"
    assert groups[node_id(run.frames["boot_l3"])] == "node"
    assert {"cluster_low", "cluster_high"} <= set(groups)
    assert any(g.get("class") == "boundary" for g in root.iter(f"{ns}g"))
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "-ERANGE" in texts and "4 GiB" in texts


def test_rendering_does_not_touch_the_core() -> None:
    run = seed_run()
    m = run.xen.machine
    before = [(p.mfn, p.owner, p.count_info, p.type_info) for p in m.pages()]
    tables_view(run).svg(backend="fallback")
    after = [(p.mfn, p.owner, p.count_info, p.type_info) for p in m.pages()]
    assert before == after
