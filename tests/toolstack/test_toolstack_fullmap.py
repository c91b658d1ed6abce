# SPDX-License-Identifier: MIT
"""Whole guests mapped by 4 KiB pages, pinned with the bulk engine and with the reference."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from pvlab import Guest, Xen
from pvlab.toolstack.fullmap import map_whole_guest
from pvlab.xen import bulk
from pvlab.xen.bulk import expand_events


def _state(xen: Xen) -> tuple[object, ...]:
    s, c = xen.machine.store, xen.machine.contents
    live = s.row_mfn >= 0
    order = s.row_mfn[live].argsort()
    cols = tuple(getattr(s, name)[live][order].tolist()
                 for name in ("row_mfn", "owner", "count_info", "type_info", "linear_pt_count"))
    clive = c.row_mfn >= 0
    corder = c.row_mfn[clive].argsort()
    return cols + (c.row_mfn[clive][corder].tolist(), c.data[clive][corder].tobytes())


@settings(max_examples=8, deadline=None)
@given(bitness=st.sampled_from([32, 64]), pages=st.integers(1, 20_000),
       ro=st.sampled_from([0, 3, 511]))
def test_whole_guest_pinned_both_ways(bitness: int, pages: int, ro: int) -> None:
    xen = Xen("4.19", "64GiB")
    g = xen.create_domain(bitness)
    mg = map_whole_guest(xen, g, pages * 4096, read_only_every=ro)
    assert len(mg.l1s) == -(-pages // 512)
    xen2 = copy.deepcopy(xen)
    g2 = Guest(xen2, xen2.domains[g.domid])
    with bulk.bulk_path():
        fast = g.pin(mg.top, mg.level)
    with bulk.reference_path():
        ref = g2.pin(mg.top, mg.level)
    assert fast.ok and ref.ok
    assert expand_events(fast.events) == ref.events
    assert fast.counters == ref.counters
    assert _state(xen) == _state(xen2)
    pi = g.page(int(mg.data[-1]))
    assert pi.count == 2 and pi.type_count == (0 if ro and (pages - 1) % ro == 0 else 1)
