# SPDX-License-Identifier: MIT
"""Harness for real-browser tests: JupyterLab / Voila servers and Debian's Chromium.

Every test in tests/browser/ gets the `browser` marker. They run in CI (CI set: a missing
Chromium or Playwright is a failure) and skip locally only when /usr/bin/chromium is absent.
Never `playwright install`: Playwright drives Debian's /usr/bin/chromium.

Fixtures:
- `lab_server`: JupyterLab on a free 127.0.0.1 port with a random token, serving a temporary
  copy of notebooks/ (autosave never touches the committed notebooks), news toast disabled.
- `voila_server(notebook_name)`: a factory serving one notebook of that copy through Voila.
- `browser_type_launch_args`: pytest-playwright's launch options pointed at Debian's Chromium,
  so the usual `page` fixture works. `launch_chromium(playwright)` does the same by hand.
- `artifacts_dir`: artifacts/browser/, for screenshots (ignored by git).
- `harness`: the page helpers below as one object (`harness.run_all_cells(page)`), so tests
  need not import this conftest. `wait_for_kernel_idle(page)` and `run_all_cells(page)` follow
  the notes in shared/notes/jupyter-browser-testing.md.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HOST = "127.0.0.1"
START_TIMEOUT = 90.0
KERNEL_IDLE_TEXT = "(ipykernel) | Idle"
#: JupyterLab setting that keeps the news / update toast out of screenshots.
NOTIFICATION_SETTINGS = ("@jupyterlab/apputils-extension", "notification",
                         {"fetchNews": "false", "checkForUpdates": False})


# ---- marker and skip policy -------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip locally, fail in CI, when Chromium or Playwright is missing."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium; make test does it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Playwright is not installed (pip install -e '.[browser]')")
    if problems:
        message = "; ".join(problems)
        if in_ci():
            pytest.fail(f"browser test cannot run in CI: {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    require_browser()
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_type_launch_args(
        browser_type_launch_args: dict[str, Any], chromium_path: Path) -> dict[str, Any]:
    """pytest-playwright's launch options, pointed at Debian's Chromium."""
    return {**browser_type_launch_args, "executable_path": str(chromium_path),
            "args": CHROMIUM_ARGS, "headless": True}


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Launch Debian's Chromium from a `sync_playwright()` object (without pytest-playwright)."""
    require_browser()
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True, **kwargs)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = ROOT / "artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterProcess:
    """A running JupyterLab or Voila server: `url` is the base URL without the token."""

    url: str
    token: str
    root_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def notebook_url(self, name: str) -> str:
        """JupyterLab URL opening notebook `name` (relative to root_dir) in a reset workspace."""
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def with_token(self, path: str = "/") -> str:
        return f"{self.url}{path}?token={self.token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _isolated_env(home: Path) -> dict[str, str]:
    """Keep the server's config, runtime files and settings out of the user's ~/.jupyter."""
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("IPYTHONDIR", "ipython")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def _start(cmd: list[str], url: str, token: str, root_dir: Path, home: Path,
           probe: str) -> JupyterProcess:
    log_path = home / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_isolated_env(home),
                            cwd=root_dir)
    server = JupyterProcess(url, token, root_dir, proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{url}{probe}?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"server did not answer within {START_TIMEOUT:.0f} s:\n{server.log()}")


def copy_notebooks(dest: Path) -> Path:
    """A scratch copy of notebooks/ (and what they read beside them)."""
    shutil.copytree(ROOT / "notebooks", dest,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return dest


def start_lab(root_dir: Path, home: Path) -> JupyterProcess:
    port, token = free_port(), secrets.token_hex(16)
    settings = home / "user-settings"
    plugin_dir = settings / NOTIFICATION_SETTINGS[0]
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / f"{NOTIFICATION_SETTINGS[1]}.jupyterlab-settings").write_text(
        json.dumps(NOTIFICATION_SETTINGS[2]))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.ip={HOST}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
           f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return _start(cmd, f"http://{HOST}:{port}", token, root_dir, home, "/api/status")


def start_voila(notebook: Path, home: Path) -> JupyterProcess:
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
           f"--Voila.ip={HOST}", f"--token={token}"]
    return _start(cmd, f"http://{HOST}:{port}", token, notebook.parent, home, "/")


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_notebooks(tmp_path_factory.mktemp("lab") / "notebooks")


@pytest.fixture(scope="session")
def lab_server(chromium_path: Path, lab_root: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterProcess]:
    server = start_lab(lab_root, tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def voila_server(chromium_path: Path, lab_root: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Callable[[str], JupyterProcess]]:
    """Factory: `voila_server("06-scenario-lab.ipynb")` serves that notebook; stopped after."""
    started: list[JupyterProcess] = []

    def start(name: str) -> JupyterProcess:
        notebook = lab_root / name
        if not notebook.is_file():
            pytest.fail(f"notebooks/{name} does not exist", pytrace=False)
        server = start_voila(notebook, tmp_path_factory.mktemp("voila-home"))
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# ---- page helpers -----------------------------------------------------------------------------


def wait_for_kernel_idle(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait until the status bar reads '(ipykernel) | Idle' (the toolbar lies on cold start)."""
    page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE_TEXT).first.wait_for(
        state="visible", timeout=timeout_ms)


def run_all_cells(page: Any, timeout_ms: int = 120_000) -> None:
    """Run → Run All Cells once the kernel is idle, then wait until no cell is pending."""
    wait_for_kernel_idle(page, timeout_ms)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).first.click()
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_ms,
    )
    wait_for_kernel_idle(page, timeout_ms)


@pytest.fixture(scope="session")
def harness() -> Any:
    """The module's helpers for tests: harness.run_all_cells(page), harness.CHROMIUM_ARGS, ...

    A namespace of this module's globals, not `sys.modules[__name__]`: every conftest.py is
    imported as "conftest", so that name can point at another folder's conftest.
    """
    return types.SimpleNamespace(**{k: v for k, v in globals().items() if not k.startswith("__")})
