# SPDX-License-Identifier: MIT
"""The render caches: memoised table nodes and kept SVG give the pictures a fresh build
gives, and a change to anything a picture shows is a different picture."""

from __future__ import annotations

from dataclasses import replace

from render_support import ROOT

from pvlab.render import svgcache, tables_view
from pvlab.render import tables_graph as tg
from pvlab.render.model import GraphModel, Node, Row
from pvlab.render.svg import render_svg
from pvlab.scenario import load_scenario, run_scenario

HERE = ROOT / "tests" / "render" / "scenarios"


def _models(names: dict[str, str] | None = None) -> GraphModel:
    run = run_scenario(load_scenario(HERE / "seed-erange.yaml"))
    return tables_view(run, names={run.frames[k]: v for k, v in (names or {}).items()}).model


def test_memoised_nodes_equal_fresh_ones() -> None:
    tg._NODE_MEMO.clear()
    fresh = _models()
    assert tg._NODE_MEMO
    again = _models()
    assert again.nodes == fresh.nodes and again.edges == fresh.edges
    tg._NODE_MEMO.clear()
    assert _models().nodes == fresh.nodes


def test_a_renamed_frame_is_a_new_node() -> None:
    plain = _models()
    renamed = _models({"new_l2": "my_l2"})
    assert any("my_l2" in n.label for n in renamed.nodes)
    assert not any("my_l2" in n.label for n in plain.nodes)


def test_kept_svg_is_the_drawn_svg_and_keys_follow_the_model(backend: str) -> None:
    svgcache.clear()
    m = _models()
    v = tables_view(run_scenario(load_scenario(HERE / "seed-erange.yaml")))
    first = v.svg()
    assert svgcache.get(svgcache.key(v.model, "fallback" if backend == "fallback"
                                     else "dot")) == first
    assert v.svg() == first
    if backend == "fallback":
        assert first == render_svg(v.model)
    k = svgcache.key(m, "fallback")
    node = m.nodes[0]
    changed = GraphModel(m.kind, m.title, [replace(node, rows=(*node.rows, Row("x"))),
                                           *m.nodes[1:]], m.edges, m.clusters, m.boundary,
                         m.notes)
    assert svgcache.key(changed, "fallback") != k
    assert svgcache.key(m, "dot") != k
    odd = GraphModel("tables", "t", [Node("a", "a")])
    odd.notes = [["unhashable"]]  # type: ignore[list-item]
    assert svgcache.key(odd, "fallback") is None
