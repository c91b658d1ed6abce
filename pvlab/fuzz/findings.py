# SPDX-License-Identifier: MIT
"""What counts as a difference, its signature (kept while shrinking), and the finding file.

A result shows an *unknown difference* when Xen crashed (and no known entry names the
crash), the replay had a problem, or a step's results differ and no known entry matches.
Its signature is what must persist while the finding is shrunk: the kind, the operation
and both results (not the step number, which shrinking changes), or the crash headline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pvlab.fuzz.known import Known, known_crash, known_step
from pvlab.fuzz.oracle import Result
from pvlab.verify.compare import Row

Signature = tuple[str, ...]


def xen_word(row: Row) -> str:
    """Xen's result without the value read back ("held (0x...)" -> "held")."""
    return row.xen.split(" (")[0] if not row.xen.startswith("read failed") else row.xen


def _bitness(result: Result) -> int:
    return int((result.data.get("guest") or {}).get("bitness", 64))


def unknown_rows(result: Result, known: list[Known], profile: str) -> tuple[list[Row], int]:
    """The disagreeing rows no known entry explains, and how many were known."""
    if result.report is None:
        return [], 0
    out, nknown = [], 0
    for row in result.report.disagreements:
        if known_step(known, op=row.op, pvlab=row.pvlab, xen=xen_word(row), log=row.log,
                      bitness=_bitness(result), profile=profile,
                      earlier=result.xen_lines_before(row.step)):
            nknown += 1
        else:
            out.append(row)
    return out, nknown


def _headline_key(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{5,}\b", "#", text)


def signature(result: Result, known: list[Known], profile: str) -> Signature | None:
    """The signature of `result`'s first unknown difference, or None when there is none."""
    if result.crash is not None:
        if known_crash(known, result.crash.headline, profile):
            return None
        return ("crash", result.crash.kind, _headline_key(result.crash.headline))
    rep = result.report
    if rep is None:
        return None
    rows, _ = unknown_rows(result, known, profile)
    if rows:
        row = rows[0]
        return ("step", row.op, row.pvlab, xen_word(row))
    if rep.problem:
        return ("problem", _headline_key(rep.problem))
    return None


def kind_of(sig: Signature) -> str:
    return {"crash": "crash", "problem": "problem", "model-crash": "model crash"}.get(
        sig[0], "difference")


@dataclass
class Finding:
    """One unknown difference, shrunk: the reproducer and what each side said."""

    signature: Signature
    seed: int
    original_steps: int
    result: Result  # the shrunk scenario's result
    boots: int = 0  # boots spent shrinking
    duplicates: list[int] = field(default_factory=list)  # seeds with the same signature

    @property
    def kind(self) -> str:
        return kind_of(self.signature)

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    def slug(self) -> str:
        words = "-".join(w for w in self.signature[1:] if w)
        return re.sub(r"[^a-z0-9]+", "-", f"{self.kind}-{words}".lower()).strip("-")[:60]

    def summary(self) -> str:
        if self.signature[0] == "step":
            _, op, mine, theirs = self.signature
            return f"{op}: pvlab {mine}, Xen {theirs}"
        if self.signature[0] == "crash":
            crash = self.result.crash
            return f"Xen {self.signature[1]}: {crash.headline if crash else self.signature[2]}"
        if self.signature[0] == "model-crash":
            return f"pvlab crashed: {self.signature[1]}"
        return f"replay problem: {self.signature[1]}"


def finding_text(f: Finding, *, profile: str, xen: str) -> str:
    """The finding as a scenario file: a comment block (both sides' results, Xen's log
    lines or call trace) above the shrunk scenario. For a step difference the step
    carries `expect:` Xen's result, so `pvlab run` fails until pvlab agrees."""
    data = _with_expectation(f)
    head = [f"Finding of `pvlab fuzz` (seed {f.seed}, {f.original_steps} step(s) shrunk to "
            f"{len(data.get('steps') or [])}, {f.boots} boot(s) spent shrinking).",
            f"Model: profile {profile}; oracle: {xen}.", f"Kind: {f.kind}: {f.summary()}."]
    if f.duplicates:
        head.append(f"Same signature also from seed(s): {', '.join(map(str, f.duplicates[:20]))}")
    rep = f.result.report
    if f.result.crash is not None:
        head.append("pvlab's traceback:" if f.result.crash.kind == "model" else
                    "Xen's last lines (the crash and its call trace):")
        head += [f"  {line}" for line in f.result.crash.lines]
    elif rep is not None:
        head.append("step  operation         pvlab      xen        xen log")
        for r in rep.rows:
            mark = "  <-- differs" if r.verdict == "DISAGREE" else ""
            head.append(f"{r.step:>4}  {r.op:<17} {r.pvlab:<10} {xen_word(r):<10} "
                        f"{r.log or ''}{mark}")
        if rep.problem:
            head.append(f"replay problem: {rep.problem}")
    comment = "\n".join(f"# {line}".rstrip() for line in head)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return f"# SPDX-License-Identifier: MIT\n{comment}\n{body}"


def _with_expectation(f: Finding) -> dict[str, Any]:
    data = dict(f.data)
    data["description"] = f"pvlab fuzz finding: {f.summary()}"
    rep = f.result.report
    if f.signature[0] != "step" or rep is None:
        return data
    steps = [dict(s) for s in data.get("steps") or []]
    for r in rep.disagreements:
        i = r.step - 1
        if 0 <= i < len(steps) and r.op != "expect_entry" and "expect" not in steps[i]:
            steps[i]["expect"] = xen_word(r)
    data["steps"] = steps
    return data


def write_finding(f: Finding, out: Path, *, profile: str, xen: str, index: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{index:03d}-{f.slug()}.yaml"
    data = dict(f.data)
    data["name"] = f"fuzz-finding-{index:03d}-{f.slug()}"[:80]
    f.result.data = data
    path.write_text(finding_text(f, profile=profile, xen=xen))
    return path
