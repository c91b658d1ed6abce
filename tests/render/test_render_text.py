# SPDX-License-Identifier: MIT
"""The canonical text dump, byte for byte.

The counts are Xen's: an L3 pinned and loaded as vCPU 0's CR3 holds two type
references (the pin and `guest_table`); each child validated by a promotion holds one;
a promotion refused with -ERANGE leaves every frame as it was (`promote_l3_table`
checks the L3's own address before taking any reference).
"""

from __future__ import annotations

from render_support import ROOT

from pvlab.render import text_dump
from pvlab.scenario import load_scenario, run_scenario

HERE = ROOT / "tests" / "render" / "scenarios"

SEED_ERANGE = """\
seed-erange: 32-bit PV guest, Xen 4.19, vm_assists=none, vCPU 0 initialised
vCPU 0 guest_table -> boot_l3 (0x100)
boot_l3 mfn=0x100 <4GiB L3 type=l3 type_count=2 count=3 pinned,validated
  [3] P|RW|US -> boot_l2 mfn=0x101 <4GiB L2 type=l2 type_count=1 count=2 validated,pae_xen_l2
    [0] P|RW|A -> boot_l1 mfn=0x102 <4GiB L1 type=l1 type_count=1 count=2 validated
      [0] P|RW|A|D -> kernel mfn=0x103 <4GiB d1 type=writable type_count=1 count=2
    [428-511] Xen's slots: 4 present entries
new_l3 mfn=0x100200 >=4GiB L3 (candidate) type=none type_count=0 count=1 - FAILED
  [3] P -> new_l2 mfn=0x104 <4GiB L2 (candidate) type=none type_count=0 count=1 -
    [0] P|RW|A -> new_l1 mfn=0x105 <4GiB L1 (candidate) type=none type_count=0 count=1 -
      [0] P|RW|A|D -> page mfn=0x106 <4GiB d1 type=none type_count=0 count=1
failed: MMUEXT_PIN_L3_TABLE(0x100200) -> ERANGE at new_l3 (0x100200): L3 at MFN 0x100200 \
is at or above 4 GiB and pae_extended_cr3 is off, vCPU 0 is initialised -> -ERANGE
"""

SEED_SETUP = """\
seed-erange: 32-bit PV guest, Xen 4.19, vm_assists=none, vCPU 0 not initialised
boot_l3 mfn=0x100 <4GiB L3 (candidate) type=none type_count=0 count=1 -
  [3] P -> boot_l2 mfn=0x101 <4GiB L2 (candidate) type=none type_count=0 count=1 -
    [0] P|RW|A -> boot_l1 mfn=0x102 <4GiB L1 (candidate) type=none type_count=0 count=1 -
      [0] P|RW|A|D -> kernel mfn=0x103 <4GiB d1 type=none type_count=0 count=1
new_l3 mfn=0x100200 >=4GiB L3 (candidate) type=none type_count=0 count=1 -
  [3] P -> new_l2 mfn=0x104 <4GiB L2 (candidate) type=none type_count=0 count=1 -
    [0] P|RW|A -> new_l1 mfn=0x105 <4GiB L1 (candidate) type=none type_count=0 count=1 -
      [0] P|RW|A|D -> page mfn=0x106 <4GiB d1 type=none type_count=0 count=1
"""

FOUR_LEVELS = """\
pv64-four-levels: 64-bit PV guest, Xen 4.19, vm_assists=none, vCPU 0 initialised
vCPU 0 guest_table -> l4 (0x100)
l4 mfn=0x100 <4GiB L4 type=l4 type_count=2 count=3 pinned,validated
  [0] P|RW|US|A -> l3 mfn=0x101 <4GiB L3 type=l3 type_count=1 count=2 validated
    [0] P|RW|US|A -> l2 mfn=0x102 <4GiB L2 type=l2 type_count=1 count=2 validated
      [0] P|RW|US|A -> l1 mfn=0x103 <4GiB L1 type=l1 type_count=1 count=2 validated
        [0] P|RW|US|A|D|G -> d0 mfn=0x104 <4GiB d1 type=writable type_count=1 count=2
        [1] P|US|A|G -> d1 mfn=0x105 <4GiB d1 type=none type_count=0 count=2
  [256-271] Xen's slots: 4 present entries
"""


def dump(name: str, step: int | None = None) -> str:
    run = run_scenario(load_scenario(HERE / name), stop_after=step)
    return text_dump(run)


def test_seed_erange_after_the_failed_pin() -> None:
    assert dump("seed-erange.yaml") == SEED_ERANGE


def test_seed_before_any_step_shows_written_tables_as_candidates() -> None:
    assert dump("seed-erange.yaml", 0) == SEED_SETUP


def test_64bit_chain_pinned_at_the_l4() -> None:
    assert dump("pv64-four-levels.yaml") == FOUR_LEVELS


def test_same_state_same_text() -> None:
    assert dump("seed-erange.yaml") == dump("seed-erange.yaml")


def test_text_dump_of_xen_and_guest_matches_run_form() -> None:
    run = run_scenario(load_scenario(HERE / "seed-erange.yaml"))
    names = {m: n for n, m in run.frames.items()}
    text = text_dump(run.xen, run.guest, names=names, outcome=run.steps[-1].outcome)
    assert text == SEED_ERANGE
