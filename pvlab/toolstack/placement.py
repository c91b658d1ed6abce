# SPDX-License-Identifier: MIT
"""How often does the domain builder's L3 land at or above 4 GiB?

For each host size, `placement_experiment` asks the machine's seeded allocator
(`Xen(placement="random", seed=...)`) for the frame the builder's L3 gets, `trials`
times, on a fresh host each time. The L3 is a single frame drawn with no address limit
(`meminit_pv`), so drawing that one frame is the same experiment as building the whole
guest frame by frame, without allocating gigabytes (a 1 TiB host stays sparse).
`method="build"` runs the real builder instead (a small guest; slow, for checking).

Xen's real buddy allocator hands out the highest free memory first (`"high-first"`):
there the L3 of any guest on a host with more than about 4 GiB lands high, which is why
Andrew Cooper called the relocation "the increasingly common case".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


__all__ = ["DEFAULT_HOST_SIZES", "PlacementPoint", "placement_experiment", "GiB"]
