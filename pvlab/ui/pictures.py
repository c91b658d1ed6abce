# SPDX-License-Identifier: MIT
"""What the lab draws: the pagetable picture (from `pvlab.render`), the frame map and
the status line.

The picture is the render pipeline's tables view of the lab's current state with the
last outcome highlighted; after an action it is the diff view, so what changed carries
badges (type count up/down, newly pinned/validated, leaked, entries Xen rewrote with the
flags it added named). Should the render package be missing, a plain text table stands
in so no cell breaks.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from pvlab.render.view import inline_svg
from pvlab.scenario import ScenarioRun
from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB
from pvlab.x86.flags import make_entry

from .bits import entry_text
from .session import FrameRow, LabSession


def names_by_mfn(run: ScenarioRun) -> dict[int, str]:
    return {mfn: name for name, mfn in run.frames.items()}


def lab_hints(session: LabSession, run: ScenarioRun | None = None) -> dict[int, int]:
    run = run or session.run
    return {run.frames[n]: lvl for n, lvl in session.doc.roles.items() if n in run.frames}


def drawn_run(session: LabSession, run: ScenarioRun | None = None, *,
              name: str | None = None) -> ScenarioRun:
    """`run` as the picture draws it: with `domains:`, a shallow copy whose `guest` is
    domain `name` (default :meth:`LabSession.picture_domain`; the render pipeline draws
    `run.guest`'s tables)."""
    run = run or session.run
    name = name or session.picture_domain(run)
    if name is None or name not in run.domains or run.domains[name] is run.guest:
        return run
    return dataclasses.replace(run, guest=run.domains[name])


def picture_title(session: LabSession, run: ScenarioRun | None = None) -> str:
    """One title for the picture: the scenario, the step it shows and that step's result."""
    run = run or session.run
    total = len(session.doc.steps)
    name = session.picture_domain(run)
    who = f"{name}'s tables, " if name is not None else ""
    head = (f"{run.scenario.name} ({who}Xen {run.profile}, "
            f"{run.domains[name].domain.bitness if name else run.guest.domain.bitness}-bit PV)")
    if not run.steps:
        return f"{head} — set-up, before step 1" + (f" of {total}" if total else "")
    last = run.steps[-1]
    shown = ("holds" if last.held else "does not hold") if last.is_check else last.result
    return f"{head} — step {last.index}/{total}: {last.description} → {shown}"


def tables_picture(session: LabSession, run: ScenarioRun | None = None, *,
                   changes: bool = True) -> Any | None:
    """The picture of the session's state: the tables view, or, after an action, the
    diff view (what changed since the state before it, as badges)."""
    try:
        from pvlab.render import danger, diff_view, snapshot, tables_view
        from pvlab.render.api import domain_labels
        from pvlab.xen.danger import find_dangers
    except ImportError:
        return None
    run = run or session.run
    title = picture_title(session, run)
    hints = lab_hints(session, run)
    before = session.previous_run if run is session.run else None
    name = session.picture_domain(run)
    run = drawn_run(session, run, name=name)
    if before is not None:
        before = drawn_run(session, before, name=name)
    if changes and before is not None and before.guest.domain.abi.name == \
            run.guest.domain.abi.name:
        last = run.steps[-1] if run.steps else None
        labels = domain_labels(run)
        view = diff_view(snapshot(before.xen, before.guest, labels=labels),
                         snapshot(run.xen, run.guest, labels=labels),
                         outcome=last.outcome if last is not None and not last.is_check
                         else None,
                         names={m: n for n, m in run.frames.items()}, hints=hints,
                         title=title)
        view.model.kind = "tables"
        danger.mark(view.model, find_dangers(run.xen))  # as tables_view marks its picture
        return view
    return tables_view(run, hints=hints, title=title)


def picture_names(run: ScenarioRun) -> dict[str, str]:
    """SVG node id -> frame name (the render pipeline's `m<mfn>` ids)."""
    return {f"m{mfn:x}": name for name, mfn in run.frames.items()}


def _value(run: ScenarioRun, to: str | None, mfn: int | None, flags: int | None,
           value: int | None) -> int:
    if value is not None:
        return int(value)
    if to is not None:
        return make_entry(run.frames[to], flags or 0)
    if mfn is not None:
        return make_entry(int(mfn), flags or 0)
    return int(flags or 0)


def guest_written(run: ScenarioRun) -> dict[tuple[int, int], int]:
    """(table MFN, index) -> the value the guest last wrote there (tables:, write, and
    accepted mmu_update steps), to tell the flags Xen added from the guest's own."""
    out: dict[tuple[int, int], int] = {}
    for table, entries in run.scenario.tables.items():
        for e in entries:
            out[(run.frames[table], e.index)] = _value(run, e.to, e.mfn, e.flags, e.value)
    for res in run.steps:
        a = res.args
        if res.op in ("write", "mmu_update") and res.outcome.ok and isinstance(a.get("table"),
                                                                                str):
            out[(run.frames[a["table"]], int(a["index"]))] = _value(
                run, a.get("to"), a.get("mfn"), a.get("flags"), a.get("value"))
    return out


def picture_bits(run: ScenarioRun) -> dict[str, str]:
    """"node id/entry index" -> the entry's bits, with the flags Xen added named."""
    from pvlab.render.diffview import xen_added_flags

    written = guest_written(run)
    out = {}
    m = run.xen.machine
    for mfn in run.frames.values():
        for index, value in m.entries(mfn):
            if value:
                wrote = written.get((mfn, index))
                added = xen_added_flags(wrote, value) if wrote is not None else 0
                out[f"m{mfn:x}/{index}"] = entry_text(value, added=added)
    return out


def picture_html(view: Any | None, session: LabSession) -> str:
    """The picture as HTML: inline SVG when a view exists, else a text table."""
    if view is not None:
        try:
            return f'<div class="lab-svg">{inline_svg(view.svg())}</div>'
        except Exception as err:  # noqa: BLE001 - a picture must never break the lab
            text = getattr(view, "text", lambda: "")()
            return (f'<pre class="lab-text-picture">{html.escape(text)}</pre>'
                    f"<p>(SVG unavailable: {html.escape(str(err))})</p>")
    return f'<pre class="lab-text-picture">{html.escape(text_picture(session))}</pre>'


def text_picture(session: LabSession) -> str:
    """A plain table of the guest's frames and their entries (the no-render stand-in)."""
    m = session.run.xen.machine
    names = names_by_mfn(session.run)
    lines = [session.domain_summary()]
    for row in session.frame_rows():
        mark = "  <-- FAILED" if row.failed else ""
        lines.append(f"{row.name} MFN {row.mfn:#x} {row.side}: type={row.type} "
                     f"type_count={row.type_count} count={row.count}"
                     f"{' pinned' if row.pinned else ''}{' validated' if row.validated else ''}"
                     f"{mark}")
        for idx, value in m.entries(row.mfn):
            if value:
                target = (value >> 12) & ((1 << 40) - 1)
                lines.append(f"    [{idx}] {value:#018x} -> {names.get(target, hex(target))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- frame map
_TYPE_FILL = {"l1": "#d9ead3", "l2": "#cfe2f3", "l3": "#fff2cc", "l4": "#ead1dc",
              "writable": "#eeeeee", "none": "#ffffff"}


def _strip_labels(rows: list[FrameRow], scale: float) -> list[tuple[FrameRow, float, int]]:
    """Each frame's label position and text line: labels that would overlap move to a
    lower line (names sit below the strip, the 4 GiB line's label above it)."""
    placed: list[tuple[FrameRow, float, int]] = []
    ends: list[float] = []  # right end of the last label on each line
    for r in rows:
        x = 10 + r.mfn * scale
        width = 6.2 * len(r.name) + 6
        line = next((k for k, end in enumerate(ends) if end < x), len(ends))
        if line == len(ends):
            ends.append(0.0)
        ends[line] = x + width
        placed.append((r, x, line))
    return placed


def frame_map_html(rows: list[FrameRow], memory_frames: int) -> str:
    """Where each frame went: a strip of machine memory with the 4 GiB line, and a table."""
    width = 1000
    scale = width / max(memory_frames, 1)
    labels = _strip_labels(rows, scale)
    lines = max((line for _, _, line in labels), default=0) + 1
    height = 40 + 13 * lines
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width + 20} {height}" '
             f'width="100%" class="lab-frame-strip" preserveAspectRatio="xMinYMin meet">',
             f'<rect x="10" y="16" width="{width}" height="14" fill="#f4f4f4" stroke="#999"/>']
    if MFN_4GIB < memory_frames:
        lx = 10 + MFN_4GIB * scale
        parts.append(f'<line x1="{lx:.1f}" y1="12" x2="{lx:.1f}" y2="34" stroke="#c00" '
                     f'stroke-dasharray="4,2"/><text x="{lx:.1f}" y="10" font-size="11" '
                     'text-anchor="middle" fill="#c00">4 GiB (mfn 0x100000)</text>')
    for r, x, line in labels:
        colour = "#c00" if r.failed else "#1f4e79"
        parts.append(f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{30 + 13 * line + 4}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{x + 2:.1f}" y="{44 + 13 * line}" font-size="11" '
                     f'fill="{colour}">{html.escape(r.name)}</text>')
    parts.append("</svg>")
    cell = 'style="padding:2px 8px;text-align:left;border-bottom:1px solid #ccc"'
    owned = any(r.owner for r in rows)  # several domains: say whose each frame is
    heads = ("frame", *(("owner",) if owned else ()), "mfn", "addr", "where", "meant as",
             "type", "type count", "refs", "state")
    head = "<tr>" + "".join(f"<th {cell}>{h}</th>" for h in heads) + "</tr>"
    body = []
    for r in rows:
        words = [w for w, on in (("pinned", r.pinned), ("validated", r.validated),
                                 ("FAILED", r.failed)) if on]
        if r.refused_at:
            words.append("the failing check stopped here")
        state = ", ".join(words) or "-"
        style = f' style="background:{_TYPE_FILL.get(r.type, "#fff")}"'
        cls = (' class="lab-frame-failed"' if r.failed
               else ' class="lab-frame-refused"' if r.refused_at else "")
        cells = (html.escape(r.name), *((html.escape(r.owner),) if owned else ()),
                 f"mfn {r.mfn:#x}", f"addr {r.address:#x}", r.side,
                 f"L{r.role}" if r.role else "-", r.type, str(r.type_count), str(r.count),
                 state)
        body.append(f"<tr{cls}{style}>" + "".join(f"<td {cell}>{c}</td>" for c in cells)
                    + "</tr>")
    if not body:
        body.append('<tr><td colspan="9">no frames yet: allocate one</td></tr>')
    return ("".join(parts) + '<table class="lab-frame-table" style="border-collapse:collapse;'
            'width:100%;font-size:12px">' + head + "".join(body) + "</table>")


_STATUS = {  # kind -> (colour, background, icon, label)
    "ok": ("#1b5e20", "#e8f5e9", "✔", ""),
    "fail": ("#b71c1c", "#ffebee", "✘", "Xen refused: "),
    "error": ("#7a4f00", "#fff8e1", "⚠", "not done (your input): "),
    "info": ("#333333", "#f5f5f5", "ℹ", ""),
}


def status_html(kind: str, text: str) -> str:
    """The status line: green for an action that worked, red for a Xen refusal (with
    its errno), amber for input the lab could not use (a user error: nothing changed)."""
    colour, bg, icon, label = _STATUS.get(kind, _STATUS["info"])
    return (f'<div class="lab-status-text lab-status-{kind}" style="color:{colour};'
            f"background:{bg};border-left:5px solid {colour};padding:3px 8px;"
            f'line-height:1.35;font-size:13px;margin:2px 0"><b>{icon} {label}</b>'
            f"{html.escape(text)}</div>")


#: Explicit spacing, so the log reads the same in JupyterLab and on a Voila page.
_PRE = 'style="margin:0;line-height:1.35;font-size:12px;white-space:pre-wrap"'


def trace_html(outcome: Outcome | None) -> str:
    if outcome is None:
        return f'<pre class="lab-trace-text" {_PRE}>(no hypercall yet)</pre>'
    return f'<pre class="lab-trace-text" {_PRE}>{html.escape(outcome.explain())}</pre>'


def log_html(lines: list[str], keep: int = 30) -> str:
    shown = lines[-keep:]
    start = len(lines) - len(shown)
    rows = "\n".join(f"{start + i + 1:3d}  {html.escape(line)}" for i, line in enumerate(shown))
    return f'<pre class="lab-log-text" {_PRE}>{rows}</pre>'
