# SPDX-License-Identifier: MIT
"""Xen's command line and the host hardware as data (`pvlab.xen.cmdline`), and the rules
that read them: pv-linear-pt, pv-l1tf (the L1TF check's two outcomes), allowsuperpage."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.errors import PvlabError
from pvlab.scenario import load_scenario, run_scenario
from pvlab.trace import DOMAIN_CRASHED, SHADOWED
from pvlab.xen import Xen
from pvlab.xen.cmdline import Hardware, XenCommandLine, effective_settings
from pvlab.xen.profiles import get_profile

CORPUS = Path(__file__).parent.parent / "scenarios"


def test_parse_and_words_round_trip() -> None:
    c = XenCommandLine.parse({"pv-linear-pt": False, "pv-l1tf": "dom0=true,domu=false",
                              "allowsuperpage": True})
    assert (c.pv_linear_pt, c.pv_l1tf_dom0, c.pv_l1tf_domu, c.allowsuperpage) == (
        False, True, False, True)
    assert c.words() == ["pv-linear-pt=false", "pv-l1tf=dom0=true,domu=false",
                         "allowsuperpage"]
    assert XenCommandLine.parse(c.given()) == c
    both = XenCommandLine.parse({"pv-l1tf": True})
    assert (both.pv_l1tf_dom0, both.pv_l1tf_domu) == (True, True)


@pytest.mark.parametrize("raw", [{"pv-linear": False}, {"pv-linear-pt": "maybe"},
                                 {"pv-l1tf": "domx=1"}])
def test_bad_options_say_the_fix(raw: dict[str, object]) -> None:
    with pytest.raises(PvlabError) as err:
        XenCommandLine.parse(raw)
    assert err.value.fix


def test_bad_hardware_is_refused() -> None:
    with pytest.raises(PvlabError, match="paddr_bits"):
        Hardware.parse({"paddr_bits": 99})
    with pytest.raises(PvlabError, match="unknown key"):
        Hardware.parse({"l1tf": True})


def test_pv_l1tf_defaults_follow_xen_boot() -> None:
    """init_speculation_mitigations: hwdom off; domU on exactly when the CPU is vulnerable."""
    p = get_profile("4.19")
    s = effective_settings(p, None, Hardware(l1tf_vulnerable=True))
    assert (s.l1tf_active(privileged=True), s.l1tf_active(privileged=False)) == (False, True)
    s = effective_settings(p, None, Hardware())
    assert not s.l1tf_active(privileged=False)
    s = effective_settings(p, XenCommandLine(pv_l1tf_dom0=True), Hardware())
    assert s.l1tf_active(privileged=True) and not s.l1tf_active(privileged=False)


def test_l1tf_safe_maddr_heuristics() -> None:
    """l1tf_calculations: the top quarter when L1D and CPUID widths agree, else 1 << bits."""
    same = Hardware(paddr_bits=46)
    assert same.l1tf_safe_maddr == 3 << 44
    assert same.is_l1tf_safe_maddr(0) and same.is_l1tf_safe_maddr(0x3ffffffff000)
    assert not same.is_l1tf_safe_maddr(0x1234000)
    wider = Hardware(paddr_bits=39, l1d_maxphysaddr=44)
    assert wider.l1tf_safe_maddr == 1 << 39


def test_options_a_version_lacks_are_ignored_and_said_so() -> None:
    s = effective_settings(get_profile("4.19"), XenCommandLine(allowsuperpage=True))
    assert not s.allow_superpage
    assert any("allowsuperpage" in why and "56fff3e5e9" in why for why in s.ignored)
    s = effective_settings(get_profile("pre-xsa-148"), XenCommandLine(allowsuperpage=True))
    assert s.allow_superpage and not s.ignored


def test_linear_disabled_is_reachable_from_a_scenario() -> None:
    run = run_scenario(load_scenario(CORPUS / "990-pv-linear-pt-off-l4-self-map.yaml"))
    fail = run.steps[0].outcome.failure
    assert run.steps[0].result == "EINVAL"
    assert fail is not None and fail.check == "linear_disabled"
    assert "pv-linear-pt=false" in fail.explanation
    assert run.ok


def test_the_same_self_map_pins_without_the_option() -> None:
    xen = Xen("4.19")
    g = xen.create_domain(64)
    l4 = g.alloc_frame()
    g.write_entry(l4, 0, l4, "P|A")
    assert g.pin(l4, 4).ok


def test_l1tf_shadows_a_domu_once() -> None:
    run = run_scenario(load_scenario(CORPUS / "993-l1tf-domu-shadowed.yaml"))
    assert [s.result for s in run.steps[:5]] == ["ok", "ok", "ok", SHADOWED, "ok"]
    assert run.guest.domain.shadow_forced
    ev = [e for e in run.steps[3].outcome.events if e.check == "l1tf"]
    assert ev and "Shadowing" in ev[0].explanation and ev[0].xen_function == "pv_l1tf_check_pte"
    assert run.ok


def test_l1tf_without_shadow_paging_crashes_the_domain_and_the_run_stops() -> None:
    run = run_scenario(load_scenario(CORPUS / "994-l1tf-no-shadow-paging-crashes-domain.yaml"))
    out = run.steps[0].outcome
    assert out.result == DOMAIN_CRASHED and not out.ok
    assert run.guest.domain.crashed
    pi = run.xen.machine.page(run.frames["l1"])
    assert pi.type_count == 0  # -EINTR: the type reference is dropped again


def test_l1tf_never_silently_ok_for_a_checked_domain() -> None:
    """A vulnerable non-present entry under an active check always has a fate."""
    xen = Xen("4.19", hardware=Hardware(l1tf_vulnerable=True))
    g = xen.create_domain(64)
    l1 = g.alloc_frame()
    assert g.pin(l1, 1).ok
    out = g.mmu_update(l1, 0, value=0x7000)
    assert out.result == SHADOWED
    quiet = Xen("4.19")  # not vulnerable: no check, a plain write
    q = quiet.create_domain(64)
    l1q = q.alloc_frame()
    q.pin(l1q, 1)
    assert q.mmu_update(l1q, 0, value=0x7000).result == "ok"


def test_unknown_cmdline_key_in_a_scenario_names_the_file() -> None:
    text = "name: x\nxen_cmdline: {pv-linear: false}\nsteps: []\n"
    with pytest.raises(PvlabError, match="xen_cmdline") as err:
        load_scenario(text, source="bad.yaml")
    assert "bad.yaml" in err.value.message and "pv-linear-pt" in (err.value.fix or "")
