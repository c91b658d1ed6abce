# SPDX-License-Identifier: MIT
"""`walk_many` (numpy batch walks) against the reference `walk`, address by address.

Random tables in all three paging modes (the Unicorn cross-check's generator), every
access kind, user and supervisor, random CR0.WP/EFER.NXE/CR4.PSE and MAXPHYADDR: each
batch result must equal the scalar walk's (physical address, page size, fault kind,
level and error code). Both memory paths run: a plain `PhysMem` (read entry by entry)
and a `Machine` (one numpy gather per level).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_x86_walk_unicorn import RAM, _random_tree
from x86mem import DictMem

import pvlab.x86.batch as wm
from pvlab.errors import PvlabError
from pvlab.x86 import PagingMode, walk, walk_many
from pvlab.x86.batch import result_of
from pvlab.xen import Machine

MODES = list(PagingMode)


def _machine_copy(mem: DictMem) -> Machine:
    m = Machine("64MiB")
    for addr, value in mem.words.items():
        if addr < RAM:
            m.write_entry(addr >> 12, (addr & 0xFFF) >> 3, value)
    return m


def _extra_vas(rng: random.Random, mode: PagingMode, vas: list[int]) -> list[int]:
    out = list(vas)
    for va in vas:  # neighbours share most of the walk
        out += [va ^ (1 << rng.randrange(12, 22)), va & ~0xFFF, va | 0xFFF]
    for _ in range(8):
        out.append(rng.getrandbits(64 if mode is PagingMode.FOUR_LEVEL else 32))
    return out


def _compare(mem: object, mode: PagingMode, cr3: int, vas: list[int], **kw: object) -> int:
    batch = walk_many(mem, mode, cr3, np.array(vas, np.uint64), **kw)  # type: ignore[arg-type]
    for i, va in enumerate(vas):
        ref = walk(mem, mode, cr3, va, **kw)  # type: ignore[arg-type]
        assert batch.result(i) == result_of(ref), (mode, hex(va), kw, ref.fault)
    return int(batch.ok.sum())


def _split_only(mem: object, rows: object, o: wm._Options, va: np.ndarray) -> object:
    if len(va) and wm.levels(o.mode) >= 3:
        return wm._walk_split_l2(mem, rows, o, va)  # type: ignore[arg-type]
    return None


@contextmanager
def _sharing(share: bool | str) -> Iterator[None]:
    """Force the two-phase walk (upper levels once per 2 MiB region: True), the split at
    L2 (levels above L2 once per 1 GiB region: "split") or the plain one (False)."""
    if share == "split":
        with mock.patch.object(wm, "SHARE_MIN", 1 << 30), \
                mock.patch.object(wm, "_walk_shared", _split_only):
            yield
    elif share:
        with mock.patch.object(wm, "SHARE_MIN", 1 << 30):
            yield
    else:
        with mock.patch.object(wm, "_factorize", lambda keys: None):
            yield


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES),
       maxphyaddr=st.sampled_from([40, 52]), share=st.sampled_from([False, True, "split"]))
def test_walk_many_equals_walk(seed: int, mode: PagingMode, maxphyaddr: int,
                               share: bool | str) -> None:
    rng = random.Random(seed)
    tree = _random_tree(rng, mode)
    vas = _extra_vas(rng, mode, tree.vas)
    machine = _machine_copy(tree.mem)
    with _sharing(share):
        for access in ("read", "write", "fetch"):
            for user in (False, True):
                kw = dict(write=access == "write", fetch=access == "fetch", user=user,
                          cr0_wp=tree.wp, efer_nxe=tree.nxe, cr4_pse=tree.pse,
                          maxphyaddr=maxphyaddr)
                _compare(tree.mem, mode, tree.cr3, vas, **kw)
                _compare(machine, mode, tree.cr3, vas, **kw)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES))
def test_walk_many_shared_regions_equal_walk(seed: int, mode: PagingMode) -> None:
    """Many addresses per L1-table region (the two-phase path's case): every address of
    the random tree's pages and their neighbours, in one batch."""
    rng = random.Random(seed)
    tree = _random_tree(rng, mode)
    vas = [va + off for va in tree.vas for off in (0, 8, 0x800, 0xFF8)]
    vas += [va ^ (1 << rng.randrange(12, 21)) for va in tree.vas]
    machine = _machine_copy(tree.mem)
    kw = dict(write=True, user=rng.random() < 0.5, cr0_wp=tree.wp, efer_nxe=tree.nxe,
              cr4_pse=tree.pse)
    shift = 22 if mode is PagingMode.TWO_LEVEL else 21
    assert wm._factorize(np.array(vas, np.uint64).view(np.int64) >> shift) is not None
    _compare(machine, mode, tree.cr3, vas, **kw)
    _compare(tree.mem, mode, tree.cr3, vas, **kw)


def test_walk_many_translates_a_real_guest_and_explains_on_demand() -> None:
    from pvlab import Xen

    xen = Xen("4.19", "8GiB")
    g = xen.create_domain(64)
    l4, l3, l2, l1, data = (g.alloc_frame() for _ in range(5))
    g.write_entry(l4, 0, l3, "P|RW|US")
    g.write_entry(l3, 0, l2, "P|RW|US")
    g.write_entry(l2, 0, l1, "P|RW|US")
    g.write_entry(l1, 1, data, "P|US")
    vas = np.array([0x1000, 0x1234, 0x2000, 1 << 47], np.uint64)
    b = walk_many(xen.machine, "4-level", l4 << 12, vas, write=True, user=True)
    assert b.result(1)[2] == "page-fault"  # read-only page, user write
    assert b.result(2)[2] == "page-fault" and b.result(2)[3] == 1  # not present
    assert b.result(3)[2] == "gp"  # non-canonical
    assert b.walk(1).fault is not None and "read-only" in b.walk(1).fault.reason
    r = walk_many(xen.machine, "4-level", l4 << 12, vas[:2], user=True)
    assert r.ok.all() and r.paddr.tolist() == [data << 12, (data << 12) | 0x234]


def test_walk_many_refuses_bad_input() -> None:
    mem = DictMem()
    with pytest.raises(PvlabError):
        walk_many(mem, "pae", 0x1000, np.array([1 << 32], np.uint64))
    with pytest.raises(PvlabError):
        walk_many(mem, "pae", 0x1000, np.array([-1]))
    with pytest.raises(PvlabError):
        walk_many(mem, "4-level", 0x1000, np.array([0]), write=True, fetch=True)
    assert len(walk_many(mem, "2-level", 0x1000, np.array([], np.uint64))) == 0


def test_walk_many_in_pieces_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _random_tree(random.Random(5), PagingMode.FOUR_LEVEL)
    vas = np.array(_extra_vas(random.Random(6), PagingMode.FOUR_LEVEL, tree.vas), np.uint64)
    machine = _machine_copy(tree.mem)
    whole = walk_many(machine, "4-level", tree.cr3, vas, user=True)
    monkeypatch.setattr(wm, "CHUNK", 7)
    monkeypatch.setattr(wm, "PIECE", 5)
    for share in (False, True, "split"):
        with _sharing(share):
            pieces = walk_many(machine, "4-level", tree.cr3, vas, user=True)
        assert [whole.result(i) for i in range(len(vas))] == [pieces.result(i)
                                                              for i in range(len(vas))]
