"""Capacity and energy of full discharges, recomputed from the measured current and voltage.

A *full discharge* starts at the top of charge (after the last significant charge) and ends when the unit reaches
its lower cut-off. Everything between counts, pulses and short regen pulses included: the capacity is the net
charge removed, which is what the unit can deliver between its voltage limits.
"""

from __future__ import annotations

import numpy as np

from releaf.models.ocv import ocv_V
from releaf.schema import rest_mask
from releaf.schema.records import Discharge

SECONDS_PER_HOUR = 3600.0
# A charge that restores more than this fraction of the nominal capacity starts a new discharge segment; HPPC
# regen pulses (~0.2 % of capacity each) do not.
RECHARGE_FRACTION = 0.02
# A discharge counts as starting from full when the voltage per series group at its start is at least the cell's
# OCV at this SOC (the OCV table of the unit's own profile, see :func:`top_of_charge_voltage_V`).
TOP_OF_CHARGE_SOC_PCT = 90.0
CUTOFF_TOLERANCE_V = 0.05
# Rest in a capacity measurement: ``releaf.schema.rest_mask`` with C/100 of the nominal capacity, not the file
# default (1 mA). A large channel reads an offset at rest (0.01 A in the ORNL cell files); counted as discharge it
# would stretch a discharge into the rest after it. Below C/100 a current moves under 1 % of the capacity per hour.
REST_C_RATE = 0.01


def rest_current_A(nominal_capacity_Ah: float) -> float:
    """Current magnitude at or below which a sample is rest in a capacity measurement [A]: ``REST_C_RATE`` C."""
    return REST_C_RATE * nominal_capacity_Ah


def interval_weights(test_time_s, step_index=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights to integrate a sampled current over each interval between samples.

    Inside a cycler step the current is integrated with the trapezoid rule. Across a step change the cycler
    wrote the last sample of the old step and then switched, so the whole interval belongs to the new step:
    its current (the sample after the interval) is held, not averaged with the old one. Averaging there would
    book half an interval of a 65 A current into a rest (0.27 Ah for a 30 s gap).

    Parameters
    ----------
    test_time_s : sample times [s], non-decreasing
    step_index : cycler step number per sample, or None (then every interval is a trapezoid)

    Returns
    -------
    dt_s : interval lengths [s] (n - 1)
    w_left, w_right : weights of the left and right sample of each interval (sum to 1)
    """
    t = np.asarray(test_time_s, dtype=float)
    dt = np.diff(t)
    w_left = np.full(dt.shape, 0.5)
    if step_index is not None:
        s = np.asarray(step_index)
        changed = s[1:] != s[:-1]
        w_left[changed] = 0.0
    return dt, w_left, 1.0 - w_left


def cumulative_Ah(test_time_s, current_A, step_index=None) -> np.ndarray:
    """Charge passed since the first sample [Ah], positive = charged in (same length as the input)."""
    dt, wl, wr = interval_weights(test_time_s, step_index)
    i = np.asarray(current_A, dtype=float)
    return np.concatenate(([0.0], np.cumsum(dt * (wl * i[:-1] + wr * i[1:])))) / SECONDS_PER_HOUR


def cumulative_Wh(test_time_s, voltage_V, current_A, step_index=None) -> np.ndarray:
    """Energy passed since the first sample [Wh], positive = charged in."""
    dt, wl, wr = interval_weights(test_time_s, step_index)
    p = np.asarray(voltage_V, dtype=float) * np.asarray(current_A, dtype=float)
    return np.concatenate(([0.0], np.cumsum(dt * (wl * p[:-1] + wr * p[1:])))) / SECONDS_PER_HOUR


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1, strict=True))


def full_discharges(
    test_time_s,
    voltage_V,
    current_A,
    *,
    step_index=None,
    limit_voltage_V=None,
    cutoff_voltage_V: float,
    top_voltage_V: float,
    nominal_capacity_Ah: float,
    vendor_capacity_Ah=None,
    min_current_A: float | None = None,
) -> list[Discharge]:
    """Every discharge segment of a test: capacity and energy by integrating the measurement.

    Parameters
    ----------
    test_time_s, voltage_V, current_A : the canonical columns (current positive = charge) [s, V, A]
    step_index : cycler step per sample (improves integration across step changes), or None
    limit_voltage_V : the voltage the cut-off applies to [V], per sample; default ``voltage_V``. For a module with
        group taps pass the lowest series-group voltage: the first group to reach its limit ends the discharge.
    cutoff_voltage_V : lower cut-off of ``limit_voltage_V`` [V]
    top_voltage_V : ``limit_voltage_V`` at the segment start above which it counts as starting from full [V]
    nominal_capacity_Ah : nominal capacity [Ah], sets the recharge and current thresholds
    vendor_capacity_Ah : the cycler's own capacity counter; its change over a one-step discharge is kept for
        cross-checks (counters reset per step or per cycle by vendor, so multi-step discharges get None)
    min_current_A : current magnitude at or below which a sample is rest [A] (``releaf.schema.rest_mask``);
        default :func:`rest_current_A` (C/100 of nominal)

    Returns
    -------
    One :class:`releaf.schema.records.Discharge` per segment that discharged at least 5 % of nominal, in time order.
    ``reached_cutoff`` and ``start_voltage_V >= top_voltage_V`` together make a full discharge.
    """
    t = np.asarray(test_time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    lim = v if limit_voltage_V is None else np.asarray(limit_voltage_V, dtype=float)
    rest_A = rest_current_A(nominal_capacity_Ah) if min_current_A is None else min_current_A
    q = cumulative_Ah(t, i, step_index)
    active = ~rest_mask(i, rest_A)
    charging, discharging = active & (i > 0), active & (i < 0)

    # segment boundaries: the end of every charge run that put back more than RECHARGE_FRACTION
    starts = [0]
    for a, b in _runs(charging):
        charged = q[min(b + 1, len(q) - 1)] - q[max(a - 1, 0)]
        if charged > RECHARGE_FRACTION * nominal_capacity_Ah:
            starts.append(b + 1)
    starts = sorted(set(s for s in starts if s < len(t)))
    bounds = list(zip(starts, [*starts[1:], len(t)], strict=True))

    out = []
    for a, end in bounds:
        dis = np.flatnonzero(discharging[a:end])
        if dis.size == 0:
            continue
        last = a + int(dis[-1])  # last discharge sample of the segment
        seg = slice(a, last + 1)
        capacity = q[a] - q[last]
        if capacity < 0.05 * nominal_capacity_Ah:
            continue
        e = cumulative_Wh(t[seg], v[seg], i[seg], None if step_index is None else np.asarray(step_index)[seg])
        on = discharging[seg]
        duration_on = float(np.sum(np.diff(t[seg])[on[1:]])) if on.sum() > 1 else 0.0
        if duration_on <= 0:  # its charge lies in a time gap, not in any sampled interval: no rate, no measurement
            continue
        mean_current = capacity * SECONDS_PER_HOUR / duration_on
        reached = bool(np.min(lim[seg]) <= cutoff_voltage_V + CUTOFF_TOLERANCE_V)
        vendor = _vendor_capacity(vendor_capacity_Ah, step_index, a + int(dis[0]), last)
        out.append(
            Discharge(
                start_s=float(t[a]),
                end_s=float(t[last]),
                capacity_Ah=float(capacity),
                energy_Wh=float(-e[-1]),
                mean_current_A=float(mean_current),
                c_rate=float(mean_current / nominal_capacity_Ah),
                start_voltage_V=float(v[a]),
                end_voltage_V=float(v[last]),
                reached_cutoff=reached,
                vendor_capacity_Ah=vendor,
                start_index=a,
                end_index=last,
                from_full=bool(lim[a] >= top_voltage_V),
            )
        )
    return out


def _vendor_capacity(counter, step_index, first: int, last: int) -> float | None:
    if counter is None or step_index is None:
        return None
    steps = np.asarray(step_index)[first : last + 1]
    if np.any(steps != steps[0]):
        return None
    c = np.asarray(counter, dtype=float)
    delta = abs(float(c[last] - c[first]))
    return delta if np.isfinite(delta) else None


def top_of_charge_voltage_V(series_groups: int, ocv_table) -> float:
    """Rested voltage of ``series_groups`` series groups at ``TOP_OF_CHARGE_SOC_PCT`` [V].

    Parameters
    ----------
    series_groups : series groups the voltage spans
    ocv_table : ``(soc_pct, ocv_V)`` of the unit's cell, e.g. ``profile.ocv_table`` (``releaf.parameters``)
    """
    return float(ocv_V(TOP_OF_CHARGE_SOC_PCT, ocv_table)) * series_groups
