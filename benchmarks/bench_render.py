# SPDX-License-Identifier: MIT
"""How long drawing takes for workshop-sized states (up to about 64 frames).

Run: `python benchmarks/bench_render.py` (prints figures; no assertion). For each state
it times building the view model (from a snapshot of the core), the canonical text,
the DOT source, SVG from `dot` (one process per picture, as `View.svg()` does), and
the pure-Python fallback SVG. Target: well under 0.1 s per picture with dot.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pvlab import Xen
from pvlab.render import frames_view, tables_view, walk_view
from pvlab.scenario import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[1]


def chain(bitness: int, frames: int):  # type: ignore[no-untyped-def]
    """A running guest with about `frames` frames: a top table, L2, L1s, data frames."""
    xen = Xen("4.19")
    g = xen.create_domain(bitness, vm_assists=["pae_extended_cr3"] if bitness == 32 else [])
    names: dict[int, str] = {}
    top = g.alloc_frame(above="4GiB")
    names[top] = "top"
    l2 = g.alloc_frame()
    names[l2] = "l2"
    if bitness == 32:
        g.write_entry(top, 3, l2, "P")
    else:
        l3 = g.alloc_frame()
        names[l3] = "l3"
        g.write_entry(top, 0, l3, "P|RW|US")
        g.write_entry(l3, 0, l2, "P|RW|US")
    n_l1 = max(1, (frames - 3) // 8)
    for i in range(n_l1):
        l1 = g.alloc_frame()
        names[l1] = f"l1_{i}"
        g.write_entry(l2, i, l1, "P|RW|US")
        for j in range(7):
            d = g.alloc_frame()
            g.write_entry(l1, j, d, "P|RW" if j % 2 else "P")
    assert g.pin(top, 3 if bitness == 32 else 4).ok
    assert g.set_vcpu_context(0, cr3=top).ok
    return xen, g, names, len(g.frames())


def timeit(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    have_dot = shutil.which("dot") is not None
    print(f"dot: {'installed' if have_dot else 'missing (dot columns skipped)'}; "
          "median seconds per picture")
    print(f"{'state':<34} {'frames':>6} {'model':>8} {'text':>8} {'dot src':>8} "
          f"{'dot svg':>8} {'fallback':>9}")
    states = []
    for bits in (32, 64):
        for n in (8, 32, 64):
            xen, g, names, count = chain(bits, n)
            states.append((f"{bits}-bit chain, tables", count,
                           lambda x=xen, gg=g, nm=names: tables_view(x, gg, names=nm)))
        states.append((f"{bits}-bit chain, walk", count,
                       lambda x=xen, gg=g: walk_view(x, gg, 0x1000)))
        states.append((f"{bits}-bit chain, frame map", count,
                       lambda x=xen, gg=g: frames_view(x, guest=gg)))
    run = run_scenario(load_scenario(ROOT / "tests/render/scenarios/seed-erange.yaml"))
    states.append(("seed-erange (README picture)", len(run.frames), lambda: tables_view(run)))
    for label, count, make in states:
        view = make()
        model = timeit(make, 20)
        text = timeit(view.text, 20)
        src = timeit(view.dot_source, 20)
        dot = timeit(lambda v=view: v.svg(backend="dot"), 7) if have_dot else float("nan")
        fb = timeit(lambda v=view: v.svg(backend="fallback"), 20)
        print(f"{label:<34} {count:>6} {model:>8.4f} {text:>8.4f} {src:>8.4f} {dot:>8.4f} "
              f"{fb:>9.4f}")


if __name__ == "__main__":
    main()
