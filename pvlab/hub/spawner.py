# SPDX-License-Identifier: MIT
"""`CourseSpawner`: each learner's own JupyterLab, home folder and copy of the course.

Each learner's server runs in `homes/NAME` of the state folder. What keeps learners apart:
the hub and proxy (a learner's cookie or token opens only their own server: 403/404
otherwise; tested in tests/hub) and, when the hub runs as root, the file system: each
learner has a system account of their own (`pvlab-NAME`, `pvlab.hub.accounts`, created on
their first start), owns their home (mode 0700), and their server and kernels run as that
account, so one learner's code cannot read another's files. The course is copied in by a
process running as the learner (root never writes into a learner's folder, which could hold
symbolic links of the learner's making). Without root all servers run under the hub's own
account (JupyterHub's `SimpleLocalProcessSpawner` model) and `pvlab hub` warns that code a
learner runs can read other learners' files.

Limits per learner, enforced in the child before the server starts (`make_preexec_fn`):
address space (`mem_limit`, RLIMIT_AS; a runaway notebook gets MemoryError, not the machine),
one BLAS/OpenMP thread each, a lower CPU priority than the hub (nice 5) and, with an account
per learner, at most `NPROC_LIMIT` processes and threads. A local spawner cannot cap CPU
share; Z2JH's `cpu_limit` can.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Integer, Unicode

from pvlab.course import copy_course
from pvlab.hub import accounts
from pvlab.hub.settings import LEARNER_ENV
from pvlab.render.cache import CACHE_ENV, SERVER_ENV

#: With an account per learner: most processes and threads the learner's account may run
#: (the server and kernels use a few dozen), so a fork bomb in a notebook stops there.
NPROC_LIMIT = 512


class CourseSpawner(SimpleLocalProcessSpawner):
    """A local learner server in homes/NAME with the course copied in (never overwritten)."""

    nice = Integer(5, config=True, help="Added to the learner processes' nice value.")
    render_cache = Unicode("", config=True, help="The shared render cache folder.")
    render_socket = Unicode("", config=True, help="The render server's unix socket.")
    learner_python = Unicode(sys.executable, config=True,
                             help="The Python learners' servers run (usable by their accounts).")
    account: accounts.Account | None = None

    def _home(self) -> Path:
        return Path(self.home_dir_template.format(username=self.user.name))

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        home = str(self._home())
        limit = int(self.mem_limit or 0)
        nice = int(self.nice)
        account = self.account

        def preexec() -> None:
            os.makedirs(home, 0o700, exist_ok=True)
            os.chdir(home)
            if limit > 0:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            if nice:
                os.nice(nice)
            if account is not None:
                # Per account, so it bounds this learner alone (threads count too).
                resource.setrlimit(resource.RLIMIT_NPROC, (NPROC_LIMIT, NPROC_LIMIT))
                become(account)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env = dict(super().user_env(env))
        env.update(LEARNER_ENV)
        for var, sub in (("JUPYTER_CONFIG_DIR", ".jupyter"),
                         ("JUPYTER_RUNTIME_DIR", ".local/share/jupyter/runtime"),
                         ("IPYTHONDIR", ".ipython")):
            env[var] = str(self._home() / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        if self.render_cache:
            env[CACHE_ENV] = self.render_cache
        if self.render_socket:
            env[SERVER_ENV] = self.render_socket
        if self.account is not None:
            env["USER"] = env["LOGNAME"] = self.account.name
        if os.path.realpath(self.learner_python) != os.path.realpath(sys.executable):
            # A stand-in Python (accounts.learner_python) has another sys.prefix: point
            # Jupyter at the hub's own config and data (JupyterLab, the widget extensions).
            env["JUPYTER_CONFIG_PATH"] = os.path.join(sys.prefix, "etc", "jupyter")
            env["JUPYTER_PATH"] = os.path.join(sys.prefix, "share", "jupyter")
        return env

    async def start(self) -> Any:
        home = self._home()
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        if accounts.per_learner_accounts():
            self.account = await asyncio.to_thread(self._learner_account, home)
            summary = await asyncio.to_thread(self._copy_course_as_learner, home)
        else:
            summary = copy_course(home).summary()
        if summary:
            self.log.info("%s: %s", self.user.name, summary.replace("\n", "; "))
        self.notebook_dir = str(home)
        return await super().start()

    def _learner_account(self, home: Path) -> accounts.Account:
        account = accounts.ensure_account(accounts.system_name(self.user.name), home)
        if home.stat().st_uid != account.uid:  # new, or made by a hub without root
            accounts.give(home, account)
        return account

    def _copy_course_as_learner(self, home: Path) -> str:
        account = self.account
        assert account is not None
        # Not the hub's environment (it holds the workshop password and the proxy's token)
        # and not the home on sys.path (-P): the learner's files must not run here.
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "LANG": os.environ.get("LANG", "C.UTF-8")}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        proc = subprocess.run([self.learner_python, "-P", "-m", "pvlab.course", str(home)],
                              preexec_fn=lambda: become(account), cwd="/", env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"copying the course into {home} as {account.name} failed: "
                               f"{proc.stderr.strip()[-500:]}")
        return proc.stdout.strip()


def become(account: accounts.Account) -> None:
    """In a child process, as root: become the learner's account (no other groups)."""
    os.setgroups([])
    os.setgid(account.gid)
    os.setuid(account.uid)


def singleuser_cmd(python: str = sys.executable) -> list[str]:
    """The single-user server of this (or the given) Python (no PATH lookup)."""
    return [python, "-m", "jupyterhub.singleuser"]
