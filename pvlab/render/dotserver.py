# SPDX-License-Identifier: MIT
"""One long-lived `dot -Tsvg` process for the pictures of a session.

Starting `dot` costs far more than laying out a lab-sized graph: a few milliseconds of
CPU, but tens to a hundred of wall time on a busy machine (exec, the dynamic loader,
the plugin configuration), twice per lab action (the picture, then its replay frames).
`dot` reads graph after graph from its standard input and writes each one's SVG as soon
as the graph is complete, so one process can draw every picture: write the sources,
read back one SVG document per graph (each ends with ``</svg>``).

Anything unexpected (the process died, a graph it refused — dot exits on a syntax
error —, no answer within `TIMEOUT` seconds) stops the server and returns None: the
caller then runs `dot` once for that picture, as before, and gets its error message; the
next picture starts a new server (not after `MAX_FAILURES`). `PVLAB_DOT_SERVER=0` turns
the server off.
"""

from __future__ import annotations

import atexit
import os
import re
import select
import shutil
import subprocess
import threading

#: Seconds to wait for `dot`'s answer before giving up on the server.
TIMEOUT = 30.0
#: Failures (a graph dot refused, a dead process) after which the server is not restarted.
MAX_FAILURES = 3
_END = b"</svg>\n"
_PAGE_ID = re.compile(rb'<g id="page\d+,\d+_graph0"')


class DotServer:
    """A `dot -Tsvg` child process fed graph sources through a pipe."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.broken = False
        self.failures = 0

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        exe = shutil.which("dot")
        if exe is None:
            self.broken = True
            return None
        self._proc = subprocess.Popen([exe, "-Tsvg"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdin is not None
        # never block on a write: dot may be waiting for us to read its output
        os.set_blocking(self._proc.stdin.fileno(), False)
        return self._proc

    def render(self, sources: list[str]) -> list[str] | None:
        """One SVG document per DOT source, or None when the server cannot draw them."""
        if self.broken or not sources:
            return None if self.broken else []
        with self._lock:
            try:
                return self._render(sources)
            except (OSError, ValueError):
                self.stop()  # the next picture starts a new one; after 3 failures, none
                self.failures += 1
                self.broken = self.failures >= MAX_FAILURES
                return None

    def _render(self, sources: list[str]) -> list[str] | None:
        proc = self._start()
        if proc is None or proc.stdin is None or proc.stdout is None:
            return None
        data = "".join(s if s.endswith("\n") else s + "\n" for s in sources).encode("utf-8")
        out = proc.stdout.fileno()
        buf = bytearray()
        docs: list[bytes] = []
        written = 0
        # write and read together: a long source must not fill both pipes at once
        while len(docs) < len(sources):
            want_write = written < len(data)
            r, w, _ = select.select([out], [proc.stdin.fileno()] if want_write else [], [],
                                    TIMEOUT)
            if not r and not w:
                raise OSError("dot did not answer")
            if w:
                try:
                    written += os.write(proc.stdin.fileno(), data[written:written + 65536])
                except BlockingIOError:
                    pass
            if r:
                chunk = os.read(out, 1 << 16)
                if not chunk:
                    raise OSError("dot exited")
                buf += chunk
                while True:
                    end = buf.find(_END)
                    if end < 0:
                        break
                    docs.append(bytes(buf[:end + len(_END)]))
                    del buf[:end + len(_END)]
        if buf.strip():
            raise OSError("dot wrote more than it was asked for")
        # dot names a stream's graph groups "page0,1_graph0"; a one-shot run "graph0"
        return [_PAGE_ID.sub(b'<g id="graph0"', d, count=1).decode("utf-8") for d in docs]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


_server = DotServer()
atexit.register(_server.stop)


def render(sources: list[str]) -> list[str] | None:
    """SVG of each source through the shared server (None: use a one-shot `dot`)."""
    if os.environ.get("PVLAB_DOT_SERVER", "1") == "0":
        return None
    return _server.render(sources)


__all__ = ["DotServer", "render"]
