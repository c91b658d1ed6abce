# SPDX-License-Identifier: MIT
"""Outcome and trace properties (issue 2 item 8)."""

from __future__ import annotations

import pytest

from pvlab import Errno, Outcome, Xen
from pvlab.trace import Counters, Event, Tracer, errno_name


def _erange() -> Outcome:
    g = Xen("4.19").create_domain(32)
    l3, l2 = g.alloc_frame(above="4GiB"), g.alloc_frame()
    g.write_entry(l3, 3, l2, "P")
    g.domain.vcpus[0].is_initialised = True
    return g.pin(l3, 3)


def test_ok_outcome() -> None:
    o = Outcome("op")
    assert o.ok and o.rc == 0 and o.errno is None and o.result == "ok"
    assert o.reason == "" and o.failure is None
    assert o.explain() == "op: ok"


def test_failed_outcome_properties() -> None:
    o = _erange()
    assert not o.ok and o.rc == -34 and o.errno == "ERANGE" and o.result == "ERANGE"
    assert o.failure is not None and o.failure.decision == "fail"
    assert o.reason == o.failure.explanation and "4GB" in o.reason
    assert o.failed_mfn == o.failure.mfn
    assert o.counters.hypercalls == 1 and o.counters.type_acquisitions >= 1
    text = o.explain()
    assert text.splitlines()[0].endswith("ERANGE (-34)")
    assert "[promote_l3_table]" in text and "FAIL" in text
    assert "ERANGE" in repr(o)


def test_every_event_names_its_xen_function_and_decision() -> None:
    g = Xen("4.19").create_domain(64)
    l4, l3, l2, l1 = (g.alloc_frame() for _ in range(4))
    g.write_entry(l4, 0, l3, "P")
    g.write_entry(l3, 0, l2, "P")
    g.write_entry(l2, 0, l1, "P")
    g.write_entry(l1, 0, l1, "P|RW")
    o = g.pin(l4, 4)
    assert o.errno == "EBUSY"
    assert all(e.xen_function and e.explanation for e in o.events)
    assert all(e.decision in ("pass", "fail", "info") for e in o.events)
    # The first failure is the deepest cause; depth grows with the recursion.
    assert o.failure.check == "l1_writable_pagetable" and o.failure.depth >= 3
    assert o.counters.max_depth >= 3 and o.counters.validations == 4


@pytest.mark.parametrize(("rc", "name"), [(0, "ok"), (-1, "EPERM"), (-16, "EBUSY"),
                                          (-22, "EINVAL"), (-34, "ERANGE"), (-38, "ENOSYS"),
                                          (-95, "EOPNOTSUPP"), (-200, "E200")])
def test_errno_name(rc: int, name: str) -> None:
    assert errno_name(rc) == name


def test_errno_is_xens_numbering() -> None:
    assert {e.name: int(e) for e in Errno} == {
        "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EAGAIN": 11, "ENOMEM": 12,
        "EACCES": 13, "EFAULT": 14, "EBUSY": 16, "EEXIST": 17, "EINVAL": 22, "ERANGE": 34,
        "ENOSYS": 38, "EILSEQ": 84, "ERESTART": 85, "EOPNOTSUPP": 95}


def test_tracer_records_first_failure_location_and_depth() -> None:
    t = Tracer("x")
    t.event("a", "info", "start", "f")
    with t.deeper():
        with t.deeper():
            t.event("b", "fail", "inner", "g", mfn=5, index=3)
        t.event("c", "fail", "outer", "h", mfn=9, index=1)
    o = t.finish(-22)
    assert (o.failed_mfn, o.failed_index) == (5, 3)
    assert [e.depth for e in o.events] == [0, 2, 1]
    assert o.counters.max_depth == 2 and o.reason == "inner"
    assert o.events[1].line().startswith("    FAIL inner")


def test_counters_add() -> None:
    a = Counters(1, 2, 3, 4, 5)
    a.add(Counters(1, 1, 1, 1, 2))
    assert a.as_dict() == {"hypercalls": 2, "type_acquisitions": 3, "validations": 4,
                           "entries_checked": 5, "max_depth": 5}


def test_event_is_immutable() -> None:
    e = Event("c", "pass", "x", "f")
    with pytest.raises(AttributeError):
        e.check = "d"  # type: ignore[misc]
