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
from pvlab.trace import CRASH, FATES, Errno
from pvlab.units import parse_size
from pvlab.x86.flags import flag_names, parse_flags
from pvlab.xen.cmdline import Hardware, XenCommandLine
from pvlab.xen.domain import vm_assist_number
from pvlab.xen.grant_status import GNTST_RESULTS, gntst_result
from pvlab.xen.profiles import DEFAULT_PROFILE, get_profile

from .errors import ScenarioError
from .params import KINDS, MULTICALL_OPS, ParamSpec, Where, is_special_domain, parse_number
from .registry import StepArgs, steps

RESULTS = {"ok", CRASH, *FATES, *(e.name for e in Errno), *GNTST_RESULTS}
#: `xen_build:` values: CONFIG_DEBUG on (assertions panic the host) or off.
XEN_BUILDS = ("debug", "release")


#: Who owns a scenario frame: the guest (or any domain named under `domains:`), an
#: anonymous other domain, or dom_io.
FrameOwner = str
#: The owners every scenario knows besides its domains.
SPECIAL_OWNERS = ("other", "io")


@dataclass(frozen=True)
class FrameSpec:
    name: str
    mfn: int | None = None
    below: int | None = None
    above: int | None = None
    owner: FrameOwner = "guest"


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
    #: `max_maptrack_frames` (xl.cfg; XEN_DOMCTL_createdomain): None is Xen's default,
    #: `gnttab_max_maptrack_frames` (1024); 0 leaves the domain no grant map handles.
    max_maptrack_frames: int | None = None


@dataclass(frozen=True)
class Step:
    number: int  # 1-based
    op: str
    args: dict[str, Any]
    expect: str | dict[str, str] | None = None
    #: The typed arguments of the step's registered kind (`pvlab.scenario.registry`).
    params: StepArgs | None = None
    #: `as:` -- the domain that issues the step, as written (None: the scenario's default,
    #: see :meth:`Scenario.issuer`).
    as_domain: str | None = None

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
            elif k == "calls" and isinstance(v, list | tuple):
                v = "[" + "; ".join(c.describe() if isinstance(c, Step) else str(c)
                                    for c in v) + "]"
            elif isinstance(v, list):
                v = "|".join(str(x) for x in v) if k == "flags" else ",".join(str(x) for x in v)
            elif isinstance(v, dict) and {"table", "index"} <= v.keys():  # a PTE address
                v = f"{v['table']}[{v['index']}]" + (f"+{v['offset']}" if v.get("offset")
                                                     else "")
            parts.append(f"{k}={v}")
        if self.as_domain is not None:
            parts.insert(0, f"as={self.as_domain}")
        return f"{self.op} " + " ".join(parts) if parts else self.op


@dataclass
class Scenario:
    name: str
    description: str = ""
    xen: str | None = None
    host_memory: int = 8 << 30
    #: The `guest:` mapping; with `domains:`, the default domain's (see `default_domain`).
    guest: GuestSpec = field(default_factory=GuestSpec)
    frames: dict[str, FrameSpec] = field(default_factory=dict)
    tables: dict[str, list[EntrySpec]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    source: str = "<scenario>"
    placement: str = "low-first"
    seed: int = 0
    #: "debug" or "release" (None: the profile's, a debug build as `pvlab verify` uses)
    xen_build: str | None = None
    #: Every domain by name, in file order (`domains:`); a `guest:` file has one, "guest".
    domains: dict[str, GuestSpec] = field(default_factory=dict)
    #: Whether the file used `domains:` (else `guest:`, the one-domain form).
    multi_domain: bool = False
    #: Xen's command line (`xen_cmdline:`) and the host CPU (`hardware:`).
    xen_cmdline: XenCommandLine = field(default_factory=XenCommandLine)
    hardware: Hardware = field(default_factory=Hardware)

    @property
    def profile(self) -> str:
        return self.xen or DEFAULT_PROFILE

    @property
    def domain_names(self) -> list[str]:
        return list(self.domains) or ["guest"]

    @property
    def default_domain(self) -> str:
        """Who issues a step without `as:`: the only domain, else the first non-privileged
        one (else the first)."""
        names = self.domain_names
        specs = self.domains or {"guest": self.guest}
        for n in names:
            if not specs[n].privileged:
                return n
        return names[0]

    @property
    def toolstack_domain(self) -> str | None:
        """Who issues a toolstack step (a domctl such as `destroy_domain`) without `as:`:
        the first privileged domain (None: the implicit toolstack outside the scenario)."""
        for n, spec in self.domains.items():
            if spec.privileged:
                return n
        return None

    def issuer(self, step: Step) -> str:
        """The domain that issues `step` (its `as:`, else the default)."""
        return step.as_domain or self.default_domain


# --------------------------------------------------------------------------- parsing
class _Ctx:
    def __init__(self, source: str, domains: dict[str, GuestSpec] | None = None) -> None:
        self.source = source
        #: the scenario's domains (None: a multicall's calls, which inherit the issuer)
        self.domains = domains

    def err(self, where: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {problem}", fix)


def _int(ctx: _Ctx, where: str, value: Any, *, lo: int = 0, hi: int | None = None) -> int:
    return parse_number(Where(ctx.source, where), None, value, lo=lo, hi=hi)


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
    gnt = gntst_result(value)
    if gnt is not None:  # a grant-table status (GNTST_okay is "ok")
        return gnt
    s = str(value).strip()
    s = "ok" if s.lower() in ("ok", "0", "success") else s.upper().lstrip("-")
    if s.lower() in ("crash", "panic"):
        s = CRASH
    if s.lower() in FATES:
        s = s.lower()
    if s not in RESULTS:
        raise ctx.err(where, f"unknown result {value!r}",
                      "write ok, crash (Xen panics), shadowed / domain_crashed (L1TF), "
                      "unmodelled, an errno name such as EINVAL, EBUSY, ERANGE, or a grant "
                      "status such as GNTST_general_error")
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


def _parse_step(ctx: _Ctx, n: int, raw: Any, frames: dict[str, FrameSpec]) -> Step:
    """One step: exactly one registered operation, its arguments checked by its kind."""
    kinds = steps()
    where = f"step {n}"
    if not isinstance(raw, dict):
        raise ctx.err(where, "a step must be a mapping like {pin: {frame: l3, level: 3}}",
                      "write '- pin: {frame: l3, level: 3}'")
    expect = raw.get("expect")
    ops = [k for k in raw if k not in ("expect", "note", "comment")]
    if len(ops) != 1:
        raise ctx.err(where, f"expected exactly one operation, found {ops or 'none'}",
                      f"use one of: {', '.join(sorted(kinds))}")
    op = ops[0]
    if op not in kinds:
        raise ctx.err(f"{where}: key {op!r}", "unknown operation",
                      f"use one of: {', '.join(sorted(kinds))}")
    where = f"step {n} ({op})"
    kind = kinds[op]
    body = dict(_mapping(ctx, where, raw[op]))
    as_domain = body.pop("as", None)
    params, args = kind.parse(Where(ctx.source, where), body, frames)
    if kind.check and expect is not None:
        raise ctx.err(f"{where}: key 'expect'", "check steps carry their expectation in "
                      "their own keys", "remove expect:")
    as_domain = _check_domains(ctx, where, kind, as_domain, args)
    return Step(n, op, args, _expect(ctx, f"{where}: key 'expect'", expect), params, as_domain)


def _check_domains(ctx: _Ctx, where: str, kind: Any, as_domain: Any,
                   args: dict[str, Any]) -> str | None:
    """`as:` and the domain-valued keys must name declared domains; a toolstack step
    (`privileged_only`) cannot be issued by an unprivileged domain."""
    if ctx.domains is None:
        if as_domain is not None:
            raise ctx.err(f"{where}: key 'as'", "the calls of a multicall are issued by the "
                          "multicall's own domain", "remove as: here; put it on the multicall")
        return None
    names = list(ctx.domains)
    if as_domain is not None:
        as_domain = str(as_domain)
        if as_domain not in ctx.domains:
            raise ctx.err(f"{where}: key 'as'", f"unknown domain {as_domain!r}",
                          f"use one of: {', '.join(names)} (declared under domains:)")
        if kind.privileged_only and not ctx.domains[as_domain].privileged:
            raise ctx.err(f"{where}: key 'as'", f"{kind.op} is a toolstack operation "
                          f"({kind.summary.split(':')[0]}): only a privileged domain issues "
                          f"it, and {as_domain} is not privileged",
                          "write as: followed by a domain with privileged: true, or remove "
                          "as: (the first privileged domain, else the toolstack, issues it)")
    for key in kind.domain_fields:
        value = args.get(key)
        if isinstance(value, str) and not is_special_domain(value) and value != "other" \
                and value not in ctx.domains:
            raise ctx.err(f"{where}: key {key!r}", f"unknown domain {value!r}",
                          f"use one of: {', '.join(names)} (declared under domains:), "
                          "DOMID_SELF, DOMID_IO, DOMID_XEN or a domain id number")
    return as_domain


def _parse_guest(ctx: _Ctx, raw: Any, where: str = "guest") -> GuestSpec:
    """The `guest:` mapping (or one domain of `domains:`): bitness, VM-assists, vCPUs."""
    g = _mapping(ctx, f"key {where!r}", raw)
    _keys(ctx, where, g, {"bitness", "vm_assists", "vcpu0_initialised", "vcpus", "privileged",
                          "max_maptrack_frames"})
    bitness = g.get("bitness", 64)
    if bitness not in (32, 64):
        raise ctx.err(f"{where}: key 'bitness'", f"{bitness!r} is not 32 or 64",
                      "write bitness: 32 (PV32 on 64-bit Xen) or 64")
    assists = g.get("vm_assists") or []
    if not isinstance(assists, list):
        raise ctx.err(f"{where}: key 'vm_assists'", "expected a list",
                      "write vm_assists: [pae_extended_cr3]")
    for a in assists:
        try:
            vm_assist_number(a)
        except PvlabError as e:
            raise ctx.err(f"{where}: key 'vm_assists'", e.message, e.fix or "") from None
    for key in ("vcpu0_initialised", "privileged"):
        if key in g and not isinstance(g[key], bool):
            raise ctx.err(f"{where}: key {key!r}", f"{g[key]!r} is not true or false",
                          f"write {key}: true or false")
    guest = GuestSpec(bitness, tuple(assists), bool(g.get("vcpu0_initialised", False)),
                      _int(ctx, f"{where}: key 'vcpus'", g.get("vcpus", 1), hi=128),
                      bool(g.get("privileged", False)),
                      None if g.get("max_maptrack_frames") is None else
                      _int(ctx, f"{where}: key 'max_maptrack_frames'",
                           g["max_maptrack_frames"], hi=1 << 20))
    if guest.vcpu0_initialised and guest.vcpus == 0:
        raise ctx.err(where, "vcpu0_initialised: true needs a vCPU 0", "set vcpus: 1 or more")
    return guest


#: Names a domain cannot have (frame owners and Xen's own domain ids).
_RESERVED_DOMAIN_NAMES = {"other", "io", "xen", "self"}


def _parse_domains(ctx: _Ctx, raw: Any) -> dict[str, GuestSpec]:
    """The `domains:` mapping: name -> a `guest:`-shaped mapping (plus `privileged:`)."""
    doms = _mapping(ctx, "key 'domains'", raw)
    if not doms:
        raise ctx.err("key 'domains'", "no domain declared",
                      "write domains: {dom0: {privileged: true}, guest: {bitness: 64}}")
    out: dict[str, GuestSpec] = {}
    for name, spec in doms.items():
        name = str(name)
        if name.lower() in _RESERVED_DOMAIN_NAMES or is_special_domain(name) \
                or not name.replace("_", "").replace("-", "").isalnum():
            raise ctx.err(f"domains: key {name!r}", "not a usable domain name",
                          "use a plain name such as dom0, guest, backend (not other, io, "
                          "xen, self or a DOMID_ name)")
        out[name] = _parse_guest(ctx, spec, f"domain {name!r}")
    return out


def _default_owner(ctx: _Ctx) -> str:
    """A frame without `owner:` belongs to the default domain (the only or first
    non-privileged one)."""
    specs = ctx.domains or {"guest": GuestSpec()}
    return next((n for n, g in specs.items() if not g.privileged), next(iter(specs)))


def _parse_frames(ctx: _Ctx, raw: Any) -> dict[str, FrameSpec]:
    """The `frames:` mapping: each frame's placement and owner."""
    frames: dict[str, FrameSpec] = {}
    for fname, spec in _mapping(ctx, "key 'frames'", raw).items():
        where = f"frame {fname!r}"
        spec = _mapping(ctx, where, spec)
        _keys(ctx, where, spec, {"mfn", "below", "above", "owner"})
        owners = [*(ctx.domains or ["guest"]), *SPECIAL_OWNERS]
        owner = str(spec.get("owner", _default_owner(ctx)))
        if owner not in owners:
            raise ctx.err(f"{where}: key 'owner'", f"unknown owner {owner!r}",
                          f"use one of: {', '.join(owners)}")
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
    return frames


def _parse_tables(ctx: _Ctx, raw: Any, frames: dict[str, FrameSpec]) -> dict[str, list[EntrySpec]]:
    """The `tables:` mapping: entries written into declared frames before the steps."""
    tables: dict[str, list[EntrySpec]] = {}
    for table_name, entries in _mapping(ctx, "key 'tables'", raw).items():
        if table_name not in frames:
            raise ctx.err(f"tables: key {table_name!r}", "not a declared frame",
                          "declare it under frames: first")
        out = []
        for idx, raw_entry in _mapping(ctx, f"table {table_name!r}", entries).items():
            where = f"table {table_name!r} entry {idx}"
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
        tables[str(table_name)] = out
    return tables


def _parse_calls(at: Where, key: str, value: Any, spec: ParamSpec,
                 frames: Any) -> tuple[Step, ...]:
    """A multicall's entries (param kind "calls"): a list of steps, each with its own
    optional `expect`, each an operation a multicall may batch."""
    if not isinstance(value, list) or not value:
        raise at.err("expected a non-empty list of operations",
                     "write calls: [{pin: {frame: l1, level: 1}, expect: ok}, ...]", key=key)
    out = []
    for k, raw in enumerate(value, start=1):
        sub = _parse_step(_Ctx(at.source), k, raw, frames)
        if sub.op not in MULTICALL_OPS:
            raise at.err(f"call {k}: {sub.op!r} cannot be batched",
                         f"use one of: {', '.join(MULTICALL_OPS)}", key=key)
        out.append(Step(k, sub.op, sub.args, sub.expect, sub.params))
    return tuple(out)


KINDS["calls"] = (_parse_calls, KINDS["calls"][1])


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    """Validate a loaded YAML document and build a :class:`Scenario`."""
    ctx = _Ctx(source)
    if not isinstance(data, dict):
        raise ctx.err("top level", "a scenario must be a mapping with name:, frames:, steps:",
                      "start the file with 'name: my-scenario'")
    _keys(ctx, "top level", data, {"name", "description", "xen", "host_memory", "guest",
                                   "domains", "frames", "tables", "steps", "placement",
                                   "seed", "xen_build", "xen_cmdline", "hardware"}, {"name"})
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

    try:
        cmdline = XenCommandLine.parse(_mapping(ctx, "key 'xen_cmdline'",
                                                data.get("xen_cmdline")))
    except ScenarioError:
        raise
    except PvlabError as e:
        raise ctx.err("key 'xen_cmdline'", e.message, e.fix or "") from None
    try:
        hardware = Hardware.parse(_mapping(ctx, "key 'hardware'", data.get("hardware")))
    except ScenarioError:
        raise
    except PvlabError as e:
        raise ctx.err("key 'hardware'", e.message, e.fix or "") from None
    if "domains" in data and "guest" in data:
        raise ctx.err("top level", "give either guest: (one domain) or domains: (several)",
                      "move the guest: mapping under domains: as 'guest: {...}'")
    if "domains" in data:
        ctx.domains = _parse_domains(ctx, data["domains"])
    else:
        ctx.domains = {"guest": _parse_guest(ctx, data.get("guest"))}
    domains = ctx.domains
    frames = _parse_frames(ctx, data.get("frames"))
    tables = _parse_tables(ctx, data.get("tables"), frames)

    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise ctx.err("key 'steps'", "expected a list of steps", "write steps: then '- pin: ...'")
    parsed = [_parse_step(ctx, i + 1, s, frames) for i, s in enumerate(raw_steps)]
    placement = str(data.get("placement", "low-first"))
    seed = _int(ctx, "key 'seed'", data.get("seed", 0))
    scn = Scenario(name.strip(), str(data.get("description") or "").strip(), xen, host,
                   GuestSpec(), frames, tables, parsed, source, placement, seed, xen_build,
                   domains, "domains" in data, cmdline, hardware)
    scn.guest = domains[scn.default_domain]
    return scn


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
