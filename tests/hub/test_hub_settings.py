# SPDX-License-Identifier: MIT
"""The hub's settings, password rules and authenticator, without starting a hub."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pvlab.cli import main as pvlab_main
from pvlab.errors import PvlabError
from pvlab.hub.settings import PASSWORD_ENV, HubSettings, check_passwords


def test_settings_round_trip_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    HubSettings(port=9001, admins=["org"]).save(tmp_path)
    data = json.loads((tmp_path / "hub.json").read_text())
    data["from_a_newer_release"] = 1
    (tmp_path / "hub.json").write_text(json.dumps(data))
    loaded = HubSettings.load(tmp_path)
    assert loaded.port == 9001 and loaded.admins == ["org"] and loaded.ip == "127.0.0.1"


def test_a_folder_without_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PvlabError, match="not a pvlab hub folder"):
        HubSettings.load(tmp_path)


@pytest.mark.parametrize(("password", "admin_password", "admins", "message"), [
    (None, None, [], "no workshop password"),
    ("short", None, [], "5 characters long"),
    ("long-enough", None, ["org"], "--admin given"),
    ("long-enough", "too-short", ["org"], "admin password is 9"),
    ("same-password-for-both", "same-password-for-both", ["org"], "equals the workshop"),
])
def test_password_rules(password: str | None, admin_password: str | None, admins: list[str],
                        message: str) -> None:
    with pytest.raises(PvlabError, match=message):
        check_passwords(password, admin_password, admins)


def test_good_passwords_pass() -> None:
    check_passwords("long-enough", "a-much-longer-admin-password", ["org"])
    check_passwords("long-enough", None, [])


def test_pvlab_hub_without_a_password_says_how_to_set_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert pvlab_main(["hub", "--state-dir", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err
    assert "no workshop password" in err and PASSWORD_ENV in err
    assert not (tmp_path / "state").exists(), "nothing is created before the checks pass"


def test_password_hashes() -> None:
    pytest.importorskip("jupyterhub")
    from pvlab.hub.auth import hash_password, verify_password

    stored = hash_password("secret-one")
    assert verify_password("secret-one", stored) and not verify_password("secret-two", stored)
    assert not verify_password("x", "garbage")


def test_claim_then_own_password(tmp_path: Path) -> None:
    pytest.importorskip("jupyterhub")
    from pvlab.hub.auth import WorkshopAuthenticator

    auth = WorkshopAuthenticator(workshop_password="workshop-pw", admin_password="admin-" * 4,
                                 learners_file=str(tmp_path / "learners.json"))
    auth.admin_users = {"org"}
    auth.username_pattern = r"^[a-z0-9][a-z0-9_-]{0,31}$"

    def login(name: str, password: str, otp: str = "") -> object:
        # A thread of its own: in the full run Playwright's sync API (the browser tests)
        # leaves an event loop running in this one, and asyncio.run() refuses to nest.
        data = {"username": name, "password": password, "otp": otp}
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, auth.authenticate(None, data)).result()

    assert login("ada", "ada-password") is None                      # no workshop password
    assert login("ada", "ada-password", "wrong") is None
    assert login("ada", "short", "workshop-pw") is None              # own password too short
    assert login("ada", "ada-password", "workshop-pw") == {"name": "ada", "admin": False}
    assert login("ada", "ada-password") == {"name": "ada", "admin": False}
    assert login("ada", "workshop-pw", "workshop-pw") is None        # no takeover
    assert login("ada", "other-password", "workshop-pw") is None
    assert login("org", "org-password", "workshop-pw") is None       # admin needs admin pw
    assert login("org", "org-password", "admin-" * 4) == {"name": "org", "admin": True}
    assert login("../etc", "x-password", "workshop-pw") is None      # not a name
    assert "ada-password" not in (tmp_path / "learners.json").read_text()
