# SPDX-License-Identifier: MIT
"""The course's end-of-notebook questions all have folded answers, every notebook links the
glossary and the cheat sheet, and the answers that can be computed agree with the kit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pvlab import Xen, load_scenario, run_scenario
from pvlab.cli import main
from pvlab.toolstack import build_domain, restore_domain
from pvlab.toolstack.restore import RestoreResult
from pvlab.ui import example_path
from pvlab.units import format_size
from pvlab.x86 import xen_pfn_to_cr3_x86_32
from pvlab.xen.hypervisor import Guest
from pvlab.xen.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
#: the scenario lab (notebook 06): its computable answers are checked below
LAB = "06-scenario-lab.ipynb"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def questions(path: Path) -> list[str]:
    for c in cells(path):
        if c["cell_type"] == "markdown" and text(c).lstrip().startswith("## Questions") or (
                c["cell_type"] == "markdown" and "\n## Questions" in text(c)):
            part = text(c)[text(c).index("## Questions"):]
            return re.findall(r"^\d+\. ", part, re.M)
    return []


def answers(name: str) -> str:
    path = ROOT / "notebooks" / name
    found = [text(c) for c in cells(path) if c.get("id") == "answers"]
    assert len(found) == 1, f"{name}: one markdown cell with id 'answers'"
    return found[0]


def answer(name: str, n: int) -> str:
    blocks = re.findall(r"<details><summary>Answer (\d+)</summary>(.*?)</details>",
                        answers(name), re.S)
    return dict((int(k), v) for k, v in blocks)[n]


def yaml_block(name: str, n: int) -> str:
    m = re.search(r"```yaml\n(.*?)```", answer(name, n), re.S)
    assert m, f"{name} answer {n} has a YAML block"
    return m.group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_question_has_a_folded_answer(path: Path) -> None:
    qs = questions(path)
    if not qs:
        assert path.name.startswith("00-"), f"{path.name} has no questions"
        return
    text_ = answers(path.name)
    n = len(re.findall(r"<details><summary>Answer \d+</summary>", text_))
    assert n == len(qs), f"{path.name}: {len(qs)} questions, {n} folded answers"
    assert text_.count("<details>") == text_.count("</details>")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_links_the_glossary_and_the_cheat_sheet(path: Path) -> None:
    body = "".join(text(c) for c in cells(path) if c["cell_type"] == "markdown")
    assert "../docs/glossary.md" in body and "../docs/cheatsheet.md" in body


def test_the_linked_docs_exist() -> None:
    for doc in ("glossary.md", "cheatsheet.md", "course-facts.md"):
        assert (ROOT / "docs" / doc).exists()


# ------------------------------------------------------------------ 01
def test_01_entry_coverage_and_large_page_offset() -> None:
    a1 = answer("01-x86-paging.ipynb", 1)
    for level, name in ((1, "L1"), (2, "L2"), (3, "L3"), (4, "L4")):
        size = format_size(1 << (12 + 9 * (level - 1)))  # e.g. "2MiB"
        spaced = re.sub(r"(\d)([KMGT]iB)", r"\1 \2", size)
        assert re.search(rf"{name} entry (covers )?{spaced}", a1.replace("\n", " ")), size
    assert "bits 20:0" in answer("01-x86-paging.ipynb", 3) and (1 << 21) == 2 << 20


# ------------------------------------------------------------------ 02
def test_02_foreign_frame_errno_and_writable_count() -> None:
    xen = Xen("4.19", memory="8GiB")
    g = xen.create_domain(bitness=64)
    low, exact = g.alloc_frame(below="4GiB"), g.alloc_frame(mfn=0x123456)
    g.write_entry(low, 0, exact, "P|RW")
    foreign = xen.create_domain(bitness=64, name="other").alloc_frame()
    g.write_entry(low, 1, foreign, "P")
    out = g.pin(low, level=1)
    assert out.errno == "EBUSY" and "get_page_from_l1e" in out.explain()
    a3 = answer("02-pv-memory-model.ipynb", 3)
    assert "-EBUSY" in a3 and "get_page_from_l1e" in a3
    g.write_entry(low, 1, 0)
    assert g.pin(low, level=1).ok
    pi = g.page(exact)
    assert (pi.type_name, pi.type_count, pi.count) == ("writable", 1, 2)
    a4 = answer("02-pv-memory-model.ipynb", 4)
    assert "type count 1" in a4 and "general\ncount 2" in a4 or "general count 2" in a4


# ------------------------------------------------------------------ 03
def _tree() -> tuple[Guest, list[int]]:
    g = Xen("4.19").create_domain(bitness=64)
    frames = [g.alloc_frame() for _ in range(5)]
    for parent, child in zip(frames, frames[1:], strict=False):
        g.write_entry(parent, 0, child, "P|RW|US")
    return g, frames


def test_03_counts_after_the_l4_pin_and_unpin_under_a_live_cr3() -> None:
    g, (l4, l3, _, _, data) = _tree()
    assert g.pin(l4, level=4).ok
    p3, pd = g.page(l3), g.page(data)
    assert (p3.type_name, p3.type_count, p3.count) == ("l3", 1, 2)
    assert (pd.type_name, pd.type_count, pd.count) == ("writable", 1, 2)
    a1 = answer("03-page-types.ipynb", 1)
    assert "type count **1**" in a1 and "general count 2" in a1
    assert g.set_vcpu_context(0, cr3=l4).ok
    assert g.unpin(l4).ok
    p4 = g.page(l4)
    assert (p4.type_count, p4.validated, p4.pinned) == (1, True, False)
    assert g.page(l3).validated
    assert "type count stays at 1" in answer("03-page-types.ipynb", 3)


def test_03_the_two_type_conflicts() -> None:
    ebusy = run_scenario(load_scenario(ROOT / "tests/scenarios/101-pv32-l1-self-map-rw-ebusy.yaml"))
    einval = run_scenario(load_scenario(
        ROOT / "tests/scenarios/109-pv32-pin-frame-mapped-rw-einval.yaml"))
    assert "EBUSY" in [s.result for s in ebusy.steps]
    assert "EINVAL" in [s.result for s in einval.steps]
    a2 = answer("03-page-types.ipynb", 2)
    assert "**-EBUSY**" in a2 and "**-EINVAL**" in a2


# ------------------------------------------------------------------ 04
def test_04_extended_cr3_by_hand_and_slot_428() -> None:
    cr3 = xen_pfn_to_cr3_x86_32(0x2ABCDE)
    a3 = answer("04-pv32-on-64.ipynb", 3)
    assert f"`{cr3:#010x}`" in a3 and f"`{cr3 >> 12:#x}`" in a3
    assert (0xF5800000 - 0xC0000000) // (2 << 20) == 428
    assert "slot 428" in answer("04-pv32-on-64.ipynb", 2)


def test_04_l2_above_4g_and_the_leak() -> None:
    scn = load_scenario(example_path("l3-below-4g"))
    for profile in PROFILES:
        steps = run_scenario(scn, profile=profile).steps
        assert all(s.result == "ok" for s in steps if not s.is_check), profile
    assert answer("04-pv32-on-64.ipynb", 4).strip().startswith("No.")
    run = run_scenario(load_scenario(example_path("shared-slot3-l2-leak")))
    l2 = run.xen.machine.page(run.mfn("l2"))
    assert (l2.type_count, l2.validated, l2.pae_xen_l2) == (1, True, True)
    assert "type count 1" in answer("04-pv32-on-64.ipynb", 5)


# ------------------------------------------------------------------ 05
def _results(example: str, profile: str) -> list[str]:
    scn = load_scenario(example_path(example))
    return [s.result for s in run_scenario(scn, profile=profile).steps if not s.is_check]


def test_05_no_slack_breaks_the_extcr3_build_not_the_pae_yes_one() -> None:
    assert _results("toolstack-slack", "no-slack")[0] == "ERANGE"
    assert _results("builder-relocation", "no-slack")[0] == "ok"  # pae_yes
    assert _results("builder-relocation", "no-slack")[2] == "ERANGE"  # extcr3
    for kernel, result in (("extcr3", "ERANGE"), ("pae_yes", "ok")):
        res = build_domain(Xen("no-slack", "8GiB", placement="high-first"), kernel=kernel)
        assert res.result == result, kernel
    a2 = answer("05-pae-extended-cr3.ipynb", 2)
    assert "`toolstack-slack`\nfails at its first pin" in a2 or "fails at its first pin" in a2


def test_05_legacy_guest_trips_later_and_migration() -> None:
    assert _results("builder-relocation", "4.19")[:2] == ["ok", "ERANGE"]
    assert _results("migration-restore", "4.17")[0] == "ok"
    assert _results("migration-restore", "4.19")[0] == "ERANGE"
    assert xen_pfn_to_cr3_x86_32(0x123456) >> 12 == 0x23456
    assert "`0x23456`" in answer("05-pae-extended-cr3.ipynb", 4)


def test_05_the_scenario_of_answer_6_separates_the_profiles_for_a_64_bit_guest() -> None:
    scn = load_scenario(yaml_block("05-pae-extended-cr3.ipynb", 6))
    assert scn.guest.bitness == 64
    last = {p: [s.result for s in run_scenario(scn, profile=p).steps][-1]
            for p in ("4.19", "no-32bit-cond")}
    assert last == {"4.19": "ok", "no-32bit-cond": "ERANGE"}


# ------------------------------------------------------------------ 06 (lab) answers doc
def test_06_slack_scenario_and_the_leak_step(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    scn = load_scenario(yaml_block(LAB, 3))
    assert [s.result for s in run_scenario(scn, profile="no-slack").steps] == ["ERANGE"]
    assert [s.result for s in run_scenario(scn, profile="4.19").steps] == ["ok"]
    run = run_scenario(load_scenario(example_path("shared-slot3-l2-leak")))
    assert run.steps[2].result == "EINVAL" and "**step 3**" in answer(LAB, 2)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml_block(LAB, 3).rstrip() + "\n    expect: ERANGE\n")
    assert main(["run", str(wrong)]) == 1
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    capsys.readouterr()
    assert "status **1**" in answer(LAB, 4)


# ------------------------------------------------------------------ 08
def _restore(profile: str, vcpus: int = 2) -> RestoreResult:
    return restore_domain(Xen(profile, "16GiB"), format="v2", extended_cr3=False,
                          vcpus=vcpus, processes=1, l3s={"above": "4GiB"})


def test_08_which_step_fails_and_what_the_guest_reads() -> None:
    r = _restore("4.19")
    assert (r.result, r.failed_step, r.info.get("failed_vcpu")) == (
        "ERANGE", "update_vcpu_context", 1)
    assert "`update_vcpu_context` fails with -ERANGE on\nvCPU 1's L3" in answer(
        "08-migration.ipynb", 1) or "fails with -ERANGE" in answer("08-migration.ipynb", 1)
    one = _restore("4.19", vcpus=1)
    assert (one.result, one.failed_step) == ("ERANGE", "pin_pagetables")
    assert "**`pin_pagetables`**" in answer("08-migration.ipynb", 2)
    r17 = _restore("4.17")
    assert r17.ok
    vcpu1 = r17.root_mfn(1)
    assert vcpu1 == 0x100001
    cr3 = xen_pfn_to_cr3_x86_32(vcpu1)
    a4 = answer("08-migration.ipynb", 4)
    assert f"CR3 `{cr3:#010x}`" in a4 and f"**`{cr3 >> 12:#x}`**" in a4


def test_the_glossary_defines_the_terms_the_issue_lists() -> None:
    glossary = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    for term in ("VM-assist", "compat", "toolstack", "domctl", "page_info", "caf", "taf",
                 "type count", "general count", "pin", "promote", "validate", "PAE Xen L2",
                 "M2P", "p2m", "slack", "XENFEAT_pae_pgdir_above_4gb", "pv-shim",
                 "CET shadow stacks"):
        assert f"**{term}" in glossary or f"{term}**" in glossary or (
            f"**{term.split()[0]}" in glossary), term


def test_the_cheat_sheet_has_the_bits_the_errnos_the_conditions_and_the_orders() -> None:
    sheet = (ROOT / "docs" / "cheatsheet.md").read_text(encoding="utf-8")
    for part in ("`PGT_pinned`", "`PGT_validated`", "`PGC_allocated`", "-ERANGE (34)",
                 "-EBUSY (16)", "5. vCPU 0 is initialised", "restore v2", "domain builder"):
        assert part in sheet, part
    assert f"CR3 `{xen_pfn_to_cr3_x86_32(0x123456):#010x}`" in sheet


# ------------------------------------------------------------------ 07
WHY = "07-why-these-rules-exist.ipynb"


def test_07_rw_on_an_ordinary_l4_entry_is_ok_on_fixed_xen() -> None:
    g = Xen("4.19").create_domain(bitness=64)
    l4, l3 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l4, 0, l3, "P|A")
    assert g.pin(l4, level=4).ok
    assert g.mmu_update(l4, 0, l3, "P|RW|A").ok  # re-validated (RW is not whitelisted): fine
    assert "**ok**" in answer(WHY, 1)


def test_07_xen_adds_rw_to_compat_l3_entries() -> None:
    g = Xen("4.19").create_domain(bitness=32)
    l3, l2 = g.alloc_frame(), g.alloc_frame()
    g.write_entry(l3, 3, l2, "P")
    assert g.pin(l3, level=3).ok
    assert g.read_entry(l3, 3) & 0x2  # RW set by Xen
    assert "adjust_guest_l3e" in answer(WHY, 2)


def test_07_l1tf_answers() -> None:
    from pvlab.xen.cmdline import Hardware, XenCommandLine

    def write(privileged: bool, cmdline: XenCommandLine | None = None) -> str:
        xen = Xen("4.19", hardware=Hardware(l1tf_vulnerable=True), cmdline=cmdline)
        g = xen.create_domain(64, privileged=privileged)
        l1 = g.alloc_frame()
        g.pin(l1, 1)
        return g.mmu_update(l1, 3, value=0x1234000).result

    assert write(False) == "shadowed"
    assert write(False, XenCommandLine(pv_l1tf_domu=False)) == "ok"
    assert write(True) == "ok"
    a5 = answer(WHY, 5)
    assert "**shadowed**" in a5 and "**domain_crashed**" in a5 and "**ok**" in a5
