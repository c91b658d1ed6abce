# SPDX-License-Identifier: MIT
"""`pvlab.check(exercise, answer)`: immediate feedback with up to three hints.

Wrong tries are counted per exercise id in this process; each wrong try shows the next,
more specific hint (the third one repeats). An answer in the wrong form costs no try.
"""

from __future__ import annotations

from typing import Any

from pvlab.errors import PvlabError
from pvlab.exercises.answers import AnswerError
from pvlab.exercises.feedback import Feedback
from pvlab.exercises.problem import Problem, parse_problem_id

_TRIES: dict[str, int] = {}


def resolve(exercise: str | Problem) -> tuple[str, Problem]:
    """The id and the problem of an exercise id, a generated problem's id, or a Problem."""
    from pvlab.exercises.catalogue import EXERCISES

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
    except AnswerError as err:
        return Feedback(ex_id, False, f"I cannot read this answer: {err.message}. "
                                      f"{err.fix or ''}".strip(), tries=_TRIES.get(ex_id, 0))
    if verdict.ok:
        return Feedback(ex_id, True, verdict.message, tries=_TRIES.get(ex_id, 0))
    tries = _TRIES.get(ex_id, 0) + 1
    _TRIES[ex_id] = tries
    hints = problem.hints
    hint = hints[min(tries, len(hints)) - 1] if hints else ""
    return Feedback(ex_id, False, verdict.message, hint, tries)


def grade(exercise: str | Problem, answer: Any) -> bool:
    """True when `answer` is right; no feedback, no hint counting (for autograder cells)."""
    _, problem = resolve(exercise)
    try:
        return problem.judge(answer).ok
    except AnswerError:
        return False


def reset_hints(exercise: str | None = None) -> None:
    """Forget the wrong tries of one exercise (or of all)."""
    if exercise is None:
        _TRIES.clear()
    else:
        _TRIES.pop(exercise, None)
