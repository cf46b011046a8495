"""Test oracle: maximum-weight matching as a MILP with HiGHS (the product's pairing before it became exact).

Kept only to check ``releaf.assembly.match_pairs`` on the complete graph: one binary variable per pair, each module
in at most one pair, odd-set (blossom) cuts to make the LP tight (Edmonds' matching polytope), then branch and
bound if the LP is still fractional.

References
----------
Huangfu, Q., Hall, J. A. J. (2018) Parallelizing the dual revised simplex method, Math. Prog. Comp. 10, 119-142,
doi:10.1007/s12532-017-0130-5 (HiGHS).
"""

from __future__ import annotations

import time

import highspy
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from releaf.solver import quiet_highs as _solver

_CUT_ROUNDS = 5000


def _odd_set_cuts(n: int, u: np.ndarray, v: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """Violated odd-set (blossom) inequalities ``sum x(E(S)) <= (|S| - 1) / 2`` for the fractional solution ``x``.

    Candidate sets S are the odd connected components of the fractional edges: in a basic solution of the
    degree-constrained LP those are exactly the odd cycles with x = 1/2 (Edmonds' polytope).
    """
    frac = (x > 1e-6) & (x < 1 - 1e-6)
    if not frac.any():
        return []
    graph = coo_matrix((np.ones(int(frac.sum())), (u[frac], v[frac])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    touched = np.zeros(n, bool)
    touched[u[frac]] = touched[v[frac]] = True
    cuts = []
    for comp in np.unique(label[touched]):
        in_s = label == comp
        size = int(in_s.sum())
        if size % 2 == 1:
            inside = np.flatnonzero(in_s[u] & in_s[v])
            if x[inside].sum() > (size - 1) / 2 + 1e-6:
                cuts.append(inside)
    return cuts


def _max_weight_matching(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray,
                         time_limit_s: float) -> tuple[np.ndarray, bool]:
    """Exact maximum-weight matching by MILP; returns the chosen edge mask and whether optimality was proven.

    The LP relaxation of the degree constraints alone is weak (odd cycles at x = 1/2 inflate the bound by a
    few %, and the branch-and-bound then takes seconds for 60 modules), so a few rounds of odd-set cuts are
    added to the LP first (up to half the time limit); usually the LP then turns integral and no branching is
    needed (a block of 60 modules: a few hundred rounds, about 1 s). Otherwise the MILP finishes the job.
    """
    m = w.size
    h = _solver()
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.addCols(m, w.astype(float), np.zeros(m), np.ones(m), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
              np.zeros(0))
    # one row per module: sum of its edges <= 1 (row-wise sparse matrix)
    node = np.concatenate([u, v])
    edge = np.concatenate([np.arange(m), np.arange(m)])
    order = np.argsort(node, kind="stable")
    starts = np.searchsorted(node[order], np.arange(n)).astype(np.int32)
    h.addRows(n, np.full(n, -highspy.kHighsInf), np.ones(n), 2 * m, starts, edge[order].astype(np.int32),
              np.ones(2 * m))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    x = np.zeros(m)
    start = time.perf_counter()
    for _ in range(_CUT_ROUNDS):
        if time.perf_counter() - start > time_limit_s / 2:
            break
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        x = np.asarray(h.getSolution().col_value)
        cuts = _odd_set_cuts(n, u, v, x)
        if not cuts:
            break
        for inside in cuts:
            size = len(np.unique(np.concatenate([u[inside], v[inside]])))
            h.addRow(-highspy.kHighsInf, (size - 1) // 2, inside.size, inside.astype(np.int32), np.ones(inside.size))
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal and np.all((x < 1e-6) | (x > 1 - 1e-6)):
        return x > 0.5, True  # the LP optimum is integral: optimal for the MILP as well
    h.changeColsIntegrality(m, np.arange(m, dtype=np.int32), np.full(m, highspy.HighsVarType.kInteger))
    h.run()
    status = h.getModelStatus()
    x = np.asarray(h.getSolution().col_value)
    if x.size != m:  # no feasible point found in time: build nothing rather than guess
        return np.zeros(m, bool), False
    return x > 0.5, status == highspy.HighsModelStatus.kOptimal


def max_weight_matching(weights: np.ndarray, time_limit_s: float = 60.0) -> tuple[list[tuple[int, int]], bool]:
    """Maximum-weight matching on the complete graph of ``weights`` (symmetric (n, n) array).

    Returns the chosen pairs ``(i, j)``, ``i < j``, and whether HiGHS proved optimality.
    """
    n = weights.shape[0]
    u, v = np.triu_indices(n, 1)
    chosen, proven = _max_weight_matching(n, u, v, weights[u, v], time_limit_s)
    return [(int(a), int(b)) for a, b in zip(u[chosen], v[chosen], strict=True)], proven
