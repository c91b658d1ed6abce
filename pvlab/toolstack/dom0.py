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
from pvlab.xen.hypervisor import Xen
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


def build_dom0(xen: Xen, options: Dom0Options | None = None, **kw: object) -> BuildResult:
    """Construct a PV dom0 on `xen` as `dom0_construct_pv` does."""
    o = options or Dom0Options(**kw)  # type: ignore[arg-type]
    k = kernel_image(o.kernel, size=o.kernel_size)
    memory_pages = parse_size(o.memory, what="dom0 memory") // PAGE_SIZE
    layout = plan_image(k, memory_pages)
    res = BuildResult("build_dom0", xen, kernel=k, layout=layout)
    m = xen.machine
    compat = k.abi.switch_compat
    extended = compat and k.extended_cr3  # BIMODAL is folded into EXTCR3 first
    limits = dict(o.l3 or {})
    if set(limits) - {"above", "below", "mfn"}:
        raise PvlabError("unknown key in the dom0 L3 placement", "use above:, below: or mfn:")

    def step(name: str, out: Outcome) -> bool:
        res.steps.append((name, out))
        return out.ok

    # parse_image
    t = Tracer(f"dom0 kernel ({k.kind})")
    if compat and k.pae == PaeMode.XEN_PAE_NO:
        t.event("elf", "fail", "32-bit dom0 kernel without PAE: 64-bit Xen only runs PAE "
                "(xen-3.0-x86_32p) 32-bit kernels", "dom0_construct_pv")
        step("parse_image", t.finish(-int(Errno.EINVAL)))
        return res
    t.event("elf", "info", f"{k.declared_by}: parms.pae = "
            f"{(PaeMode.XEN_PAE_EXTCR3 if extended else k.pae).name}"
            + (" (BIMODAL folded into EXTCR3)" if k.pae == PaeMode.XEN_PAE_BIMODAL else ""),
            "dom0_construct_pv / elf_xen_parse")
    step("parse_image", t.finish(0))

    # create_dom0
    g = xen.create_domain(k.bitness, vcpus=o.vcpus, privileged=True, name="dom0")
    res.guest = g
    t = Tracer("create dom0")
    how = " and switched to compat (switch_compat)" if compat else ""
    t.event("dom0", "info", f"dom0 created{how}; {o.vcpus} vCPU(s), none initialised",
            "create_dom0 / dom0_construct_pv")
    step("create_dom0", t.finish(0))

    # vm_assist
    t = Tracer("dom0 vm_assist")
    if extended:
        g.domain.vm_assist |= 1 << VMASST_TYPE_pae_extended_cr3
        t.event("vm_assist", "info", "pae_extended_cr3 turned on: the kernel declares extended "
                "CR3", "dom0_construct_pv")
    else:
        t.event("vm_assist", "info", "pae_extended_cr3 stays off"
                + (" (64-bit dom0)" if not compat else f" (kernel is {k.pae.name})"),
                "dom0_construct_pv")
    step("vm_assist", t.finish(0))

    # alloc_memory
    t = Tracer(f"alloc dom0 memory ({layout.area_pages} frames)")
    bits32 = compat and not extended and dom0_memf_bits32(xen.profile)
    top = layout.top.pfn
    extra_l2 = 0
    if compat:
        slots = {(tb.va_from >> 30) & 3 for tb in layout.tables_at(2)}
        extra_l2 = 4 - len(slots)
    n = layout.area_pages + extra_l2
    for pfn in range(n):
        lim: dict[str, int | str] = {}
        if bits32:
            lim = {"below": MFN_4GIB * PAGE_SIZE}
        elif pfn == top:
            lim = dict(limits)
        out = xen.populate_physmap(g.domain, **lim)  # type: ignore[arg-type]
        if out.rc:
            t.event("alloc", "fail", f"dom0 memory: {out.reason}", "alloc_domheap_pages")
            step("alloc_memory", t.finish(out.rc))
            return res
        res.p2m[pfn] = allocated_mfn(out)
    if bits32:
        t.event("alloc", "info", "32-bit dom0 without pae_extended_cr3: memory allocated with "
                "MEMF_bits(32), all below 4 GiB (Xen 4.19+)"
                + (" — the requested L3 placement cannot be honoured" if limits else ""),
                "dom0_construct_pv")
    else:
        why = ("64-bit dom0" if not compat else "the assist is on" if extended
               else f"profile {xen.profile.name}: no limit before 4.19")
        t.event("alloc", "info", f"no address limit ({why})", "dom0_construct_pv")
    root = res.p2m[top]
    t.event("top_level", "info", f"top-level table at MFN {root:#x} "
            f"({'at or above' if root >= MFN_4GIB else 'below'} 4 GiB)", "dom0_construct_pv",
            mfn=root)
    step("alloc_memory", t.finish(0))

    # construct_pagetables: write, then type directly (no promotion).
    t = Tracer("construct dom0 pagetables")
    tables: list[TablePlan] = list(layout.tables)
    writes: list[tuple[int, int, int]] = []
    for tab in layout.tables:
        mfn = res.p2m[tab.pfn]
        for index, target_pfn in table_entries(layout, tab):
            if tab.level == 1:
                prot = L1_PROT if compat else (L1_PROT | _GUEST_KERNEL | 0x4)
                if layout.is_pgtable_pfn(target_pfn):
                    prot &= ~RW
            else:
                prot = UPPER_PROT
            writes.append((mfn, index, make_entry(res.p2m[target_pfn], prot)))
    extra_pfns = list(range(layout.area_pages, n))
    if compat:
        used = {(tb.va_from >> 30) & 3 for tb in layout.tables_at(2)}
        for slot in range(4):
            if slot not in used:
                pfn = extra_pfns.pop(0)
                tables.append(TablePlan(2, pfn, slot << 30, (slot << 30) | ((1 << 30) - 1)))
                writes.append((root, slot, make_entry(res.p2m[pfn], UPPER_PROT)))
    for mfn, index, value in writes:
        m.write_entry(mfn, index, value)
    # References the entries hold, as promotion would have taken them.
    for _mfn, _index, value in writes:
        target = entry_mfn(value)
        pi = m.page(target)
        pi.count_info += 1
    for tab in tables:
        pi = m.page(res.p2m[tab.pfn])
        ptype = LEVEL_TYPE[tab.level]
        if compat and tab.level == 2 and (tab.va_from >> 30) & 3 == 3:
            ptype |= PGT_pae_xen_l2
            xen.init_xen_pae_l2_slots(res.p2m[tab.pfn])
        if tab.level == 4:
            xen.init_xen_l4_slots(res.p2m[tab.pfn], g.domain)
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
    if compat:
        t.event("compat_l3", "info", "all 4 L3 slots populated; slot 3's L2 is a pae_xen_l2 "
                "with Xen's compat M2P slots", "dom0_construct_pv / init_xen_pae_l2_slots")
    step("construct_pagetables", t.finish(0))

    # pin_top_level
    t = Tracer("pin dom0's top-level table")
    pi = m.page(root)
    pi.count_info += 1
    pi.type_info += 1
    pi.type_info |= PGT_pinned
    t.event("pin", "info", f"L{layout.levels} MFN {root:#x} pinned (type count "
            f"{pi.type_count})", "dom0_construct_pv", mfn=root)
    step("pin_top_level", t.finish(0))

    # vcpu0
    t = Tracer("dom0 vCPU 0")
    v0 = g.domain.vcpus[0]
    pi.count_info += 1
    pi.type_info += 1
    v0.guest_table = root
    v0.is_initialised = True
    t.event("vcpu", "info", f"vCPU 0 runs on MFN {root:#x} and is marked initialised "
            "(is_initialised = 1, no arch_set_info_guest)", "dom0_construct_pv", mfn=root)
    step("vcpu0", t.finish(0))
    return res


__all__ = ["DOM0_STEPS", "Dom0Options", "build_dom0", "dom0_memf_bits32"]
