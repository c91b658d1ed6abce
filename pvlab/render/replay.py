# SPDX-License-Identifier: MIT
"""Promotion replay: one picture per event of a step's trace, as Xen went through it.

`replay(run, step)` walks the step's :class:`~pvlab.trace.Outcome` events in order and
draws the pagetable graph once per event (so frames == events):

- the frame an event is about gets an orange border and a `▶ #k` row naming the check
  and the Xen function; the entry Xen follows to reach a child table is numbered on its
  edge (`#1`, `#2`, ...) in the order Xen visits it;
- type counts rise as `_get_page_type` takes references (`promote ... (first type
  reference)` events), tables turn validated on `promote_lN_table ... validated`;
- the first failing check is red with Xen's reason and function;
- the events after it show the rollback on the state Xen left: references taken along
  the way dropped again (`↓ rolled back`), and, where real Xen leaks (the PAE slot-3
  quirk), what stays behind (`leaked`).

Before the failure the picture is the state before the step with these marks; from the
failure on (and on the last event of a success) it is the state after the step.
`Replay.html()` is one self-contained page (inline SVG, no network) with a slider and
a play button; `Replay.save(DIR/)` writes numbered SVGs.
"""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pvlab.errors import PvlabError
from pvlab.trace import Event, Outcome
from pvlab.x86.flags import entry_mfn

from . import style as S
from . import tables, tables_graph
from .model import GraphModel, Node, Row
from .state import Snapshot, snapshot
from .view import View, svg_many

if TYPE_CHECKING:
    from pvlab.scenario.runner import ScenarioRun


@dataclass(frozen=True)
class ReplayFrame:
    """One event of the trace, drawn."""

    number: int  # 1-based position in the trace
    event: Event
    phase: str  # "check" (before the failure), "fail", "rollback", "done"
    caption: str
    model: GraphModel
    #: MFN -> type count as the replay has it at this event
    type_counts: dict[int, int]


@dataclass
class Replay:
    """The frames of one step's replay and ways to show them."""

    title: str
    outcome: Outcome
    frames: list[ReplayFrame]

    def __len__(self) -> int:
        return len(self.frames)

    def svgs(self, *, backend: str | None = None) -> list[str]:
        """One SVG per frame (one `dot` process for all of them)."""
        return svg_many([View(f.model, f.caption) for f in self.frames], backend=backend)

    @property
    def failing_frame(self) -> int | None:
        """The 1-based number of the frame of the first failing check, if any."""
        return next((f.number for f in self.frames if f.phase == "fail"), None)

    def captions(self) -> list[str]:
        return [f.caption for f in self.frames]

    def html(self, *, backend: str | None = None) -> str:
        """One self-contained HTML page: every frame inline, a slider and play button."""
        return replay_html(self, self.svgs(backend=backend))

    def save(self, path: str | Path, *, backend: str | None = None) -> list[Path]:
        """`out.html` (one page) or `DIR/` (numbered SVGs `01-promote.svg`, ...)."""
        p = Path(path)
        if str(path).endswith(("/", "\\")) or p.is_dir() or not p.suffix:
            p.mkdir(parents=True, exist_ok=True)
            written = []
            for frame, svg in zip(self.frames, self.svgs(backend=backend), strict=True):
                out = p / f"{frame.number:02d}-{frame.event.check}.svg"
                out.write_text(svg, encoding="utf-8")
                written.append(out)
            return written
        if p.suffix.lower() not in (".html", ".htm"):
            raise PvlabError(f"a replay is written as .html or into a folder, not {p.name!r}",
                             "use -o replay.html, or -o DIR/ for numbered SVGs")
        p.write_text(self.html(backend=backend), encoding="utf-8")
        return [p]


# ---------------------------------------------------------------------- building
_MARK = {"pass": "✓", "fail": "✗", "info": "•"}


def caption(number: int, total: int, ev: Event) -> str:
    return (f"{number}/{total} {_MARK.get(ev.decision, '•')} {ev.explanation} "
            f"[{ev.xen_function}]")


def short_caption(number: int, total: int, ev: Event) -> str:
    """The note drawn in the picture: short, so the picture's width is the graph's."""
    where = f" entry {ev.index}" if ev.index is not None else ""
    return (f"event {number}/{total} {_MARK.get(ev.decision, '•')} {ev.check} "
            f"{ev.decision}{where} [{ev.xen_function}]")


def _parent_entry(before: Snapshot, parent: int, child: int) -> int | None:
    """The index of the first present entry of `parent` that names `child`."""
    for index, value in before.present(parent):
        if entry_mfn(value) == child:
            return index
    return None


def _counts_rows(node: Node, counts: str, state: str) -> tuple[Row, ...]:
    """The node's rows with the type-count row and the status row (the third) replaced."""
    rows = []
    for k, r in enumerate(node.rows):
        if r.text.startswith("type "):
            rows.append(Row(counts, tone="changed"))
        elif k == 2 and node.kind in ("table", "candidate") and r.port is None:
            rows.append(Row(state, tone="changed"))
        else:
            rows.append(r)
    return tuple(rows)


def _mark_node(node: Node, rows: list[Row], *, focus: bool, bad: bool = False) -> Node:
    return replace(node, rows=node.rows + tuple(rows), changed=focus or node.changed,
                   highlight=bad or node.highlight)


class _Walk:
    """The replay state while walking a trace forwards."""

    def __init__(self, before: Snapshot) -> None:
        self.before = before
        self.counts: dict[int, int] = {}
        self.levels: dict[int, int] = {}
        self.validated: set[int] = set()
        self.stack: list[tuple[int, int]] = []  # (depth, mfn) of tables being promoted
        self.visits: dict[tuple[int, int], int] = {}  # (parent mfn, entry index) -> order
        self.current_edge: tuple[int, int] | None = None

    def count(self, mfn: int) -> int:
        return self.counts.get(mfn, self.before.page(mfn).type_count)

    def step(self, ev: Event) -> None:
        self.current_edge = None
        if ev.mfn is None:
            return
        if ev.check == "promote" and ev.decision == "info":
            while self.stack and self.stack[-1][0] >= ev.depth:
                self.stack.pop()
            if self.stack:
                parent = self.stack[-1][1]
                index = _parent_entry(self.before, parent, ev.mfn)
                if index is not None:
                    self.visits.setdefault((parent, index), len(self.visits) + 1)
                    self.current_edge = (parent, index)
            self.stack.append((ev.depth, ev.mfn))
            self.counts[ev.mfn] = self.count(ev.mfn) + 1
            if ev.level:
                self.levels[ev.mfn] = ev.level
        elif ev.check == "promote" and ev.decision == "pass":
            self.validated.add(ev.mfn)


def _forward_model(base: GraphModel, walk: _Walk, ev: Event, number: int, total: int,
                   title: str, failing: bool) -> GraphModel:
    nodes = []
    for n in base.nodes:
        if n.mfn is None or n.kind not in ("table", "candidate", "data"):
            nodes.append(n)
            continue
        rows: list[Row] = []
        node = n
        if n.mfn in walk.counts:
            p = walk.before.page(n.mfn)
            lvl = walk.levels.get(n.mfn)
            tname = f"l{lvl}" if lvl else p.type_name
            state = "validated" if n.mfn in walk.validated else "validating…"
            node = replace(n, rows=_counts_rows(
                n, f"type {tname} · type count {p.type_count} → {walk.count(n.mfn)}", state))
            if n.mfn in walk.validated:
                node = replace(node, fill=S.GREEN_FILL)
        if ev.mfn == n.mfn:
            rows.append(Row(f"▶ #{number} {ev.check}: {ev.decision} [{ev.xen_function}]",
                            tone="bad" if failing else "changed"))
            if failing:
                rows.extend(Row(line, tone="bad") for line in
                            textwrap.wrap(ev.explanation.split(": '", 1)[0], 46))
            if failing and ev.index is not None:
                node = replace(node, rows=tuple(
                    replace(r, tone="bad", text="✗ " + r.text)
                    if r.port == f"e{ev.index}" else r for r in node.rows))
        nodes.append(_mark_node(node, rows, focus=ev.mfn == n.mfn, bad=failing
                                and ev.mfn == n.mfn))
    edges = []
    for e in base.edges:
        key = None
        if e.src_port and e.src_port.startswith("e"):
            src = next((n.mfn for n in base.nodes if n.id == e.src), None)
            if src is not None:
                key = (src, int(e.src_port[1:]))
        if key is not None and key in walk.visits:
            now = key == walk.current_edge
            e = replace(e, label=f"#{walk.visits[key]}" + (f" {e.label}" if e.label else ""),
                        color=S.CHANGED if now else e.color)
        edges.append(e)
    model = GraphModel(base.kind, title, nodes, edges, list(base.clusters), base.boundary,
                       [short_caption(number, total, ev)], base.rankdir, base.layout)
    return model


def _after_model(after_base: GraphModel, before: Snapshot, after: Snapshot, walk: _Walk,
                 ev: Event, number: int, total: int, title: str, phase: str,
                 leaked: set[int]) -> GraphModel:
    nodes = []
    for n in after_base.nodes:
        rows: list[Row] = []
        if n.mfn is not None and n.kind in ("table", "candidate", "data"):
            was, peak, now = (before.page(n.mfn).type_count, walk.count(n.mfn),
                              after.page(n.mfn).type_count)
            if phase == "rollback" and n.mfn in walk.counts and now < peak:
                rows.append(Row(f"↓ rolled back: type count {peak} → {now}", tone="changed"))
            if n.mfn in leaked or (phase == "rollback" and now > was and n.mfn in walk.counts):
                rows.append(Row(f"⚠ leaked: type count {was} → {now} stays (Xen never "
                                "drops it)", tone="bad"))
            if ev.mfn == n.mfn:
                rows.append(Row(f"▶ #{number} {ev.check}: {ev.decision} [{ev.xen_function}]",
                                tone="changed"))
        nodes.append(_mark_node(n, rows, focus=bool(rows)) if rows else n)
    notes = [short_caption(number, total, ev), *after_base.notes]
    return GraphModel(after_base.kind, title, nodes, list(after_base.edges),
                      list(after_base.clusters), after_base.boundary, notes,
                      after_base.rankdir, after_base.layout)


def build(before: Snapshot, after: Snapshot, outcome: Outcome, *,
          names: Mapping[int, str] | None = None, hints: Mapping[int, int] | None = None,
          title: str = "replay") -> Replay:
    """The replay of `outcome` from the state `before` it to the state `after` it."""
    names = dict(names or {})
    hints = dict(hints or {})
    for ev in outcome.events:
        if ev.mfn is not None and ev.level:
            hints.setdefault(ev.mfn, ev.level)
    base = tables_graph.build(tables.analyse(before, names=names, hints=hints), title=title)
    after_base = tables_graph.build(
        tables.analyse(after, names=names, outcome=outcome, hints=hints), title=title)
    walk = _Walk(before)
    total = len(outcome.events)
    leaked = {ev.mfn for ev in outcome.events
              if ev.mfn is not None and "leak" in ev.explanation.lower()}
    frames: list[ReplayFrame] = []
    failed = False
    for number, ev in enumerate(outcome.events, 1):
        first_fail = ev.decision == "fail" and not failed
        if not failed and not first_fail:
            walk.step(ev)
        last = number == total
        if first_fail:
            phase = "fail"
            model = _forward_model(base, walk, ev, number, total, title, True)
            failed = True
        elif failed:
            phase = "rollback"
            model = _after_model(after_base, before, after, walk, ev, number, total, title,
                                 phase, leaked)
        elif last:
            phase = "done"
            model = _after_model(after_base, before, after, walk, ev, number, total, title,
                                 phase, leaked)
        else:
            phase = "check"
            model = _forward_model(base, walk, ev, number, total, title, False)
        counts = {m: (after.page(m).type_count if phase in ("rollback", "done")
                      else walk.count(m)) for m in walk.counts}
        frames.append(ReplayFrame(number, ev, phase, caption(number, total, ev), model, counts))
    return Replay(title, outcome, frames)


def replay(run: ScenarioRun, step: int | None = None, *,
           before: ScenarioRun | None = None) -> Replay:
    """The replay of step `step` (1-based, default the last) of a run.

    `run` must stop after that step; `before` is the same scenario stopped one step
    earlier (built here when not given).
    """
    from pvlab.scenario import run_scenario

    from .api import run_context

    n = len(run.steps) if step is None else step
    if not 1 <= n <= len(run.steps):
        raise PvlabError(f"step {n} was not run (the run has {len(run.steps)} steps)",
                         f"use a step from 1 to {len(run.steps)}")
    if n != len(run.steps):
        run = run_scenario(run.scenario, profile=run.profile, stop_after=n)
    if before is None:
        before = run_scenario(run.scenario, profile=run.profile, stop_after=n - 1)
    res = run.steps[n - 1]
    names, _, hints, _ = run_context(run)
    title = (f"{run.scenario.name} — step {n}: {res.description} → {res.result} "
             f"(Xen {run.profile}) — replay")
    return build(snapshot(before.xen, before.guest), snapshot(run.xen, run.guest),
                 res.outcome, names=names, hints=hints, title=title)


# ---------------------------------------------------------------------- the HTML page
_PAGE_CSS = """
body{font-family:Helvetica,DejaVu Sans,Arial,sans-serif;margin:12px;color:#222}
#bar{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #ddd;
display:flex;gap:10px;align-items:center;flex-wrap:wrap}
#cap{font-size:14px;font-weight:bold;flex:1 1 100%}
#cap.fail{color:#c62828}#cap.rollback{color:#e65100}
.frame{display:none}.frame.on{display:block}.frame svg{max-width:100%;height:auto}
"""

_PAGE_JS = """
const frames=[...document.querySelectorAll('.frame')];
const slider=document.getElementById('slider');const cap=document.getElementById('cap');
const caps=JSON.parse(document.getElementById('captions').textContent);
const phases=JSON.parse(document.getElementById('phases').textContent);
function show(i){frames.forEach((f,k)=>f.classList.toggle('on',k===i));slider.value=i;
cap.textContent=caps[i];cap.className=phases[i];document.body.dataset.frame=i+1;}
slider.addEventListener('input',()=>show(+slider.value));
let timer=null;const play=document.getElementById('play');
play.addEventListener('click',()=>{if(timer){clearInterval(timer);timer=null;
play.textContent='play';return;}play.textContent='pause';
if(+slider.value>=frames.length-1)show(0);
timer=setInterval(()=>{const i=+slider.value+1;if(i>=frames.length){clearInterval(timer);
timer=null;play.textContent='play';return;}show(i);},900);});
document.getElementById('prev').addEventListener('click',()=>show(Math.max(0,+slider.value-1)));
document.getElementById('next').addEventListener('click',
()=>show(Math.min(frames.length-1,+slider.value+1)));
show(0);
"""


def _inline(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def replay_html(rep: Replay, svgs: list[str]) -> str:
    """The page: every frame's SVG inline, the slider and buttons in plain JavaScript."""
    caps = json.dumps(rep.captions()).replace("</", "<\\/")
    phases = json.dumps([f.phase for f in rep.frames])
    body = "\n".join(f'<div class="frame" data-phase="{f.phase}" id="frame{f.number}">'
                     f"{_inline(svg)}</div>" for f, svg in zip(rep.frames, svgs, strict=True))
    n = len(rep.frames)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(rep.title)}</title><style>{_PAGE_CSS}</style></head><body>"
            f"<h1 style=\"font-size:16px\">{html.escape(rep.title)}</h1>"
            f'<div id="bar"><button id="prev">◀</button><button id="play">play</button>'
            f'<button id="next">▶</button><input id="slider" type="range" min="0" '
            f'max="{n - 1}" value="0" style="width:40%"><span>{n} events</span>'
            f'<div id="cap"></div></div>{body}'
            f'<script type="application/json" id="captions">{caps}</script>'
            f'<script type="application/json" id="phases">{phases}</script>'
            f"<script>{_PAGE_JS}</script></body></html>\n")


__all__ = ["Replay", "ReplayFrame", "build", "replay", "replay_html"]
