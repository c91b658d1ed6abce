# SPDX-License-Identifier: MIT
"""Shared helpers for the core's tests: guests, snapshots and the audit, in a few lines."""

from __future__ import annotations

from typing import Any

from pvlab import Guest, Outcome, Xen
from pvlab.units import MFN_4GIB
from pvlab.xen.invariants import LeakLedger, audit

BOTH_BITNESS = (32, 64)
BOTH_PROFILES = ("4.17", "4.19")


def guest(bitness: int = 32, profile: str = "4.19", *, vcpus: int = 1,
          memory: str = "8GiB", **kw: Any) -> Guest:
    return Xen(profile, memory).create_domain(bitness, vcpus=vcpus, **kw)


def init_vcpu0(g: Guest) -> None:
    """Mark vCPU 0 initialised, as for a running guest (its boot tables are elsewhere)."""
    g.domain.vcpus[0].is_initialised = True


def pv32_l3(g: Guest, *, above: bool = False, l2: int | None = None,
            flags: str = "P") -> tuple[int, int]:
    """A 32-bit L3 whose slot 3 points at an (otherwise empty) L2: returns (l3, l2)."""
    l3 = g.alloc_frame(above="4GiB") if above else g.alloc_frame(below="4GiB")
    if l2 is None:
        l2 = g.alloc_frame()
    g.write_entry(l3, 3, l2, flags)
    return l3, l2


def st(g: Guest, mfn: int) -> tuple[str, int, bool, bool]:
    """(type, type count, validated, pinned), as the reference's scenarios state it."""
    pi = g.page(mfn)
    return (pi.type_name, pi.type_count, pi.validated, pi.pinned)


def rw_mappable(g: Guest, frame: int) -> bool:
    """Can `frame` be mapped writable right now? (S17/S19's probe: an L1 pinned with an
    RW entry to it, then unpinned again, so the probe leaves no trace.)"""
    probe = g.alloc_frame()
    g.write_entry(probe, 0, frame, "P|RW")
    out = g.pin(probe, 1)
    if out.ok:
        assert g.unpin(probe).ok
    g.write_entry(probe, 0, value=0)
    g.free_frame(probe)
    return out.ok


def is_clean(xen: Xen, ledger: LeakLedger | None = None) -> list[str]:
    return audit(xen, leaked=ledger.leaks if ledger else None)


def failed(out: Outcome, errno: str) -> bool:
    return not out.ok and out.errno == errno


HIGH = MFN_4GIB
