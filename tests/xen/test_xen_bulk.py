# SPDX-License-Identifier: MIT
"""Bulk promotion (pvlab.xen.bulk) against the scalar reference path of the type engine.

Random guests of random sizes, 32- and 64-bit, both profiles, with the awkward cases
mixed in (bad flags, foreign and dom_io frames, RW maps of pagetables, shared and
pre-pinned L1s, linear entries, duplicate targets, empty tables) are copied, pinned once
with the bulk paths and once with the reference path, and must give the same outcome,
the same trace once bulk summaries are expanded, the same counters and the same final
machine state; then they are unpinned both ways and compared again.
"""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvlab import Guest, Xen
from pvlab.trace import Outcome
from pvlab.xen import bulk
from pvlab.xen.bulk import BulkEvent, expand_events
from pvlab.xen.campaign import snapshot

L1_FLAGS = ["P", "P|RW", "P|RW|US", "P|US", "P|RW|A|D", "P|RW|US|NX"]


def _random_guest(rng: random.Random, bitness: int, profile: str,
                  awkward: float) -> tuple[Xen, Guest, int, int]:
    """A random pagetable tree; returns (xen, guest, top-level MFN, its level)."""
    xen = Xen(profile, "8GiB")
    g = xen.create_domain(bitness)
    other = xen.create_domain(64)
    foreign = [other.alloc_frame() for _ in range(4)]
    data = [g.alloc_frame() for _ in range(rng.randrange(1, 300))]
    tables: list[int] = []

    def odd() -> bool:
        return rng.random() < awkward

    def make_l1(n: int) -> int:
        l1 = g.alloc_frame()
        tables.append(l1)
        for i in rng.sample(range(512), n):
            target = rng.choice(data)
            flags = rng.choice(L1_FLAGS)
            if odd():
                choice = rng.randrange(6)
                if choice == 0:
                    flags += "|PCD"
                elif choice == 1:
                    target = rng.choice(foreign)
                elif choice == 2:
                    target = rng.randrange(1, 0xFF)  # dom_io
                elif choice == 3 and tables:
                    target, flags = rng.choice(tables), "P|RW"  # a pagetable, writable
                elif choice == 4:
                    target = l1  # self-map (RO is fine, RW fails)
                else:
                    flags = "RW"  # not present
            g.write_entry(l1, i, target, flags)
        return l1

    pinned_l1s = []
    for _ in range(rng.randrange(0, 3)):
        l1 = make_l1(rng.randrange(0, 40))
        if g.pin(l1, 1).ok:
            pinned_l1s.append(l1)

    def make_l2(slots: range) -> int:
        l2 = g.alloc_frame()
        tables.append(l2)
        n = rng.randrange(0, 24)
        made: list[int] = []
        for i in rng.sample(list(slots), n):
            flags = "P|RW|US" if bitness == 64 else rng.choice(["P|RW", "P|RW|US", "P"])
            if odd() and made:
                target = rng.choice(made + pinned_l1s)  # shared / pre-validated L1
            elif odd():
                target, flags = (l2, "P") if rng.random() < 0.5 else (rng.choice(data),
                                                                        "P|PS")
            else:
                target = make_l1(rng.choice([0, 1, 5, 20, 40, 120]))
                made.append(target)
            g.write_entry(l2, i, target, flags)
        return l2

    if bitness == 32:
        l3 = g.alloc_frame()
        for slot in range(4):
            if slot == 3 or rng.random() < 0.7:
                g.write_entry(l3, slot, make_l2(range(428) if slot == 3 else range(512)), "P")
        return xen, g, l3, 3
    l4 = g.alloc_frame()
    l3 = g.alloc_frame()
    g.write_entry(l4, 0, l3, "P|RW|US")
    for slot in rng.sample(range(512), rng.randrange(1, 4)):
        g.write_entry(l3, slot, make_l2(range(512)), "P|RW|US")
    return xen, g, l4, 4


def _same(fast: Outcome, ref: Outcome) -> None:
    assert (fast.rc, fast.failed_mfn, fast.failed_index) == (ref.rc, ref.failed_mfn,
                                                              ref.failed_index)
    assert expand_events(fast.events) == ref.events
    assert fast.counters == ref.counters


def _pin_both_ways(seed: int, bitness: int, profile: str, awkward: float,
                   min_entries: int) -> bool:
    xen, g, top, level = _random_guest(random.Random(seed), bitness, profile, awkward)
    xen2 = copy.deepcopy(xen)
    g2 = Guest(xen2, xen2.domains[g.domid])
    with bulk.bulk_path(min_entries):
        fast = g.pin(top, level)
    with bulk.reference_path():
        ref = g2.pin(top, level)
    _same(fast, ref)
    assert snapshot(xen) == snapshot(xen2)
    used = any(isinstance(ev, BulkEvent) for ev in fast.events)
    if fast.ok:
        with bulk.bulk_path(min_entries):
            u1 = g.unpin(top)
        with bulk.reference_path():
            u2 = g2.unpin(top)
        _same(u1, u2)
        assert snapshot(xen) == snapshot(xen2)
    return used


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bitness=st.sampled_from([32, 64]),
       profile=st.sampled_from(["4.17", "4.19"]), awkward=st.sampled_from([0.0, 0.01, 0.1]),
       min_entries=st.sampled_from([0, 16]))
def test_bulk_pin_equals_reference(seed: int, bitness: int, profile: str, awkward: float,
                                   min_entries: int) -> None:
    _pin_both_ways(seed, bitness, profile, awkward, min_entries)


@pytest.mark.parametrize("bitness", [32, 64])
def test_bulk_path_is_really_taken(bitness: int) -> None:
    used = [_pin_both_ways(s, bitness, "4.19", 0.0, 0) for s in range(6)]
    assert any(used)


def test_engine_switch() -> None:
    assert bulk.engine() == "bulk"
    with bulk.reference_path():
        assert bulk.engine() == "reference" and not bulk.active()
    assert bulk.active()


def _case(kind: str, bitness: int) -> tuple[Xen, Guest, int, int]:
    """A 20-L1 L2 with one awkward entry in the middle (slot 10)."""
    xen = Xen("4.19", "8GiB")
    g = xen.create_domain(bitness)
    data = [g.alloc_frame() for _ in range(16)]
    l2 = g.alloc_frame()
    l1s = []
    for i in range(20):
        l1 = g.alloc_frame()
        l1s.append(l1)
        for j in range(8):
            g.write_entry(l1, j, data[(i + j) % 16], "P|RW" if j % 2 else "P")
        g.write_entry(l2, i, l1, "P|RW|US")
    if kind == "same_l1_twice":
        g.write_entry(l2, 30, l1s[3], "P|RW|US")
    elif kind == "l1_maps_later_l1_rw":
        g.write_entry(l1s[5], 100, l1s[12], "P|RW")
    elif kind == "l1_maps_earlier_l1_rw":
        g.write_entry(l1s[12], 100, l1s[5], "P|RW")
    elif kind == "l1_maps_l1_ro":
        g.write_entry(l1s[12], 100, l1s[5], "P")
    elif kind == "pinned_l1":
        assert g.pin(l1s[7], 1).ok
    elif kind == "superpage":
        g.write_entry(l2, 10, data[0], "P|PS")
    elif kind == "data_rw_and_l1":
        g.write_entry(l1s[2], 200, data[4], "P|RW")
        g.write_entry(l2, 40, data[4], "P|RW|US")
    elif kind == "writable_frame_as_l1":
        holder = g.alloc_frame()
        g.write_entry(holder, 0, data[4], "P|RW")
        assert g.pin(holder, 1).ok
        g.write_entry(l2, 40, data[4], "P|RW|US")
    elif kind == "l2_linear_self":
        g.write_entry(l2, 50, l2, "P")
    if bitness == 32:
        l3 = g.alloc_frame()
        g.write_entry(l3, 0, l2, "P")
        g.write_entry(l3, 3, g.alloc_frame(), "P")
        return xen, g, l3, 3
    l4, l3 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l4, 0, l3, "P|RW|US")
    g.write_entry(l3, 0, l2, "P|RW|US")
    return xen, g, l4, 4


@pytest.mark.parametrize("bitness", [32, 64])
@pytest.mark.parametrize("kind", ["plain", "same_l1_twice", "l1_maps_later_l1_rw",
                                  "l1_maps_earlier_l1_rw", "l1_maps_l1_ro", "pinned_l1",
                                  "superpage", "data_rw_and_l1", "writable_frame_as_l1",
                                  "l2_linear_self"])
def test_bulk_awkward_cases(kind: str, bitness: int) -> None:
    xen, g, top, level = _case(kind, bitness)
    xen2 = copy.deepcopy(xen)
    g2 = Guest(xen2, xen2.domains[g.domid])
    with bulk.bulk_path(0):
        fast = g.pin(top, level)
    with bulk.reference_path():
        ref = g2.pin(top, level)
    _same(fast, ref)
    assert snapshot(xen) == snapshot(xen2)
    assert any(isinstance(ev, BulkEvent) and ev.tables for ev in fast.events)
    assert fast.ok == (kind in ("plain", "same_l1_twice", "l1_maps_l1_ro", "pinned_l1",
                                "l2_linear_self"))
    if fast.ok:  # demotion: bulk L1 demotion against the reference
        with bulk.bulk_path(0):
            u1 = g.unpin(top)
        with bulk.reference_path():
            u2 = g2.unpin(top)
        _same(u1, u2)
        assert snapshot(xen) == snapshot(xen2)
