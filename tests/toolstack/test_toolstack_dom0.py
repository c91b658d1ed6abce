# SPDX-License-Identifier: MIT
"""dom0_construct_pv (reference §6.5)."""

from __future__ import annotations

import pytest

from pvlab import Xen
from pvlab.toolstack import build_dom0
from pvlab.units import MFN_4GIB


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
@pytest.mark.parametrize("kind", ["pae_yes", "extcr3", "bimodal", "x86_64"])
def test_dom0_never_promotes_boot_tables(kind: str, profile: str) -> None:
    xen = Xen(profile, "8GiB", placement="high-first")
    res = build_dom0(xen, kernel=kind, l3={"above": "4GiB"})
    assert res.ok
    g = res.guest
    assert g.domain.vcpu0_initialised and g.domain.privileged
    evs = [e for _, o in res.steps for e in o.events]
    assert not any(e.check == "pae_l3_below_4g" for e in evs)
    assert res.counters().validations == 0
    root = xen.machine.page(res.root)
    assert root.pinned and root.validated and root.type_count == 2
    assert g.domain.has_vm_assist("pae_extended_cr3") is (kind in ("extcr3", "bimodal"))
    below = res.root < MFN_4GIB
    if kind == "pae_yes" and profile == "4.19":
        assert below and all(m < MFN_4GIB for m in res.p2m.values())  # MEMF_bits(32)
    else:
        assert not below


def test_dom0_compat_l3_has_four_l2s_and_unwinds_cleanly() -> None:
    xen = Xen("4.19")
    res = build_dom0(xen, kernel="extcr3")
    m = xen.machine
    l2s = [m.read_entry(res.root, i) >> 12 for i in range(4)]
    assert all(l2s) and m.page(l2s[3]).pae_xen_l2
    g = res.guest
    assert g.unpin(res.root).ok and g.vcpu_reset(0).ok
    # every reference the direct typing set up is released by the demotion
    assert all(m.page(f).type_count == 0 for f in res.p2m.values())
    assert all(m.page(f).count == 1 for f in res.p2m.values())
