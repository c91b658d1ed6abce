# SPDX-License-Identifier: MIT
"""Xen's page type system: type references, promotion and demotion (`xen/arch/x86/mm.c`).

The first type reference to a pagetable validates ("promotes") it, recursively taking
references on everything its entries name; dropping the last type reference demotes it
and releases them. Failures unwind exactly as Xen does, including Xen's documented
exceptions (the slot-3 reference leaked by a failed "PAE L3 3rd slot is shared" check).

Preemption and continuations are not modelled: a promotion runs to its end, which is
what a guest observes (`PGT_partial` never stays set). After a failure at entry i > 0
of an L2..L4, the frame keeps its type field at count 0, as Xen's
`put_old_guest_table` leaves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvlab.trace import UNMODELLED, Errno, Tracer
from pvlab.units import MFN_4GIB
from pvlab.x86.flags import RW, P, entry_mfn
from pvlab.xen import bulk, l1tf
from pvlab.xen.domain import Domain, VMASST_TYPE_pae_extended_cr3
from pvlab.xen.page_info import (
    DOMID_IO,
    LEVEL_TYPE,
    TYPE_NAMES,
    PGT_count_mask,
    PGT_l2_page_table,
    PGT_l4_page_table,
    PGT_pae_xen_l2,
    PGT_partial,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
    owner_name,
    type_level,
)
from pvlab.xen.rules import COMPAT_L2_FIRST_XEN_SLOT, RuleSet, flag_word_names, ruleset

if TYPE_CHECKING:
    from pvlab.xen.hypervisor import Xen
    from pvlab.xen.profiles import Profile

#: `_PAGE_GNTTAB` (PTE bit 62): a debug build's mark on the PTEs of grant mappings.
_PAGE_GNTTAB_PTE = 1 << 62
#: `PADDR_MASK >> PAGE_SHIFT`: the all-ones 40-bit frame number (INVALID_MFN in an entry).
INVALID_MFN = (1 << 40) - 1
PWT, PCD, PAT_4K = 1 << 3, 1 << 4, 1 << 7
#: Check id of the trace event that reports a release build's leaked partial type reference.
PARTIAL_LEAK_CHECK = "old_guest_table_leak"
ENTRIES = 512


def type_name(ptype: int) -> str:
    """A page type's name, with ``+pae_xen_l2`` when that bit is set."""
    name = TYPE_NAMES[ptype & PGT_type_mask]
    return name + ("+pae_xen_l2" if ptype & PGT_pae_xen_l2 else "")


def describe_type(pi_type_info: int) -> str:
    count = pi_type_info & PGT_count_mask
    return f"{type_name(pi_type_info)} (type count {count})"


class TypeSystem:
    """Type and general references over one machine, as `mm.c` keeps them."""

    def __init__(self, xen: Xen) -> None:
        self.xen = xen
        self.m = xen.machine
        #: `current->arch.old_guest_table`: the table a failed promotion left partially
        #: validated, cleaned up (`put_old_guest_table`) when the outermost type
        #: acquisition returns, as Xen's hypercall continuation does before the guest runs.
        self.old_guest_table: int | None = None
        #: partially validated tables: MFN -> (level, validated slots, the child in the
        #: failing slot whose cleanup was transferred to this table, if any)
        self._partial: dict[int, tuple[int, list[int], int | None]] = {}
        #: tables whose partial type reference a release build leaked (never cleaned up):
        #: MFN -> (level, the validated slots whose references it keeps)
        self.leaked_partial: dict[int, tuple[int, list[int]]] = {}
        self._type_depth = 0

    @property
    def profile(self) -> Profile:
        return self.xen.profile

    # ------------------------------------------------------------------ helpers
    def fail(self, t: Tracer, rules: RuleSet, rule_id: str, detail: str, *,
             mfn: int | None = None, index: int | None = None, level: int | None = None,
             errno: Errno | None = None) -> int:
        rule = rules[rule_id]
        t.event(rule_id, "fail", detail, rule.xen_function, mfn=mfn, index=index,
                level=level if level is not None else (rule.level or None))
        e = errno or rule.errno or Errno.EINVAL
        return -int(e)

    # ------------------------------------------------------- general references
    def get_page(self, mfn: int, d: Domain) -> bool:
        """`get_page(pg, d)`: a general reference, only if `d` owns an allocated frame."""
        if not self.m.mfn_valid(mfn):
            return False
        # Only reads until the owner matches: a refused frame (dom_xen, free, foreign) must
        # not gain a page_info record (Xen's frame table exists already; ours is lazy).
        pi = self.m.peek(mfn)
        if pi.owner != d.domid or pi.count == 0:
            return False
        pi.count_info += 1
        return True

    def put_page(self, mfn: int) -> None:
        pi = self.m.page(mfn)
        assert pi.count > 0, f"put_page underflow on {mfn:#x}"
        pi.count_info -= 1
        if pi.count == 0:  # only a dying domain's frame loses its allocation reference
            self.free_domheap_page(mfn)

    def free_domheap_page(self, mfn: int) -> None:
        """`free_domheap_pages` on the last put of a frame whose allocation reference
        `relinquish_memory` dropped; the dying domain's last frame ends it (`put_domain` ->
        `domain_destroy`)."""
        owner = self.m.owner(mfn)
        self.m.free(mfn)
        d = self.xen.domains.get(owner) if owner is not None else None
        if d is not None and d.is_dying and not self.m.allocated(d.domid):
            del self.xen.domains[d.domid]
            self.xen.grant_tables.pop(d.domid, None)  # grant_table_destroy

    # ---------------------------------------------------------- type references
    def get_page_type(self, t: Tracer, mfn: int, ptype: int, d: Domain, *,
                      quiet_conflict: bool = False) -> int:
        """`_get_page_type`: take one type reference, validating on the first one."""
        pi = self.m.page(mfn)
        rules = ruleset(d)
        t.outcome.counters.type_acquisitions += 1
        x = pi.type_info
        count = x & PGT_count_mask
        want = ptype & (PGT_type_mask | PGT_pae_xen_l2)
        if count == PGT_count_mask:
            return self.fail(t, rules, "type_conflict", f"type count overflow on MFN {mfn:#x}",
                             mfn=mfn)
        if count == 0:
            if (x & (PGT_type_mask | PGT_pae_xen_l2)) != want:
                # A type change: nothing is remembered from the old type.
                x = (x & ~(PGT_type_mask | PGT_pae_xen_l2 | PGT_validated | PGT_partial)) | want
        elif (x & (PGT_type_mask | PGT_pae_xen_l2)) != want:
            have = type_level(x)
            linear_pair = have >= 2 and type_level(want) == have - 1 and not want & PGT_pae_xen_l2
            msg = (f"MFN {mfn:#x} is {describe_type(x)}; it cannot also be taken as "
                   f"{type_name(want)}")
            if quiet_conflict or (linear_pair and not x & PGT_pae_xen_l2):
                t.event("type_conflict", "info", msg, "_get_page_type", mfn=mfn)
                return -int(Errno.EINVAL)
            return self.fail(t, rules, "type_conflict", msg, mfn=mfn)
        pi.type_info = x + 1
        if pi.type_info & PGT_validated:
            return 0
        level = type_level(want)
        if level == 0:  # writable, seg_desc, shared: nothing to validate
            pi.type_info |= PGT_validated
            return 0
        t.outcome.counters.validations += 1
        t.event("promote", "info", f"promote MFN {mfn:#x} to L{level} "
                f"({'first type reference' if count == 0 else 'validation'})",
                f"promote_l{level}_table", mfn=mfn, level=level)
        self._type_depth += 1
        try:
            with t.deeper():
                rc, stopped_at = self._promote(t, mfn, level, want, d)
        finally:
            self._type_depth -= 1
        if rc == 0:
            pi.type_info |= PGT_validated
            t.event("promote", "pass", f"L{level} MFN {mfn:#x} validated",
                    f"promote_l{level}_table", mfn=mfn, level=level)
            return 0
        # validate_page failed: a failure part-way (L2..L4, entry i > 0) left the table as
        # old_guest_table, partially validated (PGT_partial, a light general reference);
        # put_old_guest_table cleans it up and the type field stays.
        if mfn == self.old_guest_table:
            pi.type_info = (pi.type_info & (PGT_type_mask | PGT_pae_xen_l2)) | PGT_partial | 1
            pi.count_info += 1  # get_page_light
        else:
            pi.type_info = (pi.type_info & PGT_type_mask) if (level >= 2 and stopped_at > 0) \
                else 0
        t.event("promote", "fail", f"L{level} MFN {mfn:#x} not validated: {Errno(-rc).name}",
                f"promote_l{level}_table", mfn=mfn, level=level)
        if self._type_depth == 0:
            self.put_old_guest_table(t)
        return rc

    # ------------------------------------------------- partial validation (old_guest_table)
    def _partial_failure(self, t: Tracer, mfn: int, level: int, i: int, done: list[int],
                         child: int | None) -> None:
        """The failure path of `promote_l{2,3,4}_table` at slot i > 0: the table becomes
        `old_guest_table`. An L3/L4 first checks that a table already there is the child in
        the failing slot (its cleanup is then transferred); otherwise Xen's comment says "it's
        safer to leak a type ref on production builds", and a debug build hits
        ASSERT_UNREACHABLE(): the host panics."""
        old = self.old_guest_table
        fn = f"promote_l{level}_table"
        transferred = None
        if old is not None and level == 3 and not self.profile.l3_partial_child_cleanup:
            t.event(PARTIAL_LEAK_CHECK, "info", f"profile {self.profile.name}: "
                    f"promote_l3_table sets old_guest_table to L3 MFN {mfn:#x} without "
                    f"looking at it: MFN {old:#x}, partially validated below slot {i:#x}, "
                    "stays PGT_partial with its type reference and nobody to clean it up "
                    "(fixed by XSA-299)", "alloc_l3_table (before XSA-299)", mfn=old)
            old_level, old_done, _ = self._partial.pop(old, (0, [], None))
            self.leaked_partial[old] = (old_level, old_done)
        elif old is not None and level >= 3:
            if old == child:
                transferred = old
            else:
                what = (f"old_guest_table holds MFN {old:#x} (left partially validated by a "
                        f"failure below), not MFN {child if child is None else hex(child)} of "
                        f"slot {i:#x}")
                if self.profile.debug_build:
                    t.outcome.crash = f"Assertion 'unreachable' failed in {fn}"
                    t.event("old_guest_table", "fail", f"{what}: ASSERT_UNREACHABLE() in a "
                            "debug build: Xen panics ('Assertion 'unreachable' failed')",
                            f"{fn} (ASSERT_UNREACHABLE)", mfn=mfn, index=i, level=level)
                else:
                    t.event(PARTIAL_LEAK_CHECK, "info", f"{what}: a release build overwrites "
                            f"it and leaks MFN {old:#x}'s partial type reference (and what "
                            "its validated entries hold)", f"{fn} (production build)",
                            mfn=old)
                old_level, old_done, _ = self._partial.pop(old, (0, [], None))
                self.leaked_partial[old] = (old_level, old_done)
        self._partial[mfn] = (level, done, transferred)
        self.old_guest_table = mfn

    def put_old_guest_table(self, t: Tracer | None) -> None:
        """`put_old_guest_table`: finish the demotion of a partially validated table."""
        mfn = self.old_guest_table
        self.old_guest_table = None
        while mfn is not None and mfn in self._partial:
            level, done, child = self._partial.pop(mfn)
            for j in done:
                self.put_page_from_lne(t, level, self.m.read_entry(mfn, j), mfn)
            pi = self.m.page(mfn)
            pi.type_info &= PGT_type_mask
            self.put_page(mfn)  # the light reference validate_page took
            mfn = child

    def put_page_type(self, t: Tracer | None, mfn: int) -> None:
        """`_put_page_type`: drop one type reference; the last one demotes a pagetable."""
        pi = self.m.page(mfn)
        assert pi.type_count > 0, f"put_page_type underflow on {mfn:#x}"
        pi.type_info -= 1
        if pi.type_count == 0 and pi.level and pi.type_info & PGT_validated:
            pi.type_info &= ~(PGT_validated | PGT_partial)
            self._demote(t, mfn, pi.level)
            pi.type_info &= ~PGT_pae_xen_l2

    def get_page_and_type(self, t: Tracer, mfn: int, d: Domain, ptype: int, *,
                          index: int | None = None, table: int | None = None,
                          quiet_conflict: bool = False) -> int:
        if not self.get_page(mfn, d):
            owner = owner_name(self.m.owner(mfn)) if self.m.mfn_valid(mfn) else "no one"
            where = f" (entry {index} of MFN {table:#x})" if table is not None else ""
            return self.fail(t, ruleset(d), "not_owned",
                             f"MFN {mfn:#x}{where} belongs to {owner}, not {d.label}",
                             mfn=table if table is not None else mfn, index=index)
        rc = self.get_page_type(t, mfn, ptype, d, quiet_conflict=quiet_conflict)
        if rc:
            self.put_page(mfn)
        return rc

    def put_page_and_type(self, t: Tracer | None, mfn: int) -> None:
        self.put_page_type(t, mfn)
        self.put_page(mfn)

    # --------------------------------------------------------------- promotion
    def _promote(self, t: Tracer, mfn: int, level: int, ptype: int, d: Domain) -> tuple[int, int]:
        if level == 1:
            return self.promote_l1_table(t, mfn, d)
        if level == 2:
            return self.promote_l2_table(t, mfn, d, ptype)
        if level == 3:
            return self.promote_l3_table(t, mfn, d)
        return self.promote_l4_table(t, mfn, d)

    def guest_slots(self, level: int, ptype: int, d: Domain) -> range | list[int]:
        """The slots Xen validates (`is_guest_l2_slot`, `is_guest_l4_slot`): `d`'s ABI knows."""
        return d.abi.guest_slots(level, pae_xen_l2=bool(ptype & PGT_pae_xen_l2))

    # L1 ------------------------------------------------------------------------
    def promote_l1_table(self, t: Tracer, mfn: int, d: Domain) -> tuple[int, int]:
        if bulk.active() and not l1tf.active(self.xen, d):  # numpy fast path; the loop
            return bulk.promote_l1_table(self, t, mfn, d)  # below is the reference
        done: list[int] = []
        for i, e in list(self.m.entries(mfn)):
            if not e & P:
                if e and l1tf.check(self.xen, t, d, 1, e, table=mfn, index=i):
                    for j in done:  # the domain crashed: -EINTR, what was taken is put
                        self.put_page_from_l1e(t, self.m.read_entry(mfn, j), d)
                    return -int(Errno.EINTR), 0
                continue
            t.outcome.counters.entries_checked += 1
            rc = self.get_page_from_l1e(t, e, d, d, table=mfn, index=i)
            if rc:
                t.event("promote", "fail", f"failure {Errno(-rc).name} in promote_l1_table: "
                        f"slot {i:#x}", "promote_l1_table", mfn=mfn, index=i, level=1)
                for j in done:
                    self.put_page_from_l1e(t, self.m.read_entry(mfn, j), d)
                return rc, 0  # L1 promotion is never partial
            self.m.write_entry(mfn, i, d.abi.adjust_l1e(e ^ self.l1e_mmio_flip(t, e, d)))
            done.append(i)
        return 0, 0

    def l1e_mmio_flip(self, t: Tracer, e: int, d: Domain) -> int:
        """The flags `get_page_from_l1e` returns for an I/O frame (`!mfn_valid` or dom_io)
        mapped with permission, which the caller XORs into the entry (`l1e_flip_flags`):
        "MMIO pages must not be mapped cachable unless requested so" (mmio_relax off, the
        frame not in mmio_ro_ranges): WB becomes UC (PWT|PCD added), WT/WP become UC."""
        target = entry_mfn(e)
        if not e & P or (self.m.mfn_valid(target) and self.m.owner(target) != DOMID_IO):
            return 0
        attrs = e & (PWT | PCD | PAT_4K)
        if attrs == 0:
            flip = PWT | PCD
        elif attrs in (PWT, PWT | PAT_4K):
            flip = PCD | (attrs & PAT_4K)
        else:
            return 0
        t.event("mmio_cache", "info", f"I/O frame {target:#x} mapped uncachable: "
                f"{flag_word_names(flip, 1)} flipped in the entry", "get_page_from_l1e",
                level=1)
        return flip

    def get_page_from_l1e(self, t: Tracer, e: int, l1e_owner: Domain, pg_owner: Domain, *,
                          table: int, index: int) -> int:
        rules = ruleset(l1e_owner)
        bad = rules.bad_flags(1, e, l1e_owner, self.profile)
        if bad:
            return self.fail(t, rules, "l1_flags",
                             f"L1 entry {index} of MFN {table:#x} sets {flag_word_names(bad, 1)}, "
                             "which an L1 entry of this domain may not", mfn=table, index=index,
                             level=1)
        target = entry_mfn(e)
        owner = self.m.owner(target)
        if target == INVALID_MFN:
            return self.fail(t, rules, "l1_invalid_mfn",
                             f"L1 entry {index} of MFN {table:#x} names the all-ones MFN "
                             f"{target:#x} (INVALID_MFN), which no domain may map",
                             mfn=table, index=index, level=1)
        if not self.m.mfn_valid(target) or owner == DOMID_IO:
            if pg_owner.domid == DOMID_IO:  # "DOMID_IO reverts to caller for privilege checks"
                pg_owner = l1e_owner
            if not pg_owner.privileged:
                return self.fail(t, rules, "l1_mmio",
                                 f"L1 entry {index} of MFN {table:#x} maps MMIO/dom_io frame "
                                 f"{target:#x} without I/O memory permission",
                                 mfn=table, index=index, level=1)
            return 0
        if owner != pg_owner.domid and pg_owner is not l1e_owner and pg_owner.privileged \
                and owner is not None and owner in self.xen.domains:
            # xsm_priv_mapping: a privileged page owner passes its right on to the real one
            pg_owner = self.xen.domains[owner]
        if owner != pg_owner.domid or not self.get_page(target, pg_owner):
            return self.fail(t, rules, "l1_foreign",
                             f"L1 entry {index} of MFN {table:#x} maps MFN {target:#x}, owned by "
                             f"{owner_name(owner)}, not {pg_owner.label}",
                             mfn=table, index=index, level=1)
        if e & RW:
            rc = self.get_page_type(t, target, PGT_writable_page, pg_owner, quiet_conflict=True)
            if rc:
                self.put_page(target)
                pi = self.m.page(target)
                return self.fail(t, rules, "l1_writable_pagetable",
                                 f"L1 entry {index} of MFN {table:#x} maps MFN {target:#x} "
                                 f"writable, but it is {describe_type(pi.type_info)}",
                                 mfn=table, index=index, level=1)
        return 0

    def put_page_from_l1e(self, t: Tracer | None, e: int, d: Domain) -> None:
        if not e & P:
            return
        target = entry_mfn(e)
        if not self.m.mfn_valid(target) or self.m.owner(target) == DOMID_IO:
            return
        if e & _PAGE_GNTTAB_PTE and self.profile.debug_build and not d.is_dying \
                and t is not None:
            t.event("grant_implicit_unmap", "info", f"'Attempt to implicitly unmap "
                    f"{d.label}'s grant PTE {e:#x}': #GP injected into {d.label}, and the "
                    "references the grant mapping holds are dropped here (its handle can no "
                    "longer unmap it)",
                    "put_page_from_l1e (_PAGE_GNTTAB)", mfn=target)
        if e & RW:
            self.put_page_and_type(t, target)
        else:
            self.put_page(target)

    # L2..L4 -------------------------------------------------------------------
    def _validate_entries(self, t: Tracer, mfn: int, level: int, d: Domain,
                          slots: range | list[int], adjust: int) -> tuple[int, int]:
        """The loop of `promote_l{2,3,4}_table`: take each present guest entry's references,
        adjust the entry, and on the first failure release the entries validated so far.
        Returns (rc, the failing slot)."""
        if level == 2 and bulk.active() and not l1tf.active(self.xen, d):  # numpy fast path;
            batched = bulk.promote_l2_entries(self, t, mfn, d, slots, adjust)
            if batched is not None:
                return batched
        guest = set(slots)
        done: list[int] = []
        for i, e in list(self.m.entries(mfn)):
            if i not in guest:
                continue
            if not e & P:
                if e and l1tf.check(self.xen, t, d, level, e, table=mfn, index=i):
                    for j in done:  # the domain crashed; what was taken is put back
                        self.put_page_from_lne(t, level, self.m.read_entry(mfn, j), mfn)
                    return -int(Errno.EINTR), i
                continue
            t.outcome.counters.entries_checked += 1
            rc = self.get_page_from_lne(t, level, e, mfn, i, d)
            if rc:
                t.event("promote", "fail", f"failure {Errno(-rc).name} in "
                        f"promote_l{level}_table: slot {i:#x}", f"promote_l{level}_table",
                        mfn=mfn, index=i, level=level)
                if i > 0 and not (level == 3 and d.abi.l3_promotion == "compat"):
                    self._partial_failure(t, mfn, level, i, done, entry_mfn(e))
                    return rc, i
                for j in done:
                    self.put_page_from_lne(t, level, self.m.read_entry(mfn, j), mfn)
                return rc, i
            if adjust:
                self.m.write_entry(mfn, i, e | adjust)
            done.append(i)
        return 0, 0

    def promote_l2_table(self, t: Tracer, mfn: int, d: Domain, ptype: int) -> tuple[int, int]:
        # adjust_guest_l2e: 64-bit guests' L2 entries get US (the kernel runs in ring 3).
        rc, i = self._validate_entries(t, mfn, 2, d, self.guest_slots(2, ptype, d),
                                       d.abi.entry_adjust[2])
        if rc:
            return rc, i
        if ptype & PGT_pae_xen_l2:
            self.xen.init_xen_pae_l2_slots(mfn)
            t.event("pae_xen_l2_slots", "info",
                    f"Xen writes its compat M2P mappings into slots "
                    f"{COMPAT_L2_FIRST_XEN_SLOT}-511 of MFN {mfn:#x}",
                    "init_xen_pae_l2_slots", mfn=mfn, level=2)
        return 0, 0

    # L3 ------------------------------------------------------------------------
    def pae_l3_check(self, t: Tracer, mfn: int, d: Domain) -> int:
        """The PAE-extended-CR3 rule at the top of `promote_l3_table` (Xen 4.19+)."""
        p = self.profile
        if mfn < MFN_4GIB or not d.abi.pae_l3_check_applies(p):
            return 0
        assist = bool(d.vm_assist >> VMASST_TYPE_pae_extended_cr3 & 1)
        v0 = d.vcpu(0)
        v0_init = bool(v0 and v0.is_initialised)
        where = f"L3 at MFN {mfn:#x} is at or above 4 GiB"
        if not p.pae_l3_below_4g_check:
            why = f"profile {p.name} has no PAE-extended-CR3 check"
        elif assist:
            why = "the guest enabled pae_extended_cr3"
        elif p.pae_l3_check_tools_slack and not v0_init:
            why = ("vCPU 0 " + ("does not exist yet" if v0 is None else "is not initialised")
                   + ": the toolstack's slack")
        else:
            state = "initialised" if v0_init else "not initialised (no slack in this profile)"
            return self.fail(
                t, ruleset(d), "pae_l3_below_4g",
                f"{where} and pae_extended_cr3 is off, vCPU 0 is {state}: "
                f"'PAE pgd must be below 4GB ({mfn:#x} >= 0x100000)'",
                mfn=mfn, level=3, errno=p.pae_l3_check_errno)
        if d.abi.pae_top:
            t.event("pae_l3_below_4g", "pass", f"{where}, allowed: {why}", "promote_l3_table",
                    mfn=mfn, level=3)
        return 0

    def promote_l3_table(self, t: Tracer, mfn: int, d: Domain) -> tuple[int, int]:
        rc = self.pae_l3_check(t, mfn, d)
        if rc:
            return rc, 0
        if d.abi.l3_promotion == "native":  # adjust_guest_l3e
            return self._validate_entries(t, mfn, 3, d, range(ENTRIES), d.abi.entry_adjust[3])
        return self._promote_compat_l3(t, mfn, d)

    def _promote_compat_l3(self, t: Tracer, mfn: int, d: Domain) -> tuple[int, int]:
        """A compat L3: clear entries 4-511, validate slots 0-2, then slot 3's PAE Xen L2."""
        self._clear_compat_l3_high_slots(t, mfn)
        adjust = d.abi.entry_adjust[3]  # adjust_guest_l3e (compat)
        done: list[int] = []

        def unwind() -> None:
            for j in done:
                e = self.m.read_entry(mfn, j)
                self.put_page_from_lne(t, 3, e, mfn)
                self.m.write_entry(mfn, j, d.abi.unadjust_l3e(e))

        for i in range(3):
            e = self.m.read_entry(mfn, i)
            if not e & P:
                if e and l1tf.check(self.xen, t, d, 3, e, table=mfn, index=i):
                    unwind()
                    return -int(Errno.EINTR), i
                continue
            t.outcome.counters.entries_checked += 1
            rc = self.get_page_from_lne(t, 3, e, mfn, i, d)
            if rc:
                t.event("promote", "fail", f"failure {Errno(-rc).name} in promote_l3_table: "
                        f"slot {i:#x}", "promote_l3_table", mfn=mfn, index=i, level=3)
                unwind()
                return rc, i
            self.m.write_entry(mfn, i, e | adjust)
            done.append(i)
        rc = self._validate_compat_l3_slot3(t, mfn, d)
        if rc:
            unwind()
            return rc, 3
        return 0, 0

    def _clear_compat_l3_high_slots(self, t: Tracer, mfn: int) -> None:
        """The guest writes 4 entries, but the MMU walks the whole page in long mode."""
        cleared = [i for i, _ in self.m.entries(mfn) if i >= 4]
        for i in cleared:
            self.m.write_entry(mfn, i, 0)
        if cleared:
            t.event("pv32_l3_high_slots", "info",
                    f"entries 4-511 of MFN {mfn:#x} cleared ({len(cleared)} were non-zero)",
                    "promote_l3_table", mfn=mfn, level=3)

    def _validate_compat_l3_slot3(self, t: Tracer, mfn: int, d: Domain) -> int:
        """Slot 3 of a compat L3: present, allowed flags, and an L2 that becomes the
        domain's PAE Xen L2 (`pae_xen_mappings_check`). On success the entry is adjusted."""
        rules = ruleset(d)
        e = self.m.read_entry(mfn, 3)
        t.outcome.counters.entries_checked += 1
        if not e & P:
            return self.fail(t, rules, "pv32_l3_slot3",
                             f"slot 3 of L3 MFN {mfn:#x} is not present", mfn=mfn, index=3)
        bad = rules.bad_flags(3, e, d, self.profile)
        if bad:
            return self.fail(t, rules, "l3_flags", f"L3 entry 3 of MFN {mfn:#x} sets "
                             f"{flag_word_names(bad, 3)}", mfn=mfn, index=3)
        l2 = entry_mfn(e)
        with t.deeper():
            rc = self.get_page_and_type(t, l2, d, PGT_l2_page_table | PGT_pae_xen_l2,
                                        index=3, table=mfn)
        if rc:
            return rc
        if self.m.page(l2).type_count != 1:
            rc = self.fail(t, rules, "pv32_l3_slot3_shared",
                           f"'PAE L3 3rd slot is shared': L2 MFN {l2:#x} in slot 3 of "
                           f"MFN {mfn:#x} is already in use "
                           f"(type count {self.m.page(l2).type_count - 1})",
                           mfn=mfn, index=3)
            if self.profile.pae_l3_shared_leak:
                t.event("pv32_l3_slot3_shared", "info",
                        f"Xen 4.14+ quirk: the type and general reference just taken "
                        f"on MFN {l2:#x} is never dropped (leaked)",
                        "promote_l3_table (nr_validated_ptes stays 3)", mfn=l2)
            else:
                self.put_page_and_type(t, l2)
            return rc
        self.m.write_entry(mfn, 3, e | d.abi.entry_adjust[3])
        return 0

    # L4 ------------------------------------------------------------------------
    def promote_l4_table(self, t: Tracer, mfn: int, d: Domain) -> tuple[int, int]:
        rc, i = self._validate_entries(t, mfn, 4, d, self.guest_slots(4, PGT_l4_page_table, d),
                                       d.abi.entry_adjust[4])  # adjust_guest_l4e: A|US
        if rc:
            return rc, i
        self.xen.init_xen_l4_slots(mfn, d)
        t.event("l4_xen_slots", "info", f"Xen writes its slots 256-271 of MFN {mfn:#x} "
                "(258: linear map of this L4)", "init_xen_l4_slots", mfn=mfn, level=4)
        return 0, 0

    # L2..L4 entries --------------------------------------------------------------
    def get_page_from_lne(self, t: Tracer, level: int, e: int, table: int, index: int,
                          d: Domain) -> int:
        """`get_page_from_l{2,3,4}e`: flags, then the next level's type, else linear."""
        rules = ruleset(d)
        bad = rules.bad_flags(level, e, d, self.profile)
        if bad:
            names = flag_word_names(bad, level)
            extra = " (PV guests cannot use superpages)" if bad & 0x80 else ""
            if bad & 0x80 and self.xen.settings.cmdline.allowsuperpage:
                extra += ("; allowsuperpage on Xen's command line is ignored: PV superpages "
                          "were removed in 4.10 (commit 56fff3e5e9)")
            return self.fail(t, rules, f"l{level}_flags",
                             f"L{level} entry {index} of MFN {table:#x} sets {names}{extra}",
                             mfn=table, index=index, level=level)
        if level == 2 and e & 0x80:  # PSE passed the mask: before XSA-148
            if self.xen.settings.allow_superpage:
                t.outcome.fate = UNMODELLED
                t.event("l2_superpage", "fail", f"L2 entry {index} of MFN {table:#x} is a "
                        "superpage and Xen booted with allowsuperpage: get_superpage "
                        "(superpage type counting, MMUEXT_MARK_SUPER) is not modelled by "
                        "pvlab", "get_page_from_l2e (get_superpage)", mfn=table, index=index,
                        level=2)
                return -int(Errno.EOPNOTSUPP)
            return self.fail(t, rules, "l2_superpage", f"L2 entry {index} of MFN {table:#x} "
                             "sets PSE: 'Attempt to map superpage without allowsuperpage "
                             "flag in hypervisor'", mfn=table, index=index, level=2)
        target = entry_mfn(e)
        with t.deeper():
            rc = self.get_page_and_type(t, target, d, LEVEL_TYPE[level - 1], index=index,
                                        table=table)
        if rc != -int(Errno.EINVAL):
            return rc
        if level == 3 and not d.abi.linear_l3_allowed(self.profile):
            if self.m.owner(target) == d.domid and self.m.page(target).level == 3:
                return self.fail(t, rules, "pv32_no_linear_l3",
                                 f"L3 entry {index} of MFN {table:#x} points at L3 MFN "
                                 f"{target:#x}: no linear L3 for 32-bit PV guests",
                                 mfn=table, index=index, level=3)
            return rc
        return self.get_linear_pagetable(t, level, e, table, index, d, rc)

    def get_linear_pagetable(self, t: Tracer, level: int, e: int, table: int, index: int,
                             d: Domain, rc: int) -> int:
        """`define_get_linear_pagetable(level)`: a read-only same-level entry."""
        rules = ruleset(d)
        target = entry_mfn(e)
        if self.m.owner(target) != d.domid or self.m.page(target).level != level:
            return rc  # not a linear attempt: the original error stands
        where = f"L{level} entry {index} of MFN {table:#x} -> L{level} MFN {target:#x}"
        if not self.xen.settings.linear_pagetables:
            how = ("pv-linear-pt=false on Xen's command line"
                   if self.xen.settings.cmdline.pv_linear_pt is False
                   else f"profile {self.profile.name}")
            return self.fail(t, rules, "linear_disabled", f"{where}: 'Attempt to create "
                             f"linear p.t. (feature disabled)': {how}", mfn=table,
                             index=index, level=level)
        if e & RW:
            return self.fail(t, rules, "linear_rw", f"{where}: a linear entry must not have RW",
                             mfn=table, index=index, level=level)
        if target == table:
            t.event("linear", "pass", f"{where}: a read-only self-map, no reference taken",
                    "define_get_linear_pagetable", mfn=table, index=index, level=level)
            return 0
        container, tgt = self.m.page(table), self.m.page(target)
        if not self.profile.linear_one_level:
            if container.linear_pt_count < 0 or tgt.linear_pt_count > 0:
                t.event("linear_one_level", "info", f"{where}: a chain of linear tables "
                        f"(profile {self.profile.name}: no one-level limit before XSA-240)",
                        f"get_l{level}_linear_pagetable (before XSA-240)", mfn=table,
                        index=index, level=level)
        elif container.linear_pt_count < 0 or tgt.linear_pt_count > 0:
            return self.fail(t, rules, "linear_one_level",
                             f"{where}: linear use is limited to one level", mfn=table,
                             index=index, level=level)
        want = LEVEL_TYPE[level] | PGT_validated
        if (tgt.type_info & (PGT_type_mask | PGT_validated)) != want or not self.get_page(
                target, d):
            return self.fail(t, rules, "linear_target",
                             f"{where}: the target is {describe_type(tgt.type_info)}, not a "
                             f"validated L{level}", mfn=table, index=index, level=level)
        tgt.type_info += 1
        container.linear_pt_count += 1
        tgt.linear_pt_count -= 1
        t.event("linear", "pass", f"{where}: linear entry accepted", "define_get_linear_pagetable",
                mfn=table, index=index, level=level)
        return 0

    def put_page_from_lne(self, t: Tracer | None, level: int, e: int, table: int) -> None:
        if not e & P:
            return
        target = entry_mfn(e)
        if target == table:
            return  # a linear self-map took no reference
        tgt = self.m.page(target)
        if tgt.level == level:  # a linear entry
            self.m.page(table).linear_pt_count -= 1
            tgt.linear_pt_count += 1
        self.put_page_and_type(t, target)

    # --------------------------------------------------------------- demotion
    def devalidate(self, t: Tracer | None, mfn: int, level: int) -> None:
        """`devalidate_page` as `relinquish_memory` uses it on a dying domain's table:
        release what its entries hold; the type count stays (the caller cleared
        PGT_validated, so the last type put does not demote it again)."""
        self._demote(t, mfn, level)

    def _demote(self, t: Tracer | None, mfn: int, level: int) -> None:
        """`devalidate_page` -> `demote_l{1..4}_table`: release what the entries held."""
        pi = self.m.page(mfn)
        d = self.xen.domain_of(mfn)
        if t is not None:
            t.event("demote", "info", f"L{level} MFN {mfn:#x} lost its last type reference: "
                    "demoted, its entries' references released", f"demote_l{level}_table",
                    mfn=mfn, level=level)
        if d is None:
            return
        if level == 1:
            if bulk.active() and bulk.demote_l1_table(self, mfn, d):  # numpy fast path
                return
            for _i, e in list(self.m.entries(mfn)):
                self.put_page_from_l1e(t, e, d)
            return
        ptype = LEVEL_TYPE[level] | (pi.type_info & PGT_pae_xen_l2)
        slots = set(self.guest_slots(level, ptype, d))
        for i, e in list(self.m.entries(mfn)):
            if i in slots:
                self.put_page_from_lne(t, level, e, mfn)
                if level == 3 and d.abi.unadjust_l3e(e) != e:
                    self.m.write_entry(mfn, i, d.abi.unadjust_l3e(e))  # unadjust_guest_l3e


#: The former name of :func:`type_name`.
tname = type_name

__all__ = ["TypeSystem", "describe_type", "tname", "type_name"]
