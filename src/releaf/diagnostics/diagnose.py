"""One test file → one :class:`releaf.schema.records.Diagnosis`: the chain of the topical diagnostics."""

from __future__ import annotations

import numpy as np

from releaf.diagnostics import capacity, groups, hppc, resistance
from releaf.parameters import BatteryProfile
from releaf.schema import TEMPERATURE_PREFIX, TimeSeries
from releaf.schema.records import Diagnosis, Discharge

# Vendor capacity counters are only a cross-check; beyond this relative difference releaf says so.
VENDOR_TOLERANCE = 0.01
# A current change of at least C/10 counts as a step for the resistance.
MIN_STEP_C_RATE = 0.1


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
            "levels": report.levels.drop("window", strict=False).to_dicts()}


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


def _fast_soh(ts: TimeSeries, profile: BatteryProfile, warnings: list[str]) -> dict | None:
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

    return {"soh_pct": finite(est.soh_pct), "soh_interval_pct": [finite(x) for x in est.soh_interval_pct],
            "coverage_nominal": est.coverage_nominal, "ood": est.ood, "ood_reasons": list(est.ood_reasons),
            "model": f"{est.model_name} {est.model_version}"}


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
    vendor = d["vendor_capacity_Ah"].to_numpy() if "vendor_capacity_Ah" in d.columns else None
    n_groups = infer_series_groups(ts, profile)
    group_v = [d[c].to_numpy() for c in ts.group_columns]
    if not group_v and n_groups == 1:
        group_v = [v]
    limit_v = np.min(np.vstack(group_v), axis=0) if group_v else v / n_groups
    rest_A = capacity.rest_current_A(profile.nominal_capacity_Ah)  # rest as in the capacity measurement

    discharges = capacity.full_discharges(
        t, v, i, step_index=step, limit_voltage_V=limit_v, cutoff_voltage_V=profile.group_v_min_V,
        top_voltage_V=capacity.top_of_charge_voltage_V(1, profile.ocv_table),
        nominal_capacity_Ah=profile.nominal_capacity_Ah,
        vendor_capacity_Ah=vendor,
    )
    chosen = choose_capacity_discharge(discharges)
    if chosen is None:
        warnings.append(_why_no_capacity(discharges, profile))
    for dis in discharges:
        if dis.vendor_capacity_Ah and abs(dis.vendor_capacity_Ah / dis.capacity_Ah - 1) > VENDOR_TOLERANCE:
            warnings.append(
                f"cycler's capacity counter says {dis.vendor_capacity_Ah:.3f} Ah for the discharge at "
                f"{dis.start_s:.0f} s; releaf integrated {dis.capacity_Ah:.3f} Ah"
            )

    q = capacity.cumulative_Ah(t, i, step)
    cap = chosen.capacity_Ah if chosen else None
    steps = resistance.current_steps(i, min_step_A=MIN_STEP_C_RATE * profile.nominal_capacity_Ah, step_index=step)
    taps = tuple(group_v) if ts.group_columns else ()
    rs = tuple(resistance.step_resistances(t, v, i, steps, group_voltages_V=taps,
                                           soc_pct=[_soc_at(s.before, q, discharges, cap) for s in steps]))
    r0_step = resistance.pick_r0(rs, rest_A=rest_A)
    if r0_step is None:
        warnings.append("no current step sampled within 1 s: ohmic resistance not measurable")

    ref = chosen or next((x for x in reversed(discharges) if x.reached_cutoff), None)
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
    if soh is None and estimate is not None and not estimate["ood"]:
        soh, soh_method = estimate["soh_pct"], "fast-pulse"
    if estimate is not None and estimate["ood"]:
        warnings.append("fast SOH estimate refused: " + "; ".join(estimate["ood_reasons"]))
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
        soh_interval_pct=tuple(estimate["soh_interval_pct"]) if soh_method == "fast-pulse" else None,
        ood=estimate["ood"] if estimate is not None else None,
        soh_estimate=estimate,
    )


def _why_no_capacity(discharges: list[Discharge], profile: BatteryProfile) -> str:
    if not discharges:
        return "no discharge in the file: capacity not measurable"
    last = discharges[-1]
    parts = []
    if not last.from_full:
        top = capacity.top_of_charge_voltage_V(1, profile.ocv_table)
        parts.append(f"it did not start from full charge (needs >= {top:.3f} V per group)")
    if not last.reached_cutoff:
        parts.append(f"it stopped before the {profile.group_v_min_V} V per-group cut-off")
    return "no full discharge: " + " and ".join(parts) + "; capacity not measured"
