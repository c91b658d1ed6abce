# SPDX-License-Identifier: MIT
"""The seed rule (reference §9 A, S01-S13; §10 note 1): PAE L3 below 4 GiB, -ERANGE.

Five conditions, all needed: PV32, pae_extended_cr3 off, the L3's own MFN >= 0x100000,
vCPU 0 exists, vCPU 0 is initialised. Each is flipped alone below.
"""

from __future__ import annotations

import pytest
from xenkit import HIGH, guest, pv32_l3, st

from pvlab import Xen
from pvlab.xen.invariants import audit


def _running_pv32(profile: str = "4.19", *, vcpus: int = 1, assist: bool = False):
    """A PV32 guest whose vCPU 0 was initialised on a low L3 (a running guest)."""
    g = guest(32, profile, vcpus=vcpus)
    boot, _ = pv32_l3(g)
    assists = ["pae_extended_cr3"] if assist else []
    assert g.set_vcpu_context(0, cr3=boot, vm_assists=assists).ok
    return g


def test_s01_high_l3_no_assist_initialised_is_erange_and_leaves_nothing() -> None:
    g = _running_pv32()
    l3, l2 = pv32_l3(g, above=True)
    assert l3 >= HIGH
    out = g.pin(l3, 3)
    assert (out.rc, out.errno) == (-34, "ERANGE")
    assert "PAE pgd must be below 4GB" in out.reason
    assert out.failure.check == "pae_l3_below_4g"
    assert out.failure.xen_function == "promote_l3_table"
    assert st(g, l3) == ("none", 0, False, False)
    assert st(g, l2)[1:] == (0, False, False)
    assert g.page(l3).count == 1 and g.page(l2).count == 1
    assert audit(g.xen) == []


def test_s01_on_417_pins() -> None:
    g = _running_pv32("4.17")
    l3, l2 = pv32_l3(g, above=True)
    assert g.pin(l3, 3).ok
    assert st(g, l3) == ("l3", 1, True, True)
    assert st(g, l2) == ("l2", 1, True, False) and g.page(l2).pae_xen_l2


# --- the five conditions, each flipped alone --------------------------------------
def _case(*, bitness=32, assist=False, high=True, vcpu0_exists=True, vcpu0_init=True,
          profile="4.19", mfn=None) -> str:
    xen = Xen(profile)
    g = xen.create_domain(bitness, vcpus=1 if vcpu0_exists else 0)
    if assist:
        assert g.vm_assist("enable", "pae_extended_cr3").ok
    if mfn is not None:
        l3 = g.alloc_frame(mfn=mfn)
    else:
        l3 = g.alloc_frame(above="4GiB") if high else g.alloc_frame(below="4GiB")
    l2 = g.alloc_frame()
    g.write_entry(l3, 3, l2, "P")
    if vcpu0_init:
        g.domain.vcpus[0].is_initialised = True
    return g.pin(l3, 3).result


def test_erange_all_five_conditions() -> None:
    assert _case() == "ERANGE"


@pytest.mark.parametrize("flip", [
    {"bitness": 64}, {"assist": True}, {"high": False},
    {"vcpu0_exists": False, "vcpu0_init": False}, {"vcpu0_init": False},
])
def test_erange_needs_every_condition(flip: dict) -> None:
    assert _case(**flip) == "ok"


def test_erange_boundary_is_the_l3s_own_mfn() -> None:
    assert _case(mfn=0x100000) == "ERANGE"
    assert _case(mfn=0xFFFFF) == "ok"


def test_erange_absent_in_417_and_present_in_420_alias() -> None:
    assert _case(profile="4.17") == "ok"
    assert _case(profile="4.20") == "ERANGE"


def test_s02_low_l3_every_profile() -> None:
    for p in ("4.17", "4.19"):
        g = _running_pv32(p)
        l3, _ = pv32_l3(g)
        assert g.pin(l3, 3).ok


def test_s03_assist_from_vcpu0_context() -> None:
    g = _running_pv32(assist=True)
    l3, _ = pv32_l3(g, above=True)
    assert g.pin(l3, 3).ok


def test_only_the_l3s_own_location_matters() -> None:
    g = _running_pv32()
    l2 = g.alloc_frame(above="4GiB")
    l1 = g.alloc_frame(above="4GiB")
    g.write_entry(l2, 0, l1, "P|RW")
    l3, _ = pv32_l3(g, l2=l2)
    assert g.pin(l3, 3).ok
    assert g.pin(l1, 1).ok  # a high L1/L2 never triggers the rule


def test_s04_toolstack_slack_before_and_after_max_vcpus() -> None:
    for vcpus in (0, 1):
        g = guest(32, vcpus=vcpus)
        l3, _ = pv32_l3(g, above=True)
        assert g.pin(l3, 3).ok


def test_s05_slack_covers_vcpu0s_own_cr3_then_closes() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g, above=True)
    out = g.set_vcpu_context(0, cr3=l3, vm_assists=[])
    assert out.ok
    assert g.domain.vcpus[0].is_initialised
    assert st(g, l3) == ("l3", 1, True, False)
    other, _ = pv32_l3(g, above=True)
    assert g.pin(other, 3).errno == "ERANGE"


def test_s06_vcpu_reset_reopens_slack() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g, above=True)
    assert g.set_vcpu_context(0, cr3=l3).ok
    assert g.vcpu_reset(0).ok
    assert not g.domain.vcpus[0].is_initialised
    assert st(g, l3)[1:] == (0, False, False)  # CR3 reference dropped
    other, _ = pv32_l3(g, above=True)
    assert g.pin(other, 3).ok


def test_s07_check_only_at_promotion() -> None:
    g = _running_pv32(assist=True)
    l3, _ = pv32_l3(g, above=True)
    l2u = g.alloc_frame()
    assert g.pin(l3, 3).ok
    assert g.vm_assist("disable", "pae_extended_cr3").ok
    assert g.mmu_update(l3, 1, l2u, "P").ok  # no re-check in mod_l3_entry
    assert g.unpin(l3).ok
    assert g.pin(l3, 3).errno == "ERANGE"


def test_s07_already_validated_cr3_l3_is_not_rechecked() -> None:
    g = guest(32)
    l3, _ = pv32_l3(g, above=True)
    assert g.set_vcpu_context(0, cr3=l3).ok  # validated through the slack
    assert g.pin(l3, 3).ok  # count 1 -> 2: no promotion, no check
    assert st(g, l3) == ("l3", 2, True, True)


@pytest.mark.parametrize(("profile", "result"), [("4.19", "ERANGE"), ("4.17", "ok")])
def test_s08_new_baseptr_high_l3(profile: str, result: str) -> None:
    g = _running_pv32(profile)
    boot = g.domain.vcpus[0].guest_table
    l3, _ = pv32_l3(g, above=True)
    out = g.new_baseptr(l3)
    assert out.result == result
    assert g.domain.vcpus[0].guest_table == (boot if result != "ok" else l3)
    if result != "ok":
        assert st(g, l3) == ("none", 0, False, False)
    assert audit(g.xen) == []


def test_s09_64bit_unaffected() -> None:
    g = guest(64)
    g.domain.vcpus[0].is_initialised = True
    l4, l3 = g.alloc_frame(above="4GiB"), g.alloc_frame(above="4GiB")
    g.write_entry(l4, 0, l3, "P|RW")
    assert g.pin(l3, 3).ok and g.pin(l4, 4).ok
    assert g.vm_assist("enable", "pae_extended_cr3").ok
    assert g.vm_assist("enable", "m2p_strict").ok


def test_secondary_vcpu_context_high_cr3_is_erange() -> None:
    """S12's mechanism: vCPU 1's context promotes a high L3 after vCPU 0 is up."""
    g = _running_pv32(vcpus=2)
    l3, _ = pv32_l3(g, above=True)
    out = g.set_vcpu_context(1, cr3=l3)
    assert out.errno == "ERANGE"
    assert not g.domain.vcpus[1].is_initialised
    assert g.domain.vcpus[1].guest_table is None


def test_s13_dom0_like_guest_disables_assist_then_high_pin_fails() -> None:
    g = _running_pv32(assist=True)
    assert g.vm_assist("disable", "pae_extended_cr3").ok
    l3, _ = pv32_l3(g, above=True)
    assert g.pin(l3, 3).errno == "ERANGE"


def test_s40_erange_leaves_no_trace() -> None:
    g = _running_pv32()
    l3, l2 = pv32_l3(g, above=True)
    l1 = g.alloc_frame()
    g.write_entry(l2, 0, l1, "P|RW")
    assert g.pin(l3, 3).errno == "ERANGE"
    for f in (l3, l2, l1):
        assert g.page(f).type_count == 0 and g.page(f).count == 1
    assert g.vm_assist("enable", "pae_extended_cr3").ok
    assert g.pin(l3, 3).ok
