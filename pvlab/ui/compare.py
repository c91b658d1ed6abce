# SPDX-License-Identifier: MIT
"""The same scenario under two Xen profiles, pictures side by side (no widgets needed).

```python
from pvlab.ui.compare import side_by_side
side_by_side("tests/scenarios/951-xsa-182-l4-fast-path-rw-recursive.yaml",
             ("pre-xsa-182", "4.19"))          # display it: two pictures and the results
```

Each side is the render's `tables_view` of the run stopped after the step that differs
(or after `stop_after` steps), with the danger marking; the HTML uses the same inline
SVG as the lab's compare mode (`pvlab.render.view.inline_svg`). Notebook 7 uses it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from pvlab.render import View, tables_view
from pvlab.render.danger import dangers_in
from pvlab.render.view import inline_svg
from pvlab.scenario import Scenario, ScenarioRun, load_scenario, run_scenario
from pvlab.xen.profiles import PROFILES, get_profile


def fit_svg(svg: str) -> str:
    """An inline SVG scaled down to its column (its viewBox keeps the proportions): two
    pictures of 1000+ points side by side otherwise each need a horizontal scroll."""
    return re.sub(r"<svg\b", '<svg style="max-width:100%;height:auto"', svg, count=1)


def compare_partner(profile: str) -> str:
    """The profile to draw beside `profile` by default: a `pre-xsa-NNN` profile's fixed
    version (the release it is taken from, 4.19), else 4.17 beside 4.19 and 4.19 beside
    anything else."""
    p = get_profile(profile)
    if p.advisory is not None:
        return "4.19"
    return "4.17" if p.name == "4.19" else "4.19"


def scenario_partner(scn: Scenario, profile: str) -> str:
    """:func:`compare_partner`, except that a scenario whose expectations name a
    `pre-xsa-NNN` profile (the XSA scenarios 950-955) pairs fixed Xen with it."""
    p = get_profile(profile)
    if p.advisory is None:
        for s in scn.steps:
            if isinstance(s.expect, dict):
                for key in s.expect:
                    other = PROFILES.get(str(key))
                    if other is not None and other.advisory is not None:
                        return other.name
    return compare_partner(profile)


def compare_choices() -> list[tuple[str, str]]:
    """(label, profile) for a compare menu: every profile, each pre-xsa-NNN one named
    with the advisory it leaves out and the fixed profile it pairs with."""
    out = []
    for name, p in PROFILES.items():
        if p.advisory is not None:
            out.append((f"{name} (XSA-{p.advisory.xsa} open; fixed: "
                        f"{compare_partner(name)})", name))
        else:
            out.append((f"Xen {name}", name))
    return out


def first_difference(scn: Scenario, a: str, b: str) -> int | None:
    """The number of the first step whose result differs between profiles `a` and `b`."""
    ra, rb = run_scenario(scn, profile=a), run_scenario(scn, profile=b)
    for sa, sb in zip(ra.steps, rb.steps, strict=False):
        if sa.result != sb.result or sa.held != sb.held:
            return sa.index
    return None


@dataclass
class Side:
    profile: str
    run: ScenarioRun
    view: View

    @property
    def label(self) -> str:
        last = self.run.steps[-1] if self.run.steps else None
        res = "" if last is None else f": step {last.index} → {last.result}"
        return f"Xen {self.profile}{res}"


@dataclass
class SideBySide:
    """Two runs of one scenario; Jupyter shows both pictures next to each other."""

    scenario: Scenario
    step: int | None
    sides: tuple[Side, Side]

    def text(self) -> str:
        out = [f"{self.scenario.name}: step {self.step}" if self.step else self.scenario.name]
        for s in self.sides:
            last = s.run.steps[-1] if s.run.steps else None
            out.append(f"  {s.label}" + (f" — {last.outcome.reason}"
                                          if last is not None and last.outcome.reason else ""))
            out.extend(f"    {d}" for d in dangers_in(s.view.model))
        return "\n".join(out)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        cols = []
        for s in self.sides:
            bad = bool(dangers_in(s.view.model)) or (s.run.steps and
                                                     s.run.steps[-1].outcome.crashed)
            colour = "#b71c1c" if bad else "#1b5e20"
            notes = "".join(f"<li>{html.escape(d)}</li>" for d in dangers_in(s.view.model))
            cols.append(
                f'<div style="flex:1;min-width:0"><b style="color:{colour}">'
                f"{html.escape(s.label)}</b>" + (f"<ul>{notes}</ul>" if notes else "")
                + f'<div style="overflow:auto">{fit_svg(inline_svg(s.view.svg()))}</div>'
                + "</div>")
        return '<div style="display:flex;gap:1em">' + "".join(cols) + "</div>"


def side_by_side(scenario: str | Path | Scenario, profiles: tuple[str, str],
                 *, stop_after: int | None = None) -> SideBySide:
    """Run `scenario` under both `profiles` up to the first step where they differ (or
    `stop_after` steps) and draw both states."""
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    a, b = (get_profile(p).name for p in profiles)
    step = stop_after if stop_after is not None else first_difference(scn, a, b)
    sides = []
    for prof in (a, b):
        run = run_scenario(scn, profile=prof, stop_after=step)
        sides.append(Side(prof, run, tables_view(run)))
    return SideBySide(scn, step, (sides[0], sides[1]))


__all__ = ["SideBySide", "compare_choices", "compare_partner", "first_difference",
           "scenario_partner",
           "side_by_side"]
