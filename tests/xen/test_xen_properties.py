"""Property tests: random operation sequences keep Xen's bookkeeping exact.

For both bitnesses and the "4.17" / "4.19" profiles, hypothesis drives a guest through
random sequences of operations, and the campaign's checker
(`pvlab.xen.campaign.check_sequence`: the audit after every operation, failed operations
change nothing but Xen's documented exceptions, pin+unpin restores every count) judges
each one. The hypothesis run is derandomised (150 examples per bitness/profile), so CI
sees the same sequences every time; `pvlab campaign` / `make campaign` feeds the same
checker 100,000 plainly random ones (docs/fidelity.md). The seeds the campaign once
flagged are kept below as explicit regression examples.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xenkit import guest

from pvlab.trace import Outcome
from pvlab.x86.flags import A, P, entry_mfn
from pvlab.xen.campaign import (
    COMMON_FLAGS,
    EXTRA_FLAGS,
    PARAMS,
    SLOTS,
    Op,
    World,
    check_sequence,
    failure_diff,
    run_seeds,
    sample_op,
    sequence_for_seed,
    snapshot,
)

flags_st = st.one_of(
    st.sampled_from(COMMON_FLAGS),
    st.lists(st.sampled_from(EXTRA_FLAGS), max_size=3).map(lambda fs: P | sum(set(fs))),
)
frame_st = st.integers(0, 63)  # an index into the frame pool (taken modulo its size)
target_st = st.integers(0, 63)  # an index into pool + special frames

op_st = st.one_of(
    st.tuples(st.just("alloc"), st.sampled_from(["below", "above", "any"])),
    st.tuples(st.just("write"), frame_st, st.sampled_from(SLOTS), target_st, flags_st),
    st.tuples(st.just("write"), frame_st, st.sampled_from(SLOTS), target_st, flags_st),
    st.tuples(st.just("tree"), st.lists(frame_st, min_size=5, max_size=5),
              st.sampled_from([0, 1, 3]), st.booleans()),
    st.tuples(st.just("alias"), frame_st, frame_st, st.sampled_from([0, 3])),
    st.tuples(st.just("boot")),
    st.tuples(st.just("pin"), frame_st, st.integers(1, 4)),
    st.tuples(st.just("pin"), frame_st, st.integers(1, 4)),
    st.tuples(st.just("unpin"), frame_st),
    st.tuples(st.just("mmu_update"), frame_st, st.sampled_from(SLOTS), target_st, flags_st),
    st.tuples(st.just("new_baseptr"), frame_st, st.integers(0, 1)),
    st.tuples(st.just("new_user_baseptr"), frame_st, st.integers(0, 1)),
    st.tuples(st.just("ctx"), st.integers(0, 1), frame_st,
              st.sampled_from([None, 0, 1 << 3, (1 << 3) | (1 << 2), 1 << 6, 1 << 32])),
    st.tuples(st.just("reset"), st.integers(0, 1)),
    st.tuples(st.just("vm_assist"), st.sampled_from([0, 1, 2]),
              st.sampled_from([0, 2, 3, 4, 5, 6, 32, 40])),
)


def _run(bitness: int, profile: str, ops: list[Op]) -> Counter[str]:
    res = check_sequence(bitness, profile, ops)
    assert res.violation is None, res.violation
    return res.stats


ops_st = st.lists(op_st, min_size=1, max_size=30)


@pytest.mark.parametrize(("bitness", "profile"), PARAMS)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=ops_st)
def test_random_sequences_keep_bookkeeping_exact(bitness: int, profile: str,
                                                 ops: list[Op]) -> None:
    _run(bitness, profile, ops)


def test_property_sequences_exercise_the_interesting_paths() -> None:
    """Guard against a vacuous property test: the generated sequences do reach
    successful and failed pins, mmu_updates and contexts (checked on a fixed sample)."""
    total: Counter[str] = Counter()
    rnd = random.Random(1)
    for b, p in PARAMS:
        for _ in range(25):
            seq = [sample_op(rnd) for _ in range(30)]
            total.update(_run(b, p, seq))
    # S27 through the same checker: two L3s share one slot-3 L2; the second pin leaks.
    s27 = [("tree", [0, 1, 2, 3, 4], 0, True), ("alias", 5, 0, 3), ("pin", 0, 3),
           ("pin", 5, 3), ("pin", 5, 3), ("unpin", 0), ("pin", 5, 3)]
    total.update(_run(32, "4.19", s27))
    for key in ("pin:ok", "pin:EINVAL", "pin:EBUSY", "pin:ERANGE", "mmu_update:ok",
                "mmu_update:EINVAL", "mmu_update:EBUSY", "ctx:ok", "ctx:ERANGE",
                "ctx:EOPNOTSUPP", "unpin:ok", "new_baseptr:ok", "vm_assist:ENOSYS",
                "pin+unpin", "depth:4"):
        assert total[key] > 0, (key, total)
    assert total["leaks"] == 3, total["leaks"]


# ---------------------------------------------------------------- campaign finds
# Seeds the 100,000-sequence campaign (issue 11) flagged, kept as explicit examples. Each
# test also checks that its seed still reaches the situation it was kept for, so a change
# to `sample_op` cannot quietly turn it into a test of nothing.

def _replay(seed: int) -> list[tuple[Op, Outcome | None, int | None]]:
    """The seed's sequence without checks: per operation, its outcome and a PAE Xen L2
    held by no live L3 at that point (None if there is none)."""
    return _replay_ops(*sequence_for_seed(seed))


def _replay_ops(bitness: int, profile: str,
                ops: list[Op]) -> list[tuple[Op, Outcome | None, int | None]]:
    w = World(bitness, profile)
    return [(op, w.do(op), _linear_held_pae_l2(w)) for op in ops]


def _linear_held_pae_l2(w: World) -> int | None:
    """A PAE Xen L2 with type references while no live L3 has it in slot 3."""
    m = w.xen.machine
    in_slot3 = {entry_mfn(m.read_entry(pi.mfn, 3)) for pi in m.pages()
                if pi.level == 3 and pi.validated and pi.type_count}
    for pi in m.pages():
        if pi.pae_xen_l2 and pi.type_count and pi.mfn not in in_slot3:
            return pi.mfn
    return None


@pytest.mark.parametrize("seed", [1135, 1323])
def test_failed_pin_through_a_dom_xen_entry_leaves_no_page_info(seed: int) -> None:
    """Kind (a): a pin whose L4/L3/L2 entry points at a dom_xen frame fails, and the
    refusal must not create a page_info record for that frame (get_page only reads)."""
    assert run_seeds([seed]).violations == []
    assert any(out is not None and not out.ok and "belongs to dom_xen" in out.reason
               for _, out, _ in _replay(seed))


@pytest.mark.parametrize("seed", [8216, 104480, 117796])
def test_pae_xen_l2_held_by_a_linear_entry_is_xen_state(seed: int) -> None:
    """Kind (b): after a vcpu_reset drops the last L3 above it, a PAE Xen L2 may keep type
    references held by a linear L2 entry (get_l2_linear_pagetable ignores PGT_pae_xen_l2;
    commit a4cde0266d allowed such links on purpose): not a violation."""
    assert run_seeds([seed]).violations == []
    assert any(held is not None for _, _, held in _replay(seed)), "the seed no longer gets there"


# Kind (b) by hand, for both ways the L3 goes (the seed 111929 was an unpin; its
# sequence depended on the first driver's draw order, so it is written out here).
# Pool frames 0-2 lie below 4 GiB: L3 0 has L2 1 in slot 3, L2 2 links to L2 1 read-only.
_LINEAR_TO_SLOT3 = [("write", 0, 3, 1, P), ("write", 2, 0, 1, P | A)]


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
@pytest.mark.parametrize("ops", [
    _LINEAR_TO_SLOT3 + [("pin", 0, 3), ("pin", 2, 2), ("unpin", 0), ("pin", 0, 3),
                        ("unpin", 2)],
    _LINEAR_TO_SLOT3 + [("ctx", 1, 0, None), ("pin", 2, 2), ("reset", 1), ("unpin", 2)],
], ids=["unpin", "reset"])
def test_pae_xen_l2_outlives_its_l3_through_a_linear_entry(profile: str, ops: list[Op]) -> None:
    res = check_sequence(32, profile, ops)
    assert res.violation is None, res.violation
    held = [h for _, _, h in _replay_ops(32, profile, ops)]
    assert held[3] is None and held[4] is not None, held  # op 4 takes the L3 away


@pytest.mark.parametrize("level", [2, 3, 4])
def test_refused_dom_xen_entry_creates_no_page_info(level: int) -> None:
    """The direct form of kind (a), per level: the refused frame stays untouched."""
    g = guest(64)
    xen_frame = g.xen.compat_m2p_base + 1
    assert g.xen.machine.is_xen_frame(xen_frame)
    table = g.alloc_frame()
    g.write_entry(table, 0, xen_frame, "P|A")
    before = {pi.mfn for pi in g.xen.machine.pages()}
    out = g.pin(table, level)
    assert out.errno == "EINVAL" and "belongs to dom_xen" in out.reason, out.explain()
    assert {pi.mfn for pi in g.xen.machine.pages()} == before


def test_campaign_smoke_on_fresh_random_seeds() -> None:
    """A few hundred plainly random sequences (new seeds every run, printed on failure):
    the long campaign's checker, in small."""
    start = random.SystemRandom().randrange(10**9)
    figs = run_seeds(range(start, start + 200))
    assert figs.sequences == 200 and figs.operations > 200
    assert figs.violations == [], (start, figs.violations[:3])


def test_failure_diff_sees_what_a_failed_operation_must_not_change() -> None:
    """The checker itself is not vacuous: a new page_info record, a changed count and a
    changed entry after a failed operation are each reported."""
    w = World(64, "4.19")
    table = w.frame(0)
    w.g.write_entry(table, 0, w.frame(1), "P")
    before = snapshot(w.xen)
    failed = w.g.unpin(table)  # not pinned: EINVAL
    assert not failed.ok
    assert failure_diff(w, ("unpin", 0), before, snapshot(w.xen), failed) == []
    w.xen.machine.page(w.xen.compat_m2p_base + 7)           # a record appears
    w.g.page(w.frame(2)).count_info += 1                    # a count changes
    w.xen.machine.write_entry(table, 5, (w.frame(3) << 12) | P)  # an entry changes
    diffs = failure_diff(w, ("unpin", 0), before, snapshot(w.xen), failed)
    assert len(diffs) == 3, diffs
