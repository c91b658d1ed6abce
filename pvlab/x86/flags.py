# SPDX-License-Identifier: MIT
"""Page-table entry flag bits, entry packing, and Xen's 24-bit "flag word".

Bit positions follow the Intel SDM Vol.3 4.3 (32-bit paging, Tables 4-4 to 4-6),
4.4.2 (PAE paging, Tables 4-8 to 4-11) and 4.5.4 (4-level paging, Tables 4-14 to
4-20). In a 4 KiB-page entry (an L1 entry / PTE) bit 7 is the PAT bit; in a
non-leaf L2/L3 entry it is PS (page size). The flag names here are the ones Xen
spells as `_PAGE_PRESENT`, `_PAGE_RW`, ... without the prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

from pvlab.errors import PvlabError
from pvlab.units import PAGE_SHIFT

P = 1 << 0  #: present
RW = 1 << 1  #: writable
US = 1 << 2  #: user (CPL 3) accessible
PWT = 1 << 3  #: page-level write-through
PCD = 1 << 4  #: page-level cache disable
A = 1 << 5  #: accessed
D = 1 << 6  #: dirty (leaf entries only)
PS = 1 << 7  #: page size in L2/L3 entries; PAT in an L1 entry
PAT = PS  #: the same bit 7 in an L1 entry (SDM Vol.3 4.9.2)
G = 1 << 8  #: global (leaf entries only)
AVAIL0 = 1 << 9  #: ignored by the hardware, free for software
AVAIL1 = 1 << 10
AVAIL2 = 1 << 11
NX = 1 << 63  #: execute disable (XD) when EFER.NXE=1; reserved otherwise
#: Bit 12 of a 2 MiB / 4 MiB / 1 GiB leaf entry is its PAT bit (SDM Vol.3 4.9.2).
PAT_LARGE = 1 << 12

BIT52, BIT53, BIT54, BIT55, BIT56, BIT57, BIT58, BIT59, BIT60, BIT61, BIT62 = (
    1 << n for n in range(52, 63)
)

#: Physical-address bits 12-51 of a PAE / 4-level entry (MAXPHYADDR at most 52).
ADDR_MASK = ((1 << 52) - 1) & ~((1 << PAGE_SHIFT) - 1)
#: Physical-address bits 12-31 of a 32-bit (2-level) entry.
ADDR_MASK_32 = 0xFFFFF000
#: Every bit that is a flag rather than an address bit in a 64-bit entry.
FLAGS_MASK = ((1 << 64) - 1) & ~ADDR_MASK

#: Canonical names, low bit first. `PS` is shown as `PAT` in L1 entries.
FLAG_BITS: dict[str, int] = {
    "P": P, "RW": RW, "US": US, "PWT": PWT, "PCD": PCD, "A": A, "D": D, "PS": PS,
    "G": G, "AVAIL0": AVAIL0, "AVAIL1": AVAIL1, "AVAIL2": AVAIL2,
    **{f"BIT{n}": 1 << n for n in range(52, 63)},
    "NX": NX,
}
#: Other spellings accepted by `parse_flags`.
FLAG_ALIASES: dict[str, int] = {"PAT": PS, "XD": NX, "PRESENT": P, "USER": US}

_SEPARATORS = str.maketrans({"|": " ", ",": " ", "+": " "})


def _flag_value(name: str) -> int:
    key = name.strip().upper()
    if key.startswith("_PAGE_"):
        key = key[len("_PAGE_"):]
    if key in FLAG_BITS:
        return FLAG_BITS[key]
    if key in FLAG_ALIASES:
        return FLAG_ALIASES[key]
    valid = ", ".join([*FLAG_BITS, *FLAG_ALIASES])
    raise PvlabError(f"unknown page-table flag {name.strip()!r}", f"use one of {valid}")


def parse_flags(names: Iterable[str] | str | int) -> int:
    """Flag bits from names: `["P", "RW"]`, `"P|RW"`, `"p, rw"` (case-insensitive).

    An int is returned unchanged (after checking it is a flag value). Unknown names
    raise `PvlabError` naming the flag and listing the valid ones.
    """
    if isinstance(names, bool):
        raise PvlabError(f"flags {names!r} are not flag names", 'write e.g. "P|RW"')
    if isinstance(names, int):
        if names < 0 or names & ADDR_MASK or names >= 1 << 64:
            raise PvlabError(
                f"flags value {names:#x} has bits outside the flag bits 0-11 and 52-63",
                "give only flag bits, or use names such as P|RW",
            )
        return names
    if isinstance(names, str):
        parts = names.translate(_SEPARATORS).split()
    else:
        parts = []
        for item in names:
            if not isinstance(item, str):
                raise PvlabError(f"flag {item!r} is not a name", 'write e.g. ["P", "RW"]')
            parts.extend(item.translate(_SEPARATORS).split())
    value = 0
    for part in parts:
        value |= _flag_value(part)
    return value


def flag_names(value: int, level: int | None = None) -> list[str]:
    """Names of the flag bits set in `value`, low bit first.

    Bit 7 is shown as `PAT` for an L1 entry (level 1) and as `PS` otherwise
    (SDM Vol.3 Table 4-19 vs 4-18). Address bits 12-51 are not flags and are
    not listed (bit 12 of a large-page entry is its PAT bit: see `PAT_LARGE`).
    """
    names = []
    for name, bit in FLAG_BITS.items():
        if value & bit:
            names.append("PAT" if bit == PS and level == 1 else name)
    return names


def make_entry(mfn: int, flags: Iterable[str] | str | int = 0, *, width: int = 8) -> int:
    """A page-table entry pointing at frame `mfn` with `flags`.

    `width` is 8 for PAE / 4-level entries (frame number below 2**40) and 4 for
    32-bit 2-level entries (frame number below 2**20, flags in bits 0-11 only).
    """
    value = parse_flags(flags)
    if width not in (4, 8):
        raise PvlabError(f"entry width {width} is not 4 or 8 bytes", "use width=4 or width=8")
    limit = 1 << (20 if width == 4 else 40)
    if not 0 <= mfn < limit:
        raise PvlabError(
            f"frame {mfn:#x} does not fit a {width}-byte page-table entry",
            f"use a frame number below {limit:#x}",
        )
    if width == 4 and value >> 12:
        raise PvlabError(
            f"flags {value:#x} do not fit a 4-byte (32-bit paging) entry",
            "use only flag bits 0-11 (no NX or BIT52-62) in 2-level entries",
        )
    return (mfn << PAGE_SHIFT) | value


def entry_mfn(entry: int) -> int:
    """The frame number in bits 12-51 of an entry."""
    return (entry & ADDR_MASK) >> PAGE_SHIFT


def entry_flags(entry: int) -> int:
    """The flag bits (0-11 and 52-63) of an entry."""
    return entry & FLAGS_MASK


def get_pte_flags(pte: int) -> int:
    """Xen's 24-bit flag word: bits 0-11 stay, bits 52-63 move to bits 12-23."""
    return (pte & 0xFFF) | ((pte >> 40) & 0xFFF000)


def put_pte_flags(flags: int) -> int:
    """Inverse of `get_pte_flags`: a 24-bit flag word back to entry bit positions."""
    return (flags & 0xFFF) | ((flags & 0xFFF000) << 40)
