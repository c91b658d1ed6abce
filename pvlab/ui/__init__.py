# SPDX-License-Identifier: MIT
"""Interactive apps: the scenario lab (`Lab`, needs ipywidgets) and its bundled examples.

```python
from pvlab.ui import Lab, examples
examples()                       # names of the bundled scenarios
lab = Lab(example="seed-erange") # display it in a notebook; drive it from Python too
```
`LabSession` is the same lab without widgets.
"""

from __future__ import annotations

from typing import Any

from .examples import example_path, example_text, examples
from .session import LabSession

__all__ = ["Lab", "LabSession", "example_path", "example_text", "examples"]


def __getattr__(name: str) -> Any:
    if name == "Lab":  # imports ipywidgets only when the app is wanted
        from .app import Lab

        return Lab
    raise AttributeError(f"module 'pvlab.ui' has no attribute {name!r}")
