# SPDX-License-Identifier: MIT
"""How often does the domain builder's L3 land at or above 4 GiB?

For each host size, `placement_experiment` asks the machine's seeded allocator
(`Xen(placement="random", seed=...)`) for the frame the builder's L3 gets, `trials`
times, on a fresh host each time. The L3 is a single frame drawn with no address limit
(`meminit_pv`), so drawing that one frame is the same experiment as building the whole
guest frame by frame, without allocating gigabytes (a 1 TiB host stays sparse).
`method="build"` runs the real builder instead (a small guest; slow, for checking).

`placement_sweep` asks the same question for every host size and every allocator
policy at once with numpy (10,000 draws per host in milliseconds);
`pvlab.toolstack.placement_plot.plot_placement` draws it with matplotlib.

Xen's real buddy allocator hands out the highest free memory first (`"high-first"`):
there the L3 of any guest on a host with more than about 4 GiB lands high, which is why
Andrew Cooper called the relocation "the increasingly common case".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from pvlab.errors import PvlabError
from pvlab.units import MFN_4GIB, GiB, TiB, format_size, parse_size
from pvlab.xen.hypervisor import Xen

DEFAULT_HOST_SIZES = ("2GiB", "4GiB", "6GiB", "8GiB", "16GiB", "64GiB", "256GiB", "1TiB")


@dataclass(frozen=True)
class PlacementPoint:
    host_size: str
    host_bytes: int
    trials: int
    above_4g: int
    #: fraction of trials in which a XEN_PAE_YES guest's L3 must be moved below 4 GiB
    fraction: float
    #: the share of free frames at or above 4 GiB (what a uniform draw converges to)
    expected: float
    #: where the L3 lands with Xen's highest-first allocator and with lowest-first
    high_first_above_4g: bool
    low_first_above_4g: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _first_frame(host: int, placement: str, seed: int = 0) -> int:
    xen = Xen("4.19", host, placement=placement, seed=seed)
    g = xen.create_domain(32)
    return g.alloc_frame()


def _usable(xen: Xen) -> tuple[int, int]:
    """(free frames in total, free frames at or above 4 GiB) on a fresh host."""
    lo = 0x100  # the first MiB belongs to dom_io
    hi = xen.compat_m2p_base  # Xen's own frames sit at the top
    total = max(0, hi - lo)
    high = max(0, hi - max(lo, MFN_4GIB))
    return total, high


def placement_experiment(host_sizes: tuple[str | int, ...] | list[str | int] = DEFAULT_HOST_SIZES,
                         trials: int = 200, seed: int = 0, *,
                         method: str = "sample") -> list[PlacementPoint]:
    """Per host size: in how many of `trials` seeded random placements the L3 lands high.

    Returns plain data (no plotting); `[p.as_dict() for p in ...]` feeds a notebook.
    """
    if not isinstance(trials, int) or not 1 <= trials <= 100_000:
        raise PvlabError(f"trials {trials!r} is out of range", "use 1 to 100000")
    if method not in ("sample", "build"):
        raise PvlabError(f"method {method!r} is unknown", "use sample or build")
    out = []
    for size in host_sizes:
        host = parse_size(size, what="host size")
        if not 64 << 20 <= host <= 16 * TiB:
            raise PvlabError(f"host size {format_size(host)} is out of range",
                             "use 64MiB to 16TiB")
        above = 0
        for i in range(trials):
            s = seed * 1_000_003 + i
            if method == "sample":
                mfn = _first_frame(host, "random", s)
            else:
                from pvlab.toolstack.builder import build_domain

                xen = Xen("4.19", host, placement="random", seed=s)
                res = build_domain(xen, kernel="pae_yes", memory="4MiB", kernel_size="64KiB")
                mfn = res.relocated[0] if res.relocated else (res.root or 0)
            above += mfn >= MFN_4GIB
        total, high = _usable(Xen("4.19", host))
        out.append(PlacementPoint(
            format_size(host), host, trials, above, above / trials,
            high / total if total else 0.0,
            _first_frame(host, "high-first") >= MFN_4GIB,
            _first_frame(host, "low-first") >= MFN_4GIB))
    return out


POLICIES = ("low-first", "high-first", "random")


@dataclass(frozen=True)
class PlacementSweep:
    """`placement_sweep`'s result: `fraction[p, h]` for policy `policies[p]` and host
    `host_bytes[h]` (the share of trials whose L3 lands at or above 4 GiB)."""

    host_bytes: npt.NDArray[np.int64]
    policies: tuple[str, ...]
    fraction: npt.NDArray[np.float64]
    #: the share of free frames at or above 4 GiB per host (a uniform draw's limit)
    expected: npt.NDArray[np.float64]
    trials: int
    l3_pfn: int

    def host_labels(self) -> list[str]:
        return [format_size(int(b)) for b in self.host_bytes]

    def as_rows(self) -> list[dict[str, object]]:
        """One plain dict per (policy, host), for a table."""
        return [{"policy": p, "host_size": format_size(int(h)),
                 "fraction": float(self.fraction[i, j]), "expected": float(self.expected[j])}
                for i, p in enumerate(self.policies) for j, h in enumerate(self.host_bytes)]


def placement_sweep(host_sizes: tuple[str | int, ...] | list[str | int] = DEFAULT_HOST_SIZES,
                    policies: tuple[str, ...] | list[str] = POLICIES, *, trials: int = 10_000,
                    seed: int = 0, kernel: str = "pae_yes",
                    guest_memory: int | str = "512MiB") -> PlacementSweep:
    """Where the builder's L3 lands, for every host size and allocator policy at once.

    On a fresh host the builder populates pfns in order (`meminit_pv`), so the L3 (the
    top-level table at pfn `l3_pfn` of the image layout) gets: with `low-first`, the
    `l3_pfn`-th free frame from the bottom; with `high-first` (Xen's buddy allocator),
    the `l3_pfn`-th from the top; with `random`, a uniform draw over the free frames
    (numpy, `trials` draws per host). Free frames are those between the first MiB
    (`dom_io`) and Xen's own frames at the top (`Xen.compat_m2p_base`).
    """
    from pvlab.toolstack.kernel import kernel_image
    from pvlab.toolstack.layout import plan_image

    if not isinstance(trials, int) or not 1 <= trials <= 10_000_000:
        raise PvlabError(f"trials {trials!r} is out of range", "use 1 to 10000000")
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise PvlabError(f"unknown placement policy {bad[0]!r}", f"use {', '.join(POLICIES)}")
    pages = parse_size(guest_memory, what="guest memory") // 4096
    l3_pfn = plan_image(kernel_image(kernel), pages).top.pfn
    hosts = []
    for size in host_sizes:
        host = parse_size(size, what="host size")
        if not 64 << 20 <= host <= 16 * TiB:
            raise PvlabError(f"host size {format_size(host)} is out of range",
                             "use 64MiB to 16TiB")
        hosts.append(host)
    lo = np.full(len(hosts), 0x100, np.int64)
    hi = np.array([Xen("4.19", h).compat_m2p_base for h in hosts], np.int64)
    free = np.maximum(hi - lo, 0)
    expected = np.where(free > 0, np.maximum(hi - np.maximum(lo, MFN_4GIB), 0)
                        / np.maximum(free, 1), 0.0)
    rng = np.random.default_rng(seed)
    rows = []
    for p in policies:
        if p == "low-first":
            rows.append(((lo + l3_pfn) >= MFN_4GIB).astype(np.float64))
        elif p == "high-first":
            rows.append(((hi - 1 - l3_pfn) >= MFN_4GIB).astype(np.float64))
        else:
            draws = rng.integers(lo[:, None], hi[:, None], size=(len(hosts), trials))
            rows.append((draws >= MFN_4GIB).mean(axis=1))
    return PlacementSweep(np.array(hosts, np.int64), tuple(policies), np.vstack(rows),
                          expected, trials, l3_pfn)


__all__ = ["DEFAULT_HOST_SIZES", "POLICIES", "PlacementPoint", "PlacementSweep", "GiB",
           "placement_experiment", "placement_sweep"]
