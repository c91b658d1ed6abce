# SPDX-License-Identifier: MIT
"""What several hypercalls share: taking a reference on a guest-named frame (`get_page_from_gfn`
for a PV guest), `new_guest_cr3`, and the profile's policy on pae_extended_cr3.

Kept apart from `hypercalls` so that the command table (`mmuext`) and the vCPU-context code
(`vcpu_context`) can use them without an import cycle; `hypercalls` re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import Tracer
from pvlab.xen.domain import Domain
from pvlab.xen.page_info import owner_name
from pvlab.xen.rules import ruleset

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen


def _ref_mfn(xen: Xen, mfn: int, d: Domain, t: Tracer, what: str) -> int:
    """`get_page_from_gfn` for a PV guest: the frame must be the domain's own."""
    if xen.type_system.get_page(mfn, d):
        return 0
    owner = owner_name(xen.machine.owner(mfn)) if xen.machine.mfn_valid(mfn) else "no one"
    return xen.type_system.fail(t, ruleset(d), "not_owned",
                       f"{what}: MFN {mfn:#x} belongs to {owner}, not {d.label}", mfn=mfn)


def new_guest_cr3(xen: Xen, d: Domain, vcpu: int, mfn: int, t: Tracer) -> int:
    """`new_guest_cr3`: PV32 installs an L3 in compat L4 slot 0; 64-bit installs an L4."""
    types = xen.type_system
    v = d.vcpu(vcpu)
    if v is None:
        return types.fail(t, ruleset(d), "vcpu_missing", f"vCPU {vcpu} does not exist")
    if v.guest_table == mfn:
        t.event("new_baseptr", "pass", f"MFN {mfn:#x} is already the base pointer",
                "new_guest_cr3")
        return 0
    rc = _ref_mfn(xen, mfn, d, t, "new base pointer")
    if rc:
        return rc
    rc = types.get_page_type(t, mfn, d.abi.top_type, d)
    if rc:
        types.put_page(mfn)
        t.event("new_baseptr", "fail",
                f"Error while installing new {d.abi.baseptr_name} {mfn:#x}",
                "new_guest_cr3", mfn=mfn)
        return rc
    old = v.guest_table
    v.guest_table = mfn
    if old is not None:
        types.put_page_and_type(t, old)
    t.event("new_baseptr", "pass", f"vCPU {vcpu} now runs on MFN {mfn:#x}", "new_guest_cr3",
            mfn=mfn)
    return 0


def _pae_extended_cr3_policy(xen: Xen, d: Domain, t: Tracer) -> tuple[int, bool]:
    """The profile's policy for a guest enabling pae_extended_cr3, asked of `d`'s ABI
    (only 64-bit guests have one): (rc, whether the bit is ignored)."""
    policy = d.abi.pae_extended_cr3_policy(xen.profile)
    if policy == "refuse":
        return xen.type_system.fail(t, ruleset(d), "vm_assist_valid",
                           f"profile {xen.profile.name}: 64-bit guests may not enable "
                           "pae_extended_cr3"), False
    return 0, policy == "ignore"
