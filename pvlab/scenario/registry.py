# SPDX-License-Identifier: MIT
"""The step registry: every scenario operation is one registered, typed step.

A :class:`StepKind` holds all there is to know about one operation: its argument class
(a dataclass whose fields say their kind, default and whether they name frames), extra
cross-field validation, how it runs on a :class:`~pvlab.scenario.runner.ScenarioRun`
(returning an :class:`~pvlab.trace.Outcome`), a one-line summary, how ``pvlab verify``
replays it on real Xen (or why it cannot), which table level it tells a picture about,
and the fields a lab form shows. The parser, the runner, the JSON Schema
(`pvlab schema`), the pictures and the replay planner all read this one table.

The built-in operations are in :mod:`pvlab.scenario.operations`; the toolstack's flows in
:mod:`pvlab.toolstack.steps` register the same way::

    @dataclass(frozen=True)
    class FlushArgs(StepArgs):
        vcpu: int = param("int", 0, help="the vCPU")

    @step("tlb_flush", FlushArgs, summary="MMUEXT_TLB_FLUSH_LOCAL", replay=_replay_flush)
    def _tlb_flush(run: ScenarioRun, args: FlushArgs) -> Outcome:
        return run.guest.tlb_flush()
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pvlab.scenario.params import FrameRef, Where, is_required, key_of, parse_field, spec_of

if TYPE_CHECKING:
    from pvlab.scenario.runner import ScenarioRun
    from pvlab.trace import Outcome
    from pvlab.verify.replay import ScenarioPlan, StepPlan
    from pvlab.xen.abi import PV64Abi

#: Modules that register steps when imported (the built-ins first).
PLUGINS = ("pvlab.scenario.operations", "pvlab.scenario.domain_steps", "pvlab.toolstack.steps")


@dataclass(frozen=True)
class StepArgs:
    """Base of every step's argument class (a frozen dataclass of `param()` fields)."""

    def given(self) -> dict[str, Any]:
        """The fields whose value differs from the default (what a file would write)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if is_required(f) or value != f.default:
                out[key_of(f)] = value
        return out


A = TypeVar("A", bound=StepArgs)
#: `replay(plan, step_number, args as written) -> StepPlan`.
Replayer = Callable[["ScenarioPlan", int, dict[str, Any]], "StepPlan"]
#: Cross-field rules: raise `at.err(...)` when the keys given do not go together.
Validator = Callable[[Where, Mapping[str, Any]], None]
#: The table a step names and the level it gives that table, for pictures.
LevelHint = Callable[[Any, "PV64Abi"], "tuple[FrameRef, int] | None"]


@dataclass(frozen=True)
class StepKind(Generic[A]):
    """One operation of the scenario language."""

    op: str
    args: type[A]
    run: Callable[[ScenarioRun, A], Outcome]
    summary: str
    #: How `pvlab verify` replays the step; None with `no_replay` saying why it cannot.
    replay: Replayer | None = None
    no_replay: str = ""
    #: A check step: it carries its expectation in its own keys (no `expect:`).
    check: bool = False
    #: Only the guest itself can issue it (a replay then boots the probe as the guest).
    guest_only: bool = False
    #: Skipping it in a replay changes no state (later steps still replay).
    stateless: bool = False
    validate: Validator | None = None
    level_hint: LevelHint | None = None
    #: The fields a lab form offers, in order (all fields when empty).
    form: tuple[str, ...] = ()
    #: A toolstack operation (a domctl): only a privileged domain may issue it (`as:`).
    privileged_only: bool = False

    def fields(self) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(self.args)

    @property
    def required(self) -> set[str]:
        return {key_of(f) for f in self.fields() if is_required(f)}

    @property
    def optional(self) -> set[str]:
        return {key_of(f) for f in self.fields() if not is_required(f)}

    @property
    def form_fields(self) -> tuple[str, ...]:
        """The fields a lab form offers, in order (`form`, else every field)."""
        return self.form or tuple(key_of(f) for f in self.fields())

    @property
    def domain_fields(self) -> tuple[str, ...]:
        """The fields that name domains (checked against `domains:` by the parser)."""
        return tuple(key_of(f) for f in self.fields() if spec_of(f).kind == "domain")

    @property
    def frame_fields(self) -> tuple[str, ...]:
        """The fields that name frames (resolved with `run.mfn`)."""
        return tuple(f.name for f in self.fields() if spec_of(f).kind == "frame")

    def parse(self, at: Where, raw: Mapping[str, Any], frames: Any) -> tuple[A, dict[str, Any]]:
        """Check `raw` (the step's mapping) -> (typed arguments, the normalised mapping)."""
        allowed = self.required | self.optional
        for key in raw:
            if key not in allowed:
                raise at.err("unknown key", f"use one of: {', '.join(sorted(allowed))}", key=key)
        for key in sorted(self.required):
            if key not in raw:
                raise at.err(f"missing key {key!r}", f"add {key}: ...")
        values: dict[str, Any] = {}
        for f in self.fields():
            if key_of(f) in raw:
                values[f.name] = parse_field(at, f, raw[key_of(f)], frames)
        if self.validate is not None:
            self.validate(at, raw)
        # The mapping stays in YAML's shapes (lists, not tuples), as a file would write it.
        names = {key_of(f): f.name for f in self.fields()}
        normalised = {k: _yaml_shape(values[names[k]]) for k in raw}
        return self.args(**values), normalised


def _yaml_shape(value: Any) -> Any:
    """A parsed value as a file writes it (a list for a tuple, a mapping for a record)."""
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v or k != "offset"}
    return value


STEPS: dict[str, StepKind[Any]] = {}


def register(kind: StepKind[A]) -> StepKind[A]:
    if kind.op in STEPS and STEPS[kind.op].run is not kind.run:
        raise ValueError(f"scenario step {kind.op!r} is registered twice")
    STEPS[kind.op] = kind
    return kind


def step(op: str, args: type[A], *, summary: str, replay: Replayer | None = None,
         no_replay: str = "", check: bool = False, guest_only: bool = False,
         stateless: bool = False, validate: Validator | None = None,
         level_hint: LevelHint | None = None, form: tuple[str, ...] = (),
         privileged_only: bool = False,
         ) -> Callable[[Callable[[ScenarioRun, A], Outcome]],
                       Callable[[ScenarioRun, A], Outcome]]:
    """Decorator: register `fn(run, args) -> Outcome` as the scenario operation `op`."""

    def deco(fn: Callable[[ScenarioRun, A], Outcome]) -> Callable[[ScenarioRun, A], Outcome]:
        register(StepKind(op, args, fn, summary, replay=_one_domain_replay(op, replay),
                          no_replay=no_replay,
                          check=check, guest_only=guest_only, stateless=stateless,
                          validate=validate, level_hint=level_hint, form=form,
                          privileged_only=privileged_only))
        return fn
    return deco


#: Why a step issued `as:` a named domain, or naming a `foreign:` one, is not replayed by
#: a plan that knows one guest only.
SKIP_OTHER_DOMAIN = ("issued as (or naming) another domain of a domains: scenario: replayed "
                     "once the probe runs that domain as an agent domU (docs/verify.md)")


def _one_domain_replay(op: str, replay: Replayer | None) -> Replayer | None:
    """A step's replay, guarded: the steps of a `domains:` scenario that name a domain (`as:`,
    `foreign:`) are skipped unless the plan knows the scenario's domains (a plan with a
    `domains` attribute replays them itself)."""
    if replay is None:
        return None

    def guarded(plan: ScenarioPlan, i: int, a: dict[str, Any]) -> StepPlan:
        if ("as" in a or "foreign" in a) and getattr(plan, "domains", None) is None:
            from pvlab.verify.replay import StepPlan

            return StepPlan(i, op, skip=SKIP_OTHER_DOMAIN)
        return replay(plan, i, a)
    return guarded


_loaded = False


def load_plugins() -> None:
    """Import the modules that register steps (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PLUGINS:
        importlib.import_module(mod)


def steps() -> dict[str, StepKind[Any]]:
    """Every registered operation, by name."""
    load_plugins()
    return STEPS


def check_ops() -> set[str]:
    """The check steps (`expect_page`, `expect_entry`)."""
    return {op for op, kind in steps().items() if kind.check}
