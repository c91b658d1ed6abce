# SPDX-License-Identifier: MIT
"""The danger marking: what a guest could exploit in the state a picture shows.

The facts come from the core (:func:`pvlab.xen.danger.find_dangers`); this only adds
them to a view model: a red "⚠ danger" row on the frame concerned and a note under the
picture, and to the text dumps (one line each after the tables). Fixed Xen never
reaches these states; a `pre-xsa-NNN` profile can.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from pvlab.xen.danger import Danger

from .model import GraphModel, Row

#: The text every danger row and note starts with (tests and the UI look for it).
MARK = "⚠ danger"


def line(d: Danger) -> str:
    """One danger as the pictures and the text dumps write it."""
    tag = f" (XSA-{d.xsa})" if d.xsa else ""
    return f"{MARK}{tag}: {d.explanation}"


def text(dangers: Iterable[Danger]) -> str:
    """The dangers as lines for a text dump ("" when there are none)."""
    return "".join(line(d) + "\n" for d in dangers)


def mark(model: GraphModel, dangers: Iterable[Danger]) -> GraphModel:
    """Add each danger to the node of its frame (if drawn) and to the notes."""
    for d in dangers:
        text = line(d)
        model.notes.append(text)
        for k, n in enumerate(model.nodes):
            if n.mfn == d.mfn and n.kind in ("table", "candidate", "data", "frame"):
                model.nodes[k] = replace(n, rows=(*n.rows, Row(text, tone="bad")))
                break
    return model


def dangers_in(model: GraphModel) -> list[str]:
    """The danger notes of a picture."""
    return [n for n in model.notes if n.startswith(MARK)]


__all__ = ["MARK", "dangers_in", "line", "mark", "text"]
