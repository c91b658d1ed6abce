# SPDX-License-Identifier: MIT
"""The kit makes no outbound network calls: the lab actions, `pvlab run` and the course copy
connect to nothing but loopback (every connect() is recorded and refused if it goes out)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from pvlab.cli import main as pvlab_main
from pvlab.course import copy_course


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("localhost",) or isinstance(address, (str, bytes))
        if not loopback:
            attempts.append(address)
            raise OSError(f"test: outbound connection to {address} refused")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns(attempts, socket.getaddrinfo))
    return attempts


def _no_dns(attempts: list[Any], real: Any) -> Any:
    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            attempts.append(("dns", host))
        return real(host, *args, **kwargs)
    return lookup


def test_lab_actions_run_and_copy_stay_offline(outbound: list[Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from pvlab.ui import Lab, example_path

    lab = Lab()
    lab.allocate("l3", above="4GiB")
    lab.allocate("l2")
    lab.set_entry("l3", 3, "l2", "P")
    lab.set_vcpu0_initialised(True)
    lab.set_bitness(32)
    lab.pin("l3", 3)
    lab.set_vm_assist("pae_extended_cr3", True)
    lab.undo()
    assert pvlab_main(["run", str(example_path("seed-erange"))]) in (0, 1)
    copy_course(tmp_path / "course")
    capsys.readouterr()
    assert outbound == []
