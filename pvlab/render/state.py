# SPDX-License-Identifier: MIT
"""Snapshots: a plain, immutable copy of the state the pictures read.

`snapshot(xen, guest)` copies every frame's `page_info` that has state, the present
and non-present (non-zero) entries of the guest's frames, the guest's vCPUs and
VM-assists. Every view is built from a snapshot, so the picture of "before" and
"after" an operation is drawn by the same code, and rendering never touches the core
(reading a free frame's `page_info` through `Machine.page` would create it).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from pvlab.units import MFN_4GIB, PAGE_SIZE
from pvlab.xen.abi import PV64Abi, abi_for
from pvlab.xen.page_info import (
    DOMID_IO,
    DOMID_XEN,
    PageInfoFields,
    owner_name,
)

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Guest, Xen

_UNPACK = struct.Struct(f"<{PAGE_SIZE // 8}Q").unpack


@dataclass(frozen=True)
class PageSnap(PageInfoFields):
    """One frame's `page_info`, copied."""

    mfn: int
    owner: int | None
    count_info: int
    type_info: int
    #: The owner's scenario name when a scenario has several domains ("dom0 (d1)").
    owner_label: str = ""

    @property
    def owner_name(self) -> str:
        return self.owner_label or owner_name(self.owner)

    def status_words(self) -> list[str]:
        words = []
        if self.pinned:
            words.append("pinned")
        if self.validated:
            words.append("validated")
        if self.partial:
            words.append("partial")
        if self.pae_xen_l2:
            words.append("pae_xen_l2")
        return words


@dataclass(frozen=True)
class VcpuSnap:
    vcpu_id: int
    initialised: bool
    guest_table: int | None
    guest_table_user: int | None


@dataclass(frozen=True)
class Snapshot:
    """Everything a picture of one guest needs, frozen at one moment."""

    domid: int
    label: str
    bitness: int

    @property
    def abi(self) -> PV64Abi:
        """The guest's PV ABI (`pvlab.xen.abi`)."""
        return abi_for(self.bitness)
    vm_assist: int
    vm_assist_names: tuple[str, ...]
    vcpus: tuple[VcpuSnap, ...]
    nr_frames: int
    xen_range: tuple[int, int]
    profile: str
    #: mfn -> page_info of every frame with state (allocated or touched).
    pages: Mapping[int, PageSnap] = field(default_factory=dict)
    #: mfn -> ((index, value), ...) of the non-zero entries of the guest's frames.
    entries: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def page(self, mfn: int) -> PageSnap:
        """The frame's page_info; a frame without state reads as Xen would show it."""
        got = self.pages.get(mfn)
        if got is not None:
            return got
        owner = (DOMID_IO if mfn < 0x100 else
                 DOMID_XEN if self.xen_range[0] <= mfn < self.xen_range[1] else None)
        return PageSnap(mfn, owner, 0, 0)

    def present(self, mfn: int) -> list[tuple[int, int]]:
        return [(i, v) for i, v in self.entries.get(mfn, ()) if v & 1]

    def entry(self, mfn: int, index: int) -> int:
        for i, v in self.entries.get(mfn, ()):
            if i == index:
                return v
        return 0

    def mfn_valid(self, mfn: int) -> bool:
        return 0 <= mfn < self.nr_frames

    @staticmethod
    def above_4g(mfn: int) -> bool:
        return mfn >= MFN_4GIB

    def read_u64(self, paddr: int) -> int:
        """Physical memory for `pvlab.x86.walk` (guest frames only; others read 0)."""
        if paddr & 7:
            return int.from_bytes(bytes(self._byte(paddr + k) for k in range(8)), "little")
        return self.entry(paddr >> 12, (paddr & 0xFFF) >> 3)

    def read_u32(self, paddr: int) -> int:
        return int.from_bytes(bytes(self._byte(paddr + k) for k in range(4)), "little")

    def _byte(self, paddr: int) -> int:
        return (self.read_u64(paddr & ~7) >> (8 * (paddr & 7))) & 0xFF


def _frame_entries(machine: object, mfn: int) -> tuple[tuple[int, int], ...]:
    frames = getattr(machine, "_frames", None)
    if isinstance(frames, dict):  # fast path: one unpack per frame
        buf = frames.get(mfn)
        if buf is None:
            return ()
        return tuple((i, v) for i, v in enumerate(_UNPACK(bytes(buf))) if v)
    return tuple(machine.entries(mfn))  # type: ignore[attr-defined]


def snapshot(xen: Xen, guest: Guest, *, labels: Mapping[int, str] | None = None) -> Snapshot:
    """A plain immutable copy of `guest`'s pagetable state (and every frame's page_info).

    `labels`: domid -> the name pictures give that owner (a scenario with several
    domains names them: "dom0 (d1)"); other owners read as Xen names them ("d3")."""
    from pvlab.xen.domain import vm_assist_names

    m = xen.machine
    d = guest.domain
    lab = labels or {}
    pages = {p.mfn: PageSnap(p.mfn, p.owner, p.count_info, p.type_info,
                             lab.get(p.owner, "") if p.owner is not None else "")
             for p in m.pages()}
    entries = {}
    for mfn, p in pages.items():
        if p.owner == d.domid:
            got = _frame_entries(m, mfn)
            if got:
                entries[mfn] = got
    vcpus = tuple(VcpuSnap(v.vcpu_id, v.is_initialised, v.guest_table, v.guest_table_user)
                  for v in d.vcpus)
    return Snapshot(d.domid, d.label, d.bitness, d.vm_assist,
                    tuple(vm_assist_names(d.vm_assist)), vcpus, m.nr_frames,
                    tuple(m.xen_range), xen.profile.name,  # type: ignore[arg-type]
                    MappingProxyType(pages), MappingProxyType(entries))
