# SPDX-License-Identifier: MIT
"""A Xen panic in the serial log: parsed, attributed to the step that ran, compared with
pvlab's predicted crash, and the boot's later scenarios are booted again (no QEMU needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

import pvlab.verify.runner as runner
from pvlab.verify.compare import PvlabStep, compare, render
from pvlab.verify.logparse import parse_log
from pvlab.verify.plan import plan_scenario

PANIC_LOG = """\
PVLAB: probe 64-bit dom0 on Xen 4.17 scenarios=2
PVLAB: scenario 1 begin
PVLAB: scenario 1 domid 1
PVLAB: scenario 1 frame 0 mfn=0x7fa00
PVLAB: scenario 1 ready
(XEN) [   5.0] arch/x86/mm.c:1474:d0v0 Failure -16 in promote_l2_table: slot 0x1
(XEN) [   5.1] Assertion 'unreachable' failed at arch/x86/mm.c:1813
(XEN) [   5.1] ----[ Xen-4.17.5  x86_64  debug=y  Not tainted ]----
(XEN) [   5.1] Xen call trace:
(XEN) [   5.1]    [<ffff82d0403435f3>] R arch/x86/mm.c#_get_page_type+0x18c8/0x1aae
(XEN) [   5.1]    [<ffff82d04034ae19>] F do_mmuext_op+0x812/0x16da
(XEN) [   5.1]
(XEN) [   5.1] ****************************************
(XEN) [   5.1] Panic on CPU 0:
(XEN) [   5.1] Assertion 'unreachable' failed at arch/x86/mm.c:1813
(XEN) [   5.1] ****************************************
(XEN) [   5.1] Reboot in five seconds...
"""

DATA = yaml.safe_load("""
name: crash
xen_build: debug
guest: {bitness: 64}
frames: {l4: {}}
steps:
  - expect_page: {frame: l4, type: none}
  - pin: {frame: l4, level: 4}
    expect: crash
""")


def test_the_panic_is_parsed_with_its_assertion_trace_and_place() -> None:
    boot = parse_log(PANIC_LOG)
    assert not boot.done and boot.panic is not None
    p = boot.panic
    assert p.message == "Assertion 'unreachable' failed at arch/x86/mm.c:1813"
    assert p.assertion == "unreachable" and p.scenario == 1 and p.after_step == 0
    assert len(p.trace) == 2 and p.function == "_get_page_type"


def test_the_crashed_step_agrees_with_pvlabs_crash() -> None:
    plan = plan_scenario(DATA, id=1)
    boot = parse_log(PANIC_LOG)
    assert boot.panic is not None
    xs = runner._crashed(plan, boot.scenarios.get(1), boot.panic)
    rep = compare(plan, "4.17", {1: PvlabStep("held"), 2: PvlabStep("crash", "crash")}, {},
                  xs, None)
    assert [r.verdict for r in rep.rows] == ["skipped", "agree"] and rep.ok
    assert rep.crash is boot.panic and "XEN PANIC" in render([rep])


def test_a_release_only_scenario_is_skipped_on_a_debug_build() -> None:
    data = dict(DATA, xen_build="release")
    assert "release build" in (plan_scenario(data, id=1, xen_build="debug").skip or "")
    assert plan_scenario(data, id=1, xen_build="release").skip is None


def test_verify_boots_again_after_a_panic(monkeypatch, tmp_path: Path) -> None:
    crash = Path(__file__).resolve().parents[1] / "scenarios" / \
        "816-pv64-partial-l2-debug-panic.yaml"
    after = tmp_path / "after.yaml"
    after.write_text(yaml.safe_dump({"name": "after", "guest": {"bitness": 64},
                                     "frames": {"l1": {}},
                                     "steps": [{"pin": {"frame": "l1", "level": 1},
                                                "expect": "ok"}]}))
    second = """\
PVLAB: probe 64-bit dom0 on Xen 4.17 scenarios=1
PVLAB: scenario 2 begin
PVLAB: scenario 2 ready
PVLAB: scenario 2 step 1 rc=0
PVLAB: scenario 2 end
PVLAB: done
"""
    boots: list[list[int]] = []

    def fake_build(plans, bits, workdir):  # type: ignore[no-untyped-def]
        boots.append([p.id for p in plans])
        return workdir

    logs = iter([PANIC_LOG, second])
    monkeypatch.setattr(runner, "build_probe", fake_build)
    monkeypatch.setattr(runner, "boot", lambda xen, probe, timeout: next(logs))
    reports = runner.verify([crash, after], "4.17", tmp_path / "xen", xen_build="debug")
    assert boots == [[1, 2], [2]]
    assert [r.verdict for rep in reports for r in rep.rows] == ["agree", "agree"]
    assert reports[0].rows[0].xen == "crash" and reports[0].crash is not None
    assert all(rep.ok for rep in reports)
