# SPDX-License-Identifier: MIT
"""Scenario steps for the toolstack flows (imported by the scenario runner).

Each flow creates its own domain on the run's Xen (`run.xen`: the scenario's host,
placement, seed and profile); the scenario's own guest and frames are left alone. The
flow's result is remembered on the run, so a later `process_l3` step can act as that
booted guest. See `docs/toolstack.md`.
"""

from __future__ import annotations

from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario.model import ScenarioError
from pvlab.scenario.registry import register_step
from pvlab.toolstack.builder import BuildOptions, build_domain
from pvlab.toolstack.dom0 import Dom0Options, build_dom0
from pvlab.toolstack.flow import FlowResult
from pvlab.toolstack.pinning import TableSet, flow_outcome, pin_tables
from pvlab.toolstack.restore import RestoreOptions, restore_domain
from pvlab.trace import Outcome, Tracer
from pvlab.units import parse_size
from pvlab.x86.flags import RW, US, A, D, P, make_entry


def _err(run: Any, step: Any, key: str, problem: str, fix: str) -> ScenarioError:
    return ScenarioError(f"{run.scenario.source}: step {step.number} ({step.op}): key {key!r}: "
                         f"{problem}", fix)


def _bool(run: Any, step: Any, key: str, default: bool | None = None) -> bool | None:
    v = step.args.get(key, default)
    if v is not None and not isinstance(v, bool):
        raise _err(run, step, key, f"{v!r} is not true or false", f"write {key}: true")
    return v


def _int(run: Any, step: Any, key: str, default: int) -> int:
    v = step.args.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(run, step, key, f"{v!r} is not a whole number", f"write {key}: 2")
    return v


def _names(run: Any, step: Any, key: str) -> list[str] | None:
    v = step.args.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _err(run, step, key, "expected a list of step names",
                   f"write {key}: [setup_pgtables, pin_table]")
    return v


def _placement(run: Any, step: Any, key: str) -> dict[str, int | str] | None:
    v = step.args.get(key)
    if v is None:
        return None
    if not isinstance(v, dict) or not v or set(v) - {"above", "below", "mfn"}:
        raise _err(run, step, key, f"{v!r} is not a frame placement",
                   f"write {key}: {{above: 4GiB}}, {{below: 4GiB}} or {{mfn: 0x100200}}")
    out: dict[str, int | str] = {}
    for k, val in v.items():
        try:
            out[k] = int(val) if k == "mfn" else parse_size(val, what=k)
        except (PvlabError, ValueError, TypeError) as e:
            raise _err(run, step, key, f"{k}: {val!r} is not valid", "write e.g. 4GiB") from e
    return out


def _remember(run: Any, res: FlowResult) -> None:
    run.__dict__.setdefault("toolstack", []).append(res)


def _guarded(run: Any, step: Any, fn: Any) -> Any:
    try:
        return fn()
    except ScenarioError:
        raise
    except PvlabError as e:
        raise ScenarioError(f"{run.scenario.source}: step {step.number} ({step.op}): "
                            f"{e.message}", e.fix) from None


@register_step("build_domain", required=set(),
               optional={"kernel", "memory", "kernel_size", "vcpus", "l3", "l3_memf32",
                         "context_assist", "order", "skip"},
               doc="libxenguest's PV domU build (createdomain ... pin_table, vcpu)")
def _build_domain(run: Any, step: Any) -> Outcome:
    a = step.args
    opts = BuildOptions(
        kernel=str(a.get("kernel", "extcr3")), memory=a.get("memory", "16MiB"),
        kernel_size=a.get("kernel_size", "1MiB"), vcpus=_int(run, step, "vcpus", 1),
        l3=_placement(run, step, "l3"), l3_memf32=bool(_bool(run, step, "l3_memf32", False)),
        context_assist=_bool(run, step, "context_assist"), order=_names(run, step, "order"),
        skip=_names(run, step, "skip") or [], name=f"built{step.number}")
    res = _guarded(run, step, lambda: build_domain(run.xen, opts))
    _remember(run, res)
    return res.outcome(f"build_domain(kernel={res.kernel.kind})")


@register_step("build_dom0", required=set(),
               optional={"kernel", "memory", "kernel_size", "vcpus", "l3"},
               doc="Xen's own PV dom0 construction (dom0_construct_pv)")
def _build_dom0(run: Any, step: Any) -> Outcome:
    a = step.args
    opts = Dom0Options(kernel=str(a.get("kernel", "extcr3")), memory=a.get("memory", "16MiB"),
                       kernel_size=a.get("kernel_size", "1MiB"),
                       vcpus=_int(run, step, "vcpus", 1), l3=_placement(run, step, "l3"))
    res = _guarded(run, step, lambda: build_dom0(run.xen, opts))
    _remember(run, res)
    return res.outcome(f"build_dom0(kernel={res.kernel.kind})")


@register_step("restore_domain", required=set(),
               optional={"format", "bitness", "vcpus", "processes", "extended_cr3", "l3s",
                         "pin", "order", "skip"},
               doc="migration restore, v2 (4.6+) or legacy (<= 4.5)")
def _restore_domain(run: Any, step: Any) -> Outcome:
    a = step.args
    opts = RestoreOptions(
        format=str(a.get("format", "v2")), bitness=_int(run, step, "bitness", 32),
        vcpus=_int(run, step, "vcpus", 2), processes=_int(run, step, "processes", 0),
        extended_cr3=bool(_bool(run, step, "extended_cr3", False)),
        l3s=_placement(run, step, "l3s"), pin=str(a.get("pin", "top")),
        order=_names(run, step, "order"), skip=_names(run, step, "skip") or [],
        name=f"restored{step.number}")
    res = _guarded(run, step, lambda: restore_domain(run.xen, opts))
    _remember(run, res)
    return res.outcome(f"restore_domain(format={opts.format})")


@register_step("process_l3", required=set(), optional={"above", "below", "mfn", "enable_assist"},
               doc="the last built/restored guest pins a new top-level table for a process")
def _process_l3(run: Any, step: Any) -> Outcome:
    flows = run.__dict__.get("toolstack") or []
    if not flows or flows[-1].guest is None:
        raise ScenarioError(f"{run.scenario.source}: step {step.number} (process_l3): no "
                            "domain was built or restored before this step",
                            "put a build_domain, build_dom0 or restore_domain step first")
    g = flows[-1].guest
    limits = {k: step.args[k] for k in ("above", "below", "mfn") if k in step.args}
    t = Tracer(f"process_l3 ({g.domain.label})")
    if _bool(run, step, "enable_assist", False):
        out = g.vm_assist("enable", "pae_extended_cr3")
        t.outcome.events.extend(out.events)
        t.outcome.counters.add(out.counters)

    def alloc() -> tuple[int, int]:
        top = g.alloc_frame(**limits)
        return top, g.alloc_frame()

    top, l2 = _guarded(run, step, alloc)
    level = g.domain.abi.top_level
    slot = 3 if level == 3 else 0  # a compat L3 must fill slot 3
    if level == 4:
        l3 = _guarded(run, step, g.alloc_frame)
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


@register_step("pin_tables", required=set(),
               optional={"order", "bitness", "l2s", "l1s_per_l2", "pages_per_l1"},
               doc="pin a fresh pagetable tree bottom-up or top-down, then load CR3")
def _pin_tables(run: Any, step: Any) -> Outcome:
    order = str(step.args.get("order", "top_down")).replace("-", "_")
    ts = TableSet(_int(run, step, "bitness", 32), _int(run, step, "l2s", 2),
                  _int(run, step, "l1s_per_l2", 2), _int(run, step, "pages_per_l1", 4))
    res = _guarded(run, step, lambda: pin_tables(run.xen, ts, order=order,
                                                 name=f"tables{step.number}"))
    _remember(run, res)
    return flow_outcome(res, f"pin_tables(order={order})")
