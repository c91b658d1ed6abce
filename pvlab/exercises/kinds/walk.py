# SPDX-License-Identifier: MIT
"""Translate a virtual address by hand: the physical address, or the fault.

The problem is a few frames of memory, a CR3 and an access; the answer is what
`pvlab.x86.walk.walk` gives for exactly that memory.
"""

from __future__ import annotations

import random
from typing import Any

from pvlab.exercises.answers import as_translation
from pvlab.exercises.memory import FrameMemory
from pvlab.exercises.problem import Kind, Problem, Verdict, register_kind
from pvlab.x86.flags import NX, PS, RW, US, A, D, P, flag_names
from pvlab.x86.modes import LARGE_PAGE_SIZES, PagingMode, entry_width, levels
from pvlab.x86.walk import Walk, walk

MODE_TITLES = {
    PagingMode.TWO_LEVEL: "2-level (32-bit paging: 4-byte entries, 1024 per table)",
    PagingMode.PAE: "PAE (3-level: a 4-entry PDPT, then 8-byte entries, 512 per table)",
    PagingMode.FOUR_LEVEL: "4-level (8-byte entries, 512 per table, 48-bit addresses)",
}
INDEX_BITS = {
    PagingMode.TWO_LEVEL: "L2 (page directory) index = VA bits 31-22, L1 (page table) index "
                          "= bits 21-12, offset = bits 11-0",
    PagingMode.PAE: "L3 (PDPT) index = VA bits 31-30, L2 index = bits 29-21, L1 index = "
                    "bits 20-12, offset = bits 11-0",
    PagingMode.FOUR_LEVEL: "L4 index = VA bits 47-39, L3 = 38-30, L2 = 29-21, L1 = 20-12, "
                           "offset = bits 11-0",
}


def _width(mode: PagingMode) -> int:
    return entry_width(mode)


def run_walk(data: dict[str, Any]) -> Walk:
    """Walk the problem's memory with the lab's own page walk."""
    mode = PagingMode.parse(data["mode"])
    mem = FrameMemory()
    for frame, entries in data["memory"].items():
        for index, value in entries.items():
            mem.write_entry(int(frame, 16), int(index), value, _width(mode))
    return walk(mem, mode, data["cr3"], data["va"], write=data["access"] == "write",
                fetch=data["access"] == "fetch", user=data["user"])


def walk_answer(w: Walk) -> int | tuple[str, int | None]:
    if w.fault is None:
        assert w.paddr is not None
        return w.paddr
    return ("#GP", None) if w.fault.kind == "gp" else ("#PF", w.fault.level)


def make_walk(rng: random.Random, difficulty: str, *, mode: str | None = None,
              fault: bool | None = None) -> Problem:
    m = PagingMode.parse(mode) if mode else rng.choice(list(PagingMode))
    pencil, hard = difficulty == "pencil", difficulty == "hard"
    nlev = levels(m)
    per = 1024 if m is PagingMode.TWO_LEVEL else 512
    # Indices: small for pencil work, anywhere otherwise.
    span = 4 if pencil else per
    idx = [rng.randrange(4 if (m is PagingMode.PAE and lv == 3) else span)
           for lv in range(nlev, 0, -1)]
    offset = rng.randrange(0x10, 0x1000, 0x10) if pencil else rng.randrange(0x1000)
    frames = rng.sample(range(1, 0x40 if pencil else 0xFFFFF), 3 * nlev + 2)
    if m is PagingMode.FOUR_LEVEL and not pencil:
        idx[0] = rng.randrange(256)  # keep the address canonical (lower half)
    large = (hard and rng.random() < 0.5)
    leaf_level = 2 if large else 1
    if fault is None:
        fault = rng.random() < (0.2 if pencil else 0.35)
    access = "read"
    user = False
    if not pencil:
        access = rng.choice(["read", "write"] + (["fetch"] if hard else []))
        user = rng.random() < 0.5
    memory: dict[int, dict[int, int]] = {}

    def put(frame: int, index: int, value: int) -> None:
        memory.setdefault(frame, {})[index] = value

    top = frames.pop()
    table = top
    va = 0
    shift = 12 + (10 if m is PagingMode.TWO_LEVEL else 9) * (nlev - 1)
    if m is PagingMode.PAE:
        shift = 30
    path: list[tuple[int, int, int]] = []  # (level, table, index)
    for n, level in enumerate(range(nlev, leaf_level - 1, -1)):
        i = idx[n]
        va |= i << shift
        path.append((level, table, i))
        is_leaf = level == leaf_level
        if m is PagingMode.PAE and level == 3:
            flags = P
        else:
            flags = P | RW | US | A | (D if is_leaf else 0) | (PS if is_leaf and large else 0)
        if is_leaf:
            target = frames.pop()
            if large:  # a 2 MiB / 4 MiB page starts on its size boundary
                size_frames = LARGE_PAGE_SIZES[m][2] >> 12
                target = (target % 8 + 1) * size_frames
        else:
            target = frames.pop()
        put(table, i, (target << 12) | flags)
        # A distractor: another present entry in the same table, one index away.
        others = [j for j in range(min(span, 4 if m is PagingMode.PAE and level == 3 else per))
                  if j != i]
        for j in rng.sample(others, 1 if pencil else min(2, len(others))):
            fl = P if m is PagingMode.PAE and level == 3 else P | RW | US | A
            put(table, j, (frames.pop() << 12) | fl)
        table = target
        shift -= 10 if m is PagingMode.TWO_LEVEL else 9
    if large:  # the L1 index bits become part of the offset in the large page
        offset |= rng.randrange(LARGE_PAGE_SIZES[m][2] >> 12) << 12
    va |= offset
    if fault:
        level, tbl, i = rng.choice(path)
        how = rng.choice(["not-present"] + ([] if pencil else ["rights"]))
        entry = memory[tbl][i]
        if how == "not-present" or (m is PagingMode.PAE and level == 3):
            memory[tbl][i] = entry & ~P
        elif user:
            memory[tbl][i] = entry & ~US
        else:
            access = "write"
            memory[tbl][i] = entry & ~RW
    if hard and m is not PagingMode.TWO_LEVEL and access == "fetch" and rng.random() < 0.5:
        level, tbl, i = rng.choice([p for p in path if not (m is PagingMode.PAE and p[0] == 3)])
        memory[tbl][i] |= NX
    cr3 = top << 12
    data = {
        "mode": m.value,
        "cr3": cr3,
        "va": va,
        "access": access,
        "user": user,
        "memory": {f"{f:#x}": dict(sorted(e.items())) for f, e in sorted(memory.items())},
    }
    w = run_walk(data)
    return Problem("walk", walk_question(data), walk_answer(w), data, explain_walk(w),
                   walk_hints(w))


def _entry_text(value: int, width: int, level: int) -> str:
    names = "|".join(flag_names(value, level)) or "not present"
    return f"{value:#0{2 + 2 * width}x}  ({names})"


def walk_question(data: dict[str, Any]) -> str:
    m = PagingMode.parse(data["mode"])
    width = _width(m)
    who = "user-mode (CPL 3)" if data["user"] else "supervisor (kernel)"
    lines = [
        f"Paging mode: {MODE_TITLES[m]}.",
        f"CR3 = {data['cr3']:#x}.  Access: a {who} {data['access']} of VA {data['va']:#x}.",
        "CR0.WP = 1, EFER.NXE = 1, CR4.PSE = 1; every other byte of memory is zero.",
        "Non-zero entries (frame: index = value):",
    ]
    for frame, entries in data["memory"].items():
        for index, value in entries.items():
            lines.append(f"  frame {frame} [{index:>4}] = {_entry_text(value, width, 2)}")
    lines.append('Give the physical address (an int), or the fault: "#PF at L<n>" (n = level of '
                 'the last entry the walk read) or "#GP".')
    return "\n".join(lines)


def explain_walk(w: Walk) -> str:
    lines = []
    for s in w.steps:
        lines.append(f"L{s.level} entry {s.index} at {s.entry_addr:#x} = {s.entry:#x}: "
                     f"{s.decision}")
    if w.fault:
        lines.append(f"fault: {w.fault.kind} ({w.fault.reason})")
    else:
        lines.append(f"physical address {w.paddr:#x}")
    return "\n".join(lines)


def judge_walk(p: Problem, answer: Any) -> Verdict:
    given = as_translation(answer)
    w = run_walk(p.data)
    right = walk_answer(w)
    if given == right:
        return Verdict(True, "That is where the MMU ends up.")
    if isinstance(right, int):
        if isinstance(given, tuple):
            return Verdict(False, "This access does not fault: every entry on its path is "
                                  "present and allows it.")
        size = w.page_size or 4096
        if given & (size - 1) != right & (size - 1):
            return Verdict(False, "The offset inside the page is wrong: the low bits of the "
                                  "physical address are the VA's own low bits.")
        early = stopped_early(w, given)
        if early:
            return early
        return Verdict(False, "The offset is right but the page frame is not: one of the "
                              "entries you followed is not the one the VA's index selects.")
    if isinstance(given, int):
        return Verdict(False, "This access does not reach a page: the walk stops on the way.")
    if given[0] != right[0]:
        return Verdict(False, "It faults, but not with that exception.")
    if given[1] is None:
        return Verdict(False, 'Right kind of fault; now say at which level, e.g. "#PF at L2".')
    return Verdict(False, "It faults, but not at that level.")


def stopped_early(w: Walk, given: int) -> Verdict | None:
    """The answer's frame is a table the walk still reads: the learner stopped early."""
    frame = given >> 12
    for back, step in enumerate(reversed(w.steps), start=1):
        if step.table >> 12 != frame:
            continue
        levels_early = "one level" if back == 1 else f"{back} levels"
        return Verdict(False, f"You stopped {levels_early} early: that frame is the L{step.level} "
                              "table the walk still reads, not the page it ends on.", (
            f"A table's frame is not the data page: the walk reads the L{step.level} entry "
            "at that table too, using the VA's index for that level.",
            f"Read the L{step.level} table's entry at the VA's L{step.level} index; its address "
            "field names the next frame.",
            "Keep going until an entry maps a page (L1, or a larger page with PS); that "
            "entry's frame plus the offset is the physical address.",
        ))
    return None


def walk_hints(w: Walk) -> tuple[str, ...]:
    m = w.mode
    first = w.steps[0] if w.steps else None
    h1 = f"Split the VA first: {INDEX_BITS[m]}."
    if first is None:
        return (h1, "Before any table is read, the address itself must be valid.",
                "Check bits 63-47 of the address: are they all equal?")
    h2 = (f"The top-level table is at CR3's address; the VA selects its entry {first.index}. "
          "Read that entry's present bit and address field.")
    if len(w.steps) > 1:
        second = w.steps[1]
        h3 = (f"The walk reads L{second.level} entry {second.index} next, then continues "
              "the same way; for the rights, U/S and R/W must allow the access at every "
              "level (and XD must be clear for a fetch).")
    else:
        h3 = ("Look at the present bit and the reserved bits of that first entry before "
              "anything else.")
    return (h1, h2, h3)


register_kind(Kind("walk", "translate a virtual address by hand (physical address or fault)",
                   judge_walk, make_walk, options=("mode", "fault")))

