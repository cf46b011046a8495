"""Self-discharge from the open-circuit voltage drift of long rests.

During a rest the voltage first relaxes (exponentially, minutes to hours) and then drifts as the cell loses
charge to side reactions or to an internal (soft) short. Fitting

    V(t) = V_inf + sum_k A_k exp(-t / tau_k) + k_drift t

separates the two: ``k_drift`` [mV/h] is the drift left once the relaxation is removed. Through the slope of the
OCV curve it becomes an equivalent self-discharge current

    I_sd = -k_drift / (dOCV/dSOC) x capacity / 100      [mV/h / (mV/%) x Ah / % = A]

(positive = the cell loses charge). The time constants are bounded to a fraction of the rest so that the
exponentials must decay inside the record; relaxation slower than that is booked as drift, so the estimate errs
towards *more* self-discharge (a screen that over-reports rather than misses a soft short).

A rest of one hour cannot separate a drift of a fraction of a mV/h from relaxation; such rests are reported with
``identifiable = False`` and never flagged.

References
----------
M. Petzl, M. A. Danzer, IEEE Trans. Energy Convers. 28 (2013) 675, doi:10.1109/TEC.2013.2259490 (relaxation
at rest). A. H. Zimmerman, "Self-discharge losses in lithium-ion cells", IEEE Aerosp. Electron. Syst. Mag. 19(2)
(2004) 19–24, doi:10.1109/MAES.2004.1269687 (self-discharge mechanisms and magnitude; OCV decay as its measure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import curve_fit

from releaf.diagnostics.ocv_rest import (
    anchor_capacities_Ah,
    relaxation_V,
    rest_samples,
    soc_by_counting,
    split_runs,
)
from releaf.schema import TimeSeries

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
# Only rests at least this long are analysed, and only their drift is called identifiable: LMO/graphite relaxation
# has components of several hours (the 48 h ORNL rests fit tau up to ~9 h), so a 1 h rest is relaxation only.
MIN_DRIFT_REST_S = 6 * SECONDS_PER_HOUR
# Time constants may not exceed this fraction of the rest (the exponentials must decay inside the record).
MAX_TAU_FRACTION = 1.0 / 3.0
# A drift is identifiable when the rest lasts MIN_DRIFT_REST_S and this many times the slowest time constant
# and the slope's standard error is below a third of its magnitude or below IDENTIFIABLE_SLOPE_MV_PER_H.
MIN_REST_OVER_TAU = 3.0
IDENTIFIABLE_SLOPE_MV_PER_H = 0.02
# Policy default (not a literature value): flag an equivalent self-discharge above this [% of capacity per day].
# Healthy Li-ion cells lose a few % per month at room temperature (Zimmerman 2004); at the top of charge and
# possibly above room temperature the ORNL Leaf cell lost 0.6-0.9 %/day in its 48 h rests (selfdischarge tests).
# 2 %/day on a 33 Ah cell is ~28 mA, the leak of a ~150 Ohm soft short at 4 V. Grading policies may override it.
DEFAULT_MAX_SELF_DISCHARGE_PCT_PER_DAY = 2.0
# dOCV/dSOC is read as the secant of the OCV table over +/- this window around the rest's SOC [%].
DOCV_WINDOW_PCT = 5.0


@dataclass(frozen=True)
class DriftFit:
    """Result of :func:`fit_drift` (voltages in V, slope in mV/h, times in s)."""

    v_inf_V: float
    amplitude_V: tuple[float, ...]
    tau_s: tuple[float, ...]
    slope_mV_per_h: float
    slope_std_mV_per_h: float
    rmse_mV: float
    identifiable: bool


def _model(t, v_inf, k, *p):
    """The relaxation of :func:`releaf.diagnostics.ocv_rest.fit_relaxation` plus a linear drift ``k t``."""
    return relaxation_V(t, v_inf, *p) + k * t


def fit_drift(t_s, voltage_V, *, n_exp: int = 2, max_tau_fraction: float = MAX_TAU_FRACTION) -> DriftFit:
    """Fit relaxation plus a linear drift to the voltage of one rest.

    Parameters
    ----------
    t_s : time since the current stopped [s], increasing
    voltage_V : voltage during the rest [V]
    n_exp : number of exponentials (1 or 2)
    max_tau_fraction : upper bound of each time constant as a fraction of the rest length [-]

    Returns
    -------
    :class:`DriftFit`: ``slope_mV_per_h`` and its standard error from the fit covariance [mV/h]; NaN values when
    the fit fails.

    References
    ----------
    M. Petzl, M. A. Danzer, IEEE Trans. Energy Convers. 28 (2013) 675, doi:10.1109/TEC.2013.2259490.
    """
    t = np.asarray(t_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    if n_exp not in (1, 2):
        raise ValueError("n_exp must be 1 or 2")
    nan = float("nan")
    failed = DriftFit(nan, (), (), nan, nan, nan, False)
    span = float(t[-1]) if len(t) else 0.0
    if len(t) < 2 * n_exp + 3 or span <= 0:
        return failed
    tau_lo = max(float(np.min(np.diff(t))) / 2.0, 1e-3)
    tau_hi = max(max_tau_fraction * span, 2 * tau_lo)
    swing = float(v[0] - v[-1]) or 1e-3
    amp = max(1.0, 10 * abs(swing))
    slope_max = 10 * max(abs(swing), 1e-3) / span + 1e-6
    taus = [tau_hi / 2] if n_exp == 1 else [tau_hi / 30, tau_hi / 2]
    p0 = [float(v[-1]), 0.0]
    for tau in taus:
        p0 += [swing / n_exp, tau]
    lo = [float(v.min()) - 1.0, -slope_max] + [-amp, tau_lo] * n_exp
    hi = [float(v.max()) + 1.0, slope_max] + [amp, tau_hi] * n_exp
    try:
        p, cov = curve_fit(_model, t, v, p0=np.clip(p0, np.add(lo, 1e-12), np.subtract(hi, 1e-12)),
                           bounds=(lo, hi), maxfev=40000)
    except (RuntimeError, ValueError):
        return failed
    pairs = sorted(zip(p[2::2], p[3::2], strict=True), key=lambda x: x[1])
    slope = float(p[1] * SECONDS_PER_HOUR * 1000.0)
    slope_std = float(np.sqrt(max(cov[1, 1], 0.0)) * SECONDS_PER_HOUR * 1000.0) if np.all(np.isfinite(cov)) else nan
    rmse = float(1000.0 * np.sqrt(np.mean((v - _model(t, *p)) ** 2)))
    slowest = max(tau for _, tau in pairs)
    identifiable = bool(
        span >= MIN_DRIFT_REST_S
        and span >= MIN_REST_OVER_TAU * slowest
        and slowest < 0.999 * tau_hi
        and np.isfinite(slope_std)
        and (slope_std < abs(slope) / 3 or slope_std < IDENTIFIABLE_SLOPE_MV_PER_H)
    )
    return DriftFit(float(p[0]), tuple(float(a) for a, _ in pairs), tuple(float(x) for _, x in pairs), slope,
                    slope_std, rmse, identifiable)


def docv_dsoc_mV_per_pct(soc_pct: float, table, window_pct: float = DOCV_WINDOW_PCT) -> float:
    """Slope of the OCV curve at ``soc_pct`` [mV/%]: the secant over ``soc_pct +/- window_pct``, kept inside the
    table.

    Parameters
    ----------
    soc_pct : state of charge [%]
    table : ``(soc_pct, ocv_V)`` of the cell, e.g. ``profile.ocv_table`` (``releaf.parameters``)
    window_pct : half-width of the secant [%]
    """
    soc_tab, ocv_tab = table
    lo = max(float(soc_tab[0]), soc_pct - window_pct)
    hi = min(float(soc_tab[-1]), soc_pct + window_pct)
    if hi - lo < window_pct:  # at a table end keep the full window width inside the table
        lo, hi = (float(soc_tab[-1]) - window_pct, float(soc_tab[-1])) if hi >= soc_tab[-1] else (
            float(soc_tab[0]), float(soc_tab[0]) + window_pct)
    return float(1000.0 * (np.interp(hi, soc_tab, ocv_tab) - np.interp(lo, soc_tab, ocv_tab)) / (hi - lo))


def self_discharge_mA(slope_mV_per_h: float, docv_dsoc: float, capacity_Ah: float) -> float:
    """Equivalent self-discharge current [mA], positive = losing charge.

    Parameters
    ----------
    slope_mV_per_h : OCV drift [mV/h]
    docv_dsoc : slope of the OCV curve [mV/%]
    capacity_Ah : capacity [Ah]
    """
    return float(-slope_mV_per_h / docv_dsoc * capacity_Ah / 100.0 * 1000.0)


def rest_drift(
    ts: TimeSeries,
    *,
    min_rest_s: float = MIN_DRIFT_REST_S,
    n_exp: int = 2,
    capacity_Ah: float | None = None,
    ocv_table,
    series_groups: int = 1,
    max_self_discharge_pct_per_day: float = DEFAULT_MAX_SELF_DISCHARGE_PCT_PER_DAY,
    rest_current_A: float | None = None,
) -> pl.DataFrame:
    """OCV drift and equivalent self-discharge of every long rest of a test.

    Parameters
    ----------
    ts : canonical time series; group voltages, when present, are analysed per group
    min_rest_s : shortest rest analysed [s]
    n_exp : exponentials of the relaxation (see :func:`fit_drift`)
    capacity_Ah : capacity [Ah]; default the median charge between full and empty anchors of the test
        (:func:`releaf.diagnostics.ocv_rest.anchor_capacities_Ah`); NaN currents when neither is known
    ocv_table : ``(soc_pct, ocv_V)`` of one cell, e.g. ``profile.ocv_table`` (``releaf.parameters``); it turns
        the drift into a current through the OCV slope
    series_groups : series groups in ``voltage_V`` (the table's slope is multiplied by it; group voltages use
        the cell table as is)
    max_self_discharge_pct_per_day : flag threshold [%/day], a policy default (``DEFAULT_MAX_SELF_DISCHARGE_...``)
    rest_current_A : see :func:`releaf.diagnostics.ocv_rest.rest_samples`

    Returns
    -------
    One row per rest: ``start_s``, ``duration_s`` [s], ``soc_pct`` [%] (coulomb counted, NaN without anchors),
    ``start_voltage_V``, ``end_voltage_V`` [V], ``slope_mV_per_h``, ``slope_std_mV_per_h`` [mV/h],
    ``tau_max_s`` [s], ``rmse_mV`` [mV], ``docv_dsoc_mV_per_pct`` [mV/%], ``self_discharge_mA`` [mA],
    ``self_discharge_pct_per_day`` [%/day], ``identifiable``, ``abnormal`` (identifiable and above the
    threshold); per group k: ``group_slope_mV_per_h_k``, ``group_self_discharge_mA_k`` and
    ``group_abnormal_k``.

    References
    ----------
    A. H. Zimmerman, IEEE Aerosp. Electron. Syst. Mag. 19(2) (2004) 19, doi:10.1109/MAES.2004.1269687.
    """
    d = ts.data
    t, v = d["test_time_s"].to_numpy(), d["voltage_V"].to_numpy()
    rest = rest_samples(ts, rest_current_A=rest_current_A)
    soc = soc_by_counting(ts, capacity_Ah=capacity_Ah, rest_current_A=rest_current_A)
    if capacity_Ah is None:
        caps = anchor_capacities_Ah(ts, rest_current_A=rest_current_A)
        capacity_Ah = float(np.median(caps)) if caps.size else float("nan")
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    groups = {c.removeprefix("group_voltage_V_"): d[c].to_numpy() for c in ts.group_columns}
    rows = []
    for a, b in split_runs(rest, step):
        start = a - 1 if a > 0 else a
        if t[b] - t[start] < min_rest_s:
            continue
        x = t[a : b + 1] - t[start]
        s = float(soc[b])
        slope_cell = docv_dsoc_mV_per_pct(s if np.isfinite(s) else 50.0, ocv_table)
        fit = fit_drift(x, v[a : b + 1], n_exp=n_exp)
        current = self_discharge_mA(fit.slope_mV_per_h, slope_cell * series_groups, capacity_Ah)
        pct_day = current / 1000.0 / capacity_Ah * 100.0 * HOURS_PER_DAY
        row = {
            "start_s": float(t[start]), "duration_s": float(t[b] - t[start]), "soc_pct": s,
            "start_voltage_V": float(v[a]), "end_voltage_V": float(v[b]),
            "slope_mV_per_h": fit.slope_mV_per_h, "slope_std_mV_per_h": fit.slope_std_mV_per_h,
            "tau_max_s": max(fit.tau_s) if fit.tau_s else float("nan"), "rmse_mV": fit.rmse_mV,
            "docv_dsoc_mV_per_pct": slope_cell * series_groups, "self_discharge_mA": current,
            "self_discharge_pct_per_day": pct_day, "identifiable": fit.identifiable,
            "abnormal": bool(fit.identifiable and pct_day > max_self_discharge_pct_per_day),
        }
        for k, g in groups.items():
            gf = fit_drift(x, g[a : b + 1], n_exp=n_exp)
            g_current = self_discharge_mA(gf.slope_mV_per_h, slope_cell, capacity_Ah)
            g_pct_day = g_current / 1000.0 / capacity_Ah * 100.0 * HOURS_PER_DAY
            row[f"group_slope_mV_per_h_{k}"] = gf.slope_mV_per_h
            row[f"group_self_discharge_mA_{k}"] = g_current
            row[f"group_abnormal_{k}"] = bool(gf.identifiable and g_pct_day > max_self_discharge_pct_per_day)
        rows.append(row)
    schema = {"start_s": pl.Float64, "duration_s": pl.Float64, "soc_pct": pl.Float64, "start_voltage_V": pl.Float64,
              "end_voltage_V": pl.Float64, "slope_mV_per_h": pl.Float64, "slope_std_mV_per_h": pl.Float64,
              "tau_max_s": pl.Float64, "rmse_mV": pl.Float64, "docv_dsoc_mV_per_pct": pl.Float64,
              "self_discharge_mA": pl.Float64, "self_discharge_pct_per_day": pl.Float64,
              "identifiable": pl.Boolean, "abnormal": pl.Boolean}
    for k in groups:
        schema |= {f"group_slope_mV_per_h_{k}": pl.Float64, f"group_self_discharge_mA_{k}": pl.Float64,
                   f"group_abnormal_{k}": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


__all__ = ["DriftFit", "docv_dsoc_mV_per_pct", "fit_drift", "rest_drift", "self_discharge_mA"]
