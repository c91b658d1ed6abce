# SPDX-License-Identifier: MIT
"""Bottom-up against top-down pinning: counters and wall time for growing trees.

Run: `python benchmarks/bench_pinning_order.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import time

from pvlab.toolstack import TableSet, compare_pinning_orders


def main() -> None:
    print(f"{'tree':<28} {'order':<10} {'hcalls':>6} {'types':>6} {'valid':>6} "
          f"{'entries':>7} {'depth':>5} {'ms':>8}")
    for bitness, l2s, l1s, pages in ((32, 2, 2, 4), (32, 4, 8, 64), (64, 4, 8, 64),
                                     (64, 4, 16, 32)):
        ts = TableSet(bitness, l2s, l1s, pages)
        t0 = time.perf_counter()
        c = compare_pinning_orders(ts)
        ms = (time.perf_counter() - t0) * 1000
        name = f"pv{bitness} {l2s}xL2 {l1s}xL1 {pages}pg"
        for order, cnt in c.costs.items():
            print(f"{name:<28} {order:<10} {cnt.hypercalls:>6} {cnt.type_acquisitions:>6} "
                  f"{cnt.validations:>6} {cnt.entries_checked:>7} {cnt.max_depth:>5} "
                  f"{ms / 2:>8.1f}")
        print(f"{'':<28} same final state: {c.same_final_state}")


if __name__ == "__main__":
    main()
