"""The grading screens as polars expressions: one call grades a fleet-sized table of module features.

:func:`grade_table` applies the same policy, screens, order and rules as :func:`releaf.grading.grade_lot` (a test
checks they agree module by module); it returns the grade, destination, safety flag and the failed screens, not
the reason sentences (build those for the few modules a person looks at with :func:`releaf.grading.grade`).
"""

from __future__ import annotations

import polars as pl

from releaf.policy import Policy
from releaf.schema.records import GRADES

_RANK = {g: k for k, g in enumerate(GRADES)}

INPUT_COLUMNS = {
    "soh_pct": "state of health [%] (measured capacity / nominal); null: no full discharge (reject)",
    "r0_mOhm": "module ohmic resistance at ~50 % SOC [mOhm]",
    "group_capacity_imbalance_pct": "(max - min) / max of the series groups' capacities [%]",
    "group_end_voltage_spread_V": "max - min of the groups' end-of-discharge voltages [V]",
    "min_group_voltage_V": "lowest series-group voltage seen [V] (OCV window / over-discharge)",
    "max_temperature_C": "hottest reading during the test [°C]",
    "self_discharge_pct_per_day": "equivalent self-discharge [% of capacity per day]",
    "has_lifetime_data": "recorded BMS/intake history exists (bool; IEC 63338)",
    "visual_flags": "list of inspection flags (e.g. ['none'], ['swelling']); null: not inspected",
    "visual_damage": "instead of visual_flags: a damage flag of the policy was set (bool); null: not inspected",
    "intake_rest_deviation_mV": "intake: rest voltage minus the pack-median module's [mV]; null: no intake row",
    "intake_outlier_flags": "intake: number of metrics >= 3 robust SD on the bad side; null: no intake row",
    "lot": "lot (batch) id; R0 is compared with its lot's median and MAD; absent: graded alone",
}
"""The input columns of :func:`grade_table`, each with its unit; a missing column counts as not measured."""


_NUMERIC = ("soh_pct", "r0_mOhm", "group_capacity_imbalance_pct", "group_end_voltage_spread_V",
            "min_group_voltage_V", "max_temperature_C", "self_discharge_pct_per_day", "intake_rest_deviation_mV",
            "intake_outlier_flags")
_TMP = "__releaf_gt_"  # prefix of the working columns (dropped before returning)


def _num(cols: list[str], name: str) -> pl.Expr:
    # the input cast to float64 (NaN -> null) once, in the first with_columns, then read by name: float64 before
    # comparing, since polars would cast a threshold literal to a float32 column's type (float32(0.1) <= 0.1 is
    # not what grading.grade decides on the same value)
    return pl.col(_TMP + name) if name in cols else pl.lit(None, dtype=pl.Float64)


def _rank(grade: str) -> pl.Expr:
    return pl.lit(_RANK[grade], dtype=pl.Int8)


def _graded(value: pl.Expr, rule, higher: bool, *, soh: bool = False) -> pl.Expr | None:
    if rule is None:
        return None
    def ok(g):
        return value >= getattr(rule, g) if higher else value <= getattr(rule, g)

    graded = (pl.when(ok("A")).then(_rank("A")).when(ok("B")).then(_rank("B")).when(ok("C")).then(_rank("C"))
              .otherwise(_rank("reject")))
    missing = ("reject" if soh else rule.if_missing)
    missing_rank = pl.lit(None, dtype=pl.Int8) if missing in ("ignore", "A") else _rank(missing)
    return pl.when(value.is_null()).then(missing_rank).otherwise(graded)


def _limit(value: pl.Expr, limit, *, magnitude: bool = False) -> pl.Expr | None:
    if limit is None:
        return None
    v = value.abs() if magnitude else value
    return pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Int8)).when(v > limit.value).then(
        _rank(limit.grade)).otherwise(_rank("A"))


def _safety(value: pl.Expr, fails: pl.Expr) -> pl.Expr:
    return pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Int8)).when(fails).then(_rank("reject")).otherwise(
        _rank("A"))


def grade_table(frame: pl.DataFrame | pl.LazyFrame, policy: Policy, *,
                screens_out: bool = True) -> pl.DataFrame | pl.LazyFrame:
    """Grade every row of a table of module features, vectorised (fleets of millions of modules).

    Parameters
    ----------
    frame : one row per module (a LazyFrame is graded lazily: the result is a LazyFrame to collect, e.g. with the
        streaming engine); columns (any missing column counts as not measured):
        ``soh_pct`` [%], ``r0_mOhm`` [mOhm], ``group_capacity_imbalance_pct`` [%], ``group_end_voltage_spread_V``
        [V], ``min_group_voltage_V`` [V], ``max_temperature_C`` [°C], ``self_discharge_pct_per_day`` [%/day],
        ``has_lifetime_data`` (bool), ``visual_flags`` (list of str, null when not inspected) or, instead of it,
        ``visual_damage`` (bool: a flag the policy counts as damage was set, null when not inspected; a fleet
        table's cheap form of the same screen), ``intake_rest_deviation_mV`` [mV], ``intake_outlier_flags``
        (count), and ``lot`` (any id: R0 is compared with its lot's median and 1.4826 x MAD; without it the
        outlier screen does not apply, as in :func:`releaf.grading.grade`). :func:`releaf.grading.features`
        makes one such row from a diagnosis.
    policy : from :func:`releaf.grading.load_policy`
    screens_out : also return ``first_failed_screen`` and ``failed_screens``; False skips building them (at fleet
        scale the two string columns cost more than the grading itself)

    Returns
    -------
    ``frame`` with ``grade`` (A/B/C/reject), ``destination`` (the policy's), ``failed_safety`` (bool) and, with
    ``screens_out``, ``first_failed_screen`` (the first screen in UL 1974 order that lowered the grade, null for a
    clean A) and ``failed_screens`` (comma-separated names in order, "" for a clean A) appended.

    Raises
    ------
    ValueError : both ``visual_flags`` and ``visual_damage`` given (one inspection, one column)

    References
    ----------
    UL 1974 (2018); IEC 63338:2021; Rousseeuw & Croux (1993), doi:10.2307/2291267.
    """
    s = policy.screens
    lazy = isinstance(frame, pl.LazyFrame)
    cols = frame.collect_schema().names()
    if "visual_flags" in cols and "visual_damage" in cols:
        raise ValueError("grade_table: give visual_flags or visual_damage, not both")
    # every numeric input cast once, into working columns the screens read
    work = frame.lazy().with_columns(pl.col(c).cast(pl.Float64).fill_nan(None).alias(_TMP + c)
                                     for c in _NUMERIC if c in cols)
    tmp = [_TMP + c for c in _NUMERIC if c in cols]
    r0 = _num(cols, "r0_mOhm")
    rule = s.resistance.lot_outlier
    if rule is not None and "lot" in cols:
        med = r0.median().over("lot")
        work = work.with_columns(med.alias(_TMP + "med"), r0.count().over("lot").alias(_TMP + "n"))
        mad = (r0 - pl.col(_TMP + "med")).abs().median().over("lot")
        work = work.with_columns(pl.max_horizontal(1.4826 * mad, pl.lit(rule.min_scale_mOhm)).alias(_TMP + "scale"))
        tmp += [_TMP + "med", _TMP + "n", _TMP + "scale"]
        z = (r0 - pl.col(_TMP + "med")) / pl.col(_TMP + "scale")
        outlier = (pl.when(r0.is_null() | (pl.col(_TMP + "n") < rule.min_lot_size)).then(pl.lit(None, pl.Int8))
                   .when(z > rule.max_robust_z).then(_rank(rule.grade)).otherwise(_rank("A")))
    else:
        outlier = None

    vi = s.visual_inspection
    if "visual_flags" in cols:
        flags = pl.col("visual_flags").cast(pl.List(pl.String))  # an all-null column arrives as List(Null)
        inspected = flags.is_not_null()
        damaged = flags.list.eval(pl.element().is_in(list(vi.damage_flags.value))).list.any()
    elif "visual_damage" in cols:
        damaged = pl.col("visual_damage").cast(pl.Boolean)
        inspected = damaged.is_not_null()
    else:
        inspected, damaged = pl.lit(False), pl.lit(None, dtype=pl.Boolean)
    visual = (pl.when(~inspected).then(_rank("reject") if vi.required.value else pl.lit(None, pl.Int8))
              .when(damaged).then(_rank("reject")).otherwise(_rank("A")))
    visual_safety = inspected & damaged

    has_life = (pl.col("has_lifetime_data").cast(pl.Boolean).fill_null(False) if "has_lifetime_data" in cols
                else pl.lit(False))
    lifetime = (pl.when(has_life).then(_rank("A")).otherwise(_rank("reject")) if policy.lifetime_data.required
                else None)

    soh = _num(cols, "soh_pct")
    ocv = _num(cols, "min_group_voltage_V")
    temp = _num(cols, "max_temperature_C")
    sd = _num(cols, "self_discharge_pct_per_day")
    ocv_floor = s.ocv_window.min_group_voltage_V.value
    temp_max = s.temperature.max_temperature_C.value
    top = s.capacity.max_soh_pct.value
    hist = s.bms_history
    ranks: list[tuple[str, pl.Expr | None, pl.Expr | None]] = [
        ("visual_inspection", visual, visual_safety),
        ("lifetime_data", lifetime, None),
        ("bms_rest_deviation", _limit(_num(cols, "intake_rest_deviation_mV"), hist.max_abs_rest_deviation_mV,
                                      magnitude=True) if hist else None, None),
        ("bms_outlier_flags", _limit(_num(cols, "intake_outlier_flags"), hist.max_outlier_flags)
         if hist else None, None),
        ("ocv_window", _safety(ocv, ocv < ocv_floor), ocv < ocv_floor),
        ("capacity", _graded(soh, s.capacity.soh_pct, True, soh=True), None),
        ("capacity_plausible", _safety(soh, soh > top), None),
        ("resistance", _graded(r0, s.resistance.r0_mOhm, False), None),
        ("resistance_outlier", outlier, None),
    ]
    if s.self_discharge is not None:
        lim = s.self_discharge.max_pct_per_day.value
        ranks.append(("self_discharge", _safety(sd, sd > lim), sd > lim))
    ranks += [
        ("group_capacity_imbalance", _graded(_num(cols, "group_capacity_imbalance_pct"),
                                             s.imbalance.group_capacity_imbalance_pct, False), None),
        ("group_end_voltage_spread", _graded(_num(cols, "group_end_voltage_spread_V"),
                                             s.imbalance.group_end_voltage_spread_V, False), None),
        ("temperature", _safety(temp, temp > temp_max), temp > temp_max),
    ]
    ranks = [(n, r, f) for n, r, f in ranks if r is not None]
    safety = [f.fill_null(False) for _, _, f in ranks if f is not None]
    if screens_out:
        # each screen's rank once, as a column: read by the grade and by the screen names
        work = work.with_columns(r.alias(_TMP + "rank_" + n) for n, r, _ in ranks)
        tmp += [_TMP + "rank_" + n for n, _, _ in ranks]
        ranks = [(n, pl.col(_TMP + "rank_" + n), f) for n, _, f in ranks]
    code = pl.col(_TMP + "grade")

    def name_of(names: dict[str, str]) -> pl.Expr:
        # a when/then chain, not replace_strict: the streaming engine runs it morsel by morsel (replace_strict held
        # ~60 bytes a row at fleet scale: 2.9 GB for 31 M modules)
        expr = pl.when(code == _RANK[GRADES[0]]).then(pl.lit(names[GRADES[0]], dtype=pl.String))
        for g in GRADES[1:-1]:
            expr = expr.when(code == _RANK[g]).then(pl.lit(names[g], dtype=pl.String))
        return expr.otherwise(pl.lit(names[GRADES[-1]], dtype=pl.String))

    work = work.with_columns(pl.max_horizontal([r for _, r, _ in ranks]).fill_null(0).alias(_TMP + "grade"))
    tmp.append(_TMP + "grade")
    outputs = [
        name_of({g: g for g in GRADES}).alias("grade"),
        name_of({g: policy.destination(g) for g in GRADES}).alias("destination"),
        pl.any_horizontal(safety).fill_null(False).alias("failed_safety"),
    ]
    if screens_out:
        failed = [pl.when(r > 0).then(pl.lit(n)) for n, r, _ in ranks]
        outputs += [
            pl.coalesce(failed).alias("first_failed_screen"),
            # a comma-separated string, not a list: building list columns costs ~20x more at fleet scale
            pl.concat_str(failed, separator=",", ignore_nulls=True).alias("failed_screens"),
        ]
    out = work.with_columns(outputs).drop(tmp)
    return out if lazy else out.collect()


__all__ = ["INPUT_COLUMNS", "grade_table"]
