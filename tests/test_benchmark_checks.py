# SPDX-License-Identifier: MIT
"""The correctness checks of `python -m benchmarks` (fast path == reference), on small sizes.

The benchmark itself is not a test (timings on shared machines are noisy); what it
checks before timing is: batch walks equal `walk()` and Unicorn, and a whole guest pinned
with the bulk engine equals the reference path (outcome, expanded trace, counters, state).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.figures import (  # noqa: E402
    as_json,
    check_pin,
    check_walks,
    walk_tables,
    walk_tables_scattered,
)


def test_benchmark_walk_check() -> None:
    m, cr3, vas = walk_tables(n_l1=4)
    check_walks(m, cr3, vas[:5000], sample=300)


def test_benchmark_walk_check_worst_case() -> None:
    m, cr3, vas = walk_tables_scattered(n=3000)
    check_walks(m, cr3, vas, sample=300)


def test_benchmark_pin_check_both_bitnesses() -> None:
    check_pin("16MiB", 64)
    check_pin("12MiB", 32)


def test_benchmark_json_shape() -> None:
    import json

    from benchmarks.figures import Figure

    out = json.loads(as_json([Figure("x", 1.0, "ms", "<= 2 ms", True, 2.0, "ref", 2.0)]))
    assert set(out["x"]) >= {"value", "unit", "baseline", "ratio", "goal", "met"}
