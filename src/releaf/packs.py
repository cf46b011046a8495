"""NsMp stationary packs: N series positions, each a parallel group of M modules.

A parallel group holds the sum of its modules' capacities; a series string holds its weakest position's, so a
pack's capacity is the smallest group capacity in it [Ah]. :func:`build_packs` maximises the lot's total pack
capacity (the sum over packs) subject to a parallel group's modules lying within a relative capacity spread and a
relative resistance spread (``(max - min) / max``; parallel modules of unlike capacity or resistance share the
current unevenly and age apart). The defaults, 5 % and 15 %, are releaf policy choices, not measurements.

* ``M = 1`` has no group constraint and is solved exactly: sorted consecutive blocks of N from the strongest,
  dropping the ``n mod N`` weakest (counting argument in ``docs/assembly-optimality.md``).
* ``M >= 2`` is built by a constructive heuristic, measured against the proven upper bound
  :func:`pack_capacity_upper_bound` (``benchmarks/assembly_gap.py``): (1) groups: strongest unused module first,
  joined by the next strongest modules within both tolerances; (2) packs: groups in order of capacity cut into
  consecutive blocks of N (optimal for the given groups, by the same counting argument); (3) each pack's modules
  re-dealt to its groups in snake order when that keeps the tolerances and lifts its weakest group; (4) improving
  swaps: a module of a pack's weakest group for a stronger one from another group, another pack or the unused
  modules, while the total grows.

References
----------
Hardy, G. H., Littlewood, J. E., Pólya, G. (1952) Inequalities, 2nd ed., Cambridge University Press, §10.2.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from releaf.errors import ConfigError

CAPACITY_TOLERANCE = 0.05
"""Default largest relative capacity spread ``(max - min) / max`` inside a parallel group (a releaf policy choice)."""
R0_TOLERANCE = 0.15
"""Default largest relative resistance spread inside a parallel group (a releaf policy choice)."""


def check_tolerance(key: str, value: float) -> float:
    """A parallel-group spread tolerance, checked: a fraction from 0 to 1 (``(max - min) / max`` of positive values
    is at most 1, so 1 is no limit).

    Raises
    ------
    ConfigError : naming ``key``, for a value outside [0, 1]
    """
    if not 0 <= value <= 1:
        raise ConfigError(key, f"{value:g} is not a fraction from 0 to 1 (0.05 = 5 %; 1 = no limit)")
    return value


_PRUNE_MAX_MODULES = 5000
"""Above this class size the bound skips the pairwise compatibility count (O(n²)); it stays valid, only looser."""

_DESIGN = re.compile(r"^\s*(\d+)\s*s\s*(?:(\d+)\s*p)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PackDesign:
    """A pack of ``modules_in_series`` positions, each a parallel group of ``modules_in_parallel`` modules.

    Attributes
    ----------
    name : design name as written (``"8s2p"``)
    modules_in_series : N, series positions
    modules_in_parallel : M, modules per parallel group
    """

    name: str
    modules_in_series: int
    modules_in_parallel: int

    @property
    def modules(self) -> int:
        """Modules per pack, N × M."""
        return self.modules_in_series * self.modules_in_parallel


def parse_design(name: str) -> PackDesign:
    """A design from its name: ``"12s1p"``, ``"8s2p"``, ``"2s"`` (= ``2s1p``); case and spaces do not matter.

    Raises
    ------
    ConfigError : a name that is not ``<N>s[<M>p]`` with N, M >= 1
    """
    match = _DESIGN.match(str(name))
    n, m = (int(match.group(1)), int(match.group(2) or 1)) if match else (0, 0)
    if n < 1 or m < 1:
        raise ConfigError("design", f"{name!r} is not a pack design: expected <N>s<M>p such as 12s1p or 8s2p "
                                    "(N, M >= 1)")
    return PackDesign(f"{n}s{m}p", n, m)


def _within(lo, hi, tolerance) -> np.ndarray:
    return (hi - lo) <= tolerance * hi


def compatible_partner_counts(capacity_Ah, r0_mOhm, capacity_tolerance: float, r0_tolerance: float) -> np.ndarray:
    """For each module, how many others it may share a parallel group with (both spreads within tolerance).

    O(n²) time and memory: meant for lots of a few thousand modules.
    """
    c, r = np.asarray(capacity_Ah, dtype=float), np.asarray(r0_mOhm, dtype=float)
    ct, rt = capacity_tolerance, r0_tolerance
    lo_c, hi_c = np.minimum.outer(c, c), np.maximum.outer(c, c)
    lo_r, hi_r = np.minimum.outer(r, r), np.maximum.outer(r, r)
    ok = _within(lo_c, hi_c, ct) & _within(lo_r, hi_r, rt)
    return ok.sum(axis=1) - 1


def pack_capacity_upper_bound(capacity_Ah, r0_mOhm, n_series: int, n_parallel: int, *,
                              capacity_tolerance: float = CAPACITY_TOLERANCE,
                              r0_tolerance: float = R0_TOLERANCE) -> float:
    """A proven upper bound on the total pack capacity one class of modules can give [Ah].

    ``M = 1``: the optimum itself, the sum of the N-th, 2N-th, ... largest capacities (counting argument). ``M >=
    2``: a pack's capacity is at most the mean of its N group capacities, so the total is at most ``1/N`` of the
    capacity of the modules used; those are at most the ``P N M`` largest among the modules that have at least
    ``M - 1`` compatible partners, where ``P`` is the number of full packs those modules can fill.

    Parameters
    ----------
    capacity_Ah, r0_mOhm : each module's capacity [Ah] and resistance [mOhm], shape (n,)
    n_series, n_parallel : N and M
    capacity_tolerance, r0_tolerance : largest relative spreads inside a parallel group (fractions)
    """
    c = np.asarray(capacity_Ah, dtype=float)
    r = np.asarray(r0_mOhm, dtype=float)
    if n_parallel == 1:
        return float(np.sort(c)[::-1][n_series - 1::n_series].sum())
    if c.size <= _PRUNE_MAX_MODULES:
        keep = compatible_partner_counts(c, r, capacity_tolerance, r0_tolerance) >= n_parallel - 1
        c = c[keep]
    per_pack = n_series * n_parallel
    packs = c.size // per_pack
    return float(np.sort(c)[::-1][:packs * per_pack].sum() / n_series)


def _greedy_groups(c, r, m, ct, rt) -> list[list[int]]:
    """Strongest unused module first, joined by the next strongest modules that keep both spreads in tolerance."""
    order = np.argsort(-c, kind="stable")
    cs, rs = c[order].tolist(), r[order].tolist()
    n = len(cs)
    used = [False] * n
    groups = []
    for pos in range(n):
        if used[pos]:
            continue
        chosen, rlo, rhi, floor = [pos], rs[pos], rs[pos], (1.0 - ct) * cs[pos]
        for q in range(pos + 1, n):
            if cs[q] < floor:
                break
            if used[q]:
                continue
            lo, hi = min(rlo, rs[q]), max(rhi, rs[q])
            if hi - lo <= rt * hi:
                chosen.append(q)
                rlo, rhi = lo, hi
                if len(chosen) == m:
                    break
        if len(chosen) == m:
            for q in chosen:
                used[q] = True
            groups.append([int(order[q]) for q in chosen])
    return groups


def _group_ok(idx, c, r, ct, rt) -> bool:
    cc, rr = c[idx], r[idx]
    return bool(_within(cc.min(), cc.max(), ct) and _within(rr.min(), rr.max(), rt))


def _snake(pack: np.ndarray, c, r, ct, rt) -> np.ndarray:
    """Re-deal a pack's modules (N, M) in snake order over its groups when that lifts the weakest group."""
    n, m = pack.shape
    flat = pack.reshape(-1)
    flat = flat[np.argsort(-c[flat], kind="stable")]
    dealt = np.empty((n, m), dtype=int)
    for t in range(m):
        row = flat[t * n:(t + 1) * n]
        dealt[:, t] = row if t % 2 == 0 else row[::-1]
    if c[dealt].sum(axis=1).min() > c[pack].sum(axis=1).min() and all(_group_ok(g, c, r, ct, rt) for g in dealt):
        return dealt
    return pack


def _improve(groups: np.ndarray, pool: np.ndarray, c, r, n_series, ct, rt, max_rounds, time_limit_s) -> np.ndarray:
    """Improving swaps: a module of a pack's weakest group against a stronger module elsewhere (vectorised)."""
    k, m = groups.shape
    n_packs = k // n_series
    eps = 1e-9 * max(1.0, float(c.max(initial=1.0)))
    # packs where no improving swap was found; a swap clears the two packs it touches, and a full pass over all
    # packs (every flag cleared) must find nothing before the search ends: the result is a local optimum
    stuck = np.zeros(n_packs, bool)
    verified = False
    deadline = time.perf_counter() + time_limit_s
    for _ in range(max_rounds):
        if time.perf_counter() > deadline:
            return groups
        member = np.concatenate([groups.reshape(-1), pool])
        where = np.concatenate([np.repeat(np.arange(k), m), np.full(pool.size, -1)])  # group of each, -1 = pool
        s = c[groups].sum(axis=1)
        by_pack = s.reshape(n_packs, n_series)
        srt = np.sort(by_pack, axis=1)
        m1 = srt[:, 0]
        m2 = srt[:, 1] if n_series > 1 else np.full(n_packs, np.inf)
        m3 = srt[:, 2] if n_series > 2 else np.full(n_packs, np.inf)
        arg1 = np.argmin(by_pack, axis=1) + np.arange(n_packs) * n_series
        # min of a pack without group g: m2 if g is its weakest, else m1
        excl = np.where(np.arange(k) == arg1[np.arange(k) // n_series], m2[np.arange(k) // n_series],
                        m1[np.arange(k) // n_series])
        # groupmates of each member (without itself): spreads of the group it would leave behind
        mc = c[groups]
        mr = r[groups]
        mate_cmin = np.full((k, m), np.inf)
        mate_cmax = np.full((k, m), -np.inf)
        mate_rmin = np.full((k, m), np.inf)
        mate_rmax = np.full((k, m), -np.inf)
        for j in range(m):
            others = [t for t in range(m) if t != j]
            if others:
                mate_cmin[:, j], mate_cmax[:, j] = mc[:, others].min(axis=1), mc[:, others].max(axis=1)
                mate_rmin[:, j], mate_rmax[:, j] = mr[:, others].min(axis=1), mr[:, others].max(axis=1)
        pad = np.full(pool.size, np.inf)
        y_cmin = np.concatenate([mate_cmin.reshape(-1), pad])
        y_cmax = np.concatenate([mate_cmax.reshape(-1), -pad])
        y_rmin = np.concatenate([mate_rmin.reshape(-1), pad])
        y_rmax = np.concatenate([mate_rmax.reshape(-1), -pad])
        cy, ry = c[member], r[member]
        gy = where
        py = np.where(gy >= 0, gy // n_series, -1)
        best = (eps, None)
        for p in np.argsort(m1):
            if stuck[p]:
                continue
            gx = int(arg1[p])
            for j in range(m):
                x = groups[gx, j]
                d = cy - c[x]
                cand = (d > 0) & (gy != gx)
                # the weakest group with y instead of x, and y's group with x instead of y, within tolerance
                cand &= _within(np.minimum(mate_cmin[gx, j], cy), np.maximum(mate_cmax[gx, j], cy), ct)
                cand &= _within(np.minimum(mate_rmin[gx, j], ry), np.maximum(mate_rmax[gx, j], ry), rt)
                cand &= _within(np.minimum(y_cmin, c[x]), np.maximum(y_cmax, c[x]), ct)
                cand &= _within(np.minimum(y_rmin, r[x]), np.maximum(y_rmax, r[x]), rt)
                if not cand.any():
                    continue
                new_x = s[gx] + d
                sy = np.where(gy >= 0, s[np.maximum(gy, 0)], 0.0)
                other = py != p
                gain_x = np.where(other, np.minimum(new_x, m2[p]), 0.0) - m1[p]
                gain_y = np.where((gy >= 0) & other,
                                  np.minimum(sy - d, excl[np.maximum(gy, 0)]) - m1[np.maximum(py, 0)], 0.0)
                # y in the same pack: both groups change; the rest of the pack is at least m2 (or m3 when y's
                # group is the second weakest)
                same = (py == p)
                rest = np.where(sy == m2[p], m3[p], m2[p])
                gain_same = np.minimum(np.minimum(new_x, sy - d), rest) - m1[p]
                gain = np.where(same, gain_same, gain_x + gain_y)
                gain = np.where(cand, gain, -np.inf)
                t = int(np.argmax(gain))
                if gain[t] > best[0]:
                    best = (float(gain[t]), (gx, j, t))
            if best[1] is not None:
                break  # the weakest packs first: apply the first pack's best swap, then look again
            stuck[p] = True
        if best[1] is None:
            if verified:
                return groups
            stuck[:], verified = False, True
            continue
        verified = False
        gx, j, t = best[1]
        stuck[gx // n_series] = False
        if where[t] >= 0:
            stuck[where[t] // n_series] = False
        x = groups[gx, j]
        y = member[t]
        if where[t] >= 0:
            gyy = where[t]
            groups[gyy, list(groups[gyy]).index(y)] = x
        else:
            pool[t - k * m] = x
        groups[gx, j] = y
    return groups


def build_packs(capacity_Ah, r0_mOhm, n_series: int, n_parallel: int, *,
                capacity_tolerance: float = CAPACITY_TOLERANCE, r0_tolerance: float = R0_TOLERANCE,
                max_rounds: int = 100_000, time_limit_s: float = 10.0) -> np.ndarray:
    """Build NsMp packs from one class of modules, maximising the total pack capacity.

    Parameters
    ----------
    capacity_Ah : each module's capacity [Ah] (its weakest series group's), shape (n,)
    r0_mOhm : each module's resistance [mOhm], shape (n,)
    n_series, n_parallel : N series positions, M modules in parallel in each
    capacity_tolerance, r0_tolerance : largest relative spreads ``(max - min) / max`` inside a parallel group
    max_rounds : most improving swaps (M >= 2)
    time_limit_s : time after which the swaps stop (M >= 2) [s]; the packs stay valid, only less balanced

    Returns
    -------
    Module indices, shape (packs, N, M): pack, series position, parallel module; packs strongest first, positions
    strongest first. Exact for ``M = 1``; for ``M >= 2`` see :func:`pack_capacity_upper_bound` for the gap.
    """
    c = np.asarray(capacity_Ah, dtype=float)
    r = np.asarray(r0_mOhm, dtype=float)
    per_pack = n_series * n_parallel
    if n_parallel == 1:
        order = np.argsort(-c, kind="stable")
        packs = c.size // n_series
        return order[:packs * n_series].reshape(packs, n_series, 1)
    groups = _greedy_groups(c, r, n_parallel, capacity_tolerance, r0_tolerance)
    if len(groups) < n_series:
        return np.zeros((0, n_series, n_parallel), dtype=int)
    g = np.array(groups, dtype=int)
    g = g[np.argsort(-c[g].sum(axis=1), kind="stable")]
    packs = len(g) // n_series
    g = g[:packs * n_series].reshape(packs, n_series, n_parallel)
    g = np.stack([_snake(pk, c, r, capacity_tolerance, r0_tolerance) for pk in g])
    used = np.zeros(c.size, bool)
    used[g.reshape(-1)] = True
    pool = np.flatnonzero(~used)
    flat = _improve(g.reshape(-1, n_parallel).copy(), pool, c, r, n_series, capacity_tolerance, r0_tolerance,
                    max_rounds, time_limit_s)
    g = order_packs(c, flat.reshape(packs, n_series, n_parallel))
    assert g.shape[2] == n_parallel and per_pack == g.shape[1] * g.shape[2]
    return g


def order_packs(capacity_Ah, packs: np.ndarray) -> np.ndarray:
    """The packs (module indices, shape (packs, N, M)) with positions strongest first inside each pack, then packs
    strongest first (by pack capacity); stable for ties."""
    c = np.asarray(capacity_Ah, dtype=float)
    if packs.size == 0:
        return packs
    sums = c[packs].sum(axis=2)
    packs = np.take_along_axis(packs, np.argsort(-sums, axis=1, kind="stable")[:, :, None], axis=1)
    return packs[np.argsort(-c[packs].sum(axis=2).min(axis=1), kind="stable")]


def pack_capacity_Ah(capacity_Ah, packs: np.ndarray) -> np.ndarray:
    """Each pack's capacity: the smallest over its series positions of the position's summed capacity [Ah]."""
    c = np.asarray(capacity_Ah, dtype=float)
    if packs.size == 0:
        return np.zeros(packs.shape[0])
    return c[packs].sum(axis=2).min(axis=1)
