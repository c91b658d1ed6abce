# SPDX-License-Identifier: MIT
"""The hypervisor object: one machine, a profile, domains, and the hypercalls.

```python
from pvlab import Xen
xen = Xen(profile="4.19", memory="8GiB")
g = xen.create_domain(bitness=32)        # vCPU 0 exists, not initialised
l3, l2 = g.alloc_frame(above="4GiB"), g.alloc_frame()
g.write_entry(l3, 3, l2, "P")
g.pin(l3, level=3)                       # -> Outcome
```
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from pvlab.errors import PvlabError
from pvlab.trace import Errno, Outcome, Tracer
from pvlab.units import PAGE_SHIFT, MiB
from pvlab.x86.flags import NX, PS, RW, A, D, P, make_entry
from pvlab.xen import hypercalls
from pvlab.xen.abi import PV64, abi_for
from pvlab.xen.cmdline import Hardware, Settings, XenCommandLine, effective_settings
from pvlab.xen.domain import (
    Domain,
    Vcpu,
    VMASST_CMD_disable,
    VMASST_CMD_enable,
    VMASST_TYPE_m2p_strict,
    vm_assist_number,
)
from pvlab.xen.machine import AllocError, Machine
from pvlab.xen.page_info import PageInfo
from pvlab.xen.profiles import Profile, get_profile
from pvlab.xen.rules import COMPAT_L2_FIRST_XEN_SLOT
from pvlab.xen.typesys import TypeSystem

if TYPE_CHECKING:
    from pvlab.xen.grants import GrantTable

#: Slots of the PAE Xen L2 from 428 to 511 map 84 * 2 MiB of compat M2P at most.
COMPAT_M2P_MAX_SLOTS = 512 - COMPAT_L2_FIRST_XEN_SLOT
SUPERPAGE_FRAMES = 512


class Xen:
    """A 64-bit Xen hypervisor on one host."""

    def __init__(self, profile: str | Profile | None = None, memory: int | str = "8GiB", *,
                 placement: str = "low-first", seed: int = 0, build: str | None = None,
                 cmdline: XenCommandLine | None = None,
                 hardware: Hardware | None = None) -> None:
        self.profile = get_profile(profile)
        if build is not None:  # "debug" or "release": CONFIG_DEBUG on or off
            self.profile = replace(self.profile, debug_build=build == "debug")
        #: Xen's command line and the host CPU, resolved for this profile (`pvlab.xen.cmdline`).
        self.settings: Settings = effective_settings(self.profile, cmdline, hardware)
        self.machine = Machine(memory, placement=placement, seed=seed)
        self.type_system = TypeSystem(self)
        self.domains: dict[int, Domain] = {}
        self._next_domid = 1
        #: each domain's grant table, by domid (`pvlab.xen.grants`)
        self.grant_tables: dict[int, GrantTable] = {}
        # Xen's own frames at the top of memory: the read-only compat M2P (4 bytes per
        # frame, mapped in 2 MiB superpages) and a few of its own pagetables.
        m = self.machine
        m2p_bytes = 4 * m.nr_frames
        self.m2p_slots = min(COMPAT_M2P_MAX_SLOTS, -(-m2p_bytes // (2 * MiB)))
        top = m.nr_frames - m.nr_frames % SUPERPAGE_FRAMES
        self.compat_m2p_base = top - (self.m2p_slots + 1) * SUPERPAGE_FRAMES
        self.xen_tables_base = top - SUPERPAGE_FRAMES  # idle/per-domain tables
        m.reserve_xen(self.compat_m2p_base, m.nr_frames)

    @property
    def ts(self) -> TypeSystem:
        """The former name of `type_system`."""
        return self.type_system

    # ------------------------------------------------------------------ domains
    def create_domain(self, bitness: int = 64, *, vcpus: int = 1,
                      vm_assists: Iterable[str | int] = (), privileged: bool = False,
                      name: str = "", max_maptrack_frames: int | None = None) -> Guest:
        """`XEN_DOMCTL_createdomain` (+ `set_address_size` 32 for PV32, `max_vcpus`);
        `max_maptrack_frames` is its `grant_table_init` limit (None: Xen's default)."""
        abi = abi_for(bitness)
        if not isinstance(vcpus, int) or not 0 <= vcpus <= 128:
            raise PvlabError(f"vcpus {vcpus!r} is out of range", "use 0 to 128 (0: before "
                             "XEN_DOMCTL_max_vcpus)")
        mask = 0
        for a in vm_assists:
            n = vm_assist_number(a)
            if not abi.assist_valid(n):
                raise PvlabError(f"VM-assist {a!r} is not valid for a {bitness}-bit PV guest",
                                 "remove it (m2p_strict is 64-bit only)")
            mask |= 1 << n
        d = Domain(self._next_domid, bitness, mask, [Vcpu(i) for i in range(vcpus)],
                   privileged, name)
        self._next_domid += 1
        self.domains[d.domid] = d
        if max_maptrack_frames is not None:
            from pvlab.xen.grants import GrantTable

            self.grant_tables[d.domid] = GrantTable(max_maptrack_frames=max_maptrack_frames)
        return Guest(self, d)

    def max_vcpus(self, d: Domain, n: int) -> None:
        """`XEN_DOMCTL_max_vcpus`: create vCPUs 0..n-1 (not initialised)."""
        while len(d.vcpus) < n:
            d.vcpus.append(Vcpu(len(d.vcpus)))

    def domain_of(self, mfn: int) -> Domain | None:
        owner = self.machine.owner(mfn)
        return self.domains.get(owner) if owner is not None else None

    # ------------------------------------------------------------------ Xen's slots
    def init_xen_pae_l2_slots(self, mfn: int) -> None:
        """`init_xen_pae_l2_slots`: the compat M2P, read-only 2 MiB mappings, slots 428+."""
        for k in range(COMPAT_M2P_MAX_SLOTS):
            value = 0
            if k < self.m2p_slots:
                value = ((self.compat_m2p_base + k * SUPERPAGE_FRAMES) << PAGE_SHIFT) | P | PS
            self.machine.write_entry(mfn, COMPAT_L2_FIRST_XEN_SLOT + k, value)

    def ro_mpt_l4e(self) -> int:
        """The L4 entry of the read-only M2P (RO_MPT_VIRT_START, slot 256) Xen copies from
        its idle table (`fill_ro_mpt`, `init_xen_l4_slots`)."""
        return (self.compat_m2p_base << PAGE_SHIFT) | P | A

    def init_xen_l4_slots(self, mfn: int, d: Domain) -> None:
        """`init_xen_l4_slots`: slots 256-271 are Xen's (258: this L4's linear self-map)."""
        m = self.machine
        rw = P | RW | A | D
        for slot in PV64.xen_slots(4):
            m.write_entry(mfn, slot, 0)
        if d.vm_assist >> VMASST_TYPE_m2p_strict & 1:
            m.write_entry(mfn, 256, self.ro_mpt_l4e())
        m.write_entry(mfn, 258, (mfn << PAGE_SHIFT) | rw | NX)
        m.write_entry(mfn, 260, ((self.xen_tables_base + 1) << PAGE_SHIFT) | rw)
        m.write_entry(mfn, 261, ((self.xen_tables_base + 2) << PAGE_SHIFT) | rw)

    # ------------------------------------------------------------------ memory
    def populate_physmap(self, d: Domain, *, below: int | str | None = None,
                         above: int | str | None = None, mfn: int | None = None,
                         gpfn: int | None = None) -> Outcome:
        """`XENMEM_populate_physmap` / `increase_reservation` of one frame (rc 0 or -ENOMEM).

        With `gpfn`, the M2P entry of the new frame records it (`set_gpfn_from_mfn`).
        """
        t = Tracer("XENMEM_populate_physmap")
        t.outcome.counters.hypercalls += 1
        try:
            got = self.machine.alloc(d.domid, below=below, above=above, mfn=mfn)
        except AllocError as err:
            t.event("alloc", "fail", err.message, "alloc_domheap_pages")
            return t.finish(-int(Errno.ENOMEM))
        t.outcome.failed_mfn = None
        t.event("alloc", "pass", f"MFN {got:#x} allocated to {d.label}", "alloc_domheap_pages",
                mfn=got)
        if gpfn is not None:
            self.machine.m2p[got] = gpfn
        t.outcome.allocated = got
        return t.finish(0)

    def decrease_reservation(self, d: Domain, mfn: int) -> Outcome:
        """`XENMEM_decrease_reservation` of one frame: it must hold no other reference."""
        t = Tracer(f"XENMEM_decrease_reservation({mfn:#x})")
        t.outcome.counters.hypercalls += 1
        pi = self.machine.peek(mfn)
        if pi.owner != d.domid:
            t.event("not_owned", "fail", f"MFN {mfn:#x} is not {d.label}'s", "guest_remove_page",
                    mfn=mfn)
            return t.finish(-int(Errno.EINVAL))
        if pi.count > 1 or pi.type_count:
            t.event("in_use", "fail", f"MFN {mfn:#x} is still referenced (count {pi.count}, "
                    f"type count {pi.type_count})", "guest_remove_page", mfn=mfn)
            return t.finish(-int(Errno.EBUSY))
        self.machine.free(mfn)
        t.event("free", "pass", f"MFN {mfn:#x} returned to Xen's heap", "guest_remove_page",
                mfn=mfn)
        return t.finish(0)


class Guest:
    """A domain's handle: its frames and hypercalls, in Xen's vocabulary."""

    def __init__(self, xen: Xen, domain: Domain) -> None:
        self.xen = xen
        self.domain = domain

    def __repr__(self) -> str:
        d = self.domain
        return (f"<Guest {d.label} {d.bitness}-bit, vm_assist={d.vm_assist:#x}, "
                f"vCPU0 {'initialised' if d.vcpu0_initialised else 'not initialised'}>")

    @property
    def domid(self) -> int:
        return self.domain.domid

    @property
    def bitness(self) -> int:
        return self.domain.bitness

    # frames
    def alloc_frame(self, *, below: int | str | None = None, above: int | str | None = None,
                    mfn: int | None = None) -> int:
        """Allocate a frame (raises a clear `PvlabError` when nothing fits; nothing changes)."""
        return self.xen.machine.alloc(self.domid, below=below, above=above, mfn=mfn)

    def free_frame(self, mfn: int) -> None:
        self.xen.machine.free(mfn)

    def page(self, mfn: int) -> PageInfo:
        return self.xen.machine.page(mfn)

    def frames(self) -> list[int]:
        return self.xen.machine.allocated(self.domid)

    def read_entry(self, table: int, index: int) -> int:
        return self.xen.machine.read_entry(table, index)

    def write_entry(self, table: int, index: int, target: int | None = None,
                    flags: Iterable[str] | str | int = 0, *, value: int | None = None) -> None:
        """A raw guest write into one of its frames (no hypercall, no check).

        Refused for a live pagetable: the guest maps those read-only.
        """
        pi = self.page(table)
        if pi.owner != self.domid:
            raise PvlabError(f"MFN {table:#x} is not {self.domain.label}'s frame",
                             "write only into the guest's own frames")
        if pi.is_live_pagetable:
            raise PvlabError(f"MFN {table:#x} is a live L{pi.level} pagetable: the guest maps "
                             "it read-only, so a direct write would fault",
                             "use mmu_update (MMU_NORMAL_PT_UPDATE) instead")
        if value is None:
            value = 0 if target is None else make_entry(target, flags)
        self.xen.machine.write_entry(table, index, value)

    # hypercalls
    def pin(self, mfn: int, level: int) -> Outcome:
        if level not in (1, 2, 3, 4):
            raise PvlabError(f"pin level {level!r} is not 1-4", "use level 1, 2, 3 or 4")
        return hypercalls.mmuext_op(self.xen, self.domain, level - 1, mfn)

    def unpin(self, mfn: int) -> Outcome:
        return hypercalls.mmuext_op(self.xen, self.domain, hypercalls.MMUEXT_UNPIN_TABLE, mfn)

    def new_baseptr(self, mfn: int, *, vcpu: int = 0) -> Outcome:
        return hypercalls.mmuext_op(self.xen, self.domain, hypercalls.MMUEXT_NEW_BASEPTR, mfn,
                                    vcpu=vcpu)

    def new_user_baseptr(self, mfn: int, *, vcpu: int = 0) -> Outcome:
        return hypercalls.mmuext_op(self.xen, self.domain, hypercalls.MMUEXT_NEW_USER_BASEPTR,
                                    mfn, vcpu=vcpu)

    def tlb_flush(self) -> Outcome:
        return hypercalls.mmuext_op(self.xen, self.domain, hypercalls.MMUEXT_TLB_FLUSH_LOCAL)

    def mmuext_op(self, cmd: int, mfn: int = 0, *, vcpu: int = 0) -> Outcome:
        """Any `mmuext_op` command by number (unknown ones give -ENOSYS, as in Xen)."""
        return hypercalls.mmuext_op(self.xen, self.domain, cmd, mfn, vcpu=vcpu)

    def update_va_mapping(self, va: int, target: int | None = None,
                          flags: Iterable[str] | str | int = 0, *, value: int | None = None,
                          vcpu: int = 0) -> Outcome:
        """`HYPERVISOR_update_va_mapping`: rewrite the L1 entry mapping `va`."""
        if value is None:
            value = 0 if target is None else make_entry(target, flags)
        return hypercalls.update_va_mapping(self.xen, self.domain, va, value, vcpu=vcpu)

    def mmu_update(self, table: int, index: int, target: int | None = None,
                   flags: Iterable[str] | str | int = 0, *, value: int | None = None) -> Outcome:
        if value is None:
            value = 0 if target is None else make_entry(target, flags)
        return hypercalls.mmu_update(self.xen, self.domain, table, index, value)

    def machphys_update(self, mfn: int, pfn: int) -> Outcome:
        return hypercalls.mmu_update(self.xen, self.domain, mfn, 0, pfn,
                                     cmd=hypercalls.MMU_MACHPHYS_UPDATE)

    def vm_assist(self, cmd: str | int, assist: str | int) -> Outcome:
        """`HYPERVISOR_vm_assist(cmd, type)`: cmd "enable"/"disable" or a number."""
        if isinstance(cmd, str):
            c = {"enable": VMASST_CMD_enable, "disable": VMASST_CMD_disable}.get(cmd.lower())
            if c is None:
                raise PvlabError(f"vm_assist command {cmd!r} unknown", "use enable or disable")
            cmd = c
        return hypercalls.vm_assist(self.xen, self.domain, cmd, vm_assist_number(assist))

    def cr3_for(self, mfn: int) -> int:
        """The CR3 value a toolstack puts in the vCPU context (`xen_pfn_to_cr3`)."""
        return self.domain.abi.cr3_of(mfn)

    def set_vcpu_context(self, vcpu: int, *, cr3: int,
                         vm_assists: Iterable[str | int] | None = None) -> Outcome:
        """`XEN_DOMCTL_setvcpucontext` with CR3 = the frame `cr3` (encoded for the guest)."""
        mask = None
        if vm_assists is not None:
            mask = 0
            for a in vm_assists:
                mask |= 1 << vm_assist_number(a)
        return hypercalls.set_vcpu_context(self.xen, self.domain, vcpu, self.cr3_for(cr3), mask)

    def vcpu_op_initialise(self, vcpu: int, *, cr3: int) -> Outcome:
        """`VCPUOP_initialise` issued by the guest itself (-EEXIST if already initialised)."""
        return hypercalls.vcpu_op_initialise(self.xen, self.domain, vcpu, self.cr3_for(cr3))

    def vcpu_reset(self, vcpu: int) -> Outcome:
        return hypercalls.vcpu_reset(self.xen, self.domain, vcpu)
