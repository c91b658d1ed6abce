# SPDX-License-Identifier: MIT
"""Mapping another domain's frames: `foreigndom`, `pg_owner` and `l1e_owner`.

A PV domain names the owner of the frames it maps in the `foreigndom` argument of
`HYPERVISOR_mmu_update` (`do_mmu_update` in xen/arch/x86/mm.c):

- `get_pg_owner` (xen/common/page_alloc.c in 4.19, mm.c before) turns it into the
  *page owner*: DOMID_SELF is the caller; `dom_io` for DOMID_IO, `dom_xen` for DOMID_XEN;
  any other id must name a live (or dying) domain. Naming itself by number, or an unknown
  domain, fails: `do_mmu_update` returns -ESRCH.
- `xsm_mmu_update(XSM_TARGET, d, pt_owner, pg_owner)` (the dummy XSM policy,
  xen/include/xsm/dummy.h): unless the page owner is `dom_io`, the caller must be that
  owner or a control domain (`is_control_domain`; `IS_PRIV_FOR` in older Xen): else -EPERM.
- The pagetable being written belongs to the caller (`pt_owner`, the L1's owner: the
  *l1e_owner*); `get_page_from_l1e(l1e, l1e_owner, pg_owner)` takes the general
  reference (and, for RW, the `PGT_writable_page` type reference) on the page owner's
  frame, so a privileged domain's L1 holds references on another domain's frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import Errno, Outcome, Tracer
from pvlab.xen import hypercalls
from pvlab.xen.domain import Domain
from pvlab.xen.page_info import DOMID_IO, DOMID_SELF, DOMID_XEN

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

#: Xen's own pseudo-domains as page owners (`dom_io`, `dom_xen`).
DOM_IO = Domain(DOMID_IO, 64, name="dom_io")
DOM_XEN = Domain(DOMID_XEN, 64, name="dom_xen")


def lookup_domain(xen: Xen, domid: int) -> Domain | None:
    """`rcu_lock_domain_by_id`: a domain that exists (a dying one still does, until its last
    frame is freed)."""
    return xen.domains.get(domid)


def get_pg_owner(xen: Xen, t: Tracer, curr: Domain, domid: int) -> Domain | None:
    """`get_pg_owner(foreigndom)`: the page owner an mmu_update names, or None (-ESRCH)."""
    fn = "get_pg_owner"
    if domid == DOMID_SELF:
        return curr
    if domid == curr.domid:
        t.event("pg_owner", "fail", f"'Cannot specify itself as foreign domain': "
                f"{curr.label} names itself (d{domid})", fn)
        return None
    if domid == DOMID_IO:
        t.event("pg_owner", "pass", "DOMID_IO: the page owner is dom_io (I/O frames)", fn)
        return DOM_IO
    if domid == DOMID_XEN:
        t.event("pg_owner", "pass", "DOMID_XEN: the page owner is dom_xen (Xen's frames)", fn)
        return DOM_XEN
    d = lookup_domain(xen, domid)
    if d is None:
        t.event("pg_owner", "fail", f"'Unknown domain d{domid}': no such domain", fn)
        return None
    t.event("pg_owner", "pass", f"foreign domain d{domid} ({d.label}) is the page owner"
            + (" (dying)" if d.is_dying else ""), fn)
    return d


def xsm_target(src: Domain, target: Domain) -> bool:
    """`xsm_default_action(XSM_TARGET, src, target)` of the dummy policy: the domain itself,
    or a control domain (`is_control_domain`). Device-model targets are not modelled."""
    return src is target or src.domid == target.domid or src.privileged


def mmu_update_foreign(xen: Xen, d: Domain, table: int, index: int, value: int, *,
                       foreigndom: int, cmd: int = hypercalls.MMU_NORMAL_PT_UPDATE) -> Outcome:
    """`do_mmu_update` with `foreigndom`: `get_pg_owner` (-ESRCH), `xsm_mmu_update` (-EPERM),
    then the update with the page owner passed to `get_page_from_l1e`."""
    who = domid_text(foreigndom)
    t = Tracer(f"mmu_update(MFN {table:#x}[{index}] = {value:#x}, foreigndom {who})")
    pg_owner = _checked_pg_owner(xen, t, d, foreigndom, hook="xsm_mmu_update",
                                 refused="map that domain's frames", io_exempt=True)
    if isinstance(pg_owner, Outcome):
        return pg_owner
    if pg_owner is not d:
        t.event("xsm", "pass", f"{d.label} may map {pg_owner.label}'s frames"
                + (" (dom_io: the I/O permission is checked per frame)" if pg_owner is DOM_IO
                   else " (a control domain)"),
                "xsm_mmu_update (XSM_TARGET)")
    return _after_checks(t, hypercalls.mmu_update(xen, d, table, index, value, cmd=cmd,
                                                  pg_owner=pg_owner))


def mmuext_foreign(xen: Xen, d: Domain, cmd: int, mfn: int, *, foreigndom: int) -> Outcome:
    """`do_mmuext_op` with `foreigndom` for MMUEXT_PIN_L*_TABLE / MMUEXT_UNPIN_TABLE (how a
    toolstack pins a domain's tables): `get_pg_owner` (-ESRCH), `xsm_mmuext_op`
    (XSM_TARGET: -EPERM), then the frame is taken from the page owner (`get_page_from_gfn
    (pg_owner, ...)`) and validated as that owner's table."""
    who = domid_text(foreigndom)
    t = Tracer(f"mmuext_op(cmd {cmd}, MFN {mfn:#x}, foreigndom {who})")
    pg_owner = _checked_pg_owner(xen, t, d, foreigndom, hook="xsm_mmuext_op",
                                 refused="pin or unpin that domain's tables", io_exempt=False)
    if isinstance(pg_owner, Outcome):
        return pg_owner
    if pg_owner is not d:
        t.event("xsm", "pass", f"{d.label} acts on {pg_owner.label}'s tables (a control "
                "domain)", "xsm_mmuext_op (XSM_TARGET)")
    return _after_checks(t, hypercalls.mmuext_op(xen, pg_owner, cmd, mfn))


def _checked_pg_owner(xen: Xen, t: Tracer, d: Domain, foreigndom: int, *, hook: str,
                      refused: str, io_exempt: bool) -> Domain | Outcome:
    """`get_pg_owner` (NULL: -ESRCH), then the default XSM policy's XSM_TARGET check of
    `hook` (-EPERM unless `d` is the owner or a control domain; `xsm_mmu_update` lets
    dom_io through, its I/O permission is checked per frame): the page owner, or the
    finished failure."""
    pg_owner = get_pg_owner(xen, t, d, foreigndom)
    if pg_owner is None:
        t.outcome.counters.hypercalls += 1
        return t.finish(-int(Errno.ESRCH))
    if not (io_exempt and pg_owner is DOM_IO) and not xsm_target(d, pg_owner):
        t.outcome.counters.hypercalls += 1
        t.event("xsm", "fail", f"{d.label} is neither {pg_owner.label} nor a control domain: "
                f"it may not {refused}", f"{hook} (XSM_TARGET)")
        return t.finish(-int(Errno.EPERM))
    return pg_owner


def _after_checks(t: Tracer, out: Outcome) -> Outcome:
    """The hypercall's outcome with the owner checks' events first, named as the call."""
    out.events[:0] = t.outcome.events
    out.op = t.outcome.op
    return out


def update_va_mapping_foreign(xen: Xen, d: Domain, va: int, value: int, *, domid: int,
                              vcpu: int = 0, flags: int = 0) -> Outcome:
    """`do_update_va_mapping_otherdomain(va, val, flags, domid)`: `get_pg_owner(domid)`
    (NULL: -ESRCH, before anything else), then `__do_update_va_mapping` with that page
    owner, whose `xsm_update_va_mapping` (XSM_TARGET, no dom_io exception unlike
    `xsm_mmu_update`) refuses a caller that is neither the owner nor a control domain."""
    t = Tracer(f"update_va_mapping_otherdomain({va:#x}, {value:#x}, {domid_text(domid)})")
    pg_owner = get_pg_owner(xen, t, d, domid)
    if pg_owner is None:
        t.outcome.counters.hypercalls += 1
        return t.finish(-int(Errno.ESRCH))
    out = hypercalls.update_va_mapping(xen, d, va, value, vcpu=vcpu, flags=flags,
                                       pg_owner=pg_owner)
    out.events[:0] = t.outcome.events
    return out


def domid_text(domid: int) -> str:
    return {DOMID_SELF: "DOMID_SELF", DOMID_IO: "DOMID_IO", DOMID_XEN: "DOMID_XEN"}.get(
        domid, f"d{domid}")


__all__ = ["DOM_IO", "DOM_XEN", "domid_text", "get_pg_owner", "lookup_domain",
           "mmu_update_foreign", "mmuext_foreign", "update_va_mapping_foreign", "xsm_target"]
