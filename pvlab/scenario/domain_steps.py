# SPDX-License-Identifier: MIT
"""Scenario steps between domains: grants, grant maps and unmaps, destroying a domain.

Each is one registered step (see `registry`); `as:` names the domain that issues it
(`pvlab.scenario.runner.perform` runs the step with `run.guest` set to that domain).
The rules are in `pvlab.xen.grants`, `pvlab.xen.foreign` and `pvlab.xen.domains`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvlab.errors import PvlabError
from pvlab.scenario.params import SPECIAL_DOMAINS, FrameRef, PteRef, Where, param
from pvlab.scenario.registry import StepArgs, step
from pvlab.trace import Outcome, Tracer
from pvlab.xen import grants
from pvlab.xen.domains import destroy_domain

if TYPE_CHECKING:
    from pvlab.scenario.runner import ScenarioRun

#: Why `pvlab verify` does not replay these steps yet (the agent domU does, issue 15).
NO_REPLAY_GRANT = ("a grant operation between two domains: replayed once the probe runs the "
                   "granting domain as an agent domU (docs/verify.md)")
NO_REPLAY_DESTROY = "destroying a domain ends the replay's guest"


def domid_of(run: ScenarioRun, ref: str | int) -> int:
    """A domain-valued argument as a domain id: a scenario domain's name, DOMID_SELF/IO/XEN,
    or a number."""
    if isinstance(ref, int):
        return ref
    if ref.upper() in SPECIAL_DOMAINS:
        return SPECIAL_DOMAINS[ref.upper()]
    try:
        return run.domain_named(ref).domid
    except KeyError:
        raise PvlabError(f"unknown domain {ref!r}", "declare it under domains:") from None


# ------------------------------------------------------------------ grant (the granter)
@dataclass(frozen=True, kw_only=True)
class GrantArgs(StepArgs):
    ref: int = param("int", help="the grant reference (entry of the granter's table)")
    frame: FrameRef = param("frame", help="the frame granted (a PV guest writes its MFN)")
    to: str | int = param("domain", help="the domain allowed to map it (grant entry domid)")
    readonly: bool = param("bool", False, help="GTF_readonly: read-only mappings only")
    type: str = param("text", "permit_access", choices=tuple(grants.GTF_TYPES),
                      help="the entry's type (GTF_permit_access; others cannot be mapped)")


@step("grant", GrantArgs, summary="the granter writes a v1 grant entry (GTF_permit_access, "
      "GTF_readonly): a memory write, no hypercall", no_replay=NO_REPLAY_GRANT,
      guest_only=True)
def _grant(run: ScenarioRun, a: GrantArgs) -> Outcome:
    return grants.write_grant_entry(run.xen, run.guest.domain, a.ref, frame=run.mfn(a.frame),
                                    domid=domid_of(run, a.to), readonly=a.readonly,
                                    gtf_type=grants.GTF_TYPES[a.type.replace("-", "_")])


# ------------------------------------------------------------------ map
def _one_address(at: Where, raw: Mapping[str, Any]) -> None:
    given = [k for k in ("pte", "va") if k in raw]
    if len(given) > 1:
        raise at.err("give either pte: (GNTMAP_contains_pte: a PTE's machine address) or "
                     "va: (a linear address in the mapper's tables), not both",
                     "remove one of them")


def _map_address(at: Where, raw: Mapping[str, Any]) -> None:
    _one_address(at, raw)
    if "pte" not in raw and "va" not in raw:
        raise at.err("a host mapping needs an address",
                     "add pte: {table: l1, index: 5} (GNTMAP_contains_pte) or va: 0x...")


@dataclass(frozen=True, kw_only=True)
class GrantMapArgs(StepArgs):
    from_: str | int = param("domain", key="from", help="the granting domain (op.dom)")
    ref: int = param("int", help="the grant reference")
    pte: PteRef | None = param("pte", None, help="GNTMAP_contains_pte: the L1 entry Xen "
                               "writes, {table, index} (offset: adds bytes)")
    va: int | None = param("int", None, help="the linear address to map at (no "
                           "GNTMAP_contains_pte): its L1 is found through vCPU 0's tables")
    readonly: bool = param("bool", False, help="GNTMAP_readonly")
    host_map: bool = param("bool", True, help="GNTMAP_host_map (false: no mapping asked)")
    application_map: bool = param("bool", False, help="GNTMAP_application_map (_PAGE_USER)")
    handle: str | None = param("text", None, help="a name for the handle Xen returns "
                               "(grant_unmap's handle: may use it)")


def host_addr_of(run: ScenarioRun, pte: PteRef | None, va: int | None) -> int:
    """The `host_addr` of a grant operation: a PTE's machine address or a linear address."""
    if pte is not None:
        return (run.mfn(pte.table) << 12) + pte.index * 8 + pte.offset
    return va or 0


@step("grant_map", GrantMapArgs, summary="GNTTABOP_map_grant_ref: map another domain's grant "
      "(GNTMAP_host_map)", no_replay=NO_REPLAY_GRANT, validate=_map_address,
      level_hint=lambda a, abi: (a.pte.table, 1) if a.pte is not None else None)
def _grant_map(run: ScenarioRun, a: GrantMapArgs) -> Outcome:
    flags = ((grants.GNTMAP_host_map if a.host_map else 0)
             | (grants.GNTMAP_readonly if a.readonly else 0)
             | (grants.GNTMAP_application_map if a.application_map else 0)
             | (grants.GNTMAP_contains_pte if a.pte is not None else 0))
    out = grants.map_grant_ref(run.xen, run.guest.domain, domid_of(run, a.from_), a.ref, flags,
                               host_addr_of(run, a.pte, a.va))
    if a.handle is not None and out.ok and out.allocated is not None:
        run.handles[a.handle] = (run.acting or "", out.allocated)
    return out


# ------------------------------------------------------------------ unmap
@dataclass(frozen=True, kw_only=True)
class GrantUnmapArgs(StepArgs):
    handle: str | int = param("handle", help="the handle: a number, or the name grant_map "
                              "gave it")
    pte: PteRef | None = param("pte", None, help="the PTE address passed (default: the one "
                               "the map used)")
    va: int | None = param("int", None, help="the linear address passed (default: the map's)")


@dataclass(frozen=True, kw_only=True)
class GrantReplaceArgs(GrantUnmapArgs):
    new_va: int = param("int", 0, help="new_addr: the linear address whose entry moves into "
                        "the unmapped slot (0: just unmap)")


def _handle(run: ScenarioRun, handle: str | int) -> int:
    if isinstance(handle, int):
        return handle
    if handle not in run.handles:
        raise PvlabError(f"no grant_map step named a handle {handle!r}",
                         "add handle: NAME to the grant_map step, or give the number")
    return run.handles[handle][1]


def _unmap(run: ScenarioRun, a: GrantUnmapArgs, *, replace: bool, new_va: int = 0) -> Outcome:
    addr = None if a.pte is None and a.va is None else host_addr_of(run, a.pte, a.va)
    return grants.unmap_grant_ref(run.xen, run.guest.domain, _handle(run, a.handle), addr,
                                  new_addr=new_va, replace=replace)


@step("grant_unmap", GrantUnmapArgs, summary="GNTTABOP_unmap_grant_ref: remove a grant "
      "mapping by its handle", no_replay=NO_REPLAY_GRANT, validate=_one_address)
def _grant_unmap(run: ScenarioRun, a: GrantUnmapArgs) -> Outcome:
    return _unmap(run, a, replace=False)


@step("grant_unmap_and_replace", GrantReplaceArgs, summary="GNTTABOP_unmap_and_replace: "
      "unmap, moving the entry of new_va into the slot", no_replay=NO_REPLAY_GRANT,
      validate=_one_address)
def _grant_unmap_and_replace(run: ScenarioRun, a: GrantReplaceArgs) -> Outcome:
    return _unmap(run, a, replace=True, new_va=a.new_va)


# ------------------------------------------------------------------ destroy
@dataclass(frozen=True, kw_only=True)
class DestroyArgs(StepArgs):
    domain: str = param("domain", help="the domain to destroy")


@step("destroy_domain", DestroyArgs, summary="XEN_DOMCTL_destroydomain: domain_kill, "
      "domain_relinquish_resources", no_replay=NO_REPLAY_DESTROY, privileged_only=True)
def _destroy_domain(run: ScenarioRun, a: DestroyArgs) -> Outcome:
    if a.domain.upper() in SPECIAL_DOMAINS:
        raise PvlabError(f"{a.domain} is not a domain that can be destroyed",
                         "name a domain declared under domains:")
    target = run.domain_named(a.domain)
    caller = run.domains.get(run.acting or "") if run.scenario.toolstack_domain else None
    out = destroy_domain(run.xen, caller.domain if caller is not None else None,
                         target.domain)
    if out.ok:
        run.destroyed.setdefault(a.domain, run.step_number)
    return out


# ------------------------------------------------------------------ check
@dataclass(frozen=True, kw_only=True)
class ExpectGrantArgs(StepArgs):
    domain: str = param("domain", help="the granting domain")
    ref: int = param("int", help="the grant reference")
    reading: bool | None = param("bool", None, help="GTF_reading (Xen: mapped)")
    writing: bool | None = param("bool", None, help="GTF_writing (Xen: mapped writable)")
    pins: int | None = param("int", None, help="host mappings using it (active entry pin)")


@step("expect_grant", ExpectGrantArgs, summary="check a grant entry's flags and pins",
      check=True, stateless=True, no_replay="Xen's active grant entries cannot be read")
def _expect_grant(run: ScenarioRun, a: ExpectGrantArgs) -> Outcome:
    d = run.domain_named(a.domain).domain
    gt = grants.grant_table(run.xen, d)
    e = gt.shared.get(a.ref, grants.GrantEntry())
    act = gt.active.get(a.ref, grants.ActiveEntry())
    t = Tracer(f"expect_grant {a.domain} ref {a.ref}")
    actual = {"reading": bool(e.flags & grants.GTF_reading),
              "writing": bool(e.flags & grants.GTF_writing), "pins": act.pin}
    wanted = {k: getattr(a, k) for k in actual if getattr(a, k) is not None}
    bad = [f"{k} is {actual[k]}, expected {w}" for k, w in wanted.items() if actual[k] != w]
    detail = f"{a.domain} grant {a.ref}: {e.describe()}, pins r/w {act.hstr}/{act.hstw}"
    t.event("expect_grant", "fail" if bad else "pass",
            detail + ("; " + "; ".join(bad) if bad else ""), "grant table")
    return t.finish(0)
