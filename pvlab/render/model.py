# SPDX-License-Identifier: MIT
"""The view model: a plain graph of nodes, rows, edges and clusters.

Every picture is built as a :class:`GraphModel` first; the text, DOT and fallback SVG
back ends only read it. Tests check pictures through this model (which nodes, which
edges, which labels, what is highlighted), never through SVG bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

#: What a box in a picture stands for (the back ends style each kind).
NodeKind = Literal["root", "table", "candidate", "data", "run", "xen", "frame", "step",
                   "result", "fault", "note"]


@dataclass(frozen=True)
class Row:
    """One line inside a node. `port` names it as an edge source (an entry row)."""

    text: str
    port: str | None = None
    tone: str = ""  # "", "muted", "bad" (red: failure), "changed", "title"


@dataclass(frozen=True)
class Node:
    """A box in the picture.

    `layer` is the top-down position (0 at the top: CR3/roots, then L4, L3, L2, L1,
    data); `cluster` puts it on one side of the 4 GiB line; `highlight` is red.
    """

    id: str
    title: str
    rows: tuple[Row, ...] = ()
    kind: NodeKind = "frame"
    layer: int = 0
    cluster: str | None = None
    fill: str = "#ffffff"
    border: str = "#444444"
    highlight: bool = False
    changed: bool = False
    mfn: int | None = None
    status: str = ""  # validated, pinned, partial, failed, unvalidated, ...
    col: int | None = None  # grid column (frame map)
    #: The owning domain as pictures name it ("dom0 (d1)", "d2", "dom_io"), when known.
    owner: str = ""

    @property
    def label(self) -> str:
        """The node's whole text, one line per row (what a reader sees)."""
        return "\n".join([self.title, *(r.text for r in self.rows)])

    def row(self, port: str) -> Row | None:
        for r in self.rows:
            if r.port == port:
                return r
        return None


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    src_port: str | None = None
    label: str = ""
    highlight: bool = False
    style: str = "solid"  # solid, dashed, dotted, invis
    color: str = "#555555"


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str
    fill: str = "#f7f7f7"


@dataclass
class GraphModel:
    """A picture's structure: what the three back ends draw."""

    kind: str  # tables, walk, frames, diff
    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    #: Label of the line drawn between the first two clusters ("4 GiB"), if any.
    boundary: str | None = None
    notes: list[str] = field(default_factory=list)
    rankdir: str = "TB"
    layout: str = "layers"  # layers (top-down by layer) or grid (frame map)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def has_node(self, node_id: str) -> bool:
        return any(n.id == node_id for n in self.nodes)

    def node_for_mfn(self, mfn: int) -> Node | None:
        for n in self.nodes:
            if n.mfn == mfn and n.kind in ("table", "candidate", "data", "frame", "step"):
                return n
        return None

    def highlighted(self) -> list[Node]:
        return [n for n in self.nodes if n.highlight]

    def highlighted_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.highlight]

    def edges_from(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def in_cluster(self, cluster_id: str) -> list[Node]:
        return [n for n in self.nodes if n.cluster == cluster_id]

    def labels(self) -> Iterator[str]:
        yield self.title
        yield from self.notes
        for n in self.nodes:
            yield n.label
        for e in self.edges:
            if e.label:
                yield e.label
