# SPDX-License-Identifier: MIT
"""The PV dom0 builder: Xen builds dom0 itself (`xen/arch/x86/pv/dom0_build.c`,
`dom0_construct_pv`), so it writes and types the boot tables directly.

Differences from the domU builder that matter for the PAE-extended-CR3 rule:

- the boot tables get their types set directly (`mark_pv_pt_pages_rdonly`): no promotion,
  so `promote_l3_table` and its -ERANGE check never run for them;
- a 32-bit dom0 whose kernel declares extended CR3 (BIMODAL is folded into EXTCR3) gets
  `pae_extended_cr3` turned on before memory is allocated;
- from Xen 4.19 a 32-bit dom0 *without* the assist gets all its initial memory with
  `MEMF_bits(32)` (below 4 GiB); up to 4.18 nothing limits it;
- all four compat L3 slots are populated (missing L2s are added), slot 3's L2 is a
  `pae_xen_l2`; the top-level table is pinned; vCPU 0 is marked initialised at the end
  (no `arch_set_info_guest`).

This is Xen's own code, so unlike the domU toolstack it works on `page_info` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvlab.errors import PvlabError
from pvlab.toolstack.builder import L1_PROT, UPPER_PROT, BuildResult
from pvlab.toolstack.flow import allocated_mfn
from pvlab.toolstack.kernel import KernelImage, PaeMode, kernel_image
from pvlab.toolstack.layout import TablePlan, plan_image, table_entries
from pvlab.trace import Errno, Outcome, Tracer
from pvlab.units import MFN_4GIB, PAGE_SIZE, parse_size
from pvlab.x86.flags import RW, P, entry_mfn, make_entry
from pvlab.xen.domain import VMASST_TYPE_pae_extended_cr3
from pvlab.xen.hypervisor import Guest, Xen
from pvlab.xen.page_info import (
    LEVEL_TYPE,
    PGT_pae_xen_l2,
    PGT_pinned,
    PGT_validated,
    PGT_writable_page,
)
from pvlab.xen.profiles import Profile

DOM0_STEPS = ("parse_image", "create_dom0", "vm_assist", "alloc_memory",
              "construct_pagetables", "pin_top_level", "vcpu0")
_GUEST_KERNEL = 1 << 52  # _PAGE_GUEST_KERNEL (64-bit dom0 L1 entries)


def dom0_memf_bits32(profile: Profile) -> bool:
    """Does this profile allocate a non-extended 32-bit dom0 below 4 GiB? (4.19+)

    The dom0 half of commit a773adedbd came with the check, so the profile's
    `pae_l3_below_4g_check` stands for it (a dedicated profile field would be clearer).
    """
    flag = getattr(profile, "dom0_pv32_memf_bits32", None)
    return bool(profile.pae_l3_below_4g_check if flag is None else flag)


@dataclass
class Dom0Options:
    kernel: str | KernelImage = "extcr3"
    memory: int | str = "16MiB"
    kernel_size: int | str = "1MiB"
    vcpus: int = 1
    #: force the top-level table's frame, e.g. {"above": "4GiB"} (ignored under MEMF_bits(32))
    l3: dict[str, int | str] | None = None


class _Dom0Build:
    """`dom0_construct_pv`, one method per stage; each returns the stage's Outcome."""

    def __init__(self, xen: Xen, o: Dom0Options) -> None:
        self.xen, self.o = xen, o
        self.k = k = kernel_image(o.kernel, size=o.kernel_size)
        memory_pages = parse_size(o.memory, what="dom0 memory") // PAGE_SIZE
        self.layout = plan_image(k, memory_pages)
        self.res = BuildResult("build_dom0", xen, kernel=k, layout=self.layout)
        self.compat = k.abi.switch_compat
        self.extended = self.compat and k.extended_cr3  # BIMODAL is folded into EXTCR3 first
        self.limits = dict(o.l3 or {})
        if set(self.limits) - {"above", "below", "mfn"}:
            raise PvlabError("unknown key in the dom0 L3 placement", "use above:, below: or mfn:")
        self.frames = self.layout.area_pages  # how many frames alloc_memory populates
        self.root = 0

    @property
    def guest(self) -> Guest:
        assert self.res.guest is not None
        return self.res.guest

    def parse_image(self) -> Outcome:
        k = self.k
        t = Tracer(f"dom0 kernel ({k.kind})")
        if self.compat and k.pae == PaeMode.XEN_PAE_NO:
            t.event("elf", "fail", "32-bit dom0 kernel without PAE: 64-bit Xen only runs PAE "
                    "(xen-3.0-x86_32p) 32-bit kernels", "dom0_construct_pv")
            return t.finish(-int(Errno.EINVAL))
        t.event("elf", "info", f"{k.declared_by}: parms.pae = "
                f"{(PaeMode.XEN_PAE_EXTCR3 if self.extended else k.pae).name}"
                + (" (BIMODAL folded into EXTCR3)" if k.pae == PaeMode.XEN_PAE_BIMODAL else ""),
                "dom0_construct_pv / elf_xen_parse")
        return t.finish(0)

    def create_dom0(self) -> Outcome:
        o = self.o
        self.res.guest = self.xen.create_domain(self.k.bitness, vcpus=o.vcpus, privileged=True,
                                                name="dom0")
        t = Tracer("create dom0")
        how = " and switched to compat (switch_compat)" if self.compat else ""
        t.event("dom0", "info", f"dom0 created{how}; {o.vcpus} vCPU(s), none initialised",
                "create_dom0 / dom0_construct_pv")
        return t.finish(0)

    def vm_assist(self) -> Outcome:
        t = Tracer("dom0 vm_assist")
        if self.extended:
            self.guest.domain.vm_assist |= 1 << VMASST_TYPE_pae_extended_cr3
            t.event("vm_assist", "info", "pae_extended_cr3 turned on: the kernel declares "
                    "extended CR3", "dom0_construct_pv")
        else:
            t.event("vm_assist", "info", "pae_extended_cr3 stays off"
                    + (" (64-bit dom0)" if not self.compat else f" (kernel is {self.k.pae.name})"),
                    "dom0_construct_pv")
        return t.finish(0)

    def _unused_l3_slots(self) -> list[int]:
        """The compat L3 slots no boot L2 fills (dom0_construct_pv adds an L2 to each)."""
        used = {(tb.va_from >> 30) & 3 for tb in self.layout.tables_at(2)}
        return [slot for slot in range(4) if slot not in used] if self.compat else []

    def alloc_memory(self) -> Outcome:
        xen, layout, res = self.xen, self.layout, self.res
        t = Tracer(f"alloc dom0 memory ({layout.area_pages} frames)")
        bits32 = self.compat and not self.extended and dom0_memf_bits32(xen.profile)
        top = layout.top.pfn
        self.frames = layout.area_pages + len(self._unused_l3_slots())
        for pfn in range(self.frames):
            lim: dict[str, int | str] = {}
            if bits32:
                lim = {"below": MFN_4GIB * PAGE_SIZE}
            elif pfn == top:
                lim = dict(self.limits)
            out = xen.populate_physmap(self.guest.domain, **lim)  # type: ignore[arg-type]
            if out.rc:
                t.event("alloc", "fail", f"dom0 memory: {out.reason}", "alloc_domheap_pages")
                return t.finish(out.rc)
            res.p2m[pfn] = allocated_mfn(out)
        if bits32:
            t.event("alloc", "info", "32-bit dom0 without pae_extended_cr3: memory allocated "
                    "with MEMF_bits(32), all below 4 GiB (Xen 4.19+)"
                    + (" — the requested L3 placement cannot be honoured" if self.limits else ""),
                    "dom0_construct_pv")
        else:
            why = ("64-bit dom0" if not self.compat else "the assist is on" if self.extended
                   else f"profile {xen.profile.name}: no limit before 4.19")
            t.event("alloc", "info", f"no address limit ({why})", "dom0_construct_pv")
        self.root = root = res.p2m[top]
        t.event("top_level", "info", f"top-level table at MFN {root:#x} "
                f"({'at or above' if root >= MFN_4GIB else 'below'} 4 GiB)", "dom0_construct_pv",
                mfn=root)
        return t.finish(0)

    def _entries(self) -> tuple[list[TablePlan], list[tuple[int, int, int]]]:
        """Every boot pagetable and the (table MFN, index, value) entries written into them."""
        layout, res = self.layout, self.res
        tables: list[TablePlan] = list(layout.tables)
        writes: list[tuple[int, int, int]] = []
        for tab in layout.tables:
            mfn = res.p2m[tab.pfn]
            for index, target_pfn in table_entries(layout, tab):
                if tab.level == 1:
                    prot = L1_PROT if self.compat else (L1_PROT | _GUEST_KERNEL | 0x4)
                    if layout.is_pgtable_pfn(target_pfn):
                        prot &= ~RW
                else:
                    prot = UPPER_PROT
                writes.append((mfn, index, make_entry(res.p2m[target_pfn], prot)))
        extra_pfns = list(range(layout.area_pages, self.frames))
        for slot in self._unused_l3_slots():
            pfn = extra_pfns.pop(0)
            tables.append(TablePlan(2, pfn, slot << 30, (slot << 30) | ((1 << 30) - 1)))
            writes.append((self.root, slot, make_entry(res.p2m[pfn], UPPER_PROT)))
        return tables, writes

    def construct_pagetables(self) -> Outcome:
        """Write the tables, then type them directly (no promotion)."""
        xen, res, m = self.xen, self.res, self.xen.machine
        t = Tracer("construct dom0 pagetables")
        tables, writes = self._entries()
        for mfn, index, value in writes:
            m.write_entry(mfn, index, value)
        # References the entries hold, as promotion would have taken them.
        for _mfn, _index, value in writes:
            m.page(entry_mfn(value)).count_info += 1
        for tab in tables:
            pi = m.page(res.p2m[tab.pfn])
            ptype = LEVEL_TYPE[tab.level]
            if self.compat and tab.level == 2 and (tab.va_from >> 30) & 3 == 3:
                ptype |= PGT_pae_xen_l2
                xen.init_xen_pae_l2_slots(res.p2m[tab.pfn])
            if tab.level == 4:
                xen.init_xen_l4_slots(res.p2m[tab.pfn], self.guest.domain)
            pi.type_info = ptype | PGT_validated
        table_mfns = {res.p2m[tb.pfn] for tb in tables}
        for mfn, _index, value in writes:
            target = entry_mfn(value)
            pi = m.page(target)
            if target in table_mfns:
                if m.page(mfn).level > 1:
                    pi.type_info += 1  # the parent entry's type reference
            elif value & RW and value & P:
                if pi.type_count == 0:
                    pi.type_info = PGT_writable_page | PGT_validated
                pi.type_info += 1
        t.event("typed", "info", f"{len(tables)} pagetables written and typed directly "
                "(mark_pv_pt_pages_rdonly): no promotion, so promote_l3_table's checks, "
                "including the PAE-extended-CR3 one, never run", "dom0_construct_pv")
        if self.compat:
            t.event("compat_l3", "info", "all 4 L3 slots populated; slot 3's L2 is a "
                    "pae_xen_l2 with Xen's compat M2P slots",
                    "dom0_construct_pv / init_xen_pae_l2_slots")
        return t.finish(0)

    def pin_top_level(self) -> Outcome:
        t = Tracer("pin dom0's top-level table")
        pi = self.xen.machine.page(self.root)
        pi.count_info += 1
        pi.type_info += 1
        pi.type_info |= PGT_pinned
        t.event("pin", "info", f"L{self.layout.levels} MFN {self.root:#x} pinned (type count "
                f"{pi.type_count})", "dom0_construct_pv", mfn=self.root)
        return t.finish(0)

    def vcpu0(self) -> Outcome:
        t = Tracer("dom0 vCPU 0")
        pi = self.xen.machine.page(self.root)
        v0 = self.guest.domain.vcpus[0]
        pi.count_info += 1
        pi.type_info += 1
        v0.guest_table = self.root
        v0.is_initialised = True
        t.event("vcpu", "info", f"vCPU 0 runs on MFN {self.root:#x} and is marked initialised "
                "(is_initialised = 1, no arch_set_info_guest)", "dom0_construct_pv",
                mfn=self.root)
        return t.finish(0)


def build_dom0(xen: Xen, options: Dom0Options | None = None, **kw: object) -> BuildResult:
    """Construct a PV dom0 on `xen` as `dom0_construct_pv` does; stops at a failing stage."""
    o = options or Dom0Options(**kw)  # type: ignore[arg-type]
    b = _Dom0Build(xen, o)
    for name in DOM0_STEPS:
        out = getattr(b, name)()
        b.res.steps.append((name, out))
        if not out.ok:
            break
    return b.res


__all__ = ["DOM0_STEPS", "Dom0Options", "build_dom0", "dom0_memf_bits32"]
