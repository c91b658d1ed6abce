# SPDX-License-Identifier: MIT
"""Xen's log formats as data: every format reads back what it prints; rules carry them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pvlab.commands.rules import markdown
from pvlab.explain import explain_line
from pvlab.scenario import load_scenario, run_scenario
from pvlab.xen.logformats import LOG_FORMATS, c_format, formats_for_rule, pattern
from pvlab.xen.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]


def _sample(fmt: str) -> tuple[str, list[object]]:
    values: list[object] = []
    for m in re.finditer(r"%[-#0 +]*\d*(?:l{0,2}|z)?([diuxXs%]|p[dv]?)", fmt):
        conv = m.group(1)
        values.extend({"%": [], "s": ["word"], "pd": ["d7"], "pv": ["d7v1"]}.get(
            conv, [0x1ABC if conv in "xXp" else -22 if conv in "di" else 7]))
    return c_format(fmt, *values), values


@pytest.mark.parametrize("fmt", [t for f in LOG_FORMATS for t in f.formats])
def test_every_format_reads_back_what_it_prints(fmt: str) -> None:
    text, values = _sample(fmt)
    m = pattern(fmt).match(text.strip())
    assert m is not None, (fmt, text)
    assert len(m.groups()) == len(values)


def test_every_format_is_recognised_as_itself_or_an_equivalent() -> None:
    for f in LOG_FORMATS:
        text, _ = _sample(f.text)
        assert explain_line(text).matched, f.id


def test_the_issue_messages_are_covered() -> None:
    texts = " | ".join(t for f in LOG_FORMATS for t in f.formats)
    for words in ("Bad L1 flags", "Bad L4 flags", "Bad type (saw", "Error getting mfn",
                  "Could not get page type PGT_writable_page", "Could not get page ref for mfn",
                  "Error while validating mfn", "in promote_l4_table: slot", "while pinning mfn",
                  "already pinned", "not pinned", "linear p.t. with write perms",
                  "PAE L3 3rd slot is shared", "PAE pgd must be below 4GB",
                  "L2 update in Xen-private area", "L4 update in Xen-private area",
                  "Error while installing new compat baseptr", "but real_pg_owner",
                  "rd=%pd od=%pd caf=", "Assertion '%s' failed", "Xen BUG at"):
        assert words in texts, words


def test_rules_carry_their_log_formats_and_the_docs_list_them() -> None:
    by_id = {r.id: r for r in all_rules()}
    assert by_id["l3_flags"].log_formats == ("Bad L3 flags %x",)
    assert "PAE pgd must be below 4GB (%#lx >= 0x100000)" in by_id["pae_l3_below_4g"].log_formats
    assert formats_for_rule("already_pinned")[0].xen_function.startswith("do_mmuext_op")
    named = sum(1 for r in all_rules() if r.log_formats)
    assert named >= 15
    doc = (ROOT / "docs" / "rules.md").read_text()
    assert doc == markdown() and "`Bad L4 flags %x`" in doc and "`Leaking mfn %05lx`" in doc


def test_c_format_prints_like_xen() -> None:
    assert c_format("Failure %d in promote_l3_table: slot %#x", -22, 0) == \
        "Failure -22 in promote_l3_table: slot 0"
    assert c_format("Failure %d in promote_l3_table: slot %#x", -22, 3) == \
        "Failure -22 in promote_l3_table: slot 0x3"
    assert c_format("mfn %05lx already pinned", 0x123) == "mfn 00123 already pinned"


def test_the_seed_trace_shows_the_line_xen_4_19_prints() -> None:
    run = run_scenario(load_scenario(ROOT / "tests/scenarios/001-seed-issue-example.yaml"),
                       profile="4.19")
    step = run.steps[3]
    assert step.outcome.result == "ERANGE"
    mfn = step.outcome.failed_mfn
    assert step.outcome.xen_log() == [f"PAE pgd must be below 4GB ({mfn:#x} >= 0x100000)",
                                      f"Error -34 while pinning mfn {mfn:05x}"]
    assert f"xen: PAE pgd must be below 4GB ({mfn:#x}" in step.outcome.explain()
