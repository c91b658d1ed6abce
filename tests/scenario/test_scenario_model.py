# SPDX-License-Identifier: MIT
"""Scenario validation: every error names the file, the step and the key, and is a
ScenarioError (never a traceback of another kind)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvlab import ScenarioError, load_scenario, run_scenario
from pvlab.errors import PvlabError
from pvlab.scenario import parse_scenario

GOOD: dict[str, Any] = {
    "name": "ok",
    "xen": "4.19",
    "guest": {"bitness": 32, "vm_assists": [], "vcpu0_initialised": False},
    "frames": {"l3": {"above": "4GiB"}, "l2": {}, "l1": {}, "data": {}},
    "tables": {"l3": {3: {"to": "l2", "flags": ["P"]}},
               "l2": {0: {"to": "l1", "flags": ["P", "RW"]}},
               "l1": {0: {"to": "data", "flags": ["P", "RW"]}}},
    "steps": [
        {"pin": {"frame": "l3", "level": 3}, "expect": "ok"},
        {"vcpu_initialise": {"vcpu": 0, "cr3": "l3"}},
        {"mmu_update": {"table": "l1", "index": 1, "to": "data", "flags": ["P"]}},
        {"expect_page": {"frame": "l2", "type": "l2", "type_count": 1}},
    ],
}


def _err(doc: Any, source: str = "bad.yaml") -> str:
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(doc, source=source)
    return str(ei.value)


def test_good_document_parses_and_runs() -> None:
    scn = parse_scenario(copy.deepcopy(GOOD), source="good.yaml")
    run = run_scenario(scn)
    assert run.ok and [s.result for s in run.steps][:3] == ["ok", "ok", "ok"]


def _with_step(step: dict[str, Any], n: int = 2) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc["steps"].insert(n - 1, step)
    return doc


@pytest.mark.parametrize(("step", "key"), [
    ({"pin": {"frame": "l3", "level": 5}}, "'level'"),
    ({"pin": {"frame": "nope", "level": 3}}, "'frame'"),
    ({"pin": {"frame": "l3", "level": 3, "colour": 1}}, "'colour'"),
    ({"pinn": {"frame": "l3"}}, "'pinn'"),
    ({"pin": {"frame": "l3", "level": 3}, "expect": "EWHAT"}, "'expect'"),
    ({"mmu_update": {"table": "l1", "index": 512, "to": "data"}}, "'index'"),
    ({"mmu_update": {"table": "l1", "index": 1, "to": "data", "flags": ["QQ"]}}, "'flags'"),
    ({"vm_assist": {"enable": "turbo"}}, "'enable'"),
    ({"vcpu_initialise": {"vcpu": 0, "cr3": "l3", "vm_assists": ["nope"]}}, "'vm_assists'"),
    ({"expect_page": {"frame": "l2", "type": "l9"}}, "'type'"),
    ({"expect_page": {"frame": "l2"}, "expect": "ok"}, "'expect'"),
    ({"pin": {"frame": "l3", "level": 3}, "expect": {"4.99": "ok"}}, "'4.99'"),
])
def test_step_errors_name_file_step_and_key(step: dict[str, Any], key: str) -> None:
    msg = _err(_with_step(step, 2))
    assert msg.startswith("bad.yaml: step 2"), msg
    assert key in msg, msg
    assert "(fix:" in msg


@pytest.mark.parametrize(("mutate", "needles"), [
    (lambda d: d.pop("name"), ["top level", "'name'"]),
    (lambda d: d.update(colour=1), ["top level", "'colour'"]),
    (lambda d: d.update(xen="3.0"), ["'xen'"]),
    (lambda d: d["guest"].update(bitness=16), ["guest", "'bitness'"]),
    (lambda d: d["guest"].update(vm_assists=["nope"]), ["guest", "'vm_assists'"]),
    (lambda d: d["frames"].update(x={"mfn": "zz"}), ["frame 'x'", "'mfn'"]),
    (lambda d: d["frames"].update(x={"near": 1}), ["frame 'x'", "'near'"]),
    (lambda d: d["tables"].update(ghost={0: {"to": "l2"}}), ["tables", "'ghost'"]),
    (lambda d: d["tables"]["l3"].update({3: {"to": "ghost"}}), ["entry 3", "'to'"]),
    (lambda d: d.update(steps={"pin": 1}), ["'steps'"]),
    (lambda d: d.update(host_memory="lots"), ["host_memory"]),
])
def test_document_errors_name_the_key(mutate: Any, needles: list[str]) -> None:
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    msg = _err(doc)
    assert msg.startswith("bad.yaml: ")
    for n in needles:
        assert n in msg, msg


def test_load_errors(tmp_path: Any) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nsteps: [\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: line \d+: not valid YAML"):
        load_scenario(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(ScenarioError, match="top level"):
        load_scenario(p)


def test_yaml_is_loaded_safely(tmp_path: Any) -> None:
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ScenarioError):
        load_scenario(p)


def test_impossible_frame_at_run_time_is_a_scenario_error() -> None:
    doc = copy.deepcopy(GOOD)
    doc["host_memory"] = "64MiB"
    scn = parse_scenario(doc, source="small.yaml")
    with pytest.raises(ScenarioError, match=r"small\.yaml: frame 'l3'"):
        run_scenario(scn)


# Random documents: parse_scenario either accepts or raises ScenarioError.
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 1 << 40),
                    st.sampled_from(["l3", "l2", "P", "ok", "EINVAL", "4GiB", "x", "0x10",
                                     "pae_extended_cr3", "4.17", ""]))
_val = st.recursive(_scalar, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.sampled_from(
        ["frame", "level", "to", "flags", "index", "mfn", "value", "vcpu", "cr3", "enable",
         "expect", "type", "pin", "unpin", "mmu_update", "above", "below", 3, 0]), c,
        max_size=4)), max_leaves=12)
_doc = st.fixed_dictionaries({"name": st.one_of(st.just("n"), _scalar)}, optional={
    "guest": _val, "frames": _val, "tables": _val, "steps": _val, "xen": _scalar,
    "host_memory": _scalar})


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(doc=_doc)
def test_random_documents_only_raise_scenario_errors(doc: dict[str, Any]) -> None:
    try:
        scn = parse_scenario(doc, source="fuzz.yaml")
    except ScenarioError as e:
        assert str(e).startswith("fuzz.yaml: ")
        return
    try:
        run_scenario(scn)
    except PvlabError as e:  # e.g. an impossible frame: must still be a ScenarioError
        assert isinstance(e, ScenarioError), repr(e)
        assert str(e).startswith("fuzz.yaml")


def test_yaml_text_round_trip() -> None:
    scn = load_scenario(yaml.safe_dump(GOOD), source="inline")
    assert scn.name == "ok" and scn.source == "inline" and len(scn.steps) == 4


@pytest.mark.parametrize("step", [
    {"expect_page": {"frame": 1 << 40}},
    {"write": {"table": 1 << 40, "index": 0, "value": 1}},
    {"mmu_update": {"table": "a", "index": 0, "mfn": 1 << 41, "flags": ["P"]}},
    {"write": {"table": "a", "index": 0, "mfn": 1 << 41, "flags": ["P"]}},
    {"vcpu_initialise": {"vcpu": 0, "cr3": 1 << 33}},
])
def test_out_of_range_raw_mfns_are_scenario_errors(step: dict[str, Any]) -> None:
    doc = {"name": "n", "guest": {"bitness": 32}, "frames": {"a": {}}, "steps": [step]}
    scn = parse_scenario(doc, source="f.yaml")
    with pytest.raises(ScenarioError, match=r"^f\.yaml: step 1"):
        run_scenario(scn)
