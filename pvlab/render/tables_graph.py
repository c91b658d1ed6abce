# SPDX-License-Identifier: MIT
"""The pagetable graph: CR3 -> L4 -> L3 -> L2 -> L1 -> data, either side of 4 GiB."""

from __future__ import annotations

import textwrap
from collections import OrderedDict

from pvlab.units import MFN_4GIB

from . import style as S
from .model import Cluster, Edge, GraphModel, Node, Row
from .tables import (
    COLLAPSE_RUN,
    EntryRef,
    Forest,
    TableFrame,
    failure_site,
    run_groups,
    short_reason,
    where,
)

LOW, HIGH = "low", "high"
REASON_WIDTH = 46


def node_id(mfn: int) -> str:
    return f"m{mfn:x}"


def cluster_of(mfn: int, nr_frames: int) -> str | None:
    if not 0 <= mfn < nr_frames:
        return None
    return HIGH if mfn >= MFN_4GIB else LOW


def _ref(forest: Forest, mfn: int) -> str:
    return forest.name(mfn) or f"{mfn:#x}"


def _flags(e: EntryRef) -> str:
    return e.flags


def _status(forest: Forest, t: TableFrame) -> str:
    if forest.outcome is not None and t.mfn in forest.failed_mfns and not t.live:
        return "failed"
    return t.status


def _status_text(forest: Forest, t: TableFrame, status: str) -> str:
    p = t.page
    if status == "failed":
        return "validation FAILED"
    if status in ("pinned", "validated"):
        return ", ".join(w for w in p.status_words())
    if status == "partial":
        return "partially validated"
    if t.level == 0:
        return "written by the guest; not a pagetable"
    if p.level == t.level and p.type_count == 0:
        return "type kept, type count 0: not validated"
    return "not validated (candidate)"


def slot3_leak(forest: Forest, t: TableFrame) -> int:
    """Type references on a PAE Xen L2 that no drawn L3 holds (Xen's slot-3 leak in
    `promote_l3_table`: a shared slot-3 L2's reference is never dropped, 4.14+)."""
    p = t.page
    if not (p.pae_xen_l2 and t.level == 2 and p.type_count):
        return 0
    holders = sum(1 for o in forest.tables.values() if o.level == 3 and o.live
                  and any(e.index == 3 and e.target == t.mfn for e in o.entries))
    return max(0, p.type_count - holders - (1 if p.pinned else 0))


def _table_node(forest: Forest, t: TableFrame, runs: dict[int, list[EntryRef]]) -> Node:
    o = forest.outcome
    failed_here = o is not None and not o.ok and o.failed_mfn == t.mfn
    status = _status(forest, t)
    p = t.page
    lvl = f"L{t.level}" if t.level else "L?"
    rows = [Row(f"{lvl} · mfn {t.mfn:#x} · {where(t.mfn)}"),
            Row(f"type {p.type_name} · type count {p.type_count} · count {p.count}"),
            Row(_status_text(forest, t, status), tone="bad" if status == "failed" else "muted")]
    leak = slot3_leak(forest, t)
    if leak:
        rows.append(Row(f"⚠ {leak} leaked type reference{'s' * (leak > 1)}: no L3 holds it",
                        tone="bad"))
    bad_index = o.failed_index if failed_here and o is not None else None
    drawn_bad = False
    for group in run_groups(t.entries):
        first, last = group[0], group[-1]
        if len(group) >= COLLAPSE_RUN:
            runs[first.index] = group
            what = "superpages" if first.kind == "super" else "data"
            bad = bad_index is not None and first.index <= bad_index <= last.index
            drawn_bad |= bad
            rows.append(Row(f"entries {first.index}–{last.index}: {len(group)} × → {what} · "
                            f"{_flags(first)}", port=f"r{first.index}",
                            tone="bad" if bad else ""))
            continue
        for e in group:
            bad = bad_index == e.index
            drawn_bad |= bad
            mark = "✗ " if bad else ""
            rows.append(Row(f"{mark}[{e.index}] → {_ref(forest, e.target)} · {_flags(e)}",
                            port=f"e{e.index}", tone="bad" if bad else ""))
    if bad_index is not None and not drawn_bad:
        rows.append(Row(f"✗ [{bad_index}] (entry refused)", port=f"e{bad_index}", tone="bad"))
    if t.xen_slots:
        lo, hi = t.xen_slots
        rows.append(Row(f"entries {lo}–{hi}: Xen's own slots", port="xen", tone="muted"))
    if not t.entries and not t.xen_slots:
        rows.append(Row("no present entries", tone="muted"))
    if failed_here and o is not None:
        for line in textwrap.wrap(short_reason(o), REASON_WIDTH):
            rows.append(Row(line, tone="bad"))
    name = forest.name(t.mfn)
    title = f"{name} — {lvl} table" if name else f"{lvl} table {t.mfn:#x}"
    border = S.RED if status == "failed" else S.INK
    return Node(node_id(t.mfn), title, tuple(rows), kind="table" if t.live else "candidate",
                layer=S.level_layer(t.level), cluster=cluster_of(t.mfn, forest.snap.nr_frames),
                fill=S.STATUS_FILL[status], border=border, highlight=failed_here,
                mfn=t.mfn, status=status)


#: Table nodes already built, by everything `_table_node` reads (`_node_key`): a lab
#: action re-draws mostly unchanged tables, several times (the picture, its diff, the
#: replay frames). Bounded; a node is immutable, so sharing one is safe.
_NODE_MEMO: OrderedDict[tuple[object, ...], tuple[Node, tuple[int, ...]]] = OrderedDict()
NODE_MEMO_SIZE = 4096


def _node_key(forest: Forest, t: TableFrame) -> tuple[object, ...]:
    """Everything `_table_node` reads for `t` (extend it with anything new it reads)."""
    o = forest.outcome
    failed_here = o is not None and not o.ok and o.failed_mfn == t.mfn
    s = forest.snap
    return (t.mfn, t.level, t.page, tuple(t.entries), t.xen_slots, _status(forest, t),
            forest.name(t.mfn), tuple(forest.name(e.target) for e in t.entries),
            slot3_leak(forest, t), s.nr_frames, s.domid, s.bitness,
            (o.failed_index, short_reason(o)) if failed_here and o is not None else None)


def _table_node_memo(forest: Forest, t: TableFrame, runs: dict[int, list[EntryRef]]) -> Node:
    """`_table_node`, memoised (the collapsed runs come back too)."""
    key = _node_key(forest, t)
    got = _NODE_MEMO.get(key)
    if got is not None:
        _NODE_MEMO.move_to_end(key)
        node, firsts = got
        for group in run_groups(t.entries):
            if group[0].index in firsts:
                runs[group[0].index] = group
        return node
    node = _table_node(forest, t, runs)
    _NODE_MEMO[key] = (node, tuple(runs))
    if len(_NODE_MEMO) > NODE_MEMO_SIZE:
        _NODE_MEMO.popitem(last=False)
    return node


def _data_node(forest: Forest, mfn: int) -> Node:
    s = forest.snap
    name = forest.name(mfn)
    if not s.mfn_valid(mfn):
        return Node(node_id(mfn), name or f"{mfn:#x}", (Row("not a frame of this host",
                                                              tone="bad"),),
                    kind="data", layer=S.DATA_LAYER, fill=S.RED_FILL, mfn=mfn, status="invalid")
    p = s.page(mfn)
    foreign = p.owner != s.domid
    rows = [Row(f"mfn {mfn:#x} · {where(mfn)}"),
            Row(f"{p.owner_name} · {p.type_name} · type count {p.type_count} · count {p.count}",
                tone="muted")]
    title = f"{name} — data" if name else f"data {mfn:#x}"
    return Node(node_id(mfn), title, tuple(rows), kind="data", layer=S.DATA_LAYER,
                cluster=cluster_of(mfn, s.nr_frames),
                fill=S.FOREIGN_FILL if foreign else S.DATA_FILL, mfn=mfn,
                status="foreign" if foreign else "data")


def _run_node(forest: Forest, t: TableFrame, group: list[EntryRef]) -> Node:
    targets = [e.target for e in group]
    lo, hi = min(targets), max(targets)
    contiguous = hi - lo + 1 == len(set(targets))
    span = f"mfn {lo:#x}–{hi:#x}" + ("" if contiguous else " (scattered)")
    what = "superpages" if group[0].kind == "super" else "data frames"
    cl = cluster_of(lo, forest.snap.nr_frames)
    if cl != cluster_of(hi, forest.snap.nr_frames):
        cl = None
    return Node(f"run{t.mfn:x}_{group[0].index}", f"{len(group)} {what}",
                (Row(span, tone="muted"),), kind="run", layer=S.DATA_LAYER, cluster=cl,
                fill=S.DATA_FILL)


def build(forest: Forest, *, title: str) -> GraphModel:
    """The pagetable graph of an analysed forest."""
    s = forest.snap
    g = GraphModel("tables", title, boundary="4 GiB")
    g.clusters = [Cluster(LOW, "below 4 GiB (mfn < 0x100000, addr < 0x100000000)", S.LOW_FILL),
                  Cluster(HIGH, "at or above 4 GiB (mfn ≥ 0x100000)", S.HIGH_FILL)]
    for label, vid, mfn in forest.roots:
        nid = f"cr3_{vid}" + ("u" if "user" in label else "")
        v = next(v for v in s.vcpus if v.vcpu_id == vid)
        g.nodes.append(Node(nid, f"{label} CR3", (
            Row("initialised" if v.initialised else "not initialised", tone="muted"),
            Row(f"guest_table{'_user' if 'user' in label else ''} → {_ref(forest, mfn)}")),
            kind="root", layer=S.ROOT_LAYER, fill=S.ROOT_FILL, mfn=None))
        g.edges.append(Edge(nid, node_id(mfn), color=S.INK))
    xen_layer = None
    linked_data: set[int] = set()
    for t in forest.tables.values():
        runs: dict[int, list[EntryRef]] = {}
        node = _table_node_memo(forest, t, runs)
        g.nodes.append(node)
        o = forest.outcome
        bad_index = o.failed_index if o is not None and node.highlight else None
        for e in t.entries:
            if any(r[0].index <= e.index <= r[-1].index for r in runs.values()):
                continue
            hl = bad_index == e.index
            if e.kind in ("data", "super"):
                linked_data.add(e.target)
            style = "dashed" if e.kind in ("linear", "maps") else "solid"
            color = S.RED if hl else (S.INK if e.kind == "table" else "#5c7fa8")
            edge_label = {"linear": "linear", "maps": "maps " + ("RW" if e.value & 2 else "RO")}
            g.edges.append(Edge(node.id, node_id(e.target), f"e{e.index}",
                                label=edge_label.get(e.kind, ""),
                                highlight=hl, style=style, color=color))
        for first, group in runs.items():
            rn = _run_node(forest, t, group)
            g.nodes.append(rn)
            hl = bad_index is not None and group[0].index <= bad_index <= group[-1].index
            g.edges.append(Edge(node.id, rn.id, f"r{first}", highlight=hl,
                                color=S.RED if hl else "#5c7fa8"))
        if t.xen_slots:
            g.edges.append(Edge(node.id, "xen", "xen", style="dotted", color=S.MUTED))
            xen_layer = max(xen_layer or 0, S.level_layer(t.level) + 1)
    for mfn in sorted(linked_data):
        g.nodes.append(_data_node(forest, mfn))
    if xen_layer is not None:
        g.nodes.append(Node("xen", "Xen", (
            Row("Xen's own slots, one node for all tables", tone="muted"),
            Row(s.abi.xen_slots_summary),),
            kind="xen", layer=min(xen_layer, S.DATA_LAYER), fill=S.XEN_FILL, border=S.MUTED))
    top = min((n.layer for n in g.nodes if n.kind != "root"), default=1)
    for c in g.clusters:
        if not g.in_cluster(c.id):
            g.nodes.append(Node(f"empty_{c.id}", "(no frames here)", kind="note",
                                layer=top, cluster=c.id, fill=c.fill, border=c.fill))
    o = forest.outcome
    if o is not None and not o.ok:
        where_txt = failure_site(forest, o)
        drawn = o.failed_mfn is not None and g.has_node(node_id(o.failed_mfn))
        why = "" if drawn else f": {short_reason(o)}"
        g.notes.append(f"✗ {o.op} → -{o.errno}{where_txt}{why}")
    elif o is not None:
        g.notes.append(f"✓ {o.op} → ok")
    return g
