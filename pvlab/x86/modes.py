# SPDX-License-Identifier: MIT
"""The three x86 paging modes a PV guest can run under, and how a VA is split.

- `TWO_LEVEL`: 32-bit paging (SDM Vol.3 4.3): 4-byte entries, 1024 per table,
  VA bits 31:22 index the page directory, 21:12 the page table; a PDE with PS=1
  maps a 4 MiB page when CR4.PSE=1.
- `PAE`: PAE paging (SDM Vol.3 4.4): 8-byte entries, 512 per table, plus a
  4-entry page-directory-pointer table (PDPT) found through CR3 bits 31:5;
  VA bits 31:30 pick the PDPTE, 29:21 the PDE (PS=1: 2 MiB page), 20:12 the PTE.
- `FOUR_LEVEL`: 4-level paging (SDM Vol.3 4.5): 48-bit canonical VAs, 9 index
  bits per level (47:39, 38:30, 29:21, 20:12); PS=1 maps 1 GiB (L3) or 2 MiB (L2).
"""

from __future__ import annotations

from enum import Enum

from pvlab.errors import PvlabError
from pvlab.units import GiB, MiB


class PagingMode(Enum):
    """An x86 paging mode. The value is the short name used in scenarios."""

    TWO_LEVEL = "2-level"
    PAE = "pae"
    FOUR_LEVEL = "4-level"

    @classmethod
    def parse(cls, name: str | PagingMode) -> PagingMode:
        """`"2-level"`, `"pae"`, `"4-level"` (or `32`, `3-level`, `64`) to a mode."""
        if isinstance(name, PagingMode):
            return name
        key = str(name).strip().lower().replace("_", "-")
        if key in _ALIASES:
            return _ALIASES[key]
        raise PvlabError(
            f"unknown paging mode {name!r}", "use one of 2-level, pae, 4-level"
        )


_ALIASES = {
    "2-level": PagingMode.TWO_LEVEL, "two-level": PagingMode.TWO_LEVEL, "32": PagingMode.TWO_LEVEL,
    "pae": PagingMode.PAE, "3-level": PagingMode.PAE, "three-level": PagingMode.PAE,
    "4-level": PagingMode.FOUR_LEVEL, "four-level": PagingMode.FOUR_LEVEL,
    "64": PagingMode.FOUR_LEVEL, "long": PagingMode.FOUR_LEVEL,
}

#: Width of the linear address each mode translates.
VA_BITS = {PagingMode.TWO_LEVEL: 32, PagingMode.PAE: 32, PagingMode.FOUR_LEVEL: 48}
#: Index bits per level, top level first (SDM Vol.3 Figures 4-2, 4-5, 4-8).
_INDEX_BITS = {
    PagingMode.TWO_LEVEL: (10, 10),
    PagingMode.PAE: (2, 9, 9),
    PagingMode.FOUR_LEVEL: (9, 9, 9, 9),
}
#: Page sizes a leaf entry at each level maps (level 1 is always 4 KiB).
LARGE_PAGE_SIZES = {
    PagingMode.TWO_LEVEL: {2: 4 * MiB},
    PagingMode.PAE: {2: 2 * MiB},
    PagingMode.FOUR_LEVEL: {2: 2 * MiB, 3: 1 * GiB},
}


def levels(mode: PagingMode) -> int:
    """Number of table levels: 2, 3 (the PDPT counts) or 4."""
    return len(_INDEX_BITS[mode])


def entry_width(mode: PagingMode) -> int:
    """Bytes per entry: 4 for 32-bit paging, 8 for PAE and 4-level paging."""
    return 4 if mode is PagingMode.TWO_LEVEL else 8


def entries_per_table(mode: PagingMode, level: int | None = None) -> int:
    """Entries in a table: 1024 (32-bit), 512 (PAE, 4-level); the PAE PDPT has 4.

    `level` is the table's level (levels()..1); only the PAE PDPT (level 3) differs.
    """
    if mode is PagingMode.PAE and level == 3:
        return 4
    return 1024 if mode is PagingMode.TWO_LEVEL else 512


def is_canonical(va: int, bits: int = 48) -> bool:
    """Is `va` canonical: bits 63..bits-1 all equal (SDM Vol.1 3.3.7.1)?"""
    if not 0 <= va < 1 << 64:
        return False
    top = va >> (bits - 1)
    return top == 0 or top == (1 << (65 - bits)) - 1


def check_va(mode: PagingMode, va: int) -> None:
    """PvlabError if `va` is not an address of this mode's width (non-canonical is allowed)."""
    limit = 1 << (32 if mode is not PagingMode.FOUR_LEVEL else 64)
    if not isinstance(va, int) or isinstance(va, bool) or not 0 <= va < limit:
        raise PvlabError(
            f"virtual address {va!r} does not fit {mode.value} paging",
            f"give an address from 0 to {limit - 1:#x}",
        )


def split_va(mode: PagingMode, va: int) -> tuple[int, ...]:
    """Table indices, top level first, then the offset in the 4 KiB page.

    `split_va(PAE, 0xC0201123) == (3, 1, 1, 0x123)`.
    """
    check_va(mode, va)
    out = []
    shift = 12 + sum(_INDEX_BITS[mode])
    for nbits in _INDEX_BITS[mode]:
        shift -= nbits
        out.append((va >> shift) & ((1 << nbits) - 1))
    out.append(va & 0xFFF)
    return tuple(out)


def index_shift(mode: PagingMode, level: int) -> int:
    """Bit position of the lowest VA bit indexing a level-`level` table (12, 21/22, 30, 39)."""
    per = 10 if mode is PagingMode.TWO_LEVEL else 9
    return 12 + per * (level - 1)
