"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import time


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` [s] (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
