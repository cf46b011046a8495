"""DC resistance from current steps and pulses.

At a current step the voltage jumps by the ohmic drop at once, then keeps moving as charge-transfer and
diffusion polarisation build up. Reading the voltage change at fixed times after the step separates them:
``R(t) = ΔV(t) / ΔI`` with ΔV measured from the last sample before the step.

References
----------
USABC/INL Battery Test Manual for Electric Vehicles, rev. 3 (INL/EXT-15-34184, 2015), section 3.3 (HPPC test)
and appendix on resistance calculation. IEC 61960-3:2017 clause 7.8 (DC internal resistance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from releaf.schema import rest_mask
from releaf.schema.records import PulseResistance

# The ohmic reading must come from samples at most this far apart (the definition of r0).
R0_MAX_GAP_S = 1.0
READ_TIMES_S = (0.1, 1.0, 10.0)
_READ_TIMES_S = np.asarray(READ_TIMES_S)


@dataclass(frozen=True)
class CurrentStep:
    """A current step between sample ``before`` and sample ``before + 1``, held until sample ``last``."""

    before: int
    last: int
    current_before_A: float
    current_after_A: float


def current_steps(current_A, *, min_step_A: float, step_index=None) -> list[CurrentStep]:
    """Find the current steps of a test.

    Parameters
    ----------
    current_A : current per sample [A]
    min_step_A : smallest current change that counts as a step [A]
    step_index : cycler step per sample; a step also ends where the cycler changed step

    Returns
    -------
    Steps in time order; each is held while the current stays within ``min_step_A / 2`` of its first value
    after the step and the cycler step does not change.
    """
    i = np.asarray(current_A, dtype=float)
    n = len(i)
    jumps = np.flatnonzero(np.abs(np.diff(i)) >= min_step_A)
    if jumps.size == 0:
        return []
    # A step cannot outlast the next jump, so the samples after each jump up to the next one (a partition of the
    # rest of the test) are compared with that step's first sample, all steps at once.
    first = jumps + 1
    seg = np.repeat(np.arange(jumps.size), np.diff(np.append(first, n)))
    tail = slice(int(first[0]), n)
    held = np.abs(i[tail] - i[first][seg]) < min_step_A / 2
    if step_index is not None:
        s = np.asarray(step_index)
        held &= s[tail] == s[first][seg]
    breaks = np.flatnonzero(~held) + first[0]
    ends = np.append(first[1:], n)  # one past each step's window
    k = np.searchsorted(breaks, first)
    nxt = breaks[np.minimum(k, breaks.size - 1)] if breaks.size else ends
    last = np.where((k < breaks.size) & (nxt < ends), nxt, ends) - 1
    return [CurrentStep(b, e, ib, ia) for b, e, ib, ia in
            zip(jumps.tolist(), last.tolist(), i[jumps].tolist(), i[first].tolist(), strict=True)]


def _r_mOhm(dv: float, di: float) -> float | None:
    return float(1000.0 * dv / di) if di != 0 and math.isfinite(dv / di) else None  # no current change: no R


def step_resistance(
    test_time_s,
    voltage_V,
    current_A,
    step: CurrentStep,
    *,
    group_voltages_V: tuple[np.ndarray, ...] = (),
    soc_pct: float | None = None,
) -> PulseResistance:
    """Resistance of one current step at 0 (ohmic), 0.1, 1 and 10 s after it and at its end.

    Parameters
    ----------
    test_time_s, voltage_V, current_A : canonical columns [s, V, A]
    step : the step (see :func:`current_steps`)
    group_voltages_V : per-series-group voltages, for the per-group ohmic resistance
    soc_pct : state of charge at the step [%], if known

    Returns
    -------
    :class:`releaf.schema.records.PulseResistance`. ``r0_mOhm`` is ΔV/ΔI between the last sample before the step and the
    first after it, or None when those are more than ``R0_MAX_GAP_S`` apart. ``r_<x>s_mOhm`` reads the voltage
    (linearly interpolated) ``x`` seconds after the last sample before the step; None when the step is shorter
    or no sample lies at or before that time inside the step.
    """
    t = np.asarray(test_time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    b, a, last = step.before, step.before + 1, step.last
    di = i[a] - i[b]
    r0 = _r_mOhm(v[a] - v[b], di) if t[a] - t[b] <= R0_MAX_GAP_S + 1e-9 else None
    t0 = t[b]
    ts, cur = t[a : last + 1], i[a : last + 1]
    # all read times, for the terminal and every group voltage, in one interpolation each
    x = t0 + _READ_TIMES_S
    lo, hi = ts[0] - 1e-9, ts[-1] + 1e-9
    inside = [lo <= xk <= hi for xk in x.tolist()]
    di_at = np.interp(x, ts, cur) - i[b]
    # only the step's samples of each voltage (stacking whole columns would copy the test per step)
    rows = (v, *(np.asarray(g, dtype=float) for g in group_voltages_V))
    dv_at = np.array([np.interp(x, ts, row[a : last + 1]) - row[b] for row in rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        r_at = (1000.0 * dv_at / di_at).tolist()

    def at(k: int, row: int = 0) -> float | None:
        return r_at[row][k] if inside[k] else None

    n_groups = len(group_voltages_V)
    group_r0 = ()
    if r0 is not None:
        group_r0 = tuple(_r_mOhm(g[a] - g[b], di) for g in group_voltages_V)
    return PulseResistance(
        time_s=float(t0),
        soc_pct=soc_pct,
        current_before_A=float(i[b]),
        current_after_A=float(i[a]),
        duration_s=float(t[last] - t0),
        r0_mOhm=r0,
        r_0p1s_mOhm=at(0),
        r_1s_mOhm=at(1),
        r_10s_mOhm=at(2),
        r_end_mOhm=_r_mOhm(v[last] - v[b], i[last] - i[b]),
        group_r0_mOhm=group_r0,
        group_r_1s_mOhm=tuple(at(1, g + 1) for g in range(n_groups)),
        group_r_10s_mOhm=tuple(at(2, g + 1) for g in range(n_groups)),
    )


def step_resistances(
    test_time_s,
    voltage_V,
    current_A,
    steps: list[CurrentStep],
    *,
    group_voltages_V: tuple[np.ndarray, ...] = (),
    soc_pct: list[float | None] | None = None,
) -> list[PulseResistance]:
    """:func:`step_resistance` of every step, the same values computed for all steps at once.

    Each column is read at the steps' read times with one ``np.interp`` over the whole test (see
    :func:`read_in_steps`) instead of one per step and column.

    Parameters
    ----------
    test_time_s, voltage_V, current_A : canonical columns [s, V, A]
    steps : the steps (see :func:`current_steps`)
    group_voltages_V : per-series-group voltages, for the per-group resistances
    soc_pct : state of charge at each step [%] (None where unknown), or None

    Returns
    -------
    One :class:`releaf.schema.records.PulseResistance` per step, equal to :func:`step_resistance` of it.
    """
    t = np.asarray(test_time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    groups = tuple(np.asarray(g, dtype=float) for g in group_voltages_V)
    socs = [None] * len(steps) if soc_pct is None else list(soc_pct)
    if not steps or not _sorted(t):
        return [step_resistance(t, v, i, s, group_voltages_V=groups, soc_pct=x)
                for s, x in zip(steps, socs, strict=True)]
    b, last = _step_bounds(steps)
    a = b + 1
    rows = (v, *groups)
    r_at, inside = _read_after(t, rows, i, b, last, t[b][:, None] + _READ_TIMES_S)
    r_at, inside = [r.tolist() for r in r_at], inside.tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        di = i[a] - i[b]
        r0 = [(1000.0 * (row[a] - row[b]) / di).tolist() for row in rows]
        r_end = (1000.0 * (v[last] - v[b]) / (i[last] - i[b])).tolist()
    r_end = [r if math.isfinite(r) else None for r in r_end]  # a step that ends at its starting current
    has_r0 = (t[a] - t[b] <= R0_MAX_GAP_S + 1e-9).tolist()
    # per column and read time, the value of every step (None where the step does not reach that time)
    read = [[[r[j] if ins[j] else None for r, ins in zip(col, inside, strict=True)] for j in range(3)]
            for col in r_at]
    no_groups = [()] * len(steps)
    group_r0 = list(zip(*r0[1:], strict=True)) if groups else no_groups
    group_r1 = list(zip(*(col[1] for col in read[1:]), strict=True)) if groups else no_groups
    group_r10 = list(zip(*(col[2] for col in read[1:]), strict=True)) if groups else no_groups
    return [
        PulseResistance(
            time_s=t_b, soc_pct=soc, current_before_A=i_b, current_after_A=i_a, duration_s=t_l - t_b,
            r0_mOhm=r0_k if ok else None, r_0p1s_mOhm=r01, r_1s_mOhm=r1, r_10s_mOhm=r10, r_end_mOhm=r_e,
            group_r0_mOhm=g0 if ok else (), group_r_1s_mOhm=g1, group_r_10s_mOhm=g10,
        )
        for t_b, t_l, i_b, i_a, soc, ok, r0_k, r01, r1, r10, r_e, g0, g1, g10 in zip(
            t[b].tolist(), t[last].tolist(), i[b].tolist(), i[a].tolist(), socs, has_r0, r0[0], *read[0], r_end,
            group_r0, group_r1, group_r10, strict=True)
    ]


def resistances_at(test_time_s, voltages, current_A, steps: list[CurrentStep], after_s: float
                   ) -> list[list[float | None]]:
    """ΔV/ΔI [mOhm] ``after_s`` after the last sample before each step, for each of ``voltages``.

    The same reading as the 0.1/1/10 s values of :func:`step_resistance` (linear interpolation inside the step),
    at any time, e.g. the 30 s of an HPPC pulse.

    Parameters
    ----------
    test_time_s, current_A : canonical columns [s, A]
    voltages : the voltage columns to read [V] (the terminal voltage, group voltages)
    steps : the steps (see :func:`current_steps`)
    after_s : read time after the last sample before the step [s]

    Returns
    -------
    One list per voltage, one value per step; None where the step does not reach ``after_s``.
    """
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    rows = [np.asarray(v, dtype=float) for v in voltages]
    if not steps:
        return [[] for _ in rows]
    if not _sorted(t):
        return [[_resistance_at(t, row, i, s, after_s) for s in steps] for row in rows]
    b, last = _step_bounds(steps)
    r, inside = _read_after(t, rows, i, b, last, t[b] + after_s)
    readable = inside.tolist()
    return [[x if ok else None for x, ok in zip(col.tolist(), readable, strict=True)] for col in r]


def _resistance_at(t, v, i, step: CurrentStep, after_s: float) -> float | None:
    """:func:`resistances_at` of one step and voltage, from the step's own samples (any time order)."""
    a, last = step.before + 1, step.last
    x = t[step.before] + after_s
    if not t[a] - 1e-9 <= x <= t[last] + 1e-9:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        di = np.interp(x, t[a : last + 1], i[a : last + 1]) - i[step.before]
        return float(1000.0 * (np.interp(x, t[a : last + 1], v[a : last + 1]) - v[step.before]) / di)


def _step_bounds(steps: list[CurrentStep]) -> tuple[np.ndarray, np.ndarray]:
    """The last sample before and the last sample of every step, as index arrays."""
    b = np.fromiter((s.before for s in steps), dtype=np.intp, count=len(steps))
    last = np.fromiter((s.last for s in steps), dtype=np.intp, count=len(steps))
    return b, last


def _read_after(t, rows, i, b, last, x_s) -> tuple[list[np.ndarray], np.ndarray]:
    """ΔV/ΔI [mOhm] of each of ``rows`` at times ``x_s`` (one per step, or one row of times per step) inside the
    steps ``b + 1 .. last`` (:func:`read_in_steps`), and whether each time lies inside its step."""
    a = b + 1

    def per_step(e):
        return e[:, None] if x_s.ndim == 2 else e

    inside = (x_s >= per_step(t[a] - 1e-9)) & (x_s <= per_step(t[last] + 1e-9))
    with np.errstate(divide="ignore", invalid="ignore"):
        di = read_in_steps(t, i, x_s, a, last) - per_step(i[b])
        return [1000.0 * (read_in_steps(t, row, x_s, a, last) - per_step(row[b])) / di for row in rows], inside


def read_in_steps(test_time_s: np.ndarray, values: np.ndarray, x_s: np.ndarray, first: np.ndarray,
                  last: np.ndarray) -> np.ndarray:
    """``values`` interpolated at ``x_s`` inside each step's samples ``first..last``, for all steps at once.

    Equal to ``np.interp(x, test_time_s[first:last + 1], values[first:last + 1])`` per step, with one ``np.interp``
    over the whole test: on a sorted time axis a time at or after the step's first sample and before its last is
    bracketed by the same two samples, and outside them the step's interpolation holds its end values.

    Parameters
    ----------
    test_time_s : sample times [s], non-decreasing and without NaN (:func:`_sorted`)
    values : the column to read, same length
    x_s : read times [s], one row per step (or one time per step)
    first, last : first and last sample of each step
    """
    ends = (test_time_s[first], test_time_s[last], values[first], values[last])
    t_first, t_last, v_first, v_last = (e[:, None] for e in ends) if x_s.ndim == 2 else ends
    inner = np.interp(x_s, test_time_s, values)
    return np.where(x_s < t_first, v_first, np.where(x_s >= t_last, v_last, inner))


def _sorted(t: np.ndarray) -> bool:
    """Non-decreasing and free of NaN: where :func:`read_in_steps` holds."""
    return bool((np.diff(t) >= 0).all())


def pick_r0(resistances, *, target_soc_pct: float = 50.0, rest_A: float) -> PulseResistance | None:
    """The step whose ohmic resistance represents the unit: a discharge pulse from rest nearest ``target_soc_pct``.

    Preference: discharge steps starting from rest with a defined r0, nearest the target SOC when SOC is known;
    otherwise the first such step; otherwise any step with a defined r0. Rest is ``releaf.schema.rest_mask`` with
    the threshold ``rest_A`` [A].
    """
    with_r0 = [r for r in resistances if r.r0_mOhm is not None and np.isfinite(r.r0_mOhm)]
    pulses = [r for r in with_r0 if rest_mask(r.current_before_A, rest_A)
              and not rest_mask(r.current_after_A, rest_A) and r.current_after_A < 0]
    pool = pulses or with_r0
    if not pool:
        return None
    known = [r for r in pool if r.soc_pct is not None]
    if known:
        return min(known, key=lambda r: abs(r.soc_pct - target_soc_pct))
    return pool[0]
