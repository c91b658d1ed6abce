# SPDX-License-Identifier: MIT
"""Flag bits, names, entry packing and Xen's 24-bit flag word."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvlab.errors import PvlabError
from pvlab.x86 import flags as f


def test_bit_positions_match_the_sdm() -> None:
    assert (f.P, f.RW, f.US, f.PWT, f.PCD, f.A, f.D, f.PS, f.G) == (
        1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0x100)
    assert (f.AVAIL0, f.AVAIL1, f.AVAIL2) == (0x200, 0x400, 0x800)
    assert f.NX == 0x8000000000000000
    assert f.BIT52 == 1 << 52 and f.BIT62 == 1 << 62
    assert f.ADDR_MASK == 0x000FFFFFFFFFF000


@pytest.mark.parametrize("names", ["P|RW", "p|rw", ["P", "RW"], ["p", "Rw"], "P, RW", "P RW"])
def test_parse_flags_accepts_lists_and_strings(names: object) -> None:
    assert f.parse_flags(names) == 3  # type: ignore[arg-type]


def test_parse_flags_all_names_and_aliases() -> None:
    assert f.parse_flags("NX|BIT52|G|PS|D|A|PCD|PWT|US") == (
        f.NX | f.BIT52 | f.G | f.PS | f.D | f.A | f.PCD | f.PWT | f.US)
    assert f.parse_flags("PAT") == f.PS
    assert f.parse_flags("XD") == f.NX
    assert f.parse_flags("_PAGE_PRESENT|_PAGE_RW") == 3
    assert f.parse_flags("") == 0
    assert f.parse_flags(0x107) == 0x107


def test_parse_flags_unknown_name_names_it_and_lists_valid_ones() -> None:
    with pytest.raises(PvlabError) as err:
        f.parse_flags("P|WRITE")
    msg = str(err.value)
    assert "'WRITE'" in msg
    for valid in ("P", "RW", "US", "NX", "AVAIL0", "BIT52"):
        assert valid in msg


def test_parse_flags_rejects_address_bits_in_an_int() -> None:
    with pytest.raises(PvlabError):
        f.parse_flags(0x1003)


def test_flag_names_shows_pat_for_l1_and_ps_elsewhere() -> None:
    value = f.P | f.RW | f.PS | f.NX | f.BIT55
    assert f.flag_names(value) == ["P", "RW", "PS", "BIT55", "NX"]
    assert f.flag_names(value, level=2) == ["P", "RW", "PS", "BIT55", "NX"]
    assert f.flag_names(value, level=1) == ["P", "RW", "PAT", "BIT55", "NX"]
    assert f.flag_names(0x123456000) == []


def test_make_entry_and_accessors() -> None:
    e = f.make_entry(0x123456, "P|RW|NX")
    assert e == 0x8000000123456003
    assert f.entry_mfn(e) == 0x123456
    assert f.entry_flags(e) == f.P | f.RW | f.NX
    assert f.make_entry(0x12345, ["P"], width=4) == 0x12345001


def test_make_entry_refuses_what_does_not_fit() -> None:
    with pytest.raises(PvlabError, match="does not fit"):
        f.make_entry(1 << 40, "P")
    with pytest.raises(PvlabError, match="does not fit"):
        f.make_entry(1 << 20, "P", width=4)
    with pytest.raises(PvlabError, match="4-byte"):
        f.make_entry(1, "P|NX", width=4)


def test_xen_flag_word_moves_bits_52_to_63_down_to_12_to_23() -> None:
    # Xen: flag bits 0-11 are PTE bits 0-11; flag bits 12-23 are PTE bits 52-63.
    assert f.get_pte_flags(f.NX | 0x123456000 | f.P) == 0x800001
    assert f.get_pte_flags(f.BIT52) == 0x1000  # _PAGE_GUEST_KERNEL
    assert f.get_pte_flags(0x7FF << 52) == 0x7FF000  # _PAGE_AVAIL_HIGH
    assert f.put_pte_flags(0x800001) == f.NX | f.P


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_flag_word_round_trip(pte: int) -> None:
    assert f.put_pte_flags(f.get_pte_flags(pte)) == f.entry_flags(pte)
    assert f.get_pte_flags(f.put_pte_flags(f.get_pte_flags(pte))) == f.get_pte_flags(pte)
