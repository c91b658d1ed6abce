# SPDX-License-Identifier: MIT
"""Bulk promotion: a table's entries checked at once with numpy, under the exact model.

The scalar code of :mod:`pvlab.xen.typesys` is the reference: it follows `mm.c` one
entry at a time. This module does the same work on whole tables:

- :func:`promote_l1_table` (`promote_l1_table`): the flag masks (`l1_disallow_mask`),
  owners (`get_page`) and writable types (`get_page_type(PGT_writable_page)`) of all
  present entries at once; references are taken with `np.add.at`.
- :func:`promote_l2_entries` (the loop of `promote_l2_table`): every L1 named by the
  L2 that is promoted for the first time is validated in the same batch: 512 L1 tables,
  262,144 entries, in a handful of array operations.

Only entries that certainly pass are done in bulk: from the first entry that might
fail, or that needs a path the bulk code does not model (a type conflict, a foreign or
dom_io frame, a linear pagetable, an L1 shared by two entries), the scalar reference
code takes over, so the first failing entry, its trace and the unwinding are exactly
today's. Bulk work leaves one summary event (:class:`BulkEvent`, "512 L1 tables ...
all ok") where the reference leaves one or two events per table; `expand_events()`
gives back the reference's events on demand, and the equivalence tests check that the
expanded trace, the counters and the final state equal the reference path's.

`reference_path()` (a context manager) or `set_engine("reference")` selects the scalar
code everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pvlab.trace import Errno, Event, Outcome, Tracer
from pvlab.x86.flags import ADDR_MASK, RW, US, P, entry_mfn
from pvlab.xen.domain import Domain
from pvlab.xen.framestore import ENTRIES
from pvlab.xen.page_info import (
    DOMID_IO,
    PGC_count_mask,
    PGT_count_mask,
    PGT_l1_page_table,
    PGT_pae_xen_l2,
    PGT_partial,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
)
from pvlab.xen.rules import ruleset

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen
    from pvlab.xen.typesys import TypeSystem

ENGINES = ("bulk", "reference")
_ENGINE: ContextVar[str] = ContextVar("pvlab_engine", default="bulk")
#: Tables with fewer present entries than this go the scalar way (numpy's fixed cost
#: per call is larger than a few scalar checks). Tests set it to 0.
_MIN_ENTRIES: ContextVar[int] = ContextVar("pvlab_bulk_min", default=16)

_PAGE_GUEST_KERNEL = 1 << 52
_TYPE_KEY = PGT_type_mask | PGT_pae_xen_l2
_U = np.uint64
U64 = npt.NDArray[np.uint64]


def engine() -> str:
    """`"bulk"` (numpy fast paths, the default) or `"reference"` (scalar code only)."""
    return _ENGINE.get()


def active() -> bool:
    return _ENGINE.get() == "bulk"


def set_engine(name: str, *, min_entries: int | None = None) -> None:
    """Select the engine for this context (thread / task)."""
    if name not in ENGINES:
        from pvlab.errors import PvlabError

        raise PvlabError(f"unknown engine {name!r}", f"use one of {', '.join(ENGINES)}")
    _ENGINE.set(name)
    if min_entries is not None:
        _MIN_ENTRIES.set(min_entries)


@contextmanager
def reference_path() -> Iterator[None]:
    """Run the body with the scalar reference code only."""
    token = _ENGINE.set("reference")
    try:
        yield
    finally:
        _ENGINE.reset(token)


@contextmanager
def bulk_path(min_entries: int = 16) -> Iterator[None]:
    """Run the body with the bulk paths, used for tables of `min_entries` entries or more."""
    token = _ENGINE.set("bulk")
    token2 = _MIN_ENTRIES.set(min_entries)
    try:
        yield
    finally:
        _MIN_ENTRIES.reset(token2)
        _ENGINE.reset(token)


@dataclass(frozen=True)
class BulkEvent(Event):
    """A summary of bulk work; `expand()` gives the events the reference path emits.

    `tables` are the L1 tables promoted for the first time in the batch (in entry
    order); the reference emits a "promote" info and pass event for each.
    """

    tables: tuple[int, ...] = ()

    def expand(self) -> list[Event]:
        out: list[Event] = []
        for m in self.tables:
            out.append(Event("promote", "info", f"promote MFN {m:#x} to L1 (first type "
                             "reference)", "promote_l1_table", m, None, 1, self.depth))
            out.append(Event("promote", "pass", f"L1 MFN {m:#x} validated",
                             "promote_l1_table", m, None, 1, self.depth))
        return out


def expand_events(events: Sequence[Event]) -> list[Event]:
    """A trace with every bulk summary replaced by the reference path's events."""
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, BulkEvent):
            out.extend(ev.expand())
        else:
            out.append(ev)
    return out


# ---------------------------------------------------------------------- helpers
def _flag_word(e: U64) -> U64:
    """Xen's 24-bit flag word (`get_pte_flags`) of every entry."""
    return (e & _U(0xFFF)) | ((e >> _U(40)) & _U(0xFFF000))


def _disallow_mask(ts: TypeSystem, d: Domain, level: int) -> int:
    """The level's disallow mask, as `RuleSet.bad_flags` applies it."""
    fn = ruleset(d).flag_rule(level).mask
    assert fn is not None
    return fn(d, ts.profile)


def _targets(e: U64) -> npt.NDArray[np.int64]:
    return ((e & _U(ADDR_MASK)) >> _U(12)).astype(np.int64)


@dataclass
class _L1Check:
    """Which present L1 entries certainly pass `get_page_from_l1e`, and their targets."""

    simple: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]  # page_info row of each target (valid where simple)
    rw: npt.NDArray[np.bool_]


def _check_l1(ts: TypeSystem, d: Domain, e: U64,
              forbid_rw: npt.NDArray[np.int64] | None = None) -> _L1Check:
    """Vectorised `get_page_from_l1e` for present entries `e`: True where the entry
    passes for sure with plain references (own frame; writable only if the frame is or
    may become a writable page and is not in `forbid_rw`)."""
    m = ts.m
    store = m.store
    mask = _disallow_mask(ts, d, 1)
    ok = (_flag_word(e) & _U(mask)) == 0
    tgt = _targets(e)
    if len(tgt) and int(tgt.max()) < m.nr_frames:
        rows = store.index.get_many(tgt).astype(np.int64)
    else:
        ok &= tgt < m.nr_frames
        rows = store.index.get_many(np.where(ok, tgt, 0)).astype(np.int64)
    if len(rows) and int(rows.min()) >= 0:
        r = rows
    else:
        ok &= rows >= 0
        r = np.where(ok, rows, 0)
    at = _run_of(r)  # a slice when the targets are consecutive rows (a direct map)
    ok &= store.owner[at] == d.domid
    ok &= (store.count_info[at] & _U(PGC_count_mask)) > 0
    rw = (e & _U(RW)) != 0
    x = store.type_info[at]
    writable_ok = ((x & _U(PGT_count_mask)) == 0) | ((x & _U(_TYPE_KEY)) == PGT_writable_page)
    if forbid_rw is not None and len(forbid_rw):
        forbidden = np.zeros(len(store.owner), np.bool_)
        frows = store.index.get_many(forbid_rw)
        forbidden[frows[frows >= 0]] = True
        writable_ok &= ~forbidden[r]
    ok &= ~rw | writable_ok
    return _L1Check(ok, r, rw)


def _row_counts(rows: npt.NDArray[np.int64], size: int
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """(distinct rows, how often each occurs), without sorting (`np.add.at` by bincount)."""
    if len(rows) > 1 and bool((rows[1:] > rows[:-1]).all()):  # distinct already (usual)
        return rows, np.ones(len(rows), np.uint64)
    if len(rows) < 64 or len(rows) * 8 < size:  # few rows: sorting is cheaper
        u, n = np.unique(rows, return_counts=True)
        return u.astype(np.int64), n.astype(np.uint64)
    lo = int(rows.min())
    cnt = np.bincount(rows - lo)
    u = np.flatnonzero(cnt)
    return u + lo, cnt[u].astype(np.uint64)


def _run_of(rows: npt.NDArray[np.int64]) -> slice | npt.NDArray[np.int64]:
    """`rows` as a slice when they are one increasing run of consecutive rows."""
    if len(rows) > 1 and int(rows[-1]) - int(rows[0]) + 1 == len(rows) and bool(
            (rows[1:] > rows[:-1]).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _as_index(u: npt.NDArray[np.int64]) -> slice | npt.NDArray[np.int64]:
    """A slice when the rows are one contiguous run (much cheaper than fancy indexing)."""
    if len(u) and int(u[-1]) - int(u[0]) + 1 == len(u):
        return slice(int(u[0]), int(u[-1]) + 1)
    return u


def _take_l1_refs(ts: TypeSystem, rows: npt.NDArray[np.int64],
                  rw: npt.NDArray[np.bool_]) -> None:
    """`get_page` on every target, `get_page_type(writable)` on the RW ones."""
    store = ts.m.store
    size = len(store.count_info)
    u, n = _row_counts(rows, size)
    store.count_info[_as_index(u)] += n
    if not rw.any():
        return
    u, n = _row_counts(rows[rw], size)
    urows = _as_index(u)
    x = store.type_info[urows]
    fresh = ((x & _U(PGT_count_mask)) == 0) & ((x & _U(_TYPE_KEY)) != PGT_writable_page)
    changed = (x & ~_U(_TYPE_KEY | PGT_validated | PGT_partial)) | _U(PGT_writable_page)
    x = np.where(fresh, changed, x) + n
    store.type_info[urows] = x | _U(PGT_validated)


def _adjust_l1(e: U64, d: Domain) -> U64:
    """`adjust_guest_l1e` (the ABI's `adjust_l1e`) on present entries, vectorised: the
    bits it adds depend only on US and `_PAGE_GUEST_KERNEL`, so it is asked once for each
    of their four combinations."""
    add = np.zeros(4, np.uint64)
    for us in (0, 1):
        for gk in (0, 1):
            base = P | (US if us else 0) | (_PAGE_GUEST_KERNEL if gk else 0)
            got = d.abi.adjust_l1e(base)
            assert got & base == base, "adjust_l1e only adds bits"
            add[us * 2 + gk] = got & ~base
    if not add.any():
        return e
    which = (((e >> _U(2)) & _U(1)) << _U(1)) | ((e >> _U(52)) & _U(1))
    return e | add[which.astype(np.intp)]


def _first_false(mask: npt.NDArray[np.bool_]) -> int:
    bad = np.flatnonzero(~mask)
    return int(bad[0]) if len(bad) else len(mask)


# ---------------------------------------------------------------------- L1
def promote_l1_table(ts: TypeSystem, t: Tracer, mfn: int, d: Domain) -> tuple[int, int]:
    """`promote_l1_table`: the entries that surely pass in bulk, the rest as the reference."""
    m = ts.m
    row = m.row(mfn)
    idx = np.flatnonzero(row & _U(P))
    if len(idx) < _MIN_ENTRIES.get():
        return _promote_l1_tail(ts, t, mfn, d, idx.tolist(), 0)
    e = row[idx]
    chk = _check_l1(ts, d, e)
    k = _first_false(chk.simple)
    if k:
        _take_l1_refs(ts, chk.rows[:k], chk.rw[:k])
        t.outcome.counters.entries_checked += k
        t.outcome.counters.type_acquisitions += int(chk.rw[:k].sum())
        row[idx[:k]] = _adjust_l1(e[:k], d)
        m.write_rows([mfn], row)
        t.outcome.events.append(BulkEvent(
            "bulk", "pass", f"{k} entries of L1 MFN {mfn:#x} checked at once: all ok",
            "promote_l1_table (bulk)", mfn, None, 1, t.depth))
    return _promote_l1_tail(ts, t, mfn, d, idx.tolist(), k)


def _promote_l1_tail(ts: TypeSystem, t: Tracer, mfn: int, d: Domain, present: list[int],
                     k: int) -> tuple[int, int]:
    """The reference loop from present entry `k` on; entries before it are done."""
    m = ts.m
    for pos in range(k, len(present)):
        i = present[pos]
        e = m.read_entry(mfn, i)
        t.outcome.counters.entries_checked += 1
        rc = ts.get_page_from_l1e(t, e, d, d, table=mfn, index=i)
        if rc:
            t.event("promote", "fail", f"failure {Errno(-rc).name} in promote_l1_table: "
                    f"slot {i:#x}", "promote_l1_table", mfn=mfn, index=i, level=1)
            for j in present[:pos]:
                ts.put_page_from_l1e(t, m.read_entry(mfn, j), d)
            return rc, 0
        m.write_entry(mfn, i, d.abi.adjust_l1e(e ^ ts.l1e_mmio_flip(t, e, d)))
    return 0, 0


# ---------------------------------------------------------------------- L2
def promote_l2_entries(ts: TypeSystem, t: Tracer, mfn: int, d: Domain,
                       slots: range | list[int], adjust: int) -> tuple[int, int] | None:
    """The entry loop of `promote_l2_table`, with the L1s it promotes done in one batch.

    Returns None when the table is too small to be worth it (the caller runs the
    reference loop), else (rc, failing slot) exactly as the reference loop would.
    """
    m = ts.m
    store = m.store
    row = m.row(mfn)
    guest = np.zeros(ENTRIES, np.bool_)
    guest[np.asarray(list(slots), np.int64)] = True
    idx = np.flatnonzero(((row & _U(P)) != 0) & guest)
    if len(idx) < _MIN_ENTRIES.get():
        return None
    e = row[idx]
    mask = _disallow_mask(ts, d, 2)
    ok = (_flag_word(e) & _U(mask)) == 0
    tgt = _targets(e)
    ok &= tgt < m.nr_frames
    rows = store.index.get_many(np.where(ok, tgt, 0)).astype(np.int64)
    ok &= rows >= 0
    r = np.where(ok, rows, 0)
    ok &= store.owner[r] == d.domid
    ok &= (store.count_info[r] & _U(PGC_count_mask)) > 0
    x = store.type_info[r]
    tcount = x & _U(PGT_count_mask)
    is_l1 = (x & _U(_TYPE_KEY)) == PGT_l1_page_table
    validated = (x & _U(PGT_validated)) != 0
    fresh = (tcount == 0) & ~(is_l1 & validated)
    shared = (tcount > 0) & is_l1 & validated & (tcount < PGT_count_mask - ENTRIES)
    # a fresh L1 named twice would be promoted by the first entry only: leave it to the
    # reference loop
    _, first = np.unique(tgt, return_index=True)
    once = np.zeros(len(tgt), np.bool_)
    once[first] = True
    ok &= (fresh & once) | shared
    # the fresh L1s' own entries
    k = _first_false(ok)
    cand = np.flatnonzero(fresh[:k])
    new_l1 = tgt[cand]
    if len(new_l1):
        crow = m.contents.index.get_many(new_l1).astype(np.int64)
        if crow.min() >= 0:
            block = m.contents.data[crow]
        else:
            block = np.where((crow >= 0)[:, None], m.contents.data[np.maximum(crow, 0)],
                             _U(0))
        present = (block & _U(P)) != 0
        pe = block[present]
        # The L1s of the batch will be L1 tables by the time a later entry could map them:
        # for the check, they are marked as such (an RW mapping of one is then doubtful).
        l1rows = r[cand]
        saved = store.type_info[l1rows].copy()
        store.type_info[l1rows] = _U(PGT_l1_page_table | 1)
        try:
            chk = _check_l1(ts, d, pe)
        finally:
            store.type_info[l1rows] = saved
        if chk.simple.all():
            bad_tables = np.zeros(0, np.int64)
        else:
            table_of = np.repeat(np.arange(len(new_l1)), present.sum(axis=1))
            bad_tables = np.unique(table_of[~chk.simple])
        if len(bad_tables):  # the batch ends before the first L1 with a doubtful entry
            k = min(k, int(cand[bad_tables[0]]))
            keep = cand < k
            cand, new_l1 = cand[keep], new_l1[keep]
            crow, block, present = crow[keep], block[keep], present[keep]
            sel = table_of < len(new_l1)
            pe, table_of = pe[sel], table_of[sel]
            chk = _L1Check(chk.simple[sel], chk.rows[sel], chk.rw[sel])
    if k < _MIN_ENTRIES.get() and k < len(idx):
        return None  # nearly nothing to batch: the reference loop as it is
    c = t.outcome.counters
    if k:
        c.max_depth = max(c.max_depth, t.depth + 1)
        # get_page + get_page_type(PGT_l1_page_table) on every L2 entry's target
        tr = r[:k]
        np.add.at(store.count_info, tr, _U(1))
        xs = store.type_info[tr]
        fr = fresh[:k]
        promoted = ((xs & ~_U(_TYPE_KEY | PGT_validated | PGT_partial))
                    | _U(PGT_l1_page_table)) + _U(1)
        store.type_info[tr] = np.where(fr, promoted | _U(PGT_validated), xs + _U(1))
        c.entries_checked += k
        c.type_acquisitions += k
        if len(new_l1):
            c.validations += len(new_l1)
            _take_l1_refs(ts, chk.rows, chk.rw)
            c.entries_checked += len(pe)
            c.type_acquisitions += int(chk.rw.sum())
            c.max_depth = max(c.max_depth, t.depth + 2)
            adjusted = _adjust_l1(pe, d)
            if adjusted is not pe:
                block[present] = adjusted
                has = crow >= 0
                m.write_rows(new_l1[has], block[has])
        if adjust:
            row[idx[:k]] = e[:k] | _U(adjust)
            m.write_rows([mfn], row)
        if len(new_l1):
            t.outcome.events.append(BulkEvent(
                "bulk", "pass", f"{len(new_l1)} L1 tables named by L2 MFN {mfn:#x} promoted "
                f"at once: {len(pe)} entries checked, all ok", "promote_l1_table (bulk)",
                mfn, None, 1, t.depth + 1, tuple(new_l1.tolist())))
    # the reference loop from the first entry the batch did not take
    present_slots = idx.tolist()
    for pos in range(k, len(present_slots)):
        i = present_slots[pos]
        ent = m.read_entry(mfn, i)
        c.entries_checked += 1
        rc = ts.get_page_from_lne(t, 2, ent, mfn, i, d)
        if rc:
            t.event("promote", "fail", f"failure {Errno(-rc).name} in promote_l2_table: "
                    f"slot {i:#x}", "promote_l2_table", mfn=mfn, index=i, level=2)
            done = present_slots[:pos]
            if i > 0:  # as the reference: the table becomes old_guest_table
                ts._partial_failure(t, mfn, 2, i, done, entry_mfn(ent))
                return rc, i
            for j in done:
                ts.put_page_from_lne(t, 2, m.read_entry(mfn, j), mfn)
            return rc, i
        if adjust:
            m.write_entry(mfn, i, ent | adjust)
    return 0, 0


# ---------------------------------------------------------------------- demotion
def demote_l1_table(ts: TypeSystem, mfn: int, d: Domain) -> bool:
    """`demote_l1_table`: `put_page_from_l1e` on every entry at once. The references an
    L1 holds never cascade (a writable page has nothing to demote), so the order does not
    matter. Returns False, changing nothing, when the reference loop should run instead
    (a small table, or counts that would underflow: the reference asserts)."""
    m = ts.m
    store = m.store
    row = m.row(mfn)
    idx = np.flatnonzero(row & _U(P))
    if len(idx) < max(1, _MIN_ENTRIES.get()):
        return False
    e = row[idx]
    tgt = _targets(e)
    keep = (tgt < m.nr_frames) & (m.owners_of(tgt) != DOMID_IO)
    rows = store.index.get_many(tgt[keep]).astype(np.int64)
    if len(rows) and rows.min() < 0:
        return False
    rw = (e[keep] & _U(RW)) != 0
    size = len(store.count_info)
    u, n = _row_counts(rows, size)
    if len(u) and ((store.count_info[u] & _U(PGC_count_mask)) < n).any():
        return False
    if rw.any():
        ur, nr = _row_counts(rows[rw], size)
        if ((store.type_info[ur] & _U(PGT_count_mask)) < nr).any():
            return False
        store.type_info[_as_index(ur)] -= nr
    store.count_info[_as_index(u)] -= n
    return True


# ---------------------------------------------------------------------- memory
def populate_physmap_batch(xen: Xen, d: Domain, count: int, *,
                           first_gpfn: int | None = None) -> tuple[Outcome, npt.NDArray[np.int64]]:
    """`XENMEM_populate_physmap` of `count` frames in one call (`alloc_domheap_pages` per
    extent), the M2P recording gpfns `first_gpfn`, `first_gpfn + 1`, ... when given.
    Returns the outcome (0 or -ENOMEM, nothing allocated then) and the MFNs in order."""
    from pvlab.xen.machine import AllocError

    t = Tracer(f"XENMEM_populate_physmap({count} frames)")
    t.outcome.counters.hypercalls += 1
    try:
        mfns = xen.machine.alloc_many(d.domid, count)
    except AllocError as err:
        t.event("alloc", "fail", err.message, "alloc_domheap_pages")
        return t.finish(-int(Errno.ENOMEM)), np.zeros(0, np.int64)
    if first_gpfn is not None:
        xen.machine.m2p.set_many(mfns, np.arange(first_gpfn, first_gpfn + count))
    if count:
        t.event("alloc", "pass", f"{count} frames allocated to {d.label} (MFNs "
                f"{int(mfns.min()):#x}-{int(mfns.max()):#x})", "alloc_domheap_pages")
    return t.finish(0), mfns


__all__ = ["BulkEvent", "active", "bulk_path", "demote_l1_table", "engine", "expand_events",
           "promote_l1_table", "promote_l2_entries", "populate_physmap_batch", "reference_path",
           "set_engine"]
