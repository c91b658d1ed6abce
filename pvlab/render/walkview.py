# SPDX-License-Identifier: MIT
"""The walk view: one virtual-address translation through a guest's current tables.

A 64-bit guest's vCPU runs on its L4 (`guest_table`): a 4-level walk. A 32-bit PV
guest's `guest_table` is its L3, used as a PAE page-directory-pointer table (4 of its
512 slots). Xen links that L3 from its own per-vCPU L4, so the hardware reaches it
even above 4 GiB; the walk here reads it wherever it lies.
"""

from __future__ import annotations

from collections.abc import Mapping

from pvlab.x86.flags import flag_names
from pvlab.x86.modes import PagingMode, index_shift, split_va
from pvlab.x86.walk import Walk, walk

from . import style as S
from .model import Edge, GraphModel, Node, Row
from .state import Snapshot
from .tables import where
from .view import View

#: Where a PAE L3 above 4 GiB is presented to the walk (a 32-byte-aligned PDPT below 4 GiB).
_PDPT_ALIAS = 0xFFFFF000


class _Mem:
    """The snapshot's memory, with a high PAE L3 aliased below 4 GiB for the walk."""

    def __init__(self, snap: Snapshot, l3_paddr: int | None) -> None:
        self.snap = snap
        self.l3 = l3_paddr

    def _map(self, paddr: int) -> int:
        if self.l3 is not None and _PDPT_ALIAS <= paddr < _PDPT_ALIAS + 32:
            return self.l3 + (paddr - _PDPT_ALIAS)
        return paddr

    def read_u64(self, paddr: int) -> int:
        return self.snap.read_u64(self._map(paddr))

    def read_u32(self, paddr: int) -> int:
        return self.snap.read_u32(self._map(paddr))


def _name(names: Mapping[int, str], mfn: int) -> str:
    n = names.get(mfn)
    return f"{n} ({mfn:#x})" if n else f"{mfn:#x}"


def do_walk(snap: Snapshot, va: int, *, vcpu: int = 0, write: bool = False, user: bool = False,
            fetch: bool = False) -> tuple[Walk | None, int | None, str]:
    """(walk, top-table MFN, problem): problem is set when there is nothing to walk."""
    v = next((v for v in snap.vcpus if v.vcpu_id == vcpu), None)
    if v is None:
        return None, None, f"vCPU {vcpu} does not exist"
    if v.guest_table is None:
        return None, None, f"vCPU {vcpu} has no pagetable base (guest_table): not initialised"
    top = v.guest_table
    if snap.bitness == 32:
        paddr = top << 12
        alias = paddr if paddr + 32 > 1 << 32 else None
        cr3 = _PDPT_ALIAS if alias is not None else paddr
        w = walk(_Mem(snap, alias), PagingMode.PAE, cr3, va, write=write, user=user, fetch=fetch)
        if alias is not None:  # show the real L3 address, not the alias
            steps = tuple(s.__class__(s.level, paddr, s.index, paddr + 8 * s.index, s.entry,
                                      s.decision) if s.level == 3 else s for s in w.steps)
            w = Walk(w.mode, w.va, w.access, w.user, steps, w.paddr, w.fault, w.page_size)
        return w, top, ""
    w = walk(_Mem(snap, None), PagingMode.FOUR_LEVEL, top << 12, va, write=write, user=user,
             fetch=fetch)
    return w, top, ""


def build(snap: Snapshot, va: int, *, vcpu: int = 0, write: bool = False, user: bool = False,
          fetch: bool = False, names: Mapping[int, str] | None = None) -> View:
    names = dict(names or {})
    access = "write" if write else "fetch" if fetch else "read"
    who = "user" if user else "supervisor"
    title = f"{snap.label}: walk of VA {va:#x} ({who} {access}, vCPU {vcpu})"
    m = GraphModel("walk", title)
    w, top, problem = do_walk(snap, va, vcpu=vcpu, write=write, user=user, fetch=fetch)
    lines = [title]
    if w is None:
        m.nodes.append(Node("fault", "no walk", (Row(problem, tone="bad"),), kind="fault",
                            layer=0, fill=S.RED_FILL, border=S.RED, highlight=True))
        m.notes.append(f"✗ {problem}")
        lines.append(f"fault: {problem}")
        return View(m, "\n".join(lines) + "\n")
    mode = w.mode
    parts = split_va(mode, va) if mode is not PagingMode.FOUR_LEVEL else (
        *((va >> s) & 0x1FF for s in (39, 30, 21, 12)), va & 0xFFF)
    nlev = len(parts) - 1
    split = " · ".join(f"L{nlev - i} [{p}]" for i, p in enumerate(parts[:-1]))
    split += f" · offset {parts[-1]:#x}"
    mode_txt = ("PAE (32-bit PV: the L3 is the top)" if mode is PagingMode.PAE
                else "4-level (64-bit PV)")
    m.nodes.append(Node("va", f"VA {va:#x}", (Row(f"{who} {access}", tone="muted"),
                                                Row(split), Row(mode_txt, tone="muted")),
                        kind="root", layer=0, fill=S.ROOT_FILL))
    lines.append(f"mode: {mode_txt}; indices: {split}")
    prev = "va"
    prev_label = f"CR3 → {_name(names, top or 0)}"
    for i, s in enumerate(w.steps):
        mfn = s.table >> 12
        last = i == len(w.steps) - 1
        failing = last and w.fault is not None and w.fault.level == s.level
        p = snap.page(mfn)
        lo = index_shift(mode, s.level)
        width = 2 if (mode is PagingMode.PAE and s.level == 3) else 9
        rows = [Row(f"MFN {mfn:#x} · {where(mfn)} · {p.type_name} ({p.type_count})",
                    tone="muted"),
                Row(f"index {s.index} = VA bits {lo + width - 1}–{lo}", port="idx"),
                Row(f"entry {s.entry:#018x}"),
                Row("flags " + ("|".join(flag_names(s.entry, s.level)) or "-")),
                Row(s.decision, tone="bad" if failing else "")]
        nm = names.get(mfn)
        title_n = f"L{s.level} {nm}" if nm else f"L{s.level} table {mfn:#x}"
        nid = f"s{i}"
        m.nodes.append(Node(nid, title_n, tuple(rows), kind="step", layer=i + 1,
                            fill=S.RED_FILL if failing else S.STATUS_FILL.get(
                                "validated" if p.validated and p.level else "unvalidated"),
                            border=S.RED if failing else S.INK, highlight=failing, mfn=mfn))
        m.edges.append(Edge(prev, nid, label=prev_label, color=S.INK))
        lines.append(f"L{s.level} {_name(names, mfn)} [{s.index}] = {s.entry:#018x} "
                     f"({'|'.join(flag_names(s.entry, s.level)) or '-'}): {s.decision}")
        prev, prev_label = nid, f"[{s.index}]"
    layer = len(w.steps) + 1
    if w.fault is not None:
        f = w.fault
        kind = "#PF" if f.kind == "page-fault" else "#GP(0)"
        rows = [Row(f.reason, tone="bad")]
        if f.kind == "page-fault":
            rows.append(Row(f"error code {f.error_code:#x}", tone="bad"))
        m.nodes.append(Node("result", f"fault: {kind}", tuple(rows), kind="fault", layer=layer,
                            fill=S.RED_FILL, border=S.RED, highlight=True))
        m.edges.append(Edge(prev, "result", label=prev_label if prev != "va" else "",
                            highlight=True, color=S.RED))
        m.notes.append(f"✗ {kind}: {f.reason}")
        lines.append(f"fault: {kind} {f.reason}" + (f" (error code {f.error_code:#x})"
                                                       if f.kind == "page-fault" else ""))
    else:
        pa = w.paddr or 0
        frame = pa >> 12
        size = (w.page_size or 4096) // 1024
        unit = f"{size} KiB" if size < 1024 else f"{size // 1024} MiB"
        nm = names.get(frame)
        m.nodes.append(Node("result", f"PA {pa:#x}", (
            Row(f"frame {nm + ' ' if nm else ''}{frame:#x} · {where(frame)}"),
            Row(f"{unit} page · {snap.page(frame).owner_name}", tone="muted")),
            kind="result", layer=layer, fill=S.DATA_FILL, mfn=frame))
        m.edges.append(Edge(prev, "result", label=prev_label, color=S.INK))
        m.notes.append(f"✓ VA {va:#x} → PA {pa:#x}")
        lines.append(f"physical address: {pa:#x} ({unit} page, frame {frame:#x})")
    return View(m, "\n".join(lines) + "\n")
