# SPDX-License-Identifier: MIT
"""Shrink a finding by delta debugging, every round's candidates run in one boot.

A candidate is the original scenario minus a set of *removals*: a step, a table entry, a
frame (only when nothing names it any more), a second vCPU, the guest's VM-assists, a flag
of an entry. One round tries, in a single batch: every candidate that removes one more
item, and the candidate that removes all the items that each kept the difference in the
previous round. The smallest candidate that still shows the same signature wins; rounds
go on until none does (or the round limit). Steps after the first differing step are
removed up front (they cannot change it) and confirmed in the first round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pvlab.fuzz.findings import Signature
from pvlab.fuzz.generate import replayable
from pvlab.fuzz.oracle import Result

Scenario = dict[str, Any]
Item = tuple[Any, ...]
#: Runs a batch of scenarios (one boot on real Xen) -> one result per scenario; the bool
#: says "stop at the first crash" (the later scenarios then have no result).
Oracle = Callable[[list[Scenario], bool], list[Result]]
#: The signature of a result (None: no unknown difference).
Sign = Callable[[Result], Signature | None]


def items(data: Scenario) -> list[Item]:
    """Everything a removal may take from `data`, cheapest-to-lose last."""
    out: list[Item] = [("step", i) for i in range(len(data.get("steps") or []))]
    for table, entries in (data.get("tables") or {}).items():
        out += [("entry", table, int(idx)) for idx in entries]
        for idx, spec in entries.items():
            out += [("flag", table, int(idx), fl) for fl in spec.get("flags") or []
                    if fl != "P"]
    out += [("frame", name) for name in data.get("frames") or {}]
    guest = data.get("guest") or {}
    if int(guest.get("vcpus", 1)) > 1:
        out.append(("vcpus",))
    if guest.get("vm_assists"):
        out.append(("assists",))
    return out


def _names_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_names_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_names_in(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def materialise(data: Scenario, removals: frozenset[Item]) -> Scenario | None:
    """`data` without `removals`, or None when that is no replayable scenario."""
    out = copy.deepcopy(data)
    out["steps"] = [s for i, s in enumerate(out.get("steps") or []) if ("step", i) not in
                    removals]
    if not out["steps"]:
        return None
    tables = {}
    for table, entries in (out.get("tables") or {}).items():
        kept = {}
        for idx, spec in entries.items():
            if ("entry", table, int(idx)) in removals:
                continue
            if "flags" in spec:
                spec["flags"] = [fl for fl in spec["flags"]
                                 if ("flag", table, int(idx), fl) not in removals]
            kept[idx] = spec
        if kept:
            tables[table] = kept
    out["tables"] = tables
    guest = out.setdefault("guest", {})
    if ("vcpus",) in removals:
        guest["vcpus"] = 1
    if ("assists",) in removals:
        guest["vm_assists"] = []
    gone = {name for (kind, *rest) in removals if kind == "frame" for name in rest}
    if gone:
        used = _names_in(out["tables"]) | _names_in(out["steps"]) | set(out["tables"])
        if gone & used:
            return None
        out["frames"] = {n: s for n, s in out["frames"].items() if n not in gone}
    try:
        return out if replayable(out) else None
    except Exception:  # noqa: BLE001 - an invalid candidate is simply not tried
        return None


def size(data: Scenario) -> int:
    return len(items(data))


@dataclass
class Shrunk:
    data: Scenario
    result: Result
    rounds: int
    boots: int


def first_difference_step(result: Result) -> int | None:
    """The 1-based number of the first differing (or crashing) step, if known."""
    rep = result.report
    if rep is not None and rep.disagreements:
        return rep.disagreements[0].step
    if result.crash is not None:
        return result.crash.step
    return None


def _chunks(rest: list[Item], base: frozenset[Item]) -> list[frozenset[Item]]:
    """ddmin's big moves: drop a half, a quarter, an eighth of what is left."""
    out = []
    for n in (2, 4, 8):
        if len(rest) < n:
            break
        size = -(-len(rest) // n)
        out += [base | frozenset(rest[k:k + size]) for k in range(0, len(rest), size)]
    return out


def _candidates(data: Scenario, offers: list[frozenset[Item]], limit: int,
                ) -> list[tuple[frozenset[Item], Scenario]]:
    """The valid, distinct candidates among `offers` (at most `limit`)."""
    out: list[tuple[frozenset[Item], Scenario]] = []
    seen: set[frozenset[Item]] = set()
    for rem in offers:
        if rem in seen:
            continue
        seen.add(rem)
        cand = materialise(data, rem)
        if cand is not None:
            out.append((rem, cand))
            if len(out) >= limit:
                break
    return out


def shrink(data: Scenario, result: Result, sig: Signature, oracle: Oracle, sign: Sign, *,
           max_rounds: int = 12, max_candidates: int = 200) -> Shrunk:
    """Delta-debug `data` (whose `result` shows `sig`) to a smaller scenario with `sig`.

    Any candidate that shows `sig` is a valid reproducer on its own, so a round simply
    keeps the smallest one that does. A crash ends its boot, so for a crash the candidates
    run smallest first and the boot stops at the first crash: one boot per reduction."""
    crash = sig[0] == "crash"
    removals: frozenset[Item] = frozenset()
    best_data, best_result = data, result
    cut = first_difference_step(result)
    pre: frozenset[Item] = frozenset()
    if cut is not None:
        pre = frozenset(("step", i) for i in range(cut, len(data.get("steps") or [])))
    kept_last: set[Item] = set()
    rounds = boots = 0
    while rounds < max_rounds:
        rounds += 1
        base = pre if rounds == 1 and pre else removals
        offers = [pre] if rounds == 1 and pre else []
        if len(kept_last) > 1:
            offers.append(removals | kept_last)
        rest = [it for it in items(data) if it not in base]
        offers += _chunks(rest, base) + [base | {it} for it in rest]
        pending = _candidates(data, offers, max_candidates)
        if crash:
            pending.sort(key=lambda p: size(p[1]))
        if not pending:
            break
        results = oracle([c for _, c in pending], crash)
        boots += 1
        good = [(rem, c, r) for (rem, c), r in zip(pending, results, strict=True)
                if sign(r) == sig]
        if not good:
            break
        rem, cand, res = min(good, key=lambda g: (size(g[1]), -len(g[0])))
        kept_last = {next(iter(r - base)) for r, _, _ in good if len(r - base) == 1}
        kept_last -= rem
        removals, best_data, best_result = rem, cand, res
    return Shrunk(best_data, best_result, rounds, boots)
