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


def test_placement_sweep_policies_and_hosts() -> None:
    import numpy as np

    from pvlab.toolstack import placement_sweep

    sw = placement_sweep(["2GiB", "8GiB", "64GiB", "1TiB"], trials=4000, seed=2)
    assert sw.policies == ("low-first", "high-first", "random")
    low, high, rnd = sw.fraction
    assert low.tolist() == [0, 0, 0, 0]  # the L3 is among the first frames
    assert high.tolist() == [0, 1, 1, 1]  # Xen's buddy allocator: highest first
    assert rnd[0] == 0 and np.all(np.abs(rnd - sw.expected) < 0.03)
    assert rnd[1] < rnd[2] < rnd[3]
    again = placement_sweep(["8GiB"], ["random"], trials=500, seed=5)
    assert again.fraction.tolist() == placement_sweep(["8GiB"], ["random"], trials=500,
                                                      seed=5).fraction.tolist()
    assert len(sw.as_rows()) == 12


def test_placement_sweep_agrees_with_the_machine() -> None:
    """The sampled sweep and the allocator itself: same low/high-first answer."""
    from pvlab.toolstack import placement_experiment, placement_sweep

    (p,) = placement_experiment(["8GiB"], trials=1)
    sw = placement_sweep(["8GiB"], ["low-first", "high-first"])
    assert (bool(sw.fraction[0, 0]), bool(sw.fraction[1, 0])) == (p.low_first_above_4g,
                                                                  p.high_first_above_4g)


def test_plot_placement_returns_a_figure() -> None:
    import pytest

    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from pvlab.toolstack import placement_sweep
    from pvlab.toolstack.placement_plot import plot_placement

    fig = plot_placement(placement_sweep(["2GiB", "8GiB"], trials=100))
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 5


def test_core_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = ("import sys, pvlab, pvlab.toolstack, pvlab.xen.bulk, pvlab.x86; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
