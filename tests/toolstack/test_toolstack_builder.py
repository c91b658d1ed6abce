# SPDX-License-Identifier: MIT
"""The PV domU builder, asserting what real Xen does (reference §6.1-6.3)."""

from __future__ import annotations

import pytest

from pvlab import PvlabError, Xen
from pvlab.toolstack import BUILD_STEPS, build_domain
from pvlab.units import MFN_4GIB
from pvlab.x86.flags import RW, US, A, D, P

KINDS = ["pae_yes", "extcr3", "legacy_extcr3", "bimodal", "x86_64"]
PLACEMENTS = ["low-first", "high-first", "random"]


def high_l3_process(res, **where):  # type: ignore[no-untyped-def]
    g = res.guest
    l3, l2 = g.alloc_frame(**where), g.alloc_frame()
    g.write_entry(l3, 3, l2, "P")
    return g.pin(l3, level=3)


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_builder_never_trips_erange(kind: str, placement: str, profile: str) -> None:
    for seed in ((0, 1, 2) if placement == "random" else (0,)):
        xen = Xen(profile, "8GiB", placement=placement, seed=seed)
        res = build_domain(xen, kernel=kind)
        assert res.ok, res.summary()
        assert res.step_names == list(BUILD_STEPS)
        assert res.guest is not None and res.guest.domain.vcpu0_initialised
        root = xen.machine.page(res.root)
        assert root.pinned and root.validated and root.type_count == 2  # pin + CR3


@pytest.mark.parametrize("kind", KINDS)
def test_builder_forced_high_top_level(kind: str) -> None:
    xen = Xen("4.19", "8GiB")
    res = build_domain(xen, kernel=kind, l3={"above": "4GiB"})
    assert res.ok
    if kind == "pae_yes":
        old, new = res.relocated
        assert old >= MFN_4GIB > new == res.root
        assert xen.machine.m2p[new] == res.layout.top.pfn
    else:
        assert res.relocated is None and res.root >= MFN_4GIB


def test_pin_happens_before_vcpu0_initialised() -> None:
    xen = Xen("4.19", "8GiB")
    res = build_domain(xen, kernel="extcr3", l3={"above": "4GiB"})
    events = res.step("pin_table").events
    slack = [e for e in events if e.check == "pae_l3_below_4g"]
    assert slack and slack[0].decision == "pass" and "not initialised" in slack[0].explanation
    assert res.guest.domain.has_vm_assist("pae_extended_cr3")


@pytest.mark.parametrize("kind,assist", [("pae_yes", False), ("extcr3", True),
                                         ("bimodal", True), ("x86_64", False)])
def test_context_carries_assist_for_extended_kernels(kind: str, assist: bool) -> None:
    res = build_domain(Xen("4.19"), kernel=kind)
    assert res.guest.domain.has_vm_assist("pae_extended_cr3") is assist


def test_layout_and_entry_flags_pae() -> None:
    xen = Xen("4.19", "8GiB")
    res = build_domain(xen, kernel="pae_yes")
    lay = res.layout
    assert lay.tables[0].level == 3 and lay.tables[0].pfn == lay.pgtables_pfn
    l3 = res.root
    l2 = res.p2m[lay.tables_at(2)[0].pfn]
    assert xen.machine.page(l2).pae_xen_l2  # the kernel's L2 sits in L3 slot 3
    e = xen.machine.read_entry(l3, 3)
    assert e >> 12 == l2 and e & 0xFFF == P | RW | A | D | US
    # L1 entries of page-table frames are read-only, others writable
    l1 = res.p2m[lay.tables_at(1)[0].pfn]
    for tab in lay.tables:
        ent = xen.machine.read_entry(l1, tab.pfn)
        assert ent & P and not ent & RW
    assert xen.machine.read_entry(l1, 0) & RW


def test_cannot_move_l3_without_low_memory() -> None:
    xen = Xen("4.19", "8GiB", placement="high-first")
    # test-only shortcut: make every frame below 4 GiB unavailable (as if Xen owned it)
    xen.machine.reserve_xen(0x100, MFN_4GIB)
    res = build_domain(xen, kernel="pae_yes")
    assert res.result == "EINVAL" and res.failed_step == "move_l3_below_4G"
    assert "cannot move L3 below 4G. extended-cr3 not supported by guest." in res.reason
    # an extended-CR3 kernel is not moved, so it builds
    assert build_domain(xen, kernel="extcr3").ok


def test_booted_guest_high_process_l3() -> None:
    """After boot, a new L3 above 4 GiB: -ERANGE on 4.19 without the assist (§6.3)."""
    for profile, want in (("4.17", "ok"), ("4.19", "ERANGE")):
        res = build_domain(Xen(profile, "8GiB"), kernel="pae_yes")
        assert high_l3_process(res, above="4GiB").result == want
        assert high_l3_process(res, below="4GiB").result == "ok"
    res = build_domain(Xen("4.19", "8GiB"), kernel="extcr3")
    assert high_l3_process(res, above="4GiB").ok
    res = build_domain(Xen("4.19", "8GiB"), kernel="pae_yes")
    assert res.guest.vm_assist("enable", "pae_extended_cr3").ok
    assert high_l3_process(res, above="4GiB").ok


def test_no_relocation_passes_under_slack_but_no_slack_profile_fails() -> None:
    res = build_domain(Xen("4.19"), kernel="pae_yes", l3={"above": "4GiB"},
                       skip=["move_l3_below_4G"])
    assert res.ok and res.root >= MFN_4GIB
    res = build_domain(Xen("no-slack"), kernel="extcr3", l3={"above": "4GiB"})
    assert res.result == "ERANGE" and res.failed_step == "pin_table"


def test_memf32_and_reordering() -> None:
    res = build_domain(Xen("4.19", placement="high-first"), kernel="pae_yes", l3_memf32=True)
    assert res.ok and res.relocated is None and res.root < MFN_4GIB
    res = build_domain(Xen("4.19"), kernel="pae_yes", order=["pin_table", "setup_pgtables",
                                                             "vcpu"])
    # pinning an empty L3 fails: slot 3 must hold an L2 (-EINVAL)
    assert res.result == "EINVAL" and res.failed_step == "pin_table"
    with pytest.raises(PvlabError):
        build_domain(Xen("4.19"), order=["nonsense"])
    res = build_domain(Xen("4.19"), kernel="pae_no")
    assert res.result == "EINVAL" and res.failed_step == "parse_image"


def test_combined_outcome_concatenates_steps() -> None:
    res = build_domain(Xen("4.19", placement="high-first"), kernel="pae_yes")
    out = res.outcome()
    assert out.ok
    heads = [e.explanation for e in out.events if e.check == "flow_step"]
    assert heads == [f"{n}: ok" for n in BUILD_STEPS]
    assert out.counters.validations == 4  # L3, L2, two L1s
