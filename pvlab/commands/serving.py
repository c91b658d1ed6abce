# SPDX-License-Identifier: MIT
"""What the commands that serve until stopped (`pvlab lab`, `pvlab hub`) share."""

from __future__ import annotations


def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop like Ctrl-C, so the command's own clean-up runs."""
    raise KeyboardInterrupt
