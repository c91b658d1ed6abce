# SPDX-License-Identifier: MIT
"""Constants shared by the render tests (a module of its own: every conftest.py is imported
under the one name "conftest", so tests must not import from it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
