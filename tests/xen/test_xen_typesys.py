# SPDX-License-Identifier: MIT
"""Type-system basics, both bitnesses (reference §9 B, S14-S26; §1.3-§1.6, §2.3, §2.6)."""

from __future__ import annotations

import pytest
from xenkit import BOTH_BITNESS, guest, rw_mappable, st

from pvlab.xen.invariants import audit

both = pytest.mark.parametrize("bitness", BOTH_BITNESS)


@both
def test_s14_l1_self_map_rw_is_ebusy_ro_is_fine(bitness: int) -> None:
    g = guest(bitness)
    x = g.alloc_frame()
    g.write_entry(x, 0, x, "P|RW|A|D")
    out = g.pin(x, 1)
    assert out.errno == "EBUSY"
    assert out.failure.check == "l1_writable_pagetable"
    assert st(g, x) == ("none", 0, False, False)
    g.write_entry(x, 0, x, "P|A")
    assert g.pin(x, 1).ok


@both
def test_s15_pin_bookkeeping(bitness: int) -> None:
    g = guest(bitness)
    x = g.alloc_frame()
    assert g.pin(x, 1).ok
    again = g.pin(x, 1)
    assert again.errno == "EINVAL" and again.failure.check == "already_pinned"
    assert st(g, x) == ("l1", 1, True, True) and g.page(x).count == 2
    assert g.unpin(x).ok
    un = g.unpin(x)
    assert un.errno == "EINVAL" and un.failure.check == "not_pinned"
    assert g.page(x).count == 1


@both
def test_s16_type_conflict_is_einval(bitness: int) -> None:
    g = guest(bitness)
    x = g.alloc_frame()
    assert g.pin(x, 1).ok
    out = g.pin(x, 2)
    assert out.errno == "EINVAL" and out.failure.check == "type_conflict"
    assert st(g, x) == ("l1", 1, True, True)


@both
def test_s17_mapping_a_pinned_table_writable(bitness: int) -> None:
    g = guest(bitness)
    x, l1 = g.alloc_frame(), g.alloc_frame()
    assert g.pin(x, 2).ok
    assert g.pin(l1, 1).ok
    rw = g.mmu_update(l1, 0, x, "P|RW")
    assert rw.errno == "EBUSY"  # the conflict is found inside an L1 entry
    assert g.mmu_update(l1, 0, x, "P").ok


@both
def test_s18_pin_of_a_writable_mapped_frame_is_einval(bitness: int) -> None:
    g = guest(bitness)
    y, l1 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l1, 0, y, "P|RW")
    assert g.pin(l1, 1).ok
    assert st(g, y) == ("writable", 1, True, False)
    out = g.pin(y, 1)
    assert out.errno == "EINVAL"  # the same conflict found when typing the page itself
    assert g.mmu_update(l1, 0, value=0).ok
    assert g.pin(y, 1).ok


@both
def test_s19_unpin_releases_only_the_last_reference(bitness: int) -> None:
    g = guest(bitness)
    l2, l1 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.pin(l2, 2).ok and g.pin(l1, 1).ok
    assert g.page(l1).type_count == 2
    assert g.unpin(l2).ok
    assert not rw_mappable(g, l1)
    assert g.unpin(l1).ok
    assert rw_mappable(g, l1)


def test_s19_cascaded_demotion_64bit_chain() -> None:
    g = guest(64)
    l4, l3, l2, l1 = (g.alloc_frame() for _ in range(4))
    g.write_entry(l4, 0, l3, "P|RW")
    g.write_entry(l3, 0, l2, "P|RW")
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.pin(l4, 4).ok and g.pin(l3, 3).ok
    assert [g.page(f).type_count for f in (l4, l3, l2, l1)] == [1, 2, 1, 1]
    assert g.unpin(l4).ok
    assert not rw_mappable(g, l2)
    assert g.unpin(l3).ok
    assert [g.page(f).type_count for f in (l4, l3, l2, l1)] == [0, 0, 0, 0]
    assert not any(g.page(f).validated for f in (l4, l3, l2, l1))
    assert rw_mappable(g, l2) and rw_mappable(g, l1)
    assert audit(g.xen) == []


def test_s20_top_down_promotion_pv32() -> None:
    g = guest(32)
    l3, b, a = g.alloc_frame(), g.alloc_frame(), g.alloc_frame()
    g.write_entry(l3, 3, b, "P")
    g.write_entry(b, 0, a, "P|RW")
    out = g.pin(l3, 3)
    assert out.ok and out.counters.validations == 3 and out.counters.max_depth >= 2
    assert st(g, a) == ("l1", 1, True, False) and st(g, b) == ("l2", 1, True, False)
    assert g.pin(a, 1).ok and st(g, a) == ("l1", 2, True, True)
    assert g.unpin(l3).ok
    assert st(g, l3)[1:] == (0, False, False) and st(g, b)[1:] == (0, False, False)
    assert st(g, a) == ("l1", 1, True, True)


@both
def test_s21_errors_from_depth_propagate_unchanged(bitness: int) -> None:
    g = guest(bitness)
    b, a = g.alloc_frame(), g.alloc_frame()
    g.write_entry(b, 0, a, "P|RW")
    g.write_entry(a, 0, a, "P|RW")
    out = g.pin(b, 2)
    assert out.errno == "EBUSY"
    assert g.page(a).type_count == 0 and g.page(b).type_count == 0
    assert rw_mappable(g, b)


@both
@pytest.mark.parametrize("flag", ["PS", "PWT", "PCD", "G"])
def test_s22_l2_flags_refused(bitness: int, flag: str) -> None:
    g = guest(bitness)
    l2, l1 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l2, 0, l1, f"P|{flag}")
    out = g.pin(l2, 2)
    assert out.errno == "EINVAL" and out.failure.check == "l2_flags"


@both
def test_s22_setting_ps_in_a_live_l2_is_einval(bitness: int) -> None:
    g = guest(bitness)
    l2, l1 = g.alloc_frame(), g.alloc_frame()
    assert g.pin(l2, 2).ok
    assert g.mmu_update(l2, 0, l1, "P|PS").errno == "EINVAL"
    assert g.mmu_update(l2, 0, l1, "P").ok


def test_s22_64bit_l3_1gib_page_refused() -> None:
    g = guest(64)
    l3, l2 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l3, 0, l2, "P|PS")
    assert g.pin(l3, 3).errno == "EINVAL"


@both
def test_s23_l2_self_map_ro_ok_rw_einval(bitness: int) -> None:
    g = guest(bitness)
    x = g.alloc_frame()
    g.write_entry(x, 0, x, "P")
    assert g.pin(x, 2).ok
    assert g.page(x).type_count == 1  # a self-map takes no reference
    y = g.alloc_frame()
    g.write_entry(y, 0, y, "P|RW")
    out = g.pin(y, 2)
    assert out.errno == "EINVAL" and out.failure.check == "linear_rw"


def test_s23_64bit_l4_self_map_and_linear_l3() -> None:
    g = guest(64)
    x, y = g.alloc_frame(), g.alloc_frame()
    g.write_entry(x, 1, x, "P")
    assert g.pin(x, 4).ok
    g.write_entry(y, 1, y, "P|RW")
    assert g.pin(y, 4).errno == "EINVAL"
    a, j = g.alloc_frame(), g.alloc_frame()
    assert g.pin(a, 3).ok
    g.write_entry(j, 0, a, "P")
    assert g.pin(j, 3).ok
    assert g.page(a).type_count == 2
    assert audit(g.xen) == []


def test_linear_limited_to_one_level() -> None:
    """XSA-240: a table used linearly may not itself contain linear entries."""
    g = guest(64)
    a, b, c = g.alloc_frame(), g.alloc_frame(), g.alloc_frame()
    assert g.pin(a, 2).ok
    g.write_entry(b, 0, a, "P")
    assert g.pin(b, 2).ok  # b contains a linear entry
    g.write_entry(c, 0, b, "P")
    out = g.pin(c, 2)  # c -> b, but b contains linear entries
    assert out.errno == "EINVAL" and out.failure.check == "linear_one_level"


def test_linear_target_must_be_validated() -> None:
    g = guest(64)
    a, b = g.alloc_frame(), g.alloc_frame()
    g.write_entry(b, 0, a, "P")
    assert g.pin(b, 2).ok  # a unvalidated: it simply becomes an L1
    assert st(g, a) == ("l1", 1, True, False)


@both
def test_s24_non_owned_targets(bitness: int) -> None:
    g = guest(bitness)
    other = g.xen.create_domain(64)
    l2, l1 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l2, 0, 1, "P")  # MFN 1 belongs to dom_io
    assert g.pin(l2, 2).errno == "EINVAL"
    assert g.machphys_update(1, 5).errno == "EINVAL"
    assert g.machphys_update(l1, 5).ok
    foreign = other.alloc_frame()
    g.write_entry(l1, 0, foreign, "P")
    out = g.pin(l1, 1)
    assert out.errno == "EBUSY" and out.failure.check == "l1_foreign"
    g.write_entry(l1, 0, 1, "P")
    out = g.pin(l1, 1)
    assert out.errno == "EPERM" and out.failure.check == "l1_mmio"
    assert g.pin(foreign, 1).errno == "EINVAL"  # pin target not owned


@both
def test_s25_plain_write_to_a_non_pagetable(bitness: int) -> None:
    g = guest(bitness)
    f = g.alloc_frame()
    assert g.mmu_update(f, 7, value=0xDEAD_BEEF_0FFF).ok
    assert g.read_entry(f, 7) == 0xDEAD_BEEF_0FFF  # written raw, no checks
    assert g.page(f).type_count == 0


@both
@pytest.mark.parametrize(("flags", "result"), [
    ("P|G", "ok"), ("P|BIT52", "ok"), ("P|BIT62", "EINVAL"),
    ("P|PWT", "EINVAL"), ("P|PCD", "EINVAL"), ("P|PAT", "EINVAL"),
])
def test_s26_l1_flags_domu(bitness: int, flags: str, result: str) -> None:
    g = guest(bitness)
    l1, data = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l1, 0, data, flags)
    assert g.pin(l1, 1).result == result


def test_s26_cache_bits_allowed_for_privileged() -> None:
    g = guest(64, privileged=True)
    l1, data = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l1, 0, data, "P|PWT|PCD|PAT")
    assert g.pin(l1, 1).ok


def test_failed_l1_promotion_unwinds_earlier_entries() -> None:
    g = guest(64)
    l1, d1, d2 = g.alloc_frame(), g.alloc_frame(), g.alloc_frame()
    g.write_entry(l1, 0, d1, "P|RW")
    g.write_entry(l1, 1, d2, "P")
    g.write_entry(l1, 2, l1, "P|RW")
    assert g.pin(l1, 1).errno == "EBUSY"
    assert [g.page(f).count for f in (l1, d1, d2)] == [1, 1, 1]
    assert g.page(d1).type_count == 0
    assert audit(g.xen) == []


def test_64bit_l1_entries_are_adjusted() -> None:
    """§2.2 adjust_guest_l1e: kernel pages get _PAGE_GUEST_KERNEL|US, user pages G|US."""
    g = guest(64)
    l1, k, u = g.alloc_frame(), g.alloc_frame(), g.alloc_frame()
    g.write_entry(l1, 0, k, "P")
    g.write_entry(l1, 1, u, "P|US")
    assert g.pin(l1, 1).ok
    assert g.read_entry(l1, 0) == (k << 12) | 0x1 | 0x4 | (1 << 52)
    assert g.read_entry(l1, 1) == (u << 12) | 0x1 | 0x4 | 0x100


def test_raw_write_into_live_table_is_refused() -> None:
    from pvlab.errors import PvlabError

    g = guest(64)
    x = g.alloc_frame()
    assert g.pin(x, 1).ok
    with pytest.raises(PvlabError, match="mmu_update"):
        g.write_entry(x, 0, value=1)
