# SPDX-License-Identifier: MIT
"""Pinning order and its cost: bottom-up (L1s, then L2s, then the L3/L4, then CR3)
against top-down (pin the root and let promotion recurse), for the same tables.

Andrew Cooper on xen-devel (April 2023): bottom-up is the only order in which Xen never
acquires types recursively; top-down costs the toolstack one hypercall and turns what
follows into near no-ops. Both end in the same validated tree: `compare_pinning_orders`
shows that, and the counters say where the costs differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvlab.errors import PvlabError
from pvlab.toolstack.flow import FlowResult
from pvlab.trace import Counters, Outcome, Tracer
from pvlab.x86.flags import RW, US, A, D, P, make_entry
from pvlab.xen.abi import abi_for
from pvlab.xen.hypervisor import Guest, Xen

ORDERS = ("bottom_up", "top_down")


@dataclass(frozen=True)
class TableSet:
    """A pagetable tree: the root, `l2s` L2s (PV32: the last one in slot 3), each with
    `l1s_per_l2` L1s mapping `pages_per_l1` data pages writable."""

    bitness: int = 32
    l2s: int = 2
    l1s_per_l2: int = 2
    pages_per_l1: int = 4

    def check(self) -> None:
        abi = abi_for(self.bitness)
        top = abi.slots(abi.top_level)
        for name, v, hi in (("l2s", self.l2s, top), ("l1s_per_l2", self.l1s_per_l2, 64),
                            ("pages_per_l1", self.pages_per_l1, 512)):
            if not isinstance(v, int) or not 1 <= v <= hi:
                raise PvlabError(f"{name} {v!r} is out of range", f"use 1 to {hi}")


@dataclass
class BuiltTables:
    guest: Guest
    root: int
    by_level: dict[int, list[int]] = field(default_factory=dict)
    data: list[int] = field(default_factory=list)

    def frames(self) -> list[int]:
        return [self.root, *(m for lv in sorted(self.by_level, reverse=True)
                             for m in self.by_level[lv]), *self.data]


def build_tables(xen: Xen, tables: TableSet, *, name: str = "") -> BuiltTables:
    """Allocate and write (no hypercall) the tree described by `tables` in a new domain."""
    tables.check()
    g = xen.create_domain(tables.bitness, name=name)
    up = P | RW | A | D | US
    root = g.alloc_frame()
    out = BuiltTables(g, root, {1: [], 2: []})
    l2_parent = root
    abi = g.domain.abi
    if abi.top_level == 4:
        l3 = g.alloc_frame()
        out.by_level[3] = [l3]
        g.write_entry(root, 0, value=make_entry(l3, up))
        l2_parent = l3
    slots = list(range(tables.l2s))
    if abi.l3_promotion == "compat":
        slots = [*range(tables.l2s - 1), 3]  # PV32: slot 3 must hold an L2
    for slot in slots:
        l2 = g.alloc_frame()
        out.by_level[2].append(l2)
        g.write_entry(l2_parent, slot, value=make_entry(l2, up))
        for i in range(tables.l1s_per_l2):
            l1 = g.alloc_frame()
            out.by_level[1].append(l1)
            g.write_entry(l2, i, value=make_entry(l1, up))
            for j in range(tables.pages_per_l1):
                page = g.alloc_frame()
                out.data.append(page)
                g.write_entry(l1, j, value=make_entry(page, P | RW | A))
    return out


def pin_tables(xen: Xen, tables: TableSet | None = None, *, order: str = "top_down",
               name: str = "") -> FlowResult:
    """Pin a fresh `tables` tree in `order`, then load it as vCPU 0's CR3.

    Bottom-up pins every L1, then every L2, then the root. For a PV32 tree the L2 in L3
    slot 3 is left out: it has to become a `pae_xen_l2`, a type only the L3's promotion
    gives, so pinning it as a plain L2 first would make the L3 pin fail (-EINVAL).
    """
    if order not in ORDERS:
        raise PvlabError(f"pinning order {order!r} is unknown", "use bottom_up or top_down")
    ts = tables or TableSet()
    built = build_tables(xen, ts, name=name)
    g = built.guest
    res = FlowResult(f"pin_tables ({order})", xen, g, info={"tables": built})
    root_level = g.domain.abi.top_level
    plan: list[tuple[str, int, int]] = []
    if order == "bottom_up":
        slot3_l2 = built.by_level[2][-1] if g.domain.abi.l3_promotion == "compat" else None
        for lv in sorted(built.by_level):
            plan.extend((f"pin L{lv}", m, lv) for m in built.by_level[lv] if m != slot3_l2)
        if slot3_l2 is not None:
            t = Tracer(f"leave L2 {slot3_l2:#x} to the L3")
            t.event("pae_xen_l2", "info", f"L2 MFN {slot3_l2:#x} sits in L3 slot 3: it must "
                    "become a pae_xen_l2, which only the L3's promotion can give it. Pinning it "
                    "as a plain L2 first makes the L3 pin fail (type conflict, -EINVAL)",
                    "promote_l3_table")
            res.steps.append(("slot-3 L2 left to the L3", t.finish(0)))
    plan.append((f"pin L{root_level} (root)", built.root, root_level))
    for label, mfn, lv in plan:
        out = g.pin(mfn, level=lv)
        res.steps.append((label, out))
        if out.rc:
            return res
    out = g.set_vcpu_context(0, cr3=built.root,
                             vm_assists=["pae_extended_cr3"] if g.domain.abi.pae_top else [])
    res.steps.append(("set CR3 (vCPU 0 context)", out))
    return res


def tree_state(res: FlowResult) -> dict[str, object]:
    """The final state that must not depend on the order: types, validation, CR3, entries."""
    built: BuiltTables = res.info["tables"]
    m = res.xen.machine
    frames = built.frames()
    pos = {mfn: i for i, mfn in enumerate(frames)}
    state: dict[str, object] = {}
    for i, mfn in enumerate(frames):
        pi = m.page(mfn)
        entries = tuple((idx, pos.get(v >> 12 & ((1 << 40) - 1), -1), v & 0xFFF)
                        for idx, v in m.entries(mfn) if idx < 428)
        state[f"frame{i}"] = (pi.type_name, pi.validated, pi.pae_xen_l2, entries)
    g = built.guest
    state["cr3"] = pos.get(g.domain.vcpus[0].guest_table or -1, -1)
    state["root_pinned"] = m.page(built.root).pinned
    return state


@dataclass
class PinningComparison:
    tables: TableSet
    bottom_up: FlowResult
    top_down: FlowResult

    @property
    def same_final_state(self) -> bool:
        return tree_state(self.bottom_up) == tree_state(self.top_down)

    @property
    def costs(self) -> dict[str, Counters]:
        return {"bottom_up": self.bottom_up.counters(), "top_down": self.top_down.counters()}

    def differences(self) -> dict[str, tuple[int, int]]:
        """Counter name -> (bottom-up, top-down), for counters that differ."""
        a, b = (c.as_dict() for c in self.costs.values())
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def pin_counts(self) -> dict[str, tuple[int, int]]:
        """How many frames end up pinned, and the root's type count, per order."""
        out = {}
        for key, res in (("bottom_up", self.bottom_up), ("top_down", self.top_down)):
            built: BuiltTables = res.info["tables"]
            m = res.xen.machine
            out[key] = (sum(m.page(f).pinned for f in built.frames()),
                        m.page(built.root).type_count)
        return out


def compare_pinning_orders(tables: TableSet | None = None, *, profile: str = "4.19",
                           memory: str = "8GiB") -> PinningComparison:
    """Pin the same tree bottom-up and top-down on two identical hosts."""
    ts = tables or TableSet()
    return PinningComparison(ts, pin_tables(Xen(profile, memory), ts, order="bottom_up"),
                             pin_tables(Xen(profile, memory), ts, order="top_down"))


def flow_outcome(res: FlowResult, op: str) -> Outcome:
    out = res.outcome(op)
    t = Tracer(op)
    c = res.counters()
    t.event("cost", "info", f"{c.hypercalls} hypercalls, {c.type_acquisitions} type "
            f"acquisitions, {c.validations} validations, {c.entries_checked} entries checked, "
            f"max depth {c.max_depth}", "pvlab counters")
    out.events.extend(t.outcome.events)
    return out


__all__ = ["ORDERS", "PinningComparison", "TableSet", "build_tables", "compare_pinning_orders",
           "pin_tables", "tree_state"]
