# SPDX-License-Identifier: MIT
"""Colours and words shared by every view and back end."""

from __future__ import annotations

RED = "#c62828"
RED_FILL = "#ffd9d6"
GREEN_FILL = "#dcf2dc"
PINNED_FILL = "#b8e3b8"
PARTIAL_FILL = "#fff1b3"
CANDIDATE_FILL = "#ffffff"
DATA_FILL = "#e3eefc"
FOREIGN_FILL = "#ffe4c4"
ROOT_FILL = "#ece3fb"
XEN_FILL = "#e0e0e0"
CHANGED = "#e65100"
MUTED = "#777777"
INK = "#222222"
LOW_FILL = "#f4f8ff"
HIGH_FILL = "#fff6ec"

STATUS_FILL = {
    "pinned": PINNED_FILL,
    "validated": GREEN_FILL,
    "partial": PARTIAL_FILL,
    "unvalidated": CANDIDATE_FILL,
    "failed": RED_FILL,
}

#: Frame-map colours by page type (guest frames) and by special owner.
TYPE_FILL = {
    "l1": "#c8e6c9",
    "l2": "#a5d6a7",
    "l3": "#81c784",
    "l4": "#4caf50",
    "writable": DATA_FILL,
    "none": "#f5f5f5",
    "seg_desc": "#fff59d",
    "shared": "#ffe082",
}
OWNER_FILL = {"dom_io": "#d7ccc8", "dom_xen": XEN_FILL}
#: Border colour per guest domain id (cycled), so owners read apart; with several
#: scenario domains the frame map also labels each frame with its domain's name.
OWNER_BORDER = ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"]

#: Layer of each pagetable level in the top-down pictures.
ROOT_LAYER = 0
DATA_LAYER = 5


def level_layer(level: int) -> int:
    """L4 -> 1, L3 -> 2, L2 -> 3, L1 -> 4; an unknown level sits with the L1s."""
    return 5 - level if 1 <= level <= 4 else 4
