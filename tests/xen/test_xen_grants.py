# SPDX-License-Identifier: MIT
"""Grant tables (pvlab.xen.grants) against Xen's map_grant_ref / unmap_common and the PV
PTE side (create_grant_pv_mapping, replace_grant_pv_mapping), RELEASE-4.17.0/4.19.0."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvlab import Xen
from pvlab.xen import grants
from pvlab.xen.domains import destroy_domain
from pvlab.xen.grant_status import GNTST_RESULTS, gntst_name, gntst_result
from pvlab.xen.invariants import audit

CONTAINS_PTE_RW = grants.GNTMAP_host_map | grants.GNTMAP_contains_pte
CONTAINS_PTE_RO = CONTAINS_PTE_RW | grants.GNTMAP_readonly


def _setup(profile: str = "4.19", build: str | None = None):  # type: ignore[no-untyped-def]
    xen = Xen(profile, build=build)
    dom0 = xen.create_domain(64, privileged=True, name="dom0")
    guest = xen.create_domain(64, name="guest")
    l1 = dom0.alloc_frame()
    assert dom0.pin(l1, 1).ok
    page = guest.alloc_frame()
    return xen, dom0, guest, l1, page


def _pte(l1: int, index: int) -> int:
    return (l1 << 12) + index * 8


def test_statuses_are_the_public_header_values() -> None:
    assert gntst_name(0) == "ok"
    assert gntst_name(-1) == "GNTST_general_error"
    assert gntst_name(-8) == "GNTST_permission_denied"
    assert gntst_name(-12) == "GNTST_eagain"
    assert gntst_result("gntst_bad_handle") == "GNTST_bad_handle"
    assert gntst_result("GNTST_okay") == "ok"
    assert gntst_result("EINVAL") is None
    assert len(GNTST_RESULTS) == 13


def test_writable_map_takes_general_and_writable_type_and_hypercall_returns_0() -> None:
    xen, dom0, guest, l1, page = _setup()
    assert grants.write_grant_entry(xen, guest.domain, 8, frame=page, domid=dom0.domid).ok
    out = grants.map_grant_ref(xen, dom0.domain, guest.domid, 8, CONTAINS_PTE_RW, _pte(l1, 5))
    assert (out.rc, out.status, out.result, out.allocated) == (0, 0, "ok", 0)
    pi = xen.machine.page(page)
    assert (pi.type_name, pi.type_count, pi.count) == ("writable", 1, 2)
    entry = xen.machine.read_entry(l1, 5)
    assert entry >> 12 & ((1 << 40) - 1) == page and entry & 0x2  # maps it RW
    assert entry >> 62 & 1  # _PAGE_GNTTAB in a debug build
    # the granter can no longer make it a pagetable: _get_page_type -EINVAL
    assert guest.pin(page, 1).errno == "EINVAL"
    assert audit(xen) == []


def test_release_build_grant_pte_has_no_gnttab_bit() -> None:
    xen, dom0, guest, l1, page = _setup(build="release")
    grants.write_grant_entry(xen, guest.domain, 1, frame=page, domid=dom0.domid)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 1, CONTAINS_PTE_RW,
                                _pte(l1, 0)).ok
    assert not xen.machine.read_entry(l1, 0) >> 62 & 1


def test_pagetable_frame_cannot_be_mapped_writable_only_readonly() -> None:
    xen, dom0, guest, l1, _ = _setup()
    gl1 = guest.alloc_frame()
    assert guest.pin(gl1, 1).ok
    grants.write_grant_entry(xen, guest.domain, 2, frame=gl1, domid=dom0.domid)
    out = grants.map_grant_ref(xen, dom0.domain, guest.domid, 2, CONTAINS_PTE_RW, _pte(l1, 1))
    assert (out.rc, out.result) == (0, "GNTST_general_error")
    assert not out.ok
    pi = xen.machine.page(gl1)
    assert (pi.type_name, pi.type_count, pi.count) == ("l1", 1, 2)  # nothing left behind
    assert grants.grant_table(xen, guest.domain).entry(2).flags == grants.GTF_permit_access
    ro = grants.map_grant_ref(xen, dom0.domain, guest.domid, 2, CONTAINS_PTE_RO, _pte(l1, 1))
    assert ro.ok and xen.machine.page(gl1).count == 3
    assert audit(xen) == []


def test_readonly_map_takes_only_a_general_reference_and_unmap_releases_it() -> None:
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 1, frame=page, domid=dom0.domid,
                             readonly=True)
    out = grants.map_grant_ref(xen, dom0.domain, guest.domid, 1, CONTAINS_PTE_RO, _pte(l1, 0))
    assert out.ok and not xen.machine.read_entry(l1, 0) & 0x2
    assert (xen.machine.page(page).type_count, xen.machine.page(page).count) == (0, 2)
    assert guest.pin(page, 1).ok  # a read-only view of a pagetable is allowed
    un = grants.unmap_grant_ref(xen, dom0.domain, 0)
    assert un.ok and xen.machine.read_entry(l1, 0) == 0
    assert xen.machine.page(page).count == 2  # the pin's reference and the allocation
    assert grants.grant_table(xen, guest.domain).entry(1).flags == (
        grants.GTF_permit_access | grants.GTF_readonly)
    assert audit(xen) == []


def test_write_pin_of_readonly_entry_and_wrong_domid_are_general_errors() -> None:
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 1, frame=page, domid=dom0.domid,
                             readonly=True)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 1, CONTAINS_PTE_RW,
                                _pte(l1, 0)).result == "GNTST_general_error"
    grants.write_grant_entry(xen, guest.domain, 2, frame=page, domid=guest.domid)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 2, CONTAINS_PTE_RO,
                                _pte(l1, 0)).result == "GNTST_general_error"


@pytest.mark.parametrize(("ref", "flags", "domid", "want"), [
    (512, CONTAINS_PTE_RW, None, "GNTST_bad_gntref"),
    (0, grants.GNTMAP_contains_pte, None, "GNTST_bad_gntref"),
    (0, CONTAINS_PTE_RW, 999, "GNTST_bad_domain"),
])
def test_map_argument_errors(ref: int, flags: int, domid: int | None, want: str) -> None:
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    out = grants.map_grant_ref(xen, dom0.domain, guest.domid if domid is None else domid,
                               ref, flags, _pte(l1, 0))
    assert (out.rc, out.result) == (0, want)
    assert grants.grant_table(xen, dom0.domain).maptrack == {}


def test_misaligned_pte_address_is_refused_xsa_227() -> None:
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    out = grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RW,
                               _pte(l1, 5) + 4)
    assert out.result == "GNTST_general_error"
    assert "Misaligned PTE address" in out.explain()
    assert xen.machine.read_entry(l1, 5) == 0 and xen.machine.read_entry(l1, 6) == 0
    assert xen.machine.page(page).count == 1


def test_unmap_with_misaligned_pte_is_a_debug_assert_and_a_release_error() -> None:
    for build, want in (("debug", "crash"), ("release", "GNTST_general_error")):
        xen, dom0, guest, l1, page = _setup(build=build)
        grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
        assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RW,
                                    _pte(l1, 5)).ok
        assert grants.unmap_grant_ref(xen, dom0.domain, 0, _pte(l1, 5) + 2).result == want


def test_unmap_checks_frame_present_and_rw_xsa_234() -> None:
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RW,
                                _pte(l1, 5)).ok
    # dom0 drops RW from its grant PTE itself (same frame): the unmap must not match
    xen.machine.write_entry(l1, 5, xen.machine.read_entry(l1, 5) & ~0x2)
    out = grants.unmap_grant_ref(xen, dom0.domain, 0)
    assert out.result == "GNTST_general_error" and "doesn't match grant" in out.explain()
    assert 0 in grants.grant_table(xen, dom0.domain).maptrack  # the handle stays


def test_destroying_the_granter_leaves_the_mapped_frame_until_unmap() -> None:
    xen, dom0, guest, l1, page = _setup()
    other = guest.alloc_frame()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RW,
                                _pte(l1, 0)).ok
    assert destroy_domain(xen, dom0.domain, guest.domain).ok
    assert xen.machine.owner(other) is None  # freed
    pi = xen.machine.page(page)
    assert (pi.owner, pi.count, pi.type_count, pi.allocated) == (guest.domid, 1, 1, False)
    assert guest.domid in xen.domains and guest.domain.is_dying  # a zombie
    assert audit(xen) == []
    assert grants.unmap_grant_ref(xen, dom0.domain, 0).ok
    assert xen.machine.owner(page) is None and guest.domid not in xen.domains
    assert audit(xen) == []


def test_destroying_the_mapper_unpins_the_grant() -> None:
    xen, dom0, guest, l1, page = _setup()
    backend = xen.create_domain(64, name="backend")
    bl1 = backend.alloc_frame()
    assert backend.pin(bl1, 1).ok
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=backend.domid)
    assert grants.map_grant_ref(xen, backend.domain, guest.domid, 0, CONTAINS_PTE_RW,
                                _pte(bl1, 0)).ok
    assert destroy_domain(xen, dom0.domain, backend.domain).ok
    assert grants.grant_table(xen, guest.domain).entry(0).flags == grants.GTF_permit_access
    assert (xen.machine.page(page).count, xen.machine.page(page).type_count) == (1, 0)
    assert backend.domid not in xen.domains
    assert audit(xen) == []


def test_only_a_control_domain_destroys() -> None:
    xen, dom0, guest, _, _ = _setup()
    assert destroy_domain(xen, guest.domain, dom0.domain).errno == "EPERM"
    assert destroy_domain(xen, None, guest.domain).ok
    assert destroy_domain(xen, None, guest.domain).errno == "ESRCH"


# ------------------------------------------------------------------ invariants
_OPS = st.lists(st.tuples(st.sampled_from(["map_rw", "map_ro", "unmap", "bad_unmap",
                                           "pin", "unpin", "destroy_backend"]),
                          st.integers(0, 3), st.integers(0, 7)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(_OPS)
def test_grant_sequences_keep_invariants_and_return_counts(ops: list[tuple[str, int, int]]
                                                           ) -> None:
    """Random grant maps/unmaps (by dom0 and an unprivileged backend), granter pins and a
    backend destroy: the audit stays clean after every operation, and once every mapping is
    gone the granted frames are back to their start (count 1, no type reference)."""
    xen = Xen("4.19")
    dom0 = xen.create_domain(64, privileged=True, name="dom0")
    guest = xen.create_domain(64, name="guest")
    backend = xen.create_domain(64, name="backend")
    l1s = {dom0.domid: dom0.alloc_frame(), backend.domid: backend.alloc_frame()}
    for d, l1 in ((dom0, l1s[dom0.domid]), (backend, l1s[backend.domid])):
        assert d.pin(l1, 1).ok
    pages = [guest.alloc_frame() for _ in range(4)]
    for ref, page in enumerate(pages):
        to = dom0 if ref % 2 == 0 else backend
        grants.write_grant_entry(xen, guest.domain, ref, frame=page, domid=to.domid)
    pinned: set[int] = set()
    for op, ref, slot in ops:
        mapper = dom0 if ref % 2 == 0 else backend
        if op == "destroy_backend" and backend.domid in xen.domains:
            assert destroy_domain(xen, dom0.domain, backend.domain).ok
        elif mapper.domid not in xen.domains:
            continue
        elif op in ("map_rw", "map_ro"):
            flags = CONTAINS_PTE_RW if op == "map_rw" else CONTAINS_PTE_RO
            if xen.machine.read_entry(l1s[mapper.domid], slot):
                continue  # never overwrite a live grant PTE (that is an implicit unmap)
            out = grants.map_grant_ref(xen, mapper.domain, guest.domid, ref, flags,
                                       _pte(l1s[mapper.domid], slot))
            assert out.rc == 0 and out.result in ("ok", "GNTST_general_error")
            if out.result != "ok":  # only a pinned (pagetable) frame refuses a write map
                assert op == "map_rw" and pages[ref] in pinned
        elif op in ("unmap", "bad_unmap"):
            gt = grants.grant_table(xen, mapper.domain)
            handles = sorted(gt.maptrack)
            if not handles:
                continue
            h = handles[slot % len(handles)]
            addr = None if op == "unmap" else _pte(l1s[mapper.domid], (slot + 1) % 8) + 8 * 8
            out = grants.unmap_grant_ref(xen, mapper.domain, h, addr)
            assert out.result == ("ok" if op == "unmap" else "GNTST_general_error")
        elif op == "pin" and pages[ref] not in pinned:
            if guest.pin(pages[ref], 1).ok:
                pinned.add(pages[ref])
        elif op == "unpin" and pages[ref] in pinned:
            assert guest.unpin(pages[ref]).ok
            pinned.discard(pages[ref])
        assert audit(xen) == [], (op, ref, slot)
    for d in (dom0, backend):
        if d.domid in xen.domains:
            gt = grants.grant_table(xen, d.domain)
            for h in sorted(gt.maptrack):
                assert grants.unmap_grant_ref(xen, d.domain, h).ok
    for page in pages:
        if page in pinned:
            assert guest.unpin(page).ok
        pi = xen.machine.page(page)
        assert (pi.count, pi.type_count) == (1, 0)
    for ref in range(4):
        assert grants.grant_table(xen, guest.domain).entry(ref).flags == \
            grants.GTF_permit_access
    assert audit(xen) == []


def test_every_refusal_between_domains_is_a_registered_rule() -> None:
    """Each failing check the multi-domain corpus meets is in a registry (pagetable rules
    or the rules between domains), so docs/rules.md lists it with its Xen function."""
    from pathlib import Path

    from pvlab.scenario import load_scenario, run_scenario
    from pvlab.xen.domain_rules import DOMAIN_RULES
    from pvlab.xen.rules import all_rules

    known = {r.id for r in all_rules()} | {r.id for r in DOMAIN_RULES} | {
        "promote", "pin", "expect_page", "expect_entry", "expect_grant", "grant_unmap"}
    seen: set[str] = set()
    for path in sorted((Path(__file__).parents[1] / "scenarios").glob("9[0-4]?-*.yaml")):
        for s in run_scenario(load_scenario(path)).steps:
            seen |= {e.check for e in s.outcome.events if e.decision == "fail"}
    assert seen - known == set()
    assert {"grant_pte", "grant_replace", "gnttab_handle", "pg_owner", "xsm"} <= seen


def test_handles_come_from_the_maptrack_free_list() -> None:
    """get_maptrack_handle takes the free list's head (a new maptrack frame of 256 when only
    the tail sentinel is left); put_maptrack_handle appends to the tail: a failed map's or an
    unmapped handle is not the next one handed out."""
    xen, dom0, guest, l1, page = _setup()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    bad = grants.map_grant_ref(xen, dom0.domain, guest.domid, 600, CONTAINS_PTE_RW,
                               _pte(l1, 0))
    assert bad.result == "GNTST_bad_gntref"
    got = [grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RO,
                                _pte(l1, i)).allocated for i in range(3)]
    assert got == [1, 2, 3]
    assert grants.unmap_grant_ref(xen, dom0.domain, 2).ok
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RO,
                                _pte(l1, 5)).allocated == 4
    gt = grants.grant_table(xen, dom0.domain)
    assert gt.maptrack_limit == 256 and gt.free[-2:] == [0, 2]
    assert grants.unmap_grant_ref(xen, dom0.domain, 256).result == "GNTST_bad_handle"


def test_a_full_maptrack_is_gntst_no_space() -> None:
    """get_maptrack_handle with no free handle and max_maptrack_frames reached (one vCPU:
    nothing to steal) -> map_grant_ref's GNTST_no_space, before the ref is looked at; an
    unmap frees a handle again. One frame holds 256 handles, one kept as the tail
    sentinel: 255 mappings at once."""
    xen = Xen("4.19")
    dom0 = xen.create_domain(64, privileged=True, name="dom0", max_maptrack_frames=1)
    guest = xen.create_domain(64, name="guest")
    l1s = [dom0.alloc_frame() for _ in range(2)]
    assert all(dom0.pin(l1, 1).ok for l1 in l1s)
    page = guest.alloc_frame()
    grants.write_grant_entry(xen, guest.domain, 0, frame=page, domid=dom0.domid)
    for i in range(255):
        out = grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RO,
                                   _pte(l1s[i // 200], i % 200))
        assert out.ok, (i, out.result)
    full = grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RO,
                                _pte(l1s[1], 100))
    assert (full.rc, full.result) == (0, "GNTST_no_space")
    assert any(e.check == "maptrack" and e.decision == "fail" for e in full.events)
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 600, CONTAINS_PTE_RO,
                                _pte(l1s[1], 100)).result == "GNTST_no_space"
    assert xen.machine.peek(page).count == 1 + 255
    assert grants.unmap_grant_ref(xen, dom0.domain, 7).ok
    assert grants.map_grant_ref(xen, dom0.domain, guest.domid, 0, CONTAINS_PTE_RO,
                                _pte(l1s[1], 100)).ok
    none = xen.create_domain(64, name="nomaptrack", max_maptrack_frames=0)
    grants.write_grant_entry(xen, guest.domain, 1, frame=page, domid=none.domid)
    l1 = none.alloc_frame()
    assert none.pin(l1, 1).ok
    assert grants.map_grant_ref(xen, none.domain, guest.domid, 1, CONTAINS_PTE_RO,
                                _pte(l1, 0)).result == "GNTST_no_space"
    assert audit(xen) == []
