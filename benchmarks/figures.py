# SPDX-License-Identifier: MIT
"""The figures of issue 16, each with its same-run baseline, goal and correctness check.

Every `figure_*` function returns a :class:`Figure`; every `check_*` function raises
AssertionError when the fast path disagrees with its reference (the tests run them on
small sizes: tests/test_benchmark_checks.py).
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pvlab import Guest, Xen
from pvlab.toolstack import build_domain
from pvlab.toolstack.fullmap import MappedGuest, map_whole_guest
from pvlab.x86 import PagingMode, walk, walk_many
from pvlab.x86.batch import result_of
from pvlab.xen import Machine, bulk
from pvlab.xen.bulk import expand_events


@dataclass
class Figure:
    """One measured figure: `value` in `unit`, against `baseline` (same run)."""

    name: str
    value: float | None
    unit: str
    goal: str
    met: bool
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None  # speed-up over the baseline (higher is better)
    spread: tuple[float, float] | None = None  # min, max over the runs
    runs: int = 0
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": self.unit, "baseline": self.baseline,
                "baseline_name": self.baseline_name, "ratio": self.ratio, "goal": self.goal,
                "met": self.met, "spread": list(self.spread) if self.spread else None,
                "runs": self.runs, "note": self.note, **self.extra}


#: The clock of the engine figures: this process's CPU time by default (the machine is
#: shared, and wall time then measures the neighbours); `--wall` selects wall time.
CLOCK: Callable[[], float] = time.process_time


def timed(fn: Callable[[], object], runs: int,
          clock: Callable[[], float] | None = None) -> list[float]:
    tick = clock or CLOCK
    out = []
    for _ in range(runs):
        t0 = tick()
        fn()
        out.append(tick() - t0)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------- walks
def walk_tables(n_l1: int = 64, seed: int = 1) -> tuple[Machine, int, np.ndarray]:
    """4-level tables in the first 16 MiB mapping n_l1 * 2 MiB (5% of entries not
    present, 1/8 read-only), and random VAs over that range plus 1/8 beyond it."""
    rng = np.random.default_rng(seed)
    m = Machine("64MiB")
    l4, l3, l2 = 0x100, 0x101, 0x102
    l1s = np.arange(0x103, 0x103 + n_l1, dtype=np.int64)
    rows = np.zeros((n_l1, 512), np.uint64)
    targets = rng.integers(0x1000, 1 << 28, size=(n_l1, 512)).astype(np.uint64)
    flags = np.where(rng.random((n_l1, 512)) < 0.125, 0x25, 0x27).astype(np.uint64)
    flags[rng.random((n_l1, 512)) < 0.05] = 0
    rows[:] = np.where(flags > 0, (targets << np.uint64(12)) | flags, 0)
    m.write_rows(l1s, rows)
    upper = np.uint64(0x27)
    l2row = np.zeros(512, np.uint64)
    l2row[:n_l1] = (l1s.astype(np.uint64) << np.uint64(12)) | upper
    m.write_rows([l2], l2row)
    for table, target in ((l3, l2), (l4, l3)):
        row = np.zeros(512, np.uint64)
        row[0] = (np.uint64(target) << np.uint64(12)) | upper
        m.write_rows([table], row)
    span = n_l1 * 512 * 4096
    vas = rng.integers(0, span + span // 8, size=200_000).astype(np.uint64)
    return m, l4 << 12, vas


def walk_tables_scattered(n: int = 200_000, seed: int = 2) -> tuple[Machine, int, np.ndarray]:
    """The worst case for sharing the upper levels: 512 GiB mapped through 512 L2 and
    262,144 L1 slots (16 L2 and 64 L1 frames, reused), 5% of L2 entries not present,
    and `n` addresses each in an L1-table region (2 MiB) of its own."""
    rng = np.random.default_rng(seed)
    m = Machine("64MiB")
    l4, l3 = 0x100, 0x101
    l2s = np.arange(0x110, 0x120, dtype=np.int64)
    l1s = np.arange(0x200, 0x240, dtype=np.int64)
    targets = rng.integers(0x1000, 1 << 28, size=(len(l1s), 512)).astype(np.uint64)
    flags = np.where(rng.random((len(l1s), 512)) < 0.125, 0x25, 0x27).astype(np.uint64)
    flags[rng.random((len(l1s), 512)) < 0.05] = 0
    m.write_rows(l1s, np.where(flags > 0, (targets << np.uint64(12)) | flags, 0))
    upper = np.uint64(0x27)
    l2rows = (rng.choice(l1s, size=(len(l2s), 512)).astype(np.uint64) << np.uint64(12)) | upper
    l2rows[rng.random(l2rows.shape) < 0.05] = 0
    m.write_rows(l2s, l2rows)
    l3row = (np.resize(l2s, 512).astype(np.uint64) << np.uint64(12)) | upper
    m.write_rows([l3], l3row)
    l4row = np.zeros(512, np.uint64)
    l4row[0] = (np.uint64(l3) << np.uint64(12)) | upper
    m.write_rows([l4], l4row)
    regions = rng.choice(1 << 18, size=n, replace=False).astype(np.uint64)
    vas = (regions << np.uint64(21)) | rng.integers(0, 1 << 21, size=n).astype(np.uint64)
    return m, l4 << 12, vas


def check_walks(m: Machine, cr3: int, vas: np.ndarray, sample: int = 2000) -> None:
    """walk_many == walk (every field) on a sample; == Unicorn on all when available."""
    b = walk_many(m, PagingMode.FOUR_LEVEL, cr3, vas, write=True)
    step = max(1, len(vas) // sample)
    for i in range(0, len(vas), step):
        ref = walk(m, PagingMode.FOUR_LEVEL, cr3, int(vas[i]), write=True)
        assert b.result(i) == result_of(ref), hex(int(vas[i]))
    try:
        from benchmarks.unicorn_mmu import UnicornWalker
        uc = UnicornWalker(m, cr3)
    except ImportError:
        return
    theirs = uc.translate_all(vas.tolist())
    ours = [int(p) if ok else None for p, ok in zip(b.paddr.tolist(), b.ok.tolist(),
                                                     strict=True)]
    assert ours == theirs


def figure_walks(runs: int) -> list[Figure]:
    return [_walk_figure("walks_per_second", walk_tables(), runs,
                         "realistic: 200,000 random write walks over 4-level tables mapping "
                         "128 MiB (64 L1s; 5% of L1 entries not present, 1/8 read-only, "
                         "1/8 of the addresses unmapped)"),
            _walk_figure("walks_per_second_scattered", walk_tables_scattered(), runs,
                         "worst case: 200,000 write walks, each in a 2 MiB region of its own "
                         "(512 GiB mapped, 5% of L2 entries not present): nothing to share "
                         "at L2, so L2 and L1 are walked per address")]


def _walk_figure(name: str, tables: tuple[Machine, int, np.ndarray], runs: int,
                 what: str) -> Figure:
    m, cr3, vas = tables
    check_walks(m, cr3, vas)
    t_batch = timed(lambda: walk_many(m, "4-level", cr3, vas, write=True), runs)
    rate = [len(vas) / t for t in t_batch]
    few = vas[:5000].tolist()
    t_scalar = timed(lambda: [walk(m, "4-level", cr3, va, write=True) for va in few], 1)
    scalar_rate = len(few) / t_scalar[0]
    note = f"{what}; scalar walk(): {scalar_rate:,.0f}/s; walk_many == walk == Unicorn checked"
    try:
        from benchmarks.unicorn_mmu import UnicornWalker
        uc = UnicornWalker(m, cr3)
        lst = vas.tolist()
        t_uc = timed(lambda: uc.translate_all(lst), max(1, runs // 2))
        uc_rate = len(vas) / med(t_uc)
    except ImportError:
        return Figure(name, med(rate), "walks/s", ">= 20x Unicorn", False,
                      runs=runs, note=note + "; unicorn missing: no baseline")
    ratio = med(rate) / uc_rate
    if ratio < 20:
        note += (f"; MISSED by {20 / ratio:.1f}x: " + (
            "the levels above L2 are shared per 1 GiB region, but every address walks "
            "L2 and L1 itself in numpy (about 25 array passes per level, memory-bound); "
            "only a compiled loop would fuse them"
            if "scattered" in name else "see docs/performance.md"))
    return Figure(name, med(rate), "walks/s", ">= 20x Unicorn uc_vmem_translate",
                  ratio >= 20, uc_rate, "Unicorn uc_vmem_translate (walks/s)", ratio,
                  (min(rate), max(rate)), runs, note,
                  {"scalar_walks_per_second": scalar_rate})


# --------------------------------------------------------------------------- pinning
def whole_guest(memory: str, bitness: int = 64, host: str = "16GiB") -> tuple[Xen, MappedGuest]:
    xen = Xen("4.19", host)
    g = xen.create_domain(bitness)
    return xen, map_whole_guest(xen, g, memory, read_only_every=7)


def machine_state(xen: Xen) -> tuple[object, ...]:
    """Everything the machine holds, in MFN order (for fast == reference)."""
    s, c = xen.machine.store, xen.machine.contents
    live = s.row_mfn >= 0
    order = s.row_mfn[live].argsort()
    cols = tuple(getattr(s, n)[live][order].tobytes()
                 for n in ("row_mfn", "owner", "count_info", "type_info", "linear_pt_count",
                           "m2p", "m2p_set"))
    clive = c.row_mfn >= 0
    corder = c.row_mfn[clive].argsort()
    return cols + (c.row_mfn[clive][corder].tobytes(), c.data[clive][corder].tobytes())


def check_pin(memory: str, bitness: int = 64) -> tuple[float, float]:
    """Pin a whole guest both ways: same outcome, expanded trace, counters, final state.
    Returns (bulk seconds, reference seconds)."""
    xen, mg = whole_guest(memory, bitness)
    xen2 = copy.deepcopy(xen)
    g2 = Guest(xen2, xen2.domains[mg.guest.domid])
    t0 = CLOCK()
    with bulk.bulk_path():
        fast = mg.guest.pin(mg.top, mg.level)
    t1 = CLOCK()
    with bulk.reference_path():
        ref = g2.pin(mg.top, mg.level)
    t2 = CLOCK()
    assert fast.ok and ref.ok, (fast, ref)
    assert fast.counters == ref.counters
    assert expand_events(fast.events) == ref.events
    assert machine_state(xen) == machine_state(xen2)
    return t1 - t0, t2 - t1


def figure_pin(runs: int, memory: str = "4GiB") -> list[Figure]:
    times = []
    for _ in range(runs):
        _xen, mg = whole_guest(memory)
        t0 = CLOCK()
        out = mg.guest.pin(mg.top, mg.level)
        times.append(CLOCK() - t0)
        assert out.ok
    fast_once, ref_time = check_pin(memory)
    ms = med(times) * 1000
    ratio = ref_time / med(times)
    note = (f"64-bit guest, {memory} mapped by 4 KiB pages ({len(mg.l1s)} L1s, "
            f"{len(mg.data)} L1 entries), pinned at the L4; reference path once: "
            f"{ref_time:.2f} s; fast == reference checked (outcome, expanded trace, "
            "counters, final state)")
    return [
        Figure("pin_4gib_ms", ms, "ms", "<= 50 ms", ms <= 50, ref_time * 1000,
               "scalar reference path (ms)", ratio,
               (min(times) * 1000, max(times) * 1000), runs, note),
        Figure("pin_4gib_speedup", ratio, "x", ">= 30x the scalar reference", ratio >= 30,
               1.0, "scalar reference path", ratio, None, runs, note),
    ]


# --------------------------------------------------------------------------- memory
_MEM_SCRIPT = """
import sys
from pvlab import Xen
from pvlab.toolstack.fullmap import map_whole_guest
xen = Xen("4.19", "1TiB")
if sys.argv[1] == "guest":
    g = xen.create_domain(64)
    mg = map_whole_guest(xen, g, "4GiB")
    assert g.pin(mg.top, mg.level).ok
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (big) parent
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].split()[1])
"""


def _rss_mb(kind: str) -> float:
    out = subprocess.run([sys.executable, "-c", _MEM_SCRIPT, kind], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def figure_memory(runs: int) -> Figure:
    full = [_rss_mb("guest") for _ in range(max(1, runs // 3))]
    empty = _rss_mb("empty")
    value = med(full)
    return Figure("memory_1tib_host_4gib_guest", value, "MB", "<= 300 MB", value <= 300,
                  empty, "empty 1 TiB host, same interpreter (MB)", None,
                  (min(full), max(full)), len(full),
                  "peak RSS of a fresh process: 1 TiB host, 64-bit guest with 4 GiB mapped "
                  "by 4 KiB pages, pinned (issue: 331 MB before)")


# --------------------------------------------------------------------------- builder
def figure_builder(runs: int) -> Figure:
    def build() -> None:
        res = build_domain(Xen("4.19", "16GiB"), kernel="x86_64", memory="4GiB")
        assert res.ok and len(res.p2m) == 1 << 20

    times = timed(build, runs)
    value = med(times)
    return Figure("build_4gib_guest_s", value, "s", "<= 1 s", value <= 1.0, None, "", None,
                  (min(times), max(times)), runs,
                  "build_domain: every frame populated (1,048,576), p2m and M2P, boot "
                  "tables written and pinned, vCPU context set")


# --------------------------------------------------------------------------- lab
def _forget_lab_caches() -> None:
    """Drop every cache a lab action can hit (kept runs, table nodes, SVG)."""
    from pvlab.render import svgcache, tables_graph
    from pvlab.ui import document

    svgcache.clear()
    tables_graph._NODE_MEMO.clear()
    document._RUNS.clear()


def _lab_actions(extra_l1s: int, runs: int, cold: bool) -> tuple[int, int, dict[str, float]]:
    """Median wall time (ms) of toggle, pin and undo on the seed sketch + `extra_l1s` L1s;
    `cold`: every cache dropped before each action (a state never drawn before)."""
    from benchmarks.bench_lab import seed_lab

    lab = seed_lab(extra_l1s)
    cb = lab.w_assists["pae_extended_cr3"]

    def toggle() -> None:
        cb.value = not cb.value

    lab.w_op_frame.value = "l3"
    times: dict[str, list[float]] = {"toggle": [], "pin": [], "undo": []}
    for _ in range(runs):
        for name, act in (("toggle", toggle), ("pin", lab.b_pin.click),
                          ("undo", lab.b_undo.click)):
            if cold:
                _forget_lab_caches()
            t0 = time.perf_counter()  # wall: the picture may come from a `dot` process
            act()
            times[name].append(time.perf_counter() - t0)
    nodes = len(lab.picture.model.nodes) if lab.picture is not None else 0
    return len(lab.frames), nodes, {k: med(v) * 1000 for k, v in times.items()}


def figure_lab(runs: int) -> list[Figure]:
    figs: list[Figure] = []
    try:
        from pvlab.ui.app import DOT_NODE_LIMIT

        for cold in (False, True):
            extra: dict[str, float] = {}
            worst = 0.0
            parts = []
            for l1s in (8, 60):
                frames, nodes, got = _lab_actions(l1s, max(3, runs), cold)
                for act, ms in got.items():
                    extra[f"{frames}_frames_{act}_ms"] = ms
                worst = max(worst, *got.values())
                drawn = "dot" if nodes <= DOT_NODE_LIMIT else "built-in SVG"
                parts.append(f"{frames} frames ({drawn}): "
                             + ", ".join(f"{k} {v:.0f}" for k, v in got.items()))
            if cold:
                name, how = "lab_action_cold_ms", (
                    "every cache (kept runs, table nodes, SVG) dropped before each action: "
                    "a state never drawn before, the worst case")
            else:
                name, how = "lab_action_svg_ms", (
                    "the issue's method: toggle an assist back and forth, pin then undo, "
                    "repeated (states seen before hit the kept runs and SVG)")
            note = (f"median wall ms per action, the slowest shown; seed sketch + 8 or 60 "
                    f"L1s; {how}; " + "; ".join(parts))
            if worst > 100:
                note += (f"; MISSED by {worst / 100:.1f}x at the slowest: wall time follows "
                         "the machine's load (an action replays the sketch, builds the "
                         "picture and each replay frame, and lays them out)")
            figs.append(Figure(name, worst, "ms",
                               "<= 100 ms median for every action (<= 64 frames)",
                               worst <= 100, None, "", None, None, max(3, runs), note, extra))
    except Exception as err:  # the lab is being rewritten; report, do not crash
        figs.append(Figure("lab_action_svg_ms", None, "ms", "<= 100 ms median", False,
                           note=f"not measured: {type(err).__name__}: {err}"))
    figs.append(_collapsed_4gib())
    return figs


_DRAW_SCRIPT = """
import time
from pvlab import Xen
from pvlab.render import tables_view
from pvlab.toolstack.fullmap import map_whole_guest
xen = Xen("4.19", "16GiB")
g = xen.create_domain(64)
mg = map_whole_guest(xen, g, "4GiB")
assert g.pin(mg.top, mg.level).ok
t0 = time.perf_counter()
svg = tables_view(xen, g).svg()
print(time.perf_counter() - t0, len(svg))
"""


def _collapsed_4gib(limit: float = 120.0) -> Figure:
    try:
        out = subprocess.run([sys.executable, "-c", _DRAW_SCRIPT], capture_output=True,
                             text=True, check=True, timeout=limit)
        secs = float(out.stdout.split()[0])
    except subprocess.TimeoutExpired:
        return Figure("draw_4gib_collapsed_s", None, "s", "<= 2 s", False,
                      note=f"gave up after {limit:.0f} s (tables_view + svg of the pinned "
                      "4 GiB guest)")
    except subprocess.CalledProcessError as err:
        return Figure("draw_4gib_collapsed_s", None, "s", "<= 2 s", False,
                      note=f"failed: {err.stderr.strip().splitlines()[-1:]}")
    note = ("tables_view(xen, guest).svg() of the pinned 4 GiB guest: summarised from the "
            "frame store's arrays (pvlab/render/summary.py: table groups, runs of frames)")
    if secs > 2.0:
        note += f"; MISSED by {secs / 2:.1f}x"
    return Figure("draw_4gib_collapsed_s", secs, "s", "<= 2 s", secs <= 2.0, None, "", None,
                  None, 1, note)


# --------------------------------------------------------------------------- make lab
def _cache_state() -> str:
    import os
    import shutil
    from pathlib import Path

    uv_cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    warm = uv_cache.is_dir() and any(uv_cache.iterdir())
    tools = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pvlab" / "uv"
    uv = ("on PATH" if shutil.which("uv") else "cached" if (tools / "bin" / "uv").exists()
          else "fetched by the run")
    dot = "installed (apt skipped)" if shutil.which("dot") else "installed by the run"
    return f"uv cache {'warm' if warm else 'cold'} ({uv_cache}); uv binary {uv}; graphviz {dot}"


def _make_lab_once(limit: float = 400.0) -> tuple[float | None, float | None, float]:
    """A fresh clone of this checkout's branch, `make lab` until JupyterLab answers:
    (set-up seconds, total seconds, installed site-packages MB)."""
    import os
    import signal
    import socket
    import tempfile
    import urllib.error
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    branch = subprocess.run(["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="pvlab-makelab-") as tmp:
        clone = Path(tmp) / "pvlab"
        subprocess.run(["git", "clone", "-q", "-b", branch, str(root), str(clone)], check=True)
        log = open(Path(tmp) / "make.log", "w+")  # noqa: SIM115 - read back below
        t0 = time.perf_counter()
        proc = subprocess.Popen(["make", "lab", f"LAB_ARGS=--port {port}"], cwd=clone,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        setup = total = None
        try:
            while time.perf_counter() - t0 < limit and proc.poll() is None:
                if setup is None:
                    log.seek(0)
                    if "set-up done" in log.read():
                        setup = time.perf_counter() - t0
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=2)
                    total = time.perf_counter() - t0
                except urllib.error.HTTPError:
                    total = time.perf_counter() - t0  # it answered (403/302: the token)
                except OSError:
                    time.sleep(0.3)
                    continue
                break
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
        site = next((clone / ".venv" / "lib").glob("python3*/site-packages"), None)
        size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) if site else 0
    return setup, total, size / 1e6


def figure_makelab(runs: int) -> Figure:
    import os

    state = _cache_state()
    setups, totals = [], []
    size = 0.0
    for _ in range(max(1, min(runs, 2))):
        setup, total, size = _make_lab_once()
        if total is None:
            return Figure("make_lab_s", None, "s", "<= 45 s", False,
                          note=f"JupyterLab did not answer within the limit; {state}")
        setups.append(setup or 0.0)
        totals.append(total)
    value = med(totals)
    wheels = size * 0.35  # installed size -> wheel (zip) size, roughly
    note = (f"fresh clone of this branch, `make lab` until JupyterLab answers on its port; "
            f"set-up {med(setups):.0f} s of it; {state}; load {os.getloadavg()[0]:.1f}. "
            f"A machine without caches also downloads about {wheels:.0f} MB of wheels "
            f"(site-packages {size:.0f} MB): about {wheels / 12:.0f}-{wheels / 6:.0f} s more "
            "at 50-100 Mbit/s, plus apt's graphviz in parallel"
            + ("" if "fetched" in state else
               ", plus fetching uv itself with pip the first time (5-15 s)"))
    if value > 45:
        note += f"; MISSED by {value / 45:.1f}x"
    return Figure("make_lab_s", value, "s", "<= 45 s", value <= 45, None, "", None,
                  (min(totals), max(totals)), len(totals), note)


def figure_makelab_skipped() -> Figure:
    return Figure("make_lab_s", None, "s", "<= 45 s", False,
                  note="not measured in this run: `python -m benchmarks --only makelab` "
                  "(clones the checkout, makes a venv, starts JupyterLab: a minute or two); "
                  "see docs/performance.md for the last figure")


FIGURES: dict[str, Callable[[int], Figure | list[Figure]]] = {
    "walks": figure_walks,
    "pin": figure_pin,
    "memory": figure_memory,
    "builder": figure_builder,
    "lab": figure_lab,
    "makelab": figure_makelab,
}
#: Figures `python -m benchmarks` runs unless --only names them (slow, or heavy).
OPT_IN = ("makelab",)


def run(names: list[str], runs: int, *, every: bool = False) -> list[Figure]:
    """The figures `names`; `every`: also report the opt-in figures not run as such."""
    out: list[Figure] = []
    for name in names:
        got = FIGURES[name](runs)
        out.extend(got if isinstance(got, list) else [got])
    if every and "makelab" not in names:
        out.append(figure_makelab_skipped())
    return out


def as_json(figs: list[Figure]) -> str:
    return json.dumps({f.name: f.as_dict() for f in figs}, indent=2)
