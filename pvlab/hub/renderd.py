# SPDX-License-Identifier: MIT
"""The hub's render server: runs `dot` for every learner and fills the shared cache.

    python -m pvlab.hub.renderd CACHE_DIR SOCKET [--user NAME]

A hub-managed service (pvlab.hub.config). Learners' kernels read the cache folder
(`pvlab.render.cache`) and send a miss here over a unix socket; this server answers from
the cache or runs `dot -Tsvg` once for the request's misses, stores each SVG and answers.
Only this server writes the folder, so an entry is always what `dot` drew from its key's
source, whoever asked first. Started as root (a hub with an account per learner), it makes
the socket and the folder, then drops to the unprivileged system account `--user`, so
`dot` never runs as root on a learner's input.
"""

from __future__ import annotations

import argparse
import os
import signal
import socketserver
import sys
import threading
from pathlib import Path
from types import FrameType

from pvlab.render import cache

MAX_SOURCES = 64
MAX_SOURCE_CHARS = 2_000_000
#: At most this many `dot` runs at once (the rest wait): a room's burst must not fork-bomb.
DOT_SLOTS = max(2, (os.cpu_count() or 2))
#: A request whose pictures take longer is refused (the learner's kernel then draws itself):
#: one learner's enormous graph must not hold the room's render server.
DOT_TIMEOUT = 20.0


class RenderServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, socket_path: str, store: cache.RenderCache) -> None:
        self.store = store
        self.slots = threading.BoundedSemaphore(DOT_SLOTS)
        self.counts = {"requests": 0, "pictures": 0, "drawn": 0}
        super().__init__(socket_path, RenderHandler)

    def draw(self, sources: list[str]) -> list[str]:
        from pvlab.render.dot import dot_svgs

        keys = [cache.key(s) for s in sources]
        found = [self.store.get(k) for k in keys]
        missing = [i for i, svg in enumerate(found) if svg is None]
        if missing:
            with self.slots:
                drawn = dot_svgs([sources[i] for i in missing], timeout=DOT_TIMEOUT)
            for i, svg in zip(missing, drawn, strict=True):
                self.store.put(keys[i], svg)
                found[i] = svg
        self.counts["requests"] += 1
        self.counts["pictures"] += len(sources)
        self.counts["drawn"] += len(missing)
        return [svg or "" for svg in found]


class RenderHandler(socketserver.BaseRequestHandler):
    server: RenderServer

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(cache.SERVER_TIMEOUT)
        try:
            request = cache.recv_message(sock, limit=MAX_SOURCES * MAX_SOURCE_CHARS)
            sources = request.get("sources") if isinstance(request, dict) else None
            if (not isinstance(sources, list) or not 0 < len(sources) <= MAX_SOURCES
                    or not all(isinstance(s, str) and len(s) <= MAX_SOURCE_CHARS
                               for s in sources)):
                cache.send_message(sock, {"error": f"send 1 to {MAX_SOURCES} DOT sources"})
                return
            cache.send_message(sock, {"svgs": self.server.draw(sources)})
        except Exception as err:  # noqa: BLE001 - one bad request must not stop the server
            try:
                cache.send_message(sock, {"error": f"{type(err).__name__}: {err}"[:500]})
            except OSError:
                pass


def drop_to(user: str, paths: list[Path]) -> None:
    """As root: give `paths` to `user` and become that user (no-op when not root)."""
    if os.geteuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for p in paths:
        os.chown(p, entry.pw_uid, entry.pw_gid)
        for sub in p.rglob("*") if p.is_dir() else []:
            os.chown(sub, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = "/nonexistent"


def serve(cache_dir: Path, socket_path: Path, user: str | None = None) -> None:
    os.umask(0o022)
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o755)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(socket_path.parent, 0o755)
    socket_path.unlink(missing_ok=True)
    server = RenderServer(str(socket_path), cache.RenderCache(cache_dir))
    os.chmod(socket_path, 0o666)  # any learner may ask; what is stored is dot's own output
    if user:
        drop_to(user, [cache_dir, socket_path.parent, socket_path])

    def stop(_sig: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        socket_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pvlab.hub.renderd")
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("socket", type=Path)
    parser.add_argument("--user", default=None,
                        help="as root: drop to this system account after binding")
    args = parser.parse_args(argv)
    serve(args.cache_dir, args.socket, args.user)
    return 0


if __name__ == "__main__":
    sys.exit(main())
