# SPDX-License-Identifier: MIT
"""Problems, verdicts and the registry of the kinds that make and judge them.

A :class:`Problem` carries its question, its answer and the data both came from; the
same kind's `judge` decides whether a learner's answer is right and says what is wrong,
and its `hints` nudge without giving the answer. Generated problems and the course's
fixed exercises are the same objects.

This module imports no other part of `pvlab.exercises`: the kinds (`kinds/`) register
themselves here, `generator.py` makes problems from them, `checking.py` judges answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

#: how hard a generated problem is (see docs/exercises.md)
Difficulty = Literal["pencil", "normal", "hard"]
DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

#: every problem kind; the ones with a `make` are the generator's kinds
KindName = Literal["walk", "cr3", "l3-check", "predict", "build", "refuse", "bughunt"]
KIND_NAMES: tuple[KindName, ...] = get_args(KindName)


@dataclass(frozen=True)
class Verdict:
    """A judge's decision. `hints`, when given, answer this very mistake and replace the
    problem's generic hints for this try."""

    ok: bool
    message: str
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """One question with its answer, made by the code that judges it."""

    kind: KindName
    question: str
    answer: Any
    data: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    hints: tuple[str, ...] = ()
    seed: int | None = None
    difficulty: Difficulty = "normal"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        """`kind/seed/difficulty[/key=value...]`: `pvlab.check` accepts it to regenerate."""
        opts = "".join(f"/{k}={v}" for k, v in self.options)
        return f"{self.kind}/{self.seed}/{self.difficulty}{opts}"

    def judge(self, answer: Any) -> Verdict:
        return KINDS[self.kind].judge(self, answer)

    def text(self, *, answer: bool = False) -> str:
        out = [self.question]
        if answer:
            out += ["", f"Answer: {format_answer(self.answer)}"]
            if self.explanation:
                out += ["", self.explanation]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        """The question only: a notebook's plain-text output (a console, nbconvert to text,
        a front end without markdown) must not show the answer, the explanation or the
        hints (`pvlab.check` gives those, one try at a time)."""
        return f"Problem ({self.kind}):\n{self.question}"

    def _repr_markdown_(self) -> str:
        return f"```text\n{self.question}\n```"


def format_answer(answer: Any) -> str:
    if isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, int):
        return hex(answer)
    if isinstance(answer, tuple) and len(answer) == 2 and answer[0] in ("#PF", "#GP"):
        return repr(answer[0] if answer[1] is None else f"{answer[0]} at L{answer[1]}")
    if isinstance(answer, tuple):
        return "(" + ", ".join(format_answer(a) if not isinstance(a, str) else repr(a)
                               for a in answer) + ")"
    if isinstance(answer, list):
        return "[" + ", ".join(format_answer(a) for a in answer) + "]"
    return repr(answer)


@dataclass(frozen=True)
class Kind:
    name: KindName
    summary: str
    judge: Callable[[Problem, Any], Verdict]
    make: Callable[..., Problem] | None = None  # make(rng, difficulty, **options)
    options: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind
