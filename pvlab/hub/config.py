# SPDX-License-Identifier: MIT
"""The JupyterHub configuration of a workshop hub, built from the state folder's settings.

The state folder's `jupyterhub_config.py` (written by `pvlab hub`) is two lines calling
`configure(c, STATE_DIR)`. Secrets come from the environment ($PVLAB_HUB_PASSWORD,
$PVLAB_HUB_ADMIN_PASSWORD); the internal ports from $PVLAB_HUB_PORTS ("HUB,PROXY_API"),
chosen free at each start by `pvlab.hub.launcher`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pvlab.hub.settings import (
    ADMIN_ACCESS,
    ADMIN_PASSWORD_ENV,
    COOKIE_SECRET_FILE,
    DB_FILE,
    DEFAULT_URL,
    HOMES,
    LEARNERS_FILE,
    LOOPBACK,
    PASSWORD_ENV,
    USERNAME_PATTERN,
    HubSettings,
    resolve_proxy,
)

PORTS_ENV = "PVLAB_HUB_PORTS"
#: The Python learners' servers run, when not this one (`pvlab.hub.accounts.learner_python`).
LEARNER_PYTHON_ENV = "PVLAB_HUB_LEARNER_PYTHON"
RENDER_SERVER = "render"
RENDER_CACHE_DIR = "render-cache"
RENDER_SOCKET = "run/render.sock"
#: JupyterLab fetches a news feed and checks PyPI for updates by default: not on our hub.
NO_PHONE_HOME_ARGS = ["--LabApp.news_url=None",
                      "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
#: Server extensions a learner's server does not load: Voila (the projector page of
#: `make app`, not used on the hub) and jupyter-lsp (no language server is installed).
#: Each costs memory in every learner's server.
UNUSED_SERVER_EXTENSIONS = ("voila.server_extension", "jupyter_lsp")
LEAN_SERVER_ARGS = [f"--ServerApp.jpserver_extensions={name}=False"
                    for name in UNUSED_SERVER_EXTENSIONS]
IDLE_CULLER = "idle-culler"
#: What the idle culler may do (jupyterhub-idle-culler's documented minimum scopes).
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def internal_ports() -> tuple[int, int]:
    raw = os.environ.get(PORTS_ENV, "8081,8001")
    hub, proxy = (int(p) for p in raw.split(","))
    return hub, proxy


def culler_command(settings: HubSettings) -> list[str]:
    return [sys.executable, "-m", "pvlab.hub.culler",
            f"--timeout={settings.idle_timeout_s}", f"--cull-every={settings.cull_every_s}"]


def render_command(state: Path, python: str) -> list[str]:
    """The render server (pvlab.hub.renderd): as root it drops to its own account."""
    from pvlab.hub import accounts

    cmd = [python, "-m", "pvlab.hub.renderd", str(state / RENDER_CACHE_DIR),
           str(state / RENDER_SOCKET)]
    if accounts.per_learner_accounts():
        cmd += ["--user", accounts.RENDER_USER]
    return cmd


def configure(c: Any, state_dir: str | Path) -> None:
    """Fill JupyterHub's config object `c` for the hub whose state lives in `state_dir`."""
    from pvlab.hub.auth import WorkshopAuthenticator
    from pvlab.hub.spawner import CourseSpawner, singleuser_cmd

    state = Path(state_dir).resolve()
    settings = HubSettings.load(state)
    hub_port, proxy_api_port = internal_ports()

    # Where it listens: the proxy is the only public door; everything else on loopback.
    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = LOOPBACK
    c.JupyterHub.hub_port = hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://{LOOPBACK}:{proxy_api_port}"
    c.ConfigurableHTTPProxy.command = [resolve_proxy(settings.configurable_http_proxy)
                                       or settings.configurable_http_proxy]
    c.ConfigurableHTTPProxy.should_start = True

    # All state in one folder.
    c.JupyterHub.db_url = f"sqlite:///{state / DB_FILE}"
    c.JupyterHub.cookie_secret_file = str(state / COOKIE_SECRET_FILE)

    # Who gets in.
    c.JupyterHub.authenticator_class = WorkshopAuthenticator
    c.WorkshopAuthenticator.workshop_password = os.environ.get(PASSWORD_ENV, "")
    c.WorkshopAuthenticator.admin_password = os.environ.get(ADMIN_PASSWORD_ENV, "")
    c.WorkshopAuthenticator.learners_file = str(state / LEARNERS_FILE)
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = set(settings.admins)
    c.Authenticator.username_pattern = USERNAME_PATTERN
    c.JupyterHub.admin_access = ADMIN_ACCESS

    # Each learner's server.
    c.JupyterHub.spawner_class = CourseSpawner
    learner_python = os.environ.get(LEARNER_PYTHON_ENV) or sys.executable
    c.CourseSpawner.learner_python = learner_python
    c.Spawner.cmd = singleuser_cmd(learner_python)
    # One render cache for the whole room, filled only by the render server.
    c.CourseSpawner.render_cache = str(state / RENDER_CACHE_DIR)
    c.CourseSpawner.render_socket = str(state / RENDER_SOCKET)
    c.Spawner.ip = LOOPBACK
    c.Spawner.default_url = DEFAULT_URL
    c.Spawner.mem_limit = settings.mem_limit_mb * 1024 * 1024
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 180
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / HOMES / "{username}")
    c.Spawner.args = list(NO_PHONE_HOME_ARGS) + LEAN_SERVER_ARGS
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        c.Spawner.args.append("--ServerApp.allow_root=True")
    # Stopping a learner's server: SIGINT, then SIGTERM after 5 s, SIGKILL after 10 more
    # (JupyterHub waits 30 s at each by default). The culler exits on SIGINT (hub/culler.py).
    c.LocalProcessSpawner.interrupt_timeout = 5
    c.LocalProcessSpawner.term_timeout = 10
    c.JupyterHub.active_server_limit = settings.max_learners
    c.JupyterHub.cleanup_servers = True
    # Answer a spawn request at once (202) instead of holding it up to 10 s: a room of
    # learners asking together must not queue behind each other's requests.
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

    # The idle culler, as a hub-managed service with only the scopes it needs.
    c.JupyterHub.services = [{"name": IDLE_CULLER, "command": culler_command(settings)},
                             {"name": RENDER_SERVER,
                              "command": render_command(state, learner_python)}]
    c.JupyterHub.load_roles = [{"name": IDLE_CULLER, "scopes": CULLER_SCOPES,
                                "services": [IDLE_CULLER]}]


CONFIG_TEMPLATE = """\
# Written by `pvlab hub`; the settings are in hub.json beside this file.
from pvlab.hub.config import configure

configure(c, {state!r})  # noqa: F821
"""
