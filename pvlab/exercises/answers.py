# SPDX-License-Identifier: MIT
"""Reading learners' answers: numbers, results (ok / errno), faults, rule ids, YAML.

Every reader returns a value or raises `AnswerError` with a message saying what form
the answer should take. An answer that names several candidates ("#PF at L3 or L2",
`[0x5123, 0x6123]`, `("EINVAL or EBUSY", None)`) raises `Hedge`, which the checks judge
as a wrong answer: a check accepts exactly one answer, never a choice that contains it.
Nothing here evaluates code: strings are parsed, never run.
"""

from __future__ import annotations

import re
from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario import Scenario, ScenarioError, load_scenario
from pvlab.trace import Errno
from pvlab.xen.rules import all_rules

RULE_IDS = frozenset(r.id for r in all_rules())


class AnswerError(PvlabError):
    """The answer is not in a form the check can read."""


class Hedge(AnswerError):
    """The answer names several candidates at once: a wrong answer, not an unreadable one."""


_MANY = (list, tuple, set, frozenset)
_HEDGE_WORDS = re.compile(r"\b(or|either|maybe|perhaps|possibly|probably|both)\b|[?/|]", re.I)
_NUMBER_RE = re.compile(r"-?(?:0x[0-9a-f_]+|0b[01_]+|0o[0-7_]+|\d[\d_]*)", re.I)


def _several(what: str, answer: Any) -> Hedge:
    return Hedge(f"{what}: {answer!r} names several answers, and a hedge counts as wrong: "
                 "a check accepts exactly one answer", "commit to one answer")


def is_hedged_text(text: str) -> bool:
    """Words that offer a choice ("or", "maybe", "/", "?")."""
    return bool(_HEDGE_WORDS.search(text))


def as_int(answer: Any, what: str) -> int:
    """An int, or a string such as `"0x1f"`, `"31"`, `"0b11111"`, `"0x0010_0000"`."""
    if isinstance(answer, bool):
        raise AnswerError(f"{what}: {answer!r} is not a number", "give an int such as 0x1234")
    if isinstance(answer, int):
        return answer
    if isinstance(answer, _MANY) and len(answer) > 1:
        raise _several(what, answer)
    if isinstance(answer, _MANY) and len(answer) == 1:
        return as_int(next(iter(answer)), what)
    if isinstance(answer, str):
        if len(set(_NUMBER_RE.findall(answer))) > 1:
            raise _several(what, answer)
        try:
            return int(answer.strip().replace("_", ""), 0)
        except ValueError:
            pass
    raise AnswerError(f"{what}: {answer!r} is not a number", "give an int such as 0x1234")


def as_result(answer: Any) -> str:
    """`"ok"` or an errno name (`"EINVAL"`, `"-EINVAL"`, `-22`, `22` and `0` work too)."""
    if isinstance(answer, bool):
        raise AnswerError(f"{answer!r} is not a result", 'write "ok" or an errno name')
    if isinstance(answer, int):
        if answer == 0:
            return "ok"
        try:
            return Errno(abs(answer)).name
        except ValueError:
            raise AnswerError(f"{answer} is not one of Xen's errno values",
                              'write "ok" or a name such as "EINVAL"') from None
    if isinstance(answer, _MANY):
        raise _several("result", answer)
    if isinstance(answer, str):
        named = {w.upper() for w in re.findall(r"[A-Za-z]+", answer)
                 if w.upper() in Errno.__members__ or w.upper() in ("OK", "SUCCESS")}
        if len(named) > 1:
            raise _several("result", answer)
        s = answer.strip().lstrip("-").upper()
        if s in ("OK", "0", "SUCCESS"):
            return "ok"
        if s in Errno.__members__:
            return s
    raise AnswerError(f"{answer!r} is not a result", 'write "ok" or an errno name such as '
                      '"EINVAL"')


def as_rule(answer: Any) -> str | None:
    """A rule id from the rules registry (`pvlab.exercises.reasons()`), or None."""
    if answer is None or (isinstance(answer, str) and answer.strip().lower() in ("", "none")):
        return None
    if isinstance(answer, _MANY):
        raise _several("reason", answer)
    if isinstance(answer, str) and len(set(re.findall(r"\w+", answer)) & RULE_IDS) > 1:
        raise _several("reason", answer)
    if isinstance(answer, str) and answer.strip() in RULE_IDS:
        return answer.strip()
    raise AnswerError(f"{answer!r} is not a rule id",
                      "print pvlab.exercises.reasons() for the list of rule ids")


def as_prediction(answer: Any) -> tuple[str, str | None]:
    """`("EINVAL", "rule_id")`, `("ok", None)`, or just `"ok"` / `"EINVAL"`."""
    if isinstance(answer, tuple | list):
        if answer and all(isinstance(a, _MANY) for a in answer):
            raise _several("prediction", answer)
        if len(answer) != 2:
            raise AnswerError(f"{answer!r} has {len(answer)} parts",
                              'give (result, reason), e.g. ("EINVAL", "l2_flags") or ("ok", None)')
        return as_result(answer[0]), as_rule(answer[1])
    return as_result(answer), None


_FAULT_RE = re.compile(r"#?\s*(pf|gp|page[- ]fault|general[- ]protection)", re.I)
_LEVEL_RE = re.compile(r"\b(?:l|level\s*)([1-4])\b", re.I)


def as_translation(answer: Any) -> int | tuple[str, int | None]:
    """A physical address (int), or a fault: `"#PF at L2"`, `"#GP"`, `("#PF", 2)`."""
    if isinstance(answer, tuple | list) and len(answer) == 2 and isinstance(answer[0], str):
        if isinstance(answer[1], str) and _FAULT_RE.search(answer[1]):
            raise _several("translation", answer)
        fault = as_translation(answer[0])
        if not isinstance(fault, tuple):
            raise AnswerError(f"{answer!r} is not a fault", 'write e.g. ("#PF", 2) or "#GP"')
        level = None if answer[1] is None else as_int(answer[1], "fault level")
        if fault[1] is not None and level is not None and level != fault[1]:
            raise _several("fault", answer)
        return fault[0], level if level is not None else fault[1]
    if isinstance(answer, _MANY):
        if len(answer) == 1:
            return as_translation(next(iter(answer)))
        raise _several("translation", answer)
    if isinstance(answer, str):
        kinds = {"#GP" if m.group(1).lower().startswith(("gp", "general")) else "#PF"
                 for m in _FAULT_RE.finditer(answer)}
        if len(kinds) > 1:
            raise _several("fault", answer)
        if kinds:
            levels = {int(lv) for lv in _LEVEL_RE.findall(answer)}
            if len(levels) > 1 or (is_hedged_text(answer) and re.search(r"0x", answer, re.I)):
                raise _several("fault", answer)
            return kinds.pop(), levels.pop() if levels else None
    try:
        return as_int(answer, "physical address")
    except Hedge:
        raise
    except AnswerError:
        raise AnswerError(f"{answer!r} is neither a physical address nor a fault",
                          'give an int such as 0x5123, or a fault such as "#PF at L2" or '
                          '"#GP"') from None


def as_entry(answer: Any) -> tuple[str, int]:
    """A pagetable entry named by frame and index: `("l1", 5)`."""
    if (isinstance(answer, tuple | list) and len(answer) == 2
            and isinstance(answer[0], str)):
        if is_hedged_text(answer[0]) or "," in answer[0]:
            raise _several("frame", answer)
        return answer[0].strip(), as_int(answer[1], "entry index")
    if isinstance(answer, _MANY) and answer and all(isinstance(a, _MANY) for a in answer):
        raise _several("entry", answer)
    raise AnswerError(f"{answer!r} does not name an entry",
                      'give the frame name and the index, e.g. ("l2", 3)')


def as_bools(answer: Any, n: int) -> list[bool]:
    """A list of `n` yes/no decisions (True/False, "yes"/"no", 1/0)."""
    if not isinstance(answer, list | tuple):
        raise AnswerError(f"{answer!r} is not a list", f"give a list of {n} True/False values")
    out: list[bool] = []
    for x in answer:
        if x is None or isinstance(x, _MANY):
            raise _several(f"decision {len(out) + 1}", x)
        if isinstance(x, str) and is_hedged_text(x):
            raise _several(f"decision {len(out) + 1}", x)
        if isinstance(x, bool):
            out.append(x)
        elif isinstance(x, int) and x in (0, 1):
            out.append(bool(x))
        elif isinstance(x, str) and x.strip().lower() in ("yes", "no", "true", "false",
                                                           "trips", "passes"):
            out.append(x.strip().lower() in ("yes", "true", "trips"))
        else:
            raise AnswerError(f"{x!r} is not a yes/no decision", "use True or False")
    if len(out) != n:
        raise AnswerError(f"the list has {len(out)} decisions, not {n}",
                          "give one True/False per situation, in order")
    return out


def as_scenario(answer: Any, exercise: str) -> Scenario:
    """A scenario: YAML text or a loaded `Scenario`. The `name:` key is optional here."""
    if isinstance(answer, Scenario):
        return answer
    if isinstance(answer, _MANY) and len(answer) > 1:
        raise _several("scenario", answer)
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError(f"{type(answer).__name__} is not a scenario",
                          "give the scenario as YAML text (see docs/scenarios.md)")
    text = answer + "\n"  # a trailing newline makes load_scenario read text, never a path
    if not re.search(r"^name\s*:", text, re.M) and not text.lstrip().startswith("{"):
        text = f"name: {exercise}-answer\n" + text  # an answer need not name itself
    try:
        return load_scenario(text, source=f"<{exercise}>")
    except ScenarioError as err:
        raise AnswerError(f"the scenario is invalid: {err.message}", err.fix) from None
