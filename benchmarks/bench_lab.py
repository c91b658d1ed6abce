# SPDX-License-Identifier: MIT
"""How long one lab action takes, widget to re-rendered picture, for workshop-sized states.

Run: `python benchmarks/bench_lab.py` (prints figures; no assertion). A workshop-sized state
is what a learner builds by hand: a few to a few dozen frames and steps. Each action
rebuilds the state by replaying the sketch, then renders the tables view to SVG.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from pvlab.render import active_backend
from pvlab.ui import Lab


def seed_lab(extra_l1s: int) -> Lab:
    """The seed sketch (32-bit, assist off, high L3, vCPU 0 running) plus `extra_l1s` L1s
    hanging off the L2 and pinned one by one (so the replay grows with the state)."""
    lab = Lab()
    lab.set_bitness(32)
    lab.allocate("l3", above="4GiB")
    lab.allocate("l2")
    lab.set_entry("l3", 3, "l2", "P")
    for i in range(extra_l1s):
        name = lab.allocate(f"l1_{i}")
        lab.set_entry("l2", i, name, "P|RW")
    lab.set_vcpu0_initialised(True)
    for i in range(extra_l1s):
        lab.pin(f"l1_{i}", 1)
    lab.pin("l3", 3)
    return lab


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    print(f"render back end: {active_backend()}")
    print(f"{'state':<28} {'frames':>6} {'steps':>5} {'toggle assist':>14} {'click pin':>10} "
          f"{'undo':>8}")
    for extra in (0, 8, 32):
        lab = seed_lab(extra)
        cb = lab.w_assists["pae_extended_cr3"]

        def toggle(cb=cb) -> None:  # type: ignore[no-untyped-def]
            cb.value = not cb.value

        nframes, nsteps = len(lab.frames), len(lab.steps)
        t_toggle = statistics.median(timed(toggle, 10))
        pins, undos = [], []
        lab.w_op_frame.value = "l3"
        for _ in range(10):
            pins += timed(lab.b_pin.click, 1)
            undos += timed(lab.b_undo.click, 1)
        t_pin, t_undo = statistics.median(pins), statistics.median(undos)
        assert len(lab.steps) == nsteps
        print(f"{'seed + ' + str(extra) + ' L1s':<28} {nframes:>6} {nsteps:>5} "
              f"{t_toggle * 1000:>11.0f} ms {t_pin * 1000:>7.0f} ms {t_undo * 1000:>5.0f} ms")
    lab = Lab(example="shared-slot3-l2-leak")
    t_step = statistics.median(timed(lambda: (lab.step(), lab.back()), 5)) / 2
    print(f"{'example step/back':<28} {len(lab.frames):>6} {len(lab.steps):>5} "
          f"{'':>14} {t_step * 1000:>7.0f} ms (per step)")


if __name__ == "__main__":
    main()
