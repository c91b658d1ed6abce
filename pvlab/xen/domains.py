# SPDX-License-Identifier: MIT
"""Several domains on one host: who may act on whom, and destroying a domain.

- `is_control_domain` (`IS_PRIV` in older Xen): a domain created privileged (dom0-like)
  may map other domains' frames (`pvlab.xen.foreign`) and issue domctls.
- `destroy_domain` models `XEN_DOMCTL_destroydomain` -> `domain_kill` ->
  `domain_relinquish_resources` (xen/common/domain.c, xen/arch/x86/domain.c,
  RELEASE-4.17.0 / RELEASE-4.19.0):
  1. `d->is_dying`; `gnttab_release_mappings`: the maps this domain made are unpinned
     in their granters' active entries (their page references go with its L1s, step 3);
  2. `vcpu_destroy_pagetables`: each vCPU's `guest_table` (and `guest_table_user`)
     drops its type and general reference;
  3. `relinquish_memory` over the domain's page list, once per level L4, L3, L2: each
     frame is unpinned (`put_page_and_type`), loses its allocation reference
     (`put_page_alloc_ref`), and a still-validated table of that level is devalidated
     ("forcibly invalidate top-most, still valid page tables"): its entries' references
     are dropped -- including those it held on OTHER domains' frames (foreign and grant
     mappings). An L1 is demoted when its last type reference goes.
  A frame whose count reaches 0 is freed (`free_domheap_pages`). A frame another domain
  still references (a foreign or grant mapping) stays allocated to the dying domain, a
  "zombie", until that domain releases it; the domain itself goes (`domain_destroy`)
  with its last frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import Errno, Outcome, Tracer
from pvlab.xen.domain import Domain
from pvlab.xen.grants import release_mappings
from pvlab.xen.page_info import PGC_allocated, PGT_pinned, PGT_validated, type_level

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen


def is_control_domain(d: Domain) -> bool:
    """`is_control_domain(d)`: dom0 or another domain created privileged."""
    return d.privileged


def destroy_domain(xen: Xen, caller: Domain | None, d: Domain) -> Outcome:
    """`XEN_DOMCTL_destroydomain` of `d`, issued by `caller` (None: the toolstack outside
    the scenario, a control domain)."""
    t = Tracer(f"destroydomain({d.label})")
    t.outcome.counters.hypercalls += 1
    if caller is not None and not is_control_domain(caller):
        t.event("xsm", "fail", f"{caller.label} is not a control domain: "
                "XEN_DOMCTL_destroydomain needs one", "xsm_domctl (XSM_OTHER)")
        return t.finish(-int(Errno.EPERM))
    if caller is d:
        t.event("domctl", "fail", f"{d.label} cannot kill itself (d == current->domain)",
                "domain_kill")
        return t.finish(-int(Errno.EINVAL))
    if d.domid not in xen.domains:
        t.event("domctl", "fail", f"no domain d{d.domid} ({d.label} is gone: its last frame "
                "was freed)", "do_domctl (rcu_lock_domain_by_id)")
        return t.finish(-int(Errno.ESRCH))
    if d.is_dying:
        t.event("domain_kill", "pass", f"{d.label} is already dying: nothing left to "
                "relinquish (its remaining frames wait for other domains)", "domain_kill")
        return t.finish(0)
    d.is_dying = True
    t.event("domain_kill", "info", f"{d.label} is dying (d->is_dying)", "domain_kill")
    release_mappings(xen, t, d)
    types = xen.type_system
    m = xen.machine
    for v in d.vcpus:
        for attr in ("guest_table", "guest_table_user"):
            mfn = getattr(v, attr)
            if mfn is not None:
                setattr(v, attr, None)
                types.put_page_and_type(t, mfn)
                t.event("relinquish", "info", f"vCPU {v.vcpu_id} {attr} MFN {mfn:#x} "
                        "released", "vcpu_destroy_pagetables", mfn=mfn)
        v.is_initialised = False
    frames = m.allocated(d.domid)
    for level in (4, 3, 2):
        for mfn in frames:
            if m.owner(mfn) != d.domid:
                continue  # freed meanwhile
            pi = m.page(mfn)
            pi.count_info += 1  # get_page: hold it while working on it
            if pi.type_info & PGT_pinned:
                pi.type_info &= ~PGT_pinned
                types.put_page_and_type(t, mfn)
            if pi.count_info & PGC_allocated:
                pi.count_info &= ~PGC_allocated
                types.put_page(mfn)  # put_page_alloc_ref
            if type_level(pi.type_info) == level and pi.type_info & PGT_validated:
                pi.type_info &= ~PGT_validated
                types.devalidate(t, mfn, level)
            types.put_page(mfn)
    left = [f for f in m.allocated(d.domid)]
    if left:
        t.event("relinquish", "info", f"{len(left)} frame(s) of {d.label} stay allocated: "
                "another domain still references them (" + ", ".join(
                    f"MFN {f:#x} count {m.page(f).count}" for f in left[:4])
                + "); the domain stays until they are released", "relinquish_memory")
    else:
        xen.domains.pop(d.domid, None)
        xen.grant_tables.pop(d.domid, None)
        t.event("relinquish", "pass", f"every frame of {d.label} is free: the domain is "
                "gone", "domain_destroy")
    return t.finish(0)


__all__ = ["destroy_domain", "is_control_domain"]
