"""Assembly: pairing graded modules into 2-module stations, exactly, at any lot size.

A series string is only as good as its weakest series group: its capacity is the smallest group capacity in it.
A module's capacity here is therefore its weakest group's capacity, and a station of two modules in series holds
``min(capacity_a, capacity_b)`` [Ah]. The objective of :func:`match_pairs` is

    maximise  sum over stations of min(capacity_a, capacity_b)       (the lot's total series capacity [Ah])

over all matchings of the modules (each module in at most one station; stations of one grade unless the policy
allows mixed grades; optionally partners within a relative capacity tolerance). It is solved exactly by sorting
each grade class by capacity and running a dynamic programme over the sorted order that may only pair
neighbours: an exchange argument (``docs/assembly-optimality.md``) shows some optimal matching pairs only
neighbours in capacity order, so the programme is exact; without a tolerance its answer is the closed form "drop
the smallest module when the count is odd, pair the rest in sorted order". Among the matchings of equal total
capacity the programme prefers the smallest sum of resistance differences between partners (a secondary
tie-break; equal capacities are sorted by resistance first). Cost: O(n log n) for the sort, O(n) for the
programme; 100,000 modules take ~0.1 s.

Each station's usable energy at the DC bus is still reported through the closed form
``releaf.station.twin.usable_energy_estimate_Wh`` (consistent with the station twin within ~1 %); it is reported,
not optimised: the capacity objective is the one that can be proven optimal in linear time, and the energy
follows the weakest group's capacity closely (the resistance term is a few % of it at 100 W).

The earlier maximum-weight matching MILP (HiGHS) over blocks of 60 modules survives only as the test oracle
(``tests/matching_oracle.py``).

References
----------
Hardy, G. H., Littlewood, J. E., Pólya, G. (1952) Inequalities, 2nd ed., Cambridge University Press, §10.2
(rearrangement: sums of paired ordered terms are extremal when both are sorted alike).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from releaf import packs
from releaf.errors import ConfigError, InputFileError
from releaf.parameters import BatteryProfile, StationProfile
from releaf.schema.records import GRADES, GradeClass, MatchedPair, Pairing
from releaf.station.twin import REFERENCE_POWER_W, ModuleState, usable_energy_estimate_Wh

PAIR_OBJECTIVE = ("maximise the total series capacity: the sum over stations of min(capacity of its two modules) "
                  "[Ah], a module's capacity being its weakest series group's; tie-break: the smallest sum of "
                  "|R0 difference| between partners")
PAIR_METHOD = ("exact: dynamic programme over each grade class sorted by capacity, pairing neighbours only; proven "
               "optimal for the total series capacity over all matchings (exchange argument, "
               "docs/assembly-optimality.md)")
_TIE_REL = 1e-12
"""Totals equal within this relative difference (floating-point rounding) count as a tie of the primary objective."""


@dataclass(frozen=True)
class ModuleCandidate:
    """A graded module offered for assembly.

    Attributes
    ----------
    serial : module serial number
    grade : ``"A"``, ``"B"``, ``"C"`` or ``"reject"`` (rejects are never used and need no group values)
    group_capacity_Ah : capacity of each series group [Ah]
    group_r0_mOhm : ohmic resistance of each series group [mOhm]
    failed_safety : the module failed a safety screen: it is a reject whatever ``grade`` says (a grade edited by
        hand cannot put it into a station or pack)
    """

    serial: str
    grade: str
    group_capacity_Ah: tuple[float, ...] = ()
    group_r0_mOhm: tuple[float, ...] = ()
    failed_safety: bool = False

    def __post_init__(self):
        if self.grade not in GRADES:
            raise InputFileError(self.serial, f"grade must be one of {', '.join(GRADES)}, not {self.grade!r}")
        if self.failed_safety and self.grade != "reject":
            object.__setattr__(self, "grade", "reject")

    @property
    def state(self) -> ModuleState:
        """The module as the station twin sees it (checks that every group has a capacity and an R0)."""
        return ModuleState(self.serial, tuple(self.group_capacity_Ah), tuple(self.group_r0_mOhm))

    @property
    def capacity_Ah(self) -> float:
        """The module's capacity in a series string: its weakest group's [Ah]."""
        return float(min(self.group_capacity_Ah))

    @property
    def r0_mOhm(self) -> float:
        """The module's ohmic resistance: the sum over its series groups [mOhm]."""
        return float(sum(self.group_r0_mOhm))


def pair_usable_Wh(a: ModuleCandidate | ModuleState, b: ModuleCandidate | ModuleState,
                   station_profile: StationProfile, power_W: float = REFERENCE_POWER_W) -> float:
    """Usable energy of the station built from modules ``a`` and ``b`` at ``power_W`` at the DC bus [Wh].

    The closed form of ``releaf.station.twin.usable_energy_estimate_Wh``.
    """
    caps = np.array([*a.group_capacity_Ah, *b.group_capacity_Ah], dtype=float)
    r0s = np.array([*a.group_r0_mOhm, *b.group_r0_mOhm], dtype=float)
    return float(usable_energy_estimate_Wh(caps, r0s, station_profile, power_W))


def relative_spread(values) -> np.ndarray:
    """``(max - min) / max`` over the last axis (0 for one value): the spread a tolerance is stated in."""
    v = np.asarray(values, dtype=float)
    hi = v.max(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > 0, (hi - v.min(axis=-1)) / np.where(hi > 0, hi, 1.0), 0.0)


def max_series_capacity_pairs(capacity_Ah, r0_mOhm=None, *, capacity_tolerance: float | None = None) -> np.ndarray:
    """The matching of modules into pairs that maximises the sum over pairs of the smaller capacity.

    Sorts by capacity (ties by resistance) and runs a dynamic programme over the sorted order that pairs
    neighbours only: ``best[i] = max(best[i-1], best[i-2] + a[i-2])`` (the second term only when the neighbours
    ``i-2, i-1`` may be partners), with the primary objective compared first and the sum of resistance
    differences second. Exact for the primary objective (proof: ``docs/assembly-optimality.md``): some optimal
    matching pairs only neighbours in sorted order, because a partner tolerance on the relative spread ``(max -
    min) / max`` allows every pair nested inside an allowed pair. Without a tolerance the result is "drop the
    smallest module when the count is odd and pair the rest in sorted order".

    Parameters
    ----------
    capacity_Ah : capacity of each module [Ah] (its weakest group's), shape (n,)
    r0_mOhm : resistance of each module [mOhm], shape (n,); None → no tie-break
    capacity_tolerance : largest allowed relative capacity spread between partners, ``(max - min) / max``
        (fraction); None → any two modules may be partners

    Returns
    -------
    Index pairs into the input, shape (k, 2), the weaker partner first, in increasing capacity order.
    """
    a = np.asarray(capacity_Ah, dtype=float)
    n = a.size
    r = np.zeros(n) if r0_mOhm is None else np.asarray(r0_mOhm, dtype=float)
    order = np.lexsort((r, a))
    a_s, r_s = a[order], r[order]
    if n < 2:
        return np.zeros((0, 2), dtype=int)
    allowed = np.ones(n - 1, bool) if capacity_tolerance is None else (
        (a_s[1:] - a_s[:-1]) <= capacity_tolerance * a_s[1:])
    gain = a_s[:-1].tolist()
    penalty = np.abs(np.diff(r_s)).tolist()
    allowed = allowed.tolist()
    cap = [0.0] * (n + 1)
    pen = [0.0] * (n + 1)
    take = [False] * (n + 1)
    for i in range(2, n + 1):
        c_skip, p_skip = cap[i - 1], pen[i - 1]
        if allowed[i - 2]:
            c_pair, p_pair = cap[i - 2] + gain[i - 2], pen[i - 2] + penalty[i - 2]
            diff = c_pair - c_skip
            if diff > _TIE_REL * c_pair or (diff >= -_TIE_REL * c_pair and p_pair < p_skip):
                cap[i], pen[i], take[i] = c_pair, p_pair, True
                continue
        cap[i], pen[i] = c_skip, p_skip
    pairs = []
    i = n
    while i >= 2:
        if take[i]:
            pairs.append((i - 2, i - 1))
            i -= 2
        else:
            i -= 1
    sorted_pairs = np.array(pairs[::-1], dtype=int).reshape(-1, 2)
    return order[sorted_pairs]


def _group_arrays(usable: Sequence[ModuleCandidate], groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Group capacities and resistances as (n, groups) arrays, checked as the twin checks them (vectorised)."""
    for c in usable:
        if len(c.group_capacity_Ah) != groups or len(c.group_r0_mOhm) != groups:
            _ = c.state  # the twin's own message when the two lengths differ or are empty
            raise InputFileError(c.serial, f"{len(c.group_capacity_Ah)} groups; the design's modules have {groups}")
    n = len(usable)
    try:
        cap = np.array([c.group_capacity_Ah for c in usable], dtype=float).reshape(n, groups)
        r0 = np.array([c.group_r0_mOhm for c in usable], dtype=float).reshape(n, groups)
    except (TypeError, ValueError):
        cap = r0 = None
    if cap is None or not (np.isfinite(cap).all() and (cap > 0).all() and np.isfinite(r0).all() and (r0 >= 0).all()):
        for c in usable:
            _ = c.state  # raises for the first bad module, with the twin's message
    return cap, r0


def _check_serials(candidates: Sequence[ModuleCandidate]) -> None:
    if len({c.serial for c in candidates}) == len(candidates):
        return
    seen: set[str] = set()
    for c in candidates:
        if c.serial in seen:
            raise InputFileError(c.serial, "serial listed twice")
        seen.add(c.serial)


def grade_classes(grades: Sequence[str], allow_mixed_grades: bool) -> list[np.ndarray]:
    """Index arrays of the modules that may be assembled together: one per grade, or all when grades may mix."""
    g = np.asarray(grades, dtype=object)
    if allow_mixed_grades:
        return [np.arange(g.size)]
    return [np.flatnonzero(g == grade) for grade in GRADES[:-1]]


def match_pairs(candidates: Sequence[ModuleCandidate], station_profile: StationProfile, *,
                allow_mixed_grades: bool = False, power_W: float = REFERENCE_POWER_W,
                capacity_tolerance: float | None = None) -> Pairing:
    """Pair graded modules into 2-module stations maximising the total series capacity, exactly.

    Objective: maximise the sum over stations of ``min(capacity_a, capacity_b)`` [Ah], where a module's capacity is
    its weakest series group's capacity (a series string is only as good as its weakest group). Tie-break: the
    smallest sum of resistance differences between partners. Solved exactly by
    :func:`max_series_capacity_pairs` in each grade class (proof in ``docs/assembly-optimality.md``), so
    ``Pairing.optimal`` is True.

    Parameters
    ----------
    candidates : graded modules; rejects are excluded
    station_profile : a design of two modules in series (``portable-2s``)
    allow_mixed_grades : allow a station of two different grades (graded as the worse one)
    power_W : DC-bus power at which each station's usable energy is reported [W]
    capacity_tolerance : largest relative capacity spread between partners, ``(max - min) / max`` (fraction);
        None (default) → no limit

    Returns
    -------
    :class:`Pairing`, stations strongest (by usable energy) first.

    Raises
    ------
    ConfigError : a design that is not two modules in series
    InputFileError : duplicate serials, or a usable module without a capacity or R0 for every group
    """
    if station_profile.modules_in_series != 2 or station_profile.modules_in_parallel != 1:
        raise ConfigError(station_profile.name, "match_pairs builds stations of two modules in series")
    _check_serials(candidates)
    usable = [c for c in candidates if c.grade != "reject"]
    excluded = sorted(c.serial for c in candidates if c.grade == "reject")
    cap, r0 = _group_arrays(usable, station_profile.module.series_groups)
    module_cap, module_r0 = cap.min(axis=1), r0.sum(axis=1)

    found = [np.zeros((0, 2), dtype=int)]
    for members in grade_classes([c.grade for c in usable], allow_mixed_grades):
        if members.size >= 2:
            found.append(members[max_series_capacity_pairs(module_cap[members], module_r0[members],
                                                           capacity_tolerance=capacity_tolerance)])
    pairs = np.concatenate(found)
    u, v = pairs[:, 0], pairs[:, 1]
    wh = usable_energy_estimate_Wh(np.concatenate([cap[u], cap[v]], axis=1), np.concatenate([r0[u], r0[v]], axis=1),
                                   station_profile, power_W).reshape(-1)
    series_Ah = np.minimum(module_cap[u], module_cap[v])
    serial = [c.serial for c in usable]
    classes = tuple(GradeClass)
    rank = np.array([GRADES.index(c.grade) for c in usable], dtype=int)
    worst = np.maximum(rank[u], rank[v])
    strongest = np.argsort(-wh, kind="stable")  # pairs come in a fixed order (grade, capacity): ties stay put
    rows = zip(u[strongest].tolist(), v[strongest].tolist(), wh[strongest].tolist(), series_Ah[strongest].tolist(),
               worst[strongest].tolist(), strict=True)
    stations = tuple(
        MatchedPair(modules=(serial[a], serial[b]) if serial[a] < serial[b] else (serial[b], serial[a]),
                    grade=classes[g], usable_Wh=w, series_capacity_Ah=q)
        for a, b, w, q, g in rows)
    used = np.zeros(len(usable), bool)
    used[u] = used[v] = True
    method = PAIR_METHOD + ("" if capacity_tolerance is None else
                            f"; partners within a relative capacity spread of {capacity_tolerance:g}")
    return Pairing(
        stations=stations,
        unmatched=tuple(sorted(s for s, k in zip(serial, used.tolist(), strict=True) if not k)),
        excluded=tuple(excluded), total_usable_Wh=float(wh.sum()), method=method, optimal=True,
        total_series_capacity_Ah=float(series_Ah.sum()), objective=PAIR_OBJECTIVE)


# ---- a whole lot into any design (the ``releaf assemble`` command) ------------------------------------------------

PACK_OBJECTIVE = ("maximise the total pack capacity: the sum over packs of min over its series positions of the "
                  "position's summed module capacity [Ah], a module's capacity being its weakest series group's")


@dataclass(frozen=True)
class AssembledStation:
    """One station or pack built from a lot.

    Attributes
    ----------
    groups : module serials per series position, in series order (one serial per position for ``<N>s1p``)
    grade : the worst of its modules' grades
    series_capacity_Ah : its capacity, the weakest position's summed capacity [Ah]
    usable_Wh : usable energy estimate [Wh] (see :attr:`LotAssembly.usable_Wh_method`)
    """

    groups: tuple[tuple[str, ...], ...]
    grade: GradeClass
    series_capacity_Ah: float
    usable_Wh: float

    @property
    def members(self) -> tuple[str, ...]:
        """Module serials in series order (position by position)."""
        return tuple(s for g in self.groups for s in g)


@dataclass(frozen=True)
class LotAssembly:
    """Result of :func:`assemble_lot`.

    Attributes
    ----------
    design : the design's name
    objective : what was maximised
    method : how, and what is proven
    optimal : True when proven optimal for ``objective``
    stations : built stations or packs, strongest first
    unassigned : ``(serial, reason)`` of every module not built in, in lot order
    total_series_capacity_Ah : the objective's value [Ah]
    upper_bound_Ah : a proven upper bound of the objective [Ah] (equal to the total when optimal)
    total_usable_Wh : sum of the stations' ``usable_Wh`` [Wh]
    usable_Wh_method : how ``usable_Wh`` was estimated
    """

    design: str
    objective: str
    method: str
    optimal: bool
    stations: tuple[AssembledStation, ...]
    unassigned: tuple[tuple[str, str], ...]
    total_series_capacity_Ah: float
    upper_bound_Ah: float
    total_usable_Wh: float
    usable_Wh_method: str

    def to_dict(self) -> dict:
        """JSON-safe data (floats unrounded): what ``releaf assemble --json`` prints."""
        ub = self.upper_bound_Ah
        gap = (ub - self.total_series_capacity_Ah) / ub if ub else 0.0
        return {
            "design": self.design, "objective": self.objective, "method": self.method, "optimal": self.optimal,
            "stations": [{"members": list(st.members), "groups": [list(g) for g in st.groups],
                          "grade": str(st.grade), "series_capacity_Ah": st.series_capacity_Ah,
                          "usable_Wh": st.usable_Wh} for st in self.stations],
            "unassigned": [{"module_id": s, "reason": why} for s, why in self.unassigned],
            "total_series_capacity_Ah": self.total_series_capacity_Ah, "upper_bound_Ah": self.upper_bound_Ah,
            "gap_bound": max(gap, 0.0), "total_usable_Wh": self.total_usable_Wh,
            "usable_Wh_method": self.usable_Wh_method,
        }


def resolve_design(name: str | StationProfile | packs.PackDesign) -> StationProfile | packs.PackDesign:
    """A packaged station design (``portable-2s``) or an NsMp pack design (``12s1p``, ``8s2p``) by name.

    Raises
    ------
    ConfigError : neither (the message lists the packaged designs and the NsMp pattern)
    """
    from releaf.parameters import STATION_PROFILES, station_profile

    if isinstance(name, StationProfile | packs.PackDesign):
        return name
    if name in STATION_PROFILES:
        return station_profile(name)
    try:
        return packs.parse_design(name)
    except ConfigError:
        raise ConfigError("design", f"unknown design {name!r}: a packaged station design "
                                    f"({', '.join(STATION_PROFILES)}) or <N>s<M>p such as 12s1p, 8s2p") from None


def _lone_reason(grade: str, allow_mixed_grades: bool) -> str:
    return ("no partner left: the odd one out, the one that adds least to the total" if allow_mixed_grades else
            f"no partner of grade {grade} left (stations are built from one grade): the odd one out, the one that "
            "adds least to the total")


def _reject_reason(c: ModuleCandidate) -> str:
    return "failed a safety screen: recycling" if c.failed_safety else "graded reject"


def assemble_lot(candidates: Sequence[ModuleCandidate], design: str | StationProfile | packs.PackDesign, *,
                 module: BatteryProfile | None = None, allow_mixed_grades: bool = False,
                 pair_capacity_tolerance: float | None = None,
                 group_capacity_tolerance: float = packs.CAPACITY_TOLERANCE,
                 group_r0_tolerance: float = packs.R0_TOLERANCE, power_W: float = REFERENCE_POWER_W,
                 improve_s: float = 0.0) -> LotAssembly:
    """Assemble a lot of graded modules into a design: 2-module stations or NsMp packs.

    A packaged station design (``portable-2s``) goes through :func:`match_pairs` (exact; ``usable_Wh`` from the
    twin's closed form ``usable_energy_estimate_Wh`` at ``power_W``). An NsMp design goes through
    :func:`releaf.packs.build_packs` per grade class (exact for M = 1, a constructive heuristic with a proven
    upper bound for M >= 2); its ``usable_Wh`` is a simple estimate, pack capacity × the module's nominal voltage ×
    N, with no BMS window or resistance loss.

    Parameters
    ----------
    candidates : graded modules; rejects are unassigned with their reason
    design : packaged station design name, ``<N>s<M>p`` name, or the design object
    module : profile of the modules (group count, nominal voltage); default the station design's module, else
        the default parameter set's unit
    allow_mixed_grades : allow modules of different grades in one station or pack (graded as the worst)
    pair_capacity_tolerance : 2-module stations only: largest relative capacity spread between partners
        (fraction); None → no limit
    group_capacity_tolerance, group_r0_tolerance : NsMp only: largest relative capacity and resistance spreads
        ``(max - min) / max`` inside a parallel group (fractions; defaults are releaf policy choices)
    power_W : DC-bus power at which a 2-module station's usable energy is estimated [W]
    improve_s : NsMp with M >= 2: time for :func:`releaf.packs_exact.polish_packs` (the whole lot regrouped by
        simulated annealing, then exact re-solving of adjacent packs with HiGHS) after the heuristic, over all grade
        classes [s]; 0 = none

    Raises
    ------
    ConfigError : unknown design, a tolerance outside [0, 1]
    InputFileError : duplicate serials, missing or non-positive group values, wrong group count
    """
    from releaf.parameters import DEFAULT_BATTERY_PROFILE, battery_profile

    des = resolve_design(design)
    packs.check_tolerance("group_capacity_tolerance", group_capacity_tolerance)
    packs.check_tolerance("group_r0_tolerance", group_r0_tolerance)
    rejected = {c.serial for c in candidates if c.grade == "reject"}
    if isinstance(des, StationProfile):
        pairing = match_pairs(candidates, des, allow_mixed_grades=allow_mixed_grades, power_W=power_W,
                              capacity_tolerance=pair_capacity_tolerance)
        grade_of = {c.serial: c.grade for c in candidates}
        lone = set(pairing.unmatched)
        why = "no partner within the capacity tolerance, or " if pair_capacity_tolerance is not None else ""
        unassigned = tuple((c.serial, _reject_reason(c) if c.serial in rejected else
                            why + _lone_reason(grade_of[c.serial], allow_mixed_grades))
                           for c in candidates if c.serial in rejected or c.serial in lone)
        stations = tuple(AssembledStation(groups=tuple((m,) for m in st.modules), grade=st.grade,
                                          series_capacity_Ah=st.series_capacity_Ah, usable_Wh=st.usable_Wh)
                         for st in pairing.stations)
        return LotAssembly(design=des.name, objective=pairing.objective, method=pairing.method, optimal=True,
                           stations=stations, unassigned=unassigned,
                           total_series_capacity_Ah=pairing.total_series_capacity_Ah,
                           upper_bound_Ah=pairing.total_series_capacity_Ah, total_usable_Wh=pairing.total_usable_Wh,
                           usable_Wh_method=f"closed form of the station twin at {power_W:g} W at the DC bus "
                                            "(releaf.station.twin.usable_energy_estimate_Wh)")

    prof = module if module is not None else battery_profile(DEFAULT_BATTERY_PROFILE)
    _check_serials(candidates)
    usable = [c for c in candidates if c.grade != "reject"]
    cap, r0 = _group_arrays(usable, prof.series_groups)
    module_cap, module_r0 = cap.min(axis=1), r0.sum(axis=1)
    n_s, n_p = des.modules_in_series, des.modules_in_parallel
    built: list[tuple[np.ndarray, float]] = []
    bound = 0.0
    reasons: dict[int, str] = {}
    tol = f"{group_capacity_tolerance:.3g} capacity and {group_r0_tolerance:.3g} R0 spread"
    deadline = time.perf_counter() + improve_s
    for members in grade_classes([c.grade for c in usable], allow_mixed_grades):
        if members.size == 0:
            continue
        c_k, r_k = module_cap[members], module_r0[members]
        bound += packs.pack_capacity_upper_bound(c_k, r_k, n_s, n_p, capacity_tolerance=group_capacity_tolerance,
                                                 r0_tolerance=group_r0_tolerance)
        found = packs.build_packs(c_k, r_k, n_s, n_p, capacity_tolerance=group_capacity_tolerance,
                                  r0_tolerance=group_r0_tolerance)
        left_s = deadline - time.perf_counter()
        if n_p > 1 and left_s > 0:
            from releaf import packs_exact  # HiGHS, imported only when asked for

            found = packs_exact.polish_packs(c_k, r_k, found, capacity_tolerance=group_capacity_tolerance,
                                             r0_tolerance=group_r0_tolerance, time_limit_s=left_s)
        built += [(members[pk], float(q)) for pk, q in zip(found, packs.pack_capacity_Ah(c_k, found), strict=True)]
        used = np.zeros(members.size, bool)
        used[found.reshape(-1)] = True
        lonely = np.zeros(members.size, bool)
        if n_p > 1 and members.size <= 5000:
            lonely = packs.compatible_partner_counts(c_k, r_k, group_capacity_tolerance, group_r0_tolerance) < n_p - 1
        label = "" if allow_mixed_grades else f" of grade {usable[members[0]].grade}"
        for k in np.flatnonzero(~used):
            reasons[int(members[k])] = (
                f"{'no other module' if n_p == 2 else f'fewer than {n_p - 1} other modules'}{label} within the "
                f"parallel-group tolerances ({tol})" if lonely[k] else
                f"left over: not enough modules{label} for another full {des.name} pack, or it adds least to the "
                "total")
    built.sort(key=lambda b: -b[1])
    classes = tuple(GradeClass)
    stations = tuple(
        AssembledStation(groups=tuple(tuple(usable[i].serial for i in pos) for pos in pk.tolist()),
                         grade=classes[max(GRADES.index(usable[i].grade) for i in pk.reshape(-1).tolist())],
                         series_capacity_Ah=q, usable_Wh=q * prof.nominal_voltage_V * n_s)
        for pk, q in built)
    index = {c.serial: i for i, c in enumerate(usable)}
    unassigned = tuple((c.serial, _reject_reason(c) if c.serial in rejected else reasons[index[c.serial]])
                       for c in candidates if c.serial in rejected or index.get(c.serial) in reasons)
    total = float(sum(q for _, q in built))
    exact = n_p == 1
    method = ("exact: sorted consecutive blocks of N modules per grade class (counting argument, "
              "docs/assembly-optimality.md)" if exact else
              f"constructive heuristic per grade class (groups within {tol}, sorted blocks, snake re-deal, improving "
              "swaps to a local optimum"
              + (f"; then up to {improve_s:g} s of polishing: annealing over the whole lot, then exact re-solving of "
                 "adjacent packs, HiGHS" if improve_s > 0 else "")
              + "); optimality not proven: see upper_bound_Ah")
    return LotAssembly(design=des.name, objective=PACK_OBJECTIVE, method=method, optimal=exact, stations=stations,
                       unassigned=unassigned, total_series_capacity_Ah=total, upper_bound_Ah=max(bound, total),
                       total_usable_Wh=float(sum(st.usable_Wh for st in stations)),
                       usable_Wh_method=f"simple estimate: pack capacity x nominal module voltage "
                                        f"({prof.nominal_voltage_V:g} V) x {n_s} in series; no BMS window, no "
                                        "resistance loss")
