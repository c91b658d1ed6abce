# SPDX-License-Identifier: MIT
"""64-bit specifics, vCPU context and vm_assist (reference §9 D, S36-S39; §3.1, §5.4)."""

from __future__ import annotations

import pytest
from xenkit import BOTH_BITNESS, guest, pv32_l3, st

from pvlab.trace import Errno
from pvlab.xen import hypercalls as hc
from pvlab.xen.invariants import audit


def test_s36_l4_xen_slots() -> None:
    g = guest(64)
    l4 = g.alloc_frame()
    g.write_entry(l4, 260, 1, "P")  # junk (a dom_io MFN) in a Xen slot: ignored
    out = g.pin(l4, 4)
    assert out.ok
    assert g.read_entry(l4, 258) == (l4 << 12) | 0x63 | (1 << 63)
    assert g.mmu_update(l4, 256, value=0).errno == "EINVAL"
    assert g.mmu_update(l4, 256, value=0).failure.check == "l4_xen_slots"
    assert audit(g.xen) == []


def test_s36_junk_in_guest_l4_slot_fails() -> None:
    g = guest(64)
    l4 = g.alloc_frame()
    g.write_entry(l4, 300, 1, "P")
    assert g.pin(l4, 4).errno == "EINVAL"


@pytest.mark.parametrize(("flags", "result"), [("P|PWT", "EINVAL"), ("P|G", "EINVAL"),
                                               ("P|NX", "ok")])
def test_s36_64bit_l3_entry_flags(flags: str, result: str) -> None:
    g = guest(64)
    l3, l2 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l3, 0, l2, flags)
    assert g.pin(l3, 3).result == result


@pytest.mark.parametrize("bitness", BOTH_BITNESS)
def test_s37_context_on_initialised_vcpu_with_other_cr3_is_eopnotsupp(bitness: int) -> None:
    g = guest(bitness)
    a, _ = pv32_l3(g) if bitness == 32 else (g.alloc_frame(), None)
    b, _ = pv32_l3(g) if bitness == 32 else (g.alloc_frame(), None)
    assert g.set_vcpu_context(0, cr3=a).ok
    out = g.set_vcpu_context(0, cr3=b)
    assert (out.rc, out.errno) == (-95, "EOPNOTSUPP")
    assert out.failure.check == "vcpu_cr3_mismatch"
    assert g.set_vcpu_context(0, cr3=a).ok  # the same CR3 is fine
    assert g.page(a).type_count == 1


def test_s37_context_vm_assist_undefined_bit_is_einval() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g)
    out = g.set_vcpu_context(0, cr3=l3, vm_assists=[6])
    assert out.errno == "EINVAL"
    assert not g.domain.vcpus[0].is_initialised and g.page(l3).type_count == 0


def test_s37_context_m2p_strict_truncated_for_pv32_valid_for_pv64() -> None:
    """A compat context's vm_assist field is 32 bits: bit 32 cannot arrive."""
    g = guest(32)
    l3, _ = pv32_l3(g)
    assert g.set_vcpu_context(0, cr3=l3, vm_assists=["m2p_strict"]).ok
    assert g.domain.vm_assist == 0
    g64 = guest(64)
    assert g64.set_vcpu_context(0, cr3=g64.alloc_frame(), vm_assists=["m2p_strict"]).ok


def test_s37_context_cr3_not_owned_is_einval() -> None:
    g = guest(64)
    other = g.xen.create_domain(64)
    out = g.set_vcpu_context(0, cr3=other.alloc_frame())
    assert out.errno == "EINVAL" and not g.domain.vcpus[0].is_initialised


def test_pv32_context_cr3_uses_extended_encoding() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g, above=True)
    assert g.cr3_for(l3) == ((l3 << 12) | (l3 >> 20)) & 0xFFFFFFFF
    out = hc.set_vcpu_context(g.xen, g.domain, 0, g.cr3_for(l3))
    assert out.ok and g.domain.vcpus[0].guest_table == l3


@pytest.mark.parametrize("bitness", BOTH_BITNESS)
def test_s38_vm_assist_errors(bitness: int) -> None:
    g = guest(bitness)
    out = g.vm_assist(0, 6)
    assert out.errno == "EINVAL" and out.failure.check == "vm_assist_valid"
    out = g.vm_assist(2, 3)
    assert out.errno == "ENOSYS" and out.failure.check == "vm_assist_cmd"
    assert g.vm_assist(0, 40).errno == "EINVAL"
    for name in ("4gb_segments", "writable_pagetables", "4gb_segments_notify",
                 "architectural_iopl", "runstate_update_flag", "pae_extended_cr3"):
        assert g.vm_assist("enable", name).ok
    assert g.domain.vm_assist == 0x3F
    assert g.vm_assist("disable", "pae_extended_cr3").ok
    assert g.domain.vm_assist == 0x37


def test_vm_assist_bad_type_checked_before_bad_cmd() -> None:
    """do_vm_assist checks the type first: bad type + bad cmd is -EINVAL, not -ENOSYS."""
    g = guest(32)
    assert g.vm_assist(2, 32).errno == "EINVAL"


def test_s39_new_baseptr_without_pinning_64bit() -> None:
    g = guest(64)
    old, l3 = g.alloc_frame(), g.alloc_frame()
    assert g.set_vcpu_context(0, cr3=old).ok
    new = g.alloc_frame()
    g.write_entry(new, 0, l3, "P|RW")
    assert g.new_baseptr(new).ok
    assert st(g, new) == ("l4", 1, True, False) and st(g, l3) == ("l3", 1, True, False)
    assert st(g, old)[1:] == (0, False, False)  # the previous base is demoted
    assert g.new_baseptr(new).ok and g.page(new).type_count == 1  # same MFN: a reload
    assert audit(g.xen) == []


def test_new_user_baseptr_64bit() -> None:
    g = guest(64)
    g.domain.vcpus[0].is_initialised = True
    u = g.alloc_frame()
    assert g.new_user_baseptr(u).ok and g.page(u).type_count == 1
    assert g.new_user_baseptr(0).ok and g.page(u).type_count == 0


def test_unknown_mmuext_and_mmu_update_commands_are_enosys() -> None:
    g = guest(64)
    f = g.alloc_frame()
    assert hc.mmuext_op(g.xen, g.domain, 99, f).errno == "ENOSYS"
    assert hc.mmu_update(g.xen, g.domain, f, 0, 0, cmd=7).errno == "ENOSYS"


def test_tlb_flush_accepted() -> None:
    assert guest(64).tlb_flush().ok


def test_errno_values_are_xens() -> None:
    assert (Errno.EPERM, Errno.EBUSY, Errno.EINVAL, Errno.ERANGE, Errno.ENOSYS,
            Errno.EOPNOTSUPP, Errno.ENOMEM, Errno.EEXIST) == (1, 16, 22, 34, 38, 95, 12, 17)


def test_new_baseptr_on_uninitialised_vcpu_then_context_does_not_leak() -> None:
    """NEW_BASEPTR acts on Xen's *current* vCPU, which is running, hence initialised;
    the model accepts it for an uninitialised vCPU, so a later vCPU context must drop
    that base's references when it replaces it."""
    g = guest(64)
    a, b = g.alloc_frame(), g.alloc_frame()
    out = g.new_baseptr(a)
    if out.ok:  # if accepted at all, the context must not leak a's reference
        g.set_vcpu_context(0, cr3=b)
    assert audit(g.xen) == []
