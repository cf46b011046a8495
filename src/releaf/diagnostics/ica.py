"""Incremental capacity (dQ/dV) and differential voltage (dV/dQ) of slow constant-current segments.

At a low rate the terminal voltage follows the OCV closely, so the phase transitions of the electrodes show up as
peaks of dQ/dV (voltage plateaus) and of dV/dQ (boundaries between plateaus). Their positions, heights and areas
track the ageing modes: a shift of the peaks along V is resistance or a change of the electrode balance, a loss
of area is loss of active material of the electrode that owns the peak, and the spacing of the dV/dQ peaks along
Q measures the charge between two electrode features (loss of lithium inventory moves it, loss of active
material shrinks it).

Method: the measured charge Q [Ah] (``releaf.diagnostics.capacity.cumulative_Ah``) and voltage V are resampled on
a uniform V grid (ICA) or Q grid (DVA) by linear interpolation, the derivative is taken with a Savitzky–Golay
filter (a local polynomial fit, which smooths and differentiates in one step), and peaks are found with
``scipy.signal.find_peaks``. ``dQ/dV`` is reported positive for charge and discharge alike (Q and V move
together), ``dV/dQ`` as a magnitude along the charge moved.

A series resistance outside the cell (cables, contacts) shifts the whole curve by ``I R``: the ORNL C/15 file
shows a 240 mV step at the 2.17 A edge (111 mOhm, about 70 times the cell's ohmic resistance), so its discharge
curve sits ~0.24 V low. ``r_series_Ohm="edge"`` removes the drop measured at the segment's first current step
(``V + |I| R`` on discharge), which moves the peaks without changing their heights or areas.

References
----------
M. Dubarry, C. Truchot, B. Y. Liaw, "Synthesize battery degradation modes via a diagnostic and prognostic model",
J. Power Sources 219 (2012) 204–216, doi:10.1016/j.jpowsour.2012.07.016 (ICA features and degradation modes).
I. Bloom et al., "Differential voltage analyses of high-power, lithium-ion cells 1. Technique and application",
J. Power Sources 139 (2005) 295–303, doi:10.1016/j.jpowsour.2004.07.021 (DVA).
A. Savitzky, M. J. E. Golay, Anal. Chem. 36 (1964) 1627, doi:10.1021/ac60214a047 (smoothing differentiation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.signal import find_peaks, savgol_filter

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.errors import InputFileError
from releaf.schema import TimeSeries

VOLTAGE_STEP_V = 0.002
WINDOW_V = 0.04
CHARGE_STEP_FRACTION = 1.0 / 600.0
WINDOW_FRACTION = 1.0 / 30.0
POLYORDER = 2
PEAK_PROMINENCE_FRACTION = 0.05
# DVA peaks nearer than this fraction of the segment's charge to its ends are the cut-off divergences, not features.
DVA_EDGE_FRACTION = 0.05
# Current within this fraction of the segment's first current counts as constant (CV tails are left out).
CC_TOLERANCE = 0.02
MIN_SEGMENT_S = 3600.0
# The edge resistance is read only across samples at most this far apart [s].
EDGE_MAX_GAP_S = 2.0


@dataclass(frozen=True)
class Segment:
    """A constant-current segment: samples ``first..last`` of a table, ``current_A`` (+ = charge)."""

    first: int
    last: int
    current_A: float
    start_s: float
    duration_s: float


def constant_current_segments(
    ts: TimeSeries,
    *,
    kind: str = "discharge",
    max_current_A: float | None = None,
    min_duration_s: float = MIN_SEGMENT_S,
    tolerance: float = CC_TOLERANCE,
) -> list[Segment]:
    """Constant-current charge or discharge segments of a test (the CC part of a CC-CV charge included).

    Parameters
    ----------
    ts : canonical time series
    kind : ``"discharge"`` or ``"charge"``
    max_current_A : keep segments with ``|I|`` at most this [A] (e.g. C/10 of the cell); default all
    min_duration_s : shortest segment kept [s]
    tolerance : relative deviation from the segment's first current that still counts as constant [-]

    Returns
    -------
    Segments in time order; each lies within one cycler step when the table has ``step_index``.
    """
    if kind not in ("discharge", "charge"):
        raise ValueError("kind must be 'discharge' or 'charge'")
    d = ts.data
    t, i = d["test_time_s"].to_numpy(), d["current_A"].to_numpy()
    step = d["step_index"].to_numpy() if "step_index" in d.columns else np.zeros(len(i), dtype=int)
    sign = -1.0 if kind == "discharge" else 1.0
    out = []
    k, n = 0, len(i)
    while k < n:
        if sign * i[k] <= 0 or (max_current_A is not None and abs(i[k]) > max_current_A * (1 + tolerance)):
            k += 1
            continue
        j = k
        while j + 1 < n and step[j + 1] == step[k] and abs(i[j + 1] - i[k]) <= tolerance * abs(i[k]):
            j += 1
        start = k - 1 if k > 0 else k
        if t[j] - t[start] >= min_duration_s:
            out.append(Segment(k, j, float(np.mean(i[k : j + 1])), float(t[start]), float(t[j] - t[start])))
        k = j + 1
    return out


def edge_resistance_Ohm(ts: TimeSeries, segment: Segment) -> float:
    """Voltage step over current step at the segment's start [Ohm] (last sample before it vs its first sample).

    Raises
    ------
    InputFileError : the segment starts the file, or the two samples are more than ``EDGE_MAX_GAP_S`` apart
    """
    d = ts.data
    k = segment.first
    t, v, i = d["test_time_s"].to_numpy(), d["voltage_V"].to_numpy(), d["current_A"].to_numpy()
    if k == 0 or t[k] - t[k - 1] > EDGE_MAX_GAP_S or i[k] == i[k - 1]:
        raise InputFileError(ts.meta.path, f"no current step sampled within {EDGE_MAX_GAP_S} s before the segment "
                                             f"at {t[k]:.0f} s: pass r_series_Ohm as a number", line=k + 1)
    return float((v[k] - v[k - 1]) / (i[k] - i[k - 1]))


def _odd_window(window: float, step: float, n: int, polyorder: int) -> int:
    w = int(round(window / step)) | 1
    w = min(w, n if n % 2 else n - 1)
    return max(w, polyorder + 2 if (polyorder + 2) % 2 else polyorder + 3)


def incremental_capacity(voltage_V, charge_Ah, *, voltage_step_V: float = VOLTAGE_STEP_V, window_V: float = WINDOW_V,
                         polyorder: int = POLYORDER) -> tuple[np.ndarray, np.ndarray]:
    """dQ/dV of one constant-current segment on a uniform voltage grid.

    Parameters
    ----------
    voltage_V : voltage per sample [V]
    charge_Ah : charge passed per sample [Ah] (any offset; it rises on charge and falls on discharge)
    voltage_step_V : grid spacing [V]; default 2 mV
    window_V : Savitzky–Golay window [V]; default 40 mV (21 grid points)
    polyorder : Savitzky–Golay polynomial order; default 2

    Returns
    -------
    grid_V : voltages [V], increasing
    dqdv_Ah_per_V : incremental capacity [Ah/V], positive

    References
    ----------
    M. Dubarry, C. Truchot, B. Y. Liaw, J. Power Sources 219 (2012) 204, doi:10.1016/j.jpowsour.2012.07.016.
    """
    v = np.asarray(voltage_V, dtype=float)
    q = np.asarray(charge_Ah, dtype=float)
    # Q as a function of V: samples at the same voltage (a 1 mV resolution on a plateau) are averaged
    u, inverse = np.unique(v, return_inverse=True)
    q_mean = np.bincount(inverse, q) / np.bincount(inverse)
    if u.size < 3:
        raise ValueError("the segment spans fewer than three distinct voltages")
    grid = np.arange(np.ceil(u[0] / voltage_step_V) * voltage_step_V, u[-1], voltage_step_V)
    q_grid = np.interp(grid, u, q_mean)
    w = _odd_window(window_V, voltage_step_V, grid.size, polyorder)
    dqdv = savgol_filter(q_grid, w, polyorder, deriv=1, delta=voltage_step_V)
    # the signed charge rises with V on charge and on discharge alike, so dQ/dV is positive for both
    return grid, dqdv


def differential_voltage(charge_Ah, voltage_V, *, charge_step_Ah: float | None = None,
                         window_Ah: float | None = None, polyorder: int = POLYORDER) -> tuple[np.ndarray, np.ndarray]:
    """|dV/dQ| of one constant-current segment on a uniform grid of charge moved.

    Parameters
    ----------
    charge_Ah : charge passed per sample [Ah]
    voltage_V : voltage per sample [V]
    charge_step_Ah : grid spacing [Ah]; default 1/600 of the segment's charge
    window_Ah : Savitzky–Golay window [Ah]; default 1/30 of the segment's charge
    polyorder : Savitzky–Golay polynomial order; default 2

    Returns
    -------
    grid_Ah : charge moved since the segment start [Ah], increasing from 0
    dvdq_V_per_Ah : differential voltage magnitude [V/Ah]

    References
    ----------
    I. Bloom et al., J. Power Sources 139 (2005) 295, doi:10.1016/j.jpowsour.2004.07.021.
    """
    q = np.abs(np.asarray(charge_Ah, dtype=float) - float(np.asarray(charge_Ah)[0]))
    v = np.asarray(voltage_V, dtype=float)
    span = float(q[-1])
    if span <= 0:
        raise ValueError("the segment moved no charge")
    step = span * CHARGE_STEP_FRACTION if charge_step_Ah is None else charge_step_Ah
    window = span * WINDOW_FRACTION if window_Ah is None else window_Ah
    keep = np.concatenate(([True], np.diff(q) > 0))  # Q must increase strictly for the interpolation
    grid = np.arange(0.0, span, step)
    v_grid = np.interp(grid, q[keep], v[keep])
    w = _odd_window(window, step, grid.size, polyorder)
    return grid, np.abs(savgol_filter(v_grid, w, polyorder, deriv=1, delta=step))


def ica_peaks(grid_V, dqdv_Ah_per_V, *, prominence_fraction: float = PEAK_PROMINENCE_FRACTION) -> pl.DataFrame:
    """Peaks of an incremental-capacity curve and the charge under each.

    Parameters
    ----------
    grid_V, dqdv_Ah_per_V : output of :func:`incremental_capacity` [V, Ah/V]
    prominence_fraction : minimum peak prominence as a fraction of the curve's maximum [-]

    Returns
    -------
    One row per peak in increasing voltage: ``peak_V`` [V], ``height_Ah_per_V`` [Ah/V], ``valley_low_V``,
    ``valley_high_V`` [V] (the minima to the neighbouring peaks, or the curve's ends), ``area_Ah`` [Ah] (integral
    of dQ/dV between the two valleys; the areas add up to the segment's charge).
    """
    g = np.asarray(grid_V, dtype=float)
    y = np.asarray(dqdv_Ah_per_V, dtype=float)
    peaks, _ = find_peaks(y, prominence=prominence_fraction * float(np.max(y)))
    bounds = [0]
    for p0, p1 in zip(peaks[:-1], peaks[1:], strict=True):
        bounds.append(int(p0 + np.argmin(y[p0 : p1 + 1])))
    bounds.append(len(g) - 1)
    rows = []
    for k, p in enumerate(peaks):
        lo, hi = bounds[k], bounds[k + 1]
        rows.append({"peak_V": float(g[p]), "height_Ah_per_V": float(y[p]), "valley_low_V": float(g[lo]),
                     "valley_high_V": float(g[hi]), "area_Ah": float(np.trapezoid(y[lo : hi + 1], g[lo : hi + 1]))})
    schema = {"peak_V": pl.Float64, "height_Ah_per_V": pl.Float64, "valley_low_V": pl.Float64,
              "valley_high_V": pl.Float64, "area_Ah": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def dva_peaks(grid_Ah, dvdq_V_per_Ah, *, prominence_fraction: float = PEAK_PROMINENCE_FRACTION,
              edge_fraction: float = DVA_EDGE_FRACTION) -> pl.DataFrame:
    """Peaks of a differential-voltage curve and their spacing.

    Parameters
    ----------
    grid_Ah, dvdq_V_per_Ah : output of :func:`differential_voltage` [Ah, V/Ah]
    prominence_fraction : minimum prominence as a fraction of the largest value inside the edges [-]
    edge_fraction : ignore this fraction of the charge at each end (the divergence at the voltage limits) [-]

    Returns
    -------
    One row per peak: ``peak_Ah`` [Ah] (charge moved from the segment start), ``height_V_per_Ah`` [V/Ah],
    ``spacing_Ah`` [Ah] (to the previous peak; NaN for the first).
    """
    q = np.asarray(grid_Ah, dtype=float)
    y = np.asarray(dvdq_V_per_Ah, dtype=float)
    inner = (q >= edge_fraction * q[-1]) & (q <= (1 - edge_fraction) * q[-1])
    idx = np.flatnonzero(inner)
    rows = []
    if idx.size >= 3:
        peaks, _ = find_peaks(y[idx], prominence=prominence_fraction * float(np.max(y[idx])))
        prev = None
        for p in idx[peaks]:
            rows.append({"peak_Ah": float(q[p]), "height_V_per_Ah": float(y[p]),
                         "spacing_Ah": float(q[p] - prev) if prev is not None else float("nan")})
            prev = q[p]
    return pl.DataFrame(rows, schema={"peak_Ah": pl.Float64, "height_V_per_Ah": pl.Float64, "spacing_Ah": pl.Float64})


@dataclass(frozen=True)
class SegmentAnalysis:
    """ICA and DVA of one segment."""

    segment: Segment
    r_series_Ohm: float
    charge_Ah: float
    grid_V: np.ndarray
    dqdv_Ah_per_V: np.ndarray
    grid_Ah: np.ndarray
    dvdq_V_per_Ah: np.ndarray
    ica: pl.DataFrame
    dva: pl.DataFrame


def analyse_segment(
    ts: TimeSeries,
    segment: Segment,
    *,
    r_series_Ohm: float | str = 0.0,
    voltage_step_V: float = VOLTAGE_STEP_V,
    window_V: float = WINDOW_V,
    charge_step_Ah: float | None = None,
    window_Ah: float | None = None,
    polyorder: int = POLYORDER,
    prominence_fraction: float = PEAK_PROMINENCE_FRACTION,
    voltage_column: str = "voltage_V",
) -> SegmentAnalysis:
    """ICA and DVA curves and features of one constant-current segment.

    Parameters
    ----------
    ts : canonical time series
    segment : from :func:`constant_current_segments`
    r_series_Ohm : resistance whose drop is removed from the voltage, ``V - I R`` [Ohm]; ``"edge"`` measures it
        at the segment's first current step (:func:`edge_resistance_Ohm`); default 0 (raw voltage)
    voltage_step_V, window_V, charge_step_Ah, window_Ah, polyorder : see :func:`incremental_capacity` and
        :func:`differential_voltage`
    prominence_fraction : see :func:`ica_peaks`
    voltage_column : ``voltage_V`` or a series-group column ``group_voltage_V_k`` (then ``"edge"`` uses that
        group's step)

    Returns
    -------
    :class:`SegmentAnalysis`
    """
    d = ts.data
    a, b = segment.first, segment.last
    t, i = d["test_time_s"].to_numpy(), d["current_A"].to_numpy()
    v = d[voltage_column].to_numpy()
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    if r_series_Ohm == "edge":
        r = edge_resistance_Ohm(ts.with_data(d.with_columns(pl.col(voltage_column).alias("voltage_V"))), segment)
    else:
        r = float(r_series_Ohm)
    start = a - 1 if a > 0 else a
    q = cumulative_Ah(t[start : b + 1], i[start : b + 1], None if step is None else step[start : b + 1],
                      None if step_time is None else step_time[start : b + 1])[1:]
    vv = v[a : b + 1] - i[a : b + 1] * r
    grid_V, dqdv = incremental_capacity(vv, q, voltage_step_V=voltage_step_V, window_V=window_V, polyorder=polyorder)
    grid_Ah, dvdq = differential_voltage(np.concatenate(([0.0], q)), np.concatenate(([vv[0]], vv)),
                                         charge_step_Ah=charge_step_Ah, window_Ah=window_Ah, polyorder=polyorder)
    return SegmentAnalysis(segment, r, float(abs(q[-1])), grid_V, dqdv, grid_Ah, dvdq,
                           ica_peaks(grid_V, dqdv, prominence_fraction=prominence_fraction),
                           dva_peaks(grid_Ah, dvdq, prominence_fraction=prominence_fraction))


def ica_features(ts: TimeSeries, *, kind: str = "discharge", max_current_A: float | None = None,
                 min_duration_s: float = MIN_SEGMENT_S, **analysis_kwargs) -> pl.DataFrame:
    """ICA peak features of every slow constant-current segment of a test, one row per peak.

    Parameters
    ----------
    ts : canonical time series
    kind, max_current_A, min_duration_s : see :func:`constant_current_segments`
    **analysis_kwargs : passed to :func:`analyse_segment` (``r_series_Ohm``, grid and window parameters)

    Returns
    -------
    Columns ``segment`` (0-based, time order), ``start_s`` [s], ``current_A`` [A], ``charge_Ah`` [Ah],
    ``r_series_Ohm`` [Ohm], ``peak`` (0-based, increasing voltage) and the columns of :func:`ica_peaks`.
    """
    frames = []
    for n, seg in enumerate(constant_current_segments(ts, kind=kind, max_current_A=max_current_A,
                                                      min_duration_s=min_duration_s)):
        res = analyse_segment(ts, seg, **analysis_kwargs)
        frames.append(res.ica.with_row_index("peak").with_columns(
            pl.lit(n).alias("segment"), pl.lit(seg.start_s).alias("start_s"), pl.lit(seg.current_A).alias("current_A"),
            pl.lit(res.charge_Ah).alias("charge_Ah"), pl.lit(res.r_series_Ohm).alias("r_series_Ohm")))
    if not frames:
        return pl.DataFrame()
    first = ["segment", "start_s", "current_A", "charge_Ah", "r_series_Ohm", "peak"]
    out = pl.concat(frames)
    return out.select(first + [c for c in out.columns if c not in first]).with_columns(pl.col("peak").cast(pl.Int64))


def ica_plot(results: list[SegmentAnalysis], path, *, title: str = "") -> Path:
    """dQ/dV and |dV/dQ| of one or more segments side by side, written as a PNG.

    Parameters
    ----------
    results : analyses from :func:`analyse_segment`
    path : output file (``.png``)
    title : figure title

    Returns
    -------
    The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for n, r in enumerate(results):
        label = f"{n}: {r.charge_Ah:.2f} Ah at {r.segment.current_A:.2f} A"
        ax1.plot(r.grid_V, r.dqdv_Ah_per_V, lw=1, label=label)
        ax1.plot(r.ica["peak_V"], r.ica["height_Ah_per_V"], "k.", ms=4)
        ax2.plot(r.grid_Ah, r.dvdq_V_per_Ah, lw=1, label=label)
    ax1.set_xlabel("voltage [V]" + (" (IR-corrected)" if any(r.r_series_Ohm for r in results) else ""))
    ax1.set_ylabel("dQ/dV [Ah/V]")
    ax2.set_xlabel("charge moved [Ah]")
    ax2.set_ylabel("|dV/dQ| [V/Ah]")
    hi = max((float(np.percentile(r.dvdq_V_per_Ah, 95)) for r in results), default=1.0)
    ax2.set_ylim(0, 2 * hi)
    ax1.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["Segment", "SegmentAnalysis", "analyse_segment", "constant_current_segments", "differential_voltage",
           "dva_peaks", "edge_resistance_Ohm", "ica_features", "ica_peaks",
           "ica_plot", "incremental_capacity"]
