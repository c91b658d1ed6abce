# SPDX-License-Identifier: MIT
"""Domains, vCPUs and VM-assists (`struct domain`, `struct vcpu`, `public/xen.h`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvlab.xen.abi import PV64Abi, abi_for
from pvlab.xen.vmassist import (
    PV32_VM_ASSIST_MASK,
    PV64_VM_ASSIST_MASK,
    VM_ASSIST_HELP,
    VM_ASSIST_NAMES,
    VM_ASSISTS,
    VMASST_CMD_disable,
    VMASST_CMD_enable,
    VMASST_TYPE_4gb_segments,
    VMASST_TYPE_4gb_segments_notify,
    VMASST_TYPE_architectural_iopl,
    VMASST_TYPE_m2p_strict,
    VMASST_TYPE_pae_extended_cr3,
    VMASST_TYPE_runstate_update_flag,
    VMASST_TYPE_writable_pagetables,
    vm_assist_names,
    vm_assist_number,
)


def vm_assist_mask(bitness: int) -> int:
    """`arch_vm_assist_valid_mask` of a guest of `bitness` (asked of its ABI)."""
    return abi_for(bitness).vm_assist_valid_mask


@dataclass
class Vcpu:
    """A vCPU: `is_initialised` and its pagetable base (`guest_table`)."""

    vcpu_id: int
    is_initialised: bool = False
    #: 64-bit: the L4 (`guest_table`); PV32: the L3 in slot 0 of Xen's per-vCPU compat L4.
    guest_table: int | None = None
    #: 64-bit only: the user-mode L4 (`guest_table_user`).
    guest_table_user: int | None = None


@dataclass
class Domain:
    """A PV domain: bitness, VM-assists (`d->vm_assist`) and vCPUs (`d->vcpu[]`)."""

    domid: int
    bitness: int
    vm_assist: int = 0
    vcpus: list[Vcpu] = field(default_factory=list)
    #: dom0-like: holds I/O resources, so `l1_disallow_mask` allows cache attributes.
    privileged: bool = False
    name: str = ""
    #: The PV L1TF mitigation switched this domain to shadow paging (`paging_mode_sh_forced`).
    shadow_forced: bool = False
    #: `domain_crash` was called on it (e.g. an L1TF-vulnerable PTE without shadow paging).
    crashed: bool = False
    #: `d->is_dying`: `XEN_DOMCTL_destroydomain` ran (`domain_kill`); the domain stays (a
    #: "zombie") while another domain still holds references on its frames.
    is_dying: bool = False

    @property
    def abi(self) -> PV64Abi:
        """The PV ABI this domain runs under (`PV64`, or the compat `PV32`)."""
        return abi_for(self.bitness)

    @property
    def is_pv_32bit(self) -> bool:
        """`is_pv_32bit_domain(d)` (kept for callers; the model asks `abi` instead)."""
        return self.abi.pae_top

    def vcpu(self, vcpu_id: int) -> Vcpu | None:
        return self.vcpus[vcpu_id] if 0 <= vcpu_id < len(self.vcpus) else None

    @property
    def vcpu0_initialised(self) -> bool:
        v0 = self.vcpu(0)
        return bool(v0 and v0.is_initialised)

    def has_vm_assist(self, name: str | int) -> bool:
        return bool(self.vm_assist >> vm_assist_number(name) & 1)

    @property
    def label(self) -> str:
        return self.name or f"d{self.domid}"


__all__ = ["PV32_VM_ASSIST_MASK", "PV64_VM_ASSIST_MASK", "VMASST_CMD_disable", "VMASST_CMD_enable",
           "VMASST_TYPE_4gb_segments", "VMASST_TYPE_4gb_segments_notify",
           "VMASST_TYPE_architectural_iopl", "VMASST_TYPE_m2p_strict",
           "VMASST_TYPE_pae_extended_cr3", "VMASST_TYPE_runstate_update_flag",
           "VMASST_TYPE_writable_pagetables", "VM_ASSISTS", "VM_ASSIST_HELP", "VM_ASSIST_NAMES",
           "Domain", "Vcpu", "vm_assist_mask", "vm_assist_names", "vm_assist_number"]
