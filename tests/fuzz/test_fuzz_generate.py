# SPDX-License-Identifier: MIT
"""The fuzzer's scenario generator: deterministic, valid, fully replayable, varied."""

from __future__ import annotations

from collections import Counter

import yaml

from pvlab.fuzz.generate import generate, replayable
from pvlab.fuzz.oracle import plan_for
from pvlab.scenario import parse_scenario, run_scenario


def test_same_seed_same_scenario() -> None:
    assert generate(7) == generate(7)
    assert generate(7) != generate(8)
    assert generate(7, bitness=32)["guest"]["bitness"] == 32


def test_scenarios_are_valid_files_and_replay_in_full() -> None:
    ops: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    results: Counter[str] = Counter()
    for seed in range(150):
        data = generate(seed)
        text = yaml.safe_dump(data, sort_keys=False)
        scn = parse_scenario(yaml.safe_load(text), source=f"seed {seed}")  # a file's round trip
        run = run_scenario(scn, profile="4.19")
        results.update(s.outcome.result for s in run.steps if not s.is_check)
        assert replayable(data), seed
        plan, _ = plan_for(data, 1, "4.19")
        assert plan.boot == 64  # every scenario shares the 64-bit probe's boot
        modes[plan.mode] += 1
        ops.update(next(iter(s)) for s in data["steps"])
    assert set(modes) == {"toolstack", "agent"}
    assert {"pin", "unpin", "mmu_update", "write", "vcpu_initialise", "vcpu_reset",
            "expect_entry"} <= set(ops)
    # "meaningful": many hypercalls succeed and many fail, for several reasons
    assert results["ok"] > 100 and results["EINVAL"] > 50
    assert len(results) >= 4, results


def test_frames_on_both_sides_of_4gib_and_both_bitnesses() -> None:
    seen = Counter()
    for seed in range(60):
        data = generate(seed)
        seen[data["guest"]["bitness"]] += 1
        for spec in data["frames"].values():
            seen[next(iter(spec), "any")] += 1
    assert seen[32] and seen[64] and seen["below"] and seen["above"] and seen["any"]
