# SPDX-License-Identifier: MIT
"""The step diff: the pagetable graph after an operation, with what changed marked.

Changed frames get an orange border and one orange row per change (new type, type
count up or down, general count, pinned/unpinned, validated/invalidated, entries
written); a failure is red as in the tables view. Frames that left the picture are
listed in the notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pvlab.trace import Outcome
from pvlab.x86.flags import ADDR_MASK, entry_mfn, flag_names

from . import tables, tables_graph
from .model import Row
from .state import PageSnap, Snapshot
from .view import View


def page_changes(a: PageSnap, b: PageSnap) -> list[str]:
    """What changed in one frame's page_info, in words."""
    out = []
    if a.owner != b.owner:
        out.append(f"owner {a.owner_name} → {b.owner_name}")
    if a.type != b.type:
        out.append(f"type {a.type_name} → {b.type_name}")
    if a.type_count != b.type_count:
        way = "up" if b.type_count > a.type_count else "down"
        out.append(f"type count {a.type_count} → {b.type_count} ({way})")
    if a.count != b.count:
        way = "up" if b.count > a.count else "down"
        out.append(f"count {a.count} → {b.count} ({way})")
    for word, before, after in (("pinned", a.pinned, b.pinned),
                                ("validated", a.validated, b.validated),
                                ("partial", a.partial, b.partial),
                                ("pae_xen_l2", a.pae_xen_l2, b.pae_xen_l2)):
        if before != after:
            out.append(word if after else f"no longer {word}")
    return out


def _xen_slot(snap: Snapshot, mfn: int, index: int, value: int) -> bool:
    """Is this entry one Xen wrote into its own slots (M2P, its tables, the self-map)?"""
    if not value:
        return False
    target = entry_mfn(value)
    lo, hi = snap.xen_range
    xen = lo <= target < hi or target == mfn
    return index in snap.abi.drawn_xen_slots() and xen


def entry_changes(before: Snapshot, after: Snapshot, mfn: int) -> list[str]:
    a = dict(before.entries.get(mfn, ()))
    b = dict(after.entries.get(mfn, ()))
    out = []
    xen = False
    for i in sorted(a.keys() | b.keys()):
        if a.get(i, 0) != b.get(i, 0):
            if _xen_slot(after, mfn, i, b.get(i, 0)) or _xen_slot(before, mfn, i, a.get(i, 0)):
                xen = True
            elif i not in a:
                out.append(f"entry {i} written")
            elif i not in b:
                out.append(f"entry {i} cleared")
            elif (added := xen_added_flags(a[i], b[i])):
                out.append(f"entry {i} rewritten by Xen: {'|'.join(flag_names(added))} added")
            else:
                out.append(f"entry {i} changed")
    if len(out) > 4:
        out = [*out[:3], f"… {len(out) - 3} more entries changed"]
    if xen:
        out.append("Xen's own slots written")
    return out


def xen_added_flags(old: int, new: int) -> int:
    """The flag bits Xen set in an entry it adjusted (`adjust_guest_l*e`), else 0.

    Same target, only flag bits added: the guest wrote `old`, Xen keeps `new`.
    """
    if entry_mfn(old) != entry_mfn(new) or not old & 1 or new & old != old:
        return 0
    return (new & ~old) & ~ADDR_MASK


def leaked(before: Snapshot, after: Snapshot, outcome: Outcome | None) -> list[int]:
    """Frames whose type count rose although the operation failed: references left
    behind (Xen's PAE slot-3 quirk in `promote_l3_table`, 4.14+)."""
    if outcome is None or outcome.ok:
        return []
    return [m for m in sorted(after.pages) if after.page(m).type_count
            > before.page(m).type_count]


def changes(before: Snapshot, after: Snapshot) -> dict[int, list[str]]:
    """MFN -> the changes of every frame that differs between the two snapshots."""
    out: dict[int, list[str]] = {}
    for mfn in sorted(before.pages.keys() | after.pages.keys() | before.entries.keys()
                      | after.entries.keys()):
        ch = page_changes(before.page(mfn), after.page(mfn)) + entry_changes(before, after, mfn)
        if ch:
            out[mfn] = ch
    return out


def vcpu_changes(before: Snapshot, after: Snapshot) -> list[str]:
    out = []
    a = {v.vcpu_id: v for v in before.vcpus}
    for v in after.vcpus:
        old = a.get(v.vcpu_id)
        if old is None:
            out.append(f"vCPU {v.vcpu_id} created")
            continue
        if old.initialised != v.initialised:
            out.append(f"vCPU {v.vcpu_id} {'initialised' if v.initialised else 'reset'}")
        for attr in ("guest_table", "guest_table_user"):
            x, y = getattr(old, attr), getattr(v, attr)
            if x != y:
                fx = f"{x:#x}" if x is not None else "none"
                fy = f"{y:#x}" if y is not None else "none"
                out.append(f"vCPU {v.vcpu_id} {attr} {fx} → {fy}")
    if before.vm_assist != after.vm_assist:
        out.append(f"vm_assists {','.join(before.vm_assist_names) or 'none'} → "
                   f"{','.join(after.vm_assist_names) or 'none'}")
    return out


def build(before: Snapshot, after: Snapshot, *, outcome: Outcome | None = None,
          names: Mapping[int, str] | None = None, hints: Mapping[int, int] | None = None,
          title: str | None = None) -> View:
    names = dict(names or {})
    fa = tables.analyse(after, names=names, outcome=outcome, hints=hints)
    fb = tables.analyse(before, names=names, hints=hints)
    model = tables_graph.build(fa, title=title or f"{after.label}: what changed")
    model.kind = "diff"
    ch = changes(before, after)
    for mfn in leaked(before, after, outcome):
        ch.setdefault(mfn, []).insert(0, "⚠ leaked: a type reference the failed call "
                                         "took stays")
    vch = vcpu_changes(before, after)
    for k, n in enumerate(model.nodes):
        rows: list[str] = []
        if n.mfn is not None and n.mfn in ch:
            rows = ch[n.mfn]
        if n.kind in ("table", "candidate") and n.mfn not in fb.tables:
            rows = ["new in the picture", *rows]
        if n.kind == "root":
            vid = n.id.removeprefix("cr3_").rstrip("u")
            rows = [c for c in vch if c.startswith(f"vCPU {vid} ")]
        if rows:
            model.nodes[k] = replace(n, rows=n.rows + tuple(Row("Δ " + r, tone="changed")
                                                            for r in rows), changed=True)
    gone = [m for m in fb.tables if m not in fa.tables]
    lines = [model.title]
    for c in vch:
        lines.append(c)
        if not c.startswith("vCPU"):
            model.notes.append(f"Δ {c}")
    for mfn, words in ch.items():
        nm = names.get(mfn)
        lines.append(f"{nm + ' ' if nm else ''}{mfn:#x}: " + "; ".join(words))
    for mfn in gone:
        nm = names.get(mfn)
        model.notes.append(f"Δ left the picture: {nm + ' ' if nm else ''}{mfn:#x}")
        lines.append(f"{nm + ' ' if nm else ''}{mfn:#x}: left the picture")
    if outcome is not None:
        lines.append(f"{outcome.op} -> {outcome.result}"
                     + (f": {tables.short_reason(outcome)}" if not outcome.ok else ""))
    if len(lines) == 1:
        lines.append("nothing changed")
        model.notes.append("nothing changed")
    return View(model, "\n".join(lines) + "\n")
