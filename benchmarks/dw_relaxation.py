"""How far the pack-column (Dantzig-Wolfe) relaxation can bound NsMp assembly: a lower limit on its value.

The pack LP of ``releaf.packs_exact.pack_lp_bound`` is a Lagrangian bound whose best value is the linear relaxation
of choosing whole packs as columns:

    maximise sum_p C_p x_p   subject to   sum_{p containing i} x_p <= 1 (every module),  sum_p x_p <= P,  x >= 0,

over every possible pack p (N disjoint feasible groups; ``C_p`` its weakest group's capacity). Any set of packs
gives a restriction of this LP, so the restricted LP's optimum is a LOWER limit on the relaxation: if it already
exceeds a lot's optimum (or the found assembly) by more than 0.1 %, no pack-column bound, however well priced, can
prove the 0.1 % goal on that lot.

The columns are generated with exact pricing: for the restricted LP's duals ``pi``, the most profitable pack with
its weakest group at least ``t`` costs ``L(t)``, the cheapest N disjoint groups of capacity >= t (a small HiGHS
set-packing MILP), and ``max_t (t - L(t))`` is searched on a grid refined where it can still exceed the best pack
found. Each priced pack is a real pack (its value is recomputed from its groups), so the restricted LP's value needs
no proof beyond the packs' feasibility, which is checked.

Run: ``PYTHONPATH=src python benchmarks/dw_relaxation.py [--lots 4s3p:50:1 4s3p:50:2] [--time 200]``
(lots as design:modules:seed of ``assembly_gap.random_lot``).
"""

from __future__ import annotations

import argparse
import bisect
import time
from dataclasses import dataclass

import highspy
import numpy as np
from assembly_gap import random_lot

from releaf.packs import build_packs, pack_capacity_Ah, parse_design
from releaf.packs_exact import _most_disjoint, feasible_groups, shared_modules
from releaf.solver import quiet_highs


def cheapest_groups(price: np.ndarray, groups: np.ndarray, n_series: int) -> np.ndarray | None:
    """Indices of the ``n_series`` disjoint groups of least total price (HiGHS), or None if there are none."""
    k = price.size
    if k < n_series:
        return None
    h = quiet_highs()
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.addCols(k, price, np.zeros(k), np.ones(k), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.changeColsIntegrality(k, np.arange(k, dtype=np.int32), np.full(k, highspy.HighsVarType.kInteger))
    h.addRow(n_series, n_series, k, np.arange(k, dtype=np.int32), np.ones(k))
    for rows in shared_modules(groups):
        h.addRow(-highspy.kHighsInf, 1, len(rows), np.array(rows, np.int32), np.ones(len(rows)))
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return None
    return np.flatnonzero(np.asarray(h.getSolution().col_value) > 0.5)


def restricted_master(columns: list[np.ndarray], values: list[float], n: int, n_packs: int):
    """The pack-column LP over ``columns`` (module index arrays): its value and the module and count duals."""
    k = len(columns)
    h = quiet_highs()
    h.addCols(k, np.array(values), np.zeros(k), np.full(k, highspy.kHighsInf), 0, np.zeros(0, np.int32),
              np.zeros(0, np.int32), np.zeros(0))
    holds: list[list[int]] = [[] for _ in range(n)]
    for j, col in enumerate(columns):
        for i in col:
            holds[int(i)].append(j)
    for js in holds:
        h.addRow(-highspy.kHighsInf, 1, len(js), np.array(js, np.int32), np.ones(len(js)))
    h.addRow(-highspy.kHighsInf, n_packs, k, np.arange(k, dtype=np.int32), np.ones(k))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    duals = np.abs(np.asarray(h.getSolution().row_dual))  # HiGHS's sign convention; the size is the price
    return float(h.getInfo().objective_function_value), duals[:n], float(duals[n])


def price_packs(c, groups, sums, levels, grid, pi, n_series, deadline):
    """Packs of large reduced profit ``C_p - pi(p)``: ``L(t)`` priced on ``grid`` (indices into ``levels``), the grid
    refined in place where an interval may still hold a pack more profitable than the best found."""
    group_price = pi[groups].sum(axis=1)
    priced: dict[int, float] = {}
    found: list[tuple[np.ndarray, float, float]] = []

    def cost(k: int) -> float:  # L(levels[k]); also records the pack it found
        if k not in priced:
            m = int(np.searchsorted(-sums, -levels[k], side="right"))
            pick = cheapest_groups(group_price[:m], groups[:m], n_series)
            priced[k] = np.inf if pick is None else float(group_price[:m][pick].sum())
            if pick is not None:
                pack = groups[:m][pick]
                assert np.unique(pack).size == pack.size  # disjoint feasible groups: a real pack
                cap = float(c[pack].sum(axis=1).min())
                found.append((np.sort(pack.reshape(-1)), cap, cap - float(pi[pack.reshape(-1)].sum())))
        return priced[k]

    while time.perf_counter() < deadline:
        best = max([0.0] + [red for _, _, red in found])
        split = []
        for a, b in zip(grid, [*grid[1:], levels.size], strict=True):
            top = levels[a] if b == a + 1 else levels[min(b, levels.size - 1)]
            if top - cost(a) > best + 1e-7 and b - a > 1:
                split.append((a + b) // 2)
        if not split:
            break
        for k in split:
            bisect.insort(grid, k)
    return found


@dataclass(frozen=True)
class DwLimit:
    """What :func:`dw_lower_limit` reached.

    Attributes
    ----------
    value_Ah : the restricted pack-column LP's optimum [Ah]: a lower limit on the Dantzig-Wolfe relaxation
    columns : packs in the restricted LP
    rounds : pricing rounds run
    """

    value_Ah: float
    columns: int
    rounds: int


def dw_lower_limit(c, r, n_series, n_parallel, start_packs, time_limit_s) -> DwLimit:
    """Grow the restricted master by exact pricing until no pack prices out or the time is up; its last value."""
    n = c.size
    groups = np.array(feasible_groups(c, r, n_parallel), dtype=np.int64).reshape(-1, n_parallel)
    n_packs = min(n // (n_series * n_parallel),
                  _most_disjoint([tuple(g) for g in groups.tolist()], 10.0) // n_series)
    sums = c[groups].sum(axis=1)
    order = np.argsort(-sums, kind="stable")
    groups, sums = groups[order], sums[order]
    levels = np.unique(sums)
    columns = [np.sort(p.reshape(-1)) for p in start_packs]
    values = [float(c[p].sum(axis=1).min()) for p in start_packs]
    seen = {tuple(col.tolist()) for col in columns}
    grid = sorted(set(np.linspace(0, levels.size - 1, 24).astype(int).tolist()))
    deadline = time.perf_counter() + time_limit_s
    rounds = 0
    while True:
        rounds += 1
        value, pi, sigma = restricted_master(columns, values, n, n_packs)
        found = price_packs(c, groups, sums, levels, grid, pi, n_series, deadline)
        added = 0
        for col, cap, red in sorted(found, key=lambda f: -f[2]):
            key = tuple(col.tolist())
            if red > sigma + 1e-9 and key not in seen:
                seen.add(key)
                columns.append(col)
                values.append(cap)
                added += 1
        if added == 0:
            return DwLimit(value, len(columns), rounds)
        if time.perf_counter() > deadline:
            return DwLimit(restricted_master(columns, values, n, n_packs)[0], len(columns), rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lots", nargs="*", default=["4s3p:50:1", "4s3p:50:2"], help="design:modules:seed")
    ap.add_argument("--time", type=float, default=200.0, help="column generation time per lot [s]")
    args = ap.parse_args()
    print(f"{'lot':14} {'heur. Ah':>10} {'DW >= Ah':>10} {'columns':>7} {'rounds':>6} {'s':>6}")
    for lot in args.lots:
        design, modules, seed = lot.split(":")
        d = parse_design(design)
        n_series, n_parallel = d.modules_in_series, d.modules_in_parallel
        caps, r0 = random_lot(int(modules), int(seed))
        c, r = caps.min(axis=1), r0.sum(axis=1)
        packs = build_packs(c, r, n_series, n_parallel)
        t0 = time.perf_counter()
        lim = dw_lower_limit(c, r, n_series, n_parallel, packs, args.time)
        print(f"{lot:14} {pack_capacity_Ah(c, packs).sum():10.3f} {lim.value_Ah:10.3f} {lim.columns:7d} "
              f"{lim.rounds:6d} {time.perf_counter() - t0:6.1f}", flush=True)


if __name__ == "__main__":
    main()
