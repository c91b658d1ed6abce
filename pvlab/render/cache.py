# SPDX-License-Identifier: MIT
"""A content-addressed cache of Graphviz's SVG, shared by every learner of a hub.

Learners of a workshop follow the same course, so the same states, hence the same DOT
source, recur from one learner to the next: `dot` (the largest part of a lab action's
CPU) need run once per distinct picture. An entry is the SVG `dot -Tsvg` made of one DOT
source, stored as `DIR/ab/abcdef….svg` under the SHA-256 of (the `dot` program's identity,
the source). Writers write a temporary file beside the entry and rename it into place,
so readers see a whole entry or none, and concurrent writers of one key write the same
bytes. The folder is bounded: every `PRUNE_EVERY` stores the writer removes the oldest
entries beyond `max_bytes`.

Off unless configured (a laptop's `make lab` renders every picture itself):
  - `PVLAB_RENDER_CACHE=DIR`: this process reads DIR and, on a miss, runs `dot` itself and
    stores the result (one trusted account: a hub whose learners share the hub's account);
  - plus `PVLAB_RENDER_SERVER=SOCKET`: DIR is read-only here; a miss is sent to the render
    server on that unix socket (`pvlab.hub.renderd`, run by the hub), which runs `dot`,
    stores the entry and answers. Learners with accounts of their own then share entries
    that only `dot` itself wrote: no learner can plant a picture another learner sees.
`stats()` counts hits and misses in this process (the hub load test reports the rate).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CACHE_ENV = "PVLAB_RENDER_CACHE"
SERVER_ENV = "PVLAB_RENDER_SERVER"
MAX_BYTES = 256 * 2**20
PRUNE_EVERY = 200
SERVER_TIMEOUT = 60.0
_HEADER = struct.Struct("!I")


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "stored": self.stored,
                "errors": len(self.errors)}


_stats = Stats()
_identity: dict[str, str] = {}


def stats() -> dict[str, int]:
    """Hits, misses and stores of this process since it started (or `reset_stats()`)."""
    return _stats.as_dict()


def reset_stats() -> None:
    global _stats
    _stats = Stats()


def dot_identity() -> str:
    """Which `dot` draws (path, size, mtime): a Graphviz upgrade starts a fresh key space."""
    if "dot" not in _identity:
        path = shutil.which("dot") or "dot"
        try:
            st = os.stat(path)
            _identity["dot"] = f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            _identity["dot"] = path
    return _identity["dot"]


def key(source: str) -> str:
    digest = hashlib.sha256()
    digest.update(dot_identity().encode())
    digest.update(b"\0svg\0")
    digest.update(source.encode("utf-8"))
    return digest.hexdigest()


@dataclass
class RenderCache:
    """The cache folder: `get`, `put` (atomic) and `prune` (oldest first, to `max_bytes`)."""

    root: Path
    max_bytes: int = MAX_BYTES
    _puts: int = 0

    def path(self, k: str) -> Path:
        return self.root / k[:2] / f"{k}.svg"

    def get(self, k: str) -> str | None:
        try:
            return self.path(k).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, k: str, svg: str) -> bool:
        """Store one entry; False when the folder is not writable here."""
        target = self.path(k)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".svg")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(svg)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return False
        self._puts += 1
        if self._puts % PRUNE_EVERY == 0:
            self.prune()
        return True

    def prune(self) -> int:
        """Remove the oldest entries until the folder holds at most `max_bytes`."""
        entries = []
        total = 0
        for p in self.root.glob("??/*.svg"):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
            total += st.st_size
        removed = 0
        for _mtime, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            try:
                p.unlink()
            except OSError:
                continue  # another writer pruned it first
            total -= size
            removed += 1
        return removed


def configured() -> tuple[RenderCache | None, str | None]:
    """The cache folder and render server named by the environment (None where unset)."""
    root = os.environ.get(CACHE_ENV, "")
    server = os.environ.get(SERVER_ENV, "") or None
    return (RenderCache(Path(root)) if root else None), server


# ---- the hook `pvlab.render.dot` calls where it runs `dot` ----------------------------------

def svg_many(sources: list[str], render: Callable[[list[str]], list[str]]) -> list[str]:
    """SVG of each DOT source: from the cache where present; the misses drawn by the render
    server (if configured, falling back to `render`) or by `render(misses)` and stored."""
    cache, server = configured()
    if cache is None:
        return render(sources)
    keys = [key(s) for s in sources]
    found = [cache.get(k) for k in keys]
    missing = [i for i, svg in enumerate(found) if svg is None]
    _stats.hits += len(sources) - len(missing)
    _stats.misses += len(missing)
    if missing:
        todo = [sources[i] for i in missing]
        drawn = None
        if server:
            try:
                drawn = ask_server(server, todo)
            except (OSError, ValueError) as err:  # no server: draw here, store nothing
                _stats.errors.append(f"{type(err).__name__}: {err}")
        if drawn is None:
            drawn = render(todo)
            if not server:
                for i, svg in zip(missing, drawn, strict=True):
                    _stats.stored += cache.put(keys[i], svg)
        for i, svg in zip(missing, drawn, strict=True):
            found[i] = svg
    return [svg for svg in found if svg is not None]


def svg_one(source: str, render: Callable[[], str]) -> str:
    """`svg_many` for one source whose renderer takes no argument."""
    return svg_many([source], lambda _todo: [render()])[0]


# ---- the render server's wire format: a length-prefixed JSON message each way -------------

def send_message(sock: socket.socket, payload: object) -> None:
    data = json.dumps(payload).encode("utf-8")
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_message(sock: socket.socket, limit: int = 64 * 2**20) -> object:
    head = _recv_exact(sock, _HEADER.size)
    (size,) = _HEADER.unpack(head)
    if size > limit:
        raise ValueError(f"message of {size} bytes is over the {limit}-byte limit")
    return json.loads(_recv_exact(sock, size).decode("utf-8"))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise ValueError("the render server closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def ask_server(path: str, sources: list[str]) -> list[str]:
    """Have the render server at unix socket `path` draw (and store) `sources`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(SERVER_TIMEOUT)
        sock.connect(path)
        send_message(sock, {"sources": sources})
        reply = recv_message(sock)
    if not isinstance(reply, dict) or not isinstance(reply.get("svgs"), list):
        raise ValueError(f"the render server answered {str(reply)[:200]}")
    svgs = [str(s) for s in reply["svgs"]]
    if len(svgs) != len(sources):
        raise ValueError(f"the render server drew {len(svgs)} of {len(sources)} pictures")
    return svgs
