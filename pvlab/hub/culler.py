# SPDX-License-Identifier: MIT
"""The idle culler as the hub runs it: `jupyterhub-idle-culler`, ending at once when the hub
stops it. (Run directly, it does not exit on SIGINT, and JupyterHub then waits 30 s before
each shutdown; it keeps no state, so exiting on the signal loses nothing.)"""

from __future__ import annotations

import os
import signal
from typing import Any


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(0)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_now)
    from jupyterhub_idle_culler import main as culler_main

    culler_main()


if __name__ == "__main__":
    main()
