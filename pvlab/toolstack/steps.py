# SPDX-License-Identifier: MIT
"""Scenario steps for the toolstack flows (registered with the scenario step registry).

Each flow creates its own domain on the run's Xen (`run.xen`: the scenario's host,
placement, seed and profile); the scenario's own guest and frames are left alone. The
flow's result is remembered on the run (`run.toolstack`), so a later `process_l3` step can
act as that booted guest. See `docs/toolstack.md`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pvlab.errors import PvlabError
from pvlab.scenario.model import ScenarioError
from pvlab.scenario.params import param
from pvlab.scenario.registry import StepArgs, step
from pvlab.toolstack.builder import BuildOptions, build_domain
from pvlab.toolstack.dom0 import Dom0Options, build_dom0
from pvlab.toolstack.pinning import ORDERS, TableSet, flow_outcome, pin_tables
from pvlab.toolstack.restore import RestoreOptions, restore_domain
from pvlab.trace import Outcome, Tracer
from pvlab.x86.flags import RW, US, A, D, P, make_entry

if TYPE_CHECKING:
    from pvlab.scenario.runner import ScenarioRun

R = TypeVar("R")
NO_REPLAY = ("a toolstack flow creates its own domain; the probe replays hypercalls of one "
             "guest only")


def _guarded(run: ScenarioRun, number: int, op: str, fn: Callable[[], R]) -> R:
    """Run `fn`; a PvlabError becomes a ScenarioError naming the step."""
    try:
        return fn()
    except ScenarioError:
        raise
    except PvlabError as e:
        raise ScenarioError(f"{run.scenario.source}: step {number} ({op}): {e.message}",
                            e.fix) from None


def _number(run: ScenarioRun) -> int:
    """The number of the step being run."""
    return run.step_number


@dataclass(frozen=True, kw_only=True)
class KernelArgs(StepArgs):
    kernel: str = param("text", "extcr3", help="the kernel kind (pvlab.toolstack.kernel)")
    memory: int | str = param("limit", "16MiB", help="the guest's memory")
    kernel_size: int | str = param("limit", "1MiB", help="the kernel image's size")
    vcpus: int = param("whole", 1, help="vCPUs")
    l3: dict[str, int | str] | None = param("placement", None,
                                            help="force the top-level table's frame")


@dataclass(frozen=True, kw_only=True)
class BuildDomainArgs(KernelArgs):
    l3_memf32: bool = param("bool", False, help="allocate the L3 with address bits 32")
    context_assist: bool | None = param("bool", None,
                                        help="override the assist in vCPU 0's context")
    order: tuple[str, ...] | None = param("names", None, help="the build steps' order")
    skip: tuple[str, ...] = param("names", (), help="build steps to leave out")


@step("build_domain", BuildDomainArgs, no_replay=NO_REPLAY,
      summary="libxenguest's PV domU build (createdomain ... pin_table, vcpu)")
def _build_domain(run: ScenarioRun, a: BuildDomainArgs) -> Outcome:
    n = _number(run)
    opts = BuildOptions(
        kernel=a.kernel, memory=a.memory, kernel_size=a.kernel_size, vcpus=a.vcpus, l3=a.l3,
        l3_memf32=a.l3_memf32, context_assist=a.context_assist,
        order=list(a.order) if a.order is not None else None, skip=list(a.skip),
        name=f"built{n}")
    res = _guarded(run, n, "build_domain", lambda: build_domain(run.xen, opts))
    run.toolstack.append(res)
    assert res.kernel is not None
    return res.outcome(f"build_domain(kernel={res.kernel.kind})")


@step("build_dom0", KernelArgs, no_replay=NO_REPLAY,
      summary="Xen's own PV dom0 construction (dom0_construct_pv)")
def _build_dom0(run: ScenarioRun, a: KernelArgs) -> Outcome:
    opts = Dom0Options(kernel=a.kernel, memory=a.memory, kernel_size=a.kernel_size,
                       vcpus=a.vcpus, l3=a.l3)
    res = _guarded(run, _number(run), "build_dom0", lambda: build_dom0(run.xen, opts))
    run.toolstack.append(res)
    assert res.kernel is not None
    return res.outcome(f"build_dom0(kernel={res.kernel.kind})")


@dataclass(frozen=True, kw_only=True)
class RestoreArgs(StepArgs):
    format: str = param("text", "v2", help="the stream format: v2 (4.6+) or legacy (<= 4.5)")
    bitness: int = param("whole", 32, help="the saved guest's bitness")
    vcpus: int = param("whole", 2, help="vCPUs")
    processes: int = param("whole", 0, help="extra address spaces (processes)")
    extended_cr3: bool = param("bool", False, help="the saved context has pae_extended_cr3")
    l3s: dict[str, int | str] | None = param("placement", None,
                                             help="where the top-level tables land")
    pin: str = param("text", "top", help="top or all")
    order: tuple[str, ...] | None = param("names", None, help="the restore steps' order")
    skip: tuple[str, ...] = param("names", (), help="restore steps to leave out")


@step("restore_domain", RestoreArgs, no_replay=NO_REPLAY,
      summary="migration restore, v2 (4.6+) or legacy (<= 4.5)")
def _restore_domain(run: ScenarioRun, a: RestoreArgs) -> Outcome:
    n = _number(run)
    opts = RestoreOptions(
        format=a.format, bitness=a.bitness, vcpus=a.vcpus, processes=a.processes,
        extended_cr3=a.extended_cr3, l3s=a.l3s, pin=a.pin,
        order=list(a.order) if a.order is not None else None, skip=list(a.skip),
        name=f"restored{n}")
    res = _guarded(run, n, "restore_domain", lambda: restore_domain(run.xen, opts))
    run.toolstack.append(res)
    return res.outcome(f"restore_domain(format={opts.format})")


@dataclass(frozen=True, kw_only=True)
class ProcessL3Args(StepArgs):
    above: int | str | None = param("limit", None, help="allocate the table above this")
    below: int | str | None = param("limit", None, help="allocate the table below this")
    mfn: int | str | None = param("limit", None, help="allocate exactly this frame")
    enable_assist: bool = param("bool", False, help="enable pae_extended_cr3 first")


@step("process_l3", ProcessL3Args, no_replay=NO_REPLAY,
      summary="the last built/restored guest pins a new top-level table for a process")
def _process_l3(run: ScenarioRun, a: ProcessL3Args) -> Outcome:
    n = _number(run)
    flows = run.toolstack
    if not flows or flows[-1].guest is None:
        raise ScenarioError(f"{run.scenario.source}: step {n} (process_l3): no "
                            "domain was built or restored before this step",
                            "put a build_domain, build_dom0 or restore_domain step first")
    g = flows[-1].guest
    limits = {k: v for k, v in (("above", a.above), ("below", a.below), ("mfn", a.mfn))
              if v is not None}
    t = Tracer(f"process_l3 ({g.domain.label})")
    if a.enable_assist:
        out = g.vm_assist("enable", "pae_extended_cr3")
        t.outcome.events.extend(out.events)
        t.outcome.counters.add(out.counters)

    def alloc() -> tuple[int, int]:
        top = g.alloc_frame(**limits)  # type: ignore[arg-type]
        return top, g.alloc_frame()

    top, l2 = _guarded(run, n, "process_l3", alloc)
    level = g.domain.abi.top_level
    slot = 3 if level == 3 else 0  # a compat L3 must fill slot 3
    if level == 4:
        l3 = _guarded(run, n, "process_l3", g.alloc_frame)
        g.write_entry(top, 0, value=make_entry(l3, P | RW | A | D | US))
        g.write_entry(l3, 0, value=make_entry(l2, P | RW | A | D | US))
    else:
        g.write_entry(top, slot, value=make_entry(l2, P | RW | A | D | US))
    t.event("process", "info", f"new L{level} MFN {top:#x} for a process, vCPU 0 "
            f"{'initialised' if g.domain.vcpu0_initialised else 'not initialised'}",
            "guest kernel (pgd_alloc + xen_pgd_pin)", mfn=top)
    out = g.pin(top, level=level)
    t.outcome.events.extend(out.events)
    t.outcome.counters.add(out.counters)
    t.outcome.failed_mfn, t.outcome.failed_index = out.failed_mfn, out.failed_index
    return t.finish(out.rc)


@dataclass(frozen=True, kw_only=True)
class PinTablesArgs(StepArgs):
    order: str = param("text", "top_down", help=" or ".join(ORDERS))
    bitness: int = param("whole", 32, help="the guest's bitness")
    l2s: int = param("whole", 2, help="L2 tables")
    l1s_per_l2: int = param("whole", 2, help="L1 tables per L2")
    pages_per_l1: int = param("whole", 4, help="data pages per L1")


@step("pin_tables", PinTablesArgs, no_replay=NO_REPLAY,
      summary="pin a fresh pagetable tree bottom-up or top-down, then load CR3")
def _pin_tables(run: ScenarioRun, a: PinTablesArgs) -> Outcome:
    n = _number(run)
    order = a.order.replace("-", "_")
    tables = TableSet(a.bitness, a.l2s, a.l1s_per_l2, a.pages_per_l1)
    res = _guarded(run, n, "pin_tables", lambda: pin_tables(run.xen, tables, order=order,
                                                            name=f"tables{n}"))
    run.toolstack.append(res)
    return flow_outcome(res, f"pin_tables(order={order})")
