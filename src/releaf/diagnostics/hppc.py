"""Hybrid pulse power characterisation (HPPC): pulse resistances per SOC level, series group and temperature.

An HPPC test steps a rested unit down in SOC; at every level it applies a short discharge pulse and a short
charge (regen) pulse from rest. The pulses are found here from the current alone (a step from rest to a current
held for at most ``max_pulse_s``), so any cycler's HPPC-like schedule works, not only the USABC/INL one. At each
pulse ``R(x) = ΔV(x) / ΔI`` with ΔV from the last rested sample before the pulse (see
:mod:`releaf.diagnostics.resistance`).

SOC at each pulse comes from coulomb counting: 100 % is the most charged state of the test (the end of the
CC-CV charge that opens an HPPC), 0 % either ``capacity_Ah`` below it or, when no capacity is given, the most
discharged state after it (an HPPC ends at the lower cut-off).

References
----------
USABC/INL Battery Test Manual for Electric Vehicles, rev. 3 (INL/EXT-15-34184, 2015), section 3.3 (HPPC) and
appendix D (resistance calculation).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.diagnostics.resistance import CurrentStep, current_steps, resistances_at, step_resistances
from releaf.errors import InputFileError
from releaf.schema import GROUP_VOLTAGE_PREFIX, TimeSeries, rest_mask

# A pulse is a step from rest held at most this long [s]; HPPC pulses are 10-30 s, the SOC steps between
# levels last many minutes.
MAX_PULSE_S = 60.0
# Pulses closer than this [s] (end of one to start of the next) belong to the same SOC level.
LEVEL_GAP_S = 300.0
# Default rest and step thresholds as fractions of the largest current magnitude of the test. Rest before a pulse
# is ``releaf.schema.rest_mask`` with 2 % of the largest current, not the file default (1 mA): an HPPC's pulses
# start from rests that a large channel reads with an offset (0.01 A in the ORNL cell files), and the threshold
# must stay well below the smallest pulse (STEP_FRACTION).
REST_FRACTION = 0.02
STEP_FRACTION = 0.1
READ_30S = 30.0
QUANTITIES = ("r0_mOhm", "r_1s_mOhm", "r_10s_mOhm", "r_30s_mOhm")


def _frame(ts) -> tuple[pl.DataFrame, str, list[str]]:
    """The table, a name for messages and the group-voltage columns of a TimeSeries or a bare DataFrame."""
    if isinstance(ts, TimeSeries):
        return ts.data, ts.name, ts.group_columns
    if isinstance(ts, pl.DataFrame):
        groups = sorted((c for c in ts.columns if c.startswith(GROUP_VOLTAGE_PREFIX)),
                        key=lambda c: int(c.removeprefix(GROUP_VOLTAGE_PREFIX)))
        return ts, "<table>", groups
    raise TypeError(f"expected a releaf TimeSeries or a polars DataFrame, got {type(ts).__name__}")


def _arrays(df: pl.DataFrame, name: str):
    for col in ("test_time_s", "voltage_V", "current_A"):
        if col not in df.columns:
            raise InputFileError(name, f"column {col!r} is required for an HPPC analysis", column=col)
    t = df["test_time_s"].to_numpy().astype(float)
    v = df["voltage_V"].to_numpy().astype(float)
    i = df["current_A"].to_numpy().astype(float)
    step = df["step_index"].to_numpy() if "step_index" in df.columns else None
    return t, v, i, step


def hppc_input(ts) -> tuple[pl.DataFrame, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The table of an HPPC test and its columns as arrays, as every analysis of this module reads them.

    Parameters
    ----------
    ts : a releaf TimeSeries or a polars DataFrame with the canonical columns (see ``releaf.schema``)

    Returns
    -------
    table : the polars table
    name : the test's name for error messages (``"<table>"`` for a bare DataFrame)
    test_time_s, voltage_V, current_A : float arrays [s, V, A]
    step_index : cycler step per sample, or None when the table has none

    Raises
    ------
    InputFileError : ``test_time_s``, ``voltage_V`` or ``current_A`` is missing.
    TypeError : ``ts`` is neither a TimeSeries nor a DataFrame.
    """
    df, name, _ = _frame(ts)
    return (df, name, *_arrays(df, name))


def soc_from_top_pct(test_time_s, current_A, step_index=None, *,
                     capacity_Ah: float | None = None) -> tuple[np.ndarray, float, int, int]:
    """State of charge by coulomb counting from the most charged state of a test.

    Parameters
    ----------
    test_time_s, current_A : canonical columns [s, A]
    step_index : cycler step per sample (sharper integration at step changes), or None
    capacity_Ah : charge between 100 % and 0 % [Ah]; default the charge from the top to the bottom of the test

    Returns
    -------
    soc_pct : per sample [%]
    capacity_Ah : the capacity used [Ah]
    top, bottom : sample indices of 100 % and of the most discharged state after it
    """
    q = cumulative_Ah(test_time_s, current_A, step_index)
    top = int(np.argmax(q))
    bottom = top + int(np.argmin(q[top:]))
    cap = float(q[top] - q[bottom]) if capacity_Ah is None else float(capacity_Ah)
    if not cap > 0:
        raise InputFileError("<table>", "no charge is removed after the most charged state: not an HPPC test")
    return 100.0 + 100.0 * (q - q[top]) / cap, cap, top, bottom


def hppc_pulses(current_A, test_time_s, step_index=None, *, min_step_A: float | None = None,
                rest_A: float | None = None, max_pulse_s: float = MAX_PULSE_S,
                level_gap_s: float = LEVEL_GAP_S, after_index: int = 0) -> list[tuple[int, CurrentStep]]:
    """The pulses of an HPPC-like test, each with its SOC level number.

    Parameters
    ----------
    current_A, test_time_s : canonical columns [A, s]
    step_index : cycler step per sample, or None
    min_step_A : smallest pulse current [A]; default ``STEP_FRACTION`` of the largest |current|
    rest_A : current magnitude that counts as rest before a pulse [A] (``releaf.schema.rest_mask``); default
        ``REST_FRACTION`` of the largest
    max_pulse_s : longest step that counts as a pulse [s]
    level_gap_s : pulses closer than this (end to next start) share a level [s]
    after_index : ignore steps before this sample (an HPPC's levels start at the top of charge, not in the
        conditioning before it)

    Returns
    -------
    ``(level, step)`` pairs in time order, levels numbered from 1.
    """
    i = np.asarray(current_A, dtype=float)
    t = np.asarray(test_time_s, dtype=float)
    i_max = float(np.max(np.abs(i))) if i.size else 0.0
    min_step = STEP_FRACTION * i_max if min_step_A is None else min_step_A
    rest = REST_FRACTION * i_max if rest_A is None else rest_A
    if not min_step > 0:
        return []
    out, level, last_end, breaks = [], 0, None, None
    for s in current_steps(i, min_step_A=min_step, step_index=step_index):
        if s.before < after_index:
            continue
        from_rest = rest_mask(s.current_before_A, rest) and abs(s.current_after_A) >= min_step
        if not from_rest:
            continue
        if breaks is None:
            breaks = _pulse_breaks(i, step_index, rest)
        s = _whole_pulse(s, i, step_index, rest, breaks)
        if t[s.last] - t[s.before] > max_pulse_s:
            continue
        if last_end is None or t[s.before] - last_end > level_gap_s:
            level += 1
        last_end = float(t[s.last])
        out.append((level, s))
    return out


def _whole_pulse(s: CurrentStep, i: np.ndarray, step_index, rest_A: float, breaks: np.ndarray | None = None
                 ) -> CurrentStep:
    """Extend a step from rest over the whole pulse: while the current keeps its sign above rest (and the cycler
    step does not change). A pulse limited by the voltage ramps up or tapers (the regen pulse near 4.2 V); the
    constant-current step alone would end at its first sample. ``breaks``: :func:`_pulse_breaks` of the test, if
    already known."""
    a = s.before + 1
    steps = None if step_index is None else np.asarray(step_index)
    # the sample after the step opens a pulse only above rest, with a known cycler step (x != x: NaN)
    starts = np.isfinite(i[a]) and not rest_mask(i[a], rest_A) and (steps is None or steps[a] == steps[a])
    if not starts:
        return s
    breaks = _pulse_breaks(i, steps, rest_A) if breaks is None else breaks
    k = int(np.searchsorted(breaks, a, side="right"))
    last = int(breaks[k]) - 1 if k < breaks.size else len(i) - 1
    return CurrentStep(s.before, max(last, s.last), s.current_before_A, s.current_after_A)


def _pulse_breaks(i: np.ndarray, step_index, rest_A: float) -> np.ndarray:
    """Samples where a pulse running up to the sample before cannot go on: the current changes sign or is at rest
    (or NaN), or the cycler changes step. Checked between neighbours, which is the same as checking every sample
    against the pulse's first one: equal signs and steps chain."""
    sign = np.sign(i)
    stop = np.ones(len(i), dtype=bool)
    stop[1:] = (sign[1:] != sign[:-1]) | rest_mask(i[1:], rest_A)  # a NaN's sign differs from every sign
    if step_index is not None:
        steps = np.asarray(step_index)
        stop[1:] |= steps[1:] != steps[:-1]
    return np.flatnonzero(stop)


def hppc_table(ts, *, capacity_Ah: float | None = None, temperature_C: float | None = None,
               min_step_A: float | None = None, max_pulse_s: float = MAX_PULSE_S) -> pl.DataFrame:
    """Resistance of every HPPC pulse, with its SOC level, direction and per-group values.

    Parameters
    ----------
    ts : canonical time series (:class:`releaf.schema.TimeSeries` or its polars table), current + = charge
    capacity_Ah : charge between 100 % and 0 % SOC [Ah]; default from the top to the bottom of the test
    temperature_C : test temperature [degC] when the file has no ``temperature_C`` column
    min_step_A : smallest pulse current [A]; default 10 % of the largest |current| in the test
    max_pulse_s : longest current step counted as a pulse [s]

    Returns
    -------
    One row per pulse in time order: ``level``, ``time_s`` [s], ``soc_pct`` [%] (at the pulse start),
    ``direction`` (``discharge``/``charge``), ``current_A`` [A] (first pulse sample), ``duration_s`` [s],
    ``rest_voltage_V`` [V] (last sample before the pulse), ``r0_mOhm`` (first sample after the step, only if
    <= 1 s after the last one before it), ``r_1s_mOhm``, ``r_10s_mOhm``, ``r_30s_mOhm`` (None when the pulse is
    shorter), ``r_end_mOhm`` [mOhm], ``temperature_C`` [degC] (mean over the pulse, or the given value), and per
    series group ``k`` the columns ``r0_mOhm_g<k>``, ``r_1s_mOhm_g<k>``, ``r_10s_mOhm_g<k>``, ``r_30s_mOhm_g<k>``.

    Raises
    ------
    InputFileError : required columns missing, or no charge removed after the top of the test.
    """
    rows, n_groups = _pulse_rows(ts, capacity_Ah, temperature_C, min_step_A, max_pulse_s)
    return pl.DataFrame(rows, schema=_schema(n_groups)) if rows else _empty(n_groups)


def hppc_records(ts, *, capacity_Ah: float | None = None, temperature_C: float | None = None,
                 min_step_A: float | None = None, max_pulse_s: float = MAX_PULSE_S, min_levels: int = 1) -> list[dict]:
    """The rows of :func:`hppc_table` as dicts (its columns, in its order and types), without building the table.

    Parameters and errors as :func:`hppc_table`; for callers that only iterate the pulses (the diagnosis).
    ``min_levels``: no rows at all (and no resistance computed) when the pulses span fewer SOC levels.
    """
    return _pulse_rows(ts, capacity_Ah, temperature_C, min_step_A, max_pulse_s, min_levels)[0]


def _pulse_rows(ts, capacity_Ah, temperature_C, min_step_A, max_pulse_s, min_levels: int = 1
                ) -> tuple[list[dict], int]:
    df, name, group_cols = _frame(ts)
    t, v, i, step = _arrays(df, name)
    try:
        soc, _, top, _ = soc_from_top_pct(t, i, step, capacity_Ah=capacity_Ah)
    except InputFileError as err:
        raise InputFileError(name, err.message) from None
    pulses = hppc_pulses(i, t, step, min_step_A=min_step_A, max_pulse_s=max_pulse_s, after_index=top)
    if not pulses or len({level for level, _ in pulses}) < min_levels:
        return [], len(group_cols)
    groups = [df[c].to_numpy().astype(float) for c in group_cols]
    temp = df["temperature_C"].to_numpy().astype(float) if "temperature_C" in df.columns else None
    temperature_C = None if temperature_C is None else float(temperature_C)  # a Float64 column of the table
    steps = [s for _, s in pulses]
    rs = step_resistances(t, v, i, steps, group_voltages_V=tuple(groups))
    r30 = resistances_at(t, (v, *groups), i, steps, READ_30S)
    before = [s.before for s in steps]
    t_before, soc_before, v_before = t[before].tolist(), soc[before].tolist(), v[before].tolist()
    finite_temp = temp is not None and bool(np.isfinite(temp).all())
    group_keys = [(f"r0_mOhm_g{g}", f"r_1s_mOhm_g{g}", f"r_10s_mOhm_g{g}", f"r_30s_mOhm_g{g}")
                  for g in range(1, len(groups) + 1)]
    rows = []
    for k, ((level, s), r) in enumerate(zip(pulses, rs, strict=True)):
        if finite_temp and s.last > s.before:  # np.mean's own sum and division, without its checks
            temp_C = float(np.add.reduce(temp[s.before + 1 : s.last + 1])) / (s.last - s.before)
        elif temp is not None and np.isfinite(temp[s.before + 1 : s.last + 1]).any():
            temp_C = float(np.nanmean(temp[s.before + 1 : s.last + 1]))
        else:
            temp_C = temperature_C
        row = {
            "level": level, "time_s": t_before[k], "soc_pct": soc_before[k],
            "direction": "charge" if s.current_after_A > 0 else "discharge", "current_A": s.current_after_A,
            "duration_s": r.duration_s, "rest_voltage_V": v_before[k], "r0_mOhm": r.r0_mOhm,
            "r_1s_mOhm": r.r_1s_mOhm, "r_10s_mOhm": r.r_10s_mOhm, "r_30s_mOhm": r30[0][k],
            "r_end_mOhm": r.r_end_mOhm, "temperature_C": temp_C,
        }
        for g, (k0, k1, k10, k30) in enumerate(group_keys):
            row[k0] = r.group_r0_mOhm[g] if r.group_r0_mOhm else None
            row[k1] = r.group_r_1s_mOhm[g]
            row[k10] = r.group_r_10s_mOhm[g]
            row[k30] = r30[g + 1][k]
        rows.append(row)
    return rows, len(groups)


def _schema(n_groups: int) -> dict:
    schema = {"level": pl.Int64, "time_s": pl.Float64, "soc_pct": pl.Float64, "direction": pl.String,
              "current_A": pl.Float64, "duration_s": pl.Float64, "rest_voltage_V": pl.Float64}
    schema |= {q: pl.Float64 for q in (*QUANTITIES, "r_end_mOhm", "temperature_C")}
    for k in range(1, n_groups + 1):
        schema |= {f"{q}_g{k}": pl.Float64 for q in QUANTITIES}
    return schema


def _empty(n_groups: int) -> pl.DataFrame:
    return pl.DataFrame(schema=_schema(n_groups))


DEFAULT_SOC_GRID_PCT = tuple(float(x) for x in range(10, 100, 10))


def hppc_summary(tables: Iterable[pl.DataFrame], *, soc_grid_pct=DEFAULT_SOC_GRID_PCT,
                 quantities=QUANTITIES) -> pl.DataFrame:
    """Resistance over SOC and temperature from the HPPC tables of several tests.

    Each table's pulses of one direction are interpolated linearly over SOC onto ``soc_grid_pct`` (no
    extrapolation: None outside the SOC range the test covered); tests at the same temperature (rounded to
    0.1 degC) are averaged.

    Parameters
    ----------
    tables : results of :func:`hppc_table`, each with a known ``temperature_C``
    soc_grid_pct : SOC points of the summary [%]
    quantities : resistance columns to summarise [mOhm]

    Returns
    -------
    Long table, one row per ``temperature_C`` [degC], ``direction`` and ``soc_pct`` [%], with the quantities
    [mOhm] and ``tests`` (how many tests were averaged). Pivot it for a SOC x temperature map
    (:func:`resistance_map`).

    Raises
    ------
    InputFileError : a table without temperature (pass ``temperature_C`` to :func:`hppc_table`).
    """
    grid = np.asarray(soc_grid_pct, dtype=float)
    parts = []
    for n, tab in enumerate(tables):
        temps = tab["temperature_C"].drop_nulls() if "temperature_C" in tab.columns else pl.Series([])
        if temps.len() == 0:
            raise InputFileError(f"table {n + 1}", "no temperature_C: pass temperature_C= to hppc_table",
                                   column="temperature_C")
        temp_C = round(float(temps.mean()), 1)
        for direction in ("discharge", "charge"):
            sub = tab.filter(pl.col("direction") == direction).sort("soc_pct")
            if sub.height == 0:
                continue
            row = {"temperature_C": np.full(grid.size, temp_C), "direction": [direction] * grid.size,
                   "soc_pct": grid}
            for q in quantities:
                ok = sub.filter(pl.col(q).is_not_null())
                s, r = ok["soc_pct"].to_numpy(), ok[q].to_numpy()
                vals = np.full(grid.size, np.nan)
                if s.size:
                    inside = (grid >= s.min() - 1e-9) & (grid <= s.max() + 1e-9)
                    vals[inside] = np.interp(grid[inside], s, r)
                row[q] = vals
            parts.append(pl.DataFrame(row))
    if not parts:
        return pl.DataFrame(schema={"temperature_C": pl.Float64, "direction": pl.String, "soc_pct": pl.Float64,
                                    **{q: pl.Float64 for q in quantities}, "tests": pl.UInt32})
    out = (pl.concat(parts).fill_nan(None)
           .group_by(["temperature_C", "direction", "soc_pct"], maintain_order=True)
           .agg([pl.col(q).mean() for q in quantities] + [pl.len().alias("tests")])
           .sort(["direction", "temperature_C", "soc_pct"]))
    return out


def resistance_map(summary: pl.DataFrame, *, quantity: str = "r0_mOhm",
                   direction: str = "discharge") -> pl.DataFrame:
    """SOC x temperature table of one quantity from :func:`hppc_summary`: a ``soc_pct`` column and one column
    per temperature named ``<quantity>_<T>C`` [mOhm]."""
    sub = summary.filter(pl.col("direction") == direction)
    temps = sorted(set(sub["temperature_C"].to_list()))
    out = pl.DataFrame({"soc_pct": sorted(set(sub["soc_pct"].to_list()))})
    for temp in temps:
        col = sub.filter(pl.col("temperature_C") == temp).select("soc_pct", pl.col(quantity).alias(
            f"{quantity}_{temp:g}C"))
        out = out.join(col, on="soc_pct", how="left")
    return out
