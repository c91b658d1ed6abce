# SPDX-License-Identifier: MIT
"""The mmuext_op command table, the vCPU-context order and partial validation (issue 14)."""

from __future__ import annotations

import pytest
from xenkit import init_vcpu0

from pvlab import Xen
from pvlab.xen import hypercalls as hc
from pvlab.xen.invariants import audit
from pvlab.xen.mmuext import COMMANDS, RO_MPT_L4_SLOT


def test_the_table_has_one_entry_per_xen_command_number() -> None:
    # public/xen.h: 0-13 and 15-20; 14 was never assigned.
    assert sorted(COMMANDS) == [n for n in range(21) if n != 14]
    for number, cmd in COMMANDS.items():
        assert cmd.number == number and cmd.name.startswith("MMUEXT_") and cmd.models
    g = Xen("4.19").create_domain(64, privileged=True)
    assert g.mmuext_op(14).result == "ENOSYS"
    assert g.mmuext_op(21).result == "ENOSYS"


@pytest.mark.parametrize(("profile", "global_rc"), [("4.17", "EINVAL"), ("4.19", "EACCES")])
def test_cache_flush_permission_and_the_release_dependent_errno(profile: str,
                                                                global_rc: str) -> None:
    domu = Xen(profile).create_domain(64)
    assert domu.mmuext_op(hc.MMUEXT_FLUSH_CACHE).result == "EACCES"
    assert domu.mmuext_op(hc.MMUEXT_FLUSH_CACHE_GLOBAL).result == global_rc
    dom0 = Xen(profile).create_domain(64, privileged=True)
    assert dom0.mmuext_op(hc.MMUEXT_FLUSH_CACHE).ok
    assert dom0.mmuext_op(hc.MMUEXT_FLUSH_CACHE_GLOBAL).ok


def test_clear_and_copy_page_need_a_writable_type_on_the_destination() -> None:
    xen = Xen("4.19")
    g = xen.create_domain(64)
    a, b, l1 = g.alloc_frame(), g.alloc_frame(), g.alloc_frame()
    xen.machine.write_entry(a, 7, 0xABC)
    assert hc.mmuext_op(xen, g.domain, hc.MMUEXT_COPY_PAGE, b, src_mfn=a).ok
    assert xen.machine.read_entry(b, 7) == 0xABC
    assert g.mmuext_op(hc.MMUEXT_CLEAR_PAGE, a).ok
    assert xen.machine.read_entry(a, 7) == 0
    assert g.pin(l1, 1).ok
    out = g.mmuext_op(hc.MMUEXT_CLEAR_PAGE, l1)
    assert out.result == "EINVAL" and "Error clearing mfn" in out.reason
    assert hc.mmuext_op(xen, g.domain, hc.MMUEXT_COPY_PAGE, l1, src_mfn=b).result == "EINVAL"
    assert audit(xen) == []


def test_set_ldt_argument_checks() -> None:
    g = Xen("4.19").create_domain(64)
    assert hc.mmuext_op(g.xen, g.domain, hc.MMUEXT_SET_LDT).ok
    assert hc.mmuext_op(g.xen, g.domain, hc.MMUEXT_SET_LDT, nr_ents=8193).result == "EINVAL"
    assert hc.mmuext_op(g.xen, g.domain, hc.MMUEXT_SET_LDT, nr_ents=1,
                        linear_addr=0x1008).result == "EINVAL"
    assert hc.mmuext_op(g.xen, g.domain, hc.MMUEXT_SET_LDT, nr_ents=1,
                        linear_addr=0x1000).ok


def test_user_baseptr_with_m2p_strict_zaps_the_ro_mpt_slot() -> None:
    g = Xen("4.19").create_domain(64, vm_assists=["m2p_strict"])
    init_vcpu0(g)
    u = g.alloc_frame()
    assert g.pin(u, 4).ok
    assert g.read_entry(u, RO_MPT_L4_SLOT) != 0  # init_xen_l4_slots(ro_mpt = m2p_strict)
    assert g.new_user_baseptr(u).ok
    assert g.read_entry(u, RO_MPT_L4_SLOT) == 0


def _partial_tree(build: str) -> tuple[Xen, dict[str, int], object]:
    xen = Xen("4.17", build=build)
    g = xen.create_domain(64)
    f = {n: g.alloc_frame() for n in ("l4", "l3", "l2", "l1a", "l1b")}
    g.write_entry(f["l4"], 1, f["l3"], "P|RW")
    g.write_entry(f["l3"], 0, f["l2"], "P|RW")
    g.write_entry(f["l2"], 0, f["l1a"], "P|RW")
    g.write_entry(f["l2"], 1, f["l1b"], "P|RW")
    g.write_entry(f["l1b"], 0, f["l1b"], "P|RW")
    return xen, f, g.pin(f["l4"], 4)


def test_debug_build_panics_in_promote_l4_table() -> None:
    _xen, _f, out = _partial_tree("debug")
    assert out.crashed and out.result == "crash"  # type: ignore[attr-defined]
    assert out.crash == "Assertion 'unreachable' failed in promote_l4_table"  # type: ignore[attr-defined]


def test_release_build_leaks_the_partial_l2_and_the_audit_accounts_for_it() -> None:
    xen, f, out = _partial_tree("release")
    assert out.result == "EBUSY"  # type: ignore[attr-defined]
    l2, l1a = xen.machine.page(f["l2"]), xen.machine.page(f["l1a"])
    assert (l2.type_name, l2.type_count, l2.validated, l2.partial) == ("l2", 1, False, True)
    assert (l1a.type_name, l1a.type_count, l1a.validated) == ("l1", 1, True)
    assert xen.machine.page(f["l4"]).type_count == 0
    assert xen.machine.page(f["l3"]).type_count == 0
    assert audit(xen) == []


def test_a_transferred_partial_table_is_cleaned_up_with_its_parent() -> None:
    # The L3 fails at slot 1 on the L2 of that very slot: Xen transfers the cleanup (no
    # assertion), and after the hypercall nothing is left.
    xen = Xen("4.17")
    g = xen.create_domain(64)
    l3, l2, l1a, l1b = (g.alloc_frame() for _ in range(4))
    g.write_entry(l3, 1, l2, "P|RW")
    g.write_entry(l2, 0, l1a, "P|RW")
    g.write_entry(l2, 1, l1b, "P|RW")
    g.write_entry(l1b, 0, l1b, "P|RW")
    out = g.pin(l3, 3)
    assert out.result == "EBUSY" and not out.crashed
    assert [xen.machine.page(m).type_count for m in (l3, l2, l1a, l1b)] == [0, 0, 0, 0]
    assert audit(xen) == []


def test_vcpu0_context_assists_are_checked_before_the_initialised_state() -> None:
    xen = Xen("4.19")
    g = xen.create_domain(32)
    l3 = g.alloc_frame(below="4GiB")
    g.write_entry(l3, 3, g.alloc_frame(), "P")
    assert g.set_vcpu_context(0, cr3=l3, vm_assists=["pae_extended_cr3"]).ok
    assert g.set_vcpu_context(0, cr3=l3, vm_assists=[7]).result == "EINVAL"
    assert g.set_vcpu_context(0, cr3=l3, vm_assists=["pae_extended_cr3"]).ok
    assert g.vcpu_reset(0).ok
    assert g.set_vcpu_context(0, cr3=l3).ok  # a context without assists: they are gone
    assert g.domain.vm_assist == 0


def test_vcpu_op_initialise_enoent_and_vcpu_info() -> None:
    g = Xen("4.19").create_domain(64, vcpus=34)
    l4 = g.alloc_frame()
    assert g.vcpu_op_initialise(40, cr3=l4).result == "ENOENT"
    assert g.vcpu_op_initialise(33, cr3=l4).result == "EINVAL"
    assert g.vcpu_op_initialise(1, cr3=l4).ok
    assert g.vcpu_op_initialise(1, cr3=l4).result == "EEXIST"
