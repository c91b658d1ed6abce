# SPDX-License-Identifier: MIT
"""pvlab's benchmarks: `python -m benchmarks` (figures and goals of issue 16), plus the
older stand-alone scripts (`python benchmarks/bench_walk.py`, ...). Not tests: timings on
shared machines are noisy. Their correctness checks (fast path == reference) are tested
in tests/test_benchmark_checks.py."""
