# SPDX-License-Identifier: MIT
"""The scenario lab of notebooks/06-scenario-lab.ipynb in real JupyterLab and Chromium.

The notebook's first lab cell builds the seed sketch (a 64-bit guest, `pae_extended_cr3`
off, vCPU 0 initialised, `l3` above 4 GiB with entry 3 -> `l2`; see docs/lab.md). Through
the rendered widgets the test then plays the founding story as real Xen (4.19+) decides it:

1. guest bitness -> 32-bit PV: nothing is pinned yet, so nothing fails;
2. pin `l3` (MMUEXT_PIN_L3_TABLE): -ERANGE (-34), "PAE pgd must be below 4GB", raised by
   promote_l3_table, because the L3's MFN is >= 0x100000, the assist is off and vCPU 0 is
   initialised; the picture marks the L3 as failed (red outline and fill, the reason);
3. tick `pae_extended_cr3`: the pin is replayed and succeeds; the L3 is drawn pinned.

`drive_seed_story` is shared with test_lab_voila.py: the same clicks on the Voila page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pvlab.render.style import PINNED_FILL, RED, RED_FILL

pytestmark = pytest.mark.browser

NOTEBOOK = "06-scenario-lab.ipynb"
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 2600}
L3_TITLE = "l3 — L3 table"

#: What the browser sees of the `l3` node in the lab's inline SVG (dot or fallback back end).
_READ_L3_NODE = """(app) => {
    const svg = app.querySelector('.lab-picture svg');
    if (!svg) return null;
    const node = [...svg.querySelectorAll('g.node')].find(g =>
        [...g.querySelectorAll('text')].some(t => t.textContent.trim() === TITLE));
    const shapes = node ? [...node.querySelectorAll('polygon, rect, path, ellipse')] : [];
    return {
        svg: svg.outerHTML,
        found: !!node,
        lines: node ? [...node.querySelectorAll('text')].map(t => t.textContent.trim()) : [],
        red_lines: node ? [...node.querySelectorAll('text')]
            .filter(t => (t.getAttribute('fill') || '').toLowerCase() === RED)
            .map(t => t.textContent.trim()) : [],
        fills: shapes.map(s => (s.getAttribute('fill') || '').toLowerCase()),
        strokes: shapes.map(s => (s.getAttribute('stroke') || '').toLowerCase()),
    };
}""".replace("TITLE", repr(L3_TITLE)).replace("RED", repr(RED.lower()))


@dataclass(frozen=True)
class L3Picture:
    """The lab picture's SVG and, read from it, how the `l3` node is drawn."""

    svg: str
    lines: list[str]
    red_lines: list[str]
    fills: list[str]
    strokes: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def marked_failed(self) -> bool:
        return (RED.lower() in self.strokes or RED_FILL.lower() in self.fills
                or any("FAILED" in line for line in self.lines))


def read_l3(app: Any) -> L3Picture:
    got = app.evaluate(_READ_L3_NODE)
    assert got is not None, "the lab shows no inline SVG picture (.lab-picture svg)"
    assert got["found"], f"no node titled {L3_TITLE!r} in the lab's picture"
    return L3Picture(got["svg"], got["lines"], got["red_lines"], got["fills"], got["strokes"])


def wait_for_log(app: Any, text: str) -> None:
    """Wait until the lab's log shows `text`. The log is the last widget the lab updates
    after an action (status, summary, picture, trace, frame map, log), so once it reads the
    action's line, the picture and the status are those of that action."""
    from playwright.sync_api import expect

    expect(app.locator(".lab-log-text")).to_contain_text(text, timeout=TIMEOUT_MS)


def drive_seed_story(page: Any, artifacts_dir: Path, prefix: str) -> dict[str, L3Picture]:
    """Toggle 32-bit PV, pin, tick pae_extended_cr3 in the first `.lab-app` on the page and
    check status and picture after each; returns the pictures seen. Screenshots go to
    `artifacts_dir/<prefix>-erange.png` and `<prefix>-assist-ok.png`."""
    from playwright.sync_api import expect

    app = page.locator(".lab-app").first
    expect(app).to_be_visible(timeout=TIMEOUT_MS)
    status = app.locator(".lab-status .lab-status-text")
    summary = app.locator(".lab-summary")

    # The preset of the notebook's first lab cell.
    expect(app.locator(".lab-bitness button", has_text="64-bit PV")).to_have_class(
        re.compile(r"\bmod-active\b"), timeout=TIMEOUT_MS)
    expect(status).to_have_class(re.compile(r"\blab-status-(ok|info)\b"), timeout=TIMEOUT_MS)
    expect(app.locator(".lab-op-frame select")).to_have_value("l3", timeout=TIMEOUT_MS)
    assist = app.locator(".lab-assist-pae_extended_cr3 input[type=checkbox]")
    expect(assist).not_to_be_checked(timeout=TIMEOUT_MS)
    wait_for_log(app, "vCPU 0 initialised at start")
    preset = read_l3(app)
    assert not preset.marked_failed, f"l3 drawn failed before any pin: {preset.text}"

    # 1. a 32-bit PV guest: bitness changes, no hypercall, nothing fails.
    app.locator(".lab-bitness button", has_text="32-bit PV").click()
    wait_for_log(app, "guest bitness 32")
    expect(status).to_contain_text("guest bitness 32")
    expect(summary).to_contain_text("32-bit PV guest")
    expect(app.locator(".lab-bitness button", has_text="32-bit PV")).to_have_class(
        re.compile(r"\bmod-active\b"))
    before = read_l3(app)
    assert not before.marked_failed, f"l3 drawn failed before the pin: {before.text}"

    # 2. pin the high L3 without the assist: Xen 4.19+ refuses it in promote_l3_table.
    app.locator("button.lab-pin").click()
    wait_for_log(app, "pin l3 as L3: ERANGE")
    expect(status).to_have_class(re.compile(r"\blab-status-fail\b"))
    for part in ("pin l3 as L3", "ERANGE (-34)", "PAE pgd must be below 4GB",
                 "pae_extended_cr3 is off", "[promote_l3_table]"):
        expect(status).to_contain_text(part)
    erange = read_l3(app)
    assert erange.svg != before.svg, "the picture did not change after the pin click"
    assert RED.lower() in erange.strokes, f"l3 not outlined in {RED}: {erange.strokes}"
    assert RED_FILL.lower() in erange.fills, f"l3 not filled {RED_FILL}: {erange.fills}"
    assert "validation FAILED" in erange.red_lines, erange.lines
    red_text = " ".join(erange.red_lines)
    assert "at or above 4 GiB" in red_text and "pae_extended_cr3 is off" in red_text, red_text
    assert "-ERANGE" in red_text, red_text
    assert "pinned" not in erange.text, erange.text
    app.screenshot(path=str(artifacts_dir / f"{prefix}-erange.png"))

    # 3. the assist on: the pin is replayed under it and succeeds; the L3 is pinned.
    assist.check()
    wait_for_log(app, "VM-assist pae_extended_cr3 on")
    expect(status).to_have_class(re.compile(r"\blab-status-ok\b"))
    expect(status).to_contain_text(re.compile(r": ok\s*$"))
    expect(summary).to_contain_text("VM-assists: pae_extended_cr3")
    ok = read_l3(app)
    assert ok.svg != erange.svg, "the picture did not change after ticking pae_extended_cr3"
    assert not ok.marked_failed, f"l3 still drawn failed with the assist on: {ok.text}"
    assert ok.red_lines == [], ok.red_lines
    assert "pinned, validated" in ok.lines, ok.lines
    assert PINNED_FILL.lower() in ok.fills, f"l3 not filled {PINNED_FILL}: {ok.fills}"
    app.screenshot(path=str(artifacts_dir / f"{prefix}-assist-ok.png"))

    assert page.locator("text=Error displaying widget").count() == 0
    return {"preset": preset, "32-bit": before, "erange": erange, "assist-ok": ok}


def test_lab_notebook_pin_erange_then_assist_in_jupyterlab(
        page: Any, lab_server: Any, harness: Any, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    page.set_default_timeout(TIMEOUT_MS)
    page.set_viewport_size(VIEWPORT)
    page.goto(lab_server.notebook_url(NOTEBOOK))
    harness.run_all_cells(page)

    # Every lab cell rendered its widget (the notebook shows two labs), none failed.
    expect(page.locator(".jp-OutputArea-output .lab-app")).to_have_count(2, timeout=TIMEOUT_MS)
    assert page.locator("text=Error displaying widget").count() == 0
    # The first lab is the first code cell's output.
    first_cell = page.locator(".jp-CodeCell").first
    expect(first_cell.locator(".lab-app")).to_have_count(1)

    drive_seed_story(page, artifacts_dir, "lab")
    page.screenshot(path=str(artifacts_dir / "lab-notebook.png"))
