"""Grading: a module's evidence against a versioned acceptance policy → A / B / C / reject and a destination.

The thresholds live in YAML policies (``parameters/policies/<name>.yaml``, format and validation in
:mod:`releaf.policy`), each with its rationale, not here. UL 1974 (Evaluation for Repurposing Batteries) leaves the
acceptance criteria to the repurposer, who must define and document them; every :class:`Grade` records the policy
name and version it was made under, every screen it ran (in UL 1974's order) and the destination it chose.

Screens, in order
-----------------
=========================== ======================================================== ======== =====================
screen                      value                                                    safety   failure
=========================== ======================================================== ======== =====================
``visual_inspection``       damage flags of the inspection record                    yes      recycling
``lifetime_data``           recorded BMS/intake history (IEC 63338)                  no       reject (not reused)
``bms_rest_deviation``      intake rest deviation from the pack median [mV]          no       the policy's grade
``bms_outlier_flags``       intake metrics >= 3 robust SD on the bad side (count)    no       the policy's grade
``ocv_window``              lowest group voltage [V] (over-discharge)                yes      recycling
``capacity``                SOH [%], graded A/B/C                                    no       lower grade
``capacity_plausible``      SOH [%] above a plausible maximum                        no       reject (re-test)
``resistance``              R0 [mOhm], graded A/B/C                                  no       lower grade
``resistance_outlier``      robust z of R0 against its lot (median, 1.4826 MAD)      no       the policy's grade
``self_discharge``          equivalent self-discharge [%/day]                        yes      recycling
``group_capacity_imbalance`` (max - min) / max of the groups' capacities [%]         no       lower grade
``group_end_voltage_spread`` groups' end-of-discharge voltage spread [V]             no       lower grade
``temperature``             hottest reading of the test [°C]                         yes      recycling
=========================== ======================================================== ======== =====================

A screen whose value was not measured does not apply (``passed = None``), except capacity (no capacity, no
grade) and graded rules with an ``if_missing``. A failed safety screen sets ``Grade.failed_safety``: the module
goes to recycling and :func:`override` refuses to put it back into a product. :func:`grade` grades one module
alone (the lot outlier screen does not apply); :func:`grade_lot` grades a lot and compares each R0 with the lot's;
:func:`grade_table` does the same on a table of features, vectorised, for fleets.

References
----------
UL 1974, Standard for Evaluation for Repurposing Batteries (2018), sorting and grading of cells and modules.
IEC 63338:2021 (TS), General guidance for reuse of secondary cells and batteries (lifetime data).
Rousseeuw & Croux (1993), JASA 88:1273, doi:10.2307/2291267 (median and 1.4826 x MAD as a robust scale).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from releaf.errors import ConfigError, OverrideRefused
from releaf.parameters import BATTERY_PROFILES
from releaf.policy import Policy, load_policy, policy_from_data, waive_lifetime_data
from releaf.schema.records import GRADES, Diagnosis, Grade, GradeClass, Inspection, Override, ScreenResult

SCREEN_ORDER = ("visual_inspection", "lifetime_data", "bms_rest_deviation", "bms_outlier_flags", "ocv_window",
                "capacity", "capacity_plausible", "resistance", "resistance_outlier", "self_discharge",
                "group_capacity_imbalance", "group_end_voltage_spread", "temperature")
"""The screens in the order they run (UL 1974's order of evaluation)."""
SAFETY_SCREENS = frozenset({"visual_inspection", "ocv_window", "self_discharge", "temperature"})
"""Screens whose failure sends a module to recycling, beyond any override."""
MAD_TO_SD = 1.4826  # median absolute deviation -> standard deviation of a normal distribution (Rousseeuw & Croux)

# graded rule metric -> (screen, label, unit, higher_is_better)
_GRADED = {
    "soh_pct": ("capacity", "SOH", "%", True),
    "r0_mOhm": ("resistance", "R0", "mOhm", False),
    "group_capacity_imbalance_pct": ("group_capacity_imbalance", "group capacity imbalance", "%", False),
    "group_end_voltage_spread_V": ("group_end_voltage_spread", "group end-voltage spread", "V", False),
}


@dataclass(frozen=True)
class ModuleEvidence:
    """Everything grading looks at for one module.

    Attributes
    ----------
    diagnosis : the bench test's diagnosis
    inspection : the visual inspection record, None when not inspected
    intake : the module's row of ``releaf intake`` (``PackReport.modules[k]``: ``rest_deviation_mV`` [mV],
        ``reasons`` (outlier flags), ...), None when the pack had no LeafSpy log
    lifetime_data : whether recorded lifetime data (BMS history) exists; None → True exactly when ``intake`` is given
    """

    diagnosis: Diagnosis
    inspection: Inspection | None = None
    intake: Mapping[str, Any] | None = None
    lifetime_data: bool | None = None

    @property
    def has_lifetime_data(self) -> bool:
        return bool(self.lifetime_data) if self.lifetime_data is not None else self.intake is not None


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def grading_metrics(diagnosis: Diagnosis) -> dict[str, float | None]:
    """The values of one diagnosis that a policy grades (None where not measured).

    Returns
    -------
    ``soh_pct`` [%]; ``r0_mOhm`` [mOhm]; ``group_capacity_imbalance_pct``: (max − min) / max of the groups'
    ``capacity_Ah`` [%], None with fewer than 2 groups with a capacity; ``group_end_voltage_spread_V``: max − min
    of the groups' ``end_voltage_V`` [V], None with fewer than 2; ``max_temperature_C`` [°C];
    ``min_group_voltage_V`` [V]: the diagnosis' value, else the lowest group ``min_voltage_V``;
    ``self_discharge_pct_per_day`` [%/day].
    """
    caps = [c for g in diagnosis.groups if (c := _finite(g.capacity_Ah)) is not None]
    ends = [v for g in diagnosis.groups if (v := _finite(g.end_voltage_V)) is not None]
    mins = [v for g in diagnosis.groups if (v := _finite(g.min_voltage_V)) is not None]
    min_group = _finite(diagnosis.min_group_voltage_V)
    if min_group is None and mins:
        min_group = min(mins)
    return {
        "soh_pct": _finite(diagnosis.soh_pct),
        "r0_mOhm": _finite(diagnosis.r0_mOhm),
        "group_capacity_imbalance_pct": (max(caps) - min(caps)) / max(caps) * 100.0
        if len(caps) >= 2 and max(caps) > 0 else None,
        "group_end_voltage_spread_V": max(ends) - min(ends) if len(ends) >= 2 else None,
        "max_temperature_C": _finite(diagnosis.max_temperature_C),
        "min_group_voltage_V": min_group,
        "self_discharge_pct_per_day": _finite(diagnosis.self_discharge_pct_per_day),
    }


def features(evidence: ModuleEvidence | Diagnosis) -> dict[str, Any]:
    """One module's row of :func:`grade_table`'s input: the graded metrics plus the inspection and history.

    Returns
    -------
    :func:`grading_metrics` and ``has_lifetime_data`` (bool), ``visual_flags`` (list of str, None when not
    inspected), ``intake_rest_deviation_mV`` [mV], ``intake_outlier_flags`` (count; None without an intake row).
    """
    ev = evidence if isinstance(evidence, ModuleEvidence) else ModuleEvidence(evidence)
    row: dict[str, Any] = dict(grading_metrics(ev.diagnosis))
    row["has_lifetime_data"] = ev.has_lifetime_data
    row["visual_flags"] = list(ev.inspection.flags) if ev.inspection is not None else None
    intake = ev.intake
    row["intake_rest_deviation_mV"] = _finite(intake.get("rest_deviation_mV")) if intake is not None else None
    row["intake_outlier_flags"] = float(len(intake.get("reasons") or ())) if intake is not None else None
    return row


@dataclass(frozen=True)
class LotStats:
    """The R0 statistics of a lot the outlier screen compares with: count, median [mOhm], robust scale [mOhm]."""

    n: int
    median_mOhm: float | None
    scale_mOhm: float | None


def lot_stats(r0_mOhm: Iterable[float | None], policy: Policy) -> LotStats:
    """Median and robust scale (max of 1.4826 x MAD and the policy's ``min_scale_mOhm``) of a lot's measured R0.

    References
    ----------
    Rousseeuw & Croux (1993), JASA 88:1273, doi:10.2307/2291267.
    """
    x = np.array([v for v in r0_mOhm if v is not None and math.isfinite(v)], dtype=float)
    rule = policy.screens.resistance.lot_outlier
    if not x.size or rule is None:
        return LotStats(int(x.size), None, None)
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    return LotStats(int(x.size), med, max(MAD_TO_SD * mad, rule.min_scale_mOhm))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _graded(metric: str, value, rule) -> ScreenResult | None:
    name, label, unit, higher = _GRADED[metric]
    if rule is None:
        return None
    if value is None:
        if metric == "soh_pct":
            return ScreenResult(name, None, None, unit, False, False, GradeClass.REJECT,
                                "no full discharge to measure capacity (SOH unknown)")
        g = rule.if_missing
        if g in ("ignore", "A"):
            return ScreenResult(name, None, None, unit, None, False, GradeClass.A, f"{label} not measured (ignored)")
        return ScreenResult(name, None, None, unit, False, False, GradeClass(g),
                            f"{label} not measured: {'reject' if g == 'reject' else 'at best ' + g} "
                            "(policy if_missing)")
    passes = [g for g in ("A", "B", "C") if (value >= getattr(rule, g) if higher else value <= getattr(rule, g))]
    got = passes[0] if passes else "reject"
    if got == "A":
        return ScreenResult(name, value, rule.A, unit, True, False, GradeClass.A)
    missed = GRADES[GRADES.index(got) - 1]
    side, need = ("below", "needed") if higher else ("above", "allowed")
    limit = getattr(rule, missed)
    return ScreenResult(name, value, limit, unit, False, False, GradeClass(got),
                        f"{label} {_fmt(value)} {unit} {side} {_fmt(limit)} {unit} {need} for {missed}")


def _safety(name, value, limit, unit, label, above: bool) -> ScreenResult:
    if value is None:
        return ScreenResult(name, None, limit, unit, None, True, GradeClass.A, f"{label} not measured")
    if value > limit if above else value < limit:
        side = "above" if above else "below"
        return ScreenResult(name, value, limit, unit, False, True, GradeClass.REJECT,
                            f"{label} {_fmt(value)} {unit} {side} the {_fmt(limit)} {unit} safety screen")
    return ScreenResult(name, value, limit, unit, True, True, GradeClass.A)


def _limit(name, value, limit, unit, label, *, magnitude: bool = False) -> ScreenResult | None:
    if limit is None:
        return None
    if value is None:
        return ScreenResult(name, None, limit.value, unit, None, False, GradeClass.A, f"{label}: no intake row")
    if (abs(value) if magnitude else value) > limit.value:
        return ScreenResult(name, value, limit.value, unit, False, False, GradeClass(limit.grade),
                            f"{label} {_fmt(value)} {unit} beyond {_fmt(limit.value)} {unit}: at best {limit.grade}")
    return ScreenResult(name, value, limit.value, unit, True, False, GradeClass.A)


def screens(row: Mapping[str, Any], policy: Policy, lot: LotStats | None = None) -> tuple[ScreenResult, ...]:
    """Run the policy's screens, in order, on one module's features (:func:`features`).

    Parameters
    ----------
    row : the module's features
    policy : the grading policy
    lot : R0 statistics of the module's lot (:func:`lot_stats`); None grades the module alone (outlier screen not
        applicable)
    """
    s = policy.screens
    out: list[ScreenResult | None] = []
    flags, vi = row.get("visual_flags"), s.visual_inspection
    if flags is None:
        required = vi.required.value
        out.append(ScreenResult("visual_inspection", None, None, "", False if required else None, not required,
                                GradeClass.REJECT if required else GradeClass.A,
                                "not visually inspected: the policy requires an inspection record" if required
                                else "not visually inspected"))
    else:
        found = [f for f in flags if f in vi.damage_flags.value]
        if found:
            out.append(ScreenResult("visual_inspection", ", ".join(found), "no damage flag", "", False, True,
                                    GradeClass.REJECT, f"visual inspection found {', '.join(found)} (safety screen)"))
        else:
            out.append(ScreenResult("visual_inspection", ", ".join(flags) or "none", "no damage flag", "", True,
                                    True, GradeClass.A))
    life = policy.lifetime_data
    if not life.required:
        out.append(ScreenResult("lifetime_data", None, None, "", None, False, GradeClass.A,
                                f"IEC 63338 lifetime-data requirement switched off by the policy: {life.why}"))
    elif row.get("has_lifetime_data"):
        out.append(ScreenResult("lifetime_data", "recorded", "recorded", "", True, False, GradeClass.A))
    else:
        out.append(ScreenResult("lifetime_data", "none", "recorded", "", False, False, GradeClass.REJECT,
                                "no recorded lifetime data (no intake/BMS history): not reused (IEC 63338)"))
    hist = s.bms_history
    if hist is not None:
        out.append(_limit("bms_rest_deviation", row.get("intake_rest_deviation_mV"), hist.max_abs_rest_deviation_mV,
                          "mV", "intake rest deviation from the pack median", magnitude=True))
        out.append(_limit("bms_outlier_flags", row.get("intake_outlier_flags"), hist.max_outlier_flags, "",
                          "intake outlier flags"))
    out.append(_safety("ocv_window", row.get("min_group_voltage_V"), s.ocv_window.min_group_voltage_V.value, "V",
                       "lowest group voltage", above=False))
    soh = row.get("soh_pct")
    out.append(_graded("soh_pct", soh, s.capacity.soh_pct))
    top = s.capacity.max_soh_pct.value
    if soh is None:
        out.append(ScreenResult("capacity_plausible", None, top, "%", None, False, GradeClass.A, "SOH not measured"))
    elif soh > top:
        out.append(ScreenResult("capacity_plausible", soh, top, "%", False, False, GradeClass.REJECT,
                                f"SOH {_fmt(soh)} % above the {_fmt(top)} % plausibility limit (re-test)"))
    else:
        out.append(ScreenResult("capacity_plausible", soh, top, "%", True, False, GradeClass.A))
    r0 = row.get("r0_mOhm")
    out.append(_graded("r0_mOhm", r0, s.resistance.r0_mOhm))
    out.append(_outlier(r0, s.resistance.lot_outlier, lot))
    if s.self_discharge is not None:
        out.append(_safety("self_discharge", row.get("self_discharge_pct_per_day"),
                           s.self_discharge.max_pct_per_day.value, "%/day", "self-discharge", above=True))
    out.append(_graded("group_capacity_imbalance_pct", row.get("group_capacity_imbalance_pct"),
                       s.imbalance.group_capacity_imbalance_pct))
    out.append(_graded("group_end_voltage_spread_V", row.get("group_end_voltage_spread_V"),
                       s.imbalance.group_end_voltage_spread_V))
    out.append(_safety("temperature", row.get("max_temperature_C"), s.temperature.max_temperature_C.value, "°C",
                       "temperature", above=True))
    return tuple(r for r in out if r is not None)


def _outlier(r0, rule, lot: LotStats | None) -> ScreenResult | None:
    if rule is None:
        return None
    name = "resistance_outlier"
    if lot is None:
        return ScreenResult(name, None, rule.max_robust_z, "", None, False, GradeClass.A,
                            "graded alone: no lot to compare R0 with")
    if r0 is None or lot.median_mOhm is None or lot.n < rule.min_lot_size:
        return ScreenResult(name, None, rule.max_robust_z, "", None, False, GradeClass.A,
                            f"R0 not compared: {lot.n} measured modules in the lot, {rule.min_lot_size} needed"
                            if r0 is not None else "R0 not measured")
    z = (r0 - lot.median_mOhm) / lot.scale_mOhm
    if z > rule.max_robust_z:
        return ScreenResult(name, z, rule.max_robust_z, "", False, False, GradeClass(rule.grade),
                            f"R0 {_fmt(r0)} mOhm is {_fmt(z)} robust SD above the lot median "
                            f"{_fmt(lot.median_mOhm)} mOhm (limit {_fmt(rule.max_robust_z)}): at best {rule.grade}")
    return ScreenResult(name, z, rule.max_robust_z, "", True, False, GradeClass.A)


def _evidence(item: ModuleEvidence | Diagnosis) -> ModuleEvidence:
    return item if isinstance(item, ModuleEvidence) else ModuleEvidence(item)


def _grade_one(ev: ModuleEvidence, policy: Policy, lot: LotStats | None) -> Grade:
    d = ev.diagnosis
    if d.profile in BATTERY_PROFILES and d.profile != policy.profile:
        raise ConfigError(d.file, f"diagnosed with profile {d.profile!r}, but policy {policy.name} grades "
                                  f"{policy.profile!r}")
    row = features(ev)
    results = screens(row, policy, lot)
    worst = GradeClass.worst("A", *(r.allows for r in results))
    metrics = {k: v for k, v in row.items() if isinstance(v, float) or v is None and k != "visual_flags"}
    if lot is not None and (z := next(r.value for r in results if r.name == "resistance_outlier")) is not None:
        metrics["r0_robust_z"] = float(z)
    return Grade(grade=worst, reasons=tuple(r.reason for r in results if r.passed is False),
                 policy_name=policy.name, policy_version=policy.version, metrics=metrics, screens=results,
                 destination=policy.destination(worst), destinations=policy.destinations.as_dict())


def grade(diagnosis: ModuleEvidence | Diagnosis, policy: Policy) -> Grade:
    """Grade one module alone: the worst grade over the policy's screens; a failed safety screen rejects.

    Parameters
    ----------
    diagnosis : the module's diagnosis (made with the policy's battery profile), or its :class:`ModuleEvidence`
        (diagnosis with inspection and intake row); a bare diagnosis has no inspection and no lifetime data
    policy : from :func:`load_policy`

    Returns
    -------
    :class:`Grade` with every screen in order (the lot outlier screen not applicable), ``reasons`` naming the
    value, unit and threshold of each screen that lowered the grade (e.g. "SOH 67.2 % below 70 % needed for B"),
    empty for an A, and the policy's destination.

    Raises
    ------
    ConfigError : the diagnosis was made with another known battery profile than the policy's

    References
    ----------
    UL 1974 (2018): the repurposer defines the acceptance criteria; the thresholds are policy choices.
    """
    return _grade_one(_evidence(diagnosis), policy, None)


def grade_lot(evidence: Sequence[ModuleEvidence | Diagnosis], policy: Policy) -> list[Grade]:
    """Grade a lot of modules: each as :func:`grade`, and each R0 against the lot's (robust outlier screen).

    Parameters
    ----------
    evidence : the lot's modules (:class:`ModuleEvidence` or bare diagnoses), in any order
    policy : from :func:`load_policy`

    Returns
    -------
    One :class:`Grade` per module, in the order given.

    References
    ----------
    Rousseeuw & Croux (1993), JASA 88:1273, doi:10.2307/2291267.
    """
    items = [_evidence(e) for e in evidence]
    lot = lot_stats((_finite(e.diagnosis.r0_mOhm) for e in items), policy)
    return [_grade_one(e, policy, lot) for e in items]


def override(grade: Grade, new_grade: str, *, reason: str, user: str, role: str,
             at: datetime | None = None) -> Grade:
    """A person's override of a grade: a new :class:`Grade` in force, with the policy's grade kept.

    Parameters
    ----------
    grade : the grade to override (the policy's, or an earlier override)
    new_grade : ``A``, ``B``, ``C``, ``reject``, or ``recycling`` (= reject)
    reason : why (kept with the grade; required)
    user : who (required)
    role : in what capacity (e.g. ``"quality"``)
    at : when (timezone-aware); default now, UTC

    Returns
    -------
    The grade with ``grade`` and ``destination`` set to the new class, ``override`` holding the policy's grade,
    destination, who, role, why and when, and a reason saying so.

    Raises
    ------
    OverrideRefused : the module failed a safety screen and ``new_grade`` is not reject/recycling (a safety
        failure is never put back into a product), or ``reason`` or ``user`` is empty
    ConfigError : an unknown grade, or ``at`` without a timezone
    """
    target = "reject" if new_grade == "recycling" else str(new_grade)
    if target not in GRADES:
        raise ConfigError("override", f"unknown grade {new_grade!r}; expected one of {', '.join(GRADES)} or recycling")
    if not (user or "").strip():
        raise OverrideRefused("override", "say who overrides the grade (user is empty)")
    if not (reason or "").strip():
        raise OverrideRefused("override", "say why the grade is overridden (reason is empty)")
    if grade.failed_safety and target != "reject":
        failed = ", ".join(s.name for s in grade.screens if s.safety and s.passed is False)
        raise OverrideRefused("override", f"the module failed the safety screen(s) {failed}: it goes to recycling "
                                          f"and cannot be overridden to {target}")
    when = at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ConfigError("override", "give the override time with a timezone (UTC)")
    first = grade.override
    record = Override(original_grade=grade.policy_grade,
                      original_destination=first.original_destination if first else grade.destination,
                      grade=GradeClass(target), user=user.strip(), role=role.strip(), reason=reason.strip(),
                      at=when.astimezone(UTC))
    note = f"overridden to {target} by {record.user} ({record.role or 'no role given'}): {record.reason}"
    return dataclasses.replace(grade, grade=GradeClass(target), override=record, reasons=(*grade.reasons, note),
                               destination=grade.destinations.get(target, grade.destination if target ==
                                                                  grade.grade else None))


from releaf.grading_table import grade_table  # noqa: E402  (the vectorised twin of the screens above)

__all__ = ["SAFETY_SCREENS", "SCREEN_ORDER", "LotStats", "ModuleEvidence", "Policy", "features", "grade",
           "grade_lot", "grade_table", "grading_metrics", "load_policy", "lot_stats", "override",
           "policy_from_data", "screens", "waive_lifetime_data"]
