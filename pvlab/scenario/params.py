# SPDX-License-Identifier: MIT
"""Typed step arguments: each field of a step's argument class names its kind, and the
kind says how a YAML value is checked (with the scenario language's clear messages) and
which JSON Schema describes it. One table drives the parser and the schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pvlab.errors import PvlabError
from pvlab.scenario.errors import ScenarioError
from pvlab.units import parse_size
from pvlab.x86.flags import parse_flags
from pvlab.xen.page_info import TYPE_BY_NAME
from pvlab.xen.vmassist import VM_ASSISTS, vm_assist_number

#: The kinds of step argument (see :data:`KINDS`).
ParamKind = Literal["frame", "int", "flags", "bool", "assist", "assists", "page_type", "text",
                    "size", "placement", "names", "whole", "switch", "limit", "calls",
                    "domain", "pte", "handle"]

#: A frame reference: a name declared under ``frames:``, or a machine frame number.
FrameRef = str | int


class Where:
    """Where a value sits in a file, for error messages (``file: step 3 (pin): key 'level'``)."""

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where

    def err(self, problem: str, fix: str, *, key: str | None = None) -> ScenarioError:
        place = f"{self.where}: key {key!r}" if key is not None else self.where
        return ScenarioError(f"{self.source}: {place}: {problem}", fix)


@dataclass(frozen=True)
class ParamSpec:
    """What a field accepts: its kind, a range for numbers, and a one-line help text."""

    kind: ParamKind
    lo: int = 0
    hi: int | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    #: The key a file writes when it is not the field's name (`from`, a Python keyword).
    key: str | None = None


def param(kind: ParamKind, default: Any = dataclasses.MISSING, *, lo: int = 0,
          hi: int | None = None, choices: tuple[str, ...] = (), help: str = "",
          key: str | None = None) -> Any:
    """A step-argument field: ``level: int = param("int", lo=1, hi=4)``.

    Without a default the key is required in scenario files. `key`: the key a file
    writes, when it cannot be the field's name (``from_ = param("domain", key="from")``).
    """
    spec = ParamSpec(kind, lo, hi, choices, help, key)
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"param": spec})
    return dataclasses.field(default=default, metadata={"param": spec})


def spec_of(f: dataclasses.Field[Any]) -> ParamSpec:
    spec = f.metadata.get("param")
    assert isinstance(spec, ParamSpec), f"field {f.name} has no param() spec"
    return spec


def key_of(f: dataclasses.Field[Any]) -> str:
    """The key a scenario file writes for field `f`."""
    return spec_of(f).key or f.name


def is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


# ------------------------------------------------------------------ parsers per kind
def parse_number(at: Where, key: str | None, value: Any, *, lo: int = 0,
                 hi: int | None = None) -> int:
    """A number (YAML int, or text such as ``0x1f``) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise at.err(f"{value!r} is not a number", "write a number such as 3 or 0x1f", key=key)
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise at.err(f"{value!r} is not a number", "write a number such as 3 or 0x1f",
                         key=key) from None
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}-{hi}" if hi is not None else f">= {lo}"
        raise at.err(f"{value} is out of range ({rng})", f"use a value in {rng}", key=key)
    return value


def _frame(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> FrameRef:
    if isinstance(value, str):
        if value not in frames:
            known = f", or use one of: {', '.join(frames)}" if frames else ""
            raise at.err(f"unknown frame {value!r}", f"declare it under frames:{known}", key=key)
        return value
    return parse_number(at, key, value)


def _int(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> int:
    return parse_number(at, key, value, lo=spec.lo, hi=spec.hi)


def _flags(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> int:
    try:
        return parse_flags(value if value is not None else [])
    except PvlabError as e:
        raise at.err(e.message, e.fix or "write e.g. [P, RW]", key=key) from None


def _bool(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> bool:
    if not isinstance(value, bool):
        raise at.err(f"{value!r} is not true or false", f"write {key}: true", key=key)
    return value


def _assist(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> str | int:
    try:
        vm_assist_number(value)
    except PvlabError as e:
        raise at.err(e.message, e.fix or "", key=key) from None
    return value


def _assists(at: Where, key: str, value: Any, spec: ParamSpec,
             frames: Any) -> tuple[str | int, ...]:
    if not isinstance(value, list):
        raise at.err("expected a list of names", "write vm_assists: [pae_extended_cr3]", key=key)
    return tuple(_assist(at, key, v, spec, frames) for v in value)


def _page_type(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> str:
    if str(value) not in TYPE_BY_NAME:
        raise at.err(f"unknown page type {value!r}", f"use one of: {', '.join(TYPE_BY_NAME)}",
                     key=key)
    return str(value)


def _text(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> str:
    text = str(value)
    if spec.choices and text.replace("-", "_") not in spec.choices:
        raise at.err(f"{value!r} is not one of {', '.join(spec.choices)}",
                     f"write {key}: {spec.choices[0]}", key=key)
    return text


def _size(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> int | str:
    try:
        parse_size(value, what=key)
    except PvlabError as e:
        raise at.err(e.message, e.fix or "write e.g. 16MiB", key=key) from None
    return value


def _whole(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise at.err(f"{value!r} is not a whole number", f"write {key}: 2", key=key)
    return value


def _names(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise at.err("expected a list of step names",
                     f"write {key}: [setup_pgtables, pin_table]", key=key)
    return tuple(value)


def _placement(at: Where, key: str, value: Any, spec: ParamSpec,
               frames: Any) -> dict[str, int | str]:
    if not isinstance(value, dict) or not value or set(value) - {"above", "below", "mfn"}:
        raise at.err(f"{value!r} is not a frame placement",
                     f"write {key}: {{above: 4GiB}}, {{below: 4GiB}} or {{mfn: 0x100200}}",
                     key=key)
    out: dict[str, int | str] = {}
    for k, val in value.items():
        try:
            out[k] = int(val) if k == "mfn" else parse_size(val, what=k)
        except (PvlabError, ValueError, TypeError):
            raise at.err(f"{k}: {val!r} is not valid", "write e.g. 4GiB", key=key) from None
    return out


def _limit(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> int | str:
    """An allocation limit passed to the allocator as written (a size or a frame number)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise at.err(f"{value!r} is not a size or a number", "write e.g. 4GiB", key=key)
    return value


#: Xen's reserved domain ids a step may name (`public/xen.h`), by the names a file writes.
SPECIAL_DOMAINS = {"DOMID_SELF": 0x7FF0, "DOMID_IO": 0x7FF1, "DOMID_XEN": 0x7FF2}


def is_special_domain(name: str) -> bool:
    """DOMID_SELF / DOMID_IO / DOMID_XEN (any case)."""
    return name.upper() in SPECIAL_DOMAINS


def _domain(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> str | int:
    """A domain: a name under `domains:` (checked by the scenario parser, which knows them),
    DOMID_SELF/DOMID_IO/DOMID_XEN, or a domain id number."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise at.err(f"{value!r} is not a domain", f"write {key}: dom0 (a name under "
                     "domains:), DOMID_IO or a domain id number", key=key)
    if isinstance(value, int):
        return parse_number(at, key, value, hi=0x7FFF)
    if value.lower() == "self":
        return "DOMID_SELF"  # `domain: self`, as update_va_mapping_otherdomain always took
    return value.upper() if is_special_domain(value) else value


@dataclass(frozen=True)
class PteRef:
    """A PTE's machine address (`GNTMAP_contains_pte`): entry `index` of L1 `table`, plus
    `offset` bytes (a misaligned address when not 0)."""

    table: FrameRef
    index: int
    offset: int = 0


def _pte(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> PteRef:
    if not isinstance(value, dict) or not {"table", "index"} <= value.keys() \
            or set(value) - {"table", "index", "offset"}:
        raise at.err(f"{value!r} is not a PTE address",
                     f"write {key}: {{table: l1, index: 5}} (offset: N adds N bytes)", key=key)
    return PteRef(_frame(at, key, value["table"], spec, frames),
                  parse_number(at, key, value["index"], hi=511),
                  parse_number(at, key, value.get("offset", 0), hi=4095))


def _handle(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> str | int:
    """A grant handle: a number, or the name an earlier `grant_map` gave with `handle:`."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise at.err(f"{value!r} is not a handle", f"write {key}: 0 or the name a grant_map "
                     "step gave with handle:", key=key)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return value
    return parse_number(at, key, value)


Parser = Callable[[Where, str, Any, ParamSpec, Any], Any]
_NUMBER = {"anyOf": [{"type": "integer", "minimum": 0},
                     {"type": "string", "pattern": r"^\s*(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|"
                                                   r"0[bB][01_]+|[0-9][0-9_]*)\s*$"}]}
_FLAG_NAMES = {"type": "string"}
_SIZE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}


def _number_schema(spec: ParamSpec) -> dict[str, Any]:
    if spec.lo == 0 and spec.hi is None:
        return dict(_NUMBER)
    bounded: dict[str, Any] = {"type": "integer", "minimum": spec.lo}
    if spec.hi is not None:
        bounded["maximum"] = spec.hi
    return {"anyOf": [bounded, _NUMBER["anyOf"][1]]}


def _assist_schema() -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": sorted(VM_ASSISTS)},
                      {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
                      {"type": "integer", "minimum": 0, "maximum": 63}]}


#: the operations a `multicall` may batch (each is one multicall_entry)
MULTICALL_OPS = ("pin", "unpin", "mmu_update", "mmuext", "update_va_mapping", "vm_assist",
                 "machphys_update", "tlb_flush")


def _calls(at: Where, key: str, value: Any, spec: ParamSpec, frames: Any) -> tuple[Any, ...]:
    """A multicall's entries: installed by `pvlab.scenario.model` (which parses steps)."""
    raise at.err("multicall steps are parsed with pvlab.scenario.model",
                 "load the scenario with pvlab.scenario.load_scenario", key=key)


#: kind -> (parser, JSON Schema of the value).
KINDS: dict[str, tuple[Parser, Callable[[ParamSpec], dict[str, Any]]]] = {
    "frame": (_frame, lambda s: {"anyOf": [{"type": "string", "description": "a frame name"},
                                            {"type": "integer", "minimum": 0}]}),
    "int": (_int, _number_schema),
    "flags": (_flags, lambda s: {"anyOf": [{"type": "array", "items": _FLAG_NAMES},
                                            {"type": "string"},
                                            {"type": "integer", "minimum": 0},
                                            {"type": "null"}]}),
    "bool": (_bool, lambda s: {"type": "boolean"}),
    "switch": (_bool, lambda s: {"type": "boolean"}),
    "assist": (_assist, lambda s: _assist_schema()),
    "assists": (_assists, lambda s: {"type": "array", "items": _assist_schema()}),
    "page_type": (_page_type, lambda s: {"type": "string", "enum": list(TYPE_BY_NAME)}),
    "text": (_text, lambda s: {"type": "string", "enum": [*s.choices,
                                                          *(c.replace("_", "-")
                                                            for c in s.choices if "_" in c)]}
             if s.choices else {"type": "string"}),
    "size": (_size, lambda s: dict(_SIZE)),
    "limit": (_limit, lambda s: dict(_SIZE)),
    "whole": (_whole, lambda s: {"type": "integer"}),
    "names": (_names, lambda s: {"type": "array", "items": {"type": "string"}}),
    "calls": (_calls, lambda s: {"type": "array", "minItems": 1,
                                  "items": {"type": "object"}}),
    "domain": (_domain, lambda s: {"anyOf": [
        {"type": "string", "description": "a domain named under domains:, or DOMID_SELF, "
                                          "DOMID_IO, DOMID_XEN"},
        {"type": "integer", "minimum": 0, "maximum": 0x7FFF}]}),
    "pte": (_pte, lambda s: {
        "type": "object", "required": ["table", "index"], "additionalProperties": False,
        "properties": {"table": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                       "index": {"type": "integer", "minimum": 0, "maximum": 511},
                       "offset": {"type": "integer", "minimum": 0, "maximum": 4095}}}),
    "handle": (_handle, lambda s: {"anyOf": [{"type": "integer", "minimum": 0},
                                             {"type": "string"}]}),
    "placement": (_placement, lambda s: {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {"above": _SIZE, "below": _SIZE, "mfn": {"type": "integer"}}}),
}


def parse_field(at: Where, f: dataclasses.Field[Any], value: Any, frames: Any) -> Any:
    spec = spec_of(f)
    parser, _ = KINDS[spec.kind]
    return parser(at, f.name, value, spec, frames)


def field_schema(f: dataclasses.Field[Any]) -> dict[str, Any]:
    spec = spec_of(f)
    schema = KINDS[spec.kind][1](spec)
    if spec.help:
        schema = {**schema, "description": spec.help}
    return schema
