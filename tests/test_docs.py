# SPDX-License-Identifier: MIT
"""Docs that are generated from the code stay in step with it."""

from __future__ import annotations

from pathlib import Path

from pvlab.commands.rules import markdown
from pvlab.xen.rules import PV32, PV64, all_rules

ROOT = Path(__file__).resolve().parent.parent


def test_rules_doc_is_generated_from_the_registry() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == markdown(), \
        "regenerate with: pvlab rules --markdown > docs/rules.md"


def test_every_rule_names_a_xen_function_and_explains_itself() -> None:
    for r in all_rules():
        assert r.xen_function and r.summary.endswith((".", ")")), r.id


def test_pv32_rule_set_overrides_the_l3_flag_rule_only_for_compat() -> None:
    assert PV32["l3_flags"].guests == "pv32" and PV64["l3_flags"].guests == "pv64"
    assert PV32["l3_flags"].mask is not PV64["l3_flags"].mask
    assert PV32["l1_flags"] is PV64["l1_flags"]
