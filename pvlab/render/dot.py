# SPDX-License-Identifier: MIT
"""The DOT back end: a GraphModel as Graphviz source (via the `graphviz` package).

Nodes are HTML-like tables, one row per line, so an edge leaves from the entry row it
stands for. Layers share a rank; the two address clusters sit either side of a dashed
"4 GiB" line made of one invisible-ranked point per layer. `graphviz` is imported
here only, lazily, so the core and the fallback never need it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from . import cache
from . import style as S
from .model import GraphModel, Node, Row

FONT = "Helvetica"


#: Slack after each row's text: dot measures text with its own font metrics and the
#: browser draws it with its own, so a row without slack can overrun its box.
SLACK = "&#160;&#160;"


def _row_html(r: Row, width: int) -> str:
    text = escape(r.text) + SLACK
    port = f' PORT="{r.port}"' if r.port else ""
    if r.tone == "bad":
        return (f'<TR><TD{port} ALIGN="LEFT" BGCOLOR="{S.RED_FILL}">'
                f'<FONT COLOR="{S.RED}"><B>{text}</B></FONT></TD></TR>')
    if r.tone == "changed":
        return (f'<TR><TD{port} ALIGN="LEFT"><FONT COLOR="{S.CHANGED}"><B>{text}</B></FONT>'
                "</TD></TR>")
    if r.tone == "muted":
        return f'<TR><TD{port} ALIGN="LEFT"><FONT COLOR="{S.MUTED}">{text}</FONT></TD></TR>'
    return f'<TR><TD{port} ALIGN="LEFT">{text}</TD></TR>'


def node_html(n: Node) -> str:
    border = 3 if n.highlight else 2 if n.changed or n.status == "pinned" else 1
    color = S.RED if n.highlight else S.CHANGED if n.changed else n.border
    width = max([len(n.title), *(len(r.text) for r in n.rows)]) if n.rows else len(n.title)
    title = escape(n.title)
    head = f'<TR><TD ALIGN="CENTER"><B>{title}</B></TD></TR>'
    rows = "".join(_row_html(r, width) for r in n.rows)
    return (f'<<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" '
            f'COLOR="{color}" BGCOLOR="{n.fill}">{head}{rows}</TABLE>>')


def _graph_label(m: GraphModel) -> str:
    lines = [f'<B>{escape(m.title)}</B>']
    for note in m.notes:
        color = S.RED if note.startswith("✗") else S.INK
        lines.append(f'<FONT COLOR="{color}">{escape(note)}</FONT>')
    return "<" + "<BR/>".join(lines) + ">"


def _layer_nodes(m: GraphModel) -> dict[int, list[Node]]:
    out: dict[int, list[Node]] = {}
    for n in m.nodes:
        out.setdefault(n.layer, []).append(n)
    return dict(sorted(out.items()))


def add_node(g: Any, n: Node) -> None:
    g.node(n.id, node_html(n), tooltip=n.title, id=n.id)


def _sides(g: Any, m: GraphModel, layers: dict[int, list[Node]]) -> None:
    """Two sides of a dashed boundary line, kept apart by flat invisible edges.

    Graphviz clusters cannot be ordered left to right reliably, so the sides are drawn
    without cluster boxes: per layer, every node of the first cluster has an invisible
    edge to that layer's boundary point, which has one to every node of the second.
    """
    first, second = m.clusters[0], m.clusters[1]
    g.node("_head_lo", f"<<B>{escape(first.label)}</B>>", shape="box", style="filled,rounded",
           fillcolor=first.fill, color="#bbbbbb")
    g.node("_head_hi", f"<<B>{escape(second.label)}</B>>", shape="box", style="filled,rounded",
           fillcolor=second.fill, color="#bbbbbb")
    g.node("_b_head", f"<<B>{escape(m.boundary or '')}</B>>", shape="plaintext",
           fontcolor=S.RED, fontsize="14")
    with g.subgraph() as same:
        same.attr(rank="same")
        for nid in ("_head_lo", "_b_head", "_head_hi"):
            same.node(nid)
        same.edge("_head_lo", "_b_head", style="invis")
        same.edge("_b_head", "_head_hi", style="invis")
    chain = ["_b_head"]
    for n in m.nodes:
        add_node(g, n)
    for k, nodes in layers.items():
        b = f"_b{k}"
        chain.append(b)
        g.node(b, "", shape="point", width="0.03", color=S.RED)
        with g.subgraph() as same:
            same.attr(rank="same")
            same.node(b)
            for n in nodes:
                same.node(n.id)
                if n.cluster == first.id or n.cluster is None:
                    same.edge(n.id, b, style="invis")
                elif n.cluster == second.id:
                    same.edge(b, n.id, style="invis")
    for a, b in zip(chain, chain[1:], strict=False):
        g.edge(a, b, dir="none", style="dashed", color=S.RED, penwidth="2", weight="1000")


def build_digraph(m: GraphModel) -> Any:
    """The `graphviz.Digraph` of a model (imports graphviz)."""
    try:
        import graphviz
    except ImportError:
        from pvlab.errors import PvlabError

        raise PvlabError("the graphviz Python package is not installed, so there is no DOT "
                         "source", "pip install graphviz (or pvlab[lab]); .svg still works "
                         "through the built-in fallback") from None

    g = graphviz.Digraph(m.kind, format="svg")
    g.attr(rankdir=m.rankdir, newrank="true", fontname=FONT, labelloc="t", labeljust="l",
           label=_graph_label(m), nodesep="0.25", ranksep="0.45", bgcolor="white",
           compound="true")
    g.attr("node", shape="plaintext", fontname=FONT, fontsize="11", margin="0")
    g.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.7")
    layers = _layer_nodes(m)
    boundary = m.boundary is not None and len(m.clusters) >= 2

    if boundary:
        _sides(g, m, layers)
    else:
        for n in m.nodes:
            if n.cluster is None:
                add_node(g, n)
        for c in m.clusters:
            with g.subgraph(name=f"cluster_{c.id}") as sub:
                sub.attr(label=c.label, style="filled,rounded", fillcolor=c.fill,
                         color="#bbbbbb", fontname=FONT, fontsize="12")
                for n in m.in_cluster(c.id):
                    add_node(sub, n)
        for nodes in layers.values():
            with g.subgraph() as same:
                same.attr(rank="same")
                for n in nodes:
                    same.node(n.id)
    if m.layout == "grid":  # keep each row's order with invisible edges
        for nodes in layers.values():
            by_cluster: dict[str | None, list[Node]] = {}
            for n in nodes:
                by_cluster.setdefault(n.cluster, []).append(n)
            for row in by_cluster.values():
                row.sort(key=lambda n: n.col or 0)
                for a, b in zip(row, row[1:], strict=False):
                    g.edge(a.id, b.id, style="invis")
        keys = list(layers)
        for upper, lower in zip(keys, keys[1:], strict=False):
            g.edge(layers[upper][0].id, layers[lower][0].id, style="invis")
    for e in m.edges:
        tail = f"{e.src}:{e.src_port}:e" if e.src_port else e.src
        attrs = {"color": S.RED if e.highlight else e.color, "style": e.style}
        if e.highlight:
            attrs["penwidth"] = "2.5"
        if e.label:
            attrs["label"] = e.label
            attrs["fontcolor"] = attrs["color"]
        g.edge(tail, e.dst, **attrs)
    return g


def dot_source(m: GraphModel) -> str:
    return str(build_digraph(m).source)


def render_svg(m: GraphModel) -> str:
    """SVG from `dot` (raises OSError when it is not installed):
    from the shared render cache when one is configured (`pvlab.render.cache`), else
    through the session's long-lived `dot` when it can (`pvlab.render.dotserver`)."""
    g = build_digraph(m)
    return cache.svg_one(str(g.source), lambda: dot_svgs([str(g.source)])[0])


def render_png(m: GraphModel) -> bytes:
    g = build_digraph(m)
    return g.pipe(format="png")


def render_many(models: list[GraphModel]) -> list[str]:
    """SVG for several models from one `dot` run (one process start instead of many)."""
    if not models:
        return []
    return cache.svg_many([dot_source(m) for m in models], dot_svgs)


def dot_svgs(sources: list[str], timeout: float | None = None) -> list[str]:
    """SVG for several DOT sources: the session's long-lived `dot` if it answers, else one
    `dot -Tsvg` run. With `timeout` (the hub's render server, drawing for a whole room):
    always one run of its own, killed after `timeout` seconds."""
    import subprocess

    from .dotserver import render as served

    got = served(sources) if timeout is None else None
    if got is not None:
        return got
    src = "\n".join(sources)
    proc = subprocess.run(["dot", "-Tsvg"], input=src.encode("utf-8"), capture_output=True,
                          check=True, timeout=timeout)
    out = proc.stdout.decode("utf-8")
    docs = ["<?xml" + part for part in out.split("<?xml") if part.strip()]
    if len(docs) != len(sources):
        raise RuntimeError(f"dot returned {len(docs)} pictures for {len(sources)} graphs")
    return docs
