# SPDX-License-Identifier: MIT
"""`View`: one picture, with its model and every way to show it.

`View.svg()` uses `dot` when it is installed (detected once with `shutil.which`) and
the pure-Python fallback otherwise; `set_backend("fallback" | "dot" | "auto")`
overrides the choice (tests render both ways in one run).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError

from . import svgcache
from .model import GraphModel

BACKENDS = ("auto", "dot", "fallback")
_state: dict[str, Any] = {"backend": "auto", "dot": None}


def set_backend(name: str) -> None:
    """Choose how `View.svg()` draws: `"auto"` (dot if installed), `"dot"`, `"fallback"`."""
    if name not in BACKENDS:
        raise PvlabError(f"unknown render back end {name!r}", f"use one of {', '.join(BACKENDS)}")
    _state["backend"] = name


def get_backend() -> str:
    return str(_state["backend"])


def dot_available() -> bool:
    """Is Graphviz's `dot` on PATH (checked once) and the `graphviz` package importable?"""
    if _state["dot"] is None:
        ok = shutil.which("dot") is not None
        if ok:
            try:
                import graphviz  # noqa: F401
            except ImportError:
                ok = False
        _state["dot"] = ok
    return bool(_state["dot"])


def active_backend() -> str:
    """The back end `View.svg()` will use now: `"dot"` or `"fallback"`."""
    b = get_backend()
    if b == "auto":
        return "dot" if dot_available() else "fallback"
    return b


class View:
    """A picture of core state: `.model`, `.text()`, `.dot_source()`, `.svg()`."""

    def __init__(self, model: GraphModel, text: str | Callable[[], str]) -> None:
        self.model = model
        self._text = text

    def __repr__(self) -> str:
        return f"<View {self.model.kind}: {self.model.title} ({len(self.model.nodes)} nodes)>"

    def text(self) -> str:
        """The canonical plain-text form (stable: tests compare it byte for byte)."""
        return self._text() if callable(self._text) else self._text

    def dot_source(self) -> str:
        from .dot import dot_source

        return dot_source(self.model)

    def svg(self, *, backend: str | None = None) -> str:
        """SVG text: from `dot` when available (or asked for), else the fallback.

        Pictures already drawn (the same model, the same back end) come from a small
        cache (`pvlab.render.svgcache`): undo, toggling back, replaying."""
        b = backend or active_backend()
        if b == "auto":
            b = "dot" if dot_available() else "fallback"
        key = svgcache.key(self.model, b)
        got = svgcache.get(key)
        if got is not None:
            return got
        out = self._draw(b, backend)
        if backend is None and b == "dot" and _state["dot"] is False:
            return out  # dot failed and the fallback drew it: not cached as dot's
        svgcache.put(key, out)
        return out

    def _draw(self, b: str, backend: str | None) -> str:
        if b == "dot":
            from .dot import render_svg

            try:
                return render_svg(self.model)
            except Exception as err:  # graphviz.ExecutableNotFound, CalledProcessError
                if backend is None and get_backend() == "auto":
                    _state["dot"] = False
                    return self.svg(backend="fallback")
                raise PvlabError(f"Graphviz could not draw this picture: {err}",
                                 "install Graphviz (apt-get install graphviz) or call "
                                 "pvlab.render.set_backend('fallback')") from None
        from .svg import render_svg as fallback

        return fallback(self.model)

    def png(self) -> bytes:
        """PNG bytes (needs `dot`)."""
        from .dot import render_png

        return render_png(self.model)

    def save(self, path: str | Path) -> Path:
        """Write `.svg`, `.txt`, `.dot` or `.png` by the file's suffix."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".svg":
            p.write_text(self.svg(), encoding="utf-8")
        elif suffix == ".txt":
            p.write_text(self.text(), encoding="utf-8")
        elif suffix in (".dot", ".gv"):
            p.write_text(self.dot_source(), encoding="utf-8")
        elif suffix == ".png":
            p.write_bytes(self.png())
        else:
            raise PvlabError(f"cannot tell the format of {p.name!r} from its suffix",
                             "use a file name ending in .svg, .txt, .dot or .png")
        return p

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"image/svg+xml": self.svg(), "text/plain": self.text()}
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle


def svg_many(views: list[View], *, backend: str | None = None) -> list[str]:
    """SVG of several views; with dot, one process draws them all (a step slider's worth)."""
    b = backend or active_backend()
    if b == "auto":
        b = "dot" if dot_available() else "fallback"
    if not views:
        return []
    keys = [svgcache.key(v.model, b) for v in views]
    out = [svgcache.get(k) for k in keys]
    todo = [i for i, got in enumerate(out) if got is None]
    if todo:
        drawn = _svg_many([views[i] for i in todo], b, backend)
        fell_back = b == "dot" and _state["dot"] is False
        for i, svg in zip(todo, drawn, strict=True):
            out[i] = svg
            if not fell_back:
                svgcache.put(keys[i], svg)
    return [s for s in out if s is not None]


def _svg_many(views: list[View], b: str, backend: str | None) -> list[str]:
    if b == "dot" and views:
        from .dot import render_many

        try:
            return render_many([v.model for v in views])
        except Exception as err:  # dot missing or failed: same rule as View.svg()
            if backend is None and get_backend() == "auto":
                _state["dot"] = False
                return [v.svg(backend="fallback") for v in views]
            raise PvlabError(f"Graphviz could not draw these pictures: {err}",
                             "install Graphviz (apt-get install graphviz) or call "
                             "pvlab.render.set_backend('fallback')") from None
    return [v.svg(backend="fallback") for v in views]


_XML_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)


def inline_svg(svg: str) -> str:
    """An SVG document made fit for inline HTML (no XML declaration or DOCTYPE)."""
    return _XML_PROLOGUE.sub("", svg, count=1)
