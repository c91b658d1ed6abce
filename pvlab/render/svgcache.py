# SPDX-License-Identifier: MIT
"""The SVG of pictures already drawn, by their whole view model and back end.

A lab action often draws a picture it drew a moment ago: undo, toggling a setting back,
the same replay frames. Drawing one costs milliseconds (the fallback) to a hundred and
more (a `dot` process); looking one up costs a hash of the model's nodes and edges
(frozen dataclasses). The key is every field of the :class:`GraphModel`, so any change
to a picture's model is a different picture. Least recently used pictures go first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields
from typing import Any

from .model import GraphModel

#: Pictures kept (a 60-frame picture's SVG is about 50-100 KB).
SIZE = 48
_CACHE: OrderedDict[tuple[Any, ...], str] = OrderedDict()


def key(model: GraphModel, backend: str) -> tuple[Any, ...] | None:
    """The cache key of `model` drawn by `backend` (None: not cacheable)."""
    parts: list[Any] = [backend]
    for f in fields(model):
        v = getattr(model, f.name)
        parts.append(tuple(v) if isinstance(v, list) else v)
    k = tuple(parts)
    try:
        hash(k)
    except TypeError:
        return None
    return k


def get(k: tuple[Any, ...] | None) -> str | None:
    if k is None:
        return None
    got = _CACHE.get(k)
    if got is not None:
        _CACHE.move_to_end(k)
    return got


def put(k: tuple[Any, ...] | None, svg: str) -> None:
    if k is None:
        return
    _CACHE[k] = svg
    if len(_CACHE) > SIZE:
        _CACHE.popitem(last=False)


def clear() -> None:
    _CACHE.clear()


__all__ = ["SIZE", "clear", "get", "key", "put"]
