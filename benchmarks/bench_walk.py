# SPDX-License-Identifier: MIT
"""Walks per second of `pvlab.x86.walk` in each paging mode (prints figures, asserts nothing).

Run: `python benchmarks/bench_walk.py`
"""

from __future__ import annotations

import random
import time

from pvlab.x86 import PS, RW, US, P, PagingMode, walk


class Mem:
    def __init__(self) -> None:
        self.words: dict[int, int] = {}

    def read_u64(self, paddr: int) -> int:
        return self.words.get(paddr, 0)

    def read_u32(self, paddr: int) -> int:
        return (self.words.get(paddr & ~7, 0) >> ((paddr & 4) * 8)) & 0xFFFFFFFF


def build(mode: PagingMode) -> tuple[Mem, int, list[int]]:
    """Small tables mapping 512 (PAE/4-level) or 1024 (2-level) 4 KiB pages, one 2/4 MiB page."""
    m = Mem()
    flags = P | RW | US
    if mode is PagingMode.TWO_LEVEL:
        m.words[0x1000] = 0x2000 | flags  # PDE 0 -> PT
        m.words[0x1008] = (0x00800000 | flags | PS) << 32  # PDE 3: 4 MiB page
        for i in range(0, 1024, 2):
            m.words[0x2000 + i * 4] = ((0x100000 + i + 1) << 44) | ((0x100000 + i) << 12) | (
                flags | flags << 32)
        return m, 0x1000, [i << 12 for i in range(1024)] + [0xC00000 + 0x1234]
    cr3, top = (0x1000, 4) if mode is PagingMode.FOUR_LEVEL else (0x1000, 3)
    table = cr3
    for _level in range(top, 2, -1):
        # a PAE PDPTE has no RW/US bits (they are reserved there)
        m.words[table] = (table + 0x1000) | (P if mode is PagingMode.PAE else flags)
        table += 0x1000
    m.words[table] = (table + 0x1000) | flags  # PD entry 0 -> PT
    m.words[table + 8] = 0x40000000 | flags | PS  # PD entry 1: 2 MiB page
    for i in range(512):
        m.words[table + 0x1000 + 8 * i] = ((0x100000 + i) << 12) | flags
    return m, cr3, [i << 12 for i in range(512)] + [0x200000 + 0x1234]


def main() -> None:
    rng = random.Random(1)
    for mode in PagingMode:
        mem, cr3, vas = build(mode)
        sample = [rng.choice(vas) | rng.randrange(4096) & 0xFF8 for _ in range(20_000)]
        start = time.perf_counter()
        ok = sum(walk(mem, mode, cr3, va, write=True).ok for va in sample)
        elapsed = time.perf_counter() - start
        print(f"{mode.value:8} {len(sample) / elapsed:>10,.0f} walks/s ({ok} of {len(sample)} ok)")


if __name__ == "__main__":
    main()
