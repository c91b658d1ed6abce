# SPDX-License-Identifier: MIT
"""The long-lived `dot` process draws exactly what a one-shot `dot` run draws, and
stepping aside (a refused graph, a dead process) loses no picture."""

from __future__ import annotations

import pytest
from render_support import ROOT

from pvlab.render import dotserver, tables_view
from pvlab.render.dot import build_digraph, dot_source, render_many, render_svg
from pvlab.render.view import dot_available
from pvlab.scenario import load_scenario, run_scenario

HERE = ROOT / "tests" / "render" / "scenarios"
pytestmark = pytest.mark.skipif(not dot_available(), reason="needs Graphviz's dot")


def _models():  # type: ignore[no-untyped-def]
    out = []
    for step in (2, 4, None):
        run = run_scenario(load_scenario(HERE / "seed-erange.yaml"), stop_after=step)
        out.append(tables_view(run).model)
    return out


def test_served_svg_equals_one_shot_dot() -> None:
    models = _models()
    one_shot = [build_digraph(m).pipe(format="svg", encoding="utf-8") for m in models]
    assert [render_svg(m) for m in models] == one_shot
    assert render_many(models) == one_shot
    assert render_many(models[::-1]) == one_shot[::-1]


def test_a_refused_graph_or_a_dead_process_falls_back() -> None:
    server = dotserver.DotServer()
    assert server.render(["digraph { a -> ; }"]) is None  # dot exits on a syntax error
    assert not server.broken and server.failures == 1
    m = _models()[0]
    want = build_digraph(m).pipe(format="svg", encoding="utf-8")
    assert server.render([dot_source(m)]) == [want]  # a new process
    assert server._proc is not None
    server._proc.kill()
    server._proc.wait()
    assert server.render([dot_source(m)]) == [want]  # restarted
    for _ in range(dotserver.MAX_FAILURES):
        server.render(["digraph { a -> ; }"])
    assert server.broken and server.render([dot_source(m)]) is None
    server.stop()


def test_server_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVLAB_DOT_SERVER", "0")
    assert dotserver.render(["digraph { a }"]) is None
    m = _models()[0]
    assert render_svg(m) == build_digraph(m).pipe(format="svg", encoding="utf-8")
