# SPDX-License-Identifier: MIT
"""The public entry points: each builds a view model from core state, wrapped in a View."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pvlab.errors import PvlabError
from pvlab.scenario.registry import steps
from pvlab.trace import Outcome
from pvlab.xen.danger import find_dangers

from . import danger, diffview, frames, tables, tables_graph, walkview
from .state import Snapshot, snapshot
from .view import View

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs is Python 3.13+

    from pvlab.scenario.runner import ScenarioRun
    from pvlab.xen.hypervisor import Guest, Xen

__all__ = ["diff_view", "frames_view", "run_context", "snapshot", "tables_view", "text_dump",
           "walk_view"]


def _is_run(obj: object) -> TypeIs[ScenarioRun]:
    """Duck-typed: anything with a ScenarioRun's scenario, steps and xen counts as a run."""
    return hasattr(obj, "scenario") and hasattr(obj, "steps") and hasattr(obj, "xen")


def scenario_hints(run: ScenarioRun) -> dict[int, int]:
    """MFN -> level from what the scenario does with its frames (each step kind's hint)."""
    abi = run.guest.domain.abi
    kinds = steps()
    hints: dict[int, int] = {}
    for step in run.scenario.steps:
        kind = kinds.get(step.op)
        if kind is None or kind.level_hint is None or step.params is None:
            continue
        hint = kind.level_hint(step.params, abi)
        if hint is None:
            continue
        try:
            mfn = run.mfn(hint[0])
        except (KeyError, TypeError, ValueError):
            continue
        hints.setdefault(mfn, int(hint[1]))
    return hints


def domain_labels(run: ScenarioRun) -> dict[int, str]:
    """Owner names for pictures of a scenario with several domains (`domains:`):
    domid -> "name (dN)"; empty for a one-guest scenario (owners read "d1", "d2")."""
    if not run.scenario.multi_domain:
        return {}
    return {g.domid: f"{name} (d{g.domid})" for name, g in run.domains.items()}


def run_context(run: ScenarioRun) -> tuple[dict[int, str], Outcome | None, dict[int, int], str]:
    """Names, last outcome, level hints and a title for a ScenarioRun's current state."""
    names = {m: n for n, m in run.frames.items()}
    last = next((s for s in reversed(run.steps) if not s.is_check), None)
    outcome = last.outcome if last is not None else None
    title = run.scenario.name
    if run.steps:
        s = run.steps[-1]
        title += f" — after step {s.index}: {s.description}"
        if not s.is_check:
            title += f" → {s.result}"
    else:
        title += " — set-up, before step 1"
    return names, outcome, scenario_hints(run), title


def _resolve(xen: Any, guest: Any, names: Mapping[int, str] | None,
             outcome: Outcome | None) -> tuple[Snapshot, dict[int, str], Outcome | None,
                                               dict[int, int], str]:
    if _is_run(xen):
        run = xen
        rnames, routcome, hints, title = run_context(run)
        return (snapshot(run.xen, run.guest, labels=domain_labels(run)),
                {**rnames, **(names or {})},
                outcome if outcome is not None else routcome, hints, title)
    if isinstance(xen, Snapshot):
        return xen, dict(names or {}), outcome, {}, f"{xen.label}: pagetables"
    if guest is None:
        raise PvlabError("tables_view needs a guest", "call tables_view(xen, guest) or "
                         "tables_view(run) with a ScenarioRun")
    title = f"{guest.domain.label}: pagetables"
    if outcome is not None:
        title += f" after {outcome.op} → {outcome.result}"
    return snapshot(xen, guest), dict(names or {}), outcome, {}, title


def tables_view(xen: Xen | ScenarioRun | Snapshot, guest: Guest | None = None, *,
                outcome: Outcome | None = None, names: Mapping[int, str] | None = None,
                hints: Mapping[int, int] | None = None, title: str | None = None,
                summary: bool | None = None) -> View:
    """The pagetable graph: CR3 -> L4 -> L3 -> L2 -> L1 -> data, either side of 4 GiB.

    `tables_view(run)` takes a ScenarioRun (its frame names and its last step's
    outcome). After a failed `outcome` the failing frame and entry are red and the node
    carries the reason. A guest with more than `summary.SUMMARY_TABLES` pagetables is
    drawn summarised (groups of tables, runs of frames: `pvlab.render.summary`);
    `summary=True` / `False` forces either picture for a (xen, guest) pair.
    """
    if (summary or summary is None) and guest is not None and outcome is None \
            and not _is_run(xen) and not isinstance(xen, Snapshot):
        from . import summary as summ

        if summary or summ.wants_summary(xen, guest):
            return summ.summary_view(xen, guest, title=title)
    snap, nm, out, rhints, rtitle = _resolve(xen, guest, names, outcome)
    forest = tables.analyse(snap, names=nm, outcome=out, hints={**rhints, **(hints or {})})
    model = tables_graph.build(forest, title=title or rtitle)
    hv = xen.xen if _is_run(xen) else xen
    found = [] if isinstance(hv, Snapshot) else find_dangers(hv)  # needs the live state
    danger.mark(model, found)
    return View(model, lambda: tables.dump(forest) + danger.text(found))


def text_dump(xen: Xen | ScenarioRun | Snapshot, guest: Guest | None = None, *,
              names: Mapping[int, str] | None = None, outcome: Outcome | None = None,
              hints: Mapping[int, int] | None = None) -> str:
    """Canonical text: one line per present entry, indented per level (stable), then
    one "⚠ danger" line per dangerous fact of a live state (`pvlab.xen.danger`)."""
    snap, nm, out, rhints, _ = _resolve(xen, guest, names, outcome)
    forest = tables.analyse(snap, names=nm, outcome=out, hints={**rhints, **(hints or {})})
    hv = xen.xen if _is_run(xen) else xen
    return tables.dump(forest) + ("" if isinstance(hv, Snapshot) else
                                  danger.text(find_dangers(hv)))  # the live state's dangers


def walk_view(xen: Xen | ScenarioRun, guest: Guest | None = None, va: int | None = None, *,
              vcpu: int = 0, write: bool = False, user: bool = False, fetch: bool = False,
              names: Mapping[int, str] | None = None) -> View:
    """One virtual-address translation through the guest's current tables."""
    if va is None and isinstance(guest, int) and not isinstance(guest, bool):
        guest, va = None, guest  # walk_view(run, 0x1000)
    if va is None:
        raise PvlabError("walk_view needs a virtual address", "pass va=0x401000, for example")
    snap, nm, _, _, _ = _resolve(xen, guest, names, None)
    return walkview.build(snap, va, vcpu=vcpu, write=write, user=user, fetch=fetch, names=nm)


def frames_view(xen: Xen | ScenarioRun, *, guest: Guest | None = None,
                outcome: Outcome | None = None, names: Mapping[int, str] | None = None) -> View:
    """Machine memory as a grid of frames coloured by owner and type, 4 GiB marked."""
    if _is_run(xen):
        run = xen
        rnames, routcome, _, title = run_context(run)
        return frames.build(run.xen, guest or run.guest, outcome=outcome or routcome,
                            names={**rnames, **(names or {})}, title=title,
                            labels=domain_labels(run))
    return frames.build(xen, guest, outcome=outcome, names=dict(names or {}))


def diff_view(before: Snapshot, after: Snapshot, *, outcome: Outcome | None = None,
              names: Mapping[int, str] | None = None, hints: Mapping[int, int] | None = None,
              title: str | None = None) -> View:
    """The state after an operation, with what changed since `before` marked."""
    return diffview.build(before, after, outcome=outcome, names=dict(names or {}),
                          hints=dict(hints or {}), title=title)
