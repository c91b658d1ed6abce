# SPDX-License-Identifier: MIT
"""`pvlab export`: a scenario as a self-contained regression test for Xen (no pvlab needed)."""

from .writer import Export, export_scenario

__all__ = ["Export", "export_scenario"]
