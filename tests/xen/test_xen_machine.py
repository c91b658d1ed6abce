# SPDX-License-Identifier: MIT
"""Machine memory and the frame allocator (issue 2 item 2; reference §5.5)."""

from __future__ import annotations

import pytest

from pvlab import Xen
from pvlab.errors import PvlabError
from pvlab.units import MFN_4GIB
from pvlab.xen import Machine
from pvlab.xen.machine import AllocError
from pvlab.xen.page_info import DOMID_IO, PGC_allocated


def test_below_and_above_limits() -> None:
    m = Machine("8GiB")
    lo = m.alloc(1, below="4GiB")
    hi = m.alloc(1, above="4GiB")
    assert lo < MFN_4GIB <= hi < m.nr_frames
    assert m.page(lo).count_info == PGC_allocated | 1 and m.page(lo).owner == 1


def test_first_mib_is_dom_io_and_never_allocated() -> None:
    m = Machine("64MiB")
    assert m.owner(1) == DOMID_IO
    assert m.alloc(1) >= 0x100
    with pytest.raises(AllocError):
        m.alloc(1, mfn=1)


def test_exact_mfn_and_taken_mfn() -> None:
    m = Machine("8GiB")
    assert m.alloc(1, mfn=0x123456) == 0x123456
    with pytest.raises(AllocError, match="not free"):
        m.alloc(2, mfn=0x123456)
    with pytest.raises(AllocError, match="beyond"):
        m.alloc(1, mfn=m.nr_frames)


def test_enomem_message_and_nothing_changed() -> None:
    m = Machine("64MiB")
    before = len(m._pages)
    with pytest.raises(AllocError) as ei:
        m.alloc(1, above="4GiB")
    assert "no free frame at or above 4GiB" in str(ei.value)
    assert ei.value.fix and "host_memory" in ei.value.fix
    assert isinstance(ei.value, PvlabError) and ei.value.errno == 12
    assert len(m._pages) == before


def test_exhaustion_below_a_limit() -> None:
    m = Machine("64MiB")
    n = 0
    while True:
        try:
            m.alloc(1, below="2MiB")
        except AllocError:
            break
        n += 1
    assert n == (2 << 20) // 4096 - 0x100  # every frame of 1-2 MiB, none of the first MiB


def test_free_returns_the_frame_and_refuses_busy_frames() -> None:
    g = Xen("4.19", "64MiB").create_domain(64)
    f = g.alloc_frame()
    assert g.pin(f, 1).ok
    with pytest.raises(PvlabError, match="still in use"):
        g.free_frame(f)
    assert g.unpin(f).ok
    g.free_frame(f)
    assert g.xen.machine.owner(f) is None
    assert g.alloc_frame(mfn=f) == f


def test_one_tib_host_is_cheap() -> None:
    xen = Xen("4.19", "1TiB")
    m = xen.machine
    assert m.nr_frames == 1 << 28
    g = xen.create_domain(32)
    top = g.alloc_frame(above="1020GiB")
    low = g.alloc_frame(below="4GiB")
    g.write_entry(top, 3, low, "P")
    assert g.pin(top, 3).ok
    assert len(m._pages) < 100 and len(m._frames) < 10


def test_host_memory_range_checked() -> None:
    with pytest.raises(PvlabError):
        Machine("1MiB")
    with pytest.raises(PvlabError):
        Machine("32TiB")
    with pytest.raises(PvlabError):
        Machine("lots")


def test_populate_physmap_enomem_outcome() -> None:
    xen = Xen("4.19", "64MiB")
    g = xen.create_domain(32)
    out = xen.populate_physmap(g.domain, above="4GiB")
    assert (out.rc, out.errno) == (-12, "ENOMEM")
    assert xen.populate_physmap(g.domain, below="4GiB").ok


@pytest.mark.parametrize("placement", ["low-first", "high-first", "random"])
def test_placement_respects_limits(placement: str) -> None:
    m = Machine("8GiB", placement=placement, seed=3)
    for _ in range(20):
        assert m.alloc(1, below="4GiB") < MFN_4GIB
        assert m.alloc(1, above="4GiB") >= MFN_4GIB
