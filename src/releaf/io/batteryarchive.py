"""BatteryArchive.org time-series CSV (the Sandia National Laboratories archive of cycling data).

Every ``*_timeseries.csv`` / ``*_timeseries_data.csv`` the archive serves has the same eleven columns::

    Date_Time,Test_Time (s),Cycle_Index,Current (A),Voltage (V),Charge_Capacity (Ah),Discharge_Capacity (Ah),
    Charge_Energy (Wh),Discharge_Energy (Wh),Environment_Temperature (C),Cell_Temperature (C)

They are the archive's database table ``cycle_timeseries`` (``date_time, test_time, cycle_index, i, v, ah_c, ah_d,
e_c, e_d, env_temperature, cell_temperature``) exported under those names. The archive books a sample with
``i > 0`` to ``ah_c`` / ``e_c`` and ``i < 0`` to ``ah_d`` / ``e_d``, so its current is **positive on charge**,
releaf's convention: no sign change. Its charge and discharge counters start again in every cycle (the archive
integrates them per ``cycle_index``); their difference is kept as ``vendor_capacity_Ah`` / ``vendor_energy_Wh``
for cross-checks. ``Cycle_Index`` starts at 1.

``Date_Time`` has no time zone in the archive; it is taken as UTC (said in the metadata). Formats: those of
:data:`releaf.io.datetimes.DATETIME_FORMATS`, among them ``YYYY-MM-DD hh:mm:ss[.f]`` (pandas' export of the
archive's timestamps, also with ``T``) and ``MM/DD/YYYY hh:mm:ss[.f]`` (battdat's Battery Archive exporter).

Column names are matched without regard to case; the unit in brackets decides the scale (the archive writes only
s, A, V, Ah, Wh and C). ``Cell_Temperature`` -> ``temperature_C``, ``Environment_Temperature`` ->
``ambient_temperature_C``. A file with ``Data_Point`` or ``Step_Index`` is an Arbin export, not this format.

Hand-written on polars: no maintained reader library exists for the format (BEEP's and battdat's readers are pandas
mappings of the same names).

References
----------
battery-lcf/batteryarchive-agent (Sandia): ``data/ba_data_schema.sql`` (table ``cycle_timeseries``),
``src/batteryarchive_agent/lithiumCell.py`` (``calc_cycle_quantities``: i > 0 -> ah_c, i < 0 -> ah_d, per cycle)
and the export query naming the CSV columns. ROVI-org/battery-data-toolkit ``battdat/io/ba.py`` (exporter;
cycle numbers from 1). TRI-AMDD/beep ``beep/structure`` AmpLabs datapath (same column list).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.io.mapped import decode, quantity, read_delimited
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

HEADER = ("Date_Time", "Test_Time (s)", "Cycle_Index", "Current (A)", "Voltage (V)", "Charge_Capacity (Ah)",
          "Discharge_Capacity (Ah)", "Charge_Energy (Wh)", "Discharge_Energy (Wh)", "Environment_Temperature (C)",
          "Cell_Temperature (C)")
# base name (lower case) -> (canonical target or counter role, dimension)
_BASES = {
    "test_time": ("test_time_s", "time"), "current": ("current_A", "current"), "voltage": ("voltage_V", "voltage"),
    "cycle_index": ("cycle_index", "count"), "date_time": ("datetime", None),
    "charge_capacity": ("q_charge", "charge"), "discharge_capacity": ("q_discharge", "charge"),
    "charge_energy": ("e_charge", "energy"), "discharge_energy": ("e_discharge", "energy"),
    "cell_temperature": ("temperature_C", "temperature"),
    "environment_temperature": ("ambient_temperature_C", "temperature"),
}
_NOT_THIS = {"data_point", "step_index"}  # Arbin exports carry these; the archive's time series does not


def _split(name: str) -> tuple[str, str | None]:
    """``'Test_Time (s)'`` → ``('test_time', 's')``: lower case, spaces and underscores as one ``_``."""
    base, unit = units.split_unit(name, styles=("()",))
    return re.sub(r"[\s_]+", "_", base.lower()), unit or None


def sniff(head: textfile.Head) -> str | None:
    """``batteryarchive-csv`` for the archive's time-series header, else None."""
    if head.is_binary:
        return None
    names = next(csv.reader([head.first_line]), [])
    split = [_split(n) for n in names]
    bases = {b for b, _ in split}
    with_unit = {b for b, u in split if u}
    if {"test_time", "current", "voltage"} <= with_unit and "cycle_index" in bases and not bases & _NOT_THIS \
            and ({"charge_capacity", "discharge_capacity"} <= bases or "date_time" in bases):
        return "batteryarchive-csv"
    return None


def read_batteryarchive_csv(path) -> TimeSeries:
    """Read a BatteryArchive.org time-series CSV into the canonical table.

    Parameters
    ----------
    path : a ``*_timeseries.csv`` file downloaded from batteryarchive.org (or written by
        :func:`releaf.io.export.write_batteryarchive`)

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``cycle_index``,
    ``step_type`` (from the current's sign; the format has no step column), ``datetime`` [UTC, assumed],
    ``vendor_capacity_Ah`` / ``vendor_energy_Wh`` [Ah / Wh, per-cycle charge − discharge counters],
    ``temperature_C`` and ``ambient_temperature_C`` [degC] where the file has values.

    Raises
    ------
    InputFileError
        a missing required column, a line with the wrong number of fields (a truncated file), a non-number or a
        Date_Time in none of the known layouts (naming line and column).
    """
    path = Path(path)
    text = decode(path, textfile.read_bytes(path))
    names, raw, first = read_delimited(path, text)
    roles: dict[str, tuple[str, str, str | None]] = {}
    for i, name in enumerate(names):
        base, unit = _split(name)
        if base in _BASES and _BASES[base][0] not in roles:
            roles[_BASES[base][0]] = (f"c{i}", name, unit)
    for need, label in (("test_time_s", "Test_Time (s)"), ("voltage_V", "Voltage (V)"), ("current_A", "Current (A)")):
        if need not in roles:
            raise InputFileError(path, f"column {label!r} is missing from the header (BatteryArchive time series: "
                                         f"{', '.join(HEADER)})", line=1)
    units_found, conversions = {}, []

    def num(role: str, *, allow_empty: bool = True) -> pl.Series:
        c, name, unit = roles[role]
        dim = next(d for r, d in _BASES.values() if r == role)
        return quantity(path, raw, c, name=name, unit=unit, dimension=dim, first_line_no=first,
                        units_found=units_found, conversions=conversions, allow_empty=allow_empty)

    columns = {"test_time_s": num("test_time_s", allow_empty=False), "voltage_V": num("voltage_V", allow_empty=False),
               "current_A": num("current_A", allow_empty=False)}
    if "cycle_index" in roles:
        columns["cycle_index"] = num("cycle_index").cast(pl.Int64)
    if "datetime" in roles:
        stamps = _datetimes(path, raw[roles["datetime"][0]], roles["datetime"][1], first)
        if stamps is not None:
            columns["datetime"] = stamps
            conversions.append(f"'{roles['datetime'][1]}' has no time zone: taken as UTC")
    for target, plus, minus in (("vendor_capacity_Ah", "q_charge", "q_discharge"),
                                ("vendor_energy_Wh", "e_charge", "e_discharge")):
        if plus in roles and minus in roles:
            columns[target] = num(plus) - num(minus)
    for target in ("temperature_C", "ambient_temperature_C"):
        if target in roles:
            values = num(target)
            if values.is_not_null().any():
                columns[target] = values
    df = pl.DataFrame(columns).with_columns(step_type_from_current(pl.col("current_A")).alias("step_type"))
    meta = SourceMeta(
        path=str(path), sha256=textfile.sha256_of(path), format="batteryarchive-csv", vendor="BatteryArchive.org",
        units_found=units_found, conversions=tuple(conversions),
    )
    return validate(TimeSeries(df, meta), line_of_row=lambda i: first + i)


def _datetimes(path, raw: pl.Series, name: str, first: int) -> pl.Series | None:
    """``Date_Time`` as UTC datetimes in the first known layout (:data:`releaf.io.datetimes.DATETIME_FORMATS`) that
    fits every non-empty field; None if all are empty."""
    present = raw.str.strip_chars().replace("", None).is_not_null()
    if not present.any():
        return None
    parsed = datetimes.to_utc(raw)
    if parsed is not None:
        return parsed
    best = None  # the layout that reads most fields names the first field it cannot read
    for fmt in datetimes.DATETIME_FORMATS:
        misses = datetimes.to_utc(raw, fmt, partial=True).is_null() & present
        if best is None or int(misses.sum()) < best[0]:
            best = (int(misses.sum()), int(misses.arg_true()[0]))
    i = best[1]
    raise InputFileError(path, f"{raw[i]!r} where a date and time such as '2018-01-31 19:26:45.497' was expected",
                           line=first + i, column=name)


FORMATS = {"batteryarchive-csv": read_batteryarchive_csv}
