"""Optimality gap of releaf's assembly on random lots: 2s pairs, 12s1p, 8s2p and 4s3p packs.

For each design, lot size and seed it builds the assembly (``releaf.assembly.match_pairs`` for 2-module stations,
``releaf.packs.build_packs`` for NsMp) and prints the total series capacity found, a proven upper bound and the
gap ``(bound - found) / bound``, with the solve time. The bound:

* 2s pairs and ``<N>s1p``: the optimum itself (proven: docs/assembly-optimality.md), so the gap is 0 by proof and
  the column checks that the code attains it;
* ``<N>s<M>p`` with M >= 2: the smaller of ``releaf.packs.pack_capacity_upper_bound`` (a pack holds at most the
  mean of its groups) and ``releaf.packs_exact.tier_bound`` (which also charges the strongest modules' excess over
  the best packs they can be in, and the worst pack's groups' excess over it); for lots of at most ``--milp-max``
  modules also the dual bounds of two exact MILPs over all feasible parallel groups (HiGHS, ``--milp-time`` s
  each): the level MILP (``releaf.packs_exact.level_milp``, no pack indices), then, if that did not close, the
  pack-index MILP (``milp_bound``); for M = 2 the level MILP also runs on lots of up to ``--level-max`` modules.
  For lots of at most ``--lp-max`` modules also ``releaf.packs_exact.pack_lp_bound`` (the pack LP by Lagrangian
  duality, ``--lp-time`` s). The smallest bound is used. The gap is then an upper bound on the true optimality gap
  (the bound itself may be loose where no MILP closed).

Random lots (GENERATED, not measured): state of health ~ N(0.78, 0.06) clipped to 0.55-0.95 of 65 Ah; the two
groups of a module differ by up to 2 %; module R0 = 2.0 mOhm × (0.8 / SOH)^1.5 × lognormal(0, 0.06) (resistance
grows as capacity fades); one grade class. Tolerances inside a parallel group: 5 % capacity, 15 % R0 (defaults).

``--improve-s S`` runs ``releaf.packs_exact.polish_packs`` (the whole lot by the level MILP where the heuristic built
fewer packs than the lot could fill, then ``releaf.packs_anneal.anneal_packs`` over the whole lot, then exact
re-solving of adjacent packs) for S seconds after the heuristic; ``heur. Ah`` is the heuristic's total, ``found Ah``
the total after it, and the solve time includes it.

Run: ``PYTHONPATH=src python benchmarks/assembly_gap.py [--seeds 3] [--milp-max 50] [--level-max 200] [--milp-time 60]
[--lp-max 50] [--lp-time 60] [--improve-s 0] [--improve-window 3] [--improve-sub-s 3] [--designs ...] [--sizes ...]
[--only-seeds ...] [--pack-milp-max 50]``
"""

from __future__ import annotations

import argparse
import time

import highspy
import numpy as np

from releaf.assembly import ModuleCandidate, match_pairs
from releaf.packs import (
    build_packs,
    pack_capacity_Ah,
    pack_capacity_upper_bound,
)
from releaf.packs_exact import feasible_groups, level_milp, pack_lp_bound, polish_packs, tier_bound
from releaf.parameters import PORTABLE_2S
from releaf.solver import quiet_highs

DESIGNS = (("2s pairs", 2, 1), ("12s1p", 12, 1), ("8s2p", 8, 2), ("4s3p", 4, 3))
SIZES = (50, 200, 500, 1000)


def random_lot(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Group capacities (n, 2) [Ah] and group R0 (n, 2) [mOhm] of a GENERATED lot."""
    rng = np.random.default_rng(seed)
    soh = np.clip(rng.normal(0.78, 0.06, n), 0.55, 0.95)
    caps = 65.0 * soh[:, None] * np.column_stack([np.ones(n), 1 + rng.uniform(-0.02, 0.02, n)])
    r0 = 2.0 * (0.8 / soh) ** 1.5 * rng.lognormal(0, 0.06, n)
    return caps, np.column_stack([r0 / 2, r0 / 2])


def level_milp_bound(c, r, n_series, n_parallel, time_limit_s):
    """``releaf.packs_exact.level_milp``'s dual bound and whether it closed."""
    res = level_milp(c, r, n_series, n_parallel, time_limit_s=time_limit_s)
    return res.dual_bound_Ah, res.closed


def milp_bound(c: np.ndarray, r: np.ndarray, n_series: int, n_parallel: int, time_limit_s: float) -> tuple[float, bool]:
    """Dual bound (and whether it was closed) of the exact MILP for NsMp over all feasible parallel groups.

    x[g, p] = 1 if feasible group g is in pack p; each module in at most one chosen group; pack p takes N groups
    if built (u[p]); its capacity C[p] <= group g's capacity wherever x[g, p] = 1 (big-M) and N C[p] <= the sum
    of its groups' capacities (the mean-of-groups bound, which tightens the LP); packs ordered
    C[1] >= C[2] >= ... to break symmetry. Maximise sum C[p].
    """
    n = c.size
    groups = feasible_groups(c, r, n_parallel)
    n_packs = n // (n_series * n_parallel)
    if not groups or n_packs == 0:
        return 0.0, True
    s = np.array([c[list(g)].sum() for g in groups])
    big = float(s.max())
    ng = len(groups)
    h = quiet_highs()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    inf = highspy.kHighsInf
    # columns: x[g, p] (ng * P), u[p] (P), C[p] (P)
    nx = ng * n_packs
    xcol = np.arange(nx).reshape(ng, n_packs)
    ucol = nx + np.arange(n_packs)
    ccol = nx + n_packs + np.arange(n_packs)
    ncol = nx + 2 * n_packs
    cost = np.zeros(ncol)
    cost[ccol] = 1.0
    lower = np.zeros(ncol)
    upper = np.concatenate([np.ones(nx + n_packs), np.full(n_packs, big)])
    h.addCols(ncol, cost, lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.changeColsIntegrality(nx + n_packs, np.arange(nx + n_packs, dtype=np.int32),
                            np.full(nx + n_packs, highspy.HighsVarType.kInteger))

    def row(lo, hi, idx, val):
        h.addRow(lo, hi, len(idx), np.asarray(idx, np.int32), np.asarray(val, float))

    for p in range(n_packs):
        row(0, 0, [*xcol[:, p], ucol[p]], [*np.ones(ng), -n_series])  # N groups if built
        row(-inf, 0, [ccol[p], ucol[p]], [1, -big])
        row(-inf, 0, [ccol[p], *xcol[:, p]], [n_series, *-s])  # at most the mean of its groups: a tighter LP
        for g in range(ng):  # C[p] <= s_g + big (1 - x[g, p])
            row(-inf, s[g] + big, [ccol[p], xcol[g, p]], [1, big])
        if p + 1 < n_packs:
            row(0, inf, [ccol[p], ccol[p + 1]], [1, -1])
            row(0, inf, [ucol[p], ucol[p + 1]], [1, -1])
    member = [[] for _ in range(n)]
    for g, grp in enumerate(groups):
        for i in grp:
            member[i].append(g)
    for i in range(n):
        if member[i]:
            idx = xcol[member[i], :].reshape(-1)
            row(-inf, 1, idx, np.ones(idx.size))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    info = h.getInfo()
    closed = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    milp_bound.primal = float(info.objective_function_value)
    return float(info.mip_dual_bound), closed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only-seeds", nargs="*", type=int, default=None, help="only these seeds (e.g. 1 2)")
    ap.add_argument("--pack-milp-max", type=int, default=50,
                    help="largest lot for the pack-index MILP bound, run where the level MILP did not close")
    ap.add_argument("--milp-max", type=int, default=50, help="largest lot for the MILP bound (M >= 2)")
    ap.add_argument("--level-max", type=int, default=200,
                    help="largest lot for the level MILP alone (M = 2; it enumerates every feasible pair)")
    ap.add_argument("--milp-time", type=float, default=60.0, help="MILP time limit per lot [s]")
    ap.add_argument("--lp-max", type=int, default=50, help="largest lot for the pack LP bound (pack_lp_bound)")
    ap.add_argument("--lp-time", type=float, default=60.0, help="pack LP bound time limit per lot [s]")
    ap.add_argument("--designs", nargs="*", default=None, help="only these designs (e.g. 8s2p 4s3p)")
    ap.add_argument("--sizes", nargs="*", type=int, default=None, help="only these lot sizes")
    ap.add_argument("--improve-window", type=int, default=3, help="packs per window of polish_packs")
    ap.add_argument("--improve-sub-s", type=float, default=3.0, help="time limit of one window of polish_packs [s]")
    ap.add_argument("--improve-s", type=float, default=0.0,
                    help="NsMp, M >= 2: seconds of releaf.packs_exact.polish_packs after build_packs (0 = none)")
    args = ap.parse_args()
    match_pairs([], PORTABLE_2S)  # imports and parameter set loaded before timing
    print(f"{'design':9} {'modules':>7} {'seed':>4} {'built':>5} {'heur. Ah':>10} {'found Ah':>10} {'bound Ah':>10} "
          f"{'gap %':>7} {'solve s':>8}  bound")
    worst = {}
    for name, n_series, n_parallel in DESIGNS:
        if args.designs and name not in args.designs:
            continue
        for n in SIZES:
            if args.sizes and n not in args.sizes:
                continue
            for seed in args.only_seeds if args.only_seeds is not None else range(args.seeds):
                caps, r0 = random_lot(n, seed)
                c, r = caps.min(axis=1), r0.sum(axis=1)
                if n_parallel == 1 and n_series == 2:
                    cands = [ModuleCandidate(f"m{i:04d}", "A", tuple(caps[i]), tuple(r0[i])) for i in range(n)]
                    t0 = time.perf_counter()
                    res = match_pairs(cands, PORTABLE_2S)
                    dt = time.perf_counter() - t0
                    found, built = res.total_series_capacity_Ah, len(res.stations)
                    heuristic = found
                else:
                    t0 = time.perf_counter()
                    packs = build_packs(c, r, n_series, n_parallel)
                    heuristic = float(pack_capacity_Ah(c, packs).sum())
                    if n_parallel > 1 and args.improve_s > 0:
                        packs = polish_packs(c, r, packs, time_limit_s=args.improve_s, window=args.improve_window,
                                             sub_time_limit_s=args.improve_sub_s)
                    dt = time.perf_counter() - t0
                    found, built = float(pack_capacity_Ah(c, packs).sum()), len(packs)
                bound = pack_capacity_upper_bound(c, r, n_series, n_parallel)
                how = "proven optimum" if n_parallel == 1 else "mean-of-groups"
                if n_parallel > 1 and len(packs):
                    t1 = time.perf_counter()
                    tiers = tier_bound(c, r, n_series, n_parallel, pack_capacity_Ah(c, packs))
                    if tiers < bound:
                        bound, how = tiers, f"tier bound ({time.perf_counter() - t1:.1f} s)"
                if n_parallel > 1 and n <= args.lp_max:
                    t1 = time.perf_counter()
                    lp = pack_lp_bound(c, r, n_series, n_parallel, pack_capacity_Ah(c, packs),
                                       time_limit_s=args.lp_time)
                    if lp.bound_Ah < bound:
                        bound, how = lp.bound_Ah, f"pack LP ({time.perf_counter() - t1:.1f} s)"
                solvers = []
                if n_parallel > 1 and (n <= args.milp_max or (n_parallel == 2 and n <= args.level_max)):
                    solvers.append(("level MILP", level_milp_bound))
                if n_parallel > 1 and n <= min(args.milp_max, args.pack_milp_max):
                    solvers.append(("pack MILP", milp_bound))
                for label, solve in solvers:
                    t1 = time.perf_counter()
                    dual, closed = solve(c, r, n_series, n_parallel, args.milp_time)
                    if dual < bound:
                        bound = dual
                        how = (f"{label} {'optimum' if closed else 'dual bound'} "
                               f"({time.perf_counter() - t1:.1f} s)")
                    if closed:
                        break
                gap = 100 * (bound - found) / bound
                gap = 0.0 if abs(gap) < 1e-9 else gap  # the same sum added in another order
                worst[name] = max(worst.get(name, 0.0), gap)
                print(f"{name:9} {n:7d} {seed:4d} {built:5d} {heuristic:10.2f} {found:10.2f} {bound:10.2f} {gap:7.3f} "
                      f"{dt:8.3f}  {how}", flush=True)
    print("worst gap per design [%]: " + ", ".join(f"{k} {v:.3f}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
