# SPDX-License-Identifier: MIT
"""Bits you can see: a ruler for a pagetable entry and for CR3, as coloured fields.

An entry of a PV guest's table is 64 bits on 64-bit Xen, for 32-bit (PAE) guests too:
flags in bits 11:0, the MFN in bits 51:12, bits 62:52 ignored by the hardware (Xen
refuses most of them in guest entries), NX in bit 63. CR3 is `pfn << 12` for a 64-bit
guest; a 32-bit PV guest's CR3 holds the frame number rotated left by 12 within 32 bits
(`xen_pfn_to_cr3`), so the frame bits 31:20 of an L3 at or above 4 GiB land in CR3 bits
11:0 — the *extended CR3* that the `pae_extended_cr3` VM-assist tells Xen to decode.
A native PAE CR3 is 32 bits, so such an L3's address does not fit at all (the 32-bit
CR3 overflow). MFNs and addresses are always labelled: `mfn 0x100` / `addr 0x100000`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from pvlab.units import MFN_4GIB, PAGE_SHIFT
from pvlab.x86.flags import ADDR_MASK, FLAG_BITS, entry_mfn, flag_names
from pvlab.xen.abi import abi_for

#: Flags a learner picks for an ordinary entry (bits 52-62 are not plain choices: they
#: are ignored by the hardware and Xen refuses most of them; write a raw value instead).
FLAG_CHOICES = ("P", "RW", "US", "PWT", "PCD", "A", "D", "PS", "G", "AVAIL0", "AVAIL1",
                "AVAIL2", "NX")
#: Common flag combinations offered by the lab's flags box.
FLAG_COMBOS = ("P", "P|RW", "P|US", "P|RW|US", "P|RW|US|A|D", "0")

_COLOUR = {"flag": "#c8e6c9", "flag-off": "#f1f8e9", "mfn": "#bbdefb", "ignored": "#eeeeee",
           "nx": "#ffe0b2", "zero": "#fafafa", "rot": "#ffcdd2", "lost": "#ef9a9a"}


@dataclass(frozen=True)
class Field:
    hi: int
    lo: int
    name: str
    value: int
    kind: str  # flag, flag-off, mfn, ignored, nx, zero, rot, lost
    note: str = ""


def mfn_text(mfn: int) -> str:
    """`mfn 0x100 (addr 0x100000, below 4 GiB)`: never a bare number."""
    side = "at/above 4 GiB" if mfn >= MFN_4GIB else "below 4 GiB"
    return f"mfn {mfn:#x} (addr {mfn << PAGE_SHIFT:#x}, {side})"


def entry_fields(value: int) -> list[Field]:
    """The fields of a 64-bit pagetable entry, high bit first."""
    out = [Field(63, 63, "NX", value >> 63 & 1, "nx" if value >> 63 & 1 else "flag-off")]
    high = value >> 52 & 0x7FF
    out.append(Field(62, 52, "bits 52–62 (ignored; Xen refuses most)", high,
                     "rot" if high else "ignored"))
    mfn = entry_mfn(value)
    out.append(Field(51, 12, "MFN", mfn, "mfn", mfn_text(mfn)))
    for bit in range(11, -1, -1):
        name = next((n for n, b in FLAG_BITS.items() if b == 1 << bit), f"bit{bit}")
        on = value >> bit & 1
        out.append(Field(bit, bit, name, on, "flag" if on else "flag-off"))
    return out


def entry_text(value: int, *, added: int = 0) -> str:
    """One line per part, for a hover tooltip; `added` names the flags Xen added."""
    mfn = entry_mfn(value)
    names = "|".join(flag_names(value & ~ADDR_MASK)) or "none"
    lines = [f"value {value:#018x}", f"bits 51–12: {mfn_text(mfn)}", f"flags: {names}"]
    if added:
        lines.append(f"added by Xen: {'|'.join(flag_names(added))} (not written by the guest)")
    return "\n".join(lines)


def cr3_fields(mfn: int, bitness: int) -> list[Field]:
    """The CR3 value Xen's PV ABI uses for the top table at `mfn`, as fields."""
    abi = abi_for(bitness)
    if not abi.extended_cr3_codec:
        cr3 = abi.cr3_of(mfn)
        return [Field(63, 52, "reserved", cr3 >> 52, "zero"),
                Field(51, 12, "MFN", mfn, "mfn", mfn_text(mfn)),
                Field(11, 0, "flags/PCID", 0, "zero")]
    if mfn >= 1 << 32:
        return [Field(31, 0, "cannot be named", 0, "lost",
                      "a 32-bit PV CR3 names frames below 2**32 only")]
    cr3 = abi.cr3_of(mfn)
    low, high = mfn & 0xFFFFF, mfn >> 20
    return [Field(31, 12, "MFN bits 19–0", low, "mfn", f"mfn & 0xfffff = {low:#x}"),
            Field(11, 0, "MFN bits 31–20 (rotated)", cr3 & 0xFFF, "rot" if high else "zero",
                  "extended CR3: non-zero only for an L3 at or above 4 GiB; Xen decodes it "
                  "with xen_cr3_to_pfn")]


def _cells(fields: list[Field]) -> str:
    out = []
    for f in fields:
        span = f"{f.hi}" if f.hi == f.lo else f"{f.hi}–{f.lo}"
        shown = f"{f.value:#x}" if f.hi != f.lo else str(f.value)
        width = max(1, f.hi - f.lo + 1)
        tip = html.escape(f"{f.name}: {shown}" + (f" — {f.note}" if f.note else ""))
        out.append(f'<td title="{tip}" class="bits-{f.kind}" style="background:'
                   f'{_COLOUR[f.kind]};border:1px solid #999;padding:2px 3px;'
                   f'text-align:center;min-width:{min(120, 14 + 3 * width)}px">'
                   f'<div style="font-size:10px;color:#555">{span}</div>'
                   f"<div><b>{html.escape(f.name)}</b></div>"
                   f'<div style="font-family:monospace">{shown}</div></td>')
    return ('<table class="lab-bits-ruler" style="border-collapse:collapse;font-size:11px">'
            f"<tr>{''.join(out)}</tr></table>")


def entry_ruler_html(value: int, *, where: str = "", added: int = 0) -> str:
    mfn = entry_mfn(value)
    extra = (f"<div>flags added by Xen: <b>{'|'.join(flag_names(added))}</b> (the guest "
             "wrote the entry without them)</div>") if added else ""
    return (f'<div class="lab-bits-entry"><div><b>entry {html.escape(where)}</b> = '
            f"<code>{value:#018x}</code> → {html.escape(mfn_text(mfn))}</div>"
            f"{_cells(entry_fields(value))}{extra}</div>")


def cr3_ruler_html(mfn: int, bitness: int) -> str:
    parts = [f'<div class="lab-bits-cr3"><div><b>CR3 for the top table at '
             f"{html.escape(mfn_text(mfn))}</b> ({bitness}-bit PV guest)</div>",
             _cells(cr3_fields(mfn, bitness))]
    abi = abi_for(bitness)
    if abi.extended_cr3_codec and mfn < 1 << 32:
        cr3 = abi.cr3_of(mfn)
        addr = mfn << PAGE_SHIFT
        parts.append(f"<div>Xen's CR3 value <code>{cr3:#010x}</code> "
                     "(xen_pfn_to_cr3: mfn rotated left by 12 in 32 bits).</div>")
        if addr >= 1 << 32:
            parts.append(f'<div class="lab-bits-overflow" style="color:#c62828">A native PAE '
                         f"CR3 holds 32 bits: addr {addr:#x} needs {addr.bit_length()} bits, "
                         f"so bits {addr.bit_length() - 1}–32 "
                         f"(<code>{addr >> 32:#x}</code>) would be lost. Only the extended-CR3 "
                         "encoding (pae_extended_cr3) can name this L3.</div>")
    parts.append("</div>")
    return "".join(parts)
