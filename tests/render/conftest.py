# SPDX-License-Identifier: MIT
"""Shared fixtures: run every test that draws SVG with dot and with the fallback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvlab.render import get_backend, set_backend

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "scenarios").glob("*.yaml"))
OWN = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))

try:
    import graphviz  # noqa: F401

    HAVE_GRAPHVIZ = True
except ImportError:  # the `lab` extra brings it; the fallback needs nothing
    HAVE_GRAPHVIZ = False
HAVE_DOT = shutil.which("dot") is not None and HAVE_GRAPHVIZ
needs_graphviz = pytest.mark.skipif(not HAVE_GRAPHVIZ, reason="graphviz package missing")
BACKENDS = [pytest.param("dot", marks=pytest.mark.skipif(not HAVE_DOT, reason="no dot")),
            "fallback"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    old = get_backend()
    set_backend(request.param)
    try:
        yield request.param
    finally:
        set_backend(old)
