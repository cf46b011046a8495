"""Per-cycle summary of a test: charge and discharge capacity and energy, efficiencies, mean voltages.

Cycles are the cycler's own when the table has a ``cycle_index``: each run of one value is a cycle, numbered as the
cycler numbered it. The cycler increments where the test's schedule says (Arbin and Maccor at an instruction of the
schedule, Neware and BDF per loop of the schedule), so the order inside a cycle is the schedule's: in the shared real
files a cycle opens with a charge in the Maccor ``.034``, BioLogic and BDF files and with a discharge in the Arbin
``.res``, Neware and ORNL Bitrode files; the first cycle of a file may be 0 or 1, or start mid-cycle. Without a
``cycle_index`` the cycles are derived from the current: a new cycle starts at the first charge sample after a
discharge, so one cycle is a charge followed by a discharge (and the rests after it); a file that starts with a
discharge has a first cycle without a charge.

The integrals use the interval weights of ``releaf.diagnostics.capacity.interval_weights`` (trapezoid inside a
cycler step; across a step change the new step's current from its start, nothing before it), and each interval
between two samples belongs to the cycle of its later sample, so the cycles' charges add up to the whole file's.
Every sample's current counts, rest included: like the cyclers' own counters, a sensor offset at rest is
integrated (it is below ``releaf.schema.rest_threshold_A`` and small against a cycle's charge).
"""

from __future__ import annotations

import numpy as np

from releaf.diagnostics.capacity import SECONDS_PER_HOUR, interval_weights
from releaf.schema import TEMPERATURE_PREFIX, TimeSeries, rest_mask
from releaf.schema.records import CycleReport, CycleSummary


def cycle_summary(ts: TimeSeries) -> list[CycleSummary]:
    """Charge, discharge, efficiencies and mean voltages of every cycle of a test.

    Parameters
    ----------
    ts : canonical time series (``releaf.schema``): ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A,
        positive = charge]; optional ``step_index`` (integration across step changes), ``cycle_index`` (the
        cycler's cycles), ``step_type`` (rest), ``temperature_C`` / ``temperature_C_k`` [degC]

    Returns
    -------
    One :class:`releaf.schema.records.CycleSummary` per cycle in time order:

    - ``charge_capacity_Ah`` / ``discharge_capacity_Ah`` [Ah]: integrals of the positive / negative current, as
      positive numbers; ``charge_energy_Wh`` / ``discharge_energy_Wh`` [Wh] likewise of ``voltage_V * current_A``
    - ``coulombic_efficiency`` = discharge / charge capacity, ``energy_efficiency`` = discharge / charge energy
      (None without a charge)
    - ``mean_charge_voltage_V`` / ``mean_discharge_voltage_V`` [V]: energy / capacity, i.e. the voltage weighted by
      the charge passed (None when nothing passed)
    - ``max_temperature_C`` [degC]: highest reading of ``temperature_C`` and ``temperature_C_k`` (ambient not
      included); None without a temperature column
    - ``duration_s`` [s]: time from the previous cycle's last sample (the file's first sample for the first cycle)
      to the cycle's last sample; the durations add up to the test's
    - ``complete``: the cycle has charge and discharge samples (outside rest, ``releaf.schema.rest_mask``) and is
      not the truncated last cycle: the last cycle of the file counts as complete only when the file ends at rest
      (not cut while current flows)

    Notes
    -----
    Cycle boundaries are described in the module docstring. The rest threshold is the file's own
    (``releaf.schema.rest_mask``: the cycler's rest state where written, else ``rest_threshold_A`` of the file's
    currents).
    """
    return _summarise(ts)[0]


def cycle_report(ts: TimeSeries) -> CycleReport:
    """:func:`cycle_summary` of one file as a :class:`releaf.schema.records.CycleReport`, with its warnings."""
    cycles, warnings = _summarise(ts)
    return CycleReport(file=ts.meta.path, format=ts.meta.format, sha256=ts.meta.sha256, cycles=tuple(cycles),
                       warnings=tuple(warnings))


def _summarise(ts: TimeSeries) -> tuple[list[CycleSummary], list[str]]:
    d = ts.data
    t = d["test_time_s"].to_numpy().astype(float)
    v = d["voltage_V"].to_numpy().astype(float)
    i = d["current_A"].to_numpy().astype(float)
    step = d["step_index"].to_numpy() if "step_index" in d.columns and d["step_index"].null_count() == 0 else None
    rest = rest_mask(d["current_A"], step_type=d["step_type"] if "step_type" in d.columns else None)
    charging, discharging = ~rest & (i > 0), ~rest & (i < 0)
    warnings: list[str] = []
    if "cycle_index" in d.columns and d["cycle_index"].null_count() < d.height:
        cycle = d["cycle_index"].fill_null(strategy="forward").fill_null(strategy="backward").to_numpy()
        if np.any(np.diff(cycle) < 0):
            warnings.append("cycle_index goes backwards: each run of one value is summarised as its own cycle")
    else:
        cycle = derived_cycle_index(charging, discharging)
        warnings.append("no cycle_index column: cycles derived from the current (a charge followed by a discharge)")
    if t.size < 2:
        return [], [*warnings, "fewer than two samples: no cycle to summarise"]

    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    dt, wl, wr = interval_weights(t, step, step_time)
    p = v * i
    # each interval's two parts go to their own sample's cycle: the part held at the left sample's current belongs
    # to the left sample's cycle (inside a step), the rest to the right sample's
    parts = {}
    for name, x in (("q_in", np.clip(i, 0, None)), ("q_out", np.clip(-i, 0, None)), ("e_in", np.clip(p, 0, None)),
                    ("e_out", np.clip(-p, 0, None))):
        parts[name] = (dt * wl * x[:-1] / SECONDS_PER_HOUR, dt * wr * x[1:] / SECONDS_PER_HOUR)
    temperature = _max_temperature(d)

    first = np.concatenate(([True], cycle[1:] != cycle[:-1]))
    starts = np.flatnonzero(first)
    ends = np.concatenate((starts[1:], [t.size]))  # exclusive
    run = np.cumsum(first) - 1  # which cycle (run of one cycle_index) each sample is in
    sums = {name: np.bincount(run[:-1], left, minlength=starts.size) + np.bincount(run[1:], right,
                                                                                 minlength=starts.size)
            for name, (left, right) in parts.items()}
    out = []
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        qc, qd = float(sums["q_in"][k]), float(sums["q_out"][k])
        ec, ed = float(sums["e_in"][k]), float(sums["e_out"][k])
        has_both = bool(charging[a:b].any() and discharging[a:b].any())
        if k == len(starts) - 1:  # a file cut while current flows ends in a truncated cycle
            has_both = has_both and bool(rest[b - 1])
        temps = temperature[a:b] if temperature is not None else None
        out.append(CycleSummary(
            cycle_index=int(cycle[a]),
            charge_capacity_Ah=qc,
            discharge_capacity_Ah=qd,
            charge_energy_Wh=ec,
            discharge_energy_Wh=ed,
            coulombic_efficiency=qd / qc if qc > 0 else None,
            energy_efficiency=ed / ec if ec > 0 else None,
            mean_charge_voltage_V=ec / qc if qc > 0 else None,
            mean_discharge_voltage_V=ed / qd if qd > 0 else None,
            max_temperature_C=float(np.nanmax(temps)) if temps is not None and np.isfinite(temps).any() else None,
            duration_s=float(t[b - 1] - t[max(a - 1, 0)]),
            complete=has_both,
        ))
    return out, warnings


def derived_cycle_index(charging, discharging) -> np.ndarray:
    """Cycle number per sample from the current alone: 1 at the start, +1 at the first charge after a discharge.

    Parameters
    ----------
    charging, discharging : per-sample masks of charge and discharge outside rest (``releaf.schema.rest_mask``)
    """
    charging = np.asarray(charging, dtype=bool)
    discharging = np.asarray(discharging, dtype=bool)
    # the direction of the latest non-rest sample, carried through rests: +1 charge, -1 discharge, 0 none yet
    direction = np.where(charging, 1, np.where(discharging, -1, 0))
    idx = np.where(direction != 0, np.arange(direction.size), -1)
    last = np.maximum.accumulate(idx) if idx.size else idx
    carried = np.where(last >= 0, direction[np.maximum(last, 0)], 0)
    prev = np.concatenate(([0], carried[:-1]))
    new_cycle = charging & (prev == -1)
    return 1 + np.cumsum(new_cycle)


def _max_temperature(d) -> np.ndarray | None:
    cols = [c for c in d.columns if c == "temperature_C" or c.startswith(TEMPERATURE_PREFIX)]
    if not cols:
        return None
    stacked = np.column_stack([d[c].cast(float).fill_null(np.nan).to_numpy() for c in cols])
    with np.errstate(all="ignore"):
        all_nan = np.isnan(stacked).all(axis=1)
        out = np.where(all_nan, np.nan, np.nanmax(np.where(np.isnan(stacked), -np.inf, stacked), axis=1))
    return out
