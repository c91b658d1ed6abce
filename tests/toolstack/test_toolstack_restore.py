# SPDX-License-Identifier: MIT
"""Migration restore (reference §6.6)."""

from __future__ import annotations

import pytest

from pvlab import Xen
from pvlab.toolstack import restore_domain
from pvlab.units import MFN_4GIB

HIGH = {"above": "4GiB"}


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
@pytest.mark.parametrize("fmt", ["v2", "legacy"])
def test_extended_guest_never_trips(profile: str, fmt: str) -> None:
    res = restore_domain(Xen(profile), format=fmt, vcpus=3, processes=2, extended_cr3=True,
                         l3s=HIGH)
    assert res.ok
    assert res.guest.domain.has_vm_assist("pae_extended_cr3")


def test_v2_non_extended_fails_at_second_vcpu_on_419() -> None:
    res = restore_domain(Xen("4.19"), vcpus=2, l3s=HIGH)
    assert res.result == "ERANGE" and res.failed_step == "update_vcpu_context"
    assert res.info["failed_vcpu"] == 1
    assert res.guest.domain.vcpu0_initialised  # vCPU 0's own L3 passed under the slack
    assert res.root_mfn(0) >= MFN_4GIB
    assert restore_domain(Xen("4.17"), vcpus=2, l3s=HIGH).ok


def test_v2_non_extended_fails_at_first_high_pin_on_419() -> None:
    res = restore_domain(Xen("4.19"), vcpus=1, processes=2, l3s=HIGH)
    assert res.result == "ERANGE" and res.failed_step == "pin_pagetables"
    assert res.info["failed_pfn"] == res.image.roots[1]  # the first L3 that is not vCPU 0's
    assert restore_domain(Xen("4.17"), vcpus=1, processes=2, l3s=HIGH).ok


def test_v2_low_l3s_and_single_vcpu_pass() -> None:
    assert restore_domain(Xen("4.19"), vcpus=2, processes=1, l3s={"below": "4GiB"}).ok
    assert restore_domain(Xen("4.19"), vcpus=1, l3s=HIGH).ok


def test_legacy_relocates_and_pins_first() -> None:
    res = restore_domain(Xen("4.19"), format="legacy", vcpus=2, processes=1, l3s=HIGH)
    assert res.ok
    assert len(res.relocated) == 3
    assert all(res.root_mfn(i) < MFN_4GIB for i in range(3))
    assert res.step_names.index("pin_pagetables") < res.step_names.index("update_vcpu_context")
    # the legacy order without the relocation still passes: pins run under the slack
    assert restore_domain(Xen("4.19"), format="legacy", vcpus=2, processes=1, l3s=HIGH,
                          skip=["relocate_l3s"]).ok


def test_64bit_restore() -> None:
    assert restore_domain(Xen("4.19"), bitness=64, vcpus=2, processes=1, l3s=HIGH).ok
