# SPDX-License-Identifier: MIT
"""The lab's document: the core's typed :class:`~pvlab.scenario.Scenario`, plus a cursor.

The lab keeps no model of its own. A :class:`Document` holds the very `Scenario` that
`pvlab run` loads, how many of its steps are applied, and two lab-only notes (the level
each frame is meant to be, and the MFN each frame got when first placed, so a rebuild
keeps frames where they are). Every edit goes through the scenario package's public
entry point: the lab writes the scenario as a mapping (:func:`scenario_data`), changes
the mapping in a :class:`Draft`, and `parse_scenario` validates it with the same clear
messages a file gets. So an edit the core would refuse is refused here too, and the
export is the scenario itself.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import yaml

from pvlab.scenario import Scenario, ScenarioRun, Step, load_scenario, parse_scenario, run_scenario
from pvlab.units import format_size
from pvlab.x86.flags import flag_names
from pvlab.xen.abi import abi_for
from pvlab.xen.cmdline import Hardware
from pvlab.xen.profiles import DEFAULT_PROFILE

#: Step keys that name a frame.
FRAME_KEYS = ("frame", "table", "to", "cr3")
#: Step keys whose numbers read best in hex.
_HEX_KEYS = ("mfn", "value", "va")

_ROLE_RE = re.compile(r"^l([1-4])(?![0-9])", re.IGNORECASE)
LAB_SOURCE = "the lab"


#: Environment variable that sets how many runs `Document.build` keeps (a hub sets it low:
#: each learner's kernel keeps its own, and memory per learner is the hub's limit).
RUNS_KEPT_ENV = "PVLAB_RUNS_KEPT"


def _runs_kept(default: int = 12) -> int:
    """Runs kept: `PVLAB_RUNS_KEPT` if it is a whole number >= 1, else `default`."""
    raw = os.environ.get(RUNS_KEPT_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) >= 1 else default


#: Runs `Document.build` keeps (each a few hundred KiB to 1 MiB for a workshop-sized sketch).
RUNS_KEPT = _runs_kept()
_RUNS: OrderedDict[tuple[str, str | None, int], ScenarioRun] = OrderedDict()


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


# ---------------------------------------------------------------------- Scenario -> mapping
def _arg_data(key: str, value: Any) -> Any:
    if key == "flags" and isinstance(value, int) and not isinstance(value, bool):
        return flags_list(value)
    if key in _HEX_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return HexInt(value)
    return copy.deepcopy(value)


def step_data(step: Step) -> dict[str, Any]:
    """One parsed step as a scenario file writes it (`{pin: {frame: l3, level: 3}}`)."""
    args = {k: _arg_data(k, v) for k, v in step.args.items()}
    if step.as_domain is not None:  # `as:` (several domains) goes first, as files write it
        args = {"as": step.as_domain, **args}
    out: dict[str, Any] = {step.op: Flow(args)}
    if step.expect is not None:
        out["expect"] = copy.deepcopy(step.expect)
    return out


def scenario_data(scn: Scenario, *, upto: int | None = None,
                  placed: dict[str, int] | None = None) -> dict[str, Any]:
    """`scn` as the mapping `parse_scenario` reads (steps up to `upto`, default all).

    `placed` pins those frames to their MFN (how the lab rebuilds without moving frames).
    """
    def domain_data(g: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"bitness": g.bitness,
                               "vm_assists": [str(a) for a in g.vm_assists],
                               "vcpu0_initialised": g.vcpu0_initialised}
        if g.vcpus != 1:
            out["vcpus"] = g.vcpus
        if g.privileged:
            out["privileged"] = True
        if g.max_maptrack_frames is not None:
            out["max_maptrack_frames"] = g.max_maptrack_frames
        return out

    guest = domain_data(scn.guest)
    data: dict[str, Any] = {"name": scn.name}
    if scn.description:
        data["description"] = scn.description
    data["xen"] = scn.profile
    if scn.host_memory != 8 << 30:
        data["host_memory"] = format_size(scn.host_memory)
    if scn.placement != "low-first":
        data["placement"] = scn.placement
        data["seed"] = scn.seed
    if scn.xen_build is not None:
        data["xen_build"] = scn.xen_build
    if scn.xen_cmdline.given():
        data["xen_cmdline"] = scn.xen_cmdline.given()
    hardware = _hardware_data(scn.hardware)
    if hardware:
        data["hardware"] = hardware
    if scn.multi_domain:
        data["domains"] = {n: Flow(domain_data(g)) for n, g in scn.domains.items()}
    else:
        data["guest"] = guest
    frames: dict[str, Any] = {}
    for f in scn.frames.values():
        spec: dict[str, Any] = {}
        if placed and f.name in placed:
            spec["mfn"] = HexInt(placed[f.name])
        elif f.mfn is not None:
            spec["mfn"] = HexInt(f.mfn)
        else:
            if f.below is not None:
                spec["below"] = format_size(f.below)
            if f.above is not None:
                spec["above"] = format_size(f.above)
        if f.owner != ("guest" if not scn.multi_domain else scn.default_domain):
            spec["owner"] = f.owner  # with domains:, a frame's default is the default domain
        frames[f.name] = Flow(spec)
    data["frames"] = frames
    tables: dict[str, Any] = {}
    for name, entries in scn.tables.items():
        if entries:
            tables[name] = {e.index: Flow(_entry_data(e.to, e.mfn, e.flags, e.value))
                            for e in sorted(entries, key=lambda e: e.index)}
    if tables:
        data["tables"] = tables
    steps = scn.steps if upto is None else scn.steps[:upto]
    data["steps"] = [step_data(s) for s in steps]
    return data


def _hardware_data(hw: Hardware) -> dict[str, Any]:
    """The `hardware:` keys that differ from the default CPU."""
    default = Hardware()
    return {f.name: getattr(hw, f.name) for f in dataclasses.fields(hw)
            if getattr(hw, f.name) != getattr(default, f.name)}


def _entry_data(to: str | None, mfn: int | None, flags: int, value: int | None) -> dict[str, Any]:
    if value is not None:
        return {"value": HexInt(value)}
    out: dict[str, Any] = {}
    if to is not None:
        out["to"] = to
    elif mfn is not None:
        out["mfn"] = HexInt(mfn)
    out["flags"] = flags_list(flags)
    return out


# ---------------------------------------------------------------------- the document
@dataclass
class Draft:
    """A document being edited: the scenario as a mapping, and the lab's notes.

    Session actions change a draft; :meth:`Document.from_draft` validates it through
    `parse_scenario`, so a draft the core refuses never becomes the document.
    """

    data: dict[str, Any]
    roles: dict[str, int]
    placed: dict[str, int]
    cursor: int
    #: with `domains:`, the domain whose settings :attr:`guest` edits (None: the default
    #: domain, the only or first unprivileged one)
    domain: str | None = None

    @property
    def guest(self) -> dict[str, Any]:
        """The settings being edited: `guest:`, or with `domains:` one domain's mapping."""
        doms = self.data.get("domains")
        if not isinstance(doms, dict) or not doms:
            return self.data.setdefault("guest", {})
        name = self.domain if self.domain in doms else next(
            (n for n, g in doms.items() if not (g or {}).get("privileged")), next(iter(doms)))
        if not isinstance(doms[name], dict):
            doms[name] = {}
        got: dict[str, Any] = doms[name]
        return got

    @property
    def frames(self) -> dict[str, Any]:
        return self.data.setdefault("frames", {})

    @property
    def tables(self) -> dict[str, Any]:
        return self.data.setdefault("tables", {})

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.data.setdefault("steps", [])

    def references(self, frame: str) -> list[str]:
        """Where the draft names `frame` (other than its own declaration)."""
        found = []
        for table, entries in self.tables.items():
            for index, entry in entries.items():
                if entry.get("to") == frame:
                    found.append(f"entry {index} of {table}")
        if self.tables.get(frame):
            found.append(f"the entries written into {frame}")
        for n, s in enumerate(self.steps, 1):
            op = next(k for k in s if k not in ("expect", "note", "comment"))
            if any((s[op] or {}).get(k) == frame for k in FRAME_KEYS):
                found.append(f"step {n} ({op})")
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

    def append_step(self, step: dict[str, Any]) -> str | None:
        """Add `step` after the cursor (later steps are dropped); a note if some were."""
        dropped = len(self.steps) - self.cursor
        del self.steps[self.cursor:]
        self.steps.append(step)
        self.cursor = len(self.steps)
        return f"{dropped} later step(s) dropped" if dropped else None


@dataclass
class Document:
    """The scenario, how many of its steps are applied, and the lab's notes on frames."""

    scenario: Scenario = field(default_factory=lambda: Document.empty_scenario())
    #: name -> the pagetable level the learner means the frame to be (lab-only)
    roles: dict[str, int] = field(default_factory=dict)
    #: name -> MFN each frame got when first built; rebuilding keeps frames where they are
    placed: dict[str, int] = field(default_factory=dict)
    #: how many steps are applied (step/back move it)
    cursor: int = 0
    #: the scenario with `placed` pinned, kept while neither changes (step/back reuse it)
    _built: tuple[dict[str, int], Scenario] | None = field(default=None, compare=False,
                                                           repr=False)

    @staticmethod
    def empty_scenario(*, xen: str = DEFAULT_PROFILE, bitness: int = 64) -> Scenario:
        return parse_scenario({"name": "lab-sketch", "xen": xen, "guest": {"bitness": bitness}},
                              source=LAB_SOURCE)

    @classmethod
    def empty(cls, *, xen: str = DEFAULT_PROFILE, bitness: int = 64) -> Document:
        return cls(cls.empty_scenario(xen=xen, bitness=bitness))

    def copy(self) -> Document:
        """A copy whose lab notes can change; the Scenario is shared (the lab never
        changes a Scenario in place: every edit parses a new one from a Draft)."""
        return Document(self.scenario, dict(self.roles), dict(self.placed), self.cursor,
                        self._built)

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def xen(self) -> str:
        return self.scenario.profile

    @property
    def bitness(self) -> int:
        return self.scenario.guest.bitness

    @property
    def vm_assists(self) -> list[str]:
        return [str(a) for a in self.scenario.guest.vm_assists]

    @property
    def vcpu0_initialised(self) -> bool:
        return self.scenario.guest.vcpu0_initialised

    @property
    def frames(self) -> dict[str, Any]:
        return self.scenario.frames

    @property
    def tables(self) -> dict[str, Any]:
        return self.scenario.tables

    @property
    def steps(self) -> list[Step]:
        return self.scenario.steps

    # ------------------------------------------------------------------ editing
    def draft(self) -> Draft:
        return Draft(scenario_data(self.scenario), dict(self.roles), dict(self.placed),
                     self.cursor)

    @classmethod
    def from_draft(cls, draft: Draft) -> Document:
        """Validate the draft through `parse_scenario` (raises `ScenarioError`)."""
        scn = parse_scenario(draft.data, source=LAB_SOURCE)
        names = set(scn.frames)
        roles = {n: lvl for n, lvl in draft.roles.items() if n in names}
        placed = {n: m for n, m in draft.placed.items() if n in names}
        return cls(scn, roles, placed, min(draft.cursor, len(scn.steps)))

    # ------------------------------------------------------------------ running
    def build_scenario(self) -> Scenario:
        """The scenario with every frame already placed pinned to its MFN."""
        if not self.placed:
            return self.scenario
        if self._built is None or self._built[0] != self.placed:
            self._built = (dict(self.placed), parse_scenario(
                scenario_data(self.scenario, placed=self.placed), source=LAB_SOURCE))
        return self._built[1]

    def build(self, *, profile: str | None = None, cursor: int | None = None) -> ScenarioRun:
        """Set the guest up and run the applied steps (raises `PvlabError` if invalid).

        Frames keep the MFNs they had (`placed`); new frames are placed and remembered.
        The last `RUNS_KEPT` runs are kept by their scenario, profile and cursor: an
        undo, a toggle back, or the replay's state before the last step is then not run
        again. The lab only reads a run once built, so sharing one is safe.
        """
        scn = self.build_scenario()
        stop = min(self.cursor if cursor is None else cursor, len(scn.steps))
        # a Scenario's repr is all of its fields; steps past `stop` do not change the run
        key = (repr(dataclasses.replace(scn, steps=scn.steps[:stop])), profile, stop)
        run = _RUNS.get(key)
        if run is None:
            run = run_scenario(scn, profile=profile, stop_after=stop)
            _RUNS[key] = run
            if len(_RUNS) > RUNS_KEPT:
                _RUNS.popitem(last=False)
        else:
            _RUNS.move_to_end(key)
            if run.scenario is not scn:  # the same state, reached by another document
                run = dataclasses.replace(run, scenario=scn)
        if profile is None and cursor is None:
            self.placed = {n: m for n, m in run.frames.items() if n in self.frames}
        return run

    def with_guest(self, **changes: Any) -> Document:
        """The same document with guest settings changed (side-by-side mode)."""
        d = self.draft()
        d.guest.update(changes)
        return Document.from_draft(d)


def guess_roles(scn: Scenario, top_level: int) -> dict[str, int]:
    """Frame -> meant level from what the steps do with it and from its name."""
    roles: dict[str, int] = {}
    for s in scn.steps:
        ref = s.args.get("frame")
        if s.op == "pin" and isinstance(ref, str):
            roles.setdefault(ref, int(s.args["level"]))
        if s.op in ("vcpu_initialise", "new_baseptr"):
            ref = s.args.get("cr3", ref)
            if isinstance(ref, str):
                roles.setdefault(ref, top_level)
    for name in scn.frames:
        role = role_from_name(name)
        if role:
            roles.setdefault(name, role)
    return roles


def document_from_scenario(scn: Scenario) -> Document:
    """A lab document holding `scn` (its steps not yet applied)."""
    return Document(scn, guess_roles(scn, abi_for(scn.guest.bitness).top_level))


def load_scenario_for_lab(path_or_text: Any, *, source: str | None = None) -> Scenario:
    return load_scenario(path_or_text, source=source)


def export_data(doc: Document, run: ScenarioRun) -> tuple[dict[str, Any], list[str]]:
    """The applied part of `doc` as a scenario whose expectations are what happened.

    Returns the mapping and notes on check steps left out because they do not hold
    (a file with a failing check would not pass `pvlab run`).
    """
    data = scenario_data(doc.scenario, upto=doc.cursor)
    out_steps, notes = [], []
    for raw, res in zip(data["steps"], run.steps, strict=True):
        if res.is_check:
            if res.held:
                out_steps.append(raw)
            else:
                why = res.outcome.failure.explanation if res.outcome.failure else ""
                notes.append(f"step {res.index} ({res.description}) left out: it does not "
                             f"hold{': ' + why if why else ''}")
            continue
        step = dict(raw)
        if step.get("expect") is None or res.held is False:
            step["expect"] = res.result
        out_steps.append(step)
    data["steps"] = out_steps
    return data, notes


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                     width=100, allow_unicode=True)
