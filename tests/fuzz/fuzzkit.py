# SPDX-License-Identifier: MIT
"""A stand-in oracle for the fuzzer's unit tests: pvlab itself under another profile plays
"Xen" (no QEMU). The real-Xen tests are in test_fuzz_real_xen.py."""

from __future__ import annotations

from typing import Any

from pvlab.fuzz.oracle import Result, plan_for, pvlab_side
from pvlab.verify.compare import Row, ScenarioReport


def model_oracle(model: str, oracle_profile: str):  # noqa: ANN201 - a test helper
    """A batch oracle whose "Xen" is pvlab under `oracle_profile`."""

    def run(datas: list[dict[str, Any]], stop_at_crash: bool = False) -> list[Result]:
        out = []
        for sid, data in enumerate(datas, start=1):
            plan, (mine, _frames) = plan_for(data, sid, model)
            theirs, _ = pvlab_side(data, oracle_profile)
            rep = ScenarioReport(plan, model)
            for step in plan.steps:
                a, b = mine[step.index].result, theirs[step.index].result
                rep.rows.append(Row(step.index, step.op, None, a, b,
                                    "agree" if a == b else "DISAGREE"))
            out.append(Result(data, rep))
        return out

    run.boots = 0  # type: ignore[attr-defined]
    return run
