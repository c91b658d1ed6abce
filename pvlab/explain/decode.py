# SPDX-License-Identifier: MIT
"""Decoders for the numbers in Xen's memory-management messages.

- Xen's 24-bit flag word (`get_pte_flags`): bits 0-11 are the PTE's own, bits 12-22 are PTE
  bits 52-62 and bit 23 is PTE bit 63 (NX). So `Bad L3 flags 800000` is NX, not bit 23.
- `count_info` (caf) and `type_info` (taf) in x86-64 Xen's layout (`asm/mm.h`), using the
  bit definitions of :mod:`pvlab.xen.page_info`.
- machine frame numbers placed below or above 4 GiB, errno values, domain ids.
"""

from __future__ import annotations

from pvlab.trace import Errno
from pvlab.x86.flags import flag_names
from pvlab.xen import page_info as pg
from pvlab.xen.abi import PV64

#: 4 GiB in frames: the first MFN a 32-bit PV guest without pae_extended_cr3 cannot put in CR3.
MFN_4G = 0x100000

# count_info bits the emulator does not keep (asm/mm.h); bit 61 and 57 changed meaning.
PGC_BIT61 = 1 << 61  # 4.17: PGC_page_table; 4.20: PGC_extra
PGC_BROKEN = 1 << 60
PGC_STATE_SHIFT = 58  # 2 bits: inuse, offlining, offlined, free
PGC_BIT57 = 1 << 57  # 4.17: PGC_extra; 4.20: PGC_shadowed_pt
PGC_COUNT_MASK = pg.PGC_count_mask  # PGC_count_width is PG_shift(7)
_PGC_STATES = ("inuse", "offlining", "offlined", "free")

_SPECIAL_DOMIDS = {0x7FF0: "DOMID_SELF", pg.DOMID_IO: "dom_io", pg.DOMID_XEN: "dom_xen",
                   0x7FF3: "dom_cow", 0x7FF4: "DOMID_INVALID", 0x7FF5: "DOMID_IDLE"}


def parse_int(text: str, *, hex_default: bool = True) -> int:
    t = text.strip()
    if t.lower().startswith("0x"):
        return int(t, 16)
    if t.startswith("-"):
        return int(t, 10)
    return int(t, 16 if hex_default else 10)


def flag_word(word: int, level: int | None = None) -> str:
    """Names of the bits of Xen's flag word: `800000` -> `NX`, `80` at L2 -> `PS`."""
    pte = (word & 0xFFF) | ((word & 0xFFF000) << 40)
    names = flag_names(pte, level)
    if not names:
        return "none"
    bits = [str(b) for b in range(64) if pte >> b & 1]
    return f"{'|'.join(names)} (PTE bit{'s' * (len(bits) > 1)} {', '.join(bits)})"


def pte(value: int, level: int | None = None) -> str:
    mfn = (value >> 12) & ((1 << 40) - 1)
    word = (value & 0xFFF) | ((value >> 40) & 0xFFF000)
    return f"mfn {mfn:#x} ({mfn_place(mfn)}), flags {flag_word(word, level)} (flag word {word:x})"


def mfn_place(mfn: int) -> str:
    """Where a frame sits: below 4 GiB or at/above (what PAE CR3 without the assist can hold)."""
    addr = mfn << 12
    side = "below 4 GiB" if mfn < MFN_4G else "at or above 4 GiB"
    return f"machine address {addr:#x}, {side}"


def errno(rc: int) -> str:
    if rc == 0:
        return "0 (success)"
    try:
        name = Errno(abs(rc)).name
    except ValueError:
        return f"{rc} (errno {abs(rc)})"
    return f"-{name}" if rc < 0 else name


def count_info(caf: int) -> str:
    """`count_info`: general reference count and the PGC_* flags."""
    parts = [f"count {caf & PGC_COUNT_MASK}"]
    if caf & pg.PGC_allocated:
        parts.append("allocated")
    if caf & pg.PGC_xen_heap:
        parts.append("xen_heap")
    if caf & PGC_BIT61:
        parts.append("page_table (4.17) / extra (4.20)")
    if caf & PGC_BROKEN:
        parts.append("broken")
    state = (caf >> PGC_STATE_SHIFT) & 3
    if state:
        parts.append(f"state {_PGC_STATES[state]}")
    if caf & PGC_BIT57:
        parts.append("extra (4.17) / shadowed_pt (4.20)")
    return ", ".join(parts)


def type_info(taf: int) -> str:
    """`type_info`: type, type count and the PGT_* flags (pinned, validated, partial...)."""
    parts = [f"type {pg.type_name(taf)}", f"type count {taf & pg.PGT_count_mask}"]
    for bit, name in ((pg.PGT_locked, "locked"), (pg.PGT_pinned, "pinned"),
                      (pg.PGT_validated, "validated"), (pg.PGT_pae_xen_l2, "pae_xen_l2"),
                      (pg.PGT_partial, "partial"), (pg.PGT_non_coherent, "non_coherent")):
        if taf & bit:
            parts.append(name)
    if taf & pg.PGT_type_mask and not taf & pg.PGT_validated and pg.type_level(taf):
        parts.append("not validated")
    return ", ".join(parts)


def domid(value: int) -> str:
    return _SPECIAL_DOMIDS.get(value, f"domain {value}")


def slot(value: int, level: int | None) -> str:
    text = f"entry {value} ({value:#x})"
    if level == 4 and value in PV64.xen_slots(4):
        text += ", one of Xen's L4 slots 256-271"
    elif level == 3 and value == 3:
        text += "; in a 32-bit guest's L3: the top 1 GiB (the PAE Xen L2)"
    elif level == 2 and value >= 428:
        text += "; in a 32-bit guest's PAE Xen L2: one of Xen's slots (VA 0xF5800000 and up)"
    return text


def decode_field(name: str, raw: str, level: int | None) -> tuple[int | str, str]:
    """(value, meaning) for the number `raw` printed in the field `name`."""
    base = name.rstrip("0123456789")
    if base in ("rd", "od", "vcpu", "text", "predicate", "file"):
        return raw, {"rd": "the domain asking", "od": "the page's owner"}.get(base, "")
    if base in ("rc", "dom", "count", "bytes", "line", "cpu", "vector") or base.endswith("owner"):
        value = int(raw, 10) if raw.lstrip("-").isdigit() else parse_int(raw)
    else:
        value = parse_int(raw)
    if base == "flags":
        return value, flag_word(value, level)
    if base in ("mfn", "mfn_last"):
        return value, mfn_place(value)
    if base in ("pfn", "gfn"):
        if value == (1 << 64) - 1:
            return value, "none: the frame has no M2P entry (INVALID_M2P_ENTRY), not the guest's"
        return value, "the guest's pseudo-physical frame number"
    if base == "rc":
        return value, errno(value)
    if base == "caf":
        return value, count_info(value)
    if base in ("taf", "saw"):
        return value, type_info(value)
    if base in ("type", "exp"):
        return value, f"type {pg.type_name(value)}" + (
            ", pae_xen_l2" if value & pg.PGT_pae_xen_l2 else "")
    if base == "slot":
        return value, slot(value, level)
    if base == "pte":
        return value, pte(value, level)
    if base == "dom" or base.endswith("owner"):
        return value, domid(value)
    return value, ""
