# SPDX-License-Identifier: MIT
"""The numpy machine store: sparse rows, views, bulk allocation equal to frame-by-frame."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pvlab.xen import Machine
from pvlab.xen.machine import AllocError
from pvlab.xen.page_info import PageInfo, PGC_allocated


def test_sixteen_tib_host_costs_nothing_until_touched() -> None:
    m = Machine("16TiB")
    assert m.nbytes < 2 << 20
    top = m.nr_frames - 10
    m.write_entry(top, 5, 0x1234)
    m.page(top).count_info = 7
    assert m.read_entry(top, 5) == 0x1234 and m.page(top).count_info == 7
    assert m.nbytes < 4 << 20
    assert list(m._frames) == [top] and top in m._pages


def test_page_info_is_a_view_and_detached_records_work() -> None:
    m = Machine("64MiB")
    f = m.alloc(3)
    a, b = m.page(f), m.page(f)
    a.type_info = 5
    assert b.type_info == 5 and a == b
    lone = PageInfo(1, 2, 3, 4, 5)
    lone.count_info += 1
    assert (lone.owner, lone.count_info, lone.type_info, lone.linear_pt_count) == (2, 4, 4, 5)
    assert PageInfo(9).owner is None


def test_contents_rows_and_widths() -> None:
    m = Machine("64MiB")
    m.write_entry(0x200, 1, 0xAABBCCDD, width=4)
    m.write_entry(0x200, 1, 0x11223344_55667788)
    assert m.read_entry(0x200, 2, width=4) == 0x55667788
    assert m.read_u32(0x200000 + 12) == 0x11223344
    assert dict(m.entries(0x200)) == {0: 0xAABBCCDD << 32, 1: 0x11223344_55667788}
    m.clear_frame(0x200)
    assert m.read_entry(0x200, 1) == 0 and len(m._frames) == 0
    rows = np.arange(512, dtype=np.uint64)
    m.write_rows([0x300, 0x301], np.stack([rows, rows * 2]))
    assert m.read_entry(0x301, 7) == 14 and m.row(0x300)[511] == 511


def test_deepcopy_is_independent() -> None:
    m = Machine("64MiB")
    f = m.alloc(1)
    m.write_entry(f, 0, 99)
    m2 = copy.deepcopy(m)
    m2.write_entry(f, 0, 100)
    m2.page(f).count_info = 5
    g = m2.alloc(2)
    assert m.read_entry(f, 0) == 99 and m.page(f).count_info == PGC_allocated | 1
    assert m.owner(g) is None and m2.owner(g) == 2


def test_m2p_mapping() -> None:
    m = Machine("64MiB")
    f = m.alloc(1)
    m.m2p[f] = 7
    assert m.m2p[f] == 7 and f in m.m2p and len(m.m2p) == 1 and list(m.m2p) == [f]
    m.m2p.set_many(np.array([f]), np.array([8]))
    assert m.m2p.get(f) == 8
    m.free(f)
    assert f not in m.m2p and m.m2p.get(f) is None


@pytest.mark.parametrize("placement", ["low-first", "high-first"])
@pytest.mark.parametrize("limits", [{}, {"below": "4GiB"}, {"above": "4GiB"}])
def test_alloc_many_equals_one_by_one(placement: str, limits: dict[str, str]) -> None:
    a, b = Machine("8GiB", placement=placement), Machine("8GiB", placement=placement)
    for m in (a, b):  # some frames taken and freed first, so the scan has holes
        taken = [m.alloc(9, **limits) for _ in range(50)]  # type: ignore[arg-type]
        for f in taken[::3]:
            m.free(f)
    n = 5000 if not limits else 400  # one by one with a limit is a quadratic scan
    one = [a.alloc(1, **limits) for _ in range(n)]  # type: ignore[arg-type]
    many = b.alloc_many(1, n, **limits)  # type: ignore[arg-type]
    assert many.tolist() == one
    assert a.alloc(2) == b.alloc(2)
    assert a.allocated(1) == b.allocated(1)


def test_alloc_many_random_and_enomem() -> None:
    m = Machine("8GiB", placement="random", seed=4)
    got = m.alloc_many(1, 3000, above="4GiB")
    assert len(set(got.tolist())) == 3000 and got.min() >= 0x100000
    assert all(m.owner(int(f)) == 1 for f in got[:50])
    small = Machine("64MiB")
    before = len(small._pages)
    with pytest.raises(AllocError):
        small.alloc_many(1, 1 << 20)
    assert len(small._pages) == before
