"""Open-circuit voltage from the rests of a test: rest points, their relaxation, and an OCV–SOC table.

After the current stops, the terminal voltage relaxes towards the open-circuit voltage (OCV) as the
concentration gradients in electrolyte and particles decay. A rest of finite length ends before that is over;
fitting ``V(t) = V_inf + A1 exp(-t / tau1) [+ A2 exp(-t / tau2)]`` to the rest and reading ``V_inf`` estimates
where it was heading. The end voltage of the rest is reported next to it: for a rest much longer than ``tau`` the
two agree, and their difference is the relaxation still left at the end.

SOC at a rest comes from coulomb counting (``releaf.diagnostics.capacity.cumulative_Ah``) from the nearest
*anchor*: the end of a charge that reached the top voltage (100 %) or of a discharge that reached the bottom
voltage (0 %), scaled by the charge measured between a full and an empty anchor.

References
----------
USABC/INL Battery Test Manual for Electric Vehicles, rev. 3 (INL/EXT-15-34184, 2015), HPPC test (rest points
before each pulse as OCV). M. Petzl, M. A. Danzer, "Advancements in OCV measurement and analysis for lithium-ion
batteries", IEEE Trans. Energy Convers. 28 (2013) 675–681, doi:10.1109/TEC.2013.2259490 (incremental OCV from
rests, relaxation). V. Pop et al., "Modeling battery behavior for accurate state-of-charge indication",
J. Electrochem. Soc. 153 (2006) A2013, doi:10.1149/1.2335951 (exponential relaxation extrapolation of the OCV).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import curve_fit

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.errors import InputFileError
from releaf.schema import TimeSeries, rest_mask

MIN_REST_S = 600.0
# A charge/discharge ends at "full"/"empty" when it ends within this of the file's top/bottom voltage.
ANCHOR_TOLERANCE_V = 0.01
# A charge counts as a full charge only if it lasted this long (HPPC regen pulses also touch the top voltage).
MIN_FULL_CHARGE_S = 600.0
# The fitted time constants may not exceed this multiple of the rest's length: beyond the record an exponential
# cannot be told from a drift, and V_inf would be an unconstrained extrapolation.
MAX_TAU_FACTOR = 1.0
# OCV points closer than this in SOC are averaged into one (a table must increase strictly).
MERGE_SOC_PCT = 0.5


@dataclass(frozen=True)
class RelaxationFit:
    """``V(t) = v_inf_V + sum_k amplitude_V[k] exp(-t / tau_s[k])`` fitted to one rest.

    Attributes
    ----------
    v_inf_V : asymptote, the OCV estimate [V]
    amplitude_V, tau_s : amplitudes [V] and time constants [s] of the exponentials, fastest first
    rmse_mV : root-mean-square residual of the fit [mV]
    at_bound : a time constant sits at its upper bound (``MAX_TAU_FACTOR`` x rest length): V_inf is not
        determined by the data
    ok : the fit converged and no time constant is at its bound
    """

    v_inf_V: float
    amplitude_V: tuple[float, ...]
    tau_s: tuple[float, ...]
    rmse_mV: float
    at_bound: bool
    ok: bool

    def voltage_V(self, t_s) -> np.ndarray:
        """The fitted curve at ``t_s`` [s] after the current stopped [V]."""
        t = np.asarray(t_s, dtype=float)
        return self.v_inf_V + sum(a * np.exp(-t / tau) for a, tau in zip(self.amplitude_V, self.tau_s, strict=True))


def relaxation_V(t, v_inf, *p):
    out = np.full_like(t, v_inf, dtype=float)
    for a, tau in zip(p[0::2], p[1::2], strict=True):
        out = out + a * np.exp(-t / tau)
    return out


def fit_relaxation(t_s, voltage_V, *, n_exp: int = 1, max_tau_factor: float = MAX_TAU_FACTOR) -> RelaxationFit:
    """Fit an exponential relaxation (one or two time constants) to the voltage of one rest.

    Parameters
    ----------
    t_s : time since the current stopped [s], increasing, at least ``2 n_exp + 2`` samples
    voltage_V : voltage during the rest [V]
    n_exp : number of exponentials, 1 or 2
    max_tau_factor : upper bound of each time constant as a multiple of the rest length [-]

    Returns
    -------
    :class:`RelaxationFit`; a fit that does not converge gives the last sample as ``v_inf_V`` with ``ok=False``.

    References
    ----------
    V. Pop et al., J. Electrochem. Soc. 153 (2006) A2013, doi:10.1149/1.2335951.
    """
    t = np.asarray(t_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    if n_exp not in (1, 2):
        raise ValueError("n_exp must be 1 or 2")
    span = float(t[-1])
    failed = RelaxationFit(float(v[-1]), (), (), float("nan"), False, False)
    if len(t) < 2 * n_exp + 2 or span <= 0:
        return failed
    tau_lo = max(float(np.min(np.diff(t))) / 2.0, 1e-3) if len(t) > 1 else 1.0
    tau_hi = max_tau_factor * span
    swing = float(v[0] - v[-1]) or 1e-3
    amp_hi = max(1.0, 10 * abs(swing))
    if n_exp == 1:
        p0 = [v[-1], swing, span / 4]
    else:
        p0 = [v[-1], swing / 2, span / 30, swing / 2, span / 3]
    lo = [float(v.min()) - 1.0] + [-amp_hi, tau_lo] * n_exp
    hi = [float(v.max()) + 1.0] + [amp_hi, tau_hi] * n_exp
    p0 = np.clip(p0, np.array(lo) + 1e-12, np.array(hi) - 1e-12)
    try:
        p, _ = curve_fit(relaxation_V, t, v, p0=p0, bounds=(lo, hi), maxfev=20000)
    except (RuntimeError, ValueError):
        return failed
    pairs = sorted(zip(p[1::2], p[2::2], strict=True), key=lambda x: x[1])
    rmse = float(1000.0 * np.sqrt(np.mean((v - relaxation_V(t, *p)) ** 2)))
    at_bound = any(tau >= 0.999 * tau_hi for _, tau in pairs)
    return RelaxationFit(float(p[0]), tuple(float(a) for a, _ in pairs), tuple(float(tau) for _, tau in pairs),
                         rmse, at_bound, not at_bound)


def rest_samples(ts: TimeSeries, *, rest_current_A: float | None = None) -> np.ndarray:
    """:func:`releaf.schema.rest_mask` of a table: the cycler's ``step_type == "rest"`` when the table has it,
    else ``|I| <= releaf.schema.rest_threshold_A``; with ``rest_current_A``, ``|I| <= rest_current_A``.

    Parameters
    ----------
    ts : canonical time series
    rest_current_A : current magnitude at or below which a sample is rest [A]; when given, it is used even if
        the table has ``step_type``
    """
    d = ts.data
    step_type = d["step_type"] if "step_type" in d.columns else None
    return rest_mask(d["current_A"], rest_current_A, step_type=step_type)


def split_runs(mask: np.ndarray, breaks: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(first, last) of each run of True, also split where ``breaks`` changes value."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    out = []
    for a, b in zip(starts, ends, strict=True):
        if breaks is None:
            out.append((int(a), int(b)))
            continue
        cut = np.flatnonzero(breaks[a + 1 : b + 1] != breaks[a:b]) + a + 1
        bounds = [a, *cut.tolist(), b + 1]
        out += [(int(x), int(y) - 1) for x, y in zip(bounds[:-1], bounds[1:], strict=True)]
    return out


def counted_Ah(ts: TimeSeries, *, rest: np.ndarray | None = None) -> np.ndarray:
    """Charge passed since the first sample [Ah] (positive = in), with the current of rest samples taken as zero.

    Parameters
    ----------
    ts : canonical time series
    rest : rest mask (see :func:`rest_samples`); default ``rest_samples(ts)``
    """
    d = ts.data
    rest = rest_samples(ts) if rest is None else rest
    i = np.where(rest, 0.0, d["current_A"].to_numpy())
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    return cumulative_Ah(d["test_time_s"].to_numpy(), i, step, step_time)


def _anchors(ts: TimeSeries, rest: np.ndarray, full_voltage_V, empty_voltage_V) -> list[tuple[int, str]]:
    d = ts.data
    t, v, i = (d[c].to_numpy() for c in ("test_time_s", "voltage_V", "current_A"))
    active = ~rest
    charge, discharge = active & (i > 0), active & (i < 0)
    top = float(np.max(v[charge])) if charge.any() else np.inf
    bottom = float(np.min(v[discharge])) if discharge.any() else -np.inf
    top = top if full_voltage_V is None else full_voltage_V
    bottom = bottom if empty_voltage_V is None else empty_voltage_V
    out = []
    for a, b in split_runs(charge):
        if v[b] >= top - ANCHOR_TOLERANCE_V and t[b] - t[max(a - 1, 0)] >= MIN_FULL_CHARGE_S:
            out.append((b, "full"))
    for _, b in split_runs(discharge):
        if v[b] <= bottom + ANCHOR_TOLERANCE_V:
            out.append((b, "empty"))
    return sorted(out)


def _pair_capacities(q: np.ndarray, anchors: list[tuple[int, str]]) -> list[float]:
    """Charge between consecutive anchors of opposite kind [Ah] (NaN between two of the same kind)."""
    return [abs(float(q[a] - q[b])) if ka != kb else float("nan")
            for (a, ka), (b, kb) in zip(anchors[:-1], anchors[1:], strict=True)]


def anchor_capacities_Ah(
    ts: TimeSeries,
    *,
    full_voltage_V: float | None = None,
    empty_voltage_V: float | None = None,
    rest_current_A: float | None = None,
) -> np.ndarray:
    """Charge measured between each full and the next empty anchor, or empty and the next full one [Ah].

    Parameters
    ----------
    ts, full_voltage_V, empty_voltage_V, rest_current_A : see :func:`soc_by_counting`

    Returns
    -------
    Capacities [Ah] in time order (discharges and charges alike); empty if the test has no such pair.
    """
    rest = rest_samples(ts, rest_current_A=rest_current_A)
    caps = _pair_capacities(counted_Ah(ts, rest=rest), _anchors(ts, rest, full_voltage_V, empty_voltage_V))
    return np.array([c for c in caps if np.isfinite(c) and c > 0])


def soc_by_counting(
    ts: TimeSeries,
    *,
    capacity_Ah: float | None = None,
    full_voltage_V: float | None = None,
    empty_voltage_V: float | None = None,
    rest_current_A: float | None = None,
) -> np.ndarray:
    """State of charge of every sample by coulomb counting from the nearest full or empty anchor.

    Parameters
    ----------
    ts : canonical time series
    capacity_Ah : capacity between 0 and 100 % [Ah]; default the charge measured between the full and empty
        anchors that enclose the sample (the same definition as ``scripts/derive_leaf_ocv.py``), else the median of
        all such measurements in the file
    full_voltage_V : top voltage [V]; a charge lasting at least ``MIN_FULL_CHARGE_S`` that ends within
        ``ANCHOR_TOLERANCE_V`` of it marks 100 %. Default: the highest voltage while charging
    empty_voltage_V : bottom voltage [V]; a discharge ending within ``ANCHOR_TOLERANCE_V`` of it marks 0 %.
        Default: the lowest voltage while discharging (pass the cut-off when the file never reached it)
    rest_current_A : see :func:`rest_samples`

    Returns
    -------
    ``soc_pct`` per sample [%], NaN where no anchor or no capacity is known. Counted from the last anchor at or
    before the sample, or the first one after it for samples before any anchor.
    """
    rest = rest_samples(ts, rest_current_A=rest_current_A)
    q = counted_Ah(ts, rest=rest)
    anchors = _anchors(ts, rest, full_voltage_V, empty_voltage_V)
    n = len(q)
    soc = np.full(n, np.nan)
    if not anchors:
        return soc
    idx = np.array([a for a, _ in anchors])
    kinds = [k for _, k in anchors]
    pair_cap = _pair_capacities(q, anchors)
    measured = [c for c in pair_cap if np.isfinite(c) and c > 0]
    fallback = capacity_Ah if capacity_Ah is not None else (float(np.median(measured)) if measured else np.nan)
    k = np.arange(n)
    # segment j: samples between anchor j and anchor j+1 (before the first anchor: segment -1)
    seg = np.searchsorted(idx, k, side="right") - 1
    for j in range(-1, len(idx)):
        sel = seg == j
        if not sel.any():
            continue
        ref = max(j, 0)
        cap = fallback
        if capacity_Ah is None and 0 <= j < len(pair_cap) and np.isfinite(pair_cap[j]) and pair_cap[j] > 0:
            cap = pair_cap[j]
        delta = q[sel] - q[idx[ref]]
        base = 100.0 if kinds[ref] == "full" else 0.0
        soc[sel] = base + 100.0 * delta / cap
    return soc


def rest_points(
    ts: TimeSeries,
    *,
    min_rest_s: float = MIN_REST_S,
    n_exp: int = 1,
    max_tau_factor: float = MAX_TAU_FACTOR,
    capacity_Ah: float | None = None,
    full_voltage_V: float | None = None,
    empty_voltage_V: float | None = None,
    rest_current_A: float | None = None,
) -> pl.DataFrame:
    """Every rest of a test with its end voltage, fitted OCV, relaxation left and SOC.

    A rest is a run of rest samples (:func:`rest_samples`) inside one cycler step; it starts when the preceding
    current stopped (the last sample before the run, following the cycler's step-change convention).

    Parameters
    ----------
    ts : canonical time series (group voltages, when present, are fitted too)
    min_rest_s : shortest rest reported [s]
    n_exp : exponentials in the relaxation fit (1 or 2), see :func:`fit_relaxation`
    max_tau_factor : upper bound of the time constants as a multiple of the rest length [-]
    capacity_Ah, full_voltage_V, empty_voltage_V, rest_current_A : see :func:`soc_by_counting`

    Returns
    -------
    One row per rest: ``start_s``, ``end_s``, ``duration_s`` [s], ``current_before_A`` [A] (the current that
    stopped), ``soc_pct`` [%], ``end_voltage_V`` [V], ``ocv_V`` [V] (fitted ``V_inf``), ``relaxation_left_mV``
    [mV] (``end_voltage_V - ocv_V``), ``tau1_s``, ``tau2_s`` [s] (NaN if not fitted), ``rmse_mV`` [mV],
    ``fit_ok``; per series group k: ``group_end_voltage_V_k``, ``group_ocv_V_k`` [V].

    References
    ----------
    M. Petzl, M. A. Danzer, IEEE Trans. Energy Convers. 28 (2013) 675, doi:10.1109/TEC.2013.2259490.
    """
    d = ts.data
    t, v, i = (d[c].to_numpy() for c in ("test_time_s", "voltage_V", "current_A"))
    rest = rest_samples(ts, rest_current_A=rest_current_A)
    soc = soc_by_counting(ts, capacity_Ah=capacity_Ah, full_voltage_V=full_voltage_V,
                          empty_voltage_V=empty_voltage_V, rest_current_A=rest_current_A)
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    groups = {c: d[c].to_numpy() for c in ts.group_columns}
    rows = []
    for a, b in split_runs(rest, step):
        start = a - 1 if a > 0 else a
        x = t[a : b + 1] - t[start]
        if t[b] - t[start] < min_rest_s:
            continue
        fit = fit_relaxation(x, v[a : b + 1], n_exp=n_exp, max_tau_factor=max_tau_factor)
        row = {
            "start_s": float(t[start]),
            "end_s": float(t[b]),
            "duration_s": float(t[b] - t[start]),
            "current_before_A": float(i[start]) if a > 0 else 0.0,
            "soc_pct": float(soc[b]),
            "end_voltage_V": float(v[b]),
            "ocv_V": fit.v_inf_V,
            "relaxation_left_mV": 1000.0 * (float(v[b]) - fit.v_inf_V),
            "tau1_s": fit.tau_s[0] if fit.tau_s else float("nan"),
            "tau2_s": fit.tau_s[1] if len(fit.tau_s) > 1 else float("nan"),
            "rmse_mV": fit.rmse_mV,
            "fit_ok": fit.ok,
        }
        for col, g in groups.items():
            k = col.removeprefix("group_voltage_V_")
            row[f"group_end_voltage_V_{k}"] = float(g[b])
            group_fit = fit_relaxation(x, g[a : b + 1], n_exp=n_exp, max_tau_factor=max_tau_factor)
            row[f"group_ocv_V_{k}"] = group_fit.v_inf_V
        rows.append(row)
    schema = {"start_s": pl.Float64, "end_s": pl.Float64, "duration_s": pl.Float64, "current_before_A": pl.Float64,
              "soc_pct": pl.Float64, "end_voltage_V": pl.Float64, "ocv_V": pl.Float64,
              "relaxation_left_mV": pl.Float64, "tau1_s": pl.Float64, "tau2_s": pl.Float64, "rmse_mV": pl.Float64,
              "fit_ok": pl.Boolean}
    for col in groups:
        k = col.removeprefix("group_voltage_V_")
        schema[f"group_end_voltage_V_{k}"] = pl.Float64
        schema[f"group_ocv_V_{k}"] = pl.Float64
    return pl.DataFrame(rows, schema=schema)


def ocv_table(
    ts: TimeSeries,
    *,
    value: str = "ocv_V",
    points: pl.DataFrame | None = None,
    merge_soc_pct: float = MERGE_SOC_PCT,
    **rest_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """OCV–SOC table from the rests of a test, in the form ``releaf.models.ocv`` and ``EcmParameters`` use.

    Parameters
    ----------
    ts : canonical time series with rests at several SOCs and at least one full or empty anchor
    value : ``"ocv_V"`` (relaxation-extrapolated, default) or ``"end_voltage_V"`` (voltage at the rest's end,
        the method of ``scripts/derive_leaf_ocv.py``), or a group column such as ``"group_ocv_V_1"``
    points : the output of :func:`rest_points`, if already computed (then ``rest_kwargs`` are ignored)
    merge_soc_pct : rests closer than this in SOC are averaged into one point [%]
    **rest_kwargs : passed to :func:`rest_points`

    Returns
    -------
    soc_pct : [%], strictly increasing
    ocv_V : [V], strictly increasing

    Raises
    ------
    InputFileError : fewer than two rests with a known SOC, or the rest voltages do not increase with SOC
        (mixed temperatures, hysteresis between charge and discharge rests, or a wrong anchor)
    """
    pts = rest_points(ts, **rest_kwargs) if points is None else points
    pts = pts.filter(pl.col("soc_pct").is_finite() & pl.col(value).is_finite()).sort("soc_pct")
    soc, ocv = pts["soc_pct"].to_numpy(), pts[value].to_numpy()
    if soc.size:
        group = np.concatenate(([0], np.cumsum(np.diff(soc) > merge_soc_pct)))
        soc = np.array([soc[group == g].mean() for g in np.unique(group)])
        ocv = np.array([ocv[group == g].mean() for g in np.unique(group)])
    if soc.size < 2:
        raise InputFileError(ts.meta.path, f"{soc.size} rest(s) with a known SOC; an OCV table needs two or more "
                                             "(the test needs rests and a full charge or a discharge to the cut-off)")
    if np.any(np.diff(ocv) <= 0):
        k = int(np.flatnonzero(np.diff(ocv) <= 0)[0])
        raise InputFileError(ts.meta.path, f"rest voltage does not increase with SOC: {ocv[k]:.4f} V at "
                                             f"{soc[k]:.1f} % then {ocv[k + 1]:.4f} V at {soc[k + 1]:.1f} %")
    return soc, ocv


__all__ = ["RelaxationFit", "anchor_capacities_Ah", "counted_Ah", "fit_relaxation", "ocv_table", "rest_points",
           "rest_samples", "soc_by_counting"]
