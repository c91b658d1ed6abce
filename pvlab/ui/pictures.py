# SPDX-License-Identifier: MIT
"""What the lab draws: the pagetable picture (from `pvlab.render`) and the frame map.

The picture is the render pipeline's tables view of the lab's current state with the
last outcome highlighted; the lab shows its SVG inline in an HTML widget. Should the
render package be missing, a plain text table stands in so no cell breaks.
"""

from __future__ import annotations

import html
import re
from typing import Any

from pvlab.scenario import ScenarioRun
from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB

from .session import FrameRow, LabSession

_XML_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)


def inline_svg(svg: str) -> str:
    """An SVG document made fit for inline HTML (no XML declaration or DOCTYPE)."""
    return _XML_PROLOGUE.sub("", svg, count=1)


def names_by_mfn(run: ScenarioRun) -> dict[int, str]:
    return {mfn: name for name, mfn in run.frames.items()}


def tables_picture(session: LabSession) -> Any | None:
    """The render pipeline's tables view of the session (None without `pvlab.render`)."""
    try:
        from pvlab.render import tables_view
    except ImportError:
        return None
    run = session.run
    hints = {run.frames[n]: lvl for n, lvl in session.doc.roles.items() if n in run.frames}
    return tables_view(run, hints=hints)


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


def frame_map_html(rows: list[FrameRow], memory_frames: int) -> str:
    """Where each frame went: a strip of machine memory with the 4 GiB line, and a table."""
    width, height = 560, 46
    scale = width / max(memory_frames, 1)
    line_x = MFN_4GIB * scale
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 20}" '
             f'height="{height + 24}" class="lab-frame-strip">',
             f'<rect x="10" y="10" width="{width}" height="{height - 20}" fill="#f4f4f4" '
             'stroke="#999"/>']
    if MFN_4GIB < memory_frames:
        parts.append(f'<line x1="{10 + line_x:.1f}" y1="4" x2="{10 + line_x:.1f}" '
                     f'y2="{height - 4}" stroke="#c00" stroke-dasharray="4,2"/>'
                     f'<text x="{12 + line_x:.1f}" y="{height + 6}" font-size="10" '
                     'fill="#c00">4 GiB</text>')
    for i, r in enumerate(rows):
        x = 10 + r.mfn * scale
        colour = "#c00" if r.failed else "#1f4e79"
        parts.append(f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{height - 10}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{x:.1f}" y="{height + 6 + 10 * (i % 2)}" font-size="10" '
                     f'fill="{colour}">{html.escape(r.name)}</text>')
    parts.append("</svg>")
    head = ("<tr><th>frame</th><th>MFN</th><th>address</th><th>where</th><th>meant as</th>"
            "<th>type</th><th>type count</th><th>refs</th><th>state</th></tr>")
    body = []
    for r in rows:
        state = ", ".join(s for s, on in (("pinned", r.pinned), ("validated", r.validated),
                                          ("FAILED", r.failed)) if on) or "-"
        style = f' style="background:{_TYPE_FILL.get(r.type, "#fff")}"'
        cls = ' class="lab-frame-failed"' if r.failed else ""
        body.append(f"<tr{cls}{style}><td>{html.escape(r.name)}</td><td>{r.mfn:#x}</td>"
                    f"<td>{r.address:#x}</td><td>{r.side}</td>"
                    f"<td>{'L' + str(r.role) if r.role else '-'}</td><td>{r.type}</td>"
                    f"<td>{r.type_count}</td><td>{r.count}</td><td>{state}</td></tr>")
    if not body:
        body.append('<tr><td colspan="9">no frames yet: allocate one</td></tr>')
    return ("".join(parts) + '<table class="lab-frame-table">' + head + "".join(body)
            + "</table>")


def status_html(kind: str, text: str) -> str:
    colour = {"ok": "#1e7b34", "fail": "#b00020", "error": "#b00020"}.get(kind, "#333")
    icon = {"ok": "✔", "fail": "✘", "error": "⚠"}.get(kind, "ℹ")
    return (f'<div class="lab-status-text lab-status-{kind}" style="color:{colour};'
            f'font-weight:bold">{icon} {html.escape(text)}</div>')


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
