# SPDX-License-Identifier: MIT
"""The guest-physical layout of a PV domain image, as libxenguest's x86 builder plans it.

Segments in pfn order: the kernel, the p2m list, start_info, the xenstore and console
pages, the page-table segment, the boot stack. The boot pagetables map the area from
`virt_base` to `virt_pgtab_end` (the end of the allocations plus 512 KiB of padding,
rounded up to 4 MiB) onto pfns 0, 1, 2, ...; how many tables that needs depends on the
end, which depends on the tables, so the count is iterated until it fits (as
`alloc_pgtables_pv` does).

Inside the page-table segment the top-level table comes first, then each lower level
in address order. A PAE (PV32) image whose mapped area ends below 0xC0000000 gets an
extra L2 for L3 slot 3, which Xen requires.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvlab.errors import PvlabError
from pvlab.toolstack.kernel import KernelImage
from pvlab.units import PAGE_SHIFT, PAGE_SIZE, KiB, MiB, format_size
from pvlab.xen.abi import abi_for

#: Levels and the address bits each level's entry covers (PAGE_SHIFT + 9 * level).
LEVELS = {32: 3, 64: 4}
VADDR_MASK = {32: (1 << 32) - 1, 64: (1 << 48) - 1}
PADDING_PAGES = 512 * KiB // PAGE_SIZE
SIGN_EXTEND_64 = 0xFFFF_0000_0000_0000


def _span_bits(level: int) -> int:
    """Bits of virtual address one level-`level` table covers (L1: 21, L2: 30, ...)."""
    return PAGE_SHIFT + 9 * level


@dataclass(frozen=True)
class TablePlan:
    """One pagetable of the boot tree: its level, pfn and the virtual range it covers."""

    level: int
    pfn: int
    va_from: int  # masked virtual address (no sign extension)
    va_to: int    # inclusive


@dataclass
class ImageLayout:
    bitness: int
    virt_base: int
    kernel_pages: int
    p2m_pages: int
    start_info_pfn: int
    xenstore_pfn: int
    console_pfn: int
    pgtables_pfn: int
    bootstack_pfn: int
    area_pages: int  # pfns 0 .. area_pages-1 are mapped by the boot tables
    tables: list[TablePlan] = field(default_factory=list)

    @property
    def levels(self) -> int:
        return LEVELS[self.bitness]

    @property
    def top(self) -> TablePlan:
        return self.tables[0]

    @property
    def nr_pgtables(self) -> int:
        return len(self.tables)

    def is_pgtable_pfn(self, pfn: int) -> bool:
        return self.pgtables_pfn <= pfn < self.pgtables_pfn + self.nr_pgtables

    def tables_at(self, level: int) -> list[TablePlan]:
        return [t for t in self.tables if t.level == level]

    def segments(self) -> list[tuple[str, int, int]]:
        """(name, first pfn, number of pages) in pfn order."""
        return [("kernel", 0, self.kernel_pages), ("p2m", self.kernel_pages, self.p2m_pages),
                ("start_info", self.start_info_pfn, 1), ("xenstore", self.xenstore_pfn, 1),
                ("console", self.console_pfn, 1),
                ("page tables", self.pgtables_pfn, self.nr_pgtables),
                ("boot stack", self.bootstack_pfn, 1)]

    def describe(self) -> str:
        levels = ", ".join(f"{len(self.tables_at(lv))} L{lv}"
                           for lv in range(self.levels, 0, -1))
        return (f"page-table segment at pfn {self.pgtables_pfn:#x}: {levels} "
                f"(top level first); boot tables map pfns 0-{self.area_pages - 1:#x} "
                f"({format_size(self.area_pages * PAGE_SIZE)}) from {self.virt_base:#x}")


def _count_tables(bitness: int, va_from: int, va_to: int) -> list[tuple[int, int, int]]:
    """(level, from, to) for each table needed to map [va_from, va_to], top level first."""
    levels = LEVELS[bitness]
    out: list[tuple[int, int, int]] = [(levels, 0, VADDR_MASK[bitness])]
    for level in range(levels - 1, 0, -1):
        bits = _span_bits(level)
        mask = (1 << bits) - 1
        lo, hi = va_from & ~mask, va_to | mask
        if level == 2 and abi_for(bitness).pae_top and va_to < 0xC000_0000:
            hi = VADDR_MASK[32]  # the extra L2 for L3 slot 3
        for start in range(lo, hi + 1, 1 << bits):
            out.append((level, start, start + (1 << bits) - 1))
    return out


def plan_image(kernel: KernelImage, memory_pages: int) -> ImageLayout:
    """Plan the segments and the boot pagetables for `kernel` in a guest of `memory_pages`."""
    b = kernel.bitness
    vmask = VADDR_MASK[b]
    vbase = kernel.virt_base & vmask
    kpages = -(-kernel.size // PAGE_SIZE)
    sizeof_pfn = kernel.abi.p2m_entry_size
    p2m_pages = -(-memory_pages * sizeof_pfn // PAGE_SIZE)
    pfn = kpages + p2m_pages
    start_info, xenstore, console = pfn, pfn + 1, pfn + 2
    pgt_pfn = pfn + 3
    extra = 1 + PADDING_PAGES  # boot stack + padding
    pages = extra
    while True:
        alloc_end = vbase + (pgt_pfn + pages) * PAGE_SIZE
        try_end = alloc_end | ((4 * MiB) - 1)
        plan = _count_tables(b, vbase, try_end)
        pages = len(plan) + extra
        if vbase + (pgt_pfn + pages) * PAGE_SIZE <= try_end + 1:
            break
    area_pages = (try_end + 1 - vbase) // PAGE_SIZE
    if area_pages > memory_pages:
        raise PvlabError(f"not enough memory for the initial mapping: the boot tables map "
                         f"{format_size(area_pages * PAGE_SIZE)} but the guest has "
                         f"{format_size(memory_pages * PAGE_SIZE)}",
                         "give the guest more memory or a smaller kernel")
    tables = [TablePlan(level, pgt_pfn + i, lo, hi) for i, (level, lo, hi) in enumerate(plan)]
    return ImageLayout(b, vbase, kpages, p2m_pages, start_info, xenstore, console, pgt_pfn,
                       pgt_pfn + len(plan), area_pages, tables)


def table_entries(layout: ImageLayout, table: TablePlan) -> list[tuple[int, int]]:
    """(index, target pfn) of every entry `setup_pgtables_pv` writes into `table`."""
    out: list[tuple[int, int]] = []
    shift = _span_bits(table.level - 1)
    if table.level == 1:
        first = max(table.va_from, layout.virt_base)
        last = min(table.va_to, layout.virt_base + layout.area_pages * PAGE_SIZE - 1)
        for va in range(first, last + 1, PAGE_SIZE):
            out.append(((va - table.va_from) >> PAGE_SHIFT, (va - layout.virt_base) >> PAGE_SHIFT))
        return out
    for child in layout.tables_at(table.level - 1):
        if table.va_from <= child.va_from and child.va_to <= table.va_to:
            out.append(((child.va_from - table.va_from) >> shift, child.pfn))
    return out
