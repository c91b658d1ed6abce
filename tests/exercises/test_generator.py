# SPDX-License-Identifier: MIT
"""The seeded generator: same seed, same problem (pinned here), its own RNG, and problems
that its own checks accept."""

from __future__ import annotations

import hashlib
import random

import pytest

import pvlab
from pvlab.exercises import DIFFICULTIES, check, generator_kinds, reset_hints
from pvlab.exercises.problem import format_answer

#: (kind, seed, difficulty, options, answer, sha256 of the question text, first 16 digits)
GOLDEN = [
    ('walk', 1, 'pencil', {}, "'#PF at L1'", '32263755753e2218'),
    ('walk', 2, 'normal', {}, '0xcf183b8d', 'd461a51939ebcbad'),
    ('walk', 3, 'hard', {}, "'#PF at L2'", '63170b2c8e601648'),
    ('walk', 4, 'pencil', {'mode': '2-level'}, '0x61b0', '8903501f7fc7337b'),
    ('cr3', 1, 'pencil', {}, '0xd900a', '36b62c5c6d014f90'),
    ('cr3', 2, 'normal', {}, '0xdc867006', '197bdeb74ca8bb6f'),
    ('cr3', 3, 'hard', {}, '0x36369217', '4d9716100ebd7011'),
    ('l3-check', 1, 'pencil', {}, '[False, False, False, True]', '17c4c851b9d3827c'),
    ('l3-check', 2, 'normal', {}, '[True, False, True, False, True, False]', '793c9bc5a2b28593'),
    ('predict', 1, 'pencil', {}, "('EBUSY', 'l1_writable_pagetable')", 'cdd63ae894f99e49'),
    ('predict', 2, 'normal', {}, "('ok', None)", 'ea418047a071e473'),
    ('predict', 3, 'hard', {}, "('EBUSY', 'l1_writable_pagetable')", 'ad1fa3b1ede9a523'),
]

WALK_4_PENCIL_2LEVEL = """\
Paging mode: 2-level (32-bit paging: 4-byte entries, 1024 per table).
CR3 = 0x3e000.  Access: a supervisor (kernel) read of VA 0x4021b0.
CR0.WP = 1, EFER.NXE = 1, CR4.PSE = 1; every other byte of memory is zero.
Non-zero entries (frame: index = value):
  frame 0x2 [   0] = 0x0000a027  (P|RW|US|A)
  frame 0x2 [   2] = 0x00006067  (P|RW|US|A|D)
  frame 0x3e [   1] = 0x00002027  (P|RW|US|A)
  frame 0x3e [   2] = 0x00005027  (P|RW|US|A)
"""


@pytest.mark.parametrize("kind,seed,difficulty,options,answer,digest", GOLDEN)
def test_golden_problems(kind: str, seed: int, difficulty: str, options: dict, answer: str,
                         digest: str) -> None:
    p = pvlab.generate(kind, seed=seed, difficulty=difficulty, **options)
    assert format_answer(p.answer) == answer
    assert hashlib.sha256(p.question.encode()).hexdigest()[:16] == digest


def test_a_golden_pencil_walk_reads_as_pinned() -> None:
    p = pvlab.generate("walk", seed=4, difficulty="pencil", mode="2-level")
    assert p.question.startswith(WALK_4_PENCIL_2LEVEL)
    assert p.answer == 0x61B0
    assert p.id == "walk/4/pencil/mode=2-level"


def test_the_generator_never_touches_the_global_random() -> None:
    random.seed(1234)
    state = random.getstate()
    for kind in generator_kinds():
        pvlab.generate(kind, seed=5)
    assert random.getstate() == state


def test_same_seed_same_problem_other_seed_other_problem() -> None:
    for kind in generator_kinds():
        a, b = pvlab.generate(kind, seed=9), pvlab.generate(kind, seed=9)
        assert (a.question, a.answer) == (b.question, b.answer)
        others = {pvlab.generate(kind, seed=s).question for s in range(10, 16)}
        assert len(others) >= 4, kind


@pytest.mark.parametrize("kind", ["walk", "cr3", "l3-check", "predict"])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_generated_problems_are_solved_by_their_own_answer(kind: str, difficulty: str) -> None:
    for seed in range(12):
        p = pvlab.generate(kind, seed=seed, difficulty=difficulty)
        reset_hints(p.id)
        assert check(p, p.answer).ok, p.text(answer=True)
        assert check(p.id, p.answer).ok  # the id regenerates the same problem
        assert len(p.hints) == 3


def test_pencil_walks_are_small() -> None:
    for seed in range(30):
        p = pvlab.generate("walk", seed=seed, difficulty="pencil")
        frames = [int(f, 16) for f in p.data["memory"]]
        assert max(frames) < 0x40 and len(frames) <= 5
        assert sum(len(e) for e in p.data["memory"].values()) <= 8
        assert p.data["access"] == "read" and not p.data["user"]


def test_walk_faults_and_translations_both_occur() -> None:
    answers = [pvlab.generate("walk", seed=s).answer for s in range(40)]
    assert any(isinstance(a, int) for a in answers)
    assert any(isinstance(a, tuple) for a in answers)


def test_l3_check_situations_agree_with_the_reference() -> None:
    """The facts reference (section 9.A): S01, S02, S03, S04, S09, S11, S12 and 4.17."""
    from pvlab.exercises.kinds.l3check import Situation, trips

    hi, lo = 0x123456, 0xFFFFF
    assert trips(Situation("4.19", 32, False, hi, "initialised", "guest"))  # S01
    assert not trips(Situation("4.17", 32, False, hi, "initialised", "guest"))  # S01 on 4.17
    assert not trips(Situation("4.19", 32, False, lo, "initialised", "guest"))  # S02
    assert not trips(Situation("4.19", 32, True, hi, "initialised", "guest"))  # S03
    assert not trips(Situation("4.19", 32, False, hi, "absent", "guest"))  # S04 (a)
    assert not trips(Situation("4.19", 32, False, hi, "not initialised", "guest"))  # S04 (b)
    assert not trips(Situation("4.19", 64, False, hi, "initialised", "guest"))  # S09
    assert not trips(Situation("4.19", 32, False, hi, "not initialised", "builder"))  # S10
    assert not trips(Situation("4.19", 32, True, hi, "not initialised", "builder"))  # S11
    assert trips(Situation("4.19", 32, False, hi, "initialised", "migration"))  # S12
    assert not trips(Situation("4.17", 32, False, hi, "initialised", "migration"))  # S12


@pytest.mark.parametrize("bad", [dict(kind="nope"), dict(kind="walk", difficulty="easy"),
                                 dict(kind="walk", seed=-1), dict(kind="cr3", colour=1)])
def test_bad_requests_are_clear_errors(bad: dict) -> None:
    kind = bad.pop("kind")
    with pytest.raises(pvlab.PvlabError):
        pvlab.generate(kind, **bad)
