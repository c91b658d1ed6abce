# SPDX-License-Identifier: MIT
"""Predict an operation's outcome: ok, or which errno and which rule refuses it.

The problem is a scenario; the answer is what the lab's own scenario runner gives for
its last step: the result and the id of the rule (from the rules registry) that failed.
"""

from __future__ import annotations

import random
from typing import Any

from pvlab.exercises.answers import as_prediction
from pvlab.exercises.kinds.common import load_text, observe
from pvlab.exercises.problem import Kind, Problem, Verdict, register_kind
from pvlab.xen.rules import PV32, PV64

QUESTION = ("Predict the outcome of the LAST step of this scenario: give (result, reason), "
            "result = \"ok\" or an errno name, reason = the id of the rule that refuses it "
            "(see pvlab.exercises.reasons()), or None when the result is ok.")


def predict_problem(yaml_text: str, *, hints: tuple[str, ...] = (), profile: str | None = None,
                    note: str = "") -> Problem:
    """A prediction problem over a fixed scenario (its answer computed by running it)."""
    scn = load_text(yaml_text, "predict")
    _, obs = observe(scn, profile=profile)
    assert obs is not None, "a prediction scenario needs an operation step"
    answer = (obs.result, obs.rule)
    q = "\n".join(([note] if note else []) + [QUESTION, "", yaml_text.strip()])
    expl = obs.step.outcome.explain()
    return Problem("predict", q, answer, {"yaml": yaml_text, "profile": profile}, expl,
                   hints or generic_hints(obs.step.outcome.op))


def generic_hints(op: str) -> tuple[str, ...]:
    return (
        "Follow what Xen does for this operation in order: which frames it takes references "
        "on, and which entries it validates.",
        "Look at each entry the operation validates and its flags against that level's rules "
        "(print pvlab.exercises.reasons() for the list).",
        "Then look at the frames the entries point at: who owns them and what type they "
        "already hold.",
    )


def judge_predict(p: Problem, answer: Any) -> Verdict:
    result, rule = as_prediction(answer)
    _, obs = observe(load_text(p.data["yaml"], "predict"), profile=p.data.get("profile"))
    assert obs is not None
    if result != obs.result:
        if obs.result == "ok":
            return Verdict(False, "Xen accepts this operation: no rule refuses it.")
        if result == "ok":
            return Verdict(False, "Xen refuses this operation.")
        return Verdict(False, "Xen refuses it, but with a different errno.")
    if obs.result == "ok":
        return Verdict(True, "Xen accepts it.")
    if rule is None:
        return Verdict(False, "The errno is right; now name the rule that refuses it.")
    if rule != obs.rule:
        return Verdict(False, "The errno is right, but that rule is not the one that fails "
                              "here.")
    return Verdict(True, "Right result, right reason.")


# --------------------------------------------------------------------------- generator
_L3_OK = ["RW", "US", "A", "D", "AVAIL0"]
_L3_BAD = ["PWT", "PCD", "PS", "G", "NX", "BIT52"]
_L2_BAD = ["PWT", "PCD", "PS", "G"]


def _flags(names: list[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _compat_l3(rng: random.Random, difficulty: str) -> str:
    slot = rng.randrange(4)
    extra = rng.sample(_L3_OK, rng.randrange(0 if difficulty == "pencil" else 1, 3))
    if rng.random() < 0.5:
        extra.append(rng.choice(_L3_BAD))
    entries = {3: ["P"], slot: ["P", *extra]}
    lines = "\n".join(f"    {i}: {{to: l2_{i}, flags: {_flags(f)}}}"
                      for i, f in sorted(entries.items()))
    frames = "\n".join(f"  l2_{i}: {{}}" for i in sorted(entries))
    return f"""name: predict-compat-l3
guest: {{bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}}
frames:
  l3: {{}}
{frames}
tables:
  l3:
{lines}
steps:
  - pin: {{frame: l3, level: 3}}
"""


def _l1_map(rng: random.Random, difficulty: str) -> str:
    bitness = rng.choice([32, 64])
    self_flags = ["P", "A"] + (["RW"] if rng.random() < 0.5 else [])
    data_flags = ["P", "RW", "A", "D"] + (["PCD"] if difficulty != "pencil" and
                                          rng.random() < 0.3 else [])
    return f"""name: predict-l1
guest: {{bitness: {bitness}, vcpu0_initialised: true}}
frames:
  l1: {{}}
  data: {{}}
tables:
  l1:
    {rng.randrange(8)}: {{to: data, flags: {_flags(data_flags)}}}
    {rng.randrange(8, 16)}: {{to: l1, flags: {_flags(self_flags)}}}
steps:
  - pin: {{frame: l1, level: 1}}
"""


def _seed(rng: random.Random, difficulty: str) -> str:
    high = rng.random() < 0.7
    frame = "{above: 4GiB}" if high else "{below: 4GiB}"
    assists = "[pae_extended_cr3]" if rng.random() < 0.3 else "[]"
    init = "true" if rng.random() < 0.75 else "false"
    xen = rng.choice(["4.17", "4.19", "4.19"])
    return f"""name: predict-seed
xen: "{xen}"
guest: {{bitness: 32, vm_assists: {assists}, vcpu0_initialised: {init}}}
frames:
  l3: {frame}
  l2: {{}}
tables:
  l3:
    3: {{to: l2, flags: [P]}}
steps:
  - pin: {{frame: l3, level: 3}}
"""


def _l2_flags(rng: random.Random, difficulty: str) -> str:
    flags = ["P", "RW", "US", "A"]
    if rng.random() < 0.6:
        flags.append(rng.choice(_L2_BAD))
    return f"""name: predict-l2
guest: {{bitness: {rng.choice([32, 64])}, vcpu0_initialised: true}}
frames:
  l2: {{}}
  l1: {{}}
tables:
  l2:
    {rng.randrange(4 if difficulty == "pencil" else 400)}: {{to: l1, flags: {_flags(flags)}}}
steps:
  - pin: {{frame: l2, level: 2}}
"""


def _retype(rng: random.Random, difficulty: str) -> str:
    first, second = rng.sample([1, 2, 3, 4], 2) if difficulty != "pencil" else (1, 2)
    unpin = "\n  - unpin: {frame: x}" if rng.random() < 0.4 else ""
    return f"""name: predict-retype
guest: {{bitness: 64, vcpu0_initialised: true}}
frames:
  x: {{}}
steps:
  - pin: {{frame: x, level: {first}}}{unpin}
  - pin: {{frame: x, level: {second}}}
"""


TEMPLATES = (_compat_l3, _l1_map, _seed, _l2_flags, _retype)


def make_predict(rng: random.Random, difficulty: str) -> Problem:
    template = rng.choice(TEMPLATES)
    return predict_problem(template(rng, difficulty))


def reasons() -> dict[str, str]:
    """Rule id -> one-line summary, for both guest bitnesses (the `reason` answers)."""
    out: dict[str, str] = {}
    for rs in (PV64, PV32):
        for r in rs:
            if r.errno is None:
                continue
            if r.id in out and r.summary not in out[r.id]:
                out[r.id] += f" (32-bit guests:) {r.summary}"
            else:
                out.setdefault(r.id, r.summary)
    return dict(sorted(out.items()))


register_kind(Kind("predict", "predict an operation's outcome (ok or errno) and its reason",
                   judge_predict, make_predict))
