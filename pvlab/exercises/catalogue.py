# SPDX-License-Identifier: MIT
"""The course's exercises: id -> kind, notebook and the problem (made by the same code
that checks it). Walk, CR3 and seed exercises are generated problems with fixed seeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from pvlab.errors import PvlabError
from pvlab.exercises.generator import generate
from pvlab.exercises.kinds.l3check import Situation, situations_problem
from pvlab.exercises.kinds.predict import predict_problem
from pvlab.exercises.kinds.tasks import bughunt_problem, build_problem, refuse_problem
from pvlab.exercises.problem import KindName, Problem
from pvlab.xen.rules import PV32_L3_DISALLOW_MASK


@dataclass(frozen=True)
class Exercise:
    id: str
    kind: KindName
    notebook: str
    title: str
    make: Callable[[], Problem]

    def problem(self) -> Problem:
        return _problem(self.id)


EXERCISES: dict[str, Exercise] = {}


@cache
def _problem(ex_id: str) -> Problem:
    return EXERCISES[ex_id].make()


def exercise(ex_id: str, kind: KindName, notebook: str, title: str
             ) -> Callable[[Callable[[], Problem]], Callable[[], Problem]]:
    def deco(fn: Callable[[], Problem]) -> Callable[[], Problem]:
        EXERCISES[ex_id] = Exercise(ex_id, kind, notebook, title, fn)
        return fn
    return deco


def exercise_ids() -> list[str]:
    return list(EXERCISES)


def show(ex_id: str) -> Problem:
    """The problem of an exercise (displays its question in a notebook)."""
    if ex_id not in EXERCISES:
        raise PvlabError(f"unknown exercise {ex_id!r}", f"use one of: {', '.join(EXERCISES)}")
    return EXERCISES[ex_id].problem()


# ------------------------------------------------------------------ 01-walks
NB1, NB2, NB3, NB4 = ("01-walks", "02-types-and-pinning", "03-compat-l3",
                      "04-pae-extended-cr3")


@exercise("walk-2level", "walk", NB1, "Translate a VA with 32-bit (2-level) paging")
def _walk_2level() -> Problem:
    return generate("walk", seed=11, difficulty="pencil", mode="2-level", fault=False)


@exercise("walk-pae", "walk", NB1, "Translate a VA with PAE paging")
def _walk_pae() -> Problem:
    return generate("walk", seed=12, difficulty="pencil", mode="pae", fault=False)


@exercise("walk-4level", "walk", NB1, "Translate a VA with 4-level paging")
def _walk_4level() -> Problem:
    return generate("walk", seed=13, difficulty="pencil", mode="4-level", fault=False)


@exercise("walk-fault", "walk", NB1, "A walk that faults: where does it stop?")
def _walk_fault() -> Problem:
    return generate("walk", seed=14, difficulty="pencil", mode="4-level", fault=True)


# ------------------------------------------------------------------ 02-types-and-pinning
SELFMAP_RW = """name: l1-maps-itself-writable
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  l1: {}
  data: {}
tables:
  l1:
    0: {to: data, flags: [P, RW, A, D]}
    1: {to: l1, flags: [P, RW, A]}
steps:
  - pin: {frame: l1, level: 1}
"""


@exercise("predict-l1-selfmap", "predict", NB2, "Pin an L1 that maps itself writable")
def _predict_selfmap() -> Problem:
    return predict_problem(SELFMAP_RW, hints=(
        "Pinning an L1 validates every present entry in it; an entry with RW asks for a "
        "writable type reference on the page it maps.",
        "Which page does entry 1 map, and what type does that page have while it is being "
        "validated?",
        "A page holds one type at a time; the failure is found inside an L1 entry, and L1 "
        "entry failures there are reported with their own errno, not with the type-conflict "
        "one.",
    ))


RETYPE = """name: pin-l1-then-l2
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  x: {}
steps:
  - pin: {frame: x, level: 1}
    expect: ok
  - pin: {frame: x, level: 2}
"""


@exercise("predict-retype", "predict", NB2, "Pin the same frame as L1 and then as L2")
def _predict_retype() -> Problem:
    return predict_problem(RETYPE, hints=(
        "After the first pin, what is x's type and its type count?",
        "A type can only change when the type count drops to 0.",
        "The check that refuses a second type is made by _get_page_type, before any entry "
        "is looked at.",
    ))


@exercise("build-l2", "build", NB2, "Build an L2 that Xen accepts")
def _build_l2() -> Problem:
    return build_problem("l2-maps-data-and-own-l1", (
        "Write a scenario (YAML, the language of docs/scenarios.md; any bitness; a `name:` "
        "line is optional) whose steps pin an L2 (level 2) such that: an entry of the L2 "
        "links to an L1; that L1 maps a data page writable, and maps the L1 itself, so the "
        "kernel can read its own pagetable."), hints=(
        "Declare three frames under frames: (the L2, the L1 and a data page), fill the "
        "tables under tables: and pin the L2 in steps:.",
        "Read the trace of your pin step (pvlab run -v FILE) to see what Xen validated and, "
        "if it failed, which entry failed.",
        "An L1 that maps a pagetable (itself included) must do so without RW: a page cannot "
        "be a pagetable and writable at once.",
    ))


@exercise("refuse-ebusy", "refuse", NB2, "Make Xen refuse a pin with EBUSY")
def _refuse_ebusy() -> Problem:
    return refuse_problem(
        "Write a scenario (YAML; a `name:` line is optional) whose last step pins an L2 and "
        "fails with EBUSY because one of its L1s maps that very L2 writable (rule "
        "l1_writable_pagetable).",
        errno="EBUSY", rule="l1_writable_pagetable", same_frame=True, hints=(
            "You need an L2 whose entry links to an L1, and an L1 entry that points back at "
            "the L2.",
            "The entry in the L1 must carry RW: a writable mapping asks for a writable type "
            "reference on its target.",
            "Pin the L2 last; while it is being validated it holds the L2 type, so the "
            "writable reference its L1 asks for cannot be had.",
        ))


BUG_WRITABLE = """name: kernel-tables-broken
guest: {bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}
frames:
  l2: {}
  l1: {}
  text: {}
  heap: {}
tables:
  l2:
    0: {to: l1, flags: [P, RW, A]}
  l1:
    0: {to: text, flags: [P, A]}
    1: {to: heap, flags: [P, RW, A, D]}
    2: {to: l1, flags: [P, A]}
    3: {to: l2, flags: [P, RW, A]}
steps:
  - pin: {frame: l2, level: 2}
"""


@exercise("bughunt-writable", "bughunt", NB2, "Find the entry that breaks the pin")
def _bughunt_writable() -> Problem:
    return bughunt_problem(BUG_WRITABLE, (
        "This guest cannot pin its L2. Which entry is the bug? Give (frame name, index)."),
        hints=(
            "Run it (pvlab.run_scenario) and read the trace of the failing step.",
            "Pinning the L2 validates the L1 it links to; look at every L1 entry with RW.",
            "A writable mapping is only possible for a page that is not a pagetable.",
        ))


# ------------------------------------------------------------------ 03-compat-l3
COMPAT_RW = """name: compat-l3-with-rw
guest: {bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}
frames:
  l3: {}
  l2a: {}
  l2b: {}
tables:
  l3:
    0: {to: l2a, flags: [P, RW, US, A]}
    3: {to: l2b, flags: [P, RW, A, D]}
steps:
  - pin: {frame: l3, level: 3}
"""


@exercise("predict-compat-rw", "predict", NB3, "A compat L3 with RW, US, A and D")
def _predict_compat_rw() -> Problem:
    return predict_problem(COMPAT_RW, hints=(
        "Native PAE hardware treats RW and US in a PDPTE as reserved; but who walks a 32-bit "
        "PV guest's L3 on 64-bit Xen?",
        "Xen runs the guest in long mode with the L3 in slot 0 of a per-vCPU L4: the L3 is "
        "walked like a 4-level PDPT.",
        "Look up which bits the compat l3_disallow_mask forbids (print "
        "pvlab.exercises.reasons()['l3_flags']).",
    ))


COMPAT_SLOT3 = """name: compat-l3-without-slot3
guest: {bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}
frames:
  l3: {}
  l2a: {}
  l2b: {}
  l2c: {}
tables:
  l3:
    0: {to: l2a, flags: [P]}
    1: {to: l2b, flags: [P]}
    2: {to: l2c, flags: [P]}
steps:
  - pin: {frame: l3, level: 3}
"""


@exercise("predict-compat-slot3", "predict", NB3, "A compat L3 with three slots")
def _predict_compat_slot3() -> Problem:
    return predict_problem(COMPAT_SLOT3, hints=(
        "Every present entry is fine here; look at what is missing.",
        "The top 1 GiB of a 32-bit guest's address space is where Xen keeps its own "
        "mappings (the compat M2P).",
        "Xen needs an L2 in the slot that maps the top 1 GiB to put its mappings in.",
    ))


@exercise("refuse-compat-flag", "refuse", NB3, "A compat L3 entry flag Xen refuses")
def _refuse_compat_flag() -> Problem:
    return refuse_problem(
        "Write a scenario (YAML; a `name:` line is optional) for a 32-bit PV guest whose "
        "last step pins an L3 and fails with EINVAL because of one flag in one of its "
        "entries (rule l3_flags).",
        errno="EINVAL", rule="l3_flags", bitness=32, one_bad_flag=PV32_L3_DISALLOW_MASK,
        hints=(
            "Start from an L3 that Xen accepts (slot 3 present), then add one flag.",
            "The compat L3 mask allows P, RW, US, A, D and the AVAIL bits 9-11.",
            "Any other bit is refused: the cache bits, PS, G, or one of bits 52-63.",
        ))


BUG_COMPAT = """name: compat-l3-nx-habit
guest: {bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}
frames:
  l3: {}
  low: {}
  mid: {}
  top: {}
tables:
  l3:
    0: {to: low, flags: [P, RW, A]}
    1: {to: mid, flags: [P, RW, A, NX]}
    3: {to: top, flags: [P, AVAIL0]}
steps:
  - pin: {frame: l3, level: 3}
"""


@exercise("bughunt-compat", "bughunt", NB3, "Find the entry a 64-bit habit broke")
def _bughunt_compat() -> Problem:
    return bughunt_problem(BUG_COMPAT, (
        "A kernel developer used to 64-bit guests wrote this 32-bit guest's L3. Which entry "
        "is the bug? Give (frame name, index)."), hints=(
            "Compare each entry's flags with what a 32-bit guest's L3 entry may carry.",
            "AVAIL bits are free for software; they are not the problem.",
            "Bits 52-63 are all forbidden in a compat L3 entry, even one a 64-bit L3 entry "
            "may set.",
        ))


# ------------------------------------------------------------------ 04-pae-extended-cr3
@exercise("cr3-encode", "cr3", NB4, "Encode an extended CR3")
def _cr3_encode() -> Problem:
    return generate("cr3", seed=21, difficulty="pencil", direction="encode")


@exercise("cr3-decode", "cr3", NB4, "Decode an extended CR3")
def _cr3_decode() -> Problem:
    return generate("cr3", seed=22, difficulty="pencil", direction="decode")


NEW_BASEPTR = """name: new-baseptr-high-l3
xen: "4.19"
guest: {bitness: 32, vcpu0_initialised: true}
frames:
  l3: {above: 4GiB}
  l2: {}
tables:
  l3:
    3: {to: l2, flags: [P]}
steps:
  - new_baseptr: {frame: l3}
"""


@exercise("predict-new-baseptr", "predict", NB4, "Switch to a high L3 without the assist")
def _predict_new_baseptr() -> Problem:
    return predict_problem(NEW_BASEPTR, hints=(
        "NEW_BASEPTR takes a type reference on the new L3; an L3 that is not validated yet "
        "is promoted now.",
        "Check the conditions of Xen 4.19's check in promote_l3_table: bitness, assist, "
        "where the L3 is, vCPU 0's state.",
        "All of those conditions hold here.",
    ))


SEED_SITUATIONS = [
    Situation("4.19", 32, False, 0x123456, "initialised", "guest"),
    Situation("4.19", 32, False, 0x0FFFFF, "initialised", "guest"),
    Situation("4.19", 32, True, 0x123456, "initialised", "guest"),
    Situation("4.17", 32, False, 0x123456, "initialised", "guest"),
    Situation("4.19", 64, False, 0x123456, "initialised", "guest"),
    Situation("4.19", 32, False, 0x123456, "not initialised", "guest"),
    Situation("4.19", 32, False, 0x180000, "absent", "guest"),
    Situation("4.19", 32, False, 0x123456, "not initialised", "builder"),
    Situation("4.19", 32, True, 0x123456, "not initialised", "builder"),
    Situation("4.19", 32, False, 0x123456, "initialised", "migration"),
    Situation("4.19", 32, True, 0x123456, "initialised", "migration"),
    Situation("4.17", 32, False, 0x123456, "initialised", "migration"),
]


@exercise("seed-l3-check", "l3-check", NB4, "When does the L3 check trip?")
def _seed() -> Problem:
    return situations_problem(SEED_SITUATIONS)


@exercise("build-high-l3", "build", NB4, "A running 32-bit guest with an L3 above 4 GiB")
def _build_high_l3() -> Problem:
    return build_problem("high-l3-running-pv32", (
        "Write a scenario (YAML; a `name:` line is optional) in which a running 32-bit PV "
        "guest (vCPU 0 initialised) on Xen 4.19 successfully pins an L3 whose frame is at or "
        "above 4 GiB."), hints=(
        "Start from the scenario of predict-new-baseptr and make its operation a pin.",
        "Of the check's conditions, which one can the guest itself change?",
        "A guest can switch a VM-assist on with a vm_assist step before it pins (or have it "
        "from the start under guest:).",
    ), profile="4.19")


# ------------------------------------------------------------------ 05-why-these-rules-exist
NB5 = "05-why-these-rules-exist"

XSA182 = """name: recursive-l4-made-writable
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  l4: {}
tables:
  l4:
    0: {to: l4, flags: [P, A]}
steps:
  - pin: {frame: l4, level: 4}
  - mmu_update: {table: l4, index: 0, to: l4, flags: [P, RW, A]}
"""


@exercise("predict-xsa-182", "predict", NB5, "Make a recursive L4 entry writable")
def _predict_xsa_182() -> Problem:
    return predict_problem(XSA182, profile="4.19", hints=(
        "The entry keeps its frame and stays present: does mod_l4_entry re-validate it? "
        "Look up FASTPATH_FLAG_WHITELIST.",
        "RW is not in the whitelist, so the new entry is checked as if it were new; it "
        "points at an L4 from an L4.",
        "An entry that links a table to one of its own level is a linear pagetable: read "
        "the linear rules in pvlab.exercises.reasons().",
    ))


@exercise("predict-xsa-182-before", "predict", NB5, "The same update before XSA-182")
def _predict_xsa_182_before() -> Problem:
    return predict_problem(XSA182, profile="pre-xsa-182", note=(
        "This time Xen is the profile pre-xsa-182: Xen 4.19 without the fix of commit "
        "e1bff4c2ea."), hints=(
        "Before the fix, mod_l4_entry's fast path compared only the frame and one flag.",
        "Which flag did it compare? Does this update change it?",
        "If the fast path is taken, nothing is re-validated.",
    ))


XSA185 = """name: compat-recursive-l3
guest: {bitness: 32, vcpu0_initialised: true}
frames:
  a: {}
  b: {}
  a_l2: {}
  b_l2: {}
tables:
  a:
    3: {to: a_l2, flags: [P]}
  b:
    0: {to: a, flags: [P]}
    3: {to: b_l2, flags: [P]}
steps:
  - pin: {frame: a, level: 3}
  - pin: {frame: b, level: 3}
"""


@exercise("predict-xsa-185", "predict", NB5, "A 32-bit guest links one L3 to another")
def _predict_xsa_185() -> Problem:
    return predict_problem(XSA185, profile="4.19", hints=(
        "A 64-bit guest may link an L3 read-only to another validated L3. Is a 32-bit "
        "guest's L3 walked the same way?",
        "Xen adds RW and US to every present entry of a compat L3 (adjust_guest_l3e).",
        "What would that adjustment do to an entry that maps a live L3?",
    ))


XSA240 = """name: linear-chain-bug
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  t: {}
  a: {}
  c: {}
  l1: {}
tables:
  a:
    0: {to: t, flags: [P, A]}
  c:
    0: {to: l1, flags: [P, RW, A]}
    3: {to: t, flags: [P, A]}
    7: {to: a, flags: [P, A]}
steps:
  - pin: {frame: t, level: 2}
  - pin: {frame: a, level: 2}
  - pin: {frame: c, level: 2}
"""


@exercise("bughunt-xsa-240", "bughunt", NB5, "Find the entry that builds a chain")
def _bughunt_xsa_240() -> Problem:
    return bughunt_problem(XSA240, (
        "On Xen 4.19 the last pin fails. Which entry is the bug? Give (frame name, index)."),
        hints=(
            "Two of c's entries link it to another L2: both are linear entries.",
            "Since XSA-240 a table may either contain linear entries or be used linearly, "
            "never both.",
            "Which of the tables c links to already contains a linear entry itself?",
        ))
