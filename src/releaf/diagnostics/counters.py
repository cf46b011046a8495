"""Per-step charge against the cycler's own capacity counter: the cross-check of releaf's integral.

releaf never computes with a cycler's counter (``vendor_capacity_Ah``); it recomputes the charge from the current
(:func:`releaf.diagnostics.capacity.cumulative_Ah`). This module compares the two, step by step, so a reader or an
integration rule that drifts from the cycler's own bookkeeping shows up as a number.

Counters restart by vendor: at every step (BDF, Neware CSV, Maccor ``Amp-hr``), at every charge or discharge
(Bitrode cell ``Capacity(Ah)``), at every cycle (Arbin ``.res``), or never (Arbin CSV, BioLogic ``(Q-Qo)``).
:func:`counter_restarts` tells which from the counter itself.

What a step's counter covers
----------------------------
A counter that restarts in a step counts from the moment the step began to its last sample; releaf's charge over
the same span is its integral from the step start (``test_time_s − step_time_s`` of the first sample, see
:func:`releaf.diagnostics.capacity.interval_weights`) to the last sample. A counter that runs on covers the
interval from the previous step's last sample to this step's last sample; so does releaf's. The time between a
step's last logged sample and the next step's start belongs to neither step: releaf books no charge there. The
counters say where the current really switched, and it is not where the stamps put it: BioLogic's BT-Lab CSV runs
the old current on to 2.000 ms (its shortest sample interval) before the new step's first sample at all 11 of its
step changes; its ``.mpr`` switches 0.2 ms (its shortest interval) before a charge's first sample, and runs the old
current 0.4 ms past its last sample before rests whose first sample comes 48-250 ms later; Arbin's ``.res``
counts 0-21 ms of the old current after its last sample, up to 31 ms past where the next step's step time says
it began. So the log does not place an unlogged step change; what that leaves open is bounded below.

What the log can resolve
------------------------
A counter integrates the current at the cycler's own rate; releaf integrates the logged samples. Limits of the log,
read from the file itself, bound how closely the two can agree, and are added to the counter's resolution
(:attr:`StepCharges.tolerance_Ah`):

* the logged current's resolution (its smallest non-zero change: 0.01 A in the ORNL Bitrode files, 1 uA in PEC's):
  each sample is rounded to it, so a step's charge is known to half of it times the step's duration. A 48 h rest
  logged at 0.00 / 0.01 A is 0.00-0.24 Ah;
* the sampling: between two samples the current is taken to move monotonically, so the charge of an interval lies
  between its two rectangles, within ``|I_k+1 - I_k| * dt / 2`` of the trapezoid. A CV taper logged every 60 s
  (Novonix), or a step whose first sample caught the current before it settled (Neware), is resolved no better;
* a step change the file does not place (:func:`step_change_bounds_Ah`): where the new step's start
  (``test_time_s − step_time_s`` of its first sample, the reader's sequence start for BioLogic) is not the old
  step's last sample. (a) The *unlogged end*: the old current may run on for any part of the time between the old
  step's last sample and the new step's start, ``|I_old| * gap`` (BT-Lab: 2.497 A for 38 of 40 ms, 2.64e-5 Ah;
  ``.mpr``: 0.325 mA for 0.4 of 250 ms). (b) The *placement*: the switch is placed no better than the acquisition
  period ``P`` (the file's shortest sample interval; a step's first sample comes up to one acquisition after the
  switch: BT-Lab's counter has 2 ms = ``P`` of a 2.49 A charge before its first sample, 1.39e-6 Ah) plus ``X``,
  the most by which the file anywhere stamps a step start before the previous step's last sample (its clocks
  contradict each other by that much: Arbin ``.res`` 29.9 ms, 0 elsewhere but a Maccor file's 10 s), at the larger
  of the two currents, ``(X + P) * max(|I_old|, |I_new|)``. Files whose step time puts each start at the old
  step's last sample (ORNL Bitrode, Maccor ``.034``, Neware, PEC) place every change and get neither term.
  Where they apply, these terms are bounds, not estimates: they hold at every step change of the three files
  (``tests/diagnostics/test_counters.py``, at up to 0.97 of the bound), but are loose where the gap is long (an
  ``.mpr`` rest: 2.3e-8 Ah allowed, 3.6e-11 Ah counted; BDF steps after a 60-500 s gap: up to half the step's
  charge). They assume a new step's first sample comes within one acquisition of its start; the ``.mpr`` rests
  show it need not (48-250 ms), harmless there only because a rest's current is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from releaf.diagnostics.capacity import SECONDS_PER_HOUR, cumulative_Ah, interval_weights, step_changes
from releaf.schema import TimeSeries, rest_threshold_A

RELATIVE_TOLERANCE = 1e-3
"""Agreement wanted between releaf's per-step charge and the cycler's counter: 0.1 % (issue 10, item 2)."""


@dataclass(frozen=True)
class StepCharges:
    """releaf's and the cycler's charge of every step but a file's first (whose counter may start mid-step).

    ``releaf_Ah`` and ``counter_Ah`` [Ah, positive = charge; magnitudes where the counter is unsigned] per step;
    ``first`` / ``last`` the step's sample rows; ``restarted`` per step, whether the counter restarted at its start;
    ``unsigned`` whether the counter counts magnitudes (never negative in a file that discharges: Bitrode's cell
    ``Capacity(Ah)``); ``resolution_Ah`` the counter's smallest non-zero increment [Ah]; ``log_resolution_Ah``
    per step, what the logged samples cannot resolve (the current's rounding over the step's duration, the
    sampling, and the step changes the file does not place: module docstring) [Ah].
    """

    first: np.ndarray
    last: np.ndarray
    releaf_Ah: np.ndarray
    counter_Ah: np.ndarray
    restarted: np.ndarray
    unsigned: bool
    resolution_Ah: float
    log_resolution_Ah: np.ndarray

    @property
    def difference_Ah(self) -> np.ndarray:
        return self.releaf_Ah - self.counter_Ah

    @property
    def tolerance_Ah(self) -> np.ndarray:
        """Per step: 0.1 % of the counter's charge, or the counter's resolution plus what the log cannot resolve
        (``log_resolution_Ah``), whichever is larger [Ah] (the resolutions read from the file's own increments carry
        float noise: 1 ppm of slack)."""
        return np.maximum(RELATIVE_TOLERANCE * np.abs(self.counter_Ah),
                          (self._counter_resolution + self.log_resolution_Ah) * (1 + 1e-6))

    @property
    def strict_tolerance_Ah(self) -> np.ndarray:
        """Per step: 0.1 % of the counter's charge or the counter's resolution alone [Ah]."""
        return np.maximum(RELATIVE_TOLERANCE * np.abs(self.counter_Ah), self._counter_resolution * (1 + 1e-6))

    @property
    def _counter_resolution(self) -> float:
        return self.resolution_Ah if np.isfinite(self.resolution_Ah) else 0.0

    @property
    def within(self) -> np.ndarray:
        return np.abs(self.difference_Ah) <= self.tolerance_Ah

    @property
    def within_strict(self) -> np.ndarray:
        """Within 0.1 % or the counter's resolution, the log's own limits left out."""
        return np.abs(self.difference_Ah) <= self.strict_tolerance_Ah


def smallest_change(values) -> float:
    """The smallest non-zero change between consecutive finite values (in their unit); NaN if none."""
    x = np.asarray(values, dtype=float)
    d = np.abs(np.diff(x[np.isfinite(x)]))
    d = d[d > 0]
    return float(d.min()) if d.size else float("nan")


def counter_resolution_Ah(counter_Ah) -> float:
    """The smallest non-zero increment of a counter [Ah] (its display or storage resolution); NaN if none."""
    return smallest_change(counter_Ah)


def current_resolution_A(current_A) -> float:
    """The smallest non-zero change of the logged current [A] (the resolution it is written with); NaN if none."""
    return smallest_change(current_A)


def acquisition_period_s(test_time_s) -> float:
    """The shortest positive interval between two logged samples [s]: the cycler acquires at least that often (it
    logged two samples that close); NaN if no interval is positive."""
    return smallest_change(test_time_s)


def step_change_bounds_Ah(test_time_s, current_A, step_index=None, step_time_s=None) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: what the log cannot resolve about the step change just before it [Ah] (0 where none).

    At a step change (sample ``k`` the old step's last, ``k + 1`` the new step's first) the new step began at
    ``t_k+1 - step_time_k+1`` as the file states it (clipped to the interval, as
    :func:`releaf.diagnostics.capacity.interval_weights` does; at ``t_k`` without a step time). Where that is the old
    step's last sample, to the float precision of the stamps, the file places the change: both bounds are 0.
    Elsewhere the change is not logged.

    Returns
    -------
    unlogged_end_Ah : ``|I_k| * (start - t_k)``. releaf books no charge between the old step's last sample and the
        new step's start; the old current may have run on for any part of that time (the log does not say when it
        stopped). It is in the new step's comparison only (a counter that runs on counts it there; the old step's
        is read at ``t_k``).
    placement_Ah : ``(X + P) * max(|I_k|, |I_k+1|)``, where ``X`` is the largest amount by which this file
        anywhere stamps a step start before the previous step's last sample (its clocks contradict each other by
        that much, so none of its unlogged changes is placed better) and ``P`` the acquisition period
        (:func:`acquisition_period_s`: a cycler switches and logs on its acquisitions, so a step's first sample
        comes up to one acquisition after the switch). Like the contradiction it comes from, it is counted in both
        steps.
    """
    t = np.asarray(test_time_s, dtype=float)
    i = np.nan_to_num(np.abs(np.asarray(current_A, dtype=float)))
    unlogged_end, placement = np.zeros(t.size), np.zeros(t.size)
    k = np.flatnonzero(step_changes(t.size, step_index, step_time_s))
    if k.size == 0:
        return unlogged_end, placement
    began = t[k].copy()
    if step_time_s is not None:
        stated = t[k + 1] - np.asarray(step_time_s, dtype=float)[k + 1]
        began = np.where(np.isfinite(stated), stated, began)
    # the file places the change where the stated start is the old step's last sample to the stamps' float precision
    unlogged = np.abs(began - t[k]) > 4 * np.spacing(np.maximum(np.abs(t[k]), np.abs(t[k + 1])))
    if not unlogged.any():
        return unlogged_end, placement
    k, began = k[unlogged], began[unlogged]
    contradiction_s = float(np.clip(t[k] - began, 0.0, None).max())
    period_s = acquisition_period_s(t)
    period_s = period_s if np.isfinite(period_s) else 0.0
    unlogged_end[k + 1] = i[k] * (np.clip(began, t[k], t[k + 1]) - t[k]) / SECONDS_PER_HOUR
    placement[k + 1] = (contradiction_s + period_s) * np.maximum(i[k], i[k + 1]) / SECONDS_PER_HOUR
    return unlogged_end, placement


def log_resolution_Ah(test_time_s, current_A, first, last, before, step_index=None, step_time_s=None) -> np.ndarray:
    """Per step (rows ``first`` to ``last``, ``before`` the sample before it): the charge the logged samples cannot
    resolve [Ah], the sum of

    * half the logged current's resolution (:func:`current_resolution_A`) times the time from ``before`` to
      ``last`` (every sample is rounded to it), and
    * ``|I_k+1 - I_k| * dt_k / 2`` over the step's own intervals (the current moving monotonically between two
      samples, the charge of an interval lies within that of the trapezoid), and
    * what the log cannot resolve about the step changes (:func:`step_change_bounds_Ah`; nothing where the file
      places a change at the old step's last sample): the unlogged end of the previous step, and the placement of
      the step's start and of the next step's start.
    """
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    res = current_resolution_A(i)
    res = res if np.isfinite(res) else 0.0
    dt = np.diff(t)
    inside = ~step_changes(t.size, step_index, step_time_s)
    spread = np.where(inside, np.abs(np.diff(i)) * dt / 2, 0.0)
    prefix = np.concatenate(([0.0], np.cumsum(np.nan_to_num(spread)))) / SECONDS_PER_HOUR
    rounding = 0.5 * res * (t[last] - t[before]) / SECONDS_PER_HOUR
    unlogged_end, placement = step_change_bounds_Ah(t, i, step_index, step_time_s)  # per sample: the change before
    following = np.minimum(np.asarray(last) + 1, t.size - 1)  # the next step's first sample (itself at the end)
    changes = unlogged_end[first] + placement[first] + np.where(np.asarray(last) + 1 < t.size, placement[following], 0)
    return rounding + prefix[last] - prefix[first] + changes


def step_starts(step_index, cycle_index=None, step_time_s=None) -> np.ndarray:
    """Rows where a cycler step begins (row 0 included): the step or the cycle number changes, or the step time
    falls (a step repeated with the same number)."""
    new = step_changes(len(step_index), step_index, step_time_s, cycle_index)
    return np.concatenate(([0], np.flatnonzero(new) + 1))


def counter_restarts(counter_Ah, starts, cycle_index=None) -> np.ndarray:
    """Per step start after the first (rows ``starts[1:]``): True where the counter restarted at 0 there.

    At a step start ``a`` a restart shows as ``|c[a]| < |c[a] - c[a-1]|`` (the first value nearer zero than to the
    value before). A counter that never restarts can pass that test where it happens to stand near zero; so a
    file's counter counts as restarting at step starts inside a cycle (at cycle starts) only where it restarted at
    a fifth or more of those at which it stood clear of zero (ten resolutions) before: Bitrode's cell counter
    restarts at every charge or discharge and holds its value through the rest after it, the BDF and Neware CSV
    counters restart at every step, Arbin's ``.res`` counters at every cycle; Arbin's CSV and BioLogic's
    ``(Q-Qo)`` never.
    """
    c = np.asarray(counter_Ah, dtype=float)
    res = counter_resolution_Ah(c)
    a = np.asarray(starts)[1:]
    restarted = np.abs(c[a]) < np.abs(c[a] - c[a - 1])
    clear = np.isfinite(c[a - 1]) & (np.abs(c[a - 1]) > 10 * (res if np.isfinite(res) else 0.0))
    if cycle_index is None:
        new_cycle = np.zeros(a.shape, dtype=bool)
    else:
        cycle = np.asarray(cycle_index)
        new_cycle = cycle[a] != cycle[a - 1]
    out = np.zeros(a.shape, dtype=bool)
    for kind in (new_cycle, ~new_cycle):
        sure = clear & kind
        if sure.any() and restarted[sure].mean() >= 0.2:
            out |= kind & restarted
    return out


def step_charges(ts: TimeSeries | pl.DataFrame) -> StepCharges | None:
    """releaf's charge and the cycler's counter per step of a canonical table; None without a counter or steps.

    Parameters
    ----------
    ts : canonical table (``releaf.schema``) with ``step_index`` and ``vendor_capacity_Ah``; ``cycle_index`` and
        ``step_time_s`` [s] are used where present
    """
    df = ts.data if isinstance(ts, TimeSeries) else ts
    if "vendor_capacity_Ah" not in df.columns or "step_index" not in df.columns or df.height < 3:
        return None
    t = df["test_time_s"].to_numpy().astype(float)
    i = df["current_A"].to_numpy().astype(float)
    step = df["step_index"].fill_null(-1).to_numpy()  # an unnumbered step: its start shows in the step time
    cycle = df["cycle_index"].fill_null(-1).to_numpy() if "cycle_index" in df.columns else None
    step_time = df["step_time_s"].to_numpy().astype(float) if "step_time_s" in df.columns else None
    c = df["vendor_capacity_Ah"].cast(pl.Float64).to_numpy()
    starts = step_starts(step, cycle, step_time)
    if starts.size < 2:
        return None
    timing = {} if step_time is None else {"step_time_s": step_time}
    q = cumulative_Ah(t, i, step, **timing)
    dt, w_left, _ = interval_weights(t, step, **timing)
    lasts = np.concatenate((starts[1:] - 1, [len(t) - 1]))
    first, last = starts[1:], lasts[1:]
    before = first - 1  # the previous step's last sample
    # releaf's charge from the step start: the old step's share of the interval before the first sample is not
    # this step's (at a step change interval_weights gives it none; at a new cycle within one step number and no
    # step time, the trapezoid's left half is the old cycle's)
    old_share = dt[before] * w_left[before] * i[before] / SECONDS_PER_HOUR
    from_start = q[last] - q[before] - old_share
    from_before = q[last] - q[before]
    restarted = counter_restarts(c, starts, cycle)
    releaf = np.where(restarted, from_start, from_before)
    counter = np.where(restarted, c[last], c[last] - c[before])
    unsigned = bool(np.nanmin(c) >= 0 and (i < -rest_threshold_A(i)).any())
    if unsigned:
        releaf, counter = np.abs(releaf), np.abs(counter)
    keep = np.isfinite(counter)
    log_res = log_resolution_Ah(t, i, first, last, before, step, step_time)
    return StepCharges(first[keep], last[keep], releaf[keep], counter[keep], restarted[keep], unsigned,
                       counter_resolution_Ah(c), log_res[keep])
