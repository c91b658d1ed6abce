# SPDX-License-Identifier: MIT
"""The PV domU builder, modelled on libxenguest (`xg_dom_core.c`, `xg_dom_boot.c`,
`xg_dom_x86.c`), using only what a toolstack has: hypercalls and foreign mappings.

Default order of the traced steps (`BUILD_STEPS`):

1. `createdomain`: `XEN_DOMCTL_createdomain`, `set_address_size` 32 for PV32
   (`switch_compat`), `XEN_DOMCTL_max_vcpus`: vCPU 0 exists, not initialised.
2. `parse_image`: libelf reads the PAE mode (`xen-3.0-x86_32` cannot run on 64-bit Xen).
3. `populate_physmap` (`meminit_pv`): guest memory, with no address limit.
4. `alloc_pgtables`: the page-table segment (top-level table first).
5. `move_l3_below_4G`: PV32 `XEN_PAE_YES` kernels only, when the L3 landed at or above
   4 GiB: `decrease_reservation` + `increase_reservation` with address bits 32, p2m and
   `MMU_MACHPHYS_UPDATE`. Still high -> "cannot move L3 below 4G" (-EINVAL).
6. `setup_pgtables`: entries written top-down through foreign mappings (no hypercall);
   L1 entries of page-table frames read-only; upper levels P|RW|A|D|US.
7. `pin_table` (`bootlate_pv`): `MMUEXT_PIN_L3_TABLE` / `MMUEXT_PIN_L4_TABLE` on the top
   level: top-down recursive validation while vCPU 0 is not yet initialised.
8. `vcpu` (`vcpu_x86_32` / `vcpu_x86_64`): `XEN_DOMCTL_setvcpucontext` for vCPU 0 with
   CR3 = `xen_pfn_to_cr3(top-level MFN)` and, for EXTCR3/BIMODAL kernels,
   `pae_extended_cr3` in `vm_assist`.

Steps 1-4 always run first; `order` and `skip` rearrange or drop steps 5-8.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvlab.errors import PvlabError
from pvlab.toolstack.flow import FlowResult, absorb, allocated_mfn, plan_order
from pvlab.toolstack.kernel import KernelImage, PaeMode, kernel_image
from pvlab.toolstack.layout import ImageLayout, plan_image, table_entries
from pvlab.toolstack.p2m import P2M
from pvlab.trace import Errno, Outcome, Tracer
from pvlab.units import MFN_4GIB, PAGE_SIZE, format_size, parse_size
from pvlab.x86.flags import RW, US, A, D, P, make_entry
from pvlab.xen import bulk
from pvlab.xen.hypervisor import Guest, Xen

PREP_STEPS = ("createdomain", "parse_image", "populate_physmap", "alloc_pgtables")
TAIL_STEPS = ("move_l3_below_4G", "setup_pgtables", "pin_table", "vcpu")
BUILD_STEPS = PREP_STEPS + TAIL_STEPS

#: `lvl_prot` of `xg_dom_x86.c`: L1 P|RW|A; higher levels P|RW|A|D|US.
L1_PROT = P | RW | A
UPPER_PROT = P | RW | A | D | US
#: populate_physmap batches (the real builder uses 2 MiB extents, then 4 KiB pages).
POPULATE_BATCH = 512


@dataclass
class BuildOptions:
    """What a scenario can alter in the build."""

    kernel: str | KernelImage = "extcr3"
    memory: int | str = "16MiB"
    kernel_size: int | str = "1MiB"
    vcpus: int = 1
    #: force where the L3 (PV32) / top-level table lands: {"above": "4GiB"}, {"mfn": N}...
    l3: dict[str, int | str] | None = None
    #: Andrew Cooper's proposal: allocate the L3 with memf(32) (address bits 32) from the start.
    l3_memf32: bool = False
    #: override whether vCPU 0's context carries pae_extended_cr3 (None: from the kernel).
    context_assist: bool | None = None
    order: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    name: str = ""


@dataclass
class BuildResult(FlowResult):
    kernel: KernelImage | None = None
    layout: ImageLayout | None = None
    p2m: P2M = field(default_factory=P2M)
    relocated: tuple[int, int] | None = None

    @property
    def root(self) -> int | None:
        """The MFN of the top-level table (the L3 for PV32, the L4 for 64-bit)."""
        if self.layout is None:
            return None
        return self.p2m.get(self.layout.top.pfn)

    @property
    def table_mfns(self) -> dict[int, list[int]]:
        """Level -> MFNs of the boot pagetables."""
        out: dict[int, list[int]] = {}
        if self.layout is not None:
            for t in self.layout.tables:
                if t.pfn in self.p2m:
                    out.setdefault(t.level, []).append(self.p2m[t.pfn])
        return out


def _address_limits(spec: dict[str, int | str] | None) -> dict[str, int | str]:
    if not spec:
        return {}
    bad = set(spec) - {"above", "below", "mfn"}
    if bad:
        raise PvlabError(f"unknown key(s) {', '.join(sorted(bad))} in the L3 placement",
                         "use above: SIZE, below: SIZE or mfn: N")
    return dict(spec)


class _Builder:
    def __init__(self, xen: Xen, opts: BuildOptions) -> None:
        self.xen = xen
        self.o = opts
        self.kernel = kernel_image(opts.kernel, size=opts.kernel_size)
        mem = parse_size(opts.memory, what="guest memory")
        self.memory_pages = mem // PAGE_SIZE
        if not isinstance(opts.vcpus, int) or not 1 <= opts.vcpus <= 128:
            raise PvlabError(f"vcpus {opts.vcpus!r} is out of range", "use 1 to 128")
        self.layout = plan_image(self.kernel, self.memory_pages)
        self.l3_limits = _address_limits(opts.l3)
        self.res = BuildResult("build_domain", xen, kernel=self.kernel, layout=self.layout)
        self.guest: Guest | None = None

    # ------------------------------------------------------------------ steps
    def createdomain(self) -> Outcome:
        t = Tracer("XEN_DOMCTL_createdomain")
        k = self.kernel
        g = self.xen.create_domain(k.bitness, vcpus=0, name=self.o.name)
        self.guest = self.res.guest = g
        t.outcome.counters.hypercalls += 1
        t.event("createdomain", "info", f"domain {g.domain.label} created (no vCPUs yet)",
                "XEN_DOMCTL_createdomain")
        if k.abi.switch_compat:
            t.outcome.counters.hypercalls += 1
            t.event("set_address_size", "info", "address size 32: the domain is now a 32-bit "
                    "PV (compat) domain", "XEN_DOMCTL_set_address_size -> switch_compat")
        self.xen.max_vcpus(g.domain, self.o.vcpus)
        t.outcome.counters.hypercalls += 1
        t.event("max_vcpus", "info", f"{self.o.vcpus} vCPU(s) created; vCPU 0 exists and is "
                "not initialised", "XEN_DOMCTL_max_vcpus")
        return t.finish(0)

    def parse_image(self) -> Outcome:
        k = self.kernel
        t = Tracer(f"xc_dom_parse_image({k.kind})")
        if k.abi.switch_compat and k.pae == PaeMode.XEN_PAE_NO:
            t.event("guest_type", "fail", f"guest type {k.guest_type} not supported by 64-bit "
                    "Xen (only xen-3.0-x86_32p is advertised in xen_caps)",
                    "xc_dom_find_arch_hooks")
            return t.finish(-int(Errno.EINVAL))
        t.event("pae_mode", "info", f"{k.declared_by}: parms->pae = {k.pae.name}, guest type "
                f"{k.guest_type}", "elf_xen_parse_note / elf_xen_parse_guest_info")
        t.event("layout", "info", self.layout.describe(), "alloc_pgtables_pv")
        return t.finish(0)

    def populate_physmap(self) -> Outcome:
        t = Tracer(f"populate_physmap({self.memory_pages} frames)")
        g = self.guest
        assert g is not None
        top = self.layout.top.pfn
        limits: dict[str, int | str] = dict(self.l3_limits)
        if self.kernel.abi.pae_top and self.o.l3_memf32:
            limits.setdefault("below", MFN_4GIB * PAGE_SIZE)
        # Every pfn gets a frame, in pfn order: the pfns below the top-level table in one
        # batch, the top-level table (which may carry an address limit) alone, the rest in
        # one batch, as meminit_pv's extents hand them out.
        for first, count in ((0, top), (top, 1), (top + 1, self.memory_pages - top - 1)):
            if count <= 0:
                continue
            if first == top:
                out = self.xen.populate_physmap(g.domain, gpfn=top,
                                                **limits)  # type: ignore[arg-type]
                absorb(t, out, events=bool(out.rc) or bool(limits))
                mfns = np.array([allocated_mfn(out)] if out.ok else [], np.int64)
            else:
                out, mfns = bulk.populate_physmap_batch(self.xen, g.domain, count,
                                                        first_gpfn=first)
                absorb(t, out, events=bool(out.rc))
            if out.rc:
                t.event("populate", "fail", f"pfns {first:#x}-{first + count - 1:#x}: no frame "
                        + (f"({', '.join(f'{k} {v}' for k, v in limits.items())})"
                           if limits and first == top else ""), "meminit_pv")
                return t.finish(out.rc)
            self.res.p2m.set_range(first, mfns)
        # The toolstack batches: count one hypercall per batch of frames.
        t.outcome.counters.hypercalls = -(-self.memory_pages // POPULATE_BATCH)
        mfn_arr = self.res.p2m.array[:self.memory_pages]
        high = int((mfn_arr >= MFN_4GIB).sum())
        area = self.layout.area_pages
        t.event("populate", "info", f"{self.memory_pages} frames for pfns "
                f"0-{self.memory_pages - 1:#x}, no address limit (placement "
                f"{self.xen.machine.placement}): MFNs {int(mfn_arr.min()):#x}-"
                f"{int(mfn_arr.max()):#x}, {high} at or above 4 GiB", "meminit_pv")
        rest = self.memory_pages - area
        if rest > 0:
            t.event("populate", "info", f"the boot tables map pfns 0-{area - 1:#x}; the other "
                    f"{rest} pfns ({format_size(rest * PAGE_SIZE)}) are populated but not "
                    "mapped at boot", "meminit_pv")
        top_mfn = self.res.p2m[top]
        lvl = self.layout.levels
        t.event("top_level", "info", f"the L{lvl} (pfn {top:#x}) landed at MFN {top_mfn:#x}, "
                f"{'at or above' if top_mfn >= MFN_4GIB else 'below'} 4 GiB"
                + (" (allocated with address bits 32: memf(32))" if self.o.l3_memf32
                   and lvl == 3 else ""), "meminit_pv", mfn=top_mfn, level=lvl)
        return t.finish(0)

    def alloc_pgtables(self) -> Outcome:
        t = Tracer("alloc_pgtables")
        for tab in self.layout.tables:
            mfn = self.res.p2m[tab.pfn]
            t.event("pgtable", "info", f"L{tab.level} at pfn {tab.pfn:#x} (MFN {mfn:#x})",
                    f"alloc_pgtables_x86_{self.kernel.abi.xc_arch}",
                    mfn=mfn, level=tab.level)
        return t.finish(0)

    def move_l3_below_4G(self) -> Outcome:
        t = Tracer("move_l3_below_4G")
        g = self.guest
        assert g is not None
        k = self.kernel
        pfn = self.layout.top.pfn
        mfn = self.res.p2m[pfn]
        if not k.abi.pae_top or k.pae != PaeMode.XEN_PAE_YES:
            why = ("a 64-bit guest has no L3 constraint" if not k.abi.pae_top else
                   f"the kernel is {k.pae.name}: it understands extended CR3, the L3 stays "
                   f"at MFN {mfn:#x}")
            t.event("relocate", "info", f"not needed: {why}", "setup_pgtables_x86_32_pae",
                    mfn=mfn)
            return t.finish(0)
        if mfn < MFN_4GIB:
            t.event("relocate", "pass", f"L3 MFN {mfn:#x} is below 4 GiB: nothing to move",
                    "setup_pgtables_x86_32_pae", mfn=mfn)
            return t.finish(0)
        # xc_make_page_below_4G: give the frame back, then ask for one with address bits 32.
        t.outcome.counters.hypercalls += 1
        try:
            g.free_frame(mfn)
        except PvlabError as err:
            t.event("decrease_reservation", "fail", f"MFN {mfn:#x} cannot be released: "
                    f"{err.message}", "XENMEM_decrease_reservation", mfn=mfn)
            return t.finish(-int(Errno.EINVAL))
        t.event("decrease_reservation", "info", f"L3 MFN {mfn:#x} (pfn {pfn:#x}) returned to Xen",
                "XENMEM_decrease_reservation", mfn=mfn)
        out = self.xen.populate_physmap(g.domain, below=MFN_4GIB * PAGE_SIZE)
        absorb(t, out, events=False)
        if out.rc:
            t.event("increase_reservation", "info", "no free frame below 4 GiB "
                    "(XENMEMF_address_bits(32))", "XENMEM_increase_reservation")
            t.event("relocate", "fail", f"cannot move L3 below 4G. extended-cr3 not supported by "
                    f"guest. (L3 PFN {pfn:#x} MFN {mfn:#x})", "setup_pgtables_x86_32_pae",
                    mfn=mfn)
            return t.finish(-int(Errno.EINVAL))
        new = allocated_mfn(out)
        t.event("increase_reservation", "info", f"new frame MFN {new:#x} below 4 GiB "
                "(XENMEMF_address_bits(32))", "XENMEM_increase_reservation", mfn=new)
        self.res.p2m[pfn] = new
        absorb(t, g.machphys_update(new, pfn))
        self.xen.machine.clear_frame(new)
        self.res.relocated = (mfn, new)
        t.event("relocate", "pass", f"successfully relocated L3 below 4G (L3 PFN {pfn:#x} MFN "
                f"{mfn:#x} => {new:#x}); p2m updated, new L3 zeroed", "move_l3_below_4G",
                mfn=new)
        return t.finish(0)

    def setup_pgtables(self) -> Outcome:
        t = Tracer("setup_pgtables")
        g = self.guest
        assert g is not None
        for tab in self.layout.tables:  # top level first, as setup_pgtables_pv writes them
            mfn = self.res.p2m[tab.pfn]
            entries = table_entries(self.layout, tab)
            ro = 0
            for index, target_pfn in entries:
                if tab.level == 1:
                    prot = L1_PROT
                    if self.layout.is_pgtable_pfn(target_pfn):
                        prot &= ~RW
                        ro += 1
                else:
                    prot = UPPER_PROT
                try:
                    g.write_entry(mfn, index, value=make_entry(self.res.p2m[target_pfn], prot))
                except PvlabError as err:
                    t.event("foreign_map", "fail", f"cannot write L{tab.level} MFN {mfn:#x} "
                            f"through a foreign mapping: {err.message}",
                            "xc_map_foreign_range (privcmd)", mfn=mfn, index=index)
                    return t.finish(-int(Errno.EINVAL))
            note = f", {ro} of them read-only (they map page-table frames)" if ro else ""
            t.event("write", "info", f"L{tab.level} MFN {mfn:#x}: {len(entries)} entries "
                    f"written{note}", "setup_pgtables_pv", mfn=mfn, level=tab.level)
        return t.finish(0)

    def pin_table(self) -> Outcome:
        g = self.guest
        assert g is not None
        root = self.res.root
        assert root is not None
        return g.pin(root, level=self.layout.levels)

    def vcpu(self) -> Outcome:
        g = self.guest
        assert g is not None
        root = self.res.root
        assert root is not None
        k = self.kernel
        assist = k.abi.pae_top and k.extended_cr3
        if self.o.context_assist is not None:
            assist = bool(self.o.context_assist)
        out = g.set_vcpu_context(0, cr3=root, vm_assists=["pae_extended_cr3"] if assist else [])
        note = Tracer("")
        note.event("context", "info", f"vCPU 0 context: CR3 {g.cr3_for(root):#x} "
                   f"(xen_pfn_to_cr3 of MFN {root:#x}), vm_assist "
                   f"{'pae_extended_cr3' if assist else 'none'}", f"vcpu_x86_{k.bitness}")
        out.events[:0] = note.outcome.events
        return out


def build_domain(xen: Xen, options: BuildOptions | None = None, **kw: object) -> BuildResult:
    """Build a PV domU on `xen` as libxenguest does; stops at the first failing step.

    `build_domain(xen, kernel="pae_yes", l3={"above": "4GiB"})`, or pass `BuildOptions`.
    """
    opts = options or BuildOptions(**kw)  # type: ignore[arg-type]
    if options is not None and kw:
        raise PvlabError("give either BuildOptions or keyword options, not both",
                         "merge the keywords into the BuildOptions")
    b = _Builder(xen, opts)
    tail, skipped = plan_order(TAIL_STEPS, opts.order, opts.skip, flow="build_domain")
    b.res.skipped = skipped
    for name in (*PREP_STEPS, *tail):
        out = getattr(b, name)()
        b.res.steps.append((name, out))
        if out.rc:
            break
    return b.res


def needs_relocation(kernel: str | KernelImage, l3_mfn: int) -> bool:
    """Would the builder move this L3? (PV32, `XEN_PAE_YES`, MFN at or above 4 GiB)."""
    k = kernel_image(kernel)
    return k.abi.pae_top and k.pae == PaeMode.XEN_PAE_YES and l3_mfn >= MFN_4GIB


__all__ = ["BUILD_STEPS", "BuildOptions", "BuildResult", "build_domain", "needs_relocation"]
