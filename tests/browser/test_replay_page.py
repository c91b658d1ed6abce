# SPDX-License-Identifier: MIT
"""`pvlab render FILE --step N --replay -o seed.html` in real Chromium, with the network
cut off: the page plays to the -ERANGE of promote_l3_table (the seed story's step 4 on
Xen 4.19), one frame per trace event. No server: the page is opened as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvlab.cli import main
from pvlab.scenario import load_scenario, run_scenario

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "scenarios" / "001-seed-issue-example.yaml"


@pytest.mark.parametrize("backend", ["dot", "fallback"])
def test_replay_page_plays_to_erange_offline(page: Any, tmp_path: Path, artifacts_dir: Path,
                                             backend: str) -> None:
    from playwright.sync_api import expect

    from pvlab.render import dot_available

    if backend == "dot" and not dot_available():
        pytest.skip("Graphviz dot is not installed")
    out = tmp_path / "seed.html"
    assert main(["render", str(SEED), "--step", "4", "--replay", "--backend", backend,
                 "-o", str(out)]) == 0
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else route.abort())
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(out.as_uri())
    events = run_scenario(load_scenario(SEED), stop_after=4).steps[-1].outcome.events
    expect(page.locator(".frame")).to_have_count(len(events))
    page.locator("#play").click()
    expect(page.locator("#cap.fail")).to_contain_text("[promote_l3_table]", timeout=20_000)
    expect(page.locator(".frame.on svg")).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / f"replay-page-{backend}-erange.png"))
    expect(page.locator("body")).to_have_attribute("data-frame", str(len(events)),
                                                   timeout=20_000)
    expect(page.locator("#cap")).to_contain_text("error ERANGE while pinning")
    assert [u for u in requests if not u.startswith("file:")] == []
