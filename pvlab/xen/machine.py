# SPDX-License-Identifier: MIT
"""Machine memory: 4 KiB frames, their `page_info`, and Xen's frame allocator.

Frame contents and `page_info` are stored sparsely, so a 1 TiB host costs only the
frames that are touched. The allocator honours Xen's address-width memflag
(`XENMEMF_address_bits`, `MEMF_bits(n)` in `alloc_domheap_pages`) and exact requests.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping

import numpy as np
import numpy.typing as npt

from pvlab.errors import PvlabError
from pvlab.trace import Errno
from pvlab.units import PAGE_SHIFT, PAGE_SIZE, TiB, format_size, parse_size
from pvlab.xen.framestore import ENTRIES, NO_OWNER, ContentStore, PageStore, _Rows
from pvlab.xen.page_info import (
    DOMID_IO,
    DOMID_XEN,
    PageInfo,
    PGC_allocated,
    PGT_validated,
    PGT_writable_page,
    owner_name,
)

#: Frames of the first MiB belong to `dom_io` (`arch_init_memory`).
FIRST_RAM_MFN = 0x100
MAX_HOST_MEMORY = 16 * TiB
PLACEMENTS = ("low-first", "high-first", "random")


class AllocError(PvlabError):
    """No frame satisfies the request (Xen: -ENOMEM). Nothing was changed."""

    errno = Errno.ENOMEM


class Machine:
    """The host's machine memory."""

    def __init__(self, memory: int | str = "8GiB", *, placement: str = "low-first",
                 seed: int = 0) -> None:
        size = parse_size(memory, what="host memory")
        if size < 64 * 1024 * 1024 or size > MAX_HOST_MEMORY:
            raise PvlabError(f"host memory {format_size(size)} is out of range",
                             "choose between 64MiB and 16TiB")
        if size % PAGE_SIZE:
            raise PvlabError(f"host memory {size} is not a whole number of 4 KiB frames",
                             "use a multiple of 4KiB, e.g. 8GiB")
        if placement not in PLACEMENTS:
            raise PvlabError(f"unknown placement {placement!r}",
                             f"use one of {', '.join(PLACEMENTS)}")
        self.memory = size
        self.nr_frames = size >> PAGE_SHIFT
        self.placement = placement
        self._rng = random.Random(seed)
        self.store = PageStore(self.nr_frames)
        self.contents = ContentStore(self.nr_frames)
        self.m2p = M2P(self)
        # Every RAM frame below _next_low (and above _next_high) is taken: the low-first and
        # high-first searches start there, so filling a guest is linear, not quadratic.
        self._next_low = FIRST_RAM_MFN
        self._next_high = self.nr_frames - 1
        #: Frames Xen keeps for itself (the compat M2P, its own tables): owned by dom_xen.
        self.xen_range = (self.nr_frames, self.nr_frames)

    @property
    def _pages(self) -> _RowsView:
        """The frames with a `page_info` record (len, iteration, membership)."""
        return _RowsView(self.store)

    @property
    def _frames(self) -> _FramesView:
        """The frames with stored contents (len, iteration, membership, items)."""
        return _FramesView(self.contents)

    def reserve_xen(self, lo: int, hi: int) -> None:
        """Frames [lo, hi) belong to Xen (`dom_xen`), e.g. the read-only compat M2P."""
        self.xen_range = (lo, hi)

    def is_xen_frame(self, mfn: int) -> bool:
        return self.xen_range[0] <= mfn < self.xen_range[1]

    # --- page_info -------------------------------------------------------------------
    def mfn_valid(self, mfn: int) -> bool:
        return 0 <= mfn < self.nr_frames

    def _default_owner(self, mfn: int) -> int | None:
        if mfn < FIRST_RAM_MFN:
            return DOMID_IO
        return DOMID_XEN if self.is_xen_frame(mfn) else None

    def page(self, mfn: int) -> PageInfo:
        """The frame's page_info (a free frame reads as owner None, counts 0)."""
        if not self.mfn_valid(mfn):
            raise PvlabError(f"MFN {mfn:#x} is not a frame of this host "
                             f"({format_size(self.memory)}: MFNs 0x0-{self.nr_frames - 1:#x})",
                             "use a smaller MFN or a larger host_memory")
        s = self.store
        row = s.index.get(mfn)
        if row < 0:
            row = s.new_row(mfn)
            owner = self._default_owner(mfn)
            if owner is not None:
                s.owner[row] = owner
                s.count_info[row] = PGC_allocated | 1
                s.type_info[row] = PGT_writable_page | PGT_validated | 1
        return PageInfo.view(mfn, s, row)

    def peek(self, mfn: int) -> PageInfo:
        """The frame's page_info without creating a record (read-only use)."""
        if not self.mfn_valid(mfn):
            return PageInfo(mfn, None)
        row = self.store.index.get(mfn)
        if row >= 0:
            return PageInfo.view(mfn, self.store, row)
        owner = self._default_owner(mfn)
        if owner is None:
            return PageInfo(mfn, None)
        return PageInfo(mfn, owner, PGC_allocated | 1, PGT_writable_page | PGT_validated | 1)

    def owner(self, mfn: int) -> int | None:
        if not self.mfn_valid(mfn):
            return None
        row = self.store.index.get(mfn)
        if row < 0:
            return self._default_owner(mfn)
        o: int = self.store.mv_owner[row]
        return None if o < 0 else o

    def owners_of(self, mfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        """Vectorised `owner()`: -1 for free or invalid frames."""
        valid = (mfns >= 0) & (mfns < self.nr_frames)
        safe = np.where(valid, mfns, 0)
        rows = self.store.index.get_many(safe)
        out = np.where(rows >= 0, self.store.owner[np.maximum(rows, 0)], NO_OWNER)
        untouched = valid & (rows < 0)
        if untouched.any():
            lo, hi = self.xen_range
            out = np.where(untouched & (mfns < FIRST_RAM_MFN), DOMID_IO, out)
            out = np.where(untouched & (mfns >= lo) & (mfns < hi), DOMID_XEN, out)
        return np.where(valid, out, NO_OWNER).astype(np.int32)

    def pages(self) -> Iterator[PageInfo]:
        """Every frame with state (allocated or touched), in MFN order."""
        s = self.store
        for mfn in s.mfns().tolist():
            yield PageInfo.view(mfn, s, s.index.get(mfn))

    def allocated(self, owner: int | None = None) -> list[int]:
        s = self.store
        n = len(s.row_mfn)
        live = (s.row_mfn[:n] >= 0) & (s.owner[:n] >= 0)
        if owner is not None:
            live &= s.owner[:n] == owner
        return sorted(s.row_mfn[:n][live].tolist())

    # --- contents --------------------------------------------------------------------
    def read_entry(self, mfn: int, index: int, width: int = 8) -> int:
        if not self.mfn_valid(mfn):
            return 0
        row = self.contents.index.get(mfn)
        if row < 0:
            return 0
        if width == 8:
            got: int = self.contents.mv_flat[(row << 9) | index]
            return got
        off = index * width
        raw = self.contents.data[row].view(np.uint8)[off:off + width]
        return int.from_bytes(raw.tobytes(), "little")

    def write_entry(self, mfn: int, index: int, value: int, width: int = 8) -> None:
        if not self.mfn_valid(mfn):
            raise PvlabError(f"MFN {mfn:#x} is not a frame of this host", "check the frame")
        if not 0 <= index < PAGE_SIZE // width:
            raise PvlabError(f"entry index {index} is out of range 0-{PAGE_SIZE // width - 1}",
                             "use a valid index")
        c = self.contents
        row = c.index.get(mfn)
        if row < 0:
            if value == 0:
                return
            row = c.new_row(mfn)
        value &= (1 << (8 * width)) - 1
        if width == 8:
            c.mv_flat[(row << 9) | index] = value
            return
        off = index * width
        c.data[row].view(np.uint8)[off:off + width] = np.frombuffer(
            value.to_bytes(width, "little"), np.uint8)

    def row(self, mfn: int) -> npt.NDArray[np.uint64]:
        """A copy of the frame's 512 entries (zeros for an untouched frame)."""
        row = self.contents.index.get(mfn) if self.mfn_valid(mfn) else -1
        if row < 0:
            return np.zeros(ENTRIES, np.uint64)
        return self.contents.data[row].copy()

    def write_rows(self, mfns: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Store whole frames at once: `values[i]` (512 entries) into frame `mfns[i]`."""
        mfn_arr = np.asarray(mfns, np.int64).reshape(-1)
        vals = np.asarray(values, np.uint64).reshape(len(mfn_arr), ENTRIES)
        if len(mfn_arr) and (mfn_arr.min() < 0 or mfn_arr.max() >= self.nr_frames):
            raise PvlabError("a frame to write is not a frame of this host", "check the frame")
        c = self.contents
        rows = c.index.get_many(mfn_arr).astype(np.int64)
        missing = rows < 0
        if missing.any():
            rows[missing] = c.new_rows(mfn_arr[missing])
        c.data[rows] = vals

    def entries(self, mfn: int) -> Iterator[tuple[int, int]]:
        """(index, value) of every non-zero 64-bit entry of a frame."""
        row = self.contents.index.get(mfn) if self.mfn_valid(mfn) else -1
        if row < 0:
            return iter(())
        data = self.contents.data[row]
        nz = np.flatnonzero(data)
        return zip(nz.tolist(), data[nz].tolist(), strict=True)

    def clear_frame(self, mfn: int) -> None:
        if self.mfn_valid(mfn):
            self.contents.release(mfn)

    def read_u64(self, paddr: int) -> int:
        return self.read_entry(paddr >> PAGE_SHIFT, (paddr & 0xFFF) >> 3, 8) if not paddr & 7 \
            else int.from_bytes(self._read_bytes(paddr, 8), "little")

    def read_u32(self, paddr: int) -> int:
        if not paddr & 3:
            return self.read_entry(paddr >> PAGE_SHIFT, (paddr & 0xFFF) >> 2, 4)
        return int.from_bytes(self._read_bytes(paddr, 4), "little")

    def read_u64_many(self, paddrs: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        """Vectorised aligned 64-bit loads (0 beyond the host or in untouched frames)."""
        mfns = paddrs >> PAGE_SHIFT
        word = (paddrs & 0xFFF) >> 3
        c = self.contents
        if len(mfns) and mfns.min() >= 0 and mfns.max() < self.nr_frames:
            rows = c.index.get_many(mfns).astype(np.int64)
        else:
            valid = (mfns >= 0) & (mfns < self.nr_frames)
            rows = np.where(valid, c.index.get_many(np.where(valid, mfns, 0)), -1)
        if len(rows) and rows.min() >= 0:
            return np.take(c.data.reshape(-1), (rows << 9) | word)
        got = np.take(c.data.reshape(-1), (np.maximum(rows, 0) << 9) | word)
        return np.where(rows >= 0, got, np.uint64(0))

    def read_u32_many(self, paddrs: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        """Vectorised aligned 32-bit loads."""
        words = self.read_u64_many(paddrs & ~7)
        shift = ((paddrs & 4) * 8).astype(np.uint64)
        return (words >> shift) & np.uint64(0xFFFFFFFF)

    def _read_bytes(self, paddr: int, n: int) -> bytes:
        out = bytearray()
        for a in range(paddr, paddr + n):
            word = self.read_u64(a & ~7)
            out.append((word >> (8 * (a & 7))) & 0xFF)
        return bytes(out)

    @property
    def nbytes(self) -> int:
        """Bytes of numpy storage in use (contents, page_info, indices)."""
        return self.store.nbytes + self.contents.nbytes

    # --- allocator -------------------------------------------------------------------
    def _free(self, mfn: int) -> bool:
        if mfn < FIRST_RAM_MFN or self.is_xen_frame(mfn):
            return False
        row = self.store.index.get(mfn)
        return row < 0 or self.store.mv_owner[row] < 0

    def alloc(self, owner: int, *, below: int | str | None = None,
              above: int | str | None = None, mfn: int | None = None) -> int:
        """Allocate one frame to `owner` (`PGC_allocated`, one general reference).

        `below`/`above` are addresses (bytes or sizes like "4GiB"): the frame lies
        wholly below `below` and at or above `above`. Raises :class:`AllocError`.
        """
        if mfn is not None:
            if not self.mfn_valid(mfn):
                raise AllocError(f"MFN {mfn:#x} is beyond this host's memory "
                                 f"({format_size(self.memory)}: MFNs up to "
                                 f"{self.nr_frames - 1:#x})",
                                 "use a smaller MFN or a larger host_memory")
            if not self._free(mfn):
                raise AllocError(f"MFN {mfn:#x} is not free: it belongs to "
                                 f"{owner_name(self.owner(mfn))}",
                                 "pick another MFN, or ask for {below: ...} / {above: ...}")
            return self._take(mfn, owner)
        lo, hi, where = self._limits(below, above)
        found = self._search(lo, hi)
        if found is None:
            raise AllocError(f"no free frame {where} on this {format_size(self.memory)} host",
                             "raise host_memory, relax the address limit, or free a frame")
        return self._take(found, owner)

    def _limits(self, below: int | str | None, above: int | str | None) -> tuple[int, int, str]:
        lo, hi, desc = FIRST_RAM_MFN, self.nr_frames, []
        if above is not None:
            a = parse_size(above, what="'above' address")
            lo = max(lo, -(-a // PAGE_SIZE))
            desc.append(f"at or above {format_size(a)}")
        if below is not None:
            b = parse_size(below, what="'below' address")
            hi = min(hi, b // PAGE_SIZE)
            desc.append(f"below {format_size(b)}")
        return lo, hi, " and ".join(desc) or "anywhere"

    def free_mask(self, mfns: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Vectorised `_free`: RAM frames nobody owns."""
        lo, hi = self.xen_range
        ok = (mfns >= FIRST_RAM_MFN) & (mfns < self.nr_frames) & ~((mfns >= lo) & (mfns < hi))
        rows = self.store.index.get_many(np.where(ok, mfns, 0))
        owned = (rows >= 0) & (self.store.owner[np.maximum(rows, 0)] >= 0)
        return ok & ~owned

    def _scan(self, start: int, stop: int, step: int, n: int) -> npt.NDArray[np.int64]:
        """Up to `n` free frames from `start` towards `stop` (exclusive), in scan order."""
        found: list[npt.NDArray[np.int64]] = []
        got = 0
        block = max(4096, n)
        pos = start
        while got < n and (pos < stop if step > 0 else pos > stop):
            end = min(pos + block, stop) if step > 0 else max(pos - block, stop)
            cand = np.arange(pos, end, step, dtype=np.int64)
            free = cand[self.free_mask(cand)][:n - got]
            found.append(free)
            got += len(free)
            pos = end
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def alloc_many(self, owner: int, n: int, *, below: int | str | None = None,
                   above: int | str | None = None) -> npt.NDArray[np.int64]:
        """Allocate `n` frames to `owner` at once, in the order `n` calls of `alloc()`
        would hand them out (low-first, high-first; random: a seeded uniform draw).
        Raises :class:`AllocError` and changes nothing when fewer are free."""
        lo, hi, where = self._limits(below, above)
        mfns = np.zeros(0, np.int64)
        if n > 0 and lo < hi:
            if self.placement == "high-first":
                top = min(hi - 1, self._next_high)
                mfns = self._scan(top, lo - 1, -1, n)
            elif self.placement == "random" and n <= 64:
                picked = []
                for _ in range(n):
                    m = self._search(lo, hi)
                    if m is None:
                        break
                    picked.append(m)
                    self._take(m, owner)
                if len(picked) < n:
                    for m in picked:
                        self.free(m)
                    mfns = np.zeros(0, np.int64)
                else:
                    return np.asarray(picked, np.int64)
            elif self.placement == "random":
                rng = np.random.default_rng(self._rng.getrandbits(64))
                chosen: list[npt.NDArray[np.int64]] = []
                got = 0
                for _ in range(8):
                    cand = rng.integers(lo, hi, size=2 * (n - got) + 64, dtype=np.int64)
                    _, first = np.unique(cand, return_index=True)
                    cand = cand[np.sort(first)]
                    if chosen:
                        cand = cand[~np.isin(cand, np.concatenate(chosen))]
                    cand = cand[self.free_mask(cand)][:n - got]
                    chosen.append(cand)
                    got += len(cand)
                    if got == n:
                        break
                mfns = np.concatenate(chosen)
                if got < n:
                    rest = self._scan(max(lo, self._next_low), hi, 1, n)
                    rest = rest[~np.isin(rest, mfns)][:n - got]
                    mfns = np.concatenate([mfns, rest])
            else:
                start = max(lo, self._next_low)
                mfns = self._scan(start, hi, 1, n)
        if len(mfns) < n:
            raise AllocError(f"no {n} free frames {where} on this {format_size(self.memory)} "
                             f"host ({len(mfns)} free)",
                             "raise host_memory, relax the address limit, or free frames")
        if self.placement == "high-first":
            if min(hi - 1, self._next_high) == self._next_high and n:
                self._next_high = int(mfns[-1]) - 1
        elif self.placement != "random" and n and max(lo, self._next_low) == self._next_low:
            self._next_low = int(mfns[-1]) + 1
        self._take_many(mfns, owner)
        return mfns

    def _take_many(self, mfns: npt.NDArray[np.int64], owner: int) -> None:
        s = self.store
        rows = s.index.get_many(mfns).astype(np.int64)
        missing = rows < 0
        if missing.any():
            rows[missing] = s.new_rows(mfns[missing])
        s.owner[rows] = owner
        s.count_info[rows] = PGC_allocated | 1
        s.type_info[rows] = 0
        s.linear_pt_count[rows] = 0
        crow = self.contents.index.get_many(mfns)
        for m in mfns[crow >= 0].tolist():
            self.contents.release(m)

    def _search(self, lo: int, hi: int) -> int | None:
        if lo >= hi:
            return None
        if self.placement == "random":
            for _ in range(64):
                m = self._rng.randrange(lo, hi)
                if self._free(m):
                    return m
        if self.placement == "high-first":
            top = min(hi - 1, self._next_high)
            for m in range(top, lo - 1, -1):
                if self._free(m):
                    if top == self._next_high:
                        self._next_high = m - 1
                    return m
            return None
        start = max(lo, self._next_low)
        for m in range(start, hi):
            if self._free(m):
                if start == self._next_low:
                    self._next_low = m + 1
                return m
        return None

    def _take(self, mfn: int, owner: int) -> int:
        pi = self.page(mfn)
        pi.owner = owner
        pi.count_info = PGC_allocated | 1
        pi.type_info = 0
        pi.linear_pt_count = 0
        self.contents.release(mfn)
        return mfn

    def free(self, mfn: int) -> None:
        """Return a frame to the heap; it must hold no reference but the allocation."""
        pi = self.page(mfn)
        if pi.owner is None or pi.owner in (DOMID_IO, DOMID_XEN):
            raise PvlabError(f"MFN {mfn:#x} is not a guest frame ({owner_name(pi.owner)})",
                             "free only frames a domain owns")
        if pi.count > 1 or pi.type_count:
            raise PvlabError(f"MFN {mfn:#x} is still in use (count={pi.count}, "
                             f"type_count={pi.type_count})",
                             "unpin it and remove the entries that reference it first")
        self.store.release(mfn)
        self.contents.release(mfn)
        self._next_low = min(self._next_low, mfn)
        self._next_high = max(self._next_high, mfn)


class _RowsView:
    """The frames of one store, as the dict keys they used to be (len, iter, `in`)."""

    def __init__(self, rows: _Rows) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return self._rows.count

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows.mfns().tolist())

    def __contains__(self, mfn: object) -> bool:
        idx = self._rows.index
        return isinstance(mfn, int) and 0 <= mfn < idx.nr_frames and idx.get(mfn) >= 0


class _FramesView(_RowsView):
    """The frames with contents; `items()` gives (mfn, its 4096 bytes) in MFN order."""

    def __init__(self, rows: ContentStore) -> None:
        super().__init__(rows)
        self._data = rows

    def items(self) -> Iterator[tuple[int, bytes]]:
        c = self._data
        for mfn in c.mfns().tolist():
            yield mfn, c.data[c.index.get(mfn)].tobytes()


class M2P(MutableMapping[int, int]):
    """The machine-to-phys table (`set_gpfn_from_mfn`), kept in the page_info arrays."""

    def __init__(self, machine: Machine) -> None:
        self._m = machine

    def _row(self, mfn: int) -> int:
        if not isinstance(mfn, int) or not self._m.mfn_valid(mfn):
            return -1
        s = self._m.store
        row = s.index.get(mfn)
        return row if row >= 0 and s.m2p_set[row] else -1

    def __getitem__(self, mfn: int) -> int:
        row = self._row(mfn)
        if row < 0:
            raise KeyError(mfn)
        return int(self._m.store.m2p[row])

    def __setitem__(self, mfn: int, pfn: int) -> None:
        pi = self._m.page(mfn)
        s = self._m.store
        s.m2p[pi._r] = pfn & ((1 << 64) - 1)
        s.m2p_set[pi._r] = True

    def __delitem__(self, mfn: int) -> None:
        row = self._row(mfn)
        if row < 0:
            raise KeyError(mfn)
        self._m.store.m2p_set[row] = False

    def _live(self) -> npt.NDArray[np.int64]:
        s = self._m.store
        n = len(s.row_mfn)
        rows = np.flatnonzero((s.row_mfn[:n] >= 0) & s.m2p_set[:n])
        return rows[np.argsort(s.row_mfn[rows])]

    def __iter__(self) -> Iterator[int]:
        return iter(self._m.store.row_mfn[self._live()].tolist())

    def __len__(self) -> int:
        return len(self._live())

    def set_many(self, mfns: npt.ArrayLike, pfns: npt.ArrayLike) -> None:
        """`set_gpfn_from_mfn` for many frames that already have page_info records."""
        s = self._m.store
        rows = s.index.get_many(np.asarray(mfns, np.int64))
        if len(rows) and rows.min() < 0:
            raise PvlabError("an M2P update names a frame nobody owns", "allocate it first")
        s.m2p[rows] = np.asarray(pfns, np.uint64)
        s.m2p_set[rows] = True
