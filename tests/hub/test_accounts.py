# SPDX-License-Identifier: MIT
"""An account per learner (root) or one shared account: names, folder modes, the warning."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pvlab.errors import PvlabError
from pvlab.hub import accounts, launcher
from pvlab.hub.settings import HubSettings


def test_a_learner_account_is_named_after_the_learner() -> None:
    assert accounts.system_name("ada") == "pvlab-ada"
    assert accounts.system_name("a" * 26) == "pvlab-" + "a" * 26  # 32: Linux's limit
    with pytest.raises(PvlabError, match="too long"):
        accounts.system_name("a" * 27)


@pytest.mark.parametrize("separate", [True, False])
def test_the_state_folder_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     separate: bool) -> None:
    monkeypatch.setattr(accounts, "per_learner_accounts", lambda: separate)
    state = tmp_path / "state"
    state.mkdir()
    (state / "jupyterhub.sqlite").write_bytes(b"")  # left 0644 by an older hub
    (state / "jupyterhub.sqlite").chmod(0o644)
    launcher.prepare(state, HubSettings())
    mode = stat.S_IMODE(state.stat().st_mode)
    # Learners' own accounts pass through (x) to their homes and list nothing; without
    # them nobody but the hub's account enters.
    assert mode == (0o711 if separate else 0o700)
    assert stat.S_IMODE((state / "homes").stat().st_mode) == mode
    assert stat.S_IMODE((state / "logs").stat().st_mode) == 0o700
    for name in ("hub.json", "jupyterhub_config.py", "jupyterhub.sqlite"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_the_shared_account_warning_says_what_a_learner_can_read() -> None:
    text = accounts.SHARED_ACCOUNT_WARNING
    assert "one account" in text and "read other learners' files" in text
    assert "root" in text and "Zero to JupyterHub" in text


def test_the_default_state_folder_as_root_is_outside_root_home(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pvlab.hub import settings

    monkeypatch.delenv(settings.STATE_ENV, raising=False)
    monkeypatch.setattr(settings.os, "geteuid", lambda: 0)
    assert settings.default_state_dir() == Path("/srv/pvlab-hub")
    monkeypatch.setattr(settings.os, "geteuid", lambda: 1000)
    assert settings.default_state_dir() == Path.home() / "pvlab-hub"
