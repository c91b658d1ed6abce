# SPDX-License-Identifier: MIT
"""The pagetable forest of one guest: which frames are tables, at which level, and why.

`analyse()` reads a :class:`Snapshot` and decides, for every frame worth drawing, its
level and status. Tables are the frames with a pagetable type, the pinned ones, the
vCPUs' base pointers, and the *candidates*: frames the guest wrote entries into that
are not (or no longer) validated, such as an L3 whose promotion failed. Levels come
first from Xen's own `type_info`, then from the failing operation's trace, then from
hints (what a scenario pins or loads as CR3), then from the parent table (an entry of
an L3 names an L2). The same forest feeds the canonical text dump and the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB
from pvlab.x86.flags import PS, entry_mfn, flag_names

from .state import PageSnap, Snapshot

#: Runs of at least this many similar entries collapse into one row.
COLLAPSE_RUN = 4


@dataclass(frozen=True)
class EntryRef:
    """One present entry of a table, and what it names."""

    index: int
    value: int
    target: int
    #: "table" (next level), "data" (a frame mapped), "super" (PS leaf), "linear" (a
    #: same-level table), "maps" (a pagetable frame mapped as data, e.g. an L1 self-map).
    kind: str

    @property
    def flags(self) -> str:
        return "|".join(flag_names(self.value)) or "-"


@dataclass
class TableFrame:
    mfn: int
    level: int  # 1..4, or 0 when nothing says which level it is
    page: PageSnap
    entries: list[EntryRef] = field(default_factory=list)
    #: The first index of Xen's own slots in this table (428 for a PAE Xen L2, 256 for
    #: a 64-bit L4), or None.
    xen_slots: tuple[int, int] | None = None
    level_source: str = "type"  # type, trace, hint, parent, cr3, none

    @property
    def live(self) -> bool:
        return self.page.level == self.level and self.page.type_count > 0 and self.page.validated

    @property
    def status(self) -> str:
        p = self.page
        if p.level != self.level or p.type_count == 0:
            return "unvalidated"
        if p.partial:
            return "partial"
        if not p.validated:
            return "unvalidated"
        return "pinned" if p.pinned else "validated"


@dataclass
class Forest:
    """The analysed state: tables by MFN, roots, data frames named by entries."""

    snap: Snapshot
    names: Mapping[int, str]
    tables: dict[int, TableFrame]
    roots: list[tuple[str, int, int]]  # (label, vcpu id, mfn) of each base pointer
    data: dict[int, PageSnap]
    outcome: Outcome | None
    failed_mfns: set[int]

    def name(self, mfn: int) -> str | None:
        return self.names.get(mfn)

    def top_level(self) -> int:
        return self.snap.abi.top_level

    def top_tables(self) -> list[TableFrame]:
        """Tables no other drawn table names as its child, highest level first."""
        children = {e.target for t in self.tables.values() for e in t.entries
                    if e.kind == "table" and e.target != t.mfn}
        root_mfns = [m for _, _, m in self.roots]
        out = [self.tables[m] for m in dict.fromkeys(root_mfns) if m in self.tables]
        rest = [t for t in self.tables.values()
                if t.mfn not in children and t.mfn not in root_mfns]
        rest.sort(key=lambda t: (-t.level, t.mfn))
        return out + rest


def _xen_slots(snap: Snapshot, mfn: int, level: int, page: PageSnap) -> tuple[int, int] | None:
    """Xen's own slots in this table, when Xen filled them (they collapse into one node).

    Xen writes them when it validates a PAE Xen L2 (428-511) or a 64-bit L4 (256-271),
    and leaves them behind when the table is demoted, so stale ones collapse too.
    """
    lo, hi = snap.xen_range

    def xen_written(first: int, last: int) -> bool:
        got = [v for i, v in snap.present(mfn) if first <= i <= last]
        return bool(got) and all(lo <= entry_mfn(v) < hi or entry_mfn(v) == mfn for v in got)

    if level != snap.abi.xen_table_level:
        return None
    slots = snap.abi.drawn_xen_slots()
    filled = page.pae_xen_l2 if level == 2 else (page.level == 4 and page.validated)
    if filled or xen_written(slots[0], slots[-1]):
        return (slots[0], slots[-1])
    return None


def analyse(snap: Snapshot, *, names: Mapping[int, str] | None = None,
            outcome: Outcome | None = None, hints: Mapping[int, int] | None = None) -> Forest:
    """Decide which frames are tables and at which level (see the module docstring)."""
    names = dict(names or {})
    d = snap.domid
    level: dict[int, int] = {}
    source: dict[int, str] = {}

    def claim(mfn: int, lvl: int, why: str) -> None:
        if mfn not in level and 1 <= lvl <= 4 and snap.page(mfn).owner == d:
            level[mfn] = lvl
            source[mfn] = why

    top = snap.abi.top_level
    # 1. Xen's own type_info, for frames that hold a type reference or are pinned.
    for p in snap.pages.values():
        if p.owner == d and p.level and (p.type_count or p.pinned):
            claim(p.mfn, p.level, "type")
    # 2. the failing operation's trace names frames and levels.
    failed: set[int] = set()
    if outcome is not None:
        for ev in outcome.events:
            if ev.mfn is not None and ev.level:
                claim(ev.mfn, ev.level, "trace")
            if ev.decision == "fail" and ev.mfn is not None:
                failed.add(ev.mfn)
    # 3. the vCPUs' base pointers.
    roots: list[tuple[str, int, int]] = []
    for vcpu in snap.vcpus:
        if vcpu.guest_table is not None:
            roots.append((f"vCPU {vcpu.vcpu_id}", vcpu.vcpu_id, vcpu.guest_table))
            claim(vcpu.guest_table, top, "cr3")
        if vcpu.guest_table_user is not None:
            roots.append((f"vCPU {vcpu.vcpu_id} user", vcpu.vcpu_id, vcpu.guest_table_user))
            claim(vcpu.guest_table_user, 4, "cr3")
    # 4. hints (a scenario's pins and CR3 loads), 5. a stale type field.
    for mfn, lvl in (hints or {}).items():
        claim(mfn, lvl, "hint")
    for p in snap.pages.values():
        if p.owner == d and p.level and snap.entries.get(p.mfn):
            claim(p.mfn, p.level, "type")
    # 6. children of known tables, top-down.
    for lvl in (4, 3, 2):
        for mfn in sorted(m for m, lv in level.items() if lv == lvl):
            for _, v in snap.present(mfn):
                if lvl in (2, 3) and v & PS and snap.abi.ps_means_superpage(lvl):
                    continue
                claim(entry_mfn(v), lvl - 1, "parent")
    # 7. frames the guest wrote entries into that nothing above explains.
    for mfn in snap.entries:
        if snap.page(mfn).owner == d and mfn not in level and snap.present(mfn):
            level[mfn] = 0
            source[mfn] = "none"
    if outcome is not None and outcome.failed_mfn is not None \
            and snap.page(outcome.failed_mfn).owner == d and outcome.failed_mfn not in level:
        level[outcome.failed_mfn] = 0
        source[outcome.failed_mfn] = "none"

    tables: dict[int, TableFrame] = {}
    data: dict[int, PageSnap] = {}
    for mfn in sorted(level):
        lvl = level[mfn]
        page = snap.page(mfn)
        t = TableFrame(mfn, lvl, page, level_source=source[mfn])
        t.xen_slots = _xen_slots(snap, mfn, lvl, page)
        for i, v in snap.present(mfn):
            if t.xen_slots and t.xen_slots[0] <= i <= t.xen_slots[1]:
                continue
            target = entry_mfn(v)
            if lvl >= 2 and v & PS and snap.abi.ps_means_superpage(lvl):
                kind = "super"
            elif lvl >= 2 and level.get(target) == lvl - 1:
                kind = "table"
            elif lvl >= 2 and level.get(target) == lvl:
                kind = "linear"  # a linear pagetable: an entry naming a same-level table
            elif target in level:
                kind = "maps"  # an entry mapping a (candidate) pagetable frame as data
            else:
                kind = "data"
            if kind in ("data", "super") and snap.mfn_valid(target):
                data[target] = snap.page(target)
            t.entries.append(EntryRef(i, v, target, kind))
        tables[mfn] = t
    return Forest(snap, names, tables, roots, data, outcome, failed)


# ------------------------------------------------------------------ describing frames
def where(mfn: int) -> str:
    return "≥ 4 GiB" if mfn >= MFN_4GIB else "< 4 GiB"


def frame_ref(forest: Forest, mfn: int) -> str:
    """`l3 (0x100000)` or `0x100000`."""
    n = forest.name(mfn)
    return f"{n} ({mfn:#x})" if n else f"{mfn:#x}"


def failure_site(forest: Forest, outcome: Outcome) -> str:
    """` at l3 (0x100000) entry 3`: where a failed outcome stopped, or ''."""
    if outcome.failed_mfn is None:
        return ""
    site = f" at {frame_ref(forest, outcome.failed_mfn)}"
    return site + (f" entry {outcome.failed_index}" if outcome.failed_index is not None else "")


def counts_text(p: PageSnap) -> str:
    return f"type={p.type_name} type_count={p.type_count} count={p.count}"


def short_reason(outcome: Outcome, *, arrow: str = "→") -> str:
    """The failure in a line: the first failing check, without Xen's quoted log text."""
    text = outcome.reason.split(": '", 1)[0].strip() or outcome.op
    return f"{text} {arrow} -{outcome.errno}" if outcome.errno else text


def text_where(mfn: int) -> str:
    return ">=4GiB" if mfn >= MFN_4GIB else "<4GiB"


def run_groups(entries: list[EntryRef], *, data_only: bool = True) -> list[list[EntryRef]]:
    """Group consecutive entries that are alike (same kind and flags, data targets)."""
    groups: list[list[EntryRef]] = []
    for e in entries:
        last = groups[-1] if groups else None
        if (last and e.kind == last[-1].kind and (e.kind in ("data", "super") or not data_only)
                and e.index == last[-1].index + 1
                and (e.value & 0xFFF0_0000_0000_0FFF) == (last[-1].value & 0xFFF0_0000_0000_0FFF)):
            last.append(e)
        else:
            groups.append([e])
    return groups


# ------------------------------------------------------------------ canonical text
def _table_line(forest: Forest, t: TableFrame) -> str:
    p = t.page
    lvl = f"L{t.level}" if t.level else "L?"
    if not t.live:
        lvl += " (candidate)" if t.level else " (written, level unknown)"
    flags = ",".join(p.status_words()) or "-"
    name = forest.name(t.mfn)
    head = f"{name} " if name else ""
    mark = " FAILED" if forest.outcome is not None and t.mfn == forest.outcome.failed_mfn else ""
    return (f"{head}mfn={t.mfn:#x} {text_where(t.mfn)} {lvl} {counts_text(p)} "
            f"{flags}{mark}")


def _data_line(forest: Forest, mfn: int) -> str:
    name = forest.name(mfn)
    head = f"{name} " if name else ""
    if not forest.snap.mfn_valid(mfn):
        return f"{head}mfn={mfn:#x} (not a frame of this host)"
    p = forest.snap.page(mfn)
    return f"{head}mfn={mfn:#x} {text_where(mfn)} {p.owner_name} {counts_text(p)}"


def dump(forest: Forest) -> str:
    """The canonical text: one line per present entry, indented per level."""
    s = forest.snap
    assists = ",".join(s.vm_assist_names) or "none"
    v0 = next((v for v in s.vcpus if v.vcpu_id == 0), None)
    state = ("no vCPU 0" if v0 is None else
             "vCPU 0 initialised" if v0.initialised else "vCPU 0 not initialised")
    lines = [f"{s.label}: {s.bitness}-bit PV guest, Xen {s.profile}, vm_assists={assists}, "
             f"{state}"]
    for label, _vid, mfn in forest.roots:
        lines.append(f"{label} guest_table -> {frame_ref(forest, mfn)}")
    shown: set[int] = set()

    def table(t: TableFrame, depth: int) -> None:
        shown.add(t.mfn)
        pad = "  " * (depth + 1)
        for e in t.entries:
            head = f"{pad}[{e.index}] {e.flags} -> "
            if e.kind == "table" and e.target in forest.tables and e.target != t.mfn:
                child = forest.tables[e.target]
                if child.mfn in shown:
                    lines.append(head + _table_line(forest, child) + " (shown above)")
                else:
                    lines.append(head + _table_line(forest, child))
                    table(child, depth + 1)
            elif e.kind in ("linear", "maps"):
                what = "linear " if e.kind == "linear" else "maps table "
                lines.append(head + what + _table_line(forest, forest.tables[e.target]))
            elif e.kind == "super":
                lines.append(head + "superpage " + _data_line(forest, e.target))
            else:
                lines.append(head + _data_line(forest, e.target))
        if t.xen_slots:
            lo, hi = t.xen_slots
            n = sum(1 for i, _ in forest.snap.present(t.mfn) if lo <= i <= hi)
            lines.append(f"{pad}[{lo}-{hi}] Xen's slots: {n} present entries")

    for t in forest.top_tables():
        if t.mfn in shown:
            continue
        lines.append(_table_line(forest, t))
        table(t, 0)
    for t in forest.tables.values():  # cycles (self-references) not reached from a top
        if t.mfn not in shown:
            lines.append(_table_line(forest, t))
            table(t, 0)
    o = forest.outcome
    if o is not None and not o.ok:
        lines.append(f"failed: {o.op} -> {o.result}{failure_site(forest, o)}: "
                     f"{short_reason(o, arrow='->')}")
    return "\n".join(lines) + "\n"
