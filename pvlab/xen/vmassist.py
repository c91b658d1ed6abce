# SPDX-License-Identifier: MIT
"""VM-assist types, names and masks (`xen/include/public/xen.h`, asm/domain.h)."""

from __future__ import annotations

from pvlab.errors import PvlabError

# VM-assist types (`xen/include/public/xen.h`).
VMASST_TYPE_4gb_segments = 0
VMASST_TYPE_4gb_segments_notify = 1
VMASST_TYPE_writable_pagetables = 2
VMASST_TYPE_pae_extended_cr3 = 3
VMASST_TYPE_architectural_iopl = 4
VMASST_TYPE_runstate_update_flag = 5
VMASST_TYPE_m2p_strict = 32

VMASST_CMD_enable = 0
VMASST_CMD_disable = 1

VM_ASSISTS: dict[str, int] = {
    "4gb_segments": VMASST_TYPE_4gb_segments,
    "4gb_segments_notify": VMASST_TYPE_4gb_segments_notify,
    "writable_pagetables": VMASST_TYPE_writable_pagetables,
    "pae_extended_cr3": VMASST_TYPE_pae_extended_cr3,
    "architectural_iopl": VMASST_TYPE_architectural_iopl,
    "runstate_update_flag": VMASST_TYPE_runstate_update_flag,
    "m2p_strict": VMASST_TYPE_m2p_strict,
}
VM_ASSIST_NAMES = {v: k for k, v in VM_ASSISTS.items()}

VM_ASSIST_HELP = {
    "4gb_segments": "x86/32 only: emulate 4 GiB segment limits (accepted, no effect on 64-bit Xen)",
    "4gb_segments_notify": "x86/32 only: trap when 4gb_segments is used (accepted, no effect)",
    "writable_pagetables": "emulate guest writes to read-only mapped L1 pages (ptwr)",
    "pae_extended_cr3": "32-bit PAE guests: the L3 may live above 4 GiB; CR3 uses the "
                        "rotated extended-CR3 format",
    "architectural_iopl": "virtual IOPL with architectural semantics (Xen 4.7+)",
    "runstate_update_flag": "XEN_RUNSTATE_UPDATE flag in the runstate area (Xen 4.8+)",
    "m2p_strict": "64-bit only: hide the M2P from guest user mode (Xen 4.6+)",
}

#: `arch_vm_assist_valid_mask` (asm/domain.h, Xen 4.14+).
PV32_VM_ASSIST_MASK = 0x3F
PV64_VM_ASSIST_MASK = PV32_VM_ASSIST_MASK | (1 << VMASST_TYPE_m2p_strict)


def vm_assist_number(name: str | int) -> int:
    """The VM-assist type number of a name (or a number, passed through)."""
    if isinstance(name, bool):
        raise PvlabError(f"VM-assist {name!r} is not a name", "use e.g. pae_extended_cr3")
    if isinstance(name, int):
        if not 0 <= name < 64:
            raise PvlabError(f"VM-assist type {name} is out of range 0-63",
                             "use a name such as pae_extended_cr3")
        return name
    key = str(name).strip().lower().removeprefix("vmasst_type_")
    if key not in VM_ASSISTS:
        raise PvlabError(f"unknown VM-assist {name!r}",
                         f"use one of {', '.join(VM_ASSISTS)}")
    return VM_ASSISTS[key]


def vm_assist_names(mask: int) -> list[str]:
    return [VM_ASSIST_NAMES.get(b, f"type{b}") for b in range(64) if mask >> b & 1]
