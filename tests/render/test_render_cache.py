# SPDX-License-Identifier: MIT
"""The shared render cache (pvlab.render.cache) and the hub's render server that fills it."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvlab.render import cache
from pvlab.render.model import GraphModel, Node, Row


@pytest.fixture(autouse=True)
def _no_cache_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.delenv(cache.SERVER_ENV, raising=False)
    cache.reset_stats()


class Counting:
    """A stand-in for `dot`: the SVG names its source; counts what it was asked to draw."""

    def __init__(self) -> None:
        self.drawn: list[str] = []

    def __call__(self, sources: list[str]) -> list[str]:
        self.drawn += sources
        return [f"<?xml?><svg>{s}</svg>" for s in sources]


def test_without_configuration_every_picture_is_drawn() -> None:
    dot = Counting()
    assert cache.svg_many(["a", "b"], dot) == ["<?xml?><svg>a</svg>", "<?xml?><svg>b</svg>"]
    assert cache.svg_many(["a"], dot) == ["<?xml?><svg>a</svg>"]
    assert dot.drawn == ["a", "b", "a"]
    assert cache.stats()["hits"] == 0


def test_a_configured_folder_draws_each_source_once(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    dot = Counting()
    first = cache.svg_many(["a", "b"], dot)
    again = cache.svg_many(["b", "c", "a"], dot)
    assert again == ["<?xml?><svg>b</svg>", "<?xml?><svg>c</svg>", "<?xml?><svg>a</svg>"]
    assert first == again[2:] + again[:1]
    assert dot.drawn == ["a", "b", "c"]
    assert cache.stats() == {"hits": 2, "misses": 3, "stored": 3, "errors": 0}
    assert len(list(tmp_path.glob("??/*.svg"))) == 3
    assert not list(tmp_path.glob("??/.tmp-*")), "no temporary file is left behind"


def test_the_key_is_the_source() -> None:
    assert cache.key("digraph { a }") == cache.key("digraph { a }")
    assert cache.key("digraph { a }") != cache.key("digraph { b }")


def test_prune_keeps_the_folder_under_its_bound(tmp_path: Path) -> None:
    store = cache.RenderCache(tmp_path, max_bytes=10_000)
    for i in range(30):
        assert store.put(cache.key(str(i)), "x" * 1000)
        os.utime(store.path(cache.key(str(i))), ns=(i * 10**9, i * 10**9))
    store.prune()
    left = list(tmp_path.glob("??/*.svg"))
    assert sum(p.stat().st_size for p in left) <= 10_000
    assert store.get(cache.key("29")) is not None, "the newest entries stay"
    assert store.get(cache.key("0")) is None, "the oldest go first"


def test_a_read_only_folder_still_draws(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write a read-only folder")
    tmp_path.chmod(0o555)
    try:
        assert not cache.RenderCache(tmp_path).put(cache.key("a"), "svg")
    finally:
        tmp_path.chmod(0o755)


@pytest.fixture()
def render_server() -> Iterator[tuple[Path, str]]:
    from pvlab.hub.renderd import RenderServer

    folder = Path(tempfile.mkdtemp(prefix="pvlab-renderd-"))  # a short path for the socket
    sock = str(folder / "render.sock")
    server = RenderServer(sock, cache.RenderCache(folder / "cache"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield folder / "cache", sock
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        shutil.rmtree(folder, ignore_errors=True)


DOT = "digraph g { a -> b }"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_the_render_server_draws_stores_and_answers(render_server: tuple[Path, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pvlab.render.dot import dot_svgs

    folder, sock = render_server
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    monkeypatch.setenv(cache.SERVER_ENV, sock)
    never = Counting()  # a learner's own dot must not be needed
    got = cache.svg_many([DOT], never)
    assert never.drawn == []
    assert got == dot_svgs([DOT]), "the server's picture is dot's own"
    assert cache.RenderCache(folder).get(cache.key(DOT)) == got[0]
    assert cache.svg_many([DOT], never) == got
    assert cache.stats() == {"hits": 1, "misses": 1, "stored": 0, "errors": 0}


def test_the_render_server_refuses_what_is_not_a_list_of_sources(
        render_server: tuple[Path, str]) -> None:
    _folder, sock = render_server
    import socket

    for bad in ({"sources": []}, {"sources": [1]}, {"nothing": True}, ["x"]):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock)
            cache.send_message(s, bad)
            reply = cache.recv_message(s)
        assert isinstance(reply, dict) and "error" in reply, (bad, reply)


def test_without_the_server_a_learner_draws_and_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(cache.SERVER_ENV, str(tmp_path / "no-such.sock"))
    dot = Counting()
    assert cache.svg_many(["a"], dot) == ["<?xml?><svg>a</svg>"]
    assert dot.drawn == ["a"]
    assert not list(tmp_path.glob("??/*.svg")), "only the server writes the shared folder"
    assert cache.stats()["errors"] == 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_a_cached_picture_is_the_picture(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pvlab.render import dot

    model = _a_model()
    plain = dot.render_svg(model)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert dot.render_svg(model) == plain  # drawn and stored
    assert dot.render_svg(model) == plain  # from the cache
    assert dot.render_many([model, model]) == [plain, plain]
    assert cache.stats() == {"hits": 3, "misses": 1, "stored": 1, "errors": 0}


def _a_model() -> GraphModel:
    return GraphModel(kind="tables", title="cache test",
                      nodes=[Node(id="n1", title="L4 0x10", rows=(Row(text="0: -> n2"),))])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_a_picture_the_server_gives_up_on_is_drawn_by_the_learner(
        render_server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pvlab.hub import renderd

    folder, sock = render_server
    monkeypatch.setattr(renderd, "DOT_TIMEOUT", 1e-6)  # every dot run is "too long"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    monkeypatch.setenv(cache.SERVER_ENV, sock)
    own = Counting()
    assert cache.svg_many([DOT], own) == [f"<?xml?><svg>{DOT}</svg>"]
    assert own.drawn == [DOT]
    assert cache.stats()["errors"] == 1
    assert cache.RenderCache(folder).get(cache.key(DOT)) is None
