# SPDX-License-Identifier: MIT
"""The test tree has no __init__.py files, so pytest imports every test module by its basename:
two test files with the same name in different folders break the whole run at collection."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name.startswith("test_") or path.name == "conftest.py":
            seen[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items()
               if len(paths) > 1 and name != "conftest.py"}
    assert not clashes, f"rename one of each: {clashes}"


def test_the_check_sees_a_clash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "test_x.py").write_text("")
    names = [p.name for p in tmp_path.rglob("test_*.py")]
    assert len(names) != len(set(names))
