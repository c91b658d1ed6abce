# SPDX-License-Identifier: MIT
"""CR3 encodings: Xen's 32-bit rotate, 64-bit shift, native PAE limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvlab.errors import PvlabError
from pvlab.x86.cr3 import (
    cr3_base,
    pae_cr3,
    xen_cr3_to_pfn_x86_32,
    xen_cr3_to_pfn_x86_64,
    xen_pfn_to_cr3_x86_32,
    xen_pfn_to_cr3_x86_64,
)
from pvlab.x86.modes import PagingMode


@pytest.mark.parametrize(("pfn", "cr3"), [
    (0x123456, 0x23456001),   # MFN above 4 GiB: bits 20+ fold into CR3 bits 0-11
    (0x12345, 0x12345000),    # below 4 GiB: an ordinary CR3
    (0xFFFFF, 0xFFFFF000),
    (0x100000, 0x00000001),   # exactly 4 GiB
    (0xFFFFFFFF, 0xFFFFFFFF),
])
def test_x86_32_rotate_examples(pfn: int, cr3: int) -> None:
    assert xen_pfn_to_cr3_x86_32(pfn) == cr3
    assert xen_cr3_to_pfn_x86_32(cr3) == pfn


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_x86_32_round_trip(pfn: int) -> None:
    cr3 = xen_pfn_to_cr3_x86_32(pfn)
    assert 0 <= cr3 < 2**32
    assert xen_cr3_to_pfn_x86_32(cr3) == pfn


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_x86_32_inverse_on_cr3_side(cr3: int) -> None:
    assert xen_pfn_to_cr3_x86_32(xen_cr3_to_pfn_x86_32(cr3)) == cr3


def test_x86_32_refuses_wide_frames() -> None:
    with pytest.raises(PvlabError, match="frame number"):
        xen_pfn_to_cr3_x86_32(2**32)
    with pytest.raises(PvlabError):
        xen_cr3_to_pfn_x86_32(2**32)


@given(st.integers(min_value=0, max_value=2**40 - 1))
def test_x86_64_round_trip(pfn: int) -> None:
    assert xen_pfn_to_cr3_x86_64(pfn) == pfn << 12
    assert xen_cr3_to_pfn_x86_64(xen_pfn_to_cr3_x86_64(pfn)) == pfn


def test_pae_cr3_cannot_name_a_pdpt_above_4gib() -> None:
    assert pae_cr3(0xFFFFF000) == 0xFFFFF000
    assert pae_cr3(0x1FE0) == 0x1FE0
    with pytest.raises(PvlabError) as err:
        pae_cr3(0x100000000)
    assert "4 GiB" in str(err.value) and "pae_extended_cr3" in str(err.value)
    with pytest.raises(PvlabError, match="32-byte"):
        pae_cr3(0x1010)


def test_cr3_base() -> None:
    assert cr3_base(PagingMode.TWO_LEVEL, 0x12345018) == 0x12345000
    assert cr3_base(PagingMode.PAE, 0x12345FF8) == 0x12345FE0
    assert cr3_base(PagingMode.FOUR_LEVEL, 0x8000123456789018) == 0x123456789000
