# SPDX-License-Identifier: MIT
"""Machine memory: 4 KiB frames, their `page_info`, and Xen's frame allocator.

Frame contents and `page_info` are stored sparsely, so a 1 TiB host costs only the
frames that are touched. The allocator honours Xen's address-width memflag
(`XENMEMF_address_bits`, `MEMF_bits(n)` in `alloc_domheap_pages`) and exact requests.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

from pvlab.errors import PvlabError
from pvlab.trace import Errno
from pvlab.units import PAGE_SHIFT, PAGE_SIZE, TiB, format_size, parse_size
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
_ENTRY_STRUCT = struct.Struct("<512Q")


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
        self._frames: dict[int, bytearray] = {}
        self._pages: dict[int, PageInfo] = {}
        self.m2p: dict[int, int] = {}
        # Every RAM frame below _next_low (and above _next_high) is taken: the low-first and
        # high-first searches start there, so filling a guest is linear, not quadratic.
        self._next_low = FIRST_RAM_MFN
        self._next_high = self.nr_frames - 1
        #: Frames Xen keeps for itself (the compat M2P, its own tables): owned by dom_xen.
        self.xen_range = (self.nr_frames, self.nr_frames)

    def reserve_xen(self, lo: int, hi: int) -> None:
        """Frames [lo, hi) belong to Xen (`dom_xen`), e.g. the read-only compat M2P."""
        self.xen_range = (lo, hi)

    def is_xen_frame(self, mfn: int) -> bool:
        return self.xen_range[0] <= mfn < self.xen_range[1]

    # --- page_info -------------------------------------------------------------------
    def mfn_valid(self, mfn: int) -> bool:
        return 0 <= mfn < self.nr_frames

    def page(self, mfn: int) -> PageInfo:
        """The frame's page_info (a free frame reads as owner None, counts 0)."""
        pi = self._pages.get(mfn)
        if pi is None:
            if not self.mfn_valid(mfn):
                raise PvlabError(f"MFN {mfn:#x} is not a frame of this host "
                                 f"({format_size(self.memory)}: MFNs 0x0-{self.nr_frames - 1:#x})",
                                 "use a smaller MFN or a larger host_memory")
            owner = (DOMID_IO if mfn < FIRST_RAM_MFN
                     else DOMID_XEN if self.is_xen_frame(mfn) else None)
            pi = PageInfo(mfn, owner)
            if owner is not None:
                pi.count_info = PGC_allocated | 1
                pi.type_info = PGT_writable_page | PGT_validated | 1
            self._pages[mfn] = pi
        return pi

    def peek(self, mfn: int) -> PageInfo:
        """The frame's page_info without creating a record (read-only use)."""
        pi = self._pages.get(mfn)
        if pi is not None:
            return pi
        if not self.mfn_valid(mfn):
            return PageInfo(mfn, None)
        owner = self.owner(mfn)
        pi = PageInfo(mfn, owner)
        if owner is not None:
            pi.count_info = PGC_allocated | 1
            pi.type_info = PGT_writable_page | PGT_validated | 1
        return pi

    def owner(self, mfn: int) -> int | None:
        if not self.mfn_valid(mfn):
            return None
        pi = self._pages.get(mfn)
        if pi is None:
            if mfn < FIRST_RAM_MFN:
                return DOMID_IO
            return DOMID_XEN if self.is_xen_frame(mfn) else None
        return pi.owner

    def pages(self) -> Iterator[PageInfo]:
        """Every frame with state (allocated or touched), in MFN order."""
        for mfn in sorted(self._pages):
            yield self._pages[mfn]

    def allocated(self, owner: int | None = None) -> list[int]:
        return sorted(m for m, p in self._pages.items()
                      if p.owner is not None and (owner is None or p.owner == owner))

    # --- contents --------------------------------------------------------------------
    def read_entry(self, mfn: int, index: int, width: int = 8) -> int:
        buf = self._frames.get(mfn)
        if buf is None:
            return 0
        off = index * width
        return int.from_bytes(buf[off:off + width], "little")

    def write_entry(self, mfn: int, index: int, value: int, width: int = 8) -> None:
        if not self.mfn_valid(mfn):
            raise PvlabError(f"MFN {mfn:#x} is not a frame of this host", "check the frame")
        if not 0 <= index < PAGE_SIZE // width:
            raise PvlabError(f"entry index {index} is out of range 0-{PAGE_SIZE // width - 1}",
                             "use a valid index")
        buf = self._frames.get(mfn)
        if buf is None:
            if value == 0:
                return
            buf = self._frames[mfn] = bytearray(PAGE_SIZE)
        off = index * width
        buf[off:off + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")

    def entries(self, mfn: int) -> Iterator[tuple[int, int]]:
        """(index, value) of every non-zero 64-bit entry of a frame."""
        buf = self._frames.get(mfn)
        if buf is None:
            return iter(())
        values = _ENTRY_STRUCT.unpack(buf)
        return ((i, v) for i, v in enumerate(values) if v)

    def clear_frame(self, mfn: int) -> None:
        self._frames.pop(mfn, None)

    def read_u64(self, paddr: int) -> int:
        return self.read_entry(paddr >> PAGE_SHIFT, (paddr & 0xFFF) >> 3, 8) if not paddr & 7 \
            else int.from_bytes(self._read_bytes(paddr, 8), "little")

    def read_u32(self, paddr: int) -> int:
        return int.from_bytes(self._read_bytes(paddr, 4), "little")

    def _read_bytes(self, paddr: int, n: int) -> bytes:
        out = bytearray()
        for a in range(paddr, paddr + n):
            buf = self._frames.get(a >> PAGE_SHIFT)
            out.append(buf[a & 0xFFF] if buf is not None else 0)
        return bytes(out)

    # --- allocator -------------------------------------------------------------------
    def _free(self, mfn: int) -> bool:
        if mfn < FIRST_RAM_MFN or self.is_xen_frame(mfn):
            return False
        pi = self._pages.get(mfn)
        return pi is None or pi.owner is None

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
        lo = FIRST_RAM_MFN
        hi = self.nr_frames
        desc = []
        if above is not None:
            a = parse_size(above, what="'above' address")
            lo = max(lo, -(-a // PAGE_SIZE))
            desc.append(f"at or above {format_size(a)}")
        if below is not None:
            b = parse_size(below, what="'below' address")
            hi = min(hi, b // PAGE_SIZE)
            desc.append(f"below {format_size(b)}")
        found = self._search(lo, hi)
        if found is None:
            where = " and ".join(desc) or "anywhere"
            raise AllocError(f"no free frame {where} on this {format_size(self.memory)} host",
                             "raise host_memory, relax the address limit, or free a frame")
        return self._take(found, owner)

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
        self._frames.pop(mfn, None)
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
        del self._pages[mfn]
        self._frames.pop(mfn, None)
        self.m2p.pop(mfn, None)
        self._next_low = min(self._next_low, mfn)
        self._next_high = max(self._next_high, mfn)
