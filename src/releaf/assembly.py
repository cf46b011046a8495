"""Assembly: pairing graded modules into 2-module stations so that the stations hold the most energy.

A series station is only as good as its weakest group, so pairing similar modules wins. The pairing is a
maximum-weight matching: one binary variable per allowed pair (edge), each module in at most one station, the
weight of an edge the usable energy of that pair at the DC bus (the closed form
``releaf.station.twin.usable_energy_estimate_Wh``, consistent with the station twin within ~1 %). It is solved exactly
as a mixed-integer program with HiGHS.

For large lots the graph is restricted: within a grade the modules are sorted by their capacity (smallest group)
and cut into blocks of at most ``block_size`` (default 60) consecutive modules; every pair inside a block is
allowed (so each module keeps its nearest neighbours by capacity, except at block edges) and each block is solved
exactly. The result is then optimal over the restricted graph, which ``Pairing.optimal = False`` and
``Pairing.method`` say. (A band graph of each module's 10 nearest neighbours was tried first: HiGHS did not
prove optimality within 30 s for 2000 modules, while blocks take ~1.5 s and gave a higher total.)

References
----------
Huangfu, Q., Hall, J. A. J. (2018) Parallelizing the dual revised simplex method, Math. Prog. Comp. 10, 119-142,
doi:10.1007/s12532-017-0130-5 (HiGHS).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from releaf.errors import ConfigError, InputFileError
from releaf.parameters import StationProfile
from releaf.schema.records import GRADES, GradeClass, MatchedPair, Pairing
from releaf.station.twin import REFERENCE_POWER_W, ModuleState, usable_energy_estimate_Wh

_CUT_ROUNDS = 5000
BLOCK_SIZE = 60
"""Largest set of modules matched over the complete graph; larger classes are cut into blocks in capacity order."""


@dataclass(frozen=True)
class ModuleCandidate:
    """A graded module offered for assembly.

    Attributes
    ----------
    serial : module serial number
    grade : ``"A"``, ``"B"``, ``"C"`` or ``"reject"`` (rejects are never used and need no group values)
    group_capacity_Ah : capacity of each series group [Ah]
    group_r0_mOhm : ohmic resistance of each series group [mOhm]
    """

    serial: str
    grade: str
    group_capacity_Ah: tuple[float, ...] = ()
    group_r0_mOhm: tuple[float, ...] = ()

    def __post_init__(self):
        if self.grade not in GRADES:
            raise InputFileError(self.serial, f"grade must be one of {', '.join(GRADES)}, not {self.grade!r}")

    @property
    def state(self) -> ModuleState:
        """The module as the station twin sees it (checks that every group has a capacity and an R0)."""
        return ModuleState(self.serial, tuple(self.group_capacity_Ah), tuple(self.group_r0_mOhm))


def pair_usable_Wh(a: ModuleCandidate | ModuleState, b: ModuleCandidate | ModuleState,
                   station_profile: StationProfile, power_W: float = REFERENCE_POWER_W) -> float:
    """Usable energy of the station built from modules ``a`` and ``b`` at ``power_W`` at the DC bus [Wh].

    The closed form of ``releaf.station.twin.usable_energy_estimate_Wh`` (the edge weight of the matching).
    """
    caps = np.array([*a.group_capacity_Ah, *b.group_capacity_Ah], dtype=float)
    r0s = np.array([*a.group_r0_mOhm, *b.group_r0_mOhm], dtype=float)
    return float(usable_energy_estimate_Wh(caps, r0s, station_profile, power_W))


def _blocks(order: np.ndarray, block_size: int) -> list[np.ndarray]:
    """Cut ``order`` into consecutive blocks of (nearly) equal even size, at most ``block_size`` (rounded to even)."""
    n = order.size
    size = max(2, block_size - block_size % 2)
    count = -(-n // size)
    size = 2 * -(-n // (2 * count))  # balance the blocks, keeping every block but the last even
    return [order[i:i + size] for i in range(0, n, size)]


def _solver():
    class QuietHighs(highspy.Highs):
        # highspy.Highs() registers its callbacks (enableCallbacks) when it is created, and that first call into
        # HiGHS prints the version banner on the process's stdout while output_flag is still at its default: it
        # would corrupt `--json` output. enableCallbacks is the earliest public method to turn the output off.
        def enableCallbacks(self):
            self.setOptionValue("output_flag", False)
            super().enableCallbacks()

    h = QuietHighs()
    h.setOptionValue("output_flag", False)  # highspy versions that do not register callbacks when created
    return h


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


def match_pairs(candidates: Sequence[ModuleCandidate], station_profile: StationProfile, *,
                allow_mixed_grades: bool = False, power_W: float = REFERENCE_POWER_W,
                block_size: int = BLOCK_SIZE, time_limit_s: float = 60.0) -> Pairing:
    """Pair graded modules into 2-module stations maximising the total usable energy.

    Parameters
    ----------
    candidates : graded modules; rejects are excluded
    station_profile : a design of two modules in series (``portable-2s``)
    allow_mixed_grades : allow a station of two different grades (graded as the worse one)
    power_W : DC-bus power at which a station's usable energy is evaluated [W]
    block_size : largest class matched over all its pairs; larger classes are cut into blocks of consecutive
        modules in capacity order, each matched exactly (see the module docstring)
    time_limit_s : solver time limit per block [s]

    Returns
    -------
    :class:`Pairing`

    Raises
    ------
    ConfigError : a design that is not two modules in series
    InputFileError : duplicate serials, or a usable module without a capacity or R0 for every group
    """
    if station_profile.modules_in_series != 2 or station_profile.modules_in_parallel != 1:
        raise ConfigError(station_profile.name, "match_pairs builds stations of two modules in series")
    seen: set[str] = set()
    for c in candidates:
        if c.serial in seen:
            raise InputFileError(c.serial, "serial listed twice")
        seen.add(c.serial)
    usable = [c for c in candidates if c.grade != "reject"]
    excluded = sorted(c.serial for c in candidates if c.grade == "reject")
    groups = station_profile.module.series_groups
    for c in usable:
        _ = c.state  # validates capacities and resistances
        if len(c.group_capacity_Ah) != groups:
            raise InputFileError(c.serial, f"{len(c.group_capacity_Ah)} groups; the design's modules have {groups}")

    n = len(usable)
    cap = np.array([c.group_capacity_Ah for c in usable], dtype=float).reshape(n, groups)
    r0 = np.array([c.group_r0_mOhm for c in usable], dtype=float).reshape(n, groups)
    classes = [np.arange(n)] if allow_mixed_grades else [
        np.array([i for i, c in enumerate(usable) if c.grade == g], dtype=int) for g in GRADES[:-1]]
    restricted, proven = False, True
    pairs: list[tuple[int, int, float]] = []
    for members in classes:
        if members.size < 2:
            continue
        order = members[np.argsort(cap[members].min(axis=1), kind="stable")]
        blocks = _blocks(order, block_size)
        restricted |= len(blocks) > 1
        for block in blocks:
            if block.size < 2:
                continue
            i, j = np.triu_indices(block.size, 1)
            u, v = block[i], block[j]
            w = usable_energy_estimate_Wh(np.concatenate([cap[u], cap[v]], axis=1),
                                          np.concatenate([r0[u], r0[v]], axis=1), station_profile, power_W)
            chosen, ok = _max_weight_matching(n, u, v, w, time_limit_s)
            proven &= ok
            pairs += [(int(u[e]), int(v[e]), float(w[e])) for e in np.flatnonzero(chosen)]

    method = "MILP maximum-weight matching (HiGHS), " + (
        f"graph restricted to blocks of <= {block_size} modules in capacity order" if restricted
        else "complete graph")
    if not proven:
        method += "; solver stopped before proving optimality"
    pairs.sort(key=lambda p: (-p[2], min(usable[p[0]].serial, usable[p[1]].serial)))
    stations = tuple(
        MatchedPair(modules=tuple(sorted((usable[a].serial, usable[b].serial))),
                    grade=GradeClass.worst(usable[a].grade, usable[b].grade), usable_Wh=w)
        for a, b, w in pairs)
    used = {s for st in stations for s in st.modules}
    return Pairing(
        stations=stations,
        unmatched=tuple(sorted(c.serial for c in usable if c.serial not in used)), excluded=tuple(excluded),
        total_usable_Wh=float(sum(w for _, _, w in pairs)), method=method, optimal=proven and not restricted)
