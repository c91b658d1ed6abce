# SPDX-License-Identifier: MIT
"""The bundled example scenarios (`pvlab/examples/*.yaml`), loaded by name.

```python
from pvlab.ui import examples, example_path
examples()                      # ['assist-on', 'l1-maps-itself-rw', ...]
example_path("seed-erange")     # a pathlib.Path to run with `pvlab run`
```
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pvlab.errors import PvlabError


def _folder() -> Path:
    return Path(str(resources.files("pvlab"))) / "examples"


def examples() -> list[str]:
    """Names of the bundled examples, sorted."""
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def example_path(name: str) -> Path:
    """The file of the bundled example `name` (with or without `.yaml`)."""
    stem = name.removesuffix(".yaml")
    path = _folder() / f"{stem}.yaml"
    if not path.is_file():
        raise PvlabError(f"no bundled example named {name!r}",
                         f"use one of: {', '.join(examples())}")
    return path


def example_text(name: str) -> str:
    return example_path(name).read_text(encoding="utf-8")
