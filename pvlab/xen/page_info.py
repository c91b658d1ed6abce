# SPDX-License-Identifier: MIT
"""`struct page_info` as Xen keeps it per machine frame (`xen/arch/x86/include/asm/mm.h`).

`type_info` and `count_info` use Xen's own bit layout, so a value reads exactly as in
Xen's logs (`taf=6000000000000001`: an L3, type count 1, not yet validated).
"""

from __future__ import annotations

from typing import Any


def _pg_shift(idx: int) -> int:
    return 64 - idx


PGT_none = 0
PGT_l1_page_table = 1 << 61
PGT_l2_page_table = 2 << 61
PGT_l3_page_table = 3 << 61
PGT_l4_page_table = 4 << 61
PGT_seg_desc_page = 5 << 61
PGT_shared_page = 6 << 61
PGT_writable_page = 7 << 61
PGT_type_mask = 7 << 61
PGT_root_page_table = PGT_l4_page_table

PGT_locked = 1 << _pg_shift(4)  # bit 60
PGT_pinned = 1 << _pg_shift(5)  # bit 59
PGT_validated = 1 << _pg_shift(6)  # bit 58
PGT_pae_xen_l2 = 1 << _pg_shift(7)  # bit 57, CONFIG_PV32
PGT_partial = 1 << _pg_shift(8)  # bit 56
PGT_non_coherent = 1 << _pg_shift(9)  # bit 55
PGT_count_mask = (1 << 55) - 1

PGC_allocated = 1 << _pg_shift(1)  # bit 63
PGC_xen_heap = 1 << _pg_shift(2)  # bit 62
#: x86 `PGC_count_width` is `PG_shift(7)` in 4.17 (bits 57-62 hold PGC_page_table,
#: PGC_broken, the PGC_state pair and PGC_extra), so the general count has 57 bits.
PGC_count_mask = (1 << _pg_shift(7)) - 1

#: Special owners (`dom_io`, `dom_xen`) use Xen's reserved domain ids.
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2

TYPE_NAMES = {
    PGT_none: "none",
    PGT_l1_page_table: "l1",
    PGT_l2_page_table: "l2",
    PGT_l3_page_table: "l3",
    PGT_l4_page_table: "l4",
    PGT_seg_desc_page: "seg_desc",
    PGT_shared_page: "shared",
    PGT_writable_page: "writable",
}
TYPE_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}
LEVEL_TYPE = {1: PGT_l1_page_table, 2: PGT_l2_page_table,
              3: PGT_l3_page_table, 4: PGT_l4_page_table}


def type_level(ptype: int) -> int:
    """1..4 for a pagetable type, 0 otherwise."""
    t = ptype & PGT_type_mask
    return t >> 61 if PGT_l1_page_table <= t <= PGT_l4_page_table else 0


def type_name(type_info: int) -> str:
    return TYPE_NAMES[type_info & PGT_type_mask]


def owner_name(owner: int | None) -> str:
    if owner is None:
        return "free"
    return {DOMID_IO: "dom_io", DOMID_XEN: "dom_xen"}.get(owner, f"d{owner}")


class PageInfoFields:
    """Read-only views of `count_info` / `type_info`, shared by PageInfo and snapshots."""

    __slots__ = ()
    count_info: int
    type_info: int

    @property
    def count(self) -> int:
        return self.count_info & PGC_count_mask

    @property
    def allocated(self) -> bool:
        return bool(self.count_info & PGC_allocated)

    @property
    def type(self) -> int:
        return self.type_info & PGT_type_mask

    @property
    def type_name(self) -> str:
        return type_name(self.type_info)

    @property
    def type_count(self) -> int:
        return self.type_info & PGT_count_mask

    @property
    def level(self) -> int:
        return type_level(self.type_info)

    @property
    def validated(self) -> bool:
        return bool(self.type_info & PGT_validated)

    @property
    def pinned(self) -> bool:
        return bool(self.type_info & PGT_pinned)

    @property
    def partial(self) -> bool:
        return bool(self.type_info & PGT_partial)

    @property
    def pae_xen_l2(self) -> bool:
        return bool(self.type_info & PGT_pae_xen_l2)

    @property
    def is_live_pagetable(self) -> bool:
        """A validated pagetable with type references: the guest may not write it."""
        return self.level > 0 and self.type_count > 0 and self.validated

    def flags_text(self) -> str:
        bits = [name for flag, name in ((PGT_pinned, "pinned"), (PGT_validated, "validated"),
                                         (PGT_pae_xen_l2, "pae_xen_l2"),
                                         (PGT_partial, "partial")) if self.type_info & flag]
        return ",".join(bits)


class _Detached:
    """A lone `page_info` record (a frame with no state in a machine's store)."""

    __slots__ = ("mv_owner", "mv_count_info", "mv_type_info", "mv_linear_pt_count")

    def __init__(self, owner: int, count_info: int, type_info: int, linear: int) -> None:
        self.mv_owner = [owner]
        self.mv_count_info = [count_info]
        self.mv_type_info = [type_info]
        self.mv_linear_pt_count = [linear]


class PageInfo(PageInfoFields):
    """Per-frame state: owner, general references (`count_info`), type (`type_info`).

    A view of one row of the machine's `page_info` arrays
    (:class:`pvlab.xen.framestore.PageStore`): reads and writes go straight to the
    arrays. Constructed directly, it is a detached record of its own.
    """

    __slots__ = ("mfn", "_s", "_r")

    def __init__(self, mfn: int, owner: int | None = None, count_info: int = 0,
                 type_info: int = 0, linear_pt_count: int = 0, *,
                 store: Any = None, row: int = 0) -> None:
        self.mfn = mfn
        if store is None:
            store = _Detached(-1 if owner is None else owner, count_info, type_info,
                              linear_pt_count)
        self._s = store
        self._r = row

    @property
    def owner(self) -> int | None:
        o: int = self._s.mv_owner[self._r]
        return None if o < 0 else o

    @owner.setter
    def owner(self, value: int | None) -> None:
        self._s.mv_owner[self._r] = -1 if value is None else value

    @property
    def count_info(self) -> int:
        return self._s.mv_count_info[self._r]

    @count_info.setter
    def count_info(self, value: int) -> None:
        self._s.mv_count_info[self._r] = value

    @property
    def type_info(self) -> int:
        return self._s.mv_type_info[self._r]

    @type_info.setter
    def type_info(self, value: int) -> None:
        self._s.mv_type_info[self._r] = value

    @property
    def linear_pt_count(self) -> int:
        return self._s.mv_linear_pt_count[self._r]

    @linear_pt_count.setter
    def linear_pt_count(self, value: int) -> None:
        self._s.mv_linear_pt_count[self._r] = value

    @classmethod
    def view(cls, mfn: int, store: Any, row: int) -> PageInfo:
        """A view of row `row` of a machine's page_info arrays (the fast constructor)."""
        pi = object.__new__(cls)
        pi.mfn, pi._s, pi._r = mfn, store, row
        return pi

    def _key(self) -> tuple[int, int | None, int, int, int]:
        return (self.mfn, self.owner, self.count_info, self.type_info, self.linear_pt_count)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PageInfo):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<PageInfo {self.summary()}>"

    def summary(self) -> str:
        return (f"mfn {self.mfn:#x} {owner_name(self.owner)} type={self.type_name} "
                f"type_count={self.type_count} count={self.count}"
                + (f" {self.flags_text()}" if self.flags_text() else "")
                + f" caf={self.count_info:016x} taf={self.type_info:016x}")
