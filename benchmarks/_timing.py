"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import time


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` [s] (the least disturbed by other work on the machine)."""
    return min(interleaved({"fn": fn}, repeat)["fn"])


def interleaved(fns: dict, repeat: int) -> dict[str, list[float]]:
    """Wall times [s] of ``repeat`` rounds in which every function of ``fns`` runs once, in turn.

    Ratios between functions taken within one round share that round's load on a busy machine, so their spread
    over the rounds says how far the noise goes.
    """
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times
