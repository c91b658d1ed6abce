# SPDX-License-Identifier: MIT
"""`pvlab hub`: a JupyterHub for a workshop on this machine (docs/workshop.md).

The organiser sets the workshop password in $PVLAB_HUB_PASSWORD (asked for on a terminal
when unset; there is never a default). Learners claim a name with it once and choose their
own password. All state lives in --state-dir (default ~/pvlab-hub): starting again keeps
every learner's home, account and the hub's database.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from pathlib import Path

from pvlab.commands.serving import raise_interrupt
from pvlab.hub.settings import (
    ADMIN_PASSWORD_ENV,
    LOOPBACK,
    PASSWORD_ENV,
    HubSettings,
    check_passwords,
    default_state_dir,
)

EXPOSED_WARNING = """\
WARNING: the hub listens on {ip}:{port}, reachable from other machines, over plain HTTP.
Passwords and notebooks cross the network unencrypted. Put it behind HTTPS: a reverse proxy
(nginx or Caddy) with a certificate in front of 127.0.0.1:{port}, or run configurable-http-
proxy with --ssl-key/--ssl-cert (JupyterHub's ssl_key/ssl_cert). See docs/workshop.md."""


def _password(env: str, prompt: str, required: bool) -> str | None:
    value = os.environ.get(env)
    if value:
        return value
    if required and sys.stdin.isatty():
        return getpass.getpass(prompt)
    return None


def settings_from_args(args: argparse.Namespace) -> HubSettings:
    return HubSettings(ip=args.ip, port=args.port, admins=list(args.admin or []),
                       mem_limit_mb=args.mem_limit_mb, max_learners=args.max_learners,
                       idle_timeout_s=args.idle_timeout)


def run(args: argparse.Namespace) -> int:
    from pvlab.hub import accounts, launcher

    settings = settings_from_args(args)
    password = _password(PASSWORD_ENV, "Workshop password (learners claim a name with it): ",
                         True)
    admin_password = _password(ADMIN_PASSWORD_ENV, "Admin password: ", bool(settings.admins))
    check_passwords(password, admin_password, settings.admins)
    state = launcher.prepare(Path(args.state_dir).expanduser(), settings)
    if settings.ip != LOOPBACK:
        print(EXPOSED_WARNING.format(ip=settings.ip or "*", port=settings.port), flush=True)
    if accounts.per_learner_accounts():
        print("Running as root: each learner gets a system account of their own "
              "(pvlab-NAME) and a home only they can read.", flush=True)
    else:
        print("WARNING: " + accounts.SHARED_ACCOUNT_WARNING, flush=True)
    print(f"Starting JupyterHub (state in {state}) ...", flush=True)
    hub = launcher.start(state, password, admin_password)
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        print("\n" + "=" * 72, flush=True)
        print(f"  The workshop hub is running: {hub.url}/", flush=True)
        print("  Learners: first sign-in = a name, their own password (8+ characters),", flush=True)
        print("  and the workshop password in the third field.", flush=True)
        if settings.admins:
            print(f"  Admin page: {hub.url}/hub/admin (as {', '.join(settings.admins)})",
                  flush=True)
        print(f"  Everything is kept in {state}; log: {hub.log_path}", flush=True)
        print("  Stop it with Ctrl-C (learners' files stay).", flush=True)
        print("=" * 72 + "\n", flush=True)
        return hub.proc.wait()
    except KeyboardInterrupt:
        hub.stop()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="run a JupyterHub for a workshop (127.0.0.1 unless --ip)",
        description="Start a real JupyterHub with its proxy for a workshop room: each learner "
        "gets their own server and home with the course copied in. Set the workshop password "
        f"in ${PASSWORD_ENV}. All state stays in --state-dir.",
    )
    parser.add_argument("--ip", default=LOOPBACK,
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the "
                        "hub to the network: put HTTPS in front)")
    parser.add_argument("--port", type=int, default=8000, help="public port (default 8000)")
    parser.add_argument("--state-dir", default=str(default_state_dir()),
                        help="folder for the database, cookie secret and homes "
                        "(default $PVLAB_HUB_STATE, else ~/pvlab-hub; as root /srv/pvlab-hub)")
    parser.add_argument("--admin", action="append", metavar="NAME",
                        help=f"an admin name, claimed with ${ADMIN_PASSWORD_ENV} (repeatable)")
    parser.add_argument("--mem-limit-mb", type=int, default=2048,
                        help="address-space limit per learner process in MiB (default 2048)")
    parser.add_argument("--max-learners", type=int, default=60,
                        help="most servers running at once (default 60)")
    parser.add_argument("--idle-timeout", type=int, default=3600,
                        help="stop a learner's server after this many idle seconds (3600)")
    parser.set_defaults(func=run)


