# SPDX-License-Identifier: MIT
"""Sparse numpy storage for machine frames: contents and `page_info` fields.

Two stores back :class:`pvlab.xen.machine.Machine`:

- :class:`ContentStore`: each touched frame's contents as one 512-entry ``uint64`` row
  of a growable block (rows are recycled when a frame is cleared);
- :class:`PageStore`: each touched frame's `page_info` (`owner`, `count_info`,
  `type_info`, `linear_pt_count`) and its M2P entry as parallel arrays, one row per frame.

Both find a frame's row through a :class:`SparseIndex`, a two-level MFN -> row map:
64 Ki-frame chunks are materialised on first touch, so a 16 TiB host with a few frames
in use costs a few chunks. Every lookup exists in a scalar form (the exact reference
path of the type engine) and a vectorised form (the bulk paths, `walk_many`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK_SHIFT = 16
CHUNK = 1 << CHUNK_SHIFT
CHUNK_MASK = CHUNK - 1
ENTRIES = 512
NO_OWNER = -1

IntArray = npt.NDArray[np.int64]


class SparseIndex:
    """MFN -> row (``-1``: none), in 64 Ki-frame chunks made on first write."""

    def __init__(self, nr_frames: int) -> None:
        self.nr_frames = nr_frames
        n_top = -(-nr_frames // CHUNK)
        self._top = np.zeros(n_top, np.int64)  # chunk id per slot; 0 is the shared empty chunk
        self._chunks = np.full((2, CHUNK), -1, np.int32)
        self._used = 1
        self._views: list[memoryview] = []
        self._refresh()

    def _refresh(self) -> None:
        # memoryviews: indexing one gives a Python int at a fraction of numpy's cost
        rows = [memoryview(c) for c in self._chunks]  # type: ignore[arg-type]
        self._views = [rows[c] for c in self._top.tolist()]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_views"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._refresh()

    def get(self, mfn: int) -> int:
        """The row of `mfn` (which must be a valid frame), or -1."""
        row: int = self._views[mfn >> CHUNK_SHIFT][mfn & CHUNK_MASK]
        return row

    def get_many(self, mfns: IntArray) -> npt.NDArray[np.int32]:
        """Rows of valid frames `mfns` (an int64 array), -1 where none."""
        flat = self._top[mfns >> CHUNK_SHIFT] << CHUNK_SHIFT
        flat |= mfns & CHUNK_MASK
        return np.take(self._chunks.reshape(-1), flat)

    def _ensure(self, slots: list[int]) -> None:
        need = [s for s in slots if self._top[s] == 0]
        if not need:
            return
        if self._used + len(need) > len(self._chunks):
            cap = max(2 * len(self._chunks), self._used + len(need))
            grown = np.empty((cap, CHUNK), np.int32)
            grown[:self._used] = self._chunks[:self._used]
            grown[self._used:] = -1
            self._chunks = grown
        for s in need:
            self._top[s] = self._used
            self._used += 1
        self._refresh()

    def set(self, mfn: int, row: int) -> None:
        slot = mfn >> CHUNK_SHIFT
        if self._top[slot] == 0:
            if row < 0:
                return
            self._ensure([slot])
        self._views[slot][mfn & CHUNK_MASK] = row

    def set_many(self, mfns: IntArray, rows: npt.ArrayLike) -> None:
        slots = mfns >> CHUNK_SHIFT
        if len(slots):
            lo = int(slots.min())
            self._ensure((np.flatnonzero(np.bincount(slots - lo)) + lo).tolist())
        flat = (self._top[slots] << CHUNK_SHIFT) | (mfns & CHUNK_MASK)
        self._chunks.reshape(-1)[flat] = rows

    @property
    def nbytes(self) -> int:
        return int(self._top.nbytes + self._used * CHUNK * 4)


class _Rows:
    """Rows handed out from growable parallel arrays, with a free list."""

    _columns: tuple[str, ...] = ()

    def __init__(self, nr_frames: int) -> None:
        self.index = SparseIndex(nr_frames)
        self.row_mfn = np.full(0, -1, np.int64)
        self._free: list[int] = []
        self._next = 0
        self.count = 0

    def _grow(self, need: int) -> None:
        cap = len(self.row_mfn)
        if self._next + need <= cap:
            return
        new = max(64, 2 * cap, self._next + need)
        self.row_mfn = _grown(self.row_mfn, new, -1)
        for name in self._columns:
            setattr(self, name, _grown(getattr(self, name), new, self._fill(name)))
        self._remember()

    def _fill(self, name: str) -> int:
        return 0

    def _remember(self) -> None:
        """`mv_<column>`: a memoryview of each 1-D column, for fast scalar access."""
        for name in self._columns:
            col = getattr(self, name)
            if col.ndim == 1:
                setattr(self, "mv_" + name, memoryview(col))

    def _reset(self, rows: Any) -> None:
        for name in self._columns:
            getattr(self, name)[rows] = self._fill(name)

    def new_row(self, mfn: int) -> int:
        if self._free:
            row = self._free.pop()
        else:
            self._grow(1)
            row = self._next
            self._next += 1
        self._reset(row)
        self.row_mfn[row] = mfn
        self.index.set(mfn, row)
        self.count += 1
        return row

    def new_rows(self, mfns: IntArray) -> npt.NDArray[np.int64]:
        """Fresh rows for frames that have none (their order follows `mfns`)."""
        n = len(mfns)
        self._grow(n)
        first = self._next
        rows = np.arange(first, first + n, dtype=np.int64)
        self._next += n
        self._reset(slice(first, first + n))
        self.row_mfn[first:first + n] = mfns
        self.index.set_many(mfns, rows)
        self.count += n
        return rows

    def release(self, mfn: int) -> None:
        row = self.index.get(mfn)
        if row < 0:
            return
        self.index.set(mfn, -1)
        self.row_mfn[row] = -1
        self._free.append(row)
        self.count -= 1

    def mfns(self) -> IntArray:
        """Every frame with a row, in MFN order."""
        live = self.row_mfn[:self._next]
        return np.sort(live[live >= 0])

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("mv_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remember()


def _grown(a: npt.NDArray[Any], n: int, fill: int) -> npt.NDArray[Any]:
    out = np.empty((n, *a.shape[1:]), a.dtype)
    out[:len(a)] = a
    out[len(a):] = fill
    return out


class ContentStore(_Rows):
    """Frame contents: 512 little-endian 64-bit entries per touched frame."""

    _columns = ("data",)
    #: `data` as one flat memoryview: entry `index` of row `row` is `mv_flat[row << 9 |
    #: index]`, a Python int in a fraction of numpy's element access (the scalar path).
    mv_flat: memoryview

    def __init__(self, nr_frames: int) -> None:
        super().__init__(nr_frames)
        self.data = np.zeros((0, ENTRIES), np.uint64)
        self._grow(1)

    def _remember(self) -> None:
        super()._remember()
        if hasattr(self, "data"):
            self.mv_flat = memoryview(self.data.reshape(-1))  # type: ignore[arg-type]

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.row_mfn.nbytes + self.index.nbytes)


class PageStore(_Rows):
    """`page_info` of touched frames as parallel arrays, plus the M2P entry."""

    _columns = ("owner", "count_info", "type_info", "linear_pt_count", "m2p", "m2p_set")
    mv_owner: memoryview
    mv_count_info: memoryview
    mv_type_info: memoryview
    mv_linear_pt_count: memoryview

    def __init__(self, nr_frames: int) -> None:
        super().__init__(nr_frames)
        self.owner = np.zeros(0, np.int32)
        self.count_info = np.zeros(0, np.uint64)
        self.type_info = np.zeros(0, np.uint64)
        self.linear_pt_count = np.zeros(0, np.int64)
        self.m2p = np.zeros(0, np.uint64)
        self.m2p_set = np.zeros(0, np.bool_)
        self._grow(1)

    def _fill(self, name: str) -> int:
        return NO_OWNER if name == "owner" else 0

    @property
    def nbytes(self) -> int:
        cols = sum(getattr(self, c).nbytes for c in self._columns)
        return int(cols + self.row_mfn.nbytes + self.index.nbytes)


__all__ = ["CHUNK", "ContentStore", "PageStore", "SparseIndex"]
