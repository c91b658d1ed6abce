# SPDX-License-Identifier: MIT
"""Issue 12 in the lab: the document is the core's Scenario, status by the action's own
result, the replay on the picture, change badges, predict-then-reveal, side by side, bit
rulers and the stale-widget fixes. Outcomes are real Xen's (seed story, shared reference
§9 A: -ERANGE from promote_l3_table on 4.19+, ok on 4.17; the slot-3 leak of 4.14+)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.cli import main
from pvlab.errors import PvlabError
from pvlab.scenario import Scenario, load_scenario
from pvlab.ui import LabSession
from pvlab.ui.bits import FLAG_CHOICES, FLAG_COMBOS, cr3_fields, cr3_ruler_html, entry_fields
from pvlab.ui.document import Document
from pvlab.units import MFN_4GIB

pytest.importorskip("ipywidgets")

from pvlab.ui import Lab  # noqa: E402


def seed_lab(**kwargs: object) -> Lab:
    lab = Lab(**kwargs)  # type: ignore[arg-type]
    lab.set_bitness(32)
    lab.allocate("l3", above="4GiB")
    lab.allocate("l2")
    lab.set_entry("l3", 3, "l2", "P")
    lab.set_vcpu0_initialised(True)
    return lab


# ---------------------------------------------------------------- the document
def test_the_document_is_the_scenario_pvlab_run_loads(tmp_path: Path) -> None:
    lab = LabSession()
    lab.allocate("l3", above="4GiB")
    assert isinstance(lab.doc.scenario, Scenario)
    lab.allocate("l2")
    assert lab.run.scenario.frames["l3"].mfn == lab.mfn("l3")  # rebuilt where placed
    path = tmp_path / "sketch.yaml"
    lab.export_yaml(path)
    assert load_scenario(path).frames["l3"].above == 4 << 30  # the wish, not the MFN
    assert main(["run", str(path)]) == 0


def test_a_draft_the_core_refuses_never_becomes_the_document() -> None:
    doc = Document.empty()
    draft = doc.draft()
    draft.steps.append({"pin": {"frame": "nope", "level": 3}})
    with pytest.raises(PvlabError, match="unknown frame 'nope'"):
        Document.from_draft(draft)


def test_a_check_that_no_longer_holds_is_left_out_of_the_export(tmp_path: Path) -> None:
    lab = LabSession()
    assert lab.load("name: x\nguest: {vcpu0_initialised: true}\nframes: {a: {}}\nsteps:\n"
                    "  - pin: {frame: a, level: 1}\n"
                    "  - expect_page: {frame: a, type: l1, type_count: 5}\n")
    assert lab.run_to_end()
    text = lab.export_yaml(tmp_path / "x.yaml")
    assert "left out: it does not hold" in text
    assert main(["run", str(tmp_path / "x.yaml")]) == 0


# ---------------------------------------------------------------- status
def test_status_is_the_actions_own_result() -> None:
    lab = seed_lab()
    lab.pin("l3")
    assert lab.status_kind == "fail"
    assert "lab-status-fail" in lab.w_status.value and "Xen refused" in lab.w_status.value
    lab.allocate("l1")  # works, although the replayed pin still fails
    assert lab.status_kind == "ok" and "lab-status-ok" in lab.w_status.value
    lab.pin("nope", 3)  # a user error looks different from Xen's refusal
    assert lab.status_kind == "error" and "not done (your input)" in lab.w_status.value


def test_stepping_past_the_end_says_where_it_is() -> None:
    lab = LabSession()
    lab.load_example("seed-erange")
    while lab.step():
        pass
    assert "no more steps" in lab.status_text and "6/6" in lab.status_text


# ---------------------------------------------------------------- picture
def test_after_pin_the_picture_holds_the_replay_ending_on_the_result() -> None:
    lab = seed_lab()
    lab.w_op_frame.value = "l3"
    lab.b_pin.click()
    out = lab.last_outcome
    assert out is not None and out.errno == "ERANGE"
    assert lab.replay is not None and len(lab.replay) == len(out.events)
    pic = lab.w_picture
    if hasattr(pic, "svgs"):
        assert len(pic.svgs) == len(out.events) + 1 and pic.index == len(pic.svgs) - 1
        assert "fail" in pic.phases and pic.names[f"m{lab.mfn('l3'):x}"] == "l3"
        assert "added by Xen" not in pic.bits[f"m{lab.mfn('l3'):x}/3"]
    node = lab.picture_model.node_for_mfn(lab.mfn("l3"))
    assert node is not None and node.status == "failed" and node.highlight


def test_xen_added_flags_are_named() -> None:
    lab = seed_lab()
    lab.set_vm_assist("pae_extended_cr3", True)
    lab.pin("l3")  # adjust_guest_l3e: the guest wrote P, Xen keeps P|RW|US
    assert lab.last_outcome is not None and lab.last_outcome.ok
    rows = [r.text for n in lab.picture_model.nodes for r in n.rows]
    assert any("entry 3 rewritten by Xen: RW|US added" in t for t in rows)
    pic = lab.w_picture
    if hasattr(pic, "bits"):
        assert "added by Xen: RW|US" in pic.bits[f"m{lab.mfn('l3'):x}/3"]


def test_the_leaked_slot3_reference_is_marked() -> None:
    lab = Lab(example="shared-slot3-l2-leak")
    for _ in range(4):
        lab.step()
    rows = [r.text for n in lab.picture_model.nodes for r in n.rows]
    assert any("leaked type reference" in t for t in rows)


def test_clicking_a_frame_selects_it_for_the_hypercalls() -> None:
    lab = seed_lab()
    lab.allocate("l1")
    assert lab.w_op_frame.value == "l3"  # not the frame allocated last
    lab.select_frame("l2")
    assert lab.w_op_frame.value == "l2" and lab.w_table.value == "l2"
    if hasattr(lab.w_picture, "selected"):
        lab.w_picture.selected = "l3"  # what a click in the browser sends
        assert lab.w_op_frame.value == "l3"


# ---------------------------------------------------------------- modes
def test_predict_then_reveal_scores_a_right_and_a_wrong_guess() -> None:
    lab = seed_lab(predict=True)
    assert lab.pin("l3") is None and "predict first" in lab.status_text
    lab.predict("ERANGE", "l3")
    assert lab.pin("l3").errno == "ERANGE"  # type: ignore[union-attr]
    assert lab.score == [1, 1] and "right" in lab.w_score.value
    lab.predict("ok")
    lab.pin("l3")
    assert lab.score == [1, 2] and "wrong: you said ok, Xen says ERANGE at l3" in lab.last_reveal


def test_side_by_side_shows_erange_under_4_19_and_ok_under_4_17() -> None:
    lab = seed_lab(compare="profile")
    lab.pin("l3")
    assert "Xen 4.19" in lab.w_picture_label.value and "ERANGE" in lab.w_picture_label.value
    assert "Xen 4.17" in lab.w_picture2_label.value and "→ ok" in lab.w_picture2_label.value
    lab.set_compare("bitness")
    assert "64-bit PV" in lab.w_picture2_label.value and "→ ok" in lab.w_picture2_label.value
    lab.set_compare("")
    assert lab.w_pane2.layout.display == "none"


def test_projector_mode_is_a_class_on_the_app() -> None:
    lab = Lab(projector=True)
    assert "lab-projector" in lab.widget._dom_classes
    lab.w_projector.value = False
    assert "lab-projector" not in lab.widget._dom_classes


# ---------------------------------------------------------------- stale widgets
def test_example_box_and_export_follow_what_was_loaded() -> None:
    lab = Lab()
    lab.load_example("seed-erange")
    lab.step()
    lab.export_yaml()
    assert lab.w_yaml.value and lab.w_example.value == "seed-erange"
    lab.load_example("assist-on")
    assert lab.w_example.value == "assist-on" and lab.w_yaml.value == ""
    assert lab.w_download.value == ""


# ---------------------------------------------------------------- bits
def test_cr3_ruler_shows_the_extended_cr3_rotation_and_the_overflow() -> None:
    fields = {f.name: f for f in cr3_fields(0x100000, 32)}
    assert fields["MFN bits 19–0"].value == 0 and fields["MFN bits 31–20 (rotated)"].value == 1
    low = {f.name: f for f in cr3_fields(0x100, 32)}
    assert low["MFN bits 31–20 (rotated)"].kind == "zero"
    html = cr3_ruler_html(MFN_4GIB, 32)
    assert "0x00000001" in html and "would be lost" in html
    assert "mfn 0x100000 (addr 0x100000000" in html
    assert "would be lost" not in cr3_ruler_html(MFN_4GIB, 64)


def test_entry_ruler_and_flag_choices() -> None:
    fields = {f.name: f for f in entry_fields(0x100000 << 12 | 0x7)}
    assert fields["MFN"].value == 0x100000 and fields["MFN"].note.startswith("mfn 0x100000")
    assert fields["RW"].value == 1 and fields["PCD"].value == 0
    assert not any(c.startswith("BIT5") or c.startswith("BIT6") for c in FLAG_CHOICES)
    assert not any("BIT" in c for c in FLAG_COMBOS)


# ---------------------------------------------------------------- export and the schema
def test_the_lab_exports_files_the_json_schema_accepts(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import json

    import yaml

    from pvlab.scenario.schema import scenario_schema

    validator = jsonschema.Draft202012Validator(scenario_schema())
    lab = seed_lab()
    lab.pin("l3")
    lab.set_vm_assist("pae_extended_cr3", True)
    lab.mmu_update("l3", 0, "l2", "P")
    lab.vm_assist("disable", "pae_extended_cr3")
    data = yaml.safe_load(lab.export_yaml(tmp_path / "sketch.yaml"))
    errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(data)))]
    assert errors == []
    assert main(["run", str(tmp_path / "sketch.yaml")]) == 0
