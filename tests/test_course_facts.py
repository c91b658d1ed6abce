# SPDX-License-Identifier: MIT
"""docs/course-facts.md names only files that exist, and every fact has a source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "course-facts.md").read_text(encoding="utf-8")
ROWS = [line for line in DOC.splitlines() if re.match(r"\| \d+ \|", line)]


def test_every_fact_has_a_claim_a_source_and_a_witness() -> None:
    assert len(ROWS) >= 30
    for row in ROWS:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        assert len(cells) == 4 and all(cells), row


def test_the_scenarios_and_examples_it_names_exist() -> None:
    for name in re.findall(r"`tests/scenarios/([\w.-]+\.yaml)`", DOC):
        assert (ROOT / "tests" / "scenarios" / name).exists(), name
    for name in re.findall(r"\b(\d{3}-[\w.-]+\.yaml)`", DOC):
        assert (ROOT / "tests" / "scenarios" / name).exists(), name
    for name in re.findall(r"example `([\w-]+)`", DOC):
        assert (ROOT / "pvlab" / "examples" / f"{name}.yaml").exists(), name
    for path in re.findall(r"`(pvlab/[\w/]+\.py)`", DOC):
        assert (ROOT / path).exists(), path
