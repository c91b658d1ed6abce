# SPDX-License-Identifier: MIT
"""The organiser's choices for a workshop hub, kept as hub.json in the hub's state folder.

Everything the hub keeps lives in that one folder (back it up to keep the workshop):
`hub.json` (these settings), `jupyterhub.sqlite` (users, servers, tokens),
`jupyterhub_cookie_secret`, `learners.json` (personal password hashes), `homes/NAME/`
(each learner's files), `logs/`. Passwords are never written there in clear: the workshop and
admin passwords come from the environment each time the hub starts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pvlab.errors import PvlabError

SETTINGS_FILE = "hub.json"
LEARNERS_FILE = "learners.json"
HOMES = "homes"
LOGS = "logs"
DB_FILE = "jupyterhub.sqlite"
COOKIE_SECRET_FILE = "jupyterhub_cookie_secret"
#: Environment variables holding the secrets (never stored in the state folder).
PASSWORD_ENV = "PVLAB_HUB_PASSWORD"
ADMIN_PASSWORD_ENV = "PVLAB_HUB_ADMIN_PASSWORD"
STATE_ENV = "PVLAB_HUB_STATE"
MIN_PASSWORD = 8
MIN_ADMIN_PASSWORD = 16
LOOPBACK = "127.0.0.1"
#: Environment for every learner's server and kernel: one thread for BLAS/OpenMP pools,
#: few kept lab runs.
LEARNER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              # the lab keeps 2 runs (undo, toggle back) instead of 12: about 10 MB less
              # per learner's kernel (pvlab.ui.document.RUNS_KEPT_ENV)
              "PVLAB_RUNS_KEPT": "2"}
#: Where a learner lands after sign-in.
DEFAULT_URL = "/lab"
#: Admins manage servers; they do not open learners' servers.
ADMIN_ACCESS = False
#: A learner name: a home folder name and a URL path segment, nothing else.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


def default_state_dir() -> Path:
    """$PVLAB_HUB_STATE, else ~/pvlab-hub (as root /srv/pvlab-hub: learners' own accounts
    must pass through its parent folders to their homes, and /root is private)."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/srv/pvlab-hub")
    return Path.home() / "pvlab-hub"


@dataclass
class HubSettings:
    """What `pvlab hub` was asked for. Ports 0 mean "pick a free one at start"."""

    ip: str = LOOPBACK
    port: int = 8000
    hub_port: int = 0
    proxy_api_port: int = 0
    admins: list[str] = field(default_factory=list)
    mem_limit_mb: int = 2048
    max_learners: int = 60
    idle_timeout_s: int = 3600
    cull_every_s: int = 300
    configurable_http_proxy: str = "configurable-http-proxy"

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / SETTINGS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> HubSettings:
        path = state_dir / SETTINGS_FILE
        if not path.is_file():
            raise PvlabError(f"{path} is missing: {state_dir} is not a pvlab hub folder",
                             "start the hub with `pvlab hub --state-dir FOLDER` first")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise PvlabError(f"{path} is not valid JSON ({err})",
                             "fix or delete it; `pvlab hub` writes a new one") from err
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def check_passwords(password: str | None, admin_password: str | None,
                    admins: list[str]) -> None:
    """Raise PvlabError unless the organiser's passwords are set and long enough."""
    if not password:
        raise PvlabError(f"no workshop password: {PASSWORD_ENV} is not set",
                         f"choose one (at least {MIN_PASSWORD} characters) and run "
                         f"`{PASSWORD_ENV}=... pvlab hub`; there is never a default")
    if len(password) < MIN_PASSWORD:
        raise PvlabError(f"the workshop password is {len(password)} characters long",
                         f"use at least {MIN_PASSWORD} characters")
    if admins and not admin_password:
        raise PvlabError(f"--admin given but {ADMIN_PASSWORD_ENV} is not set",
                         f"set {ADMIN_PASSWORD_ENV} (at least {MIN_ADMIN_PASSWORD} characters)"
                         " to claim the admin names, or leave --admin out")
    if admin_password and len(admin_password) < MIN_ADMIN_PASSWORD:
        raise PvlabError(f"the admin password is {len(admin_password)} characters long",
                         f"use at least {MIN_ADMIN_PASSWORD} characters")
    if admin_password and admin_password == password:
        raise PvlabError("the admin password equals the workshop password",
                         "choose a different admin password")


def resolve_proxy(command: str = "configurable-http-proxy") -> str | None:
    """The proxy program: this Python's bin folder first (scripts/setup.sh links it there
    from npm), then PATH; None when it is nowhere."""
    if os.sep in command:
        return command if os.access(command, os.X_OK) else None
    beside = Path(sys.executable).parent / command
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(command)
