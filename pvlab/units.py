# SPDX-License-Identifier: MIT
"""Sizes and frame numbers: `parse_size("4GiB")`, `format_size`, and the 4 GiB line."""

from __future__ import annotations

import re

from pvlab.errors import PvlabError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
#: PFN_DOWN(GB(4)): the first machine frame at or above 4 GiB.
MFN_4GIB = (4 * GiB) >> PAGE_SHIFT

_UNITS = {"": 1, "B": 1, "K": KiB, "KIB": KiB, "M": MiB, "MIB": MiB,
          "G": GiB, "GIB": GiB, "T": TiB, "TIB": TiB}
_SIZE_RE = re.compile(r"^\s*(0x[0-9a-fA-F]+|\d+)\s*([A-Za-z]*)\s*$")


def parse_size(value: int | str, *, what: str = "size") -> int:
    """Bytes from `4GiB`, `512MiB`, `0x100000000` or an int; PvlabError otherwise."""
    if isinstance(value, bool):
        raise PvlabError(f"{what} {value!r} is not a size", "write e.g. 4GiB or 512MiB")
    if isinstance(value, int):
        if value < 0:
            raise PvlabError(f"{what} {value} is negative", "give a size of 0 or more")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = m.group(2).upper()
            if unit in _UNITS:
                return int(m.group(1), 0) * _UNITS[unit]
    raise PvlabError(f"{what} {value!r} is not a size", "write e.g. 4GiB, 512MiB or 0x100000000")


def format_size(nbytes: int) -> str:
    """`4GiB`, `512MiB`, `12KiB`, or bytes: the largest unit that divides exactly."""
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if nbytes and nbytes % size == 0:
            return f"{nbytes // size}{unit}"
    return f"{nbytes}B"
