# SPDX-License-Identifier: MIT
"""The lab driven through its widgets (`.value` changes and `.click()`), as a learner does,
asserting on the outcome, the rendered status and the picture model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytest.importorskip("ipywidgets")

from pvlab.ui import Lab  # noqa: E402
from pvlab.units import MFN_4GIB  # noqa: E402


def click_allocate(lab: Lab, name: str, where: str, role: int = 0) -> None:
    lab.w_frame_name.value = name
    lab.w_frame_role.value = role
    lab.w_where.value = where
    lab.b_allocate.click()


def build_seed_by_clicking() -> Lab:
    lab = Lab()
    lab.w_bitness.value = 32
    lab.w_assists["pae_extended_cr3"].value = False
    click_allocate(lab, "l3", "above 4 GiB", 3)
    click_allocate(lab, "l2", "anywhere")
    lab.w_table.value = "l3"
    lab.w_index.value = 3
    lab.w_target.value = "l2"
    lab.w_flags.value = "P"
    lab.b_write.click()
    lab.w_vcpu0.value = True
    lab.w_op_frame.value = "l3"
    lab.w_op_level.value = 0  # as its role: L3
    return lab


def test_seed_story_by_clicking_shows_erange_and_marks_the_l3() -> None:
    lab = build_seed_by_clicking()
    assert lab.mfn("l3") >= MFN_4GIB and lab.session.role("l3") == 3
    lab.b_pin.click()
    assert lab.last_outcome is not None and lab.last_outcome.errno == "ERANGE"
    assert "lab-status-fail" in lab.w_status.value
    assert "ERANGE (-34)" in lab.w_status.value
    assert "PAE pgd must be below 4GB" in lab.w_status.value
    assert "promote_l3_table" in lab.w_trace.value
    assert "lab-frame-failed" in lab.w_frame_map.value
    model = lab.picture_model
    assert model is not None
    node = model.node_for_mfn(lab.mfn("l3"))
    assert node is not None and node.status == "failed" and node.highlight
    assert "<svg" in lab.w_picture.value


def test_toggling_an_assist_and_bitness_changes_status_and_picture() -> None:
    lab = build_seed_by_clicking()
    lab.b_pin.click()
    failed_svg = lab.w_picture.value
    lab.w_assists["pae_extended_cr3"].value = True
    assert lab.last_outcome is not None and lab.last_outcome.ok
    assert "lab-status-ok" in lab.w_status.value
    assert lab.w_picture.value != failed_svg
    node = lab.picture_model.node_for_mfn(lab.mfn("l3"))
    assert node is not None and node.status == "pinned" and not node.highlight
    lab.w_assists["pae_extended_cr3"].value = False
    assert lab.last_outcome.errno == "ERANGE"
    lab.w_bitness.value = 64
    assert lab.last_outcome.ok and lab.bitness == 64


def test_invalid_assists_are_disabled_with_why() -> None:
    lab = Lab()
    assert not lab.w_assists["m2p_strict"].disabled
    lab.w_bitness.value = 32
    cb = lab.w_assists["m2p_strict"]
    assert cb.disabled and "arch_vm_assist_valid_mask" in cb.tooltip
    assert "m2p_strict" in lab.w_assist_why.value
    assert not lab.w_assists["pae_extended_cr3"].disabled


def test_profile_dropdown_and_undo_button() -> None:
    lab = build_seed_by_clicking()
    lab.b_pin.click()
    lab.w_profile.value = "4.17"
    assert lab.last_outcome is not None and lab.last_outcome.ok
    lab.b_undo.click()
    assert lab.w_profile.value == "4.19" and lab.last_outcome.errno == "ERANGE"
    lab.b_undo.click()  # the pin itself
    assert lab.last_outcome is None and lab.steps == []


def test_allocate_at_typed_mfn_and_free() -> None:
    lab = Lab()
    lab.w_alloc_mfn.value = "0x100200"
    click_allocate(lab, "hi", "at MFN")
    assert lab.frames == {"hi": 0x100200}
    assert "0x100200" in lab.w_frame_map.value and "above 4 GiB" in lab.w_frame_map.value
    lab.w_alloc_mfn.value = "zzz"
    click_allocate(lab, "bad", "at MFN")
    assert "lab-status-error" in lab.w_status.value and "not a number" in lab.status_text
    lab.w_free_frame.value = "hi"
    lab.b_free.click()
    assert lab.frames == {}


def test_mmu_update_unpin_baseptr_and_vcpu_buttons() -> None:
    lab = Lab()
    lab.w_bitness.value = 32
    click_allocate(lab, "l3", "below 4 GiB", 3)
    click_allocate(lab, "l2", "anywhere", 2)
    lab.w_table.value = "l3"
    lab.w_index.value = 3
    lab.w_target.value = "l2"
    lab.b_write.click()
    lab.w_op_frame.value = "l3"
    lab.b_vcpu_init.click()
    assert lab.last_outcome is not None and lab.last_outcome.ok
    lab.b_baseptr.click()
    assert lab.last_outcome.ok
    lab.b_pin.click()
    assert lab.last_outcome.ok
    lab.b_unpin.click()
    assert lab.last_outcome.ok
    # slot 3 of a live compat L3 may not be emptied (mod_l3_entry): -EINVAL
    lab.w_table.value = "l3"
    lab.w_index.value = 3
    lab.w_target.value = ""
    lab.b_mmu_update.click()
    assert lab.last_outcome.errno == "EINVAL"


def test_example_load_step_back_and_export_buttons() -> None:
    lab = Lab()
    lab.w_example.value = "seed-erange"
    lab.b_load.click()
    assert "loaded seed-erange" in lab.status_text and "step 0/6" in lab.w_position.value
    for _ in range(3):
        lab.b_step.click()
    assert lab.last_outcome is not None and lab.last_outcome.errno == "ERANGE"
    assert "step 3/6" in lab.w_position.value
    lab.b_back.click()
    assert lab.last_outcome.ok and lab.position == 2
    lab.b_export.click()
    assert lab.w_yaml.value.startswith("# Exported") and "vcpu_initialise" in lab.w_yaml.value
    assert "pin: {frame: l3b" not in lab.w_yaml.value  # only the applied steps
    assert 'download="seed-erange.yaml"' in lab.w_download.value


def test_upload_a_scenario_file() -> None:
    lab = Lab()
    text = (b"name: up\nguest: {bitness: 32}\nframes:\n  a: {}\n"
            b"steps:\n  - pin: {frame: a, level: 1}\n")
    lab.w_upload.value = ({"name": "up.yaml", "type": "", "size": len(text),
                           "content": memoryview(text),
                           "last_modified": datetime.now(UTC)},)
    assert "loaded up" in lab.status_text and lab.bitness == 32
    lab.b_step.click()
    assert lab.last_outcome is not None and lab.last_outcome.ok


def test_every_widget_has_its_css_class() -> None:
    lab = Lab()
    classes = {c for wdg in _walk(lab.widget) for c in getattr(wdg, "_dom_classes", ())}
    expected = {"lab-app", "lab-bitness", "lab-profile", "lab-vcpu0", "lab-assist-why",
                "lab-frame-name", "lab-frame-role", "lab-alloc-where", "lab-alloc-mfn",
                "lab-allocate", "lab-free-frame", "lab-free", "lab-frame-map",
                "lab-entry-table", "lab-entry-index", "lab-entry-target", "lab-entry-flags",
                "lab-write", "lab-mmu-update", "lab-op-frame", "lab-op-level", "lab-pin",
                "lab-unpin", "lab-new-baseptr", "lab-vcpu-init", "lab-example", "lab-load",
                "lab-upload", "lab-back", "lab-step", "lab-undo", "lab-export", "lab-position",
                "lab-yaml", "lab-download", "lab-status", "lab-summary", "lab-picture",
                "lab-trace", "lab-log"}
    expected |= {f"lab-assist-{n}" for n in lab.w_assists}
    assert expected <= classes


def test_display_bundle_is_the_widget() -> None:
    lab = Lab()
    bundle = lab._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def _walk(widget):  # type: ignore[no-untyped-def]
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)
