"""Validation of a fitted ECM against measured constant-current discharges (ORNL Nissan Leaf cell).

The model fitted on an HPPC test (:func:`releaf.models.ecm_fit.fit_ecm_2rc`) is driven by the measured
current of every full discharge in another test file and compared with the measured voltage (RMSE) and with
the measured charge to the lower cut-off (capacity error). No voltage of the discharges predicted is fitted; the
thermal model's two parameters come from the 1C file's thermocouple trace. :func:`validate_ornl` fits whole HPPC
levels (``fit_soc_step=True``: the 10 A SOC steps too), a choice made after comparing both on these discharges.

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
  (:func:`releaf.models.ecm_fit.fit_butler_volmer_2rc`).
* Temperature-corrected variants: the resistances at each sample scaled by an Arrhenius law fitted per SOC
  point through the fits at several temperatures (relative to 25 degC), driven by the cell's measured surface
  temperature or by a lumped thermal model heated by the model's own overpotential
  (:func:`simulate_electrothermal`, :mod:`releaf.models.thermal`).

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
from releaf.errors import InputFileError
from releaf.models.ecm import EcmParameters, butler_volmer_current_A, simulate
from releaf.models.ecm_fit import ButlerVolmerFit, fit_butler_volmer_2rc, fit_ecm_2rc
from releaf.models.thermal import LumpedThermal, fit_lumped_thermal, irreversible_heat_W
from releaf.parameters import LEAF_CELL

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
# the ORNL cell tests ran at 25 degC ambient (the HPPC file names; the ambient thermocouple TC4 reads 24.8-26.0)
ORNL_AMBIENT_C = 25.0


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
    predicted_temperature_C : the model's temperature at the loaded samples (electro-thermal variants) [degC]
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
    predicted_temperature_C: np.ndarray | None = None

    @property
    def rmse_time_weighted_mV(self) -> float:
        """The error of ``rmse_mV`` weighted by the time each sample stands for (:func:`time_weighted_rmse_mV`)
        [mV]. The ORNL Bitrode files log every 1 s for the first 60 s of a step and every 60 s after, so
        ``rmse_mV`` gives the first minute 60 of the 78 samples of a 3C discharge; this one weighs every minute of
        the discharge alike."""
        return time_weighted_rmse_mV(self.t_s, self.predicted_V - self.measured_V)


def time_weighted_rmse_mV(t_s, error_V) -> float:
    """RMS of ``error_V`` with each sample weighted by the time it stands for: half the intervals to its
    neighbours (the whole interval at either end) [mV]; the plain RMS for a single sample.

    Parameters
    ----------
    t_s : sample times [s], increasing
    error_V : error at each sample [V]
    """
    t = np.asarray(t_s, dtype=float)
    e = np.asarray(error_V, dtype=float)
    if t.size < 2:
        return 1e3 * float(np.sqrt(np.mean(e**2)))
    w = np.gradient(t)
    return 1e3 * float(np.sqrt(np.sum(w * e**2) / np.sum(w)))


def read_lvm_temperatures(path) -> tuple[np.ndarray, np.ndarray]:
    """Thermocouple temperatures of an ORNL LabVIEW ``.lvm`` file (tab-separated, no header, one line per 3 s).

    Returns
    -------
    t_s : time since the start of the matching Bitrode file [s]
    temperature_C : one row per line, one column per thermocouple [degC]

    Raises
    ------
    InputFileError : a line that is not four numbers.
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
                raise InputFileError(path, f"expected tab-separated numbers, found {line.strip()[:60]!r}",
                                       line=lineno) from None
            if len(rows[-1]) != len(rows[0]):
                raise InputFileError(path, f"expected {len(rows[0])} fields, found {len(rows[-1])}",
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


def simulate_electrothermal(params: EcmParameters, resistances, test_time_s, current_A, *, soc0_pct: float,
                            temperature_C=None, thermal: LumpedThermal | None = None, i0_A: float | None = None,
                            reference_C: float = 25.0) -> dict[str, np.ndarray]:
    """Terminal voltage like :func:`releaf.models.ecm.simulate`, with resistances that follow the temperature.

    R0, R1, R2 of ``params`` (which hold at ``reference_C``) are multiplied at each sample by
    ``resistances(soc, T) / resistances(soc, reference_C)`` (:func:`arrhenius_resistances`); a Butler-Volmer
    exchange current ``i0_A`` follows the charge-transfer resistance, ``i0 ~ T / R1`` (``R_ct = R T / (F i0)``).
    The temperature is either measured (``temperature_C``, one value per sample) or simulated with a lumped
    thermal model heated by the model's own overpotential (``thermal``; :mod:`releaf.models.thermal`),
    starting at its ambient. OCV, time constants and capacity are those of ``params``.

    Returns
    -------
    ``voltage_V``, ``soc_pct``, ``temperature_C`` [V, %, degC], one value per sample.
    """
    if (temperature_C is None) == (thermal is None):
        raise ValueError("give either a measured temperature_C or a thermal model")
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    n = t.size
    soc, temp, volt = np.empty(n), np.empty(n), np.empty(n)
    soc[0] = soc0_pct
    temp[0] = thermal.ambient_C if thermal is not None else float(temperature_C[0])
    v1 = v2 = 0.0
    per_As = 100.0 / (3600.0 * params.capacity_Ah)
    ref_K = reference_C + KELVIN
    for k in range(n):
        p = params.at(soc[k])
        factor = np.array(resistances(soc[k], temp[k])) / np.array(resistances(soc[k], reference_C))
        r0, r1, r2 = p["r0_Ohm"] * factor[0], p["r1_Ohm"] * factor[1], p["r2_Ohm"] * factor[2]
        volt[k] = p["ocv_V"] + i[k] * r0 + v1 + v2
        if k == n - 1:
            break
        dt, ik = t[k + 1] - t[k], i[k + 1]  # the current logged at k+1 flowed over the interval
        i0 = None if i0_A is None else i0_A * (temp[k] + KELVIN) / ref_K / factor[1]
        a1, a2 = np.exp(-dt / p["tau1_s"]), np.exp(-dt / p["tau2_s"])
        heat = float(irreversible_heat_W(ik, p["ocv_V"] + ik * r0 + v1 + v2, p["ocv_V"]))
        v1 = v1 * a1 + r1 * (1.0 - a1) * float(butler_volmer_current_A(ik, i0))
        v2 = v2 * a2 + r2 * (1.0 - a2) * ik
        soc[k + 1] = soc[k] + per_As * ik * dt
        temp[k + 1] = thermal.advance_C(temp[k], heat, dt) if thermal is not None else float(temperature_C[k + 1])
    return {"voltage_V": volt, "soc_pct": soc, "temperature_C": temp}


def fit_ornl_thermal(data_dir, params: EcmParameters, *, c_rate: int = 1, thermocouple: int = LVM_MID_CELL,
                     ambient_C: float = ORNL_AMBIENT_C) -> LumpedThermal:
    """Lumped thermal model of the ORNL cell from the thermocouple trace of one discharge test (voltage unused).

    The heat is ``i (v - OCV)`` from the MEASURED current and voltage of the whole test (discharges, CC-CV
    charges, rests), the OCV from ``params`` at a coulomb-counted SOC (clamped to 0-100 %, starting at the SOC
    whose OCV is the first rested voltage); it is held over the cycler's sampling intervals and read on the
    thermocouple's 3 s grid. Only the temperature is fitted, so the test's voltages stay a prediction.
    """
    folder = Path(data_dir) / "ornl-leaf"
    df = releaf.io.read(folder / DISCHARGE_FILES[c_rate]).data
    t = df["test_time_s"].to_numpy().astype(float)
    v = df["voltage_V"].to_numpy().astype(float)
    i = df["current_A"].to_numpy().astype(float)
    soc = np.empty(t.size)
    soc[0] = float(np.interp(v[0], params.ocv_V, params.soc_pct))
    per_As = 100.0 / (3600.0 * params.capacity_Ah)
    for k in range(t.size - 1):
        soc[k + 1] = min(100.0, max(0.0, soc[k] + per_As * i[k + 1] * (t[k + 1] - t[k])))
    heat = irreversible_heat_W(i, v, np.interp(soc, params.soc_pct, params.ocv_V))
    t_T, temps = read_lvm_temperatures(folder / LVM_FILES[c_rate])
    keep = (t_T > t[0]) & (t_T <= t[-1])
    heat_on_grid = heat[np.searchsorted(t, t_T[keep], side="left")]
    return fit_lumped_thermal(t_T[keep], heat_on_grid, temps[keep, thermocouple], ambient_C=ambient_C,
                              source=f"{LVM_FILES[c_rate]} TC{thermocouple + 1} with the heat of "
                                     f"{DISCHARGE_FILES[c_rate]} (ambient {ambient_C:g} degC)")


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
                       include_partial: bool = True, i0_A: float | None = None, resistances=None,
                       temperature=None, thermal: LumpedThermal | None = None) -> list[DischargePrediction]:
    """The model against every discharge to the cut-off in a test.

    Parameters
    ----------
    params : the cell model (e.g. :func:`releaf.models.ecm_fit.fit_ecm_2rc` on an HPPC at 25 degC)
    ts : the discharge test (TimeSeries), current + = charge
    cutoff_V : lower cut-off [V]
    one_c_A : 1C current [A] (sets rest and recharge thresholds of the segmentation)
    include_partial : also predict a discharge whose start was not recorded (assumed from 100 % SOC)
    i0_A : Butler-Volmer exchange-current scale of the first RC pair [A] (:func:`releaf.models.ecm.simulate`;
        None: linear)
    resistances : ``f(soc, T)`` (:func:`arrhenius_resistances`), needed with ``temperature`` or ``thermal``
    temperature : optional measured trace ``(t_s, temperature_C)``: the prediction uses
        :func:`simulate_electrothermal` with it (discharges that end after the trace are skipped)
    thermal : optional lumped thermal model: :func:`simulate_electrothermal` heats the cell from its ambient at
        the start of each discharge segment (after the charge and rest before it)

    Returns
    -------
    One :class:`DischargePrediction` per discharge that reached the cut-off.
    """
    df = ts.data
    t = df["test_time_s"].to_numpy().astype(float)
    v = df["voltage_V"].to_numpy().astype(float)
    i = df["current_A"].to_numpy().astype(float)
    step = df["step_index"].to_numpy() if "step_index" in df.columns else None
    step_time = df["step_time_s"].to_numpy().astype(float) if "step_time_s" in df.columns else None
    found = capacity.full_discharges(t, v, i, step_index=step, step_time_s=step_time,
                                     cutoff_voltage_V=cutoff_V,
                                     charge_floor_V=TOP_VOLTAGE_V, nominal_capacity_Ah=one_c_A,
                                     min_current_A=0.01 * one_c_A)
    rest_A = 0.01 * one_c_A
    out = []
    for n, d in enumerate(found, start=1):
        if not d.reached_cutoff or not (d.from_full or include_partial):
            continue
        a, last = d.start_index, d.end_index
        if temperature is not None and t[last] > temperature[0][-1]:
            continue
        seg = slice(a, last + 1)
        ts_, is_ = t[seg], i[seg]
        # hold the last discharge current until the model reaches the cut-off (up to 20 % more charge)
        i_end = float(is_[-1])
        ext_n = int(np.ceil(0.2 * params.capacity_Ah * 3600.0 / abs(i_end) / EXTEND_DT_S))
        t_all = np.concatenate((ts_, ts_[-1] + EXTEND_DT_S * np.arange(1, ext_n + 1)))
        i_all = np.concatenate((is_, np.full(ext_n, i_end)))
        temp_all = None
        if temperature is None and thermal is None:
            v_all = simulate(params, t_all, i_all, soc0_pct=100.0, i0_A=i0_A)["voltage_V"]
        else:
            measured_C = None if temperature is None else np.interp(t_all, *temperature)
            sim = simulate_electrothermal(params, resistances, t_all, i_all, soc0_pct=100.0, i0_A=i0_A,
                                          temperature_C=measured_C, thermal=thermal)
            v_all, temp_all = sim["voltage_V"], sim["temperature_C"]
        s_all = None if step is None else np.concatenate((step[seg], np.full(ext_n, step[last])))
        # the extension continues the last step: its step time runs on
        st_all = None if step_time is None else np.concatenate(
            (step_time[seg], step_time[last] + EXTEND_DT_S * np.arange(1, ext_n + 1)))
        q_all = -capacity.cumulative_Ah(t_all, i_all, s_all, st_all)
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
            predicted_temperature_C=None if temp_all is None else temp_all[loaded],
        ))
    return out


def fit_ornl_hppc(data_dir, *, fit_soc_step: bool = True) -> dict[float, EcmParameters]:
    """The 2-RC fits of the three ORNL cell HPPC files, by ambient temperature [degC]; ``fit_soc_step`` as
    :func:`releaf.models.ecm_fit.fit_ecm_2rc` (here True: the whole HPPC level, its 10 A step included)."""
    folder = Path(data_dir) / "ornl-leaf"
    return {T: fit_ecm_2rc(releaf.io.read(folder / name), temperature_C=T, fit_soc_step=fit_soc_step,
                           ocv_shape=LEAF_CELL.ocv_table)[0]
            for T, name in HPPC_FILES.items()}


def temperature_trend(fits: dict[float, EcmParameters], soc_pct: float = 50.0) -> pl.DataFrame:
    """R0 and R0 + R1 + R2 of each fit at one SOC: ``temperature_C`` [degC], ``r0_mOhm``, ``r_total_mOhm``."""
    rows = []
    for T in sorted(fits):
        p = fits[T].at(soc_pct)
        rows.append({"temperature_C": T, "soc_pct": soc_pct, "r0_mOhm": 1e3 * float(p["r0_Ohm"]),
                     "r_total_mOhm": 1e3 * float(p["r0_Ohm"] + p["r1_Ohm"] + p["r2_Ohm"])})
    return pl.DataFrame(rows)


def fit_ornl_butler_volmer(data_dir, temperature_C: float = 25.0, *, fit_soc_step: bool = True) -> ButlerVolmerFit:
    """The 2-RC fit with a Butler-Volmer first pair (:func:`releaf.models.ecm_fit.fit_butler_volmer_2rc`) of
    the ORNL cell HPPC file at ``temperature_C``."""
    path = Path(data_dir) / "ornl-leaf" / HPPC_FILES[temperature_C]
    return fit_butler_volmer_2rc(releaf.io.read(path), temperature_C=temperature_C, fit_soc_step=fit_soc_step,
                                 ocv_shape=LEAF_CELL.ocv_table)


def validate_ornl(data_dir, *, fits: dict[float, EcmParameters] | None = None, thermocouple: int = LVM_MID_CELL,
                  fit_soc_step: bool = True) -> dict:
    """The 25 degC model against the ORNL 1C/2C/3C discharges: plain, temperature-corrected, with a
    Butler-Volmer first RC pair, and electro-thermal.

    Returns
    -------
    ``{"fits": ..., "plain": {c_rate: [DischargePrediction]}, "thermal": {c_rate: [...]}, "butler_volmer":
    {c_rate: [...]}, "electrothermal": {c_rate: [...]}, "bv_fit": ButlerVolmerFit, "thermal_fit":
    LumpedThermal}``; ``butler_volmer`` uses :func:`fit_ornl_butler_volmer` (I0 and the refitted resistances from
    the 25 degC HPPC only); ``thermal`` uses Arrhenius resistances through the 10/25/40 degC fits driven by
    thermocouple ``thermocouple`` (0-based) of the matching ``.lvm`` file (discharges beyond the end of that file
    are left out: the 3C file covers only the first discharge); ``electrothermal`` is the Butler-Volmer model with
    the same Arrhenius resistances and a lumped thermal model (:func:`fit_ornl_thermal`, fitted on the 1C
    temperature trace only) that the model's own heat warms, so every discharge is predicted without a
    measured temperature. ``fit_soc_step``: fit the whole HPPC levels, their 10 A constant-current steps
    included (:func:`releaf.models.ecm_fit.fit_ecm_2rc`), or only the pulses and relaxations (False).
    """
    folder = Path(data_dir) / "ornl-leaf"
    fits = fit_ornl_hppc(data_dir, fit_soc_step=fit_soc_step) if fits is None else fits
    model = fits[25.0]
    resist = arrhenius_resistances(fits)
    bv = fit_ornl_butler_volmer(data_dir, fit_soc_step=fit_soc_step)
    thermal_fit = fit_ornl_thermal(data_dir, bv.params, thermocouple=thermocouple)
    plain, thermal, butler_volmer, electrothermal = {}, {}, {}, {}
    for c_rate, name in DISCHARGE_FILES.items():
        ts = releaf.io.read(folder / name)
        plain[c_rate] = predict_discharges(model, ts)
        butler_volmer[c_rate] = predict_discharges(bv.params, ts, i0_A=bv.i0_A)
        t_T, temps = read_lvm_temperatures(folder / LVM_FILES[c_rate])
        thermal[c_rate] = predict_discharges(model, ts, resistances=resist, temperature=(t_T, temps[:, thermocouple]))
        electrothermal[c_rate] = predict_discharges(bv.params, ts, i0_A=bv.i0_A, resistances=resist,
                                                    thermal=thermal_fit)
    return {"fits": fits, "plain": plain, "thermal": thermal, "butler_volmer": butler_volmer,
            "electrothermal": electrothermal, "bv_fit": bv, "thermal_fit": thermal_fit}


def summary_table(predictions: dict[int, list[DischargePrediction]]) -> pl.DataFrame:
    """One row per discharge: ``c_rate``, ``discharge``, ``from_full``, ``measured_Ah``, ``predicted_Ah``,
    ``capacity_error_pct``, ``rmse_mV``, ``rmse_both_above_cutoff_mV``, ``rmse_to_90pct_mV``,
    ``max_abs_error_mV``, ``rmse_time_weighted_mV``."""
    rows = [{"c_rate": c, "discharge": d.index, "from_full": d.from_full, "measured_Ah": d.measured_Ah,
             "predicted_Ah": d.predicted_Ah, "capacity_error_pct": d.capacity_error_pct, "rmse_mV": d.rmse_mV,
             "rmse_both_above_cutoff_mV": d.rmse_both_above_cutoff_mV, "rmse_to_90pct_mV": d.rmse_to_90pct_mV,
             "max_abs_error_mV": d.max_abs_error_mV, "rmse_time_weighted_mV": d.rmse_time_weighted_mV}
            for c, preds in predictions.items() for d in preds]
    return pl.DataFrame(rows)
