# SPDX-License-Identifier: MIT
"""Outcomes and their explanation traces.

Every operation of the core returns an :class:`Outcome`: the return code Xen would
give, and the ordered :class:`Event` list of the checks that led there, each naming
the Xen function it models. Tests, the UI and the command line read the same trace.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Literal

#: What a check decided: it passed, it refused (the operation fails), or a note.
Decision = Literal["pass", "fail", "info"]


class Errno(enum.IntEnum):
    """Xen's errno values (`xen/include/public/errno.h`); hypercalls return them negated."""

    EPERM = 1
    ENOENT = 2
    ESRCH = 3
    EINTR = 4
    EAGAIN = 11
    ENOMEM = 12
    EACCES = 13
    EFAULT = 14
    EBUSY = 16
    EEXIST = 17
    EINVAL = 22
    ERANGE = 34
    ENOSYS = 38
    EILSEQ = 84
    ERESTART = 85
    EOPNOTSUPP = 95


def errno_name(rc: int) -> str:
    """`"ok"` for 0, else the errno name of a negative return code (`-34` -> `"ERANGE"`)."""
    if rc == 0:
        return "ok"
    try:
        return Errno(-rc).name
    except ValueError:
        return f"E{-rc}"


#: The result of an operation that made Xen panic (see :attr:`Outcome.crash`).
CRASH = "crash"
#: Results that are neither 0 nor an errno (:attr:`Outcome.fate`).
SHADOWED, DOMAIN_CRASHED, UNMODELLED = "shadowed", "domain_crashed", "unmodelled"
FATES = (SHADOWED, DOMAIN_CRASHED, UNMODELLED)


#: How an event becomes the line Xen's debug build prints for it. `pvlab.xen.logformats`
#: (which knows Xen's messages) installs it when `pvlab.xen` is imported, so this bottom
#: layer needs no import of the hypervisor model.
XenLogLine = Callable[["Event", int], "str | None"]
_xen_log_renderers: list[XenLogLine] = []


def install_xen_log_line(render: XenLogLine) -> None:
    """Set the renderer `Outcome.xen_log()` and `Outcome.explain()` use."""
    _xen_log_renderers[:] = [render]


def _xen_log_line(ev: Event, rc: int) -> str | None:
    return _xen_log_renderers[0](ev, rc) if _xen_log_renderers else None


@dataclass(frozen=True)
class Event:
    """One check and what it decided."""

    check: str
    decision: Decision
    explanation: str
    xen_function: str
    mfn: int | None = None
    index: int | None = None
    level: int | None = None
    depth: int = 0

    def line(self) -> str:
        mark = {"pass": "ok  ", "fail": "FAIL", "info": "    "}.get(self.decision, "    ")
        return f"{'  ' * self.depth}{mark} {self.explanation}  [{self.xen_function}]"


@dataclass
class Counters:
    """What an operation cost, in the units Xen's own work is counted in."""

    hypercalls: int = 0
    type_acquisitions: int = 0
    validations: int = 0
    entries_checked: int = 0
    max_depth: int = 0

    def add(self, other: Counters) -> None:
        for f in fields(self):
            if f.name == "max_depth":
                self.max_depth = max(self.max_depth, other.max_depth)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Outcome:
    """The result of one operation: Xen's return code plus the trace that explains it."""

    op: str
    rc: int = 0
    events: list[Event] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    failed_mfn: int | None = None
    failed_index: int | None = None
    #: What the hypercall handed back, e.g. the MFN `XENMEM_populate_physmap` allocated.
    allocated: int | None = None
    #: Set when the operation made Xen panic (a debug build's failed assertion): the
    #: panic message, e.g. "Assertion 'unreachable' failed in promote_l4_table". The host
    #: is gone: there is no return code, and nothing runs after it.
    crash: str | None = None
    #: A multicall's entries: each call's own outcome, in order (`multicall_entry.result`).
    calls: list[Outcome] = field(default_factory=list)
    #: A grant-table operation's own status (`GNTST_*`, 0 = okay) when the hypercall
    #: itself returned `rc` 0 (`pvlab.xen.grant_status`); None for other operations.
    status: int | None = None
    #: The name of `status` (set with it, e.g. "GNTST_general_error").
    status_name: str | None = None
    #: What happened to the calling domain besides a return code (see :data:`FATES`):
    #: "shadowed" (the PV L1TF mitigation switched it to shadow paging, the retried call
    #: then succeeded), "domain_crashed" (`domain_crash`), or "unmodelled" (the call
    #: needs a setting pvlab does not model; the trace says which).
    fate: str | None = None

    @property
    def ok(self) -> bool:
        return (self.rc == 0 and self.crash is None and not self.status
                and self.fate in (None, SHADOWED))

    @property
    def crashed(self) -> bool:
        """Xen panicked during this operation (see :attr:`crash`)."""
        return self.crash is not None

    @property
    def errno(self) -> str | None:
        return None if self.rc == 0 else errno_name(self.rc)

    @property
    def result(self) -> str:
        """`"ok"`, the errno name, or `"crash"` (Xen panicked), as scenario files write
        expectations."""
        if self.crash is not None:
            return CRASH
        if self.fate is not None and (self.fate != SHADOWED or self.rc == 0):
            return self.fate
        if self.rc == 0 and self.status:
            return self.status_name or f"GNTST({self.status})"
        return errno_name(self.rc)

    @property
    def failure(self) -> Event | None:
        """The deepest-first failing event: where the operation stopped."""
        for ev in self.events:
            if ev.decision == "fail":
                return ev
        return None

    @property
    def reason(self) -> str:
        if self.crash is not None:
            return f"Xen panics: {self.crash}"
        ev = self.failure
        return ev.explanation if ev else ""

    def xen_log(self) -> list[str]:
        """The lines Xen's debug build prints for this operation's failing checks (gdprintk
        text, numbers filled; see `pvlab.xen.logformats.xen_log_line`)."""
        lines = (_xen_log_line(ev, self.rc) for ev in self.events)
        return [line for line in lines if line]

    def explain(self) -> str:
        head = f"{self.op}: {self.result}" + (f" ({self.rc})" if self.rc else "") + (
            f" (hypercall 0, status {self.status})" if self.rc == 0 and self.status else "")
        if self.crash is not None:
            head = f"{self.op}: Xen panics: {self.crash}"
        lines = [head]
        for ev in self.events:
            lines.append(ev.line())
            log = _xen_log_line(ev, self.rc)
            if log:
                lines.append(f"{'  ' * ev.depth}     xen: {log}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        why = f" — {self.reason}" if self.rc or self.crash or self.status else ""
        return f"<Outcome {self.op}: {self.result}{why}>"


class Tracer:
    """Collects events and counters while one operation runs (internal to the core)."""

    def __init__(self, op: str) -> None:
        self.outcome = Outcome(op=op)
        self.depth = 0

    def event(self, check: str, decision: Decision, explanation: str, xen_function: str, *,
              mfn: int | None = None, index: int | None = None,
              level: int | None = None) -> None:
        self.outcome.events.append(Event(check, decision, explanation, xen_function,
                                         mfn, index, level, self.depth))
        if decision == "fail" and self.outcome.failed_mfn is None:
            self.outcome.failed_mfn = mfn
            self.outcome.failed_index = index

    @contextmanager
    def deeper(self) -> Iterator[None]:
        self.depth += 1
        c = self.outcome.counters
        c.max_depth = max(c.max_depth, self.depth)
        try:
            yield
        finally:
            self.depth -= 1

    def finish(self, rc: int) -> Outcome:
        self.outcome.rc = rc
        return self.outcome
