# SPDX-License-Identifier: MIT
"""The JSON Schema of scenario files: generated from the step registry, committed in
docs/, accepted by every scenario in the corpus and refusing malformed files (checked with
the `jsonschema` library, as an editor's YAML extension checks them)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pvlab.cli import main
from pvlab.commands.schema import schema_text
from pvlab.scenario.registry import steps
from pvlab.scenario.schema import scenario_schema

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "scenario.schema.json"
CORPUS = sorted((ROOT / "tests" / "scenarios").rglob("*.yaml"))
EXAMPLES = sorted((ROOT / "pvlab" / "examples").glob("*.yaml"))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _as_json(data: Any) -> Any:
    """What an editor validates: YAML read as JSON (mapping keys are strings)."""
    return json.loads(json.dumps(data))


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "docs/scenario.schema.json is stale: run `pvlab schema > docs/scenario.schema.json`")


def test_pvlab_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == scenario_schema()


def test_every_registered_step_has_a_definition() -> None:
    defs = scenario_schema()["$defs"]
    assert set(steps()) <= defs.keys()
    assert len(defs["step"]["oneOf"]) == len(steps())


@pytest.mark.parametrize("path", CORPUS + EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_corpus_file_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = sorted(_validator().iter_errors(_as_json(data)), key=lambda e: e.path)
    assert not errors, f"{path.name}: {errors[0].message} at {list(errors[0].absolute_path)}"


GOOD: dict[str, Any] = {
    "name": "ok",
    "guest": {"bitness": 32},
    "frames": {"l3": {"above": "4GiB"}, "l2": {}},
    "tables": {"l3": {3: {"to": "l2", "flags": ["P"]}}},
    "steps": [{"pin": {"frame": "l3", "level": 3}, "expect": "ok"},
              {"expect_page": {"frame": "l3", "type": "l3", "pinned": True}}],
}


def test_the_good_document_validates() -> None:
    _validator().validate(_as_json(GOOD))


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(("path", "value"), [
    (["name"], 3),                                           # not a string
    (["colour"], "red"),                                     # unknown top-level key
    (["guest", "bitness"], 16),                              # no such guest
    (["guest", "vcpus"], 500),                               # out of range
    (["frames", "l2"], {"owner": ["guest"]}),                # owner must be a name
    (["tables", "l3", 3], {"to": "l2", "colour": 1}),        # unknown entry key
    (["steps", 0], {"pin": {"frame": "l3", "level": 5}}),    # level out of 1-4
    (["steps", 0], {"pin": {"frame": "l3"}}),                # missing level
    (["steps", 0], {"pinn": {"frame": "l3", "level": 3}}),   # unknown operation
    (["steps", 0], {"pin": {"frame": "l3", "level": 3}, "expect": ["ok"]}),
    (["steps", 1], {"expect_page": {"frame": "l3"}, "expect": "ok"}),  # a check has no expect
    (["steps", 1], {"expect_page": {"frame": "l3", "type": "l9"}}),    # unknown page type
    (["steps", 1], {"expect_page": {"frame": "l3", "pinned": "yes"}}),  # not a boolean
    (["steps", 0], {"vcpu_initialise": {"vcpu": 0, "cr3": "l3", "vm_assists": "all"}}),
    (["steps", 0], {"build_domain": {"vcpus": "two"}}),      # a toolstack step's argument
])
def test_malformed_documents_are_rejected(path: list[Any], value: Any) -> None:
    assert list(_validator().iter_errors(_as_json(_broken(path, value))))
