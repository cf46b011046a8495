"""Simulated annealing over NsMp parallel groups: the packs' modules regrouped, whole lot at once.

Given the parallel groups, the best packs are consecutive blocks of N groups in order of capacity (the counting
argument of ``docs/assembly-optimality.md``, Claim 3a), so the search state is only the grouping: which modules
share a group and which stay unused. The objective is that of the packs, ``s_N + s_2N + ... + s_PN`` over the
group capacities sorted in decreasing order, for a fixed number of packs ``P``. A move exchanges a module of a
group with a module of similar capacity (within the capacity tolerance of it) from another group or from the
unused modules; a move that breaks a tolerance is never made, so every state is a valid assembly. Moves that lower
the objective are taken with the Metropolis probability ``exp(delta / T)``, the temperature falling geometrically
from the median capacity change of a move to a thousandth of it. The best state seen is returned.

Why: the exact window re-solves of :func:`releaf.packs_exact.polish_packs` can miss an improvement their own window
holds. On a 200-module 4s3p lot the heuristic left out a 46.06 Ah module of unusually low resistance, whose few
partners sat in stronger packs, and used a 43.12 Ah one that capped the weakest pack 1.4 Ah below that pack's mean.
Over the four weakest packs and the unused modules HiGHS found nothing better than the start in 500 s (likely
because the level MILP's LP relaxation is only the mean-of-groups bound, which does not tell balanced packs from
unbalanced ones); annealing those four packs' modules, with the first module in place of the second, finds 2.3 Ah
more, and annealing the whole lot 2.5 Ah more, in seconds. No maintained library anneals over this move set (SciPy's
``dual_annealing`` is for continuous variables), hence the loop below.

References
----------
Kirkpatrick, S., Gelatt, C. D., Vecchi, M. P. (1983) Optimization by simulated annealing, Science 220, 671-680,
doi:10.1126/science.220.4598.671.
"""

from __future__ import annotations

import math
import time

import numpy as np

from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE, order_packs, pack_capacity_Ah

DEFAULT_ITERATIONS_PER_MODULE = 5000
"""Moves tried per module of the lot when no count is given (1 M moves for 200 modules: about 8 s on a 2-core
AMD EPYC, 4s3p)."""


def _packs_total(sums: np.ndarray, n_series: int, n_packs: int) -> float:
    """Best total of ``n_packs`` packs from groups of these capacities: every N-th largest (Claim 3a)."""
    return float(np.sort(sums)[::-1][n_series - 1:n_series * n_packs:n_series].sum())


def anneal_packs(capacity_Ah, r0_mOhm, packs: np.ndarray, *, capacity_tolerance: float = CAPACITY_TOLERANCE,
                 r0_tolerance: float = R0_TOLERANCE, iterations: int | None = None, seed: int = 0,
                 time_limit_s: float = math.inf) -> np.ndarray:
    """Regroup the modules of NsMp packs by simulated annealing; the total pack capacity never falls.

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    packs : module indices, shape (packs, N, M), every group within both tolerances (as
        :func:`releaf.packs.build_packs` returns them)
    capacity_tolerance, r0_tolerance : largest relative spreads ``(max - min) / max`` inside a parallel group
    iterations : moves tried; default ``DEFAULT_ITERATIONS_PER_MODULE`` per module of the lot
    seed : seed of the random moves: the same inputs, iterations and seed give the same packs
    time_limit_s : stop earlier after this long [s]; the temperature then falls by elapsed time, so a cut run
        still ends cold (and the result depends on the machine)

    Returns
    -------
    Module indices, shape (packs, N, M): as many packs, total capacity at least that of ``packs``; packs strongest
    first, positions strongest first.
    """
    c = np.asarray(capacity_Ah, dtype=float)
    r = np.asarray(r0_mOhm, dtype=float)
    packs = np.asarray(packs, dtype=int)
    n_packs, n_series, n_parallel = packs.shape
    if n_packs == 0 or n_parallel == 1:
        return order_packs(c, packs)
    n = c.size
    iterations = DEFAULT_ITERATIONS_PER_MODULE * n if iterations is None else int(iterations)
    groups = packs.reshape(-1, n_parallel).copy()
    k = groups.shape[0]
    # where each module is: its group (-1 = unused) and its slot in that group
    group_of = np.full(n, -1)
    slot_of = np.full(n, -1)
    group_of[groups] = np.arange(k)[:, None]
    slot_of[groups] = np.arange(n_parallel)[None, :]
    # a partner for a move: a module within the capacity tolerance of the one it replaces
    by_capacity = np.argsort(c, kind="stable")
    rank = np.empty(n, dtype=int)
    rank[by_capacity] = np.arange(n)
    sorted_c = c[by_capacity]
    lo = np.searchsorted(sorted_c, sorted_c * (1.0 - capacity_tolerance), side="left")
    hi = np.searchsorted(sorted_c, sorted_c / max(1.0 - capacity_tolerance, 1e-12), side="right")
    rng = np.random.default_rng(seed)

    # the temperature scale from the lot itself: the median capacity change of a move
    x = groups.reshape(-1)[rng.integers(k * n_parallel, size=1000)]
    y = by_capacity[lo[rank[x]] + (rng.random(x.size) * (hi[rank[x]] - lo[rank[x]])).astype(int)]
    change = np.abs(c[x] - c[y])
    change = change[change > 0]
    if change.size == 0:
        return order_packs(c, packs)  # no move changes any group capacity
    t_hot = float(np.median(change))
    t_cold = t_hot / 1000.0

    cl, rl = c.tolist(), r.tolist()
    ct, rt = capacity_tolerance, r0_tolerance

    # releaf.packs._group_ok's test on Python floats: 1.2 µs a call against its 4.5 µs on NumPy arrays, twice a move
    def fits(members: list[int]) -> bool:
        cc = [cl[m] for m in members]
        rr = [rl[m] for m in members]
        return max(cc) - min(cc) <= ct * max(cc) and max(rr) - min(rr) <= rt * max(rr)

    sums = c[groups].sum(axis=1)
    current = best = _packs_total(sums, n_series, n_packs)
    best_groups = groups.copy()
    eps = 1e-9 * max(1.0, float(c.max()))
    start = time.perf_counter()
    flat = groups.reshape(-1)
    for it in range(iterations):
        if it % 1024 == 0:
            elapsed = time.perf_counter() - start
            if elapsed > time_limit_s:
                break
            progress = max(it / iterations, elapsed / time_limit_s if math.isfinite(time_limit_s) else 0.0)
            temperature = t_hot * (t_cold / t_hot) ** min(progress, 1.0)
        a = int(flat[rng.integers(k * n_parallel)])
        ra = rank[a]
        b = int(by_capacity[lo[ra] + int(rng.random() * (hi[ra] - lo[ra]))])
        ga, gb = int(group_of[a]), int(group_of[b])
        if a == b or ga == gb:
            continue
        new_a = groups[ga].tolist()
        new_a[slot_of[a]] = b
        if not fits(new_a):
            continue
        if gb >= 0:
            new_b = groups[gb].tolist()
            new_b[slot_of[b]] = a
            if not fits(new_b):
                continue
        delta_c = cl[b] - cl[a]
        trial = sums.copy()
        trial[ga] += delta_c
        if gb >= 0:
            trial[gb] -= delta_c
        value = _packs_total(trial, n_series, n_packs)
        if value < current and rng.random() >= math.exp((value - current) / temperature):
            continue
        sa, sb = slot_of[a], slot_of[b]
        groups[ga, sa] = b
        if gb >= 0:
            groups[gb, sb] = a
        group_of[a], group_of[b] = gb, ga
        slot_of[a], slot_of[b] = sb, sa
        sums, current = trial, value
        if current > best + eps:
            best, best_groups = current, groups.copy()
    best_groups = best_groups[np.argsort(-c[best_groups].sum(axis=1), kind="stable")]
    found = best_groups[:n_packs * n_series].reshape(n_packs, n_series, n_parallel)
    if pack_capacity_Ah(c, found).sum() < pack_capacity_Ah(c, packs).sum():
        return order_packs(c, packs)  # no move kept: the same groups, summed in another order, may round lower
    return order_packs(c, found)
