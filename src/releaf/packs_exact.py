"""Exact NsMp pack assembly for small lots: the level MILP (HiGHS), a check on ``releaf.packs.build_packs``.

Given the parallel groups chosen, the best packs are consecutive blocks of N groups in order of capacity (the
counting argument of ``docs/assembly-optimality.md``), so the j-th best pack holds the (jN)-th largest chosen
group and the number of packs of capacity >= v is ``floor(K(v) / N)``, ``K(v)`` the chosen groups of capacity >= v.
The total is the integral of that count over v. With the distinct feasible group capacities
``v_1 > v_2 > ... > v_L`` (``v_{L+1} = 0``):

* ``y[g]`` in {0, 1}: feasible group g chosen; each module in at most one chosen group;
* ``z[t]`` = number of chosen groups of capacity >= ``v_t`` (a running sum: sparse rows);
* ``w[t]`` integer, ``N w[t] <= z[t]``, ``w[t] <= P``: packs of capacity >= ``v_t``;
* maximise ``sum_t (v_t - v_{t+1}) w[t]``.

For fixed ``y`` the best ``w`` is ``min(P, floor(z / N))``, whose weighted sum is the best packing of those
groups; every assembly is some ``y``: the MILP's optimum is the lot's optimum. No pack indices (no symmetry) and
no big-M; its LP relaxation is the mean-of-groups bound, so the integer ``w`` carries the tightening. It
enumerates every feasible group: meant for lots of tens (M = 3) to a few hundred (M = 2) modules.

References
----------
Huangfu, Q., Hall, J. A. J. (2018) Parallelizing the dual revised simplex method, Math. Prog. Comp. 10, 119-142,
doi:10.1007/s12532-017-0130-5 (HiGHS).
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE
from releaf.solver import quiet_highs


@dataclass(frozen=True)
class LevelMilpResult:
    """What the level MILP proved.

    Attributes
    ----------
    dual_bound_Ah : proven upper bound on the lot's total pack capacity [Ah] (the optimum when ``closed``)
    best_found_Ah : total of the best assembly HiGHS found [Ah] (not returned as packs)
    closed : the optimum was proven within the time limit (relative gap 1e-6)
    groups : feasible parallel groups enumerated
    """

    dual_bound_Ah: float
    best_found_Ah: float
    closed: bool
    groups: int


def feasible_groups(capacity_Ah, r0_mOhm, n_parallel: int, *, capacity_tolerance: float = CAPACITY_TOLERANCE,
                    r0_tolerance: float = R0_TOLERANCE) -> list[tuple[int, ...]]:
    """Every feasible parallel group of ``n_parallel`` modules (indices, strongest first): both spreads in tolerance."""
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    order = np.argsort(-c, kind="stable")
    out: list[tuple[int, ...]] = []

    def extend(start: int, group: list[int]) -> None:
        if len(group) == n_parallel:
            out.append(tuple(group))
            return
        for q in range(start, c.size):
            i = int(order[q])
            if group and c[group[0]] - c[i] > capacity_tolerance * c[group[0]]:
                break  # sorted: every later module is weaker still
            rr = r[[*group, i]]
            if rr.max() - rr.min() <= r0_tolerance * rr.max():
                extend(q + 1, [*group, i])

    extend(0, [])
    return out


def level_milp(capacity_Ah, r0_mOhm, n_series: int, n_parallel: int, *,
               capacity_tolerance: float = CAPACITY_TOLERANCE, r0_tolerance: float = R0_TOLERANCE,
               time_limit_s: float = 60.0) -> LevelMilpResult:
    """The lot's optimal total NsMp pack capacity, or a proven upper bound on it if the time runs out [Ah].

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    n_series, n_parallel : N and M
    capacity_tolerance, r0_tolerance : largest relative spreads inside a parallel group (fractions)
    time_limit_s : HiGHS time limit [s]
    """
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    groups = feasible_groups(c, r, n_parallel, capacity_tolerance=capacity_tolerance, r0_tolerance=r0_tolerance)
    n_packs = c.size // (n_series * n_parallel)
    if not groups or n_packs == 0:
        return LevelMilpResult(0.0, 0.0, True, len(groups))
    s = np.array([c[list(g)].sum() for g in groups])
    lev = np.unique(s)[::-1]
    ng, nl = len(groups), lev.size
    h = quiet_highs()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    inf = highspy.kHighsInf
    ncol = ng + 2 * nl  # y (ng), w (nl), z (nl)
    w_col, z_col = ng, ng + nl
    cost = np.concatenate([np.zeros(ng), lev - np.append(lev[1:], 0.0), np.zeros(nl)])
    upper = np.concatenate([np.ones(ng), np.full(nl, float(n_packs)), np.full(nl, float(ng))])
    h.addCols(ncol, cost, np.zeros(ncol), upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.changeColsIntegrality(ng + nl, np.arange(ng + nl, dtype=np.int32),
                            np.full(ng + nl, highspy.HighsVarType.kInteger))

    def row(lo, hi, idx, val):
        h.addRow(lo, hi, len(idx), np.asarray(idx, np.int32), np.asarray(val, float))

    at: list[list[int]] = [[] for _ in range(nl)]
    for g, t in enumerate(np.searchsorted(-lev, -s)):
        at[t].append(g)
    for t in range(nl):
        row(0, 0, [z_col + t, *at[t], *([z_col + t - 1] if t else [])],
            [1.0, *[-1.0] * len(at[t]), *([-1.0] if t else [])])
        row(-inf, 0, [w_col + t, z_col + t], [n_series, -1.0])
    member: list[list[int]] = [[] for _ in range(c.size)]
    for g, grp in enumerate(groups):
        for i in grp:
            member[i].append(g)
    for gs in member:
        if len(gs) > 1:
            row(-inf, 1, gs, np.ones(len(gs)))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    info = h.getInfo()
    closed = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return LevelMilpResult(float(info.mip_dual_bound), float(info.objective_function_value), closed, ng)
