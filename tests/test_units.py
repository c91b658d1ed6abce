# SPDX-License-Identifier: MIT
"""pvlab.units: sizes and the 4 GiB frame line."""

from __future__ import annotations

import pytest

from pvlab.errors import PvlabError
from pvlab.units import MFN_4GIB, GiB, TiB, format_size, parse_size


@pytest.mark.parametrize(("text", "value"), [
    ("4GiB", 4 * GiB), ("4G", 4 * GiB), ("512MiB", 512 << 20), ("12KiB", 12 << 10),
    ("1TiB", TiB), ("0x100000000", 4 * GiB), (" 8 gib ", 8 * GiB), (4096, 4096), ("7", 7),
])
def test_parse_size(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["4 GB/s", "lots", "-1", -5, True, None, 1.5, "4XiB"])
def test_parse_size_rejects_with_a_fix(bad: object) -> None:
    with pytest.raises(PvlabError) as ei:
        parse_size(bad, what="host memory")  # type: ignore[arg-type]
    assert ei.value.fix


@pytest.mark.parametrize(("n", "text"), [(4 * GiB, "4GiB"), (TiB, "1TiB"), (3 << 20, "3MiB"),
                                         (4096, "4KiB"), (100, "100B"), (0, "0B")])
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_mfn_4gib() -> None:
    assert MFN_4GIB == 0x100000
