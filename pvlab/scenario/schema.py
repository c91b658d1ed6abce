# SPDX-License-Identifier: MIT
"""A JSON Schema for scenario files, generated from the step registry (`pvlab schema`).

Editors use it to complete and check scenario files as people type: VS Code's YAML
extension reads a first line such as
``# yaml-language-server: $schema=../../docs/scenario.schema.json``. The parser
(`pvlab.scenario.model`) stays the authority: it also checks what a schema cannot say
(frame names that exist, exclusive keys, values that must parse).
"""

from __future__ import annotations

from typing import Any

from pvlab.scenario.params import field_schema, is_required, key_of
from pvlab.scenario.registry import StepKind, steps
from pvlab.trace import FATES, Errno
from pvlab.xen.cmdline import HARDWARE_KEYS, OPTIONS
from pvlab.xen.grant_status import GNTST_RESULTS
from pvlab.xen.machine import PLACEMENTS
from pvlab.xen.profiles import ALIASES, PROFILES
from pvlab.xen.vmassist import VM_ASSISTS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SIZE = {"anyOf": [{"type": "integer", "minimum": 0},
                   {"type": "string", "description": "a size such as 4GiB or 0x1000"}]}
_NUMBER = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}
_PROFILE = {"anyOf": [{"type": "string", "enum": [*PROFILES, *ALIASES]},
                      {"type": "string"}, {"type": "number"}],
            "description": "a Xen profile (pvlab rules; docs/fidelity.md)"}
_ASSIST = {"anyOf": [{"type": "string", "enum": list(VM_ASSISTS)},
                     {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
                     {"type": "integer", "minimum": 0, "maximum": 63}]}
_AS = {"type": "string", "description": "the domain that issues the step (a name under "
                                        "domains:; default: the only or first unprivileged one)"}
_RESULT = {"anyOf": [{"type": "string", "enum": ["ok", "crash", *FATES, *(e.name for e in Errno),
                                                 *GNTST_RESULTS]},
                     {"type": "string", "pattern": "^-?[A-Za-z0-9_]+$"},
                     {"type": "integer", "const": 0}],
           "description": "ok, crash (Xen panics), an errno name such as EINVAL, or a grant "
                          "status such as GNTST_general_error"}


def _args_schema(kind: StepKind[Any]) -> dict[str, Any]:
    fields = kind.fields()
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {**{key_of(f): field_schema(f) for f in fields}, "as": _AS},
    }
    required = [key_of(f) for f in fields if is_required(f)]
    if required:
        schema["required"] = required
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _step_schema(kind: StepKind[Any]) -> dict[str, Any]:
    props: dict[str, Any] = {kind.op: {**_args_schema(kind), "description": kind.summary},
                             "note": {"type": "string"}, "comment": {"type": "string"}}
    if not kind.check:
        props["expect"] = {"anyOf": [_RESULT, {"type": "object",
                                               "additionalProperties": _RESULT}]}
    return {"type": "object", "title": kind.op, "description": kind.summary,
            "required": [kind.op], "properties": props, "additionalProperties": False}


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (a dict, ready for `json.dumps`)."""
    kinds = steps()
    guest = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "bitness": {"enum": [32, 64], "description": "PV32 (compat) or PV64"},
            "vm_assists": {"anyOf": [{"type": "array", "items": _ASSIST}, {"type": "null"}]},
            "vcpu0_initialised": {"type": "boolean"},
            "vcpus": {"type": "integer", "minimum": 0, "maximum": 128},
            "privileged": {"type": "boolean"},
            "max_maptrack_frames": {"type": "integer", "minimum": 0,
                                    "description": "grant maptrack frames (256 handles "
                                                   "each); default 1024"},
        },
    }
    frame = {"anyOf": [{"type": "null"}, {
        "type": "object", "additionalProperties": False,
        "properties": {"mfn": _NUMBER, "below": _SIZE, "above": _SIZE,
                       "owner": {"type": "string", "description": "guest (or a domain "
                                 "named under domains:), other or io"}}}]}
    entry = {"type": "object", "additionalProperties": False,
             "properties": {"to": {"type": "string"}, "mfn": _NUMBER, "value": _NUMBER,
                            "flags": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                {"type": "string"},
                                                {"type": "integer", "minimum": 0},
                                                {"type": "null"}]}}}
    table = {"anyOf": [{"type": "null"}, {
        "type": "object", "propertyNames": {"pattern": r"^(0[xX][0-9a-fA-F]+|[0-9]+)$"},
        "additionalProperties": entry}]}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "pvlab scenario",
        "description": "A pvlab scenario file (docs/scenarios.md). Generated by `pvlab schema` "
                       "from the step registry.",
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": ["string", "null"]},
            "xen": _PROFILE,
            "host_memory": _SIZE,
            "guest": {"anyOf": [guest, {"type": "null"}]},
            "domains": {"type": "object", "minProperties": 1, "additionalProperties": guest,
                        "description": "several domains by name (instead of guest:); "
                                       "privileged: true makes a dom0-like domain"},
            "frames": {"anyOf": [{"type": "object", "additionalProperties": frame},
                                 {"type": "null"}]},
            "tables": {"anyOf": [{"type": "object", "additionalProperties": table},
                                 {"type": "null"}]},
            "steps": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/step"}},
                                {"type": "null"}]},
            "placement": {"enum": list(PLACEMENTS)},
            "seed": _NUMBER,
            "xen_build": {"enum": ["debug", "release"],
                          "description": "CONFIG_DEBUG on (assertions panic) or off"},
            "xen_cmdline": {"anyOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False,
                "description": "options on Xen's command line (docs/scenarios.md)",
                "properties": {
                    "pv-linear-pt": {"type": "boolean", "description": OPTIONS["pv-linear-pt"]},
                    "pv-l1tf": {"anyOf": [{"type": "boolean"}, {"type": "string"}],
                                "description": OPTIONS["pv-l1tf"]},
                    "allowsuperpage": {"type": "boolean",
                                       "description": OPTIONS["allowsuperpage"]}}}]},
            "hardware": {"anyOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False,
                "description": "the host CPU (docs/scenarios.md)",
                "properties": {
                    **{k: {"type": "boolean", "description": HARDWARE_KEYS[k]}
                       for k in ("l1tf_vulnerable", "invpcid", "shadow_paging")},
                    **{k: {"type": "integer", "minimum": 32, "maximum": 52,
                           "description": HARDWARE_KEYS[k]}
                       for k in ("paddr_bits", "l1d_maxphysaddr")}}}]},
        },
        "$defs": {
            "step": {"oneOf": [{"$ref": f"#/$defs/{op}"} for op in sorted(kinds)]},
            **{op: _step_schema(kinds[op]) for op in sorted(kinds)},
        },
    }
