# SPDX-License-Identifier: MIT
"""The seeded problem generator: `generate(kind, seed, difficulty, **options)`.

Importing this module imports `pvlab.exercises.kinds`, which registers every kind.
"""

from __future__ import annotations

import random
from typing import Any

from pvlab.errors import PvlabError
from pvlab.exercises import kinds as _kinds  # registers the kinds
from pvlab.exercises.problem import DIFFICULTIES, KINDS, Difficulty, Problem

assert _kinds.__all__  # the import above is for its side effect


def generate(kind: str, seed: int = 0, difficulty: Difficulty | str = "normal",
             **options: Any) -> Problem:
    """A fresh problem of `kind` and its solution, from its own `random.Random(seed)`.

    The same (kind, seed, difficulty, options) gives the same problem on every machine.
    """
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
    level: Difficulty = next(d for d in DIFFICULTIES if d == difficulty)
    return Problem(p.kind, p.question, p.answer, p.data, p.explanation, p.hints, seed,
                   level, opts)


def generator_kinds() -> list[str]:
    return sorted(name for name, k in KINDS.items() if k.make is not None)


def kind_options(kind: str) -> tuple[str, ...]:
    """The options a generator kind takes (`walk`: mode, fault; ...)."""
    k = KINDS.get(kind)
    return k.options if k is not None else ()


def parse_option(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, value) with ints and True/False read as such."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise PvlabError(f"option {text!r} is not key=value", "write e.g. mode=pae")
    parsed: Any = value
    if value.isdigit():
        parsed = int(value)
    elif value in ("True", "False", "true", "false"):
        parsed = value in ("True", "true")
    return key, parsed


def parse_problem_id(text: str) -> Problem | None:
    """Regenerate a problem from its id `kind/seed/difficulty[/key=value...]`, else None."""
    parts = text.split("/")
    if len(parts) < 3 or not parts[1].isdigit():
        return None
    options = dict(parse_option(opt) for opt in parts[3:])
    return generate(parts[0], int(parts[1]), parts[2], **options)
