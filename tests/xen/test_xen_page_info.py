# SPDX-License-Identifier: MIT
"""`count_info`'s layout as Xen 4.17's x86 asm/mm.h defines it (the builds pvlab verify uses)."""

from pvlab.xen import page_info as pg


def test_general_count_stops_below_pgc_extra() -> None:
    # PGC_extra is bit 57 (PG_shift(7)) and PGC_count_width is PG_shift(7): bit 56 counts,
    # bit 57 does not.
    assert pg.PGC_count_mask & (1 << 56)
    assert not pg.PGC_count_mask & (1 << 57)
    assert pg.PGC_count_mask & pg.PGC_allocated == 0
    assert pg.PGC_count_mask & pg.PGC_xen_heap == 0


def test_a_logged_caf_reads_as_xen_prints_it() -> None:
    # "caf=8000000000000002" in Xen's log: allocated, two general references.
    caf = 0x8000000000000002
    assert caf & pg.PGC_allocated
    assert caf & pg.PGC_count_mask == 2
