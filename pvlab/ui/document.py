# SPDX-License-Identifier: MIT
"""The lab's document: a scenario in the making.

Everything the lab shows is rebuilt from a :class:`Document` by the scenario runner,
so a sketch made by clicking is, at every moment, a scenario file: `to_data()` is
what `export_yaml()` writes and what `pvlab run` reads back.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from pvlab.scenario import Scenario, ScenarioRun, load_scenario, parse_scenario, run_scenario
from pvlab.units import format_size
from pvlab.x86.flags import flag_names
from pvlab.xen.abi import abi_for
from pvlab.xen.profiles import DEFAULT_PROFILE

#: Steps that check state and carry their expectation in their own keys.
CHECK_OPS = ("expect_page", "expect_entry")
#: Step keys that name a frame.
FRAME_KEYS = ("frame", "table", "to", "cr3")

_ROLE_RE = re.compile(r"^l([1-4])(?![0-9])", re.IGNORECASE)


class HexInt(int):
    """An int that YAML export writes in hex (MFNs, raw entry values)."""


class Flow(dict[str, Any]):
    """A mapping that YAML export writes on one line (`{to: l2, flags: [P]}`)."""


class _Dumper(yaml.SafeDumper):
    pass


def _flow(dumper: yaml.SafeDumper, value: Flow) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", dict(value), flow_style=True)


def _hex(dumper: yaml.SafeDumper, value: HexInt) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:int", hex(value))


_Dumper.add_representer(HexInt, _hex)
_Dumper.add_representer(Flow, _flow)


def flags_list(value: int) -> list[str]:
    return flag_names(value)


def role_from_name(name: str) -> int | None:
    m = _ROLE_RE.match(name)
    return int(m.group(1)) if m else None


@dataclass
class Document:
    """Guest settings, frames, initial table contents, steps and the step cursor."""

    name: str = "lab-sketch"
    description: str = ""
    xen: str = DEFAULT_PROFILE
    host_memory: int = 8 << 30
    bitness: int = 64
    vm_assists: list[str] = field(default_factory=list)
    vcpu0_initialised: bool = False
    vcpus: int = 1
    privileged: bool = False
    #: name -> spec as scenario files write it ({}, {below: ...}, {mfn: ...})
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: name -> the pagetable level the learner means the frame to be (lab-only)
    roles: dict[str, int] = field(default_factory=dict)
    #: name -> index -> entry ({to, flags} | {mfn, flags} | {value}), written before steps
    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    #: scenario steps ({op: args, expect?: ...})
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: how many steps are applied (step/back move it)
    cursor: int = 0
    #: name -> MFN each frame got when first built; rebuilding keeps frames where they are
    #: (lab-only: the export writes the specs above)
    placed: dict[str, int] = field(default_factory=dict)
    placement: str = "low-first"
    seed: int = 0

    def copy(self) -> Document:
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ as a scenario
    def to_data(self, *, upto: int | None = None, exact: bool = False) -> dict[str, Any]:
        """The document as a scenario mapping (steps up to `upto`, default all).

        `exact=True` pins every frame already placed to its MFN (how the lab rebuilds).
        """
        guest: dict[str, Any] = {"bitness": self.bitness, "vm_assists": list(self.vm_assists),
                                 "vcpu0_initialised": self.vcpu0_initialised}
        if self.vcpus != 1:
            guest["vcpus"] = self.vcpus
        if self.privileged:
            guest["privileged"] = True
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["xen"] = self.xen
        if self.host_memory != 8 << 30:
            data["host_memory"] = format_size(self.host_memory)
        if self.placement != "low-first":
            data["placement"] = self.placement
            data["seed"] = self.seed
        data["guest"] = guest
        data["frames"] = {n: Flow(self._spec(n, exact)) for n in self.frames}
        tables = {t: {i: Flow(e) for i, e in sorted(ents.items())}
                  for t, ents in self.tables.items() if ents}
        if tables:
            data["tables"] = tables
        steps = self.steps if upto is None else self.steps[:upto]
        data["steps"] = [{k: Flow(v) if k == step_op(s) else copy.deepcopy(v)
                          for k, v in s.items()} for s in steps]
        return data

    def _spec(self, name: str, exact: bool) -> dict[str, Any]:
        spec = dict(self.frames[name])
        if exact and name in self.placed:
            owner = spec.get("owner")
            spec = {"mfn": HexInt(self.placed[name])}
            if owner:
                spec["owner"] = owner
        return spec

    def scenario(self, *, source: str = "the lab", exact: bool = True) -> Scenario:
        return parse_scenario(self.to_data(exact=exact), source=source)

    def build(self) -> ScenarioRun:
        """Set the guest up and run the applied steps (raises `PvlabError` if invalid).

        Frames keep the MFNs they had (`placed`); new frames are placed and remembered.
        """
        run = run_scenario(self.scenario(), stop_after=self.cursor)
        self.placed = {n: m for n, m in run.frames.items() if n in self.frames}
        return run

    # ------------------------------------------------------------------ references
    def references(self, frame: str) -> list[str]:
        """Where the document names `frame` (other than its own declaration)."""
        found = []
        for t, ents in self.tables.items():
            for i, e in ents.items():
                if e.get("to") == frame:
                    found.append(f"entry {i} of {t}")
        if self.tables.get(frame):
            found.append(f"the entries written into {frame}")
        for n, s in enumerate(self.steps, 1):
            args = step_args(s)
            if any(args.get(k) == frame for k in FRAME_KEYS):
                found.append(f"step {n} ({step_op(s)})")
        return found

    def unique_name(self, base: str) -> str:
        if base not in self.frames:
            return base
        for suffix in "bcdefghijklmnopqrstuvwxyz":
            if base + suffix not in self.frames:
                return base + suffix
        n = 2
        while f"{base}_{n}" in self.frames:
            n += 1
        return f"{base}_{n}"


# ---------------------------------------------------------------------- steps as dicts
def step_op(step: dict[str, Any]) -> str:
    return next(k for k in step if k not in ("expect", "note", "comment"))


def step_args(step: dict[str, Any]) -> dict[str, Any]:
    return step[step_op(step)] or {}


def describe_step(step: dict[str, Any]) -> str:
    op = step_op(step)
    parts = []
    for k, v in step_args(step).items():
        if isinstance(v, list):
            v = "|".join(str(x) for x in v) if k == "flags" else ",".join(str(x) for x in v)
        elif isinstance(v, int) and not isinstance(v, bool) and k in ("mfn", "value"):
            v = hex(v)
        parts.append(f"{k}={v}")
    return " ".join([op, *parts])


# ---------------------------------------------------------------------- loading
def _entry_dict(to: str | None, mfn: int | None, flags: int, value: int | None) -> dict[str, Any]:
    if value is not None:
        return {"value": HexInt(value)}
    out: dict[str, Any] = {}
    if to is not None:
        out["to"] = to
    elif mfn is not None:
        out["mfn"] = HexInt(mfn)
    out["flags"] = flags_list(flags)
    return out


def _step_dict(op: str, args: dict[str, Any], expect: Any) -> dict[str, Any]:
    a: dict[str, Any] = {}
    for k, v in args.items():
        if k == "flags" and isinstance(v, int):
            a[k] = flags_list(v)
        elif k in ("mfn", "value") and isinstance(v, int) and not isinstance(v, bool):
            a[k] = HexInt(v)
        else:
            a[k] = copy.deepcopy(v)
    out: dict[str, Any] = {op: a}
    if expect is not None:
        out["expect"] = copy.deepcopy(expect)
    return out


def document_from_scenario(scn: Scenario) -> Document:
    """A lab document holding `scn` (its steps not yet applied)."""
    doc = Document(name=scn.name, description=scn.description, xen=scn.profile,
                   host_memory=scn.host_memory, bitness=scn.guest.bitness,
                   vm_assists=[str(a) for a in scn.guest.vm_assists],
                   vcpu0_initialised=scn.guest.vcpu0_initialised, vcpus=scn.guest.vcpus,
                   privileged=scn.guest.privileged, placement=scn.placement, seed=scn.seed)
    for f in scn.frames.values():
        spec: dict[str, Any] = {}
        if f.mfn is not None:
            spec["mfn"] = HexInt(f.mfn)
        if f.below is not None:
            spec["below"] = format_size(f.below)
        if f.above is not None:
            spec["above"] = format_size(f.above)
        if f.owner != "guest":
            spec["owner"] = f.owner
        doc.frames[f.name] = spec
    for t, entries in scn.tables.items():
        doc.tables[t] = {e.index: _entry_dict(e.to, e.mfn, e.flags, e.value) for e in entries}
    doc.steps = [_step_dict(s.op, s.args, s.expect) for s in scn.steps]
    top_level = abi_for(doc.bitness).top_level
    for s in doc.steps:
        op, args = step_op(s), step_args(s)
        if op == "pin" and isinstance(args.get("frame"), str):
            doc.roles.setdefault(args["frame"], int(args["level"]))
        if op in ("vcpu_initialise", "new_baseptr"):
            ref = args.get("cr3", args.get("frame"))
            if isinstance(ref, str):
                doc.roles.setdefault(ref, top_level)
    for name in doc.frames:
        role = role_from_name(name)
        if role:
            doc.roles.setdefault(name, role)
    return doc


def load_document(path_or_text: Any, *, source: str | None = None) -> Document:
    return document_from_scenario(load_scenario(path_or_text, source=source))


# ---------------------------------------------------------------------- export
def _observed_check(step: dict[str, Any], run: ScenarioRun) -> dict[str, Any]:
    """Rewrite a check step that no longer holds with what the state shows now."""
    op, args = step_op(step), dict(step_args(step))
    if op == "expect_page":
        pi = run.xen.machine.page(run.mfn(args["frame"]))
        actual = {"type": pi.type_name, "type_count": pi.type_count, "count": pi.count,
                  "pinned": pi.pinned, "validated": pi.validated, "pae_xen_l2": pi.pae_xen_l2}
        return {op: Flow({k: (actual[k] if k in actual else v) for k, v in args.items()})}
    value = run.xen.machine.read_entry(run.mfn(args["table"]), int(args["index"]))
    return {op: Flow({"table": args["table"], "index": args["index"], "value": HexInt(value)})}


def export_data(doc: Document, run: ScenarioRun) -> dict[str, Any]:
    """The applied part of `doc` as a scenario whose expectations are what happened."""
    data = doc.to_data(upto=doc.cursor)
    out_steps = []
    for n, (raw, res) in enumerate(zip(data["steps"], run.steps, strict=True), 1):
        step = dict(raw)
        if res.is_check:
            if res.held:
                out_steps.append(step)
            else:  # observe the state as it was at that step
                then = run if n == len(run.steps) else run_scenario(doc.scenario(),
                                                                    stop_after=n)
                out_steps.append(_observed_check(step, then))
            continue
        if step.get("expect") is None or res.held is False:
            step["expect"] = res.result
        out_steps.append(step)
    data["steps"] = out_steps
    return data


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                     width=100, allow_unicode=True)
