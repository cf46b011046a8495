"""One test file → one :class:`releaf.schema.records.Diagnosis`: the chain of the topical diagnostics."""

from __future__ import annotations

import numpy as np

from releaf.diagnostics import capacity, groups, hppc, resistance
from releaf.errors import InputFileError
from releaf.parameters import BatteryProfile
from releaf.schema import TEMPERATURE_PREFIX, TimeSeries
from releaf.schema.records import Diagnosis, Discharge, FastSohEstimate

# Vendor capacity counters are only a cross-check; beyond this relative difference releaf says so.
VENDOR_TOLERANCE = 0.01
# A current change of at least C/10 counts as a step for the resistance.
MIN_STEP_C_RATE = 0.1
# A capacity above this share of the profile's nominal capacity is not a measurement but a unit mix-up (a time
# axis in ms, a current in mA read as A, two discharges joined): refused, with the likely causes.
MAX_PLAUSIBLE_SOH_PCT = 130.0
# Group voltages outside [0, PLAUSIBLE_GROUP_VOLTAGE_FACTOR x group_v_max_V] are not one series group's voltage
# (a column in mV, a reversed tap, a wrong channel): refused, naming the column.
PLAUSIBLE_GROUP_VOLTAGE_FACTOR = 1.25
# The conditions of a capacity are flagged when they differ from the profile's window by more than this [V].
WINDOW_TOLERANCE_V = 0.03


def infer_series_groups(ts: TimeSeries, profile: BatteryProfile) -> int:
    """Series groups in the unit under test: the group voltage taps if present, else from the voltage level."""
    if ts.group_columns:
        return len(ts.group_columns)
    v = ts.data["voltage_V"].median()
    return max(1, round(float(v) / (profile.nominal_voltage_V / profile.series_groups)))


def choose_capacity_discharge(discharges: list[Discharge]) -> Discharge | None:
    """The full discharge that measures capacity: the lowest C-rate, the latest among equal rates (±5 %)."""
    full = [d for d in discharges if d.is_full and np.isfinite(d.c_rate)]
    if not full:
        return None
    slowest = min(d.c_rate for d in full)
    return [d for d in full if d.c_rate <= slowest * 1.05][-1]


def _soc_at(k: int, q: np.ndarray, discharges: list[Discharge], capacity_Ah: float | None) -> float | None:
    for d in discharges:
        if d.start_index <= k <= d.end_index + 1 and d.from_full:
            cap = d.capacity_Ah if d.reached_cutoff else capacity_Ah
            if cap:
                return float(100.0 * (1.0 - (q[d.start_index] - q[k]) / cap))
    return None


def _max_temperature(ts: TimeSeries) -> float | None:
    cols = [c for c in ts.data.columns if c == "temperature_C" or c.startswith(TEMPERATURE_PREFIX)]
    vals = [m for c in cols if (m := ts.data[c].max()) is not None]
    return float(max(vals)) if vals else None


def _hppc_rows(ts: TimeSeries, capacity_Ah: float | None, n_steps: int) -> tuple[dict, ...]:
    """Resistance per HPPC pulse when the test has pulses at two or more SOC levels (else nothing)."""
    if n_steps < 4:
        return ()
    return tuple(hppc.hppc_records(ts, capacity_Ah=capacity_Ah, min_levels=2))


def _ecm(ts: TimeSeries, capacity_Ah: float | None, profile: BatteryProfile, warnings: list[str]) -> dict | None:
    from releaf.errors import InputFileError
    from releaf.models.ecm_fit import fit_ecm_2rc

    try:
        params, report = fit_ecm_2rc(ts, capacity_Ah=capacity_Ah, ocv_shape=profile.ocv_table)
    except InputFileError as err:
        warnings.append(f"no equivalent-circuit fit: {err.message}")
        return None
    rmse = report.levels["rmse_mV"]
    return {"parameters": params.to_dict(), "rmse_mV_max": float(rmse.max()), "rmse_mV_median": float(rmse.median()),
            "levels": [_finite_values(r) for r in report.levels.drop("window", strict=False).to_dicts()]}


def _finite_values(row: dict) -> dict:
    """A table row with NaN/inf floats as None (a level with a flat voltage has no R squared)."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def fast_test_window(ts: TimeSeries, nominal_capacity_Ah: float) -> TimeSeries | None:
    """The 60 s window of a fast pulse test (``releaf.protocols.fast_pulse``) inside a test, if it has one.

    The window starts 5 s (the protocol's first rest) before the first pulse (current of at least 0.2C) and must be
    sampled every 0.5 s or faster; whether its pulses match the protocol is for the estimator to judge.
    """
    from releaf.protocols import fast_pulse as fast_protocol

    d = ts.data
    i = d["current_A"].to_numpy()
    on = np.abs(i) > 0.2 * nominal_capacity_Ah
    if not on.any():
        return None
    t = d["test_time_s"].to_numpy()
    first = int(np.argmax(on))
    edge = max(first - 1, 0)  # the last rest sample: the pulse starts right after it
    t0 = float(t[edge]) - fast_protocol.FAST_PULSE_STEPS[0].duration_s
    a, b = np.searchsorted(t, [t0 - 1e-6, t0 + fast_protocol.MAX_WINDOW_S + 1e-6])
    starts = np.count_nonzero(np.diff(on[a:b].astype(np.int8)) == 1) + int(on[a])
    # cheap pre-checks before the estimator: the protocol's number of pulses, fast enough sampling
    if b - a < 10 or starts != len(fast_protocol.pulse_edges_s()) or float(np.median(np.diff(t[a:b]))) > 0.5:
        return None
    return ts.with_data(d.slice(int(a), int(b - a)))


def _fast_soh(ts: TimeSeries, profile: BatteryProfile, warnings: list[str]) -> FastSohEstimate | None:
    """The fast SOH estimate of the test's pulse window (with the profile's SOH model), or None when it has no
    window, the profile no model, or the estimator cannot read the window (then a warning says why)."""
    from releaf.diagnostics import soh as soh_mod
    from releaf.errors import InputFileError

    window = fast_test_window(ts, profile.nominal_capacity_Ah)
    if window is None:
        return None
    if profile.soh_model is None:
        warnings.append(f"no fast SOH estimate: profile {profile.name} has no fast-SOH model")
        return None
    try:
        est = soh_mod.estimate_soh(window, nominal_capacity_Ah=profile.nominal_capacity_Ah, model=profile.soh_model)
    except InputFileError as err:
        warnings.append(f"no fast SOH estimate: {err.message}")
        return None
    def finite(x):  # a refused (out-of-distribution) estimate is NaN in SohEstimate, null in a diagnosis
        return float(x) if np.isfinite(x) else None

    return FastSohEstimate(soh_pct=finite(est.soh_pct), soh_interval_pct=tuple(finite(x) for x in est.soh_interval_pct),
                           coverage_nominal=est.coverage_nominal, ood=est.ood, ood_reasons=tuple(est.ood_reasons),
                           model=f"{est.model_name} {est.model_version}")


def diagnose(ts: TimeSeries, profile: BatteryProfile, *, fit_ecm: bool = False) -> Diagnosis:
    """Capacity, energy, resistance, per-group state and SOH of one test.

    Parameters
    ----------
    ts : canonical, validated time series (see ``releaf.schema``)
    profile : battery profile of the unit type (nominal capacity, voltage window and the cell's OCV table, which
        says where the top of charge is; ``releaf.parameters``)
    fit_ecm : also fit a two-RC equivalent circuit per HPPC level (about 0.3 s per HPPC file; off by default so
        that a pack is diagnosed at parsing speed)

    Returns
    -------
    :class:`releaf.schema.records.Diagnosis`; values that the test cannot give are None, with a reason in ``warnings``.

    Notes
    -----
    * Capacity and energy are integrals of the measured current and power over the full discharge (top of charge
      to cut-off) at the lowest C-rate in the file; vendor counters are only compared.
    * ``r0_mOhm`` is the ohmic resistance of the discharge step nearest 50 % SOC (see
      :func:`releaf.diagnostics.resistance.pick_r0`); ``r0_soc_pct`` says where it was measured.
    * A discharge counts as starting from full when its group voltage at the start reaches the OCV of the
      profile's cell at ``capacity.TOP_OF_CHARGE_SOC_PCT``; ``ocv_table`` of the result names that table. With
      ``fit_ecm`` the same table gives the OCV shape between the test's rest points.
    * SOH = capacity / profile nominal capacity. A string of modules in series has one module's capacity, so a
      file with a multiple of the profile's series groups (e.g. 6 groups = 3 Leaf modules) is still comparable.
    """
    d = ts.data
    if d.height < 2:  # no time span: nothing to integrate or step across
        from releaf.errors import InputFileError

        raise InputFileError(ts.meta.path, "only one data row: a test needs at least two samples to diagnose")
    warnings: list[str] = []
    t = d["test_time_s"].to_numpy()
    v = d["voltage_V"].to_numpy()
    i = d["current_A"].to_numpy()
    step = d["step_index"].to_numpy() if "step_index" in d.columns and d["step_index"].null_count() == 0 else None
    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    vendor = d["vendor_capacity_Ah"].to_numpy() if "vendor_capacity_Ah" in d.columns else None
    n_groups = infer_series_groups(ts, profile)
    check_group_voltages(ts, profile)
    group_v = [d[c].to_numpy() for c in ts.group_columns]
    if not group_v and n_groups == 1:
        group_v = [v]
    limit_v = np.min(np.vstack(group_v), axis=0) if group_v else v / n_groups
    rest_A = capacity.rest_current_A(i)  # rest from the file's own current levels, as in the capacity measurement
    temp = d["temperature_C"].to_numpy() if "temperature_C" in d.columns else None
    q = capacity.cumulative_Ah(t, i, step, step_time)

    discharges = capacity.full_discharges(
        t, v, i, step_index=step, step_time_s=step_time, limit_voltage_V=limit_v, mean_group_voltage_V=v / n_groups,
        group_voltages_V=tuple(group_v) if ts.group_columns else (), temperature_C=temp,
        cutoff_voltage_V=profile.group_v_min_V, charge_floor_V=profile.full_charge_floor_V,
        module_cutoff_V=profile.module_cutoff_ceiling_V,
        nominal_capacity_Ah=profile.nominal_capacity_Ah, vendor_capacity_Ah=vendor, min_current_A=rest_A,
    )
    for dis in discharges:
        if dis.conditions is not None and dis.conditions.charge_end == "recharged_off_log":
            warnings.append(f"the discharge at {dis.start_s:.0f} s starts at the top of charge with no charge in the "
                            "log before it (recharged outside the log?): measured on its own, not added to the one "
                            "before")
    chosen = choose_capacity_discharge(discharges)
    share_pct = None if chosen is None else chosen.capacity_Ah / profile.nominal_capacity_Ah * 100
    if share_pct is not None and share_pct > MAX_PLAUSIBLE_SOH_PCT:
        warnings.append(
            f"capacity {chosen.capacity_Ah:.4g} Ah is {share_pct:.0f} % of the profile's nominal "
            f"{profile.nominal_capacity_Ah:g} Ah, above the {MAX_PLAUSIBLE_SOH_PCT:g} % ceiling: not a measurement "
            "(a time axis in ms, a current in mA read as A, or the wrong profile?); capacity not reported")
        chosen = None
    elif chosen is None:
        largest_Ah = float(np.max(np.maximum.accumulate(q) - q))  # the most charge removed from any earlier point
        warnings.append(_why_no_capacity(discharges, profile, largest_Ah))
    if chosen is not None:
        warnings += _window_flags(chosen, profile)
    for dis in discharges:
        if dis.vendor_capacity_Ah and abs(dis.vendor_capacity_Ah / dis.capacity_Ah - 1) > VENDOR_TOLERANCE:
            warnings.append(
                f"cycler's capacity counter says {dis.vendor_capacity_Ah:.3f} Ah for the discharge at "
                f"{dis.start_s:.0f} s; releaf integrated {dis.capacity_Ah:.3f} Ah"
            )

    cap = chosen.capacity_Ah if chosen else None
    steps = resistance.current_steps(i, min_step_A=MIN_STEP_C_RATE * profile.nominal_capacity_Ah, step_index=step)
    taps = tuple(group_v) if ts.group_columns else ()
    rs = tuple(resistance.step_resistances(t, v, i, steps, group_voltages_V=taps,
                                           soc_pct=[_soc_at(s.before, q, discharges, cap) for s in steps]))
    r0_step = resistance.pick_r0(rs, rest_A=rest_A)
    if r0_step is None:
        warnings.append("no current step sampled within 1 s: ohmic resistance not measurable")
    elif r0_step.r0_mOhm is not None and r0_step.r0_mOhm < 0:
        warnings.append(f"negative resistance ({r0_step.r0_mOhm:.3g} mOhm): the voltage rises under discharge, so "
                        "the current's sign looks inverted (releaf needs positive = charge; check the reader or "
                        "--mapping); resistance not reported")
        r0_step = None

    # the groups are read on the capacity discharge, else on the last that reached a voltage limit, else on the
    # last discharge of all (a partial one still shows which group sits lowest at its end)
    ref = chosen or next((x for x in reversed(discharges) if x.reached_cutoff), None) or (
        discharges[-1] if discharges else None)
    span = slice(ref.start_index, ref.end_index + 1) if ref else None
    removed = q[ref.start_index] - q[span] if ref else None
    group_r = (r0_step.group_r0_mOhm, r0_step.group_r_1s_mOhm, r0_step.group_r_10s_mOhm) if r0_step else ((), (), ())
    if group_v and not ts.group_columns and r0_step:
        group_r = ((r0_step.r0_mOhm,), (r0_step.r_1s_mOhm,), (r0_step.r_10s_mOhm,))
    group_records, weakest = groups.diagnose_groups(
        group_v, removed, string_capacity_Ah=cap, discharge=span,
        group_r0_mOhm=group_r[0], group_r_1s_mOhm=group_r[1], group_r_10s_mOhm=group_r[2],
    )
    if not group_v:
        warnings.append(f"no per-group voltages in the file ({n_groups} series groups assumed from the voltage)")

    soh = None
    units = n_groups // profile.series_groups if n_groups % profile.series_groups == 0 else None
    if units is not None and units > 1:
        warnings.append(f"{n_groups} series groups: a string of {units} {profile.name} units, not one; capacity is "
                        f"the string's (one unit's), energy_Wh the whole string's; grade its units one by one")
    if cap is not None:
        if n_groups % profile.series_groups == 0:
            soh = 100.0 * cap / profile.nominal_capacity_Ah
        else:
            warnings.append(
                f"{n_groups} series group(s) in the file is not a whole number of {profile.name} units "
                f"({profile.series_groups} groups each): SOH not computed; is the battery profile right?"
            )
    energy = chosen.energy_Wh if chosen else None
    estimate = _fast_soh(ts, profile, warnings) if profile.series_groups == n_groups else None
    soh_method = "capacity" if soh is not None else None
    if soh is None and estimate is not None and not estimate.ood:
        soh, soh_method = estimate.soh_pct, "fast-pulse"
    if estimate is not None and estimate.ood:
        warnings.append("fast SOH estimate refused: " + "; ".join(estimate.ood_reasons))
    hppc_rows = _hppc_rows(ts, cap, len(steps))
    ecm = _ecm(ts, cap, profile, warnings) if fit_ecm and hppc_rows else None
    if fit_ecm and not hppc_rows:
        warnings.append("no equivalent-circuit fit: the test has no HPPC pulses at two or more SOC levels")
    gv = np.vstack(group_v) if group_v else None
    return Diagnosis(
        file=ts.meta.path,
        format=ts.meta.format,
        sha256=ts.meta.sha256,
        profile=profile.name,
        series_groups=n_groups,
        capacity_Ah=cap,
        energy_Wh=energy,
        soh_pct=soh,
        r0_mOhm=r0_step.r0_mOhm if r0_step else None,
        r0_soc_pct=r0_step.soc_pct if r0_step else None,
        groups=group_records,
        weakest_group=weakest,
        warnings=tuple(warnings),
        discharges=tuple(discharges),
        resistances=rs,
        max_temperature_C=_max_temperature(ts),
        min_group_voltage_V=float(gv.min()) if gv is not None else None,
        max_group_voltage_V=float(gv.max()) if gv is not None else None,
        duration_s=float(t[-1] - t[0]),
        rows=len(t),
        ocv_table=profile.ocv_table.name,
        hppc=hppc_rows,
        ecm=ecm,
        soh_method=soh_method,
        soh_interval_pct=tuple(estimate.soh_interval_pct) if soh_method == "fast-pulse" else None,
        ood=estimate.ood if estimate is not None else None,
        soh_estimate=estimate,
        capacity_conditions=chosen.conditions if chosen else None,
        units_in_series=units,
    )


def _why_no_capacity(discharges: list[Discharge], profile: BatteryProfile, largest_Ah: float = 0.0) -> str:
    """Why no discharge of the test measures capacity, in the protocol's terms."""
    if not discharges:
        if largest_Ah <= 0:
            return "no discharge in the file: capacity not measurable"
        return (f"no discharge removed 5 % of the profile's nominal {profile.nominal_capacity_Ah:g} Ah (the largest "
                f"removed {largest_Ah:.4g} Ah): capacity not measured; is the profile right for this unit's size?")
    last = discharges[-1]
    c = last.conditions
    parts = []
    if not last.from_full:
        floor = profile.full_charge_floor_V
        if c is not None and c.charge_end in ("not_logged", "recharged_off_log"):
            parts.append(f"no charge before it in the log, and it does not start at rest at the top of charge "
                         f"(>= {floor:.2f} V per group; it starts at {c.start_voltage_per_group_V:.3f} V)")
        else:
            top = c.charge_top_V if c is not None else float("nan")
            parts.append(f"the charge before it stopped at {top:.3f} V per group, below the "
                         f"{floor:.2f} V a full charge reaches" if c is not None else "it did not start full")
    if not last.reached_cutoff:
        end = f" at {c.end_voltage_per_group_V:.3f} V per group" if c is not None else ""
        parts.append(f"it ended{end} ({c.end_reason.replace('_', ' ') if c else 'early'}) before the voltage "
                     f"limit ({profile.group_v_min_V:g} V per group, or a module cut-off up to "
                     f"{profile.module_cutoff_ceiling_V:g} V per group)")
    return "no full discharge: " + " and ".join(parts) + "; capacity not measured"


def _window_flags(chosen: Discharge, profile: BatteryProfile) -> list[str]:
    """Warnings where the capacity was measured in another window than the profile's reference window."""
    c = chosen.conditions
    if c is None:
        return []
    out = []
    top = c.charge_top_V
    if c.charge_end in ("cv_taper", "cc_limit") and top < profile.group_v_max_V - WINDOW_TOLERANCE_V:
        out.append(f"capacity measured from a charge to {top:.3f} V per group, below the profile's "
                   f"{profile.group_v_max_V:g} V: it is the capacity of this narrower window")
    end = min(c.end_group_voltages_V) if c.end_group_voltages_V else c.end_voltage_per_group_V
    if end > profile.group_v_min_V + WINDOW_TOLERANCE_V:
        out.append(f"discharge ended at {end:.3f} V per group ({c.end_reason.replace('_', ' ')}), above the "
                   f"profile's {profile.group_v_min_V:g} V: it is the capacity of this narrower window")
    return out


def check_group_voltages(ts: TimeSeries, profile: BatteryProfile) -> None:
    """Refuse group voltages that cannot be one series group's (a column in mV, a reversed tap, 1e300).

    Raises
    ------
    InputFileError : a group voltage below 0 V or above ``PLAUSIBLE_GROUP_VOLTAGE_FACTOR`` x the profile's
        ``group_v_max_V``, naming the column
    """
    hi = PLAUSIBLE_GROUP_VOLTAGE_FACTOR * profile.group_v_max_V
    for col in ts.group_columns:
        x = ts.data[col]
        lo_v, hi_v = x.min(), x.max()
        if lo_v is None or hi_v is None:
            continue
        if hi_v > hi or lo_v < 0:
            bad = hi_v if hi_v > hi else lo_v
            raise InputFileError(ts.meta.path, f"a series-group voltage of {bad:.6g} V, outside 0-{hi:.3g} V for one "
                                 f"group of {profile.name} (a column in mV, a reversed tap, or the wrong profile?)",
                                 column=col)
