# SPDX-License-Identifier: MIT
"""Encode and decode a 32-bit PV guest's extended CR3 (`xen_pfn_to_cr3` / `xen_cr3_to_pfn`).

The right answer is what `pvlab.x86.cr3` computes, the functions the hypervisor model
itself uses for vCPU contexts.
"""

from __future__ import annotations

import random
from typing import Any, Literal, get_args

from pvlab.errors import PvlabError
from pvlab.exercises.answers import as_int
from pvlab.exercises.problem import Kind, Problem, Verdict, register_kind
from pvlab.x86.cr3 import xen_cr3_to_pfn_x86_32, xen_pfn_to_cr3_x86_32

_U32 = 0xFFFFFFFF
Direction = Literal["encode", "decode"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)


def _mfn(rng: random.Random, difficulty: str) -> int:
    if difficulty == "pencil":  # a few hex digits: high part 1-f, low part two digits
        return (rng.randrange(1, 16) << 20) | (rng.randrange(1, 256) << rng.choice((0, 4, 8)))
    if difficulty == "hard" and rng.random() < 0.25:
        return rng.randrange(1, 0x100000)  # below 4 GiB: the encoding is a plain shift
    return rng.randrange(0x100000, 1 << (26 if difficulty == "normal" else 32))


def make_cr3(rng: random.Random, difficulty: str, *, direction: str | None = None) -> Problem:
    direction = direction or rng.choice(DIRECTIONS)
    if direction not in DIRECTIONS:
        raise PvlabError(f"unknown direction {direction!r}", "use encode or decode")
    mfn = _mfn(rng, difficulty)
    cr3 = xen_pfn_to_cr3_x86_32(mfn)
    data = {"direction": direction, "mfn": mfn, "cr3": cr3}
    if direction == "encode":
        q = (f"A 32-bit PV guest's L3 is at MFN {mfn:#x}. Which CR3 value does the toolstack "
             "put in vCPU 0's context (xen_pfn_to_cr3 for x86_32)? Give an int.")
        answer = cr3
        hints = (
            "A 32-bit guest's CR3 holds only 32 bits, so the frame number cannot simply be "
            "shifted left by 12 when it has bits at or above bit 20.",
            "The extended-CR3 format rotates the 32-bit frame number left by 12: frame bits "
            "0-19 go to CR3 bits 12-31, frame bits 20-31 go to CR3 bits 0-11.",
            f"Work in two parts: (frame << 12) & 0xffffffff, and frame >> 20 = "
            f"{mfn >> 20:#x}, which lands in the low 12 bits.",
        )
    else:
        q = (f"A 32-bit PV guest's vCPU context holds CR3 = {cr3:#010x}. Which machine frame "
             "(MFN) is its L3 (xen_cr3_to_pfn for x86_32)? Give an int.")
        answer = mfn
        hints = (
            "In the extended-CR3 format the low 12 bits of CR3 are not flags: they carry the "
            "top bits of the frame number.",
            "Decoding rotates the 32-bit CR3 right by 12: CR3 bits 12-31 are frame bits 0-19, "
            "CR3 bits 0-11 are frame bits 20-31.",
            f"Work in two parts: CR3 >> 12, and (CR3 & 0xfff) = {cr3 & 0xFFF:#x}, which "
            "becomes frame bits 20 and up.",
        )
    expl = (f"xen_pfn_to_cr3_x86_32({mfn:#x}) = (({mfn:#x} << 12) | ({mfn:#x} >> 20)) & "
            f"0xffffffff = {cr3:#x}")
    return Problem("cr3", q, answer, data, expl, hints)


def judge_cr3(p: Problem, answer: Any) -> Verdict:
    given = as_int(answer, "answer")
    mfn, cr3 = p.data["mfn"], p.data["cr3"]
    if p.data["direction"] == "encode":
        right = xen_pfn_to_cr3_x86_32(mfn)
        if given == right:
            return Verdict(True, "That is the extended-CR3 encoding.")
        rotated = (mfn << 12) | (mfn >> 20)
        if given == rotated and given > _U32:
            return Verdict(False, "You rotated the frame number, but kept the frame bits that "
                                  "the shift pushed above bit 31: a 32-bit CR3 has no room "
                                  "for them.", (
                "The extended-CR3 value is a 32-bit number: everything above bit 31 must go.",
                "Its low 12 bits already hold frame bits 20 and up, so the copies above bit "
                "31 are not needed: nothing is lost by dropping them.",
                "Mask your value with 0xffffffff.",
            ))
        if given == mfn << 12 and given > _U32:
            return Verdict(False, "That does not fit in 32 bits: a 32-bit guest's CR3 cannot "
                                  "hold it.")
        if given == (mfn << 12) & _U32 and given != right:
            return Verdict(False, "The frame bits above bit 19 are lost: truncating to 32 bits "
                                  "names a different frame below 4 GiB.")
        if given == ((mfn >> 12) | (mfn << 20)) & _U32:
            return Verdict(False, "That rotates the wrong way.")
        if given & ~0xFFF == right & ~0xFFF:
            return Verdict(False, "Bits 12-31 are right; the low 12 bits are not.")
        return Verdict(False, "That is not the extended-CR3 value of this frame.")
    right = xen_cr3_to_pfn_x86_32(cr3)
    if given == right:
        return Verdict(True, "That is the frame the context names.")
    if given == cr3 >> 12:
        return Verdict(False, "The low 12 bits of this CR3 are part of the frame number, not "
                              "flags to drop.")
    if given == ((cr3 << 12) | (cr3 >> 20)) & _U32:
        return Verdict(False, "That rotates the wrong way.")
    if given & 0xFFFFF == right & 0xFFFFF:
        return Verdict(False, "The low 20 bits of the frame are right; the bits from 20 up are "
                              "not.")
    return Verdict(False, "That is not the frame this CR3 value names.")


register_kind(Kind("cr3", "encode or decode a 32-bit PV guest's extended CR3 value",
                   judge_cr3, make_cr3, options=("direction",)))
