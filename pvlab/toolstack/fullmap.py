# SPDX-License-Identifier: MIT
"""A guest whose whole memory is mapped by 4 KiB pages: realistic sizes for the engine.

`map_whole_guest(xen, guest, "4GiB")` allocates the guest's frames
(`XENMEM_populate_physmap` in batches), writes a pagetable tree that maps every data
frame once through an L1 entry (as a kernel's direct map would, without superpages,
which PV guests cannot use) and returns the tree, ready for `guest.pin(top, level)`.
A 64-bit guest gets one L4, one L3, an L2 per GiB and an L1 per 2 MiB (4 GiB: 2,048
L1s, 1,048,576 L1 entries). A 32-bit (PAE) guest gets an L3 whose slots 0-2 map up to
3 GiB and whose slot 3 L2 (the PAE Xen L2) maps at most 428 more L1s.

The tables are written straight into the new frames (the builder's foreign mappings:
no hypercall, no check), one whole frame per write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pvlab.errors import PvlabError
from pvlab.units import PAGE_SHIFT, PAGE_SIZE, parse_size
from pvlab.x86.flags import RW, US, A, D, P
from pvlab.xen import bulk
from pvlab.xen.hypervisor import Guest, Xen
from pvlab.xen.rules import COMPAT_L2_FIRST_XEN_SLOT

ENTRIES = 512
L1_FLAGS = P | RW | A | D
UPPER_FLAGS = P | RW | US | A


@dataclass
class MappedGuest:
    """The tree `map_whole_guest` wrote: pin `top` at `level`."""

    guest: Guest
    top: int
    level: int
    data: npt.NDArray[np.int64]
    l1s: npt.NDArray[np.int64]
    l2s: npt.NDArray[np.int64]
    l3s: npt.NDArray[np.int64]

    @property
    def nr_tables(self) -> int:
        return len(self.l1s) + len(self.l2s) + len(self.l3s) + (self.level == 4)


def _rows(targets: npt.NDArray[np.int64], flags: int, per: int = ENTRIES
          ) -> npt.NDArray[np.uint64]:
    """Entries for consecutive tables: table i maps targets[i*per:(i+1)*per]."""
    n = -(-len(targets) // per)
    out = np.zeros((n, ENTRIES), np.uint64)
    vals = (targets.astype(np.uint64) << np.uint64(PAGE_SHIFT)) | np.uint64(flags)
    padded = np.zeros(n * per, np.uint64)
    padded[:len(vals)] = vals
    out[:, :per] = padded.reshape(n, per)
    return out


def _alloc(xen: Xen, g: Guest, count: int) -> npt.NDArray[np.int64]:
    out, mfns = bulk.populate_physmap_batch(xen, g.domain, count)
    if out.rc:
        raise PvlabError(f"cannot allocate {count} frames for the guest: {out.reason}",
                         "use a larger host_memory or a smaller guest")
    return mfns


def map_whole_guest(xen: Xen, g: Guest, memory: int | str = "4GiB", *,
                    read_only_every: int = 0) -> MappedGuest:
    """Allocate `memory` worth of data frames and a tree mapping each once (see module).

    `read_only_every=n` maps every n-th data frame read-only (0: all writable).
    """
    frames = parse_size(memory, what="guest memory") // PAGE_SIZE
    if frames < 1:
        raise PvlabError("the guest needs at least one frame", "use e.g. 4GiB")
    n_l1 = -(-frames // ENTRIES)
    pv32 = g.domain.abi.pae_top  # a PAE (compat) guest: an L3 of 4 slots
    max_l1 = 3 * ENTRIES + COMPAT_L2_FIRST_XEN_SLOT if pv32 else ENTRIES * ENTRIES
    if n_l1 > max_l1:
        raise PvlabError(f"{memory} is more than one {'PAE L3' if pv32 else 'L3'} maps",
                         "use at most 3.8GiB for a 32-bit guest, 512GiB for a 64-bit one")
    data = _alloc(xen, g, frames)
    l1s = _alloc(xen, g, n_l1)
    m = xen.machine
    l1_rows = _rows(data, L1_FLAGS)
    if read_only_every:
        flat = l1_rows.reshape(-1)[:frames]
        flat[::read_only_every] &= ~np.uint64(RW)
    m.write_rows(l1s, l1_rows)
    if pv32:
        # slots 0-2: 512 L1s each; slot 3 (always present): the rest, up to 428
        per_l2 = [ENTRIES, ENTRIES, ENTRIES, COMPAT_L2_FIRST_XEN_SLOT]
        groups, start = [], 0
        for per in per_l2:
            groups.append(l1s[start:start + per])
            start += per
        l2s = _alloc(xen, g, 4)
        for l2, group in zip(l2s.tolist(), groups, strict=True):
            if len(group):
                m.write_rows([l2], _rows(group, P | RW | US | A, len(group)))
        l3 = _alloc(xen, g, 1)
        m.write_rows(l3, _rows(l2s, P, 4))
        return MappedGuest(g, int(l3[0]), 3, data, l1s, l2s, l3)
    l2s = _alloc(xen, g, -(-n_l1 // ENTRIES))
    m.write_rows(l2s, _rows(l1s, UPPER_FLAGS))
    l3 = _alloc(xen, g, 1)
    m.write_rows(l3, _rows(l2s, UPPER_FLAGS))
    l4 = _alloc(xen, g, 1)
    m.write_rows(l4, _rows(l3, UPPER_FLAGS))
    return MappedGuest(g, int(l4[0]), 4, data, l1s, l2s, l3)


__all__ = ["MappedGuest", "map_whole_guest"]
