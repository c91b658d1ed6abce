# SPDX-License-Identifier: MIT
"""Console prefixes: `(XEN)`, timestamps, the printers' own prefixes, pasted text."""

from __future__ import annotations

import pytest

from pvlab.explain import explain_line
from pvlab.explain.lines import split_prefix


@pytest.mark.parametrize("line", [
    "(XEN) arch/x86/mm.c:3588:d1v0 mfn 7fac5 already pinned",
    "(XEN) [   12.345678] arch/x86/mm.c:3588:d1v0 mfn 7fac5 already pinned",
    "(XEN) [2026-11-28 01:02:03.456] arch/x86/mm.c:3588:d1v0 mfn 7fac5 already pinned",
    "[  99.1] (XEN) mm.c:3588:d1v0 mfn 7fac5 already pinned",
    "arch/x86/mm.c:3588:d1v0 mfn 7fac5 already pinned",
    "d1v0 mfn 7fac5 already pinned",
    "mfn 7fac5 already pinned\r",
])
def test_prefixes_are_stripped(line: str) -> None:
    ex = explain_line(line)
    assert ex.matched and ex.rule == "already_pinned" and ex.decoded["mfn"].value == 0x7FAC5
    assert ex.line == line.rstrip("\r")


def test_the_position_and_vcpu_are_kept() -> None:
    assert split_prefix("(XEN) arch/x86/mm.c:1157:d[IDLE]v0 Bad L3 flags 8") == \
        ("Bad L3 flags 8", "arch/x86/mm.c:1157", "d[IDLE]v0", True)
    assert split_prefix("arch/x86/domain.c:634: Requested vCPUs (9) exceeds max (8)")[:2] == \
        ("Requested vCPUs (9) exceeds max (8)", "arch/x86/domain.c:634")


def test_a_position_in_another_file_is_not_taken_for_an_mm_message() -> None:
    ex = explain_line("(XEN) arch/x86/hvm/emulate.c:100:d1v0 bad access (cr2=0, addr=0, bytes=4)")
    assert not ex.matched and not ex.mm


def test_guest_console_lines_are_not_xen_lines() -> None:
    ex = explain_line("(d1) mfn 7fac5 already pinned")
    assert not ex.xen


def test_an_unknown_mm_line_counts_as_unrecognised() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:9999:d0v0 a message from the future")
    assert ex.mm and not ex.matched and "does not know" in ex.explanation


def test_an_assertion_in_mm_c_is_a_memory_management_crash() -> None:
    ex = explain_line("(XEN) Assertion 'rc != -ERESTART' failed at arch/x86/mm.c:1590")
    assert ex.matched and ex.mm and ex.decoded["line"].value == 1590
    assert not explain_line("(XEN) Assertion 'x' failed at common/sched/core.c:10").mm
