# SPDX-License-Identifier: MIT
"""Problems and the kinds that make and judge them.

A :class:`Problem` carries its question, its answer and the data both came from; the
same kind's `judge` decides whether a learner's answer is right and says what is wrong,
and its `hints` nudge without giving the answer. Generated problems and the course's
fixed exercises are the same objects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pvlab.errors import PvlabError

DIFFICULTIES = ("pencil", "normal", "hard")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


@dataclass(frozen=True)
class Problem:
    """One question with its answer, made by the code that judges it."""

    kind: str
    question: str
    answer: Any
    data: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    hints: tuple[str, ...] = ()
    seed: int | None = None
    difficulty: str = "normal"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        """`kind/seed/difficulty[/key=value...]`: `pvlab.check` accepts it to regenerate."""
        opts = "".join(f"/{k}={v}" for k, v in self.options)
        return f"{self.kind}/{self.seed}/{self.difficulty}{opts}"

    def judge(self, answer: Any) -> Verdict:
        return KINDS[self.kind].judge(self, answer)

    def check(self, answer: Any) -> Any:
        """Same as `pvlab.check(problem, answer)`."""
        from pvlab.exercises.checking import check
        return check(self, answer)

    def text(self, *, answer: bool = False) -> str:
        out = [self.question]
        if answer:
            out += ["", f"Answer: {format_answer(self.answer)}"]
            if self.explanation:
                out += ["", self.explanation]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

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
    name: str
    summary: str
    judge: Callable[[Problem, Any], Verdict]
    make: Callable[..., Problem] | None = None  # make(rng, difficulty, **options)
    options: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def generate(kind: str, seed: int = 0, difficulty: str = "normal", **options: Any) -> Problem:
    """A fresh problem of `kind` and its solution, from its own `random.Random(seed)`.

    The same (kind, seed, difficulty, options) gives the same problem on every machine.
    """
    from pvlab.exercises import kinds  # noqa: F401  (registers the kinds)

    k = KINDS.get(kind)
    if k is None or k.make is None:
        raise PvlabError(f"unknown problem kind {kind!r}",
                         f"use one of: {', '.join(generator_kinds())}")
    if difficulty not in DIFFICULTIES:
        raise PvlabError(f"unknown difficulty {difficulty!r}",
                         f"use one of: {', '.join(DIFFICULTIES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PvlabError(f"seed {seed!r} is not a non-negative integer", "use e.g. seed=42")
    for key in options:
        if key not in k.options:
            allowed = ", ".join(k.options) or "none"
            raise PvlabError(f"kind {kind!r} has no option {key!r}", f"options: {allowed}")
    rng = random.Random(seed)
    p = k.make(rng, difficulty, **options)
    opts = tuple(sorted((key, v) for key, v in options.items() if v is not None))
    return Problem(p.kind, p.question, p.answer, p.data, p.explanation, p.hints, seed,
                   difficulty, opts)


def generator_kinds() -> list[str]:
    from pvlab.exercises import kinds  # noqa: F401

    return sorted(name for name, k in KINDS.items() if k.make is not None)


def parse_problem_id(text: str) -> Problem | None:
    """Regenerate a problem from its id `kind/seed/difficulty[/key=value...]`, else None."""
    parts = text.split("/")
    if len(parts) < 3 or not parts[1].isdigit():
        return None
    options: dict[str, Any] = {}
    for opt in parts[3:]:
        key, _, value = opt.partition("=")
        options[key] = (int(value) if value.isdigit() else
                        {"True": True, "False": False}.get(value, value))
    return generate(parts[0], int(parts[1]), parts[2], **options)
