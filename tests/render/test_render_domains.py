# SPDX-License-Identifier: MIT
"""Pictures of a scenario with several domains name each frame's owning domain."""

from __future__ import annotations

from pathlib import Path

from pvlab.render.api import domain_labels, frames_view, tables_view
from pvlab.scenario import load_scenario, run_scenario

CORPUS = Path(__file__).parents[1] / "scenarios"


def test_frame_map_labels_every_frame_with_its_domain() -> None:
    run = run_scenario(load_scenario(CORPUS / "901-issue-example-grant-foreign-destroy.yaml"),
                       stop_after=4)
    model = frames_view(run).model
    owners = {n.title.split()[0]: n.owner for n in model.nodes if n.mfn is not None}
    assert owners == {"g_data": "guest (d2)", "g_l1": "guest (d2)", "d_l1": "dom0 (d1)"}
    assert any("dom0 (d1)" in line for line in model.labels())
    borders = {n.owner: n.border for n in model.nodes if n.mfn is not None}
    assert borders["dom0 (d1)"] != borders["guest (d2)"]


def test_foreign_frame_in_the_tables_picture_reads_its_owner() -> None:
    run = run_scenario(load_scenario(CORPUS / "919-foreign-rw-mapping-takes-writable-type.yaml"),
                       stop_after=3)
    run.guest = run.domains["dom0"]  # draw dom0's tables: its L1 maps the guest's frame
    labels = list(tables_view(run).model.labels())
    assert any("guest (d2)" in line for line in labels)


def test_one_guest_scenarios_keep_xens_owner_names() -> None:
    run = run_scenario(load_scenario(CORPUS / "404-pv32-l1-foreign-and-io-frames.yaml"))
    assert domain_labels(run) == {}
    assert any(n.owner == "d2" for n in frames_view(run).model.nodes)


def test_render_cli_draws_a_named_domains_tables(tmp_path: Path,
                                                  capsys: object) -> None:
    from pvlab.cli import main

    out = tmp_path / "t.txt"
    path = str(CORPUS / "901-issue-example-grant-foreign-destroy.yaml")
    assert main(["render", "--domain", "dom0", "--step", "3", "-o", str(out), path]) == 0
    text = out.read_text()
    assert text.startswith("dom0: 64-bit PV guest")
    assert "-> g_data mfn=0x100" in text and "guest (d2) type=writable" in text
    assert main(["render", "--domain", "nobody", path]) == 2
