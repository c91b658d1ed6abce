# SPDX-License-Identifier: MIT
"""The seed: does `promote_l3_table`'s PAE-extended-CR3 check trip (-ERANGE) here?

Each situation is played on the hypervisor model with its hypercalls only, as the real
toolstack has only hypercalls:

- `guest`: a running guest pins a new L3 (`MMUEXT_PIN_L3_TABLE`).
- `builder`: the PV domain builder (libxenguest) moves the L3 below 4 GiB only for a
  kernel without extended-CR3 support, pins it while vCPU 0 is not initialised, then
  sets vCPU 0's context, which carries the assist for an extended-CR3 kernel.
- `migration`: the migration-v2 restore sets vCPU 0's context first (the saved
  assists, its own CR3 below 4 GiB), then pins the other L3s where they landed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pvlab.exercises.answers import as_bools
from pvlab.exercises.problem import Kind, Problem, Verdict, register_kind
from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB
from pvlab.xen.hypervisor import Guest, Xen

XenProfile = Literal["4.17", "4.19"]
Vcpu0State = Literal["absent", "not initialised", "initialised"]
Via = Literal["guest", "builder", "migration"]
VCPU0_STATES: tuple[Vcpu0State, ...] = get_args(Vcpu0State)
VIAS: tuple[Via, ...] = get_args(Via)
HOST = "16GiB"


@dataclass(frozen=True)
class Situation:
    xen: XenProfile
    bitness: Literal[32, 64]
    assist: bool  # pae_extended_cr3 on (guest), or an extended-CR3 kernel (builder/restore)
    mfn: int  # where the L3 is (builder: where it landed before any relocation)
    vcpu0: Vcpu0State
    via: Via

    def describe(self) -> str:
        bits = f"{self.bitness}-bit PV guest"
        if self.via == "guest":
            assist = "pae_extended_cr3 on" if self.assist else "pae_extended_cr3 off"
            who = "the guest pins" if self.vcpu0 == "initialised" else "the toolstack pins"
            return (f"Xen {self.xen}, {bits}, {assist}, vCPU 0 {self.vcpu0}: "
                    f"{who} a new L3 at MFN {self.mfn:#x}.")
        kernel = ("declares extended CR3 (ELF note PAE_MODE \"yes\": XEN_PAE_EXTCR3)"
                  if self.assist else
                  "is a legacy kernel whose __xen_guest string says PAE=yes (XEN_PAE_YES: no "
                  "extended CR3)")
        if self.bitness == 64:
            kernel = ("asks for pae_extended_cr3" if self.assist else
                      "does not ask for pae_extended_cr3")
        if self.via == "builder":
            return (f"Xen {self.xen}: the domain builder builds a {bits} whose kernel "
                    f"{kernel}; its L3 landed at MFN {self.mfn:#x}.")
        return (f"Xen {self.xen}: migration restore of a {bits} whose kernel {kernel}; "
                f"one of its pinned L3s (not vCPU 0's) lands at MFN {self.mfn:#x}.")

    def as_dict(self) -> dict[str, Any]:
        return {"xen": self.xen, "bitness": self.bitness, "assist": self.assist,
                "mfn": self.mfn, "vcpu0": self.vcpu0, "via": self.via}


def _l3(g: Guest, mfn: int | None = None, *, below: str | None = None) -> int:
    l3 = g.alloc_frame(mfn=mfn, below=below)
    if g.domain.abi.l3_promotion == "compat":  # a compat L3 needs slot 3
        g.write_entry(l3, 3, g.alloc_frame(), "P")
    return l3


def _top(g: Guest) -> int:
    """vCPU 0's own top-level table, below 4 GiB."""
    if g.domain.abi.top_level == 3:
        return _l3(g, below="4GiB")
    return g.alloc_frame(below="4GiB")


def play(s: Situation) -> list[Outcome]:
    """Run the situation on the model; the outcomes of the hypercalls that matter."""
    xen = Xen(s.xen, HOST)
    assists = ["pae_extended_cr3"] if s.assist else []
    if s.via == "guest":
        g = xen.create_domain(s.bitness, vcpus=0 if s.vcpu0 == "absent" else 1,
                              vm_assists=assists)
        if s.vcpu0 == "initialised":
            g.domain.vcpus[0].is_initialised = True  # a booted guest, as scenarios do
        return [g.pin(_l3(g, s.mfn), 3)]
    g = xen.create_domain(s.bitness, vcpus=1)
    if s.via == "builder":
        mfn: int | None = s.mfn
        if s.bitness == 32 and not s.assist and s.mfn >= MFN_4GIB:
            mfn = None  # move_l3_below_4G: a new frame with address_bits=32
        l3 = _l3(g, mfn, below="4GiB" if mfn is None else None)
        top = l3 if g.domain.abi.top_level == 3 else g.alloc_frame(below="4GiB")
        outs = [g.pin(l3, 3)]
        if top != l3:
            outs.append(g.pin(top, 4))
        outs.append(g.set_vcpu_context(0, cr3=top, vm_assists=assists))
        return outs
    # migration v2: contexts first (vCPU 0's own L3 below 4 GiB), then the pins
    outs = [g.set_vcpu_context(0, cr3=_top(g), vm_assists=assists)]
    outs.append(g.pin(_l3(g, s.mfn), 3))
    return outs


def trips(s: Situation) -> bool:
    return any(o.errno == "ERANGE" for o in play(s))


def _situation(rng: random.Random, difficulty: str) -> Situation:
    """Start from a situation that trips, then change none, one or two of its factors."""
    pencil = difficulty == "pencil"
    via: Via = rng.choice(["guest", "guest", "migration"] if pencil else ["guest", "migration"])
    xen: XenProfile = "4.19"
    bitness: Literal[32, 64] = 32
    assist, high = False, True
    vcpu0: Vcpu0State = "initialised"
    factors = ["xen", "bitness", "assist", "high", "slack"]
    for factor in rng.sample(factors, rng.choice([0, 1, 1, 2] if not pencil else [0, 1, 1])):
        if factor == "xen":
            xen = "4.17"
        elif factor == "bitness":
            bitness = 64
        elif factor == "assist":
            assist = True
        elif factor == "high":
            high = False
        elif pencil or rng.random() < 0.5:
            via, vcpu0 = "guest", rng.choice(["not initialised", "absent"])
        else:
            via, vcpu0 = "builder", "not initialised"
    if pencil:
        mfn = rng.choice([0x100000, 0x123456, 0x180000] if high else
                         [0xFFFFF, 0x1234, 0x80000])
    else:
        mfn = (rng.randrange(MFN_4GIB, 0x300000) if high else
               rng.randrange(0x1000, MFN_4GIB))
    return Situation(xen, bitness, assist, mfn, vcpu0, via)


def make_l3check(rng: random.Random, difficulty: str, *, n: int | None = None) -> Problem:
    count = n or {"pencil": 4, "normal": 6, "hard": 8}[difficulty]
    sits = [_situation(rng, difficulty) for _ in range(count)]
    return situations_problem(sits)


def situations_problem(sits: list[Situation]) -> Problem:
    answer = [trips(s) for s in sits]
    q = ["For each situation: does the PAE-extended-CR3 check in promote_l3_table trip "
         "(the operation fails with -ERANGE)? Answer with a list of True (trips) / False."]
    q += [f"  {i + 1}. {s.describe()}" for i, s in enumerate(sits)]
    if any(s.via != "guest" and s.bitness == 32 for s in sits):
        q += ["Mind the naming trap: the ELF note PAE_MODE \"yes\" means extended CR3 "
              "(XEN_PAE_EXTCR3), while the legacy string PAE=yes means no extended CR3 "
              "(XEN_PAE_YES); libelf-dominfo.c (elf_xen_parse_note / "
              "elf_xen_parse_guest_info) reads them so."]
    expl = "\n".join(f"{i + 1}. {'trips' if t else 'passes'}" for i, t in enumerate(answer))
    hints = (
        "The check needs all of: Xen 4.19 or later, a 32-bit guest, pae_extended_cr3 off, "
        "the L3 at or above 4 GiB (MFN 0x100000 and up), and vCPU 0 initialised.",
        "The toolstack's flows matter: the builder pins before vCPU 0's context exists, and "
        "moves the L3 below 4 GiB only for a kernel without extended CR3; a restore sets "
        "vCPU 0's context first, then pins.",
        "Go through the situations one by one and cross out each one that fails any single "
        "condition; what is left trips.",
    )
    data = {"situations": [s.as_dict() for s in sits]}
    return Problem("l3-check", "\n".join(q), answer, data, expl, hints)


def judge_l3check(p: Problem, answer: Any) -> Verdict:
    sits = [Situation(**d) for d in p.data["situations"]]
    given = as_bools(answer, len(sits))
    right = [trips(s) for s in sits]
    wrong = sum(g != r for g, r in zip(given, right, strict=True))
    if not wrong:
        return Verdict(True, f"All {len(sits)} decisions agree with the model.")
    return Verdict(False, f"{wrong} of your {len(sits)} decisions "
                          f"{'is' if wrong == 1 else 'are'} wrong.")


register_kind(Kind("l3-check", "decide for a list of situations whether the L3 check trips",
                   judge_l3check, make_l3check, options=("n",)))
