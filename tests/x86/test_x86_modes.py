# SPDX-License-Identifier: MIT
"""Paging modes: geometry, VA splitting, canonical addresses."""

from __future__ import annotations

import pytest

from pvlab.errors import PvlabError
from pvlab.x86.modes import (
    PagingMode,
    entries_per_table,
    entry_width,
    is_canonical,
    levels,
    split_va,
)

TWO, PAE, FOUR = PagingMode.TWO_LEVEL, PagingMode.PAE, PagingMode.FOUR_LEVEL


def test_geometry() -> None:
    assert [levels(m) for m in (TWO, PAE, FOUR)] == [2, 3, 4]
    assert [entry_width(m) for m in (TWO, PAE, FOUR)] == [4, 8, 8]
    assert entries_per_table(TWO) == 1024
    assert entries_per_table(PAE, 3) == 4
    assert entries_per_table(PAE, 2) == 512
    assert entries_per_table(FOUR, 4) == 512


def test_split_va() -> None:
    assert split_va(TWO, 0xC0401ABC) == (0x301, 0x001, 0xABC)
    assert split_va(PAE, 0xC0201123) == (3, 1, 1, 0x123)
    assert split_va(FOUR, 0xFFFF800000000000) == (256, 0, 0, 0, 0)
    assert split_va(FOUR, 0x00007FFFFFFFFFFF) == (255, 511, 511, 511, 0xFFF)


def test_split_va_refuses_addresses_wider_than_the_mode() -> None:
    with pytest.raises(PvlabError, match="does not fit"):
        split_va(PAE, 1 << 32)
    with pytest.raises(PvlabError):
        split_va(TWO, -1)


@pytest.mark.parametrize(("va", "ok"), [
    (0, True), (0x00007FFFFFFFFFFF, True), (0xFFFF800000000000, True),
    (0xFFFFFFFFFFFFFFFF, True), (0x0000800000000000, False), (0xFFFF7FFFFFFFFFFF, False),
    (0x8000000000000000, False), (1 << 64, False), (-1, False),
])
def test_is_canonical(va: int, ok: bool) -> None:
    assert is_canonical(va) is ok


def test_parse_names() -> None:
    assert PagingMode.parse("PAE") is PAE
    assert PagingMode.parse("4-level") is FOUR
    assert PagingMode.parse("2_level") is TWO
    with pytest.raises(PvlabError, match="unknown paging mode"):
        PagingMode.parse("5-level")
