# SPDX-License-Identifier: MIT
"""The hardware page walk: a virtual address to a physical address, or the fault and why.

`walk()` follows the Intel SDM Vol.3 chapter 4 for 32-bit paging (4.3), PAE paging
(4.4) and 4-level paging (4.5), checks reserved bits (4.3, 4.4.2, 4.5.4 tables),
combines access rights across levels (4.6) and builds the page-fault error code
(4.7). It is a pure, read-only walk: it never sets Accessed/Dirty bits (real
hardware sets A in every entry it uses and D in the leaf on a write, SDM 4.8);
A/D never change the outcome of a walk, so leaving them alone keeps `mem` untouched.

Not modelled: SMEP/SMAP, protection keys, PCID, 5-level paging, the TLB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pvlab.errors import PvlabError
from pvlab.units import GiB, KiB, MiB
from pvlab.x86.flags import ADDR_MASK, NX, PS, RW, US, P
from pvlab.x86.modes import (
    LARGE_PAGE_SIZES,
    PagingMode,
    check_va,
    entries_per_table,
    entry_width,
    index_shift,
    is_canonical,
    levels,
)

#: Page-fault error code bits as the hardware pushes them (SDM Vol.3 4.7, Figure 4-12).
PFEC_PRESENT = 1 << 0  #: 0: not-present entry; 1: protection or reserved-bit violation
PFEC_WRITE = 1 << 1  #: the access was a write
PFEC_USER = 1 << 2  #: the access was a user-mode (CPL 3) access
PFEC_RSVD = 1 << 3  #: a reserved bit was set in some paging-structure entry
PFEC_INSN = 1 << 4  #: instruction fetch (only reported with PAE/4-level paging and NXE=1)

#: PAE PDPTE reserved bits besides the address bits above MAXPHYADDR: 2:1, 8:5 and
#: 63:52 (including bit 63, which is not XD in a PDPTE) (SDM Vol.3 Table 4-8).
PDPTE_RSVD = 0b1_1110_0110 | (((1 << 12) - 1) << 52)


class PhysMem(Protocol):
    """Physical memory a walk reads: little-endian 32- and 64-bit loads."""

    def read_u32(self, paddr: int) -> int: ...

    def read_u64(self, paddr: int) -> int: ...


#: #PF or #GP(0).
FaultKind = Literal["page-fault", "gp"]


@dataclass(frozen=True)
class Step:
    """One paging-structure entry the walk read, and what it decided from it.

    `level` is 4..1 (PAE: 3 is the PDPT; 32-bit paging: 2 is the page directory).
    """

    level: int
    table: int
    index: int
    entry_addr: int
    entry: int
    decision: str


@dataclass(frozen=True)
class Fault:
    """Why the access faults.

    `kind` is `"page-fault"` (#PF, `error_code` as the hardware pushes it) or `"gp"`
    (#GP(0): non-canonical address; a present PAE PDPTE with reserved bits, which the
    hardware reports when CR3 is loaded, SDM Vol.3 4.4.1). `level` is the level of the
    entry at fault, or None.
    """

    kind: FaultKind
    level: int | None
    reason: str
    error_code: int


@dataclass(frozen=True)
class Walk:
    """The result of `walk()`: the entries read, and the physical address or the fault."""

    mode: PagingMode
    va: int
    access: str
    user: bool
    steps: tuple[Step, ...]
    paddr: int | None
    fault: Fault | None
    page_size: int | None

    @property
    def ok(self) -> bool:
        return self.fault is None


def _bits(lo: int, hi: int) -> int:
    """Mask of bits lo..hi inclusive (empty when hi < lo)."""
    return ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1) if hi >= lo else 0


def describe_bits(mask: int) -> str:
    """`"7, 40-51"`: the bit numbers set in `mask`, runs collapsed."""
    out = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            start = bit
            while mask >> (bit + 1) & 1:
                bit += 1
            out.append(str(start) if start == bit else f"{start}-{bit}")
        bit += 1
    return ", ".join(out)


def _size_name(size: int) -> str:
    for unit, n in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size % n == 0:
            return f"{size // n} {unit}"
    return f"{size} B"


def walk(
    mem: PhysMem,
    mode: PagingMode | str,
    cr3: int,
    va: int,
    *,
    write: bool = False,
    user: bool = False,
    fetch: bool = False,
    cr0_wp: bool = True,
    efer_nxe: bool = True,
    cr4_pse: bool = True,
    maxphyaddr: int = 52,
) -> Walk:
    """Translate `va` as the MMU would for a read, write or instruction fetch.

    - Not-present entry: #PF with P=0 (SDM Vol.3 4.7).
    - Present entry with a reserved bit: #PF with P=1 and RSVD=1 (SDM Vol.3 4.7). Reserved:
      address bits at or above `maxphyaddr` (PAE/4-level, Tables 4-8 to 4-20); bit 63 (XD)
      when EFER.NXE=0 (4.1.1); PS in an L4 entry (Table 4-14); the address bits below the
      page size in a 2 MiB / 1 GiB leaf, except bit 12 which is PAT (Tables 4-15, 4-17,
      4-10); in a 4 MiB PDE bits 21:(M-19) with M = min(maxphyaddr, 40) (PSE-36, Table
      4-4). Bits 52-62 are ignored (free for software) in 4-level entries (Tables 4-14 to
      4-20) but reserved in PAE paging's PDEs and PTEs ("62:M Reserved", Tables 4-9 to 4-11).
    - PAE PDPTEs: all four are loaded with CR3; a present one with reserved bits (2:1, 8:5,
      63:52, or address bits >= maxphyaddr) makes MOV to CR3 raise #GP (SDM Vol.3 4.4.1),
      reported here as a `"gp"` fault. PDPTEs carry no R/W, U/S or XD rights.
    - 4-level: a non-canonical `va` is #GP (SDM Vol.3 4.5, Vol.1 3.3.7.1).
    - Rights (SDM Vol.3 4.6): R/W and U/S are ANDed over all levels, XD ORed when
      EFER.NXE=1 (32-bit paging has no XD). User accesses need U/S=1 everywhere; user
      writes need R/W=1; supervisor writes to read-only pages fault only when CR0.WP=1;
      fetches fault on XD=1. The #PF error code has P=1, W for writes, U for user
      accesses, and I for fetches when PAE/4-level paging and EFER.NXE=1 (4.7).
    - 32-bit paging with CR4.PSE=0 ignores PS in a PDE (Table 4-5 vs 4-4).

    Never sets Accessed/Dirty bits. SMEP, SMAP, protection keys and PCID are not modelled.
    """
    mode = PagingMode.parse(mode)
    _check_request(mode, cr3, va, write=write, fetch=fetch, maxphyaddr=maxphyaddr)
    access = "write" if write else "fetch" if fetch else "read"
    nxe = efer_nxe and mode is not PagingMode.TWO_LEVEL

    def done(steps: list[Step], paddr: int | None = None, fault: Fault | None = None,
             size: int | None = None) -> Walk:
        return Walk(mode, va, access, user, tuple(steps), paddr, fault, size)

    base_ec = (PFEC_WRITE if write else 0) | (PFEC_USER if user else 0)
    if fetch and nxe:
        base_ec |= PFEC_INSN

    def page_fault(steps: list[Step], level: int, reason: str, ec: int) -> Walk:
        return done(steps, fault=Fault("page-fault", level, reason, base_ec | ec))

    if mode is PagingMode.FOUR_LEVEL and not is_canonical(va):
        return done([], fault=Fault(
            "gp", None, f"address {va:#x} is not canonical (bits 63-47 must all be equal)", 0))

    width = entry_width(mode)
    read = mem.read_u32 if width == 4 else mem.read_u64
    above_max = _bits(maxphyaddr, 51)
    rsvd_common = above_max | (0 if nxe else NX)
    if mode is PagingMode.PAE:
        rsvd_common |= _bits(52, 62)  # PAE PDE/PTE: bits 62:M reserved (SDM Tables 4-9..4-11)
    steps: list[Step] = []

    start = _first_table(read, mode, cr3, va, above_max, maxphyaddr, steps)
    if isinstance(start, Fault):
        if start.kind == "page-fault":
            return page_fault(steps, 3, start.reason, start.error_code)
        return done(steps, fault=start)
    table, top = start

    rw = us = True
    nx = False
    leaf_paddr = page_size = 0
    leaf_level = 1
    for level in range(top, 0, -1):
        shift = index_shift(mode, level)
        index = (va >> shift) & (entries_per_table(mode, level) - 1)
        addr = table + index * width
        e = read(addr)
        name = f"L{level} entry {index} (table {table:#x})"
        if not e & P:
            steps.append(Step(level, table, index, addr, e, "not present"))
            return page_fault(steps, level, f"{name} is not present", 0)
        large = (
            level > 1
            and bool(e & PS)
            and level in LARGE_PAGE_SIZES[mode]
            and (mode is not PagingMode.TWO_LEVEL or cr4_pse)
        )
        rsvd = _reserved_bits(mode, level, e, large=large, common=rsvd_common,
                              maxphyaddr=maxphyaddr)
        if rsvd:
            steps.append(Step(level, table, index, addr, e,
                              f"reserved bit(s) {describe_bits(rsvd)} set"))
            return page_fault(steps, level, f"{name} has reserved bit(s) {describe_bits(rsvd)}"
                              " set", PFEC_PRESENT | PFEC_RSVD)
        rw = rw and bool(e & RW)
        us = us and bool(e & US)
        nx = nx or (nxe and bool(e & NX))
        if large or level == 1:
            size = LARGE_PAGE_SIZES[mode][level] if large else 4 * KiB
            base = _page_base(mode, e, large=large, size=size)
            leaf_paddr, page_size, leaf_level = base | (va & (size - 1)), size, level
            steps.append(Step(level, table, index, addr, e,
                              f"maps the {_size_name(size)} page at {base:#x}"))
            break
        next_table = e & (0xFFFFF000 if width == 4 else ADDR_MASK)
        steps.append(Step(level, table, index, addr, e, f"next table at {next_table:#x}"))
        table = next_table

    problem = _rights_problem(user=user, write=write, fetch=fetch, us=us, rw=rw, nx=nx,
                              cr0_wp=cr0_wp)
    if problem:
        return page_fault(steps, leaf_level, problem, PFEC_PRESENT)
    return done(steps, paddr=leaf_paddr, size=page_size)


def _first_table(read: Callable[[int], int], mode: PagingMode, cr3: int, va: int,
                 above_max: int, maxphyaddr: int, steps: list[Step]) -> tuple[int, int] | Fault:
    """Where the walk starts: (the first table's address, its level), or the fault that
    stops it first (a PAE PDPTE that is not present, or a CR3 that cannot be loaded)."""
    if mode is PagingMode.PAE:
        pdpte = _load_pdptes(read, cr3, va, above_max, steps)
        if isinstance(pdpte, Fault):
            return pdpte
        if not pdpte & P:
            return Fault("page-fault", 3, f"PDPTE {(va >> 30) & 3} is not present", 0)
        return pdpte & ADDR_MASK, 2
    if mode is PagingMode.TWO_LEVEL:
        return cr3 & 0xFFFFF000, 2
    table = cr3 & ADDR_MASK
    if table & above_max:
        return Fault("gp", None,
                     f"CR3 {cr3:#x} has address bit(s) {describe_bits(table & above_max)} at or"
                     f" above MAXPHYADDR={maxphyaddr}: loading CR3 raises #GP", 0)
    return table, levels(mode)


def _load_pdptes(read: Callable[[int], int], cr3: int, va: int, above_max: int,
                 steps: list[Step]) -> int | Fault:
    """PAE: MOV to CR3 loads all four PDPTEs (#GP on reserved bits in a present one,
    SDM Vol.3 4.4.1); the one `va` selects, or the #GP fault. Records the step."""
    pdpt = cr3 & 0xFFFFFFE0
    want = (va >> 30) & 3
    pdptes = [read(pdpt + 8 * i) for i in range(4)]
    for i, e in enumerate(pdptes):
        bad = e & (PDPTE_RSVD | above_max) if e & P else 0
        if bad:
            steps.append(Step(3, pdpt, i, pdpt + 8 * i, e,
                              f"reserved bit(s) {describe_bits(bad)} set in a present PDPTE"))
            return Fault("gp", 3, f"PDPTE {i} is present with reserved bit(s) "
                         f"{describe_bits(bad)} set: loading CR3 raises #GP", 0)
    e = pdptes[want]
    what = f"next table at {e & ADDR_MASK:#x}" if e & P else "not present"
    steps.append(Step(3, pdpt, want, pdpt + 8 * want, e, what))
    return e


def _reserved_bits(mode: PagingMode, level: int, e: int, *, large: bool, common: int,
                   maxphyaddr: int) -> int:
    """The reserved bits set in a present entry (SDM Vol.3 Tables 4-4 to 4-20)."""
    if mode is PagingMode.TWO_LEVEL:
        # a 4 MiB PDE: bits 21:(M-19) with M = min(MAXPHYADDR, 40) (PSE-36)
        return e & _bits(min(maxphyaddr, 40) - 19, 21) if large else 0
    rsvd = e & common
    if mode is PagingMode.FOUR_LEVEL and level == 4:
        rsvd |= e & PS
    if large:
        rsvd |= e & _bits(13, index_shift(mode, level) - 1)
    return rsvd


def _page_base(mode: PagingMode, e: int, *, large: bool, size: int) -> int:
    """The physical base of the page a leaf entry maps (PSE-36 for a 4 MiB PDE)."""
    if mode is PagingMode.TWO_LEVEL and large:
        return (e & 0xFFC00000) | (((e >> 13) & 0xFF) << 32)
    if mode is PagingMode.TWO_LEVEL:
        return e & 0xFFFFF000
    return e & ADDR_MASK & ~(size - 1)


def _rights_problem(*, user: bool, write: bool, fetch: bool, us: bool, rw: bool, nx: bool,
                    cr0_wp: bool) -> str | None:
    """Why the combined rights refuse the access (SDM Vol.3 4.6), or None."""
    if user and not us:
        return "a user access to a page that is supervisor-only (U/S=0 at some level)"
    if write and not rw and (user or cr0_wp):
        return ("a user write to a read-only page (R/W=0 at some level)" if user else
                "a supervisor write to a read-only page with CR0.WP=1 (R/W=0 at some level)")
    if fetch and nx:
        return "an instruction fetch from a no-execute page (XD=1 at some level)"
    return None


def _check_request(mode: PagingMode, cr3: int, va: int, *, write: bool, fetch: bool,
                   maxphyaddr: int) -> None:
    """Refuse a request no MMU could be asked (a clear PvlabError)."""
    if write and fetch:
        raise PvlabError("an access cannot be both a write and an instruction fetch",
                         "pass write=True or fetch=True, not both")
    if not 32 <= maxphyaddr <= 52:
        raise PvlabError(f"MAXPHYADDR {maxphyaddr} is not between 32 and 52",
                         "use maxphyaddr=52 (the architectural maximum) or a real CPU's value")
    if mode is PagingMode.FOUR_LEVEL:
        if not isinstance(va, int) or isinstance(va, bool) or not 0 <= va < 1 << 64:
            raise PvlabError(f"virtual address {va!r} is not a 64-bit address",
                             "give an address from 0 to 0xffffffffffffffff")
    else:
        check_va(mode, va)
    if not isinstance(cr3, int) or isinstance(cr3, bool) or cr3 < 0:
        raise PvlabError(f"CR3 value {cr3!r} is not a non-negative integer", "give e.g. 0x1000")
    if mode is not PagingMode.FOUR_LEVEL and cr3 >= 1 << 32:
        raise PvlabError(f"CR3 value {cr3:#x} does not fit 32 bits, as {mode.value} paging needs",
                         "use a CR3 below 4 GiB (see pae_cr3 / pae_extended_cr3)")
