# SPDX-License-Identifier: MIT
"""The fuzzing loop: generate a batch, run it in pvlab and on real Xen in one boot, filter
the known differences, shrink each new finding and write it, until the budget is spent."""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError
from pvlab.fuzz.findings import Finding, Signature, kind_of, signature, unknown_rows, write_finding
from pvlab.fuzz.generate import generate, replayable
from pvlab.fuzz.known import Known, known_crash
from pvlab.fuzz.oracle import BatchFigures, Crash, Result, pvlab_side, run_batch
from pvlab.fuzz.shrink import shrink

Scenario = dict[str, Any]


@dataclass
class FuzzConfig:
    xen: Path
    model: str  # the profile pvlab plays
    budget: float = 600.0  # seconds of fuzzing (shrinking a finding may run past it)
    seed: int = 0
    bitness: int | None = None
    out: Path | None = None
    known: list[Known] = field(default_factory=list)
    batch: int = 400  # most scenarios per boot
    shrink: bool = True
    max_findings: int = 25
    boot_timeout: float | None = None
    max_scenarios: int | None = None  # stop after this many (a fixed amount of work for CI)


@dataclass
class Figures:
    scenarios: int = 0
    steps: int = 0
    boots: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    known: Counter[str] = field(default_factory=Counter)
    paths: list[Path] = field(default_factory=list)
    next_seed: int = 0
    batch_seconds: float = 0.0  # time in fuzzing batches (not shrinking): sizes the next batch

    @property
    def rate(self) -> float:
        return self.scenarios / self.seconds if self.seconds else 0.0

    def by_kind(self) -> dict[str, int]:
        c = Counter(f.kind for f in self.findings)
        return {k: c.get(k, 0) for k in ("difference", "crash", "problem", "model crash")}

    def line(self, left: float | None = None) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.by_kind().items() if n)
        text = (f"[fuzz] {self.scenarios} scenarios, {self.steps} steps replayed, "
                f"{len(self.findings)} finding(s){f' ({kinds})' if kinds else ''}, "
                f"{sum(self.known.values())} known, {self.boots} boots, "
                f"{self.rate * 60:.0f} scenarios/min")
        if left is not None:
            text += f", {max(left, 0):.0f} s left"
        return text

    def summary(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "steps": self.steps, "boots": self.boots,
                "seconds": round(self.seconds, 1), "scenarios_per_10min": round(self.rate * 600),
                "findings": len(self.findings), "findings_by_kind": self.by_kind(),
                "known": dict(self.known), "next_seed": self.next_seed,
                "finding_files": [str(p) for p in self.paths],
                "finding_list": [{"kind": f.kind, "summary": f.summary(), "seed": f.seed,
                                  "steps": len(f.data.get("steps") or []),
                                  "original_steps": f.original_steps,
                                  "duplicates": len(f.duplicates)} for f in self.findings]}


def _batch_size(cfg: FuzzConfig, figs: Figures, left: float) -> int:
    """As many scenarios as fit in the time left (at the rate seen so far), at most cfg.batch."""
    per = figs.batch_seconds / figs.scenarios if figs.scenarios else 0.3
    fit = int((left - 8.0) / max(per, 0.05))
    return max(10, min(cfg.batch, fit))


def fuzz(cfg: FuzzConfig, *, progress: Callable[[str], None] = lambda _m: None) -> Figures:
    """Fuzz until `cfg.budget` seconds are spent; returns the figures and findings."""
    figs = Figures(next_seed=cfg.seed)
    t0 = time.monotonic()
    by_sig: dict[Signature, Finding] = {}
    bfigs = BatchFigures()

    def oracle(datas: list[Scenario], stop_at_crash: bool = False) -> list[Result]:
        before = bfigs.boots
        res = run_batch(datas, model=cfg.model, xen=cfg.xen, timeout=cfg.boot_timeout,
                        figures=bfigs, stop_at_crash=stop_at_crash, progress=progress)
        figs.boots += bfigs.boots - before
        return res

    def sign(r: Result) -> Signature | None:
        return signature(r, cfg.known, cfg.model)

    while True:
        left = cfg.budget - (time.monotonic() - t0)
        if left <= 5.0 or len(figs.findings) >= cfg.max_findings:
            break
        n = _batch_size(cfg, figs, left)
        if cfg.max_scenarios is not None:
            n = min(n, cfg.max_scenarios - figs.scenarios)
            if n <= 0:
                break
        seeds: list[int] = []
        datas: list[Scenario] = []
        while len(datas) < n:
            seed = figs.next_seed
            figs.next_seed += 1
            data = generate(seed, bitness=cfg.bitness)
            crash = _model_crash(data, cfg.model)
            if crash is not None:  # pvlab itself broke: a finding, no boot needed
                msig: Signature = ("model-crash", crash.headline)
                if msig in by_sig:
                    by_sig[msig].duplicates.append(seed)
                else:
                    by_sig[msig] = Finding(msig, seed, len(data["steps"]),
                                           Result(data, crash=crash))
                    _record(cfg, figs, by_sig[msig], progress)
                continue
            if replayable(data):
                seeds.append(seed)
                datas.append(data)
        steps_before = bfigs.steps
        tb = time.monotonic()
        results = oracle(datas)
        figs.seconds += time.monotonic() - tb
        figs.batch_seconds += time.monotonic() - tb
        figs.scenarios += len(datas)
        figs.steps += bfigs.steps - steps_before
        new: list[tuple[int, Result, Signature]] = []
        for seed, res in zip(seeds, results, strict=True):
            _rows, nknown = unknown_rows(res, cfg.known, cfg.model)
            if nknown:
                figs.known["step differences"] += nknown
            if res.crash is not None and known_crash(cfg.known, res.crash.headline, cfg.model):
                figs.known["crashes"] += 1
            sig = sign(res)
            if sig is None:
                continue
            if sig in by_sig:
                by_sig[sig].duplicates.append(seed)
                continue
            finding = Finding(sig, seed, len(res.data.get("steps") or []), res)
            by_sig[sig] = finding
            new.append((seed, res, sig))
        progress(figs.line(cfg.budget - (time.monotonic() - t0)))
        for seed, res, sig in new:
            if len(figs.findings) >= cfg.max_findings:
                break
            finding = by_sig[sig]
            if cfg.shrink:
                progress(f"[fuzz] shrinking seed {seed}: {kind_of(sig)} {' '.join(sig[1:])}")
                ts = time.monotonic()
                shrunk = shrink(res.data, res, sig, oracle, sign)
                figs.seconds += time.monotonic() - ts
                finding.result = shrunk.result
                finding.boots = shrunk.boots
                progress(f"[fuzz] seed {seed} shrunk from {finding.original_steps} to "
                         f"{len(shrunk.data.get('steps') or [])} step(s) in {shrunk.boots} "
                         "boot(s)")
            _record(cfg, figs, finding, progress)
    return figs


def _record(cfg: FuzzConfig, figs: Figures, finding: Finding,
            progress: Callable[[str], None]) -> None:
    figs.findings.append(finding)
    if cfg.out is not None:
        path = write_finding(finding, cfg.out, profile=cfg.model, xen=str(cfg.xen),
                             index=len(figs.findings))
        figs.paths.append(path)
        progress(f"[fuzz] finding written: {path}")


def _model_crash(data: Scenario, model: str) -> Crash | None:
    """pvlab's own crash on `data` (an exception that is not a user error), if any."""
    try:
        pvlab_side(data, model)
    except PvlabError:
        return None  # an invalid scenario: the generator's slip, not a finding
    except Exception as err:  # noqa: BLE001 - a crash of the model is a finding
        lines = traceback.format_exc(limit=8).splitlines()
        return Crash("model", f"{type(err).__name__}: {err}"[:200], lines)
    return None
