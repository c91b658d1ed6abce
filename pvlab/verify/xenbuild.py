# SPDX-License-Identifier: MIT
"""Where the oracle lives and which Xen image plays which profile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pvlab.errors import PvlabError

PROFILES = ("4.17", "4.19")
#: The third build (`oracle/build-xen.sh release`): Debian's 4.17 source without
#: CONFIG_DEBUG. It plays profile 4.17 as a release build.
RELEASE = "release"
RELEASE_PROFILE = "4.17"


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


def xen_build_of(xen: Path) -> str:
    """"debug" or "release": CONFIG_DEBUG of the build `xen` comes from, read from the
    configuration saved beside it (`config` in the build cache, `.config` in a Xen tree);
    "debug" when there is none (the project's builds and Xen's own default for testing)."""
    for name in ("config", ".config"):
        cfg = xen.parent / name
        if cfg.is_file():
            text = cfg.read_text(errors="replace")
            return "debug" if "\nCONFIG_DEBUG=y" in "\n" + text else RELEASE
    return "debug"


#: the profile behaviours `oracle/xen-patches/` adds to the 4.17 source ("4.19" build)
PATCHED = frozenset({"pae_l3_below_4g_check"})


def build_lacks(xen: Path, profile: str) -> frozenset[str]:
    """The `Profile` fields in which the project's "4.19" build (Debian's 4.17 source plus
    `oracle/xen-patches/`) differs from the profile it plays: Xen 4.19's other changes, which
    the build does not have. Empty for any other hypervisor (its own build plays itself)."""
    from dataclasses import fields

    from pvlab.xen.profiles import get_profile

    name = xen.parent.name
    if not (name.startswith("xen-4.17") and name.endswith("-4.19")) or profile == "4.17":
        return frozenset()
    base, played = get_profile("4.17"), get_profile(profile)
    return frozenset(f.name for f in fields(played) if f.name not in ("name", "description",
                                                                      "first_release")
                     and getattr(base, f.name) != getattr(played, f.name)) - PATCHED


def build_xen(profiles: tuple[str, ...] = PROFILES) -> None:
    """Run oracle/build-xen.sh (prints its own progress lines); raises PvlabError on failure.

    `profiles` may name "4.17", "4.19" and "release" (the build without CONFIG_DEBUG)."""
    script = oracle_dir() / "build-xen.sh"
    if len(profiles) > 1 and RELEASE in profiles:
        build_xen(tuple(p for p in profiles if p != RELEASE))
        profiles = (RELEASE,)
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
