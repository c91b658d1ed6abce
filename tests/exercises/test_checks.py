# SPDX-License-Identifier: MIT
"""Each check accepts the right answer, rejects typical wrong ones with a helpful message
and a hint, and never reveals the answer in what it says."""

from __future__ import annotations

from typing import Any

import pytest
from exercise_answers import TASK_ANSWERS, WRONG

import pvlab
from pvlab.exercises import EXERCISES, Feedback, check, reset_hints, show
from pvlab.exercises.checking import grade

IDS = list(EXERCISES)


def right_answer(ex_id: str) -> Any:
    return TASK_ANSWERS.get(ex_id, show(ex_id).answer)


def answer_texts(ex_id: str) -> list[str]:
    """Spellings of the answer that no hint or wrong-answer message may contain."""
    a = show(ex_id).answer
    if ex_id in TASK_ANSWERS:
        # the decisive line of the worked solution
        return [line.strip() for line in TASK_ANSWERS[ex_id].splitlines()
                if "RW" in line or "NX" in line or "vm_assist" in line]
    if isinstance(a, int):
        return [hex(a), f"{a:#x}".upper()[2:], str(a)]
    if isinstance(a, list):
        return [str(a), ", ".join(str(x) for x in a)]
    if isinstance(a, tuple) and a[0] in ("#PF", "#GP"):
        return [f"{a[0]} at L{a[1]}", f"{a[0]} L{a[1]}", str(a)]
    if isinstance(a, tuple) and isinstance(a[1], int):  # bug hunt (frame, index)
        frame, index = a
        return [str(a), f"{frame}[{index}]", f"entry {index}", f"index {index}"]
    result, rule = a
    texts = [str(a)]
    if rule:
        texts += [rule, result]
    return texts


def test_there_are_enough_exercises() -> None:
    assert len(EXERCISES) >= 12
    assert len({e.notebook for e in EXERCISES.values()}) >= 4
    kinds = {e.kind for e in EXERCISES.values()}
    assert {"walk", "predict", "build", "refuse", "bughunt", "cr3", "l3-check"} <= kinds
    assert set(WRONG) == set(EXERCISES)


@pytest.mark.parametrize("ex_id", IDS)
def test_right_answer_is_accepted(ex_id: str) -> None:
    reset_hints(ex_id)
    fb = check(ex_id, right_answer(ex_id))
    assert isinstance(fb, Feedback)
    assert fb.ok, str(fb)
    assert fb.message and not fb.hint
    assert grade(ex_id, right_answer(ex_id))


@pytest.mark.parametrize("ex_id", IDS)
def test_wrong_answers_are_rejected_with_a_message_and_a_hint(ex_id: str) -> None:
    reset_hints(ex_id)
    right = right_answer(ex_id)
    wrongs = [make(right) for make in WRONG[ex_id]]
    assert len(wrongs) >= 2
    for n, wrong in enumerate(wrongs, start=1):
        fb = check(ex_id, wrong)
        assert not fb.ok, f"{ex_id} accepted the wrong answer {wrong!r}"
        assert len(fb.message) > 20, fb.message
        assert fb.hint, "a wrong answer gets a hint"
        assert fb.tries == n
        assert not grade(ex_id, wrong)


@pytest.mark.parametrize("ex_id", IDS)
def test_hints_get_more_specific_and_never_reveal_the_answer(ex_id: str) -> None:
    reset_hints(ex_id)
    wrong = WRONG[ex_id][0](right_answer(ex_id))
    said = [check(ex_id, wrong) for _ in range(4)]
    hints = [fb.hint for fb in said]
    assert len(set(hints[:3])) == 3, "three different hints"
    assert hints[3] == hints[2], "the third hint is the last one"
    everything = " ".join(fb.message + " " + fb.hint for fb in said)
    for fb in said:  # all renderings too
        everything += fb._repr_markdown_() + fb._repr_html_() + str(fb)
    for text in answer_texts(ex_id):
        assert text not in everything, f"{ex_id}: {text!r} given away"


def test_tries_are_counted_per_exercise() -> None:
    reset_hints()
    check("cr3-encode", 1)
    check("cr3-encode", 2)
    assert check("cr3-decode", 3).tries == 1
    assert check("cr3-encode", 4).tries == 3
    reset_hints("cr3-encode")
    assert check("cr3-encode", 5).tries == 1


def test_an_unreadable_answer_costs_no_try_and_says_what_form_to_use() -> None:
    reset_hints()
    fb = check("walk-2level", "the second one")
    assert not fb.ok and fb.tries == 0 and not fb.hint
    assert "#PF at L2" in fb.message  # the form, not the answer (walk-2level translates)
    fb = check("predict-retype", ("EINVAL", "no_such_rule"))
    assert not fb.ok and "reasons()" in fb.message
    fb = check("build-l2", "name: [unclosed")
    assert not fb.ok and "invalid" in fb.message


def test_answers_in_other_spellings_are_read() -> None:
    pa = show("walk-2level").answer
    assert check("walk-2level", hex(pa)).ok
    assert check("walk-fault", ("#PF", 3)).ok and check("walk-fault", "#pf level 3").ok
    assert check("predict-retype", ("-EINVAL", "type_conflict")).ok
    assert check("predict-retype", (-22, "type_conflict")).ok
    assert check("predict-compat-rw", "ok").ok and check("predict-compat-rw", 0).ok
    seed = show("seed-l3-check").answer
    assert check("seed-l3-check", ["yes" if x else "no" for x in seed]).ok


def test_predicting_only_the_errno_asks_for_the_reason() -> None:
    fb = check("predict-l1-selfmap", "EBUSY")
    assert not fb.ok and "name the rule" in fb.message


def test_feedback_renders_for_notebooks_and_text() -> None:
    reset_hints()
    fb = check("cr3-decode", 12)
    assert not fb and "Hint 1/3" in str(fb)
    assert "<div" in fb._repr_html_() and "**cr3-decode: Not yet.**" in fb._repr_markdown_()
    good = check("cr3-decode", show("cr3-decode").answer)
    assert good and "Correct" in good._repr_markdown_()


def test_top_level_names_forward_to_exercises() -> None:
    assert pvlab.check is check
    assert pvlab.generate is pvlab.exercises.generate


def test_unknown_exercise_is_a_clear_error() -> None:
    with pytest.raises(pvlab.PvlabError, match="unknown exercise"):
        check("no-such-exercise", 1)


def test_checks_follow_the_core_not_stored_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check reruns the model: change the model and the verdict changes with it."""
    from pvlab.xen import profiles

    good = show("predict-new-baseptr").answer
    assert check("predict-new-baseptr", good).ok
    monkeypatch.setitem(profiles.PROFILES, "4.19", profiles.PROFILES["4.17"])
    assert not grade("predict-new-baseptr", good)


def test_reasons_lists_rule_ids_with_errnos() -> None:
    r = pvlab.exercises.reasons()
    assert {"l1_writable_pagetable", "type_conflict", "pv32_l3_slot3", "l3_flags",
            "pae_l3_below_4g"} <= set(r)
    assert "32-bit" in r["l3_flags"]


@pytest.mark.parametrize("ex_id", ["predict-xsa-182", "predict-xsa-182-before",
                                   "bughunt-xsa-240"])
def test_what_show_prints_has_the_question_and_not_the_answer(ex_id: str) -> None:
    """The plain-text output of `show(...)` (a console, nbconvert --to text, a front end
    without markdown) is the question only, as its markdown is: the dataclass repr
    printed the answer, the explanation and the hints."""
    problem = show(ex_id)
    text = repr(problem)
    assert problem.question in text
    assert "answer" not in text.lower().replace("give (result, reason)", "")
    assert problem.explanation.splitlines()[0] not in text
    assert not any(h in text for h in problem.hints)
