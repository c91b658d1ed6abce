# SPDX-License-Identifier: MIT
"""Batch page walks: `walk()` over a numpy array of virtual addresses at once.

`walk_many(mem, mode, cr3, vas, ...)` follows exactly the rules of
:func:`pvlab.x86.walk.walk` (SDM Vol.3 chapter 4: not-present entries, reserved bits,
large pages, rights combined over the levels, the #PF error code, #GP for a
non-canonical address or a bad PAE PDPTE), one level at a time. Addresses in one
L1-table region (2 MiB, 4 MiB in 2-level paging) share every entry above L1, so those
levels are walked once per distinct region and only the L1 step runs per address: one
gather and one fused flag check, the few failing addresses then classified
(`_walk_shared`). When most addresses lie in regions of their own, the levels above L2
are shared per 1 GiB region instead (`_walk_split_l2`), and failing that every address
walks every level (`_walk_levels`). It returns numpy arrays (physical address, page size,
fault kind, level and error code); `WalkBatch.walk(i)` re-runs the scalar `walk()` for
one address when the steps and the reason in words are wanted. `walk()` stays the
reference: the tests check that each result here equals `walk()`'s.

Memory that offers `read_u64_many` / `read_u32_many` (e.g.
:class:`pvlab.xen.machine.Machine`) is read with one gather per level; any other
`PhysMem` is read entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pvlab.errors import PvlabError
from pvlab.x86.flags import ADDR_MASK, NX, PS, RW, US, P
from pvlab.x86.modes import (
    LARGE_PAGE_SIZES,
    PagingMode,
    entries_per_table,
    entry_width,
    index_shift,
    levels,
)
from pvlab.x86.walk import (
    PDPTE_RSVD,
    PFEC_INSN,
    PFEC_PRESENT,
    PFEC_RSVD,
    PFEC_USER,
    PFEC_WRITE,
    PhysMem,
    Walk,
    _bits,
    walk,
)

U64 = npt.NDArray[np.uint64]
#: `WalkBatch.kind` values.
KIND_OK, KIND_PAGE_FAULT, KIND_GP = 0, 1, 2
#: Addresses walked together level by level when they share no upper-level entries;
#: larger batches are cut into pieces of this size.
CHUNK = 16384
KIND_NAMES = {KIND_OK: None, KIND_PAGE_FAULT: "page-fault", KIND_GP: "gp"}


@dataclass(frozen=True, eq=False)
class WalkBatch:
    """Results of `walk_many`, one array element per virtual address.

    `kind` is 0 (translated), 1 (#PF) or 2 (#GP); `level` is the level of the entry at
    fault (0: none); `paddr` and `page_size` are 0 where the access faults.
    """

    mem: PhysMem
    mode: PagingMode
    cr3: int
    vas: U64
    access: str
    user: bool
    paddr: U64
    page_size: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    level: npt.NDArray[np.int8]
    error_code: npt.NDArray[np.int32]
    options: tuple[tuple[str, object], ...] = ()

    def __len__(self) -> int:
        return len(self.vas)

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        return self.kind == KIND_OK

    def result(self, i: int) -> tuple[int | None, int | None, str | None, int | None, int]:
        """(paddr, page_size, fault kind, fault level, error code) of address `i`, in the
        same form as `walk()`'s `Walk` (None where `walk()` has None)."""
        k = int(self.kind[i])
        if k == KIND_OK:
            return int(self.paddr[i]), int(self.page_size[i]), None, None, 0
        lvl = int(self.level[i])
        return None, None, KIND_NAMES[k], lvl or None, int(self.error_code[i])

    def walk(self, i: int) -> Walk:
        """The full scalar walk of address `i` (steps, reason), on demand."""
        kw: dict[str, object] = dict(self.options)
        return walk(self.mem, self.mode, self.cr3, int(self.vas[i]),
                    write=self.access == "write", user=self.user,
                    fetch=self.access == "fetch", **kw)  # type: ignore[arg-type]


def result_of(w: Walk) -> tuple[int | None, int | None, str | None, int | None, int]:
    """A scalar `Walk` in `WalkBatch.result()` form, for comparisons."""
    if w.fault is None:
        return w.paddr, w.page_size, None, None, 0
    return None, None, w.fault.kind, w.fault.level, w.fault.error_code


def _reader(mem: PhysMem, width: int) -> Callable[[U64], U64]:
    many = getattr(mem, "read_u32_many" if width == 4 else "read_u64_many", None)
    if many is not None:
        return lambda addrs: np.asarray(many(addrs.astype(np.int64)), np.uint64)
    one = mem.read_u32 if width == 4 else mem.read_u64
    return lambda addrs: np.fromiter((one(a) for a in addrs.tolist()), np.uint64,
                                     count=len(addrs))


class _FrameRows:
    """Reads for memory kept as 512 x 64-bit rows (`Machine.contents`): each element
    carries the row of its current table, and the rows of the next level's tables are
    looked up once per distinct table instead of once per address."""

    def __init__(self, mem: object, width: int) -> None:
        contents = mem.contents  # type: ignore[attr-defined]
        self.index = contents.index
        self.nr_frames: int = mem.nr_frames  # type: ignore[attr-defined]
        data = contents.data
        self.rows2d = data if width == 8 else data.view(np.uint32)
        self.flat = self.rows2d.reshape(-1)
        self.per = self.rows2d.shape[1]

    def rows_of(self, addrs: U64) -> npt.NDArray[np.int64]:
        """Row of the frame holding each physical address (-1: none)."""
        frames = (addrs >> np.uint64(12)).astype(np.int64)
        valid = frames < self.nr_frames
        if valid.all():
            return self.index.get_many(frames).astype(np.int64)
        got = self.index.get_many(np.where(valid, frames, 0)).astype(np.int64)
        return np.where(valid, got, -1)

    def read(self, trow: npt.NDArray[np.int64], index: U64) -> U64:
        pos = (np.maximum(trow, 0) * self.per) + index.astype(np.int64)
        e = np.take(self.flat, pos).astype(np.uint64)
        return e if trow.min(initial=0) >= 0 else np.where(trow >= 0, e, np.uint64(0))

    def next_rows(self, trow: npt.NDArray[np.int64], index: U64,
                  mask: np.uint64) -> npt.NDArray[np.int64]:
        """Rows of the tables the entries (trow, index) point at."""
        if not len(trow):
            return trow
        t = np.maximum(trow, 0)
        distinct = np.flatnonzero(np.bincount(t))
        slot = np.zeros(int(distinct[-1]) + 1, np.int64)
        slot[distinct] = np.arange(len(distinct))
        block = self.rows2d[distinct].astype(np.uint64) & mask
        table = self.rows_of(block.reshape(-1)).reshape(len(distinct), self.per)
        out = table[slot[t], index.astype(np.int64)]
        return out if trow.min() >= 0 else np.where(trow >= 0, out, -1)


def walk_many(
    mem: PhysMem,
    mode: PagingMode | str,
    cr3: int,
    vas: npt.ArrayLike,
    *,
    write: bool = False,
    user: bool = False,
    fetch: bool = False,
    cr0_wp: bool = True,
    efer_nxe: bool = True,
    cr4_pse: bool = True,
    maxphyaddr: int = 52,
) -> WalkBatch:
    """`walk()` for every address in `vas` at once (same options, same results)."""
    mode = PagingMode.parse(mode)
    if write and fetch:
        raise PvlabError("an access cannot be both a write and an instruction fetch",
                         "pass write=True or fetch=True, not both")
    if not 32 <= maxphyaddr <= 52:
        raise PvlabError(f"MAXPHYADDR {maxphyaddr} is not between 32 and 52",
                         "use maxphyaddr=52 (the architectural maximum) or a real CPU's value")
    raw = np.asarray(vas)
    if raw.dtype.kind not in "ui" or raw.ndim != 1:
        raise PvlabError("the virtual addresses must be a 1-D array of integers",
                         "pass e.g. numpy.array([0x1000, 0x2000], dtype=numpy.uint64)")
    if raw.dtype.kind == "i" and len(raw) and raw.min() < 0:
        raise PvlabError("a virtual address is negative", "give addresses from 0 up")
    va = raw.astype(np.uint64, copy=False)
    limit = 1 << (64 if mode is PagingMode.FOUR_LEVEL else 32)
    if len(va) and int(va.max()) >= limit:
        raise PvlabError(f"a virtual address does not fit {mode.value} paging",
                         f"give addresses from 0 to {limit - 1:#x}")
    if not isinstance(cr3, int) or isinstance(cr3, bool) or cr3 < 0:
        raise PvlabError(f"CR3 value {cr3!r} is not a non-negative integer", "give e.g. 0x1000")
    if mode is not PagingMode.FOUR_LEVEL and cr3 >= 1 << 32:
        raise PvlabError(f"CR3 value {cr3:#x} does not fit 32 bits, as {mode.value} paging needs",
                         "use a CR3 below 4 GiB (see pae_cr3 / pae_extended_cr3)")
    access = "write" if write else "fetch" if fetch else "read"
    nxe = efer_nxe and mode is not PagingMode.TWO_LEVEL
    n = len(va)
    opts = _Options(mode, cr3, write, user, fetch, cr0_wp, nxe, cr4_pse, maxphyaddr)
    options = (("cr0_wp", cr0_wp), ("efer_nxe", efer_nxe), ("cr4_pse", cr4_pse),
               ("maxphyaddr", maxphyaddr))
    rows = _FrameRows(mem, entry_width(mode)) if hasattr(mem, "contents") else None
    res = _walk_shared(mem, rows, opts, va)
    if res is None:  # most addresses in regions of their own: level by level
        res = _Results.empty(n)
        for i in range(0, n, CHUNK):  # in cache-sized pieces (temporaries stay in L2)
            part = _walk_levels(mem, opts, va[i:i + CHUNK], rows, last=1)[0]
            for name in ("paddr", "size", "kind", "level", "ec"):
                getattr(res, name)[i:i + CHUNK] = getattr(part, name)
    return WalkBatch(mem, mode, cr3, va, access, user, res.paddr, res.size, res.kind,
                     res.level, res.ec, options)


@dataclass(frozen=True)
class _Options:
    mode: PagingMode
    cr3: int
    write: bool
    user: bool
    fetch: bool
    cr0_wp: bool
    nxe: bool  # EFER.NXE in effect (never in 2-level paging)
    cr4_pse: bool
    maxphyaddr: int

    @property
    def base_ec(self) -> int:
        ec = (PFEC_WRITE if self.write else 0) | (PFEC_USER if self.user else 0)
        return ec | (PFEC_INSN if self.fetch and self.nxe else 0)

    @property
    def rsvd_common(self) -> int:
        """Reserved bits of every non-2-level entry (above MAXPHYADDR, NX without NXE,
        PAE's bits 52-62)."""
        r = _bits(self.maxphyaddr, 51) | (0 if self.nxe else NX)
        if self.mode is PagingMode.PAE:
            r |= _bits(52, 62)
        return r


@dataclass
class _Results:
    """Per-address results of a piece of a batch (see `WalkBatch`)."""

    paddr: U64
    size: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    level: npt.NDArray[np.int8]
    ec: npt.NDArray[np.int32]

    @classmethod
    def empty(cls, n: int) -> _Results:
        return cls(np.zeros(n, np.uint64), np.zeros(n, np.int64), np.zeros(n, np.int8),
                   np.zeros(n, np.int8), np.zeros(n, np.int32))

    def fault(self, sel: npt.NDArray[np.bool_] | npt.NDArray[np.intp], k: int, lvl: int,
              code: int) -> None:
        if not len(sel) or (sel.dtype == np.bool_ and not sel.any()):
            return
        self.kind[sel] = k
        self.level[sel] = lvl
        self.ec[sel] = code


@dataclass
class _Survivors:
    """Addresses that still walk below the last level `_walk_levels` did: their indices,
    the next table (its frame-store row, or its physical address) and the rights so far."""

    live: npt.NDArray[np.intp]
    trow: npt.NDArray[np.int64] | None
    tables: U64 | None
    rw: npt.NDArray[np.bool_]
    us: npt.NDArray[np.bool_]
    nx: npt.NDArray[np.bool_]


def _factorize(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64],
                                                    npt.NDArray[np.intp]] | None:
    """(distinct keys, index of each key among them), or None when most keys differ
    (then sharing the upper levels does not pay). `keys` may be overwritten."""
    n = len(keys)
    lo, hi = int(keys.min()), int(keys.max())
    span = hi - lo + 1
    if span <= max(4 * n, 1024):  # a dense map: no sort
        k = keys
        k -= lo  # in place: `keys` is a temporary, overwritten here
        seen = np.zeros(span, np.bool_)
        seen[k] = True
        offs = np.flatnonzero(seen)
        if 2 * len(offs) > n and n > SHARE_MIN:
            return None
        slot = np.empty(span, np.intp)
        slot[offs] = np.arange(len(offs))
        return offs + lo, slot[k]
    if n > 256:  # a sample first: a sort of a batch of distinct regions is wasted work
        sample = keys[:: n // 128]
        if 2 * len(np.unique(sample)) > len(sample):
            return None
    uniq, inv = np.unique(keys, return_inverse=True)
    if 2 * len(uniq) > n and n > SHARE_MIN:
        return None
    return uniq, inv.reshape(-1)


#: Below this many addresses, regions are shared even when most addresses differ (the
#: tests use it to run the two-phase path on small batches).
SHARE_MIN = 64
_NEVER = np.uint64(0xFFFFFFFFFFFFFFFF)  # no masked entry equals it


def _walk_shared(mem: PhysMem, rows: _FrameRows | None, o: _Options,
                 va: U64) -> _Results | None:
    """Walk `va` in two phases: the levels above the L1 tables once per distinct
    L1-table-sized region (addresses in one region share those entries), then the last
    level for every address with one gather and one fused check of the entry's flags.
    None when most addresses lie in regions of their own (nothing to share)."""
    mode = o.mode
    shift2 = index_shift(mode, 2)
    n = len(va)
    sva = va.view(np.int64)  # canonical high-half addresses go negative: >> keeps them
    got = _factorize(sva >> shift2) if n else None
    if got is None:
        return _walk_split_l2(mem, rows, o, va) if n and levels(mode) >= 3 else None
    uniq, inv = got
    reps = (uniq << shift2).view(np.uint64)
    up, surv = _walk_levels(mem, o, reps, rows, last=2)
    nu = len(uniq)
    low = np.uint64((1 << shift2) - 1)
    if not len(surv.live):  # every region stopped above L1
        return _Results(np.where(up.size[inv] > 0, up.paddr[inv] | (va & low), np.uint64(0)),
                        up.size[inv], up.kind[inv], up.level[inv], up.ec[inv])
    # per region: the value (entry & check) must equal for the access to succeed at L1;
    # regions that stopped above L1 (or whose upper rights fail) get a value never equal
    need = P | (RW if o.write and (o.user or o.cr0_wp) else 0) | (US if o.user else 0)
    rsvd = 0 if mode is PagingMode.TWO_LEVEL else o.rsvd_common
    check = np.uint64(need | rsvd | (NX if o.fetch and o.nxe else 0))
    rights_ok = np.ones(len(surv.live), np.bool_)
    if o.user:
        rights_ok &= surv.us
    if o.write and (o.user or o.cr0_wp):
        rights_ok &= surv.rw
    if o.fetch:
        rights_ok &= ~surv.nx
    want = np.full(nu, _NEVER)
    want[surv.live[rights_ok]] = need
    absent = np.zeros(nu, np.bool_)  # regions whose L1 table is outside memory (zeros)
    if rows is not None:
        assert surv.trow is not None
        base = np.zeros(nu, np.int64)  # first flat position of each region's L1 table
        base[surv.live] = np.maximum(surv.trow, 0) * rows.per
        missing = surv.live[surv.trow < 0]
        want[missing] = _NEVER
        absent[missing] = True
    else:
        assert surv.tables is not None
        base = np.zeros(nu, np.uint64).view(np.int64)  # each region's L1 table address
        base[surv.live] = surv.tables.view(np.int64)
    cont = np.zeros(nu, np.bool_)
    cont[surv.live] = True
    region = _Regions(up, want, base, absent, cont, np.uint64(check), rsvd, low)
    res = _Results(np.empty(n, np.uint64), np.full(n, 4096, np.int64), np.zeros(n, np.int8),
                   np.zeros(n, np.int8), np.zeros(n, np.int32))
    for i in range(0, n, PIECE):  # pieces: the temporaries stay in the caches
        _last_level(mem, rows, o, region, va[i:i + PIECE], inv[i:i + PIECE], res, i)
    return res


def _walk_split_l2(mem: PhysMem, rows: _FrameRows | None, o: _Options,
                   va: U64) -> _Results | None:
    """Addresses in regions of their own at L1 but sharing L2 tables (1 GiB regions):
    the levels above L2 once per 1 GiB region, L2 and L1 per address (level by level,
    from each address's L2 table and the rights above it). None when even the 1 GiB
    regions mostly differ."""
    shift3 = index_shift(o.mode, 3)
    got = _factorize(va.view(np.int64) >> shift3)
    if got is None:
        return None
    uniq, inv = got
    up, surv = _walk_levels(mem, o, (uniq << shift3).view(np.uint64), rows, last=3)
    low = np.uint64((1 << shift3) - 1)
    res = _Results(np.where(up.size[inv] > 0, up.paddr[inv] | (va & low), np.uint64(0)),
                   up.size[inv], up.kind[inv], up.level[inv], up.ec[inv])
    if not len(surv.live):
        return res
    slot = np.full(len(uniq), -1, np.intp)
    slot[surv.live] = np.arange(len(surv.live))
    aslot = slot[inv]
    idx = np.flatnonzero(aslot >= 0)
    for i in range(0, len(idx), CHUNK):
        part = idx[i:i + CHUNK]
        s = aslot[part]
        state = _Survivors(np.arange(len(part)),
                           None if surv.trow is None else surv.trow[s],
                           None if surv.tables is None else surv.tables[s],
                           surv.rw[s], surv.us[s], surv.nx[s])
        sub, _ = _walk_levels(mem, o, va[part], rows, last=1, start=(2, state))
        for name in ("paddr", "size", "kind", "level", "ec"):
            getattr(res, name)[part] = getattr(sub, name)
    return res


#: Addresses checked together at the last level of a two-phase walk.
PIECE = 16384


@dataclass
class _Regions:
    """What the upper levels left for each region of a two-phase walk."""

    up: _Results  # the region's own result when its walk stopped above L1
    want: U64  # entry & check must equal this for success at L1 (_NEVER: cannot)
    base: npt.NDArray[np.int64]  # L1 table: flat row position, or physical address
    absent: npt.NDArray[np.bool_]  # L1 table outside memory: reads as zeros
    cont: npt.NDArray[np.bool_]  # the walk goes on to L1
    check: np.uint64  # entry bits the fused check looks at
    rsvd: int  # reserved bits of an L1 entry
    low: np.uint64  # offset bits within a region


def _last_level(mem: PhysMem, rows: _FrameRows | None, o: _Options, r: _Regions, va: U64,
                inv: npt.NDArray[np.intp], res: _Results, at0: int) -> None:
    """The L1 step of a two-phase walk for one piece, written into `res` from `at0` on."""
    width = entry_width(o.mode)
    per = entries_per_table(o.mode, 1)
    n = len(va)
    if rows is not None:
        pos = va.view(np.int64) >> 12
        pos &= per - 1
        pos += r.base[inv]
        e = rows.flat.take(pos)
        if width == 4:
            e = e.astype(np.uint64)
    else:
        addr = ((va >> np.uint64(12)) & np.uint64(per - 1)) * np.uint64(width)
        addr += r.base[inv].view(np.uint64)
        e = _reader(mem, width)(addr)
    good = e & r.check
    good = good == r.want[inv]
    out = res.paddr[at0:at0 + n]
    np.bitwise_and(e, np.uint64(0xFFFFF000 if width == 4 else ADDR_MASK), out=out)
    out |= va & np.uint64(0xFFF)
    bad = np.flatnonzero(~good)
    if not len(bad):
        return
    # the others: the upper levels' result, or the L1 entry's fault
    binv = inv[bad]
    above = ~r.cont[binv]
    up = r.up
    if above.any():
        ai, ar = bad[above], binv[above]
        out[ai] = np.where(up.size[ar] > 0, up.paddr[ar] | (va[ai] & r.low), np.uint64(0))
        gi = ai + at0
        res.size[gi] = up.size[ar]
        res.kind[gi] = up.kind[ar]
        res.level[gi] = up.level[ar]
        res.ec[gi] = up.ec[ar]
        bad, binv = bad[~above], binv[~above]
    if not len(bad):
        return
    out[bad] = 0
    gi = bad + at0
    res.size[gi] = 0
    be = np.where(r.absent[binv], np.uint64(0), e[bad])
    present = (be & np.uint64(P)) != 0
    rsvd_hit = present & ((be & np.uint64(r.rsvd)) != 0)
    res.fault(gi[~present], KIND_PAGE_FAULT, 1, o.base_ec)
    res.fault(gi[rsvd_hit], KIND_PAGE_FAULT, 1, o.base_ec | PFEC_PRESENT | PFEC_RSVD)
    res.fault(gi[present & ~rsvd_hit], KIND_PAGE_FAULT, 1, o.base_ec | PFEC_PRESENT)


def _walk_levels(mem: PhysMem, o: _Options, va: U64, rows: _FrameRows | None,
                 last: int, start: tuple[int, _Survivors] | None = None
                 ) -> tuple[_Results, _Survivors]:
    """The walk of every address from the top down to level `last` (1: to the end), one
    pass per level; addresses still walking below `last` come back as survivors.
    `start=(level, state)`: begin at `level` from `state` (every address, its table and
    the rights of the levels above) instead of CR3."""
    mode, cr3, maxphyaddr = o.mode, o.cr3, o.maxphyaddr
    n = len(va)
    res = _Results.empty(n)
    paddr, size, kind, flevel, ec = res.paddr, res.size, res.kind, res.level, res.ec
    fault = res.fault
    base_ec = o.base_ec
    width = entry_width(mode)
    read = _reader(mem, width)
    above_max = _bits(maxphyaddr, 51)
    rsvd_common = o.rsvd_common
    nxe = o.nxe
    no_one = np.zeros(0, np.intp)

    def stop() -> tuple[_Results, _Survivors]:
        nob = np.zeros(0, np.bool_)
        return res, _Survivors(no_one, None, None, nob, nob, nob)

    live = np.arange(n)  # indices of addresses still walking

    if start is not None:
        top, st = start
        live = st.live
        tables = st.tables if st.tables is not None else np.zeros(len(live), np.uint64)
    elif mode is PagingMode.FOUR_LEVEL:
        top_bits = va >> np.uint64(47)
        canon = (top_bits == 0) | (top_bits == (1 << 17) - 1)
        fault(~canon, KIND_GP, 0, 0)
        live = np.flatnonzero(canon)
        table_base = cr3 & ADDR_MASK
        if table_base & above_max:
            fault(live, KIND_GP, 0, 0)
            return stop()
        tables = np.full(len(live), table_base, np.uint64)
        top = levels(mode)
    elif mode is PagingMode.PAE:
        pdpt = cr3 & 0xFFFFFFE0
        pdptes = read(np.array([pdpt + 8 * i for i in range(4)], np.uint64))
        for e in pdptes.tolist():
            if e & P and e & (PDPTE_RSVD | above_max):
                fault(live, KIND_GP, 3, 0)
                return stop()
        es = pdptes[((va >> np.uint64(30)) & np.uint64(3)).astype(np.intp)]
        present = (es & np.uint64(P)) != 0
        fault(~present, KIND_PAGE_FAULT, 3, base_ec)
        live = np.flatnonzero(present)
        tables = es[live] & np.uint64(ADDR_MASK)
        top = 2
    else:
        tables = np.full(n, cr3 & 0xFFFFF000, np.uint64)
        top = 2

    if start is not None:
        rw, us, nx = start[1].rw.copy(), start[1].us.copy(), start[1].nx.copy()
    else:
        rw = np.ones(len(live), np.bool_)
        us = np.ones(len(live), np.bool_)
        nx = np.zeros(len(live), np.bool_)
    # addresses that reached their leaf: index, its level, rights
    done_idx: list[npt.NDArray[np.intp]] = []
    done_lvl: list[npt.NDArray[np.int8]] = []
    done_rw: list[npt.NDArray[np.bool_]] = []
    done_us: list[npt.NDArray[np.bool_]] = []
    done_nx: list[npt.NDArray[np.bool_]] = []
    next_mask = np.uint64(0xFFFFF000 if width == 4 else ADDR_MASK)
    lva = va[live] if len(live) != n else va
    if start is not None and start[1].trow is not None:
        trow: npt.NDArray[np.int64] | None = start[1].trow
    else:
        trow = rows.rows_of(tables) if rows is not None else None
    for level in range(top, last - 1, -1):
        if not len(live):
            break
        shift = index_shift(mode, level)
        index = (lva >> np.uint64(shift)) & np.uint64(entries_per_table(mode, level) - 1)
        if rows is not None and trow is not None:
            e = rows.read(trow, index)
        else:
            e = read(tables + index * np.uint64(width))
        present = (e & np.uint64(P)) != 0
        if not present.all():
            fault(live[~present], KIND_PAGE_FAULT, level, base_ec)
        keep = present
        large_ok = level > 1 and level in LARGE_PAGE_SIZES[mode] and (
            mode is not PagingMode.TWO_LEVEL or o.cr4_pse)
        large = ((e & np.uint64(PS)) != 0) & large_ok & present
        if mode is PagingMode.TWO_LEVEL:
            rsvd = np.zeros(len(e), np.bool_)
            if large_ok:
                m32 = min(maxphyaddr, 40)
                rsvd = large & ((e & np.uint64(_bits(m32 - 19, 21))) != 0)
        else:
            rmask = rsvd_common | (PS if mode is PagingMode.FOUR_LEVEL and level == 4 else 0)
            rsvd = (e & np.uint64(rmask)) != 0
            if large_ok:
                rsvd |= large & ((e & np.uint64(_bits(13, shift - 1))) != 0)
        rsvd &= present
        if rsvd.any():
            fault(live[rsvd], KIND_PAGE_FAULT, level, base_ec | PFEC_PRESENT | PFEC_RSVD)
            keep = present & ~rsvd
        else:
            keep = present
        rw &= (e & np.uint64(RW)) != 0
        us &= (e & np.uint64(US)) != 0
        if nxe:
            nx |= (e & np.uint64(NX)) != 0
        leaf = keep & large if level > 1 else keep
        if leaf.any():
            le, lv = e[leaf], lva[leaf]
            if level == 1:
                psize = 4096
                base = le & (np.uint64(0xFFFFF000) if width == 4 else np.uint64(ADDR_MASK))
            else:
                psize = LARGE_PAGE_SIZES[mode][level]
                if mode is PagingMode.TWO_LEVEL:
                    base = (le & np.uint64(0xFFC00000)) | (
                        ((le >> np.uint64(13)) & np.uint64(0xFF)) << np.uint64(32))
                else:
                    base = le & np.uint64(ADDR_MASK & ~(psize - 1))
            idx = live[leaf]
            paddr[idx] = base | (lv & np.uint64(psize - 1))
            size[idx] = psize
            done_idx.append(idx)
            done_lvl.append(np.full(len(idx), level, np.int8))
            done_rw.append(rw[leaf])
            done_us.append(us[leaf])
            done_nx.append(nx[leaf])
        cont = keep & ~leaf
        if level > 1:
            if cont.all():
                if rows is not None and trow is not None:
                    trow = rows.next_rows(trow, index, next_mask)
                else:
                    tables = e & next_mask
            else:
                live = live[cont]
                if rows is not None and trow is not None:
                    trow = rows.next_rows(trow[cont], index[cont], next_mask)
                else:
                    tables = e[cont] & next_mask
                rw, us, nx, lva = rw[cont], us[cont], nx[cont], lva[cont]

    if done_idx:
        idx = np.concatenate(done_idx)
        lvl = np.concatenate(done_lvl)
        r, u, x = (np.concatenate(a) for a in (done_rw, done_us, done_nx))
        problem = np.zeros(len(idx), np.bool_)
        if o.user:
            problem |= ~u
        if o.write and (o.user or o.cr0_wp):
            problem |= ~r
        if o.fetch:
            problem |= x
        bad = idx[problem]
        kind[bad] = KIND_PAGE_FAULT
        flevel[bad] = lvl[problem]
        ec[bad] = base_ec | PFEC_PRESENT
        paddr[bad] = 0
        size[bad] = 0
    if last == 1:
        return stop()
    return res, _Survivors(live, trow, None if rows is not None else tables, rw, us, nx)


__all__ = ["KIND_GP", "KIND_OK", "KIND_PAGE_FAULT", "WalkBatch", "result_of", "walk_many"]
