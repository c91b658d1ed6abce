# SPDX-License-Identifier: MIT
"""Xen behaviour profiles: versions and the policy variants argued on xen-devel.

A profile is data that the rules consult, never a condition scattered through the code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pvlab.errors import PvlabError
from pvlab.trace import Errno

#: A profile's answer to "a 64-bit guest enables pae_extended_cr3".
AssistPolicy = Literal["accept", "refuse", "ignore"]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    #: `promote_l3_table`'s PAE-extended-CR3 check exists.
    pae_l3_below_4g_check: bool = True
    pae_l3_check_errno: Errno = Errno.ERANGE
    #: the check waits until vCPU 0 is initialised (the toolstack's slack).
    pae_l3_check_tools_slack: bool = True
    #: the check applies only to 32-bit PV domains.
    pae_l3_check_pv32_only: bool = True
    #: what `vm_assist(enable, pae_extended_cr3)` does for a 64-bit guest:
    #: "accept" (Xen), "refuse" (-EINVAL) or "ignore" (returns 0, bit not set).
    pv64_pae_extended_cr3: AssistPolicy = "accept"
    #: Xen 4.14+: a failed "PAE L3 3rd slot is shared" check leaks the slot-3 type reference.
    pae_l3_shared_leak: bool = True
    #: XSA-185 (4.8+): no linear L3 entries for 32-bit PV guests.
    pv32_linear_l3: bool = False
    #: `pv-linear-pt` (CONFIG_PV_LINEAR_PT, default on).
    linear_pagetables: bool = True
    #: debug builds define `_PAGE_GNTTAB` (PTE bit 62) and refuse it in L1 entries.
    debug_build: bool = True
    #: `dom0_construct_pv` (4.19+): a 32-bit dom0 without the assist gets MEMF_bits(32).
    dom0_pv32_memf_bits32: bool = True
    #: MMUEXT_FLUSH_CACHE_GLOBAL without cache-flush permission: -EINVAL until commit
    #: bbaea9878b ("x86/pv: fix MMUEXT_FLUSH_CACHE to flush all pCPU caches", 2025; 4.19.2+,
    #: 4.20.1+ via e9e2f32771 / ee150f56fc), -EACCES since. 4.17.7 still says -EINVAL.
    flush_cache_global_denied: Errno = Errno.EACCES
    first_release: str = ""


_XEN_419 = Profile(
    name="4.19",
    description="Xen 4.19 and later (4.20, HEAD): the PAE-extended-CR3 check restored by "
                "commit a773adedbd in promote_l3_table (-ERANGE).",
    first_release="4.19.0",
)

PROFILES: dict[str, Profile] = {
    "4.17": replace(
        _XEN_419, name="4.17",
        description="Xen 4.3 to 4.18 (measured on 4.17.7): no PAE-extended-CR3 check; it was "
                    "deleted with 32-bit Xen (commit 218adf19, 4.3).",
        pae_l3_below_4g_check=False, dom0_pv32_memf_bits32=False,
        flush_cache_global_denied=Errno.EINVAL, first_release="4.3.0"),
    "4.19": _XEN_419,
    "no-slack": replace(
        _XEN_419, name="no-slack",
        description="Policy variant (xen-devel, April 2023): the check without the toolstack "
                    "slack, so it applies before vCPU 0 is initialised too.",
        pae_l3_check_tools_slack=False),
    "no-32bit-cond": replace(
        _XEN_419, name="no-32bit-cond",
        description="Policy variant (Andrew Cooper, xen-devel April 2023): drop both the "
                    "is_pv_32bit_domain() and the vCPU-0 conditions.",
        pae_l3_check_tools_slack=False, pae_l3_check_pv32_only=False),
    "cooper-2023": replace(
        _XEN_419, name="cooper-2023",
        description="Policy variant: Andrew Cooper's full suggestion (xen-devel, April 2023): "
                    "64-bit guests may not set pae_extended_cr3, and the check keeps only "
                    "'assist off and L3 at or above 4 GiB' (no 32-bit, no vCPU-0 condition).",
        pae_l3_check_tools_slack=False, pae_l3_check_pv32_only=False,
        pv64_pae_extended_cr3="refuse"),
    "refuse-pv64-assist": replace(
        _XEN_419, name="refuse-pv64-assist",
        description="Policy variant: 64-bit guests may not enable pae_extended_cr3 (-EINVAL).",
        pv64_pae_extended_cr3="refuse"),
    "ignore-pv64-assist": replace(
        _XEN_419, name="ignore-pv64-assist",
        description="Policy variant: a 64-bit guest's request for pae_extended_cr3 is "
                    "accepted and ignored.",
        pv64_pae_extended_cr3="ignore"),
}
ALIASES = {"4.20": "4.19", "4.21": "4.19", "4.22": "4.19", "4.18": "4.17", "4.16": "4.17",
           "latest": "4.19", "newest": "4.19"}
DEFAULT_PROFILE = "4.19"


def get_profile(name: str | Profile | None) -> Profile:
    if isinstance(name, Profile):
        return name
    if name is None:
        return PROFILES[DEFAULT_PROFILE]
    key = ALIASES.get(str(name), str(name))
    if key not in PROFILES:
        raise PvlabError(f"unknown Xen profile {name!r}",
                         f"use one of {', '.join(PROFILES)} (aliases: {', '.join(ALIASES)})")
    return PROFILES[key]
