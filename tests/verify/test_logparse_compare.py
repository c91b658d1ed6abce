# SPDX-License-Identifier: MIT
"""Parsing the probe's serial log and comparing with pvlab (no QEMU needed)."""

from __future__ import annotations

import yaml

from pvlab.verify.compare import PvlabStep, compare, render
from pvlab.verify.logparse import main_line, parse_log
from pvlab.verify.plan import plan_scenario

LOG = """\
(XEN) [    3.9] Xen is booting
PVLAB: probe 32-bit dom0 on Xen 4.17 scenarios=1
PVLAB: scenario 4 begin
PVLAB: scenario 4 frame 0 mfn=0x120000
PVLAB: scenario 4 frame 1 mfn=0x7fae8
PVLAB: scenario 4 ready
(XEN) [    4.0] arch/x86/mm.c:1530:d0v0 PAE pgd must be below 4GB (0x120000 >= 0x100000)
(XEN) [    4.1] arch/x86/mm.c:3576:d0v0 Error -34 while pinning mfn 120000
PVLAB: scenario 4 step 1 rc=-34
PVLAB: scenario 4 step 2 value=0x7fae8001
PVLAB: scenario 4 end
PVLAB: done
"""

DATA = yaml.safe_load("""
name: s01
guest: {bitness: 32, vcpu0_initialised: true, privileged: true}
frames: {l3: {above: 4GiB}, l2: {below: 4GiB}}
tables: {l3: {3: {to: l2, flags: [P]}}}
steps:
  - pin: {frame: l3, level: 3}
  - expect_entry: {table: l3, index: 3, to: l2, flags: [P]}
""")


def test_parse_log_steps_frames_and_xen_lines():
    boot = parse_log(LOG)
    assert boot.done and boot.probe_bits == 32 and boot.xen_version == "4.17"
    scn = boot.scenarios[4]
    assert scn.ended and scn.frames == {0: 0x120000, 1: 0x7FAE8}
    assert scn.steps[1].rc == -34 and len(scn.steps[1].log) == 2
    assert scn.steps[2].value == 0x7FAE8001 and scn.steps[2].log == []
    assert main_line(scn.steps[1].log) == "d0v0 PAE pgd must be below 4GB (0x120000 >= 0x100000)"


def test_compare_agreement_and_disagreement():
    plan = plan_scenario(DATA, id=4)
    xen = parse_log(LOG).scenarios[4]
    rep = compare(plan, "4.19", {1: PvlabStep("ERANGE", "ERANGE"), 2: PvlabStep("held")},
                  {"l3": 0x100200, "l2": 0x2000}, xen, None)
    assert [r.verdict for r in rep.rows] == ["agree", "agree"] and rep.ok
    assert "PAE pgd must be below 4GB" in (rep.rows[0].log or "")
    rep = compare(plan, "4.17", {1: PvlabStep("ok", "ok"), 2: PvlabStep("held")},
                  {"l3": 0x100200, "l2": 0x2000}, xen, None)
    assert rep.rows[0].verdict == "DISAGREE" and not rep.ok
    assert "DISAGREE" in render([rep])


def test_unfinished_probe_is_reported_not_silently_agreed():
    plan = plan_scenario(DATA, id=4)
    cut = LOG.split("PVLAB: scenario 4 step 2")[0]
    rep = compare(plan, "4.19", {1: PvlabStep("ERANGE"), 2: PvlabStep("held")}, {},
                  parse_log(cut).scenarios[4], "the probe did not finish")
    assert not rep.ok and rep.problem
    assert rep.rows[1].verdict == "not run"
