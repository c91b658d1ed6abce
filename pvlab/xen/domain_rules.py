# SPDX-License-Identifier: MIT
"""The rules between domains: foreign mappings, grant tables, destroying a domain.

Registered once, like the pagetable rules of `pvlab.xen.rules`: each names the check id
its trace events carry, the result it gives (an errno, a GNTST status, or an action), and
the Xen function it models. `pvlab rules --markdown` lists them in docs/rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DomainRule:
    id: str  # the trace events' check id
    op: str  # the operation that checks it
    result: str  # -EPERM, GNTST_general_error, ... or "(action)"
    summary: str
    xen_function: str


DOMAIN_RULES: tuple[DomainRule, ...] = (
    DomainRule("pg_owner", "mmu_update / pin / unpin foreign:, "
               "update_va_mapping_otherdomain", "-ESRCH",
               "foreigndom must name another existing domain, DOMID_SELF, DOMID_IO or "
               "DOMID_XEN; naming yourself by id or an unknown domain fails.",
               "get_pg_owner"),
    DomainRule("xsm", "mmu_update / pin / unpin foreign:, update_va_mapping_otherdomain",
               "-EPERM",
               "Only the page owner itself or a control domain may map a domain's frames "
               "(mmu_update: no check for DOMID_IO, the I/O permission is checked per "
               "frame; update_va_mapping_otherdomain has no such exception) or pin and "
               "unpin its tables.",
               "xsm_mmu_update / xsm_mmuext_op / xsm_update_va_mapping (XSM_TARGET, dummy "
               "policy)"),
    DomainRule("l1_foreign", "mmu_update", "-EBUSY",
               "The L1's owner (l1e_owner) maps the page owner's frame and the reference is "
               "taken on it; a frame of anyone else is refused, unless the page owner is a "
               "control domain passing its right on (xsm_priv_mapping).",
               "get_page_from_l1e (pg_owner, l1e_owner)"),
    DomainRule("gnttab_flags", "grant_map", "GNTST_bad_gntref",
               "A map must ask for GNTMAP_host_map (or GNTMAP_device_map: not modelled).",
               "map_grant_ref"),
    DomainRule("gnttab_domain", "grant_map", "GNTST_bad_domain",
               "The granting domain must exist (a dying one still does).",
               "map_grant_ref (rcu_lock_domain_by_id)"),
    DomainRule("maptrack", "grant_map", "GNTST_no_space",
               "The mapper needs a maptrack handle: a free one, else a new maptrack frame "
               "within its max_maptrack_frames (default 1024 frames of 256 handles; 0 gives "
               "none), else one stolen from another of its vCPUs.",
               "map_grant_ref (get_maptrack_handle)"),
    DomainRule("gnttab_ref", "grant_map", "GNTST_bad_gntref",
               "The ref must lie in the granter's table (512 v1 entries in its first frame).",
               "map_grant_ref (nr_grant_entries)"),
    DomainRule("grant_entry", "grant_map", "GNTST_general_error",
               "The first pin needs a GTF_permit_access entry (no GTF_sub_page) made out to "
               "the mapping domain; a writable pin needs no GTF_readonly. Xen then sets "
               "GTF_reading (and GTF_writing).", "_set_status_v1"),
    DomainRule("grant_frame", "grant_map", "GNTST_bad_page",
               "A PV granter's entry must name a frame it owns.",
               "get_paged_frame (get_page_from_gfn)"),
    DomainRule("gnttab_pin", "grant_map", "GNTST_general_error",
               "A writable host mapping takes a PGT_writable_page type reference: a frame "
               "in use as a pagetable cannot be mapped writable; a grant pinned by another "
               "domain cannot be mapped.", "map_grant_ref (get_page_type, could_not_pin)"),
    DomainRule("grant_pte", "grant_map", "GNTST_general_error",
               "With GNTMAP_contains_pte the address must be 8-byte aligned (XSA-227) and "
               "name an entry of one of the mapper's own validated L1s (page_lock).",
               "create_grant_pv_mapping"),
    DomainRule("grant_va", "grant_map", "GNTST_general_error",
               "A linear host address must be mapped by an L1 in the mapper's own tables "
               "(and fit in 32 bits for a 32-bit guest).",
               "create_grant_pv_mapping (map_guest_l1e)"),
    DomainRule("gnttab_handle", "grant_unmap", "GNTST_bad_handle",
               "The handle must be one of the unmapping domain's live maptrack entries.",
               "unmap_common"),
    DomainRule("grant_replace", "grant_unmap", "GNTST_general_error",
               "The PTE unmapped must still map the grant's frame with the grant's P and RW "
               "(XSA-234); a failed unmap releases nothing (XSA-224). unmap_and_replace "
               "needs a linear address ('Replace not available in this addressing mode').",
               "replace_grant_pv_mapping"),
    DomainRule("grant_implicit_unmap", "mmu_update", "(action)",
               "Overwriting a grant PTE with a normal update drops the mapping's references "
               "at once (a debug build injects #GP into the mapper); the grant stays pinned "
               "and its handle can no longer unmap it.",
               "put_page_from_l1e (_PAGE_GNTTAB)"),
    DomainRule("domctl", "destroy_domain", "-ESRCH / -EINVAL",
               "The domain must still exist (it goes when its last frame is freed, -ESRCH) "
               "and not be the caller itself (-EINVAL).",
               "do_domctl (rcu_lock_domain_by_id), domain_kill"),
    DomainRule("relinquish", "destroy_domain", "(action)",
               "The dying domain's maps are unpinned, its vCPUs' base pointers and pins "
               "dropped, its tables devalidated (releasing what they held on any domain's "
               "frames); frames another domain still references stay until released.",
               "domain_relinquish_resources (relinquish_memory)"),
)

__all__ = ["DOMAIN_RULES", "DomainRule"]
