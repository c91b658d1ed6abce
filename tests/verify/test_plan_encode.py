# SPDX-License-Identifier: MIT
"""The replay plan and its C encoding (no QEMU needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pvlab.verify.compare import xen_result
from pvlab.verify.encode import encode_plans
from pvlab.verify.logparse import parse_log
from pvlab.verify.plan import (
    FK_EXACT,
    FK_HIGH,
    FK_LOW,
    FK_OTHER_HIGH,
    OP_PIN,
    OP_READ,
    OP_VCPU_INIT,
    OP_VCPU_OP_INIT,
    OP_VCPU_RESET,
    SKIP_AGENT_VCPU0,
    SKIP_GUEST_ONLY,
    SKIP_PAGE_INFO,
    plan_scenario,
)
from pvlab.verify.replay import (
    DS_AGENT,
    DS_DOM0,
    DSEL,
    FK_DOM0_HIGH,
    OP_DESTROY,
    OP_GRANT,
    OP_GRANT_MAP,
    OP_GRANT_READ,
    OP_GRANT_UNMAP,
    OP_MMU_UPDATE,
    OP_UNPIN,
)
from pvlab.verify.xenbuild import build_lacks, oracle_dir

SEED = yaml.safe_load("""
name: seed
guest: {bitness: 32, vm_assists: [], vcpu0_initialised: false}
frames:
  l3: {above: 4GiB}
  l2: {}
  lo: {below: 4GiB}
tables:
  l3:
    3: {to: l2, flags: [P]}
steps:
  - pin: {frame: l3, level: 3}
    expect: ok
  - vcpu_initialise: {vcpu: 0, cr3: l3}
  - expect_page: {frame: l3, type: l3}
  - pin: {frame: lo, level: 3}
  - vm_assist: {enable: pae_extended_cr3}
  - pin: {frame: l3, level: 3}
""")


def test_toolstack_plan_frames_and_steps():
    plan = plan_scenario(SEED, id=7, pvlab_frames={"l2": 0x1234})
    assert plan.mode == "toolstack" and plan.boot == 64
    kinds = {f.name: (f.kind, f.mfn) for f in plan.frames}
    # pvlab put l2 below 4 GiB, so the replay asks Xen for a frame below 4 GiB too
    assert kinds == {"l3": (FK_HIGH, 0), "l2": (FK_LOW, 32), "lo": (FK_LOW, 32)}
    assert [(e.frame, e.index, e.target, e.value) for e in plan.entries] == [(0, 3, 1, 1)]
    steps = {s.index: s for s in plan.steps}
    assert steps[1].code == OP_PIN and steps[1].arg == 3 and steps[1].skip is None
    assert steps[2].code == OP_VCPU_INIT
    assert steps[3].skip == SKIP_PAGE_INFO            # page_info is not visible to a guest
    assert steps[4].skip is None                       # a skipped expect_page changes nothing
    assert steps[5].skip == SKIP_GUEST_ONLY           # vm_assist: only the guest can issue it
    assert steps[6].skip is not None and "step 5" in steps[6].skip   # depends on step 5


def test_running_unprivileged_guest_runs_in_the_agent_domu():
    data = yaml.safe_load("""
name: l1
guest: {bitness: 64, vcpu0_initialised: true}
frames: {l1: {}, io: {owner: io, mfn: 0x1}, o: {owner: other}}
tables: {l1: {0: {to: io, flags: [P]}}}
steps:
  - pin: {frame: l1, level: 1}
  - expect_entry: {table: l1, index: 0, to: io}
  - vm_assist: {enable: m2p_strict}
""")
    plan = plan_scenario(data, id=1)
    # the agent domU (unprivileged) issues the guest's steps; dom0 reads the entry back
    assert plan.mode == "agent" and plan.boot == 64 and not plan.notes
    assert [f.kind for f in plan.frames] == [FK_HIGH, FK_EXACT, FK_OTHER_HIGH]
    assert plan.steps[1].code == OP_READ
    assert [s.by for s in plan.steps] == ["domU", "dom0", "domU"]
    assert plan.steps[2].skip is None and "/* vm_assist */" in encode_plans([plan])
    assert "{ 1, 3, 64, 1," in encode_plans([plan])   # id 1, MODE_AGENT = 3
    data["guest"]["privileged"] = True                  # a privileged guest: dom0 is the guest
    plan = plan_scenario(data, id=1)
    assert plan.mode == "dom0" and {s.by for s in plan.steps} == {"dom0"}


def test_exact_mfn_is_replaced_by_a_frame_on_the_same_side_and_noted():
    data = yaml.safe_load("""
name: x
guest: {bitness: 32, vcpu0_initialised: true, privileged: true}
frames: {at: {mfn: 0x100000}, below: {mfn: 0xfffff}}
steps: [{pin: {frame: at, level: 3}}]
""")
    plan = plan_scenario(data, id=1)
    assert [f.kind for f in plan.frames] == [FK_HIGH, FK_LOW]
    assert len(plan.notes) == 2 and "0x100000" in plan.notes[0]


def test_raw_machine_frame_entries_are_skipped_with_reason():
    data = yaml.safe_load("""
name: raw
guest: {bitness: 64, vcpu0_initialised: true}
frames: {l1: {}}
steps:
  - pin: {frame: l1, level: 1}
  - mmu_update: {table: l1, index: 0, mfn: 0x300000, flags: [P]}
  - unpin: {frame: l1}
""")
    plan = plan_scenario(data, id=1)
    assert plan.steps[0].skip is None
    assert "0x300000" in plan.steps[1].skip
    assert "follows step 2" in plan.steps[2].skip


def test_assists_on_a_domain_being_built_skip_the_scenario():
    data = dict(SEED, guest={"bitness": 32, "vm_assists": ["pae_extended_cr3"]})
    plan = plan_scenario(data, id=1)
    assert plan.skip and all(s.skip == plan.skip for s in plan.steps)
    assert "PL_NSCN 0" in encode_plans([plan])


def test_encoding_lists_only_replayed_steps():
    plan = plan_scenario(SEED, id=3)
    text = encode_plans([plan])
    assert "#define PL_NSCN 1" in text
    assert "{ 3, 1, 32, 1, 0x0ULL, 3, 0, 1, 0, 3, 0 }" in text   # id, toolstack, 32-bit, ...
    assert "{ 0, 3, 2, 0, 0x1ULL }," in text                     # l3[3] = frame 1 | P
    assert "/* vm_assist */" not in text and text.count("/* pin */") == 2


def test_agent_steps_and_what_the_patched_build_lacks(tmp_path):
    data = yaml.safe_load("""
name: a
guest: {bitness: 32, vcpus: 2, vcpu0_initialised: true}
frames: {l3: {below: 4GiB}, l2: {}}
tables: {l3: {3: {to: l2, flags: [P]}}}
steps:
  - vcpu_op_initialise: {vcpu: 1, cr3: l3}
  - vcpu_reset: {vcpu: 1}
  - mmuext: {cmd: 12}
  - mmuext: {cmd: 18}
  - vcpu_reset: {vcpu: 0}
""")
    plan = plan_scenario(data, id=1)
    assert plan.mode == "agent"
    assert [(s.code, s.by) for s in plan.steps[:2]] == [(OP_VCPU_OP_INIT, "domU"),
                                                       (OP_VCPU_RESET, "dom0")]
    assert plan.steps[4].skip == SKIP_AGENT_VCPU0 and plan.steps[4].by == ""
    assert plan.steps[2].skip is None and plan.steps[3].skip is None
    # the project's "4.19" build is 4.17 plus one check: the flush's 4.19 answer is not in it
    xen = tmp_path / "xen-4.17.5+72-g01140da4e8-1-4.19" / "xen"
    lacks = build_lacks(xen, "4.19")
    assert "flush_cache_global_denied" in lacks and "pae_l3_below_4g_check" not in lacks
    assert build_lacks(xen, "4.17") == frozenset()
    assert build_lacks(tmp_path / "xen" / "xen", "4.19") == frozenset()   # any other build
    plan = plan_scenario(data, id=1, lacks=lacks)
    assert "bbaea9878b" in (plan.steps[3].skip or "") and plan.steps[2].skip is None


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None
                    or not list(Path("/usr/lib/gcc").glob("*/*/32")),
                    reason="gcc, make or gcc-multilib absent")
def test_the_64_bit_probe_embeds_both_agent_images(tmp_path):
    (tmp_path / "plan.h").write_text(encode_plans([]))
    subprocess.run(["make", "-s", "-C", str(oracle_dir()), f"PLANDIR={tmp_path}",
                    f"OUT={tmp_path}", "probe64"], check=True, capture_output=True)
    probe = (tmp_path / "probe64").read_bytes()
    for bits, cls in ((64, 2), (32, 1)):
        agent = (tmp_path / f"agent{bits}").read_bytes()
        assert agent[4] == cls and agent in probe        # the ELF image itself, byte for byte
        assert b"hypercall_page" not in agent[:64]        # (sanity: it is an ELF, not a stub)


ISSUE_EXAMPLE = yaml.safe_load("""
name: two
domains:
  dom0: {bitness: 64, privileged: true, vcpu0_initialised: true}
  guest: {bitness: 32, vm_assists: [], vcpu0_initialised: true}
frames:
  g_data: {owner: guest}
  d_l1: {owner: dom0}
steps:
  - pin: {as: dom0, frame: d_l1, level: 1}
  - grant: {as: guest, ref: 8, frame: g_data, to: dom0, readonly: false}
  - grant_map: {as: dom0, from: guest, ref: 8, pte: {table: d_l1, index: 5}, handle: h}
  - pin: {as: guest, frame: g_data, level: 1}
  - mmu_update: {as: dom0, foreign: guest, table: d_l1, index: 6, to: g_data, flags: [P]}
  - grant_unmap: {as: dom0, handle: h}
  - grant_unmap: {as: dom0, handle: 0}
  - destroy_domain: {domain: guest}
  - pin: {frame: g_data, level: 1}
  - mmu_update: {as: dom0, table: d_l1, index: 6, value: 0}
  - vm_assist: {as: dom0, enable: m2p_strict}
""")


def test_multi_domain_plan_the_probe_is_dom0_the_agent_the_guest():
    plan = plan_scenario(ISSUE_EXAMPLE, id=4)
    assert plan.mode == "agent" and plan.bitness == 32 and plan.boot == 64
    assert [f.kind for f in plan.frames] == [FK_HIGH, FK_DOM0_HIGH]
    by = [(s.op, s.code, s.by) for s in plan.steps]
    assert by[:8] == [
        ("pin", OP_PIN, "dom0"), ("grant", OP_GRANT, "domU"),
        ("grant_map", OP_GRANT_MAP, "dom0"), ("pin", OP_PIN, "domU"),
        ("mmu_update", OP_MMU_UPDATE, "dom0"), ("grant_unmap", OP_GRANT_UNMAP, "dom0"),
        ("grant_unmap", OP_GRANT_UNMAP, "dom0"), ("destroy_domain", OP_DESTROY, "dom0")]
    s = plan.steps
    assert s[1].value == 1 and s[1].aux == DSEL | DS_DOM0 and s[1].arg == 8   # permit_access
    assert s[2].value == (2 | 16) | (5 * 8) << 16 and s[2].aux == DSEL | DS_AGENT
    assert s[2].target == 0 and s[5].target == 0        # the name "h": slot 1 (plan.h: + 1)
    assert s[6].target is None and s[6].arg == 0         # a handle number as Xen numbers it
    assert s[4].aux == DSEL | DS_AGENT                  # foreign: the guest is pg_owner
    assert "destroyed at step 8" in (s[8].skip or "")    # its issuer is gone: not poisoning
    assert s[9].skip is None and s[9].by == "dom0"
    assert "probe itself" in (s[10].skip or "")          # dom0's own assists stay the probe's
    assert plan.dom0_maps
    text = encode_plans([plan])
    assert "{ 3, 19, 1, 8, 1, 0x40000001U, 0x280012ULL, 1, 0 }, /* grant_map */" in text


def test_multi_domain_shapes_the_probe_cannot_play_are_skipped():
    three = dict(ISSUE_EXAMPLE, domains={"dom0": {"privileged": True, "vcpu0_initialised": True},
                                         "a": {"vcpu0_initialised": True},
                                         "b": {"vcpu0_initialised": True}})
    assert "2 unprivileged" in (plan_scenario(three, id=1).skip or "")
    built = dict(ISSUE_EXAMPLE, domains={"dom0": {"privileged": True, "vcpu0_initialised": True},
                                         "guest": {"vcpu0_initialised": False}})
    assert "not initialised" in (plan_scenario(built, id=1).skip or "")
    va = dict(ISSUE_EXAMPLE, steps=[{"grant_map": {"as": "dom0", "from": "guest", "ref": 1,
                                                   "va": 0x1000}}])
    assert "linear address" in (plan_scenario(va, id=1).steps[0].skip or "")


def test_hardware_the_qemu_machine_lacks_is_skipped():
    base = {"name": "h", "guest": {"bitness": 64, "vcpu0_initialised": True},
            "frames": {"l1": {}}, "steps": [{"pin": {"frame": "l1", "level": 1}}]}
    assert plan_scenario(base, id=1).skip is None
    vulnerable = dict(base, hardware={"l1tf_vulnerable": True})
    assert "L1TF" in (plan_scenario(vulnerable, id=1).skip or "")       # a domU: on by default
    forced = dict(vulnerable, xen_cmdline={"pv-l1tf": "domu=true"})
    assert plan_scenario(forced, id=1).skip is None                    # forced on, on QEMU too
    dom0 = dict(vulnerable, guest={"bitness": 64, "vcpu0_initialised": True, "privileged": True})
    assert plan_scenario(dom0, id=1).skip is None                      # dom0: off by default
    assert "shadow" in (plan_scenario(dict(base, hardware={"shadow_paging": False}), id=1).skip
                        or "")


def test_grant_statuses_and_a_lost_agent_in_the_log():
    log = "\n".join([
        "PVLAB: probe 64-bit dom0 on Xen 4.17 scenarios=1",
        "PVLAB: scenario 1 begin", "PVLAB: scenario 1 ready",
        "(XEN) common/grant_table.c:799:d0v0 Attempt to write-pin a r/o grant entry",
        "PVLAB: scenario 1 step 3 rc=0 gntst=-1",
        "PVLAB: scenario 1 step 4 rc=0 gntst=0 handle=2",
        "(XEN) d1 L1TF-vulnerable L1e 0000000001234000 - Crashing",
        "PVLAB: scenario 1 step 5 lost", "PVLAB: scenario 1 end", "PVLAB: done"])
    xs = parse_log(log).scenarios[1]
    assert (xs.steps[3].rc, xs.steps[3].gntst, xs.steps[4].gntst) == (0, -1, 0)
    plan = plan_scenario(ISSUE_EXAMPLE, id=1)
    assert xen_result(plan.steps[2], xs.steps[3], plan, xs, {}) == "GNTST_general_error"
    assert xen_result(plan.steps[2], xs.steps[4], plan, xs, {}) == "ok"
    assert xs.steps[5].lost and xen_result(plan.steps[4], xs.steps[5], plan, xs, {}) == \
        "domain_crashed"


def test_expect_grant_reads_the_granters_entry_flags():
    data = dict(ISSUE_EXAMPLE, steps=[
        {"grant": {"ref": 3, "frame": "g_data", "to": "dom0"}},
        {"expect_grant": {"domain": "guest", "ref": 3, "reading": True, "writing": False,
                          "pins": 1}},
        {"expect_grant": {"domain": "guest", "ref": 3, "pins": 0}},
        {"expect_grant": {"domain": "dom0", "ref": 3, "reading": False}}])
    plan = plan_scenario(data, id=1)
    s = plan.steps
    assert (s[1].code, s[1].by, s[1].arg) == (OP_GRANT_READ, "domU", 3)
    assert "not readable" in (s[2].skip or "") and "agent's grant" in (s[3].skip or "")
    assert any("pins" in n for n in plan.notes)
    xs = parse_log("PVLAB: scenario 1 begin\nPVLAB: scenario 1 step 2 rc=9\n"
                   "PVLAB: scenario 1 end").scenarios[1]
    # GTF_permit_access | GTF_reading: mapped read-only, as checked
    assert xen_result(s[1], xs.steps[2], plan, xs, {}) == "held"
    xs.steps[2].rc = 1 | 8 | 16                          # GTF_writing too
    assert xen_result(s[1], xs.steps[2], plan, xs, {}) == "failed"


def test_pin_with_foreign_names_the_real_domain():
    data = dict(ISSUE_EXAMPLE, steps=[
        {"pin": {"as": "dom0", "foreign": "guest", "frame": "g_data", "level": 1}},
        {"unpin": {"as": "dom0", "foreign": "guest", "frame": "g_data"}},
        {"pin": {"as": "dom0", "foreign": 7, "frame": "g_data", "level": 1}}])
    s = plan_scenario(data, id=1).steps
    assert [(x.code, x.by, x.aux) for x in s[:2]] == [(OP_PIN, "dom0", DSEL | DS_AGENT),
                                                     (OP_UNPIN, "dom0", DSEL | DS_AGENT)]
    assert "domain id 7" in (s[2].skip or "")
