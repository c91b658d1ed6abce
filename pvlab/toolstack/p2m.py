# SPDX-License-Identifier: MIT
"""A guest's physical-to-machine map (the toolstack's p2m list) as a numpy array.

Indexed by pfn, -1 where a pfn has no frame (`INVALID_MFN`). It reads like the
`dict[int, int]` it replaces (`p2m[pfn]`, `p2m.get(pfn)`, `pfn in p2m`, `.values()`), and
holds a 4 GiB guest's million entries in 8 MiB.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import numpy as np
import numpy.typing as npt

INVALID_MFN = -1


class P2M(MutableMapping[int, int]):
    """pfn -> MFN for one guest, growing as pfns are added."""

    def __init__(self, size: int = 0) -> None:
        self.array: npt.NDArray[np.int64] = np.full(max(size, 16), INVALID_MFN, np.int64)

    def _fit(self, n: int) -> None:
        if n > len(self.array):
            grown = np.full(max(n, 2 * len(self.array)), INVALID_MFN, np.int64)
            grown[:len(self.array)] = self.array
            self.array = grown

    def __getitem__(self, pfn: int) -> int:
        if not isinstance(pfn, int) or not 0 <= pfn < len(self.array):
            raise KeyError(pfn)
        mfn = int(self.array[pfn])
        if mfn == INVALID_MFN:
            raise KeyError(pfn)
        return mfn

    def __setitem__(self, pfn: int, mfn: int) -> None:
        self._fit(pfn + 1)
        self.array[pfn] = mfn

    def __delitem__(self, pfn: int) -> None:
        self[pfn]  # noqa: B018 - KeyError when absent
        self.array[pfn] = INVALID_MFN

    def set_range(self, first: int, mfns: npt.ArrayLike) -> None:
        """p2m[first + i] = mfns[i] for every i."""
        arr = np.asarray(mfns, np.int64)
        self._fit(first + len(arr))
        self.array[first:first + len(arr)] = arr

    def __iter__(self) -> Iterator[int]:
        return iter(np.flatnonzero(self.array != INVALID_MFN).tolist())

    def __len__(self) -> int:
        return int((self.array != INVALID_MFN).sum())

    def mfns(self, pfns: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Vectorised lookup (INVALID_MFN for pfns without a frame)."""
        p = np.asarray(pfns, np.int64)
        inside = (p >= 0) & (p < len(self.array))
        return np.where(inside, self.array[np.where(inside, p, 0)], INVALID_MFN)


__all__ = ["INVALID_MFN", "P2M"]
