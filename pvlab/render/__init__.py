# SPDX-License-Identifier: MIT
"""Pictures of core state: one view model, three back ends (text, DOT, fallback SVG).

```python
from pvlab.render import tables_view, walk_view, frames_view, diff_view, text_dump
v = tables_view(run)            # a ScenarioRun: its state and its last step's outcome
v.svg(); v.text(); v.dot_source(); v.model.highlighted()
```
Every view returns a :class:`View`; Jupyter shows it through `_repr_mimebundle_`.
"""

from .api import diff_view, frames_view, snapshot, tables_view, text_dump, walk_view
from .model import Cluster, Edge, GraphModel, Node, Row
from .state import Snapshot
from .view import View, active_backend, dot_available, get_backend, set_backend, svg_many

__all__ = ["Cluster", "Edge", "GraphModel", "Node", "Row", "Snapshot", "View",
           "active_backend", "diff_view", "dot_available", "frames_view", "get_backend",
           "set_backend", "snapshot", "svg_many", "tables_view", "text_dump", "walk_view"]
