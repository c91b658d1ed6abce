# SPDX-License-Identifier: MIT
"""The frame map: machine memory as a grid of frames, coloured by owner and type.

Only frames with state exist (the machine is sparse), so a 1 TiB host costs what its
guests touch. Up to `DETAIL_LIMIT` frames are drawn one cell each; above that, runs of
consecutive alike frames become one cell, and if that is still too many, alike frames
on one side of 4 GiB are counted together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB, format_size
from pvlab.xen.machine import FIRST_RAM_MFN

from . import style as S
from .model import Cluster, GraphModel, Node, Row
from .state import PageSnap
from .view import View

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Guest, Xen

DETAIL_LIMIT = 300
COLS = 8
LOW, HIGH = "low", "high"


@dataclass
class Cell:
    first: int
    last: int
    count: int
    owner: str
    type: str
    status: str  # pinned, validated, "" ...
    contiguous: bool = True
    type_count: int = 0
    general: int = 0

    def key(self) -> tuple[str, str, str]:
        return (self.owner, self.type, self.status)


def _status(p: PageSnap) -> str:
    if p.level and p.type_count:
        return "pinned" if p.pinned else "validated" if p.validated else "unvalidated"
    return ""


def _cells(pages: list[PageSnap]) -> list[Cell]:
    return [Cell(p.mfn, p.mfn, 1, p.owner_name, p.type_name, _status(p), True, p.type_count,
                 p.count) for p in pages]


def _runs(cells: list[Cell]) -> list[Cell]:
    out: list[Cell] = []
    for c in cells:
        last = out[-1] if out else None
        if last and last.key() == c.key() and c.first == last.last + 1 and \
                (last.first >= MFN_4GIB) == (c.first >= MFN_4GIB):
            last.last = c.last
            last.count += c.count
        else:
            out.append(Cell(c.first, c.last, c.count, c.owner, c.type, c.status, c.contiguous,
                            c.type_count, c.general))
    return out


def _groups(cells: list[Cell]) -> list[Cell]:
    by: dict[tuple[bool, str, str, str], Cell] = {}
    for c in cells:
        k = (c.first >= MFN_4GIB, *c.key())
        g = by.get(k)
        if g is None:
            by[k] = Cell(c.first, c.last, c.count, c.owner, c.type, c.status, True)
        else:
            g.contiguous = g.contiguous and g.last + 1 == c.first
            g.first, g.last = min(g.first, c.first), max(g.last, c.last)
            g.count += c.count
    return sorted(by.values(), key=lambda c: c.first)


def summarise(pages: list[PageSnap], limit: int = DETAIL_LIMIT) -> tuple[list[Cell], str]:
    """Cells for the map, and how they were summarised ("", "runs" or "groups")."""
    cells = _cells(pages)
    if len(cells) <= limit:
        return cells, ""
    cells = _runs(cells)
    if len(cells) <= limit:
        return cells, "runs"
    return _groups(cells), "groups"


def _fill(c: Cell) -> str:
    if c.owner in S.OWNER_FILL:
        return S.OWNER_FILL[c.owner]
    return S.TYPE_FILL.get(c.type, S.DATA_FILL)


def build(xen: Xen, guest: Guest | None = None, *, outcome: Outcome | None = None,
          names: Mapping[int, str] | None = None, title: str | None = None,
          labels: Mapping[int, str] | None = None) -> View:
    """`labels`: domid -> owner name, for a scenario with several domains."""
    names = dict(names or {})
    lab = labels or {}
    m = xen.machine
    pages = [PageSnap(p.mfn, p.owner, p.count_info, p.type_info, lab.get(p.owner, ""))
             for p in m.pages() if p.owner is not None]
    cells, how = summarise(pages)
    host = format_size(m.memory)
    head = title or f"machine memory: {host} host"
    g = GraphModel("frames", f"{head} — frame map", boundary="4 GiB", layout="grid")
    g.clusters = [Cluster(LOW, "below 4 GiB (MFN < 0x100000)", S.LOW_FILL),
                  Cluster(HIGH, "at or above 4 GiB (MFN ≥ 0x100000)", S.HIGH_FILL)]
    lo, hi = m.xen_range
    g.notes.append(f"{len(pages)} frames with state of {m.nr_frames:#x} "
                   f"({host}); dom_io: MFN 0x0–{FIRST_RAM_MFN - 1:#x}; "
                   f"Xen's reserved range: MFN {lo:#x}–{hi - 1:#x}"
                   + {"": "", "runs": "; runs of alike frames shown as one cell",
                      "groups": "; alike frames counted together per side"}[how])
    failed = outcome.failed_mfn if outcome is not None and not outcome.ok else None
    gid = guest.domid if guest is not None else None
    owners = sorted({p.owner for p in pages if p.owner is not None and p.owner < 0x7FF0})
    owner_of = {p.mfn: p.owner for p in pages}
    lines = [g.title, g.notes[0]]
    pos = {LOW: 0, HIGH: 0}
    for c in cells:
        side = HIGH if c.first >= MFN_4GIB else LOW
        idx = pos[side]
        pos[side] += 1
        hl = failed is not None and c.first <= failed <= c.last
        if c.count == 1:
            nm = names.get(c.first)
            title_c = f"{nm} {c.first:#x}" if nm else f"{c.first:#x}"
            detail = c.type + (f" ×{c.type_count}" if c.type_count else "")
            rows = [Row(c.owner, tone="muted"), Row(detail)]
            if c.status:
                rows.append(Row(c.status, tone="muted"))
            text = (f"{c.first:#x} {nm + ' ' if nm else ''}{c.owner} {c.type} "
                    f"type_count={c.type_count} count={c.general} {c.status}").rstrip()
        else:
            title_c = f"{c.first:#x}–{c.last:#x}"
            rows = [Row(f"{c.count} × {c.owner}", tone="muted"),
                    Row(c.type + (f" {c.status}" if c.status else ""))]
            if not c.contiguous:
                rows.append(Row("(scattered)", tone="muted"))
            text = (f"{c.first:#x}-{c.last:#x} {c.count} frames {c.owner} {c.type} "
                    f"{c.status}").rstrip() + ("" if c.contiguous else " (scattered)")
        if hl:
            rows.append(Row("✗ failed here", tone="bad"))
            text += " FAILED"
        owner_id = owner_of.get(c.first)
        border = S.INK
        if owner_id in owners:
            border = S.OWNER_BORDER[owners.index(owner_id) % len(S.OWNER_BORDER)]
        g.nodes.append(Node(f"f{c.first:x}", title_c, tuple(rows), kind="frame",
                            layer=idx // COLS, col=idx % COLS, cluster=side, fill=_fill(c),
                            border=border, highlight=hl, mfn=c.first,
                            status="guest" if owner_id == gid and gid is not None else c.owner,
                            owner=c.owner))
        lines.append(text)
    for cid in (LOW, HIGH):
        if not g.in_cluster(cid):
            g.nodes.append(Node(f"empty_{cid}", "(no frames here)", kind="note", layer=0,
                                col=0, cluster=cid, fill=S.LOW_FILL if cid == LOW else
                                S.HIGH_FILL, border="#bbbbbb"))
    return View(g, "\n".join(lines) + "\n")
