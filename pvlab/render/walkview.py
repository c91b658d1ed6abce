# SPDX-License-Identifier: MIT
"""The walk view: one virtual-address translation through a guest's current tables.

A 64-bit guest's vCPU runs on its L4 (`guest_table`): a 4-level walk. A 32-bit PV
guest's `guest_table` is its L3, and the guest runs in compatibility mode under
64-bit Xen: the hardware walks 4 levels, starting from Xen's per-vCPU compat L4
whose slot 0 names the guest's L3 (`new_guest_cr3`, Xen's compat L4 slot 0). So the
walk is a 4-level walk of a 32-bit VA through that L4 (L4 index 0, L3 index 0-3), and
an L3 above 4 GiB is reachable: the 4 GiB limit is a PAE-hardware limit, not this one.
"""

from __future__ import annotations

from collections.abc import Mapping

from pvlab.x86.flags import RW, US, A, P, flag_names
from pvlab.x86.modes import PagingMode, index_shift
from pvlab.x86.walk import Walk, walk

from . import style as S
from .model import Edge, GraphModel, Node, Row
from .state import Snapshot
from .tables import where
from .view import View

#: Flags of Xen's compat L4 slot 0 entry (present, writable, user, accessed).
_COMPAT_L4E_FLAGS = P | RW | US | A


class _Mem:
    """The snapshot's memory, plus Xen's per-vCPU compat L4 for a 32-bit guest."""

    def __init__(self, snap: Snapshot, compat_l4: int | None = None,
                 l3: int | None = None) -> None:
        self.snap = snap
        self.l4 = compat_l4
        self.l3 = l3

    def read_u64(self, paddr: int) -> int:
        if self.l4 is not None and paddr >> 12 == self.l4:
            return (self.l3 or 0) << 12 | _COMPAT_L4E_FLAGS if paddr & 0xFFF == 0 else 0
        return self.snap.read_u64(paddr)

    def read_u32(self, paddr: int) -> int:
        return self.read_u64(paddr & ~7) >> (8 * (paddr & 4)) & 0xFFFFFFFF


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
    if snap.abi.pae_top:
        if not 0 <= va < 1 << 32:
            from pvlab.errors import PvlabError

            raise PvlabError(f"virtual address {va:#x} does not fit a 32-bit guest",
                             "give an address from 0 to 0xffffffff")
        l4 = snap.nr_frames  # a frame number no real frame has
        w = walk(_Mem(snap, l4, top), PagingMode.FOUR_LEVEL, l4 << 12, va, write=write,
                 user=user, fetch=fetch)
        return w, top, ""
    w = walk(_Mem(snap), PagingMode.FOUR_LEVEL, top << 12, va, write=write, user=user,
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
    compat = snap.abi.pae_top
    parts = [*((va >> sh) & 0x1FF for sh in (39, 30, 21, 12)), va & 0xFFF]
    if compat:
        parts = parts[1:]
    nlev = len(parts) - 1
    split = " · ".join(f"L{nlev - i} [{p}]" for i, p in enumerate(parts[:-1]))
    split += f" · offset {parts[-1]:#x}"
    mode_txt = ("32-bit PV: L3 is the top (via Xen's compat L4 slot 0)" if compat
                else "4-level (64-bit PV)")
    m.nodes.append(Node("va", f"VA {va:#x}", (Row(f"{who} {access}", tone="muted"),
                                                Row(split), Row(mode_txt, tone="muted")),
                        kind="root", layer=0, fill=S.ROOT_FILL))
    lines.append(f"mode: {mode_txt}; indices: {split}")
    prev = "va"
    prev_label = f"CR3 → {_name(names, top or 0)}"
    steps = [st for st in w.steps if not (compat and st.level == 4)]
    for i, s in enumerate(steps):
        mfn = s.table >> 12
        last = i == len(steps) - 1
        failing = last and w.fault is not None and w.fault.level == s.level
        p = snap.page(mfn)
        lo = index_shift(mode, s.level)
        width = 2 if (compat and s.level == 3) else 9
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
                            fill=S.RED_FILL if failing else S.STATUS_FILL[
                                "validated" if p.validated and p.level else "unvalidated"],
                            border=S.RED if failing else S.INK, highlight=failing, mfn=mfn))
        m.edges.append(Edge(prev, nid, label=prev_label, color=S.INK))
        lines.append(f"L{s.level} {_name(names, mfn)} [{s.index}] = {s.entry:#018x} "
                     f"({'|'.join(flag_names(s.entry, s.level)) or '-'}): {s.decision}")
        prev, prev_label = nid, f"[{s.index}]"
    layer = len(steps) + 1
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
