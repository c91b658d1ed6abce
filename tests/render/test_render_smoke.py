# SPDX-License-Identifier: MIT
"""First checks: every view builds and draws for the seed scenario."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from render_support import ROOT

from pvlab.render import diff_view, frames_view, snapshot, tables_view, walk_view
from pvlab.scenario import load_scenario, run_scenario

SEED = ROOT / "tests" / "scenarios" / "001-seed-issue-example.yaml"


def test_seed_erange_marks_failed_l3(backend: str) -> None:
    run = run_scenario(load_scenario(SEED), stop_after=4)
    v = tables_view(run)
    l3b = run.frames["l3b"]
    node = v.model.node_for_mfn(l3b)
    assert node is not None and node.highlight and node.status == "failed"
    assert [n.mfn for n in v.model.highlighted()] == [l3b]
    assert "pae_extended_cr3 is off" in node.label and "-ERANGE" in node.label
    assert node.cluster == "high"
    svg = v.svg()
    ET.fromstring(svg)
    assert "ERANGE" in svg


def test_every_view_draws(backend: str) -> None:
    run = run_scenario(load_scenario(SEED), stop_after=2)
    before = run_scenario(load_scenario(SEED), stop_after=1)
    views = [tables_view(run), walk_view(run, va=0xC0000000), frames_view(run),
             diff_view(snapshot(before.xen, before.guest), snapshot(run.xen, run.guest))]
    for v in views:
        ET.fromstring(v.svg())
        bundle = v._repr_mimebundle_()
        assert set(bundle) == {"image/svg+xml", "text/plain"}
