# SPDX-License-Identifier: MIT
"""Harness for the workshop hub tests: a real JupyterHub with its real proxy.

Tests that need the real hub use the `running_hub` fixture; they are marked `hub` and `slow`.
In CI (CI set) a missing JupyterHub or configurable-http-proxy is a failure; locally those
tests skip with the fix. Everything a test starts is stopped by its fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WORKSHOP_PASSWORD = "workshop-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-the-tests-0123"
ADMIN = "organiser"
LEARNERS = ("ada", "bob", "cy", "dee")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_hub() -> None:
    """Skip locally, fail in CI, when the hub's tools are missing."""
    problems = []
    for module in ("jupyterhub", "jupyterhub_idle_culler", "requests", "websocket"):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"{module} is not installed (pip install -e '.[hub]')")
    from pvlab.hub.settings import resolve_proxy

    if resolve_proxy() is None:
        problems.append("configurable-http-proxy is missing (npm install -g "
                        "configurable-http-proxy; make test does it)")
    if problems:
        if in_ci():
            pytest.fail("hub test cannot run in CI: " + "; ".join(problems), pytrace=False)
        pytest.skip("; ".join(problems))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HubUnderTest:
    state_dir: Path
    port: int
    hub: object  # pvlab.hub.launcher.RunningHub
    workshop_password: str = WORKSHOP_PASSWORD
    admin_password: str = ADMIN_PASSWORD
    admin: str = ADMIN
    learners: tuple[str, ...] = LEARNERS

    @property
    def url(self) -> str:
        return self.hub.url  # type: ignore[attr-defined,no-any-return]

    def restart(self) -> None:
        from pvlab.hub import launcher
        from pvlab.hub.settings import HubSettings

        self.hub.stop()  # type: ignore[attr-defined]
        launcher.prepare(self.state_dir, HubSettings.load(self.state_dir))  # `make hub` again
        self.hub = launcher.start(self.state_dir, WORKSHOP_PASSWORD, ADMIN_PASSWORD)


def hub_accounts() -> list[str]:
    """The system accounts a root hub with LEARNERS makes (learners, admin, render server)."""
    from pvlab.hub import accounts

    return [accounts.system_name(n) for n in (*LEARNERS, ADMIN)] + [accounts.RENDER_USER]


def existing_accounts(names: list[str]) -> set[str]:
    import pwd

    return {n for n in names if n in {e.pw_name for e in pwd.getpwall()}}


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubUnderTest]:
    require_hub()
    from pvlab.hub import accounts, launcher
    from pvlab.hub.settings import HubSettings

    separate = accounts.per_learner_accounts()
    if separate:  # learners' own accounts must pass through the parents (pytest's are 0700)
        state = Path(tempfile.mkdtemp(prefix="pvlab-hub-test-"))
        os.chmod(state, 0o711)
        before = existing_accounts(hub_accounts())
    else:
        state = tmp_path_factory.mktemp("hub-state")
    port = free_port()
    launcher.prepare(state, HubSettings(port=port, admins=[ADMIN], mem_limit_mb=1536))
    under_test = HubUnderTest(state, port, launcher.start(state, WORKSHOP_PASSWORD,
                                                         ADMIN_PASSWORD))
    try:
        yield under_test
    finally:
        under_test.hub.stop()  # type: ignore[attr-defined]
        if separate:
            shutil.rmtree(state, ignore_errors=True)
            for name in existing_accounts(hub_accounts()) - before:  # the ones we made
                subprocess.run(["userdel", name], capture_output=True, check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "running_hub" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.hub)
            item.add_marker(pytest.mark.slow)
