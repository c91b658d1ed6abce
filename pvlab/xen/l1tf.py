# SPDX-License-Identifier: MIT
"""The PV L1TF mitigation: a non-present entry whose address bits could make the CPU
speculatively read cached data (L1 Terminal Fault, XSA-273).

Modelled from xen/arch/x86/include/asm/shadow.h `pv_l1tf_check_pte` (4.12+, commit
06e8b622d3 "x86/pv: Force a guest into shadow mode when it writes an L1TF-vulnerable
PTE"; backported to the stable trees with XSA-273). With the check active for the domain
(`pv-l1tf`, default on for domUs on vulnerable hardware, off for dom0), a non-present
entry is vulnerable when its address is neither 0 nor at or above `l1tf_safe_maddr`, or
(L2 and up) when it sets PSE. Then Xen switches the domain to shadow paging (a tasklet;
the hypercall is restarted, -ERESTART / -EINTR, and succeeds on the retry), or, built
without CONFIG_SHADOW_PAGING, crashes the domain. Never silently ok: the outcome's
`fate` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import DOMAIN_CRASHED, SHADOWED, Tracer
from pvlab.x86.flags import PS

if TYPE_CHECKING:
    from pvlab.xen.domain import Domain
    from pvlab.xen.hypervisor import Xen

FN = "pv_l1tf_check_pte"


def active(xen: Xen, d: Domain) -> bool:
    """`d->arch.pv.check_l1tf && !paging_mode_sh_forced(d)`."""
    return xen.settings.l1tf_active(d.privileged) and not d.shadow_forced


def vulnerable(xen: Xen, level: int, pte: int) -> bool:
    """A non-present entry the CPU could use for an L1TF read."""
    return bool(level > 1 and pte & PS) or not xen.settings.hardware.is_l1tf_safe_maddr(pte)


def check(xen: Xen, t: Tracer, d: Domain, level: int, pte: int, *, table: int,
          index: int) -> bool:
    """`pv_l1tf_check_l{level}e` on a non-present entry; `t.outcome.fate` records what
    it did. True: the domain crashed and the operation stops there. A shadowed domain's
    restarted hypercall passes the check (it is off under forced shadow paging) and
    nothing was changed before the restart, so the caller models the retry by carrying
    on (False)."""
    if pte & 1 or not active(xen, d):
        return False
    if not vulnerable(xen, level, pte):
        return False
    hw = xen.settings.hardware
    why = ("sets PSE (a speculative superpage)" if level > 1 and pte & PS else
           f"names address {pte & hw.l1tf_addr_mask:#x}, below the L1TF-safe "
           f"{hw.l1tf_safe_maddr:#x} and not 0")
    where = f"non-present L{level} entry {index} of MFN {table:#x} ({pte:#x}) {why}"
    if hw.shadow_paging:
        d.shadow_forced = True
        t.outcome.fate = SHADOWED
        t.event("l1tf", "info", f"{where}: 'd{d.domid} L1TF-vulnerable L{level}e - "
                "Shadowing': the domain now runs on shadow pagetables; the hypercall is "
                "restarted and the retry writes the entry", FN, mfn=table, index=index,
                level=level)
        return False
    d.crashed = True
    t.outcome.fate = DOMAIN_CRASHED
    t.event("l1tf", "fail", f"{where}: 'd{d.domid} L1TF-vulnerable L{level}e - Crashing' "
            "(Xen built without CONFIG_SHADOW_PAGING): domain_crash", FN, mfn=table,
            index=index, level=level)
    return True


__all__ = ["active", "check", "vulnerable"]
