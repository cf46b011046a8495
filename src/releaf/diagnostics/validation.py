"""Validation of a fitted ECM against measured constant-current discharges (ORNL Nissan Leaf cell).

The model fitted on an HPPC test (:func:`releaf.diagnostics.ecm_fit.fit_ecm_2rc`) is driven by the measured
current of every full discharge in another test file and compared with the measured voltage (RMSE) and with
the measured charge to the lower cut-off (capacity error). Nothing here is fitted on the discharges predicted.

* Start: each discharge segment starts at the end of the CC-CV charge before it (SOC 100 %, RC states zero);
  the 10 min rest and the discharge are simulated with the measured current.
* Predicted capacity: the charge (measured current, integrated as :func:`releaf.diagnostics.capacity.cumulative_Ah`
  does) from the segment start to the first time the model reaches the cut-off; if the measured discharge ends
  first, the last discharge current is held in 1 s steps until the model reaches it.
* Voltage RMSE (``rmse_mV``): over every loaded sample of the measured discharge, from its first discharge
  sample to the measured cut-off; where the model reaches the cut-off first it is continued past it (same
  current, same equations), so an early model knee counts with its full error. ``rmse_both_above_cutoff_mV``
  keeps only the samples where both the measured and the predicted voltage are above the cut-off (the part of
  the discharge a cycler would record for both; the capacity error measures the rest).
* Butler-Volmer variant: the first RC pair driven by ``2 I0 asinh(i / (2 I0))`` (small-signal resistance R1 at
  zero current, lower chord resistance at high current), I0 and R0/R1/R2 refitted on the 25 degC HPPC only
  (:func:`releaf.diagnostics.ecm_fit.fit_butler_volmer_2rc`).
* Temperature-corrected variant (optional): resistances at each sample from an Arrhenius law fitted per SOC
  point through the fits at several temperatures, driven by the cell's measured surface temperature.

References
----------
Wiggins, Allu, Wang, "Battery cell data from a 2013 Nissan Leaf", ORNL, doi:10.5281/zenodo.2580327.
G. L. Plett, Battery Management Systems, Vol. I (2015), ch. 2 (ECM) and 7 (temperature dependence).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

import releaf.io
from releaf.diagnostics import capacity
from releaf.diagnostics.ecm import EcmParameters, simulate
from releaf.diagnostics.ecm_fit import ButlerVolmerFit, fit_butler_volmer_2rc, fit_ecm_2rc
from releaf.errors import ReleafInputError

HPPC_FILES = {10.0: "cell-low-current-hppc-10c.csv", 25.0: "cell-low-current-hppc-25c-2.csv",
              40.0: "cell-low-current-hppc-40c-1.csv"}
DISCHARGE_FILES = {1: "cell-discharge-bitrode-1c.csv", 2: "cell-discharge-bitrode-2c.csv",
                   3: "cell-discharge-bitrode-3c.csv"}
LVM_FILES = {1: "cell-discharge-temperature-1c.lvm", 2: "cell-discharge-temperature-2c.lvm",
             3: "cell-discharge-temperature-3c.lvm"}
CUTOFF_V = 3.0
# upstream's 1C basis of the ORNL discharge tests (a test condition, not a result)
ORNL_1C_A = 30.6
TOP_VOLTAGE_V = 4.1
LVM_PERIOD_S = 3.0
LVM_MID_CELL = 1  # TC2, mid-cell (ORNL README)
EXTEND_DT_S = 1.0
KELVIN = 273.15


@dataclass(frozen=True)
class DischargePrediction:
    """One measured discharge against the model.

    Attributes
    ----------
    index : 1-based number of the discharge in its file
    start_s, end_s : segment start (end of the charge) and last discharge sample [s]
    from_full : the segment starts after a charge to the top (False: the file starts mid-discharge and 100 %
        SOC at its first sample is an assumption)
    measured_Ah, predicted_Ah : charge to the cut-off [Ah]
    capacity_error_pct : (predicted - measured) / measured [%]
    rmse_mV, max_abs_error_mV : voltage error over the loaded samples to the measured cut-off, the model
        continued past its own cut-off [mV]
    rmse_both_above_cutoff_mV : the same over the loaded samples where measured and predicted voltage are both
        above the cut-off [mV]
    rmse_to_90pct_mV : the same over the first 90 % of the measured charge (before the knee) [mV]
    t_s, measured_V, predicted_V : the loaded samples, for plots [s, V, V]
    """

    index: int
    start_s: float
    end_s: float
    from_full: bool
    measured_Ah: float
    predicted_Ah: float
    capacity_error_pct: float
    rmse_mV: float
    max_abs_error_mV: float
    rmse_to_90pct_mV: float
    rmse_both_above_cutoff_mV: float
    t_s: np.ndarray
    measured_V: np.ndarray
    predicted_V: np.ndarray


def read_lvm_temperatures(path) -> tuple[np.ndarray, np.ndarray]:
    """Thermocouple temperatures of an ORNL LabVIEW ``.lvm`` file (tab-separated, no header, one line per 3 s).

    Returns
    -------
    t_s : time since the start of the matching Bitrode file [s]
    temperature_C : one row per line, one column per thermocouple [degC]

    Raises
    ------
    ReleafInputError : a line that is not four numbers.
    """
    rows = []
    with open(path, encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.strip().split("\t")
            if fields == [""]:
                continue
            try:
                rows.append([float(x) for x in fields])
            except ValueError:
                raise ReleafInputError(path, f"expected tab-separated numbers, found {line.strip()[:60]!r}",
                                       line=lineno) from None
            if len(rows[-1]) != len(rows[0]):
                raise ReleafInputError(path, f"expected {len(rows[0])} fields, found {len(rows[-1])}",
                                       line=lineno)
    temps = np.array(rows, dtype=float)
    return np.arange(len(temps)) * LVM_PERIOD_S, temps


def arrhenius_resistances(fits: dict[float, EcmParameters], reference_C: float = 25.0):
    """Per SOC point of the reference fit, ``ln R = a + E / (T + 273.15)`` through the fits at all temperatures,
    for R0, R1 and R2.

    Returns
    -------
    A function ``(soc_pct, temperature_C) -> (r0_Ohm, r1_Ohm, r2_Ohm)`` (arrays of equal length).

    References
    ----------
    Arrhenius dependence of the ohmic and charge-transfer resistances: Plett (2015), vol. I, ch. 7.
    """
    ref = fits[reference_C]
    grid = ref.soc_pct
    temps = np.array(sorted(fits))
    inv_T = 1.0 / (temps + KELVIN)
    coefs = {}
    for name in ("r0_Ohm", "r1_Ohm", "r2_Ohm"):
        ln_r = np.array([np.log(np.maximum(np.interp(grid, fits[T].soc_pct, getattr(fits[T], name)), 1e-7))
                         for T in temps])
        slope, icpt = np.polyfit(inv_T, ln_r, 1)
        coefs[name] = (icpt, slope)

    def at(soc_pct, temperature_C):
        x = 1.0 / (np.asarray(temperature_C, dtype=float) + KELVIN)
        return tuple(np.exp(np.interp(soc_pct, grid, coefs[n][0]) + np.interp(soc_pct, grid, coefs[n][1]) * x)
                     for n in ("r0_Ohm", "r1_Ohm", "r2_Ohm"))

    return at


def simulate_with_temperature(params: EcmParameters, resistances, test_time_s, current_A, temperature_C, *,
                              soc0_pct: float) -> np.ndarray:
    """Terminal voltage like :func:`releaf.diagnostics.ecm.simulate`, with R0, R1, R2 from ``resistances(soc,
    temperature)`` at each sample (OCV, time constants and capacity from ``params``) [V]."""
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    temp = np.asarray(temperature_C, dtype=float)
    n = t.size
    soc = np.empty(n)
    v1 = np.zeros(n)
    v2 = np.zeros(n)
    r0 = np.empty(n)
    soc[0] = soc0_pct
    per_As = 100.0 / (3600.0 * params.capacity_Ah)
    dt = np.diff(t)
    for k in range(n - 1):
        p = params.at(soc[k])
        _, r1, r2 = resistances(soc[k], temp[k])
        a1, a2 = np.exp(-dt[k] / p["tau1_s"]), np.exp(-dt[k] / p["tau2_s"])
        v1[k + 1] = v1[k] * a1 + r1 * (1.0 - a1) * i[k + 1]
        v2[k + 1] = v2[k] * a2 + r2 * (1.0 - a2) * i[k + 1]
        soc[k + 1] = soc[k] + per_As * i[k + 1] * dt[k]
    for k in range(n):
        r0[k] = resistances(soc[k], temp[k])[0]
    return params.at(soc)["ocv_V"] + i * r0 + v1 + v2


def _first_crossing(t, v, q, cutoff_V: float, from_k: int) -> float | None:
    """Charge ``q`` [Ah] where ``v`` first falls to ``cutoff_V`` at or after sample ``from_k`` (linear)."""
    below = np.flatnonzero(v[from_k:] <= cutoff_V)
    if below.size == 0:
        return None
    k = from_k + int(below[0])
    if k == 0 or v[k - 1] == v[k]:
        return float(q[k])
    f = (v[k - 1] - cutoff_V) / (v[k - 1] - v[k])
    return float(q[k - 1] + f * (q[k] - q[k - 1]))


def predict_discharges(params: EcmParameters, ts, *, cutoff_V: float = CUTOFF_V, one_c_A: float = ORNL_1C_A,
                       temperature=None, include_partial: bool = True,
                       i0_A: float | None = None) -> list[DischargePrediction]:
    """The model against every discharge to the cut-off in a test.

    Parameters
    ----------
    params : the cell model (e.g. :func:`releaf.diagnostics.ecm_fit.fit_ecm_2rc` on an HPPC at 25 degC)
    ts : the discharge test (TimeSeries), current + = charge
    cutoff_V : lower cut-off [V]
    one_c_A : 1C current [A] (sets rest and recharge thresholds of the segmentation)
    temperature : optional ``(resistances, t_s, temperature_C)``: resistances ``f(soc, T)`` (see
        :func:`arrhenius_resistances`) and a measured temperature trace; the prediction then uses
        :func:`simulate_with_temperature` (samples outside the trace are skipped)
    include_partial : also predict a discharge whose start was not recorded (assumed from 100 % SOC)
    i0_A : Butler-Volmer exchange-current scale of the first RC pair [A] (:func:`releaf.diagnostics.ecm.simulate`;
        None: linear); not used with ``temperature``

    Returns
    -------
    One :class:`DischargePrediction` per discharge that reached the cut-off.
    """
    df = ts.data
    t = df["test_time_s"].to_numpy().astype(float)
    v = df["voltage_V"].to_numpy().astype(float)
    i = df["current_A"].to_numpy().astype(float)
    step = df["step_index"].to_numpy() if "step_index" in df.columns else None
    found = capacity.full_discharges(t, v, i, step_index=step, cutoff_voltage_V=cutoff_V,
                                     top_voltage_V=TOP_VOLTAGE_V, nominal_capacity_Ah=one_c_A)
    rest_A = 0.01 * one_c_A
    out = []
    for n, d in enumerate(found, start=1):
        if not d.reached_cutoff or not (d.from_full or include_partial):
            continue
        a, last = d.start_index, d.end_index
        if temperature is not None and t[last] > temperature[1][-1]:
            continue
        seg = slice(a, last + 1)
        ts_, is_ = t[seg], i[seg]
        # hold the last discharge current until the model reaches the cut-off (up to 20 % more charge)
        i_end = float(is_[-1])
        ext_n = int(np.ceil(0.2 * params.capacity_Ah * 3600.0 / abs(i_end) / EXTEND_DT_S))
        t_all = np.concatenate((ts_, ts_[-1] + EXTEND_DT_S * np.arange(1, ext_n + 1)))
        i_all = np.concatenate((is_, np.full(ext_n, i_end)))
        if temperature is None:
            v_all = simulate(params, t_all, i_all, soc0_pct=100.0, i0_A=i0_A)["voltage_V"]
        else:
            resist, t_T, temp_C = temperature
            v_all = simulate_with_temperature(params, resist, t_all, i_all, np.interp(t_all, t_T, temp_C),
                                              soc0_pct=100.0)
        s_all = None if step is None else np.concatenate((step[seg], np.full(ext_n, step[last])))
        q_all = -capacity.cumulative_Ah(t_all, i_all, s_all)
        first_loaded = int(np.flatnonzero(is_ < -rest_A)[0])
        predicted = _first_crossing(t_all, v_all, q_all, cutoff_V, first_loaded)
        measured = float(q_all[ts_.size - 1])
        loaded = np.flatnonzero(is_ < -rest_A)
        err = v_all[loaded] - v[seg][loaded]
        early = loaded[q_all[loaded] <= 0.9 * measured]
        both = (v_all[loaded] > cutoff_V) & (v[seg][loaded] > cutoff_V)
        out.append(DischargePrediction(
            index=n, start_s=float(t[a]), end_s=float(t[last]), from_full=d.from_full, measured_Ah=measured,
            predicted_Ah=float("nan") if predicted is None else predicted,
            capacity_error_pct=float("nan") if predicted is None else 100.0 * (predicted - measured) / measured,
            rmse_mV=1e3 * float(np.sqrt(np.mean(err**2))), max_abs_error_mV=1e3 * float(np.max(np.abs(err))),
            rmse_to_90pct_mV=1e3 * float(np.sqrt(np.mean((v_all[early] - v[seg][early]) ** 2))),
            rmse_both_above_cutoff_mV=1e3 * float(np.sqrt(np.mean(err[both] ** 2))),
            t_s=ts_[loaded], measured_V=v[seg][loaded], predicted_V=v_all[loaded],
        ))
    return out


def fit_ornl_hppc(data_dir) -> dict[float, EcmParameters]:
    """The 2-RC fits of the three ORNL cell HPPC files, by ambient temperature [degC]."""
    folder = Path(data_dir) / "ornl-leaf"
    return {T: fit_ecm_2rc(releaf.io.read(folder / name), temperature_C=T)[0] for T, name in HPPC_FILES.items()}


def temperature_trend(fits: dict[float, EcmParameters], soc_pct: float = 50.0) -> pl.DataFrame:
    """R0 and R0 + R1 + R2 of each fit at one SOC: ``temperature_C`` [degC], ``r0_mOhm``, ``r_total_mOhm``."""
    rows = []
    for T in sorted(fits):
        p = fits[T].at(soc_pct)
        rows.append({"temperature_C": T, "soc_pct": soc_pct, "r0_mOhm": 1e3 * float(p["r0_Ohm"]),
                     "r_total_mOhm": 1e3 * float(p["r0_Ohm"] + p["r1_Ohm"] + p["r2_Ohm"])})
    return pl.DataFrame(rows)


def fit_ornl_butler_volmer(data_dir, temperature_C: float = 25.0) -> ButlerVolmerFit:
    """The 2-RC fit with a Butler-Volmer first pair (:func:`releaf.diagnostics.ecm_fit.fit_butler_volmer_2rc`) of
    the ORNL cell HPPC file at ``temperature_C``."""
    path = Path(data_dir) / "ornl-leaf" / HPPC_FILES[temperature_C]
    return fit_butler_volmer_2rc(releaf.io.read(path), temperature_C=temperature_C)


def validate_ornl(data_dir, *, fits: dict[float, EcmParameters] | None = None,
                  thermocouple: int = LVM_MID_CELL) -> dict:
    """The 25 degC model against the ORNL 1C/2C/3C discharges, plain, temperature-corrected and with a
    Butler-Volmer first RC pair.

    Returns
    -------
    ``{"fits": ..., "plain": {c_rate: [DischargePrediction]}, "thermal": {c_rate: [...]}, "butler_volmer":
    {c_rate: [...]}, "bv_fit": ButlerVolmerFit}``; ``butler_volmer`` uses :func:`fit_ornl_butler_volmer` (I0 and
    the refitted resistances from the 25 degC HPPC only); ``thermal`` uses
    Arrhenius resistances through the 10/25/40 degC fits driven by thermocouple ``thermocouple`` (0-based) of
    the matching ``.lvm`` file (discharges beyond the end of that file are left out: the 3C file covers only
    the first discharge).
    """
    folder = Path(data_dir) / "ornl-leaf"
    fits = fit_ornl_hppc(data_dir) if fits is None else fits
    model = fits[25.0]
    resist = arrhenius_resistances(fits)
    bv = fit_ornl_butler_volmer(data_dir)
    plain, thermal, butler_volmer = {}, {}, {}
    for c_rate, name in DISCHARGE_FILES.items():
        ts = releaf.io.read(folder / name)
        plain[c_rate] = predict_discharges(model, ts)
        butler_volmer[c_rate] = predict_discharges(bv.params, ts, i0_A=bv.i0_A)
        t_T, temps = read_lvm_temperatures(folder / LVM_FILES[c_rate])
        thermal[c_rate] = predict_discharges(model, ts, temperature=(resist, t_T, temps[:, thermocouple]))
    return {"fits": fits, "plain": plain, "thermal": thermal, "butler_volmer": butler_volmer, "bv_fit": bv}


def summary_table(predictions: dict[int, list[DischargePrediction]]) -> pl.DataFrame:
    """One row per discharge: ``c_rate``, ``discharge``, ``from_full``, ``measured_Ah``, ``predicted_Ah``,
    ``capacity_error_pct``, ``rmse_mV``, ``rmse_both_above_cutoff_mV``, ``rmse_to_90pct_mV``,
    ``max_abs_error_mV``."""
    rows = [{"c_rate": c, "discharge": d.index, "from_full": d.from_full, "measured_Ah": d.measured_Ah,
             "predicted_Ah": d.predicted_Ah, "capacity_error_pct": d.capacity_error_pct, "rmse_mV": d.rmse_mV,
             "rmse_both_above_cutoff_mV": d.rmse_both_above_cutoff_mV, "rmse_to_90pct_mV": d.rmse_to_90pct_mV,
             "max_abs_error_mV": d.max_abs_error_mV}
            for c, preds in predictions.items() for d in preds]
    return pl.DataFrame(rows)
