# SPDX-License-Identifier: MIT
"""Foreign mappings (pvlab.xen.foreign): do_mmu_update's foreigndom, get_pg_owner,
xsm_mmu_update and get_page_from_l1e's pg_owner / l1e_owner (RELEASE-4.17.0/4.19.0)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvlab import Xen
from pvlab.x86.flags import make_entry
from pvlab.xen import grants
from pvlab.xen.domains import destroy_domain
from pvlab.xen.foreign import mmu_update_foreign
from pvlab.xen.invariants import audit
from pvlab.xen.page_info import DOMID_IO, DOMID_SELF, DOMID_XEN


def _two(profile: str = "4.19"):  # type: ignore[no-untyped-def]
    xen = Xen(profile)
    dom0 = xen.create_domain(64, privileged=True, name="dom0")
    guest = xen.create_domain(32, name="guest")
    return xen, dom0, guest


@pytest.mark.parametrize("profile", ["4.17", "4.19"])
def test_dom0_maps_guest_frame_with_foreigndom(profile: str) -> None:
    xen, dom0, guest = _two(profile)
    l1 = dom0.alloc_frame()
    assert dom0.pin(l1, 1).ok
    page = guest.alloc_frame()
    # without foreigndom: pg_owner == l1e_owner != the real owner -> -EBUSY
    assert dom0.mmu_update(l1, 0, page, "P|RW").errno == "EBUSY"
    out = mmu_update_foreign(xen, dom0.domain, l1, 0, make_entry(page, "P|RW"),
                             foreigndom=guest.domid)
    assert out.ok
    pi = xen.machine.page(page)
    assert (pi.type_name, pi.type_count, pi.count) == ("writable", 1, 2)
    assert [e.xen_function for e in out.events][:2] == ["get_pg_owner",
                                                       "xsm_mmu_update (XSM_TARGET)"]
    assert audit(xen) == []
    # the guest's frame is writable-typed: the guest cannot pin it
    assert guest.pin(page, 1).errno == "EINVAL"
    assert dom0.mmu_update(l1, 0, value=0).ok
    assert guest.pin(page, 1).ok and audit(xen) == []


@pytest.mark.parametrize(("foreigndom", "errno"), [
    ("self-id", "ESRCH"),   # 'Cannot specify itself as foreign domain'
    (999, "ESRCH"),         # 'Unknown domain'
    ("dom0", "EPERM"),      # xsm_mmu_update: neither the owner nor a control domain
    (DOMID_XEN, "EPERM"),
])
def test_domu_foreigndom_errors(foreigndom: object, errno: str) -> None:
    xen, dom0, guest = _two()
    l1 = guest.alloc_frame()
    assert guest.pin(l1, 1).ok
    own = guest.alloc_frame()
    domid = {"self-id": guest.domid, "dom0": dom0.domid}.get(foreigndom, foreigndom)
    assert isinstance(domid, int)
    out = mmu_update_foreign(xen, guest.domain, l1, 0, make_entry(own, "P"),
                             foreigndom=domid)
    assert out.errno == errno
    assert xen.machine.page(own).count == 1
    assert mmu_update_foreign(xen, guest.domain, l1, 0, make_entry(own, "P"),
                              foreigndom=DOMID_SELF).ok


def test_domid_io_reverts_to_the_caller_for_privilege() -> None:
    xen, dom0, guest = _two()
    gl1, dl1 = guest.alloc_frame(), dom0.alloc_frame()
    assert guest.pin(gl1, 1).ok and dom0.pin(dl1, 1).ok
    assert mmu_update_foreign(xen, guest.domain, gl1, 0, make_entry(1, "P"),
                              foreigndom=DOMID_IO).errno == "EPERM"
    assert mmu_update_foreign(xen, dom0.domain, dl1, 0, make_entry(1, "P"),
                              foreigndom=DOMID_IO).ok
    ram = guest.alloc_frame()
    assert mmu_update_foreign(xen, dom0.domain, dl1, 1, make_entry(ram, "P"),
                              foreigndom=DOMID_IO).errno == "EBUSY"


def test_destroying_a_domain_drops_its_foreign_references() -> None:
    xen, dom0, guest = _two()
    tools = xen.create_domain(64, privileged=True, name="tools")
    tl1 = tools.alloc_frame()
    assert tools.pin(tl1, 1).ok
    page = guest.alloc_frame()
    assert mmu_update_foreign(xen, tools.domain, tl1, 0, make_entry(page, "P|RW"),
                              foreigndom=guest.domid).ok
    assert destroy_domain(xen, dom0.domain, tools.domain).ok
    assert tools.domid not in xen.domains and xen.machine.owner(tl1) is None
    pi = xen.machine.page(page)
    assert (pi.count, pi.type_count) == (1, 0)
    assert audit(xen) == []


def test_destroyed_guest_frame_mapped_by_dom0_stays_until_released() -> None:
    xen, dom0, guest = _two()
    dl1 = dom0.alloc_frame()
    assert dom0.pin(dl1, 1).ok
    l2 = guest.alloc_frame()
    l1 = guest.alloc_frame()
    page = guest.alloc_frame()
    guest.write_entry(l1, 0, page, "P|RW")
    guest.write_entry(l2, 0, l1, "P")
    assert guest.pin(l2, 2).ok
    assert mmu_update_foreign(xen, dom0.domain, dl1, 0, make_entry(page, "P"),
                              foreigndom=guest.domid).ok
    out = destroy_domain(xen, dom0.domain, guest.domain)
    assert out.ok
    assert xen.machine.owner(l2) is None and xen.machine.owner(l1) is None
    assert xen.machine.owner(page) == guest.domid
    assert (xen.machine.page(page).count, xen.machine.page(page).type_count) == (1, 0)
    assert audit(xen) == []
    assert dom0.mmu_update(dl1, 0, value=0).ok
    assert xen.machine.owner(page) is None and guest.domid not in xen.domains


_STEPS = st.lists(st.tuples(st.sampled_from(["foreign_rw", "foreign_ro", "clear", "grant_rw",
                                             "grant_ro", "unmap", "guest_pin", "destroy"]),
                            st.integers(0, 3), st.integers(0, 5)), max_size=20)


@settings(max_examples=50, deadline=None)
@given(_STEPS)
def test_destroying_the_guest_amid_foreign_and_grant_mappings(
        ops: list[tuple[str, int, int]]) -> None:
    """dom0 maps guest frames by foreigndom and by grants, the guest pins some, and is
    destroyed at some point: the audit holds after every step, and once dom0 drops every
    mapping the guest's frames are all free and the guest is gone (if it was destroyed) or
    back to their allocation reference (if not)."""
    xen = Xen("4.19")
    dom0 = xen.create_domain(64, privileged=True, name="dom0")
    guest = xen.create_domain(64, name="guest")
    dl1 = dom0.alloc_frame()
    assert dom0.pin(dl1, 1).ok
    pages = [guest.alloc_frame() for _ in range(4)]
    for ref, page in enumerate(pages):
        grants.write_grant_entry(xen, guest.domain, ref, frame=page, domid=dom0.domid)
    destroyed = False
    for op, k, slot in ops:
        page = pages[k]
        if op in ("foreign_rw", "foreign_ro") and not xen.machine.read_entry(dl1, slot):
            out = mmu_update_foreign(xen, dom0.domain, dl1, slot,
                                     make_entry(page, "P|RW" if op == "foreign_rw" else "P"),
                                     foreigndom=guest.domid)
            assert out.result in ("ok", "EBUSY", "ESRCH")
        elif op == "clear" and xen.machine.read_entry(dl1, slot) and not any(
                m.host_addr == (dl1 << 12) + slot * 8
                for m in grants.grant_table(xen, dom0.domain).maptrack.values()):
            assert dom0.mmu_update(dl1, slot, value=0).ok
        elif op in ("grant_rw", "grant_ro") and not xen.machine.read_entry(dl1, slot):
            flags = grants.GNTMAP_host_map | grants.GNTMAP_contains_pte | (
                grants.GNTMAP_readonly if op == "grant_ro" else 0)
            out = grants.map_grant_ref(xen, dom0.domain, guest.domid, k, flags,
                                       (dl1 << 12) + slot * 8)
            assert out.rc == 0
        elif op == "unmap":
            handles = sorted(grants.grant_table(xen, dom0.domain).maptrack)
            if handles:
                assert grants.unmap_grant_ref(xen, dom0.domain,
                                              handles[slot % len(handles)]).ok
        elif op == "guest_pin" and not destroyed and not xen.machine.page(page).pinned:
            guest.pin(page, 1)
        elif op == "destroy" and not destroyed:
            assert destroy_domain(xen, dom0.domain, guest.domain).ok
            destroyed = True
        assert audit(xen) == [], (op, k, slot)
    for h in sorted(grants.grant_table(xen, dom0.domain).maptrack):
        assert grants.unmap_grant_ref(xen, dom0.domain, h).ok
    for slot in range(6):
        if xen.machine.read_entry(dl1, slot):
            assert dom0.mmu_update(dl1, slot, value=0).ok
    assert audit(xen) == []
    for page in pages:
        if destroyed:
            assert xen.machine.owner(page) is None
        else:
            pi = xen.machine.page(page)
            assert (pi.count - (1 if pi.pinned else 0), pi.type_count - pi.pinned) == (1, 0)
    assert (guest.domid in xen.domains) is not destroyed


def test_dom0_pins_a_guest_table_with_foreigndom() -> None:
    from pvlab.xen.foreign import mmuext_foreign
    from pvlab.xen.hypercalls import MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE

    xen, dom0, guest = _two()
    other = xen.create_domain(64, name="other")
    l1 = guest.alloc_frame()
    assert mmuext_foreign(xen, other.domain, MMUEXT_PIN_L1_TABLE, l1,
                          foreigndom=guest.domid).errno == "EPERM"
    assert mmuext_foreign(xen, dom0.domain, MMUEXT_PIN_L1_TABLE, l1,
                          foreigndom=dom0.domid).errno == "ESRCH"
    assert dom0.pin(l1, 1).errno == "EINVAL"  # without foreigndom: not dom0's frame
    assert mmuext_foreign(xen, dom0.domain, MMUEXT_PIN_L1_TABLE, l1,
                          foreigndom=guest.domid).ok
    pi = xen.machine.page(l1)
    assert (pi.type_name, pi.type_count, pi.pinned, pi.count) == ("l1", 1, True, 2)
    assert audit(xen) == []
    assert mmuext_foreign(xen, dom0.domain, MMUEXT_UNPIN_TABLE, l1,
                          foreigndom=guest.domid).ok
    assert (xen.machine.page(l1).count, xen.machine.page(l1).type_count) == (1, 0)
