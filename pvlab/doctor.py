# SPDX-License-Identifier: MIT
"""Checks of a learner's set-up: `run_checks()` returns one `Check` per line of the report.

Pure: nothing is printed here (`pvlab doctor` and notebooks/00-check-setup.ipynb show the
result). Every failing check carries a one-line fix.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

MIN_PYTHON = (3, 11)
#: ipywidgets major version -> the jupyterlab_widgets major version that renders it.
WIDGETS_FRONTEND = {8: 3, 7: 1}
LAB_EXTRA_FIX = "pip install -e '.[lab]' in the pvlab checkout (or run `make lab`)"


@dataclass(frozen=True)
class Check:
    """One line of the report: `fix` says what to do when `ok` is false."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


# ---- probes (module-level so tests can replace them) ------------------------------------------


def python_version() -> tuple[int, int, int]:
    return (sys.version_info.major, sys.version_info.minor, sys.version_info.micro)


def dist_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def module_found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def which(program: str) -> str | None:
    return shutil.which(program)


def dot_version(path: str) -> str | None:
    """`dot -V` prints e.g. 'dot - graphviz version 2.43.0 (0)' on stderr; None if it fails."""
    try:
        proc = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stderr or proc.stdout).strip()
    if proc.returncode != 0 or not text:
        return None
    return text.splitlines()[0]


def kernel_specs() -> dict[str, str] | None:
    """Kernel name -> folder for every kernel spec Jupyter finds, or None without jupyter_client."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return None
    return dict(KernelSpecManager().find_kernel_specs())


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


# ---- checks -----------------------------------------------------------------------------------


def check_python() -> Check:
    version = python_version()
    text = ".".join(str(part) for part in version)
    need = ".".join(str(part) for part in MIN_PYTHON)
    if version[:2] >= MIN_PYTHON:
        return Check("Python", True, f"Python {text} ({sys.executable})")
    return Check(
        "Python",
        False,
        f"Python {text} is too old: pvlab needs {need} or newer",
        f"install Python {need}+, then `rm -rf .venv && make lab`",
    )


def check_pvlab() -> Check:
    if not module_found("pvlab"):
        return Check("pvlab", False, "the pvlab package is not importable",
                     "pip install -e . in the pvlab checkout (or run `make lab`)")
    version = dist_version("pvlab")
    if version is None:
        return Check("pvlab", False, "pvlab imports from the source tree but is not installed",
                     "pip install -e . in the pvlab checkout (or run `make lab`)")
    return Check("pvlab", True, f"pvlab {version}")


def check_dot() -> Check:
    fallback = "pictures use pvlab's pure-Python SVG fallback until then"
    path = which("dot")
    if path is None:
        return Check(
            "Graphviz dot",
            False,
            f"`dot` is not on PATH; {fallback}",
            "sudo apt-get install graphviz (conda: conda install graphviz; macOS: brew install "
            "graphviz)",
        )
    version = dot_version(path)
    if version is None:
        return Check("Graphviz dot", False, f"{path} does not run (`dot -V` failed); {fallback}",
                     "reinstall Graphviz: sudo apt-get install --reinstall graphviz")
    return Check("Graphviz dot", True, f"{path}: {version}")


def check_widgets() -> Check:
    widgets = dist_version("ipywidgets")
    frontend = dist_version("jupyterlab_widgets")
    if widgets is None or frontend is None:
        absent = " and ".join(
            name for name, v in (("ipywidgets", widgets), ("jupyterlab_widgets", frontend))
            if v is None)
        return Check("ipywidgets", False, f"{absent} not installed", LAB_EXTRA_FIX)
    want = WIDGETS_FRONTEND.get(_major(widgets) or -1)
    if want is None or _major(frontend) != want:
        return Check(
            "ipywidgets",
            False,
            f"ipywidgets {widgets} with jupyterlab_widgets {frontend} do not match "
            "(widgets would show 'Error displaying widget')",
            "pip install 'ipywidgets>=8,<9' 'jupyterlab_widgets>=3,<4'",
        )
    return Check("ipywidgets", True, f"ipywidgets {widgets} with jupyterlab_widgets {frontend}")


def check_jupyterlab() -> Check:
    version = dist_version("jupyterlab")
    if version is None:
        return Check("JupyterLab", False, "jupyterlab is not installed", LAB_EXTRA_FIX)
    return Check("JupyterLab", True, f"jupyterlab {version}")


def check_kernel() -> Check:
    fix = "pip install ipykernel && python -m ipykernel install --sys-prefix"
    specs = kernel_specs()
    if specs is None:
        return Check("Python kernel", False, "jupyter_client is not installed", LAB_EXTRA_FIX)
    if not module_found("ipykernel"):
        return Check("Python kernel", False, "ipykernel is not installed", fix)
    if "python3" not in specs:
        found = ", ".join(sorted(specs)) or "none"
        return Check("Python kernel", False,
                     f"no 'python3' kernel spec (found: {found})", fix)
    return Check("Python kernel", True, f"python3 kernel spec in {specs['python3']}")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_pvlab,
    check_dot,
    check_widgets,
    check_jupyterlab,
    check_kernel,
)


def run_checks() -> list[Check]:
    """Run every check in order; a check that crashes is reported as failing, not raised."""
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as err:  # noqa: BLE001 - a broken probe is a finding, not a crash
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, False, f"check crashed: {err!r}",
                                 "report this with the output of `pvlab doctor`"))
    return results


def all_ok(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)
