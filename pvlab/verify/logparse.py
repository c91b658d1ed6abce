# SPDX-License-Identifier: MIT
"""Read the probe's serial log: per scenario, the frames it got and each step's return code,
with the Xen log lines (debug build) printed while that step ran."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PVLAB = re.compile(r"PVLAB: scenario (\d+) (\S+)(?: (.*))?$")
_XEN = re.compile(r"^\(XEN\) (?:\[[ \d.]+\] )?(.*)$")
_VERSION = re.compile(r"PVLAB: probe (\d+)-bit dom0 on Xen (\d+\.\d+)")


@dataclass
class XenStep:
    rc: int | None = None
    value: int | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class XenScenario:
    frames: dict[int, int] = field(default_factory=dict)
    domid: int | None = None
    setup_failed: str | None = None
    setup_log: list[str] = field(default_factory=list)
    steps: dict[int, XenStep] = field(default_factory=dict)
    ended: bool = False


@dataclass
class BootLog:
    probe_bits: int | None = None
    xen_version: str | None = None
    done: bool = False
    scenarios: dict[int, XenScenario] = field(default_factory=dict)
    last_xen_lines: list[str] = field(default_factory=list)


def parse_log(text: str) -> BootLog:
    boot = BootLog()
    pending: list[str] = []  # Xen lines since the probe's last line
    recent: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        xen = _XEN.match(line)
        if xen:
            pending.append(xen.group(1))
            recent = (recent + [xen.group(1)])[-20:]
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
                step.rc = int(result[3:])
            elif result.startswith("value="):
                step.value = int(result[6:], 16)
            scn.steps[int(num)] = step
        elif what == "end":
            scn.ended = True
        pending = []
    boot.last_xen_lines = recent
    return boot


def main_line(lines: list[str]) -> str | None:
    """The Xen line to show for a step: the first diagnostic, without the source position."""
    for line in lines:
        text = re.sub(r"^\S+\.c:\d+:", "", line).strip()
        if text:
            return text
    return None
