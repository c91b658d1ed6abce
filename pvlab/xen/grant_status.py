# SPDX-License-Identifier: MIT
"""Grant-table status codes (`GNTST_*`, xen/include/public/grant_table.h).

A grant-table hypercall (`HYPERVISOR_grant_table_op`) returns 0 once it has read its
operations; each operation's own result is the `status` field Xen writes back into it
(`gnttab_map_grant_ref.status`). An :class:`~pvlab.trace.Outcome` carries that status
beside its return code, and scenario files expect it by name (`expect:
GNTST_general_error`; `GNTST_okay` is written `ok`).
"""

from __future__ import annotations

from typing import Any

GNTST_okay = 0
GNTST_general_error = -1
GNTST_bad_domain = -2
GNTST_bad_gntref = -3
GNTST_bad_handle = -4
GNTST_bad_virt_addr = -5
GNTST_bad_dev_addr = -6
GNTST_no_device_space = -7
GNTST_permission_denied = -8
GNTST_bad_page = -9
GNTST_bad_copy_arg = -10
GNTST_address_too_big = -11
GNTST_eagain = -12
GNTST_no_space = -13

#: status -> its name, as public/grant_table.h spells it.
GNTST_NAMES = {
    GNTST_okay: "GNTST_okay",
    GNTST_general_error: "GNTST_general_error",
    GNTST_bad_domain: "GNTST_bad_domain",
    GNTST_bad_gntref: "GNTST_bad_gntref",
    GNTST_bad_handle: "GNTST_bad_handle",
    GNTST_bad_virt_addr: "GNTST_bad_virt_addr",
    GNTST_bad_dev_addr: "GNTST_bad_dev_addr",
    GNTST_no_device_space: "GNTST_no_device_space",
    GNTST_permission_denied: "GNTST_permission_denied",
    GNTST_bad_page: "GNTST_bad_page",
    GNTST_bad_copy_arg: "GNTST_bad_copy_arg",
    GNTST_address_too_big: "GNTST_address_too_big",
    GNTST_eagain: "GNTST_eagain",
    GNTST_no_space: "GNTST_no_space",
}
_BY_UPPER = {name.upper(): name for name in GNTST_NAMES.values()}

#: The results a scenario may expect from a grant operation (besides "ok").
GNTST_RESULTS = tuple(name for code, name in GNTST_NAMES.items() if code != GNTST_okay)


def gntst_name(status: int) -> str:
    """`"ok"` for GNTST_okay, else the status's name (`-1` -> `"GNTST_general_error"`)."""
    if status == GNTST_okay:
        return "ok"
    return GNTST_NAMES.get(status, f"GNTST({status})")


def gntst_result(value: Any) -> str | None:
    """A scenario's `expect:` value as a grant status: the canonical name ("ok" for
    GNTST_okay), or None when `value` is not a GNTST name."""
    text = str(value).strip().upper()
    name = _BY_UPPER.get(text)
    if name is None:
        return None
    return "ok" if name == "GNTST_okay" else name


__all__ = ["GNTST_NAMES", "GNTST_RESULTS", "gntst_name", "gntst_result",
           *(n for n in GNTST_NAMES.values())]
