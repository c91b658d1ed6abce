# SPDX-License-Identifier: MIT
"""Cross-check `pvlab.x86.walk` against Unicorn's (QEMU's) x86 MMU on random page tables.

Random but valid-ish tables (present/not-present entries, RW/US/NX, large pages, reserved
bits, aliasing) are built for each of the three paging modes and loaded into Unicorn;
every virtual address is then translated for read/write/fetch, supervisor and user, by
our walk and by Unicorn's `uc_vmem_translate` (reached through ctypes on `Uc._uch`).

What is compared, and what Unicorn cannot tell us:
- `uc_vmem_translate` reports only success or failure, not the #PF error code. We compare
  fault vs no fault and the physical address. #PF vs #GP is told apart through CR2: QEMU
  stores the faulting address in CR2 on a #PF even for a probing translation, and leaves
  it alone on a #GP (non-canonical address). The error code itself is checked by the
  hand-built cases in test_x86_walk.py, against the SDM.
- User accesses run on a separate Unicorn put at CPL 3 (QEMU's MMU_USER_IDX); a check
  below proves that Unicorn refuses a supervisor-only page.
- Unicorn's CPU has MAXPHYADDR 40 (QEMU's TCG default), so our walk runs with
  `maxphyaddr=40` here.
- PAE PDPTEs: the hardware loads all four at MOV CR3 and raises #GP for a present PDPTE
  with a reserved bit set (SDM Vol.3 4.4.1). Unicorn instead re-reads the one PDPTE it
  needs on every walk, ignores reserved bits 2:1 and 8:5, and turns bits 40-63 into a
  #PF. Walks our model reports as that #GP are therefore checked against the manual's
  rule (computed independently below), and against Unicorn only where Unicorn must also
  fail (the walk's own PDPTE has a bit in 40-63 set); they are not counted as compared.
- Unicorn sets Accessed/Dirty bits as it walks; those never change a walk's outcome.
"""

from __future__ import annotations

import ctypes
import os
import random
from dataclasses import dataclass

import pytest
from x86mem import DictMem

from pvlab.x86 import NX, PS, RW, US, P, PagingMode, walk
from pvlab.x86.walk import PFEC_PRESENT, PFEC_RSVD, Walk

try:
    import unicorn
    from unicorn import x86_const as ux
except ImportError:  # pragma: no cover - exercised only without unicorn
    unicorn = None  # type: ignore[assignment]

TWO, PAE, FOUR = PagingMode.TWO_LEVEL, PagingMode.PAE, PagingMode.FOUR_LEVEL
MAXPHYADDR = 40  # Unicorn / QEMU TCG's physical address width
RAM = 16 << 20  # tables live in the first 16 MiB of Unicorn's physical memory
EFER_MSR = 0xC0000080
EFER_LME, EFER_NXE = 1 << 8, 1 << 11
CR0_PE, CR0_WP, CR0_PG = 1 << 0, 1 << 16, 1 << 31
CR4_PSE, CR4_PAE = 1 << 4, 1 << 5
CR2_SENTINEL = 0xDEAD000
WALKS_PER_MODE = 10_000  # 30,000 compared walks in all: a few seconds


def _need_unicorn() -> None:
    if unicorn is None:
        if os.environ.get("CI"):
            pytest.fail("unicorn is not installed: CI must run the Unicorn cross-check "
                        "(pip install -e '.[test]')")
        pytest.skip("unicorn is not installed (pip install unicorn)")


# --- the Unicorn side ---------------------------------------------------------------------

class UnicornMMU:
    """One Unicorn x86 CPU used only as an MMU oracle."""

    def __init__(self, long_mode: bool, user: bool) -> None:
        from unicorn.unicorn_py3 import unicorn as binding

        # UC_MODE_32 even for 4-level paging: setting EFER.LME, CR4.PAE and CR0.PG enters
        # long mode as on hardware, and only this mode's register API can load SS (CPL).
        self.uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
        self.uc.mem_map(0, RAM)
        self.long_mode = long_mode
        if user:
            # QEMU takes the CPL from SS's DPL. A segment load in virtual-8086 mode gives
            # DPL 3, so: set EFLAGS.VM, load SS, clear EFLAGS.VM -> CPL 3 (MMU_USER_IDX).
            flags = self.uc.reg_read(ux.UC_X86_REG_EFLAGS)
            self.uc.reg_write(ux.UC_X86_REG_EFLAGS, flags | 1 << 17)
            self.uc.reg_write(ux.UC_X86_REG_SS, 0x0B)
            self.uc.reg_write(ux.UC_X86_REG_EFLAGS, flags)
        lib = ctypes.CDLL(binding.uclib._name)
        self._translate = lib.uc_vmem_translate
        self._translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_uint64)]
        self._translate.restype = ctypes.c_int
        self._out = ctypes.c_uint64()
        self.written: list[int] = []

    def load(self, mem: DictMem, cr3: int, *, pae: bool, pse: bool, wp: bool, nxe: bool) -> None:
        """Replace the page tables and control registers; writing CR3 flushes the TLB."""
        for addr in self.written:
            self.uc.mem_write(addr, bytes(8))
        self.written = [a for a, _ in mem.dump()]
        for addr, data in mem.dump():
            self.uc.mem_write(addr, data)
        uc = self.uc
        uc.msr_write(EFER_MSR, (EFER_LME if self.long_mode else 0) | (EFER_NXE if nxe else 0))
        uc.reg_write(ux.UC_X86_REG_CR4, (CR4_PAE if pae else 0) | (CR4_PSE if pse else 0))
        uc.reg_write(ux.UC_X86_REG_CR0, CR0_PE | CR0_PG | (CR0_WP if wp else 0))
        uc.reg_write(ux.UC_X86_REG_CR3, cr3)

    def translate(self, va: int, access: str) -> tuple[int | None, bool]:
        """(physical address or None, whether CR2 now holds `va`, i.e. a #PF was taken)."""
        prot = {"read": unicorn.UC_PROT_READ, "write": unicorn.UC_PROT_WRITE,
                "fetch": unicorn.UC_PROT_EXEC}[access]
        self.uc.reg_write(ux.UC_X86_REG_CR2, CR2_SENTINEL)
        rc = self._translate(self.uc._uch, va, prot, ctypes.byref(self._out))
        if rc == 0:
            return self._out.value, False
        # UC_MODE_32's register API reads CR2 as 32 bits
        return None, self.uc.reg_read(ux.UC_X86_REG_CR2) == va & 0xFFFFFFFF


# --- random page tables -------------------------------------------------------------------

@dataclass
class Tree:
    mem: DictMem
    cr3: int
    vas: list[int]
    pse: bool
    wp: bool
    nxe: bool


def _random_tree(rng: random.Random, mode: PagingMode) -> Tree:
    """Random tables reached by a handful of random VAs; every entry is a random draw."""
    width = 4 if mode is TWO else 8
    mem = DictMem()
    free = rng.sample(range(1, RAM >> 12), 64)  # table frames; frame 0 holds the GDT
    tables: list[int] = []

    def new_table() -> int:
        if tables and rng.random() < 0.05:
            return rng.choice(tables)  # aliasing: a table reused at another place
        t = free.pop() << 12
        tables.append(t)
        return t

    def random_bits() -> int:
        e = 0
        for bit, p in ((RW, 0.8), (US, 0.8), (1 << 3, 0.1), (1 << 4, 0.1), (1 << 5, 0.5),
                       (1 << 6, 0.3), (1 << 8, 0.1), (0xE00, 0.1)):
            if rng.random() < p:
                e |= bit if bit != 0xE00 else rng.getrandbits(3) << 9
        if width == 8:
            if rng.random() < 0.2:
                e |= NX
            if rng.random() < 0.05:
                e |= rng.getrandbits(11) << 52  # ignored in 4-level, reserved in PAE
            if rng.random() < 0.04:
                e |= 1 << rng.randrange(MAXPHYADDR, 52)  # above MAXPHYADDR: reserved
        return e

    def entry(level: int) -> int:
        present = rng.random() < 0.93
        e = random_bits() | (P if present else 0)
        large_ok = level in (2, 3) if mode is FOUR else level == 2
        if mode is FOUR and level == 4 and rng.random() < 0.03:
            return e | PS | new_table()  # PS in a PML4E: reserved
        if large_ok and rng.random() < 0.25:
            size_shift = {2: 22 if mode is TWO else 21, 3: 30}[level]
            limit = 32 if mode is TWO else MAXPHYADDR
            base = rng.getrandbits(limit - size_shift) << size_shift
            e |= PS | base
            if rng.random() < 0.5:
                e |= 1 << 12  # PAT: allowed
            if rng.random() < 0.1:
                e |= 1 << rng.randrange(13, size_shift)  # misaligned / PSE-36 high bits
            if mode is TWO and rng.random() < 0.1:
                e |= 1 << 21  # reserved in a 4 MiB PDE
            return e & 0xFFFFFFFF if width == 4 else e
        if level == 1:
            limit = 32 if mode is TWO else MAXPHYADDR
            e |= rng.getrandbits(limit - 12) << 12
            if rng.random() < 0.3:
                e |= PS  # PAT in a PTE
            return e
        if mode is TWO and rng.random() < 0.1:
            e |= PS  # with CR4.PSE=0 this PDE still points at a page table
        return e | new_table()

    def pdpte() -> int:
        e = (P if rng.random() < 0.9 else 0) | (rng.getrandbits(2) << 3) | new_table()
        if rng.random() < 0.03:
            e |= 1 << rng.choice([1, 2, 5, 6, 7, 8, 45, 52, 60, 63])  # reserved
        return e

    if mode is PAE:
        pdpt = (free.pop() << 12) | (rng.randrange(128) << 5)
        cr3, top = pdpt, 3
        for i in range(4):
            mem.write_u64(pdpt + 8 * i, pdpte())
    else:
        cr3 = new_table()
        top = 4 if mode is FOUR else 2

    vas = []
    for _ in range(8):
        if mode is FOUR:
            va = rng.getrandbits(48)
            va = va | (0xFFFF << 48) if va >> 47 else va
            if rng.random() < 0.05:
                va ^= 1 << rng.randrange(48, 64)  # non-canonical
        else:
            va = rng.getrandbits(32)
        vas.append(va)
        # populate the entries this VA's walk reads, each with a random entry
        if mode is PAE:
            table = mem.read_u64(cr3 + 8 * (va >> 30)) & 0xFFFFFFFFFF000
        else:
            table = cr3
        for level in range(top if mode is not PAE else 2, 0, -1):
            shift = 12 + (10 if mode is TWO else 9) * (level - 1)
            index = (va >> shift) & ((1 << (10 if mode is TWO else 9)) - 1)
            addr = table + index * width
            if table >= RAM:
                break
            current = mem.read_u32(addr) if width == 4 else mem.read_u64(addr)
            if current == 0:
                current = entry(level)
                (mem.write_u32 if width == 4 else mem.write_u64)(addr, current)
            if not current & P or level == 1 or (current & PS and level in (2, 3)):
                break
            table = current & (0xFFFFF000 if width == 4 else 0xFFFFFFFFFF000)
    return Tree(mem, cr3, vas, pse=rng.random() < 0.7, wp=rng.random() < 0.7,
                nxe=rng.random() < 0.7)


def _pdpte_gp_by_the_manual(mem: DictMem, cr3: int) -> bool:
    """SDM Vol.3 Table 4-8: reserved bits 2:1, 8:5, 63:MAXPHYADDR in a present PDPTE."""
    reserved = 0b110 | 0b1_1110_0000 | ((1 << 64) - (1 << MAXPHYADDR))
    pdpt = cr3 & 0xFFFFFFE0
    return any(e & P and e & reserved for e in (mem.read_u64(pdpt + 8 * i) for i in range(4)))


# --- the cross-check ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mmus() -> dict[tuple[bool, bool], UnicornMMU]:
    _need_unicorn()
    return {(lm, user): UnicornMMU(lm, user) for lm in (False, True) for user in (False, True)}


def _check_one(mode: PagingMode, tree: Tree, mmu: UnicornMMU, va: int, access: str,
               user: bool) -> str:
    ours: Walk = walk(tree.mem, mode, tree.cr3, va, write=access == "write",
                      fetch=access == "fetch", user=user, cr0_wp=tree.wp, efer_nxe=tree.nxe,
                      cr4_pse=tree.pse, maxphyaddr=MAXPHYADDR)
    theirs, page_fault = mmu.translate(va, access)
    where = (f"{mode.value} va={va:#x} {access} user={user} wp={tree.wp} nxe={tree.nxe} "
             f"pse={tree.pse} ours={ours.fault or hex(ours.paddr or 0)} "
             f"unicorn={'fault' if theirs is None else hex(theirs)}")
    if ours.fault and ours.fault.kind == "gp" and mode is PAE:
        assert _pdpte_gp_by_the_manual(tree.mem, tree.cr3), where
        own = tree.mem.read_u64((tree.cr3 & 0xFFFFFFE0) + 8 * (va >> 30))
        if own & P and own >> MAXPHYADDR:
            assert theirs is None and page_fault, where
        return "pdpte-gp"
    assert (ours.fault is None) == (theirs is not None), where
    if ours.fault is None:
        assert ours.paddr == theirs, where
        return "ok" if ours.page_size == 4096 else "ok-large"
    assert page_fault == (ours.fault.kind == "page-fault"), where
    if ours.fault.kind == "gp":
        return "gp"
    ec = ours.fault.error_code
    return "pf-rsvd" if ec & PFEC_RSVD else "pf-protection" if ec & PFEC_PRESENT else "pf-absent"



@pytest.mark.parametrize("mode", [TWO, PAE, FOUR], ids=lambda m: m.value)
def test_walk_matches_unicorn(mode: PagingMode, mmus: dict) -> None:
    rng = random.Random(f"pvlab-x86-{mode.value}")
    counts: dict[str, int] = {}
    compared = 0
    while compared < WALKS_PER_MODE:
        tree = _random_tree(rng, mode)
        for user in (False, True):
            mmu = mmus[(mode is FOUR, user)]
            mmu.load(tree.mem, tree.cr3, pae=mode is not TWO, pse=tree.pse, wp=tree.wp,
                     nxe=tree.nxe)
            for va in tree.vas:
                for access in ("read", "write", "fetch"):
                    outcome = _check_one(mode, tree, mmu, va, access, user)
                    counts[outcome] = counts.get(outcome, 0) + 1
                    compared += outcome != "pdpte-gp"
    # the random tables must exercise every kind of outcome in every mode
    for kind in ("ok", "ok-large", "pf-absent", "pf-protection", "pf-rsvd"):
        assert counts.get(kind, 0) > WALKS_PER_MODE // 100, (kind, counts)
    if mode is FOUR:
        assert counts.get("gp", 0) > 0, counts
    if mode is PAE:
        assert counts.get("pdpte-gp", 0) > 0, counts


def test_unicorn_oracle_sees_cpl3(mmus: dict) -> None:
    """The user-mode Unicorn really runs at CPL 3: a supervisor-only page faults there."""
    mem = DictMem()
    mem.write_u64(0x1000, 0x2000 | P | RW | US)
    mem.write_u64(0x2000, 0x3000 | P | RW | US)
    mem.write_u64(0x3000, 0x4000 | P | RW | US)
    mem.write_u64(0x4000 + 5 * 8, 0x9000 | P | RW)  # supervisor-only
    for user in (False, True):
        mmu = mmus[(True, user)]
        mmu.load(mem, 0x1000, pae=True, pse=True, wp=True, nxe=True)
        paddr, _ = mmu.translate(0x5123, "read")
        assert (paddr is None) is user
        assert walk(mem, FOUR, 0x1000, 0x5123, user=user).ok is (not user)


def test_missing_unicorn_fails_in_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    import test_x86_walk_unicorn as me

    monkeypatch.setattr(me, "unicorn", None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run"):
        me._need_unicorn()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        me._need_unicorn()
