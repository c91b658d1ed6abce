# SPDX-License-Identifier: MIT
"""The placement experiment: how often the builder's L3 lands above 4 GiB."""

from __future__ import annotations

from pvlab.toolstack import placement_experiment


def test_placement_experiment_shape_and_trend() -> None:
    pts = placement_experiment(["2GiB", "4GiB", "8GiB", "64GiB", "1TiB"], trials=300, seed=7)
    assert [p.host_size for p in pts] == ["2GiB", "4GiB", "8GiB", "64GiB", "1TiB"]
    assert pts[0].above_4g == pts[1].above_4g == 0  # nothing lies above 4 GiB
    assert pts[0].expected == 0.0
    for p in pts[2:]:
        assert abs(p.fraction - p.expected) < 0.1
        assert p.high_first_above_4g and not p.low_first_above_4g
    assert pts[2].fraction < pts[3].fraction <= pts[4].fraction
    assert pts[4].fraction > 0.95
    again = placement_experiment(["8GiB"], trials=50, seed=3)
    assert again == placement_experiment(["8GiB"], trials=50, seed=3)  # seeded


def test_build_method_agrees() -> None:
    (p,) = placement_experiment(["8GiB"], trials=12, seed=1, method="build")
    (q,) = placement_experiment(["8GiB"], trials=12, seed=1, method="sample")
    assert 0 < p.above_4g < 12 and p.trials == 12 and q.trials == 12
