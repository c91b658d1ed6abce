# SPDX-License-Identifier: MIT
"""Put pvlab's result for each step beside real Xen's, and render the table."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvlab.trace import CRASH, DOMAIN_CRASHED, SHADOWED, errno_name
from pvlab.verify.domains import gntst_name, grant_problems
from pvlab.verify.logparse import XenPanic, XenScenario, XenStep, main_line
from pvlab.verify.plan import ScenarioPlan, StepPlan
from pvlab.x86.flags import parse_flags

ADDR_BITS = (1 << 40) - 1
FLAG_BITS = 0xFFF0_0000_0000_0FFF


@dataclass(frozen=True)
class PvlabStep:
    result: str  # "ok", an errno name, or for checks "held"/"failed"
    expected: str | None = None


@dataclass
class Row:
    step: int
    op: str
    expected: str | None
    pvlab: str
    xen: str
    verdict: str  # "agree", "DISAGREE", "skipped", "not run"
    log: str | None = None
    reason: str | None = None
    by: str = ""  # who issued it on Xen: "dom0" or "domU" (the agent); "" when not replayed


@dataclass
class ScenarioReport:
    plan: ScenarioPlan
    profile: str
    rows: list[Row] = field(default_factory=list)
    problem: str | None = None  # the replay could not run (setup failed, probe died)
    crash: XenPanic | None = None  # Xen panicked in this scenario (the step's result)

    @property
    def disagreements(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "DISAGREE"]

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.disagreements


def xen_result(step: StepPlan, xs: XenStep, plan: ScenarioPlan, xen: XenScenario,
               pvlab_frames: dict[str, int]) -> str:
    """Real Xen's result in pvlab's vocabulary ("crash" when the step made Xen panic)."""
    if xs.panic is not None:
        return CRASH
    if xs.lost:  # the agent's domain was crashed by Xen (domain_crash), or hangs
        return DOMAIN_CRASHED if any("crash" in line.lower() for line in xs.log) else "lost"
    fate = l1tf_fate(xs.log)
    if fate is not None and (xs.rc or 0) == 0:
        return fate
    if step.op == "expect_grant" and step.check is not None:  # the entry's flags, read back
        if xs.rc is None or xs.rc < 0:
            return f"read failed ({errno_name(xs.rc or 0)})"
        return "failed" if grant_problems(step.check, xs.rc) else "held"
    if step.code and step.check is not None:  # expect_entry: evaluate on the value read back
        if xs.value is None:
            return f"read failed ({errno_name(xs.rc or 0)})"
        return "held" if not entry_problems(step.check, xs.value, plan, xen, pvlab_frames) \
            else "failed"
    rc = xs.rc if xs.rc is not None else 0
    if xs.gntst is not None and rc == 0:  # a grant operation: its GNTST status
        return gntst_name(xs.gntst)
    if step.op == "write" and rc != 0:
        return "EFAULT"  # the probe cannot map it writable: a guest's direct write would fault
    return errno_name(rc)


def l1tf_fate(log: list[str]) -> str | None:
    """The PV L1TF mitigation's verdict in Xen's log (pv_l1tf_check_pte): "L1TF-vulnerable L1e
    ... - Shadowing" (the domain now runs on shadow pagetables and the call is retried) or
    "- Crashing" (no shadow paging: domain_crash)."""
    for line in log:
        if "L1TF-vulnerable" in line:
            return SHADOWED if "Shadowing" in line else DOMAIN_CRASHED
    return None


def entry_problems(check: dict, value: int, plan: ScenarioPlan, xen: XenScenario,
                   pvlab_frames: dict[str, int]) -> list[str]:
    """What differs between an expect_entry check and the value Xen's guest read back."""
    xen_mfn = {f.name: xen.frames.get(i) for i, f in enumerate(plan.frames)}
    by_pvlab = {m: xen_mfn.get(n) for n, m in pvlab_frames.items()}
    bad = []
    if "value" in check:
        want = int(check["value"])
        xen_target = by_pvlab.get((want >> 12) & ADDR_BITS)
        if xen_target is not None:  # the value names a scenario frame: use Xen's MFN
            want = (want & ~(ADDR_BITS << 12)) | (xen_target << 12)
        if value != want:
            bad.append(f"value {value:#x} != {want:#x}")
    if "to" in check or "mfn" in check:
        want_mfn = xen_mfn.get(str(check["to"])) if "to" in check else int(check["mfn"])
        if "mfn" in check and want_mfn is not None:
            xen_target = by_pvlab.get(want_mfn)
            if xen_target is not None:  # the MFN is a scenario frame's: use Xen's MFN
                want_mfn = xen_target
        if (value >> 12) & ADDR_BITS != want_mfn:
            bad.append("points elsewhere")
    if "flags" in check and value & FLAG_BITS != parse_flags(check["flags"]):
        bad.append("flags differ")
    if "present" in check and bool(value & 1) != bool(check["present"]):
        bad.append("present differs")
    return bad


def compare(plan: ScenarioPlan, profile: str, pvlab: dict[int, PvlabStep],
            pvlab_frames: dict[str, int], xen: XenScenario | None, boot_problem: str | None
            ) -> ScenarioReport:
    rep = ScenarioReport(plan, profile)
    if not plan.skip and (xen is None or xen.setup_failed or not xen.ended):
        if xen is not None and xen.setup_failed:
            rep.problem = f"probe set-up failed: {xen.setup_failed}"
        else:
            rep.problem = boot_problem or "the probe did not finish this scenario"
    lost: int | None = None  # the step after which the agent domU stopped answering
    for step in plan.steps:
        mine = pvlab.get(step.index, PvlabStep("-"))
        if step.skip or plan.skip:
            rep.rows.append(Row(step.index, step.op, mine.expected, mine.result, "-", "skipped",
                                reason=step.skip or plan.skip))
            continue
        xs = xen.steps.get(step.index) if xen else None
        if xs is None and lost is not None:
            rep.rows.append(Row(step.index, step.op, mine.expected, mine.result, "-", "skipped",
                                reason=f"after step {lost}: the agent's domain no longer runs"))
            continue
        if xs is None and rep.crash is not None:
            rep.rows.append(Row(step.index, step.op, mine.expected, mine.result, "-", "skipped",
                                reason="after Xen's panic: nothing runs on a crashed host"))
            continue
        if xs is None:
            rep.rows.append(Row(step.index, step.op, mine.expected, mine.result, "?", "not run",
                                reason=rep.problem))
            continue
        theirs = xen_result(step, xs, plan, xen, pvlab_frames)  # type: ignore[arg-type]
        if xs.lost:
            lost = step.index
        if xs.value is not None:
            theirs_text = f"{theirs} ({xs.value:#x})"
        else:
            theirs_text = theirs
        verdict = "agree" if theirs == mine.result else "DISAGREE"
        log = main_line(xs.log)
        if xs.panic is not None:
            log = xs.panic.summary()
            rep.crash = xs.panic
        rep.rows.append(Row(step.index, step.op, mine.expected, mine.result, theirs_text, verdict,
                            log=log, by=step.by))
    return rep


#: how each replay mode plays the scenario's guest (the report's heading)
MODE_TEXT = {
    "dom0": "probe is the guest (dom0)",
    "toolstack": "probe is its toolstack",
    "agent": "an unprivileged domU (the agent) issues its steps, probe (dom0) is its toolstack",
}


def render(reports: list[ScenarioReport], *, verbose: bool = False) -> str:
    out: list[str] = []
    for rep in reports:
        p = rep.plan
        head = f"== {p.name} [{rep.profile}] ({p.source}): {p.bitness}-bit guest, "
        head += MODE_TEXT[p.mode]
        out.append(head)
        for note in p.notes:
            out.append(f"   note: {note}")
        if p.skip:
            out.append(f"   SKIPPED: {p.skip}")
            continue
        if rep.problem:
            out.append(f"   PROBLEM: {rep.problem}")
        if rep.crash is not None:
            out.append(f"   XEN PANIC: {rep.crash.message}")
            out.extend(f"      {line}" for line in rep.crash.trace[:12])
        out.append(f"   {'step':>4}  {'operation':<16} {'by':<5} {'expect':<8} {'pvlab':<8} "
                   f"{'xen':<24} verdict   xen log / reason")
        for r in rep.rows:
            tail = r.log or ""
            if r.verdict in ("skipped", "not run"):
                tail = r.reason or ""
            out.append(f"   {r.step:>4}  {r.op:<16} {r.by or '-':<5} {r.expected or '-':<8} "
                       f"{r.pvlab:<8} {r.xen:<24} {r.verdict:<9} {tail}".rstrip())
    return "\n".join(out)


def summary(reports: list[ScenarioReport]) -> str:
    rows = [r for rep in reports for r in rep.rows]
    agree = sum(r.verdict == "agree" for r in rows)
    dis = sum(r.verdict == "DISAGREE" for r in rows)
    skipped = sum(r.verdict == "skipped" for r in rows)
    notrun = sum(r.verdict == "not run" for r in rows)
    scn_skipped = sum(1 for rep in reports if rep.plan.skip)
    return (f"{len(reports)} scenario run(s): {agree} step(s) agree, {dis} disagree, "
            f"{skipped} skipped ({scn_skipped} whole scenario(s)), {notrun} not run")
