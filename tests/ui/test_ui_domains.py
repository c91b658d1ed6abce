# SPDX-License-Identifier: MIT
"""Issue 15 in the lab: scenarios with several domains, Xen's command line and hardware,
and the XSA profiles. The lab's run of a file is `pvlab run`'s (same results), the
picture draws the tables of the domain that issued the step and names every owner, steps
can be issued `as:` a domain (grant steps too), and compare mode puts any two profiles
side by side, a pre-xsa-NNN profile beside its fixed version by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvlab.render.danger import MARK, dangers_in
from pvlab.scenario import load_scenario, run_scenario
from pvlab.ui import LabSession
from pvlab.ui.compare import compare_choices, compare_partner
from pvlab.ui.pictures import tables_picture

pytest.importorskip("ipywidgets")

from pvlab.ui import Lab  # noqa: E402

CORPUS = Path(__file__).parent.parent / "scenarios"
ISSUE = CORPUS / "901-issue-example-grant-foreign-destroy.yaml"
XSA182 = CORPUS / "951-xsa-182-l4-fast-path-rw-recursive.yaml"


@pytest.mark.parametrize("name", [
    "901-issue-example-grant-foreign-destroy", "916-destroy-granter-while-mapped",
    "925-unprivileged-backend-grant-yes-foreign-no", "952-xsa-185-pv32-recursive-l3",
    "994-l1tf-no-shadow-paging-crashes-domain", "996-l1tf-dom0-on-by-cmdline",
    "999-allowsuperpage-ignored-since-4-10"])
def test_the_lab_runs_a_file_as_pvlab_run_does(name: str) -> None:
    """domains:, xen_cmdline: and hardware: survive the lab's document (they did not:
    996 lost pv-l1tf and gave ok where Xen shadows the guest)."""
    lab = LabSession()
    assert lab.load(CORPUS / f"{name}.yaml"), lab.status_text
    lab.run_to_end()
    want = run_scenario(load_scenario(CORPUS / f"{name}.yaml"))
    assert [(s.result, s.held) for s in lab.run.steps] == \
        [(s.result, s.held) for s in want.steps]
    assert lab.run.ok
    scn, orig = lab.doc.scenario, load_scenario(CORPUS / f"{name}.yaml")
    assert (scn.xen_cmdline, scn.hardware, scn.domains) == \
        (orig.xen_cmdline, orig.hardware, orig.domains)


def test_the_picture_draws_the_issuers_tables_and_names_the_owners() -> None:
    lab = LabSession()
    lab.load(ISSUE)
    for _ in range(6):  # step 6: dom0 maps the guest's frame with a foreign mmu_update
        lab.step()
    assert lab.picture_domain() == "dom0"
    view = tables_picture(lab)
    d_l1 = view.model.node_for_mfn(lab.run.frames["d_l1"])
    g_data = view.model.node_for_mfn(lab.run.frames["g_data"])
    assert d_l1 is not None and g_data is not None
    assert any("[6] → g_data" in r.text for r in d_l1.rows)
    assert any("guest (d2)" in r.text for r in g_data.rows)
    assert "dom0's tables" in view.model.title
    lab.step()  # step 7 is a check: the picture stays on dom0
    assert lab.picture_domain() == "dom0"
    assert lab.set_view_domain("guest") and lab.picture_domain() == "guest"
    assert "guest's tables" in tables_picture(lab).model.title
    assert not lab.set_view_domain("dom7") and "no domain 'dom7'" in lab.status_text
    lab.set_view_domain(None)
    lab.run_to_end()  # the guest is destroyed at step 10: dom0 issued the last hypercall
    assert lab.picture_domain() == "dom0"
    for _ in range(3):
        lab.back()  # step 10: destroy_domain, a domctl: the toolstack domain dom0 issued it
    assert lab.position == 10 and lab.picture_domain() == "dom0"


def test_steps_are_issued_as_the_chosen_domain() -> None:
    lab = Lab()
    lab.load(ISSUE)
    assert [v for _, v in lab.w_as_domain.options] == ["", "dom0", "guest"]
    lab.step()
    lab.step()  # dom0 pinned d_l1; the guest granted g_data
    lab.set_acting_domain("dom0")
    out = lab.pin("g_l1", 1)  # dom0 pins the guest's frame: not its own
    assert out is not None and out.errno == "EINVAL"
    assert lab.session.doc.steps[-1].as_domain == "dom0"
    lab.undo()
    lab.set_acting_domain("guest")
    lab.w_step_text.value = "{grant: {ref: 9, frame: g_l1, to: dom0}}"
    lab._on_add_step()
    step = lab.session.doc.steps[-1]
    assert (step.op, step.as_domain, lab.status_kind) == ("grant", "guest", "ok")
    lab.w_step_text.value = "{grant_map: {as: dom0, from: guest, ref: 9, " \
                            "pte: {table: d_l1, index: 7}, readonly: true}}"
    lab._on_add_step()
    assert lab.session.doc.steps[-1].as_domain == "dom0" and lab.status_kind == "ok"
    assert "grant_map: {as: dom0, from: guest, ref: 9" in lab.export_yaml()
    lab.w_step_text.value = "{grant: [unclosed"
    lab._on_add_step()
    assert lab.status_kind == "error" and "not YAML" in lab.status_text
    one = Lab()
    assert not one.set_acting_domain("dom0") and "one guest" in one.status_text
    assert one.w_as_domain.layout.display == "none"


def test_compare_offers_every_profile_and_pairs_pre_xsa_with_the_fixed_one() -> None:
    names = [v for _, v in compare_choices()]
    assert {"4.17", "4.19", "pre-xsa-182", "pre-xsa-240"} <= set(names)
    assert compare_partner("pre-xsa-182") == "4.19"
    assert compare_partner("4.19") == "4.17" and compare_partner("4.17") == "4.19"
    lab = Lab()
    lab.load(XSA182)
    lab.set_profile("pre-xsa-182")
    lab.step()
    lab.step()  # the exploit: RW on the recursive L4 entry
    lab.set_compare("profile")
    assert lab.w_compare_profile.value == "4.19"
    assert "Xen 4.19" in lab.w_picture2_label.value and "EINVAL" in lab.w_picture2_label.value
    assert "pre-xsa-182" in lab.w_picture_label.value and "→ ok" in lab.w_picture_label.value
    assert "⚠ 1 danger(s)" in lab.w_picture_label.value
    assert "danger" not in lab.w_picture2_label.value
    assert any(n.startswith(f"{MARK} (XSA-182)") for n in dangers_in(lab.picture.model))
    lab.set_compare("profile", "4.17")
    assert "Xen 4.17" in lab.w_picture2_label.value and "EINVAL" in lab.w_picture2_label.value
    lab.set_compare("profile", "4.99")
    assert lab.status_kind == "error" and "4.99" in lab.status_text
    assert "Xen 4.17" in lab.w_picture2_label.value  # unchanged


def test_side_by_side_fits_both_pictures_in_their_columns() -> None:
    """Notebook 7's pictures (1000+ points wide each) are scaled to half the width."""
    from pvlab.ui.compare import side_by_side

    html = side_by_side(XSA182, ("pre-xsa-182", "4.19"))._repr_html_()
    assert html.count('<svg style="max-width:100%;height:auto"') == 2
    assert "viewBox" in html and f"{MARK} (XSA-182)" in html


def test_guest_controls_and_new_frames_follow_the_as_domain() -> None:
    lab = LabSession()
    lab.load(ISSUE)
    lab.step()
    assert lab.bitness == 32  # the default domain: the (32-bit) guest
    assert lab.set_bitness(64) and lab.doc.scenario.domains["guest"].bitness == 64
    assert lab.run.domains["guest"].domain.bitness == 64
    lab.undo()
    lab.set_acting_domain("dom0")
    assert (lab.bitness, lab.vcpu0_initialised) == (64, True)
    assert lab.set_vm_assist("writable_pagetables")
    assert lab.doc.scenario.domains["dom0"].vm_assists == ("writable_pagetables",)
    assert lab.doc.scenario.domains["guest"].vm_assists == ()
    assert lab.allocate("d_new") and lab.doc.scenario.frames["d_new"].owner == "dom0"
    rows = {r.name: r for r in lab.frame_rows()}
    assert rows["d_new"].owner == "dom0 (d1)" and rows["g_data"].owner == "guest (d2)"


def test_owners_survive_the_document_when_guest_is_not_the_default_domain() -> None:
    text = """name: backend-first
domains:
  backend: {bitness: 64, vcpu0_initialised: true}
  guest: {bitness: 64, vcpu0_initialised: true}
frames:
  b_page: {}
  g_page: {owner: guest}
steps:
  - grant: {as: guest, ref: 1, frame: g_page, to: backend}
"""
    lab = LabSession()
    assert lab.load(text), lab.status_text
    assert lab.doc.scenario.frames["g_page"].owner == "guest"
    assert lab.doc.scenario.frames["b_page"].owner == "backend"
    assert lab.run.xen.machine.owner(lab.run.frames["g_page"]) == \
        lab.run.domains["guest"].domid


def test_the_summary_names_every_domain_and_the_destroyed_one() -> None:
    lab = LabSession()
    lab.load(ISSUE)
    lab.run_to_end()
    text = lab.domain_summary()
    assert "dom0 (d1, 64-bit PV, privileged): vCPU 0 initialised" in text
    assert "guest (d2, 32-bit PV): destroyed at step 10" in text


def test_compare_pairs_an_xsa_scenario_with_its_vulnerable_profile() -> None:
    lab = Lab()
    lab.load(XSA182)  # no xen: in the file: Xen 4.19
    lab.step()
    lab.step()
    lab.set_compare("profile")
    assert lab.w_compare_profile.value == "pre-xsa-182"
    assert "Xen pre-xsa-182" in lab.w_picture2_label.value
    assert "→ ok" in lab.w_picture2_label.value and "EINVAL" in lab.w_picture_label.value
    # the vulnerable side's ok is the exploit: its label is red and counts the danger
    assert "⚠ 1 danger(s)" in lab.w_picture2_label.value
    assert "#b71c1c" in lab.w_picture2_label.value
    lab.set_compare("profile", "4.17")
    assert lab.session.compare_against() == "4.17"


def test_loading_another_scenario_forgets_the_domain_and_profile_choices() -> None:
    lab = Lab()
    lab.load(ISSUE)
    lab.set_acting_domain("dom0")
    lab.set_view_domain("guest")
    lab.set_compare("profile", "4.17")
    lab.load(XSA182)
    assert (lab.session.acting_domain, lab.session.view_domain) == (None, None)
    assert lab.w_compare_profile.value == "pre-xsa-182"
