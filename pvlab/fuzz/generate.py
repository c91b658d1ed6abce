# SPDX-License-Identifier: MIT
"""Seeded random scenarios for `pvlab fuzz`: the same family as the campaign's operation
sequences (:mod:`pvlab.xen.campaign`: trees of tables with random flags and targets,
aliases, self-maps, linear entries, pins at random levels, `mmu_update`s, vCPU contexts
and resets, VM-assists, frames below/above 4 GiB), but written in the public scenario
language, so a finding is a file a human reads and `pvlab run`/`pvlab verify` replay.

Only scenarios that `pvlab verify` replays in full are produced: every step has a replay
(:func:`replayable` asks the plan), so each scenario runs as an unprivileged domU that the
64-bit probe creates and destroys (modes ``toolstack`` and ``agent``) and all scenarios of
any bitness share one QEMU boot.
"""

from __future__ import annotations

import random
from typing import Any

from pvlab.xen.campaign import SLOTS

#: Entry flags, as names (the scenario language's spelling).
COMMON_FLAGS: tuple[tuple[str, ...], ...] = (
    ("P",), ("P", "RW"), ("P", "A"), ("P", "RW", "US", "A"), ("P", "US"), (),
    ("P", "RW", "US", "A", "D"))
EXTRA_FLAGS = ("RW", "US", "A", "D", "PS", "PWT", "PCD", "G", "NX", "BIT52", "AVAIL0")
FRAME_SPECS: tuple[dict[str, Any], ...] = (
    {}, {}, {"below": "4GiB"}, {"above": "4GiB"}, {"above": "4GiB"})
ASSISTS = ("pae_extended_cr3",)
MAX_STEPS = 12
MAX_FRAMES = 6

Scenario = dict[str, Any]


def _flags(rnd: random.Random) -> list[str]:
    if rnd.random() < 0.7:
        return list(rnd.choice(COMMON_FLAGS))
    return ["P", rnd.choice(EXTRA_FLAGS)]


class _Builder:
    def __init__(self, rnd: random.Random, bitness: int) -> None:
        self.rnd = rnd
        self.bitness = bitness
        self.top = 4 if bitness == 64 else 3
        self.frames: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, dict[int, dict[str, Any]]] = {}
        self.other = False

    def add_frames(self) -> None:
        n = self.rnd.randint(2, MAX_FRAMES)
        for i in range(n):
            spec = dict(self.rnd.choice(FRAME_SPECS))
            if i > 0 and not self.other and self.rnd.random() < 0.05:
                spec = {"owner": "other"}
                self.other = True
            self.frames[f"f{i}"] = spec

    @property
    def names(self) -> list[str]:
        return list(self.frames)

    def own(self) -> list[str]:
        return [n for n, s in self.frames.items() if s.get("owner") is None]

    def frame(self) -> str:
        return self.rnd.choice(self.own())

    def target(self) -> str:
        return self.rnd.choice(self.names)

    def slot(self) -> int:
        if self.bitness == 32 and self.rnd.random() < 0.4:
            return self.rnd.randint(0, 3)
        return self.rnd.choice(SLOTS)

    def put(self, table: str, index: int, spec: dict[str, Any]) -> None:
        self.tables.setdefault(table, {})[index] = spec

    def entry(self) -> dict[str, Any]:
        if self.rnd.random() < 0.1:
            return {"flags": _flags(self.rnd)}  # no target: a not-present or flags-only entry
        return {"to": self.target(), "flags": _flags(self.rnd)}

    def tree(self) -> None:
        """A well-formed chain top -> ... -> L1 -> data over random frames."""
        own = self.own()
        chain = [self.rnd.choice(own) for _ in range(self.top + 1)]
        rw = self.rnd.random() < 0.5
        slot = self.rnd.choice([0, 1, 3])
        for k in range(self.top):
            index = 3 if (k == 0 and self.bitness == 32) else slot
            leaf = k == self.top - 1
            flags = ["P", "RW", "A"] if (leaf and rw) else ["P", "A"] if leaf \
                else ["P", "RW", "US", "A"]
            self.put(chain[k], index, {"to": chain[k + 1], "flags": flags})

    def tables_part(self) -> None:
        for _ in range(self.rnd.randint(0, 2)):
            self.tree()
        for _ in range(self.rnd.randint(0, 4)):
            kind = self.rnd.random()
            table = self.frame()
            if kind < 0.15:  # a self-map
                self.put(table, self.slot(), {"to": table, "flags": _flags(self.rnd)})
            elif kind < 0.3 and table in self.tables and 3 in self.tables[table]:
                other = self.frame()  # an alias of slot 3 (shared slot-3 L2s)
                self.put(other, self.rnd.choice([0, 3]), dict(self.tables[table][3]))
            else:
                self.put(table, self.slot(), self.entry())

    def step(self, running: bool, vcpus: int) -> dict[str, Any]:
        rnd = self.rnd
        k = rnd.choice(["pin", "pin", "pin", "pin", "unpin", "mmu_update", "mmu_update",
                        "vcpu_initialise", "vcpu_reset", "write", "expect_entry"])
        if k == "pin":
            level = self.top if rnd.random() < 0.4 else rnd.randint(1, 4)
            return {"pin": {"frame": self.frame(), "level": level}}
        if k == "unpin":
            return {"unpin": {"frame": self.frame()}}
        if k in ("mmu_update", "write"):
            args = {"table": self.frame(), "index": self.slot(), **self.entry()}
            return {k: args}
        if k == "expect_entry":
            args = {"table": self.frame(), "index": self.slot()}
            if rnd.random() < 0.5:
                args["present"] = rnd.random() < 0.5
            else:
                args["flags"] = _flags(rnd)
            return {"expect_entry": args}
        # vCPU contexts: vCPU 0's is the probe's own in a running domU (not replayable).
        first = 1 if running else 0
        if vcpus <= first:
            return {"pin": {"frame": self.frame(), "level": self.top}}
        vcpu = rnd.randint(first, vcpus - 1)
        if k == "vcpu_reset":
            return {"vcpu_reset": {"vcpu": vcpu}}
        args = {"vcpu": vcpu, "cr3": self.frame()}
        if vcpu == 0 and rnd.random() < 0.5:
            args["vm_assists"] = rnd.choice([[], list(ASSISTS)])
        return {"vcpu_initialise": args}


def generate(seed: int, *, bitness: int | None = None) -> Scenario:
    """The scenario of `seed` (a mapping as a YAML file would hold it); the same seed and
    bitness give the same scenario."""
    rnd = random.Random(seed)
    bits = bitness or rnd.choice((32, 64))
    b = _Builder(rnd, bits)
    running = rnd.random() < 0.5
    vcpus = rnd.choice((1, 2, 2))
    guest: dict[str, Any] = {"bitness": bits, "vcpu0_initialised": running, "vcpus": vcpus}
    if running:
        guest["vm_assists"] = rnd.choice([[], [], list(ASSISTS)])
    b.add_frames()
    b.tables_part()
    steps = [b.step(running, vcpus) for _ in range(rnd.randint(1, MAX_STEPS))]
    return {"name": f"fuzz-{seed}", "guest": guest, "frames": b.frames,
            "tables": {t: dict(sorted(e.items())) for t, e in b.tables.items()},
            "steps": steps}


def replayable(data: Scenario) -> bool:
    """True when `pvlab verify` would replay every step of `data` (no skip)."""
    from pvlab.fuzz.oracle import plan_for

    try:
        plan, _side = plan_for(data, 1, "4.19")
    except Exception:  # noqa: BLE001 - a generator slip: the scenario is simply not used
        return False
    return plan.skip is None and all(s.skip is None for s in plan.steps)
