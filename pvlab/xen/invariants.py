# SPDX-License-Identifier: MIT
"""Audit of the type system's bookkeeping, recomputed from first principles.

:func:`audit` never trusts the counters it checks: it rebuilds every reference Xen's
`page_info` should hold by reading the contents of every validated pagetable, the pins
and the vCPUs' base pointers, then compares. It returns human-readable violations
(an empty list when all is well) and never prints or changes anything.

What holds a reference (reference §1.4, §1.5, §5.2, §5.4):

- an entry in a guest slot of a validated pagetable (type count > 0):
  - L1, present, mapping a guest frame: one general reference; with RW also one
    `PGT_writable_page` type reference. Entries mapping `dom_io` frames or MMIO take
    none (the I/O path of `get_page_from_l1e`).
  - L2/L3/L4, present: one general and one type reference on the target, of the next
    level down, or of the same level for a linear entry -- except a linear self-map,
    which takes nothing (§2.6).
- a pin: one general and one type reference (§1.5);
- each vCPU's `guest_table` and `guest_table_user`: one general and one type reference;
- every allocated guest frame: the allocation reference (`PGC_allocated`, counts 1).

Several domains (`pvlab.xen.foreign`, `pvlab.xen.grants`): an L1 entry may map another
domain's frame when its table's owner is a control domain (a foreign mapping: the
references are on the page owner's frame, `get_page_from_l1e(l1e, l1e_owner, pg_owner)`)
or when the entry is a grant host mapping recorded in the owner's maptrack (for a PV
mapper the grant's general and writable type references are exactly what such an entry
holds). A dying domain's frames have lost their allocation reference. Grant tables are
audited too: each active entry's read/write pins equal the host mappings using it, and
GTF_reading / GTF_writing say whether it has pins / write pins.

Guest slots are the ones Xen validates: all 512, except a PAE Xen L2 (slots 0-427),
a 32-bit PV L3 (slots 0-3) and a 64-bit L4 (not 256-271).

A PAE Xen L2 may also be held by a *linear* L2 entry: `get_l2_linear_pagetable`
(`define_get_linear_pagetable` in xen/arch/x86/mm.c) compares only
`PGT_type_mask | PGT_validated`, not `PGT_pae_xen_l2`, so a read-only L2 entry of another
L2 may point at the slot-3 L2 of a live 32-bit L3. When that L3 then loses its last type
reference (a vCPU reset, an unpin), `free_l3_table` drops the slot-3 reference but the
L2 keeps its type -- and `PGT_pae_xen_l2` -- until the linear entry's reference goes too
(`free_l2_table` clears the flag on the final demotion). So `pae_xen_l2` with type
references and no live L3 above it is real Xen state when linear entries hold them.

Xen's one documented exception (reference S27): a failed "PAE L3 3rd slot is shared"
check leaks one type reference and one general reference on the slot-3 L2, per failed
attempt, and they are never dropped. The audit cannot tell a leak from a bug by looking
at the state, so the caller says how many leaks it has seen: pass
``leaked={l2_mfn: n}``. :func:`leaked_refs` reads them off an operation's trace (the
``info`` event with check id ``pv32_l3_slot3_shared`` that the core emits on the L2 when
the leaking profile is active), and :class:`LeakLedger` accumulates them over a run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from pvlab.trace import Outcome
from pvlab.x86.flags import NX, RW, A, D, P, entry_mfn
from pvlab.xen.grants import (
    GNTMAP_host_map,
    GNTMAP_readonly,
    GTF_reading,
    GTF_writing,
    grant_mapped_slots,
)
from pvlab.xen.page_info import (
    DOMID_IO,
    DOMID_XEN,
    PageInfo,
    PGC_allocated,
    PGT_l2_page_table,
    PGT_writable_page,
)

#: Check id of the trace event that reports the S27 leak.
LEAK_CHECK = "pv32_l3_slot3_shared"
PAE_XEN_L2_FIRST_XEN_SLOT = 428
L4_XEN_SLOTS = range(256, 272)
L4_LINEAR_SLOT = 258


def leaked_refs(outcome: Outcome) -> Counter[int]:
    """The S27 leaks one operation caused: L2 MFN -> number of leaked references."""
    leaks: Counter[int] = Counter()
    for ev in outcome.events:
        if ev.check == LEAK_CHECK and ev.decision == "info" and ev.mfn is not None:
            leaks[ev.mfn] += 1
    return leaks


class LeakLedger:
    """Accumulates the S27 leaks of every operation seen, for :func:`audit`."""

    def __init__(self) -> None:
        self.leaks: Counter[int] = Counter()

    def record(self, outcome: Outcome) -> Outcome:
        self.leaks.update(leaked_refs(outcome))
        return outcome


def _guest_slots(level: int, pae_xen_l2: bool, pv32: bool) -> Iterable[int]:
    if level == 2 and pae_xen_l2:
        return range(PAE_XEN_L2_FIRST_XEN_SLOT)
    if level == 3 and pv32:
        return range(4)
    if level == 4:
        return range(1) if pv32 else [i for i in range(512) if i not in L4_XEN_SLOTS]
    return range(512)


def _live(pi: PageInfo) -> bool:
    return pi.level > 0 and pi.validated and pi.type_count > 0


def audit(xen: object, *, leaked: Mapping[int, int] | None = None) -> list[str]:
    """Every violation of the type system's invariants in `xen` (a :class:`pvlab.Xen`).

    Checks: (a) type counts, (b) general counts, (c) no live pagetable is mapped
    writable, (d) pinned implies validated with a type reference, (e) no `PGT_partial`
    left, (f) `PGT_pae_xen_l2` only on L2s referenced from a 32-bit L3's slot 3
    (or, once that L3 is gone, still held by a linear L2 entry, see below),
    (g) no validated pagetable at type count 0, (h) `linear_pt_count`, (i) the vCPUs'
    base pointers have the right type, (j) Xen's own entries (compat L3 slots 4-511
    zero, 64-bit L4 slot 258 the linear self-map).
    """
    m = xen.machine  # type: ignore[attr-defined]
    domains = xen.domains  # type: ignore[attr-defined]
    leaked = leaked or {}
    out: list[str] = []
    exp_type: Counter[int] = Counter()
    exp_gen: Counter[int] = Counter()
    lin_entries: Counter[int] = Counter()
    lin_uses: Counter[int] = Counter()
    rw_mapped: dict[int, str] = {}
    slot3_targets: set[int] = set()

    #: each domain's grant-mapped L1 slots (another domain's frames may be mapped there)
    granted: dict[int, set[tuple[int, int]]] = {}
    out.extend(_audit_grants(xen))
    pages = list(m.pages())
    for pi in pages:
        d = domains.get(pi.owner)
        if d is None:
            continue
        mfn = pi.mfn
        pv32 = d.bitness == 32
        if pi.pinned:
            exp_type[mfn] += 1
            exp_gen[mfn] += 1
        if not _live(pi):
            continue
        level = pi.level
        slots = set(_guest_slots(level, pi.pae_xen_l2, pv32))
        for i, e in m.entries(mfn):
            if i not in slots or not e & P:
                continue
            where = f"entry {i} of L{level} MFN {mfn:#x}"
            target = entry_mfn(e)
            if level == 1:
                if not m.mfn_valid(target) or m.owner(target) == DOMID_IO:
                    continue
                if m.owner(target) != d.domid and not d.privileged \
                        and (mfn, i) not in granted.setdefault(d.domid, grant_mapped_slots(
                            xen, d)):  # type: ignore[arg-type]
                    out.append(f"{where} maps MFN {target:#x}, not owned by d{d.domid} (and "
                               "neither a privileged foreign mapping nor a grant mapping)")
                    continue
                exp_gen[target] += 1
                if e & RW:
                    exp_type[target] += 1
                    rw_mapped[target] = where
                continue
            if target == mfn:
                continue  # a linear self-map holds no reference
            if not m.mfn_valid(target) or m.owner(target) != d.domid:
                out.append(f"{where} links MFN {target:#x}, not a frame of d{d.domid}")
                continue
            exp_gen[target] += 1
            exp_type[target] += 1
            tpi = m.page(target)
            if tpi.level == level:
                lin_entries[mfn] += 1
                lin_uses[target] += 1
            elif tpi.level != level - 1:
                out.append(f"{where} links MFN {target:#x} of type {tpi.type_name}, "
                           f"expected L{level - 1} (or L{level}, linear)")
            if pv32 and level == 3:
                if i == 3:
                    slot3_targets.add(target)
                    if not tpi.pae_xen_l2:
                        out.append(f"{where}: the slot-3 L2 MFN {target:#x} is not pae_xen_l2")
                elif tpi.pae_xen_l2:
                    out.append(f"{where}: a slot 0-2 L2 MFN {target:#x} is pae_xen_l2")
        if pv32 and level == 3:
            junk = [i for i, _ in m.entries(mfn) if i >= 4]
            if junk:
                out.append(f"32-bit L3 MFN {mfn:#x} is live with non-zero entries {junk[:4]} "
                           "in slots 4-511 (promote_l3_table clears them)")
            if not m.read_entry(mfn, 3) & P:
                out.append(f"32-bit L3 MFN {mfn:#x} is live without slot 3 present")
        if level == 4 and not pv32:
            want = (mfn << 12) | P | RW | A | D | NX
            if m.read_entry(mfn, L4_LINEAR_SLOT) != want:
                out.append(f"L4 MFN {mfn:#x}: slot 258 is {m.read_entry(mfn, 258):#x}, "
                           f"not Xen's linear self-map {want:#x}")

    for d in domains.values():
        for v in d.vcpus:
            for attr in ("guest_table", "guest_table_user"):
                mfn = getattr(v, attr)
                if mfn is None:
                    continue
                exp_type[mfn] += 1
                exp_gen[mfn] += 1
                pi = m.page(mfn)
                want = d.abi.top_type
                if pi.type != want or not pi.validated:
                    out.append(f"d{d.domid} vCPU {v.vcpu_id} {attr} MFN {mfn:#x} is "
                               f"{pi.type_name}{'' if pi.validated else ' (not validated)'}, "
                               f"expected a validated L{d.abi.top_level}")
    for mfn, n in leaked.items():
        exp_type[mfn] += n
        exp_gen[mfn] += n
    # A release build's leaked partially validated table (promote_l4_table's "safer to leak
    # a type ref on production builds"): it keeps its own partial type reference, the light
    # general reference validate_page took, and what its validated entries hold.
    partial_leaks = getattr(getattr(xen, "ts", None), "leaked_partial", {})
    for mfn, (_level, done) in partial_leaks.items():
        exp_type[mfn] += 1
        exp_gen[mfn] += 1
        for i in done:
            e = m.read_entry(mfn, i)
            if e & P and entry_mfn(e) != mfn:
                exp_type[entry_mfn(e)] += 1
                exp_gen[entry_mfn(e)] += 1

    for pi in pages:
        mfn = pi.mfn
        name = f"MFN {mfn:#x} ({pi.type_name})"
        if pi.owner in (DOMID_IO, DOMID_XEN):
            if pi.count != 1 + exp_gen[mfn] or pi.type_count != 1 + exp_type[mfn] \
                    or pi.type != PGT_writable_page:
                out.append(f"{name}: a {('dom_io' if pi.owner == DOMID_IO else 'dom_xen')} "
                           f"frame changed: count={pi.count} type_count={pi.type_count}")
            continue
        d = domains.get(pi.owner)
        if d is None:
            if pi.count or pi.type_count:
                out.append(f"{name}: free frame with count={pi.count} "
                           f"type_count={pi.type_count}")
            continue
        if pi.type_count != exp_type[mfn]:
            out.append(f"{name}: type count {pi.type_count}, but {exp_type[mfn]} type "
                       "references are held")
        alloc = 1 if pi.count_info & PGC_allocated else 0
        if pi.count != alloc + exp_gen[mfn]:
            out.append(f"{name}: general count {pi.count}, but {alloc + exp_gen[mfn]} "
                       "references are held (allocation included)")
        if mfn in rw_mapped and pi.level and pi.type_count > 0:
            out.append(f"{name}: a live L{pi.level} pagetable is mapped writable by "
                       f"{rw_mapped[mfn]}")
        if pi.pinned and (not pi.validated or pi.type_count < 1 or not pi.level):
            out.append(f"{name}: pinned but validated={pi.validated} "
                       f"type_count={pi.type_count}")
        if pi.partial and mfn not in partial_leaks:
            out.append(f"{name}: PGT_partial left set")
        if pi.pae_xen_l2:
            if pi.type != PGT_l2_page_table:
                out.append(f"{name}: pae_xen_l2 on a non-L2 frame")
            if d.bitness != 32:
                out.append(f"{name}: pae_xen_l2 on a 64-bit guest's frame")
            if pi.pinned:
                out.append(f"{name}: a pae_xen_l2 L2 is pinned (pins take plain L2s)")
            if (pi.type_count and mfn not in slot3_targets and not leaked.get(mfn)
                    and not lin_uses[mfn]):
                out.append(f"{name}: pae_xen_l2 with type references, but in no live "
                           "32-bit L3's slot 3 (nor a linear L2 entry)")
        if pi.level and pi.validated and pi.type_count == 0:
            out.append(f"{name}: a validated pagetable with type count 0 (not demoted)")
        if lin_entries[mfn] and lin_uses[mfn]:
            out.append(f"{name}: both contains linear entries and is used linearly")
        want_lin = lin_entries[mfn] - lin_uses[mfn]
        if pi.linear_pt_count != want_lin:
            out.append(f"{name}: linear_pt_count {pi.linear_pt_count}, expected {want_lin}")
    for mfn in set(exp_type) | set(exp_gen):
        if m.mfn_valid(mfn) and domains.get(m.owner(mfn)) is None and (
                exp_type[mfn] or exp_gen[mfn]) and m.owner(mfn) not in (DOMID_IO, DOMID_XEN):
            out.append(f"MFN {mfn:#x} is referenced but not allocated")
    return out


def _audit_grants(xen: object) -> list[str]:
    """Grant tables: each active entry's pin counts equal the host mappings that use it,
    and the entry's GTF_reading / GTF_writing bits say whether it is pinned (read / write)."""
    out: list[str] = []
    tables = getattr(xen, "grant_tables", {})
    uses: Counter[tuple[int, int, bool]] = Counter()
    for mapper, gt in tables.items():
        for mt in gt.maptrack.values():
            if mt.flags & GNTMAP_host_map:
                uses[(mt.domid, mt.ref, bool(mt.flags & GNTMAP_readonly))] += 1
            if mt.domid not in tables:
                out.append(f"d{mapper} handle {mt.handle} maps a grant of d{mt.domid}, which "
                           "has no grant table")
    for domid, gt in tables.items():
        refs = set(gt.active) | {ref for (d, ref, _ro) in uses if d == domid}
        for ref in refs:
            act = gt.active.get(ref)
            hstr, hstw = (act.hstr, act.hstw) if act is not None else (0, 0)
            want_r, want_w = uses[(domid, ref, True)], uses[(domid, ref, False)]
            if (hstr, hstw) != (want_r, want_w):
                out.append(f"d{domid} grant {ref}: pins r/w {hstr}/{hstw}, but {want_r}/"
                           f"{want_w} host mappings use it")
            flags = gt.entry(ref).flags if ref in gt.shared else 0
            if bool(flags & GTF_reading) != bool(hstr + hstw):
                out.append(f"d{domid} grant {ref}: GTF_reading is "
                           f"{'set' if flags & GTF_reading else 'clear'} with {hstr + hstw} pins")
            if bool(flags & GTF_writing) != bool(hstw):
                out.append(f"d{domid} grant {ref}: GTF_writing is "
                           f"{'set' if flags & GTF_writing else 'clear'} with {hstw} write pins")
    return out


__all__ = ["LEAK_CHECK", "LeakLedger", "audit", "leaked_refs"]
