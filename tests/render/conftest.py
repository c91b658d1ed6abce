# SPDX-License-Identifier: MIT
"""Shared fixtures: run every test that draws SVG with dot and with the fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from render_support import BACKENDS

from pvlab.render import get_backend, set_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    old = get_backend()
    set_backend(request.param)
    try:
        yield request.param
    finally:
        set_backend(old)
