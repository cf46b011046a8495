"""Fit a two-RC Thevenin model to an HPPC test, level by level.

At every SOC level of an HPPC (found by :mod:`releaf.diagnostics.hppc`) the model

    v(t) = OCV(SOC(t)) + i(t) R0 + R1 u(t; tau1) + R2 u(t; tau2),   u[k+1] = a u[k] + (1 - a) i[k+1],  a = e^(-dt/tau)

(the zero-order-hold discretisation of :func:`releaf.models.ecm.simulate`, RC states zero after the rest
that opens the level) is fitted with ``scipy.optimize.least_squares`` to the measured voltage from the rest
before the first pulse to the end of the rest before the next level: both pulses and the relaxation after the
SOC step; the SOC step itself (a long constant current) is simulated, and fitted too with ``fit_soc_step``. The
relaxation after the SOC step is what makes the slow time constant identifiable; a window of the pulses alone
(80 s) cannot tell a 300 s from a 3000 s tau2. The last level has no rest after its SOC
step (the test ends at the cut-off): its window ends with its last pulse.

SOC is coulomb-counted (:func:`releaf.diagnostics.hppc.soc_from_top_pct`). OCV(SOC) is the dense OCV table of the
tested cell (``ocv_shape``: the profile's ``ocv_table``; for the Leaf ``leaf_cell_ocv_25C``, C/15 pseudo-OCV
anchored to the 25 degC HPPC rests, see ``scripts/derive_leaf_ocv.py``) moved through the rested voltages before
each level of the fitted test (:func:`anchored_ocv`): the test's own rest points, with the table's shape between
them. On the Leaf cell at 25 degC this is the packaged table itself; at another temperature it carries that test's
rests. Eleven rest points alone (:func:`ocv_from_hppc`, ``ocv_shape=None``) miss the curvature between levels and
the knee below the lowest one.

Initial values are deterministic: for a grid of (tau1, tau2) the resistances that fit best are the solution of a
non-negative linear least-squares problem (the model is linear in R0, R1, R2 once the taus are fixed); the best
grid point starts the non-linear fit. tau1 < tau2 holds by construction (tau2 = tau1 x ratio, ratio >= 2).

References
----------
G. L. Plett, Battery Management Systems, Vol. I: Battery Modeling, Artech House (2015), ch. 2 and 2.10.
USABC/INL Battery Test Manual rev. 3 (INL/EXT-15-34184, 2015), HPPC. Golub & Pereyra, "The differentiation of
pseudo-inverses and nonlinear least squares problems whose variables separate", SIAM J. Numer. Anal. 10 (1973)
413-432, doi:10.1137/0710036 (linear parameters solved inside a non-linear fit).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from scipy.optimize import least_squares, nnls
from scipy.signal import lfilter

from releaf import parameters
from releaf.diagnostics import hppc
from releaf.errors import InputFileError
from releaf.models.ecm import EcmParameters
from releaf.models.ocv import load_ocv_table

TAU1_GRID_S = (1.0, 3.0, 10.0, 30.0)
TAU2_GRID_S = (30.0, 100.0, 300.0, 1000.0, 3000.0)
TAU1_BOUNDS_S = (0.1, 200.0)
TAU_RATIO_BOUNDS = (2.0, 1000.0)
R_MAX_MOHM = 100.0


@dataclass(frozen=True)
class EcmFitReport:
    """How the fit went.

    Attributes
    ----------
    levels : one row per SOC level: ``level``, ``soc_pct`` [%], ``r0_mOhm``, ``r1_mOhm``, ``tau1_s``,
        ``r2_mOhm``, ``tau2_s``, ``rmse_mV`` and ``r_squared`` over the fitted window, ``rmse_pulse_mV`` over
        the pulses and the rest between them, ``window`` (``level``: pulses and the relaxation after the SOC
        step, and the step itself with ``fit_soc_step``; ``pulses``: a level with no rest after it: R0, R1 and
        tau1 fitted on its pulses with R2 and tau2 of the nearest level and the OCV slope from above),
        ``edge_r0_mOhm`` (ΔV/ΔI at the discharge pulse edge, from :func:`releaf.diagnostics.hppc.hppc_table`),
        ``window_s`` [s], ``n_samples``
    capacity_Ah : capacity between 0 and 100 % SOC used for the SOC axis [Ah]
    ocv_source : ``"anchored"`` (a packaged table's shape through the rested voltages of the fitted test, see
        :func:`anchored_ocv`), ``"test"`` (those rested voltages alone) or ``"given"``
    ocv_soc_pct, ocv_V : the OCV table used [%, V]
    """

    levels: pl.DataFrame
    capacity_Ah: float
    ocv_source: str
    ocv_soc_pct: np.ndarray
    ocv_V: np.ndarray


def ocv_from_hppc(ts, *, capacity_Ah: float | None = None, table: pl.DataFrame | None = None):
    """OCV–SOC table from the rested voltages of an HPPC test.

    One point per level: the last sample before its first pulse (after the long rest) at its coulomb-counted
    SOC. When the test ends below the lowest level (at the cut-off, with no rest after), a 0 % point is added:
    the voltage at the end plus |current| x the 30 s discharge-pulse resistance of the lowest level (the
    polarisation a rest would have recovered, estimated by the nearest pulse).

    Parameters
    ----------
    ts : the HPPC test (TimeSeries or canonical polars table)
    capacity_Ah : capacity for the SOC axis [Ah]; default top to bottom of the test
    table : its :func:`releaf.diagnostics.hppc.hppc_table`, if already computed

    Returns
    -------
    soc_pct, ocv_V : increasing arrays [%, V]

    Raises
    ------
    InputFileError : fewer than two levels, or rested voltages that do not rise with SOC.
    """
    df, name, t, v, i, step = hppc.hppc_input(ts)
    tab = hppc.hppc_table(ts, capacity_Ah=capacity_Ah) if table is None else table
    soc, _, _, bottom = hppc.soc_from_top_pct(t, i, step, capacity_Ah=capacity_Ah)
    firsts = tab.group_by("level", maintain_order=True).first().sort("soc_pct")
    s = firsts["soc_pct"].to_list()
    o = firsts["rest_voltage_V"].to_list()
    if s and soc[bottom] < min(s) - 1.0:
        dis = tab.filter(pl.col("direction") == "discharge").sort("soc_pct")
        r_mOhm = next((x for x in (dis["r_30s_mOhm"][0], dis["r_end_mOhm"][0]) if x is not None), None) \
            if dis.height else None
        if r_mOhm is not None:
            s.insert(0, float(soc[bottom]))
            o.insert(0, float(v[bottom] + abs(i[bottom]) * r_mOhm / 1000.0))
    s_arr, o_arr = np.array(s, dtype=float), np.array(o, dtype=float)
    if s_arr.size < 2:
        raise InputFileError(name, "an OCV table needs at least two HPPC levels")
    if np.any(np.diff(s_arr) <= 0) or np.any(np.diff(o_arr) <= 0):
        raise InputFileError(name, "rested voltages before the HPPC levels do not rise strictly with SOC")
    return s_arr, o_arr


def anchored_ocv(rest_soc_pct, rest_ocv_V, shape_soc_pct, shape_ocv_V) -> tuple[np.ndarray, np.ndarray]:
    """A dense OCV shape moved through rest points: ``shape + offset(soc)``, the offset piecewise linear between
    the rest points (``rest - shape`` there) and held constant beyond the outer ones.

    The table passes through every rest point and takes its shape between them from ``shape`` (e.g. a C/15
    pseudo-OCV). Returned on the shape's grid plus the rest SOCs inside it.

    Parameters
    ----------
    rest_soc_pct, rest_ocv_V : rested points [%, V], SOC increasing
    shape_soc_pct, shape_ocv_V : the dense shape [%, V], both increasing

    Returns
    -------
    soc_pct, ocv_V : increasing arrays [%, V]

    Raises
    ------
    InputFileError : the result does not rise strictly with SOC.

    References
    ----------
    Plett (2015), vol. I, section 2.10 (OCV from slow charge/discharge, corrected by rest points).
    """
    rs, rv = np.asarray(rest_soc_pct, dtype=float), np.asarray(rest_ocv_V, dtype=float)
    ss, sv = np.asarray(shape_soc_pct, dtype=float), np.asarray(shape_ocv_V, dtype=float)
    inside = (rs >= ss[0]) & (rs <= ss[-1])
    # shape points closer than 1e-6 % to a rest point give way to it (equal SOCs would make a flat step)
    near = np.min(np.abs(ss[:, None] - rs[None, inside]), axis=1) < 1e-6 if inside.any() else np.zeros(ss.size, bool)
    grid = np.unique(np.concatenate((ss[~near], rs[inside])))
    offset = rv - np.interp(rs, ss, sv)
    out = np.interp(grid, ss, sv) + np.interp(grid, rs, offset)
    if np.any(np.diff(out) <= 0):
        raise InputFileError("<ocv>", "the anchored OCV table does not rise strictly with SOC")
    return grid, out


def dt_runs(t: np.ndarray) -> list[tuple[int, int, float]]:
    """Runs ``(k0, k1, dt)`` of intervals k0..k1-1 with one sampling interval (a cycler samples each step at a
    fixed rate, so an HPPC level has a handful of runs)."""
    dt = np.round(np.diff(t), 6)
    if dt.size == 0:
        return []
    edges = np.flatnonzero(np.diff(dt) != 0) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [dt.size]))
    return [(int(a), int(b), float(dt[a])) for a, b in zip(starts, ends, strict=True)]


def rc_unit_response(current_A: np.ndarray, runs, tau_s: float) -> np.ndarray:
    """Voltage of an RC pair per ohm of its resistance under a sampled current, from rest (exact zero-order hold,
    the discretisation of :func:`releaf.models.ecm.simulate`) [V/Ohm = A]."""
    i = np.asarray(current_A, dtype=float)
    u = np.zeros(i.size)
    for k0, k1, dt in runs:
        a = np.exp(-dt / tau_s)
        y, _ = lfilter([1.0 - a], [1.0, -a], i[k0 + 1 : k1 + 1], zi=[a * u[k0]])
        u[k0 + 1 : k1 + 1] = y
    return u


@dataclass(frozen=True)
class _Window:
    i: np.ndarray
    target: np.ndarray  # measured voltage minus OCV [V]
    runs: list
    pulse: np.ndarray  # mask of the pulses and the rest between them
    fitted: np.ndarray  # mask of the samples in the residual: pulses and the final relaxation
    v: np.ndarray


def _basis(w: _Window, tau1: float, tau2: float) -> np.ndarray:
    b = np.column_stack((w.i, rc_unit_response(w.i, w.runs, tau1), rc_unit_response(w.i, w.runs, tau2)))
    return b[w.fitted]


def _fit_level(w: _Window) -> tuple[np.ndarray, np.ndarray]:
    """Best (R0, R1, tau1, R2, tau2) [Ohm, Ohm, s, Ohm, s] and the residual [V]."""
    best = None
    for tau1 in TAU1_GRID_S:
        for tau2 in TAU2_GRID_S:
            if tau2 < TAU_RATIO_BOUNDS[0] * tau1:
                continue
            r, norm = nnls(_basis(w, tau1, tau2), w.target[w.fitted])
            if best is None or norm < best[0]:
                best = (norm, r, tau1, tau2)
    _, r, tau1, tau2 = best
    lo = [0.0, 0.0, 0.0, np.log(TAU1_BOUNDS_S[0]), np.log(TAU_RATIO_BOUNDS[0])]
    hi = [R_MAX_MOHM] * 3 + [np.log(TAU1_BOUNDS_S[1]), np.log(TAU_RATIO_BOUNDS[1])]
    x0 = np.clip([r[0] * 1e3, r[1] * 1e3, r[2] * 1e3, np.log(tau1), np.log(tau2 / tau1)],
                 np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    if not np.all(np.isfinite(x0)):  # non-finite samples in the level (found by the diagnose fuzzer)
        raise InputFileError("HPPC level", "no finite starting point for the two-RC fit (non-finite samples)")

    def resid(x):
        tau1_, tau2_ = np.exp(x[3]), np.exp(x[3] + x[4])
        return _basis(w, tau1_, tau2_) @ (x[:3] * 1e-3) - w.target[w.fitted]

    fit = least_squares(resid, x0, bounds=(lo, hi), x_scale=[0.5, 0.5, 0.5, 1.0, 1.0], method="trf",
                        xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=400)
    x = fit.x
    tau1 = float(np.exp(x[3]))
    return np.array([x[0] * 1e-3, x[1] * 1e-3, tau1, x[2] * 1e-3, tau1 * float(np.exp(x[4]))]), fit.fun


def _fit_fast_pair(w: _Window, r2_Ohm: float, tau2_s: float) -> tuple[np.ndarray, np.ndarray]:
    """R0, R1, tau1 with the slow pair held (a level whose window has no relaxation)."""
    slow = r2_Ohm * rc_unit_response(w.i, w.runs, tau2_s)[w.fitted]
    target = w.target[w.fitted] - slow
    tau1_hi = min(TAU1_BOUNDS_S[1], tau2_s / TAU_RATIO_BOUNDS[0])

    def resid(x):
        b = _basis(w, float(np.exp(x[2])), tau2_s)
        return b[:, :2] @ (x[:2] * 1e-3) - target

    best = None
    for tau1 in (t for t in TAU1_GRID_S if t < tau1_hi):
        b = _basis(w, tau1, tau2_s)
        r, norm = nnls(b[:, :2], target)
        if best is None or norm < best[0]:
            best = (norm, r, tau1)
    if best is None:  # the slow pair copied from another level is faster than every candidate fast pair
        raise InputFileError("<ecm fit>", f"the slow time constant of the nearest fitted level ({tau2_s:.3g} s) "
                                          "leaves no room for a faster RC pair at a level without relaxation")
    _, r, tau1 = best
    lo, hi = [0.0, 0.0, np.log(TAU1_BOUNDS_S[0])], [R_MAX_MOHM, R_MAX_MOHM, np.log(tau1_hi)]
    x0 = np.clip([r[0] * 1e3, r[1] * 1e3, np.log(tau1)], np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    fit = least_squares(resid, x0, bounds=(lo, hi), x_scale=[0.5, 0.5, 1.0], method="trf", xtol=1e-10,
                        ftol=1e-10, gtol=1e-10, max_nfev=400)
    x = fit.x
    return np.array([x[0] * 1e-3, x[1] * 1e-3, float(np.exp(x[2])), r2_Ohm, tau2_s]), fit.fun


def _ocv_slope_above(soc_pct, soc0_pct: float, ocv_soc, ocv_v) -> np.ndarray:
    """OCV near ``soc0_pct`` continued with the slope of the table segment above it. Used at a level with no rest
    after it (the lowest, ended by the cut-off), where the segment below leads to an extrapolated point."""
    j = int(np.clip(np.searchsorted(ocv_soc, soc0_pct + 1e-6), 1, len(ocv_soc) - 1))
    slope = (ocv_v[j] - ocv_v[j - 1]) / (ocv_soc[j] - ocv_soc[j - 1])
    return np.interp(soc0_pct, ocv_soc, ocv_v) + slope * (np.asarray(soc_pct) - soc0_pct)


def _level_windows(tab: pl.DataFrame, t, i, rest_A: float) -> list[tuple[int, int, int, int]]:
    """Per level ``(level, first, pulses_end, last)`` sample indices of the fitted window."""
    levels = tab["level"].unique(maintain_order=True).to_list()
    starts = {lv: int(np.searchsorted(t, tab.filter(pl.col("level") == lv)["time_s"][0])) for lv in levels}
    out = []
    for n, lv in enumerate(levels):
        sub = tab.filter(pl.col("level") == lv)
        last_pulse_end = float(sub["time_s"][-1] + sub["duration_s"][-1])
        pulses_end = int(np.searchsorted(t, last_pulse_end, side="right")) - 1
        if n + 1 < len(levels):
            last = starts[levels[n + 1]]
        else:
            # no rest-ended next level: the pulses and any rest straight after them
            resting = np.abs(i[pulses_end + 1 :]) <= rest_A
            off = np.flatnonzero(~resting)
            last = pulses_end + (int(off[0]) if off.size else resting.size)
        out.append((lv, starts[lv], pulses_end, last))
    return out


def _windows(t, v, i, soc, tab: pl.DataFrame, ocv_soc, ocv_v, fit_soc_step: bool = False) -> list[tuple]:
    """Per level ``(level, first, last, relaxation, pulses_end, window)``: the samples of the level fit (the whole
    level, or without its SOC step when ``fit_soc_step`` is False)."""
    rest_A = hppc.REST_FRACTION * float(np.max(np.abs(i)))
    windows = []
    for lv, a, pulses_end, b in _level_windows(tab, t, i, rest_A):
        sl = slice(a, b + 1)
        pulse = np.arange(b - a + 1) <= pulses_end - a
        loaded = np.flatnonzero(np.abs(i[sl]) > rest_A)
        if not loaded.size:  # a level whose pulses were all at or below the rest threshold: nothing to fit
            continue
        relaxed = np.arange(b - a + 1) > loaded[-1]
        relaxation = bool(relaxed.any() and loaded[-1] > pulses_end - a)
        ocv_w = np.interp(soc[sl], ocv_soc, ocv_v)
        if not relaxation:
            ocv_w = _ocv_slope_above(soc[sl], soc[a], ocv_soc, ocv_v)
        # the SOC step is the test's only long constant-current load (what a discharge prediction needs); fitting
        # it leans on the OCV shape between two rest points, which the anchored dense table gives
        if relaxation:
            fitted = np.ones(b - a + 1, dtype=bool) if fit_soc_step else pulse | relaxed
        else:
            fitted = pulse
        w = _Window(i=i[sl], target=v[sl] - ocv_w, runs=dt_runs(t[sl]), pulse=pulse, fitted=fitted, v=v[sl])
        windows.append((lv, a, b, relaxation, pulses_end, w))
    return windows


def fit_ecm_2rc(ts, *, capacity_Ah: float | None = None, ocv=None, ocv_shape=None,
                temperature_C: float | None = None, fit_soc_step: bool = False) -> tuple[EcmParameters, EcmFitReport]:
    """Two-RC Thevenin parameters per SOC level of an HPPC test.

    Parameters
    ----------
    ts : the HPPC test (:class:`releaf.schema.TimeSeries` or canonical polars table), current + = charge
    capacity_Ah : capacity between 0 and 100 % SOC [Ah]; default the charge from the top of the test to its end
    ocv : ``(soc_pct, ocv_V)`` table to use [%, V]; default: the table ``ocv_shape`` moved through the
        rested voltages before each level of the same test (:func:`anchored_ocv`; the levels only, no
        extrapolated 0 % point: below the lowest level the offset of that level holds)
    ocv_shape : OCV table of the tested cell that gives the shape between the rest points: the profile's
        ``ocv_table`` (``releaf.parameters``), a ``(soc_pct, ocv_V)`` pair or a packaged table name
        (:func:`releaf.models.ocv.load_ocv_table`); None (default): the rest points of the test alone
        (:func:`ocv_from_hppc`)
    temperature_C : test temperature [degC]; default the mean of a ``temperature_C`` column, else unknown
    fit_soc_step : also fit the constant-current SOC step between the pulses and the relaxation (the whole
        level). Default False: pulses and relaxation only, the step simulated but not fitted, which keeps the
        pulses best fitted (per-level pulse RMSE <= 1.1 mV on the ORNL cell at 25 degC, <= 2.2 mV with the
        step). With the step the model carries the test's only long constant-current load: on the ORNL cell it
        predicts the 2C / 3C discharges within 22 / 30 mV instead of 27 / 42 mV (``benchmarks/validate_ornl.py``)

    Returns
    -------
    params : :class:`releaf.models.ecm.EcmParameters` of the tested unit (``.scaled(2, 2)`` turns cell
        parameters into a Leaf module); grid = the level SOCs and the OCV points, resistances clamped beyond the
        highest and lowest level
    report : :class:`EcmFitReport` with the fit quality per level

    Raises
    ------
    InputFileError : no HPPC levels found, or an unusable OCV table.
    """
    df, name, t, v, i, step = hppc.hppc_input(ts)
    tab = hppc.hppc_table(ts, capacity_Ah=capacity_Ah)
    if tab.height == 0:
        raise InputFileError(name, "no HPPC pulses found (a current step from rest held for at most "
                                     f"{hppc.MAX_PULSE_S:g} s)")
    soc, cap, _, _ = hppc.soc_from_top_pct(t, i, step, capacity_Ah=capacity_Ah)
    if ocv is None and ocv_shape is not None:
        firsts = tab.group_by("level", maintain_order=True).first().sort("soc_pct")
        shape = load_ocv_table(ocv_shape) if isinstance(ocv_shape, str) else ocv_shape
        ocv_soc, ocv_v = anchored_ocv(firsts["soc_pct"].to_numpy(), firsts["rest_voltage_V"].to_numpy(), *shape)
        ocv_source = "anchored"
    elif ocv is None:
        ocv_soc, ocv_v = ocv_from_hppc(ts, capacity_Ah=capacity_Ah, table=tab)
        ocv_source = "test"
    else:
        ocv_soc, ocv_v = (np.asarray(x, dtype=float) for x in ocv)
        ocv_source = "given"
    windows = [x[:4] + x[5:] for x in _windows(t, v, i, soc, tab, ocv_soc, ocv_v, fit_soc_step)]
    fitted = {}  # SOC -> (tau1, R2, tau2) of the levels fitted with their relaxation
    results = {}
    for lv, a, _, relaxation, w in windows:
        if relaxation:
            results[lv] = _fit_level(w)
            fitted[float(soc[a])] = tuple(results[lv][0][2:])
    rows = []
    for lv, a, b, relaxation, w in windows:
        if relaxation:
            p, res = results[lv]
        elif fitted:
            # 80 s of pulses cannot identify the slow RC pair: R2 and tau2 of the nearest fitted level
            _, r2, tau2 = fitted[min(fitted, key=lambda x: abs(x - soc[a]))]
            p, res = _fit_fast_pair(w, r2, tau2)
        else:
            p, res = _fit_level(w)
        vf = w.v[w.fitted]
        ss_tot = float(np.sum((vf - vf.mean()) ** 2))
        edge = tab.filter((pl.col("level") == lv) & (pl.col("direction") == "discharge"))["r0_mOhm"]
        rows.append({
            "level": lv, "soc_pct": float(soc[a]), "r0_mOhm": p[0] * 1e3, "r1_mOhm": p[1] * 1e3, "tau1_s": p[2],
            "r2_mOhm": p[3] * 1e3, "tau2_s": p[4], "rmse_mV": 1e3 * float(np.sqrt(np.mean(res**2))),
            "r_squared": 1.0 - float(np.sum(res**2)) / ss_tot if ss_tot > 0 else float("nan"),
            "rmse_pulse_mV": 1e3 * float(np.sqrt(np.mean(res[w.pulse[w.fitted]] ** 2))),
            "edge_r0_mOhm": edge[0] if edge.len() else None, "window_s": float(t[b] - t[a]),
            "n_samples": int(w.fitted.sum()), "window": "level" if relaxation else "pulses",
        })
    levels = pl.DataFrame(rows).sort("soc_pct")
    if temperature_C is None and "temperature_C" in df.columns:
        mean_T = df["temperature_C"].drop_nulls().mean()
        temperature_C = None if mean_T is None else float(mean_T)
    grid = np.unique(np.concatenate((levels["soc_pct"].to_numpy(), ocv_soc)))
    lsoc = levels["soc_pct"].to_numpy()

    def on_grid(col: str, scale: float = 1.0) -> np.ndarray:
        return np.interp(grid, lsoc, levels[col].to_numpy()) * scale

    sha = getattr(getattr(ts, "meta", None), "sha256", "")
    params = EcmParameters(
        capacity_Ah=cap, soc_pct=grid, ocv_V=np.interp(grid, ocv_soc, ocv_v), r0_Ohm=on_grid("r0_mOhm", 1e-3),
        r1_Ohm=on_grid("r1_mOhm", 1e-3), tau1_s=on_grid("tau1_s"), r2_Ohm=on_grid("r2_mOhm", 1e-3),
        tau2_s=on_grid("tau2_s"), temperature_C=temperature_C,
        source=f"2-RC HPPC fit (releaf.models.ecm_fit) of {name}" + (f" sha256 {sha}" if sha else ""),
    )
    return params, EcmFitReport(levels=levels, capacity_Ah=cap, ocv_source=ocv_source, ocv_soc_pct=ocv_soc,
                                ocv_V=ocv_v)


@functools.lru_cache(maxsize=8)
def load_fitted_ecm(name: str = "leaf_cell_ecm2_25C") -> EcmParameters:
    """A packaged 2-RC fit (listed under ``ecm_tables`` of a parameter set, read by
    :func:`releaf.parameters.ecm_table_text`; the Leaf's are written by ``scripts/fit_leaf_ecm2.py``).

    Raises
    ------
    ConfigError : no such packaged table
    InputFileError : a file that is not a 2-RC fit.
    """
    fname, text = parameters.ecm_table_text(name)
    try:
        return EcmParameters.from_dict(json.loads(text)["parameters"])
    except (ValueError, KeyError, TypeError) as err:
        raise InputFileError(fname, f"not a releaf ECM table: {err}") from None


I0_BOUNDS_A = (1.0, 1000.0)
STEP_ONSET_S = 30.0


@dataclass(frozen=True)
class ButlerVolmerFit:
    """A 2-RC model whose first pair is a Butler-Volmer element (see :func:`releaf.models.ecm.simulate`).

    Attributes
    ----------
    params : R0, R2 and the zero-current R1 refitted per level at ``i0_A``; OCV, time constants and capacity of
        the linear fit (simulate with ``i0_A=i0_A``)
    i0_A : exchange-current scale of the first pair [A] (of the tested unit)
    linear : the linear fit it starts from (:func:`fit_ecm_2rc`)
    profile : ``i0_A`` [A] and ``rmse_mV`` over all fitted samples of all levels, for a grid of I0 and for the
        linear limit (``i0_A`` = inf)
    rmse_linear_mV, rmse_mV : the same for the linear limit and at the fitted I0 [mV]
    """

    params: EcmParameters
    i0_A: float
    linear: EcmParameters
    profile: pl.DataFrame
    rmse_linear_mV: float
    rmse_mV: float


def fit_butler_volmer_2rc(ts, *, capacity_Ah: float | None = None, ocv_shape=None,
                          temperature_C: float | None = None, step_onset_s: float = STEP_ONSET_S,
                          i0_bounds_A: tuple[float, float] = I0_BOUNDS_A,
                          fit_soc_step: bool = False) -> ButlerVolmerFit:
    """One exchange-current scale I0 for the whole test, from the current dependence of the HPPC steps.

    The time constants of every level are those of :func:`fit_ecm_2rc`. For a given I0 the model is linear in
    R0, R1 (zero-current) and R2 (the first pair driven by ``2 I0 asinh(i / (2 I0))``), solved per level by
    non-negative least squares over the samples :func:`fit_ecm_2rc` fits (the discharge pulse, the rest, the
    regen pulse, the relaxation after the SOC step, and with ``fit_soc_step`` the step itself) plus the first
    ``step_onset_s`` of the SOC-step discharge, so that the three current magnitudes of the test (discharge
    pulse, regen pulse, SOC step) all enter. I0 is
    the value that minimises the summed squared error over all levels (log grid, then a bounded scalar search).
    A level with no relaxation holds R2 (as :func:`fit_ecm_2rc` does). The Butler-Volmer element is symmetric
    (transfer coefficient 0.5): a charge (regen) pulse enters with its sign through the odd ``asinh``.

    Parameters
    ----------
    ts : the HPPC test, current + = charge
    capacity_Ah, ocv_shape, temperature_C, fit_soc_step : as :func:`fit_ecm_2rc`
    step_onset_s : how much of the SOC-step discharge to fit [s] (its OCV change is small: 10 A for 30 s is
        0.15 % SOC of a 56 Ah cell)
    i0_bounds_A : search range of I0 [A]

    Returns
    -------
    :class:`ButlerVolmerFit`

    References
    ----------
    Bard & Faulkner, Electrochemical Methods, 2nd ed. (2001), section 3.4. Golub & Pereyra (1973),
    doi:10.1137/0710036 (linear parameters solved inside a one-dimensional non-linear search).
    """
    from scipy.optimize import minimize_scalar

    linear, report = fit_ecm_2rc(ts, capacity_Ah=capacity_Ah, ocv_shape=ocv_shape, temperature_C=temperature_C,
                                 fit_soc_step=fit_soc_step)
    df, name, t, v, i, step = hppc.hppc_input(ts)
    tab = hppc.hppc_table(ts, capacity_Ah=capacity_Ah)
    soc, _, _, _ = hppc.soc_from_top_pct(t, i, step, capacity_Ah=capacity_Ah)
    lv_rows = {r["level"]: r for r in report.levels.iter_rows(named=True)}
    prepared, level_soc = [], []
    for lv, a, b, relaxation, pulses_end, w in _windows(t, v, i, soc, tab, report.ocv_soc_pct, report.ocv_V,
                                                        fit_soc_step):
        tw = t[a : b + 1]
        onset = (np.arange(tw.size) > pulses_end - a) & (tw <= t[pulses_end] + step_onset_s)
        onset &= np.abs(w.i) > hppc.REST_FRACTION * float(np.max(np.abs(i)))
        mask = w.fitted | onset
        r = lv_rows[lv]
        u2 = rc_unit_response(w.i, w.runs, r["tau2_s"])[mask]
        prepared.append((w, mask, r["tau1_s"], u2, relaxation, r["r2_mOhm"] * 1e-3))
        level_soc.append(float(soc[a]))

    def solve(i0):
        sse, n, out = 0.0, 0, []
        for w, mask, tau1, u2, relaxation, r2 in prepared:
            i_ct = w.i if i0 is None else 2.0 * i0 * np.arcsinh(w.i / (2.0 * i0))
            u1 = rc_unit_response(i_ct, w.runs, tau1)[mask]
            y = w.target[mask]
            if relaxation:
                x, _ = nnls(np.column_stack((w.i[mask], u1, u2)), y)
            else:
                x01, _ = nnls(np.column_stack((w.i[mask], u1)), y - r2 * u2)
                x = np.array([x01[0], x01[1], r2])
            res = np.column_stack((w.i[mask], u1, u2)) @ x - y
            sse += float(res @ res)
            n += res.size
            out.append(x)
        return sse, n, out

    grid = np.geomspace(*i0_bounds_A, 25)
    sse_grid = [solve(g)[0] for g in grid]
    k = int(np.argmin(sse_grid))
    lo, hi = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, grid.size - 1)])
    best = minimize_scalar(lambda x: solve(float(np.exp(x)))[0], bounds=(lo, hi), method="bounded",
                           options={"xatol": 1e-4})
    i0 = float(np.exp(best.x))
    sse, n, xs = solve(i0)
    sse_lin, n_lin, _ = solve(None)
    # levels in window order -> SOC order
    level_soc = np.array(level_soc)
    order = np.argsort(level_soc)
    xs, level_soc = np.array(xs)[order], level_soc[order]
    grid_soc = linear.soc_pct
    params = replace(linear, r0_Ohm=np.interp(grid_soc, level_soc, xs[:, 0]),
                     r1_Ohm=np.interp(grid_soc, level_soc, xs[:, 1]), r2_Ohm=np.interp(grid_soc, level_soc, xs[:, 2]),
                     source=f"{linear.source}; first RC pair Butler-Volmer, I0 {i0:.4g} A "
                            "(releaf.models.ecm_fit.fit_butler_volmer_2rc)")
    profile = pl.DataFrame({"i0_A": [*grid.tolist(), float("inf")],
                            "rmse_mV": [1e3 * np.sqrt(s_ / n) for s_ in sse_grid] + [1e3 * np.sqrt(sse_lin / n_lin)]})
    return ButlerVolmerFit(params=params, i0_A=i0, linear=linear, profile=profile,
                           rmse_linear_mV=1e3 * float(np.sqrt(sse_lin / n_lin)), rmse_mV=1e3 * float(np.sqrt(sse / n)))
