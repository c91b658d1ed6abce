# SPDX-License-Identifier: MIT
"""Scenario skeletons that reproduce a Xen message (`pvlab explain --scenario`).

Each skeleton is a complete scenario file (docs/scenarios.md) whose failing step makes pvlab's
trace print the same message; the decoded numbers (flag bits, types) are filled in.
"""

from __future__ import annotations

from pvlab.explain.lines import Explanation
from pvlab.x86.flags import flag_names
from pvlab.xen import page_info as pg
from pvlab.xen.abi import PV64, abi_for


def _head(name: str, what: str, bitness: int, *, init: bool = True) -> list[str]:
    return [
        "# SPDX-License-Identifier: MIT",
        f"# Skeleton written by `pvlab explain --scenario` for: {what}",
        f"name: {name}",
        "description: >",
        f"  Reproduces Xen's message: {what}",
        "  (adjust frames and entries to your case)",
        "guest:",
        f"  bitness: {bitness}",
        f"  vcpu0_initialised: {'true' if init else 'false'}",
    ]


def _flags_yaml(names: list[str]) -> str:
    return "[" + ", ".join(["P", *[n for n in names if n != "P"]]) + "]"


def _bad_flags(level: int, word: int, what: str) -> str:
    pte = (word & 0xFFF) | ((word & 0xFFF000) << 40)
    names = flag_names(pte, level)
    high = any(n.startswith("BIT") or n == "NX" for n in names)
    bitness = 32 if level == 3 and high else 64  # bits 52-63 are refused only in a compat L3
    lines = _head(f"bad-l{level}-flags", what, bitness)
    lines += ["frames:", "  table: {}", "  target: {}"]
    if level == 3 and abi_for(bitness).l3_promotion == "compat":  # slot 3 must hold an L2
        lines += ["  l2top: {}", "tables:", "  table:", f"    0: {{to: target, flags: "
                  f"{_flags_yaml(names)}}}", "    3: {to: l2top, flags: [P]}"]
    else:
        lines += ["tables:", "  table:", f"    0: {{to: target, flags: {_flags_yaml(names)}}}"]
    lines += ["steps:", f"  - pin: {{frame: table, level: {level}}}", "    expect: EINVAL"]
    return "\n".join(lines) + "\n"


def _pae_pgd(what: str) -> str:
    lines = _head("pae-pgd-above-4g", what, 32)
    lines[-1:] = ["  vm_assists: []", "  vcpu0_initialised: true", "xen: \"4.19\""]
    lines += ["frames:", "  l3: {above: 4GiB}", "  l2: {}", "tables:", "  l3:",
              "    3: {to: l2, flags: [P]}", "steps:", "  - pin: {frame: l3, level: 3}",
              "    expect: ERANGE"]
    return "\n".join(lines) + "\n"


def _pin_twice(what: str, *, unpin: bool = False) -> str:
    lines = _head("unpin-not-pinned" if unpin else "pin-twice", what, 64)
    lines += ["frames:", "  t: {}", "steps:"]
    if unpin:
        lines += ["  - unpin: {frame: t}", "    expect: EINVAL"]
    else:
        lines += ["  - pin: {frame: t, level: 1}", "    expect: ok",
                  "  - pin: {frame: t, level: 1}", "    expect: EINVAL"]
    return "\n".join(lines) + "\n"


def _bad_type(saw: int, exp: int, what: str) -> str | None:
    have, want = pg.type_level(saw), pg.type_level(exp)
    if not have or not want:
        return None
    lines = _head("type-conflict", what, 64)
    lines += ["frames:", "  t: {}", "steps:", f"  - pin: {{frame: t, level: {have}}}",
              "    expect: ok", f"  - pin: {{frame: t, level: {want}}}", "    expect: EINVAL"]
    return "\n".join(lines) + "\n"


def _slot3_shared(what: str) -> str:
    lines = _head("pae-l3-slot3-shared", what, 32)
    lines += ["frames:", "  l3a: {below: 4GiB}", "  l3b: {below: 4GiB}", "  l2: {}",
              "tables:", "  l3a:", "    3: {to: l2, flags: [P]}", "  l3b:",
              "    3: {to: l2, flags: [P]}", "steps:", "  - pin: {frame: l3a, level: 3}",
              "    expect: ok", "  - pin: {frame: l3b, level: 3}", "    expect: EINVAL"]
    return "\n".join(lines) + "\n"


def _writable_pagetable(what: str) -> str:
    lines = _head("writable-mapping-of-pagetable", what, 64)
    lines += ["frames:", "  l1: {}", "  pt: {}", "tables:", "  l1:",
              "    0: {to: pt, flags: [P, RW]}", "steps:", "  - pin: {frame: pt, level: 1}",
              "    expect: ok", "  - pin: {frame: l1, level: 1}", "    expect: EBUSY"]
    return "\n".join(lines) + "\n"


def _xen_slot(level: int, slot: int, what: str) -> str:
    if level == 4:
        slot = slot if slot in PV64.xen_slots(4) else PV64.xen_slots(4).start
        lines = _head("l4-xen-slot-update", what, 64)
        lines += ["frames:", "  l4: {}", "  l3: {}", "steps:", "  - pin: {frame: l4, level: 4}",
                  "    expect: ok", f"  - mmu_update: {{table: l4, index: {slot}, to: l3, "
                  "flags: [P]}", "    expect: EINVAL"]
    else:
        slot = slot if 428 <= slot <= 511 else 428
        lines = _head("pae-xen-l2-slot-update", what, 32)
        lines += ["frames:", "  l3: {below: 4GiB}", "  l2: {}", "  l1: {}", "tables:", "  l3:",
                  "    3: {to: l2, flags: [P]}", "steps:", "  - pin: {frame: l3, level: 3}",
                  "    expect: ok", f"  - mmu_update: {{table: l2, index: {slot}, to: l1, "
                  "flags: [P]}", "    expect: EPERM"]
    return "\n".join(lines) + "\n"


def _linear_rw(what: str) -> str:
    lines = _head("linear-pagetable-rw", what, 64)
    lines += ["frames:", "  l4: {}", "tables:", "  l4:", "    0: {to: l4, flags: [P, RW]}",
              "steps:", "  - pin: {frame: l4, level: 4}", "    expect: EINVAL"]
    return "\n".join(lines) + "\n"


def scenario_for(ex: Explanation) -> str | None:
    """A scenario file reproducing the message of `ex`, or None when there is no skeleton."""
    if not ex.matched or ex.format_id is None:
        return None
    from pvlab.explain.lines import split_prefix

    fid, what, d = ex.format_id, split_prefix(ex.line)[0], ex.decoded
    if fid.startswith("bad_l") and fid.endswith("_flags"):
        word = d["flags"].value
        return _bad_flags(int(fid[5]), word, what) if isinstance(word, int) else None
    if fid == "pae_pgd_below_4g":
        return _pae_pgd(what)
    if fid in ("already_pinned", "not_pinned"):
        return _pin_twice(what, unpin=fid == "not_pinned")
    if fid == "bad_type":
        saw, exp = d["saw"].value, d["exp"].value
        return _bad_type(saw, exp, what) if isinstance(saw, int) and isinstance(exp, int) \
            else None
    if fid == "pae_l3_shared":
        return _slot3_shared(what)
    if fid == "l1_writable_type":
        return _writable_pagetable(what)
    if fid in ("l4_xen_private", "l2_xen_private"):
        slot = d["slot"].value
        return _xen_slot(4 if fid.startswith("l4") else 2, slot if isinstance(slot, int) else 0,
                         what)
    if fid == "linear_rw":
        return _linear_rw(what)
    return None
