# SPDX-License-Identifier: MIT
"""pvlab: Xen's paravirtualised x86 memory management, emulated and explained.

```python
from pvlab import Xen
xen = Xen(profile="4.19")
g = xen.create_domain(bitness=32)
l3, l2 = g.alloc_frame(above="4GiB"), g.alloc_frame()
g.write_entry(l3, 3, l2, "P")
print(g.pin(l3, level=3).explain())
```
"""

from __future__ import annotations

from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario import ScenarioError, load_scenario, run_scenario
from pvlab.trace import Errno, Event, Outcome
from pvlab.xen import PROFILES, Guest, Xen, get_profile

__version__ = "0.1.0"

__all__ = ["Errno", "Event", "Guest", "Outcome", "PROFILES", "PvlabError", "ScenarioError",
           "Xen", "__version__", "check", "generate", "get_profile", "load_scenario",
           "run_scenario"]


def __getattr__(name: str) -> Any:
    # The exercise helpers live in pvlab.exercises; imported on first use.
    if name in ("check", "generate"):
        from pvlab import exercises

        return getattr(exercises, name)
    raise AttributeError(f"module 'pvlab' has no attribute {name!r}")
