# SPDX-License-Identifier: MIT
"""The course notebooks added in the second wave (and 07) open and run in real JupyterLab and
Chromium: every cell runs without an error output, and their pictures (the frame maps of the
migration notebook, the side-by-side XSA pictures of 07) are drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: notebook -> the least number of SVG pictures its outputs must show
PAGES = {"07-why-these-rules-exist.ipynb": 10, "08-migration.ipynb": 2}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_course_notebook_runs_in_jupyterlab(name: str, page: Any, lab_server: Any, harness: Any,
                                            artifacts_dir: Path) -> None:
    page.set_default_timeout(60_000)
    page.goto(lab_server.notebook_url(name))
    harness.run_all_cells(page, timeout_ms=240_000)
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.first.inner_text()
    # JupyterLab shows an image/svg+xml output as an <img> (data URI), inline HTML as <svg>
    pictures = page.locator(".jp-OutputArea-output svg, .jp-OutputArea-output img")
    assert pictures.count() >= PAGES[name]
    assert page.locator("text=Traceback").count() == 0
    page.screenshot(path=str(artifacts_dir / name.replace(".ipynb", ".png")), full_page=True)
