"""Time of the exact pairing (``releaf.assembly.match_pairs``) on a GENERATED lot of 100,000 modules.

Prints the best of ``--repeat`` wall times of the whole call (validation, the programme per grade class, usable
energy of every station, the records) and of the kernel alone (``max_series_capacity_pairs`` on one class), with
and without a partner tolerance. Goal (issue: exact pairing at any lot size): well under a second.

Run: ``PYTHONPATH=src python benchmarks/bench_pairing.py [--modules 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_of

from releaf.assembly import ModuleCandidate, match_pairs, max_series_capacity_pairs
from releaf.parameters import PORTABLE_2S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.modules
    rng = np.random.default_rng(0)
    caps = rng.uniform(40, 65, (n, 2))
    r0 = rng.uniform(0.8, 2.5, (n, 2))
    grades = rng.choice(["A", "B", "C", "reject"], n, p=[0.5, 0.3, 0.15, 0.05])
    cands = [ModuleCandidate(f"m{i:06d}", g, tuple(c), tuple(r))
             for i, (g, c, r) in enumerate(zip(grades, caps.tolist(), r0.tolist(), strict=True))]
    match_pairs(cands[:100], PORTABLE_2S)
    for tol in (None, 0.05):
        p = match_pairs(cands, PORTABLE_2S, capacity_tolerance=tol)
        t = best_of(lambda tol=tol: match_pairs(cands, PORTABLE_2S, capacity_tolerance=tol), args.repeat)
        k = best_of(lambda tol=tol: max_series_capacity_pairs(caps.min(axis=1), r0.sum(axis=1),
                                                              capacity_tolerance=tol), args.repeat)
        print(f"{n} modules, tolerance {tol}: {len(p.stations)} stations, {p.total_series_capacity_Ah:.1f} Ah, "
              f"{p.total_usable_Wh:.0f} Wh; match_pairs {t:.3f} s, kernel on one class of {n} {k:.3f} s")


if __name__ == "__main__":
    main()
