# SPDX-License-Identifier: MIT
"""A sparse little-endian physical memory for x86 walk tests (satisfies `PhysMem`)."""

from __future__ import annotations


class DictMem:
    """Physical memory as a dict of 8-byte-aligned 64-bit words; unwritten memory reads 0."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}

    def write_u64(self, paddr: int, value: int) -> None:
        assert paddr % 8 == 0
        self.words[paddr] = value & (2**64 - 1)

    def write_u32(self, paddr: int, value: int) -> None:
        assert paddr % 4 == 0
        base, shift = paddr & ~7, (paddr & 4) * 8
        old = self.words.get(base, 0) & ~(0xFFFFFFFF << shift)
        self.words[base] = old | ((value & 0xFFFFFFFF) << shift)

    def read_u64(self, paddr: int) -> int:
        assert paddr % 8 == 0
        return self.words.get(paddr, 0)

    def read_u32(self, paddr: int) -> int:
        assert paddr % 4 == 0
        return (self.words.get(paddr & ~7, 0) >> ((paddr & 4) * 8)) & 0xFFFFFFFF

    def dump(self) -> list[tuple[int, bytes]]:
        """(paddr, 8 bytes) for every written word, for copying into an emulator."""
        return [(a, v.to_bytes(8, "little")) for a, v in sorted(self.words.items())]
