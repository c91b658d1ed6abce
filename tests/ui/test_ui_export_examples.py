# SPDX-License-Identifier: MIT
"""Export -> `pvlab run` round trips, and every bundled example runs and loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pvlab.cli import main
from pvlab.scenario import load_scenario, run_scenario
from pvlab.ui import LabSession, example_path, examples

REQUIRED = {"seed-erange", "toolstack-slack", "assist-on", "l3-below-4g", "pv64-guest",
            "profile-4.17", "shared-slot3-l2-leak", "writable-vs-pagetable",
            "linear-pagetable", "l1-maps-itself-rw"}


def sketch() -> LabSession:
    lab = LabSession()
    lab.set_bitness(32)
    lab.allocate("l3", above="4GiB")
    lab.allocate("l3b", above="4GiB")
    lab.allocate("l2")
    lab.allocate("l2b")
    lab.set_entry("l3", 3, "l2", "P")
    lab.set_entry("l3b", 3, "l2b", "P")
    lab.pin("l3")
    lab.initialise_vcpu0(cr3="l3")
    lab.pin("l3b")
    return lab


def results(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.result for s in run.steps]


def test_export_runs_with_pvlab_run_and_gives_the_same_outcomes(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture
                                                                 ) -> None:
    lab = sketch()
    assert [s.result for s in lab.run.steps] == ["ok", "ok", "ERANGE"]
    path = tmp_path / "sketch.yaml"
    text = lab.export_yaml(path)
    data = yaml.safe_load(text)
    assert data["guest"] == {"bitness": 32, "vm_assists": [], "vcpu0_initialised": False}
    assert data["frames"]["l3"] == {"above": "4GiB"}
    assert data["tables"]["l3"] == {3: {"to": "l2", "flags": ["P"]}}
    assert [s.get("expect") for s in data["steps"]] == ["ok", "ok", "ERANGE"]
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ERANGE" in out and "0 failed" in out
    assert results(run_scenario(load_scenario(path))) == ["ok", "ok", "ERANGE"]


def test_export_then_load_gives_the_same_state() -> None:
    lab = sketch()
    text = lab.export_yaml()
    other = LabSession()
    assert other.load(text)
    other.run_to_end()
    assert {n: (r.type, r.type_count, r.pinned) for n, r in
            ((r.name, r) for r in other.frame_rows())} == \
        {n: (r.type, r.type_count, r.pinned) for n, r in ((r.name, r) for r in lab.frame_rows())}
    assert other.last_outcome is not None and other.last_outcome.errno == "ERANGE"


def test_export_after_changing_the_profile_records_what_happened(tmp_path: Path) -> None:
    """Loaded expectations that no longer hold are replaced by the observed results."""
    lab = LabSession()
    lab.load_example("seed-erange")
    lab.set_bitness(64)  # no PAE rule; the last pin finds l3b pinned already
    lab.run_to_end()
    path = tmp_path / "x.yaml"
    lab.export_yaml(path)
    assert main(["run", str(path)]) == 0
    data = yaml.safe_load(path.read_text())
    assert data["guest"]["bitness"] == 64
    assert [s.get("expect") for s in data["steps"] if "pin" in s] == ["ok", "ok", "EINVAL"]


def test_export_of_an_empty_lab_is_a_valid_scenario(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    LabSession().export_yaml(path)
    assert main(["run", str(path)]) == 0


def test_the_required_examples_are_bundled() -> None:
    assert REQUIRED <= set(examples())


@pytest.mark.parametrize("name", examples())
def test_example_passes_pvlab_run(name: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", str(example_path(name))]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("name", examples())
def test_example_steps_through_the_lab_as_pvlab_run_does(name: str) -> None:
    lab = LabSession()
    assert lab.load_example(name), lab.status_text
    while lab.step():
        pass
    scn = load_scenario(example_path(name))
    assert results(lab.run) == results(run_scenario(scn))
    assert lab.run.ok
    while lab.back():
        pass
    assert lab.position == 0


def test_examples_are_documented_with_the_xen_function() -> None:
    for name in examples():
        text = example_path(name).read_text()
        assert text.startswith("# ") and "Xen" in text.split("\nname:")[0], name
        assert load_scenario(example_path(name)).description, name
