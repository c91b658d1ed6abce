# SPDX-License-Identifier: MIT
"""Start and stop the real JupyterHub of a workshop (used by `pvlab hub`, tests, benchmarks).

`prepare(state_dir, settings)` creates the state folder (never touching homes/ or the
database that are already there) and writes hub.json and jupyterhub_config.py.
`start(state_dir, password, admin_password)` starts `python -m jupyterhub` in it with free
internal ports and returns a `RunningHub` once /hub/health answers through the proxy.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pvlab.errors import PvlabError
from pvlab.hub.config import CONFIG_TEMPLATE, PORTS_ENV
from pvlab.hub.settings import (
    ADMIN_PASSWORD_ENV,
    HOMES,
    LOGS,
    LOOPBACK,
    PASSWORD_ENV,
    HubSettings,
    check_passwords,
)

CONFIG_FILE = "jupyterhub_config.py"
START_TIMEOUT = 120.0


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def missing_tools(settings: HubSettings) -> list[str]:
    """What the hub needs and this machine lacks, each with its fix."""
    problems = []
    for module, package in (("jupyterhub", "jupyterhub"),
                            ("jupyterhub_idle_culler", "jupyterhub-idle-culler")):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"{package} is not installed (pip install 'pvlab[hub]')")
    if shutil.which(settings.configurable_http_proxy) is None:
        problems.append("configurable-http-proxy is not on PATH "
                        "(npm install -g configurable-http-proxy; `make hub` does it)")
    return problems


def prepare(state_dir: Path, settings: HubSettings) -> Path:
    """Create or update the state folder; existing homes and the database are kept."""
    state_dir = state_dir.resolve()
    for sub in ("", HOMES, LOGS):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    settings.save(state_dir)
    (state_dir / CONFIG_FILE).write_text(CONFIG_TEMPLATE.format(state=str(state_dir)))
    return state_dir


@dataclass
class RunningHub:
    """A started hub: `url` is the public base URL (the proxy), `log_path` the hub's log."""

    state_dir: Path
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the hub (it stops the proxy, learners' servers and services), wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


def hub_env(password: str | None, admin_password: str | None, ports: tuple[int, int]
            ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (PASSWORD_ENV, ADMIN_PASSWORD_ENV)}
    env[PASSWORD_ENV] = password or ""
    if admin_password:
        env[ADMIN_PASSWORD_ENV] = admin_password
    env[PORTS_ENV] = f"{ports[0]},{ports[1]}"
    # The proxy and the culler are found on PATH; keep this Python's bin folder first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def start(state_dir: Path, password: str | None, admin_password: str | None = None,
          timeout: float = START_TIMEOUT) -> RunningHub:
    """Start the hub prepared in `state_dir`; raise PvlabError if it cannot."""
    state_dir = state_dir.resolve()
    settings = HubSettings.load(state_dir)
    check_passwords(password, admin_password, settings.admins)
    problems = missing_tools(settings)
    if problems:
        raise PvlabError("the hub cannot start: " + "; ".join(problems),
                         "run `make hub`, which installs them")
    if not port_is_free(settings.port, settings.ip):
        raise PvlabError(f"port {settings.port} on {settings.ip} is already in use",
                         "pick another with --port (or stop the hub already running there)")
    ports = (free_port(), free_port())
    log_path = state_dir / LOGS / "hub.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(state_dir / CONFIG_FILE)],
            cwd=state_dir, env=hub_env(password, admin_password, ports),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host = LOOPBACK if settings.ip in ("", "0.0.0.0", "::") else settings.ip
    hub = RunningHub(state_dir, f"http://{host}:{settings.port}", proc, log_path)
    if not wait_healthy(hub, timeout):
        hub.stop()
        tail = "\n".join(hub.log().splitlines()[-15:])
        raise PvlabError(f"the hub did not come up within {timeout:.0f} s; its log ends:\n"
                         f"{tail}", f"read {log_path}")
    return hub


def wait_healthy(hub: RunningHub, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{hub.url}/hub/health", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False
