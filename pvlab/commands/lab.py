# SPDX-License-Identifier: MIT
"""`pvlab lab`: start JupyterLab on notebooks/ (or, with --app, the scenario lab in Voilà).

The server listens on 127.0.0.1 only, on a free port (8888 unless taken), with a random
token; `--allow-root` is passed only when running as root. The full URL is printed once the
server answers.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pvlab.commands.serving import raise_interrupt
from pvlab.errors import PvlabError

HOST = "127.0.0.1"
DEFAULT_PORT = 8888
APP_NOTEBOOK = "lab-app.ipynb"
START_TIMEOUT = 120.0


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int = DEFAULT_PORT, tries: int = 20, host: str = HOST) -> int:
    """`preferred` or the next free port after it; any free port if those are all taken."""
    for port in range(preferred, preferred + tries):
        if port_is_free(port, host):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def default_course_dir() -> Path:
    """Where an installed pvlab copies its course: $PVLAB_COURSE_DIR or ~/pvlab-course."""
    env = os.environ.get("PVLAB_COURSE_DIR")
    return Path(env).expanduser() if env else Path.home() / "pvlab-course"


def copy_installed_course(course_dir: str | None) -> Path:
    """Copy the course (packaged, else the checkout's) into the course folder, never over a
    learner's edits, and return its notebooks/ folder (pvlab.course.copy_course)."""
    from pvlab.course import copy_course, course_source

    try:
        source = course_source()
    except PvlabError as err:
        raise PvlabError("no notebooks/ folder here, in a pvlab checkout, or in this "
                         "installation of pvlab",
                         "run `make lab` in the pvlab checkout, pass --notebook-dir, or "
                         "install pvlab from a wheel (pip install 'pvlab[lab]')") from err
    dest = Path(course_dir).expanduser() if course_dir else default_course_dir()
    report = copy_course(dest, source)
    print(report.summary(), flush=True)
    return (dest / "notebooks").resolve()


def find_notebooks(explicit: str | None = None, course_dir: str | None = None) -> Path:
    """The notebooks folder: --notebook-dir, ./notebooks, the checkout pvlab came from, or
    (an installed pvlab) the course copied into --course-dir."""
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise PvlabError(f"notebook folder {explicit} does not exist",
                             "give an existing folder to --notebook-dir")
        return path.resolve()
    for candidate in (Path.cwd() / "notebooks", Path(__file__).resolve().parents[2] / "notebooks"):
        if candidate.is_dir() and course_dir is None:
            return candidate
    return copy_installed_course(course_dir)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(notebooks: Path, port: int, token: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.ip={HOST}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}",
    ]
    if running_as_root():
        cmd.append("--allow-root")
    return cmd


def app_command(notebook: Path, port: int, token: str) -> list[str]:
    return [
        sys.executable, "-m", "voila", str(notebook),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={HOST}",
        f"--token={token}",
    ]


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> bool:
    """Poll `url` until the server answers; False if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered, even if with 403/404
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def run(args: argparse.Namespace) -> int:
    notebooks = find_notebooks(args.notebook_dir, getattr(args, "course_dir", None))
    if args.port is None:
        port = free_port()
    elif not port_is_free(args.port):
        raise PvlabError(f"port {args.port} on {HOST} is already in use",
                         "pick another with --port, or leave --port out to get a free one")
    else:
        port = args.port
    token = secrets.token_hex(24)
    base = f"http://{HOST}:{port}"
    if args.app:
        notebook = notebooks / APP_NOTEBOOK
        if not notebook.is_file():
            raise PvlabError(f"the scenario lab notebook {notebook} is missing",
                             "update your checkout (git pull); the Voila app serves that notebook")
        cmd = app_command(notebook, port, token)
        url = f"{base}/?token={token}"
        what = f"Voila app ({APP_NOTEBOOK})"
    else:
        cmd = lab_command(notebooks, port, token)
        url = f"{base}/lab?token={token}"
        what = f"JupyterLab on {notebooks}"
    print(f"Starting {what} ...", flush=True)
    proc = subprocess.Popen(cmd)
    # `kill <pvlab pid>` stops the server too, as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        if wait_until_up(f"{base}/api/status?token={token}" if not args.app else url, proc):
            print("\n" + "=" * 72, flush=True)
            print(f"  {what} is running. Open this URL in your browser:", flush=True)
            print(f"    {url}", flush=True)
            print("  Stop it with Ctrl-C.", flush=True)
            print("=" * 72 + "\n", flush=True)
        elif proc.poll() is None:
            print(f"The server has not answered yet; try {url}", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="start JupyterLab on the notebooks (127.0.0.1, random token)",
        description="Start JupyterLab on notebooks/ bound to 127.0.0.1 with a random token "
        "and print the URL. With --app, serve the scenario lab as a standalone Voila page.",
    )
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to listen on (default: {DEFAULT_PORT}, or the next free one)")
    parser.add_argument("--app", action="store_true",
                        help=f"serve notebooks/{APP_NOTEBOOK} with Voila for projector demos")
    parser.add_argument("--notebook-dir", default=None,
                        help="folder of notebooks to serve (default: notebooks/ of the checkout)")
    parser.add_argument("--course-dir", default=None,
                        help="an installed pvlab (no checkout) copies its course here once and "
                        "serves it; your edits are never overwritten "
                        "(default $PVLAB_COURSE_DIR or ~/pvlab-course)")
    parser.set_defaults(func=run)
