# SPDX-License-Identifier: MIT
"""Every view draws for every scenario of the public corpus, at every step, both ways.

Each file is run to every step (0 = set-up only); at each state the tables, frames,
walk and diff views are built and drawn with the selected back end. With dot, one
`dot` process draws a file's pictures (`svg_many`), which is how a step slider would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from render_support import CORPUS, OWN

from pvlab.render import (
    View,
    diff_view,
    frames_view,
    snapshot,
    svg_many,
    tables_view,
    walk_view,
)
from pvlab.render.api import run_context
from pvlab.render.state import Snapshot
from pvlab.scenario import load_scenario, run_scenario
from pvlab.x86.flags import entry_mfn

FILES = CORPUS + OWN


def mapped_va(snap: Snapshot) -> int:
    """A VA that follows the first present entry at each level of vCPU 0's tables."""
    v0 = next((v for v in snap.vcpus if v.vcpu_id == 0), None)
    if v0 is None or v0.guest_table is None:
        return 0
    levels = [3, 2, 1] if snap.bitness == 32 else [4, 3, 2, 1]
    table, va = v0.guest_table, 0
    for lvl in levels:
        present = snap.present(table)
        if snap.bitness == 32 and lvl == 3:
            present = [(i, e) for i, e in present if i < 4]
        if not present:
            break
        i, e = present[0]
        va |= i << (12 + 9 * (lvl - 1))
        table = entry_mfn(e)
    if snap.bitness == 64 and va >> 47:
        va |= 0xFFFF << 48
    return va


def views_of(path: Path) -> list[tuple[str, View, object]]:
    scn = load_scenario(path)
    out: list[tuple[str, View, object]] = []
    prev: Snapshot | None = None
    for n in range(len(scn.steps) + 1):
        run = run_scenario(scn, stop_after=n)
        snap = snapshot(run.xen, run.guest)
        names, outcome, hints, title = run_context(run)
        out.append((f"step {n} tables", tables_view(run), outcome))
        out.append((f"step {n} frames", frames_view(run), outcome))
        out.append((f"step {n} walk", walk_view(run, va=mapped_va(snap)), None))
        if prev is not None:
            out.append((f"step {n} diff", diff_view(prev, snap, outcome=run.steps[-1].outcome,
                                                   names=names, hints=hints, title=title),
                        run.steps[-1].outcome))
        prev = snap
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_view_every_step(path: Path, backend: str) -> None:
    views = views_of(path)
    svgs = svg_many([v for _, v, _ in views])
    assert len(svgs) == len(views)
    for (what, view, outcome), svg in zip(views, svgs, strict=True):
        root = ET.fromstring(svg)  # well-formed SVG, whichever back end drew it
        assert root.tag.endswith("svg"), what
        assert view.model.nodes, what
        assert view.text().endswith("\n"), what
        if view.model.kind in ("tables", "diff") and outcome is not None:
            failed = getattr(outcome, "failed_mfn", None)
            hl = [n.mfn for n in view.model.highlighted()]
            if getattr(outcome, "ok", True) or failed is None or view.model.node_for_mfn(
                    failed) is None:
                assert hl == [], what
            else:  # a failed operation names its frame: exactly that frame is red
                assert hl == [failed], what
