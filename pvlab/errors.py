# SPDX-License-Identifier: MIT
"""The one exception a user can cause: a clear message naming the problem and the fix."""

from __future__ import annotations


class PvlabError(Exception):
    """A problem the user caused (bad scenario file, impossible frame request, unknown name).

    `str(err)` is one line: the problem, then the fix.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message} (fix: {fix})")
