# SPDX-License-Identifier: MIT
"""A system account per learner, when the hub runs as root.

A learner NAME gets the account `pvlab-NAME` (a system user with its own group, no login
shell, home `homes/NAME` of the state folder, mode 0700), created on their first server
start with `useradd`. Their server and kernels run as that account, so the kernel of one
learner cannot read another's files (the kernel gets PermissionError). Without root there is
one account for all: `pvlab hub` says so (`SHARED_ACCOUNT_WARNING`).

The render server (`pvlab.hub.renderd`) runs as `pvlab-render`, made the same way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from pvlab.errors import PvlabError

PREFIX = "pvlab-"
RENDER_USER = "pvlab-render"
NOLOGIN = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(p)),
               "/bin/false")
SHARED_ACCOUNT_WARNING = (
    "not running as root: every learner's server runs under this one account, so code a "
    "learner runs in a notebook can read other learners' files. Fine for a room of "
    "colleagues; for isolation start the hub as root (an account per learner) or use "
    "Zero to JupyterHub (docs/workshop.md).")


def per_learner_accounts() -> bool:
    """Does this hub give each learner an account of their own (it runs as root)?"""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def system_name(learner: str) -> str:
    """`pvlab-NAME` (learner names are at most 32 characters; Linux allows 32 in all)."""
    name = PREFIX + learner
    if len(name) > 32:
        raise PvlabError(f"learner name {learner!r} is too long for a system account "
                         f"({name!r} has {len(name)} characters; 32 at most)",
                         f"use a name of at most {32 - len(PREFIX)} characters")
    return name


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def ensure_account(name: str, home: Path | str,
                   comment: str = "pvlab workshop learner") -> Account:
    """The system account `name`, created (no login shell, own group) if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
             "--shell", NOLOGIN, "--comment", comment, name],
            capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 9):  # 9: created meanwhile by another start
            raise PvlabError(f"could not create the system account {name}: "
                             f"{proc.stderr.strip() or proc.returncode}",
                             "check that useradd works here (as root)") from None
        entry = pwd.getpwnam(name)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def give(path: Path, account: Account) -> None:
    """chown `path` and everything under it to the account (symbolic links themselves,
    never what they point to; used once, on a home the learner has not yet run in)."""
    os.chown(path, account.uid, account.gid, follow_symlinks=False)
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            try:
                os.chown(os.path.join(top, name), account.uid, account.gid,
                         follow_symlinks=False)
            except FileNotFoundError:
                continue


def python_usable_by(python: str, account: Account, reach: Path | str = "/") -> str:
    """'' if `account` can run `python -c 'import jupyterhub.singleuser, pvlab'` and reach the
    folder `reach`; else why not (e.g. the interpreter lives under /root, mode 0700)."""

    def become() -> None:
        os.setgroups([])
        os.setgid(account.gid)
        os.setuid(account.uid)

    try:
        proc = subprocess.run([python, "-c", "import os, sys, jupyterhub.singleuser, pvlab; "
                               "os.stat(sys.argv[1])", str(reach)],
                              preexec_fn=become, capture_output=True, text=True, timeout=120,
                              cwd="/", check=False)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{type(err).__name__}: {err}"
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return ""


def learner_python(state_dir: Path, account: Account, reach: Path) -> str:
    """A Python every learner account can run, with this Python's packages.

    This very interpreter when `account` can run it and reach `reach` (the homes folder);
    else (typically a Python under /root, mode 0700) a virtual environment `python/` in the
    state folder made from the system's Python of the same version (`/usr/bin/python3.X`),
    whose `.pth` file adds this Python's site-packages. Raises PvlabError when neither works.
    """
    here = sys.executable
    why = python_usable_by(here, account, reach)
    if not why:
        return here
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for base in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if not os.access(base, os.X_OK):
            continue
        venv = state_dir / "python"
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True,
                           capture_output=True)
        site_dir = venv / "lib" / f"python{version}" / "site-packages"
        ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        (site_dir / "pvlab-hub.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
        for top, dirs, files in os.walk(venv):
            for name in [top, *(os.path.join(top, d) for d in dirs)]:
                os.chmod(name, 0o755)
            for f in files:
                p = os.path.join(top, f)
                if not os.path.islink(p):
                    os.chmod(p, 0o755 if os.access(p, os.X_OK) else 0o644)
        why_venv = python_usable_by(str(python), account, reach)
        if not why_venv:
            return str(python)
        why += f"; {python} (from {base}): {why_venv}"
    raise PvlabError(f"learners' accounts cannot run the hub's Python or reach {reach}: {why}",
                     "put the state folder where every account can reach it (e.g. "
                     "--state-dir /srv/pvlab-hub) and install pvlab into a venv made from "
                     f"/usr/bin/python{version}; or run the hub as an ordinary user (then "
                     "learners share one account)")


BYTECODE_STAMP = "bytecode.json"


def compile_bytecode(state_dir: Path) -> bool:
    """Compile the hub's Python packages (and pvlab) to bytecode, as root, once per change.

    Learners' accounts cannot write `__pycache__` into the hub's venv, so without this every
    learner's server and kernel would compile each module it imports from source, at every
    start (a venv made by uv has no bytecode). Skipped when the folders are unchanged since
    the last compile (stamp `bytecode.json` in the state folder). True if it compiled."""
    import json

    import pvlab

    paths = sysconfig.get_paths()
    folders = sorted({paths["purelib"], paths["platlib"], str(Path(pvlab.__file__).parent)})
    seen = {f: os.stat(f).st_mtime_ns for f in folders if os.path.isdir(f)}
    stamp = state_dir / BYTECODE_STAMP
    try:
        if json.loads(stamp.read_text()) == seen:
            return False
    except (OSError, ValueError):
        pass
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *seen],
                   capture_output=True, check=False)  # a few files never compile: fine
    stamp.write_text(json.dumps(seen))
    os.chmod(stamp, 0o600)
    return True
