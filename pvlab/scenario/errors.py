# SPDX-License-Identifier: MIT
"""The scenario language's error: names the file, the place and the key, and the fix."""

from __future__ import annotations

from pvlab.errors import PvlabError


class ScenarioError(PvlabError):
    """A scenario file is invalid. Names the file, the step and the key."""
