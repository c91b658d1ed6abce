# SPDX-License-Identifier: MIT
"""A summarised pagetable picture for large guests, built from the machine's numpy arrays.

`tables_view` draws every table and every run of entries; for a guest with thousands of
tables (a 4 GiB guest has 2,048 L1s) that picture is unreadable and its view model alone
reads a million `PageInfo` views. `summarise(xen, guest)` instead reads the frame store's
parallel arrays (`pvlab.xen.framestore`) directly:

- **runs of frames**: consecutive MFNs with the same owner, page type, reference-count
  class, pinned and validated bits, found with `np.diff` over the sorted arrays;
- **table groups**: the guest's pagetables per level and side of 4 GiB ("2,048 L1
  tables, all validated"), with their present entries counted by what they name (a
  next-level table, the guest's RAM, a frame of another owner, Xen's own slots) and by
  read-only / writable.

The work is O(frames) in numpy and O(runs + groups) in Python, and the picture has a
node per group, not per table. `summary_view` wraps it as a `View`; `tables_view` uses
it automatically for guests with more than `SUMMARY_TABLES` pagetables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pvlab.units import MFN_4GIB
from pvlab.x86.flags import ADDR_MASK, PS, RW
from pvlab.xen.danger import find_dangers
from pvlab.xen.page_info import (
    TYPE_NAMES,
    PGC_count_mask,
    PGT_count_mask,
    PGT_partial,
    PGT_pinned,
    PGT_validated,
    owner_name,
)

from . import danger
from . import style as S
from .model import Cluster, Edge, GraphModel, Node, Row
from .view import View

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Guest, Xen

#: Guests with more pagetables than this are drawn summarised by `tables_view`.
SUMMARY_TABLES = 64
#: Runs of frames listed in a picture's data node (the rest are counted).
RUNS_SHOWN = 6
#: Runs of frames listed in the summary's text.
RUNS_LISTED = 64
#: Tables of a group named one by one in its node when there are at most this many.
TABLES_NAMED = 4

LOW, HIGH = "low", "high"
_TYPE_SHIFT = 61
I64 = npt.NDArray[np.int64]


def _count_class(n: int) -> str:
    return "3+" if n >= 3 else str(n)


@dataclass(frozen=True)
class FrameRun:
    """Consecutive frames alike in owner, type, count class, pinned and validated."""

    first: int
    count: int
    owner: int | None
    type_name: str
    count_class: str  # general reference count: "0", "1", "2" or "3+"
    pinned: bool
    validated: bool

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def text(self) -> str:
        bits = [w for w, on in (("pinned", self.pinned), ("validated", self.validated)) if on]
        state = f", {', '.join(bits)}" if bits else ""
        span = f"mfn {self.first:#x}" if self.count == 1 else \
            f"mfn {self.first:#x}–{self.last:#x}"
        return (f"{span}: {self.count:,} × {owner_name(self.owner)} {self.type_name}, "
                f"count {self.count_class}{state}")


@dataclass
class TableGroup:
    """The guest's pagetables of one level on one side of 4 GiB."""

    level: int
    cluster: str
    mfns: I64
    pinned: int = 0
    validated: int = 0
    partial: int = 0
    present: int = 0
    #: present entries by what they name: "table" (a table one level down), "ram" (a
    #: frame of the guest's own, not a table), "other" (another owner's frame or none),
    #: "super" (a superpage), "xen" (Xen's own slots)
    named: dict[str, int] = field(default_factory=dict)
    writable: int = 0  # present entries with RW set (outside Xen's slots)
    #: (cluster of a next-level table, entries naming tables there)
    children: dict[str, int] = field(default_factory=dict)

    @property
    def tables(self) -> int:
        return len(self.mfns)

    @property
    def status(self) -> str:
        if self.pinned == self.tables:
            return "pinned"
        if self.validated == self.tables:
            return "validated"
        if self.partial:
            return "partial"
        return "unvalidated"

    def state_text(self) -> str:
        n = self.tables
        if n == 1:
            words = [w for w, k in (("pinned", self.pinned), ("validated", self.validated),
                                    ("partial", self.partial)) if k]
            return ", ".join(words) or "not validated"
        parts = []
        for word, k in (("validated", self.validated), ("pinned", self.pinned),
                        ("partial", self.partial)):
            if k:
                parts.append(f"all {word}" if k == n else f"{k:,} {word}")
        return "; ".join(parts) or "none validated"


@dataclass
class Summary:
    """A guest's pagetables and frames, summarised (see the module docstring)."""

    domid: int
    label: str
    bitness: int
    nr_frames: int
    roots: list[tuple[str, int, int]]  # (label, vcpu id, mfn)
    frames: int  # frames the guest owns
    runs: FrameRuns  # runs of the guest's frames
    groups: list[TableGroup]

    def group(self, level: int, cluster: str | None = None) -> list[TableGroup]:
        return [g for g in self.groups if g.level == level
                and (cluster is None or g.cluster == cluster)]

    def tables(self, level: int) -> int:
        return sum(g.tables for g in self.group(level))


@dataclass(frozen=True)
class FrameRuns:
    """Runs of frames as parallel arrays (a 4 GiB guest can have 300,000 runs: they
    become `FrameRun` objects only when read, `runs[i]`)."""

    first: I64
    count: I64
    owner: I64  # -1: free
    ptype: I64  # type_info >> 61
    count_class: I64  # min(count, 3)
    pinned: npt.NDArray[np.bool_]
    validated: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, i: int) -> FrameRun:
        o = int(self.owner[i])
        return FrameRun(int(self.first[i]), int(self.count[i]), None if o < 0 else o,
                        TYPE_NAMES[int(self.ptype[i]) << _TYPE_SHIFT],
                        _count_class(int(self.count_class[i])), bool(self.pinned[i]),
                        bool(self.validated[i]))

    def __iter__(self) -> Iterator[FrameRun]:
        return (self[i] for i in range(len(self)))

    def where(self, mask: npt.NDArray[np.bool_]) -> FrameRuns:
        return FrameRuns(*(getattr(self, f.name)[mask] for f in fields(self)))

    @property
    def frames(self) -> int:
        return int(self.count.sum())


def frame_runs(mfns: I64, owner: npt.NDArray[np.int32], type_info: npt.NDArray[np.uint64],
               count_info: npt.NDArray[np.uint64]) -> FrameRuns:
    """Runs of consecutive alike frames in MFN-sorted parallel arrays (np.diff on a
    key of owner, type, count class, pinned and validated)."""
    ti = type_info.astype(np.uint64)
    count = np.minimum(count_info.astype(np.uint64) & np.uint64(PGC_count_mask),
                       np.uint64(3)).astype(np.int64)
    ptype = (ti >> np.uint64(_TYPE_SHIFT)).astype(np.int64)
    pinned = (ti & np.uint64(PGT_pinned)) != 0
    validated = (ti & np.uint64(PGT_validated)) != 0
    own = owner.astype(np.int64)
    key = ptype | (pinned.astype(np.int64) << 3) | (validated.astype(np.int64) << 4) \
        | (count << 5) | (own << 8)
    breaks = np.flatnonzero((np.diff(key) != 0) | (np.diff(mfns) != 1)) + 1
    starts = np.concatenate(([0], breaks)).astype(np.int64) if len(mfns) else \
        np.zeros(0, np.int64)
    ends = np.concatenate((breaks, [len(mfns)])).astype(np.int64) if len(mfns) else starts
    return FrameRuns(mfns[starts].astype(np.int64), ends - starts, own[starts],
                     ptype[starts], count[starts], pinned[starts], validated[starts])


def summarise(xen: Xen, guest: Guest) -> Summary:
    """The summary of `guest`'s pagetables and frames (see the module docstring)."""
    m = xen.machine
    d = guest.domain
    s = m.store
    n = len(s.row_mfn)
    mine = np.flatnonzero((s.row_mfn[:n] >= 0) & (s.owner[:n] == d.domid))
    order = np.argsort(s.row_mfn[mine], kind="stable")
    rows = mine[order]
    mfns = s.row_mfn[rows]
    ti = s.type_info[rows]
    runs = frame_runs(mfns, s.owner[rows], ti, s.count_info[rows])
    level = (ti >> np.uint64(_TYPE_SHIFT)).astype(np.int64)
    is_table = (level >= 1) & (level <= 4) & (
        ((ti & np.uint64(PGT_count_mask)) != 0) | ((ti & np.uint64(PGT_pinned)) != 0))
    abi = d.abi
    xen_slots = abi.drawn_xen_slots()
    groups: list[TableGroup] = []
    for lvl in (4, 3, 2, 1):
        sel = is_table & (level == lvl)
        for cl, side in ((LOW, mfns < MFN_4GIB), (HIGH, mfns >= MFN_4GIB)):
            pick = sel & side
            if not pick.any():
                continue
            g = TableGroup(lvl, cl, mfns[pick])
            gti = ti[pick]
            g.pinned = int(np.count_nonzero(gti & np.uint64(PGT_pinned)))
            g.validated = int(np.count_nonzero(gti & np.uint64(PGT_validated)))
            g.partial = int(np.count_nonzero(gti & np.uint64(PGT_partial)))
            _count_entries(xen, d.domid, g, lvl, abi, xen_slots)
            groups.append(g)
    roots = []
    for v in d.vcpus:
        if v.guest_table is not None:
            roots.append((f"vCPU {v.vcpu_id}", v.vcpu_id, v.guest_table))
        if v.guest_table_user is not None:
            roots.append((f"vCPU {v.vcpu_id} user", v.vcpu_id, v.guest_table_user))
    return Summary(d.domid, d.label, d.bitness, m.nr_frames, roots, len(mfns), runs, groups)


def _count_entries(xen: Xen, domid: int, g: TableGroup, lvl: int, abi: object,
                   xen_slots: range) -> None:
    """Count the group's present entries by what they name, one table block at a time."""
    m = xen.machine
    s, c = m.store, m.contents
    crow = c.index.get_many(g.mfns).astype(np.int64)
    crow = crow[crow >= 0]
    named = {"table": 0, "ram": 0, "other": 0, "super": 0, "xen": 0}
    step = 256  # tables per block: a few MB of temporaries at a time
    for i in range(0, len(crow), step):
        block = c.data[crow[i:i + step]]
        present = (block & np.uint64(1)) != 0
        if lvl == abi.xen_table_level and len(xen_slots):  # type: ignore[attr-defined]
            slot = np.zeros(block.shape[1], np.bool_)
            slot[xen_slots.start:xen_slots.stop] = True
            in_xen = present & slot
            named["xen"] += int(np.count_nonzero(in_xen))
            present &= ~slot
        e = block[present]
        g.present += len(e)
        g.writable += int(np.count_nonzero(e & np.uint64(RW)))
        superpage = np.zeros(len(e), np.bool_)
        if lvl in (2, 3) and abi.ps_means_superpage(lvl):  # type: ignore[attr-defined]
            superpage = (e & np.uint64(PS)) != 0
            named["super"] += int(np.count_nonzero(superpage))
        target = ((e & np.uint64(ADDR_MASK)) >> np.uint64(12)).astype(np.int64)
        valid = target < m.nr_frames
        trow = np.full(len(target), -1, np.int64)
        trow[valid] = s.index.get_many(target[valid])
        has = trow >= 0
        towner = np.full(len(target), -1, np.int64)
        towner[has] = s.owner[trow[has]]
        tti = np.zeros(len(target), np.uint64)
        tti[has] = s.type_info[trow[has]]
        tlevel = (tti >> np.uint64(_TYPE_SHIFT)).astype(np.int64)
        own = (towner == domid) & ~superpage
        table = own & (tlevel == lvl - 1) & (lvl > 1) & (
            ((tti & np.uint64(PGT_count_mask)) != 0) | ((tti & np.uint64(PGT_pinned)) != 0))
        named["table"] += int(np.count_nonzero(table))
        named["ram"] += int(np.count_nonzero(own & ~table))
        named["other"] += int(np.count_nonzero(~own & ~superpage))
        if table.any():
            high = int(np.count_nonzero(target[table] >= MFN_4GIB))
            low = int(np.count_nonzero(table)) - high
            for cl, k in ((LOW, low), (HIGH, high)):
                if k:
                    g.children[cl] = g.children.get(cl, 0) + k
    g.named = {k: v for k, v in named.items() if v}


# ------------------------------------------------------------------ the picture
_WHAT = {"table": "→ L{lower} tables", "ram": "→ the guest's RAM",
         "other": "→ frames of other owners", "super": "→ superpages",
         "xen": "in Xen's own slots"}


def _group_rows(g: TableGroup) -> list[Row]:
    lo, hi = int(g.mfns.min()), int(g.mfns.max())
    if g.tables <= TABLES_NAMED:
        where = "mfn " + ", ".join(f"{int(x):#x}" for x in g.mfns.tolist())
    else:
        where = f"mfn {lo:#x}–{hi:#x}"
    rows = [Row(where), Row(g.state_text(), tone="muted")]
    per = f" ({g.present / g.tables:,.1f} per table)" if g.tables > 1 else ""
    noun = "entry" if g.present == 1 else "entries"
    rows.append(Row(f"{g.present:,} present {noun}{per}"))
    for kind, k in g.named.items():
        text = _WHAT[kind].format(lower=g.level - 1)
        rows.append(Row(f"{k:,} {text}", port=f"n_{kind}"))
    if g.present:
        ro = g.present - g.writable
        rows.append(Row(f"{g.writable:,} writable · {ro:,} read-only", tone="muted"))
    return rows


def _gid(g: TableGroup) -> str:
    return f"g{g.level}_{g.cluster}"


def build(sm: Summary, *, title: str) -> GraphModel:
    """The summarised pagetable graph: one node per group of tables, runs of frames."""
    gm = GraphModel("tables", title, boundary="4 GiB")
    gm.clusters = [Cluster(LOW, "below 4 GiB (mfn < 0x100000, addr < 0x100000000)",
                           S.LOW_FILL),
                   Cluster(HIGH, "at or above 4 GiB (mfn ≥ 0x100000)", S.HIGH_FILL)]
    by_mfn: dict[int, str] = {}
    for g in sm.groups:
        for x in g.mfns[:TABLES_NAMED].tolist() if g.tables <= TABLES_NAMED else []:
            by_mfn[int(x)] = _gid(g)
    for label, vid, mfn in sm.roots:
        nid = f"cr3_{vid}" + ("u" if "user" in label else "")
        gm.nodes.append(Node(nid, f"{label} CR3", (Row(f"guest_table → {mfn:#x}"),),
                             kind="root", layer=S.ROOT_LAYER, fill=S.ROOT_FILL))
        target = by_mfn.get(mfn) or next(
            (_gid(g) for g in sm.groups if mfn in set(g.mfns.tolist())), None)
        if target:
            gm.edges.append(Edge(nid, target, color=S.INK))
    for g in sm.groups:
        noun = "table" if g.tables == 1 else "tables"
        gm.nodes.append(Node(_gid(g), f"{g.tables:,} L{g.level} {noun}",
                             tuple(_group_rows(g)), kind="table",
                             layer=S.level_layer(g.level), cluster=g.cluster,
                             fill=S.STATUS_FILL[g.status], border=S.INK, status=g.status))
        for cl, k in g.children.items():
            child = f"g{g.level - 1}_{cl}"
            gm.edges.append(Edge(_gid(g), child, "n_table", label=f"{k:,}", color=S.INK))
    # the guest's frames that are not tables, per side of 4 GiB, as runs
    not_table = (sm.runs.ptype < 1) | (sm.runs.ptype > 4)
    for cl, side in ((LOW, sm.runs.first < MFN_4GIB), (HIGH, sm.runs.first >= MFN_4GIB)):
        runs = sm.runs.where(not_table & side)
        if not len(runs):
            continue
        rows = [Row(runs[i].text()) for i in range(min(len(runs), RUNS_SHOWN))]
        if len(runs) > RUNS_SHOWN:
            rest = int(runs.count[RUNS_SHOWN:].sum())
            rows.append(Row(f"… {len(runs) - RUNS_SHOWN:,} more runs ({rest:,} frames)",
                            tone="muted"))
        nid = f"data_{cl}"
        gm.nodes.append(Node(nid, f"{runs.frames:,} frames of {owner_name(sm.domid)} "
                             f"in {len(runs):,} runs", tuple(rows), kind="run",
                             layer=S.DATA_LAYER, cluster=cl, fill=S.DATA_FILL))
        for g in sm.groups:
            if g.named.get("ram"):
                gm.edges.append(Edge(_gid(g), nid, "n_ram", color="#5c7fa8"))
    top = min((n.layer for n in gm.nodes if n.kind != "root"), default=1)
    for c in gm.clusters:
        if not gm.in_cluster(c.id):
            gm.nodes.append(Node(f"empty_{c.id}", "(no frames here)", kind="note",
                                 layer=top, cluster=c.id, fill=c.fill, border=c.fill))
    gm.notes.append(f"{sm.frames:,} frames of {owner_name(sm.domid)} in {len(sm.runs):,} "
                    f"runs; {sum(g.tables for g in sm.groups):,} pagetables "
                    f"(summarised: more than {SUMMARY_TABLES})")
    return gm


def text(sm: Summary) -> str:
    """The summary as plain text (stable, one line per group and per run)."""
    lines = [f"{sm.label}: {sm.bitness}-bit PV guest, {sm.frames:,} frames in "
             f"{len(sm.runs):,} runs (summarised)"]
    for label, _vid, mfn in sm.roots:
        lines.append(f"{label} guest_table -> {mfn:#x}")
    for g in sm.groups:
        lo, hi = int(g.mfns.min()), int(g.mfns.max())
        named = ", ".join(f"{k} {v}" for k, v in g.named.items()) or "none"
        lines.append(f"L{g.level} {g.cluster}: {g.tables} tables mfn={lo:#x}-{hi:#x} "
                     f"pinned={g.pinned} validated={g.validated} partial={g.partial} "
                     f"present={g.present} writable={g.writable} named: {named}")
    for i in range(min(len(sm.runs), RUNS_LISTED)):
        lines.append("  " + sm.runs[i].text())
    if len(sm.runs) > RUNS_LISTED:
        lines.append(f"  ... {len(sm.runs) - RUNS_LISTED} more runs "
                     f"({int(sm.runs.count[RUNS_LISTED:].sum())} frames)")
    return "\n".join(lines) + "\n"


def wants_summary(xen: Xen, guest: Guest) -> bool:
    """More than `SUMMARY_TABLES` pagetables owned by the guest (counted in numpy)."""
    s = xen.machine.store
    n = len(s.row_mfn)
    ti = s.type_info[:n]
    lvl = ti >> np.uint64(_TYPE_SHIFT)
    tables = (s.row_mfn[:n] >= 0) & (s.owner[:n] == guest.domain.domid) & (
        lvl >= 1) & (lvl <= 4)
    return int(np.count_nonzero(tables)) > SUMMARY_TABLES


def summary_view(xen: Xen, guest: Guest, *, title: str | None = None) -> View:
    """The summarised pagetable picture of `guest` (see the module docstring)."""
    sm = summarise(xen, guest)
    model = build(sm, title=title or f"{guest.domain.label}: pagetables (summarised)")
    found = find_dangers(xen)  # the danger marking, as tables_view adds it
    danger.mark(model, found)
    return View(model, lambda: text(sm) + danger.text(found))


__all__ = ["SUMMARY_TABLES", "FrameRun", "FrameRuns", "Summary", "TableGroup", "build",
           "frame_runs",
           "summarise", "summary_view", "text", "wants_summary"]
