"""Capacity and energy of full discharges, recomputed from the measured current and voltage.

A *full discharge* starts at the top of charge (after the last significant charge) and ends when the unit reaches
its lower cut-off. Everything between counts, pulses and short regen pulses included: the capacity is the net
charge removed, which is what the unit can deliver between its voltage limits.
"""

from __future__ import annotations

import numpy as np

from releaf.parameters import DEFAULT_MODULE_CUTOFF_WINDOW_V
from releaf.schema import rest_mask
from releaf.schema.records import CapacityConditions, Discharge

SECONDS_PER_HOUR = 3600.0
# A charge that restores more than this fraction of the nominal capacity starts a new discharge segment; HPPC
# regen pulses (~0.2 % of capacity each) do not.
RECHARGE_FRACTION = 0.02
# A discharge whose lowest group ended within GROUP_CUTOFF_MARGIN_V of the profile's group_v_min_V reached its
# lower limit (the sampling of the stop); where a charge counts as full and how high a module cut-off may lie come
# from the unit's parameter set (``BatteryProfile.full_charge_floor_V``, ``module_cutoff_ceiling_V``).
GROUP_CUTOFF_MARGIN_V = 0.05
CUTOFF_TOLERANCE_V = GROUP_CUTOFF_MARGIN_V
# Rest in a capacity measurement: ``releaf.schema.rest_mask`` with a threshold from the file's own current levels,
# REST_FRACTION of its largest current (the 99.9th percentile, so one spike does not set it), and never below the
# file default (``rest_threshold_A``). A large channel reads an offset at rest (0.01-0.02 A in the ORNL files);
# counted as discharge it would stretch a discharge into the rest after it; a CV charge tapers to C/20 or so,
# far above 0.5 % of the test's largest current, so its tail stays charge whatever the cell's size.
REST_FRACTION = 0.005
# A discharge that starts from a rest whose voltage per group is this much above the lowest rested voltage of the
# segment so far, and at the top of charge, was recharged outside the log: it starts a new segment.
OFF_LOG_RECHARGE_V = 0.3


def rest_current_A(current_A) -> float:
    """Current magnitude at or below which a sample is rest in a capacity measurement [A].

    ``REST_FRACTION`` of the file's largest current (99.9th percentile of ``|current_A|``), and at least the file
    default of ``releaf.schema.rest_threshold_A``: derived from the test itself, so it works for cells of any size.
    """
    from releaf.schema import rest_threshold_A

    i = np.abs(np.asarray(current_A, dtype=float))
    i = i[np.isfinite(i)]
    if i.size == 0:
        return 0.0
    k = max(1, i.size // 1000)  # the 99.9th percentile, by a partial sort (a full quantile costs 75 us a file)
    return max(REST_FRACTION * float(np.partition(i, i.size - k)[i.size - k]), rest_threshold_A(i))


def step_changes(n: int, step_index=None, step_time_s=None, cycle_index=None) -> np.ndarray:
    """Per interval between ``n`` samples: True where a cycler step changed across it.

    A change of ``step_index`` (or ``cycle_index``), or a fall of ``step_time_s`` (a step repeated with the same
    number); all False without either column.
    """
    changed = np.zeros(max(n - 1, 0), dtype=bool)
    for column in (step_index, cycle_index):
        if column is not None:
            s = np.asarray(column)
            changed |= s[1:] != s[:-1]
    if step_time_s is not None:
        st = np.asarray(step_time_s, dtype=float)
        changed |= st[1:] < st[:-1]
    return changed


def interval_weights(test_time_s, step_index=None, step_time_s=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights to integrate a sampled current over each interval between samples.

    Inside a cycler step the current is integrated with the trapezoid rule. Across a step change the rule is the
    cyclers' own bookkeeping: **a step's charge runs from the moment it began to its last logged sample**.

    * With the step time (``step_time_s``), the new step began at ``t_first - step_time_first`` of its first sample
      (clipped to the interval): the new step's current (its first sample) is held from that moment to the first
      sample; the time between the old step's last logged sample and that moment is the cycler's step transition,
      logged by neither step, and carries no charge. The counters of the files here agree: Arbin's ``.res``
      (transitions of a few ms), cellpy's BattMo BDF export (up to 500 s: the per-step counters, summed per cycle,
      match exactly) and BioLogic's ``.mpr`` (0.25 s after a 4 h step ended on its time limit: the counter moves
      0.4 ms of the old current, 3.6e-11 Ah) count nothing or next to nothing there (Arbin's ``.res``: 0-21 ms
      of the old current; ``releaf.diagnostics.counters.step_change_bounds_Ah`` bounds it); holding the old
      current over it booked up to 2 mAh per step change into the BDF cycles. (BioLogic's BT-Lab CSV is the
      exception: its counter carries a 2.5 A step's current for the 38 ms after its last sample, 2.6e-5 Ah: see
      ``benchmarks/README.md``.) In the ORNL Bitrode, Maccor, Neware and PEC files a step's first step time spans
      the whole interval before it, so there is no such time and the rule changes nothing.
    * Without a step time, the whole interval belongs to the new step (its current is held, not averaged with
      the old one): a cycler that logs the old step's last sample and then switches, as the files above with a
      step time show. Averaging would book half an interval of a 65 A current into a rest (0.27 Ah for a 30 s
      gap).

    A step change is a change of ``step_index`` or a fall of ``step_time_s`` (a step repeated with the same
    number).

    Parameters
    ----------
    test_time_s : sample times [s], non-decreasing
    step_index : cycler step number per sample, or None (then, without a step time, every interval is a trapezoid)
    step_time_s : time since the cycler step began, per sample [s], or None; NaN where unknown (that change then
        follows the rule without a step time)

    Returns
    -------
    dt_s : interval lengths [s] (n - 1)
    w_left, w_right : weights of the left and right sample of each interval; they sum to 1 inside a step, and to
        the share of the interval after the new step began across a step change (0 on the old side)
    """
    t = np.asarray(test_time_s, dtype=float)
    dt = np.diff(t)
    w_left = np.full(dt.shape, 0.5)
    w_right = np.full(dt.shape, 0.5)
    changed = step_changes(t.size, step_index, step_time_s)
    w_left[changed], w_right[changed] = 0.0, 1.0
    if step_time_s is not None and changed.any():
        k = np.flatnonzero(changed)
        began = t[k + 1] - np.asarray(step_time_s, dtype=float)[k + 1]
        known = np.isfinite(began) & (dt[k] > 0)
        k, began = k[known], began[known]
        w_right[k] = np.clip((t[k + 1] - began) / dt[k], 0.0, 1.0)  # share of the interval after the step began
    return dt, w_left, w_right


def cumulative_Ah(test_time_s, current_A, step_index=None, step_time_s=None) -> np.ndarray:
    """Charge passed since the first sample [Ah], positive = charged in (same length as the input).

    ``step_index``, ``step_time_s``: see :func:`interval_weights`.
    """
    dt, wl, wr = interval_weights(test_time_s, step_index, step_time_s)
    i = np.asarray(current_A, dtype=float)
    return np.concatenate(([0.0], np.cumsum(dt * (wl * i[:-1] + wr * i[1:])))) / SECONDS_PER_HOUR


def cumulative_Wh(test_time_s, voltage_V, current_A, step_index=None, step_time_s=None) -> np.ndarray:
    """Energy passed since the first sample [Wh], positive = charged in.

    ``step_index``, ``step_time_s``: see :func:`interval_weights`.
    """
    dt, wl, wr = interval_weights(test_time_s, step_index, step_time_s)
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
    step_time_s=None,
    limit_voltage_V=None,
    mean_group_voltage_V=None,
    group_voltages_V=(),
    temperature_C=None,
    cutoff_voltage_V: float,
    charge_floor_V: float,
    module_cutoff_V: float | None = None,
    nominal_capacity_Ah: float,
    vendor_capacity_Ah=None,
    min_current_A: float | None = None,
) -> list[Discharge]:
    """Every discharge segment of a test, found from the protocol's own structure, with its capacity and energy.

    A segment starts at the end of a charge that put back more than ``RECHARGE_FRACTION`` of nominal (or at the
    first sample) and runs to its last discharge sample. It *starts full* when that charge ended at its limit: its
    highest voltage per group reached ``charge_floor_V`` (a CC charge to a voltage, or a CC-CV charge with its
    taper). A test that starts without a logged charge starts full only if it starts at rest at or above
    ``charge_floor_V``. It *reached the cut-off* when the cycler ended it at a voltage limit: the lowest group
    within ``GROUP_CUTOFF_MARGIN_V`` of ``cutoff_voltage_V``, or the mean group voltage at or below
    ``module_cutoff_V`` (a cut-off set on the module); otherwise it ended on time or capacity.

    Two discharges are never added together across a recharge that the log does not show: a discharge that starts
    from a rest at the top of charge, more than ``OFF_LOG_RECHARGE_V`` above the lowest voltage of its segment so
    far, starts a segment of its own (``off_log_recharge``).

    Parameters
    ----------
    test_time_s, voltage_V, current_A : the canonical columns (current positive = charge) [s, V, A]
    step_index : cycler step per sample (improves integration across step changes), or None
    step_time_s : time since the cycler step began, per sample [s] (where a step began: :func:`interval_weights`),
        or None
    limit_voltage_V : the voltage per group the limits apply to [V], per sample: the lowest series-group voltage
        for a module with group taps (the first group to reach its limit ends the discharge); default ``voltage_V``
    mean_group_voltage_V : module voltage over its series groups [V], per sample; default ``limit_voltage_V``
    group_voltages_V : the group voltages [V] (one array per group), for the conditions; may be empty
    temperature_C : a temperature per sample [degC], for the conditions, or None
    cutoff_voltage_V : lower voltage limit per group of the unit's profile [V]
    charge_floor_V : lowest top-of-charge voltage per group that counts as a completed charge [V]
        (the profile's ``full_charge_floor_V``)
    module_cutoff_V : highest end voltage per group of a cut-off set on the module [V] (the profile's
        ``module_cutoff_ceiling_V``); default ``cutoff_voltage_V + parameters.DEFAULT_MODULE_CUTOFF_WINDOW_V``
    nominal_capacity_Ah : nominal capacity [Ah]: the C-rate basis and the recharge threshold
    vendor_capacity_Ah : the cycler's own capacity counter; its change over a one-step discharge is kept for
        cross-checks (counters reset per step or per cycle by vendor, so multi-step discharges get None)
    min_current_A : current magnitude at or below which a sample is rest [A] (``releaf.schema.rest_mask``);
        default :func:`rest_current_A` of the file's own currents

    Returns
    -------
    One :class:`releaf.schema.records.Discharge` per segment that discharged at least 5 % of nominal, in time order,
    each with the :class:`releaf.schema.records.CapacityConditions` it was measured under.
    """
    t = np.asarray(test_time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    n = t.size
    lim = v if limit_voltage_V is None else np.asarray(limit_voltage_V, dtype=float)
    mean_v = lim if mean_group_voltage_V is None else np.asarray(mean_group_voltage_V, dtype=float)
    taps = [np.asarray(g, dtype=float) for g in group_voltages_V]
    temp = None if temperature_C is None else np.asarray(temperature_C, dtype=float)
    rest_A = rest_current_A(i) if min_current_A is None else min_current_A
    if module_cutoff_V is None:
        module_cutoff_V = cutoff_voltage_V + DEFAULT_MODULE_CUTOFF_WINDOW_V
    q = cumulative_Ah(t, i, step_index, step_time_s)
    rest = rest_mask(i, rest_A)
    charging, discharging = ~rest & (i > 0), ~rest & (i < 0)

    charges = {}  # first sample after a charge that counts -> (first, last) sample of the charge
    for a, b in _runs(charging):
        if q[min(b + 1, n - 1)] - q[max(a - 1, 0)] > RECHARGE_FRACTION * nominal_capacity_Ah and b + 1 < n:
            charges[b + 1] = (a, b)
    starts = {0: False, **dict.fromkeys(charges, False)}  # segment start -> recharged outside the log
    bounds = sorted(starts)
    for r, _ in _runs(discharging):  # an off-log recharge: a discharge from a rest at the top, far above the low
        k = r - 1
        if k < 1 or not rest[k] or lim[k] < charge_floor_V:
            continue
        a = max(s for s in bounds if s <= k)
        # the segment's low: its rested voltages, or the bottom of its voltage window once it reached it (a pulse's
        # dip under load near the top of charge is no sign of a discharge, let alone a recharge after it)
        if a >= k:
            continue
        low = float(np.nanmin(lim[a:k][rest[a:k]])) if rest[a:k].any() else np.inf
        bottom = float(np.nanmin(lim[a:k]))
        if bottom <= module_cutoff_V:
            low = min(low, bottom)
        if lim[k] - low > OFF_LOG_RECHARGE_V:
            while k - 1 > a and rest[k - 1] and lim[k - 1] >= charge_floor_V:
                k -= 1  # the new segment starts with the rest at the top (the first sample after the recharge)
            starts[k] = True
            bounds = sorted(starts)

    out = []
    for a, end in zip(bounds, [*bounds[1:], n], strict=True):
        dis = np.flatnonzero(discharging[a:end])
        if dis.size == 0:
            continue
        first, last = a + int(dis[0]), a + int(dis[-1])
        capacity = q[a] - q[last]
        if capacity < 0.05 * nominal_capacity_Ah:
            continue
        seg = slice(a, last + 1)
        e = cumulative_Wh(t[seg], v[seg], i[seg], None if step_index is None else np.asarray(step_index)[seg],
                          None if step_time_s is None else np.asarray(step_time_s)[seg])
        on = discharging[seg]
        duration_on = float(np.sum(np.diff(t[seg])[on[1:]])) if on.sum() > 1 else 0.0
        if duration_on <= 0:  # its charge lies in a time gap, not in any sampled interval: no rate, no measurement
            continue
        mean_current = capacity * SECONDS_PER_HOUR / duration_on
        if a in charges:
            ca, cb = charges[a]
            # the charge's top: the module voltage over its groups, and each group's, at their highest; a limit
            # set on the highest group or on the module, either counts
            charge_v = float(np.nanmax(mean_v[ca : cb + 1]))
            charge_groups = tuple(float(np.nanmax(g[ca : cb + 1])) for g in taps)
            peak = float(np.max(i[ca : cb + 1]))
            charge_end = "cv_taper" if i[cb] < 0.5 * peak else "cc_limit"
            from_full = None  # decided on the conditions' charge top below
        else:  # no charge in the log before it: full only if it starts rested at the top of charge
            charge_v, charge_end = float(mean_v[a]), ("recharged_off_log" if starts[a] else "not_logged")
            charge_groups = tuple(float(g[a]) for g in taps)
            from_full = bool(rest[a] and lim[a] >= charge_floor_V)
        group_end = bool(taps) and float(np.nanmin(lim[seg])) <= cutoff_voltage_V + GROUP_CUTOFF_MARGIN_V
        module_end = float(np.nanmin(mean_v[seg])) <= module_cutoff_V
        if not taps and float(np.nanmin(lim[seg])) <= cutoff_voltage_V + GROUP_CUTOFF_MARGIN_V:
            end_reason = "voltage_limit"
        elif group_end:
            end_reason = "group_voltage_limit"
        elif module_end:
            end_reason = "module_voltage_limit"
        else:
            end_reason = "test_end" if last == n - 1 else "time_or_capacity"
        before = max(first - 1, a)
        conditions = CapacityConditions(
            charge_voltage_V=charge_v, charge_group_voltages_V=charge_groups, charge_end=charge_end,
            rest_before_s=float(t[first] - t[a]) if first > a else 0.0,
            start_group_voltages_V=tuple(float(g[before]) for g in taps),
            end_group_voltages_V=tuple(float(g[last]) for g in taps),
            start_voltage_per_group_V=float(mean_v[before]), end_voltage_per_group_V=float(mean_v[last]),
            end_reason=end_reason, c_rate=float(mean_current / nominal_capacity_Ah),
            temperature_C=_mean_finite(temp[first : last + 1]) if temp is not None else None,
        )
        if from_full is None:
            from_full = conditions.charge_top_V >= charge_floor_V
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
                reached_cutoff=end_reason.endswith("voltage_limit"),
                vendor_capacity_Ah=_vendor_capacity(vendor_capacity_Ah, step_index, first, last),
                start_index=a,
                end_index=last,
                from_full=from_full,
                conditions=conditions,
            )
        )
    return out


def _mean_finite(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _vendor_capacity(counter, step_index, first: int, last: int) -> float | None:
    if counter is None or step_index is None:
        return None
    steps = np.asarray(step_index)[first : last + 1]
    if np.any(steps != steps[0]):
        return None
    c = np.asarray(counter, dtype=float)
    delta = abs(float(c[last] - c[first]))
    return delta if np.isfinite(delta) else None
