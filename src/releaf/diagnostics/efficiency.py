"""Coulombic and energy efficiency per cycle, from the measured current and voltage.

A *half-cycle* is a stretch of the test in which the current keeps one direction (rests inside it do not break
it); a *cycle* is a charge half-cycle and the discharge half-cycle that follows it. Then

    coulombic efficiency  CE = Q_discharge / Q_charge          energy efficiency  EE = E_discharge / E_charge

with Q and E integrated by ``releaf.diagnostics.capacity`` (``cumulative_Ah`` / ``cumulative_Wh``: trapezoids
inside a cycler step, the new step's value held across a step change). Rest samples contribute nothing (a cycler
rest is open circuit; a sensor offset there is not charge). Short opposite pulses (HPPC regen pulses inside a
discharge) smaller than ``min_fraction`` of the largest half-cycle are left out of the pairing and the totals.

CE above 1 is possible for a single pair: the charge and the discharge need not start and end at the same state
(a discharge after a longer rest, a charge cut at a different CV current, a temperature change between them).

References
----------
IEC 61960-3:2017, clause 7.3 (discharge performance) and 7.6 (charge/discharge energy); J. C. Burns et al.,
"Predicting and extending the lifetime of Li-ion batteries", J. Electrochem. Soc. 160 (2013) A1451,
doi:10.1149/2.060309jes (coulombic efficiency as a measure of side reactions).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from releaf.diagnostics.capacity import cumulative_Ah, cumulative_Wh
from releaf.diagnostics.ocv_rest import rest_samples
from releaf.schema import TimeSeries

MIN_FRACTION = 0.02
COMPLETE_TOLERANCE_V = 0.05


def _vendor_total(counter: np.ndarray, step: np.ndarray | None, members: np.ndarray) -> float:
    """Sum over the cycler steps of a half-cycle of the change of a vendor counter (Ah or Wh).

    Bitrode resets its counter at the start of each charge/discharge step, other cyclers accumulate it; a counter
    that is closer to zero than to its previous value at the step's first sample counts as reset.
    """
    if step is None or members.size == 0:
        return float("nan")
    total = 0.0
    breaks = np.flatnonzero(np.diff(members) != 1) + 1
    for run in np.split(members, breaks):
        for sub in np.split(run, np.flatnonzero(np.diff(step[run]) != 0) + 1):
            a, b = int(sub[0]), int(sub[-1])
            before = counter[a - 1] if a > 0 else 0.0
            reset = abs(counter[a]) < abs(counter[a] - before)
            total += abs(counter[b] - (0.0 if reset else before))
    return float(total)


def half_cycles(ts: TimeSeries, *, min_fraction: float = MIN_FRACTION, rest_current_A: float | None = None
                ) -> pl.DataFrame:
    """Charge and discharge half-cycles of a test with their charge and energy.

    Parameters
    ----------
    ts : canonical time series (current positive = charge)
    min_fraction : half-cycles moving less than this fraction of the largest one are dropped [-]
    rest_current_A : see :func:`releaf.diagnostics.ocv_rest.rest_samples`

    Returns
    -------
    One row per half-cycle in time order: ``direction`` (``charge``/``discharge``), ``first``, ``last`` (sample
    indices), ``start_s``, ``end_s`` [s], ``charge_Ah`` [Ah] and ``energy_Wh`` [Wh] (positive magnitudes),
    ``start_voltage_V`` (the last sample before it), ``end_voltage_V`` [V], ``vendor_capacity_Ah`` [Ah] and
    ``vendor_energy_Wh`` [Wh] (the cycler's counters summed over its steps, NaN without them).
    """
    d = ts.data
    t, v, i = (d[c].to_numpy() for c in ("test_time_s", "voltage_V", "current_A"))
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    rest = rest_samples(ts, rest_current_A=rest_current_A)
    i_eff = np.where(rest, 0.0, i)
    dq = np.diff(cumulative_Ah(t, i_eff, step, step_time), prepend=0.0)  # dq[k]: interval ending at sample k
    de = np.diff(cumulative_Wh(t, v, i_eff, step, step_time), prepend=0.0)
    sign = np.where(rest, 0, np.sign(i)).astype(int)
    active = np.flatnonzero(sign != 0)
    runs = []
    if active.size:
        cuts = np.flatnonzero(np.diff(sign[active]) != 0) + 1
        for grp in np.split(active, cuts):
            runs.append((int(sign[grp[0]]), grp))
    sizes = [abs(float(dq[g].sum())) for _, g in runs]
    largest = max(sizes, default=0.0)
    kept = [(s, g) for (s, g), q in zip(runs, sizes, strict=True) if q >= min_fraction * largest and q > 0]
    merged: list[tuple[int, np.ndarray]] = []
    for s, g in kept:
        if merged and merged[-1][0] == s:
            merged[-1] = (s, np.concatenate((merged[-1][1], g)))
        else:
            merged.append((s, g))
    counters = {c: d[c].to_numpy() for c in ("vendor_capacity_Ah", "vendor_energy_Wh") if c in d.columns}
    rows = []
    for s, g in merged:
        rows.append({
            "direction": "charge" if s > 0 else "discharge",
            "first": int(g[0]), "last": int(g[-1]),
            "start_s": float(t[g[0] - 1] if g[0] > 0 else t[g[0]]), "end_s": float(t[g[-1]]),
            "charge_Ah": abs(float(dq[g].sum())), "energy_Wh": abs(float(de[g].sum())),
            "start_voltage_V": float(v[g[0] - 1] if g[0] > 0 else v[g[0]]), "end_voltage_V": float(v[g[-1]]),
            **{c: _vendor_total(counters[c], step, g) if c in counters else float("nan")
               for c in ("vendor_capacity_Ah", "vendor_energy_Wh")},
        })
    schema = {"direction": pl.String, "first": pl.Int64, "last": pl.Int64, "start_s": pl.Float64,
              "end_s": pl.Float64, "charge_Ah": pl.Float64, "energy_Wh": pl.Float64, "start_voltage_V": pl.Float64,
              "end_voltage_V": pl.Float64, "vendor_capacity_Ah": pl.Float64, "vendor_energy_Wh": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def cycle_efficiency(ts: TimeSeries, *, min_fraction: float = MIN_FRACTION, rest_current_A: float | None = None
                     ) -> pl.DataFrame:
    """Coulombic and energy efficiency of every charge followed by a discharge.

    Parameters
    ----------
    ts : canonical time series
    min_fraction, rest_current_A : see :func:`half_cycles`

    Returns
    -------
    One row per cycle: ``cycle`` (0-based), ``charge_start_s``, ``discharge_end_s`` [s], ``rest_between_s`` [s]
    (time between the end of the charge and the start of the discharge), ``charge_Ah``, ``discharge_Ah`` [Ah],
    ``charge_Wh``, ``discharge_Wh`` [Wh], ``coulombic_efficiency``, ``energy_efficiency`` [-],
    ``vendor_charge_Ah``, ``vendor_discharge_Ah`` [Ah] and ``vendor_coulombic_efficiency`` [-] from the cycler's
    counters, ``vendor_energy_efficiency`` [-] likewise (cross-checks, NaN without them), and ``complete``: the
    discharge ended within ``COMPLETE_TOLERANCE_V`` of the lowest discharge end of the test and the charge started
    in the lower half of the test's voltage range (a cycle from empty to full and back, not a partial one).

    References
    ----------
    J. C. Burns et al., J. Electrochem. Soc. 160 (2013) A1451, doi:10.1149/2.060309jes.
    """
    hc = half_cycles(ts, min_fraction=min_fraction, rest_current_A=rest_current_A)
    rows = []
    recs = hc.to_dicts()
    ends = [r["end_voltage_V"] for r in recs if r["direction"] == "discharge"]
    bottom = min(ends, default=float("nan"))
    lo, hi = float(ts.data["voltage_V"].min()), float(ts.data["voltage_V"].max())
    for a, b in zip(recs[:-1], recs[1:], strict=True):
        if a["direction"] != "charge" or b["direction"] != "discharge":
            continue
        vc, vd = a["vendor_capacity_Ah"], b["vendor_capacity_Ah"]
        ec, ed = a["vendor_energy_Wh"], b["vendor_energy_Wh"]
        complete = (b["end_voltage_V"] <= bottom + COMPLETE_TOLERANCE_V
                    and a["start_voltage_V"] <= lo + 0.5 * (hi - lo))
        rows.append({
            "cycle": len(rows), "charge_start_s": a["start_s"], "discharge_end_s": b["end_s"],
            "rest_between_s": b["start_s"] - a["end_s"],
            "charge_Ah": a["charge_Ah"], "discharge_Ah": b["charge_Ah"],
            "charge_Wh": a["energy_Wh"], "discharge_Wh": b["energy_Wh"],
            "coulombic_efficiency": b["charge_Ah"] / a["charge_Ah"],
            "energy_efficiency": b["energy_Wh"] / a["energy_Wh"],
            "vendor_charge_Ah": vc, "vendor_discharge_Ah": vd,
            "vendor_coulombic_efficiency": vd / vc if vc and np.isfinite(vc) else float("nan"),
            "vendor_energy_efficiency": ed / ec if ec and np.isfinite(ec) else float("nan"),
            "complete": bool(complete),
        })
    schema = {"cycle": pl.Int64, "charge_start_s": pl.Float64, "discharge_end_s": pl.Float64,
              "rest_between_s": pl.Float64, "charge_Ah": pl.Float64, "discharge_Ah": pl.Float64,
              "charge_Wh": pl.Float64, "discharge_Wh": pl.Float64, "coulombic_efficiency": pl.Float64,
              "energy_efficiency": pl.Float64, "vendor_charge_Ah": pl.Float64, "vendor_discharge_Ah": pl.Float64,
              "vendor_coulombic_efficiency": pl.Float64, "vendor_energy_efficiency": pl.Float64,
              "complete": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


__all__ = ["cycle_efficiency", "half_cycles"]
