# SPDX-License-Identifier: MIT
"""`pvlab.check(exercise, answer)`: immediate feedback with up to three hints.

Wrong tries are counted per exercise id in this process; each wrong try shows the next,
more specific hint (the third one repeats), taken from the judge's verdict when it
recognised the mistake, else from the problem. An answer in the wrong form costs no
try; an answer that hedges (names several answers: "#PF at L3 or L2") is wrong.
"""

from __future__ import annotations

from typing import Any

from pvlab.errors import PvlabError
from pvlab.exercises.answers import AnswerError, Hedge
from pvlab.exercises.catalogue import EXERCISES
from pvlab.exercises.feedback import Feedback
from pvlab.exercises.generator import parse_problem_id
from pvlab.exercises.problem import Problem, Verdict

_TRIES: dict[str, int] = {}


def resolve(exercise: str | Problem) -> tuple[str, Problem]:
    """The id and the problem of an exercise id, a generated problem's id, or a Problem."""
    if isinstance(exercise, Problem):
        return exercise.id, exercise
    if not isinstance(exercise, str):
        raise PvlabError(f"{exercise!r} is not an exercise id", 'write e.g. "walk-2level"')
    if exercise in EXERCISES:
        return exercise, EXERCISES[exercise].problem()
    p = parse_problem_id(exercise)
    if p is None:
        raise PvlabError(f"unknown exercise {exercise!r}",
                         "print pvlab.exercises.exercise_ids() for the list, or give a "
                         "generated problem (pvlab.generate(...))")
    return exercise, p


def check(exercise: str | Problem, answer: Any) -> Feedback:
    """Judge `answer`; on a wrong answer say what is wrong and give the next hint."""
    ex_id, problem = resolve(exercise)
    try:
        verdict = problem.judge(answer)
    except Hedge as err:  # readable, but it names several answers: a wrong try
        verdict = Verdict(False, err.message, HEDGE_HINTS)
    except AnswerError as err:
        return Feedback(ex_id, False, f"I cannot read this answer: {err.message}. "
                                      f"{err.fix or ''}".strip(), tries=_TRIES.get(ex_id, 0))
    if verdict.ok:
        return Feedback(ex_id, True, verdict.message, tries=_TRIES.get(ex_id, 0))
    tries = _TRIES.get(ex_id, 0) + 1
    _TRIES[ex_id] = tries
    hints = verdict.hints or problem.hints
    hint = hints[min(tries, len(hints)) - 1] if hints else ""
    return Feedback(ex_id, False, verdict.message, hint, tries)


#: the hints for an answer that names several answers (each try shows the next)
HEDGE_HINTS = (
    "Commit to one answer: a check accepts exactly one result, never a choice of several.",
    "If you are torn between two, work out which one the rules actually reach first; the "
    "walk, the pin or the check stops at the first thing that fails.",
    "Follow the operation step by step in the order Xen (or the MMU) does it and stop at "
    "the first step that decides; that one is the answer.",
)


def grade(exercise: str | Problem, answer: Any) -> bool:
    """True when `answer` is right; no feedback, no hint counting (for autograder cells)."""
    _, problem = resolve(exercise)
    try:
        return problem.judge(answer).ok
    except AnswerError:  # Hedge included
        return False


def reset_hints(exercise: str | None = None) -> None:
    """Forget the wrong tries of one exercise (or of all)."""
    if exercise is None:
        _TRIES.clear()
    else:
        _TRIES.pop(exercise, None)
