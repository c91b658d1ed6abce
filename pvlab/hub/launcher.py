# SPDX-License-Identifier: MIT
"""Start and stop the real JupyterHub of a workshop (used by `pvlab hub`, tests, benchmarks).

`prepare(state_dir, settings)` creates the state folder (never touching homes/ or the
database that are already there) and writes hub.json and jupyterhub_config.py.
`start(state_dir, password, admin_password)` starts `python -m jupyterhub` in it with free
internal ports and returns a `RunningHub` once /hub/health answers through the proxy.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError
from pvlab.hub import accounts
from pvlab.hub.config import CONFIG_TEMPLATE, LEARNER_PYTHON_ENV, PORTS_ENV
from pvlab.hub.settings import (
    ADMIN_PASSWORD_ENV,
    HOMES,
    LOGS,
    LOOPBACK,
    PASSWORD_ENV,
    HubSettings,
    check_passwords,
    resolve_proxy,
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


def wait_port_free(port: int, host: str, timeout: float) -> bool:
    """True once `port` can be bound (a hub stopped a moment ago may still hold it)."""
    deadline = time.monotonic() + timeout
    while not port_is_free(port, host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
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
    if resolve_proxy(settings.configurable_http_proxy) is None:
        problems.append("configurable-http-proxy is missing (`make hub` installs it from npm "
                        "into .venv; or npm install -g configurable-http-proxy)")
    return problems


def prepare(state_dir: Path, settings: HubSettings) -> Path:
    """Create or update the state folder; existing homes and the database are kept.

    With an account per learner (root), the folder and homes/ are 0711 (learners' accounts
    pass through to their own home; nobody lists them) and every file directly in the
    folder is 0600; otherwise the folder is 0700."""
    state_dir = state_dir.resolve()
    for sub in ("", HOMES, LOGS):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    settings.save(state_dir)
    (state_dir / CONFIG_FILE).write_text(CONFIG_TEMPLATE.format(state=str(state_dir)))
    separate = accounts.per_learner_accounts()
    os.chmod(state_dir, 0o711 if separate else 0o700)
    os.chmod(state_dir / HOMES, 0o711 if separate else 0o700)
    os.chmod(state_dir / LOGS, 0o700)
    for entry in state_dir.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, 0o600)
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

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the hub (it stops the proxy, learners' servers and services), wait; then
        end whatever it started that is still running (a hub killed after `timeout`, or
        kernels a server left behind)."""
        family = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # Anything left in the hub's process group (the proxy, if the hub died first).
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        _end(family + _descendants_of(family))
        return int(self.proc.returncode)


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil
    except ImportError:
        return []
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _descendants_of(procs: list[Any]) -> list[Any]:
    """Children (and theirs) that appeared since `procs` were listed: kernels of servers."""
    more: list[Any] = []
    for proc in procs:
        more += _descendants(proc.pid)
    return more


def _end(procs: list[Any], grace: float = 5.0) -> None:
    """SIGTERM the processes still alive, then SIGKILL those that outlive `grace`."""
    if not procs:
        return
    import psutil

    alive = []
    for proc in procs:
        try:
            if proc.is_running():
                proc.terminate()
                alive.append(proc)
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=grace)
    for proc in still:
        try:
            proc.kill()
        except psutil.Error:
            continue


def hub_env(password: str | None, admin_password: str | None, ports: tuple[int, int],
            learner_python: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (PASSWORD_ENV, ADMIN_PASSWORD_ENV)}
    env[PASSWORD_ENV] = password or ""
    if admin_password:
        env[ADMIN_PASSWORD_ENV] = admin_password
    env[PORTS_ENV] = f"{ports[0]},{ports[1]}"
    if learner_python:
        env[LEARNER_PYTHON_ENV] = learner_python
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
    if not wait_port_free(settings.port, settings.ip, 15.0):
        raise PvlabError(f"port {settings.port} on {settings.ip} is already in use",
                         "pick another with --port (or stop the hub already running there)")
    learner_python = None
    if accounts.per_learner_accounts():
        # The render server's account doubles as the probe: can an unprivileged account run
        # this Python and reach the homes? (A Python under /root cannot be run.)
        accounts.compile_bytecode(state_dir)
        probe = accounts.ensure_account(accounts.RENDER_USER, "/nonexistent",
                                        "pvlab workshop render server")
        learner_python = accounts.learner_python(state_dir, probe, state_dir / HOMES)
    ports = (free_port(), free_port())
    log_path = state_dir / LOGS / "hub.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(state_dir / CONFIG_FILE)],
            cwd=state_dir, env=hub_env(password, admin_password, ports, learner_python),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_private_umask)
    host = LOOPBACK if settings.ip in ("", "0.0.0.0", "::") else settings.ip
    hub = RunningHub(state_dir, f"http://{host}:{settings.port}", proc, log_path)
    if not wait_healthy(hub, timeout):
        hub.stop()
        tail = "\n".join(hub.log().splitlines()[-15:])
        raise PvlabError(f"the hub did not come up within {timeout:.0f} s; its log ends:\n"
                         f"{tail}", f"read {log_path}")
    return hub


def _private_umask() -> None:
    """The hub's files (database, learners' new files) readable by their owner only."""
    os.umask(0o077)


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
