# SPDX-License-Identifier: MIT
"""Dangerous states: what a guest could exploit, found by reading the state.

Fixed Xen never lets a PV guest reach these states; a `pre-xsa-NNN` profile can. Like
:mod:`pvlab.xen.invariants` this reads the machine and changes nothing; the pictures
(`pvlab.render`) mark what it finds.

- **writable_pagetable**: a live pagetable the guest can write through one of its own
  validated tables: a recursive (same-level) entry with RW (XSA-182, XSA-185), an L1
  entry with RW (the type rule forbids it), or an L2 superpage entry whose 2 MiB covers
  a live pagetable (XSA-148).
- **superpage**: an L2 entry with PSE in a live L2 (PV guests have no superpages since
  XSA-148; a 2 MiB mapping escapes the per-frame ownership checks).
- **linear_chain**: a table used linearly by another that itself contains linear
  entries: the chains XSA-240 forbade, whose teardown recursed without bound.
- **leaked_partial**: a partially validated table (PGT_partial) nobody will clean up:
  type references no entry holds (XSA-299; also Xen's release-build leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from pvlab.x86.flags import PS, RW, P, entry_mfn
from pvlab.xen.page_info import PGT_count_mask, PGT_validated

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen
    from pvlab.xen.machine import Machine

DangerKind = Literal["writable_pagetable", "superpage", "linear_chain", "leaked_partial"]
SUPERPAGE_FRAMES = 512


@dataclass(frozen=True)
class Danger:
    """One dangerous fact: the frame it concerns, the entry that makes it (if any)."""

    kind: DangerKind
    mfn: int
    explanation: str
    index: int | None = None
    target: int | None = None
    xsa: int | None = None


def _live_tables(xen: Xen) -> dict[int, int]:
    """MFN -> level of every live pagetable a domain owns (numpy over page_info)."""
    st = xen.machine.store
    n = min(len(st.row_mfn), len(st.type_info))
    mfn, ti, owner = st.row_mfn[:n], st.type_info[:n], st.owner[:n]
    level = (ti >> np.uint64(61)).astype(np.int64)
    live = ((mfn >= 0) & (level >= 1) & (level <= 4)
            & ((ti & np.uint64(PGT_count_mask)) > 0) & ((ti & np.uint64(PGT_validated)) > 0)
            & np.isin(owner, np.fromiter(xen.domains, dtype=np.int64)))
    return dict(zip(mfn[live].tolist(), level[live].tolist(), strict=True))


def _l1_dangers(m: Machine, l1s: list[int], live: dict[int, int], out: list[Danger]) -> None:
    """L1 entries with RW naming a live pagetable (numpy over every L1's row at once)."""
    if not l1s:
        return
    rows = np.stack([m.row(mfn) for mfn in l1s]).astype(np.uint64)
    rw = (rows & np.uint64(P | RW)) == np.uint64(P | RW)
    targets = ((rows >> np.uint64(12)) & np.uint64((1 << 40) - 1)).astype(np.int64)
    hit = rw & np.isin(targets, np.fromiter(live, dtype=np.int64))
    for k, i in zip(*np.nonzero(hit), strict=True):
        mfn, target = l1s[int(k)], int(targets[k, i])
        out.append(Danger("writable_pagetable", target, f"live L{live[target]} MFN "
                          f"{target:#x} is mapped writable by L1 entry {int(i)} of MFN "
                          f"{mfn:#x}", int(i), target))


def find_dangers(xen: Xen) -> list[Danger]:
    """Every dangerous fact about `xen`'s state, in MFN order."""
    m = xen.machine
    live = _live_tables(xen)
    out: list[Danger] = []
    linear: dict[int, set[int]] = {}
    _l1_dangers(m, sorted(t for t, lvl in live.items() if lvl == 1), live, out)
    for mfn, level in sorted(live.items()):
        if level == 1:
            continue
        d = xen.domains[m.owner(mfn) or 0]
        slots = set(d.abi.guest_slots(level, pae_xen_l2=m.page(mfn).pae_xen_l2)) \
            if level > 1 else None
        for i, e in list(m.entries(mfn)):
            if not e & P or (slots is not None and i not in slots):
                continue
            target = entry_mfn(e)
            if level == 2 and e & PS:
                base = target & ~(SUPERPAGE_FRAMES - 1)
                covered = sorted(t for t in live if base <= t < base + SUPERPAGE_FRAMES)
                out.append(Danger("superpage", mfn, f"L2 entry {i} of MFN {mfn:#x} is a 2 MiB "
                                  f"superpage over MFNs {base:#x}-{base + 511:#x}"
                                  + (" (writable)" if e & RW else ""), i, target, 148))
                if e & RW and covered:
                    names = ", ".join(f"{t:#x}" for t in covered)
                    out.append(Danger("writable_pagetable", mfn, f"live pagetables {names} are "
                                      f"writable through the superpage in L2 entry {i} of "
                                      f"MFN {mfn:#x}", i, target, 148))
                continue
            if target not in live:
                continue
            if live[target] == level and level > 1:  # a linear (recursive) entry
                if target != mfn:
                    linear.setdefault(mfn, set()).add(target)
                if e & RW:
                    xsa = 185 if level == 3 and d.abi.bitness == 32 else 182
                    out.append(Danger("writable_pagetable", target, f"live L{level} MFN "
                                      f"{target:#x} is writable through the recursive entry "
                                      f"{i} (RW) of MFN {mfn:#x}", i, target, xsa))
    for mfn, targets in sorted(linear.items()):
        for tgt in sorted(targets):
            if linear.get(tgt):
                out.append(Danger("linear_chain", tgt, f"L{live[tgt]} MFN {tgt:#x} is used "
                                  f"linearly by MFN {mfn:#x} and itself links linearly to "
                                  + ", ".join(f"{x:#x}" for x in sorted(linear[tgt]))
                                  + ": a chain of linear tables", None, mfn, 240))
    ts = xen.type_system
    for mfn in sorted(ts.leaked_partial):
        pi = m.peek(mfn)
        if pi.partial and pi.type_count:
            out.append(Danger("leaked_partial", mfn, f"MFN {mfn:#x} stays a partially "
                              f"validated L{pi.level} (PGT_partial, type count "
                              f"{pi.type_count}) that nothing will clean up",
                              xsa=None if xen.profile.l3_partial_child_cleanup else 299))
    return sorted(out, key=lambda x: (x.mfn, x.kind))


__all__ = ["Danger", "DangerKind", "find_dangers"]
