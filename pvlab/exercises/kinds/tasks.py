# SPDX-License-Identifier: MIT
"""Scenario tasks: build a pagetable Xen accepts, build one it refuses, find the bug.

Every answer is a scenario (YAML text, the lab's own language) or names an entry of
one; the judges run it with the lab's scenario runner and read the model's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pvlab.exercises.answers import AnswerError, as_entry, as_scenario
from pvlab.exercises.kinds.common import failing_rule, last_operation, load_text, observe
from pvlab.exercises.problem import Kind, Problem, Verdict, register_kind
from pvlab.scenario import ScenarioRun, run_scenario
from pvlab.units import MFN_4GIB
from pvlab.x86.flags import RW, entry_mfn, get_pte_flags
from pvlab.xen.rules import flag_word_names

Goal = Callable[[ScenarioRun], Verdict]
GOALS: dict[str, Goal] = {}


def goal(name: str) -> Callable[[Goal], Goal]:
    def deco(fn: Goal) -> Goal:
        GOALS[name] = fn
        return fn
    return deco


def _pins(run: ScenarioRun, level: int) -> list[Any]:
    return [s for s in run.steps if s.op == "pin" and s.args.get("level") == level]


#: hints for each mistake a build-l2 answer can make (each try shows the next one)
L2_HINTS = {
    "no-pin": (
        "Your scenario has no successful `pin: {frame: ..., level: 2}` step: the goal is a "
        "pinned L2.",
        "Run it with `pvlab run -v FILE` (or pvlab.run_scenario) and read the trace of the "
        "pin step: it names the entry that fails and the rule.",
        "The usual culprit is an L1 entry that maps a pagetable with RW: a page cannot be a "
        "pagetable and writable at once.",
    ),
    "no-l1": (
        "The L2 is pinned, but none of its present entries links to a frame that became an "
        "L1: give the L2 an entry `{to: <your l1>, flags: [P, RW, A]}`.",
        "An L2 entry without PS links to an L1 table; with PS it maps a large page instead.",
        "Check the entry's index and frame name in tables: under the L2.",
    ),
    "no-data": (
        "Your L1 maps no data page writable: add an entry to a plain frame with RW.",
        "A data page is a frame that is not a pagetable; mapping it with [P, RW, A, D] gives "
        "it a writable type reference.",
        "Declare a frame for the data page under frames: and map it from the L1.",
    ),
    "no-selfmap": (
        "Your L1 does not map itself: the kernel needs an entry that maps the L1's own "
        "frame so it can read its pagetable.",
        "Add an L1 entry whose `to:` is the L1 itself.",
        "That entry must be read-only (no RW): a writable mapping of a pagetable is refused "
        "(-EBUSY, rule l1_writable_pagetable).",
    ),
}


@goal("l2-maps-data-and-own-l1")
def _goal_l2(run: ScenarioRun) -> Verdict:
    """A pinned L2 -> L1 that maps a data page writable and the L1 itself read-only."""
    m = run.xen.machine
    pins = [s for s in _pins(run, 2) if s.outcome.ok]
    if not pins:
        return Verdict(False, "No step pins an L2 successfully (pin: {frame: ..., level: 2}).",
                       L2_HINTS["no-pin"])
    mistake = "no-l1"
    for s in pins:
        l2 = run.mfn(s.args["frame"])
        if not m.page(l2).pinned:
            continue
        for i in range(512):
            e = m.read_entry(l2, i)
            if not e & 1:
                continue
            l1 = entry_mfn(e)
            if m.page(l1).type_name != "l1":
                continue
            entries = [m.read_entry(l1, j) for j in range(512)]
            present = [x for x in entries if x & 1]
            self_ro = any(entry_mfn(x) == l1 and not x & RW for x in present)
            data_rw = any(x & RW and m.page(entry_mfn(x)).type_name == "writable"
                          for x in present)
            if self_ro and data_rw:
                return Verdict(True, "Xen accepts it: the L2 is pinned, its L1 is validated, "
                                     "the data page is writable and the L1 maps itself "
                                     "read-only.")
            mistake = "no-data" if not data_rw else "no-selfmap"
    if mistake == "no-data":
        return Verdict(False, "The L2 is pinned, but its L1 maps no data page writable.",
                       L2_HINTS["no-data"])
    if mistake == "no-selfmap":
        return Verdict(False, "The L2 is pinned, but its L1 does not map itself (read-only).",
                       L2_HINTS["no-selfmap"])
    return Verdict(False, "The pinned L2 has no present entry that links to an L1.",
                   L2_HINTS["no-l1"])


@goal("high-l3-running-pv32")
def _goal_high_l3(run: ScenarioRun) -> Verdict:
    """A running 32-bit guest on 4.19 pins an L3 at or above 4 GiB."""
    scn = run.scenario
    if scn.guest.bitness != 32:
        return Verdict(False, "The guest must be a 32-bit PV guest (guest: {bitness: 32}).")
    if not scn.guest.vcpu0_initialised:
        return Verdict(False, "The guest must be running: vCPU 0 initialised "
                              "(vcpu0_initialised: true).")
    for s in _pins(run, 3):
        mfn = run.mfn(s.args["frame"])
        if mfn >= MFN_4GIB and s.outcome.ok:
            return Verdict(True, "Xen 4.19 accepts the high L3: the guest runs with "
                                 "pae_extended_cr3.")
    highs = [s for s in _pins(run, 3) if run.mfn(s.args["frame"]) >= MFN_4GIB]
    if not highs:
        return Verdict(False, "No step pins an L3 whose frame is at or above 4 GiB.")
    return Verdict(False, "The high L3's pin fails: read its trace with pvlab run -v.")


def build_problem(goal_name: str, question: str, hints: tuple[str, ...],
                  profile: str | None = None) -> Problem:
    return Problem("build", question, None, {"goal": goal_name, "profile": profile}, "", hints)


def judge_build(p: Problem, answer: Any) -> Verdict:
    scn = as_scenario(answer, "build")
    run = run_scenario(scn, profile=p.data.get("profile"))
    return GOALS[p.data["goal"]](run)


def refuse_problem(question: str, *, errno: str, rule: str, hints: tuple[str, ...],
                   bitness: int | None = None, same_frame: bool = False,
                   one_bad_flag: int = 0, profile: str | None = None) -> Problem:
    """`one_bad_flag`: a disallow mask (Xen's 24-bit flag word) of which the offending entry
    must carry exactly one bit: an entry with a list of forbidden flags hedges."""
    data = {"errno": errno, "rule": rule, "bitness": bitness, "same_frame": same_frame,
            "one_bad_flag": one_bad_flag, "profile": profile}
    return Problem("refuse", question, None, data, "", hints)


def judge_refuse(p: Problem, answer: Any) -> Verdict:
    d = p.data
    scn = as_scenario(answer, "refuse")
    if d["bitness"] and scn.guest.bitness != d["bitness"]:
        return Verdict(False, f"The task is about a {d['bitness']}-bit PV guest.")
    run, obs = observe(scn, profile=d.get("profile"))
    if obs is None:
        return Verdict(False, "The scenario has no operation step.")
    if obs.result == "ok":
        return Verdict(False, "Xen accepts your last step: nothing is refused yet.")
    if obs.result != d["errno"] or obs.rule != d["rule"]:
        return Verdict(False, "Xen refuses your last step, but for another reason than the "
                              "one asked for.")
    bad_mask = d.get("one_bad_flag")
    if bad_mask:
        out = obs.step.outcome
        word = 0
        if out.failed_mfn is not None and out.failed_index is not None:
            word = get_pte_flags(run.xen.machine.read_entry(out.failed_mfn, out.failed_index))
        if (word & bad_mask).bit_count() > 1:
            return Verdict(False, "Refused, but the offending entry carries several forbidden "
                                  f"flags ({flag_word_names(word & bad_mask, 3)}): the task "
                                  "asks for the one flag that is refused, not a list.", (
                "Keep exactly one flag that the mask forbids and remove the others; the pin "
                "must still fail.",
                "Each forbidden flag alone is enough for -EINVAL; a list of them does not "
                "show which rule you meant.",
                "Start again from an entry with only P, then add one flag at a time.",
            ))
    if d["same_frame"]:
        out = obs.step.outcome
        target = None
        if out.failed_mfn is not None and out.failed_index is not None:
            target = entry_mfn(run.xen.machine.read_entry(out.failed_mfn, out.failed_index))
        if obs.step.op != "pin" or target != run.mfn(obs.step.args["frame"]):
            return Verdict(False, "Refused for that reason, but the offending entry must map "
                                  "the very table being pinned.")
    return Verdict(True, "Xen refuses it for exactly that reason.")


def bughunt_problem(yaml_text: str, question: str, hints: tuple[str, ...]) -> Problem:
    scn = load_text(yaml_text, "bughunt")
    run = run_scenario(scn)
    last = last_operation(run)
    assert last is not None and not last.outcome.ok, "a bug hunt scenario must fail"
    out = last.outcome
    assert out.failed_mfn is not None and out.failed_index is not None
    answer = (run.frame_name(out.failed_mfn), out.failed_index)
    q = f"{question}\n\n{yaml_text.strip()}"
    return Problem("bughunt", q, answer, {"yaml": yaml_text}, out.explain(), hints)


def judge_bughunt(p: Problem, answer: Any) -> Verdict:
    frame, index = as_entry(answer)
    scn = load_text(p.data["yaml"], "bughunt")
    if frame not in scn.frames:
        raise AnswerError(f"there is no frame named {frame!r} in this scenario",
                          f"use one of: {', '.join(scn.frames)}")
    run = run_scenario(scn)
    last = last_operation(run)
    assert last is not None
    out = last.outcome
    bad = (run.frame_name(out.failed_mfn or -1), out.failed_index)
    if (frame, index) == bad:
        rule = failing_rule(out) or "a rule"
        return Verdict(True, f"That entry breaks {rule}.")
    entry = run.xen.machine.read_entry(run.frames[frame], index)
    if not entry & 1:
        return Verdict(False, "That entry is not present: Xen does not look at it.")
    if frame == bad[0]:
        return Verdict(False, "The right table, but that entry passes its checks.")
    return Verdict(False, "That entry passes its checks; the culprit is elsewhere.")


register_kind(Kind("build", "build a pagetable that Xen accepts for a goal", judge_build))
register_kind(Kind("refuse", "build a pagetable that Xen refuses for a given reason",
                   judge_refuse))
register_kind(Kind("bughunt", "find the entry that breaks a scenario", judge_bughunt))
