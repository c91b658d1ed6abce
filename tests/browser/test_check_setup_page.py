# SPDX-License-Identifier: MIT
"""Smoke test of the browser harness: the set-up check notebook in real JupyterLab shows the
same checks `pvlab doctor` computes, and its widget renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pvlab.doctor import run_checks


def test_check_setup_notebook_renders_the_doctor_table(
        page: Any, lab_server: Any, harness: Any, artifacts_dir: Path) -> None:
    page.set_default_timeout(60_000)
    page.goto(lab_server.notebook_url("00-check-setup.ipynb"))
    harness.run_all_cells(page)

    rows = page.locator("table.pvlab-doctor tbody tr")
    rows.first.wait_for()
    expected = run_checks()  # same interpreter and environment as the kernel
    assert rows.count() == len(expected)
    for row, check in zip(rows.all(), expected, strict=True):
        cells = row.locator("td")
        assert cells.nth(0).inner_text().strip() == ("OK" if check.ok else "FAIL")
        assert cells.nth(1).inner_text().strip() == check.name

    slider = page.locator(".widget-slider")
    slider.first.wait_for()
    assert page.locator("text=Error displaying widget").count() == 0
    page.screenshot(path=str(artifacts_dir / "00-check-setup.png"), full_page=True)
