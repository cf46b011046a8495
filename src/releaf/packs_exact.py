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

from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE, pack_capacity_upper_bound
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


def _most_disjoint(groups: list[tuple[int, ...]], time_limit_s: float) -> int:
    """A proven upper bound on the number of disjoint groups among ``groups`` (set packing; HiGHS dual bound)."""
    if not groups:
        return 0
    k = len(groups)
    h = quiet_highs()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.addCols(k, np.ones(k), np.zeros(k), np.ones(k), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.changeColsIntegrality(k, np.arange(k, dtype=np.int32), np.full(k, highspy.HighsVarType.kInteger))
    member: dict[int, list[int]] = {}
    for t, g in enumerate(groups):
        for i in g:
            member.setdefault(i, []).append(t)
    for ts in member.values():
        if len(ts) > 1:
            h.addRow(-highspy.kHighsInf, 1, len(ts), np.array(ts, np.int32), np.ones(len(ts)))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    dual = float(h.getInfo().mip_dual_bound)
    return k if not np.isfinite(dual) else int(np.floor(dual + 1e-6))


def tier_bound(capacity_Ah, r0_mOhm, n_series: int, n_parallel: int, found_pack_Ah, *, tiers: int = 4,
               capacity_tolerance: float = CAPACITY_TOLERANCE, r0_tolerance: float = R0_TOLERANCE,
               time_limit_s: float = 5.0) -> float:
    """A proven upper bound on the total NsMp pack capacity that charges the strongest modules' unusable excess [Ah].

    A module i in group g of pack p contributes ``e_i = c_i C_p / s_g`` and ``N C_p`` is the sum of ``e_i`` over the
    pack. The j-th best pack's capacity is at most ``V_j``, the largest group capacity v for which jN disjoint
    feasible groups of capacity >= v may exist (HiGHS set packing, bisection), and ``s_g`` is at least ``s_min(i)``
    (i plus its ``M - 1`` weakest compatible partners), so ``e_i <= c_i min(1, V_j / s_min(i))``. Modules go to
    tiers (the j-th best pack, NM modules each, tiers beyond ``tiers`` all at ``V_tiers``) by a transportation LP.
    Proof in ``docs/assembly-optimality.md`` (Claim 4).

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    n_series, n_parallel : N and M
    found_pack_Ah : capacities of any valid assembly's packs [Ah]: the j-th largest is a lower limit of ``V_j``
    tiers : packs bounded one by one; the rest share the last bound
    time_limit_s : HiGHS time limit per set-packing problem [s] (its dual bound is used, so any limit is valid)
    """
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    found = np.sort(np.asarray(found_pack_Ah, dtype=float))[::-1]
    m, ct, rt = n_parallel, capacity_tolerance, r0_tolerance
    lo_c, hi_c = np.minimum.outer(c, c), np.maximum.outer(c, c)
    lo_r, hi_r = np.minimum.outer(r, r), np.maximum.outer(r, r)
    ok = ((hi_c - lo_c) <= ct * hi_c) & ((hi_r - lo_r) <= rt * hi_r)
    np.fill_diagonal(ok, False)
    partners = np.sort(np.where(ok, c[None, :], np.inf), axis=1)[:, :m - 1]
    s_min = c + partners.sum(axis=1)
    keep = np.isfinite(s_min)
    n_packs = int(keep.sum()) // (n_series * m)
    n_tiers = min(tiers, found.size)
    if n_packs == 0 or n_tiers == 0:
        return 0.0
    # every group of capacity >= v has all its modules >= (1 - ct) v / M: enumerating those is complete
    floor_v = float(found[n_tiers - 1])
    sub = np.flatnonzero(c >= (1 - ct) * floor_v / m)
    groups = [tuple(int(sub[i]) for i in g) for g in feasible_groups(c[sub], r[sub], m, capacity_tolerance=ct,
                                                                       r0_tolerance=rt)]
    sums = np.array([c[list(g)].sum() for g in groups])
    order = np.argsort(-sums, kind="stable")
    groups, sums = [groups[t] for t in order if sums[t] >= floor_v], sums[order][sums[order] >= floor_v]
    v_cap = []
    hi = len(sums) - 1
    for j in range(1, n_tiers + 1):
        lo = 0  # smallest prefix (largest v) whose groups may hold jN disjoint ones; found[j-1] guarantees one
        while lo < hi:
            mid = (lo + hi) // 2
            if _most_disjoint(groups[:mid + 1], time_limit_s) >= j * n_series:
                hi = mid
            else:
                lo = mid + 1
        v_cap.append(float(sums[lo]))
        hi = len(sums) - 1
    # the worst pack: P packs leave at most `spare` eligible modules unused, so one of the spare + 1 weakest is in
    # some pack, whose capacity is at most that module's strongest possible group
    strongest = c + np.sort(np.where(ok, c[None, :], -np.inf), axis=1)[:, ::-1][:, :m - 1].sum(axis=1)
    eligible = np.flatnonzero(keep)
    spare = eligible.size - n_packs * n_series * m
    weakest = eligible[np.argsort(c[eligible], kind="stable")[:spare + 1]]
    u_worst = float(strongest[weakest].max())
    cc, sm = c[keep], s_min[keep]
    per = n_series * m
    if n_packs > n_tiers:
        with_worst = _transport(cc, sm, [*v_cap, min(u_worst, v_cap[-1])],
                                [per] * (n_tiers - 1) + [(n_packs - n_tiers) * per, per])
    else:  # n_packs == n_tiers (found.size <= n_packs): the last tier is the worst pack
        with_worst = _transport(cc, sm, [*v_cap[:-1], min(u_worst, v_cap[-1])], [per] * n_tiers)
    fewer = _transport(cc, sm, v_cap, [per] * (n_tiers - 1) + [(n_packs - n_tiers) * per]) if n_packs > 1 else 0.0
    # all P packs built (the worst one capped), or fewer: the larger of the two bounds
    # the smaller of two proven bounds is one: never looser than the mean of the groups (or, for M = 1, the optimum)
    return min(float(max(with_worst, fewer)) / n_series,
               pack_capacity_upper_bound(c, r, n_series, n_parallel, capacity_tolerance=capacity_tolerance,
                                         r0_tolerance=r0_tolerance))


def _transport(c: np.ndarray, s_min: np.ndarray, v_cap: list[float], cap: list[int]) -> float:
    """Largest sum of c_i min(1, V_j / s_min(i)) over modules placed in tiers j of ``cap[j]`` modules, / N omitted."""
    k, n_tiers = c.size, len(v_cap)
    value = c[:, None] * np.minimum(1.0, np.array(v_cap)[None, :] / s_min[:, None])
    h = quiet_highs()
    nv = k * n_tiers
    h.addCols(nv, value.reshape(-1), np.zeros(nv), np.ones(nv), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
              np.zeros(0))
    idx = np.arange(nv).reshape(k, n_tiers)
    inf = highspy.kHighsInf
    for i in range(k):
        h.addRow(-inf, 1, n_tiers, idx[i].astype(np.int32), np.ones(n_tiers))
    for j in range(n_tiers):
        h.addRow(-inf, cap[j], k, idx[:, j].astype(np.int32), np.ones(k))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    return float(h.getInfo().objective_function_value)
