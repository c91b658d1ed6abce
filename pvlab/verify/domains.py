# SPDX-License-Identifier: MIT
"""Replay plans of multi-domain scenarios (`domains:`, `as:`, grants, `foreign:`, destroying a
domain): who the probe and its agent play, and the steps between domains.

Real Xen under QEMU has two actors: the probe (the 64-bit dom0, privileged) and one agent domU
it starts (unprivileged, running). A scenario is replayable when its domains fit them: at most
one privileged domain (64-bit, vCPU 0 initialised: the probe) and one unprivileged domain whose
vCPU 0 is initialised (the agent). Each step runs in the domain that issues it (`as:`, else the
scenario's default: the first unprivileged domain).

The grant steps are replayed through Xen's real grant table: the granter (the agent) writes a
v1 entry in its table's first frame (GNTTABOP_setup_table, then its own mapping of that frame);
the mapper issues GNTTABOP_map_grant_ref with GNTMAP_host_map | GNTMAP_contains_pte (a PTE's
machine address), GNTTABOP_unmap_grant_ref and GNTTABOP_unmap_and_replace (new_addr 0), each
reported with the operation's GNTST status; `destroy_domain` is XEN_DOMCTL_destroydomain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pvlab.verify.replay import (
    DS_AGENT,
    DS_DOM0,
    DS_IO,
    DS_OTHER,
    DS_SELF,
    DS_XEN,
    DSEL,
    OP_DESTROY,
    OP_GRANT,
    OP_GRANT_MAP,
    OP_GRANT_READ,
    OP_GRANT_UNMAP,
    OP_GRANT_UNMAP_REPLACE,
    ScenarioPlan,
    StepPlan,
)

_SPECIAL = {"DOMID_IO": DS_IO, "DOMID_XEN": DS_XEN, "DOMID_SELF": DS_SELF, "OTHER": DS_OTHER}

# public/grant_table.h
GTF_TYPES = {"permit_access": 1, "accept_transfer": 2, "transitive": 3}
GTF_readonly = 1 << 2
GNTMAP_host_map, GNTMAP_readonly, GNTMAP_application_map, GNTMAP_contains_pte = 2, 4, 8, 16
#: the GNTST_* statuses by value (a grant operation's own result)
GNTST_NAMES = {
    0: "ok", -1: "GNTST_general_error", -2: "GNTST_bad_domain", -3: "GNTST_bad_gntref",
    -4: "GNTST_bad_handle", -5: "GNTST_bad_virt_addr", -6: "GNTST_bad_dev_addr",
    -7: "GNTST_no_device_space", -8: "GNTST_permission_denied", -9: "GNTST_bad_page",
    -10: "GNTST_bad_copy_arg", -11: "GNTST_address_too_big", -12: "GNTST_eagain",
    -13: "GNTST_no_space",
}

GRANT_OPS = ("grant", "grant_map", "grant_unmap", "grant_unmap_and_replace", "destroy_domain",
             "expect_grant")
GTF_reading, GTF_writing = 1 << 3, 1 << 4
#: steps dom0 (the probe) must not issue for the scenario: they change the probe's own state
DOM0_OWN_STATE = ("vm_assist", "new_user_baseptr", "new_baseptr", "machphys_update",
                  "vcpu_op_initialise")

SKIP_SHAPE = (
    "the replay has two actors, the probe (a privileged 64-bit dom0) and one running "
    "unprivileged domU (the agent): {why}"
)
SKIP_VA_MAP = (
    "maps at a linear address of the mapper's own tables (the probe's or the agent's), not the "
    "scenario's: only GNTMAP_contains_pte (pte:) is replayed"
)
SKIP_DOM0_OWN = (
    "issued by dom0, which is the probe itself: it would change the probe's own state"
)
SKIP_DOM0_GRANT = "the probe (dom0) keeps no grant entries of its own in the replay"
SKIP_DESTROYED = "issued by {name}, which was destroyed at step {n}: no domain issues it"
SKIP_PINS = "Xen's active grant entries (pins) are not readable by a guest"
NOTE_PINS = ("expect_grant: the granter reads GTF_reading/GTF_writing back from its grant "
             "entry; the pins are Xen's active entry, not readable, and not compared")
SKIP_DOMID = "names domain id {id} directly; the QEMU machine's domain ids are not pvlab's"


@dataclass
class Roles:
    """Which scenario domain the probe plays (dom0) and which the agent (domU)."""

    dom0: str | None = None
    agent: str | None = None
    default: str | None = None  # who issues a step without `as:`
    skip: str | None = None
    #: the agent's domain was destroyed at this step
    destroyed_at: int | None = None
    handles: dict[str, int] = field(default_factory=dict)  # handle name -> slot (1-based)

    def played(self) -> dict[str, str]:
        """Scenario domain -> "dom0" (the probe) or "domU" (the agent)."""
        out = {self.dom0: "dom0"} if self.dom0 else {}
        if self.agent:
            out[self.agent] = "domU"
        return out


def roles_of(domains: Mapping[str, Any]) -> tuple[Roles, dict[str, Any]]:
    """The roles of a `domains:` mapping, and the spec of the domain the replay's guest is."""
    roles = Roles()
    specs = {str(n): dict(s or {}) for n, s in domains.items()}
    priv = [n for n, s in specs.items() if s.get("privileged", False)]
    unpriv = [n for n, s in specs.items() if not s.get("privileged", False)]
    roles.default = unpriv[0] if unpriv else next(iter(specs), None)
    if len(priv) > 1 or len(unpriv) > 1:
        roles.skip = SKIP_SHAPE.format(why=f"{len(priv)} privileged and {len(unpriv)} "
                                       "unprivileged domains")
    elif priv and (int(specs[priv[0]].get("bitness", 64)) != 64
                   or not specs[priv[0]].get("vcpu0_initialised", False)):
        roles.skip = SKIP_SHAPE.format(why=f"{priv[0]} is not a running 64-bit domain")
    elif priv and unpriv and not specs[unpriv[0]].get("vcpu0_initialised", False):
        roles.skip = SKIP_SHAPE.format(why=f"{unpriv[0]}'s vCPU 0 is not initialised, so no "
                                       "agent can issue its steps")
    roles.dom0 = priv[0] if priv else None
    roles.agent = unpriv[0] if unpriv else None
    guest = specs[roles.agent] if roles.agent else specs.get(roles.dom0 or "", {})
    return roles, guest


def frame_owner(roles: Roles | None, owner: Any) -> str:
    """A frame's owner in the replay's terms: "guest" (the agent), "dom0", "other" or "io"."""
    owner = str(owner if owner is not None else "guest")
    if roles is None or owner in ("other", "io"):
        return owner
    if owner == roles.dom0 and roles.agent is not None:
        return "dom0"
    return "guest"


def domain_sel(roles: Roles | None, ref: Any) -> int | str:
    """`DSEL | DS_*` for a domain a step names, or a skip reason."""
    if isinstance(ref, int):
        return SKIP_DOMID.format(id=ref)
    name = str(ref)
    if name.upper() in _SPECIAL:
        return DSEL | _SPECIAL[name.upper()]
    if roles is not None and name == roles.dom0:
        return DSEL | DS_DOM0
    return DSEL | DS_AGENT


def issuer_is_dom0(roles: Roles | None, args: Mapping[str, Any]) -> bool:
    if roles is None:
        return False
    who = args.get("as", roles.default)
    return who is not None and who == roles.dom0


def plan_domain_step(plan: ScenarioPlan, roles: Roles | None, i: int, op: str,
                     a: Mapping[str, Any]) -> StepPlan:
    """The replay of a grant step or `destroy_domain`."""
    if op == "grant":
        if issuer_is_dom0(roles, a):
            return StepPlan(i, op, skip=SKIP_DOM0_GRANT)
        kind = str(a.get("type", "permit_access")).replace("-", "_")
        if kind not in GTF_TYPES:
            return StepPlan(i, op, skip=f"a grant entry of type {kind} is not replayed")
        sel = domain_sel(roles, a["to"])
        if isinstance(sel, str):
            return StepPlan(i, op, skip=sel)
        flags = GTF_TYPES[kind] | (GTF_readonly if a.get("readonly") else 0)
        return StepPlan(i, op, OP_GRANT, plan.frame_index(str(a["frame"])), int(a["ref"]),
                        value=flags, aux=sel)
    if op == "grant_map":
        pte = a.get("pte")
        if not isinstance(pte, Mapping):
            return StepPlan(i, op, skip=SKIP_VA_MAP)
        sel = domain_sel(roles, a["from"])
        if isinstance(sel, str):
            return StepPlan(i, op, skip=sel)
        flags = ((GNTMAP_host_map if a.get("host_map", True) else 0)
                 | (GNTMAP_readonly if a.get("readonly") else 0)
                 | (GNTMAP_application_map if a.get("application_map") else 0)
                 | GNTMAP_contains_pte)
        offset = int(pte["index"]) * 8 + int(pte.get("offset", 0))
        slot = 0
        if a.get("handle") is not None and roles is not None:
            slot = roles.handles.setdefault(str(a["handle"]), len(roles.handles) + 1)
        return StepPlan(i, op, OP_GRANT_MAP, plan.frame_index(str(pte["table"])), int(a["ref"]),
                        target=_slot(slot), value=flags | (offset << 16), aux=sel)
    if op in ("grant_unmap", "grant_unmap_and_replace"):
        code = OP_GRANT_UNMAP if op == "grant_unmap" else OP_GRANT_UNMAP_REPLACE
        if a.get("va") is not None or a.get("new_va"):
            return StepPlan(i, op, skip=SKIP_VA_MAP)
        handle = a["handle"]
        slot, number = 0, 0
        if isinstance(handle, int):
            number = handle
        elif roles is not None and str(handle) in roles.handles:
            slot = roles.handles[str(handle)]
        else:
            return StepPlan(i, op, skip=f"handle {handle!r} names no replayed grant_map")
        frame, value = 0, 0
        pte = a.get("pte")
        if isinstance(pte, Mapping):
            frame = plan.frame_index(str(pte["table"]))
            value = (1 << 32) | (int(pte["index"]) * 8 + int(pte.get("offset", 0)))
        return StepPlan(i, op, code, frame, number, target=_slot(slot), value=value)
    if op == "expect_grant":
        if roles is None or str(a["domain"]) != roles.agent:
            return StepPlan(i, op, skip="only the agent's grant entries are read back")
        if a.get("reading") is None and a.get("writing") is None:
            return StepPlan(i, op, skip=SKIP_PINS)
        return StepPlan(i, op, OP_GRANT_READ, arg=int(a["ref"]), check=dict(a))
    # destroy_domain
    name = str(a["domain"])
    if roles is None or name != roles.agent:
        return StepPlan(i, op, skip=SKIP_SHAPE.format(
            why=f"only the agent's domain can be destroyed, not {name}"))
    return StepPlan(i, op, OP_DESTROY, aux=DSEL | DS_AGENT)


def grant_problems(check: Mapping[str, Any], flags: int) -> list[str]:
    """What differs between an expect_grant check and the grant entry's flags read back."""
    bad = []
    for key, bit in (("reading", GTF_reading), ("writing", GTF_writing)):
        if check.get(key) is not None and bool(flags & bit) != bool(check[key]):
            bad.append(f"{key} differs")
    return bad


def _slot(slot: int) -> int | None:
    """A handle's name slot as a step's `target` (plan.h holds target + 1, as for frames; the
    probe reads it back as the 1-based slot; None: no name)."""
    return slot - 1 if slot else None


def gntst_name(status: int) -> str:
    return GNTST_NAMES.get(status, f"GNTST({status})")
