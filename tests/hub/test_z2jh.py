# SPDX-License-Identifier: MIT
"""The Zero to JupyterHub files (deploy/z2jh/) make the same choices as the local hub."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from pvlab.course import main as course_main
from pvlab.hub.settings import (
    ADMIN_ACCESS,
    DEFAULT_URL,
    LEARNER_ENV,
    USERNAME_PATTERN,
    HubSettings,
)

ROOT = Path(__file__).resolve().parents[2]
Z2JH = ROOT / "deploy" / "z2jh"


def values() -> dict:
    return yaml.safe_load((Z2JH / "values.yaml").read_text())


def test_limits_culler_and_landing_page_match_the_local_hub() -> None:
    local, v = HubSettings(), values()
    assert v["singleuser"]["memory"]["limit"] == f"{local.mem_limit_mb}M"
    assert v["cull"]["enabled"] is True
    assert v["cull"]["timeout"] == local.idle_timeout_s
    assert v["cull"]["every"] == local.cull_every_s
    assert v["singleuser"]["defaultUrl"] == DEFAULT_URL
    assert v["singleuser"]["extraEnv"] == LEARNER_ENV


def test_hub_config_matches_the_local_hub() -> None:
    config = values()["hub"]["config"]
    assert config["JupyterHub"]["admin_access"] is ADMIN_ACCESS
    assert config["Authenticator"]["username_pattern"] == USERNAME_PATTERN
    assert config["Authenticator"]["admin_users"] == HubSettings().admins


def test_the_course_is_copied_by_the_same_code(tmp_path: Path) -> None:
    hook = values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert hook[:3] == ["python", "-m", "pvlab.course"]
    assert course_main([str(tmp_path)]) == 0
    assert (tmp_path / "notebooks" / "06-scenario-lab.ipynb").is_file()
    assert not (tmp_path / "solutions").exists()


def test_the_user_image_is_the_binder_image_plus_the_wheel() -> None:
    dockerfile = (Z2JH / "Dockerfile").read_text()
    assert "COPY binder/apt.txt" in dockerfile
    binder_env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    python = next(d for d in binder_env["dependencies"]
                  if isinstance(d, str) and d.startswith("python="))
    assert f"python-{python.split('=')[1]}" in dockerfile
    extras = re.findall(r"pvlab-\*\.whl\)\[(\w+)\]", dockerfile)
    assert extras == ["lab"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "lab" in pyproject["project"]["optional-dependencies"]
    assert "graphviz" in (ROOT / "binder" / "apt.txt").read_text().split()
