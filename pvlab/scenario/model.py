# SPDX-License-Identifier: MIT
"""Scenario files: loading (`yaml.safe_load`) and validation with clear errors.

Every error names the file, the place (frame, table entry or step number and op) and
the key, and says how to fix it. See `docs/scenarios.md` for the language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pvlab.errors import PvlabError
from pvlab.trace import CRASH, Errno
from pvlab.units import parse_size
from pvlab.x86.flags import flag_names, parse_flags
from pvlab.xen.domain import vm_assist_number
from pvlab.xen.page_info import TYPE_BY_NAME
from pvlab.xen.profiles import DEFAULT_PROFILE, get_profile

RESULTS = {"ok", CRASH, *(e.name for e in Errno)}
#: `xen_build:` values: CONFIG_DEBUG on (assertions panic the host) or off.
XEN_BUILDS = ("debug", "release")


class ScenarioError(PvlabError):
    """A scenario file is invalid. Names the file, the step and the key."""


@dataclass(frozen=True)
class FrameSpec:
    name: str
    mfn: int | None = None
    below: int | None = None
    above: int | None = None
    owner: str = "guest"  # guest, other or io


@dataclass(frozen=True)
class EntrySpec:
    index: int
    to: str | None = None
    mfn: int | None = None
    flags: int = 0
    value: int | None = None


@dataclass(frozen=True)
class GuestSpec:
    bitness: int = 64
    vm_assists: tuple[str | int, ...] = ()
    vcpu0_initialised: bool = False
    vcpus: int = 1
    privileged: bool = False


@dataclass(frozen=True)
class Step:
    number: int  # 1-based
    op: str
    args: dict[str, Any]
    expect: str | dict[str, str] | None = None

    def expected_for(self, profile: str) -> str | None:
        """The expected result under `profile` (a per-profile mapping is resolved)."""
        if self.expect is None or isinstance(self.expect, str):
            return self.expect
        want = get_profile(profile).name
        for key, value in self.expect.items():
            if key == profile or get_profile(key).name == want:
                return value
        return None

    def describe(self) -> str:
        parts = []
        for k, v in self.args.items():
            if isinstance(v, int) and not isinstance(v, bool) and k in ("mfn", "value", "va"):
                v = hex(v)
            elif k == "flags" and isinstance(v, int):
                v = "|".join(flag_names(v)) or "0"
            elif k == "calls" and isinstance(v, list):
                v = "[" + "; ".join(c.describe() if isinstance(c, Step) else str(c)
                                    for c in v) + "]"
            elif isinstance(v, list):
                v = "|".join(str(x) for x in v) if k == "flags" else ",".join(str(x) for x in v)
            parts.append(f"{k}={v}")
        return f"{self.op} " + " ".join(parts) if parts else self.op


@dataclass
class Scenario:
    name: str
    description: str = ""
    xen: str | None = None
    host_memory: int = 8 << 30
    guest: GuestSpec = field(default_factory=GuestSpec)
    frames: dict[str, FrameSpec] = field(default_factory=dict)
    tables: dict[str, list[EntrySpec]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    source: str = "<scenario>"
    placement: str = "low-first"
    seed: int = 0
    #: "debug" or "release" (None: the profile's, a debug build as `pvlab verify` uses)
    xen_build: str | None = None

    @property
    def profile(self) -> str:
        return self.xen or DEFAULT_PROFILE


# --------------------------------------------------------------------------- parsing
class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, where: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {problem}", fix)


def _int(ctx: _Ctx, where: str, value: Any, *, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ctx.err(where, f"{value!r} is not a number", "write a number such as 3 or 0x1f")
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise ctx.err(where, f"{value!r} is not a number",
                          "write a number such as 3 or 0x1f") from None
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}-{hi}" if hi is not None else f">= {lo}"
        raise ctx.err(where, f"{value} is out of range ({rng})", f"use a value in {rng}")
    return value


def _size(ctx: _Ctx, where: str, value: Any) -> int:
    try:
        return parse_size(value, what=where.rsplit(" ", 1)[-1])
    except PvlabError as e:
        raise ctx.err(where, e.message, e.fix or "write e.g. 4GiB") from None


def _flags(ctx: _Ctx, where: str, value: Any) -> int:
    try:
        return parse_flags(value if value is not None else [])
    except PvlabError as e:
        raise ctx.err(where, e.message, e.fix or 'write e.g. [P, RW]') from None


def _mapping(ctx: _Ctx, where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.err(where, f"expected a mapping, got {type(value).__name__}",
                      "write key: value pairs")
    return value


def _keys(ctx: _Ctx, where: str, d: dict[str, Any], allowed: set[str],
          required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    for k in d:
        if k not in allowed:
            raise ctx.err(f"{where}: key {k!r}", "unknown key",
                          f"use one of: {', '.join(sorted(allowed))}")
    for k in required:
        if k not in d:
            raise ctx.err(f"{where}", f"missing key {k!r}", f"add {k}: ...")


def _result(ctx: _Ctx, where: str, value: Any) -> str:
    s = str(value).strip()
    s = "ok" if s.lower() in ("ok", "0", "success") else s.upper().lstrip("-")
    if s.lower() in ("crash", "panic"):
        s = CRASH
    if s not in RESULTS:
        raise ctx.err(where, f"unknown result {value!r}",
                      "write ok, crash (Xen panics) or an errno name such as EINVAL, EBUSY, "
                      "ERANGE")
    return s


def _expect(ctx: _Ctx, where: str, value: Any) -> str | dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        out = {}
        for prof, res in value.items():
            try:
                get_profile(str(prof))
            except PvlabError as e:
                raise ctx.err(f"{where}: key {prof!r}", e.message, e.fix or "") from None
            out[str(prof)] = _result(ctx, f"{where}: {prof}", res)
        return out
    return _result(ctx, where, value)


_FRAME_REF_KEYS = {"frame", "table", "to", "cr3", "src"}

# op -> (required keys, optional keys)
STEP_SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "pin": ({"frame", "level"}, set()),
    "unpin": ({"frame"}, set()),
    "new_baseptr": ({"frame"}, {"vcpu"}),
    "new_user_baseptr": ({"frame"}, {"vcpu"}),
    "tlb_flush": (set(), set()),
    "mmu_update": ({"table", "index"}, {"to", "mfn", "flags", "value", "preserve_ad"}),
    "update_va_mapping_otherdomain": ({"va", "domain"}, {"to", "mfn", "flags", "value", "vcpu",
                                                         "uvmf"}),
    "machphys_update": ({"frame", "pfn"}, set()),
    "vm_assist": (set(), {"enable", "disable", "cmd", "type"}),
    "update_va_mapping": ({"va"}, {"to", "mfn", "flags", "value", "vcpu", "uvmf"}),
    "mmuext": ({"cmd"}, {"frame", "vcpu", "va", "ents", "src"}),
    "vcpu_op_initialise": ({"vcpu", "cr3"}, set()),
    "vcpu_initialise": ({"vcpu", "cr3"}, {"vm_assists"}),
    "vcpu_reset": ({"vcpu"}, set()),
    "multicall": ({"calls"}, set()),
    "write": ({"table", "index"}, {"to", "mfn", "flags", "value"}),
    "expect_page": ({"frame"}, {"type", "type_count", "count", "pinned", "validated",
                                "pae_xen_l2"}),
    "expect_entry": ({"table", "index"}, {"value", "flags", "to", "mfn", "present"}),
}
CHECK_OPS = {"expect_page", "expect_entry"}
#: hypercalls a `multicall` step may batch (each is one multicall_entry)
MULTICALL_OPS = {"pin", "unpin", "mmu_update", "mmuext", "update_va_mapping", "vm_assist",
                 "machphys_update", "tlb_flush"}


def _parse_step(ctx: _Ctx, n: int, raw: Any, frames: dict[str, FrameSpec],
                extra_ops: dict[str, tuple[set[str], set[str]]]) -> Step:
    where = f"step {n}"
    if not isinstance(raw, dict):
        raise ctx.err(where, "a step must be a mapping like {pin: {frame: l3, level: 3}}",
                      "write '- pin: {frame: l3, level: 3}'")
    expect = raw.get("expect")
    ops = [k for k in raw if k not in ("expect", "note", "comment")]
    if len(ops) != 1:
        raise ctx.err(where, f"expected exactly one operation, found {ops or 'none'}",
                      f"use one of: {', '.join(sorted({**STEP_SCHEMA, **extra_ops}))}")
    op = ops[0]
    schema = {**STEP_SCHEMA, **extra_ops}
    if op not in schema:
        raise ctx.err(f"{where}: key {op!r}", "unknown operation",
                      f"use one of: {', '.join(sorted(schema))}")
    where = f"step {n} ({op})"
    args = _mapping(ctx, where, raw[op])
    required, optional = schema[op]
    _keys(ctx, where, args, required | optional, required)
    args = dict(args)
    for key in _FRAME_REF_KEYS & args.keys():
        v = args[key]
        if isinstance(v, str):
            if v not in frames:
                known = f", or use one of: {', '.join(frames)}" if frames else ""
                raise ctx.err(f"{where}: key {key!r}", f"unknown frame {v!r}",
                              f"declare it under frames:{known}")
        elif op in extra_ops:
            continue
        else:
            args[key] = _int(ctx, f"{where}: key {key!r}", v)
    if "level" in args:
        args["level"] = _int(ctx, f"{where}: key 'level'", args["level"], lo=1, hi=4)
    for key in ("index",):
        if key in args:
            args[key] = _int(ctx, f"{where}: key {key!r}", args[key], lo=0, hi=511)
    for key in ("vcpu", "type_count", "count", "pfn", "mfn", "value", "va", "cmd", "ents",
                "uvmf"):
        if key in args and op not in extra_ops:
            args[key] = _int(ctx, f"{where}: key {key!r}", args[key])
    if "flags" in args and op != "expect_entry":
        args["flags"] = _flags(ctx, f"{where}: key 'flags'", args["flags"])
    elif "flags" in args:
        args["flags"] = _flags(ctx, f"{where}: key 'flags'", args["flags"])
    if op == "update_va_mapping_otherdomain" and args["domain"] not in ("other", "self"):
        raise ctx.err(f"{where}: key 'domain'", f"unknown domain {args['domain']!r}",
                      "write domain: other (the helper domain owning {owner: other} frames) "
                      "or self")
    if op in ("mmu_update", "write", "expect_entry", "update_va_mapping",
              "update_va_mapping_otherdomain"):
        if "value" in args and ({"to", "mfn"} & args.keys()):
            raise ctx.err(where, "give either value or to/mfn + flags, not both",
                          "remove value, or remove to/mfn")
        if "to" in args and "mfn" in args:
            raise ctx.err(where, "give either to (a frame name) or mfn (a number)",
                          "remove one of them")
    if op == "multicall":
        calls = args["calls"]
        if not isinstance(calls, list) or not calls:
            raise ctx.err(f"{where}: key 'calls'", "expected a non-empty list of operations",
                          "write calls: [{pin: {frame: l1, level: 1}, expect: ok}, ...]")
        subs = []
        for k, raw_call in enumerate(calls, start=1):
            sub = _parse_step(ctx, n, raw_call, frames, extra_ops)
            if sub.op in MULTICALL_OPS:
                subs.append(Step(k, sub.op, sub.args, sub.expect))
                continue
            raise ctx.err(f"{where}: call {k}", f"{sub.op!r} cannot be batched",
                          f"use one of: {', '.join(sorted(MULTICALL_OPS))}")
        args["calls"] = subs
    if op == "vm_assist" and ({"cmd", "type"} & args.keys()):
        if set(args) != {"cmd", "type"}:
            raise ctx.err(where, "the raw form needs exactly cmd: N and type: NAME|N",
                          "write vm_assist: {cmd: 2, type: pae_extended_cr3}")
        verb, name = "type", args["type"]
        try:
            vm_assist_number(name)
        except PvlabError as e:
            raise ctx.err(f"{where}: key 'type'", e.message, e.fix or "") from None
    elif op == "vm_assist":
        if len(args) != 1:
            raise ctx.err(where, "give exactly one of enable: NAME or disable: NAME",
                          "write vm_assist: {enable: pae_extended_cr3}")
        ((verb, name),) = args.items()
        try:
            vm_assist_number(name)
        except PvlabError as e:
            raise ctx.err(f"{where}: key {verb!r}", e.message, e.fix or "") from None
    if op == "vcpu_initialise" and "vm_assists" in args:
        va = args["vm_assists"]
        if not isinstance(va, list):
            raise ctx.err(f"{where}: key 'vm_assists'", "expected a list of names",
                          "write vm_assists: [pae_extended_cr3]")
        for name in va:
            try:
                vm_assist_number(name)
            except PvlabError as e:
                raise ctx.err(f"{where}: key 'vm_assists'", e.message, e.fix or "") from None
    if op == "expect_page" and "type" in args:
        if str(args["type"]) not in TYPE_BY_NAME:
            raise ctx.err(f"{where}: key 'type'", f"unknown page type {args['type']!r}",
                          f"use one of: {', '.join(TYPE_BY_NAME)}")
    if op in CHECK_OPS and expect is not None:
        raise ctx.err(f"{where}: key 'expect'", "check steps carry their expectation in "
                      "their own keys", "remove expect:")
    return Step(n, op, args, _expect(ctx, f"{where}: key 'expect'", expect))


def parse_scenario(data: Any, *, source: str = "<scenario>",
                   extra_ops: dict[str, tuple[set[str], set[str]]] | None = None) -> Scenario:
    """Validate a loaded YAML document and build a :class:`Scenario`."""
    ctx = _Ctx(source)
    extra_ops = extra_ops if extra_ops is not None else _registered_ops()
    if not isinstance(data, dict):
        raise ctx.err("top level", "a scenario must be a mapping with name:, frames:, steps:",
                      "start the file with 'name: my-scenario'")
    _keys(ctx, "top level", data, {"name", "description", "xen", "host_memory", "guest",
                                   "frames", "tables", "steps", "placement", "seed",
                                   "xen_build"}, {"name"})
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise ctx.err("key 'name'", "the name must be a non-empty string",
                      "write name: my-scenario")
    xen = data.get("xen")
    if xen is not None:
        try:
            get_profile(str(xen))
        except PvlabError as e:
            raise ctx.err("key 'xen'", e.message, e.fix or "") from None
        xen = str(xen)
    host = _size(ctx, "key host_memory", data.get("host_memory", "8GiB"))
    xen_build = data.get("xen_build")
    if xen_build is not None and xen_build not in XEN_BUILDS:
        raise ctx.err("key 'xen_build'", f"unknown build {xen_build!r}",
                      "write xen_build: debug (CONFIG_DEBUG=y) or release")

    g = _mapping(ctx, "key 'guest'", data.get("guest"))
    _keys(ctx, "guest", g, {"bitness", "vm_assists", "vcpu0_initialised", "vcpus", "privileged"})
    bitness = g.get("bitness", 64)
    if bitness not in (32, 64):
        raise ctx.err("guest: key 'bitness'", f"{bitness!r} is not 32 or 64",
                      "write bitness: 32 (PV32 on 64-bit Xen) or 64")
    assists = g.get("vm_assists") or []
    if not isinstance(assists, list):
        raise ctx.err("guest: key 'vm_assists'", "expected a list",
                      "write vm_assists: [pae_extended_cr3]")
    for a in assists:
        try:
            vm_assist_number(a)
        except PvlabError as e:
            raise ctx.err("guest: key 'vm_assists'", e.message, e.fix or "") from None
    for key in ("vcpu0_initialised", "privileged"):
        if key in g and not isinstance(g[key], bool):
            raise ctx.err(f"guest: key {key!r}", f"{g[key]!r} is not true or false",
                          f"write {key}: true or false")
    guest = GuestSpec(bitness, tuple(assists), bool(g.get("vcpu0_initialised", False)),
                      _int(ctx, "guest: key 'vcpus'", g.get("vcpus", 1), hi=128),
                      bool(g.get("privileged", False)))
    if guest.vcpu0_initialised and guest.vcpus == 0:
        raise ctx.err("guest", "vcpu0_initialised: true needs a vCPU 0", "set vcpus: 1 or more")

    frames: dict[str, FrameSpec] = {}
    for fname, spec in _mapping(ctx, "key 'frames'", data.get("frames")).items():
        where = f"frame {fname!r}"
        spec = _mapping(ctx, where, spec)
        _keys(ctx, where, spec, {"mfn", "below", "above", "owner"})
        owner = str(spec.get("owner", "guest"))
        if owner not in ("guest", "other", "io"):
            raise ctx.err(f"{where}: key 'owner'", f"unknown owner {owner!r}",
                          "use guest, other or io")
        if owner == "io" and "mfn" not in spec:
            raise ctx.err(where, "an io frame needs an mfn in the first MiB",
                          "write {owner: io, mfn: 0x1}")
        frames[str(fname)] = FrameSpec(
            str(fname),
            _int(ctx, f"{where}: key 'mfn'", spec["mfn"]) if "mfn" in spec else None,
            _size(ctx, f"{where}: key below", spec["below"]) if "below" in spec else None,
            _size(ctx, f"{where}: key above", spec["above"]) if "above" in spec else None,
            owner)
        if "mfn" in spec and ({"below", "above"} & spec.keys()):
            raise ctx.err(where, "give either mfn or below/above", "remove one")

    tables: dict[str, list[EntrySpec]] = {}
    for tname, entries in _mapping(ctx, "key 'tables'", data.get("tables")).items():
        if tname not in frames:
            raise ctx.err(f"tables: key {tname!r}", "not a declared frame",
                          "declare it under frames: first")
        out = []
        for idx, raw_entry in _mapping(ctx, f"table {tname!r}", entries).items():
            where = f"table {tname!r} entry {idx}"
            index = _int(ctx, where, idx, hi=511)
            entry = _mapping(ctx, where, raw_entry)
            _keys(ctx, where, entry, {"to", "mfn", "flags", "value"})
            if "value" in entry and ({"to", "mfn", "flags"} & entry.keys()):
                raise ctx.err(where, "give either value or to/mfn + flags", "remove one")
            if "to" in entry and "mfn" in entry:
                raise ctx.err(where, "give either to (a frame name) or mfn (a number)",
                              "remove one of them")
            to = entry.get("to")
            if to is not None and to not in frames:
                raise ctx.err(f"{where}: key 'to'", f"unknown frame {to!r}",
                              f"use one of: {', '.join(frames)}")
            out.append(EntrySpec(
                index, to,
                _int(ctx, f"{where}: key 'mfn'", entry["mfn"]) if "mfn" in entry else None,
                _flags(ctx, f"{where}: key 'flags'", entry.get("flags")),
                _int(ctx, f"{where}: key 'value'", entry["value"]) if "value" in entry else None))
        tables[str(tname)] = out

    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise ctx.err("key 'steps'", "expected a list of steps", "write steps: then '- pin: ...'")
    steps = [_parse_step(ctx, i + 1, s, frames, extra_ops) for i, s in enumerate(raw_steps)]
    placement = str(data.get("placement", "low-first"))
    seed = _int(ctx, "key 'seed'", data.get("seed", 0))
    return Scenario(name.strip(), str(data.get("description") or "").strip(), xen, host, guest,
                    frames, tables, steps, source, placement, seed, xen_build)


def load_scenario(path_or_text: str | Path, *, source: str | None = None) -> Scenario:
    """Load a scenario from a file path, or from YAML text (when it contains a newline)."""
    if isinstance(path_or_text, Path) or ("\n" not in str(path_or_text)):
        path = Path(path_or_text)
        src = source or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScenarioError(f"{src}: no such file", "check the path") from None
        except OSError as e:
            raise ScenarioError(f"{src}: cannot read: {e.strerror}", "check the path") from None
    else:
        text = str(path_or_text)
        src = source or "<scenario>"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise ScenarioError(f"{src}: {where}: not valid YAML ({getattr(e, 'problem', e)})",
                            "check indentation and colons") from None
    return parse_scenario(data, source=src)


def _registered_ops() -> dict[str, tuple[set[str], set[str]]]:
    from pvlab.scenario.registry import EXTRA_STEPS, load_plugins

    load_plugins()
    return {op: (s.required, s.optional) for op, s in EXTRA_STEPS.items()}
