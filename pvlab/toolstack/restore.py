# SPDX-License-Identifier: MIT
"""Restoring a migrated PV guest (`tools/libs/guest/xg_sr_restore_x86_pv.c`), and the
older restore of Xen <= 4.5 (`xc_domain_restore.c`).

The saved guest is modelled as a few address spaces: one per vCPU (its CR3) plus
`processes` more, each an L3 (PV32; an L4 for 64-bit) with slot 0 -> L2 -> L1 -> page
and slot 3 -> L2 (`pae_xen_l2`) -> L1 -> page. Pfns are laid out space after space,
top-level table first; the top-level tables are the pinned ones (`LPINTAB`), or every
table with `pin="all"`.

Migration v2 (`RESTORE_V2`): memory populated with no address limit, page contents
localised, then at stream end (`x86_pv_stream_complete`) every vCPU's context (vCPU 0
first; its `vm_assist` comes from the saved context), then `pin_pagetables` in pfn order.
No L3 is moved below 4 GiB.

Legacy (`RESTORE_LEGACY`): a PAE guest whose saved context lacks `pae_extended_cr3` has
every L3 at or above 4 GiB moved below 4 GiB; the tables are pinned first, the vCPU
contexts set afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvlab.errors import PvlabError
from pvlab.toolstack.flow import FlowResult, absorb, allocated_mfn, plan_order
from pvlab.trace import Errno, Outcome, Tracer
from pvlab.units import MFN_4GIB, PAGE_SIZE
from pvlab.x86.flags import RW, US, A, D, P, make_entry
from pvlab.xen.abi import PV64Abi, abi_for
from pvlab.xen.hypervisor import Guest, Xen

RESTORE_V2 = ("createdomain", "populate_physmap", "localise_pagetables",
              "update_vcpu_context", "pin_pagetables")
RESTORE_LEGACY = ("createdomain", "populate_physmap", "relocate_l3s", "localise_pagetables",
                  "pin_pagetables", "update_vcpu_context")
FORMATS = {"v2": RESTORE_V2, "legacy": RESTORE_LEGACY}
UPPER = P | RW | A | D | US
LEAF = P | RW | A


@dataclass
class SavedTable:
    pfn: int
    level: int
    space: int
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (index, pfn, flags)
    pinned: bool = False


@dataclass
class SavedImage:
    """The pagetables of a saved PV guest, in guest-physical terms."""

    bitness: int
    vcpus: int
    extended_cr3: bool
    tables: list[SavedTable]
    data_pfns: list[int]
    roots: list[int]  # pfn of each address space's top-level table

    @property
    def vm_assists(self) -> list[str]:
        return ["pae_extended_cr3"] if self.abi.pae_top and self.extended_cr3 else []

    @property
    def abi(self) -> PV64Abi:
        return abi_for(self.bitness)

    @property
    def nr_pfns(self) -> int:
        return len(self.tables) + len(self.data_pfns)


def saved_image(*, bitness: int = 32, vcpus: int = 2, processes: int = 0,
                extended_cr3: bool = False, pin: str = "top") -> SavedImage:
    abi = abi_for(bitness)
    if not isinstance(vcpus, int) or not 1 <= vcpus <= 16:
        raise PvlabError(f"vcpus {vcpus!r} is out of range", "use 1 to 16")
    if not isinstance(processes, int) or not 0 <= processes <= 16:
        raise PvlabError(f"processes {processes!r} is out of range", "use 0 to 16")
    if pin not in ("top", "all"):
        raise PvlabError(f"pin {pin!r} is unknown", "use top (LPINTAB on the top-level tables, "
                         "as Linux pins its pgds) or all")
    tables: list[SavedTable] = []
    data: list[int] = []
    roots: list[int] = []
    pfn = 0
    top = abi.top_level
    for space in range(vcpus + processes):
        root = SavedTable(pfn, top, space, pinned=True)
        tables.append(root)
        roots.append(pfn)
        pfn += 1
        # two branches: slot 0 and slot 3 (PV32: slot 3's L2 becomes the pae_xen_l2)
        for slot in (0, 3):
            parent = root
            if top == 4:
                l3 = SavedTable(pfn, 3, space)
                tables.append(l3)
                root.entries.append((slot, pfn, UPPER))
                parent, pfn = l3, pfn + 1
            l2 = SavedTable(pfn, 2, space)
            tables.append(l2)
            parent.entries.append((slot, pfn, UPPER))
            pfn += 1
            l1 = SavedTable(pfn, 1, space)
            tables.append(l1)
            l2.entries.append((0, pfn, UPPER))
            pfn += 1
            data.append(pfn)
            l1.entries.append((0, pfn, LEAF))
            pfn += 1
    if pin == "all":
        for t in tables:
            t.pinned = True
    # read-only mappings of the pagetables are not modelled: only data pages are mapped.
    return SavedImage(bitness, vcpus, extended_cr3, tables, data, roots)


@dataclass
class RestoreResult(FlowResult):
    image: SavedImage | None = None
    p2m: dict[int, int] = field(default_factory=dict)
    relocated: list[tuple[int, int]] = field(default_factory=list)

    def root_mfn(self, space: int) -> int | None:
        if self.image is None:
            return None
        return self.p2m.get(self.image.roots[space])


@dataclass
class RestoreOptions:
    format: str = "v2"
    bitness: int = 32
    vcpus: int = 2
    processes: int = 0
    extended_cr3: bool = False
    #: where the top-level tables land on the target host, e.g. {"above": "4GiB"}
    l3s: dict[str, int | str] | None = None
    pin: str = "top"
    order: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    name: str = ""


class _Restore:
    def __init__(self, xen: Xen, o: RestoreOptions) -> None:
        if o.format not in FORMATS:
            raise PvlabError(f"restore format {o.format!r} is unknown",
                             "use v2 (migration v2, Xen 4.6+) or legacy (Xen <= 4.5)")
        lim = dict(o.l3s or {})
        if set(lim) - {"above", "below"}:
            raise PvlabError("unknown key in l3s", "use above: SIZE or below: SIZE")
        self.xen, self.o, self.lim = xen, o, lim
        self.img = saved_image(bitness=o.bitness, vcpus=o.vcpus, processes=o.processes,
                               extended_cr3=o.extended_cr3, pin=o.pin)
        self.res = RestoreResult(f"restore_domain ({o.format})", xen, image=self.img)
        self.guest: Guest | None = None

    def createdomain(self) -> Outcome:
        t = Tracer("XEN_DOMCTL_createdomain")
        img = self.img
        g = self.xen.create_domain(img.bitness, vcpus=0, name=self.o.name)
        self.xen.max_vcpus(g.domain, img.vcpus)
        self.guest = self.res.guest = g
        t.outcome.counters.hypercalls += 2 + img.abi.switch_compat
        t.event("createdomain", "info", f"domain {g.domain.label} ({img.bitness}-bit) with "
                f"{img.vcpus} vCPU(s), none initialised", "XEN_DOMCTL_createdomain / max_vcpus")
        return t.finish(0)

    def populate_physmap(self) -> Outcome:
        t = Tracer(f"populate_physmap({self.img.nr_pfns} frames)")
        g = self.guest
        assert g is not None
        roots = set(self.img.roots)
        for pfn in range(self.img.nr_pfns):
            lim = self.lim if pfn in roots else {}
            out = self.xen.populate_physmap(g.domain, **lim)  # type: ignore[arg-type]
            absorb(t, out, events=bool(out.rc))
            if out.rc:
                return t.finish(out.rc)
            self.res.p2m[pfn] = allocated_mfn(out)
        t.outcome.counters.hypercalls = 1
        tops = ", ".join(f"{self.res.p2m[r]:#x}" for r in self.img.roots)
        t.event("populate", "info", f"{self.img.nr_pfns} frames, no address limit; top-level "
                f"tables at MFNs {tops}", "populate_pfns")
        return t.finish(0)

    def relocate_l3s(self) -> Outcome:
        t = Tracer("relocate L3s below 4 GiB")
        g = self.guest
        assert g is not None
        img = self.img
        if not img.abi.pae_top or img.extended_cr3:
            t.event("relocate", "info", "not needed: " + ("64-bit guest" if not img.abi.pae_top
                    else "the saved context has pae_extended_cr3"), "xc_domain_restore")
            return t.finish(0)
        for pfn in img.roots:
            mfn = self.res.p2m[pfn]
            if mfn < MFN_4GIB:
                continue
            g.free_frame(mfn)
            out = self.xen.populate_physmap(g.domain, below=MFN_4GIB * PAGE_SIZE)
            t.outcome.counters.hypercalls += 1
            absorb(t, out, events=False)
            if out.rc:
                t.event("relocate", "fail", f"no frame below 4 GiB for the L3 at pfn {pfn:#x}",
                        "xc_make_page_below_4G", mfn=mfn)
                return t.finish(-int(Errno.ENOMEM))
            new = allocated_mfn(out)
            self.res.p2m[pfn] = new
            absorb(t, g.machphys_update(new, pfn), events=False)
            self.res.relocated.append((mfn, new))
            t.event("relocate", "pass", f"L3 pfn {pfn:#x}: MFN {mfn:#x} => {new:#x} (below "
                    "4 GiB, no pae_extended_cr3 in the saved context)", "xc_make_page_below_4G",
                    mfn=new)
        if not self.res.relocated:
            t.event("relocate", "info", "every L3 is already below 4 GiB", "xc_domain_restore")
        return t.finish(0)

    def localise_pagetables(self) -> Outcome:
        t = Tracer("localise pagetables")
        g = self.guest
        assert g is not None
        for tab in self.img.tables:
            mfn = self.res.p2m[tab.pfn]
            for index, pfn, flags in tab.entries:
                g.write_entry(mfn, index, value=make_entry(self.res.p2m[pfn], flags))
        t.event("localise", "info", f"{len(self.img.tables)} pagetables written with pfns "
                "replaced by the new MFNs", "x86_pv_localise_page")
        return t.finish(0)

    def update_vcpu_context(self) -> Outcome:
        t = Tracer("update_vcpu_context")
        g = self.guest
        assert g is not None
        for v in range(self.img.vcpus):
            root = self.res.p2m[self.img.roots[v]]
            t.event("vcpu", "info", f"vCPU {v}: CR3 -> MFN {root:#x}"
                    + (f", vm_assist {', '.join(self.img.vm_assists) or 'none'}" if v == 0
                       else ""), "process_vcpu_basic")
            out = g.set_vcpu_context(v, cr3=root, vm_assists=self.img.vm_assists)
            absorb(t, out)
            if out.rc:
                self.res.info["failed_vcpu"] = v
                t.event("vcpu", "fail", f"Failed to set vcpu{v}'s basic info",
                        "update_vcpu_context", mfn=root)
                return t.finish(out.rc)
        return t.finish(0)

    def pin_pagetables(self) -> Outcome:
        t = Tracer("pin_pagetables")
        g = self.guest
        assert g is not None
        for tab in sorted(self.img.tables, key=lambda x: x.pfn):
            if not tab.pinned:
                continue
            if tab.level > self.img.abi.top_level:
                continue
            mfn = self.res.p2m[tab.pfn]
            out = g.pin(mfn, level=tab.level)
            absorb(t, out)
            if out.rc:
                self.res.info["failed_pfn"] = tab.pfn
                t.event("pin", "fail", f"Failed to pin batch of pagetables (pfn {tab.pfn:#x}, "
                        f"L{tab.level} MFN {mfn:#x})", "pin_pagetables", mfn=mfn)
                return t.finish(out.rc)
        return t.finish(0)


def restore_domain(xen: Xen, options: RestoreOptions | None = None,
                   **kw: object) -> RestoreResult:
    """Restore a saved PV guest on `xen`; stops at the first failing step."""
    o = options or RestoreOptions(**kw)  # type: ignore[arg-type]
    r = _Restore(xen, o)
    steps, skipped = plan_order(FORMATS[o.format], o.order, o.skip,
                                flow=f"restore_domain ({o.format})")
    if steps[:1] != ["createdomain"]:
        raise PvlabError("restore_domain: createdomain must stay the first step",
                         "keep createdomain first in order")
    r.res.skipped = skipped
    for name in steps:
        out = getattr(r, name)()
        r.res.steps.append((name, out))
        if out.rc:
            break
    return r.res


__all__ = ["FORMATS", "RESTORE_LEGACY", "RESTORE_V2", "RestoreOptions", "RestoreResult",
           "SavedImage", "restore_domain", "saved_image"]
