# SPDX-License-Identifier: MIT
"""Where the oracle lives and which Xen image plays which profile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pvlab.errors import PvlabError

PROFILES = ("4.17", "4.19")


def oracle_dir() -> Path:
    """The `oracle/` folder of the pvlab checkout (or $PVLAB_ORACLE_DIR)."""
    env = os.environ.get("PVLAB_ORACLE_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "oracle"
    if not (path / "probe.c").is_file():
        raise PvlabError(
            f"the oracle sources are not at {path}",
            "run pvlab verify from a pvlab checkout, or set PVLAB_ORACLE_DIR to its oracle/ folder",
        )
    return path


def build_dir() -> Path:
    return Path(os.environ.get("PVLAB_ORACLE_BUILD", oracle_dir() / "build"))


def find_xen(profile: str) -> Path | None:
    """The newest built hypervisor for `profile` in the build cache, or None."""
    found = sorted(build_dir().glob(f"xen-*-{profile}/xen"))
    return found[-1] if found else None


def build_xen(profiles: tuple[str, ...] = PROFILES) -> None:
    """Run oracle/build-xen.sh (prints its own progress lines); raises PvlabError on failure."""
    script = oracle_dir() / "build-xen.sh"
    want = "all" if set(profiles) >= set(PROFILES) else profiles[0]
    result = subprocess.run(["sh", str(script), want], check=False)
    if result.returncode != 0:
        raise PvlabError(
            "building Xen failed (see the [build-xen] lines above)",
            "install gcc make python3 flex bison dpkg-dev, or pass --xen PATH to your own build",
        )


def xen_for(profile: str, explicit: str | None, build: bool) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise PvlabError(f"--xen {explicit}: no such file",
                             "give the path of the xen/xen ELF of a Xen build")
        return path
    if build:
        build_xen((profile,))
    found = find_xen(profile)
    if found is None:
        raise PvlabError(
            f"no Xen build for profile {profile} in {build_dir()}",
            "run `pvlab verify --build ...` (or oracle/build-xen.sh), or pass --xen PATH",
        )
    return found
