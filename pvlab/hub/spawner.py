# SPDX-License-Identifier: MIT
"""`CourseSpawner`: each learner's own JupyterLab, home folder and copy of the course.

Learners' servers run under the hub's own account (JupyterHub's `SimpleLocalProcessSpawner`
model), each in `homes/NAME` of the state folder, so the hub needs no root and no system
accounts: `make hub` works the same as root in CI and as an ordinary organiser account.
What keeps learners apart: the hub and proxy (a learner's cookie or token opens only their
own server: 403/404 otherwise; tested in tests/hub). What does not: code a learner runs can
read files of the same account. For a room you do not trust, use Zero to JupyterHub (one
container per learner, docs/workshop.md).

Limits per learner, enforced in the child before the server starts (`make_preexec_fn`):
address space (`mem_limit`, RLIMIT_AS; a runaway notebook gets MemoryError, not the machine),
one BLAS/OpenMP thread each, and a lower CPU priority than the hub (nice 5). A local spawner
cannot cap CPU share; Z2JH's `cpu_limit` can.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Integer

from pvlab.course import copy_course
from pvlab.hub.settings import THREAD_ENV


class CourseSpawner(SimpleLocalProcessSpawner):
    """A local learner server in homes/NAME with the course copied in (never overwritten)."""

    nice = Integer(5, config=True, help="Added to the learner processes' nice value.")

    def _home(self) -> Path:
        return Path(self.home_dir_template.format(username=self.user.name))

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        home = str(self._home())
        limit = int(self.mem_limit or 0)
        nice = int(self.nice)

        def preexec() -> None:
            os.makedirs(home, 0o700, exist_ok=True)
            os.chdir(home)
            if limit > 0:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            if nice:
                os.nice(nice)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env = dict(super().user_env(env))
        env.update(THREAD_ENV)
        for var, sub in (("JUPYTER_CONFIG_DIR", ".jupyter"),
                         ("JUPYTER_RUNTIME_DIR", ".local/share/jupyter/runtime"),
                         ("IPYTHONDIR", ".ipython")):
            env[var] = str(self._home() / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        return env

    async def start(self) -> Any:
        home = self._home()
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        report = copy_course(home)
        if report.added or report.beside:
            self.log.info("%s: %s", self.user.name, report.summary().replace("\n", "; "))
        self.notebook_dir = str(home)
        return await super().start()


def singleuser_cmd() -> list[str]:
    """The single-user server of this very Python (no PATH lookup)."""
    return [sys.executable, "-m", "jupyterhub.singleuser"]
