# SPDX-License-Identifier: MIT
"""Packaging stays consistent: pip and conda name the same dependencies, the console script
and package data are declared, CI runs the README's command, and every file in pvlab/ carries
an SPDX header."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

#: conda package name -> PyPI distribution name, where they differ.
CONDA_TO_PYPI = {"python-graphviz": "graphviz", "pyyaml": "PyYAML"}
#: conda packages with no PyPI counterpart in pyproject (binaries, the tool chain).
CONDA_ONLY = {"python", "pip", "graphviz"}


def _name(requirement: str) -> str:
    """The bare distribution name of a requirement string, normalised (PEP 503)."""
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _conda_deps(path: Path) -> tuple[list[str], list]:
    env = yaml.safe_load(path.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)]
    return conda, pip


def conda_as_pypi(conda: list[str]) -> set[str]:
    names = set()
    for dep in conda:
        name = _name(dep)
        if name in CONDA_ONLY:
            continue
        names.add(_name(CONDA_TO_PYPI.get(name, name)))
    return names


def test_conda_names_map_to_pypi_names() -> None:
    assert conda_as_pypi(["python=3.11", "python-graphviz", "graphviz", "pyyaml", "numpy"]) == {
        "graphviz", "pyyaml", "numpy"}


def test_environment_yml_matches_runtime_and_lab_dependencies() -> None:
    project = _pyproject()["project"]
    wanted = {_name(d) for d in project["dependencies"]}
    wanted |= {_name(d) for d in project["optional-dependencies"]["lab"]}
    conda, pip = _conda_deps(ROOT / "environment.yml")
    assert conda_as_pypi(conda) == wanted
    assert {"python-graphviz", "graphviz"} <= {_name(d) for d in conda}, (
        "conda needs both the Graphviz binaries and the Python wrapper")
    assert pip and any(entry in ("-e .", ".") for entry in pip[0]["pip"]), (
        "environment.yml must install pvlab itself")


def test_environment_yml_pins_the_python_that_pyproject_requires() -> None:
    conda, _ = _conda_deps(ROOT / "environment.yml")
    python = [d for d in conda if _name(d) == "python"]
    assert python, "environment.yml must pin python"
    pinned = tuple(int(x) for x in python[0].split("=")[-1].split(".")[:2])
    minimum = re.search(r">=\s*(\d+)\.(\d+)", _pyproject()["project"]["requires-python"])
    assert minimum and pinned >= (int(minimum[1]), int(minimum[2]))


def test_binder_environment_mirrors_top_level_one() -> None:
    top, _ = _conda_deps(ROOT / "environment.yml")
    binder, binder_pip = _conda_deps(ROOT / "binder" / "environment.yml")
    assert binder == top
    assert not binder_pip, "repo2docker builds binder/environment.yml before copying the repo"
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()
    assert "graphviz" in (ROOT / "binder" / "apt.txt").read_text().split()


def test_runtime_dependencies_are_only_numpy_and_pyyaml() -> None:
    deps = {_name(d) for d in _pyproject()["project"]["dependencies"]}
    assert deps == {"numpy", "pyyaml"}


def test_console_script_and_package_data() -> None:
    data = _pyproject()
    assert data["project"]["scripts"]["pvlab"] == "pvlab.cli:main"
    assert "examples/*.yaml" in data["tool"]["setuptools"]["package-data"]["pvlab"]
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["pvlab*"]


def test_ci_runs_the_readme_test_command() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands[0] == "set -euo pipefail"
    assert commands[-1] == "make test"


def _pvlab_files() -> list[Path]:
    return sorted(
        p for p in (ROOT / "pvlab").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    )


def spdx_header_ok(text: str) -> bool:
    """The SPDX line must be among the first lines (after a shebang or encoding line)."""
    head = text.splitlines()[:3]
    return any("SPDX-License-Identifier:" in line for line in head)


def test_spdx_checker_rejects_a_file_without_header() -> None:
    assert spdx_header_ok("# SPDX-License-Identifier: MIT\nimport os\n")
    assert spdx_header_ok("#!/usr/bin/env python3\n# SPDX-License-Identifier: MIT\n")
    assert not spdx_header_ok('"""Docstring."""\n\n\n# SPDX-License-Identifier: MIT\n')


@pytest.mark.parametrize("path", _pvlab_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_pvlab_file_has_an_spdx_header(path: Path) -> None:
    assert spdx_header_ok(path.read_text(errors="replace")), (
        f"{path.relative_to(ROOT)} must start with '# SPDX-License-Identifier: MIT'")
