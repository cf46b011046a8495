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
    "intake_rest_deviation_mV": "intake: rest voltage minus the pack-median module's [mV]; null: no intake row",
    "intake_outlier_flags": "intake: number of metrics >= 3 robust SD on the bad side; null: no intake row",
    "lot": "lot (batch) id; R0 is compared with its lot's median and MAD; absent: graded alone",
}
"""The input columns of :func:`grade_table`, each with its unit; a missing column counts as not measured."""


def _num(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, dtype=pl.Float64)
    return pl.col(name).cast(pl.Float64).fill_nan(None)


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


def grade_table(frame: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Grade every row of a table of module features, vectorised (fleets of millions of modules).

    Parameters
    ----------
    frame : one row per module; columns (any missing column counts as not measured):
        ``soh_pct`` [%], ``r0_mOhm`` [mOhm], ``group_capacity_imbalance_pct`` [%], ``group_end_voltage_spread_V``
        [V], ``min_group_voltage_V`` [V], ``max_temperature_C`` [°C], ``self_discharge_pct_per_day`` [%/day],
        ``has_lifetime_data`` (bool), ``visual_flags`` (list of str, null when not inspected),
        ``intake_rest_deviation_mV`` [mV], ``intake_outlier_flags`` (count), and ``lot`` (any id: R0 is compared
        with its lot's median and 1.4826 x MAD; without it the outlier screen does not apply, as in
        :func:`releaf.grading.grade`). :func:`releaf.grading.features` makes one such row from a diagnosis.
    policy : from :func:`releaf.grading.load_policy`

    Returns
    -------
    ``frame`` with ``grade`` (A/B/C/reject), ``destination`` (the policy's), ``failed_safety`` (bool),
    ``first_failed_screen`` (the first screen in UL 1974 order that lowered the grade, null for a clean A) and
    ``failed_screens`` (comma-separated names in order, "" for a clean A) appended.

    References
    ----------
    UL 1974 (2018); IEC 63338:2021; Rousseeuw & Croux (1993), doi:10.2307/2291267.
    """
    s = policy.screens
    cols = frame.columns
    work = frame
    r0 = _num(frame, "r0_mOhm")
    rule = s.resistance.lot_outlier
    if rule is not None and "lot" in cols:
        med = r0.median().over("lot")
        work = work.with_columns(r0.alias("_r0"), med.alias("_med"), r0.count().over("lot").alias("_n"))
        mad = (pl.col("_r0") - pl.col("_med")).abs().median().over("lot")
        work = work.with_columns(pl.max_horizontal(1.4826 * mad, pl.lit(rule.min_scale_mOhm)).alias("_scale"))
        z = (pl.col("_r0") - pl.col("_med")) / pl.col("_scale")
        outlier = (pl.when(pl.col("_r0").is_null() | (pl.col("_n") < rule.min_lot_size)).then(pl.lit(None, pl.Int8))
                   .when(z > rule.max_robust_z).then(_rank(rule.grade)).otherwise(_rank("A")))
    else:
        outlier = None

    vi = s.visual_inspection
    if "visual_flags" in cols:
        flags = pl.col("visual_flags").cast(pl.List(pl.String))  # an all-null column arrives as List(Null)
        damaged = flags.list.eval(pl.element().is_in(list(vi.damage_flags.value))).list.any()
    else:
        flags, damaged = pl.lit(None, dtype=pl.List(pl.String)), pl.lit(None, dtype=pl.Boolean)
    visual = (pl.when(flags.is_null()).then(_rank("reject") if vi.required.value else pl.lit(None, pl.Int8))
              .when(damaged).then(_rank("reject")).otherwise(_rank("A")))
    visual_safety = flags.is_not_null() & damaged

    has_life = (pl.col("has_lifetime_data").cast(pl.Boolean).fill_null(False) if "has_lifetime_data" in cols
                else pl.lit(False))
    lifetime = (pl.when(has_life).then(_rank("A")).otherwise(_rank("reject")) if policy.lifetime_data.required
                else None)

    soh = _num(frame, "soh_pct")
    ocv = _num(frame, "min_group_voltage_V")
    temp = _num(frame, "max_temperature_C")
    sd = _num(frame, "self_discharge_pct_per_day")
    ocv_floor = s.ocv_window.min_group_voltage_V.value
    temp_max = s.temperature.max_temperature_C.value
    top = s.capacity.max_soh_pct.value
    hist = s.bms_history
    ranks: list[tuple[str, pl.Expr | None, pl.Expr | None]] = [
        ("visual_inspection", visual, visual_safety),
        ("lifetime_data", lifetime, None),
        ("bms_rest_deviation", _limit(_num(frame, "intake_rest_deviation_mV"), hist.max_abs_rest_deviation_mV,
                                      magnitude=True) if hist else None, None),
        ("bms_outlier_flags", _limit(_num(frame, "intake_outlier_flags"), hist.max_outlier_flags)
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
        ("group_capacity_imbalance", _graded(_num(frame, "group_capacity_imbalance_pct"),
                                             s.imbalance.group_capacity_imbalance_pct, False), None),
        ("group_end_voltage_spread", _graded(_num(frame, "group_end_voltage_spread_V"),
                                             s.imbalance.group_end_voltage_spread_V, False), None),
        ("temperature", _safety(temp, temp > temp_max), temp > temp_max),
    ]
    ranks = [(n, r, f) for n, r, f in ranks if r is not None]
    failed = [pl.when(r > 0).then(pl.lit(n)) for n, r, _ in ranks]
    safety = [f.fill_null(False) for _, _, f in ranks if f is not None]
    grade_of = {k: g for g, k in _RANK.items()}
    grade = pl.max_horizontal([r for _, r, _ in ranks]).fill_null(0)
    out = work.with_columns(
        grade.replace_strict(grade_of, return_dtype=pl.String).alias("grade"),
        grade.replace_strict({k: policy.destination(g) for k, g in grade_of.items()},
                             return_dtype=pl.String).alias("destination"),
        pl.any_horizontal(safety).fill_null(False).alias("failed_safety"),
        pl.coalesce(failed).alias("first_failed_screen"),
        # a comma-separated string, not a list: building list columns costs ~20x more at fleet scale
        pl.concat_str(failed, separator=",", ignore_nulls=True).alias("failed_screens"),
    )
    return out.drop([c for c in ("_r0", "_med", "_n", "_scale") if c in out.columns])


__all__ = ["INPUT_COLUMNS", "grade_table"]
