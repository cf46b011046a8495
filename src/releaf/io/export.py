"""Write a canonical table in the open exchange formats: Battery Data Format CSV and BatteryArchive time series.

Both formats define their capacity and energy columns by direction: charge and discharge counters, each
non-negative and growing. releaf keeps the cycler's counter only as one net number (``vendor_capacity_Ah`` =
charge − discharge, reset per step or per cycle as the vendor chose), which cannot be split back into the two
directions without inventing data. So the writers **compute** the directional counters from the measurement, as the
formats define them: the charge passed, :func:`releaf.diagnostics.capacity.cumulative_Ah` (energy:
:func:`~releaf.diagnostics.capacity.cumulative_Wh`), with each interval's increment booked to *charge* when
positive and to *discharge* when negative. The cycler's own net counters are kept where the format has room
(BDF: extra columns ``Cycler Net Capacity / Ah``, ``Cycler Net Energy / Wh``) and are reported as dropped where
it has none (BatteryArchive).

Numbers are written by polars at full precision (shortest representation that reads back to the same float).

References
----------
Battery Data Alliance, Battery Data Format (github.com/battery-data-alliance/battery-data-format; ontology 1.2.0:
``charging_capacity_ah`` = 1/3600 ∫ max(I, 0) dt from the test start, never reset). BatteryArchive
(battery-lcf/batteryarchive-agent ``lithiumCell.calc_cycle_quantities``: ``ah_c`` / ``ah_d`` integrated over
i > 0 / i < 0 within each cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from releaf.diagnostics.capacity import cumulative_Ah, cumulative_Wh
from releaf.schema import GROUP_VOLTAGE_PREFIX, TEMPERATURE_PREFIX, TimeSeries


@dataclass(frozen=True)
class ExportResult:
    """What a writer wrote and what it could not carry.

    Attributes
    ----------
    path : the file written
    rows : data rows written
    columns : column names as written in the header
    dropped : canonical columns of the table that the format has no place for (not written)
    notes : what was computed or assumed
    """

    path: Path
    rows: int
    columns: tuple[str, ...]
    dropped: tuple[str, ...]
    notes: tuple[str, ...]


def directional_counters(ts: TimeSeries, *, reset_per_cycle: bool = False) -> pl.DataFrame:
    """Charge and discharge capacity [Ah] and energy [Wh] passed, each non-negative and non-decreasing.

    Parameters
    ----------
    ts : canonical table
    reset_per_cycle : start every counter again at the first sample of each run of ``cycle_index``
        (BatteryArchive); otherwise from the test start (BDF)

    Returns
    -------
    Columns ``charge_Ah``, ``discharge_Ah``, ``charge_Wh``, ``discharge_Wh``.
    """
    d = ts.data
    step = d["step_index"].to_numpy() if "step_index" in d.columns else None
    step_time = d["step_time_s"].to_numpy() if "step_time_s" in d.columns else None
    t, v, i = (d[c].to_numpy() for c in ("test_time_s", "voltage_V", "current_A"))
    dq = np.diff(cumulative_Ah(t, i, step, step_time), prepend=0.0)
    de = np.diff(cumulative_Wh(t, v, i, step, step_time), prepend=0.0)
    if reset_per_cycle and "cycle_index" in d.columns:
        cycle = d["cycle_index"].fill_null(-1).to_numpy()
        starts = np.concatenate(([True], cycle[1:] != cycle[:-1]))
        dq[starts], de[starts] = 0.0, 0.0
        run = np.cumsum(starts)
    else:
        run = np.zeros(len(t), dtype=np.int64)
    parts = pl.DataFrame({"run": run, "qc": np.maximum(dq, 0.0), "qd": np.maximum(-dq, 0.0),
                          "ec": np.maximum(de, 0.0), "ed": np.maximum(-de, 0.0)})
    return parts.select(
        pl.col("qc").cum_sum().over("run").alias("charge_Ah"), pl.col("qd").cum_sum().over("run").alias("discharge_Ah"),
        pl.col("ec").cum_sum().over("run").alias("charge_Wh"), pl.col("ed").cum_sum().over("run").alias("discharge_Wh"),
    )


def _indexed(columns, prefix: str) -> list[str]:
    return sorted((c for c in columns if c.startswith(prefix) and c.removeprefix(prefix).isdigit()),
                  key=lambda c: int(c.removeprefix(prefix)))


def write_bdf(ts: TimeSeries, path) -> ExportResult:
    """Write a canonical table as a Battery Data Format CSV.

    Columns: ``Test Time / s``, ``Voltage / V``, ``Current / A`` (+ = charge, as BDF), then where the table has
    them ``Unix Time / s`` (from ``datetime``), ``Cycle Count / 1``, ``Step ID`` (the cycler's step number),
    ``Step Count / 1`` (1 + number of step changes so far), ``Step Type / 1``; always ``Charging Capacity / Ah``,
    ``Discharging Capacity / Ah``, ``Charging Energy / Wh``, ``Discharging Energy / Wh`` (integrated from the test
    start, see the module docstring); ``Ambient Temperature / degC``; ``Temperature Tk / degC`` (from
    ``temperature_C_k``, or ``temperature_C`` as T1 when the table has no numbered sensors).

    BDF has no quantity for series-group voltages, the step time or a cycler's net counter: they are written as
    extra columns ``Group Voltage k / V``, ``Step Time / s``, ``Cycler Net Capacity / Ah``, ``Cycler Net Energy /
    Wh`` in BDF's ``Name / unit`` form. BDF validators list such columns as non-canonical extras and ignore them;
    :mod:`releaf.io.bdf` reads them back.

    Parameters
    ----------
    ts : canonical table
    path : file to write (``.bdf.csv`` recommended by BDF)

    Returns
    -------
    ExportResult naming the columns written, the canonical columns dropped and what was computed.
    """
    path = Path(path)
    d = ts.data
    notes = ["Charging/Discharging Capacity and Energy integrated from current and voltage since the test start "
             "(releaf.diagnostics.capacity.cumulative_Ah / cumulative_Wh, split by the sign of each increment)"]
    counters = directional_counters(ts)
    out = [pl.col("test_time_s").alias("Test Time / s"), pl.col("voltage_V").alias("Voltage / V"),
           pl.col("current_A").alias("Current / A")]
    if "datetime" in d.columns:
        out.append((pl.col("datetime").dt.epoch("us") / 1e6).alias("Unix Time / s"))
    if "cycle_index" in d.columns:
        out.append(pl.col("cycle_index").alias("Cycle Count / 1"))
    if "step_index" in d.columns:
        changed = pl.col("step_index").ne_missing(pl.col("step_index").shift(1)).fill_null(True)
        out += [pl.col("step_index").alias("Step ID"), changed.cast(pl.Int64).cum_sum().alias("Step Count / 1")]
    if "step_time_s" in d.columns:
        out.append(pl.col("step_time_s").alias("Step Time / s"))
        notes.append("step_time_s written as the extra column 'Step Time / s' (not a BDF quantity)")
    if "step_type" in d.columns:
        out.append(pl.col("step_type").alias("Step Type / 1"))
    out += [pl.lit(counters["charge_Ah"]).alias("Charging Capacity / Ah"),
            pl.lit(counters["discharge_Ah"]).alias("Discharging Capacity / Ah"),
            pl.lit(counters["charge_Wh"]).alias("Charging Energy / Wh"),
            pl.lit(counters["discharge_Wh"]).alias("Discharging Energy / Wh")]
    if "ambient_temperature_C" in d.columns:
        out.append(pl.col("ambient_temperature_C").alias("Ambient Temperature / degC"))
    dropped = []
    sensors = _indexed(d.columns, TEMPERATURE_PREFIX)
    if sensors:
        out += [pl.col(c).alias(f"Temperature T{c.removeprefix(TEMPERATURE_PREFIX)} / degC") for c in sensors]
        if "temperature_C" in d.columns and not d["temperature_C"].equals(d[sensors[0]]):
            dropped.append("temperature_C")
            notes.append("temperature_C differs from temperature_C_1 and BDF has no main-sensor column: dropped")
    elif "temperature_C" in d.columns:
        out.append(pl.col("temperature_C").alias("Temperature T1 / degC"))
    groups = _indexed(d.columns, GROUP_VOLTAGE_PREFIX)
    out += [pl.col(c).alias(f"Group Voltage {c.removeprefix(GROUP_VOLTAGE_PREFIX)} / V") for c in groups]
    if groups:
        notes.append("group voltages written as extra columns 'Group Voltage k / V' (not BDF quantities)")
    for col, label in (("vendor_capacity_Ah", "Cycler Net Capacity / Ah"),
                       ("vendor_energy_Wh", "Cycler Net Energy / Wh")):
        if col in d.columns:
            out.append(pl.col(col).alias(label))
            notes.append(f"{col} written as the extra column '{label}'")
    table = d.select(out)
    known = {"test_time_s", "voltage_V", "current_A", "datetime", "cycle_index", "step_index", "step_time_s",
             "step_type",
             "ambient_temperature_C", "temperature_C", "vendor_capacity_Ah", "vendor_energy_Wh", *sensors, *groups}
    dropped += [c for c in d.columns if c not in known]
    table.write_csv(path)
    return ExportResult(path, table.height, tuple(table.columns), tuple(dropped), tuple(notes))


BATTERYARCHIVE_HEADER = ("Date_Time", "Test_Time (s)", "Cycle_Index", "Current (A)", "Voltage (V)",
                         "Charge_Capacity (Ah)", "Discharge_Capacity (Ah)", "Charge_Energy (Wh)",
                         "Discharge_Energy (Wh)", "Environment_Temperature (C)", "Cell_Temperature (C)")


def write_batteryarchive(ts: TimeSeries, path) -> ExportResult:
    """Write a canonical table as a BatteryArchive.org time-series CSV (the archive's eleven columns).

    ``Date_Time`` is ``datetime`` in UTC (``YYYY-MM-DD hh:mm:ss.ffffff``; empty without one); ``Cycle_Index`` is
    the table's ``cycle_index`` as the cycler numbered it (1 for every row when the table has none: the archive
    requires a cycle); ``Charge_/Discharge_Capacity`` and ``_Energy`` restart at every cycle, integrated as the
    module docstring says; ``Cell_Temperature (C)`` is ``temperature_C`` (else ``temperature_C_1``);
    ``Environment_Temperature (C)`` is ``ambient_temperature_C``; a missing temperature is an empty field.

    The format has no place for ``step_index``, ``step_type``, series-group voltages, further temperature sensors
    or the cycler's own counters: they are not written and :attr:`ExportResult.dropped` names them.

    Parameters
    ----------
    ts : canonical table
    path : file to write (the archive names them ``<cell_id>_timeseries.csv``)

    Returns
    -------
    ExportResult naming the columns written, the canonical columns dropped and what was computed.
    """
    path = Path(path)
    d = ts.data
    notes = ["Charge/Discharge Capacity and Energy integrated from current and voltage within each cycle "
             "(releaf.diagnostics.capacity.cumulative_Ah / cumulative_Wh, split by the sign of each increment)"]
    counters = directional_counters(ts, reset_per_cycle=True)
    null = pl.lit(None, dtype=pl.Float64)
    if "datetime" in d.columns:
        date_time = pl.col("datetime").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
    else:
        date_time = pl.lit(None, dtype=pl.String)
    if "cycle_index" in d.columns:
        cycle = pl.col("cycle_index")
    else:
        cycle = pl.lit(1, dtype=pl.Int64)
        notes.append("the table has no cycle_index: Cycle_Index = 1 for every row")
    sensors = _indexed(d.columns, TEMPERATURE_PREFIX)
    cell_t = "temperature_C" if "temperature_C" in d.columns else (sensors[0] if sensors else None)
    table = d.select(
        date_time.alias("Date_Time"), pl.col("test_time_s").alias("Test_Time (s)"), cycle.alias("Cycle_Index"),
        pl.col("current_A").alias("Current (A)"), pl.col("voltage_V").alias("Voltage (V)"),
        pl.lit(counters["charge_Ah"]).alias("Charge_Capacity (Ah)"),
        pl.lit(counters["discharge_Ah"]).alias("Discharge_Capacity (Ah)"),
        pl.lit(counters["charge_Wh"]).alias("Charge_Energy (Wh)"),
        pl.lit(counters["discharge_Wh"]).alias("Discharge_Energy (Wh)"),
        (pl.col("ambient_temperature_C") if "ambient_temperature_C" in d.columns else null)
        .alias("Environment_Temperature (C)"),
        (pl.col(cell_t) if cell_t else null).alias("Cell_Temperature (C)"),
    )
    used = {"test_time_s", "voltage_V", "current_A", "datetime", "cycle_index", "ambient_temperature_C", cell_t}
    dropped = tuple(c for c in d.columns if c not in used)
    if dropped:
        notes.append("no place in the format for: " + ", ".join(dropped))
    table.write_csv(path)
    return ExportResult(path, table.height, tuple(table.columns), dropped, tuple(notes))
