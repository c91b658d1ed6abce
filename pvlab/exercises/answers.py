# SPDX-License-Identifier: MIT
"""Reading learners' answers: numbers, results (ok / errno), faults, rule ids, YAML.

Every reader returns a value or raises `AnswerError` with a message saying what form
the answer should take. Nothing here evaluates code: strings are parsed, never run.
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


def as_int(answer: Any, what: str) -> int:
    """An int, or a string such as `"0x1f"`, `"31"`, `"0b11111"`, `"0x0010_0000"`."""
    if isinstance(answer, bool):
        raise AnswerError(f"{what}: {answer!r} is not a number", "give an int such as 0x1234")
    if isinstance(answer, int):
        return answer
    if isinstance(answer, str):
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
    if isinstance(answer, str):
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
    if isinstance(answer, str) and answer.strip() in RULE_IDS:
        return answer.strip()
    raise AnswerError(f"{answer!r} is not a rule id",
                      "print pvlab.exercises.reasons() for the list of rule ids")


def as_prediction(answer: Any) -> tuple[str, str | None]:
    """`("EINVAL", "rule_id")`, `("ok", None)`, or just `"ok"` / `"EINVAL"`."""
    if isinstance(answer, tuple | list):
        if len(answer) != 2:
            raise AnswerError(f"{answer!r} has {len(answer)} parts",
                              'give (result, reason), e.g. ("EINVAL", "l2_flags") or ("ok", None)')
        return as_result(answer[0]), as_rule(answer[1])
    return as_result(answer), None


_FAULT_RE = re.compile(r"#?\s*(pf|gp|page[- ]fault|general[- ]protection)", re.I)
_LEVEL_RE = re.compile(r"\b(?:l|level\s*)([1-4])\b", re.I)


def as_translation(answer: Any) -> int | tuple[str, int | None]:
    """A physical address (int), or a fault: `"#PF at L2"`, `"#GP"`, `("#PF", 2)`."""
    if isinstance(answer, tuple | list) and len(answer) == 2:
        fault = as_translation(str(answer[0]))
        if not isinstance(fault, tuple):
            raise AnswerError(f"{answer!r} is not a fault", 'write e.g. ("#PF", 2) or "#GP"')
        level = None if answer[1] is None else as_int(answer[1], "fault level")
        return fault[0], level
    if isinstance(answer, str):
        m = _FAULT_RE.search(answer)
        if m:
            kind = "#GP" if m.group(1).lower().startswith(("gp", "general")) else "#PF"
            lv = _LEVEL_RE.search(answer[m.end():]) or _LEVEL_RE.search(answer)
            return kind, int(lv.group(1)) if lv else None
    try:
        return as_int(answer, "physical address")
    except AnswerError:
        raise AnswerError(f"{answer!r} is neither a physical address nor a fault",
                          'give an int such as 0x5123, or a fault such as "#PF at L2" or '
                          '"#GP"') from None


def as_entry(answer: Any) -> tuple[str, int]:
    """A pagetable entry named by frame and index: `("l1", 5)`."""
    if (isinstance(answer, tuple | list) and len(answer) == 2
            and isinstance(answer[0], str)):
        return answer[0].strip(), as_int(answer[1], "entry index")
    raise AnswerError(f"{answer!r} does not name an entry",
                      'give the frame name and the index, e.g. ("l2", 3)')


def as_bools(answer: Any, n: int) -> list[bool]:
    """A list of `n` yes/no decisions (True/False, "yes"/"no", 1/0)."""
    if not isinstance(answer, list | tuple):
        raise AnswerError(f"{answer!r} is not a list", f"give a list of {n} True/False values")
    out = []
    for x in answer:
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
    """A scenario: YAML text or a loaded `Scenario`."""
    if isinstance(answer, Scenario):
        return answer
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError(f"{type(answer).__name__} is not a scenario",
                          "give the scenario as YAML text (see docs/scenarios.md)")
    try:
        # A trailing newline makes load_scenario read text, never a file path.
        return load_scenario(answer + "\n", source=f"<{exercise}>")
    except ScenarioError as err:
        raise AnswerError(f"the scenario is invalid: {err.message}", err.fix) from None
