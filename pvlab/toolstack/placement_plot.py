# SPDX-License-Identifier: MIT
"""The placement sweep as a matplotlib figure (matplotlib is imported only when drawing).

```python
from pvlab.toolstack.placement import placement_sweep
from pvlab.toolstack.placement_plot import plot_placement
fig = plot_placement(placement_sweep())
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.toolstack.placement import PlacementSweep

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKERS = {"low-first": "v", "high-first": "^", "random": "o"}


def plot_placement(sweep: PlacementSweep, *, title: str | None = None) -> Figure:
    """One line per allocator policy: the share of builds whose L3 lands at or above
    4 GiB, against the host size (log scale); the dashed line is the share of free
    frames above 4 GiB. Returns the Figure (Jupyter shows it; nothing is printed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    gib = sweep.host_bytes / 2**30
    for i, policy in enumerate(sweep.policies):
        ax.plot(gib, sweep.fraction[i] * 100, marker=MARKERS.get(policy, "s"), label=policy)
    ax.plot(gib, sweep.expected * 100, linestyle="--", color="grey",
            label="free frames above 4 GiB")
    ax.set_xscale("log", base=2)
    ax.set_xticks(gib, sweep.host_labels(), rotation=30)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("host memory")
    ax.set_ylabel("L3 at or above 4 GiB (% of builds)")
    ax.axvline(4, color="black", linewidth=0.5)
    ax.set_title(title or f"Where the builder's L3 lands (pfn {sweep.l3_pfn:#x}, "
                 f"{sweep.trials} random draws per host)")
    ax.legend(loc="center right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = ["plot_placement"]
