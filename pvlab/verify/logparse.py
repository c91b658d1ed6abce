# SPDX-License-Identifier: MIT
"""Read the probe's serial log: per scenario, the frames it got and each step's return code,
with the Xen log lines (debug build) printed while that step ran."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PVLAB = re.compile(r"PVLAB: scenario (\d+) (\S+)(?: (.*))?$")
_XEN = re.compile(r"^\(XEN\) (?:\[[ \d.]+\] )?(.*)$")
_VERSION = re.compile(r"PVLAB: probe (\d+)-bit dom0 on Xen (\d+\.\d+)")


_ASSERT = re.compile(r"Assertion '(.*)' failed at (\S+)")
_PANIC = re.compile(r"Panic on CPU \d+")


@dataclass
class XenPanic:
    """Xen crashed: the panic message (an assertion, BUG, fatal trap), its call trace, and
    where the probe was: the scenario id, and the number of the last step it reported
    (0: none yet, the next replayed step crashed; None: during the scenario's set-up)."""

    message: str
    trace: list[str] = field(default_factory=list)
    scenario: int | None = None
    after_step: int | None = None

    @property
    def assertion(self) -> str | None:
        m = _ASSERT.search(self.message)
        return m.group(1) if m else None

    def summary(self) -> str:
        """One line: the message and the innermost function of the call trace."""
        where = f" in {self.function}" if self.function else ""
        return f"Xen panics: {self.message}{where}"

    @property
    def function(self) -> str | None:
        for line in self.trace:
            m = re.search(r"\] [RF]?\s*(?:\S+#)?([A-Za-z_][\w.]*)\+0x", line)
            if m and m.group(1) not in ("assert_failed", "do_bug", "panic"):
                return m.group(1)
        return None


@dataclass
class XenStep:
    rc: int | None = None
    #: a grant operation's own status (GNTST_*), when the hypercall returned 0
    gntst: int | None = None
    value: int | None = None
    log: list[str] = field(default_factory=list)
    #: the step made Xen panic (no return code)
    panic: XenPanic | None = None
    #: the agent domU that issued it never answered (Xen crashed its domain)
    lost: bool = False


@dataclass
class XenScenario:
    frames: dict[int, int] = field(default_factory=dict)
    domid: int | None = None
    setup_failed: str | None = None
    setup_log: list[str] = field(default_factory=list)
    steps: dict[int, XenStep] = field(default_factory=dict)
    ended: bool = False
    ready: bool = False


@dataclass
class BootLog:
    probe_bits: int | None = None
    xen_version: str | None = None
    done: bool = False
    scenarios: dict[int, XenScenario] = field(default_factory=dict)
    last_xen_lines: list[str] = field(default_factory=list)
    #: Xen crashed during this boot (the rest of the boot's scenarios did not run)
    panic: XenPanic | None = None


def parse_log(text: str) -> BootLog:
    boot = BootLog()
    pending: list[str] = []  # Xen lines since the probe's last line
    recent: list[str] = []
    current: int | None = None  # the scenario the probe is in
    in_trace = False
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        xen = _XEN.match(line)
        if xen:
            body = xen.group(1)
            pending.append(body)
            recent = (recent + [body])[-20:]
            if boot.panic is None and (_ASSERT.search(body) or _PANIC.search(body)
                                       or body.startswith("FATAL TRAP")):
                boot.panic = _new_panic(boot, current, body)
            elif boot.panic is not None:
                if body.startswith("Xen call trace"):
                    in_trace = True
                elif in_trace and body.strip().startswith("[<"):
                    boot.panic.trace.append(body.strip())
                elif in_trace:
                    in_trace = False
            continue
        if line.startswith("PVLAB: done"):
            boot.done = True
            continue
        version = _VERSION.search(line)
        if version:
            boot.probe_bits, boot.xen_version = int(version.group(1)), version.group(2)
            pending = []
            continue
        m = _PVLAB.search(line)
        if not m:
            continue
        sid, what, rest = int(m.group(1)), m.group(2), m.group(3) or ""
        current = sid
        scn = boot.scenarios.setdefault(sid, XenScenario())
        if what == "frame":
            idx, _, mfn = rest.partition(" mfn=")
            scn.frames[int(idx)] = int(mfn, 16)
        elif what == "domid":
            scn.domid = int(rest)
        elif what == "setup-failed":
            scn.setup_failed = rest
            scn.setup_log = pending
        elif what == "step":
            num, _, result = rest.partition(" ")
            step = XenStep(log=pending)
            if result.startswith("rc="):
                fields = dict(w.split("=", 1) for w in result.split() if "=" in w)
                step.rc = int(fields["rc"])
                step.gntst = int(fields["gntst"]) if "gntst" in fields else None
            elif result == "lost":  # the agent stopped answering (its domain crashed)
                step.lost = True
            elif result.startswith("value="):
                step.value = int(result[6:], 16)
            scn.steps[int(num)] = step
        elif what == "end":
            scn.ended = True
        elif what == "ready":
            scn.ready = True
        pending = []
    boot.last_xen_lines = recent
    return boot


def _new_panic(boot: BootLog, sid: int | None, line: str) -> XenPanic:
    """A panic seen while scenario `sid` ran: after its last reported step, in set-up if it
    had not said "ready"."""
    message = re.sub(r"^Panic on CPU \d+:?\s*", "", line).strip() or line.strip()
    panic = XenPanic(message, scenario=sid)
    scn = boot.scenarios.get(sid) if sid is not None else None
    if scn is not None and not scn.ended:
        panic.after_step = max(scn.steps) if scn.steps else (0 if scn.ready else None)
    return panic


def main_line(lines: list[str]) -> str | None:
    """The Xen line to show for a step: the first diagnostic, without the source position."""
    for line in lines:
        text = re.sub(r"^\S+\.c:\d+:", "", line).strip()
        if text:
            return text
    return None
