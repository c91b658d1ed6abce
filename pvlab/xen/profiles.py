# SPDX-License-Identifier: MIT
"""Xen behaviour profiles: versions and the policy variants argued on xen-devel.

A profile is data that the rules consult, never a condition scattered through the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from pvlab.errors import PvlabError
from pvlab.trace import Errno

#: A profile's answer to "a 64-bit guest enables pae_extended_cr3".
AssistPolicy = Literal["accept", "refuse", "ignore"]

#: Flag bits of the 24-bit flag word (`get_pte_flags`) the pre-XSA-182 fast paths compared.
_P, _RW, _PWT, _PCD, _PAT = 0x1, 0x2, 0x8, 0x10, 0x80
#: `mod_l1_entry` before XSA-182: "identical mapping, r/w, presence, and cachability".
FASTPATH_L1_PRE_XSA182 = _P | _RW | _PWT | _PCD | _PAT
#: `mod_l{2,3,4}_entry` before XSA-182 (and XSA-148 for L2): "identical mapping and presence".
FASTPATH_PRESENT_ONLY = _P


@dataclass(frozen=True)
class Advisory:
    """The security fix a `pre-xsa-NNN` profile leaves out (docs/security.md)."""

    xsa: int
    cve: str
    title: str
    #: The advisory's impact statement, paraphrased (the CVE text carries the same words).
    impact: str
    #: The fixing commit in xen.git (short hash) and its subject.
    commit: str
    subject: str
    #: The first release with the fix (stable branches got backports).
    fixed_in: str
    #: The Xen function(s) the fix changed, and the pvlab rule that models it.
    xen_function: str
    rule: str
    #: The scenario (tests/scenarios) whose exploit step shows the difference.
    scenario: str


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
    #: the first Xen release the profile stands for ("" for a pre-xsa-NNN model)
    first_release: str = ""
    # --- the security fixes (a `pre-xsa-NNN` profile turns exactly one of them off) -----
    #: XSA-148 (fe360c90ea): PSE is in L2_DISALLOW_MASK (no PV superpages without the
    #: opt-in). Off: the mask lacks PSE and `get_page_from_l2e` refuses a PSE entry only
    #: at validation ("Attempt to map superpage without allowsuperpage flag").
    l2_pse_disallowed: bool = True
    #: XSA-182 (e1bff4c2ea) and XSA-148: the flag bits per level (L1..L4) whose change
    #: sends `mod_lN_entry` down the slow path; None = every bit outside
    #: FASTPATH_FLAG_WHITELIST (the fix). Before: the frame plus these bits only.
    fastpath_checked: tuple[int | None, int | None, int | None, int | None] = (
        None, None, None, None)
    #: XSA-240 (6987fc7558): linear pagetables limited to one level (linear_pt_count).
    linear_one_level: bool = True
    #: XSA-279 (6c8d502887): `__do_update_va_mapping` skips the UVMF flush after an error.
    uvmf_flush_skipped_on_error: bool = True
    #: XSA-299 (3c15a2d8cc): an L3 that fails at slot x > 0 after the L2 there was left
    #: partially validated takes over that L2's cleanup (old_guest_table); before, the L3
    #: overwrote old_guest_table and the L2 stayed PGT_partial for good.
    l3_partial_child_cleanup: bool = True
    # --- Xen's command line: which options this version knows -------------------------
    #: `pv-linear-pt` (3285e75dea, 4.10+).
    has_pv_linear_pt_option: bool = True
    #: `pv-l1tf` and the PV L1TF checks (06e8b622d3, XSA-273; 4.12, backported to 4.6+).
    has_pv_l1tf_option: bool = True
    #: `allowsuperpage` (removed with PV superpages by 56fff3e5e9, 4.10).
    has_allowsuperpage_option: bool = False
    #: The security fix this profile leaves out (pre-xsa-NNN profiles only).
    advisory: Advisory | None = field(default=None, compare=False)


_XEN_419 = Profile(
    name="4.19",
    description="Xen 4.19 and later (4.20, HEAD): the PAE-extended-CR3 check restored by "
                "commit a773adedbd in promote_l3_table (-ERANGE).",
    first_release="4.19.0",
)

PROFILES: dict[str, Profile] = {
    "4.17": replace(
        _XEN_419, name="4.17",
        description="Xen 4.17 as released in 4.17.x (measured on 4.17.7), and the other "
                    "releases before 4.19 that carry every fix this kit models (4.14 to 4.18): "
                    "no PAE-extended-CR3 check (deleted with 32-bit Xen by commit 218adf19 "
                    "in 4.3, restored in 4.19). It includes the 2015-2019 PV pagetable "
                    "fixes (XSA-148, 182, 185, 240, 279, 299): for an older Xen without "
                    "one of them use a pre-xsa-NNN profile.",
        pae_l3_below_4g_check=False, dom0_pv32_memf_bits32=False,
        # the first release it stands for (the description's 4.14 to 4.18), not 4.3: the
        # releases 4.3-4.13 lack some of the fixes (pre-xsa-NNN profiles model that)
        flush_cache_global_denied=Errno.EINVAL, first_release="4.14.0"),
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
#: The PV pagetable security fixes pvlab models, each with the profile that lacks it.
ADVISORIES: tuple[Advisory, ...] = (
    Advisory(148, "CVE-2015-7835", "x86: uncontrolled creation of large page mappings by PV "
             "guests",
             "A malicious PV guest administrator can escalate privilege and control the "
             "whole system: a superpage entry maps 2 MiB writable, pagetables included.",
             "fe360c90ea", "x86: guard against undue super page PTE creation", "4.7.0",
             "mod_l2_entry (fast path), L2_DISALLOW_MASK", "l2_flags",
             "950-xsa-148-l2-superpage-fast-path.yaml"),
    Advisory(182, "CVE-2016-6258", "x86: privilege escalation in PV guests (mod_l?_entry "
             "fast path)",
             "A malicious PV guest administrator can escalate their privilege to that of "
             "the host: a read-only recursive entry becomes writable without re-validation.",
             "e1bff4c2ea", "x86/pv: Remove unsafe bits from the mod_l?_entry() fastpath",
             "4.8.0", "mod_l{1..4}_entry (FASTPATH_FLAG_WHITELIST)", "linear_rw",
             "951-xsa-182-l4-fast-path-rw-recursive.yaml"),
    Advisory(185, "CVE-2016-7092", "x86: disallow L3 recursive pagetable for 32-bit PV "
             "guests",
             "A malicious 32-bit PV guest administrator can escalate their privilege to that "
             "of the host: Xen forces RW onto compat L3 entries, so a recursive L3 entry "
             "maps a live L3 writable.",
             "c844d637d9", "x86/32on64: don't allow recursive page tables from L3", "4.8.0",
             "get_page_from_l3e", "pv32_no_linear_l3",
             "952-xsa-185-pv32-recursive-l3.yaml"),
    Advisory(240, "CVE-2017-15595", "x86: unlimited recursion in linear pagetable de-typing",
             "A malicious or buggy PV guest may cause a hypervisor crash (DoS of the whole "
             "host); privilege escalation and information leaks cannot be excluded: "
             "arbitrarily long chains of linear tables make de-typing recurse without bound.",
             "6987fc7558", "x86: limit linear page table use to a single level", "4.10.0",
             "define_get_linear_pagetable (inc_linear_entries / inc_linear_uses)",
             "linear_one_level", "953-xsa-240-linear-pagetable-chain.yaml"),
    Advisory(279, "CVE-2018-19965", "x86: DoS from attempting to use INVPCID with a "
             "non-canonical address",
             "A buggy or malicious PV guest can crash the host (64-bit PV guests, on "
             "hardware with INVPCID).",
             "6c8d502887", "x86/mm: Don't perform flush after failing to update a guests L1e",
             "4.12.0", "__do_update_va_mapping", "uvmf_after_error",
             "954-xsa-279-update-va-mapping-non-canonical-flush.yaml"),
    Advisory(299, "CVE-2019-18421", "x86: unsafe handling of partially validated pagetables "
             "(restartable PV type change operations)",
             "A malicious PV guest administrator may be able to escalate their privilege to "
             "that of the host: type counts dropped or kept wrongly leave pagetables typed "
             "that nobody holds, or let a guest write in-use pagetables.",
             "3c15a2d8cc", "x86/mm: Fix nested de-validation on error", "4.13.0",
             "promote_l3_table (old_guest_table on error)", "old_guest_table_leak",
             "955-xsa-299-l3-error-leaves-l2-partial.yaml"),
)


def _pre_xsa(adv: Advisory, **fix_off: object) -> Profile:
    return replace(
        _XEN_419, name=f"pre-xsa-{adv.xsa}", advisory=adv,
        description=f"Xen 4.19 without the XSA-{adv.xsa} fix ({adv.cve}, commit {adv.commit} "
                    f"'{adv.subject}', first in {adv.fixed_in}): {adv.title}. Every other "
                    "rule is 4.19's.",
        first_release="", **fix_off)  # type: ignore[arg-type]


_BY_XSA = {a.xsa: a for a in ADVISORIES}
PROFILES.update({p.name: p for p in (
    # XSA-148: both hunks of fe360c90ea out (the fast-path hunk XSA-182 later generalised).
    _pre_xsa(_BY_XSA[148], l2_pse_disallowed=False, has_allowsuperpage_option=True,
             fastpath_checked=(None, FASTPATH_PRESENT_ONLY, None, None)),
    _pre_xsa(_BY_XSA[182], fastpath_checked=(FASTPATH_L1_PRE_XSA182, FASTPATH_PRESENT_ONLY,
                                             FASTPATH_PRESENT_ONLY, FASTPATH_PRESENT_ONLY)),
    _pre_xsa(_BY_XSA[185], pv32_linear_l3=True),
    _pre_xsa(_BY_XSA[240], linear_one_level=False),
    _pre_xsa(_BY_XSA[279], uvmf_flush_skipped_on_error=False),
    _pre_xsa(_BY_XSA[299], l3_partial_child_cleanup=False),
)})
#: Advisories pvlab cannot express, and why (docs/security.md says more).
NOT_EXPRESSIBLE = {
    286: "stale TLB entries after mod_l[234]_entry without a flush (16a20963b3, 055e1c3a3d): "
         "pvlab has no TLB or paging-structure cache, every walk reads the entries as they "
         "are now, and the fix changes no return code and no page_info state",
    309: "linear_pt_count reset when a preempted validation resumes (7473efd12f): pvlab "
         "does not model preemption or hypercall continuations",
    310: "relinquish_memory and PGT_partial under preemption (66bdc16aee): needs preemption "
         "and domain destruction, neither modelled",
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
        hint = ""
        if str(name).replace(".", "").isdigit():
            hint = (" (pvlab models the releases as 4.17, for 4.14 to 4.18, and 4.19; an "
                    "older Xen without a security fix is a pre-xsa-NNN profile)")
        raise PvlabError(f"unknown Xen profile {name!r}{hint}",
                         f"use one of {', '.join(PROFILES)} (aliases: {', '.join(ALIASES)})")
    return PROFILES[key]
