# SPDX-License-Identifier: MIT
"""Read Xen console lines and explain the ones Xen's PV memory-management code printed.

A line may carry `(XEN) ` and a timestamp (`xl dmesg`, a serial log) or neither (pasted
text), then the printer's own prefix: `arch/x86/mm.c:1157:d0v0 ` (gdprintk, debug builds),
`file:line: ` (dprintk) or `d0v0 ` (gprintk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pvlab.explain.decode import decode_field
from pvlab.explain.notes import note
from pvlab.xen.logformats import LOG_FORMATS, LogFormat, pattern

_CONSOLE = re.compile(r"^\s*(?:\((?:XEN)\)\s?|\[[^\]]{1,40}\]\s?|<[0-9G]>)")
_POSITION = re.compile(r"^(?P<file>[\w./-]+\.[ch]):(?P<line>\d+):\s?"
                       r"(?P<who>d(?:\d+|\[[A-Za-z?]+\])v\d+)?\s?")
_WHO = re.compile(r"^(?P<who>d(?:\d+|\[[A-Za-z?]+\])v\d+) ")
_GUEST = re.compile(r"^\s*\(d\d+\)")

#: The files whose messages are Xen's PV memory management (what `mm` means below).
MM_FILES = re.compile(r"(^|/)(mm\.c|domain\.c|pv/[\w-]+\.c|asm/mm\.h)$")


# Where the "Bad Ln flags" messages sit in the releases the profiles stand for (4.17.5 as
# Debian builds it, 4.17.5 + the oracle's patch, 4.19.x, 4.20.x): promotion or update.
_PROMOTION_LINES = {1: {877, 858, 873}, 2: {1134, 1118, 1133}, 3: {1157, 1141, 1156},
                    4: {1181, 1165, 1180}}
_UPDATE_LINES = {1: {2160, 2161, 2177}, 2: {2276, 2277, 2293}, 3: {2338, 2339, 2355},
                 4: {2400, 2401, 2417}}


def _function_at(fmt: LogFormat, position: str | None) -> str:
    """The one Xen function that printed a message two functions share, where the source
    position tells (known releases only)."""
    if position is None or not fmt.id.startswith("bad_l") or fmt.level is None:
        return fmt.xen_function
    line = int(position.rsplit(":", 1)[1])
    if line in _PROMOTION_LINES[fmt.level]:
        return f"get_page_from_l{fmt.level}e (promotion of a table)"
    if line in _UPDATE_LINES[fmt.level]:
        return f"mod_l{fmt.level}_entry (update of a live table)"
    return fmt.xen_function


@dataclass
class Decoded:
    raw: str
    value: int | str
    meaning: str


@dataclass
class Explanation:
    """One input line and what is known about it."""

    line: str
    matched: bool = False
    format_id: str | None = None
    rule: str | None = None
    xen_function: str | None = None
    source: str | None = None
    position: str | None = None  # file:line as printed (debug builds)
    vcpu: str | None = None
    printer: str | None = None
    decoded: dict[str, Decoded] = field(default_factory=dict)
    explanation: str = ""
    fix: str = ""
    #: Printed by the PV memory-management code (mm.c, pv/*.c, domain.c), matched or not.
    mm: bool = False
    xen: bool = False  # a hypervisor line (not a guest's console, not blank)

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line, "matched": self.matched, "rule": self.rule,
            "xen_function": self.xen_function, "source": self.source,
            "message": self.format_id, "position": self.position, "vcpu": self.vcpu,
            "decoded": {k: {"raw": d.raw, "value": d.value, "meaning": d.meaning}
                        for k, d in self.decoded.items()},
            "explanation": self.explanation, "fix": self.fix, "mm": self.mm,
        }


def split_prefix(line: str) -> tuple[str, str | None, str | None, bool]:
    """(message, file:line, vCPU, is-a-Xen-line) of one console line."""
    text = line.rstrip("\r\n")
    xen = False
    while True:
        m = _CONSOLE.match(text)
        if not m or not m.group(0):
            break
        xen = xen or "(XEN)" in m.group(0)
        text = text[m.end():]
    position = who = None
    m = _POSITION.match(text)
    if m:
        position, who = f"{m.group('file')}:{m.group('line')}", m.group("who")
        text = text[m.end():]
    else:
        w = _WHO.match(text)
        if w:
            who = w.group("who")
            text = text[w.end():]
    return text.strip(), position, who, xen


def _candidates(message: str) -> list[tuple[LogFormat, re.Match[str]]]:
    found = []
    for fmt in LOG_FORMATS:
        for text in fmt.formats:
            m = pattern(text, whole=fmt.newline).match(message)
            if m:
                found.append((fmt, m))
                break
    return found


def _same_file(fmt: LogFormat, position: str) -> bool:
    file = position.rsplit(":", 1)[0]
    return file.endswith(fmt.source.rsplit("/", 1)[-1]) or fmt.printer in ("printk", "panic")


def explain_line(line: str) -> Explanation:
    message, position, who, xen = split_prefix(line)
    ex = Explanation(line=line.rstrip("\r\n"), position=position, vcpu=who)
    ex.xen = bool(message) and not _GUEST.match(line) and (xen or position is not None
                                                           or who is not None)
    if position and MM_FILES.search(position.rsplit(":", 1)[0]):
        ex.mm = True
    if not message:
        return ex
    found = _candidates(message)
    if position:
        found = [c for c in found if _same_file(c[0], position)]
    if not found:
        if ex.mm:
            ex.explanation = "A message of Xen's memory-management code that pvlab does not know."
        else:
            ex.explanation = "Not a message of Xen's PV memory-management code known to pvlab."
        return ex
    fmt, m = found[0]
    ex.matched = True
    ex.xen = ex.xen or not _GUEST.match(line)
    ex.format_id, ex.rule, ex.xen_function = fmt.id, fmt.rule, _function_at(fmt, position)
    ex.source, ex.printer = fmt.source, fmt.printer
    for i, raw in enumerate(m.groups()):
        name = fmt.fields[i] if i < len(fmt.fields) else f"value{i}"
        try:
            value, meaning = decode_field(name, raw, fmt.level)
        except ValueError:
            value, meaning = raw, ""
        ex.decoded[name] = Decoded(raw, value, meaning)
    if MM_FILES.search(fmt.source):
        ex.mm = True
    if fmt.id in ("assertion", "xen_bug", "xen_warn"):
        file = str(ex.decoded["file"].value)
        ex.mm = bool(MM_FILES.search(file))
        ex.decoded["file"].meaning = ("Xen's PV memory management" if ex.mm
                                      else "outside the PV memory-management code")
    ex.explanation, ex.fix = note(fmt.id, fmt.xen_function)
    flags = ex.decoded.get("flags")
    if fmt.id.startswith("bad_l") and flags is not None and flags.meaning:
        ex.fix = f"clear {flags.meaning.split(' ')[0]} in the L{fmt.level} entry: {ex.fix}"
    rest = message[m.end():].strip()
    if rest:
        ex.explanation += (f" (Xen prints this message without a newline, so the next message, "
                           f"'{rest}', is glued to it.)")
    return ex


def explain_text(text: str) -> list[Explanation]:
    """One :class:`Explanation` per line of `text` (blank lines included, never dropped)."""
    return [explain_line(line) for line in text.splitlines()]


@dataclass(frozen=True)
class Coverage:
    mm_lines: int
    recognised: int

    @property
    def ratio(self) -> float:
        return self.recognised / self.mm_lines if self.mm_lines else 1.0


def coverage(explanations: list[Explanation]) -> Coverage:
    """How many of the memory-management lines were recognised."""
    mm = [e for e in explanations if e.mm]
    return Coverage(len(mm), sum(1 for e in mm if e.matched))
