# SPDX-License-Identifier: MIT
"""Loading a vCPU context: `arch_set_info_guest`, in the order Xen checks things.

Modelled from xen/arch/x86/domain.c `arch_set_info_guest` and xen/common/domain.c
`default_initialise_vcpu` / `common_vcpu_op` / `do_vcpu_op` (RELEASE-4.17.7, RELEASE-4.20.4):

1. vCPU 0's context: its `vm_assist` must be valid for the guest (-EINVAL), checked before
   anything else, whether or not the vCPU is initialised;
2. an initialised vCPU only accepts its own CR3 again (-EOPNOTSUPP) and changes nothing;
3. vCPU 0's context *replaces* the domain's VM-assists (a context without assists turns
   them all off);
4. CR3: a frame the domain owns (-EINVAL), validated as the top-level table; a 64-bit
   kernel table gets the read-only M2P without `m2p_strict` (`fill_ro_mpt`).

A context always carries a `vm_assist` word: `None` below means "the context's field is 0".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import Errno, Outcome, Tracer
from pvlab.xen.domain import (
    Domain,
    VMASST_TYPE_pae_extended_cr3,
    vm_assist_names,
)
from pvlab.xen.hcall_base import _pae_extended_cr3_policy, _ref_mfn
from pvlab.xen.mmuext import fill_ro_mpt
from pvlab.xen.rules import ruleset

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

#: `XEN_LEGACY_MAX_VCPUS`: vCPUs from this id on have no vcpu_info in the shared info page;
#: until the guest registers one (VCPUOP_register_vcpu_info) they use `dummy_vcpu_info`.
XEN_LEGACY_MAX_VCPUS = 32


def set_vcpu_context(xen: Xen, d: Domain, vcpu: int, cr3: int, vm_assist_value: int | None = None,
                     *, op: str = "XEN_DOMCTL_setvcpucontext") -> Outcome:
    """`XEN_DOMCTL_setvcpucontext` -> `arch_set_info_guest` with CR3 (encoded as the guest's
    bitness encodes it) and the context's `vm_assist` word."""
    t = Tracer(f"{op}(vcpu {vcpu}, cr3={cr3:#x})")
    t.outcome.counters.hypercalls += 1
    v = d.vcpu(vcpu)
    if v is None:
        return t.finish(xen.type_system.fail(t, ruleset(d), "vcpu_missing",
                                    f"vCPU {vcpu} does not exist"))
    return t.finish(arch_set_info_guest(xen, d, vcpu, cr3, vm_assist_value, t))


def arch_set_info_guest(xen: Xen, d: Domain, vcpu: int, cr3: int, vm_assist_value: int | None,
                        t: Tracer) -> int:
    ts = xen.type_system
    rules = ruleset(d)
    v = d.vcpu(vcpu)
    assert v is not None
    fn = "arch_set_info_guest"
    mfn = d.abi.mfn_of_cr3(cr3)
    if d.abi.extended_cr3_codec:
        t.event("cr3", "info", f"CR3 {cr3:#x} decodes to MFN {mfn:#x} (xen_cr3_to_pfn, "
                "extended-CR3 rotate)", fn)
    assists = vm_assist_value or 0
    if vcpu == 0:
        width = d.abi.context_vm_assist_bits
        if assists >> width:
            # The compat vcpu_guest_context's vm_assist is an unsigned long: 32 bits.
            truncated = assists & ((1 << width) - 1)
            t.event("vm_assist", "info", f"a {d.abi.bitness}-bit guest's context holds vm_assist "
                    f"in {width} bits: {assists:#x} arrives as {truncated:#x}",
                    "arch_set_info_guest (compat context)")
            assists = truncated
        pae_bit = 1 << VMASST_TYPE_pae_extended_cr3
        if assists & pae_bit:
            rc, ignored = _pae_extended_cr3_policy(xen, d, t)
            if rc:
                return rc
            if ignored:
                assists &= ~pae_bit
                t.event("vm_assist", "info", f"profile {xen.profile.name}: pae_extended_cr3 "
                        "ignored for a 64-bit guest", fn)
        if assists & ~d.abi.vm_assist_valid_mask:
            return ts.fail(t, rules, "vm_assist_valid",
                           f"vCPU 0's context: vm_assist {assists:#x} has bits invalid for a "
                           f"{d.bitness}-bit guest (checked before the vCPU's state)")
    if v.is_initialised:
        user_mismatch = d.abi.has_user_baseptr and v.guest_table_user is not None
        if v.guest_table != mfn or user_mismatch:
            what = (f"a different CR3 ({mfn:#x})" if v.guest_table != mfn else
                    "a context without its user base pointer")
            return ts.fail(t, rules, "vcpu_cr3_mismatch",
                           f"vCPU {vcpu} is initialised with MFN {(v.guest_table or 0):#x}; "
                           f"{what} cannot be loaded", mfn=mfn)
        t.event("vcpu", "pass", "same CR3: only the registers are reloaded", fn)
        return 0
    if vcpu == 0:
        old = d.vm_assist
        d.vm_assist = assists
        change = "" if old == assists else \
            f" (were: {', '.join(vm_assist_names(old)) or 'none'})"
        t.event("vm_assist", "info", "vCPU 0's context replaces the domain's VM-assists: "
                f"{', '.join(vm_assist_names(assists)) or 'none'}{change}", fn)
    rc = _ref_mfn(xen, mfn, d, t, "CR3")
    if rc:
        return rc
    rc = ts.get_page_type(t, mfn, d.abi.top_type, d)
    if rc:
        ts.put_page(mfn)
        return rc
    if d.abi.has_user_baseptr:  # a 64-bit guest's L4 (the compat L4 is Xen's own)
        fill_ro_mpt(xen, d, mfn, t)
    old_base = v.guest_table
    v.guest_table = mfn
    v.is_initialised = True
    if old_base is not None:
        # Only reachable in the emulator (a guest's NEW_BASEPTR before its vCPU ran):
        # the new context replaces that base, whose references are dropped.
        ts.put_page_and_type(t, old_base)
        t.event("vcpu", "info", f"the previous base MFN {old_base:#x} is released", fn,
                mfn=old_base)
    t.event("vcpu", "pass", f"vCPU {vcpu} initialised with CR3 MFN {mfn:#x}", fn, mfn=mfn)
    return 0


def vcpu_op_initialise(xen: Xen, d: Domain, vcpu: int, cr3: int) -> Outcome:
    """`VCPUOP_initialise` from the guest itself (`do_vcpu_op` -> `common_vcpu_op` ->
    `default_initialise_vcpu`): -ENOENT for a vCPU the domain does not have, -EINVAL while
    the vCPU has no vcpu_info (ids from 32 on, `dummy_vcpu_info`), -EEXIST on an
    initialised vCPU, else `arch_set_info_guest`."""
    t = Tracer(f"VCPUOP_initialise(vcpu {vcpu}, cr3={cr3:#x})")
    t.outcome.counters.hypercalls += 1
    v = d.vcpu(vcpu)
    if v is None:
        t.event("vcpu", "fail", f"{d.label} has no vCPU {vcpu}", "do_vcpu_op (domain_vcpu)")
        return t.finish(-int(Errno.ENOENT))
    if vcpu >= XEN_LEGACY_MAX_VCPUS:
        t.event("vcpu", "fail", f"vCPU {vcpu} has no vcpu_info (ids from "
                f"{XEN_LEGACY_MAX_VCPUS} on need VCPUOP_register_vcpu_info first)",
                "common_vcpu_op (dummy_vcpu_info)")
        return t.finish(-int(Errno.EINVAL))
    if v.is_initialised:
        t.event("vcpu", "fail", f"vCPU {vcpu} is already initialised", "default_initialise_vcpu")
        return t.finish(-int(Errno.EEXIST))
    return t.finish(arch_set_info_guest(xen, d, vcpu, cr3, None, t))
