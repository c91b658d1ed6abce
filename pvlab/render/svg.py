# SPDX-License-Identifier: MIT
"""The pure-Python SVG fallback: the same nodes, rows, edges and colours, no Graphviz.

Layout is deliberately simple: nodes sit in horizontal bands by `layer` (top-down),
and in three regions left to right: frames outside any cluster (CR3, Xen), the first
cluster (below 4 GiB), then a dashed boundary line, then the second cluster (at or
above 4 GiB). Within a band, nodes keep the model's order (grid views: `col`).
"""

from __future__ import annotations

from html import escape

from . import style as S
from .model import GraphModel, Node

CHAR_W = 6.6  # average glyph width of 11px Helvetica/DejaVu Sans
LINE_H = 15.0
PAD = 6.0
GAP_X = 22.0
GAP_Y = 44.0
MARGIN = 16.0
CLUSTER_PAD = 12.0
TITLE_H = 18.0


def _size(n: Node) -> tuple[float, float]:
    texts = [n.title, *(r.text for r in n.rows)]
    w = max(len(t) for t in texts) * CHAR_W + 2 * PAD
    h = len(texts) * LINE_H + 2 * PAD - 2
    return max(w, 40.0), h


class _Placed:
    __slots__ = ("node", "x", "y", "w", "h")

    def __init__(self, node: Node, x: float, y: float, w: float, h: float) -> None:
        self.node, self.x, self.y, self.w, self.h = node, x, y, w, h

    def port_y(self, port: str | None) -> float | None:
        if port is None:
            return None
        for i, r in enumerate(self.node.rows):
            if r.port == port:
                return self.y + PAD + (i + 1.5) * LINE_H - 3
        return None


def layout(m: GraphModel) -> tuple[dict[str, _Placed], dict[str, tuple[float, float, float,
                                                                           float]], float,
                                   float, float | None, float]:
    """Positions of nodes and cluster boxes; also the boundary x and the picture size."""
    header = MARGIN + TITLE_H * (1 + len(m.notes)) + 8
    regions: list[str | None] = [None, *(c.id for c in m.clusters)]
    layers = sorted({n.layer for n in m.nodes})
    by: dict[tuple[int, str | None], list[Node]] = {}
    for n in m.nodes:
        key = (n.layer, n.cluster if n.cluster in regions else None)
        by.setdefault(key, []).append(n)
    for lst in by.values():
        if m.layout == "grid":
            lst.sort(key=lambda n: n.col or 0)
    sizes = {n.id: _size(n) for n in m.nodes}
    if m.layout == "grid" and m.nodes:  # uniform cells
        cw = max(w for w, _ in sizes.values())
        ch = max(h for _, h in sizes.values())
        sizes = {k: (cw, ch) for k in sizes}
    # region widths
    rw: dict[str | None, float] = {}
    for r in regions:
        widths = [sum(sizes[n.id][0] for n in by.get((k, r), [])) +
                  GAP_X * max(0, len(by.get((k, r), [])) - 1) for k in layers]
        rw[r] = max(widths, default=0.0)
    # layer heights
    lh = {k: max((sizes[n.id][1] for n in m.nodes if n.layer == k), default=0.0) for k in layers}
    top_pad = CLUSTER_PAD + LINE_H if m.clusters else 0
    ys: dict[int, float] = {}
    y = header + top_pad
    for k in layers:
        ys[k] = y
        y += lh[k] + GAP_Y
    bottom = y - GAP_Y + CLUSTER_PAD
    placed: dict[str, _Placed] = {}
    boxes: dict[str, tuple[float, float, float, float]] = {}
    x = MARGIN
    boundary_x: float | None = None
    for i, r in enumerate(regions):
        if r is None and rw[r] == 0:
            continue
        inner = x + (CLUSTER_PAD if r is not None else 0)
        label_w = 0.0
        if r is not None:
            label = next(c.label for c in m.clusters if c.id == r)
            label_w = len(label) * CHAR_W + 2 * CLUSTER_PAD
        width = max(rw[r], label_w - (2 * CLUSTER_PAD if r is not None else 0))
        for k in layers:
            row = by.get((k, r), [])
            used = sum(sizes[n.id][0] for n in row) + GAP_X * max(0, len(row) - 1)
            cx = inner + (width - used) / 2 if m.layout != "grid" else inner
            for n in row:
                w, h = sizes[n.id]
                placed[n.id] = _Placed(n, cx, ys[k], w, h)
                cx += w + GAP_X
        if r is not None:
            boxes[r] = (x, header, width + 2 * CLUSTER_PAD, bottom - header)
            x += width + 2 * CLUSTER_PAD
        else:
            x += width
        x += GAP_X
        if m.boundary is not None and r is not None and i == 1 and len(regions) > 2:
            boundary_x = x + GAP_X / 2
            x += 2 * GAP_X
    total_w = max(x - GAP_X + MARGIN, MARGIN * 2 + max(
        [len(m.title), *(len(n) for n in m.notes)]) * CHAR_W * 1.1)
    total_h = bottom + MARGIN
    return placed, boxes, total_w, total_h, boundary_x, header


def _text(x: float, y: float, s: str, *, color: str = S.INK, bold: bool = False,
          anchor: str = "start", size: int = 11) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" fill="{color}" font-size="{size}"{weight} '
            f'text-anchor="{anchor}">{escape(s)}</text>')


def _marker_id(color: str) -> str:
    return "arrow-" + color.lstrip("#")


def _markers(m: GraphModel) -> str:
    colors = sorted({S.RED if e.highlight else e.color for e in m.edges})
    marks = "".join(f'<marker id="{_marker_id(c)}" viewBox="0 0 10 10" refX="9" refY="5" '
                    f'markerWidth="7" markerHeight="7" orient="auto"><path '
                    f'd="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>' for c in colors)
    return f"<defs>{marks}</defs>"


def render_svg(m: GraphModel) -> str:
    placed, boxes, w, h, bx, header = layout(m)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
           f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="Helvetica, DejaVu Sans, Arial, '
           f'sans-serif" class="pvlab-{m.kind}">',
           _markers(m),
           f'<rect x="0" y="0" width="{w:.0f}" height="{h:.0f}" fill="white"/>',
           f'<title>{escape(m.title)}</title>']
    y = MARGIN + 12
    out.append(_text(MARGIN, y, m.title, bold=True, size=13))
    for note in m.notes:
        y += TITLE_H
        out.append(_text(MARGIN, y, note, color=S.RED if note.startswith("✗") else S.INK))
    for c in m.clusters:
        if c.id not in boxes:
            continue
        x0, y0, cw, ch = boxes[c.id]
        out.append(f'<g class="cluster" id="cluster_{c.id}"><rect x="{x0:.1f}" y="{y0:.1f}" '
                   f'width="{cw:.1f}" height="{ch:.1f}" rx="8" fill="{c.fill}" '
                   'stroke="#bbbbbb"/>')
        out.append(_text(x0 + cw / 2, y0 + LINE_H, c.label, anchor="middle", size=12) + "</g>")
    if bx is not None:
        y0 = header - 4
        out.append(f'<g class="boundary"><line x1="{bx:.1f}" y1="{y0 + LINE_H:.1f}" '
                   f'x2="{bx:.1f}" y2="{h - MARGIN:.1f}" stroke="{S.RED}" stroke-width="2" '
                   'stroke-dasharray="6,4"/>')
        out.append(_text(bx, y0 + 10, m.boundary or "", color=S.RED, bold=True,
                         anchor="middle", size=13) + "</g>")
    for e in m.edges:
        a, b = placed.get(e.src), placed.get(e.dst)
        if a is None or b is None or e.style == "invis":
            continue
        py = a.port_y(e.src_port)
        if py is not None:
            x1, y1 = a.x + a.w, py
            c1x, c1y = x1 + 40, y1
        else:
            x1, y1 = a.x + a.w / 2, a.y + a.h
            c1x, c1y = x1, y1 + 30
        if b.y > y1:
            x2, y2 = b.x + b.w / 2, b.y
            c2x, c2y = x2, y2 - 30
        else:  # an upward (or same-band) edge: enter from the side
            x2, y2 = b.x + b.w, b.y + b.h / 2
            c2x, c2y = x2 + 50, y2
        color = S.RED if e.highlight else e.color
        dash = {"dashed": ' stroke-dasharray="6,4"', "dotted": ' stroke-dasharray="2,3"'}.get(
            e.style, "")
        width = 2.5 if e.highlight else 1.2
        cls = "edge highlight" if e.highlight else "edge"
        out.append(f'<path class="{cls}" data-src="{escape(e.src)}" data-dst="{escape(e.dst)}" '
                   f'd="M{x1:.1f},{y1:.1f} C{c1x:.1f},{c1y:.1f} {c2x:.1f},{c2y:.1f} '
                   f'{x2:.1f},{y2:.1f}" fill="none" stroke="{color}" stroke-width="{width}"'
                   f'{dash} marker-end="url(#{_marker_id(color)})"/>')
        if e.label:
            out.append(_text((x1 + x2) / 2 + 4, (y1 + y2) / 2, e.label, color=color, size=9))
    for p in placed.values():
        n = p.node
        stroke = S.RED if n.highlight else S.CHANGED if n.changed else n.border
        sw = 3 if n.highlight else 2 if n.changed or n.status == "pinned" else 1
        cls = "node highlight" if n.highlight else "node"
        out.append(f'<g class="{cls}" id="{escape(n.id)}"><title>{escape(n.title)}</title>')
        out.append(f'<rect x="{p.x:.1f}" y="{p.y:.1f}" width="{p.w:.1f}" height="{p.h:.1f}" '
                   f'rx="3" fill="{n.fill}" stroke="{stroke}" stroke-width="{sw}"/>')
        ty = p.y + PAD + LINE_H - 4
        out.append(_text(p.x + p.w / 2, ty, n.title, bold=True, anchor="middle"))
        for r in n.rows:
            ty += LINE_H
            color = {"bad": S.RED, "muted": S.MUTED, "changed": S.CHANGED}.get(r.tone, S.INK)
            if r.tone == "bad":
                out.append(f'<rect x="{p.x + 1:.1f}" y="{ty - LINE_H + 4:.1f}" '
                           f'width="{p.w - 2:.1f}" height="{LINE_H:.1f}" fill="{S.RED_FILL}"/>')
            out.append(_text(p.x + PAD, ty, r.text, color=color,
                             bold=r.tone in ("bad", "changed")))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
