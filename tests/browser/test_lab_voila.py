# SPDX-License-Identifier: MIT
"""`pvlab lab --app`: the scenario lab as a standalone Voila page, in real Chromium.

The entry point itself is started (on a free port, serving a scratch copy of notebooks/), its
printed URL is opened, and the page must show notebooks/lab-app.ipynb without any code or
prose: the lab's widgets only, one lab, full width. The clicks and checks are those of the
JupyterLab test (`drive_seed_story`): 32-bit PV, pin -> -ERANGE with the L3 drawn failed,
pae_extended_cr3 -> the replayed pin succeeds, the picture changing each time.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_lab_notebook import TIMEOUT_MS, VIEWPORT, drive_seed_story

pytestmark = pytest.mark.browser

START_TIMEOUT = 120.0
URL_LINE = re.compile(r"^\s*(http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+)\s*$")
#: Source lines of the notebook's code cells that must not reach the page.
CODE_SNIPPETS = ('lab.allocate("l3", above="4GiB")', "from pvlab.ui import Lab",
                 "Lab(page=True)", "SPDX-License-Identifier")


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode(errors="replace"))


@pytest.fixture
def lab_app_url(chromium_path: Path, harness: Any, tmp_path: Path) -> Iterator[str]:
    """Run `pvlab lab --app` on a free port over a scratch copy of notebooks/; its URL."""
    notebooks = harness.copy_notebooks(tmp_path / "notebooks")
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "pvlab", "lab", "--app", f"--port={harness.free_port()}",
           f"--notebook-dir={notebooks}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=harness._isolated_env(home), cwd=tmp_path)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None:
            if time.monotonic() > deadline:
                pytest.fail("`pvlab lab --app` printed no URL within "
                            f"{START_TIMEOUT:.0f} s:\n{''.join(seen)}", pytrace=False)
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if proc.poll() is not None:
                    pytest.fail(f"`pvlab lab --app` exited with {proc.returncode}:\n"
                                f"{''.join(seen)}", pytrace=False)
                continue
            seen.append(line)
            if match := URL_LINE.match(line):
                url = match.group(1)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()  # pvlab stops the Voila server it started, as on Ctrl-C
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def test_lab_app_serves_the_lab_without_code_in_voila(
        page: Any, lab_app_url: str, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    page.set_default_timeout(TIMEOUT_MS)
    page.set_viewport_size(VIEWPORT)
    page.goto(lab_app_url)

    # Voila renders the notebook's output: one lab, no widget error.
    expect(page.locator(".lab-app")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(".lab-app").first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.locator("text=Error displaying widget").count() == 0

    # A page without code: the code cells keep only their outputs (Voila strips the
    # sources), no editor or prompt anywhere; input areas are the rendered markdown only.
    code_cells = page.locator(".jp-CodeCell")
    assert code_cells.count() == 1
    assert page.locator(".jp-CodeCell:not(.jp-mod-noInput)").count() == 0
    assert page.locator(".jp-CodeCell .jp-InputArea").count() == 0
    assert page.locator(".jp-InputArea:not(.jp-MarkdownCell .jp-InputArea)").count() == 0
    for selector in (".jp-InputPrompt", ".cm-editor", ".CodeMirror", ".jp-CodeMirrorEditor"):
        assert page.locator(selector).count() == 0, f"Voila page shows code: {selector}"
    body = page.locator("body").inner_text()
    for snippet in CODE_SNIPPETS:
        assert snippet not in body, f"Voila page shows the code {snippet!r}"
    # ...and no prose: the page is the lab, as wide as the window.
    assert page.locator(".jp-MarkdownCell .jp-RenderedMarkdown p").count() == 0
    width = page.evaluate("() => document.querySelector('.lab-app').getBoundingClientRect()"
                          ".width")
    assert width >= 0.95 * VIEWPORT["width"] - 20, width

    drive_seed_story(page, artifacts_dir, "voila")
    page.screenshot(path=str(artifacts_dir / "voila-page.png"))
