# SPDX-License-Identifier: MIT
"""A tiny physical memory for hand-sized walk problems: a few 4 KiB frames, zero elsewhere."""

from __future__ import annotations


class FrameMemory:
    """Sparse physical memory (the `PhysMem` protocol of `pvlab.x86.walk`)."""

    def __init__(self) -> None:
        self.frames: dict[int, bytearray] = {}

    def write_entry(self, frame: int, index: int, value: int, width: int = 8) -> None:
        page = self.frames.setdefault(frame, bytearray(4096))
        page[index * width:(index + 1) * width] = value.to_bytes(width, "little")

    def _read(self, paddr: int, width: int) -> int:
        page = self.frames.get(paddr >> 12)
        if page is None:
            return 0
        off = paddr & 0xFFF
        return int.from_bytes(page[off:off + width], "little")

    def read_u32(self, paddr: int) -> int:
        return self._read(paddr, 4)

    def read_u64(self, paddr: int) -> int:
        return self._read(paddr, 8)

    def entries(self, frame: int, width: int = 8) -> dict[int, int]:
        """The non-zero entries of a frame, by index."""
        page = self.frames.get(frame, bytearray(4096))
        out = {}
        for i in range(4096 // width):
            v = int.from_bytes(page[i * width:(i + 1) * width], "little")
            if v:
                out[i] = v
        return out
