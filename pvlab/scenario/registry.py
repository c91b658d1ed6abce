# SPDX-License-Identifier: MIT
"""Extra scenario steps registered by other packages (e.g. the toolstack's flows).

A step kind names its required and optional keys and a runner
`run(state: RunState, step: Step) -> Outcome`. Frame-name arguments are passed as
written; the runner resolves them with `state.mfn(name)`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Modules that register steps when imported.
PLUGINS = ("pvlab.toolstack.steps",)


@dataclass(frozen=True)
class StepKind:
    op: str
    required: set[str]
    optional: set[str]
    run: Callable[[Any, Any], Any]
    doc: str = ""


EXTRA_STEPS: dict[str, StepKind] = {}


StepRunner = Callable[[Any, Any], Any]


def register_step(op: str, *, required: set[str], optional: set[str] | None = None,
                  doc: str = "") -> Callable[[StepRunner], StepRunner]:
    """Decorator: register `fn(run, step) -> Outcome` as the scenario step `op`."""

    def deco(fn: StepRunner) -> StepRunner:
        EXTRA_STEPS[op] = StepKind(op, set(required), set(optional or ()), fn, doc)
        return fn
    return deco


_loaded = False


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PLUGINS:
        if importlib.util.find_spec(mod.rsplit(".", 1)[0]) and importlib.util.find_spec(mod):
            importlib.import_module(mod)
