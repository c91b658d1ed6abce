# SPDX-License-Identifier: MIT
"""Hedged and over-broad answers are wrong: an answer that names several candidates
("#PF at L3 or L2", a list of addresses, two errnos, two rules, a list of entries, an
undecided situation, a list of scenarios) never passes a check, even when the right
answer is among them, and it counts as a wrong try with the hedge hints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from exercise_answers import REFUSE_COMPAT, TASK_ANSWERS, WRONG

from pvlab.exercises import EXERCISES, check, reset_hints, show
from pvlab.exercises.checking import HEDGE_HINTS, grade

Make = Callable[[Any], Any]


def _addr(a: int) -> list[Make]:
    return [lambda a: [a, a + 0x1000], lambda a: (a ^ 0x10, a),
            lambda a: f"{a:#x} or {a + 0x1000:#x}", lambda a: {a, a ^ 0x3000},
            lambda a: (a, "#PF at L1")]


def _predict(a: tuple[str, str | None]) -> list[Make]:
    result, rule = a
    other_result = "EBUSY" if result != "EBUSY" else "EINVAL"
    other_rule = "l1_flags" if rule != "l1_flags" else "type_conflict"
    out: list[Make] = [
        lambda a: (f"{result} or {other_result}", rule),
        lambda a: ([result, other_result], rule),
        lambda a: [a, (other_result, other_rule)],
        lambda a: (f"{result}/{other_result}", rule),
    ]
    if rule is not None:
        out += [lambda a: (result, [rule, other_rule]),
                lambda a: (result, f"{rule} or {other_rule}")]
    return out


def _entry(a: tuple[str, int]) -> list[Make]:
    frame, index = a
    return [lambda a: [a, (frame, index + 1)], lambda a: (frame, [index, index + 1]),
            lambda a: (f"{frame} or l2", index), lambda a: (frame, f"{index} or {index + 1}")]


def _decisions(a: list[bool]) -> list[Make]:
    return [lambda a: ["maybe", *a[1:]], lambda a: [None, *a[1:]],
            lambda a: [[True, False], *a[1:]], lambda a: ["True or False", *a[1:]],
            lambda a: ["both", *a[1:]], lambda a: [*a[:-1], "yes/no"]]


def _scenario(ex_id: str) -> list[Make]:
    wrong = WRONG[ex_id][0]
    return [lambda a: [a, wrong(a)], lambda a: (wrong(a), a)]


def hedges(ex_id: str) -> list[Make]:
    a = show(ex_id).answer
    kind = EXERCISES[ex_id].kind
    if kind == "walk" and isinstance(a, int):
        return _addr(a)
    if kind == "walk":
        return [lambda a: "#PF at L3 or L2", lambda a: "#PF at L2 or L3",
                lambda a: "#PF or #GP at L3", lambda a: ["#PF at L3", "#PF at L2"],
                lambda a: ("#PF", [3, 2]), lambda a: ("#PF at L3", "#GP"),
                lambda a: "#PF at L3/L2", lambda a: "a #PF at level 3, maybe level 2"]
    if kind == "cr3":
        return [lambda a: [a, a + 1], lambda a: f"{a:#x} or {a + 1:#x}", lambda a: {a, 0},
                lambda a: (a, a >> 12 << 12)]
    if kind == "predict":
        return _predict(a)
    if kind == "bughunt":
        return _entry(a)
    if kind == "l3-check":
        return _decisions(a)
    return _scenario(ex_id)


def right(ex_id: str) -> Any:
    return TASK_ANSWERS.get(ex_id, show(ex_id).answer)


def test_the_issue_example_is_wrong() -> None:
    assert show("walk-fault").answer == ("#PF", 3)
    fb = check("walk-fault", "#PF at L3 or L2")
    assert not fb.ok and "several" in fb.message


@pytest.mark.parametrize("ex_id", list(EXERCISES))
def test_hedged_answers_containing_the_right_one_are_wrong(ex_id: str) -> None:
    reset_hints(ex_id)
    good = right(ex_id)
    assert grade(ex_id, good)
    makers = hedges(ex_id)
    assert len(makers) >= 2
    for n, make in enumerate(makers, start=1):
        answer = make(good)
        fb = check(ex_id, answer)
        assert not fb.ok, f"{ex_id} accepted the hedged answer {answer!r}"
        assert not grade(ex_id, answer)
        assert fb.tries == n, f"a hedge is a wrong try, not an unreadable answer: {answer!r}"
        assert fb.hint, "a hedge gets a hint"


def test_a_hedge_gets_the_hints_about_committing_to_one_answer() -> None:
    reset_hints("cr3-decode")
    a = show("cr3-decode").answer
    hints = [check("cr3-decode", [a, a + 1]).hint for _ in range(3)]
    assert hints == list(HEDGE_HINTS)


def test_a_compat_l3_entry_with_a_list_of_forbidden_flags_is_over_broad() -> None:
    reset_hints("refuse-compat-flag")
    broad = REFUSE_COMPAT.replace("[P, NX]", "[P, NX, PCD, PS, G]")
    fb = check("refuse-compat-flag", broad)
    assert not fb.ok and "several forbidden flags" in fb.message
    assert "exactly one flag" in fb.hint
    for one in ("NX", "PCD", "PS", "G", "PWT", "BIT52"):
        assert grade("refuse-compat-flag", REFUSE_COMPAT.replace("[P, NX]", f"[P, {one}]")), one


def test_single_answers_in_every_spelling_still_pass() -> None:
    assert grade("walk-fault", "#PF at L3") and grade("walk-fault", ("#PF", 3))
    assert grade("walk-fault", "#PF at level 3") and grade("walk-fault", ["#PF at L3"])
    assert grade("walk-fault", ("#PF at L3", 3))
    a = show("cr3-decode").answer
    assert grade("cr3-decode", hex(a)) and grade("cr3-decode", [a])
