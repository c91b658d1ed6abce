# SPDX-License-Identifier: MIT
"""Grant tables, version 1, as a PV domain uses them to share its frames.

The granting domain writes a grant entry into its shared grant table (a plain memory
write, no hypercall): `flags` (`GTF_permit_access`, `GTF_readonly`), the `domid` allowed
to map it, and the `frame` (for a PV guest, the MFN). Another domain maps it with
`GNTTABOP_map_grant_ref` (xen/common/grant_table.c `map_grant_ref`) and unmaps it with
`GNTTABOP_unmap_grant_ref` / `GNTTABOP_unmap_and_replace` (`unmap_common`); the PTE side
is xen/arch/x86/pv/grant_table.c (`create_grant_pv_mapping`,
`replace_grant_pv_mapping`, `steal_linear_address`). Read in RELEASE-4.17.0 and
RELEASE-4.19.0, which agree on everything modelled here.

What a host mapping holds (`map_grant_ref`): one general reference on the granted
frame (`get_paged_frame` / `page_get_owner_and_reference`) and, unless
`GNTMAP_readonly`, one `PGT_writable_page` type reference
(`gnttab_host_mapping_get_page_type`); the PTE Xen writes takes none of its own
(`create_grant_pv_mapping` writes it with `UPDATE_ENTRY`, and drops the references of the
entry it replaced with `put_page_from_l1e`). For a PV mapper those references are
released either by the unmap (`unmap_common_complete`) or, when the mapper dies, by the
demotion of its L1 (`put_page_from_l1e` on the grant PTE; `gnttab_release_mappings` only
unpins the active entries: `gnttab_release_host_mappings` is false for PV).

Statuses: the hypercall returns 0 and each operation's `status` says what happened
(:mod:`pvlab.xen.grant_status`). Not modelled: `GNTMAP_device_map` (IOMMU/bus
addresses), grant copy and transfer, transitive and sub-page grants, table growth
(`GNTTABOP_setup_table`: the table stays at its initial frame, 512 v1 entries), stealing
maptrack handles between vCPUs (one free list; a domain's `max_maptrack_frames`, default
1024, bounds it: beyond it a map gets `GNTST_no_space`), the v2
status frames, XSM policies other than the dummy one (so `xsm_grant_mapref` never refuses
and `GNTST_permission_denied` does not arise from a map).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pvlab.trace import Outcome, Tracer
from pvlab.x86.flags import BIT62, NX, RW, US, A, D, G, P, entry_mfn
from pvlab.xen.domain import Domain
from pvlab.xen.grant_status import (
    GNTST_bad_domain,
    GNTST_bad_gntref,
    GNTST_bad_handle,
    GNTST_bad_page,
    GNTST_general_error,
    GNTST_no_space,
    GNTST_okay,
    gntst_name,
)
from pvlab.xen.logformats import BY_ID, c_format
from pvlab.xen.page_info import DOMID_IO, PGT_l1_page_table, PGT_writable_page, owner_name

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen

# grant entry flags (public/grant_table.h)
GTF_invalid = 0
GTF_permit_access = 1
GTF_accept_transfer = 2
GTF_transitive = 3
GTF_type_mask = 3
GTF_readonly = 1 << 2
GTF_reading = 1 << 3
GTF_writing = 1 << 4
GTF_sub_page = 1 << 8
GTF_TYPES = {"invalid": GTF_invalid, "permit_access": GTF_permit_access,
             "accept_transfer": GTF_accept_transfer, "transitive": GTF_transitive}

# map flags
GNTMAP_device_map = 1 << 0
GNTMAP_host_map = 1 << 1
GNTMAP_readonly = 1 << 2
GNTMAP_application_map = 1 << 3
GNTMAP_contains_pte = 1 << 4

#: v1 entries are 8 bytes: the initial single grant frame (INITIAL_NR_GRANT_FRAMES 1)
#: holds 512 of them (`nr_grant_entries`).
NR_GRANT_ENTRIES = 4096 // 8
#: `MAPTRACK_PER_PAGE`: a 4 KiB maptrack frame holds 256 16-byte `grant_mapping`s.
MAPTRACK_PER_PAGE = 4096 // 16
#: `opt_max_maptrack_frames` (`gnttab_max_maptrack_frames=`): a domain's default limit.
MAX_MAPTRACK_FRAMES = 1024
#: `_PAGE_GNTTAB`: debug builds mark grant PTEs with PTE bit 62 (x86_64/page.h); release
#: builds define it as 0.
PAGE_GNTTAB = BIT62
_PAGE_GUEST_KERNEL = 1 << 52
#: What a host mapping holds on the granted frame, by GNTMAP_readonly.
_REFS = {True: "a general reference",
         False: "a general and a PGT_writable_page type reference"}


@dataclass
class GrantEntry:
    """`grant_entry_v1`: written by the granter ([GST]), the reading/writing bits by Xen."""

    flags: int = 0
    domid: int = 0
    frame: int = 0

    def describe(self) -> str:
        kind = {v: k for k, v in GTF_TYPES.items()}[self.flags & GTF_type_mask]
        bits = [n for b, n in ((GTF_readonly, "readonly"), (GTF_reading, "reading"),
                               (GTF_writing, "writing"), (GTF_sub_page, "sub_page"))
                if self.flags & b]
        return f"{'|'.join([kind, *bits])} to d{self.domid}, frame {self.frame:#x}"


@dataclass
class ActiveEntry:
    """`struct active_grant_entry`: Xen's own record of a grant in use (pin counts)."""

    hstr: int = 0  # host read-only mappings (GNTPIN_hstr)
    hstw: int = 0  # host writable mappings (GNTPIN_hstw)
    domid: int = 0
    mfn: int = 0

    @property
    def pin(self) -> int:
        return self.hstr + self.hstw


@dataclass
class GrantMapping:
    """`struct grant_mapping` (a maptrack entry of the mapping domain)."""

    handle: int
    domid: int  # the granting domain
    ref: int
    flags: int  # GNTMAP_*
    host_addr: int  # a PTE's machine address (GNTMAP_contains_pte) or a linear address
    mfn: int = 0


@dataclass
class GrantTable:
    """One domain's grant table: its shared entries, active entries and maptrack."""

    shared: dict[int, GrantEntry] = field(default_factory=dict)
    active: dict[int, ActiveEntry] = field(default_factory=dict)
    maptrack: dict[int, GrantMapping] = field(default_factory=dict)
    #: the (one) vCPU's free list of handles, head first; its last entry is the tail
    #: sentinel Xen always keeps
    free: list[int] = field(default_factory=list)
    #: `maptrack_limit`: handles below it index a maptrack frame
    maptrack_limit: int = 0
    nr_entries: int = NR_GRANT_ENTRIES
    #: `max_maptrack_frames` (`grant_table_init`; xl.cfg's `max_maptrack_frames`)
    max_maptrack_frames: int = MAX_MAPTRACK_FRAMES

    def get_maptrack_handle(self) -> int | None:
        """`get_maptrack_handle`: the head of the free list unless only the tail sentinel is
        left; else a new maptrack frame (256 handles), whose first handle is returned and
        whose others go to the head of the list. With `max_maptrack_frames` frames already
        (none at all when it is 0) Xen tries to steal a free handle from the domain's other
        vCPUs (`steal_maptrack_handle`); the model's one free list is every vCPU's, so
        there is none to steal: None (`INVALID_MAPTRACK_HANDLE`, GNTST_no_space)."""
        if len(self.free) >= 2:
            return self.free.pop(0)
        if self.maptrack_limit // MAPTRACK_PER_PAGE >= self.max_maptrack_frames:
            return None
        handle = self.maptrack_limit
        self.maptrack_limit += MAPTRACK_PER_PAGE
        self.free[:0] = range(handle + 1, handle + MAPTRACK_PER_PAGE)
        return handle

    def put_maptrack_handle(self, handle: int) -> None:
        """`put_maptrack_handle`: the handle becomes the new tail of the free list."""
        self.free.append(handle)

    def entry(self, ref: int) -> GrantEntry:
        return self.shared.setdefault(ref, GrantEntry())


def grant_table(xen: Xen, d: Domain) -> GrantTable:
    """`d->grant_table` (created with the domain, here on first use)."""
    return xen.grant_tables.setdefault(d.domid, GrantTable())


# ------------------------------------------------------------------ the granter's side
def write_grant_entry(xen: Xen, d: Domain, ref: int, *, frame: int, domid: int,
                      readonly: bool = False, gtf_type: int = GTF_permit_access) -> Outcome:
    """The granter fills grant entry `ref` (domid, frame, then flags): no hypercall, no
    check; Xen reads the entry when a map uses it. The reading/writing bits Xen set stay
    as they were (the granter may rewrite an entry in use: Xen's active entry keeps the
    mapping)."""
    t = Tracer(f"grant entry {ref} of {d.label}")
    gt = grant_table(xen, d)
    if not 0 <= ref < gt.nr_entries:
        t.event("grant", "fail", f"ref {ref} is beyond {d.label}'s grant table "
                f"({gt.nr_entries} v1 entries in its one frame)", "guest write")
        return t.finish(-14)
    e = gt.entry(ref)
    e.domid, e.frame = domid, frame
    e.flags = (e.flags & (GTF_reading | GTF_writing)) | gtf_type | (
        GTF_readonly if readonly else 0)
    t.event("grant", "pass", f"{d.label} grant ref {ref}: {e.describe()}",
            "guest write (grant_entry_v1)")
    return t.finish(0)


# ------------------------------------------------------------------ PTE helpers
def grant_to_pte_flags(flags: int) -> int:
    """`grant_to_pte_flags`: P|A|D|NX, _PAGE_GNTTAB (debug builds), US for
    GNTMAP_application_map, RW unless GNTMAP_readonly."""
    pte = P | A | D | NX
    if flags & GNTMAP_application_map:
        pte |= US
    if not flags & GNTMAP_readonly:
        pte |= RW
    return pte


def map_guest_l1e(xen: Xen, d: Domain, va: int) -> tuple[int, int] | None:
    """`map_guest_l1e`: the L1 (MFN, index) that maps `va` through vCPU 0's tables."""
    v = d.vcpu(0)
    table = v.guest_table if v is not None else None
    if table is None:
        return None
    abi = d.abi
    if va >> abi.va_bits:
        return None
    for level in abi.walk_levels:
        shift = 12 + 9 * (level - 1)
        e = xen.machine.read_entry(table, (va >> shift) & (abi.slots(level) - 1))
        if not e & P or (level == 2 and e & (1 << 7)):
            return None
        table = entry_mfn(e)
    return table, (va >> 12) & 511


def _locate(xen: Xen, t: Tracer, d: Domain, addr: int, contains_pte: bool, fn: str,
            *, assert_bad: bool = False) -> tuple[int, int] | int:
    """The L1 slot a grant host address names, with `get_page_from_mfn`, `page_lock` and the
    L1 type checks; a GNTST status on failure (or -999: a debug build's ASSERT_UNREACHABLE)."""
    m = xen.machine
    if contains_pte:
        if addr % 8:
            if assert_bad:
                return _unreachable(xen, t, fn, f"misaligned PTE address {addr:#x}")
            t.event("grant_pte", "fail", f"'Misaligned PTE address {addr:x}': it would "
                    "corrupt the adjacent PTEs", fn)
            return GNTST_general_error
        l1, index = addr >> 12, (addr & 0xFFF) // 8
    else:
        if d.abi.pae_top and addr >> 32:
            if assert_bad:
                return _unreachable(xen, t, fn, f"linear address {addr:#x} is beyond 4 GiB")
            t.event("grant_va", "fail", f"linear address {addr:#x} is beyond a 32-bit "
                    "guest's 4 GiB", fn)
            return GNTST_general_error
        found = map_guest_l1e(xen, d, addr)
        if found is None:
            t.event("grant_va", "fail", f"'Could not find L1 PTE for linear address "
                    f"{addr:x}' in {d.label}'s tables", f"{fn} (map_guest_l1e)")
            return GNTST_general_error
        l1, index = found
    if not m.mfn_valid(l1) or m.peek(l1).owner != d.domid:
        t.event("grant_pte", "fail", f"MFN {l1:#x} is not {d.label}'s frame",
                f"{fn} (get_page_from_mfn)", mfn=l1)
        return GNTST_general_error
    pi = m.page(l1)
    if not (pi.validated and pi.type_count):
        t.event("grant_pte", "fail", f"MFN {l1:#x} is not a validated pagetable with a type "
                "reference: page_lock fails", f"{fn} (page_lock)", mfn=l1)
        return GNTST_general_error
    if pi.type != PGT_l1_page_table:
        t.event("grant_pte", "fail", f"MFN {l1:#x} is an L{pi.level}, not an L1", fn,
                mfn=l1)
        return GNTST_general_error
    return l1, index


def _cannot_pin(mfn: int) -> str:
    return c_format(BY_ID["gnttab_cannot_pin"].text, mfn)


def _unreachable(xen: Xen, t: Tracer, fn: str, what: str) -> int:
    if xen.profile.debug_build:
        t.outcome.crash = f"Assertion 'unreachable' failed in {fn}"
        t.event("grant_pte", "fail", f"{what}: ASSERT_UNREACHABLE() in a debug build: Xen "
                "panics", f"{fn} (ASSERT_UNREACHABLE)")
        return -999
    t.event("grant_pte", "fail", f"{what}: refused", fn)
    return GNTST_general_error


def _pte_for(xen: Xen, d: Domain, mfn: int, flags: int) -> int:
    """The grant PTE `create_grant_pv_mapping` writes (`adjust_guest_l1e` applied)."""
    pte = (mfn << 12) | grant_to_pte_flags(flags)
    if xen.profile.debug_build:
        pte |= PAGE_GNTTAB
    return d.abi.adjust_l1e(pte)


def create_grant_pv_mapping(xen: Xen, t: Tracer, d: Domain, addr: int, mfn: int,
                            flags: int) -> int:
    """`create_grant_pv_mapping`: write the grant PTE into `d`'s L1, dropping the references
    of the entry it replaces (`put_page_from_l1e`)."""
    fn = "create_grant_pv_mapping"
    where = _locate(xen, t, d, addr, bool(flags & GNTMAP_contains_pte), fn)
    if isinstance(where, int):
        return where
    l1, index = where
    old = xen.machine.read_entry(l1, index)
    new = _pte_for(xen, d, mfn, flags)
    xen.machine.write_entry(l1, index, new)
    t.event("grant_pte", "pass", f"entry {index} of L1 MFN {l1:#x} = {new:#x}: maps MFN "
            f"{mfn:#x} {'read-only' if flags & GNTMAP_readonly else 'writable'}"
            + (" (bit 62 = _PAGE_GNTTAB, a debug build)" if new & PAGE_GNTTAB else ""),
            f"{fn} (UPDATE_ENTRY)", mfn=l1, index=index, level=1)
    if old & P:
        xen.type_system.put_page_from_l1e(t, old, d)
        t.event("grant_pte", "info", f"the entry it replaced ({old:#x}) released its "
                "references", f"{fn} (put_page_from_l1e)", mfn=l1, index=index, level=1)
    return GNTST_okay


def replace_grant_pv_mapping(xen: Xen, t: Tracer, d: Domain, addr: int, mfn: int,
                             new_addr: int, flags: int) -> int:
    """`replace_grant_pv_mapping`: the PTE at `addr` must still map `mfn` with the grant's
    P and RW (XSA-224/234's checks); it is cleared, or with `new_addr` (unmap_and_replace,
    linear addresses only) replaced by the entry stolen from `new_addr`."""
    fn = "replace_grant_pv_mapping"
    contains_pte = bool(flags & GNTMAP_contains_pte)
    want = grant_to_pte_flags(flags)
    if not d.abi.pae_top:
        want |= G if want & US else _PAGE_GUEST_KERNEL | US
    stolen = 0
    if contains_pte and new_addr:
        t.event("grant_replace", "fail", "unmap_and_replace of a GNTMAP_contains_pte mapping: "
                "replace is not available in this addressing mode (silently)", fn)
        return GNTST_general_error
    if not contains_pte and d.abi.pae_top and new_addr >> 32:
        t.event("grant_replace", "fail", f"new address {new_addr:#x} is beyond 4 GiB", fn)
        return GNTST_general_error
    if new_addr:
        got = steal_linear_address(xen, t, d, new_addr)
        if got is None:
            return GNTST_general_error
        stolen = got
    where = _locate(xen, t, d, addr, contains_pte, fn, assert_bad=True)
    if isinstance(where, int):
        if stolen and where != -999:
            xen.type_system.put_page_from_l1e(t, stolen, d)
        return where
    l1, index = where
    old = xen.machine.read_entry(l1, index)
    if entry_mfn(old) != mfn or (old ^ want) & (P | RW):
        gnt = want | (PAGE_GNTTAB if xen.profile.debug_build else 0)
        msg = c_format(BY_ID["grant_pte_mismatch"].text, old, addr, (mfn << 12) | gnt)
        t.event("grant_replace", "fail", f"'{msg}': "
                f"entry {index} of L1 MFN {l1:#x} should map MFN {mfn:#x} with "
                f"{'P|RW' if want & RW else 'P, no RW'}", fn, mfn=l1, index=index, level=1)
        if stolen:
            xen.type_system.put_page_from_l1e(t, stolen, d)
        return GNTST_general_error
    xen.machine.write_entry(l1, index, stolen)
    t.event("grant_replace", "pass", f"entry {index} of L1 MFN {l1:#x} "
            + (f"now holds the entry taken from {new_addr:#x}" if new_addr else "cleared"),
            f"{fn} (UPDATE_ENTRY)", mfn=l1, index=index, level=1)
    return GNTST_okay


def steal_linear_address(xen: Xen, t: Tracer, d: Domain, va: int) -> int | None:
    """`steal_linear_address`: zap the L1 entry mapping `va` and hand it over (with its
    references) to the caller."""
    fn = "steal_linear_address"
    found = map_guest_l1e(xen, d, va)
    if found is None:
        t.event("grant_replace", "fail", f"'Could not find L1 PTE for linear {va:x}'", fn)
        return None
    l1, index = found
    pi = xen.machine.page(l1)
    if pi.owner != d.domid or not (pi.validated and pi.type_count) or \
            pi.type != PGT_l1_page_table:
        t.event("grant_replace", "fail", f"MFN {l1:#x} is not a live L1 of {d.label}", fn,
                mfn=l1)
        return None
    e = xen.machine.read_entry(l1, index)
    xen.machine.write_entry(l1, index, 0)
    t.event("grant_replace", "info", f"entry {index} of L1 MFN {l1:#x} ({e:#x}) taken from "
            f"{va:#x}", fn, mfn=l1, index=index, level=1)
    return e


# ------------------------------------------------------------------ GNTTABOP_map_grant_ref
def _finish(t: Tracer, status: int) -> Outcome:
    out = t.finish(0)
    if out.crash is not None:
        return out
    out.status = status
    out.status_name = gntst_name(status) if status else None
    return out


def map_grant_ref(xen: Xen, ld: Domain, domid: int, ref: int, flags: int,
                  host_addr: int) -> Outcome:
    """`GNTTABOP_map_grant_ref` with one operation, issued by `ld` for grant `ref` of domain
    `domid`. The hypercall returns 0; `Outcome.status` is the operation's GNTST status and
    `Outcome.allocated` the handle."""
    t = Tracer(f"map_grant_ref(d{domid} ref {ref})")
    t.outcome.counters.hypercalls += 1
    fn = "map_grant_ref"
    readonly = bool(flags & GNTMAP_readonly)
    if not flags & (GNTMAP_host_map | GNTMAP_device_map):
        t.event("gnttab_flags", "fail", f"'Bad flags in grant map op: {flags:x}': neither "
                "GNTMAP_host_map nor GNTMAP_device_map", fn)
        return _finish(t, GNTST_bad_gntref)
    if flags & GNTMAP_device_map:
        t.event("gnttab_flags", "fail", "GNTMAP_device_map is not modelled by pvlab",
                fn)
        return _finish(t, GNTST_general_error)
    rd = xen.domains.get(domid)
    if rd is None:
        t.event("gnttab_domain", "fail", f"'Could not find domain {domid}'", fn)
        return _finish(t, GNTST_bad_domain)
    t.event("xsm", "info", "xsm_grant_mapref (XSM_HOOK): the dummy policy allows it",
            f"{fn} (xsm_grant_mapref)")
    lgt, rgt = grant_table(xen, ld), grant_table(xen, rd)
    got = lgt.get_maptrack_handle()  # given back (to the tail) on failure below
    if got is None:
        t.event("maptrack", "fail", "'Failed to obtain maptrack handle': "
                f"{ld.label} has no free maptrack handle and may not add a maptrack frame "
                f"({lgt.maptrack_limit // MAPTRACK_PER_PAGE} of max_maptrack_frames "
                f"{lgt.max_maptrack_frames})",
                f"{fn} (get_maptrack_handle)")
        return _finish(t, GNTST_no_space)
    handle = got
    if not 0 <= ref < rgt.nr_entries:
        t.event("gnttab_ref", "fail", f"'{c_format('Bad ref %#x for d%d', ref, rd.domid)}': "
                f"{rd.label}'s "
                f"table has {rgt.nr_entries} entries", fn)
        lgt.put_maptrack_handle(handle)
        return _finish(t, GNTST_bad_gntref)
    act = rgt.active.setdefault(ref, ActiveEntry())
    shah = rgt.entry(ref)
    status = GNTST_okay
    took_frame = False
    if act.pin and act.domid != ld.domid:
        msg = c_format(BY_ID["gnttab_in_use"].text, act.domid, ld.domid,
                       act.hstw | act.hstr << 8, 0)
        t.event("gnttab_pin", "fail", f"'{msg}': the grant is in use by d{act.domid}", fn)
        status = GNTST_general_error
    elif not act.pin or (not readonly and not act.hstw):
        status = _set_status_v1(t, shah, act, readonly, ld)
        if status == GNTST_okay and not act.pin:
            status = _get_paged_frame(xen, t, shah.frame, rd)
            if status == GNTST_okay:
                took_frame = True
                act.domid, act.mfn = ld.domid, shah.frame
            else:
                _reduce_status_for_pin(shah, act, readonly)
    if status != GNTST_okay:
        lgt.put_maptrack_handle(handle)
        if not act.pin:
            del rgt.active[ref]
        return _finish(t, status)
    if readonly:
        act.hstr += 1
    else:
        act.hstw += 1
    mfn = act.mfn
    types = xen.type_system
    m = xen.machine
    refcnt = typecnt = 0
    owner = m.owner(mfn) if m.mfn_valid(mfn) else None
    if took_frame:
        refcnt = 1
    elif owner is not None and owner != DOMID_IO and types.get_page(mfn, rd):
        refcnt = 1  # page_get_owner_and_reference
    if owner == rd.domid and refcnt:
        if not readonly:  # gnttab_host_mapping_get_page_type: PV takes the writable type
            rc = types.get_page_type(t, mfn, PGT_writable_page, rd, quiet_conflict=True)
            if rc:
                pi = m.page(mfn)
                t.event("gnttab_pin", "fail", f"'{_cannot_pin(mfn)}': it is "
                        f"{pi.type_name} (type count {pi.type_count}), so it cannot take the "
                        "PGT_writable_page type a writable mapping needs", f"{fn} "
                        "(get_page_type)", mfn=mfn)
                status = GNTST_general_error
            else:
                typecnt = 1
        if status == GNTST_okay:
            status = create_grant_pv_mapping(xen, t, ld, host_addr, mfn, flags)
    else:
        t.event("gnttab_pin", "fail", f"'{_cannot_pin(mfn)}': it is not "
                f"{rd.label}'s any more", fn, mfn=mfn)
        status = GNTST_general_error
    if t.outcome.crash is not None:
        return t.outcome
    if status != GNTST_okay:  # undo_out
        t.event("grant_map", "info", f"undo: the {typecnt} type and {refcnt} general "
                "reference(s) taken on the frame are dropped, the pin is taken back",
                f"{fn} (undo_out)", mfn=mfn)
        for _ in range(typecnt):
            types.put_page_type(t, mfn)
        for _ in range(refcnt):
            types.put_page(mfn)
        if readonly:
            act.hstr -= 1
        else:
            act.hstw -= 1
        _reduce_status_for_pin(shah, act, readonly)
        if not act.pin:
            rgt.active.pop(ref, None)
        lgt.put_maptrack_handle(handle)
        return _finish(t, status)
    lgt.maptrack[handle] = GrantMapping(handle, rd.domid, ref, flags, host_addr, mfn)
    t.outcome.allocated = handle
    t.event("grant_map", "pass", f"{ld.label} maps {rd.label}'s grant {ref} (MFN {mfn:#x}) "
            f"{'read-only' if readonly else 'writable'}: handle {handle}; the frame holds "
            f"{_REFS[readonly]} for it", fn, mfn=mfn)
    return _finish(t, GNTST_okay)


def _set_status_v1(t: Tracer, shah: GrantEntry, act: ActiveEntry, readonly: bool,
                   ld: Domain) -> int:
    """`_set_status_v1`: a first pin checks type and domid; a write pin needs no
    GTF_readonly; Xen sets GTF_reading (and GTF_writing)."""
    fn = "_set_status_v1"
    if not act.pin and ((shah.flags & (GTF_type_mask | GTF_sub_page)) != GTF_permit_access
                        or shah.domid != ld.domid):
        msg = c_format(BY_ID["gnttab_bad_entry"].text, shah.flags, shah.domid, ld.domid)
        t.event("grant_entry", "fail", f"'{msg}': the entry is {shah.describe()}", fn)
        return GNTST_general_error
    new = shah.flags | GTF_reading
    if not readonly:
        if shah.flags & GTF_readonly:
            t.event("grant_entry", "fail", "'Attempt to write-pin a r/o grant entry': "
                    "GTF_readonly is set", fn)
            return GNTST_general_error
        new |= GTF_writing
    shah.flags = new
    t.event("grant_entry", "pass", f"grant entry: {shah.describe()}", fn)
    return GNTST_okay


def _get_paged_frame(xen: Xen, t: Tracer, gfn: int, rd: Domain) -> int:
    """`get_paged_frame`: for a PV granter the frame number is the MFN, and it must be the
    granter's (`get_page_from_gfn` takes a general reference) -- else GNTST_bad_page."""
    if xen.type_system.get_page(gfn, rd):
        return GNTST_okay
    m = xen.machine
    owner = owner_name(m.owner(gfn)) if m.mfn_valid(gfn) else "no one (not a RAM frame)"
    t.event("grant_frame", "fail", f"frame {gfn:#x} of the grant belongs to {owner}, not "
            f"{rd.label}: get_page_from_gfn fails", "get_paged_frame")
    return GNTST_bad_page


def _reduce_status_for_pin(shah: GrantEntry, act: ActiveEntry, readonly: bool) -> None:
    """`reduce_status_for_pin`: after a writable pin goes and none is left -> clear
    GTF_writing; no pins at all -> clear GTF_reading."""
    if not readonly and not act.hstw:
        shah.flags &= ~GTF_writing
    if not act.pin:
        shah.flags &= ~GTF_reading


# ------------------------------------------------------------------ unmap
def unmap_grant_ref(xen: Xen, ld: Domain, handle: int, host_addr: int | None = None, *,
                    new_addr: int = 0, replace: bool = False) -> Outcome:
    """`GNTTABOP_unmap_grant_ref` (or, with `replace`, `GNTTABOP_unmap_and_replace`) of
    one handle: `unmap_common` then `unmap_common_complete`. `host_addr` None: the
    address the map used (what a well-behaved mapper passes)."""
    name = "unmap_and_replace" if replace else "unmap_grant_ref"
    t = Tracer(f"{name}(handle {handle})")
    t.outcome.counters.hypercalls += 1
    fn = "unmap_common"
    lgt = grant_table(xen, ld)
    if handle >= lgt.maptrack_limit:
        t.event("gnttab_handle", "fail", f"'{c_format('Bad d%d handle %#x', ld.domid, handle)}'"
                ": beyond the "
                f"maptrack ({lgt.maptrack_limit} handles)", fn)
        return _finish(t, GNTST_bad_handle)
    mt = lgt.maptrack.get(handle)
    if mt is None or not mt.flags & (GNTMAP_host_map | GNTMAP_device_map):
        t.event("gnttab_handle", "fail",
                f"'{c_format('Zero flags for d%d handle %#x', ld.domid, handle)}': "
                "no mapping uses it", fn)
        return _finish(t, GNTST_bad_handle)
    rd = xen.domains.get(mt.domid)
    if rd is None:
        t.event("gnttab_domain", "fail", f"'Could not find domain {mt.domid}': the grant was "
                f"implicitly unmapped; domain_crash({ld.label}) (naughty...)", fn)
        return _finish(t, GNTST_general_error)
    rgt = grant_table(xen, rd)
    act = rgt.active.get(mt.ref, ActiveEntry())
    addr = mt.host_addr if host_addr is None else host_addr
    flags = mt.flags
    done = 0
    if addr and flags & GNTMAP_host_map:
        status = replace_grant_pv_mapping(xen, t, ld, addr, act.mfn, new_addr, flags)
        if t.outcome.crash is not None:
            return t.outcome
        if status != GNTST_okay:
            t.event("grant_unmap", "fail", f"nothing is released: handle {handle} and the "
                    "grant's pin stay (the unmap is all-or-nothing)", fn)
            return _finish(t, status)
        mt.flags &= ~GNTMAP_host_map
        done = GNTMAP_host_map | (flags & GNTMAP_readonly)
    elif not addr:
        t.event("grant_unmap", "info", "host_addr 0: the host mapping is left alone", fn)
    if not mt.flags & (GNTMAP_host_map | GNTMAP_device_map):
        del lgt.maptrack[handle]
        lgt.put_maptrack_handle(handle)
    if done & GNTMAP_host_map:  # unmap_common_complete
        types = xen.type_system
        mfn = act.mfn
        owner = xen.machine.owner(mfn) if xen.machine.mfn_valid(mfn) else None
        if owner is not None and owner != DOMID_IO:
            if not done & GNTMAP_readonly:
                types.put_page_type(t, mfn)
            types.put_page(mfn)
        if done & GNTMAP_readonly:
            act.hstr -= 1
        else:
            act.hstw -= 1
        _reduce_status_for_pin(rgt.entry(mt.ref), act, bool(done & GNTMAP_readonly))
        if not act.pin:
            rgt.active.pop(mt.ref, None)
        gone = "" if mt.domid in xen.domains else f"; d{mt.domid} had no frame left and is gone"
        t.event("grant_unmap", "pass", f"handle {handle} unmapped: MFN {mfn:#x} released "
                f"{_REFS[bool(done & GNTMAP_readonly)]} of the mapping{gone}",
                "unmap_common_complete", mfn=mfn)
    return _finish(t, GNTST_okay)


def release_mappings(xen: Xen, t: Tracer, d: Domain) -> None:
    """`gnttab_release_mappings` for a dying mapper: every maptrack entry unpins its active
    entry; for a PV domain the page references go with its PTEs (the L1s' demotion), so
    nothing else is put here (`gnttab_release_host_mappings` is false)."""
    gt = xen.grant_tables.get(d.domid)
    if gt is None:
        return
    for handle, mt in sorted(gt.maptrack.items(), reverse=True):
        rd = xen.domains.get(mt.domid)
        if rd is not None:
            rgt = grant_table(xen, rd)
            act = rgt.active.get(mt.ref)
            if act is not None:
                if mt.flags & GNTMAP_readonly:
                    act.hstr -= 1
                else:
                    act.hstw -= 1
                _reduce_status_for_pin(rgt.entry(mt.ref), act,
                                       bool(mt.flags & GNTMAP_readonly))
                if not act.pin:
                    rgt.active.pop(mt.ref, None)
        t.event("gnttab_release", "info", f"grant release: handle {handle} (d{mt.domid} ref "
                f"{mt.ref}) unpinned; its PTE's references go with {d.label}'s L1",
                "gnttab_release_mappings")
        del gt.maptrack[handle]


def grant_mapped_slots(xen: Xen, d: Domain) -> set[tuple[int, int]]:
    """The (L1 MFN, index) slots holding `d`'s live grant host mappings (GNTMAP_contains_pte
    addresses and linear addresses resolved), for the invariant audit."""
    gt = xen.grant_tables.get(d.domid)
    out: set[tuple[int, int]] = set()
    if gt is None:
        return out
    for mt in gt.maptrack.values():
        if not mt.flags & GNTMAP_host_map:
            continue
        if mt.flags & GNTMAP_contains_pte:
            out.add((mt.host_addr >> 12, (mt.host_addr & 0xFFF) // 8))
        else:
            found = map_guest_l1e(xen, d, mt.host_addr)
            if found is not None:
                out.add(found)
    return out


__all__ = ["GNTMAP_application_map", "GNTMAP_contains_pte", "GNTMAP_device_map",
           "GNTMAP_host_map", "GNTMAP_readonly", "GTF_TYPES", "GTF_permit_access",
           "GTF_readonly", "GTF_reading", "GTF_writing", "GrantEntry", "GrantMapping",
           "GrantTable", "grant_mapped_slots", "grant_table", "map_grant_ref",
           "release_mappings", "unmap_grant_ref", "write_grant_entry"]
