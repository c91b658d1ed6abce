# SPDX-License-Identifier: MIT
"""Guest kernel images as the domain builders see them: bitness and PAE mode.

libelf (`xen/common/libelf/libelf-dominfo.c`) turns a kernel's notes into
`enum xen_pae_type`:

- ELF note `XEN_ELFNOTE_PAE_MODE` "yes" -> `XEN_PAE_EXTCR3` (a kernel new enough to
  carry ELF notes is assumed to understand the extended-CR3 format);
- a note containing "bimodal" -> `XEN_PAE_BIMODAL`;
- the legacy `__xen_guest` string `PAE=yes[extended-cr3]` -> `XEN_PAE_EXTCR3`;
- any other legacy `PAE=yes...` -> `XEN_PAE_YES`: the only "PAE but not extended-CR3"
  kernel, and the only one whose L3 the domU builder moves below 4 GiB;
- nothing -> `XEN_PAE_NO` (`xen-3.0-x86_32`, which 64-bit Xen cannot run).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pvlab.errors import PvlabError
from pvlab.units import MiB, format_size, parse_size
from pvlab.xen.abi import PV64Abi, abi_for


class PaeMode(enum.IntEnum):
    """`enum xen_pae_type` (`xen/include/xen/libelf.h`)."""

    XEN_PAE_NO = 0
    XEN_PAE_YES = 1
    XEN_PAE_EXTCR3 = 2
    XEN_PAE_BIMODAL = 3


#: Kernel kinds a scenario or a notebook names: (bitness, PAE mode, how the image says so).
KERNEL_KINDS: dict[str, tuple[int, PaeMode, str]] = {
    "pae_yes": (32, PaeMode.XEN_PAE_YES, "legacy __xen_guest string PAE=yes (no extended-CR3)"),
    "extcr3": (32, PaeMode.XEN_PAE_EXTCR3, 'ELF note PAE_MODE "yes" (extended-CR3 assumed)'),
    "legacy_extcr3": (32, PaeMode.XEN_PAE_EXTCR3,
                      "legacy __xen_guest string PAE=yes[extended-cr3]"),
    "bimodal": (32, PaeMode.XEN_PAE_BIMODAL, 'ELF note PAE_MODE "bimodal"'),
    "pae_no": (32, PaeMode.XEN_PAE_NO, "32-bit kernel without any PAE declaration"),
    "x86_64": (64, PaeMode.XEN_PAE_NO, "64-bit ELF (EM_X86_64); PAE mode not used"),
}

#: Where the builders map the kernel (`virt_base`): Linux's classic PV values.
VIRT_BASE = {32: 0xC000_0000, 64: 0xFFFF_FFFF_8000_0000}


def pae_mode_from_note(note: str) -> PaeMode:
    """`XEN_ELFNOTE_PAE_MODE`: exactly "yes" -> EXTCR3, "...bimodal..." -> BIMODAL, else NO."""
    if "bimodal" in note:
        return PaeMode.XEN_PAE_BIMODAL
    if note == "yes":
        return PaeMode.XEN_PAE_EXTCR3
    return PaeMode.XEN_PAE_NO


def pae_mode_from_legacy(value: str) -> PaeMode:
    """The legacy `__xen_guest` `PAE=` value: "yes[extended-cr3]" -> EXTCR3, "yes..." -> YES."""
    if value == "yes[extended-cr3]":
        return PaeMode.XEN_PAE_EXTCR3
    if value.startswith("yes"):
        return PaeMode.XEN_PAE_YES
    return PaeMode.XEN_PAE_NO


@dataclass(frozen=True)
class KernelImage:
    """What the builder learns from the image: bitness, PAE mode, where and how big."""

    kind: str
    bitness: int
    pae: PaeMode
    declared_by: str
    size: int = 1 * MiB
    virt_base: int = 0

    @property
    def abi(self) -> PV64Abi:
        """The PV ABI a guest running this kernel has."""
        return abi_for(self.bitness)

    @property
    def extended_cr3(self) -> bool:
        """The kernel understands the extended-CR3 format (EXTCR3 or BIMODAL)."""
        return self.pae in (PaeMode.XEN_PAE_EXTCR3, PaeMode.XEN_PAE_BIMODAL)

    @property
    def guest_type(self) -> str:
        """The guest type string libxenguest derives (`xg_dom_elfloader.c`)."""
        if self.abi.switch_compat and self.pae == PaeMode.XEN_PAE_NO:
            return "xen-3.0-x86_32"
        return self.abi.guest_type

    def describe(self) -> str:
        return (f"{self.kind}: {self.bitness}-bit, {self.pae.name} ({self.declared_by}), "
                f"{format_size(self.size)} at {self.virt_base:#x}")


def kernel_image(kind: str | KernelImage = "extcr3", *, size: int | str = "1MiB") -> KernelImage:
    """A kernel image of a named kind (see `KERNEL_KINDS`)."""
    if isinstance(kind, KernelImage):
        return kind
    if kind not in KERNEL_KINDS:
        raise PvlabError(f"unknown kernel kind {kind!r}",
                         f"use one of {', '.join(KERNEL_KINDS)}")
    nbytes = parse_size(size, what="kernel size")
    if not 4096 <= nbytes <= 64 * MiB:
        raise PvlabError(f"kernel size {format_size(nbytes)} is out of range",
                         "use between 4KiB and 64MiB")
    bitness, pae, how = KERNEL_KINDS[kind]
    return KernelImage(kind, bitness, pae, how, nbytes, VIRT_BASE[bitness])
