# SPDX-License-Identifier: MIT
"""Bottom-up against top-down pinning (Andrew Cooper, xen-devel April 2023)."""

from __future__ import annotations

from pvlab.toolstack import TableSet, compare_pinning_orders
from pvlab.trace import Counters


def test_same_final_state_pv32_and_pinned_counts() -> None:
    c = compare_pinning_orders(TableSet(bitness=32, l2s=2, l1s_per_l2=2, pages_per_l1=4))
    assert c.bottom_up.ok and c.top_down.ok
    assert c.same_final_state
    # 1 L3, 2 L2s (one in slot 3), 4 L1s, 16 pages: each table validated exactly once.
    assert c.costs["top_down"] == Counters(hypercalls=2, type_acquisitions=24, validations=7,
                                           entries_checked=22, max_depth=5)
    assert c.costs["bottom_up"] == Counters(hypercalls=7, type_acquisitions=29, validations=7,
                                            entries_checked=22, max_depth=4)
    assert c.differences() == {"hypercalls": (7, 2), "type_acquisitions": (29, 24),
                               "max_depth": (4, 5)}
    # bottom-up leaves its L1 and L2 pins; the slot-3 L2 cannot be pinned first
    assert c.pin_counts() == {"bottom_up": (6, 2), "top_down": (1, 2)}


def test_same_final_state_pv64() -> None:
    c = compare_pinning_orders(TableSet(bitness=64, l2s=3, l1s_per_l2=1, pages_per_l1=2))
    assert c.same_final_state
    d = c.differences()
    assert d["hypercalls"][0] > d["hypercalls"][1]
    assert d["max_depth"][0] < d["max_depth"][1]
    assert c.costs["bottom_up"].validations == c.costs["top_down"].validations == 8
