# SPDX-License-Identifier: MIT
"""The summarised picture of a large guest: its counts equal the exact ones.

`pvlab.render.summary` reads the frame store's numpy arrays; these tests count the same
things the slow, exact way (every frame's `PageInfo`, every table's entries through
`Machine.entries`) and compare. Small guests keep the detailed picture.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvlab import Xen
from pvlab.render import tables_view
from pvlab.render.summary import SUMMARY_TABLES, frame_runs, summarise, wants_summary
from pvlab.toolstack.fullmap import map_whole_guest
from pvlab.x86.flags import PS
from pvlab.xen.page_info import PGC_count_mask


def _guest(memory: str, bitness: int = 64, *, pin: bool = True):  # type: ignore[no-untyped-def]
    xen = Xen("4.19", "16GiB")
    g = xen.create_domain(bitness)
    mg = map_whole_guest(xen, g, memory, read_only_every=5)
    if pin:
        assert g.pin(mg.top, mg.level).ok
    return xen, g, mg


def _exact(xen: Xen, domid: int) -> dict[tuple[int, str], dict[str, int]]:
    """Per (level, side of 4 GiB): tables, pinned, validated, present and writable
    entries, entries naming the guest's own non-table frames; frame by frame."""
    m = xen.machine
    pages = {p.mfn: p for p in m.pages() if p.owner == domid}
    tables = {mfn: p for mfn, p in pages.items()
              if p.level and (p.type_count or p.pinned)}
    out: dict[tuple[int, str], dict[str, int]] = {}
    d = next(dom for dom in xen.domains.values() if dom.domid == domid)
    slots = d.abi.drawn_xen_slots()
    for mfn, p in tables.items():
        key = (p.level, "high" if mfn >= 0x100000 else "low")
        c = out.setdefault(key, dict.fromkeys(("tables", "pinned", "validated", "present",
                                                "writable", "ram", "table"), 0))
        c["tables"] += 1
        c["pinned"] += p.pinned
        c["validated"] += p.validated
        for i, v in m.entries(mfn):
            if not v & 1 or (p.level == d.abi.xen_table_level and i in slots):
                continue
            c["present"] += 1
            c["writable"] += bool(v & 2)
            target = (v >> 12) & ((1 << 40) - 1)
            if p.level in (2, 3) and v & PS and d.abi.ps_means_superpage(p.level):
                continue
            t = tables.get(target)
            if t is not None and t.level == p.level - 1:
                c["table"] += 1
            elif target in pages:
                c["ram"] += 1
    return out


@pytest.mark.parametrize(("memory", "bitness", "pin"), [("48MiB", 64, True),
                                                         ("24MiB", 32, True),
                                                         ("8MiB", 64, False)])
def test_summary_counts_equal_the_exact_ones(memory: str, bitness: int, pin: bool) -> None:
    xen, g, _mg = _guest(memory, bitness, pin=pin)
    sm = summarise(xen, g)
    exact = _exact(xen, g.domain.domid)
    got = {(gr.level, gr.cluster): dict(tables=gr.tables, pinned=gr.pinned,
                                        validated=gr.validated, present=gr.present,
                                        writable=gr.writable, ram=gr.named.get("ram", 0),
                                        table=gr.named.get("table", 0))
           for gr in sm.groups}
    assert got == exact
    # the runs cover exactly the guest's frames, each frame with its own run's key
    pages = [p for p in xen.machine.pages() if p.owner == g.domain.domid]
    assert sm.frames == len(pages) == sm.runs.frames
    it = iter(pages)
    for r in sm.runs:
        for k in range(r.count):
            p = next(it)
            assert p.mfn == r.first + k
            cc = min(p.count_info & PGC_count_mask, 3)
            assert (p.type_name, p.pinned, p.validated) == (r.type_name, r.pinned, r.validated)
            assert str(cc) == r.count_class.rstrip("+")


def test_large_guests_are_summarised_small_ones_are_not(backend: str) -> None:
    xen, g, mg = _guest("160MiB")  # 80 L1s: more than SUMMARY_TABLES tables
    assert mg.nr_tables > SUMMARY_TABLES and wants_summary(xen, g)
    v = tables_view(xen, g)
    assert "summarised" in v.model.title
    l1 = v.model.node("g1_high" if int(mg.l1s[0]) >= 0x100000 else "g1_low")
    assert l1.title == f"{len(mg.l1s)} L1 tables"
    assert any("all validated" in r.text for r in l1.rows)
    assert len(v.model.nodes) < 12
    ET.fromstring(v.svg())
    assert "summarised" in v.text()
    detailed = tables_view(xen, g, summary=False)
    assert "summarised" not in detailed.model.title
    xen2, g2, _ = _guest("16MiB")  # 8 L1s
    assert not wants_summary(xen2, g2)
    small = tables_view(xen2, g2)
    assert small.model.title == f"{g2.domain.label}: pagetables"
    assert tables_view(xen2, g2, summary=True).model.title.endswith("(summarised)")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(-1, 2), st.integers(0, 7),
                          st.booleans(), st.booleans(), st.integers(0, 5)),
                min_size=0, max_size=40))
def test_frame_runs_partition_the_frames(spec: list[tuple[int, int, int, bool, bool,
                                                          int]]) -> None:
    mfns, owner, ti, ci = [], [], [], []
    mfn = 0x100
    for gap, own, ptype, pinned, validated, count in spec:
        mfn += gap  # gap 1: adjacent
        mfns.append(mfn)
        owner.append(own)
        ti.append((ptype << 61) | (pinned << 59) | (validated << 58))
        ci.append(count)
    runs = frame_runs(np.array(mfns, np.int64), np.array(owner, np.int32),
                      np.array(ti, np.uint64), np.array(ci, np.uint64))
    assert runs.frames == len(mfns)
    flat = []
    for r in runs:
        for k in range(r.count):
            flat.append((r.first + k, r.owner, r.type_name, r.pinned, r.validated,
                         r.count_class))
    want = [(m, None if o < 0 else o, ["none", "l1", "l2", "l3", "l4", "seg_desc", "shared",
                                       "writable"][t >> 61], bool(t >> 59 & 1),
             bool(t >> 58 & 1), "3+" if c >= 3 else str(c))
            for m, o, t, c in zip(mfns, owner, ti, ci, strict=True)]
    assert flat == want
    for a, b in zip(list(runs), list(runs)[1:], strict=False):  # maximal runs
        same = (a.owner, a.type_name, a.pinned, a.validated, a.count_class) == \
            (b.owner, b.type_name, b.pinned, b.validated, b.count_class)
        assert not (same and b.first == a.last + 1)
