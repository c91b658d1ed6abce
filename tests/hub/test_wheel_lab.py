# SPDX-License-Identifier: MIT
"""The course travels with the package: build the wheel, install it into a fresh virtual
environment outside the checkout, and start the lab from there (issue 18, item 5).

Slow (a wheel build and an install from PyPI): it runs in CI; locally it needs network access
to PyPI and skips without it. `uv` is used when present (as scripts/setup.sh does), else pip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from pvlab.course import COURSE_DOCS

ROOT = Path(__file__).resolve().parents[2]
#: What a wheel build needs from the checkout (not .git, .venv, oracle/ or solutions/).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "pvlab",
                "notebooks", "exercises", *COURSE_DOCS)

pytestmark = pytest.mark.slow


def _uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.exists() else shutil.which("uv")


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore
    if result.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:4])} ... failed ({result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", ".ipynb_checkpoints", "_course"))
        elif path.exists():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheelhouse")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)])
    wheels = list(out.glob("pvlab-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_carries_the_course_and_no_solutions(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    course = {n for n in names if n.startswith("pvlab/_course/")}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"pvlab/_course/notebooks/{nb.name}" in course
    for nb in sorted((ROOT / "exercises").glob("*.ipynb")):
        assert f"pvlab/_course/exercises/{nb.name}" in course
    for doc in COURSE_DOCS:  # the notebooks link them as ../docs/NAME
        assert f"pvlab/_course/{doc}" in course
    assert not any("solutions" in n for n in names)
    assert any(n.startswith("pvlab/examples/") for n in names)


def _start_lab(venv_bin: Path, cwd: Path, env: dict[str, str], course: Path
               ) -> tuple[subprocess.Popen[str], list[str], str]:
    proc = subprocess.Popen([str(venv_bin / "pvlab"), "lab", "--course-dir", str(course)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+)/lab\?token=(\w+)", line)
        if found:
            with urllib.request.urlopen(f"{found[1]}/api/status?token={found[2]}",
                                        timeout=10) as reply:
                assert reply.status == 200
            return proc, lines, found[1]
    proc.kill()
    pytest.fail("the installed lab did not print its URL:\n" + "".join(lines), pytrace=False)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_the_installed_wheel_starts_the_lab_outside_the_checkout(
        wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv = _uv()
    if uv:
        _run([uv, "venv", "-q", "--python", sys.executable, str(venv)])
        _run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
              f"{wheel}[lab]"])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
              "--disable-pip-version-check", f"{wheel}[lab]"])
    work, home = tmp_path / "somewhere", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), JUPYTER_PLATFORM_DIRS="1")
    where = _run([str(venv / "bin" / "python"), "-c", "import pvlab; print(pvlab.__file__)"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"pvlab imported from {where}, not the venv"

    course = home / "my-course"
    proc, lines, _ = _start_lab(venv / "bin", work, env, course)
    try:
        assert any("copied" in line and "course file(s)" in line for line in lines), lines
        assert (course / "notebooks" / "06-scenario-lab.ipynb").is_file()
        assert (course / "exercises").is_dir() and not (course / "solutions").exists()
    finally:
        _stop(proc)

    # A learner's edit survives the next start, which says the course is up to date.
    notebook = course / "notebooks" / "01-x86-paging.ipynb"
    edited = json.loads(notebook.read_text())
    edited["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "my notes"})
    notebook.write_text(json.dumps(edited))
    proc, lines, _ = _start_lab(venv / "bin", work, env, course)
    try:
        assert any("up to date" in line for line in lines), lines
        assert "my notes" in notebook.read_text()
    finally:
        _stop(proc)
