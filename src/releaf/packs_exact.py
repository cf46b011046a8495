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

import time
from dataclasses import dataclass

import highspy
import numpy as np

from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE, order_packs, pack_capacity_upper_bound
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


def shared_modules(groups) -> list[list[int]]:
    """For each module in more than one of ``groups``, the indices of the groups holding it: the rows "each module
    at most once" of a set-packing model (a module in one group needs none)."""
    holding: dict[int, list[int]] = {}
    for t, g in enumerate(groups):
        for i in g:
            holding.setdefault(int(i), []).append(t)
    return [ts for ts in holding.values() if len(ts) > 1]


def _level_model(c: np.ndarray, groups: list[tuple[int, ...]], n_series: int, n_packs: int,
                 time_limit_s: float, start: list[int] | None = None) -> highspy.Highs:
    """The level MILP over ``groups`` (columns: y per group, then w and z per level), ready to run; with ``start``
    (indices of disjoint chosen groups), HiGHS starts from that assembly."""
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
    for gs in shared_modules(groups):
        row(-inf, 1, gs, np.ones(len(gs)))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    if start is not None:
        y = np.zeros(ng)
        y[start] = 1.0
        z = np.array([(s[start] >= v).sum() for v in lev], float)
        sol = highspy.HighsSolution()
        sol.col_value = np.concatenate([y, np.minimum(n_packs, np.floor(z / n_series)), z]).tolist()
        sol.value_valid = True
        h.setSolution(sol)
    return h


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
    h = _level_model(c, groups, n_series, n_packs, time_limit_s)
    h.run()
    info = h.getInfo()
    closed = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return LevelMilpResult(float(info.mip_dual_bound), float(info.objective_function_value), closed, len(groups))


def _most_disjoint(groups: list[tuple[int, ...]], time_limit_s: float) -> int:
    """A proven upper bound on the number of disjoint groups among ``groups`` (set packing; HiGHS dual bound)."""
    if not groups:
        return 0
    k = len(groups)
    h = quiet_highs()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.addCols(k, np.ones(k), np.zeros(k), np.ones(k), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.changeColsIntegrality(k, np.arange(k, dtype=np.int32), np.full(k, highspy.HighsVarType.kInteger))
    for ts in shared_modules(groups):
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


def polish_packs(capacity_Ah, r0_mOhm, packs: np.ndarray, *, capacity_tolerance: float = CAPACITY_TOLERANCE,
                 r0_tolerance: float = R0_TOLERANCE, time_limit_s: float = 10.0, window: int = 3,
                 sub_time_limit_s: float = 3.0, whole_lot_groups: int = 5000,
                 anneal_iterations: int | None = None) -> np.ndarray:
    """Improve NsMp packs: whole-lot regrouping by annealing, then exact re-solves of ``window`` adjacent packs.

    First, where the packs are fewer than the lot could fill (``n // (N M)``, and N into HiGHS's bound on the most
    disjoint feasible groups: the greedy groups can strand modules that a perfect grouping would use, and a lost
    pack costs far more than any balancing) and the lot has at most
    ``whole_lot_groups`` feasible groups, the whole lot is solved by the level MILP, started from the packs. Then
    :func:`releaf.packs_anneal.anneal_packs` regroups the whole lot (``anneal_iterations`` moves, at most half of
    the time left): it finds improvements that HiGHS misses inside the windows. Then
    the packs are taken in order of capacity; each window of ``window`` adjacent packs, with the unused modules
    nearest to them in capacity, is re-solved by the level MILP (:func:`level_milp`'s model, HiGHS, started
    from the packs as they are, so it never returns worse). An improvement replaces the window's packs and the
    search starts again; it ends when no window improves or ``time_limit_s`` has passed. The total never falls:
    every window keeps its number of packs and only a larger sum is taken. Windows with the largest imbalance
    (mean minus weakest group) go first, as that is where a pack loses to the mean-of-groups bound.

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    packs : module indices, shape (packs, N, M), as :func:`releaf.packs.build_packs` returns them
    capacity_tolerance, r0_tolerance : largest relative spreads inside a parallel group (fractions)
    time_limit_s : the whole search [s]
    window : packs re-solved together
    sub_time_limit_s : HiGHS time limit of one window [s] (an unproven window still returns its best packs); a
        window that holds every pack gets all the time left
    whole_lot_groups : largest number of feasible groups for which the whole lot is solved when packs are missing
    anneal_iterations : moves of the annealing (default: ``anneal_packs``'s, per module of the lot); 0 = none

    Returns
    -------
    Module indices, shape (packs, N, M), total capacity at least that of ``packs``; packs strongest first,
    positions strongest first (as :func:`releaf.packs.build_packs`).
    """
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    packs = np.array(packs, dtype=int, copy=True)
    n_packs, n_series, n_parallel = packs.shape
    if n_parallel == 1 or c.size < n_series * n_parallel:
        return order_packs(c, packs)
    eps = 1e-9 * max(1.0, float(c.max()))
    deadline = time.perf_counter() + time_limit_s
    most = c.size // (n_series * n_parallel)
    lot_groups = feasible_groups(c, r, n_parallel, capacity_tolerance=capacity_tolerance,
                                 r0_tolerance=r0_tolerance) if n_packs < most else []
    whole_lot = n_packs < most and len(lot_groups) <= whole_lot_groups
    if whole_lot:
        # no more packs than N into the most disjoint groups (a proven bound): then there is no pack to win back
        most = min(most, _most_disjoint(lot_groups, min(10.0, time_limit_s / 10)) // n_series)
    if whole_lot and n_packs < most:
        new = _solve_window(c, r, packs, np.arange(c.size), n_series, n_parallel, capacity_tolerance, r0_tolerance,
                            time_limit_s, n_packs=most, groups=lot_groups)
        if new is not None and c[new].sum(axis=2).min(axis=1).sum() > c[packs].sum(axis=2).min(axis=1).sum() + eps:
            packs = new
            n_packs = packs.shape[0]
    if n_packs == 0:
        return order_packs(c, packs)
    if anneal_iterations != 0:
        from releaf.packs_anneal import anneal_packs

        packs = anneal_packs(c, r, packs, capacity_tolerance=capacity_tolerance, r0_tolerance=r0_tolerance,
                             iterations=anneal_iterations, time_limit_s=(deadline - time.perf_counter()) / 2)
    k = max(1, min(window, n_packs))
    done: set[frozenset[int]] = set()
    while time.perf_counter() < deadline:
        sums = c[packs].sum(axis=2)
        caps = sums.min(axis=1)
        order = np.argsort(caps, kind="stable")
        windows = [order[i:i + k] for i in range(n_packs - k + 1)]
        windows.sort(key=lambda w: -float((sums[w].mean(axis=1) - caps[w]).sum()))
        used = np.zeros(c.size, bool)
        used[packs.reshape(-1)] = True
        pool = np.flatnonzero(~used)
        improved = False
        for w in windows:
            key = frozenset(packs[w].reshape(-1).tolist())
            if key in done:
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                return order_packs(c, packs)
            mine = packs[w].reshape(-1)
            lo, hi = c[mine].min(), c[mine].max()
            near = pool[np.argsort(np.maximum(lo - c[pool], c[pool] - hi), kind="stable")[:n_series * n_parallel]]
            sub = np.concatenate([mine, near])
            # a window that holds every pack is the whole lot: it gets all the time left, there is nothing else
            new = _solve_window(c[sub], r[sub], packs[w], sub, n_series, n_parallel, capacity_tolerance,
                                r0_tolerance, left if k == n_packs else min(sub_time_limit_s, left))
            if new is not None and c[new].sum(axis=2).min(axis=1).sum() > caps[w].sum() + eps:
                packs[w] = new
                improved = True
                break
            done.add(key)
        if not improved:
            break
    return order_packs(c, packs)


def _solve_window(c, r, current, sub, n_series, n_parallel, ct, rt, time_limit_s, n_packs: int | None = None,
                  groups: list[tuple[int, ...]] | None = None) -> np.ndarray | None:
    """The best ``n_packs`` (default ``len(current)``) packs from the modules ``sub`` (level MILP started at
    ``current``), as indices into the lot; fewer if the best assembly HiGHS found has fewer. ``groups``: the
    feasible groups of ``c``, ``r`` if already enumerated."""
    if groups is None:
        groups = feasible_groups(c, r, n_parallel, capacity_tolerance=ct, r0_tolerance=rt)
    if not groups:
        return None
    k = current.shape[0] if n_packs is None else n_packs
    pos = {int(m): t for t, m in enumerate(sub)}
    index = {tuple(g): t for t, g in enumerate(groups)}
    # the packs as they are, as groups in feasible_groups' order (strongest first, then by index)
    chosen = [index.get(tuple(sorted((pos[int(m)] for m in grp), key=lambda t: (-c[t], t))))
              for grp in current.reshape(-1, n_parallel)]
    h = _level_model(c, groups, n_series, k, time_limit_s, start=None if None in chosen else chosen)
    h.run()
    if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
        return None
    y = np.asarray(h.getSolution().col_value[:len(groups)]) > 0.5
    picked = sorted((groups[t] for t in np.flatnonzero(y)), key=lambda g: -c[list(g)].sum())
    built = min(k, len(picked) // n_series)
    if built < current.shape[0]:
        return None
    picked = picked[:built * n_series]
    return sub[np.array(picked, dtype=int)].reshape(built, n_series, n_parallel)


@dataclass(frozen=True)
class PackLpBound:
    """What :func:`pack_lp_bound` proved.

    Attributes
    ----------
    bound_Ah : proven upper bound on the lot's total NsMp pack capacity [Ah]
    thresholds : pack-capacity thresholds in the final grid
    rounds : grid refinements run
    """

    bound_Ah: float
    thresholds: int
    rounds: int


def pack_lp_bound(capacity_Ah, r0_mOhm, n_series: int, n_parallel: int, found_pack_Ah=(), *,
                  capacity_tolerance: float = CAPACITY_TOLERANCE, r0_tolerance: float = R0_TOLERANCE,
                  time_limit_s: float = 60.0, levels: int = 24, max_rounds: int = 200) -> PackLpBound:
    """A proven upper bound on the total NsMp pack capacity: the pack LP, by Lagrangian duality [Ah].

    Give every module a price ``pi_i >= 0`` and let ``mu = max(0, max_p (C_p - sum_{i in p} pi_i))`` over every
    possible pack p (N disjoint feasible groups; ``C_p`` its weakest group's capacity). Any assembly of at most
    ``P`` disjoint packs (``n // (N M)``, or fewer where a set-packing bound says no ``N P`` disjoint feasible
    groups exist) then has total ``sum_p C_p <= sum_p (pi(p) + mu) <= sum_i pi_i + P mu``: a
    bound for every price vector (the dual of the linear relaxation of choosing packs as columns, Dantzig-Wolfe).

    ``mu`` is over-estimated, so the bound stays valid, on a grid of thresholds ``t_0 < t_1 < ... < t_K``: a pack
    of capacity in ``[t_k, t_k+1]`` has all its N groups among ``G(t_k)``, the feasible groups of capacity
    ``>= t_k``, so ``C_p - pi(p) <= t_k+1 - L_k`` where ``L_k`` is the cheapest price of N groups of ``G(t_k)``
    with each module used at most once, here relaxed to fractional use (a linear programme: ``L_k`` is at least
    the value of any feasible point of its dual, ``N a_k - sum_i b_ki`` with ``a_k <= sum_{i in g} (b_ki + pi_i)``
    for every g in ``G(t_k)``). One linear programme (HiGHS) chooses ``pi``, ``mu``, ``a`` and ``b`` together to
    minimise the bound; its rows for the groups are added as they are violated (cutting planes). The grid is then
    refined where the programme binds, and solved again, until ``time_limit_s`` or ``max_rounds``. The bound
    returned is computed again from the prices alone, with each ``a_k`` set to its largest value allowed by every
    group, so solver tolerances cannot make it invalid.

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    n_series, n_parallel : N and M
    found_pack_Ah : capacities of any assembly's packs [Ah]: thresholds start there too (where the bound binds)
    capacity_tolerance, r0_tolerance : largest relative spreads inside a parallel group (fractions)
    time_limit_s : time for the whole refinement [s]; the bound is valid at any point
    levels : thresholds of the first grid, evenly spaced over the group capacities
    max_rounds : most grid refinements

    References
    ----------
    Desrosiers, J., Lübbecke, M. E. (2005) A primer in column generation, in Column Generation, Springer, 1-32,
    doi:10.1007/0-387-25486-2_1.
    """
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    n, n_s, m = c.size, n_series, n_parallel
    n_packs = n // (n_s * m)
    groups = np.array(feasible_groups(c, r, m, capacity_tolerance=capacity_tolerance, r0_tolerance=r0_tolerance),
                      dtype=np.int64).reshape(-1, m)
    if n_packs == 0 or groups.shape[0] == 0:
        return PackLpBound(0.0, 0, 0)
    # fewer packs than n // (N M) when no N P disjoint feasible groups exist (HiGHS set packing, its dual bound)
    n_packs = min(n_packs, _most_disjoint([tuple(g) for g in groups.tolist()], min(10.0, time_limit_s / 4)) // n_s)
    if n_packs == 0:
        return PackLpBound(0.0, 0, 0)
    sums = c[groups].sum(axis=1)
    order = np.argsort(-sums, kind="stable")
    groups, sums = groups[order], sums[order]
    s_lo, s_hi = float(sums[-1]), float(sums[0])
    start = set(np.linspace(s_lo, s_hi, max(2, levels)).tolist())
    start |= {float(v) for v in np.asarray(found_pack_Ah, dtype=float) if s_lo < v < s_hi}
    deadline = time.perf_counter() + time_limit_s
    lp = _PackLp(c, groups, sums, n_s, n_packs)
    for t in sorted(start):
        lp.add_threshold(t)
    best, rounds = np.inf, 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 (rounds is reported)
        lp.solve(deadline)
        best = min(best, lp.bound())
        if time.perf_counter() > deadline:
            break
        if not lp.refine():
            break
    return PackLpBound(float(best), len(lp.thresholds), rounds)


class _PackLp:
    """The linear programme of :func:`pack_lp_bound`, kept in one HiGHS instance and grown in place.

    Columns: ``pi`` (n), ``mu``, then per threshold ``a_k`` and ``b_k`` (one per module of ``G(t_k)``). Rows: per
    threshold, ``mu + N a_k - sum_i b_ki >= t_next`` (its interval row), and the group rows
    ``a_k - sum_{i in g} (b_ki + pi_i) <= 0``, added as cutting planes.
    """

    def __init__(self, c, groups, sums, n_series, n_packs):
        self.c, self.groups, self.sums = c, groups, sums
        self.n, self.m, self.n_series, self.n_packs = c.size, groups.shape[1], n_series, n_packs
        self.top = float(sums[0])
        self.thresholds: list[float] = []  # sorted
        self.col: dict[float, int] = {}  # threshold -> its a_k column (b_k follow)
        self.row: dict[float, int] = {}  # threshold -> its interval row
        self.b_col: dict[float, np.ndarray] = {}  # threshold -> per module, its b_k column (-1: none)
        self.h = quiet_highs()
        inf = highspy.kHighsInf
        n = self.n
        self.h.addCols(n + 1, np.concatenate([np.ones(n), [float(n_packs)]]), np.zeros(n + 1), np.full(n + 1, inf),
                       0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.x = np.zeros(n + 1)

    def _next(self, t: float) -> float:
        k = self.thresholds.index(t)
        return self.thresholds[k + 1] if k + 1 < len(self.thresholds) else self.top

    def add_threshold(self, t: float) -> None:
        import bisect

        inf, n = highspy.kHighsInf, self.n
        bisect.insort(self.thresholds, t)
        # b_k only for the modules of G(t_k): the others are in none of its groups, and their b_k would be 0
        present = np.unique(self.groups[:int(np.searchsorted(-self.sums, -t, side="right"))])
        a = self.h.getNumCol()
        k_b = present.size
        self.h.addCols(k_b + 1, np.zeros(k_b + 1), np.concatenate([[-inf], np.zeros(k_b)]), np.full(k_b + 1, inf), 0,
                       np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.col[t] = a
        where = np.full(n, -1, dtype=np.int64)
        where[present] = a + 1 + np.arange(k_b)
        self.b_col[t] = where
        idx = np.concatenate([[n, a], where[present]]).astype(np.int32)
        val = np.concatenate([[1.0, float(self.n_series)], -np.ones(k_b)])
        self.row[t] = self.h.getNumRow()
        self.h.addRow(self._next(t), inf, idx.size, idx, val)
        k = self.thresholds.index(t)
        if k > 0:  # the interval below now ends at t
            below = self.thresholds[k - 1]
            self.h.changeRowBounds(self.row[below], t, inf)

    def _prices(self, x, t):
        a, where = self.col[t], self.b_col[t]
        g = self.groups[:int(np.searchsorted(-self.sums, -t, side="right"))]
        b = np.where(where >= 0, np.maximum(x[np.maximum(where, 0)], 0.0), 0.0)
        return a, g, b, (b[g] + np.maximum(x[:self.n], 0.0)[g]).sum(axis=1)

    def solve(self, deadline: float, per_round: int | None = None) -> None:
        inf, m = highspy.kHighsInf, self.m
        per_round = per_round or 16
        while True:
            self.h.run()
            x = np.asarray(self.h.getSolution().col_value)
            self.x = x
            rows, cols, bcols = [], [], []
            for t in self.thresholds:
                a, g, _, price = self._prices(x, t)
                viol = x[a] - price
                bad = np.flatnonzero(viol > 1e-9)
                if bad.size:
                    bad = bad[np.argsort(-viol[bad], kind="stable")[:per_round]]
                    rows.append(g[bad])
                    cols.append(np.full(bad.size, a))
                    bcols.append(self.b_col[t][g[bad]])
            if not rows or time.perf_counter() > deadline:
                return
            gi, bi, a = np.concatenate(rows), np.concatenate(bcols), np.concatenate(cols)[:, None]
            k = gi.shape[0]
            idx = np.concatenate([a, bi, gi], axis=1).reshape(-1).astype(np.int32)
            val = np.tile(np.concatenate([[1.0], -np.ones(2 * m)]), k)
            self.h.addRows(k, np.full(k, -inf), np.zeros(k), idx.size, (np.arange(k) * (1 + 2 * m)).astype(np.int32),
                           idx, val)

    def bound(self) -> float:
        """The bound of the current prices, each ``a_k`` at its largest value every group allows (exactly valid)."""
        x, n = self.x, self.n
        mu = 0.0
        for t in self.thresholds:
            _, _, b, price = self._prices(x, t)
            mu = max(mu, self._next(t) - (self.n_series * float(price.min()) - float(b.sum())))
        return float(np.maximum(x[:n], 0.0).sum() + self.n_packs * mu)

    def refine(self) -> bool:
        """Halve every interval whose row binds (it values its packs at the interval's top); False when none can be."""
        duals = np.asarray(self.h.getSolution().row_dual)
        eps = 1e-9 * max(1.0, self.top)
        added = False
        for t in list(self.thresholds):
            nxt = self._next(t)
            mid = 0.5 * (t + nxt)
            if abs(duals[self.row[t]]) > 1e-9 and t + eps < mid < nxt - eps:
                self.add_threshold(mid)
                added = True
        return added
